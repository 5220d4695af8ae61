# SPDX-License-Identifier: Apache-2.0
"""``edgepack inspect FILE.epk [--key dev.key] [--json]``: what an artifact holds.

Without a key it shows the plaintext header: package, counter, signer and recipient
fingerprints, sections. It also checks the signature against the key embedded in the header
(integrity only; ``edgepack verify --publisher`` pins the signer). With ``--key`` it decrypts and
shows the manifest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgepack import api
from edgepack.errors import ExitCode
from edgepack.ui import emit, format_table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inspect", help="show an artifact's header (and manifest with --key)")
    p.add_argument("artifact", type=Path, metavar="FILE.epk", help="the artifact to inspect")
    p.add_argument("--key", type=Path,
                   help="device private key: also decrypt and show the manifest")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _text(info: dict[str, Any]) -> str:
    pkg = info["package"]
    lines = [
        f"artifact   {info['file']} ({info['size']} bytes, format v{info['format_version']}"
        + (", stable sections)" if info.get("stable_sections") else ")"),
        f"package    {pkg['name']} {pkg['version']} (version_counter {pkg['version_counter']})",
        f"signer     {info['signer']}",
        f"signature  {info['signature']}"
        + (" [block-hash]" if info.get("block_signature") else ""),
        "recipients " + ("\n           ".join(info["recipients"])),
        "",
        format_table(
            ["section", "bytes", "encrypted"],
            [[s["name"], str(s["size"]), str(s["encrypted_size"])] for s in info["sections"]],
        ),
    ]
    if "manifest" in info:
        lines += ["", "manifest:", json.dumps(info["manifest"], indent=2, sort_keys=True)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = api.inspect(args.artifact, key=args.key)
    emit(info.to_json(), args.json, _text)
    return ExitCode.OK if info.signature_valid else ExitCode.ARTIFACT
