# SPDX-License-Identifier: Apache-2.0
"""Recipes for re-deploys: which ranges of a new file the device can copy from the old one.

A re-deployed artifact in which one model changed keeps every other section's ciphertext
byte for byte (stable sections, docs/artifact-format.md), only at shifted offsets. The host
reads the old artifact's header from the device, asks the agent for the SHA-256 of the old
sections that could match (``HASH``, one per section whose length a new section has) and
builds a recipe: each new section whose (length, SHA-256) equals an old one is copied on the
device (``PUT_RECIPE``); the header, the changed sections and the signature travel as the usual
chunks. device_agents/PROTOCOL.md section 7b has the messages; this module is pure (no I/O):
``AgentClient`` does the requests.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from edgepack.artifact import container
from edgepack.errors import ArtifactInvalid

RANGE = struct.Struct("<QQ")  # HASH: offset, length
COPY = struct.Struct("<QQQ")  # PUT_RECIPE: destination, source, length
HEAD_PROBE = 4096  # bytes of the new file read first: most artifact headers fit
MAX_HEADER_LEN = container.MAX_HEADER_LEN


@dataclass(frozen=True)
class Copy:
    """Bytes ``[src, src + length)`` of the old file go to ``[dst, dst + length)`` of the new."""

    dst: int
    src: int
    length: int


@dataclass(frozen=True)
class Section:
    offset: int
    length: int


def is_artifact(head: bytes) -> bool:
    return head[: len(container.MAGIC)] == container.MAGIC


def header_len(head: bytes) -> int | None:
    """The header length an artifact's first 16 bytes announce (``None``: not an artifact)."""
    if len(head) < 16 or not is_artifact(head):
        return None
    (n,) = struct.unpack_from("<I", head, 12)
    return int(n)


def sections(head: bytes, file_size: int) -> list[Section] | None:
    """The sections of an artifact of ``file_size`` bytes from its header bytes (at least
    ``header_len`` of them), or ``None`` when they do not parse as an artifact header."""
    n = header_len(head)
    if n is None or n > len(head) or n > file_size:
        return None
    try:
        parsed = container.parse_header(head[:n], file_len=file_size)
    except ArtifactInvalid:
        return None
    return [Section(s.offset, s.ciphertext_size) for s in parsed.sections]


def candidates(old: Sequence[Section], new: Sequence[Section]) -> list[Section]:
    """Old sections worth hashing on the device: those with a length some new section has."""
    lengths = {s.length for s in new}
    return [s for s in old if s.length in lengths and s.length > 0]


def plan(new: Sequence[Section], new_digests: Sequence[bytes], old: Sequence[Section],
         old_digests: Sequence[bytes]) -> list[Copy]:
    """Copies for every new section whose (length, SHA-256) equals one of ``old`` (digests in
    the same order as the sections), adjacent copies merged; ascending by destination, as
    ``PUT_RECIPE`` wants them."""
    if len(old) != len(old_digests) or len(new) != len(new_digests):
        raise ValueError("one digest per section")
    by_content = {(s.length, d): s.offset for s, d in zip(old, old_digests, strict=True)}
    copies: list[Copy] = []
    for s, digest in sorted(zip(new, new_digests, strict=True), key=lambda p: p[0].offset):
        src = by_content.get((s.length, digest))
        if s.length == 0 or src is None:
            continue
        last = copies[-1] if copies else None
        if last is not None and last.dst + last.length == s.offset and \
                last.src + last.length == src:
            copies[-1] = Copy(last.dst, last.src, last.length + s.length)
        else:
            copies.append(Copy(s.offset, src, s.length))
    return copies


def covered_chunks(copies: Sequence[Copy], size: int, chunk: int) -> set[int]:
    """The chunks of a ``size``-byte file that ``copies`` cover whole (adjacent copies
    together): what the agent records as present after ``PUT_RECIPE``."""
    out: set[int] = set()
    nchunks = -(-size // chunk)
    runs: list[list[int]] = []
    for c in sorted(copies, key=lambda c: c.dst):
        if runs and runs[-1][1] == c.dst:
            runs[-1][1] = c.dst + c.length
        else:
            runs.append([c.dst, c.dst + c.length])
    for start, end in runs:
        last = nchunks if end == size else end // chunk
        out.update(range(-(-start // chunk), last))
    return out


def ranges_field(ranges: Sequence[Section]) -> bytes:
    return b"".join(RANGE.pack(s.offset, s.length) for s in ranges)


def copies_field(copies: Sequence[Copy]) -> bytes:
    return b"".join(COPY.pack(c.dst, c.src, c.length) for c in copies)
