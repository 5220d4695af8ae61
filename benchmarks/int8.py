# SPDX-License-Identifier: Apache-2.0
"""int8 vs float32: edgepack's CPU runtime and onnxruntime at 1 thread (issue 13).

Each model (tests/data/real_models, weights refilled) is ingested twice: float32, and with
``[models.quantize] dtype = "int8"`` (onnxruntime quantize_static over ``--calibration`` seeded
uniform [0, 1) inputs, minmax, per-channel weights: edgepack.model.quantize). Both are lowered
to device graphs that ``edgepack-graph-run`` runs; onnxruntime runs the ingested float32 graph
and the same QDQ graph (all graph optimisations: it fuses QDQ into its int8 kernels), 1 intra-op
thread. edgepack's int8 outputs are checked against onnxruntime's (cosine) before timing. R
rounds interleave the four (N runs each) so machine load hits all of them; medians over all
rounds; also the minima, and CPU ms per run (process CPU time, edgepack's less that of a 1-run
process: load and prepare), which a loaded machine moves far less than wall time. A profiled run
of each int8 graph (graph-run --profile) adds ms per op type and the slowest nodes to the JSON
("int8_profile") and prints the op types. Targets from the issue: edgepack int8 >= 1.8x faster
than edgepack fp32, and edgepack int8 / onnxruntime int8 <= 1.0.

With --baseline-tool (an edgepack-graph-run built from an earlier commit) that runner also runs
both graphs in the same rounds: before/after under the same load. The int8 graph is also lowered
without table lookups for element-wise chains (``lower(..., int8_tables=False)``: YOLOv8n's
SiLU in float32 between Q/DQ) and timed in the same rounds ("int8 no tables").

Prints a table and writes JSON (default benchmarks/results/int8.json; the run it replaces is
kept there under "earlier").

    .venv/bin/python benchmarks/int8.py [--models resnet18 mobilenet_v2 yolov8n]
        [--iterations 10] [--rounds 3] [--calibration 8] [--tool PATH] [--baseline-tool PATH]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))
sys.path.insert(0, str(REPO / "tests"))

from edgepack.lower.lowering import lower  # noqa: E402
from edgepack.model.ingest import ingest_model  # noqa: E402
from edgepack.spec.project import InputSpec, ModelSpec, QuantizeSpec  # noqa: E402
from real_models import BY_NAME, save_real_model  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_real_models",
                                               REPO / "benchmarks" / "real_models.py")
assert _spec is not None and _spec.loader is not None
rm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rm)

DEFAULT_MODELS = ["resnet18", "mobilenet_v2", "yolov8n"]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


class Variant:
    """One lowered graph of a model (float32 or int8) with its inputs on disk."""

    def __init__(self, folder: Path, onnx_model: Any, feeds: dict[str, np.ndarray],
                 tables: bool = True) -> None:
        folder.mkdir()
        self.onnx = onnx_model
        self.graph = folder / "model.epg"
        self.graph.write_bytes(lower(onnx_model, int8_tables=tables))
        self.inputs, self.outputs = folder / "in", folder / "out"
        self.inputs.mkdir()
        self.outputs.mkdir()
        for k, v in feeds.items():
            np.save(self.inputs / rm.npy_name(k), v)
        self.output_names = [o.name for o in onnx_model.graph.output]


def prepare(name: str, tmp: Path, samples: int) -> tuple[dict[str, np.ndarray], Variant, Variant,
                                                          Variant, dict[str, Any]]:
    spec = BY_NAME[name]
    folder = tmp / name
    folder.mkdir()
    path = save_real_model(name, folder)
    calib = folder / "calib"
    calib.mkdir()
    rng = np.random.default_rng(1)
    for i in range(samples):
        for k, shape in spec.inputs.items():
            np.save(calib / f"{k}_{i}.npy", rng.random(shape, np.float32))
    inputs = tuple(InputSpec(k, v) for k, v in spec.inputs.items())
    fp32 = ingest_model(ModelSpec(name, path, inputs))
    t0 = time.monotonic()
    q = ingest_model(ModelSpec(name, path, inputs, quantize=QuantizeSpec(
        dtype="int8", calibration=calib, min_cosine=0.0, min_top1=0.0)))
    quantise_s = time.monotonic() - t0
    assert q.quantization is not None
    feeds = {k: np.random.default_rng(0).random(v, np.float32) for k, v in spec.inputs.items()}
    info = {"quantise_s": quantise_s, "calibration_samples": samples,
            "agreement_vs_fp32": q.quantization.agreement.to_manifest()}
    return (feeds, Variant(folder / "fp32", fp32.onnx, feeds),
            Variant(folder / "int8", q.onnx, feeds),
            Variant(folder / "int8_notab", q.onnx, feeds, tables=False), info)


def cpu_ms_per_run(runner: Path, variant: Variant, timed: dict[str, Any],
                   args: argparse.Namespace, tmp: Path) -> float:
    """CPU ms per run of ``timed`` (a graph-run of args.iterations + args.warmup runs): its
    process CPU time less that of a 1-run process (load and prepare), per extra run. On a
    loaded machine CPU time moves far less than wall time (time slices of other processes)."""
    one = rm.run_graph(runner, variant.graph, variant.inputs, 1, 1, 0, tmp / "one.json")
    runs = args.iterations + args.warmup - 1
    return max(0.0, float(timed["process_cpu_s"]) - float(one["process_cpu_s"])) * 1e3 / runs


def profile_summary(profile: dict[str, Any]) -> dict[str, Any]:
    """graph-run's --profile of the int8 graph: ms per op type and the 5 slowest nodes."""
    by_op: dict[str, float] = {}
    for n in profile["nodes"]:
        by_op[n["op"]] = by_op.get(n["op"], 0.0) + float(n["ms"])
    slowest = sorted(profile["nodes"], key=lambda n: -float(n["ms"]))[:5]
    return {"total_ms": float(profile["total_ms"]),
            "ms_by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
            "slowest": [{"name": n["name"], "op": n["op"], "ms": float(n["ms"])}
                        for n in slowest]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=sorted(BY_NAME))
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calibration", type=int, default=8, help="calibration samples")
    ap.add_argument("--build", type=Path, default=REPO / "build" / "bench-sdk-release")
    ap.add_argument("--tool", type=Path, help="a built edgepack-graph-run (skips the build)")
    ap.add_argument("--baseline-tool", type=Path,
                    help="an edgepack-graph-run of an earlier commit, timed in the same rounds")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "int8.json")
    args = ap.parse_args()

    tool = args.tool or rm.build_graph_run(args.build)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in args.models:
            feeds, fp32, int8, notab, info = prepare(name, tmp, args.calibration)
            ort_fp32, ort_int8 = rm.ort_session(fp32.onnx, 1), rm.ort_session(int8.onnx, 1)
            rm.run_graph(tool, int8.graph, int8.inputs, 1, 0, 0, tmp / "x.json",
                         outputs=int8.outputs)
            want = dict(zip(int8.output_names, ort_int8.run(None, feeds), strict=True))
            cos = min(cosine(np.load(int8.outputs / rm.npy_name(k)), v) for k, v in want.items())
            runners = [("ep", tool)]
            if args.baseline_tool is not None:
                runners.append(("base", args.baseline_tool))
            times: dict[str, list[float]] = {"ort_fp32": [], "ort_int8": []}
            cpu: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for who, runner in runners:
                    for kind, variant in (("fp32", fp32), ("int8", int8)):
                        key = f"{who}_{kind}"
                        data = rm.run_graph(runner, variant.graph, variant.inputs, 1,
                                            args.iterations, args.warmup, tmp / f"{key}.json")
                        times.setdefault(key, []).extend(float(s) for s in data["samples_ms"])
                        cpu.setdefault(key, []).append(
                            cpu_ms_per_run(runner, variant, data, args, tmp))
                data = rm.run_graph(tool, notab.graph, notab.inputs, 1, args.iterations,
                                    args.warmup, tmp / "notab.json")
                times.setdefault("ep_int8_notab", []).extend(float(s)
                                                             for s in data["samples_ms"])
                for key, sess in (("ort_fp32", ort_fp32), ("ort_int8", ort_int8)):
                    wall, cpu_ms = rm.time_ort(sess, feeds, args.iterations, args.warmup)
                    times[key] += wall
                    cpu.setdefault(key, []).append(cpu_ms)
            prof = rm.run_graph(tool, int8.graph, int8.inputs, 1, args.iterations, args.warmup,
                                tmp / "profile.json", profile=True)["profile"]
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({
                "model": name, "median_ms": med,
                "min_ms": {k: min(v) for k, v in times.items()},
                "cpu_ms": {k: statistics.median(v) for k, v in cpu.items()},
                "ep_int8_speedup_vs_ep_fp32": med["ep_fp32"] / med["ep_int8"],
                "ep_int8_over_ort_int8": med["ep_int8"] / med["ort_int8"],
                "ep_int8_no_tables_speedup_vs_ep_fp32": med["ep_fp32"] / med["ep_int8_notab"],
                "ort_int8_speedup_vs_ort_fp32": med["ort_fp32"] / med["ort_int8"],
                "spread_ms": {k: [float(np.percentile(v, 10)), float(np.percentile(v, 90))]
                              for k, v in times.items()},
                "baseline_int8_speedup_vs_fp32": (med["base_fp32"] / med["base_int8"]
                                                  if "base_int8" in med else None),
                "baseline_int8_over_ort_int8": (med["base_int8"] / med["ort_int8"]
                                                if "base_int8" in med else None),
                "cosine_ep_int8_vs_ort_int8": cos, "int8_profile": profile_summary(prof),
                **info})

    head = (f"{'model':<14}{'ep fp32':>9}{'ep int8':>9}{'ep x':>7}{'no tab':>8}{'x':>6}"
            f"{'ort fp32':>10}{'ort int8':>10}{'ort x':>7}{'ep8/ort8':>10}{'cos':>8}")
    print(head)
    for r in rows:
        m = r["median_ms"]
        print(f"{r['model']:<14}{m['ep_fp32']:>9.2f}{m['ep_int8']:>9.2f}"
              f"{r['ep_int8_speedup_vs_ep_fp32']:>7.2f}{m['ep_int8_notab']:>8.2f}"
              f"{r['ep_int8_no_tables_speedup_vs_ep_fp32']:>6.2f}{m['ort_fp32']:>10.2f}"
              f"{m['ort_int8']:>10.2f}{r['ort_int8_speedup_vs_ort_fp32']:>7.2f}"
              f"{r['ep_int8_over_ort_int8']:>10.2f}{r['cosine_ep_int8_vs_ort_int8']:>8.4f}")
    for r in rows:  # minima and CPU time: less moved by other processes than wall medians
        for what, m in (("minimum wall ms", r["min_ms"]), ("median CPU ms", r["cpu_ms"])):
            print(f"{what}, {r['model']}: ep fp32 {m['ep_fp32']:.2f}, ep int8 "
                  f"{m['ep_int8']:.2f} (x {m['ep_fp32'] / m['ep_int8']:.2f}), ort int8 "
                  f"{m['ort_int8']:.2f} (ep8/ort8 {m['ep_int8'] / m['ort_int8']:.2f})")
    for r in rows:
        by_op = list(r["int8_profile"]["ms_by_op"].items())[:5]
        ops = ", ".join(f"{op} {ms:.2f}" for op, ms in by_op)
        print(f"int8 profile, {r['model']} (ms per op type): {ops}")
    for r in rows:
        if r["baseline_int8_speedup_vs_fp32"] is not None:
            m = r["median_ms"]
            print(f"baseline runner, {r['model']}: fp32 {m['base_fp32']:.2f} ms, int8 "
                  f"{m['base_int8']:.2f} ms, x {r['baseline_int8_speedup_vs_fp32']:.2f}, "
                  f"int8/ort8 {r['baseline_int8_over_ort_int8']:.2f}")
    print("ms = median wall time per run at 1 thread; ep x = edgepack fp32 / int8 (target "
          ">= 1.8); no tab = edgepack int8 with element-wise chains in float32 (x: fp32 / it); "
          "ep8/ort8 = edgepack int8 / onnxruntime int8 (target <= 1.0)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    earlier = None  # the previous run stays in the file, one level deep
    if args.json.exists():
        previous = json.loads(args.json.read_text())
        earlier = {k: v for k, v in previous.items() if k != "earlier"}
    args.json.write_text(json.dumps({
        "benchmark": "int8", "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "cpu": rm.cpu_model(), "threads": 1, "iterations": args.iterations,
        "rounds": args.rounds,
        "baseline_tool": args.baseline_tool.name if args.baseline_tool else None,
        "load_before": load_before, "load_after": os.getloadavg(),
        "rows": rows, "earlier": earlier}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
