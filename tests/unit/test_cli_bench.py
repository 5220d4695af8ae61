# SPDX-License-Identifier: Apache-2.0
"""``edgepack bench`` before it reaches a board: ``--input`` files, ``--duration`` and the
default iteration plan, ``--threads 0``, and one ``edgepack: error:`` line per mistake.

The end-to-end runs with these flags are in tests/device/test_bench.py.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edgepack.bench.inputs import load_inputs
from edgepack.bench.plan import AUTO_MAX, AUTO_MIN, RunProgress, plan_iterations
from edgepack.bench.runner import resolve_threads
from edgepack.cli import main as cli_main
from edgepack.errors import ExitCode, UsageError

# The pipeline of a camera project: a 48x64 BGR frame, preprocessed on the board.
CAMERA: dict[str, Any] = {
    "pipeline": {"inputs": [{"name": "image", "dtype": "uint8", "shape": [48, 64, 3],
                             "layout": "HWC"}], "steps": [], "outputs": {}},
    "models": [{"name": "det", "preprocess": {"pixel_format": "bgr",
                                             "source_size": [48, 64]}}],
}
TENSOR: dict[str, Any] = {
    "pipeline": {"inputs": [{"name": "input", "dtype": "float32", "shape": [1, 3, 16, 16]}],
                 "steps": [], "outputs": {}},
    "models": [{"name": "classifier", "preprocess": None}],
}
TWO: dict[str, Any] = {
    "pipeline": {"inputs": [{"name": "a", "dtype": "float32", "shape": [2]},
                            {"name": "b", "dtype": "int64", "shape": [1]}],
                 "steps": [], "outputs": {}},
    "models": [],
}


def _array(data: bytes) -> np.ndarray[Any, Any]:
    return np.load(io.BytesIO(data), allow_pickle=False)  # type: ignore[no-any-return]


def test_npy_input_is_checked_and_passed_on(tmp_path: Path) -> None:
    value = np.arange(3 * 16 * 16, dtype=np.float32).reshape(1, 3, 16, 16)
    np.save(tmp_path / "x.npy", value)
    got = load_inputs(tmp_path / "x.npy", TENSOR)
    assert (got.kind, got.source) == ("npy", "x.npy")
    np.testing.assert_array_equal(_array(got.arrays["input"]), value)
    assert len(got.sha256) == 64


def test_image_becomes_the_declared_frame(tmp_path: Path) -> None:
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB: the last channel once in BGR order
    Image.fromarray(rgb).save(tmp_path / "frame.png")
    said: list[str] = []
    got = load_inputs(tmp_path / "frame.png", CAMERA, said.append)
    frame = _array(got.arrays["image"])
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert (frame[..., 2] == 200).all() and (frame[..., :2] == 0).all()
    assert got.kind == "image" and "resized to the declared source_size 64x48" in said[0]


def test_folder_of_npy_per_input(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.ones(2, np.float32))
    np.save(tmp_path / "b.npy", np.array([7], np.int64))
    got = load_inputs(tmp_path, TWO)
    assert got.kind == "folder" and _array(got.arrays["b"]).tolist() == [7]


@pytest.mark.parametrize(("make", "manifest", "match"), [
    (lambda d: np.save(d / "x.npy", np.zeros((1, 3, 8, 8), np.float32)), TENSOR,
     r"--input .*x\.npy: pipeline input 'input' is float32 \[1, 3, 16, 16\], the file holds "
     r"float32 \[1, 3, 8, 8\]"),
    (lambda d: np.save(d / "x.npy", np.zeros((1, 3, 16, 16), np.float64)), TENSOR,
     r"is float32 \[1, 3, 16, 16\], the file holds float64"),
    (lambda d: (d / "x.npy").write_bytes(b"not numpy"), TENSOR,
     r"--input .*x\.npy: not a readable \.npy file"),
    (lambda d: None, TENSOR, r"--input .*x\.npy: no such file"),
    (lambda d: (d / "x.png").write_bytes(b"\x89PNG broken"), CAMERA,
     r"--input .*x\.png: not a readable image"),
    (lambda d: Image.new("RGB", (4, 4)).save(d / "x.png"), TENSOR,
     r"--input .*x\.png: pipeline input 'input' is float32 .* not a camera image"),
    (lambda d: np.save(d / "x.npy", np.zeros(2, np.float32)), TWO,
     r"--input .*x\.npy: the pipeline has 2 inputs \(a, b\): give a folder"),
    (lambda d: (d / "x.txt").write_text("1 2 3"), TENSOR,
     r"--input .*x\.txt: give a \.npy file, an image file"),
])
def test_bad_inputs_name_the_flag_and_the_file(tmp_path: Path, make: Any,
                                              manifest: dict[str, Any], match: str) -> None:
    make(tmp_path)
    name = next((p.name for p in tmp_path.iterdir()), "x.npy")
    with pytest.raises(UsageError, match=match):
        load_inputs(tmp_path / name, manifest)


def test_folder_missing_an_input_names_it(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.ones(2, np.float32))
    with pytest.raises(UsageError, match=r"no b\.npy in the folder \(pipeline inputs: a, b\)"):
        load_inputs(tmp_path, TWO)


def test_iteration_plans() -> None:
    assert plan_iterations(5.0, iterations=7, duration_s=None, warmup=1).iterations == 7
    fixed = plan_iterations(100.0, iterations=None, duration_s=3.0, warmup=2)
    assert (fixed.iterations, fixed.mode, fixed.expected_s) == (30, "duration", 3.2)
    assert plan_iterations(9000.0, iterations=None, duration_s=3.0, warmup=0).iterations == 1
    # Default: about 20 s, clamped: an emulated 2.5 s pipeline gets the minimum ...
    slow = plan_iterations(2500.0, iterations=None, duration_s=None, warmup=2)
    assert (slow.iterations, slow.mode) == (AUTO_MIN, "auto")
    assert slow.expected_s == pytest.approx(30.0)  # vs 275 s for the old 100 + 10
    # ... a fast model the maximum, and one in between what fits.
    assert plan_iterations(1.0, iterations=None, duration_s=None, warmup=2).iterations == AUTO_MAX
    assert plan_iterations(500.0, iterations=None, duration_s=None, warmup=2).iterations == 40


def test_progress_shows_elapsed_estimate_and_eta() -> None:
    out = io.StringIO()
    progress = RunProgress("benchmark", 90.0, stream=out)
    assert progress.status(30.0) == " 33.3% 0m30s of ~1m30s, ETA 1m00s"
    assert progress.status(100.0) == "1m40s, over the estimate of ~1m30s"
    with progress:
        pass
    lines = out.getvalue().splitlines()
    assert lines[0] == "benchmark (~1m30s) ..." and lines[-1].startswith("benchmark: done in")


def test_threads_zero_is_every_core_of_the_device() -> None:
    assert resolve_threads(0, {"cpu_cores": 4}) == 4
    assert resolve_threads(0, {"cpus": [{}, {}]}) == 2
    assert resolve_threads(0, {}) == 1
    assert resolve_threads(3, {"cpu_cores": 4}) == 3


def _bench_argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["bench", str(tmp_path / "x.epk"), "--board", "host", "--target", "virtual:host",
            "--key", str(tmp_path / "k"), "--publisher", str(tmp_path / "p"), *extra]


@pytest.mark.parametrize(("extra", "message"), [
    (("--iterations", "0"), "iterations must be at least 1 (--iterations)"),
    (("--duration", "0"), "duration must be a positive number of seconds (--duration)"),
    (("--threads", "-1"), "(--warmup, --threads; --threads 0 uses every core)"),
])
def test_bad_counts_are_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       extra: tuple[str, ...], message: str) -> None:
    assert cli_main(_bench_argv(tmp_path, *extra)) == ExitCode.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgepack: error:") and message in err[0]


def test_iterations_and_duration_exclude_each_other(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(_bench_argv(tmp_path, "--iterations", "5", "--duration", "3"))
    assert exc.value.code == ExitCode.USAGE
    assert "--duration: not allowed with argument --iterations" in capsys.readouterr().err


def test_project_needs_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(_bench_argv(tmp_path, "--project", str(tmp_path))) == ExitCode.USAGE
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith("(--project needs --input)")


def test_host_reference_for_an_input(tmp_path: Path) -> None:
    """--project: the same stage graphs as at pack time, run on the user's input."""
    from edgepack import api
    from edgepack.bench.inputs import reference_outputs
    from edgepack.testing import tiny_project

    tiny = tiny_project(tmp_path / "tiny")
    manifest = api.inspect(tiny.pack(board="host"), key=tiny.key).manifest
    assert manifest is not None
    value = np.zeros((1, 3, 16, 16), np.float32)
    value[0, 2] = 1.0  # one channel lit: the logits are the third row of the weights
    np.save(tmp_path / "x.npy", value)
    ref = reference_outputs(tiny.root, manifest, "host", load_inputs(tmp_path / "x.npy",
                                                                     manifest))
    assert set(ref) == set(manifest["pipeline"]["outputs"])
    w = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    order = np.argsort(-w[2], kind="stable")[:2]
    assert ref["indices"].ravel().tolist() == order.tolist()
    np.testing.assert_allclose(ref["scores"].ravel(), np.exp(w[2][order]) / np.exp(w[2]).sum(),
                               rtol=1e-5)
    with pytest.raises(UsageError, match=r"--project .*package 'tiny', but the artifact holds"):
        reference_outputs(tiny.root, {**manifest, "package": {"name": "other"}}, "host",
                          load_inputs(tmp_path / "x.npy", manifest))
