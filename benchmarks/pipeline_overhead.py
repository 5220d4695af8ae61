# SPDX-License-Identifier: Apache-2.0
"""Where the example pipeline's time goes on the host: pre-processing, crops and post-processing
against the networks.

Packs examples/vision-demo (its models from its own generate_models.py, fresh keys) and runs the
artifact with the host ``edgepack-run`` (Release) on its golden inputs (a 640x480 BGR frame):
``--bench N --warmup W --threads T``, R rounds. Per stage it reports the median over all runs of
the per-run stage time (edgepack-run's report, schema edgepack.run/1: a map step's time covers all
its crops), the median end-to-end time, and the share of pre + crop + post stages in the sum of
stage medians. Target (the performance issue): that share <= 5% at 1 thread.
Prints a table and writes JSON (default benchmarks/results/pipeline_overhead.json).

    .venv/bin/python benchmarks/pipeline_overhead.py [--iterations 50] [--rounds 5]
        [--threads 1] [--build DIR] [--tool PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))
sys.path.insert(0, str(REPO / "tests"))

from timing import build_graph_run, cpu_model, write_result  # noqa: E402

from example_project import example_project, pack_project  # noqa: E402

# stage name suffixes that are not a network (edgepack.model.pipeline's stage names)
OVERHEAD = (".pre", ".crop", ".post")


def kind(stage: str) -> str:
    return next((s[1:] for s in OVERHEAD if stage.endswith(s)), "model")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--build", type=Path, default=REPO / "build" / "bench-sdk-release")
    ap.add_argument("--tool", type=Path, help="a built edgepack-run (skips the build)")
    ap.add_argument("--json", type=Path,
                    default=REPO / "benchmarks" / "results" / "pipeline_overhead.json")
    args = ap.parse_args()

    if args.tool is not None and not args.tool.is_file():
        print(f"edgepack: error: --tool {args.tool}: no such file", file=sys.stderr)
        return 2
    tool = args.tool.resolve() if args.tool else build_graph_run(args.build, "edgepack-run")
    load_before = os.getloadavg()
    started = time.monotonic()
    stages: dict[str, list[float]] = {}
    runs: dict[str, int] = {}
    e2e: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        project = example_project(tmp / "vision-demo")
        artifact = pack_project(project, tmp / "vision-demo.epk")
        for _ in range(args.rounds):
            report = tmp / "report.json"
            subprocess.run(
                [str(tool), str(artifact), "--key", str(project / "keys" / "dev1.key"),
                 "--publisher", str(project / "keys" / "publisher.pub"), "--inputs", "@golden",
                 "--bench", str(args.iterations), "--warmup", str(args.warmup),
                 "--threads", str(args.threads), "--json", str(report)],
                check=True, capture_output=True)
            doc = json.loads(report.read_text())
            e2e += doc["end_to_end"]["samples"]
            for s in doc["stages"]:
                stages.setdefault(s["stage"], []).extend(s["ms"]["samples"])
                runs[s["stage"]] = s["runs"]
    medians = {name: float(np.median(v)) for name, v in stages.items()}
    total = sum(medians.values())
    overhead = sum(v for name, v in medians.items() if kind(name) != "model")
    rows: list[dict[str, Any]] = [{"stage": name, "kind": kind(name), "runs_per_frame": runs[name],
             "median_ms": medians[name], "p90_ms": float(np.percentile(stages[name], 90)),
             "share": medians[name] / total} for name in stages]
    print(f"{'stage':<20}{'kind':>7}{'runs':>6}{'median ms':>11}{'p90 ms':>9}{'share':>8}")
    for r in rows:
        print(f"{r['stage']:<20}{r['kind']:>7}{r['runs_per_frame']:>6}{r['median_ms']:>11.3f}"
              f"{r['p90_ms']:>9.3f}{100 * r['share']:>7.1f}%")
    e2e_med = float(np.median(e2e))
    print(f"end to end: median {e2e_med:.2f} ms; pre + crop + post {overhead:.3f} ms = "
          f"{100 * overhead / total:.1f}% of the stages' {total:.2f} ms (target <= 5%)")
    load_after = os.getloadavg()
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
          f"{os.cpu_count()} cores; {time.monotonic() - started:.0f} s")
    result: dict[str, Any] = {
        "benchmark": "pipeline_overhead",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "threads": args.threads, "iterations": args.iterations, "warmup": args.warmup,
        "rounds": args.rounds,
        "target": "pre + crop + post <= 5% of the pipeline's time at 1 thread",
        "loadavg_1min": {"before": load_before[0], "after": load_after[0]},
        "end_to_end_median_ms": e2e_med,
        "overhead_ms": overhead, "overhead_share": overhead / total,
        "stages": rows,
    }
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
