# SPDX-License-Identifier: Apache-2.0
"""The .epk container: round trip, and every way of tampering with one is refused.

Attacks that change signed bytes are caught by the signature alone. To show that the
encryption layer stands on its own (chunk counter, last-chunk flag, AAD, per-section keys),
several cases re-sign the tampered bytes with the real publisher key and expect the decryption
step to refuse them.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

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


def write(path: Path, keyset: dict[str, Path], sections: list[tuple[str, bytes]],
          counter: int = 7, publisher: str = "publisher") -> bytes:
    artifact.write_artifact(
        path,
        package_name="demo",
        package_version="1.0.0",
        version_counter=counter,
        publisher=keys.load_publisher_private(keyset[publisher]),
        recipients=[keys.load_device_public(keyset["dev1"]),
                    keys.load_device_public(keyset["dev2"])],
        sections=sections,
        chunk_size=CHUNK,
    )
    return path.read_bytes()


def open_with(data: bytes, keyset: dict[str, Path], dev: str = "dev1",
              min_counter: int = 0) -> artifact.OpenedArtifact:
    return artifact.open_artifact(
        data, keys.load_device_private(keyset[dev]),
        keys.load_publisher_public(keyset["publisher"]), min_counter=min_counter)


def resign(body: bytes, keyset: dict[str, Path]) -> bytes:
    priv = keys.load_publisher_private(keyset["publisher"])
    return body + priv.sign(body)


SECTIONS = [
    ("manifest", b'{"schema":"test"}'),
    ("graph/a", bytes(range(256)) * 9),  # 2304 bytes: 3 chunks
    ("graph/b", b"\x5a" * 2304),          # same size as graph/a, for swapping
    ("empty", b""),
]


def test_round_trip_each_recipient(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    for dev in ("dev1", "dev2"):
        opened = open_with(data, keyset, dev)
        assert opened.sections == dict(SECTIONS)
        assert opened.header.package_name == "demo"
        assert opened.header.version_counter == 7


def test_layout_matches_doc(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    assert data[:8] == b"\x89EPK\r\n\x1a\n"
    version, flags, header_len = struct.unpack_from("<HHI", data, 8)
    assert (version, flags) == (1, 0)
    h = artifact.parse_header(data)
    assert h.header_len == header_len
    assert h.sections[0].offset == header_len
    assert [s.ciphertext_size for s in h.sections] == [17 + 16, 2304 + 3 * 16, 2304 + 48, 16]
    assert h.sections[-1].offset + h.sections[-1].ciphertext_size == len(data) - 64
    pub = keys.load_device_public(keyset["dev1"])
    assert h.recipients[0].key_id == hashlib.sha256(crypto.raw_public(pub)).digest()


def test_ciphertext_differs_plaintext_does_not(tmp_path: Path, keyset: dict[str, Path]) -> None:
    a = write(tmp_path / "a.epk", keyset, SECTIONS)
    b = write(tmp_path / "b.epk", keyset, SECTIONS)
    assert a != b  # fresh content key and HPKE ephemeral keys each time
    assert open_with(a, keyset).sections == open_with(b, keyset).sections


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


def test_resigned_chunk_reorder_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    entry = artifact.parse_header(data).section("graph/a")
    c0, c1, c2 = _section_chunks(data, entry)
    body = data[:-64]
    swapped = body[:entry.offset] + c1 + c0 + c2 + body[entry.offset + entry.ciphertext_size:]
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(swapped, keyset), keyset)
    assert exc.value.reason == "chunk"


def test_resigned_section_swap_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
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


def test_resigned_header_change_breaks_every_chunk(tmp_path: Path, keyset: dict[str, Path]) -> None:
    """Raising the version_counter in the header (and re-signing) must not yield plaintext:
    every chunk's AAD is the header digest."""
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    h = artifact.parse_header(data)
    name_len = len(h.package_name.encode()) + len(h.package_version.encode())
    counter_at = 16 + 2 + 2 + name_len
    body = bytearray(data[:-64])
    assert struct.unpack_from("<Q", body, counter_at)[0] == 7
    struct.pack_into("<Q", body, counter_at, 99)
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(bytes(body), keyset), keyset)
    assert exc.value.reason == "chunk"


def test_resigned_dropped_last_chunk_refused(tmp_path: Path, keyset: dict[str, Path]) -> None:
    """Cut graph/a to two chunks and rewrite the header to match: the chunk now last was
    sealed without the last-chunk flag, so it fails."""
    sections = [("manifest", b"{}"), ("graph/a", bytes(range(256)) * 9)]
    data = write(tmp_path / "a.epk", keyset, sections)
    h = artifact.parse_header(data)
    entry = h.section("graph/a")
    chunks = _section_chunks(data, entry)
    body = bytearray(data[:h.header_len])
    # the section entry for graph/a is the last 24 bytes of the header
    struct.pack_into("<QQQ", body, h.header_len - 24, 2 * CHUNK, entry.offset,
                     2 * (CHUNK + crypto.TAG_SIZE))
    forged = bytes(body) + data[h.header_len:entry.offset] + chunks[0] + chunks[1]
    with pytest.raises(ArtifactInvalid) as exc:
        open_with(resign(forged, keyset), keyset)
    assert exc.value.reason == "chunk"


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
    resigned = data[:-64] + mine.sign(data[:-64])
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
