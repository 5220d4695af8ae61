# SPDX-License-Identifier: Apache-2.0
"""Artifacts written by the Python packager open in the C++ reader, and every tampered artifact
is refused there with the same reason code the Python reader gives.

The C++ side is the `epk_check` driver (sdk_templates/tests/artifact), which opens many files in
one process and prints one line per file, so hundreds of cases stay fast."""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

import pytest
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


def write(path: Path, keyset: dict[str, Path], sections: list[tuple[str, bytes]],
          publisher: str = "publisher", counter: int = 7) -> bytes:
    artifact.write_artifact(
        path, package_name="demo", package_version="1.0", version_counter=counter,
        publisher=keys.load_publisher_private(keyset[publisher]),
        recipients=[keys.load_device_public(pub(keyset[d])) for d in ("dev1", "dev2")],
        sections=sections, chunk_size=CHUNK)
    return path.read_bytes()


def resign(body: bytes, keyset: dict[str, Path]) -> bytes:
    return body + keys.load_publisher_private(keyset["publisher"]).sign(body)


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


def test_round_trip_each_recipient_file_memory_and_raw_key(
        sdk_host: SdkBuild, keyset: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "a.epk"
    write(path, keyset, SECTIONS)
    for dev in ("dev1", "dev2"):
        for mode in ((), ("--memory",)):
            assert check(sdk_host, [path], keyset, dev, *mode)["a.epk"] == ["ok", digests(SECTIONS)]
    # The device key as the raw 32 bytes an app may hold instead of a PEM file.
    raw = tmp_path / "dev2.raw"
    raw.write_bytes(keys.load_device_private(keyset["dev2"]).private_bytes_raw())
    out = run([sdk_host.epk_check, "--raw-key", raw, "--publisher", pub(keyset["publisher"]),
               path]).stdout
    assert out.split("\t")[1:] == ["ok", digests(SECTIONS) + "\n"]


def test_large_sections_with_default_chunks(sdk_host: SdkBuild, keyset: dict[str, Path],
                                            tmp_path: Path) -> None:
    sections = [("manifest", b"{}"), ("graph/big", bytes(range(251)) * 2000),
                ("graph/exact", b"\x01" * 65536)]
    path = tmp_path / "big.epk"
    artifact.write_artifact(
        path, package_name="big", package_version="2", version_counter=1,
        publisher=keys.load_publisher_private(keyset["publisher"]),
        recipients=[keys.load_device_public(pub(keyset["dev1"]))], sections=sections)
    assert check(sdk_host, [path], keyset)["big.epk"] == ["ok", digests(sections)]


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


def _chunks(data: bytes, entry: artifact.SectionEntry) -> list[bytes]:
    body = data[entry.offset: entry.offset + entry.ciphertext_size]
    step = CHUNK + crypto.TAG_SIZE
    return [body[i:i + step] for i in range(0, len(body), step)]


def _forgeries(keyset: dict[str, Path], tmp_path: Path) -> dict[str, tuple[bytes, str, int]]:
    """name -> (bytes, device key name, min counter): every re-signed tamper case."""
    data = write(tmp_path / "base.epk", keyset, SECTIONS)
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
    d2 = write(tmp_path / "two.epk", keyset, two)
    h2 = artifact.parse_header(d2)
    e2 = h2.section("graph/a")
    k = _chunks(d2, e2)
    hdr = bytearray(d2[:h2.header_len])
    struct.pack_into("<QQQ", hdr, h2.header_len - 24, 2 * CHUNK, e2.offset,
                     2 * (CHUNK + crypto.TAG_SIZE))
    cases["drop_last_chunk"] = (resign(bytes(hdr) + d2[h2.header_len:e2.offset] + k[0] + k[1],
                                       keyset), "dev1", 0)

    cases["other_publisher"] = (write(tmp_path / "o.epk", keyset, SECTIONS, "other_publisher"),
                                "dev1", 0)
    other = write(tmp_path / "o2.epk", keyset, SMALL, "other_publisher")
    cases["header_publisher"] = (resign(other[:-64], keyset), "dev1", 0)
    cases["non_recipient"] = (data, "stranger", 0)
    stranger = keys.load_device_private(keyset["stranger"])
    dev1_id = crypto.key_id(keys.load_device_public(pub(keyset["dev1"])))
    cases["stanza_wrong_key"] = (
        resign(body.replace(dev1_id, crypto.key_id(stranger.public_key()), 1), keyset),
        "stranger", 0)
    cases["counter"] = (data, "dev1", 8)
    return cases


def test_resigned_tampering_refused_with_python_reason(
        sdk_host: SdkBuild, keyset: dict[str, Path], tmp_path: Path) -> None:
    cases = _forgeries(keyset, tmp_path)
    expected = {"reorder": "chunk", "swap": "chunk", "header_change": "chunk",
                "drop_last_chunk": "chunk", "other_publisher": "signature",
                "header_publisher": "publisher", "non_recipient": "not_recipient",
                "stanza_wrong_key": "unseal", "counter": "counter"}
    assert set(cases) == set(expected)
    for name, (data, dev, min_counter) in cases.items():
        f = tmp_path / f"{name}.epk"
        f.write_bytes(data)
        cpp = check(sdk_host, [f], keyset, dev, "--min-counter", str(min_counter))[f.name]
        assert cpp == ["invalid", expected[name]], (name, cpp)
        assert python_reason(data, keyset, dev, min_counter) == expected[name], name


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
