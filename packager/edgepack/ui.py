# SPDX-License-Identifier: Apache-2.0
"""Output helpers shared by every command: JSON or text, and progress for long steps.

Commands compute data first, then hand it to ``emit``; ``--json`` prints the data as JSON,
otherwise the command's text formatter runs. Progress goes to stderr: a live line on a
terminal, plain lines otherwise, so logs and pipes stay readable.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

# C0 controls other than tab and newline, DEL, and the C1 range: what a terminal would act on.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), so strings that
    come from a device or an artifact (CPU model, stage names, header fields) cannot move the
    cursor, retitle the window or hide output. Tabs and newlines are kept."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def emit(data: Any, as_json: bool, text: Callable[[Any], str], out: TextIO | None = None) -> None:
    """JSON (control characters escaped by the encoder) or the text formatter's output, made
    terminal-safe."""
    stream = out if out is not None else sys.stdout
    if as_json:
        stream.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        rendered = terminal_safe(text(data))
        if rendered:
            stream.write(rendered if rendered.endswith("\n") else rendered + "\n")


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain aligned table; numbers are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def fmt(row: list[str]) -> str:
        cells = []
        for i, cell in enumerate(row):
            numeric = cell.replace(".", "", 1).replace("-", "", 1).isdigit()
            cells.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(cells).rstrip()

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    lines.extend(fmt(r) for r in rows)
    return "\n".join(lines)


class Progress:
    """Progress of one step: ``with Progress("upload", total=n) as p: p.advance(k)``.

    On a terminal it redraws one line at most 10 times a second; otherwise it prints a line
    when the step starts and when it ends (with the elapsed time), and for a long step with a
    total a plain progress line at most every ``plain_every_s`` seconds. With a total, the
    line shows the rate and the estimated time left.
    """

    plain_every_s = 10.0

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None,
                 unit: str = "") -> None:
        self.label = terminal_safe(label)
        self.total = total
        self.done = 0
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self._start = 0.0
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        if not self.live:
            self.stream.write(f"{self.label} ...\n")
            self.stream.flush()
        else:
            self._draw(force=True)
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.live:
            self._draw()
        elif self.total and time.monotonic() - max(self._start, self._last_draw) >= \
                self.plain_every_s:
            self._last_draw = time.monotonic()
            self.stream.write(f"{self.label}: {self._status()}\n")
            self.stream.flush()

    def _status(self) -> str:
        """``42.0% 1234/5678B, 11.2 kB/s, ETA 1m05s`` (rate and ETA once measurable)."""
        total = self.total or 0
        frac = min(1.0, self.done / total) if total else 0.0
        text = f"{frac * 100:5.1f}% {self.done}/{total}{self.unit}"
        elapsed = time.monotonic() - self._start
        if self.done and elapsed >= 0.5:
            rate = self.done / elapsed
            left = max(0.0, (total - self.done) / rate)
            eta = f"{int(left) // 60}m{int(left) % 60:02d}s"
            text += f", {rate / 1000:.1f} k{self.unit or 'items'}/s, ETA {eta}"
        return text

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            text = f"\r\033[K{self.label} [{bar:<30}] {self._status()}"
        else:
            text = f"\r{self.label} ... {now - self._start:5.1f}s"
        self.stream.write(text)
        self.stream.flush()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        elapsed = time.monotonic() - self._start
        status = "done" if exc_type is None else "failed"
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(f"{self.label}: {status} in {elapsed:.1f}s\n")
        self.stream.flush()
