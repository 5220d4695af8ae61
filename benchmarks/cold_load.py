# SPDX-License-Identifier: Apache-2.0
"""Cold load of a large artifact: verify + decrypt + prepare against reading the file.

A ~100 MB model (an MLP: Flatten -> four Gemm layers, seeded weights, float32) is packed into
the tiny project's layout (``edgepack.testing``) for the host, and the host ``edgepack-run``
loads it: its JSON gives ``load.verify_ms`` (layout, then the signature: SHA-256 of every
1 MiB block on all cores, the decrypting thread joining once done, and Ed25519 over the
digests), ``decrypt_ms`` (unseal + AES-256-GCM of every section, run beside the signature check
where there is a second core: only what it adds after the check), ``prepare_ms`` (graph loading,
weight packing) and the peak RSS (``vm_hwm_kib``: getrusage's maximum would carry this
script's own RSS across fork and exec). The runner's read of the file is not in its load
total. The reference is reading the same file into memory, timed in the same rounds
(interleaved with the loads, so load drifts hit both): from the page cache always, and from
the disk too when the page cache can be dropped (root and a writable
``/proc/sys/vm/drop_caches``; the runner is then also timed after a drop). Ratio = median
load total / median read. Target (performance issue): <= 1.5x. Prints a table, writes JSON
(default benchmarks/results/cold_load.json) with the load average around it.

    .venv/bin/python benchmarks/cold_load.py [--size-mb 100] [--rounds 5] [--sdk DIR]
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))

from timing import cpu_model, write_result  # noqa: E402

from edgepack.bench.runner import sdk_for  # noqa: E402
from edgepack.spec.boards import load_board  # noqa: E402
from edgepack.testing import INPUT_SHAPE, tiny_project  # noqa: E402
from edgepack.ui import format_table  # noqa: E402

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def big_mlp(size_mb: float, seed: int = 7) -> onnx.ModelProto:
    """input [1,3,16,16] -> Flatten -> Gemm(768, H) -> Relu -> Gemm(H, H) -> Relu ->
    Gemm(H, 1280) -> Relu -> Gemm(1280, 4) = logits, with H chosen so the weights are about
    ``size_mb`` MB (the tiny project's input and 4-class output)."""
    rng = np.random.default_rng(seed)
    flat = int(np.prod(INPUT_SHAPE))
    target = size_mb * 1e6 / 4
    hidden = 64
    while (flat + hidden + 1280) * hidden + 1280 * 4 < target:
        hidden += 64
    dims = [flat, hidden, hidden, 1280, 4]
    nodes = [helper.make_node("Flatten", ["input"], ["x0"], axis=1)]
    inits = []
    for i, (k, n) in enumerate(itertools.pairwise(dims)):
        w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
        b = (rng.standard_normal(n) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(dims) - 2
        gemm_out = "logits" if last else f"g{i}"
        nodes.append(helper.make_node("Gemm", [f"x{i}", f"w{i}", f"b{i}"], [gemm_out], transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [gemm_out], [f"x{i + 1}"]))
    graph = helper.make_graph(
        nodes, "big_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def read_ms(path: Path) -> float:
    """Read the whole file into memory, as a loader that reads before it verifies would."""
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        data = f.read()
    elapsed = (time.perf_counter() - start) * 1e3
    assert len(data) == path.stat().st_size
    return elapsed


def can_drop_caches() -> bool:
    try:
        with open(DROP_CACHES, "w") as f:
            f.write("1\n")
        return True
    except OSError:
        return False


def drop_caches() -> None:
    os.sync()
    DROP_CACHES.write_text("1\n")


def load_once(runner: Path, artifact: Path, key: Path, publisher: Path,
              out: Path) -> dict[str, Any]:
    done = subprocess.run([str(runner), str(artifact), "--key", str(key), "--publisher",
                           str(publisher), "--json", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"edgepack-run failed ({done.returncode}): {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--size-mb", type=float, default=100.0, help="weights size (default 100)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--sdk", type=Path, default=None,
                    help="a host SDK folder (default: build the bench SDK in the cache)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cold_load.json")
    args = ap.parse_args()

    runner = sdk_for(load_board("host"), args.sdk) / "bin" / "edgepack-run"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="edgepack-cold-") as tmp_name:
        tmp = Path(tmp_name)
        tiny = tiny_project(tmp / "project")
        onnx.save(big_mlp(args.size_mb), str(tmp / "project" / "models" / "tiny.onnx"))
        start = time.perf_counter()
        artifact = tiny.pack(board="host", out=tmp / "big.epk")
        pack_s = time.perf_counter() - start
        size = artifact.stat().st_size
        cold = can_drop_caches()
        rows: dict[str, list[float]] = {k: [] for k in (
            "read_cached_ms", "read_disk_ms", "verify_ms", "decrypt_ms", "prepare_ms",
            "total_ms", "total_after_drop_ms", "peak_rss_mib")}
        load_once(runner, artifact, tiny.key, tiny.publisher, tmp / "warm.json")  # page cache
        for r in range(args.rounds):
            rows["read_cached_ms"].append(read_ms(artifact))
            report = load_once(runner, artifact, tiny.key, tiny.publisher, tmp / f"r{r}.json")
            for k in ("verify_ms", "decrypt_ms", "prepare_ms", "total_ms"):
                rows[k].append(float(report["load"][k]))
            rows["peak_rss_mib"].append(report["vm_hwm_kib"] / 1024)
            if cold:
                drop_caches()
                rows["read_disk_ms"].append(read_ms(artifact))
                drop_caches()
                report = load_once(runner, artifact, tiny.key, tiny.publisher,
                                   tmp / f"d{r}.json")
                rows["total_after_drop_ms"].append(float(report["load"]["total_ms"]))
    load_after = os.getloadavg()

    summary = {k: stats(v) for k, v in rows.items() if v}
    total = summary["total_ms"]["median"]
    ratio_cached = total / summary["read_cached_ms"]["median"]
    ratio_disk = (summary["total_after_drop_ms"]["median"] / summary["read_disk_ms"]["median"]
                  if cold else None)
    table = [[k, f"{s['median']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}"]
             for k, s in summary.items()]
    print(f"artifact {size / 1e6:.1f} MB (packed in {pack_s:.1f} s), {args.rounds} rounds, "
          f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}")
    print(format_table(["measure", "median", "min", "max"], table))
    print(f"load / read from the page cache: {ratio_cached:.2f}x (target <= 1.5x)")
    if ratio_disk is not None:
        print(f"load after dropping the page cache / read from disk: {ratio_disk:.2f}x")
    else:
        print("the page cache cannot be dropped here (needs root and /proc/sys/vm/drop_caches "
              "writable): no disk-read row")
    write_result(args.out, {
        "benchmark": "cold_load", "date": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "system": platform.system()},
        "load_average": {"before": load_before[0], "after": load_after[0]},
        "artifact_bytes": size, "rounds": args.rounds, "page_cache_dropped": cold,
        "results": summary, "ratio_vs_cached_read": ratio_cached,
        "ratio_vs_disk_read": ratio_disk,
    })


if __name__ == "__main__":
    main()
