# SPDX-License-Identifier: Apache-2.0
"""The ``edgepack`` console script: a thin shell over the importable API.

Each command lives in ``edgepack/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``; the function returns an exit code. Adding a command
means one module plus one line in ``commands.COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edgepack import __version__
from edgepack.cliformat import Parser
from edgepack.commands import COMMANDS
from edgepack.errors import EdgepackError, ExitCode
from edgepack.ui import terminal_safe


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="edgepack",
        description="Package ONNX models for embedded boards, build per-board SDKs, and "
        "benchmark them on dev boards.",
    )
    parser.add_argument("--version", action="version", version=f"edgepack {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"edgepack.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except EdgepackError as exc:
        print(f"edgepack: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgepack: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
