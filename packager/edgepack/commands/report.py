# SPDX-License-Identifier: Apache-2.0
"""``edgepack report compare BASE.json NEW.json``: flag latency regressions between two bench
reports (exit code 1 when a p50 or p90 grew beyond the threshold)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgepack.bench.report import compare_reports, load_report, render_compare
from edgepack.errors import ExitCode
from edgepack.ui import emit


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="work with bench reports", description=__doc__)
    sub = p.add_subparsers(dest="report_command", metavar="ACTION")
    sub.required = True
    c = sub.add_parser("compare", help="compare two bench reports")
    c.add_argument("base", type=Path, metavar="BASE.json")
    c.add_argument("new", type=Path, metavar="NEW.json")
    c.add_argument("--threshold", type=float, default=0.1,
                   help="relative growth of p50/p90 that counts as a regression (default 0.1)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    rows, regressed = compare_reports(load_report(args.base), load_report(args.new),
                                      args.threshold)
    data = {"threshold": args.threshold,
            "rows": [{"series": r.name, "metric": r.metric, "base_ms": r.base, "new_ms": r.new,
                      "change": r.change} for r in rows],
            "regressed": [{"series": r.name, "metric": r.metric} for r in regressed]}
    emit(data, args.json, lambda _d: render_compare(rows, regressed, args.threshold))
    return ExitCode.CHECK_FAILED if regressed else ExitCode.OK
