# SPDX-License-Identifier: Apache-2.0
"""edgepack-run on the packed example agrees with the host reference: the whole pipeline against
the golden outputs stored in the artifact, each stage (``--stage``) against onnxruntime on the
stage's ONNX graph (rebuilt from the project: the artifact keeps only device graphs), and the
bench report keeps its invariants.

Tolerances: box coordinates (source-image pixels) atol 1e-2; scores and other float tensors
atol 1e-4 relative to the tensor's scale (max(1, max |reference|)); integer outputs equal, except
top-k class indices where two reference scores are closer than 1e-4 (a near-tie may order either
way)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from opened_artifact import OpenedArtifact, open_demo
from sdk_host import SdkBuild, run

from edgepack.model.reference import run_stage
from edgepack.model.stages import build_stage_plan
from edgepack.spec.loader import load_spec

BOX_ATOL = 1e-2
SCORE_ATOL = 1e-4
TIE = 1e-4


@dataclass(frozen=True)
class Unpacked(OpenedArtifact):
    stage_onnx: dict[str, onnx.ModelProto]  # the packer's stage graphs, rebuilt from the project


@pytest.fixture(scope="module")
def demo(packed_demo: tuple[Path, Path]) -> Unpacked:
    o = open_demo(packed_demo)
    plan = build_stage_plan(load_spec(packed_demo[1]))  # deterministic: the graphs lowered
    return Unpacked(o.epk, o.key, o.publisher, o.manifest, o.sections,
                    {s.name: s.onnx for s in plan.stages})


def run_runner(sdk: SdkBuild, demo: Unpacked, inputs: dict[str, np.ndarray], out: Path,
               *extra: str) -> dict[str, np.ndarray]:
    """Writes `inputs` as .npy, runs edgepack-run, returns its outputs by name."""
    in_dir = out / "in"
    in_dir.mkdir(parents=True)
    for name, value in inputs.items():
        np.save(in_dir / f"{name}.npy", value)
    run([sdk.runner, demo.epk, *demo.key_args, "--inputs", in_dir, "--outputs", out / "out",
         *extra])
    return {p.stem: np.load(p) for p in (out / "out").glob("*.npy")}


def assert_close(name: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, \
        (name, got.dtype, got.shape, want.dtype, want.shape)
    if np.issubdtype(want.dtype, np.integer):
        np.testing.assert_array_equal(got, want, err_msg=name)
        return
    atol = BOX_ATOL if name.endswith("boxes") else \
        SCORE_ATOL * max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=name)


def assert_topk_indices(name: str, got: np.ndarray, want: np.ndarray,
                        scores: np.ndarray) -> None:
    """Indices equal wherever the reference score is not within TIE of a neighbour's."""
    assert got.shape == want.shape, (name, got.shape, want.shape)
    gaps = np.abs(np.diff(scores, axis=-1))
    near_tie = np.zeros(scores.shape, bool)
    near_tie[..., 1:] |= gaps < TIE
    near_tie[..., :-1] |= gaps < TIE
    assert near_tie.mean() < 0.5, f"{name}: too many near-ties to compare"
    np.testing.assert_array_equal(got[~near_tie], want[~near_tie], err_msg=name)


def assert_pipeline_outputs(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    """The example pipeline's outputs against the host reference: the same names, the top-k
    indices compared where the scores are not near-ties, every other output within tolerance."""
    assert set(got) == set(want)
    for name in want:
        if name == "classifier.indices":
            assert_topk_indices(name, got[name], want[name], want["classifier.scores"])
        else:
            assert_close(name, got[name], want[name])


def test_whole_pipeline_matches_golden_outputs(sdk_host: SdkBuild, demo: Unpacked,
                                               tmp_path: Path) -> None:
    golden = demo.manifest["golden"]
    inputs = demo.golden_inputs()
    want = {n: demo.npy(e["section"]) for n, e in golden["outputs"].items()}
    assert want["detector.boxes"].shape[0] > 0, "the golden image has no detections to compare"
    assert_pipeline_outputs(run_runner(sdk_host, demo, inputs, tmp_path), want)


def stage_inputs(demo: Unpacked) -> dict[str, dict[str, np.ndarray]]:
    """Every stage's inputs, from walking the pipeline with the host reference on the golden
    inputs (a map step gets its first row, as the runner feeds one row per run)."""
    stages = {s["name"]: s for s in demo.manifest["stages"]}
    pipeline = demo.manifest["pipeline"]
    tensors = demo.golden_inputs()
    feeds_by_stage: dict[str, dict[str, np.ndarray]] = {}
    for step in pipeline["steps"]:
        stage = stages[step["stage"]]
        feeds = {name: tensors[ref] for name, ref in step["bind"].items()}
        if step.get("map"):
            feeds = {n: v[:1] if v.shape[:1] != (1,) else v for n, v in feeds.items()}
        feeds_by_stage[stage["name"]] = feeds
        outs = run_stage(demo.stage_onnx[stage["name"]], feeds)
        tensors.update({f"{stage['name']}:{n}": v for n, v in outs.items()})
    return feeds_by_stage


def test_each_stage_matches_onnxruntime(sdk_host: SdkBuild, demo: Unpacked,
                                        tmp_path: Path) -> None:
    stages = {s["name"]: s for s in demo.manifest["stages"]}
    feeds = stage_inputs(demo)
    assert set(feeds) == set(stages)
    for name, stage_feeds in feeds.items():
        want = run_stage(demo.stage_onnx[name], stage_feeds)
        got = run_runner(sdk_host, demo, stage_feeds, tmp_path / name, "--stage", name)
        assert set(got) == set(want), name
        for out, value in want.items():
            if out == "indices":
                assert_topk_indices(f"{name}:{out}", got[out], value, want["scores"])
            else:
                assert_close(f"{name}:{out}", got[out], value)


def test_bench_report_invariants(sdk_host: SdkBuild, demo: Unpacked, tmp_path: Path) -> None:
    golden = demo.manifest["golden"]
    inputs = demo.golden_inputs()
    report = tmp_path / "run.json"
    run_runner(sdk_host, demo, inputs, tmp_path, "--bench", "5", "--warmup", "2", "--json",
               str(report))
    r = json.loads(report.read_text())
    assert r["schema"] == "edgepack.run/1" and r["stage"] is None
    assert (r["iterations"], r["warmup"]) == (5, 2)
    load = r["load"]
    assert load["total_ms"] >= max(load["verify_ms"], load["decrypt_ms"], load["prepare_ms"]) > 0
    rows = demo.npy(golden["outputs"]["detector.boxes"]["section"]).shape[0]
    mapped = {s["stage"] for s in demo.manifest["pipeline"]["steps"] if s.get("map")}
    steps = [s["stage"] for s in demo.manifest["pipeline"]["steps"]]
    assert [s["stage"] for s in r["stages"]] == steps

    def check_stats(what: str, st: dict[str, Any]) -> None:
        assert len(st["samples"]) == 5, what
        assert st["min"] <= st["p50"] <= st["p90"] <= st["p99"] <= st["max"], (what, st)
        assert st["min"] == min(st["samples"]) and st["max"] == max(st["samples"]), what
        assert st["min"] <= st["mean"] <= st["max"] and st["std"] >= 0, what

    e2e = r["end_to_end"]
    check_stats("end_to_end", e2e)
    for s in r["stages"]:
        check_stats(s["stage"], s["ms"])
        assert s["runs"] == (rows if s["stage"] in mapped else 1), s
    # Stages run inside the end-to-end interval of the same iteration.
    for i in range(5):
        assert sum(s["ms"]["samples"][i] for s in r["stages"]) <= e2e["samples"][i], i


def test_stage_bench_counts(sdk_host: SdkBuild, demo: Unpacked, tmp_path: Path) -> None:
    report = tmp_path / "stage.json"
    run([sdk_host.runner, demo.epk, *demo.key_args, "--stage", "classifier", "--bench", "3",
         "--threads", "0", "--json", report])
    r = json.loads(report.read_text())
    assert (r["stage"], r["iterations"], r["warmup"]) == ("classifier", 3, 0)
    assert r["threads"] == os.cpu_count()  # --threads 0: one per online core
    assert len(r["end_to_end"]["samples"]) == 3
    e = r["end_to_end"]
    assert e["min"] <= e["p50"] <= e["p90"] <= e["p99"] <= e["max"]
    proc = subprocess.run([str(sdk_host.runner), str(demo.epk), *demo.key_args, "--bench", "x"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "--bench" in proc.stderr, proc.stderr


def test_cpus_pin_every_thread(sdk_host: SdkBuild, demo: Unpacked, tmp_path: Path) -> None:
    """--cpus: the runner's own thread and each kernel thread run only on the listed CPUs (read
    back from /proc/self/task/*/status by the runner itself), so a board's LITTLE cluster can be
    kept free or measured alone."""
    allowed = sorted(os.sched_getaffinity(0))
    pick = allowed[-1:]  # one CPU: every thread of the process must end up there
    report = tmp_path / "pinned.json"
    run([sdk_host.runner, demo.epk, *demo.key_args, "--stage", "classifier", "--threads", "3",
         "--cpus", ",".join(map(str, pick)), "--json", report])
    r = json.loads(report.read_text())
    assert r["cpus"] == pick and r["threads"] == 3
    assert len(r["thread_cpus"]) >= 3  # the caller and two kernel workers at least
    assert set(r["thread_cpus"]) == {str(pick[0])}, r["thread_cpus"]
    plain = tmp_path / "plain.json"
    run([sdk_host.runner, demo.epk, *demo.key_args, "--stage", "classifier", "--json", plain])
    assert json.loads(plain.read_text())["cpus"] is None
    for bad, why in (("2-1", "runs backwards"), ("0,0", "listed twice"), ("x", "not a number"),
                     ("5000", "0..1023")):
        proc = subprocess.run([str(sdk_host.runner), str(demo.epk), *map(str, demo.key_args),
                               "--cpus", bad], capture_output=True, text=True, check=False)
        assert proc.returncode == 2 and why in proc.stderr, (bad, proc.stderr)
    # A CPU this process may not use: one clear error when the session is created.
    outside = max(allowed) + 1
    proc = subprocess.run([str(sdk_host.runner), str(demo.epk), *map(str, demo.key_args),
                           "--cpus", str(outside)], capture_output=True, text=True, check=False)
    assert proc.returncode == 11 and "--cpus" in proc.stderr, proc.stderr
