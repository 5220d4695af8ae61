# SPDX-License-Identifier: Apache-2.0
"""Bench reports (``edgepack.report/2``; ``/1`` still loads): statistics, accuracy, run facts
(date, virtual board, emulation), schema check, text, and comparison against a baseline. The
HTML view is in ``edgepack.bench.report_html``.

Statistics are computed here from the raw per-iteration samples the device timed (never from
the device's own summary), so every report uses the same percentile definition (numpy's
linear interpolation).
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from edgepack.errors import SpecError
from edgepack.spec.arch import arch_facts
from edgepack.ui import format_table

REPORT_SCHEMA = "edgepack.report/2"
KNOWN_SCHEMAS = ("edgepack.report/1", REPORT_SCHEMA)


def _arch(machine: str) -> str:
    """One name per architecture for ``uname -m`` spellings (spec/arch.py's table; qemu-user
    reports the guest's own)."""
    m = machine.strip().lower()
    try:
        return arch_facts(m).name
    except KeyError:
        return m


def run_facts(target_uri: str, on_this_host: bool, device_machine: str,
              host_machine: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """When the run happened and what executed the board code. A device on this host whose
    ``uname -m`` differs from the host's runs under qemu-user emulation (virtual boards): its
    timings say nothing about the board's CPU."""
    host = host_machine if host_machine is not None else platform.machine()
    emulated = bool(on_this_host and device_machine and _arch(device_machine) != _arch(host))
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return {"date_utc": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "virtual_board": target_uri.startswith("virtual:"),
            "on_this_host": bool(on_this_host),
            "emulated": emulated,
            "execution": (f"qemu-user: {device_machine} code emulated on a {host} host"
                          if emulated else "native")}


def throughput(end_to_end: Mapping[str, Any]) -> dict[str, float]:
    """Frames per second of one sequential pipeline, from the mean and the median latency."""
    def fps(ms: float) -> float:
        return 1000.0 / ms if ms > 0 else 0.0
    return {"fps_mean": fps(float(end_to_end["mean"])), "fps_p50": fps(float(end_to_end["p50"]))}


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


def output_scale(*references: np.ndarray[Any, Any]) -> float:
    """What an output's max-abs tolerance is relative to: max(1, its largest finite |value|).
    A raw detection head's box coordinates run to 640: float32 rounds them in steps of 6e-5, so
    an absolute 1e-3 would fail a board whose kernels only sum in another order."""
    largest = 1.0
    for r in references:
        v = np.abs(np.asarray(r, dtype=np.float64))
        v = v[np.isfinite(v)]
        if v.size:
            largest = max(largest, float(v.max()))
    return largest


def compare_output(name: str, device: np.ndarray[Any, Any], reference: np.ndarray[Any, Any],
                   tolerance: float, min_cosine: float) -> dict[str, Any]:
    """max-abs and cosine similarity of one output against the host reference; the max-abs
    passes within tolerance x output_scale(reference)."""
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
    scale = output_scale(b)
    entry.update(max_abs=max_abs, cosine=cosine, scale=scale,
                 passed=bool(max_abs <= tolerance * scale and cosine >= min_cosine))
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
    if data.get("schema") not in KNOWN_SCHEMAS:
        raise SpecError(path, f"unknown report schema {data.get('schema')!r} "
                        f"(expected {' or '.join(repr(s) for s in KNOWN_SCHEMAS)})",
                        field="schema")
    validate_report(data, str(path))
    return data


# --- text ------------------------------------------------------------------------------

RUNS_NOTE = ("runs/iter: how often a stage ran in one iteration (e.g. 4 for a classifier "
             "that sees 4 crops per frame); its times are per run")


def _ms(v: float) -> str:
    return f"{v:.3f}"


def clock_line(clocks: Mapping[str, Any]) -> str:
    cpus = clocks.get("cpus") or []
    temps = clocks.get("thermal") or []
    freq = ", ".join(f"cpu{c['cpu']} {c.get('governor') or '?'} "
                     f"{(c.get('cur_khz') or 0) / 1000:.0f} MHz" for c in cpus) or "n/a"
    temp = ", ".join(f"{t.get('type') or t.get('zone')} {(t.get('millicelsius') or 0) / 1000:.1f} C"
                     for t in temps) or "n/a"
    return f"clocks: {freq}; temperatures: {temp}"


def run_info(r: Mapping[str, Any]) -> dict[str, Any]:
    """The report's run facts; a ``/1`` report has none (date and execution unknown)."""
    return dict(r.get("run") or {"date_utc": "unknown", "virtual_board": False,
                                 "emulated": False, "execution": "unknown (report/1)"})


def fps_of(r: Mapping[str, Any]) -> dict[str, float]:
    return dict(r.get("throughput") or throughput(r["end_to_end"]))


def provenance_rows(r: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs shared by the text and the HTML view."""
    p = r["provenance"]
    pkg = p.get("package") or {}
    sdk = p.get("sdk") or {}
    rows = [("run date (UTC)", str(run_info(r)["date_utc"])),
            ("tool", f"edgepack {p['tool_version']}"),
            ("artifact", f"{p['artifact']}"
             + (f" (package {pkg.get('name')} {pkg.get('version')})" if pkg else "")),
            ("artifact sha256", p["artifact_sha256"]),
            ("runner sha256", str(p.get("runner_sha256") or "n/a")),
            ("agent", f"{p.get('agent_version') or '?'} sha256 {p.get('agent_sha256') or 'n/a'}"),
            ("sdk", f"edgepack {sdk.get('edgepack_version') or '?'}, C API "
             f"{sdk.get('api_version') or '?'}"),
            ("board", f"{p['board']} via {p['target']}"),
            ("execution", str(run_info(r)["execution"]))]
    return rows


def latency_rows(r: Mapping[str, Any]) -> list[list[str]]:
    """series, runs/iter, n, min, mean, p50, p90, p99, max, std (ms)."""
    def row(name: str, runs: str, s: Mapping[str, Any]) -> list[str]:
        return [name, runs, str(s["n"]), *(_ms(float(s[k])) for k in
                                           ("min", "mean", "p50", "p90", "p99", "max", "std"))]
    rows = [row(s["stage"], str(s["runs"]), s["ms"]) for s in r["stages"]]
    rows.append(row("end-to-end", "1", r["end_to_end"]))
    return rows


LATENCY_HEADERS = ["series", "runs/iter", "n", "min ms", "mean ms", "p50 ms", "p90 ms",
                   "p99 ms", "max ms", "std ms"]

EMULATED_WARNING = ("EMULATED: the board code ran under qemu-user on this host; these timings "
                    "measure the emulator, not the board's CPU")


def render_text(r: Mapping[str, Any]) -> str:
    p, c, load = r["provenance"], r["conditions"], r["load"]
    run, fps = run_info(r), fps_of(r)
    out = [f"edgepack bench: {p['artifact']} on {p['board']} ({p['target']}), "
           f"{run['date_utc']}"]
    if run.get("emulated"):
        out.append(EMULATED_WARNING)
    out += [f"{label}: {value}" for label, value in provenance_rows(r)[1:]]
    out += [f"device: {r['device'].get('machine', '?')}, {r['device'].get('cpu_model', '?')}, "
            f"{r['device'].get('cpu_cores', '?')} cores; threads {c['threads']}, warmup "
            f"{c['warmup']}, iterations {c['iterations']}{plan_note(c)}; input "
            f"{input_note(r)}",
            f"cold load: verify {_ms(load['verify_ms'])} ms, decrypt {_ms(load['decrypt_ms'])} ms, "
            f"prepare {_ms(load['prepare_ms'])} ms (total {_ms(load['total_ms'])} ms); "
            f"first inference {_ms(r['first_inference_ms'])} ms; peak RSS "
            f"{r['memory']['peak_rss_kib']} KiB",
            f"throughput: {fps['fps_mean']:.2f} FPS (from the mean), {fps['fps_p50']:.2f} FPS "
            "(from p50), one frame at a time", ""]
    out.append(format_table(LATENCY_HEADERS, latency_rows(r)))
    out.append(RUNS_NOTE)
    out += ["", "before " + clock_line(c["before"]), "after  " + clock_line(c["after"]), ""]
    acc = r["accuracy"]
    arows = [[o["name"], f"{o['max_abs']:.3g}", f"{o['cosine']:.6f}",
              "pass" if o["passed"] else "FAIL"] for o in acc["outputs"]]
    out.append(format_table(["output", "max-abs", "cosine", "result"], arows))
    out.append(f"accuracy: {'PASS' if acc['passed'] else 'FAIL'} (tolerance max-abs "
               f"{acc['tolerance']:g} x max(1, the output's largest |value|), golden input)")
    own = (r.get("input") or {}).get("accuracy")
    if own:
        rows = [[o["name"], f"{o['max_abs']:.3g}", f"{o['cosine']:.6f}",
                 "pass" if o["passed"] else "FAIL"] for o in own["outputs"]]
        out += ["", format_table(["output", "max-abs", "cosine", "result"], rows),
                f"accuracy on {r['input']['source']}: {'PASS' if own['passed'] else 'FAIL'} "
                "(host reference from --project)"]
    if r.get("profile"):
        out += ["", render_profile_top(r["profile"])]
    return "\n".join(out) + "\n"


def plan_note(conditions: Mapping[str, Any]) -> str:
    plan = conditions.get("plan") or {}
    if plan.get("mode") == "duration":
        return f" (--duration {plan['duration_s']:g} s)"
    if plan.get("mode") == "auto":
        return " (default: about 20 s)"
    return ""


def input_note(r: Mapping[str, Any]) -> str:
    inp = r.get("input") or {"kind": "golden"}
    if inp.get("kind", "golden") == "golden":
        return "the golden input"
    return f"{inp['source']} ({inp['kind']}, sha256 {str(inp['sha256'])[:12]})"


def _shape_text(shapes: Sequence[Any]) -> str:
    return ", ".join("x".join(str(d) for d in s) if isinstance(s, list) else "-" for s in shapes)


PROFILE_HEADERS = ["stage", "op", "node", "backend", "output", "ms", "%", "MFLOP", "GFLOP/s"]


def profile_rows(profile: Mapping[str, Any], top: int = 10) -> list[list[str]]:
    nodes = sorted(profile["nodes"], key=lambda n: float(n["ms"]), reverse=True)
    total = sum(float(n["ms"]) for n in nodes)
    return [[n["stage"], n["op"], n["name"], _backend_text(n), _shape_text(n["outputs"]),
             _ms(float(n["ms"])),
             f"{100.0 * float(n['ms']) / total:.1f}" if total > 0 else "0.0",
             f"{float(n['flops']) / 1e6:.1f}" + ("" if n["flops_exact"] else "~"),
             f"{float(n['gflops']):.2f}"] for n in nodes[:top]]


def _backend_text(node: Mapping[str, Any]) -> str:
    """The node's backend; plugin nodes add their partition (whose time is on its first node)."""
    backend = str(node.get("backend", ""))
    return backend + (f" #{node['partition']}" if "partition" in node else "")


def _backends_text(profile: Mapping[str, Any]) -> str:
    """ "; opencl 12.3 ms (40 nodes, 1 partition), cpu 0.5 ms (2 nodes)" when a plugin ran."""
    totals: dict[str, list[float]] = {}
    for b in profile.get("backends", []):
        t = totals.setdefault(str(b["name"]), [0.0, 0.0, 0.0])
        t[0] += float(b["ms"])
        t[1] += int(b["nodes"])
        t[2] += int(b["partitions"])
    if not any(t[1] for name, t in totals.items() if name != "cpu"):
        return ""
    return "; " + ", ".join(
        f"{name} {_ms(t[0])} ms ({int(t[1])} nodes"
        + (f", {int(t[2])} partition{'s' if t[2] != 1 else ''})" if name != "cpu" else ")")
        for name, t in totals.items() if t[1])


def profile_head(profile: Mapping[str, Any], top: int = 10) -> str:
    nodes = profile["nodes"]
    total = sum(float(n["ms"]) for n in nodes)
    return (f"profile: {len(nodes)} nodes, {_ms(total)} ms summed (median per node, "
            f"{profile['runs']} runs{_backends_text(profile)}); the {min(top, len(nodes))} "
            "slowest (~: FLOPs estimated, about one per element):")


def render_profile_top(profile: Mapping[str, Any], top: int = 10) -> str:
    """The ``top`` slowest nodes of a profile (median ms per node) as a table."""
    return (profile_head(profile, top) + "\n"
            + format_table(PROFILE_HEADERS, profile_rows(profile, top)))


# --- compare ----------------------------------------------------------------------------

_BOOTSTRAP_ROUNDS = 2000


def _bootstrap_ci(base: Sequence[float], new: Sequence[float], q: float,
                  confidence: float = 0.95) -> tuple[float, float] | None:
    """Confidence interval of ``percentile(new, q) - percentile(base, q)`` from resampling
    each run's own samples (seeded: the same reports always give the same verdict); None
    without samples."""
    if len(base) < 2 or len(new) < 2:
        return None
    rng = np.random.default_rng(20261130)
    b, n = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    bi = rng.integers(0, b.size, size=(_BOOTSTRAP_ROUNDS, b.size))
    ni = rng.integers(0, n.size, size=(_BOOTSTRAP_ROUNDS, n.size))
    diff = np.percentile(n[ni], q, axis=1) - np.percentile(b[bi], q, axis=1)
    lo, hi = np.percentile(diff, [50 * (1 - confidence), 100 - 50 * (1 - confidence)])
    return float(lo), float(hi)


@dataclass(frozen=True)
class CompareRow:
    name: str
    metric: str
    base: float
    new: float
    unit: str = "ms"
    ci: tuple[float, float] | None = None  # 95% interval of new - base, from the samples

    @property
    def change(self) -> float:
        return (self.new - self.base) / self.base if self.base > 0 else 0.0

    @property
    def noise(self) -> float | None:
        """Half-width of the interval relative to the base (the run-to-run spread)."""
        if self.ci is None or self.base <= 0:
            return None
        return (self.ci[1] - self.ci[0]) / 2 / self.base

    @property
    def significant(self) -> bool:
        """The interval excludes zero (no samples: any change counts)."""
        return self.ci is None or self.ci[0] > 0 or self.ci[1] < 0


@dataclass(frozen=True)
class Comparison:
    rows: list[CompareRow]
    regressed: list[CompareRow]
    mismatches: list[str]  # artifact, board, threads: refuse unless forced
    notes: list[str]  # differences worth a line (iterations, emulation)
    accuracy: list[str]  # accuracy changes, regressions marked
    accuracy_regressed: bool

    @property
    def failed(self) -> bool:
        return bool(self.regressed) or self.accuracy_regressed


def _mismatches(base: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    bp, np_ = base["provenance"], new["provenance"]
    hard = []
    if bp["artifact_sha256"] != np_["artifact_sha256"]:
        hard.append(f"artifact differs ({bp['artifact']} {bp['artifact_sha256'][:12]} vs "
                    f"{np_['artifact']} {np_['artifact_sha256'][:12]})")
    if bp["board"] != np_["board"]:
        hard.append(f"board differs ({bp['board']} vs {np_['board']})")
    bt, nt = base["conditions"]["threads"], new["conditions"]["threads"]
    if bt != nt:
        hard.append(f"threads differ ({bt} vs {nt})")
    soft = []
    bi, ni = base["conditions"]["iterations"], new["conditions"]["iterations"]
    if bi != ni:
        soft.append(f"iterations differ ({bi} vs {ni}): the tails (p99) are not comparable")
    be, ne = run_info(base).get("emulated"), run_info(new).get("emulated")
    if be != ne:
        soft.append(f"one run is emulated (base {'emulated' if be else 'native'}, new "
                    f"{'emulated' if ne else 'native'})")
    if bp.get("runner_sha256") != np_.get("runner_sha256"):
        soft.append("different runner builds (runner sha256 differs)")
    return hard, soft


def _accuracy_changes(base: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], bool]:
    lines, regressed = [], False
    ba, na = base["accuracy"], new["accuracy"]
    if ba["passed"] and not na["passed"]:
        lines.append("accuracy: pass -> FAIL (REGRESSED)")
        regressed = True
    elif ba["passed"] != na["passed"]:
        lines.append(f"accuracy: {'pass' if ba['passed'] else 'FAIL'} -> "
                     f"{'pass' if na['passed'] else 'FAIL'}")
    bo = {o["name"]: o for o in ba["outputs"]}
    for o in na["outputs"]:
        b = bo.get(o["name"])
        if b is None:
            lines.append(f"output {o['name']}: new in this report")
            continue
        mark = " (REGRESSED)" if b["passed"] and not o["passed"] else ""
        regressed = regressed or bool(mark)
        lines.append(f"output {o['name']}: max-abs {b['max_abs']:.3g} -> {o['max_abs']:.3g}, "
                     f"cosine {b['cosine']:.6f} -> {o['cosine']:.6f}{mark}")
    return lines, regressed


def compare_reports(base: Mapping[str, Any], new: Mapping[str, Any],
                    threshold: float) -> Comparison:
    """Latency (p50/p90 per series, with a bootstrap interval from each run's samples), cold
    load, memory and accuracy. A latency row regresses when it grew by more than ``threshold``
    (0.1 = 10%) and the growth is outside the run-to-run spread; peak RSS when it grew by more
    than ``threshold``; accuracy when a passing output now fails."""
    def series(r: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        out = {"end-to-end": r["end_to_end"]}
        out.update({s["stage"]: s["ms"] for s in r["stages"]})
        return out

    b, n = series(base), series(new)
    rows = [CompareRow(name, metric, float(b[name][metric]), float(n[name][metric]),
                       ci=_bootstrap_ci(b[name]["samples"], n[name]["samples"], q))
            for name in b if name in n for metric, q in (("p50", 50.0), ("p90", 90.0))]
    rows.append(CompareRow("cold load", "total", float(base["load"]["total_ms"]),
                           float(new["load"]["total_ms"])))
    rows.append(CompareRow("memory", "peak RSS", float(base["memory"]["peak_rss_kib"]),
                           float(new["memory"]["peak_rss_kib"]), unit="KiB"))
    regressed = [row for row in rows if row.metric in ("p50", "p90", "peak RSS")
                 and row.change > threshold and row.significant]
    hard, soft = _mismatches(base, new)
    acc, acc_bad = _accuracy_changes(base, new)
    return Comparison(rows, regressed, hard, soft, acc, acc_bad)


def _value(v: float, unit: str) -> str:
    return str(int(v)) if unit == "KiB" else _ms(v)


def render_compare(c: Comparison, threshold: float) -> str:
    bad = {(r.name, r.metric) for r in c.regressed}

    def verdict(r: CompareRow) -> str:
        if (r.name, r.metric) in bad:
            return "REGRESSED"
        if r.metric in ("p50", "p90") and abs(r.change) > threshold and not r.significant:
            return "within noise"
        return ""

    out = []
    if c.mismatches:
        out += [f"WARNING: not comparable: {m}" for m in c.mismatches]
    out += [f"note: {m}" for m in c.notes]
    out.append(format_table(
        ["series", "metric", "base", "new", "unit", "change", "noise", ""],
        [[r.name, r.metric, _value(r.base, r.unit), _value(r.new, r.unit), r.unit,
          f"{r.change * 100:+.1f}%", "" if r.noise is None else f"±{r.noise * 100:.1f}%",
          verdict(r)] for r in c.rows]))
    out.append("noise: half-width of the 95% bootstrap interval of the change, from each "
               "run's samples; a change inside it is not called")
    out += c.accuracy
    n = len(c.regressed) + int(c.accuracy_regressed)
    out.append(f"{n} regression(s) beyond {threshold * 100:.0f}%" if n
               else f"no regression beyond {threshold * 100:.0f}%")
    return "\n".join(out) + "\n"


def comparison_json(c: Comparison, threshold: float) -> dict[str, Any]:
    return {"threshold": threshold, "mismatches": c.mismatches, "notes": c.notes,
            "rows": [{"series": r.name, "metric": r.metric, "unit": r.unit, "base": r.base,
                      "new": r.new, "change": r.change, "noise": r.noise,
                      "ci": list(r.ci) if r.ci else None, "significant": r.significant}
                     for r in c.rows],
            "regressed": [{"series": r.name, "metric": r.metric} for r in c.regressed],
            "accuracy": c.accuracy, "accuracy_regressed": c.accuracy_regressed}
