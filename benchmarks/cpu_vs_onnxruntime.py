# SPDX-License-Identifier: Apache-2.0
"""edgepack's built-in CPU runtime vs onnxruntime on ResNet-18 and MobileNetV2 (224, batch 1).

Builds the seeded zoo models, optimises (BN folded) and lowers them, builds the SDK (Release),
checks that edgepack's outputs match onnxruntime's, then measures both in one run, interleaved
per (model, threads): onnxruntime with intra_op_num_threads = T (inter_op 1, sequential, all
graph optimisations) and `edgepack-graph-run --bench N --warmup W --threads T`. Prints a table
and writes JSON (median and p90 of per-iteration times, edgepack/ORT ratio). Target: ratio <= 1.5
at 1 thread.

    .venv/bin/python benchmarks/cpu_vs_onnxruntime.py [--iterations 50] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))

sys.path.insert(0, str(REPO / "benchmarks"))

import timing  # noqa: E402
from timing import build_graph_run, cpu_model, npy_name, ort_session, stats  # noqa: E402

from edgepack.lower.lowering import lower  # noqa: E402
from edgepack.model import zoo  # noqa: E402
from edgepack.model.optimize import optimize  # noqa: E402

BUILD = REPO / "build" / "bench-sdk-release"
MODELS = {"resnet18": zoo.resnet18, "mobilenet_v2": zoo.mobilenet_v2}


def build_sdk() -> Path:
    return build_graph_run(BUILD)


def run_graph(tool: Path, graph: Path, inputs: Path, outputs: Path, threads: int, iters: int,
              warmup: int, report: Path) -> list[float]:
    """Per-iteration ms of one timed graph-run (none for a plain run writing ``outputs``)."""
    data = timing.run_graph(tool, graph, inputs, threads, iters, warmup, report, outputs)
    return list(data.get("samples", []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per configuration")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path,
                    default=REPO / "benchmarks" / "results" / "cpu_vs_onnxruntime.json")
    args = ap.parse_args()

    tool = build_sdk()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, build in MODELS.items():
            model, _ = optimize(build(seed=0))
            graph = tmp / f"{name}.epg"
            graph.write_bytes(lower(model))
            inputs, outputs = tmp / f"{name}-in", tmp / f"{name}-out"
            inputs.mkdir()
            outputs.mkdir()
            rng = np.random.default_rng(0)
            feeds = {}
            for gi in model.graph.input:
                dims = [d.dim_value for d in gi.type.tensor_type.shape.dim]
                feeds[gi.name] = rng.standard_normal(dims).astype(np.float32)
                np.save(inputs / npy_name(gi.name), feeds[gi.name])
            # Correctness first: edgepack vs onnxruntime on the same input.
            run_graph(tool, graph, inputs, outputs, 1, 0, 0, tmp / "unused.json")
            ref = ort_session(model, 1).run(None, feeds)
            worst = 0.0
            for go, want in zip(model.graph.output, ref, strict=True):
                got = np.load(outputs / npy_name(go.name))
                worst = max(worst, float(np.max(np.abs(got - want))))
                if not np.allclose(got, want, rtol=1e-3, atol=1e-3):
                    raise SystemExit(f"{name}: output '{go.name}' differs from onnxruntime "
                                     f"(max abs {worst:.3g})")
            for threads in args.threads:
                sess = ort_session(model, threads)
                ort_s: list[float] = []
                ep_s: list[float] = []
                round_ratios: list[float] = []
                for _ in range(args.rounds):  # interleaved, so drift hits both equally
                    o_r, _ = timing.time_ort(sess, feeds, args.iterations, args.warmup)
                    e_r = run_graph(tool, graph, inputs, outputs, threads, args.iterations,
                                    args.warmup, tmp / "report.json")
                    round_ratios.append(float(np.median(e_r) / np.median(o_r)))
                    ort_s += o_r
                    ep_s += e_r
                o, e = stats(ort_s), stats(ep_s)
                rows.append({"model": name, "threads": threads, "onnxruntime": o, "edgepack": e,
                             "ratio_median": e["median_ms"] / o["median_ms"],
                             "ratio_per_round": round_ratios,
                             "max_abs_diff_vs_ort": worst})

    print(f"{'model':<14}{'thr':>4}{'ORT med':>10}{'ORT p90':>10}{'EP med':>10}{'EP p90':>10}"
          f"{'EP/ORT':>8}  per round")
    for r in rows:
        per_round = " ".join(f"{x:.2f}" for x in r["ratio_per_round"])
        print(f"{r['model']:<14}{r['threads']:>4}{r['onnxruntime']['median_ms']:>10.2f}"
              f"{r['onnxruntime']['p90_ms']:>10.2f}{r['edgepack']['median_ms']:>10.2f}"
              f"{r['edgepack']['p90_ms']:>10.2f}{r['ratio_median']:>8.2f}  {per_round}")
    result = {
        "benchmark": "cpu_vs_onnxruntime",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "versions": {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "iterations": args.iterations, "warmup": args.warmup, "rounds": args.rounds,
        "target": "ratio_median <= 1.5 at 1 thread",
        # Other processes compete for the cores: 1-minute load average around the measurement.
        "loadavg_1min": {"before": load_before[0], "after": os.getloadavg()[0]},
        "results": rows,
    }
    timing.write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
