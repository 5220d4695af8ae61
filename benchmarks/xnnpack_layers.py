# SPDX-License-Identifier: Apache-2.0
"""XNNPACK (Debian's libxnnpack) vs edgepack's own kernels vs onnxruntime on single conv layers.

Issue 12 allows an XNNPACK backend "if own kernels cannot reach the target on some op family:
decide with numbers". This measures the convolution layers the real-model profiles show as
edgepack's worst against onnxruntime (EfficientNet-B0, MobileNetV3, MobileNetV2), at 1 thread:

- XNNPACK: benchmarks/xnnpack_layers.c, compiled here with the system cc against -lXNNPACK;
  its NHWC convolution operator (created and set up once, xnn_run_operator timed per call),
  its NCHW operator where the 2022 snapshot has one for the layer, and the NCHW <-> NHWC
  transposes an NCHW graph needs around the NHWC operator (plain tiled loops).
- edgepack: a one-Conv ONNX model lowered with edgepack.lower.lowering.lower and run by
  `edgepack-graph-run --bench N --profile` (the per-node median of the Conv node(s)).
- onnxruntime: the same model (all graph optimisations, 1 intra-op thread, profiling on): the
  kernel time of its Conv node per run; the NCHWc reorders it adds around a lone Conv are
  reported apart (in a whole model they sit at the model's edges only).

Outputs of XNNPACK and edgepack are checked against onnxruntime first. Then R rounds interleave
the three engines layer by layer (so load drifts hit all), and the table gives medians over all
rounds and the ratios. Nothing asserts on time. Writes JSON (default
benchmarks/results/xnnpack_layers.json) with the load average before and after.

    .venv/bin/python benchmarks/xnnpack_layers.py [--iterations 50] [--rounds 5] [--layers ...]
        [--build DIR] [--tool PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))

from timing import (  # noqa: E402  (benchmarks/timing.py)
    build_graph_run,
    cpu_model,
    npy_name,
    run_graph,
    write_result,
)

from edgepack.errors import EdgepackError, ToolchainError  # noqa: E402
from edgepack.lower.lowering import lower  # noqa: E402

HEADER = Path("/usr/include/xnnpack.h")
SETUP_HINT = "run scripts/setup.sh (apt package libxnnpack-dev)"


@dataclasses.dataclass(frozen=True)
class Layer:
    name: str
    origin: str
    cin: int
    hw: int
    cout: int
    k: int
    stride: int
    groups: int

    @property
    def pad(self) -> int:
        return self.k // 2

    @property
    def out_hw(self) -> int:
        return (self.hw + 2 * self.pad - self.k) // self.stride + 1

    @property
    def family(self) -> str:
        if self.groups == self.cin == self.cout:
            return f"depthwise {self.k}x{self.k} s{self.stride}"
        return "pointwise 1x1" if self.k == 1 else f"dense {self.k}x{self.k} s{self.stride}"

    @property
    def flops(self) -> int:
        return 2 * self.cout * self.out_hw ** 2 * (self.cin // self.groups) * self.k ** 2


LAYERS = [
    Layer("dw5x5s2_144x56", "EfficientNet-B0 stage 3", 144, 56, 144, 5, 2, 144),
    Layer("dw3x3s2_96x112", "EfficientNet-B0 stage 2 / MobileNetV2", 96, 112, 96, 3, 2, 96),
    Layer("dw5x5s1_672x14", "EfficientNet-B0 stage 5", 672, 14, 672, 5, 1, 672),
    Layer("dw5x5s1_576x7", "MobileNetV3-small last stage", 576, 7, 576, 5, 1, 576),
    Layer("pw16to96_112", "EfficientNet-B0 / MobileNetV2 expand", 16, 112, 96, 1, 1, 1),
    Layer("stem3x3s2_3to32_224", "EfficientNet-B0 / MobileNetV2 stem", 3, 224, 32, 3, 2, 1),
    Layer("pw320to1280_7", "EfficientNet-B0 / MobileNetV2 head", 320, 7, 1280, 1, 1, 1),
]
BY_NAME = {layer.name: layer for layer in LAYERS}


class BenchError(ToolchainError):
    """A missing tool or a failing step of this benchmark (one line, no traceback)."""


def build_harness(out_dir: Path) -> Path:
    """Compile xnnpack_layers.c with the system cc against Debian's libXNNPACK."""
    cc = shutil.which("cc")
    if cc is None:
        raise BenchError("no C compiler 'cc' on PATH: run scripts/setup.sh (build-essential)")
    if not HEADER.is_file():
        raise BenchError(f"{HEADER} not found: {SETUP_HINT}")
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "xnnpack_layers"
    src = Path(__file__).with_suffix(".c")
    proc = subprocess.run([cc, "-O2", "-std=c11", "-Wall", "-o", str(exe), str(src),
                           "-lXNNPACK", "-lm"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip())
        raise BenchError(f"compiling {src.name} against libXNNPACK failed: {first}; {SETUP_HINT}")
    return exe


class Prepared:
    """One layer's model, data files, device graph and onnxruntime reference output."""

    def __init__(self, layer: Layer, tmp: Path) -> None:
        self.layer = layer
        self.dir = tmp / layer.name
        (self.dir / "in").mkdir(parents=True)
        (self.dir / "out").mkdir()
        rng = np.random.default_rng(12)
        fan_in = layer.cin // layer.groups * layer.k ** 2
        self.x = rng.standard_normal((1, layer.cin, layer.hw, layer.hw)).astype(np.float32)
        w = (rng.standard_normal((layer.cout, layer.cin // layer.groups, layer.k, layer.k))
             * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (0.1 * rng.standard_normal(layer.cout)).astype(np.float32)
        self.x.tofile(self.dir / "input.f32")
        w.tofile(self.dir / "weight.f32")
        b.tofile(self.dir / "bias.f32")
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv",
                                kernel_shape=[layer.k, layer.k], strides=[layer.stride] * 2,
                                pads=[layer.pad] * 4, group=layer.groups)
        out_shape = [1, layer.cout, layer.out_hw, layer.out_hw]
        graph = helper.make_graph(
            [node], layer.name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
        self.model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(self.model)
        self.graph = self.dir / f"{layer.name}.epg"
        self.graph.write_bytes(lower(self.model))
        np.save(self.dir / "in" / npy_name("x"), self.x)
        self.ref = ort.InferenceSession(self.model.SerializeToString(),
                                        providers=["CPUExecutionProvider"]).run(
                                            None, {"x": self.x})[0]


def max_diff(got: np.ndarray, want: np.ndarray) -> float:
    """Largest |got - want| over the output's scale (at least 1)."""
    return float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))


def run_xnnpack(exe: Path, p: Prepared, iters: int, warmup: int) -> dict[str, Any]:
    L = p.layer
    argv = [str(exe), *(str(v) for v in (L.cin, L.hw, L.hw, L.cout, L.k, L.stride, L.pad,
                                         L.groups, iters, warmup)), str(p.dir)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"{exe.name} failed on {L.name}: {proc.stderr.strip()}")
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def ort_kernel_times(model: onnx.ModelProto, x: np.ndarray, iters: int, warmup: int,
                     prof_dir: Path) -> tuple[list[float], list[float], list[float]]:
    """Per timed run: the Conv kernel ms, the other kernels' ms (NCHWc reorders), wall ms."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = str(prof_dir / "ort")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    wall = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        sess.run(None, {"x": x})
        if i >= warmup:
            wall.append((time.perf_counter() - t0) * 1e3)
    path = Path(sess.end_profiling())
    events = json.loads(path.read_text())
    path.unlink()
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    conv = [0.0] * len(runs)
    other = [0.0] * len(runs)
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        idx = next((i for i, (a, b) in enumerate(runs) if a <= e["ts"] <= b), None)
        if idx is None:
            continue
        is_conv = "Conv" in str(e.get("args", {}).get("op_name", ""))
        (conv if is_conv else other)[idx] += e["dur"] / 1e3
    if len(runs) != warmup + iters:
        raise BenchError(f"onnxruntime profile has {len(runs)} runs, expected {warmup + iters}")
    return conv[warmup:], other[warmup:], wall


def median(xs: list[float]) -> float:
    return float(np.median(xs)) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", nargs="+", default=[x.name for x in LAYERS], choices=BY_NAME,
                    metavar="LAYER", help=f"layers to time (default all: {', '.join(BY_NAME)})")
    ap.add_argument("--iterations", type=int, default=50, help="timed runs per engine per round")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--build", type=Path, default=REPO / "build" / "bench-sdk-release",
                    help="where edgepack-graph-run is built (and the harness, in xnnpack-layers/)")
    ap.add_argument("--tool", type=Path, help="a built edgepack-graph-run (skips the build)")
    ap.add_argument("--json", type=Path,
                    default=REPO / "benchmarks" / "results" / "xnnpack_layers.json")
    args = ap.parse_args()
    if args.iterations < 1 or args.rounds < 1 or args.warmup < 0:
        raise SystemExit("edgepack: error: --iterations and --rounds must be >= 1, --warmup >= 0")
    try:
        return run(args)
    except EdgepackError as exc:
        print(f"edgepack: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except subprocess.CalledProcessError as exc:
        print(f"edgepack: error: {' '.join(map(str, exc.cmd[:2]))} failed with status "
              f"{exc.returncode}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    exe = build_harness(args.build / "xnnpack-layers")
    if args.tool is not None and not args.tool.is_file():
        raise BenchError(f"--tool {args.tool}: no such file")
    tool = args.tool or build_graph_run(args.build)
    layers = [BY_NAME[n] for n in args.layers]
    load_before = os.getloadavg()
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        prepared = [Prepared(layer, tmp) for layer in layers]
        diffs: dict[str, dict[str, float]] = {}
        for p in prepared:
            shape = p.ref.shape
            run_xnnpack(exe, p, 1, 0)
            d = {"xnnpack_nhwc": max_diff(np.fromfile(p.dir / "out_nhwc.f32", np.float32)
                                          .reshape(shape), p.ref)}
            if (p.dir / "out_nchw.f32").exists():
                d["xnnpack_nchw"] = max_diff(np.fromfile(p.dir / "out_nchw.f32", np.float32)
                                             .reshape(shape), p.ref)
            run_graph(tool, p.graph, p.dir / "in", 1, 0, 0, tmp / "unused.json",
                      outputs=p.dir / "out")
            d["edgepack"] = max_diff(np.load(p.dir / "out" / npy_name("y")), p.ref)
            worst = max(d.values())
            if worst > 1e-4:
                raise BenchError(f"{p.layer.name}: outputs differ from onnxruntime "
                                 f"(max relative diff {worst:.3g}: {d})")
            diffs[p.layer.name] = d
        keys = ["xnn_nhwc", "xnn_nchw", "to_nhwc", "to_nchw", "ep_node", "ep_run", "ort_conv",
                "ort_other", "ort_run"]
        samples: dict[str, dict[str, list[float]]] = {
            p.layer.name: {k: [] for k in keys} for p in prepared}
        per_round: dict[str, list[dict[str, float]]] = {p.layer.name: [] for p in prepared}
        nchw_status: dict[str, int] = {}
        for _ in range(args.rounds):
            for p in prepared:
                s = samples[p.layer.name]
                x = run_xnnpack(exe, p, args.iterations, args.warmup)
                s["xnn_nhwc"] += x["nhwc"]
                s["xnn_nchw"] += x["nchw"] or []
                s["to_nhwc"] += x["to_nhwc"]
                s["to_nchw"] += x["to_nchw"]
                nchw_status[p.layer.name] = x["nchw_status"]
                e = run_graph(tool, p.graph, p.dir / "in", 1, args.iterations, args.warmup,
                              tmp / "report.json", profile=True)
                node_ms = sum(n["ms"] for n in e["profile"]["nodes"])
                s["ep_node"].append(node_ms)
                s["ep_run"] += e["samples"]
                conv, other, wall = ort_kernel_times(p.model, p.x, args.iterations, args.warmup,
                                                     tmp)
                s["ort_conv"] += conv
                s["ort_other"] += other
                s["ort_run"] += wall
                per_round[p.layer.name].append({"xnnpack": median(x["nhwc"]), "edgepack": node_ms,
                                                "onnxruntime": median(conv)})
        for p in prepared:
            L, s = p.layer, samples[p.layer.name]
            m = {k: median(v) for k, v in s.items()}
            xnn_nchw = m["xnn_nchw"] if s["xnn_nchw"] else None
            rows.append({
                "layer": L.name, "origin": L.origin, "family": L.family,
                "shape": {"cin": L.cin, "hw": L.hw, "cout": L.cout, "k": L.k,
                          "stride": L.stride, "pad": L.pad, "groups": L.groups,
                          "out_hw": L.out_hw},
                "mflops": L.flops / 1e6,
                "xnnpack_nhwc_ms": m["xnn_nhwc"],
                "xnnpack_nchw_ms": xnn_nchw,
                "xnnpack_nchw_status": nchw_status[L.name],
                "transpose_to_nhwc_ms": m["to_nhwc"],
                "transpose_to_nchw_ms": m["to_nchw"],
                "edgepack_ms": m["ep_node"],
                "edgepack_run_ms": m["ep_run"],
                "onnxruntime_ms": m["ort_conv"],
                "onnxruntime_reorder_ms": m["ort_other"],
                "onnxruntime_run_ms": m["ort_run"],
                "edgepack_over_xnnpack": m["ep_node"] / m["xnn_nhwc"],
                "edgepack_over_onnxruntime": m["ep_node"] / m["ort_conv"],
                "xnnpack_over_onnxruntime": m["xnn_nhwc"] / m["ort_conv"],
                "xnnpack_with_transposes_over_edgepack":
                    (m["xnn_nhwc"] + m["to_nhwc"] + m["to_nchw"]) / m["ep_node"],
                "per_round_ms": per_round[L.name],
                "edgepack_over_xnnpack_per_round": [r["edgepack"] / r["xnnpack"]
                                                    for r in per_round[L.name]],
                "max_rel_diff_vs_ort": diffs[L.name],
            })
    load_after = os.getloadavg()
    print(f"{'layer':<22}{'MFLOP':>7}{'XNN':>8}{'XNNnchw':>8}{'tr in+out':>10}{'EP':>8}"
          f"{'ORT':>8}{'EP/XNN':>7}{'EP/ORT':>7}{'XNN/ORT':>8}{'XNN+tr/EP':>10}  EP/XNN per round")
    for r in rows:
        nchw = f"{r['xnnpack_nchw_ms']:.3f}" if r["xnnpack_nchw_ms"] is not None else "-"
        print(f"{r['layer']:<22}{r['mflops']:>7.1f}{r['xnnpack_nhwc_ms']:>8.3f}{nchw:>8}"
              f"{r['transpose_to_nhwc_ms'] + r['transpose_to_nchw_ms']:>10.3f}"
              f"{r['edgepack_ms']:>8.3f}{r['onnxruntime_ms']:>8.3f}"
              f"{r['edgepack_over_xnnpack']:>7.2f}{r['edgepack_over_onnxruntime']:>7.2f}"
              f"{r['xnnpack_over_onnxruntime']:>8.2f}"
              f"{r['xnnpack_with_transposes_over_edgepack']:>10.2f}  "
              f"{min(r['edgepack_over_xnnpack_per_round']):.2f}-"
              f"{max(r['edgepack_over_xnnpack_per_round']):.2f}")
    print("ms are medians over all rounds; XNN = XNNPACK's NHWC operator, XNNnchw its NCHW "
          "operator, tr = the NCHW -> NHWC -> NCHW transposes around XNN, EP = edgepack's Conv "
          "node, ORT = onnxruntime's Conv kernel (without its NCHWc reorders)")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{os.cpu_count()} cores; {time.monotonic() - started:.0f} s")
    result = {
        "benchmark": "xnnpack_layers",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": 1,
        "versions": {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
                     "numpy": np.__version__, "python": platform.python_version(),
                     "xnnpack": debian_version("libxnnpack0")},
        "iterations": args.iterations, "warmup": args.warmup, "rounds": args.rounds,
        "loadavg_1min": {"before": load_before[0], "after": load_after[0]},
        "results": rows,
    }
    write_result(args.json, result)
    return 0


def debian_version(package: str) -> str | None:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                          text=True, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


if __name__ == "__main__":
    raise SystemExit(main())
