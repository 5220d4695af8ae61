# SPDX-License-Identifier: Apache-2.0
"""``edgepack bench`` end to end on virtual:hi3559a over SSH, the report and ``report compare``."""

from __future__ import annotations

import copy
import json
import platform
import random
from pathlib import Path

import numpy as np
import pytest
from bench_checks import ITERATIONS, assert_no_host_key_on_device
from PIL import Image

from edgepack.bench.report import load_report, summarize, validate_report
from edgepack.cli import main as cli_main
from edgepack.errors import ExitCode, SpecError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "vision-demo"


def _bench(example: Path, vboard: dict[str, object], sdk: Path, out: Path,
           target: str | None = None) -> int:
    where = (["--target", target] if target else
             ["--target", str(vboard["target"]), "--known-hosts", str(vboard["known_hosts"])])
    return cli_main([
        "bench", str(example / "demo.epk"), "--board", "hi3559a", *where,
        "--key", str(example / "keys" / "dev1.key"),
        "--publisher", str(example / "keys" / "publisher.pub"),
        "--iterations", str(ITERATIONS), "--warmup", "1", "--sdk", str(sdk),
        "--out-json", str(out.with_suffix(".json")), "--html", str(out.with_suffix(".html"))])


def _check_stats(s: dict[str, float]) -> None:
    assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert s["min"] <= s["mean"] <= s["max"]


def test_bench_end_to_end_on_virtual_hi3559a(example: Path, vboard: dict[str, object],
                                             hi3559a_sdk: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert _bench(example, vboard, hi3559a_sdk, tmp_path / "first") == 0
    table = capsys.readouterr().out
    assert "end-to-end" in table and "accuracy: PASS" in table
    r = load_report(tmp_path / "first.json")  # validates against the schema
    assert r["device"]["machine"] == "aarch64"
    # board code under qemu-user on this (non-aarch64) host: flagged, in the text too
    if platform.machine() != "aarch64":
        assert r["run"]["emulated"] and "EMULATED" in table
    assert r["conditions"]["iterations"] == ITERATIONS == r["end_to_end"]["n"]
    assert len(r["end_to_end"]["samples"]) == ITERATIONS
    _check_stats(r["end_to_end"])
    assert r["stages"], "per-stage timings are missing"
    for s in r["stages"]:
        _check_stats(s["ms"])
        assert s["ms"]["n"] == ITERATIONS
    for i in range(ITERATIONS):  # the stages of one iteration fit inside its end-to-end time
        stage_sum = sum(s["ms"]["samples"][i] for s in r["stages"])
        assert stage_sum <= r["end_to_end"]["samples"][i] * 1.001 + 0.01
    load = r["load"]
    assert load["total_ms"] == pytest.approx(
        load["verify_ms"] + load["decrypt_ms"] + load["prepare_ms"], rel=1e-6, abs=1e-3)
    acc = r["accuracy"]
    assert acc["passed"] and acc["outputs"]
    for o in acc["outputs"]:
        assert o["max_abs"] <= acc["tolerance"] * o["scale"] and o["cosine"] >= acc["min_cosine"]
    assert r["memory"]["peak_rss_kib"] > 0
    page = (tmp_path / "first.html").read_text()
    # timeline, histogram, stage bars; nothing fetched, no scripts
    assert page.count("<svg") == 3 and "<script" not in page and "http://" not in \
        page.replace("http://www.w3.org/2000/svg", "")
    assert "EMULATED" in page or platform.machine() == "aarch64"

    assert_no_host_key_on_device(Path(str(vboard["root"])), example / "keys" / "dev1.key")

    # A second run of the unchanged artifact, the board named by its virtual id: the agent
    # and every file are already there.
    assert _bench(example, vboard, hi3559a_sdk, tmp_path / "second", "virtual:hi3559a") == 0
    again = load_report(tmp_path / "second.json")
    assert not again["transfer"]["agent_uploaded"]
    assert again["transfer"]["bytes_sent"] < 0.01 * again["transfer"]["bytes_total"]


def test_bench_on_a_camera_image_for_a_duration(example: Path, vboard: dict[str, object],
                                                hi3559a_sdk: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """--input IMAGE: a 320x240 PNG becomes the project's 640x480 BGR frame (the board runs
    the project's own preprocessing on it); --duration sizes the timed loop from one timed
    run; --threads 0 is every core the device reports; --project checks the board's outputs
    for the frame against the host reference."""
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(
        tmp_path / "frame.png")
    code = cli_main([
        "bench", str(example / "demo.epk"), "--board", "hi3559a",
        "--target", str(vboard["target"]), "--known-hosts", str(vboard["known_hosts"]),
        "--key", str(example / "keys" / "dev1.key"),
        "--publisher", str(example / "keys" / "publisher.pub"), "--sdk", str(hi3559a_sdk),
        "--input", str(tmp_path / "frame.png"), "--project", str(example),
        "--duration", "2", "--warmup", "0",
        "--threads", "0", "--out-json", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "frame.png: 320x240 resized to the declared source_size 640x480" in captured.err
    assert "benchmark: 0 warmup + " in captured.err and " on frame.png (~" in captured.err
    r = load_report(tmp_path / "r.json")
    assert r["input"]["kind"] == "image" and r["input"]["source"] == "frame.png"
    assert r["conditions"]["threads"] == r["device"]["cpu_cores"] >= 1
    plan = r["conditions"]["plan"]
    assert plan["mode"] == "duration" and plan["duration_s"] == 2.0
    n = r["end_to_end"]["n"]
    assert n == r["conditions"]["iterations"] == max(1, int(2000.0 // plan["estimate_ms"]))
    assert r["accuracy"]["passed"]  # checked on the golden input, as always
    own = r["input"]["accuracy"]  # and on the frame: the host reference ran on it (--project)
    assert own["passed"] and {o["name"] for o in own["outputs"]} == {
        o["name"] for o in r["accuracy"]["outputs"]}
    assert "input frame.png (image, sha256 " in captured.out


def test_bench_input_of_the_wrong_shape_is_one_error(example: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "frame.npy", np.zeros((240, 320, 3), np.uint8))
    code = cli_main([
        "bench", str(example / "demo.epk"), "--board", "hi3559a",
        "--target", f"ssh://root@127.0.0.1:9?root={tmp_path / 'root'}",  # never reached
        "--key", str(example / "keys" / "dev1.key"),
        "--publisher", str(example / "keys" / "publisher.pub"),
        "--input", str(tmp_path / "frame.npy")])
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("edgepack: error:")]
    assert "Traceback" not in err and "connected to" not in err  # refused before the board
    assert line == (f"edgepack: error: --input {tmp_path / 'frame.npy'}: pipeline input 'image' "
                    "is uint8 [480, 640, 3], the file holds uint8 [240, 320, 3]")


def _report_copy(base: dict[str, object], factor: float) -> dict[str, object]:
    r = copy.deepcopy(base)
    for series in [r["end_to_end"], *[s["ms"] for s in r["stages"]]]:  # type: ignore[attr-defined]
        series.update(summarize([v * factor for v in series["samples"]]))
    return r


def test_report_compare_flags_regressions(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(3)
    samples = [rng.uniform(5, 9) for _ in range(50)]
    base: dict[str, object] = {
        "schema": "edgepack.report/1",
        "provenance": {"tool_version": "0", "artifact": "a.epk", "artifact_sha256": "0" * 64,
                       "board": "hi3559a", "target": "ssh://root@127.0.0.1:22"},
        "device": {}, "memory": {"peak_rss_kib": 1},
        "conditions": {"threads": 1, "warmup": 0, "iterations": 50,
                       "before": {"cpus": [], "thermal": []},
                       "after": {"cpus": [], "thermal": []}},
        "load": {"verify_ms": 1.0, "decrypt_ms": 1.0, "prepare_ms": 1.0, "total_ms": 3.0},
        "first_inference_ms": 9.0, "end_to_end": summarize(samples),
        "stages": [{"stage": "model", "runs": 1, "ms": summarize([v / 2 for v in samples])}],
        "accuracy": {"tolerance": 1e-3, "passed": True, "outputs": []},
    }
    validate_report(base)
    for s in [base["end_to_end"], base["stages"][0]["ms"]]:  # type: ignore[index]
        _check_stats(s)
    files = {}
    for name, factor in [("base", 1.0), ("same", 1.0), ("faster", 0.8), ("slower", 1.25)]:
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(_report_copy(base, factor)))
    assert cli_main(["report", "compare", str(files["base"]), str(files["same"])]) == 0
    assert cli_main(["report", "compare", str(files["base"]), str(files["faster"])]) == 0
    capsys.readouterr()
    assert cli_main(["report", "compare", str(files["base"]), str(files["slower"]),
                     "--threshold", "0.1"]) == ExitCode.CHECK_FAILED
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "end-to-end" in out
    assert cli_main(["report", "compare", str(files["base"]), str(files["slower"]),
                     "--threshold", "0.3"]) == 0
    broken = dict(base)
    del broken["accuracy"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(SpecError, match="accuracy"):
        load_report(tmp_path / "broken.json")


def test_bench_of_a_raw_yolo_head_uses_the_golden_summary(vboard: dict[str, object],
                                                          hi3559a_sdk: Path,
                                                          tmp_path: Path) -> None:
    """A real model with a float input (golden input stored as int8 codes x scale) and an
    output over 64 KiB (golden output stored as a summary): the board reads the decoded input
    from the artifact and the host checks its output against the summary. --cpus pins the
    runner's threads (reported back by the runner from /proc)."""
    from real_projects import write_project

    root = write_project(tmp_path / "yolo", "yolov8n")
    assert cli_main(["pack", str(root), "--out", str(root / "y.epk")]) == 0
    out = tmp_path / "y.json"
    assert cli_main([
        "bench", str(root / "y.epk"), "--board", "hi3559a",
        "--target", str(vboard["target"]), "--known-hosts", str(vboard["known_hosts"]),
        "--key", str(root / "keys" / "dev1.key"),
        "--publisher", str(root / "keys" / "publisher.pub"),
        "--iterations", "1", "--warmup", "0", "--sdk", str(hi3559a_sdk),
        "--threads", "2", "--cpus", "0", "--out-json", str(out)]) == 0
    report = load_report(out)
    assert report["conditions"]["cpus"] == [0] and report["conditions"]["threads"] == 2
    acc = report["accuracy"]
    assert acc["passed"]
    (head,) = acc["outputs"]
    assert head["shape"] == [1, 84, 2100] and head["max_abs"] <= acc["tolerance"] * head["scale"]
    assert head["scale"] > 1  # box coordinates: the tolerance scales with them
