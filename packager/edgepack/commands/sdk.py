# SPDX-License-Identifier: Apache-2.0
"""``edgepack sdk build|conan --board B``: the per-board C++ SDK as a tarball or Conan package."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgepack.ui import emit

if TYPE_CHECKING:
    from edgepack.build.sdkbuild import SdkBuild


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sdk", help="build the C++ SDK for a board", description=__doc__)
    actions = p.add_subparsers(dest="sdk_command", metavar="ACTION")
    actions.required = True
    b = actions.add_parser("build", help="cross-build the SDK: DIR/<board>/ + a tarball")
    b.add_argument("--board", required=True, help="board id (see `edgepack boards`)")
    b.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the SDK tree (include/, lib/, bin/, cmake/)")
    b.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default: 2)")
    b.add_argument("--json", action="store_true", help="print JSON")
    b.set_defaults(func=run_build)
    c = actions.add_parser("conan", help="`conan create` the SDK for a board (offline)")
    c.add_argument("--board", required=True, help="board id (see `edgepack boards`)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=run_conan)


def sdk_summary(build: SdkBuild) -> dict[str, Any]:
    info = build.buildinfo
    return {"board": build.board, "sdk_dir": str(build.sdk_dir), "tarball": str(build.tarball),
            "compiled": build.compiled, "sdk_version": info["sdk_version"],
            "toolchain": info["toolchain"], "flags": info["flags"],
            "sysroot": info["sysroot"]}


def sdk_text(data: dict[str, Any]) -> str:
    tc = data["toolchain"]
    state = "built" if data["compiled"] else "up to date (nothing compiled)"
    lines = [f"sdk {data['sdk_version']} for {data['board']}: {state}",
             f"  compiler: {tc['compiler']}",
             f"  flags:    {' '.join(data['flags']) or '(none)'}",
             f"  sdk:      {data['sdk_dir']}",
             f"  tarball:  {data['tarball']}"]
    if tc.get("warning"):
        lines.append(f"  warning:  {tc['warning']}")
    return "\n".join(lines)


def run_build(args: argparse.Namespace) -> int:
    from edgepack import api

    build = api.sdk_build(args.board, args.out, jobs=args.jobs)
    emit(sdk_summary(build), args.json, sdk_text)
    return 0


def run_conan(args: argparse.Namespace) -> int:
    from edgepack.build.conanpkg import create_package

    result = create_package(args.board)
    emit(result, args.json, lambda r: f"conan package {r['reference']} created for {r['board']} "
                                      f"(profile {r['profile']})")
    return 0
