# SPDX-License-Identifier: Apache-2.0
"""edgepack's CPU runtime vs onnxruntime on the real-model suite (tests/data/real_models).

Each model (weights refilled by tests/real_models.py) goes through ingest (opset 17, optimised,
static shapes) and lowering to a device graph, which `edgepack-graph-run` runs: the runtime
edgepack-run uses, without the artifact's verify/decrypt (load time is not measured here).
onnxruntime runs the original model (all graph optimisations, intra-op threads = T, inter-op 1,
sequential). Outputs are checked against onnxruntime first. Then, per thread count, R rounds
interleave the two (ORT N runs, edgepack N runs, next model...), so load drifts hit both: the
ratio is edgepack median / ORT median over all rounds, with the spread of the per-round ratios.
At 1 thread it also reports CPU time per run (edgepack: the runner's user + system time, less a
1-run baseline, over the extra runs; onnxruntime: process time over its timed runs), a ratio that
other processes on the machine disturb much less than wall time.
Prints a table (per model and thread count), the geometric mean and the worst ratio per thread
count, and the 5 slowest nodes of the worst model at 1 thread (edgepack-graph-run --profile);
writes JSON (default benchmarks/results/real_models.json) with the load average around it.
With --baseline-tool (an edgepack-graph-run built from an earlier commit) that runner is timed
in the same rounds on the same graphs, so before/after compare under the same load.

    .venv/bin/python benchmarks/real_models.py [--models resnet18 ...] [--threads 1 2]
        [--iterations 20] [--rounds 3] [--build DIR] [--baseline-tool PATH]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))
sys.path.insert(0, str(REPO / "tests"))

from timing import (  # noqa: E402  (benchmarks/timing.py: the loop cpu_vs_onnxruntime shares)
    build_graph_run,
    cpu_model,
    npy_name,
    ort_session,
    run_graph,
    time_ort,
    write_result,
)

from edgepack.lower.lowering import lower  # noqa: E402
from edgepack.model.ingest import ingest_model  # noqa: E402
from edgepack.spec.project import InputSpec, ModelSpec  # noqa: E402
from real_models import BY_NAME, load_real_model, save_real_model  # noqa: E402

DEFAULT_MODELS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                  "efficientnet_b0", "shufflenet_v2_x1_0", "yolov8n", "yolo11n",
                  "convnext_atto", "vit_tiny_patch16_224", "mobilevit_xxs"]


class Prepared:
    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        spec = BY_NAME[name]
        folder = tmp / name
        folder.mkdir()
        self.original = load_real_model(name)
        path = save_real_model(name, folder)
        ingested = ingest_model(ModelSpec(name, path, tuple(
            InputSpec(k, v) for k, v in spec.inputs.items())))
        self.graph = folder / f"{name}.epg"
        self.graph.write_bytes(lower(ingested.onnx))
        self.inputs = folder / "in"
        self.outputs = folder / "out"
        self.inputs.mkdir()
        self.outputs.mkdir()
        rng = np.random.default_rng(0)
        self.feeds = {k: rng.random(v, np.float32) for k, v in spec.inputs.items()}
        for k, v in self.feeds.items():
            np.save(self.inputs / npy_name(k), v)
        self.output_names = [o.name for o in ingested.onnx.graph.output]


def check_outputs(tool: Path, m: Prepared, tmp: Path) -> float:
    """Largest |edgepack - onnxruntime| relative to the output's scale; raises if > 1e-3."""
    run_graph(tool, m.graph, m.inputs, 1, 0, 0, tmp / "unused.json", outputs=m.outputs)
    ref = ort_session(m.original, 1).run(None, m.feeds)
    worst = 0.0
    for name, want in zip(m.output_names, ref, strict=True):
        got = np.load(m.outputs / npy_name(name))
        scale = max(1.0, float(np.max(np.abs(want))))
        worst = max(worst, float(np.max(np.abs(got - want))) / scale)
    if worst > 1e-3:
        raise RuntimeError(f"outputs differ from onnxruntime (max relative diff {worst:.3g})")
    return worst


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=sorted(BY_NAME))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--build", type=Path, default=REPO / "build" / "bench-sdk-release")
    ap.add_argument("--tool", type=Path, help="a built edgepack-graph-run (skips the build)")
    ap.add_argument("--baseline-tool", type=Path,
                    help="an edgepack-graph-run of an earlier commit, timed in the same rounds")
    ap.add_argument("--json", type=Path,
                    default=REPO / "benchmarks" / "results" / "real_models.json")
    args = ap.parse_args()

    tool = args.tool or build_graph_run(args.build)
    load_before = os.getloadavg()
    started = time.monotonic()
    skipped: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    worst_profile: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        models: list[Prepared] = []
        diffs: dict[str, float] = {}
        for name in args.models:
            try:
                m = Prepared(name, tmp)
                diffs[name] = check_outputs(tool, m, tmp)
                models.append(m)
            except Exception as exc:  # a model that fails is reported, not fatal
                skipped[name] = str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
                print(f"{name}: skipped: {skipped[name]}", file=sys.stderr)
        samples: dict[tuple[str, int], dict[str, list[float]]] = {
            (m.name, t): {"ort": [], "edgepack": [], "ratios": [], "cpu_ratios": [],
                          "baseline": []}
            for m in models for t in args.threads}
        sessions = {(m.name, t): ort_session(m.original, t) for m in models for t in args.threads}
        for _ in range(args.rounds):
            for threads in args.threads:
                for m in models:
                    s = samples[(m.name, threads)]
                    o, o_cpu = time_ort(sessions[(m.name, threads)], m.feeds, args.iterations,
                                        args.warmup)
                    run = run_graph(tool, m.graph, m.inputs, threads, args.iterations,
                                    args.warmup, tmp / "report.json")
                    e = run["samples_ms"]
                    if args.baseline_tool is not None:
                        s["baseline"] += run_graph(args.baseline_tool, m.graph, m.inputs,
                                                   threads, args.iterations, args.warmup,
                                                   tmp / "baseline.json")["samples_ms"]
                    s["ort"] += o
                    s["edgepack"] += e
                    s["ratios"].append(float(np.median(e) / np.median(o)))
                    if threads == 1 and args.iterations + args.warmup > 1:
                        base = run_graph(tool, m.graph, m.inputs, 1, 1, 0,
                                         tmp / "base.json")["process_cpu_s"]
                        e_cpu = (run["process_cpu_s"] - base) * 1e3 / (
                            args.iterations + args.warmup - 1)
                        s["cpu_ratios"].append(e_cpu / o_cpu)
        for m in models:
            for threads in args.threads:
                s = samples[(m.name, threads)]
                o_med, e_med = float(np.median(s["ort"])), float(np.median(s["edgepack"]))
                rows.append({
                    "model": m.name, "threads": threads,
                    "onnxruntime_ms": {"median": o_med,
                                       "p10": float(np.percentile(s["ort"], 10)),
                                       "p90": float(np.percentile(s["ort"], 90))},
                    "edgepack_ms": {"median": e_med,
                                    "p10": float(np.percentile(s["edgepack"], 10)),
                                    "p90": float(np.percentile(s["edgepack"], 90))},
                    "ratio": e_med / o_med,
                    "ratio_per_round": s["ratios"],
                    "cpu_ratio": float(np.median(s["cpu_ratios"])) if s["cpu_ratios"] else None,
                    "cpu_ratio_per_round": s["cpu_ratios"],
                    "max_rel_diff_vs_ort": diffs[m.name],
                    "baseline_ms": float(np.median(s["baseline"])) if s["baseline"] else None,
                    "baseline_ratio": (float(np.median(s["baseline"])) / o_med
                                       if s["baseline"] else None),
                })
        one = [r for r in rows if r["threads"] == min(args.threads)]
        if one:
            worst_name = max(one, key=lambda r: r["ratio"])["model"]
            wm = next(m for m in models if m.name == worst_name)
            try:
                prof = run_graph(tool, wm.graph, wm.inputs, min(args.threads), args.iterations,
                                 args.warmup, tmp / "profile.json", profile=True)["profile"]
            except RuntimeError as exc:  # a runner without --profile
                print(f"no profile of {worst_name}: {exc}", file=sys.stderr)
                prof = {"nodes": []}
            total = sum(n["ms"] for n in prof["nodes"]) or 1.0
            for n in sorted(prof["nodes"], key=lambda n: n["ms"], reverse=True)[:5]:
                worst_profile.append({"model": worst_name, "name": n["name"], "op": n["op"],
                                      "inputs": n["inputs"], "outputs": n["outputs"],
                                      "ms": n["ms"], "share": n["ms"] / total,
                                      "gflops": n["gflops"]})

    summary = {}
    for threads in args.threads:
        ratios = [r["ratio"] for r in rows if r["threads"] == threads]
        worst = max((r for r in rows if r["threads"] == threads), key=lambda r: r["ratio"],
                    default=None)
        cpu = [r["cpu_ratio"] for r in rows
               if r["threads"] == threads and r["cpu_ratio"] and r["cpu_ratio"] > 0]
        base = [r["baseline_ratio"] for r in rows
                if r["threads"] == threads and r["baseline_ratio"]]
        summary[str(threads)] = {"geomean_ratio": geomean(ratios),
                                 "baseline_geomean_ratio": geomean(base) if base else None,
                                 "geomean_cpu_ratio": geomean(cpu) if cpu else None,
                                 "worst_ratio": worst["ratio"] if worst else None,
                                 "worst_model": worst["model"] if worst else None}
    # per model: edgepack's T-thread median over its 1-thread median, for every T > 1, and the
    # thread counts at which a run got slower than with the next smaller count
    median_ms = {(r["model"], r["threads"]): r["edgepack_ms"]["median"] for r in rows}
    counts = sorted(args.threads)
    scaling: dict[str, dict[str, float]] = {}
    slower: dict[str, list[int]] = {}
    if 1 in counts:
        for name in sorted({r["model"] for r in rows}):
            scaling[name] = {str(t): median_ms[(name, t)] / median_ms[(name, 1)]
                             for t in counts if t > 1}
            worse = [t for a, t in itertools.pairwise(counts)
                     if median_ms[(name, t)] > median_ms[(name, a)]]
            if worse:
                slower[name] = worse

    print(f"{'model':<22}{'thr':>4}{'ORT ms':>9}{'EP ms':>9}{'EP/ORT':>8}{'CPU r':>7}"
          f"{'base/ORT':>9}  per-round ratios")
    for r in rows:
        per_round = " ".join(f"{x:.2f}" for x in r["ratio_per_round"])
        cpu_r = f"{r['cpu_ratio']:.2f}" if r["cpu_ratio"] else "-"
        base_r = f"{r['baseline_ratio']:.2f}" if r["baseline_ratio"] else "-"
        print(f"{r['model']:<22}{r['threads']:>4}{r['onnxruntime_ms']['median']:>9.2f}"
              f"{r['edgepack_ms']['median']:>9.2f}{r['ratio']:>8.2f}{cpu_r:>7}{base_r:>9}  "
              f"{per_round}")
    for threads, s in summary.items():
        cpu_g = f", CPU-time geometric mean {s['geomean_cpu_ratio']:.2f}" \
            if s["geomean_cpu_ratio"] else ""
        base_g = f", baseline runner {s['baseline_geomean_ratio']:.2f}" \
            if s["baseline_geomean_ratio"] else ""
        print(f"threads {threads}: geometric mean {s['geomean_ratio']:.2f}, worst "
              f"{s['worst_ratio'] or 0:.2f} ({s['worst_model']}){cpu_g}{base_g}")
    if scaling:
        print("edgepack T-thread / 1-thread time:")
        for name, by_t in scaling.items():
            print(f"  {name:<22}" + "  ".join(f"T={t} {v:.2f}" for t, v in by_t.items()) +
                  (f"  (slower at T={', '.join(map(str, slower[name]))})"
                   if name in slower else ""))
    if worst_profile:
        print(f"slowest nodes of {worst_profile[0]['model']} (threads {min(args.threads)}):")
        for n in worst_profile:
            shape = "x".join(str(d) for d in n["outputs"][0]) if n["outputs"] else "-"
            print(f"  {n['ms']:8.3f} ms {100 * n['share']:5.1f}% {n['gflops']:7.2f} GFLOP/s  "
                  f"{n['op']:<14} {shape:<16} {n['name']}")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    load_after = os.getloadavg()
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{os.cpu_count()} cores; {time.monotonic() - started:.0f} s")
    result = {
        "benchmark": "real_models",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "versions": {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
                     "numpy": np.__version__, "python": platform.python_version()},
        "iterations": args.iterations, "warmup": args.warmup, "rounds": args.rounds,
        # the file name only: a path on the machine that ran it says nothing to a reader
        "baseline_tool": args.baseline_tool.name if args.baseline_tool else None,
        "targets": "1 thread: geometric mean <= 1.0, no model above 1.3; 2 and 4 threads: "
                   "geometric mean <= 1.0; 2 threads at most 0.85x the 1-thread time; no run "
                   "slower with more threads",
        "loadavg_1min": {"before": load_before[0], "after": load_after[0]},
        "summary": summary,
        "scaling_over_1_thread": scaling,
        "slower_with_more_threads": slower,
        "results": rows,
        "worst_model_top_nodes": worst_profile,
        "skipped": skipped,
    }
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
