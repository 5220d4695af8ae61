# SPDX-License-Identifier: Apache-2.0
"""The HTML bench report: well-formed inline SVG with axis titles, every section present, and a
real render in headless Chromium (installed by scripts/setup.sh) that loads the page, keeps the
DOM and produces a non-blank screenshot."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

from test_report import make_report

from edgepack.bench.report_html import render_html, stage_bars_svg

SVG = re.compile(r"<svg .*?</svg>", re.S)


def _profile() -> dict[str, object]:
    node = {"stage": "classifier_with_a_long_name", "op": "Conv", "backend": "cpu",
            "inputs": [[1, 3, 32, 32]], "outputs": [[1, 8, 32, 32]], "samples": 5, "ms": 1.5,
            "flops": 4.0e6, "flops_exact": True, "gflops": 2.7}
    return {"runs": 5, "total_ms": 2.0,
            "nodes": [{**node, "name": "conv1"},
                      {**node, "name": "relu1", "op": "Relu", "ms": 0.5, "flops": 8192.0,
                       "flops_exact": False, "gflops": 0.02}]}


def test_html_sections_and_well_formed_svg() -> None:
    r = make_report()
    r["profile"] = _profile()
    page = render_html(r)
    for heading in ("Provenance", "Board and conditions", "Latency", "Per-iteration timeline",
                    "End-to-end latency histogram", "Per-stage latency", "Accuracy",
                    "Per-op profile"):
        assert f"<h2>{heading}</h2>" in page
    assert 'class="warn">EMULATED' in page and "2026-11-30T03:00:00Z" in page
    for h in ("ab" * 32, "cd" * 32, "ef" * 32):
        assert h in page
    svgs = SVG.findall(page)
    assert len(svgs) == 3
    trees = [ET.fromstring(s) for s in svgs]  # raises on malformed markup
    texts = [" ".join(t.text or "" for t in tree.iter("{http://www.w3.org/2000/svg}text"))
             for tree in trees]
    assert "timed iteration" in texts[0] and "latency (ms)" in texts[0]
    assert "end-to-end latency (ms)" in texts[1] and "iterations" in texts[1]
    assert "classifier_with_a_long_name (x4)" in texts[2]
    assert "conv1" in page and "relu1" in page and "0.0~" in page  # profile rows, estimated mark
    assert 'class="warn"' not in render_html(make_report(emulated=False))


def test_stage_labels_fit_before_their_bars() -> None:
    stages = make_report()["stages"]
    stages[1]["stage"] = "a_really_long_stage_name_from_a_real_pipeline_export"
    tree = ET.fromstring(stage_bars_svg(stages))
    ns = "{http://www.w3.org/2000/svg}"
    bar_x = min(float(rect.get("x", 0)) for rect in tree.iter(f"{ns}rect"))
    longest = max(len(t.text or "") for t in tree.iter(f"{ns}text") if t.get("x") == "0")
    assert bar_x >= 6.5 * longest  # the label column is wider than the label at 12px
    value_x = max(float(t.get("x", 0)) for t in tree.iter(f"{ns}text"))
    assert value_x + 7 * len("p50 000.000 / p90 000.000 ms") <= float(tree.get("width", 0)) + 1


def _png_size_and_colours(png: bytes) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the decoded pixel rows."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is missing: run scripts/setup.sh"
    r = make_report()
    r["profile"] = _profile()
    page = tmp_path / "report.html"
    page.write_text(render_html(r))
    shot = tmp_path / "report.png"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert dom.count("<svg") == 3 and "Per-op profile" in dom and "EMULATED" in dom
    res = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,3400",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    width, height, colours = _png_size_and_colours(shot.read_bytes())
    assert (width, height) == (1200, 3400)
    assert colours > 20  # text, bars and the warning banner, not a blank page
