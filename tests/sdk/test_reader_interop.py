# SPDX-License-Identifier: Apache-2.0
"""Artifacts written by the Python packager open in the C++ reader, and every tampered artifact
is refused there with the same reason code the Python reader gives.

The C++ side is the `epk_check` driver (sdk_templates/tests/artifact), which opens many files in
one process and prints one line per file, so hundreds of cases stay fast. Both section modes
are covered: stable sections (header flag bit 0, the writer's default) and flags 0, and both
signature modes: over the file's 1 MiB block digests (flag bit 1, the default) and over its
bytes."""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sdk_host import SdkBuild, make_keyset, pub, run

from edgepack.artifact import container as artifact
from edgepack.artifact import crypto, keys
from edgepack.errors import ArtifactInvalid

CHUNK = 1024
SECTIONS = [
    ("manifest", b'{"schema":"edgepack.manifest/1"}'),
    ("graph/a", bytes(range(256)) * 9),  # 2304 bytes: 3 chunks
    ("graph/b", b"\x5a" * 2304),          # same size as graph/a, for swapping
    ("empty", b""),
]
SMALL = [("manifest", b"{}"), ("graph/x", b"abc" * 20)]


@pytest.fixture(scope="module")
def keyset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_keyset(tmp_path_factory.mktemp("keys"))


STABLE_MODES = pytest.mark.parametrize("stable", [True, False], ids=["stable", "flags0"])
# (stable sections, block-hash signature): the flags 3 (the default), 2, 1 and 0.
MODES = pytest.mark.parametrize(("stable", "block"),
                                [(True, True), (False, True), (True, False), (False, False)],
                                ids=["flags3", "flags2", "flags1", "flags0"])
BLOCK = 1 << 20


def write(path: Path, keyset: dict[str, Path], sections: list[tuple[str, bytes]],
          publisher: str = "publisher", counter: int = 7, stable: bool = True,
          block: bool = True, chunk_size: int = CHUNK) -> bytes:
    artifact.write_artifact(
        path, package_name="demo", package_version="1.0", version_counter=counter,
        publisher=keys.load_publisher_private(keyset[publisher]),
        recipients=[keys.load_device_public(pub(keyset[d])) for d in ("dev1", "dev2")],
        sections=sections, chunk_size=chunk_size, stable_sections=stable,
        block_signature=block)
    return path.read_bytes()


def resign(body: bytes, keyset: dict[str, Path]) -> bytes:
    """``body`` signed again by the real publisher, in the mode its header's flags name."""
    return body + artifact.sign_body(keys.load_publisher_private(keyset["publisher"]), body)


def check(sdk: SdkBuild, files: list[Path], keyset: dict[str, Path], dev: str = "dev1",
          *extra: str) -> dict[str, list[str]]:
    """Runs epk_check over `files`; returns {file name: [status, detail...]}."""
    out = run([sdk.epk_check, "--key", keyset[dev], "--publisher", pub(keyset["publisher"]),
               *extra, *files]).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert len(rows) == len(files), out
    return {Path(r[0]).name: r[1:] for r in rows}


def python_reason(data: bytes, keyset: dict[str, Path], dev: str = "dev1",
                  min_counter: int = 0) -> str:
    with pytest.raises(ArtifactInvalid) as exc:
        artifact.open_artifact(data, keys.load_device_private(keyset[dev]),
                               keys.load_publisher_public(pub(keyset["publisher"])),
                               min_counter=min_counter)
    return exc.value.reason


def digests(sections: list[tuple[str, bytes]]) -> str:
    return ",".join(f"{n}={hashlib.sha256(b).hexdigest()}" for n, b in sections)


@STABLE_MODES
def test_round_trip_each_recipient_file_memory_and_raw_key(
        sdk_host: SdkBuild, keyset: dict[str, Path], tmp_path: Path, stable: bool) -> None:
    path = tmp_path / "a.epk"
    write(path, keyset, SECTIONS, stable=stable)
    for dev in ("dev1", "dev2"):
        for mode in ((), ("--memory",)):
            assert check(sdk_host, [path], keyset, dev, *mode)["a.epk"] == ["ok", digests(SECTIONS)]
    # The device key as the raw 32 bytes an app may hold instead of a PEM file.
    raw = tmp_path / "dev2.raw"
    raw.write_bytes(keys.load_device_private(keyset["dev2"]).private_bytes_raw())
    out = run([sdk_host.epk_check, "--raw-key", raw, "--publisher", pub(keyset["publisher"]),
               path]).stdout
    assert out.split("\t")[1:] == ["ok", digests(SECTIONS) + "\n"]


@STABLE_MODES
def test_large_sections_with_default_chunks(sdk_host: SdkBuild, keyset: dict[str, Path],
                                            tmp_path: Path, stable: bool) -> None:
    sections = [("manifest", b"{}"), ("graph/big", bytes(range(251)) * 2000),
                ("graph/exact", b"\x01" * 65536)]
    path = tmp_path / "big.epk"
    artifact.write_artifact(
        path, package_name="big", package_version="2", version_counter=1,
        publisher=keys.load_publisher_private(keyset["publisher"]),
        recipients=[keys.load_device_public(pub(keyset["dev1"]))], sections=sections,
        stable_sections=stable)
    assert check(sdk_host, [path], keyset)["big.epk"] == ["ok", digests(sections)]


def test_stable_releases_share_ciphertext_and_both_open(
        sdk_host: SdkBuild, keyset: dict[str, Path], tmp_path: Path) -> None:
    """Two releases where only graph/a changed: graph/b's ciphertext bytes are equal in both
    files (at other offsets: a section was added before it), and the C++ reader opens both."""
    r1 = write(tmp_path / "r1.epk", keyset, SECTIONS, counter=7)
    changed = [SECTIONS[0], ("graph/new", b"n" * 5000), ("graph/a", b"\x01" * 2304),
               *SECTIONS[2:]]
    r2 = write(tmp_path / "r2.epk", keyset, changed, counter=8)
    h1, h2 = artifact.parse_header(r1), artifact.parse_header(r2)
    b1, b2 = h1.section("graph/b"), h2.section("graph/b")
    assert b1.offset != b2.offset
    assert r1[b1.offset:b1.offset + b1.ciphertext_size] == \
        r2[b2.offset:b2.offset + b2.ciphertext_size]
    a1, a2 = h1.section("graph/a"), h2.section("graph/a")
    assert r1[a1.offset:a1.offset + a1.ciphertext_size] != \
        r2[a2.offset:a2.offset + a2.ciphertext_size]
    got = check(sdk_host, [tmp_path / "r1.epk", tmp_path / "r2.epk"], keyset)
    assert got == {"r1.epk": ["ok", digests(SECTIONS)], "r2.epk": ["ok", digests(changed)]}


def test_every_byte_flip_refused(sdk_host: SdkBuild, keyset: dict[str, Path],
                                 tmp_path: Path) -> None:
    data = write(tmp_path / "small.epk", keyset, SMALL)
    files = []
    for offset in range(len(data)):
        mutated = bytearray(data)
        mutated[offset] ^= 0x01
        f = tmp_path / f"flip{offset:05d}.epk"
        f.write_bytes(bytes(mutated))
        files.append(f)
    results = check(sdk_host, files, keyset)
    bad = {name: r for name, r in results.items() if r[0] != "invalid"}
    assert not bad, bad
    # A flip in the signed part fails the signature; in the signature itself too.
    assert {r[1] for r in results.values()} <= {"layout", "signature"}


def test_truncation_refused(sdk_host: SdkBuild, keyset: dict[str, Path], tmp_path: Path) -> None:
    data = write(tmp_path / "a.epk", keyset, SECTIONS)
    h = artifact.parse_header(data)
    files = []
    for length in (0, 7, 8, 40, h.header_len - 1, h.header_len, len(data) - 65, len(data) - 64,
                   len(data) - 1):
        f = tmp_path / f"cut{length:06d}.epk"
        f.write_bytes(data[:length])
        files.append(f)
    for name, r in check(sdk_host, files, keyset).items():
        assert r[0] == "invalid", (name, r)


def test_artifact_from_before_stable_sections_opens(sdk_host: SdkBuild,
                                                   tmp_path: Path) -> None:
    """tests/data/artifacts/flags0-v1.epk, written before stable sections (commit 86fc332)
    with fixed keys (the seeds of tests/unit/test_artifact.py)."""
    old = Path(__file__).resolve().parents[1] / "data" / "artifacts" / "flags0-v1.epk"
    raw = tmp_path / "dev.raw"
    raw.write_bytes(bytes(range(1, 33)))
    publisher = tmp_path / "publisher.pub"
    publisher.write_bytes(Ed25519PrivateKey.from_private_bytes(b"\x42" * 32).public_key()
                          .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    out = run([sdk_host.epk_check, "--raw-key", raw, "--publisher", publisher,
               "--min-counter", "3", old]).stdout
    sections = [("manifest", b'{"schema":"edgepack.manifest/1"}'),
                ("graph/a", bytes(range(256)) * 9), ("empty", b"")]
    assert out.split("\t")[1:] == ["ok", digests(sections) + "\n"]


def _chunks(data: bytes, entry: artifact.SectionEntry) -> list[bytes]:
    body = data[entry.offset: entry.offset + entry.ciphertext_size]
    step = CHUNK + crypto.TAG_SIZE
    return [body[i:i + step] for i in range(0, len(body), step)]


def _wrapped_at(h: artifact.Header, name: str) -> int:
    """Byte offset of a section's wrapped key (stable sections) in the header."""
    pos = h.table_offset
    for s in h.sections:
        pos += 2 + len(s.name.encode()) + 24
        if s.name == name:
            return pos
        pos += len(s.wrapped_key)
    raise KeyError(name)


def _forgeries(keyset: dict[str, Path], tmp_path: Path, stable: bool,
               block: bool) -> dict[str, tuple[bytes, str, int]]:
    """name -> (bytes, device key name, min counter): every re-signed tamper case."""
    data = write(tmp_path / "base.epk", keyset, SECTIONS, stable=stable, block=block)
    h = artifact.parse_header(data)
    cases: dict[str, tuple[bytes, str, int]] = {}

    a, b = h.section("graph/a"), h.section("graph/b")
    c0, c1, c2 = _chunks(data, a)
    body = data[:-64]
    cases["reorder"] = (resign(body[:a.offset] + c1 + c0 + c2 +
                               body[a.offset + a.ciphertext_size:], keyset), "dev1", 0)

    swapped = bytearray(body)
    ca, cb = bytes(swapped[a.offset:a.offset + a.ciphertext_size]), \
        bytes(swapped[b.offset:b.offset + b.ciphertext_size])
    swapped[a.offset:a.offset + a.ciphertext_size] = cb
    swapped[b.offset:b.offset + b.ciphertext_size] = ca
    cases["swap"] = (resign(bytes(swapped), keyset), "dev1", 0)

    counter_at = 16 + 2 + 2 + len(h.package_name.encode()) + len(h.package_version.encode())
    raised = bytearray(body)
    struct.pack_into("<Q", raised, counter_at, 99)
    cases["header_change"] = (resign(bytes(raised), keyset), "dev1", 0)

    two = [("manifest", b"{}"), ("graph/a", bytes(range(256)) * 9)]
    d2 = write(tmp_path / "two.epk", keyset, two, stable=stable, block=block)
    h2 = artifact.parse_header(d2)
    e2 = h2.section("graph/a")
    k = _chunks(d2, e2)
    hdr = bytearray(d2[:h2.header_len])
    struct.pack_into("<QQQ", hdr, h2.header_len - 24 - len(e2.wrapped_key), 2 * CHUNK,
                     e2.offset, 2 * (CHUNK + crypto.TAG_SIZE))
    cases["drop_last_chunk"] = (resign(bytes(hdr) + d2[h2.header_len:e2.offset] + k[0] + k[1],
                                       keyset), "dev1", 0)

    cases["other_publisher"] = (write(tmp_path / "o.epk", keyset, SECTIONS, "other_publisher",
                                      stable=stable, block=block), "dev1", 0)
    other = write(tmp_path / "o2.epk", keyset, SMALL, "other_publisher", stable=stable,
                  block=block)
    cases["header_publisher"] = (resign(other[:-64], keyset), "dev1", 0)
    cases["non_recipient"] = (data, "stranger", 0)
    stranger = keys.load_device_private(keyset["stranger"])
    dev1_id = crypto.key_id(keys.load_device_public(pub(keyset["dev1"])))
    cases["stanza_wrong_key"] = (
        resign(body.replace(dev1_id, crypto.key_id(stranger.public_key()), 1), keyset),
        "stranger", 0)
    cases["counter"] = (data, "dev1", 8)
    flag = bytearray(body)
    struct.pack_into("<H", flag, 10, 4)  # an unknown flag bit
    cases["unknown_flag"] = (resign(bytes(flag), keyset), "dev1", 0)
    block_bit = artifact.FLAG_BLOCK_SIGNATURE if block else 0
    struct.pack_into("<H", flag, 10, (0 if stable else 1) | block_bit)  # the other layout
    cases["mode_flip"] = (resign(bytes(flag), keyset), "dev1", 0)
    # The signature mode: the bit flipped under the real signature, and the publisher's own
    # signature over the other mode's message.
    flag = bytearray(data)
    flag[10] ^= artifact.FLAG_BLOCK_SIGNATURE
    cases["signature_mode_flip"] = (bytes(flag), "dev1", 0)
    priv = keys.load_publisher_private(keyset["publisher"])
    other_message = body if block else crypto.block_signature_message(body)
    cases["other_mode_signature"] = (body + priv.sign(other_message), "dev1", 0)
    if not stable:
        return cases

    wa, wb = _wrapped_at(h, "graph/a"), _wrapped_at(h, "graph/b")
    flipped = bytearray(body)
    flipped[wa + 5] ^= 0x01
    cases["wrapped_flip"] = (resign(bytes(flipped), keyset), "dev1", 0)
    traded = bytearray(body)
    traded[wa:wa + 48], traded[wb:wb + 48] = body[wb:wb + 48], body[wa:wa + 48]
    cases["wrapped_swap"] = (resign(bytes(traded), keyset), "dev1", 0)
    renamed = bytearray(body)
    at = wa - 24 - 7
    assert renamed[at:at + 7] == b"graph/a"
    renamed[at:at + 7] = b"graph/c"
    cases["renamed"] = (resign(bytes(renamed), keyset), "dev1", 0)
    # release 1's graph/a (ciphertext, then also its wrapped key) under release 2's header
    r2 = write(tmp_path / "r2.epk", keyset,
               [SECTIONS[0], ("graph/a", b"\x07" * 2304), *SECTIONS[2:]], counter=8,
               block=block)
    h_r2 = artifact.parse_header(r2)
    e_r2 = h_r2.section("graph/a")
    replay = bytearray(r2[:-64])
    replay[e_r2.offset:e_r2.offset + e_r2.ciphertext_size] = \
        data[a.offset:a.offset + a.ciphertext_size]
    cases["replay_ciphertext"] = (resign(bytes(replay), keyset), "dev1", 0)
    w_r2 = _wrapped_at(h_r2, "graph/a")
    replay[w_r2:w_r2 + 48] = body[wa:wa + 48]
    cases["replay_wrapped_key"] = (resign(bytes(replay), keyset), "dev1", 0)
    return cases


@MODES
def test_resigned_tampering_refused_with_python_reason(
        sdk_host: SdkBuild, keyset: dict[str, Path], tmp_path: Path, stable: bool,
        block: bool) -> None:
    cases = _forgeries(keyset, tmp_path, stable, block)
    # With stable sections a changed header fails the wrapped keys' AAD (unseal); with flags 0
    # every chunk's AAD, the header digest (chunk).
    expected = {"reorder": "chunk", "swap": "chunk",
                "header_change": "unseal" if stable else "chunk",
                "drop_last_chunk": "chunk", "other_publisher": "signature",
                "header_publisher": "publisher", "non_recipient": "not_recipient",
                "stanza_wrong_key": "unseal", "counter": "counter", "unknown_flag": "layout",
                "mode_flip": "layout", "signature_mode_flip": "signature",
                "other_mode_signature": "signature"}
    if stable:
        expected |= {"wrapped_flip": "unseal", "wrapped_swap": "unseal", "renamed": "unseal",
                     "replay_ciphertext": "chunk", "replay_wrapped_key": "unseal"}
    assert set(cases) == set(expected)
    for name, (data, dev, min_counter) in cases.items():
        f = tmp_path / f"{name}.epk"
        f.write_bytes(data)
        cpp = check(sdk_host, [f], keyset, dev, "--min-counter", str(min_counter))[f.name]
        assert cpp == ["invalid", expected[name]], (name, cpp)
        assert python_reason(data, keyset, dev, min_counter) == expected[name], name


@pytest.fixture(scope="module")
def multi_block(tmp_path_factory: pytest.TempPathFactory, keyset: dict[str, Path]) -> bytes:
    """3.5 MiB of section bytes: blocks 1 and 2 are whole blocks of ciphertext, 3 is short."""
    sections = [("manifest", b"{}"), ("graph/big", bytes(range(251)) * (7 * BLOCK // 2 // 251))]
    return write(tmp_path_factory.mktemp("blocks") / "big.epk", keyset, sections,
                 chunk_size=65536)


def test_block_tampering_refused_with_python_reason(
        sdk_host: SdkBuild, keyset: dict[str, Path], tmp_path: Path, multi_block: bytes) -> None:
    """A block-signed artifact of several blocks opens, from a file and from memory; a flipped
    byte in any block or two blocks swapped fail the signature, a cut one the layout."""
    body = multi_block[:-64]
    start = artifact.parse_header(multi_block).header_len
    cases = {"intact": (multi_block, "ok")}
    for at in (start, BLOCK + 5, 2 * BLOCK - 1, 2 * BLOCK, len(body) - 1):
        flipped = bytearray(multi_block)
        flipped[at] ^= 0x01
        cases[f"flip{at}"] = (bytes(flipped), "signature")
    swapped = body[:BLOCK] + body[2 * BLOCK:3 * BLOCK] + body[BLOCK:2 * BLOCK] + body[3 * BLOCK:]
    cases["swap"] = (swapped + multi_block[-64:], "signature")
    cases["cut_block"] = (body[:3 * BLOCK] + multi_block[-64:], "layout")
    files = []
    for name, (data, _) in cases.items():
        (tmp_path / f"{name}.epk").write_bytes(data)
        files.append(tmp_path / f"{name}.epk")
    for mode in ((), ("--memory",)):
        got = check(sdk_host, files, keyset, "dev1", *mode)
        for name, (data, want) in cases.items():
            assert got[f"{name}.epk"][0 if want == "ok" else 1] == want, (name, mode, got)
            if want != "ok":
                assert python_reason(data, keyset) == want, name


def test_signed_length_a_whole_number_of_blocks(sdk_host: SdkBuild, keyset: dict[str, Path],
                                                tmp_path: Path) -> None:
    """file_len - 64 = exactly 2 MiB: no short last block; both readers agree."""
    size = 2 * BLOCK - 4096
    for _ in range(4):
        sections = [("manifest", b"{}"), ("graph/x", b"\x33" * size)]
        data = write(tmp_path / "exact.epk", keyset, sections, chunk_size=65536)
        size += 2 * BLOCK - (len(data) - 64)
        if len(data) - 64 == 2 * BLOCK:
            break
    assert len(data) - 64 == 2 * BLOCK
    assert len(crypto.block_signature_message(data[:-64])) == 23 + 12 + 2 * 32
    assert check(sdk_host, [tmp_path / "exact.epk"], keyset)["exact.epk"] == \
        ["ok", digests(sections)]


def test_counter_at_minimum_accepted(sdk_host: SdkBuild, keyset: dict[str, Path],
                                     tmp_path: Path) -> None:
    path = tmp_path / "c.epk"
    write(path, keyset, SECTIONS, counter=7)
    assert check(sdk_host, [path], keyset, "dev1", "--min-counter", "7")["c.epk"][0] == "ok"


def test_packed_example_runs_through_runner_with_each_recipient(
        sdk_host: SdkBuild, packed_demo: tuple[Path, Path], tmp_path: Path) -> None:
    epk, project = packed_demo
    for dev in ("dev1", "dev2"):
        out = tmp_path / dev
        run([sdk_host.runner, epk, "--key", project / "keys" / f"{dev}.key",
             "--publisher", project / "keys" / "publisher.pub", "--outputs", out])
        assert sorted(p.name for p in out.glob("*.npy")), out
    proc = subprocess.run(
        [str(sdk_host.runner), str(epk), "--key", str(project / "keys" / "stranger.key"),
         "--publisher", str(project / "keys" / "publisher.pub")],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 12
    assert proc.stderr.strip().endswith("artifact invalid (not_recipient)")
