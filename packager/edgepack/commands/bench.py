# SPDX-License-Identifier: Apache-2.0
"""``edgepack bench``: run an artifact on a board through the device agent and report latency,
memory, clocks and accuracy against the host reference."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgepack import api
from edgepack.bench.plan import DEFAULT_WARMUP
from edgepack.bench.report import render_text
from edgepack.bench.report_html import render_html
from edgepack.commands import add_host_key_options
from edgepack.errors import ExitCode, UsageError
from edgepack.fsutil import write_atomic
from edgepack.ui import emit, terminal_safe


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("bench", help="benchmark an artifact on a board",
                              description=__doc__)
    p.add_argument("artifact", type=Path, metavar="ARTIFACT", help="the packed artifact (.epk)")
    p.add_argument("--board", required=True, help="board id, e.g. hi3559a")
    p.add_argument("--target", required=True,
                   help="ssh://user@host[:port][?identity=KEY&root=DIR], "
                   "serial:///dev/ttyX?baud=115200[&root=DIR], virtual:BOARD[/serial], "
                   "labgrid://PLACE[?wait=S&via=console] or labgrid://?tags=KEY=VALUE,... "
                   "(docs/board-farm.md)")
    p.add_argument("--key", required=True, type=Path,
                   help="a recipient's X25519 private key held on the host (PEM): reads the "
                   "golden reference, and reaches the runner through a pipe (never a file "
                   "on the device) unless --device-key is given")
    p.add_argument("--device-key", nargs="?", const="device", metavar="NAME",
                   help="the runner uses the key provisioned on the device "
                   "(edgepack device provision; default name: device)")
    p.add_argument("--publisher", required=True, type=Path,
                   help="publisher Ed25519 public key (PEM)")
    count = p.add_mutually_exclusive_group()
    count.add_argument("--iterations", type=int, metavar="N",
                       help="timed iterations (default: as many as fit in about 20 s, "
                       "10 to 100, from one timed run)")
    count.add_argument("--duration", type=float, metavar="SECONDS",
                       help="run the timed iterations for about this long instead of a "
                       "fixed count (warm-up not included)")
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, metavar="N",
                   help="untimed iterations before the timed ones")
    p.add_argument("--threads", type=int, default=1, metavar="T",
                   help="worker threads of the runtime; 0 = every core of the device")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--cpus", metavar="LIST",
                       help="run the runtime's threads only on these CPUs of the device, e.g. "
                       "2,3 or 4-7 (default: wherever the kernel schedules them)")
    where.add_argument("--cluster", metavar="NAME",
                       help="run only on one CPU cluster of a big.LITTLE board: big, little or "
                       "a core model of the board file (e.g. cortex-a53); the device's cpufreq "
                       "tells which CPUs form it")
    p.add_argument("--input", type=Path, metavar="FILE|DIR",
                   help="run the timed iterations on this input instead of the golden one: a "
                   ".npy file, an image (PNG, JPEG, ...: converted to the project's pixel "
                   "format and source size, then the board's own preprocessing) or a folder "
                   "of <input name>.npy")
    p.add_argument("--project", type=Path, metavar="DIR",
                   help="with --input: the project the artifact was packed from; the host "
                   "reference runs on the input and the accuracy check covers it too (without "
                   "it only the golden input is checked)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="max-abs difference allowed per output, relative to max(1, the "
                   "output's largest |value|) (default 1e-3)")
    p.add_argument("--json", nargs="?", const=True, default=False, metavar="FILE",
                   help="print the report as JSON on stdout instead of text (--json FILE, the "
                   "old spelling of --out-json FILE, still works and says so)")
    p.add_argument("--out-json", type=Path, metavar="FILE",
                   help="also write the report as JSON to FILE (schema edgepack.report/2)")
    p.add_argument("--profile", action="store_true",
                   help="time every node of the timed runs: per-node op, shapes, ms, FLOPs and "
                   "GFLOP/s in the report, the 10 slowest in the text")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="also write the report as one offline HTML page")
    add_host_key_options(p)
    p.add_argument("--sdk", type=Path, metavar="DIR",
                   help="use this built SDK tree instead of building or reusing the cached one")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out_json: Path | None = args.out_json
    if isinstance(args.json, str):  # the old spelling: --json FILE
        if out_json is not None:
            raise UsageError("give --out-json FILE once (--json FILE is its old spelling)")
        out_json = Path(args.json)
        print(f"edgepack: warning: --json {terminal_safe(args.json)} is deprecated: use "
              "--out-json FILE (--json alone prints the report as JSON)", file=sys.stderr)
    result = api.bench(
        args.artifact, board=args.board, target=args.target, key=args.key,
        publisher=args.publisher, iterations=args.iterations, warmup=args.warmup,
        duration=args.duration, input=args.input, project=args.project, threads=args.threads,
        cpus=args.cpus, cluster=args.cluster,
        known_hosts=args.known_hosts,
        trust_new_host=args.trust_new_host, tolerance=args.tolerance, sdk=args.sdk,
        device_key=args.device_key, profile=args.profile)
    report = result.data
    emit(report, args.json is True, render_text)
    if out_json is not None:
        write_atomic(out_json, json.dumps(report, indent=2, sort_keys=True) + "\n")
    if args.html:
        write_atomic(args.html, render_html(report))
    return ExitCode.OK if result.passed else ExitCode.CHECK_FAILED
