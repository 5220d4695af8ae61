# SPDX-License-Identifier: Apache-2.0
"""``edgepack unpack FILE.epk --key dev.key --out DIR``: decrypted manifest and blobs, for
debugging. The folder appears whole or not at all (built beside DIR, then renamed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgepack.artifact.inspection import unpack
from edgepack.errors import ExitCode
from edgepack.ui import emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("unpack", help="decrypt an artifact into a folder (for debugging)")
    p.add_argument("artifact", type=Path, metavar="FILE.epk", help="the artifact to unpack")
    p.add_argument("--key", type=Path, required=True, help="device private key (a recipient)")
    p.add_argument("--out", type=Path, required=True, help="folder to create")
    p.add_argument("--publisher", type=Path,
                   help="publisher key that must have signed it (default: the key in the header)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = unpack(args.artifact, args.key, args.out, args.publisher, args.force)
    if not result["signer_pinned"]:
        print(f"edgepack: warning: signer not pinned (no --publisher); it is "
              f"{result['signer']}", file=sys.stderr)
    emit(result, args.json,
         lambda r: "\n".join([f"unpacked {len(r['files'])} sections into {r['out']}"]
                             + [f"  {f['path']} ({f['size']} bytes)" for f in r["files"]]))
    return ExitCode.OK
