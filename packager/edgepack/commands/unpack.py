# SPDX-License-Identifier: Apache-2.0
"""``edgepack unpack FILE.epk --key dev.key --out DIR``: decrypted manifest and blobs, for
debugging. The folder appears whole or not at all (built beside DIR, then renamed)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgepack.artifact import container as artifact
from edgepack.artifact import keys, manifest
from edgepack.errors import ArtifactInvalid, UsageError
from edgepack.ui import emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("unpack", help="decrypt an artifact into a folder (for debugging)")
    p.add_argument("artifact", type=Path, metavar="FILE.epk")
    p.add_argument("--key", type=Path, required=True, help="device private key (a recipient)")
    p.add_argument("--out", type=Path, required=True, help="folder to create")
    p.add_argument("--publisher", type=Path,
                   help="publisher key that must have signed it (default: the key in the header)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def safe_relative(name: str) -> PurePosixPath:
    """A section name as a relative path that cannot leave the output folder."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or any(part in ("", ".", "..") for part in rel.parts):
        raise ArtifactInvalid("layout")
    return rel


def unpack(path: Path, key: Path, out: Path, publisher: Path | None, force: bool) -> dict[str, Any]:
    if out.exists() and not force:
        raise UsageError(f"--out {out} exists; pass --force to replace it")
    data = artifact.read_file(path)
    if publisher is not None:
        signer = keys.load_publisher_public(publisher)
    else:
        signer = Ed25519PublicKey.from_public_bytes(artifact.parse_header(data).publisher_key)
        print(f"edgepack: warning: signer not pinned (no --publisher); it is "
              f"{keys.fingerprint(signer)}", file=sys.stderr)
    opened = artifact.open_artifact(data, keys.load_device_private(key), signer)
    manifest.loads(opened.manifest_bytes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files = []
        for name, blob in opened.sections.items():
            rel = "manifest.json" if name == artifact.MANIFEST_SECTION else str(safe_relative(name))
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
            files.append({"section": name, "path": rel, "size": len(blob)})
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "files": files}


def run(args: argparse.Namespace) -> int:
    result = unpack(args.artifact, args.key, args.out, args.publisher, args.force)
    emit(result, args.json,
         lambda r: "\n".join([f"unpacked {len(r['files'])} sections into {r['out']}"]
                             + [f"  {f['path']} ({f['size']} bytes)" for f in r["files"]]))
    return 0
