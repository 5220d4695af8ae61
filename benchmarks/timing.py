# SPDX-License-Identifier: Apache-2.0
"""The timing loop the CPU benchmarks share: edgepack's ``edgepack-graph-run`` against an
onnxruntime session, with the same threads, on the same inputs.

Used by cpu_vs_onnxruntime.py and real_models.py (import it with ``benchmarks/`` on
``sys.path``, as running a script from that folder does).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
CMAKE = REPO / ".venv" / "bin" / "cmake"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_graph_run(build: Path, target: str = "edgepack-graph-run") -> Path:
    """Configure and build ``target`` (``edgepack-graph-run``, or ``edgepack-run``; Release, no
    tests) under ``build``; returns the executable."""
    subprocess.run([str(CMAKE), "-S", str(REPO / "sdk_templates"), "-B", str(build), "-G",
                    "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DEDGEPACK_BUILD_TESTS=OFF"],
                   check=True, capture_output=True)
    subprocess.run([str(CMAKE), "--build", str(build), "-j2", "--target", target], check=True)
    found = sorted(p for p in build.rglob(target) if p.is_file())
    if not found:
        raise SystemExit(f"{target} was not built under {build}")
    return found[0]


def npy_name(tensor: str) -> str:
    """graph-run's file name for a tensor: '/', ':' and '\\' become '_'."""
    return "".join("_" if c in "/:\\" else c for c in tensor) + ".npy"


def ort_session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    """onnxruntime with ``threads`` intra-op threads, inter-op 1, sequential, all graph
    optimisations."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def time_ort(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], iters: int,
             warmup: int) -> tuple[list[float], float]:
    """Per-run wall ms, and CPU ms per run (process time over the timed runs)."""
    for _ in range(warmup):
        sess.run(None, feeds)
    samples = []
    cpu0 = time.process_time()
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples, (time.process_time() - cpu0) * 1e3 / max(1, iters)


def children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def samples_from_json(report: Any) -> list[float]:
    """Per-iteration milliseconds from graph-run's --json report ("samples_ms")."""
    samples = report.get("samples_ms") if isinstance(report, dict) else None
    if not isinstance(samples, list) or not all(isinstance(v, int | float) for v in samples):
        return []
    return [float(v) for v in samples]


def run_graph(tool: Path, graph: Path, inputs: Path, threads: int, iters: int, warmup: int,
              report: Path, outputs: Path | None = None, profile: bool = False) -> dict[str, Any]:
    """One ``edgepack-graph-run``; with ``iters`` its --json report plus ``process_cpu_s``
    (the child's CPU seconds) and ``samples`` (per-iteration ms), else ``{}``."""
    cmd = [str(tool), str(graph), "--inputs", str(inputs), "--threads", str(threads)]
    if outputs is not None:
        cmd += ["--outputs", str(outputs)]
    if iters:
        cmd += ["--bench", str(iters), "--warmup", str(warmup), "--json", str(report)]
    if profile:
        cmd.append("--profile")
    cpu0 = children_cpu_s()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    cpu_s = children_cpu_s() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or proc.stdout.strip()
                           or f"{tool.name} exited with status {proc.returncode}")
    if not iters:
        return {}
    data: dict[str, Any] = json.loads(report.read_text())
    data["process_cpu_s"] = cpu_s
    data["samples"] = samples_from_json(data)
    if not data["samples"]:
        raise RuntimeError(f"no per-iteration samples in {report}")
    return data


def stats(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples)
    return {"median_ms": float(np.median(arr)), "p90_ms": float(np.percentile(arr, 90)),
            "min_ms": float(arr.min()), "n": int(arr.size)}


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write a benchmark's JSON result atomically and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(result, f, indent=2)
    os.replace(f.name, path)
    print(f"wrote {path}")
