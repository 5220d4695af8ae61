# SPDX-License-Identifier: Apache-2.0
"""The four libFuzzer targets (sdk_templates/fuzz), built with clang + ASan/UBSan into
build/sdk-asan (the ``sdk_asan`` fixture of conftest.py, shared with test_sanitizers.py), each
run for 15 s from a seed corpus generated here: a valid artifact signed and sealed with the fixed
fuzz keys (so the seeds themselves go through unsealing and chunk decryption, and every mutation
must be refused), device graphs lowered from zoo models and the example's stage graphs,
manifests. A crash, leak, sanitizer report or hang (-timeout) makes libFuzzer exit non-zero."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sdk_host import SdkBuild

from edgepack.artifact import container as artifact
from edgepack.artifact import keys
from edgepack.lower.lowering import lower
from edgepack.model import zoo

TARGETS = ("fuzz_epk_layout", "fuzz_epk_open", "fuzz_device_graph", "fuzz_manifest_json")
SECONDS = 15
# The fixed keys of sdk_templates/fuzz/fuzz_keys.h.
FUZZ_DEVICE_RAW = bytes(range(1, 33))
FUZZ_PUBLISHER_SEED = b"\x42" * 32


def fuzz_artifacts(root: Path, manifest: bytes) -> list[Path]:
    """Artifacts the fuzz targets' fixed keys open: 1 KiB chunks (the minimum) over several
    chunks, one and two recipients, an empty section."""
    publisher = Ed25519PrivateKey.from_private_bytes(FUZZ_PUBLISHER_SEED)
    device = X25519PrivateKey.from_private_bytes(FUZZ_DEVICE_RAW).public_key()
    other = X25519PrivateKey.from_private_bytes(bytes(range(101, 133))).public_key()
    graph_a = [("manifest", b"{}"), ("graph/a", bytes(range(256)) * 9)]
    variants = [  # (stable sections, block-hash signature): flags 3 (the default), 0, 1
        ([device], [("manifest", manifest), ("graph/a", bytes(range(256)) * 9), ("e", b"")],
         True, True),
        ([other, device], [("manifest", b"{}"), ("graph/x", b"abc" * 400)], True, True),
        ([device], graph_a, False, False),
        ([device], graph_a, True, False),
    ]
    out = []
    for i, (recipients, sections, stable, block) in enumerate(variants):
        path = root / f"seed{i}.epk"
        artifact.write_artifact(path, package_name="fuzz", package_version="1", version_counter=3,
                                publisher=publisher, recipients=recipients, sections=sections,
                                chunk_size=1024, stable_sections=stable, block_signature=block)
        out.append(path)
    return out


def test_fuzz_keys_match_the_harness() -> None:
    """The Python side derives the keys the C++ harness hard-codes (fuzz_keys.h)."""
    header = (Path(__file__).resolve().parents[2] / "sdk_templates" / "fuzz" /
              "fuzz_keys.h").read_text()
    assert "bytes 0x01..0x20" in header and "32 x 0x42" in header


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory,
            packed_demo: tuple[Path, Path]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fuzz")
    dirs = {t: root / t for t in TARGETS}
    for d in dirs.values():
        d.mkdir()
    epk, project = packed_demo
    opened = artifact.open_artifact(
        epk.read_bytes(), keys.load_device_private(project / "keys" / "dev1.key"),
        keys.load_publisher_public(project / "keys" / "publisher.pub"))
    manifest = opened.manifest_bytes
    doc = json.loads(manifest)
    small_manifest = json.dumps({"schema": doc["schema"], "pipeline": doc["pipeline"]}).encode()
    for i, path in enumerate(fuzz_artifacts(root, small_manifest)):
        data = path.read_bytes()
        (dirs["fuzz_epk_open"] / f"a{i}").write_bytes(data)
        (dirs["fuzz_epk_layout"] / f"a{i}").write_bytes(data)
    # Stage graphs of the example (small ones: pre, post, crop) and zoo models.
    for stage in doc["stages"]:
        graph = opened.sections[stage["graph"]]
        if len(graph) < 64 * 1024:
            (dirs["fuzz_device_graph"] / stage["name"]).write_bytes(graph)
    (dirs["fuzz_device_graph"] / "zoo_mobilenet").write_bytes(
        lower(zoo.mobilenet_classifier(seed=1, input_size=32, num_classes=4)))
    (dirs["fuzz_manifest_json"] / "manifest").write_bytes(manifest)
    (dirs["fuzz_manifest_json"] / "small").write_bytes(small_manifest)
    (dirs["fuzz_manifest_json"] / "scalars").write_bytes(
        b'[1, -2.5e-3, true, false, null, "\\u00e9\\n", {"a": {}}, []]')
    return dirs


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_nothing(sdk_asan: SdkBuild, corpora: dict[str, Path], target: str,
                                   tmp_path: Path) -> None:
    binary = sdk_asan.build / "fuzz" / target
    seeds = sorted(corpora[target].iterdir())
    assert seeds, target
    work = tmp_path / "corpus"
    work.mkdir()
    proc = subprocess.run(
        [str(binary), f"-max_total_time={SECONDS}", "-timeout=10", "-rss_limit_mb=2048",
         "-max_len=65536", "-print_final_stats=1", f"-artifact_prefix={tmp_path}/",
         str(work), str(corpora[target])],
        capture_output=True, text=True, check=False, timeout=SECONDS + 120,
        env={**os.environ, "ASAN_OPTIONS": "detect_leaks=1", "UBSAN_OPTIONS": "halt_on_error=1"})
    log = proc.stderr[-6000:]
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-",
                                                                        "timeout-", "oom-"))]
    assert proc.returncode == 0 and not crashes, f"{target}: {crashes}\n{log}"
    # It really ran: it read the seeds and executed many inputs.
    runs = [int(line.split()[-1]) for line in proc.stderr.splitlines()
            if line.startswith("stat::number_of_executed_units:")]
    assert runs and runs[0] > len(seeds), log
