# SPDX-License-Identifier: Apache-2.0
"""``edgepack verify FILE.epk --publisher publisher.pub``: exit 0 only if the signature holds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgepack.artifact import container as artifact
from edgepack.artifact import keys
from edgepack.ui import emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="check an artifact's signature against a publisher key")
    p.add_argument("artifact", type=Path, metavar="FILE.epk", help="the artifact to verify")
    p.add_argument("--publisher", type=Path, required=True,
                   help="publisher public key (.pub) or private key file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    publisher = keys.load_publisher_public(args.publisher)
    header = artifact.verify_artifact(artifact.read_file(args.artifact), publisher)
    result: dict[str, Any] = {
        "file": str(args.artifact),
        "valid": True,
        "signer": keys.fingerprint(publisher),
        "package": header.package_name,
        "version": header.package_version,
        "version_counter": header.version_counter,
    }
    emit(result, args.json, lambda r: (
        f"{r['file']}: signature valid, signed by {r['signer']} "
        f"({r['package']} {r['version']}, version_counter {r['version_counter']})"))
    return 0
