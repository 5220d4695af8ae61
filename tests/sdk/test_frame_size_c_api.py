# SPDX-License-Identifier: Apache-2.0
"""A camera frame size chosen at run time, end to end: examples/vision-demo (letterbox detector,
crops into a classifier) packed with ``source_size_min = [240, 320]`` and ``source_size_max =
[600, 800]`` runs frames of two sizes other than its nominal 480x640 through the C API
(``ep_session_set_image``, one size per run, sdk_templates/tests/c_api/test_frame_size.c) and
through ``edgepack-run`` (an HWC .npy of that size), and gives what the host reference
(onnxruntime on the stage graphs) gives for the same frame: boxes in that frame's pixels. Frames
outside the bounds are refused with a message naming them. Tolerances as
test_runner_pipeline.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sdk_host import SdkBuild, run
from test_runner_pipeline import assert_pipeline_outputs

from edgepack.model.reference import run_pipeline
from edgepack.model.stages import StagePlan, build_stage_plan
from edgepack.spec.loader import load_spec
from example_project import example_project

NOMINAL = "source_size = [480, 640]"
BOUNDS = "source_size_min = [240, 320]\n    source_size_max = [600, 800]"
SIZES = [(300, 500), (600, 800)]  # a smaller frame of another aspect, and the largest
DTYPES = {1: np.float32, 4: np.int64}  # ep_dtype codes the pipeline outputs use


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, StagePlan]:
    """(artifact, project, stage plan) of vision-demo with run-time frame size bounds."""
    root = example_project(tmp_path_factory.mktemp("bounded-demo"))
    toml = root / "edgepack.toml"
    text = toml.read_text()
    assert text.count(NOMINAL) == 2
    toml.write_text(text.replace(NOMINAL, f"{NOMINAL}\n    {BOUNDS}"))
    out = root / "bounded.epk"
    run([sys.executable, "-m", "edgepack.cli", "pack", root, "--out", out])
    return out, root, build_stage_plan(load_spec(root))


def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(16)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]


def parse_outputs(stdout: str) -> list[dict[str, np.ndarray]]:
    """The C program test_frame_size's "frame" blocks: outputs by name, per frame."""
    runs: list[dict[str, np.ndarray]] = []
    for line in stdout.splitlines():
        if line.startswith("frame "):
            runs.append({})
        elif line.startswith("out "):
            head, values = line[4:].split(" :")
            name, dtype, rank, *dims = head.split()
            assert len(dims) == int(rank)
            data: Any = np.array(values.split(), dtype=np.float64)
            runs[-1][name] = data.astype(DTYPES[int(dtype)]).reshape([int(d) for d in dims])
    return runs


def test_c_api_frames_of_other_sizes_match_the_reference(
        sdk_host: SdkBuild, bounded: tuple[Path, Path, StagePlan], tmp_path: Path) -> None:
    epk, project, plan = bounded
    args = []
    for i, frame in enumerate(frames()):
        path = tmp_path / f"frame{i}.bgr"
        path.write_bytes(frame.tobytes())
        args.append(f"{frame.shape[0]}x{frame.shape[1]}:{path}")
    proc = subprocess.run([str(sdk_host.build / "tests" / "c_api" / "test_frame_size"), str(epk),
                           str(project / "keys" / "dev1.key"),
                           str(project / "keys" / "publisher.pub"), *args],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr
    assert "bounds 240 320 600 800" in proc.stdout
    runs = parse_outputs(proc.stdout)
    assert len(runs) == len(SIZES)
    detections = 0
    for frame, got in zip(frames(), runs, strict=True):
        want = run_pipeline(plan, {"image": frame})
        assert_pipeline_outputs(got, want)
        boxes = got["detector.boxes"]
        detections += boxes.shape[0]
        assert float(boxes[:, 0::2].max(initial=0)) <= frame.shape[1]
        assert float(boxes[:, 1::2].max(initial=0)) <= frame.shape[0]
    assert detections > 0, "no detections to compare"


def test_runner_takes_an_image_npy_of_another_size(
        sdk_host: SdkBuild, bounded: tuple[Path, Path, StagePlan], tmp_path: Path) -> None:
    epk, project, plan = bounded
    k = project / "keys"
    base = [sdk_host.runner, epk, "--key", k / "dev1.key", "--publisher", k / "publisher.pub"]
    (tmp_path / "in").mkdir()
    nominal = np.random.default_rng(480).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for i, frame in enumerate([frames()[0], nominal]):  # another size, then source_size again
        np.save(tmp_path / "in" / "image.npy", frame)
        run([*base, "--inputs", tmp_path / "in", "--outputs", tmp_path / f"out{i}"])
        got = {p.stem: np.load(p) for p in (tmp_path / f"out{i}").glob("*.npy")}
        assert_pipeline_outputs(got, run_pipeline(plan, {"image": frame}))

    np.save(tmp_path / "in" / "image.npy", np.zeros((200, 500, 3), np.uint8))
    proc = subprocess.run([str(a) for a in (*base, "--inputs", tmp_path / "in")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "input 'image' must have shape [480, 640, 3] (height 240..600, width 320..800), " \
           "the file holds [200, 500, 3]" in proc.stderr, proc.stderr
