# SPDX-License-Identifier: Apache-2.0
"""``edgepack verify FILE.epk --publisher publisher.pub``: exit 0 only if the signature holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgepack import api
from edgepack.ui import emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="check an artifact's signature against a publisher key")
    p.add_argument("artifact", type=Path, metavar="FILE.epk", help="the artifact to verify")
    p.add_argument("--publisher", type=Path, required=True,
                   help="publisher public key (.pub) or private key file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = api.verify(args.artifact, publisher=args.publisher).to_json()
    emit(result, args.json, lambda r: (
        f"{r['file']}: signature valid, signed by {r['signer']} "
        f"({r['package']} {r['version']}, version_counter {r['version_counter']})"))
    return 0
