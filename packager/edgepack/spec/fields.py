# SPDX-License-Identifier: Apache-2.0
"""Reading TOML tables with precise errors: the dotted key, its line, and a close known key.

tomllib returns plain dicts without positions, so ``LineIndex`` scans the text once for table
headers and ``key =`` lines to map dotted keys (``models[1].postprocess.top_k``) to lines.
It is a locator for messages only; a line it cannot find is simply left out.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from edgepack.errors import SpecError

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")


def _split_key(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return [p.strip("\"'") for p in parts]


class LineIndex:
    """Dotted key -> 1-based line, and line -> dotted key, from a scan of the TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        self.keys_at: dict[int, str] = {}
        counts: dict[str, int] = {}  # array-of-tables path -> number of elements so far
        table = ""
        for n, raw in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(raw)
            if header:
                table = self._resolve(_split_key(header.group(2)), counts,
                                      array=header.group(1) == "[[")
                self.lines.setdefault(table, n)
                self.keys_at[n] = table
                continue
            key = _KEY.match(raw)
            if key:
                dotted = ".".join(filter(None, [table, *_split_key(key.group(1))]))
                self.lines.setdefault(dotted, n)
                self.keys_at[n] = dotted

    @staticmethod
    def _resolve(parts: list[str], counts: dict[str, int], array: bool) -> str:
        path = ""
        for i, part in enumerate(parts):
            path = f"{path}.{part}" if path else part
            last = i == len(parts) - 1
            if last and array:
                counts[path] = counts.get(path, 0) + 1
                path = f"{path}[{counts[path] - 1}]"
            elif path in counts:
                path = f"{path}[{counts[path] - 1}]"
        return path

    def line(self, dotted: str) -> int | None:
        """The line of ``dotted`` or of its nearest recorded parent."""
        key = dotted
        while key:
            if key in self.lines:
                return self.lines[key]
            cut = max(key.rfind("."), key.rfind("["))
            key = key[:cut] if cut > 0 else ""
        return None


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class SpecContext:
    """The file being read: where errors point."""

    def __init__(self, path: Path, root: Path, index: LineIndex) -> None:
        self.path = path
        self.root = root
        self.index = index

    def fail(self, field: str, message: str, hint: str | None = None) -> NoReturn:
        raise SpecError(self.path, message, field=field or None,
                        line=self.index.line(field) if field else None, hint=hint)


class Table:
    """One TOML table at a dotted path, with typed getters that fail with the key named."""

    def __init__(self, ctx: SpecContext, data: dict[str, Any], path: str) -> None:
        self.ctx = ctx
        self.data = data
        self.path = path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str | None, message: str, hint: str | None = None) -> NoReturn:
        self.ctx.fail(self.key(name) if name else self.path, message, hint)

    def check_keys(self, known: Iterable[str], what: str | None = None) -> None:
        known = list(known)
        for name in self.data:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                where = what or (f"[{self.path}]" if self.path else "the top level")
                hint = f"did you mean {close[0]!r}?" if close else \
                    f"known keys: {', '.join(known)}"
                self.fail(name, f"unknown key {name!r} in {where}", hint=hint)

    def has(self, name: str) -> bool:
        return name in self.data

    def require(self, name: str) -> Any:
        if name not in self.data:
            self.fail(None, f"missing required key {self.key(name)!r}")
        return self.data[name]

    def string(self, name: str, default: str | None = None,
               choices: Iterable[str] | None = None) -> str:
        value = self.require(name) if default is None else self.data.get(name, default)
        if not isinstance(value, str):
            self.fail(name, f"expected a string, found {type_name(value)}")
        if choices is not None:
            allowed = list(choices)
            if value not in allowed:
                self.fail(name, f"{value!r} is not one of: {', '.join(allowed)}")
        return value

    def integer(self, name: str, default: int | None = None, minimum: int | None = None,
                maximum: int | None = None) -> int:
        value = self.require(name) if default is None else self.data.get(name, default)
        # bool is a subclass of int in Python; in a spec `true` is never a count.
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(name, f"expected an integer, found {type_name(value)}")
        if minimum is not None and value < minimum:
            self.fail(name, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(name, f"must be <= {maximum}, got {value}")
        return value

    def number(self, name: str, default: float, lo: float | None = None,
               hi: float | None = None) -> float:
        value = self.data.get(name, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(name, f"expected a number, found {type_name(value)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(name, f"must be in [{lo}, {hi}], got {value}")
        return float(value)

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            self.fail(name, f"expected true or false, found {type_name(value)}")
        return value

    def numbers(self, name: str, default: tuple[float, ...]) -> tuple[float, ...]:
        value = self.data.get(name, list(default))
        if not isinstance(value, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            self.fail(name, f"expected an array of numbers, found {value!r}")
        return tuple(float(v) for v in value)

    def ints(self, name: str) -> tuple[int, ...]:
        value = self.require(name)
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            self.fail(name, f"expected an array of integers, found {value!r}")
        return tuple(value)

    def table(self, name: str) -> Table:
        value = self.require(name)
        if not isinstance(value, dict):
            self.fail(name, f"expected a table, found {type_name(value)}")
        return Table(self.ctx, value, self.key(name))

    def tables(self, name: str) -> list[Table]:
        """An array of tables (``[[name]]`` or an inline array of ``{...}``)."""
        value = self.require(name)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(name, f"expected an array of tables, found {type_name(value)}")
        return [Table(self.ctx, v, f"{self.key(name)}[{i}]") for i, v in enumerate(value)]
