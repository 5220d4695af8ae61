# SPDX-License-Identifier: Apache-2.0
"""Synthetic artifacts for the re-deploy tests: a real ``.epk`` header layout
(docs/artifact-format.md) around random "ciphertext" sections, so equal sections can be placed
at will before the writer keeps them stable across releases."""

from __future__ import annotations

import os
import random
import struct

from edgepack.artifact import container, crypto

CHUNK = 65_536


def ciphertext(plain_size: int, seed: int) -> bytes:
    """Random bytes as long as a section of ``plain_size`` plaintext bytes encrypts to."""
    n = plain_size + crypto.TAG_SIZE * crypto.chunk_count(plain_size, CHUNK)
    return random.Random(seed).randbytes(n)


def artifact(sections: list[tuple[str, bytes]], counter: int = 1) -> bytes:
    """An artifact-shaped file: header (one random recipient), ``sections`` (name, ciphertext)
    back to back, a random 64-byte signature."""

    def str16(s: str) -> bytes:
        b = s.encode()
        return struct.pack("<H", len(b)) + b

    def plain(ct: bytes) -> int:
        # ciphertext = plaintext + 16 per chunk of CHUNK plaintext bytes
        chunks = max(1, -(-len(ct) // (CHUNK + crypto.TAG_SIZE)))
        return len(ct) - crypto.TAG_SIZE * chunks

    def build(header_len: int) -> bytes:
        head = bytearray(container.MAGIC + struct.pack("<HHI", 1, 0, header_len))
        head += str16("demo") + str16("1.0") + struct.pack("<Q", counter) + bytes(32)
        head += struct.pack("<IH", CHUNK, 1) + os.urandom(container.STANZA_SIZE)
        head += struct.pack("<H", len(sections))
        offset = header_len
        for name, ct in sections:
            head += str16(name) + struct.pack("<QQQ", plain(ct), offset, len(ct))
            offset += len(ct)
        return bytes(head)

    head = build(len(build(0)))
    return head + b"".join(ct for _, ct in sections) + os.urandom(crypto.SIGNATURE_SIZE)
