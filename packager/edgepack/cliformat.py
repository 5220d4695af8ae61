# SPDX-License-Identifier: Apache-2.0
"""One help style for every ``edgepack`` parser: descriptions keep their line breaks, and every
option with a meaningful default shows it. ``Parser`` is the class of the top-level parser;
argparse gives sub-command parsers the class of their parent, so all of them share it.

``walk`` and ``render_markdown`` read the parser tree for the test that every option has help
text and for docs/cli.md (generated, never edited by hand: ``python -m edgepack.cliformat``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import Any


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the text already names a default,
    or the default is nothing (None, False, an empty list) or suppressed."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default in (None, False, [], argparse.SUPPRESS)
                or isinstance(action, argparse._HelpAction | argparse._VersionAction)
                or not (action.option_strings or action.nargs in ("?", "*"))):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command path, parser) pair, depth first, in registration order."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


def options_without_help(parser: argparse.ArgumentParser) -> list[str]:
    """``edgepack CMD --flag`` for every option or positional that has no help text."""
    missing = []
    for path, p in walk(parser):
        for action in p._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not (action.help or "").strip():
                name = "/".join(action.option_strings) or str(action.metavar or action.dest)
                missing.append(" ".join(("edgepack", *path, name)))
    return missing


def render_markdown(parser: argparse.ArgumentParser) -> str:
    """docs/cli.md: every command's ``--help`` text, as argparse prints it at 100 columns."""
    out = ["# edgepack command line", "",
           "Generated from the argparse parser by `python -m edgepack.cliformat > docs/cli.md`;",
           "a test fails when this file and the parser disagree. Exit codes: see",
           "[errors.md](errors.md). Every command with `--json` prints JSON on stdout instead",
           "of text; options that write a file are named for the file (`--out-json FILE`,",
           "`--html FILE`, `--out FILE`).", ""]
    for path, p in walk(parser):
        title = " ".join(("edgepack", *path))
        out += [f"## {title}", "", "```text", _help_text(p).rstrip(), "```", ""]
    return "\n".join(out)


def _help_text(p: argparse.ArgumentParser) -> str:
    """``p.format_help()`` at a fixed width, whatever the terminal (the doc must not vary)."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return p.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def main() -> int:
    from edgepack.cli import build_parser

    sys.stdout.write(render_markdown(build_parser()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
