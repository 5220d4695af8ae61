# SPDX-License-Identifier: Apache-2.0
"""``edgepack report compare BASE.json NEW.json``: latency (p50/p90 per series, judged against
the run-to-run spread of each report's samples), cold load, peak memory and accuracy between
two bench reports. Reports of different artifacts, boards or thread counts are refused unless
--force is given. Exit code 9 when something regressed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgepack.bench.report import render_compare
from edgepack.errors import ExitCode
from edgepack.ui import emit


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("report", help="work with bench reports", description=__doc__)
    sub = p.add_subparsers(dest="report_command", metavar="ACTION")
    sub.required = True
    c = sub.add_parser("compare", help="compare two bench reports")
    c.add_argument("base", type=Path, metavar="BASE.json", help="the baseline report")
    c.add_argument("new", type=Path, metavar="NEW.json", help="the report to judge")
    c.add_argument("--threshold", type=float, default=0.1,
                   help="relative growth of p50/p90 or peak RSS that counts as a regression, when "
                   "also outside the run-to-run spread (0.1 = 10%%; default 0.1)")
    c.add_argument("--force", action="store_true",
                   help="compare even when artifact, board or threads differ (with a warning)")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON on stdout")
    c.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from edgepack import api

    result = api.compare_reports(args.base, args.new, threshold=args.threshold, force=args.force)
    emit(result.to_json(), args.json, lambda _d: render_compare(result.comparison, args.threshold))
    return ExitCode.CHECK_FAILED if result.failed else ExitCode.OK
