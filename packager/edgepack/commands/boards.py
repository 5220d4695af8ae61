# SPDX-License-Identifier: Apache-2.0
"""``edgepack boards``: list the boards edgepack knows (project, EDGEPACK_BOARDS_PATH, built-in)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from edgepack.spec.boards import Board, list_boards
from edgepack.ui import emit, format_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("boards", help="list known boards", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def board_data(board: Board) -> dict[str, Any]:
    data = asdict(board)
    data["path"] = str(board.path)
    for p in data["processors"]:
        p["ops"] = "all" if p["ops"] is None else list(p["ops"])
    return data


def _text(boards: list[dict[str, Any]]) -> str:
    rows = [[b["id"], b["name"], b["arch"],
             ", ".join(f"{p['id']}({p['backend']})" for p in b["processors"]),
             ", ".join(b["toolchains"])] for b in boards]
    return format_table(["id", "name", "arch", "processors", "toolchains"], rows)


def run(args: argparse.Namespace) -> int:
    emit([board_data(b) for b in list_boards()], args.json, _text)
    return 0
