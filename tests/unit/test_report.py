# SPDX-License-Identifier: Apache-2.0
"""Bench reports: run facts (emulation), schema versions, the text view, and ``report compare``
(refusals, run-to-run spread, memory, accuracy). The HTML view is in test_report_html.py."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgepack.bench.report import (
    REPORT_SCHEMA,
    compare_reports,
    load_report,
    render_compare,
    render_text,
    run_facts,
    summarize,
    throughput,
    validate_report,
)
from edgepack.cli import main as cli_main
from edgepack.errors import ExitCode, SpecError


def make_report(samples: list[float] | None = None, *, emulated: bool = True,
                crops: int = 4, seed: int = 1) -> dict[str, Any]:
    """A complete report/2 as build_report makes it (values shaped like a classifier run)."""
    rng = np.random.default_rng(seed)
    e2e = samples if samples is not None else [float(v) for v in rng.normal(40.0, 1.5, 60)]
    r: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "provenance": {"tool_version": "0.9.0", "artifact": "classifier.epk",
                       "artifact_sha256": "ab" * 32, "package": {"name": "cls", "version": "1"},
                       "board": "hi3559a", "target": "ssh://root@127.0.0.1:2222",
                       "agent_version": "0.9.0", "agent_sha256": "cd" * 32,
                       "runner_sha256": "ef" * 32,
                       "sdk": {"edgepack_version": "0.9.0", "api_version": "1.2"}},
        "device": {"machine": "aarch64", "cpu_model": "CPU part 0xd03", "cpu_cores": 4},
        "conditions": {"threads": 1, "warmup": 2, "iterations": len(e2e),
                       "before": {"cpus": [{"cpu": 0, "governor": "performance",
                                            "cur_khz": 1600000}], "thermal": []},
                       "after": {"cpus": [], "thermal": []}},
        "load": {"verify_ms": 1.0, "decrypt_ms": 2.0, "prepare_ms": 3.0, "total_ms": 6.0},
        "first_inference_ms": 55.0,
        "end_to_end": summarize(e2e),
        "stages": [{"stage": "preprocess", "runs": 1, "ms": summarize([v * 0.1 for v in e2e])},
                   {"stage": "classifier_with_a_long_name", "runs": crops,
                    "ms": summarize([v * 0.2 for v in e2e])}],
        "memory": {"peak_rss_kib": 20480},
        "accuracy": {"tolerance": 1e-3, "min_cosine": 0.999, "passed": True,
                     "outputs": [{"name": "probs", "shape": [1, 10], "max_abs": 2e-5,
                                  "cosine": 0.9999999, "passed": True}]},
        "run": run_facts("virtual:hi3559a", True, "aarch64" if emulated else "x86_64",
                         host_machine="x86_64", now=datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),
    }
    r["throughput"] = throughput(r["end_to_end"])
    validate_report(r)
    return r


def test_run_facts_tell_emulation_from_native() -> None:
    f = run_facts("virtual:hi3559a", True, "aarch64", host_machine="x86_64")
    assert f["emulated"] and f["virtual_board"] and "qemu-user" in f["execution"]
    assert not run_facts("virtual:host", True, "x86_64", host_machine="x86_64")["emulated"]
    assert not run_facts("virtual:rpi4", True, "arm64", host_machine="aarch64")["emulated"]
    remote = run_facts("ssh://root@10.0.0.5", False, "aarch64", host_machine="x86_64")
    assert not remote["emulated"] and not remote["virtual_board"]
    assert remote["execution"] == "native"


def test_throughput_is_frames_per_second() -> None:
    assert throughput(summarize([10.0, 20.0, 30.0])) == {"fps_mean": 50.0, "fps_p50": 50.0}


def test_text_shows_date_provenance_emulation_and_statistics() -> None:
    r = make_report()
    text = render_text(r)
    assert "2026-11-30T03:00:00Z" in text
    assert "EMULATED" in text and "qemu-user" in text
    for h in ("ab" * 32, "cd" * 32, "ef" * 32):
        assert h in text
    assert f"{r['throughput']['fps_mean']:.2f} FPS" in text
    header = next(line for line in text.splitlines() if line.startswith("series"))
    assert header.split()[:4] == ["series", "runs/iter", "n", "min"] and "std" in header
    row = next(line for line in text.splitlines() if line.startswith("classifier_with"))
    assert row.split()[1] == "4"
    assert "runs/iter: how often a stage ran in one iteration" in text
    assert "EMULATED" not in render_text(make_report(emulated=False))


def test_schema_v2_requires_run_facts_and_v1_still_loads(tmp_path: Path) -> None:
    r = make_report()
    broken = copy.deepcopy(r)
    del broken["run"]
    with pytest.raises(SpecError, match="run"):
        validate_report(broken)
    broken = copy.deepcopy(r)
    broken["run"]["date_utc"] = "yesterday"
    with pytest.raises(SpecError, match=r"run\.date_utc"):
        validate_report(broken)
    old = copy.deepcopy(r)
    old["schema"] = "edgepack.report/1"
    del old["run"], old["throughput"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    text = render_text(load_report(tmp_path / "old.json"))
    assert "unknown (report/1)" in text and "FPS" in text
    old["schema"] = "edgepack.report/9"
    (tmp_path / "future.json").write_text(json.dumps(old))
    with pytest.raises(SpecError, match="unknown report schema"):
        load_report(tmp_path / "future.json")


def _scaled(r: dict[str, Any], factor: float, noise: float = 0.0, seed: int = 2) -> dict[str, Any]:
    out = copy.deepcopy(r)
    rng = np.random.default_rng(seed)
    for series in [out["end_to_end"], *[s["ms"] for s in out["stages"]]]:
        xs = np.asarray(series["samples"]) * factor
        xs = xs + rng.normal(0.0, noise, xs.size) if noise else xs
        series.update(summarize([float(v) for v in xs]))
    out["throughput"] = throughput(out["end_to_end"])
    return out


def _write(tmp_path: Path, **reports: dict[str, Any]) -> dict[str, str]:
    paths = {}
    for name, r in reports.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
        paths[name] = str(tmp_path / f"{name}.json")
    return paths


def test_compare_refuses_different_artifact_board_or_threads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = make_report()
    for field, section, key, value in [("artifact", "provenance", "artifact_sha256", "01" * 32),
                                       ("board", "provenance", "board", "rpi4"),
                                       ("threads", "conditions", "threads", 4)]:
        other = copy.deepcopy(base)
        other[section][key] = value
        f = _write(tmp_path, base=base, other=other)
        assert cli_main(["report", "compare", f["base"], f["other"]]) == ExitCode.USAGE
        err = capsys.readouterr().err
        assert err.count("edgepack: error:") == 1 and f"{field}" in err and "--force" in err
        assert cli_main(["report", "compare", f["base"], f["other"], "--force"]) == 0
        captured = capsys.readouterr()
        assert "warning: comparing anyway (--force)" in captured.err
        assert "WARNING: not comparable" in captured.out


def test_compare_uses_the_spread_to_call_a_change() -> None:
    rng = np.random.default_rng(5)
    base = make_report([float(v) for v in rng.uniform(20.0, 60.0, 12)])  # few, widely spread
    new = make_report([float(v) * 1.12 for v in rng.uniform(20.0, 60.0, 12)])  # another draw
    c = compare_reports(base, new, threshold=0.1)
    beyond = [r for r in c.rows if r.metric in ("p50", "p90") and r.change > 0.1]
    assert beyond and not any(r.significant for r in beyond) and not c.regressed
    assert "within noise" in render_compare(c, 0.1)
    # a tight run: the same +12% is a regression
    tight = make_report([40.0 + 0.01 * i for i in range(60)])
    c = compare_reports(tight, _scaled(tight, 1.12), threshold=0.1)
    assert {(r.name, r.metric) for r in c.regressed} >= {("end-to-end", "p50"),
                                                         ("end-to-end", "p90")}
    assert not compare_reports(tight, _scaled(tight, 0.8), threshold=0.1).failed


def test_compare_memory_and_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = make_report()
    worse = copy.deepcopy(base)
    worse["memory"]["peak_rss_kib"] = 30000
    worse["accuracy"]["passed"] = False
    worse["accuracy"]["outputs"][0].update(max_abs=0.5, cosine=0.9, passed=False)
    worse["conditions"]["iterations"] = 30
    f = _write(tmp_path, base=base, worse=worse)
    assert cli_main(["report", "compare", f["base"], f["worse"]]) == ExitCode.CHECK_FAILED
    out = capsys.readouterr().out
    mem = next(line for line in out.splitlines() if line.startswith("memory"))
    assert "20480" in mem and "30000" in mem and "REGRESSED" in mem
    assert "accuracy: pass -> FAIL (REGRESSED)" in out
    assert "output probs: max-abs 2e-05 -> 0.5" in out
    assert "note: iterations differ" in out
    assert cli_main(["report", "compare", f["base"], f["worse"], "--json"]) == 9
    data = json.loads(capsys.readouterr().out)
    assert data["accuracy_regressed"] and {"series": "memory", "metric": "peak RSS"} in \
        data["regressed"]
    assert all(r["significant"] in (True, False) for r in data["rows"])


def test_output_tolerance_is_relative_to_the_output_scale() -> None:
    """max-abs passes within tolerance x max(1, the reference's largest |value|): box
    coordinates near 640 that differ by float rounding pass; a small output is held to the
    absolute tolerance; the scale is in the entry."""
    from edgepack.bench.report import compare_output

    ref = np.linspace(0.0, 640.0, 1000).astype(np.float32)
    got = ref + np.float32(0.0013)
    wide = compare_output("boxes", got, ref, 1e-3, 0.999)
    assert wide["passed"] and wide["scale"] == 640.0
    assert not compare_output("boxes", ref + np.float32(0.7), ref, 1e-3, 0.999)["passed"]
    small = np.linspace(-0.5, 0.5, 100).astype(np.float32)
    entry = compare_output("scores", small + np.float32(0.002), small, 1e-3, 0.999)
    assert entry["scale"] == 1.0 and not entry["passed"]
    assert compare_output("scores", small + np.float32(0.0005), small, 1e-3, 0.999)["passed"]
