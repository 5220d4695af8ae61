# SPDX-License-Identifier: Apache-2.0
"""Every cryptographic primitive edgepack's host side uses, at recipe level, in one module.

The construction is specified in docs/artifact-format.md: an HPKE-sealed content key per
recipient (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM),
per-section keys from HKDF, sections as chunked AES-256-GCM with STREAM nonces, and an Ed25519
signature. Every failure to open or verify becomes ``ArtifactInvalid(reason)``, with a single
user-facing message.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edgepack.errors import ArtifactInvalid

CONTENT_KEY_SIZE = 32
ENC_SIZE = 32  # X25519 encapsulated key
SEALED_KEY_SIZE = CONTENT_KEY_SIZE + 16
TAG_SIZE = 16
SIGNATURE_SIZE = 64
HPKE_INFO = b"edgepack/v1 content key"
SECTION_KEY_INFO = b"edgepack/v1 section"

_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)


def new_content_key() -> bytes:
    return os.urandom(CONTENT_KEY_SIZE)


def raw_public(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: X25519PublicKey | Ed25519PublicKey) -> bytes:
    """SHA-256 of the raw public key: the recipient stanza's id and the fingerprint digest."""
    return hashlib.sha256(raw_public(key)).digest()


def seal_content_key(content_key: bytes, recipient: X25519PublicKey) -> tuple[bytes, bytes]:
    """HPKE base-mode single-shot seal; returns (enc, sealed_content_key)."""
    blob = _SUITE.encrypt(content_key, recipient, info=HPKE_INFO)
    enc, sealed = blob[:ENC_SIZE], blob[ENC_SIZE:]
    assert len(sealed) == SEALED_KEY_SIZE
    return enc, sealed


def open_content_key(enc: bytes, sealed: bytes, device_key: X25519PrivateKey) -> bytes:
    try:
        content_key = _SUITE.decrypt(enc + sealed, device_key, info=HPKE_INFO)
    except Exception as exc:  # any failure (bad point, bad tag) is the same opaque error
        raise ArtifactInvalid("unseal") from exc
    if len(content_key) != CONTENT_KEY_SIZE:
        raise ArtifactInvalid("unseal")
    return content_key


def section_key(content_key: bytes, index: int, name: str) -> bytes:
    info = SECTION_KEY_INFO + struct.pack("<I", index) + name.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(content_key)


def chunk_count(plaintext_size: int, chunk_size: int) -> int:
    return max(1, -(-plaintext_size // chunk_size))


def _nonce(index: int, last: bool) -> bytes:
    # STREAM: 7-byte zero prefix (the key is unique per artifact and section), 32-bit
    # big-endian chunk counter, last-chunk flag.
    return b"\x00" * 7 + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


def seal_section(key: bytes, aad: bytes, plaintext: bytes, chunk_size: int) -> bytes:
    aead = AESGCM(key)
    n = chunk_count(len(plaintext), chunk_size)
    if n > 0xFFFFFFFF:
        raise ValueError("section too large for a 32-bit chunk counter")
    out = bytearray()
    for j in range(n):
        chunk = plaintext[j * chunk_size : (j + 1) * chunk_size]
        out += aead.encrypt(_nonce(j, j == n - 1), chunk, aad)
    return bytes(out)


def open_section_chunks(
    key: bytes, aad: bytes, ciphertext: bytes, chunk_size: int, plaintext_size: int
) -> Iterator[bytes]:
    """Yields authenticated plaintext chunks in order; memory is bounded by one chunk."""
    n = chunk_count(plaintext_size, chunk_size)
    if len(ciphertext) != plaintext_size + TAG_SIZE * n:
        raise ArtifactInvalid("layout")
    aead = AESGCM(key)
    pos = 0
    remaining = plaintext_size
    for j in range(n):
        size = min(chunk_size, remaining)
        block = ciphertext[pos : pos + size + TAG_SIZE]
        pos += size + TAG_SIZE
        remaining -= size
        try:
            yield aead.decrypt(_nonce(j, j == n - 1), block, aad)
        except InvalidTag as exc:
            raise ArtifactInvalid("chunk") from exc


def open_section(
    key: bytes, aad: bytes, ciphertext: bytes, chunk_size: int, plaintext_size: int
) -> bytes:
    return b"".join(open_section_chunks(key, aad, ciphertext, chunk_size, plaintext_size))


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def verify_signature(key: Ed25519PublicKey, signature: bytes, data: bytes) -> None:
    try:
        key.verify(signature, data)
    except InvalidSignature as exc:
        raise ArtifactInvalid("signature") from exc
