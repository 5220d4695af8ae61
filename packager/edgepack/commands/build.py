# SPDX-License-Identifier: Apache-2.0
"""``edgepack build [PROJECT] --board B``: the encrypted artifact plus the board's C++ SDK."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgepack.commands.sdk import sdk_summary, sdk_text
from edgepack.ui import emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("build", help="pack the artifact and cross-build the SDK for a board",
                       description=__doc__)
    p.add_argument("project", type=Path, nargs="?", default=Path("."),
                   help="project folder with edgepack.toml (default: .)")
    p.add_argument("--board", required=True, help="board id (see `edgepack boards`)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: PROJECT/out)")
    p.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default: 2)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _text(data: dict[str, Any]) -> str:
    art = data["artifact"]
    return (f"artifact: {art['artifact']} ({art['size']} bytes, {art['package']} "
            f"{art['version']})\n" + sdk_text(data["sdk"]))


def run(args: argparse.Namespace) -> int:
    from edgepack import api

    built = api.build(args.project, args.board, out=args.out, jobs=args.jobs)
    emit({"artifact": built.artifact.summary(), "sdk": sdk_summary(built.sdk)}, args.json, _text)
    return 0
