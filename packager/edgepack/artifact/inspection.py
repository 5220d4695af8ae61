# SPDX-License-Identifier: Apache-2.0
"""What a person asks of an artifact: describe it (header, signature, manifest) and unpack it.

The API behind ``edgepack inspect`` and ``edgepack unpack``; both return data, the commands
format it.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgepack.artifact import container, keys, manifest
from edgepack.errors import ArtifactInvalid, UsageError

SIGNATURE_INVALID = "INVALID"


def fingerprint_of_digest(digest: bytes) -> str:
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def describe(path: Path, key: Path | None) -> dict[str, Any]:
    """The plaintext header, whether the signature holds (by the key in the header), and with
    ``key`` the decrypted manifest. ``signature`` is ``SIGNATURE_INVALID`` when it does not."""
    data = container.read_file(path)
    header = container.parse_header(data)
    embedded = Ed25519PublicKey.from_public_bytes(header.publisher_key)
    try:
        container.verify_artifact(data, embedded)
        signature = "valid (by the key in the header; use 'edgepack verify --publisher' to pin it)"
    except ArtifactInvalid:
        signature = SIGNATURE_INVALID
    info: dict[str, Any] = {
        "file": str(path),
        "size": header.file_len,
        "format_version": header.format_version,
        # unchanged sections keep their ciphertext across releases (artifact-format.md)
        "stable_sections": header.stable_sections,
        # the signature is over SHA-256 digests of 1 MiB blocks, checked on every core
        "block_signature": header.block_signature,
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
        opened = container.open_artifact(
            data, keys.load_device_private(key), embedded, names=set()
        )
        info["manifest"] = manifest.loads(opened.manifest_bytes)
    return info


def safe_relative(name: str) -> PurePosixPath:
    """A section name as a relative path that cannot leave the output folder."""
    rel = PurePosixPath(name)
    if rel.is_absolute() or any(part in ("", ".", "..") for part in rel.parts):
        raise ArtifactInvalid("layout")
    return rel


def _section_paths(names: list[str]) -> dict[str, str]:
    """Section name -> relative output path; a name that is also another's folder (``a`` and
    ``a/b``) or a second ``manifest.json`` cannot be written, so the layout is invalid."""
    paths = {name: ("manifest.json" if name == container.MANIFEST_SECTION
                    else str(safe_relative(name))) for name in names}
    taken = set(paths.values())
    folders = {str(parent) for p in taken for parent in PurePosixPath(p).parents
               if str(parent) != "."}
    if len(taken) != len(paths) or taken & folders:
        raise ArtifactInvalid("layout")
    return paths


def unpack(path: Path, key: Path, out: Path, publisher: Path | None,
           force: bool) -> dict[str, Any]:
    """Decrypt every section into the folder ``out``, which appears whole or not at all.

    Without ``publisher`` the signer is the key in the header (``signer_pinned`` is False in
    the result, and the caller should say so)."""
    if out.exists() and not force:
        raise UsageError(f"--out {out} exists; pass --force to replace it")
    data = container.read_file(path)
    if publisher is not None:
        signer = keys.load_publisher_public(publisher)
    else:
        signer = Ed25519PublicKey.from_public_bytes(container.parse_header(data).publisher_key)
    opened = container.open_artifact(data, keys.load_device_private(key), signer)
    paths = _section_paths(list(opened.sections))
    manifest.loads(opened.manifest_bytes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files = []
        for name, blob in opened.sections.items():
            target = tmp / paths[name]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
            files.append({"section": name, "path": paths[name], "size": len(blob)})
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out), "files": files, "signer": keys.fingerprint(signer),
            "signer_pinned": publisher is not None}
