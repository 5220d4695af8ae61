# SPDX-License-Identifier: Apache-2.0
"""``edgepack inspect FILE.epk [--key dev.key] [--json]``: what an artifact holds.

Without a key it shows the plaintext header: package, counter, signer and recipient
fingerprints, sections. It also checks the signature against the key embedded in the header
(integrity only; ``edgepack verify --publisher`` pins the signer). With ``--key`` it decrypts and
shows the manifest.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgepack.artifact import container as artifact
from edgepack.artifact import keys, manifest
from edgepack.errors import ArtifactInvalid, ExitCode
from edgepack.ui import emit, format_table


def fingerprint_of_digest(digest: bytes) -> str:
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inspect", help="show an artifact's header (and manifest with --key)")
    p.add_argument("artifact", type=Path, metavar="FILE.epk")
    p.add_argument("--key", type=Path,
                   help="device private key: also decrypt and show the manifest")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def describe(path: Path, key: Path | None) -> dict[str, Any]:
    data = artifact.read_file(path)
    header = artifact.parse_header(data)
    embedded = Ed25519PublicKey.from_public_bytes(header.publisher_key)
    try:
        artifact.verify_artifact(data, embedded)
        signature = "valid (by the key in the header; use 'edgepack verify --publisher' to pin it)"
    except ArtifactInvalid:
        signature = "INVALID"
    info: dict[str, Any] = {
        "file": str(path),
        "size": header.file_len,
        "format_version": header.format_version,
        "package": {
            "name": header.package_name,
            "version": header.package_version,
            "version_counter": header.version_counter,
        },
        "signer": keys.fingerprint(embedded),
        "signature": signature,
        "chunk_size": header.chunk_size,
        "recipients": [fingerprint_of_digest(r.key_id) for r in header.recipients],
        "sections": [
            {"name": s.name, "size": s.plaintext_size, "encrypted_size": s.ciphertext_size}
            for s in header.sections
        ],
    }
    if key is not None:
        opened = artifact.open_artifact(
            data, keys.load_device_private(key), embedded, names=set()
        )
        info["manifest"] = manifest.loads(opened.manifest_bytes)
    return info


def _text(info: dict[str, Any]) -> str:
    pkg = info["package"]
    lines = [
        f"artifact   {info['file']} ({info['size']} bytes, format v{info['format_version']})",
        f"package    {pkg['name']} {pkg['version']} (version_counter {pkg['version_counter']})",
        f"signer     {info['signer']}",
        f"signature  {info['signature']}",
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
    info = describe(args.artifact, args.key)
    emit(info, args.json, _text)
    return ExitCode.OK if info["signature"] != "INVALID" else ExitCode.ARTIFACT
