# SPDX-License-Identifier: Apache-2.0
"""Bench reports (``edgepack.report/1``): statistics, accuracy, schema check, text, HTML,
and comparison against a baseline.

Statistics are computed here from the raw per-iteration samples the device timed (never from
the device's own summary), so every report uses the same percentile definition (numpy's
linear interpolation).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from edgepack.errors import SpecError
from edgepack.ui import format_table

REPORT_SCHEMA = "edgepack.report/1"


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    xs = np.asarray(samples, dtype=np.float64)
    if xs.size == 0:
        zero = 0.0
        return {"n": 0, "min": zero, "mean": zero, "p50": zero, "p90": zero, "p99": zero,
                "max": zero, "std": zero, "samples": []}
    p50, p90, p99 = (float(v) for v in np.percentile(xs, [50, 90, 99]))
    return {"n": int(xs.size), "min": float(xs.min()), "mean": float(xs.mean()),
            "p50": p50, "p90": p90, "p99": p99, "max": float(xs.max()),
            "std": float(xs.std()), "samples": [float(v) for v in xs]}


def compare_output(name: str, device: np.ndarray[Any, Any], reference: np.ndarray[Any, Any],
                   tolerance: float, min_cosine: float) -> dict[str, Any]:
    """max-abs and cosine similarity of one output against the host reference."""
    entry: dict[str, Any] = {"name": name, "shape": [int(d) for d in reference.shape]}
    if device.shape != reference.shape:
        entry.update(max_abs=float("inf"), cosine=0.0, passed=False,
                     reason=f"shape {list(device.shape)} != reference {list(reference.shape)}")
        return _finite(entry)
    a = device.astype(np.float64).ravel()
    b = reference.astype(np.float64).ravel()
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cosine = float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else float(na == nb)
    entry.update(max_abs=max_abs, cosine=cosine,
                 passed=bool(max_abs <= tolerance and cosine >= min_cosine))
    return entry


def _finite(entry: dict[str, Any]) -> dict[str, Any]:
    if not math.isfinite(entry["max_abs"]):
        entry["max_abs"] = 1e300  # JSON has no infinity
    return entry


def _schema() -> dict[str, Any]:
    text = resources.files("edgepack").joinpath("schemas/report.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def validate_report(data: Mapping[str, Any], source: str = "report") -> None:
    """Raises ``SpecError`` naming the first field that breaks the schema."""
    try:
        jsonschema.validate(dict(data), _schema())
    except jsonschema.ValidationError as exc:
        field = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise SpecError(source, exc.message, field=field) from None


def load_report(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SpecError(path, "no such report file") from None
    except json.JSONDecodeError as exc:
        raise SpecError(path, f"not JSON: {exc.msg}", line=exc.lineno) from None
    if data.get("schema") != REPORT_SCHEMA:
        raise SpecError(path, f"unknown report schema {data.get('schema')!r} "
                        f"(expected {REPORT_SCHEMA!r})", field="schema")
    validate_report(data, str(path))
    return data


# --- text ------------------------------------------------------------------------------

def _ms(v: float) -> str:
    return f"{v:.3f}"


def _clock_line(clocks: Mapping[str, Any]) -> str:
    cpus = clocks.get("cpus") or []
    temps = clocks.get("thermal") or []
    freq = ", ".join(f"cpu{c['cpu']} {c.get('governor') or '?'} "
                     f"{(c.get('cur_khz') or 0) / 1000:.0f} MHz" for c in cpus) or "n/a"
    temp = ", ".join(f"{t.get('type') or t.get('zone')} {(t.get('millicelsius') or 0) / 1000:.1f} C"
                     for t in temps) or "n/a"
    return f"clocks: {freq}; temperatures: {temp}"


def render_text(r: Mapping[str, Any]) -> str:
    p, c, load = r["provenance"], r["conditions"], r["load"]
    out = [f"edgepack bench: {p['artifact']} on {p['board']} ({p['target']})",
           f"device: {r['device'].get('machine', '?')}, {r['device'].get('cpu_model', '?')}, "
           f"{r['device'].get('cpu_cores', '?')} cores; threads {c['threads']}, warmup "
           f"{c['warmup']}, iterations {c['iterations']}",
           f"cold load: verify {_ms(load['verify_ms'])} ms, decrypt {_ms(load['decrypt_ms'])} ms, "
           f"prepare {_ms(load['prepare_ms'])} ms (total {_ms(load['total_ms'])} ms); "
           f"first inference {_ms(r['first_inference_ms'])} ms; peak RSS "
           f"{r['memory']['peak_rss_kib']} KiB", ""]
    rows = [[s["stage"], str(s["runs"]), _ms(s["ms"]["p50"]), _ms(s["ms"]["p90"]),
             _ms(s["ms"]["p99"]), _ms(s["ms"]["mean"])] for s in r["stages"]]
    e = r["end_to_end"]
    rows.append(["end-to-end", str(e["n"]), _ms(e["p50"]), _ms(e["p90"]), _ms(e["p99"]),
                 _ms(e["mean"])])
    out.append(format_table(["stage", "runs", "p50 ms", "p90 ms", "p99 ms", "mean ms"], rows))
    out += ["", "before " + _clock_line(c["before"]), "after  " + _clock_line(c["after"]), ""]
    acc = r["accuracy"]
    arows = [[o["name"], f"{o['max_abs']:.3g}", f"{o['cosine']:.6f}",
              "pass" if o["passed"] else "FAIL"] for o in acc["outputs"]]
    out.append(format_table(["output", "max-abs", "cosine", "result"], arows))
    out.append(f"accuracy: {'PASS' if acc['passed'] else 'FAIL'} (tolerance max-abs "
               f"{acc['tolerance']:g})")
    if r.get("profile"):
        out += ["", render_profile_top(r["profile"])]
    return "\n".join(out) + "\n"


def _shape_text(shapes: Sequence[Any]) -> str:
    return ", ".join("x".join(str(d) for d in s) if isinstance(s, list) else "-" for s in shapes)


def render_profile_top(profile: Mapping[str, Any], top: int = 10) -> str:
    """The ``top`` slowest nodes of a profile (median ms per node) as a table."""
    nodes = sorted(profile["nodes"], key=lambda n: float(n["ms"]), reverse=True)
    total = sum(float(n["ms"]) for n in nodes)
    rows = [[n["stage"], n["op"], n["name"], _shape_text(n["outputs"]), _ms(float(n["ms"])),
             f"{100.0 * float(n['ms']) / total:.1f}" if total > 0 else "0.0",
             f"{float(n['flops']) / 1e6:.1f}" + ("" if n["flops_exact"] else "~"),
             f"{float(n['gflops']):.2f}"] for n in nodes[:top]]
    head = (f"profile: {len(nodes)} nodes, {_ms(total)} ms summed (median per node, "
            f"{profile['runs']} runs); the {min(top, len(nodes))} slowest "
            "(~: FLOPs estimated, about one per element):")
    return head + "\n" + format_table(
        ["stage", "op", "node", "output", "ms", "%", "MFLOP", "GFLOP/s"], rows)


# --- HTML (inline SVG, no scripts, nothing fetched) -------------------------------------

def _histogram_svg(samples: Sequence[float], width: int = 640, height: int = 220) -> str:
    if not samples:
        return "<p>no samples</p>"
    xs = np.asarray(samples, dtype=np.float64)
    bins = max(5, min(40, int(math.sqrt(xs.size)) + 1))
    counts, edges = np.histogram(xs, bins=bins)
    top = max(1, int(counts.max()))
    bw = (width - 60) / bins
    bars = []
    for i, n in enumerate(counts):
        h = (height - 40) * int(n) / top
        x = 50 + i * bw
        bars.append(f'<rect x="{x:.1f}" y="{height - 25 - h:.1f}" width="{bw - 1:.1f}" '
                    f'height="{h:.1f}" fill="#4a7ab5"><title>{edges[i]:.3f}-{edges[i + 1]:.3f} '
                    f'ms: {int(n)}</title></rect>')
    axis = (f'<text x="50" y="{height - 8}" font-size="11">{edges[0]:.3f} ms</text>'
            f'<text x="{width - 10}" y="{height - 8}" font-size="11" text-anchor="end">'
            f'{edges[-1]:.3f} ms</text><text x="5" y="20" font-size="11">{top}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            + "".join(bars) + axis + "</svg>")


def _stage_bars_svg(stages: Sequence[Mapping[str, Any]], width: int = 640) -> str:
    if not stages:
        return "<p>no per-stage timings</p>"
    row = 26
    height = row * len(stages) + 10
    top = max(max(s["ms"]["p90"] for s in stages), 1e-9)
    parts = []
    for i, s in enumerate(stages):
        y = 5 + i * row
        w50 = (width - 260) * s["ms"]["p50"] / top
        w90 = (width - 260) * s["ms"]["p90"] / top
        parts.append(
            f'<text x="0" y="{y + 16}" font-size="12">{html.escape(s["stage"])}</text>'
            f'<rect x="180" y="{y + 4}" width="{w90:.1f}" height="16" fill="#c9d7ea"/>'
            f'<rect x="180" y="{y + 4}" width="{w50:.1f}" height="16" fill="#4a7ab5"/>'
            f'<text x="{185 + w90:.1f}" y="{y + 16}" font-size="11">p50 {s["ms"]["p50"]:.3f} / '
            f'p90 {s["ms"]["p90"]:.3f} ms</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            + "".join(parts) + "</svg>")


def render_html(r: Mapping[str, Any]) -> str:
    text = html.escape(render_text(r))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>edgepack bench: {html.escape(r['provenance']['artifact'])}</title>"
            "<style>body{font-family:sans-serif;margin:2em}pre{background:#f5f5f5;"
            "padding:1em}</style></head><body>"
            f"<h1>edgepack bench on {html.escape(r['provenance']['board'])}</h1>"
            f"<pre>{text}</pre>"
            "<h2>End-to-end latency histogram</h2>" + _histogram_svg(r["end_to_end"]["samples"])
            + "<h2>Per-stage latency (p50 dark, p90 light)</h2>" + _stage_bars_svg(r["stages"])
            + "</body></html>\n")


# --- compare ----------------------------------------------------------------------------

@dataclass(frozen=True)
class CompareRow:
    name: str
    metric: str
    base: float
    new: float

    @property
    def change(self) -> float:
        return (self.new - self.base) / self.base if self.base > 0 else 0.0


def compare_reports(base: Mapping[str, Any], new: Mapping[str, Any],
                    threshold: float) -> tuple[list[CompareRow], list[CompareRow]]:
    """All compared rows, and those whose p50/p90 grew by more than ``threshold`` (0.1=10%)."""
    def series(r: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        out = {"end-to-end": r["end_to_end"]}
        out.update({s["stage"]: s["ms"] for s in r["stages"]})
        return out

    b, n = series(base), series(new)
    rows = [CompareRow(name, metric, float(b[name][metric]), float(n[name][metric]))
            for name in b if name in n for metric in ("p50", "p90")]
    rows.append(CompareRow("cold load", "total", float(base["load"]["total_ms"]),
                           float(new["load"]["total_ms"])))
    regressed = [row for row in rows if row.metric in ("p50", "p90") and row.change > threshold]
    return rows, regressed


def render_compare(rows: Sequence[CompareRow], regressed: Sequence[CompareRow],
                   threshold: float) -> str:
    bad = {(r.name, r.metric) for r in regressed}
    table = format_table(
        ["series", "metric", "base ms", "new ms", "change", ""],
        [[r.name, r.metric, _ms(r.base), _ms(r.new), f"{r.change * 100:+.1f}%",
          "REGRESSED" if (r.name, r.metric) in bad else ""] for r in rows])
    verdict = (f"{len(regressed)} regression(s) beyond {threshold * 100:.0f}%" if regressed
               else f"no regression beyond {threshold * 100:.0f}%")
    return table + "\n" + verdict + "\n"
