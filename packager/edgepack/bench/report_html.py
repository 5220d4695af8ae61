# SPDX-License-Identifier: Apache-2.0
"""The bench report as one HTML page: summary, provenance, conditions, latency table,
per-iteration timeline, labelled histogram, per-stage bars, accuracy and the per-op profile.
Inline SVG and CSS only: no scripts, nothing fetched, so the file opens anywhere offline."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgepack.bench.report import (
    EMULATED_WARNING,
    LATENCY_HEADERS,
    PROFILE_HEADERS,
    RUNS_NOTE,
    clock_line,
    fps_of,
    input_note,
    latency_rows,
    plan_note,
    profile_head,
    profile_rows,
    provenance_rows,
    run_info,
)

_E = html.escape
_FONT = 'font-family="sans-serif"'
_CHAR_W = 7.0  # px per character at font-size 12, generous for sans-serif
_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        "th{background:#eef2f7;text-align:left}td.n{text-align:right;font-variant-numeric:"
        "tabular-nums}code{font-size:12px;word-break:break-all}"
        ".warn{background:#fff3cd;border:2px solid #e0a800;padding:.6em 1em;font-weight:bold}"
        ".cards{display:flex;flex-wrap:wrap;gap:1em;margin:1em 0}"
        ".card{border:1px solid #ccc;border-radius:6px;padding:.5em 1em;min-width:9em}"
        ".card b{display:block;font-size:1.4em}.pass{color:#1a7f37}.fail{color:#c62828}"
        ".note{color:#555;font-size:13px}")


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _axes(x0: float, y0: float, w: float, h: float, xlabel: str, ylabel: str,
          xticks: Sequence[tuple[float, str]], yticks: Sequence[tuple[float, str]]) -> str:
    """Axis lines, ticks and titles for a plot box with its origin at (x0, y0 + h)."""
    parts = [f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#333"/>',
             f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y0 + h}" stroke="#333"/>']
    for x, label in xticks:
        parts.append(f'<line x1="{x:.1f}" y1="{y0 + h}" x2="{x:.1f}" y2="{y0 + h + 4}" '
                     f'stroke="#333"/><text x="{x:.1f}" y="{y0 + h + 16}" font-size="11" '
                     f'text-anchor="middle" {_FONT}>{_E(label)}</text>')
    for y, label in yticks:
        parts.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" '
                     f'stroke="#e3e3e3"/><text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" '
                     f'text-anchor="end" {_FONT}>{_E(label)}</text>')
    parts.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 34}" font-size="12" '
                 f'text-anchor="middle" {_FONT}>{_E(xlabel)}</text>')
    parts.append(f'<text x="14" y="{y0 + h / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {y0 + h / 2})" {_FONT}>{_E(ylabel)}</text>')
    return "".join(parts)


def _svg(width: float, height: float, body: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'role="img" aria-label="{_E(title)}">' + body + "</svg>")


def histogram_svg(samples: Sequence[float], width: int = 680, height: int = 260) -> str:
    if not samples:
        return "<p>no samples</p>"
    xs = np.asarray(samples, dtype=np.float64)
    bins = max(5, min(40, int(math.sqrt(xs.size)) + 1))
    counts, edges = np.histogram(xs, bins=bins)
    top = max(1, int(counts.max()))
    x0, y0, w, h = 60.0, 10.0, width - 80.0, height - 60.0
    lo, hi = float(edges[0]), float(edges[-1])
    span = hi - lo if hi > lo else 1.0

    def sx(v: float) -> float:
        return x0 + w * (v - lo) / span

    bars = []
    for i, n in enumerate(counts):
        bh = h * int(n) / top
        bars.append(f'<rect x="{sx(edges[i]):.1f}" y="{y0 + h - bh:.1f}" '
                    f'width="{max(sx(edges[i + 1]) - sx(edges[i]) - 1, 1):.1f}" '
                    f'height="{bh:.1f}" fill="#4a7ab5"><title>{edges[i]:.3f}-{edges[i + 1]:.3f}'
                    f' ms: {int(n)} iterations</title></rect>')
    xt = [(sx(t), _fmt(t)) for t in _nice_ticks(lo, hi) if lo <= t <= hi] or [(x0, _fmt(lo))]
    yt = [(y0 + h - h * t / top, f"{t:.0f}") for t in _nice_ticks(0, top)
          if float(t).is_integer()]
    return _svg(width, height, "".join(bars) + _axes(
        x0, y0, w, h, "end-to-end latency (ms)", "iterations", xt, yt),
        "histogram of end-to-end latency")


def timeline_svg(samples: Sequence[float], p50: float, width: int = 680,
                 height: int = 240) -> str:
    """Latency of every timed iteration in order (drift, warm-up tails, throttling)."""
    if not samples:
        return "<p>no samples</p>"
    x0, y0, w, h = 60.0, 10.0, width - 150.0, height - 60.0
    lo, hi = 0.0, max(samples) * 1.05 or 1.0
    n = len(samples)

    def sx(i: float) -> float:
        return x0 + (w * i / (n - 1) if n > 1 else w / 2)

    def sy(v: float) -> float:
        return y0 + h - h * (v - lo) / (hi - lo)

    pts = " ".join(f"{sx(i):.1f},{sy(v):.1f}" for i, v in enumerate(samples))
    body = (f'<polyline points="{pts}" fill="none" stroke="#4a7ab5" stroke-width="1.2"/>'
            + "".join(f'<circle cx="{sx(i):.1f}" cy="{sy(v):.1f}" r="1.8" fill="#4a7ab5">'
                      f'<title>iteration {i + 1}: {v:.3f} ms</title></circle>'
                      for i, v in enumerate(samples))
            + f'<line x1="{x0}" y1="{sy(p50):.1f}" x2="{x0 + w}" y2="{sy(p50):.1f}" '
            f'stroke="#e07b00" stroke-dasharray="4 3"/><text x="{x0 + w + 6}" '
            f'y="{sy(p50) + 4:.1f}" font-size="11" fill="#b35f00" {_FONT}>'
            f'p50 {p50:.3f} ms</text>')
    xt = [(sx(t - 1), f"{t:.0f}") for t in _nice_ticks(1, n) if float(t).is_integer()]
    yt = [(sy(t), _fmt(t)) for t in _nice_ticks(lo, hi) if t <= hi]
    return _svg(width, height, body + _axes(x0, y0, w, h, "timed iteration", "latency (ms)",
                                            xt, yt), "per-iteration latency")


def stage_bars_svg(stages: Sequence[Mapping[str, Any]], width: int = 680) -> str:
    """p50 (dark) and p90 (light) per stage; the label column is as wide as the longest label
    and the value text has its own column, so nothing is clipped."""
    if not stages:
        return "<p>no per-stage timings</p>"
    row = 26
    label_w = 10 + _CHAR_W * max(len(f"{s['stage']} (x{s['runs']})") for s in stages)
    value_w = _CHAR_W * len("p50 000.000 / p90 000.000 ms")
    bar_w = max(160.0, width - label_w - value_w - 10)
    total_w = label_w + bar_w + value_w + 10
    height = row * len(stages) + 10
    top = max(max(float(s["ms"]["p90"]) for s in stages), 1e-9)
    parts = []
    for i, s in enumerate(stages):
        y = 5 + i * row
        w50 = bar_w * float(s["ms"]["p50"]) / top
        w90 = bar_w * float(s["ms"]["p90"]) / top
        label = f"{s['stage']} (x{s['runs']})" if s["runs"] != 1 else str(s["stage"])
        parts.append(
            f'<text x="0" y="{y + 16}" font-size="12" {_FONT}>{_E(label)}</text>'
            f'<rect x="{label_w:.1f}" y="{y + 4}" width="{w90:.1f}" height="16" fill="#c9d7ea"/>'
            f'<rect x="{label_w:.1f}" y="{y + 4}" width="{w50:.1f}" height="16" fill="#4a7ab5"/>'
            f'<text x="{label_w + bar_w + 8:.1f}" y="{y + 16}" font-size="11" {_FONT}>'
            f'p50 {s["ms"]["p50"]:.3f} / p90 {s["ms"]["p90"]:.3f} ms</text>')
    return _svg(total_w, height, "".join(parts), "per-stage latency")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(v: str) -> str:
        numeric = v.replace(".", "", 1).replace("-", "", 1).rstrip("~%").isdigit()
        return f'<td class="n">{_E(v)}</td>' if numeric else f"<td>{_E(v)}</td>"
    return ("<table><tr>" + "".join(f"<th>{_E(h)}</th>" for h in headers) + "</tr>"
            + "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in rows)
            + "</table>")


def _kv_table(rows: Sequence[tuple[str, str]]) -> str:
    return ("<table>" + "".join(f"<tr><th>{_E(k)}</th><td><code>{_E(v)}</code></td></tr>"
                                for k, v in rows) + "</table>")


def _cards(r: Mapping[str, Any]) -> str:
    e, fps, acc = r["end_to_end"], fps_of(r), r["accuracy"]
    cards = [("throughput", f"{fps['fps_mean']:.2f} FPS"), ("p50", f"{e['p50']:.3f} ms"),
             ("p99", f"{e['p99']:.3f} ms"), ("cold load", f"{r['load']['total_ms']:.1f} ms"),
             ("peak RSS", f"{r['memory']['peak_rss_kib'] / 1024:.1f} MiB")]
    out = "".join(f'<div class="card">{_E(k)}<b>{_E(v)}</b></div>' for k, v in cards)
    cls, word = ("pass", "PASS") if acc["passed"] else ("fail", "FAIL")
    return (f'<div class="cards">{out}<div class="card">accuracy<b class="{cls}">{word}</b>'
            "</div></div>")


def render_html(r: Mapping[str, Any]) -> str:
    p, c, d, load = r["provenance"], r["conditions"], r["device"], r["load"]
    run, e = run_info(r), r["end_to_end"]
    warn = f'<p class="warn">{_E(EMULATED_WARNING)}.</p>' if run.get("emulated") else ""
    conditions = [
        ("device", f"{d.get('machine', '?')}, {d.get('cpu_model') or '?'}, "
                   f"{d.get('cpu_cores', '?')} cores, kernel {d.get('kernel', '?')}"),
        ("threads / warmup / iterations",
         f"{c['threads']} / {c['warmup']} / {c['iterations']}{plan_note(c)}"),
        ("input", input_note(r)),
        ("clocks before", clock_line(c["before"])), ("clocks after", clock_line(c["after"])),
        ("cold load", f"verify {load['verify_ms']:.3f} ms, decrypt {load['decrypt_ms']:.3f} ms, "
                      f"prepare {load['prepare_ms']:.3f} ms, total {load['total_ms']:.3f} ms"),
        ("first inference", f"{r['first_inference_ms']:.3f} ms"),
        ("peak RSS", f"{r['memory']['peak_rss_kib']} KiB")]
    acc = r["accuracy"]
    acc_rows = [[o["name"], "x".join(str(v) for v in o.get("shape", [])), f"{o['max_abs']:.3g}",
                 f"{o['cosine']:.6f}", "pass" if o["passed"] else "FAIL"]
                for o in acc["outputs"]]
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>edgepack bench: {_E(p['artifact'])} on {_E(p['board'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>edgepack bench: {_E(p['artifact'])} on {_E(p['board'])}</h1>",
        f'<p class="note">run {_E(str(run["date_utc"]))} (UTC) · {_E(str(run["execution"]))}'
        "</p>", warn, _cards(r),
        "<h2>Provenance</h2>", _kv_table(provenance_rows(r)),
        "<h2>Board and conditions</h2>", _kv_table(conditions),
        "<h2>Latency</h2>", _table(LATENCY_HEADERS, latency_rows(r)),
        f'<p class="note">{_E(RUNS_NOTE)}. End-to-end is one whole iteration.</p>',
        "<h2>Per-iteration timeline</h2>", timeline_svg(e["samples"], float(e["p50"])),
        "<h2>End-to-end latency histogram</h2>", histogram_svg(e["samples"]),
        "<h2>Per-stage latency</h2>",
        '<p class="note">dark: p50, light: p90, per run of the stage; (xN): runs per '
        "iteration</p>", stage_bars_svg(r["stages"]),
        "<h2>Accuracy</h2>",
        _table(["output", "shape", "max-abs", "cosine", "result"], acc_rows),
        f"<p><b class=\"{'pass' if acc['passed'] else 'fail'}\">"
        f"{'PASS' if acc['passed'] else 'FAIL'}</b> (tolerance max-abs {acc['tolerance']:g}"
        " x max(1, the output's largest |value|)"
        + (f", min cosine {acc['min_cosine']:g}" if "min_cosine" in acc else "") + ")</p>"]
    if r.get("profile"):
        parts += ["<h2>Per-op profile</h2>", f'<p class="note">{_E(profile_head(r["profile"]))}'
                  "</p>", _table(PROFILE_HEADERS, profile_rows(r["profile"]))]
    parts.append("</body></html>\n")
    return "".join(parts)
