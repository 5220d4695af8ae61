# SPDX-License-Identifier: Apache-2.0
"""The re-deploy recipe maker (``device/delta.py``): section tables read from an artifact's
header alone, matching by (length, SHA-256), merged copies and the chunks they cover."""

from __future__ import annotations

import hashlib

import pytest

from edgepack.device import delta
from edgepack.device.delta import Copy, Section
from epk_synth import artifact, ciphertext


def _digests(data: bytes, secs: list[Section]) -> list[bytes]:
    return [hashlib.sha256(data[s.offset:s.offset + s.length]).digest() for s in secs]


def test_sections_from_the_header_alone() -> None:
    data = artifact([("manifest", ciphertext(100, 1)), ("graph/a", ciphertext(70_000, 2))])
    n = delta.header_len(data)
    assert n is not None and n < 1000
    secs = delta.sections(data[:n], len(data))
    assert secs == [Section(n, 116), Section(n + 116, 70_000 + 32)]
    assert secs[-1].offset + secs[-1].length == len(data) - 64
    assert delta.sections(data[:n - 1], len(data)) is None  # too few header bytes
    assert delta.sections(data[:n], len(data) + 1) is None  # the table does not fit the size
    assert delta.sections(b"#!/bin/sh\n" * 10, 100) is None
    assert delta.header_len(b"\x89EPK") is None


def test_plan_copies_equal_sections_at_their_new_offsets() -> None:
    a, b, c = ciphertext(30_000, 1), ciphertext(20_000, 2), ciphertext(40_000, 3)
    old = artifact([("manifest", ciphertext(10, 4)), ("graph/a", a), ("graph/b", b),
                    ("graph/c", c)])
    new = artifact([("manifest", ciphertext(12, 5)), ("graph/a", a),
                    ("graph/b", ciphertext(25_000, 6)), ("graph/c", c)])
    old_secs = delta.sections(old, len(old))
    new_secs = delta.sections(new, len(new))
    assert old_secs is not None and new_secs is not None
    wanted = delta.candidates(old_secs, new_secs)
    assert wanted == old_secs[1:2] + old_secs[3:]  # lengths the new file has: a and c
    copies = delta.plan(new_secs, _digests(new, new_secs), wanted, _digests(old, wanted))
    assert copies == [Copy(new_secs[1].offset, old_secs[1].offset, len(a)),
                      Copy(new_secs[3].offset, old_secs[3].offset, len(c))]
    rebuilt = bytearray(len(new))
    for cp in copies:
        rebuilt[cp.dst:cp.dst + cp.length] = old[cp.src:cp.src + cp.length]
        assert rebuilt[cp.dst:cp.dst + cp.length] == new[cp.dst:cp.dst + cp.length]


def test_plan_merges_adjacent_copies_and_skips_same_length_other_content() -> None:
    new = [Section(100, 10), Section(110, 20), Section(130, 5), Section(135, 0)]
    old = [Section(500, 10), Section(510, 20), Section(600, 5), Section(700, 0)]
    d = [bytes([i]) * 32 for i in range(4)]
    other = bytes(32)
    # 0 and 1 are adjacent in both files: one copy; 2 has another content; empty ones never.
    assert delta.plan(new, d, old, [d[0], d[1], other, d[3]]) == [Copy(100, 500, 30)]
    # Adjacent in the new file but not in the old: two copies.
    old2 = [Section(500, 10), Section(900, 20), Section(600, 5), Section(700, 0)]
    assert delta.plan(new, d, old2, d) == [Copy(100, 500, 10), Copy(110, 900, 20),
                                           Copy(130, 600, 5)]
    with pytest.raises(ValueError):
        delta.plan(new, d[:3], old, d)


@pytest.mark.parametrize(("copies", "size", "chunk", "covered"), [
    ([Copy(0, 0, 4096)], 10_000, 4096, {0}),
    ([Copy(1, 0, 8191)], 10_000, 4096, {1}),  # chunk 0 is partly literal
    ([Copy(0, 0, 2000), Copy(2000, 9, 2096)], 10_000, 4096, {0}),  # adjacent copies together
    ([Copy(0, 0, 2000), Copy(2001, 9, 2095)], 10_000, 4096, set()),  # one byte travels
    ([Copy(8192, 0, 1808)], 10_000, 4096, {2}),  # the short last chunk, to the end
    ([Copy(8193, 0, 1807)], 10_000, 4096, set()),
    ([Copy(0, 0, 10_000)], 10_000, 4096, {0, 1, 2}),
    ([], 10_000, 4096, set()),
])
def test_covered_chunks(copies: list[Copy], size: int, chunk: int, covered: set[int]) -> None:
    assert delta.covered_chunks(copies, size, chunk) == covered


def test_fields_pack_little_endian_u64() -> None:
    assert delta.ranges_field([Section(1, 2)]) == (1).to_bytes(8, "little") + \
        (2).to_bytes(8, "little")
    assert delta.copies_field([Copy(1, 2, 3)]) == b"".join(
        i.to_bytes(8, "little") for i in (1, 2, 3))
