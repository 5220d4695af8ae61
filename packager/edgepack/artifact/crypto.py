# SPDX-License-Identifier: Apache-2.0
"""Every cryptographic primitive edgepack's host side uses, at recipe level, in one module.

The construction is specified in docs/artifact-format.md: an HPKE-sealed content key per
recipient (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM),
per-section keys from HKDF (or, with stable sections, keys that depend only on the publisher
and the section's content, wrapped under the content key), sections as chunked AES-256-GCM with
STREAM nonces, and an Ed25519 signature. Every failure to open or verify becomes
``ArtifactInvalid(reason)``, with a single user-facing message.
"""

from __future__ import annotations

import hashlib
import hmac
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
# Stable sections (header flag bit 0), docs/artifact-format.md "Stable section keys".
STABLE_SECRET_INFO = b"edgepack/v1 stable secret"
STABLE_KEY_LABEL = b"edgepack/v1 stable section"
STABLE_CHUNK_LABEL = b"edgepack/v1 stable chunk"
WRAP_KEY_INFO = b"edgepack/v1 section wrap"
WRAPPED_KEY_SIZE = 32 + 16
# Block-hash signature (header flag bit 1), docs/artifact-format.md "Signature": Ed25519 over
# this prefix, the signed length (u64), the block size (u32) and SHA-256 of every block.
BLOCK_SIGNATURE_PREFIX = b"edgepack-epk-blocks-v1\0"
SIGNATURE_BLOCK_SIZE = 1 << 20

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


def _str16(raw: bytes) -> bytes:
    return struct.pack("<H", len(raw)) + raw


def stable_secret(publisher: Ed25519PrivateKey) -> bytes:
    """The publisher's secret for stable section keys, derived from its Ed25519 seed with its
    own HKDF label (no second key file). Devices never see it."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=STABLE_SECRET_INFO).derive(publisher.private_bytes_raw())


def stable_section_key(secret: bytes, package_name: str, name: str, chunk_size: int,
                       plaintext: bytes) -> bytes:
    """The same key for the same (publisher, package, section name, chunk size, plaintext) in
    every release. The chunk size is part of it: under another chunking, chunk j would be other
    bytes under the same key and nonce."""
    message = (STABLE_KEY_LABEL + _str16(package_name.encode("utf-8"))
               + _str16(name.encode("utf-8")) + struct.pack("<I", chunk_size)
               + hashlib.sha256(plaintext).digest())
    return hmac.new(secret, message, hashlib.sha256).digest()


def stable_chunk_aad(package_name: str, name: str) -> bytes:
    """Every chunk's AAD in stable mode: only what the key already depends on (never the
    header digest), so that equal keys always see equal AADs."""
    return STABLE_CHUNK_LABEL + _str16(package_name.encode("utf-8")) + _str16(name.encode("utf-8"))


def wrap_key(content_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=WRAP_KEY_INFO).derive(content_key)


def _wrap_nonce(index: int) -> bytes:
    return b"\x00" * 8 + struct.pack(">I", index)


def wrap_aad(prefix_digest: bytes, name: str) -> bytes:
    return prefix_digest + name.encode("utf-8")


def wrap_section_key(key_wrap: bytes, index: int, aad: bytes, section_key: bytes) -> bytes:
    return AESGCM(key_wrap).encrypt(_wrap_nonce(index), section_key, aad)


def unwrap_section_key(key_wrap: bytes, index: int, aad: bytes, wrapped: bytes) -> bytes:
    try:
        key = AESGCM(key_wrap).decrypt(_wrap_nonce(index), wrapped, aad)
    except InvalidTag as exc:
        raise ArtifactInvalid("unseal") from exc
    if len(key) != 32:
        raise ArtifactInvalid("unseal")
    return key


def chunk_count(plaintext_size: int, chunk_size: int) -> int:
    return max(1, -(-plaintext_size // chunk_size))


def _nonce(index: int, last: bool) -> bytes:
    # STREAM: 7-byte zero prefix (the key is unique per artifact and section, or in stable mode
    # per distinct plaintext), 32-bit big-endian chunk counter, last-chunk flag.
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


def block_signature_message(body: bytes | memoryview,
                            block_size: int = SIGNATURE_BLOCK_SIZE) -> bytes:
    """What a block-hash signature signs: ``BLOCK_SIGNATURE_PREFIX || u64(len(body)) ||
    u32(block_size) || SHA-256(block 0) || SHA-256(block 1) || ...``, the blocks being
    consecutive ``block_size`` bytes of ``body`` (the last one short)."""
    view = memoryview(body)
    out = bytearray(BLOCK_SIGNATURE_PREFIX)
    out += struct.pack("<QI", len(view), block_size)
    for start in range(0, len(view), block_size):
        out += hashlib.sha256(view[start : start + block_size]).digest()
    return bytes(out)


def sign(key: Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def verify_signature(key: Ed25519PublicKey, signature: bytes, data: bytes) -> None:
    try:
        key.verify(signature, data)
    except InvalidSignature as exc:
        raise ArtifactInvalid("signature") from exc
