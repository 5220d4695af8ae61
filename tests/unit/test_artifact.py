# SPDX-License-Identifier: Apache-2.0
"""The .epk container: round trip, and every way of tampering with one is refused.

Attacks that change signed bytes are caught by the signature alone. To show that the
encryption layer stands on its own (chunk counter, last-chunk flag, AAD, per-section keys),
several cases re-sign the tampered bytes with the real publisher key and expect the decryption
step to refuse them. Those run in both section modes: stable sections (header flag bit 0, the
default) and per-release section keys (flags 0, the format before stable sections). The
signature is over the file's block digests (flag bit 1, the default) or over its bytes; both
modes refuse the same tampering, and a signature made in one mode never passes in the other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edgepack.artifact import container as artifact
from edgepack.artifact import crypto, keys
from edgepack.cli import main
from edgepack.errors import ArtifactInvalid, UsageError

CHUNK = 1024


@pytest.fixture(scope="module")
def keyset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    out = {}
    for name, gen in [("publisher", keys.generate_publisher_key),
                      ("other_publisher", keys.generate_publisher_key),
                      ("dev1", keys.generate_device_key), ("dev2", keys.generate_device_key),
                      ("stranger", keys.generate_device_key)]:
        gen(d / f"{name}.key")
        out[name] = d / f"{name}.key"
    return out


STABLE_MODES = pytest.mark.parametrize("stable", [True, False], ids=["stable", "flags0"])


def write(path: Path, keyset: dict[str, Path], sections: list[tuple[str, bytes]],
          counter: int = 7, publisher: str = "publisher", stable: bool = True,
          recipients: tuple[str, ...] = ("dev1", "dev2"), package: str = "demo",
          version: str = "1.0.0", chunk_size: int = CHUNK, block: bool = True) -> bytes:
    artifact.write_artifact(
        path,
        package_name=package,
        package_version=version,
        version_counter=counter,
        publisher=keys.load_publisher_private(keyset[publisher]),
        recipients=[keys.load_device_public(keyset[r]) for r in recipients],
        sections=sections,
        chunk_size=chunk_size,
        stable_sections=stable,
        block_signature=block,
    )
    return path.read_bytes()


def open_with(data: bytes, keyset: dict[str, Path], dev: str = "dev1",
              min_counter: int = 0) -> artifact.OpenedArtifact:
    return artifact.open_artifact(
        data, keys.load_device_private(keyset[dev]),
        keys.load_publisher_public(keyset["publisher"]), min_counter=min_counter)


def resign(body: bytes, keyset: dict[str, Path]) -> bytes:
    """``body`` signed again by the real publisher, in the mode its header's flags name."""
    priv = keys.load_publisher_private(keyset["publisher"])
    return body + artifact.sign_body(priv, body)


SECTIONS = [
    ("manifest", b'{"schema":"test"}'),
    ("graph/a", bytes(range(256)) * 9),  # 2304 bytes: 3 chunks
    ("graph/b", b"\x5a" * 2304),          # same size as graph/a, for swapping
    ("empty", b""),
]


@STABLE_MODES
def test_round_trip_each_recipient(tmp_path: Path, keyset: dict[str, Path], stable: bool) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS, stable=stable)
    for dev in ("dev1", "dev2"):
        opened = open_with(data, keyset, dev)
        assert opened.sections == dict(SECTIONS)
        assert opened.header.package_name == "demo"
        assert opened.header.version_counter == 7
        assert opened.header.stable_sections == stable


@STABLE_MODES
def test_layout_matches_doc(tmp_path: Path, keyset: dict[str, Path], stable: bool) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS, stable=stable)
    assert data[:8] == b"\x89EPK\r\n\x1a\n"
    version, flags, header_len = struct.unpack_from("<HHI", data, 8)
    assert (version, flags) == (1, (1 if stable else 0) | 2)
    h = artifact.parse_header(data)
    assert h.header_len == header_len
    # each section entry: str16 name, 3 x u64, and in stable mode the 48-byte wrapped key
    entry_sizes = sum(2 + len(n) + 24 + (48 if stable else 0) for n, _ in SECTIONS)
    assert h.table_offset + entry_sizes == header_len
    assert struct.unpack_from("<H", data, h.table_offset - 2)[0] == len(SECTIONS)
    assert all(len(s.wrapped_key) == (48 if stable else 0) for s in h.sections)
    assert h.sections[0].offset == header_len
    assert [s.ciphertext_size for s in h.sections] == [17 + 16, 2304 + 3 * 16, 2304 + 48, 16]
    assert h.sections[-1].offset + h.sections[-1].ciphertext_size == len(data) - 64
    pub = keys.load_device_public(keyset["dev1"])
    assert h.recipients[0].key_id == hashlib.sha256(crypto.raw_public(pub)).digest()


def _ciphertexts(data: bytes) -> dict[str, bytes]:
    h = artifact.parse_header(data)
    return {s.name: data[s.offset:s.offset + s.ciphertext_size] for s in h.sections}


def test_flags0_ciphertext_differs_plaintext_does_not(tmp_path: Path,
                                                      keyset: dict[str, Path]) -> None:
    a = write(tmp_path / "a.epk", keyset, SECTIONS, stable=False)
    b = write(tmp_path / "b.epk", keyset, SECTIONS, stable=False)
    assert a != b  # fresh content key and HPKE ephemeral keys each time
    assert open_with(a, keyset).sections == open_with(b, keyset).sections
    ca, cb = _ciphertexts(a), _ciphertexts(b)
    assert all(ca[n] != cb[n] for n in ca)  # per-release keys: no section is shared


def test_stable_sections_equal_across_releases(tmp_path: Path, keyset: dict[str, Path]) -> None:
    """Release 2 changes graph/a, adds a section before the others, another version, counter
    and recipient list: every unchanged section keeps its ciphertext bytes, the changed one
    does not, and the file still differs (fresh content key, new header)."""
    r1 = write(tmp_path / "r1.epk", keyset, SECTIONS, counter=7)
    changed = [("manifest", SECTIONS[0][1]), ("graph/new", b"new" * 100),
               ("graph/a", bytes(range(255, -1, -1)) * 9), *SECTIONS[2:]]
    r2 = write(tmp_path / "r2.epk", keyset, changed, counter=8, version="1.1.0",
               recipients=("dev2",))
    c1, c2 = _ciphertexts(r1), _ciphertexts(r2)
    for name in ("manifest", "graph/b", "empty"):
        assert c1[name] == c2[name], name
    assert c1["graph/a"] != c2["graph/a"]
    assert len(c1["graph/a"]) == len(c2["graph/a"])
    assert r1 != r2
    assert open_with(r2, keyset, "dev2").sections == dict(changed)
    # dev1 was dropped from the recipients: it can no longer open the new release
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(r2, keyset, "dev1")
    assert exc.value.reason == "not_recipient"


@pytest.mark.parametrize("change", ["package", "publisher", "chunk_size"])
def test_stable_keys_depend_on_package_publisher_and_chunking(
        tmp_path: Path, keyset: dict[str, Path], change: str) -> None:
    """Equal plaintext under another package name, publisher or chunk size shares no
    ciphertext (another chunking under the same key would reuse nonces on other bytes)."""
    base = _ciphertexts(write(tmp_path / "a.epk", keyset, SECTIONS))
    other = _ciphertexts(write(
        tmp_path / "b.epk", keyset, SECTIONS, package="demo2" if change == "package" else "demo",
        publisher="other_publisher" if change == "publisher" else "publisher",
        chunk_size=2048 if change == "chunk_size" else CHUNK))
    assert all(base[n][:16] != other[n][:16] for n in base), change


def test_stable_section_matches_documented_derivation(tmp_path: Path,
                                                      keyset: dict[str, Path]) -> None:
    """docs/artifact-format.md, "Stable section keys", recomputed here from the primitives:
    the wrapped key in the header opens to the documented section key, and the section's
    ciphertext is exactly the documented chunk stream."""
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    h = artifact.parse_header(data)
    publisher = keys.load_publisher_private(keyset["publisher"])
    secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                  info=b"edgepack/v1 stable secret").derive(publisher.private_bytes_raw())
    device = keys.load_device_private(keyset["dev1"])
    ck = crypto.open_content_key(h.recipients[0].enc, h.recipients[0].sealed_content_key, device)
    wrap = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"edgepack/v1 section wrap").derive(ck)
    prefix_digest = hashlib.sha256(data[:h.table_offset]).digest()

    def str16(s: str) -> bytes:
        return struct.pack("<H", len(s.encode())) + s.encode()

    for i, (name, plaintext) in enumerate(SECTIONS):
        key = hmac.new(secret, b"edgepack/v1 stable section" + str16("demo") + str16(name)
                       + struct.pack("<I", CHUNK) + hashlib.sha256(plaintext).digest(),
                       hashlib.sha256).digest()
        entry = h.sections[i]
        nonce = b"\x00" * 8 + struct.pack(">I", i)
        assert AESGCM(wrap).decrypt(nonce, entry.wrapped_key, prefix_digest + name.encode()) == key
        aad = b"edgepack/v1 stable chunk" + str16("demo") + str16(name)
        n = max(1, -(-len(plaintext) // CHUNK))
        expected = b"".join(
            AESGCM(key).encrypt(b"\x00" * 7 + struct.pack(">I", j) + bytes([j == n - 1]),
                                plaintext[j * CHUNK:(j + 1) * CHUNK], aad) for j in range(n))
        assert data[entry.offset:entry.offset + entry.ciphertext_size] == expected, name


@pytest.mark.parametrize("flags", [4, 5, 7, 0x8000, 0x8003])
def test_unknown_flag_bits_refused(tmp_path: Path, keyset: dict[str, Path], flags: int) -> None:
    data = bytearray(write(tmp_path / "a.epk", keyset, SMALL))
    struct.pack_into("<H", data, 10, flags)
    with pytest.raises(ArtifactInvalid) as exc:
        artifact.parse_header(bytes(data))
    assert exc.value.reason == "layout"
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(data[:-64]), keyset), keyset)
    assert exc.value.reason == "layout"


@pytest.mark.parametrize("flags", [0, 1])
def test_resigned_mode_flip_refused(tmp_path: Path, keyset: dict[str, Path], flags: int) -> None:
    """An artifact re-labelled with the other mode's flag no longer parses: the section
    entries change size (48-byte wrapped keys), so the table no longer ends at header_len."""
    data = bytearray(write(tmp_path / "a.epk", keyset, SECTIONS, stable=flags == 0))
    struct.pack_into("<H", data, 10, flags | artifact.FLAG_BLOCK_SIGNATURE)
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(data[:-64]), keyset), keyset)
    assert exc.value.reason == "layout"


BLOCK = 1 << 20
# 3.5 MiB of section bytes: blocks 1 and 2 are whole blocks of ciphertext, block 3 is short.
MULTI_BLOCK = [("manifest", b"{}"), ("graph/big", bytes(range(251)) * (7 * BLOCK // 2 // 251))]


@pytest.fixture(scope="module")
def multi_block(tmp_path_factory: pytest.TempPathFactory, keyset: dict[str, Path]) -> bytes:
    return write(tmp_path_factory.mktemp("blocks") / "big.epk", keyset, MULTI_BLOCK,
                 chunk_size=65536)


def test_block_signature_is_over_the_block_digests(multi_block: bytes,
                                                  keyset: dict[str, Path]) -> None:
    """The documented message, computed here from the doc alone: the prefix with its NUL, the
    signed length (u64), the block size (u32), then SHA-256 of each 1 MiB block."""
    body, signature = multi_block[:-64], multi_block[-64:]
    assert artifact.parse_header(multi_block).block_signature
    blocks = [body[i:i + BLOCK] for i in range(0, len(body), BLOCK)]
    assert len(blocks) == 4 and len(blocks[-1]) < BLOCK
    message = (b"edgepack-epk-blocks-v1\x00" + struct.pack("<QI", len(body), BLOCK)
               + b"".join(hashlib.sha256(b).digest() for b in blocks))
    keys.load_publisher_public(keyset["publisher"]).verify(signature, message)
    assert crypto.block_signature_message(body) == message
    opened = open_with(multi_block, keyset)
    assert opened.sections == dict(MULTI_BLOCK)


@pytest.mark.parametrize("block", [True, False], ids=["blocks", "whole"])
def test_signature_of_one_mode_refused_in_the_other(tmp_path: Path, keyset: dict[str, Path],
                                                    block: bool) -> None:
    """The publisher's own signature, made over the other mode's message (the file's bytes, or
    the block message), is refused; so is flipping the mode bit under the signature."""
    data = write(tmp_path / "a.epk", keyset, SECTIONS, block=block)
    body = data[:-64]
    priv = keys.load_publisher_private(keyset["publisher"])
    other = priv.sign(body) if block else priv.sign(crypto.block_signature_message(body))
    flipped = bytearray(data)
    flipped[10] ^= artifact.FLAG_BLOCK_SIGNATURE
    for forged in (body + other, bytes(flipped)):
        with pytest.raises(ArtifactInvalid) as exc:
            open_with(forged, keyset)
        assert exc.value.reason == "signature"
    assert open_with(data, keyset).header.block_signature == block


def test_block_tampering_refused(multi_block: bytes, keyset: dict[str, Path]) -> None:
    """A flipped byte in any block, two blocks swapped: signature; cut short: layout."""
    body = multi_block[:-64]
    cases = {}
    start = artifact.parse_header(multi_block).header_len  # block 0, past the header
    for at in (start, BLOCK + 5, 2 * BLOCK - 1, 2 * BLOCK, len(body) - 1):
        flipped = bytearray(multi_block)
        flipped[at] ^= 0x01
        cases[f"flip{at}"] = (bytes(flipped), "signature")
    swapped = body[:BLOCK] + body[2 * BLOCK:3 * BLOCK] + body[BLOCK:2 * BLOCK] + body[3 * BLOCK:]
    assert swapped != body
    cases["swap"] = (swapped + multi_block[-64:], "signature")
    cases["cut_block"] = (body[:3 * BLOCK] + multi_block[-64:], "layout")
    cases["cut_byte"] = (multi_block[:-1], "layout")
    for name, (data, reason) in cases.items():
        with pytest.raises(ArtifactInvalid) as exc:
            open_with(data, keyset)
        assert exc.value.reason == reason, name


def test_format_table_h_is_generated_from_the_python_constants() -> None:
    from edgepack.artifact.format_header import HEADER_PATH, render_header

    repo = Path(__file__).resolve().parents[2]
    text = render_header()
    assert (repo / HEADER_PATH).read_text(encoding="utf-8") == text, (
        "format_table.h is stale: run python -m edgepack.artifact.format_header --write")
    assert "kFlagBlockSignature = 0x0002;" in text and "kSignatureBlockSize = 1048576;" in text


SMALL = [("manifest", b"{}"), ("graph/x", b"abc" * 20)]


def test_every_byte_flip_refused_by_verify_and_unpack(
    tmp_path: Path, keyset: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data = write(tmp_path / "small.epk", keyset, SMALL)
    bad = tmp_path / "bad.epk"
    out = tmp_path / "out"
    for offset in range(len(data)):
        mutated = bytearray(data)
        mutated[offset] ^= 0x01
        bad.write_bytes(bytes(mutated))
        rc_verify = main(["verify", str(bad), "--publisher", str(keyset["publisher"])])
        rc_unpack = main(["unpack", str(bad), "--key", str(keyset["dev1"]),
                          "--publisher", str(keyset["publisher"]), "--out", str(out)])
        err = capsys.readouterr().err
        assert rc_verify == ArtifactInvalid.exit_code, offset
        assert rc_unpack == ArtifactInvalid.exit_code, offset
        assert err.count("edgepack: error: artifact invalid\n") == 2, (offset, err)
        assert not out.exists()


def test_truncation_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    h = artifact.parse_header(data)
    for length in (0, 7, 8, 40, h.header_len - 1, h.header_len, len(data) - 65, len(data) - 64,
                   len(data) - 1):
        with pytest.raises(ArtifactInvalid):
            open_with(data[:length], keyset)


def _section_chunks(data: bytes, entry: artifact.SectionEntry) -> list[bytes]:
    body = data[entry.offset: entry.offset + entry.ciphertext_size]
    step = CHUNK + crypto.TAG_SIZE
    return [body[i:i + step] for i in range(0, len(body), step)]


@STABLE_MODES
def test_resigned_chunk_reorder_refused(tmp_path: Path, keyset: dict[str, Path],
                                        stable: bool) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS, stable=stable)
    entry = artifact.parse_header(data).section("graph/a")
    c0, c1, c2 = _section_chunks(data, entry)
    body = data[:-64]
    swapped = body[:entry.offset] + c1 + c0 + c2 + body[entry.offset + entry.ciphertext_size:]
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(swapped, keyset), keyset)
    assert exc.value.reason == "chunk"


@STABLE_MODES
def test_resigned_section_swap_refused(tmp_path: Path, keyset: dict[str, Path],
                                       stable: bool) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS, stable=stable)
    h = artifact.parse_header(data)
    a, b = h.section("graph/a"), h.section("graph/b")
    assert a.ciphertext_size == b.ciphertext_size
    body = bytearray(data[:-64])
    ca = bytes(body[a.offset:a.offset + a.ciphertext_size])
    cb = bytes(body[b.offset:b.offset + b.ciphertext_size])
    body[a.offset:a.offset + a.ciphertext_size] = cb
    body[b.offset:b.offset + b.ciphertext_size] = ca
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(body), keyset), keyset)
    assert exc.value.reason == "chunk"


@STABLE_MODES
def test_resigned_header_change_breaks_every_chunk(tmp_path: Path, keyset: dict[str, Path],
                                                   stable: bool) -> None:
    """Raising the version_counter in the header (and re-signing) must not yield plaintext:
    with flags 0 every chunk's AAD is the header digest; with stable sections every wrapped
    key's AAD is the digest of the header before the section table, so unwrapping fails."""
    data = write(tmp_path / "a.epk", keyset, SECTIONS, stable=stable)
    h = artifact.parse_header(data)
    name_len = len(h.package_name.encode()) + len(h.package_version.encode())
    counter_at = 16 + 2 + 2 + name_len
    body = bytearray(data[:-64])
    assert struct.unpack_from("<Q", body, counter_at)[0] == 7
    struct.pack_into("<Q", body, counter_at, 99)
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(body), keyset), keyset)
    assert exc.value.reason == ("unseal" if stable else "chunk")


@STABLE_MODES
def test_resigned_dropped_last_chunk_refused(tmp_path: Path, keyset: dict[str, Path],
                                             stable: bool) -> None:
    """Cut graph/a to two chunks and rewrite the header to match: the chunk now last was
    sealed without the last-chunk flag, so it fails."""
    sections = [("manifest", b"{}"), ("graph/a", bytes(range(256)) * 9)]
    data = write(tmp_path / "a.epk", keyset, sections, stable=stable)
    h = artifact.parse_header(data)
    entry = h.section("graph/a")
    chunks = _section_chunks(data, entry)
    body = bytearray(data[:h.header_len])
    # the sizes of graph/a's entry: 24 bytes at the end of the header, before its wrapped key
    struct.pack_into("<QQQ", body, h.header_len - 24 - len(entry.wrapped_key), 2 * CHUNK,
                     entry.offset,
                     2 * (CHUNK + crypto.TAG_SIZE))
    forged = bytes(body) + data[h.header_len:entry.offset] + chunks[0] + chunks[1]
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(forged, keyset), keyset)
    assert exc.value.reason == "chunk"


def _entry_at(h: artifact.Header, name: str) -> int:
    """Byte offset of a section entry in the header."""
    pos = h.table_offset
    for s in h.sections:
        if s.name == name:
            return pos
        pos += 2 + len(s.name.encode()) + 24 + len(s.wrapped_key)
    raise KeyError(name)


def _wrapped_at(h: artifact.Header, name: str) -> int:
    return _entry_at(h, name) + 2 + len(name.encode()) + 24


def test_resigned_wrapped_key_flip_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    h = artifact.parse_header(data)
    for name in ("manifest", "graph/b"):
        for byte in (0, 31, 47):  # key, key, tag
            body = bytearray(data[:-64])
            body[_wrapped_at(h, name) + byte] ^= 0x80
            with pytest.raises(ArtifactInvalid) as exc:
                open_with(resign(bytes(body), keyset), keyset)
            assert exc.value.reason == "unseal", (name, byte)


def test_resigned_wrapped_keys_swapped_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    """graph/a's wrapped key in graph/b's entry: the AAD (name) and nonce (index) differ."""
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    h = artifact.parse_header(data)
    a, b = _wrapped_at(h, "graph/a"), _wrapped_at(h, "graph/b")
    body = bytearray(data[:-64])
    body[a:a + 48], body[b:b + 48] = data[b:b + 48], data[a:a + 48]
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(body), keyset), keyset)
    assert exc.value.reason == "unseal"


def test_resigned_sections_reordered_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    """Whole sections moved (entry with its name and wrapped key, and the ciphertext): the
    wrap nonce is the table index, so a moved key no longer opens."""
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    h = artifact.parse_header(data)
    ea, eb = _entry_at(h, "graph/a"), _entry_at(h, "graph/b")
    size = 2 + len(b"graph/a") + 24 + 48
    a, b = h.section("graph/a"), h.section("graph/b")
    body = bytearray(data[:-64])
    # names and wrapped keys trade places; offsets and sizes are equal, so stay
    for src, dst in ((ea, eb), (eb, ea)):
        body[dst:dst + 9] = data[src:src + 9]
        body[dst + 33:dst + size] = data[src + 33:src + size]
    body[a.offset:a.offset + a.ciphertext_size] = data[b.offset:b.offset + b.ciphertext_size]
    body[b.offset:b.offset + b.ciphertext_size] = data[a.offset:a.offset + a.ciphertext_size]
    moved = artifact.parse_header(resign(bytes(body), keyset))
    assert [s.name for s in moved.sections][1:3] == ["graph/b", "graph/a"]
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(body), keyset), keyset)
    assert exc.value.reason == "unseal"


def test_resigned_section_renamed_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    h = artifact.parse_header(data)
    body = bytearray(data[:-64])
    at = _entry_at(h, "graph/a") + 2
    assert body[at:at + 7] == b"graph/a"
    body[at:at + 7] = b"graph/c"
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(body), keyset), keyset)
    assert exc.value.reason == "unseal"


def test_resigned_old_release_section_replayed_refused(tmp_path: Path,
                                                       keyset: dict[str, Path]) -> None:
    """Release 2 changed graph/a (same size). Release 1's ciphertext of graph/a under release
    2's header fails its chunks (the wrapped key is the new content's); release 1's wrapped
    key as well fails to unwrap (another release's content key and header)."""
    r1 = write(tmp_path / "r1.epk", keyset, SECTIONS, counter=7)
    changed = [SECTIONS[0], ("graph/a", bytes(range(255, -1, -1)) * 9), *SECTIONS[2:]]
    r2 = write(tmp_path / "r2.epk", keyset, changed, counter=8)
    h1, h2 = artifact.parse_header(r1), artifact.parse_header(r2)
    e1, e2 = h1.section("graph/a"), h2.section("graph/a")
    old_ct = r1[e1.offset:e1.offset + e1.ciphertext_size]
    body = bytearray(r2[:-64])
    body[e2.offset:e2.offset + e2.ciphertext_size] = old_ct
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(body), keyset), keyset)
    assert exc.value.reason == "chunk"
    w1, w2 = _wrapped_at(h1, "graph/a"), _wrapped_at(h2, "graph/a")
    body[w2:w2 + 48] = r1[w1:w1 + 48]
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(body), keyset), keyset)
    assert exc.value.reason == "unseal"


# Written by the packer before stable sections existed (commit 86fc332), with the fixed keys
# below: the flags-0 format must keep opening, independently of today's writer.
OLD_ARTIFACT = Path(__file__).resolve().parents[1] / "data" / "artifacts" / "flags0-v1.epk"
OLD_PUBLISHER_SEED = b"\x42" * 32
OLD_DEVICE_RAW = bytes(range(1, 33))
OLD_SECTIONS = {"manifest": b'{"schema":"edgepack.manifest/1"}',
                "graph/a": bytes(range(256)) * 9, "empty": b""}


def test_artifact_from_before_stable_sections_opens() -> None:
    data = OLD_ARTIFACT.read_bytes()
    opened = artifact.open_artifact(
        data, X25519PrivateKey.from_private_bytes(OLD_DEVICE_RAW),
        Ed25519PrivateKey.from_private_bytes(OLD_PUBLISHER_SEED).public_key(), min_counter=3)
    assert opened.header.flags == 0 and not opened.header.stable_sections
    assert opened.sections == OLD_SECTIONS


def test_other_publisher_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS, publisher="other_publisher")
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(data, keyset)
    assert exc.value.reason == "signature"
    rc = main(["verify", str(tmp_path / "a.epk"), "--publisher", str(keyset["publisher"])])
    assert rc == ArtifactInvalid.exit_code


def test_header_publisher_must_match_signer(tmp_path: Path, keyset: dict[str, Path]) -> None:
    """A header naming publisher A but signed by B (the verifier's key) is refused."""
    data = write(tmp_path / "a.epk", keyset, SMALL, publisher="other_publisher")
    other = keys.load_publisher_private(keyset["other_publisher"])
    mine = keys.load_publisher_private(keyset["publisher"])
    assert crypto.raw_public(other.public_key()) in data
    resigned = data[:-64] + artifact.sign_body(mine, data[:-64])
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resigned, keyset)
    assert exc.value.reason == "publisher"


def test_non_recipient_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(data, keyset, dev="stranger")
    assert exc.value.reason == "not_recipient"


def test_stanza_with_wrong_key_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    """A stranger who copies dev1's key_id into the header still cannot unseal."""
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    stranger = keys.load_device_private(keyset["stranger"])
    dev1_id = crypto.key_id(keys.load_device_public(keyset["dev1"]))
    body = data[:-64].replace(dev1_id, crypto.key_id(stranger.public_key()), 1)
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(body, keyset), keyset, dev="stranger")
    assert exc.value.reason == "unseal"


def test_rollback_counter(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS, counter=7)
    assert open_with(data, keyset, min_counter=7).header.version_counter == 7
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(data, keyset, min_counter=8)
    assert exc.value.reason == "counter"


def test_write_is_atomic(tmp_path: Path, keyset: dict[str, Path]) -> None:
    target = tmp_path / "a.epk"
    write(target, keyset, SECTIONS)
    before = target.read_bytes()
    with pytest.raises(ValueError):
        artifact.write_artifact(
            target, package_name="demo", package_version="1", version_counter=1,
            publisher=Ed25519PrivateKey.generate(),
            recipients=[X25519PrivateKey.generate().public_key()],
            sections=[("not-manifest", b"")])
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.epk"]


@pytest.mark.parametrize("names", [["zz", "zz/sub"], ["a/b", "a"], ["x/manifest.json", "x"]])
def test_unpack_refuses_section_names_that_collide_as_paths(
        tmp_path: Path, keyset: dict[str, Path], capsys: pytest.CaptureFixture[str],
        names: list[str]) -> None:
    """A section that is also another section's folder cannot be unpacked: one opaque error,
    nothing written (a crafted, validly signed artifact once ended in a traceback here)."""
    manifest_json = json.dumps({"schema": "edgepack.manifest/1"}).encode()
    epk = tmp_path / "collide.epk"
    write(epk, keyset, [("manifest", manifest_json)] + [(n, b"x") for n in names])
    out = tmp_path / "out"
    with pytest.raises(ArtifactInvalid):
        _section_paths_of(epk, keyset)
    rc = main(["unpack", str(epk), "--key", str(keyset["dev1"]),
               "--publisher", str(keyset["publisher"]), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == ArtifactInvalid.exit_code, err
    assert err.startswith("edgepack: error:") and "Traceback" not in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["collide.epk"]


def _section_paths_of(epk: Path, keyset: dict[str, Path]) -> dict[str, str]:
    from edgepack.artifact.inspection import _section_paths

    return _section_paths(list(open_with(epk.read_bytes(), keyset).sections))


@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_special_files_are_refused_not_read(tmp_path: Path, keyset: dict[str, Path],
                                            capsys: pytest.CaptureFixture[str],
                                            command: str) -> None:
    args = [command, "/dev/zero"] + (["--publisher", str(keyset["publisher"])]
                                     if command == "verify" else [])
    assert main(args) == UsageError.exit_code
    assert "edgepack: error: /dev/zero: not a regular file" in capsys.readouterr().err
