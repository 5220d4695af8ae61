# SPDX-License-Identifier: Apache-2.0
"""``edgepack doctor [--board B]``: is this machine ready to build and test for boards?

Lists toolchains, sysroots, qemu, cmake, ninja, conan, OpenSSL headers, sshd and socat as
present or missing, with the exact command that installs what is missing. Exit code 1 when
something required is missing.
"""

from __future__ import annotations

import argparse
from typing import Any

from edgepack import api
from edgepack.errors import ExitCode
from edgepack.ui import emit, format_table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check the tools needed to build for boards",
                       description=__doc__)
    p.add_argument("--board", help="check only what this board needs (default: all boards)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _text(data: dict[str, Any]) -> str:
    rows = []
    for c in data["checks"]:
        state = "ok" if c["ok"] else ("MISSING" if c["required"] else "optional")
        rows.append([state, c["area"], c["name"], c["detail"] if c["ok"] else c["fix"] or ""])
    summary = "all required tools present" if data["ok"] else (
        "missing: run the commands above (or `bash scripts/setup.sh`)")
    return format_table(["state", "area", "item", "detail / install"], rows) + "\n" + summary


def run(args: argparse.Namespace) -> int:
    result = api.doctor(args.board)
    emit(result.to_json(), args.json, _text)
    return ExitCode.OK if result.ok else ExitCode.CHECK_FAILED
