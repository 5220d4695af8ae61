# SPDX-License-Identifier: Apache-2.0
"""``edgepack-run --profile`` on the packed example: one entry per node of every stage graph (in
graph order, with the op and shapes of the device graph), exact FLOPs for the contraction ops,
node medians that add up to about the measured run time, and the profile carried into a bench
report (schema-valid, top-nodes table in the text)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
from opened_artifact import open_demo
from sdk_host import SdkBuild, run

from edgepack.bench.report import render_text, summarize, validate_report
from edgepack.errors import SpecError
from edgepack.lower import device_graph

RUNS = 7


def _open(packed_demo: tuple[Path, Path]) -> tuple[list[str], dict[str, Any], dict[str, bytes]]:
    """Runner arguments (with the golden inputs, so the detector finds boxes and the
    per-box classifier runs), the manifest and the sections."""
    demo = open_demo(packed_demo)
    inputs = demo.write_golden_inputs(packed_demo[1] / "golden-inputs")
    args = [str(demo.epk), *demo.key_args, "--inputs", str(inputs)]
    return args, demo.manifest, demo.sections


def _zero_inputs(args: list[str]) -> list[str]:
    """The runner arguments without --inputs (zero-filled inputs, any stage)."""
    at = args.index("--inputs")
    return args[:at] + args[at + 2:]


def _profile_run(sdk: SdkBuild, args: list[str], out: Path, *extra: str) -> dict[str, Any]:
    report = out / "run.json"
    res = run([sdk.runner, *args, "--bench", str(RUNS), "--warmup", "1", "--json", report,
               "--profile", *extra])
    assert "profile:" in res.stdout and "slowest" in res.stdout
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def test_profile_lists_every_node_with_shapes_and_flops(sdk_host: SdkBuild,
                                                       packed_demo: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    args, manifest, sections = _open(packed_demo)
    data = _profile_run(sdk_host, args, tmp_path)
    prof = data["profile"]
    assert prof["runs"] == RUNS
    nodes = prof["nodes"]
    expected = []
    for st in manifest["stages"]:
        g = device_graph.parse(sections[st["graph"]])
        expected += [(st["name"], n.name, n.op_type) for n in g.nodes]
    assert [(n["stage"], n["name"], n["op"]) for n in nodes] == expected
    contraction = 0
    for n in nodes:
        assert n["samples"] >= RUNS and n["ms"] >= 0 and n["flops"] >= 0
        if n["ms"] > 0:
            # both printed rounded (ms to 1 ns, GFLOP/s to 1e-4)
            assert n["gflops"] == pytest.approx(n["flops"] / (n["ms"] * 1e6), rel=0.02, abs=2e-3)
        if n["op"] == "Conv":
            contraction += 1
            out, w = n["outputs"][0], n["inputs"][1]
            assert n["flops_exact"]
            assert n["flops"] == 2 * math.prod(out) * math.prod(w[1:])
        elif n["op"] in ("Gemm", "MatMul"):
            contraction += 1
            assert n["flops_exact"] and n["flops"] > 0
        elif n["op"] in ("Relu", "Add", "Sigmoid", "Mul"):
            assert not n["flops_exact"]
    assert contraction > 0, "the example has convolutions: their FLOPs must be exact"


def test_profile_times_add_up_to_the_run(sdk_host: SdkBuild, packed_demo: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    args, manifest, _ = _open(packed_demo)
    stage = manifest["stages"][1]["name"] if len(manifest["stages"]) > 1 else \
        manifest["stages"][0]["name"]
    data = _profile_run(sdk_host, _zero_inputs(args), tmp_path, "--stage", stage)
    prof = data["profile"]
    # Every stage's nodes are listed; only the chosen stage ran.
    assert {n["stage"] for n in prof["nodes"] if n["samples"]} == {stage}
    assert all(n["samples"] == RUNS for n in prof["nodes"] if n["stage"] == stage)
    assert all(n["ms"] == 0 for n in prof["nodes"] if n["stage"] != stage)
    node_sum = sum(n["ms"] for n in prof["nodes"])
    assert prof["total_ms"] == pytest.approx(node_sum, rel=1e-3, abs=1e-3)
    run_ms = data["end_to_end"]["p50"]
    # Medians of parts need not add up exactly to the median of the whole; the clock reads
    # between nodes are outside the node times.
    assert 0.5 * run_ms <= node_sum <= 1.25 * run_ms + 0.05, (node_sum, run_ms)


def test_without_profile_the_report_has_none(sdk_host: SdkBuild, packed_demo: tuple[Path, Path],
                                             tmp_path: Path) -> None:
    args, _, _ = _open(packed_demo)
    report = tmp_path / "run.json"
    res = run([sdk_host.runner, *args, "--bench", "2", "--json", report])
    assert "profile:" not in res.stdout
    assert json.loads(report.read_text())["profile"] is None


def _bench_report(profile: dict[str, Any]) -> dict[str, Any]:
    samples = [5.0, 6.0, 7.0]
    return {
        "schema": "edgepack.report/1",
        "provenance": {"tool_version": "0", "artifact": "a.epk", "artifact_sha256": "0" * 64,
                       "board": "hi3559a", "target": "ssh://root@127.0.0.1:22"},
        "device": {}, "memory": {"peak_rss_kib": 1},
        "conditions": {"threads": 1, "warmup": 0, "iterations": 3,
                       "before": {"cpus": [], "thermal": []},
                       "after": {"cpus": [], "thermal": []}},
        "load": {"verify_ms": 1.0, "decrypt_ms": 1.0, "prepare_ms": 1.0, "total_ms": 3.0},
        "first_inference_ms": 9.0, "end_to_end": summarize(samples),
        "stages": [{"stage": "model", "runs": 1, "ms": summarize(samples)}],
        "accuracy": {"tolerance": 1e-3, "min_cosine": 0.999, "passed": True, "outputs": []},
        "profile": profile,
    }


def test_bench_report_carries_the_profile(sdk_host: SdkBuild, packed_demo: tuple[Path, Path],
                                          tmp_path: Path) -> None:
    args, _, _ = _open(packed_demo)
    prof = _profile_run(sdk_host, args, tmp_path)["profile"]
    report = _bench_report(prof)
    validate_report(report)
    text = render_text(report)
    slowest = max(prof["nodes"], key=lambda n: n["ms"])
    table = text[text.index("profile: "):]
    assert f"{len(prof['nodes'])} nodes" in table and "GFLOP/s" in table
    assert slowest["name"] in table.splitlines()[3]  # header, rule line, then the slowest
    assert len(table.strip().splitlines()) == 3 + min(10, len(prof["nodes"]))

    broken = _bench_report({**prof, "nodes": [{**prof["nodes"][0], "ms": "fast"}]})
    with pytest.raises(SpecError, match=r"profile\.nodes\.0\.ms"):
        validate_report(broken)


def test_profile_flag_in_usage(sdk_host: SdkBuild) -> None:
    res = subprocess.run([str(sdk_host.runner), "--help"], capture_output=True, text=True,
                         check=True)
    assert "--profile" in res.stdout
