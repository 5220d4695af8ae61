# SPDX-License-Identifier: Apache-2.0
"""The SDK built with EDGEPACK_SANITIZE=ON (clang AddressSanitizer + UndefinedBehaviorSanitizer,
RelWithDebInfo, into build/sdk-asan; the ``sdk_asan`` fixture of conftest.py, shared with the
fuzz targets of test_fuzz.py): the C++ unit tests, the reader over the tamper corpus of the
interop tests, and the whole example pipeline through edgepack-run. Any report aborts the
process (abort_on_error / halt_on_error), leaks included, so a clean exit is the assertion."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import numpy as np
from sdk_host import CMAKE, SdkBuild, make_keyset, pub
from test_reader_interop import SECTIONS, SMALL, _forgeries, write

from edgepack.artifact import container as artifact
from edgepack.artifact import keys

SANITIZER_ENV = {
    **os.environ,
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


def sanitized(cmd: list[object]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          env=SANITIZER_ENV, timeout=300)
    assert "Sanitizer" not in proc.stderr and "runtime error:" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_build_is_instrumented(sdk_asan: SdkBuild) -> None:
    cache = (sdk_asan.build / "CMakeCache.txt").read_text()
    assert "EDGEPACK_SANITIZE:BOOL=ON" in cache
    # The code calls the sanitizer runtimes (clang links them into each executable), so the
    # tests below really run instrumented.
    symbols = subprocess.run(["nm", str(sdk_asan.runner)], capture_output=True, text=True,
                             check=True).stdout
    assert "__asan_report_load" in symbols and "__ubsan_handle" in symbols


def test_unit_tests_under_sanitizers(sdk_asan: SdkBuild) -> None:
    ctest = CMAKE.with_name("ctest")
    out = sanitized([ctest, "--test-dir", sdk_asan.build, "--output-on-failure"]).stdout
    assert "tests passed" in out and "runtime_test" in out and "test_hpke_vectors" in out, out


def test_tamper_corpus_under_sanitizers(sdk_asan: SdkBuild, tmp_path: Path) -> None:
    keyset = make_keyset(tmp_path / "keys")
    data = write(tmp_path / "small.epk", keyset, SMALL)
    files = [tmp_path / "small.epk"]
    for offset in range(len(data)):
        mutated = bytearray(data)
        mutated[offset] ^= 0x01
        files.append(tmp_path / f"flip{offset:05d}.epk")
        files[-1].write_bytes(bytes(mutated))
    big = write(tmp_path / "big.epk", keyset, SECTIONS)
    for length in (0, 7, 40, len(big) // 2, len(big) - 65, len(big) - 1):
        files.append(tmp_path / f"cut{length:06d}.epk")
        files[-1].write_bytes(big[:length])
    base = [sdk_asan.epk_check, "--key", keyset["dev1"], "--publisher", pub(keyset["publisher"])]
    rows = sanitized([*base, *files]).stdout.splitlines()
    assert len(rows) == len(files)
    assert rows[0].split("\t")[1] == "ok" and all("\tinvalid\t" in r for r in rows[1:]), rows[:3]
    # The re-signed forgeries reach the deeper checks (unseal, chunk decryption), in both
    # section modes and both signature modes (the block hashing on several threads).
    for stable in (False, True):
        for block in (False, True):
            forgeries = _forgeries(keyset, tmp_path, stable, block)
            for name, (forged, dev, min_counter) in forgeries.items():
                f = tmp_path / f"{name}-{'stable' if stable else 'fresh'}-{int(block)}.epk"
                f.write_bytes(forged)
                out = sanitized([sdk_asan.epk_check, "--key", keyset[dev], "--publisher",
                                 pub(keyset["publisher"]), "--min-counter", min_counter,
                                 f]).stdout
                assert out.split("\t")[1] == "invalid", (name, stable, block, out)


def test_whole_pipeline_under_sanitizers(sdk_asan: SdkBuild, packed_demo: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    epk, project = packed_demo
    k = project / "keys"
    opened = artifact.open_artifact(epk.read_bytes(), keys.load_device_private(k / "dev1.key"),
                                    keys.load_publisher_public(k / "publisher.pub"))
    golden = json.loads(opened.manifest_bytes)["golden"]
    (tmp_path / "in").mkdir()
    for name, entry in golden["inputs"].items():
        (tmp_path / "in" / f"{name}.npy").write_bytes(opened.sections[entry["section"]])
    sanitized([sdk_asan.runner, epk, "--key", k / "dev1.key", "--publisher",
               k / "publisher.pub", "--inputs", tmp_path / "in", "--outputs", tmp_path / "out",
               "--bench", "2", "--threads", "2", "--json", tmp_path / "run.json"])
    boxes = np.load(io.BytesIO(opened.sections[golden["outputs"]["detector.boxes"]["section"]]))
    got = np.load(tmp_path / "out" / "detector.boxes.npy")
    assert got.shape == boxes.shape and boxes.shape[0] > 0
    np.testing.assert_allclose(got, boxes, rtol=0, atol=1e-2)
