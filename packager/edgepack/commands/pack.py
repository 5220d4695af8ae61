# SPDX-License-Identifier: Apache-2.0
"""``edgepack pack [PROJECT] --out FILE.epk``: the signed, encrypted artifact alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgepack.ui import emit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("pack", help="pack a project's models into a signed, encrypted .epk")
    p.add_argument("project", type=Path, nargs="?", default=Path("."),
                   help="project folder with edgepack.toml (default: .)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.epk",
                   help="where to write the artifact")
    p.add_argument("--board", help="board id: apply the spec's placement for this board")
    p.add_argument("--no-stable-sections", dest="stable_sections", action="store_false",
                   help="give every section a key of this release only: two releases then "
                        "share no ciphertext (by default a section unchanged since another "
                        "release keeps its bytes, so a re-deploy sends only what changed; "
                        "docs/keys.md)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def quantized_text(dtype: str, agreement: dict[str, Any]) -> str:
    """One line: how a quantised model agrees with its float32 original."""
    parts = [f"{o['name']} cosine {o['cosine']:.4f} max-abs {o['max_abs']:.3g}"
             for o in agreement["outputs"]]
    if agreement.get("top1") is not None:
        parts.insert(0, f"top-1 agreement {agreement['top1']:.1%}")
    if agreement.get("detections") is not None:
        parts.insert(0, f"detections matched (IoU >= 0.5) {agreement['detections']:.1%}")
    return (f"{dtype} vs float32 on {agreement['samples']} calibration sample(s): "
            + ", ".join(parts))


def summary_text(r: dict[str, Any]) -> str:
    lines = [f"packed {r['package']} {r['version']} (version_counter {r['version_counter']}) "
             f"-> {r['artifact']} ({r['size']} bytes)"]
    for s in r["stages"]:
        lines.append(f"  {s['name']:<24} {s['kind']:<6} on {s['processor']:<4} "
                     f"{s['graph_bytes']:>9} bytes  {s['ops']} ops")
    for q in r.get("quantized", []):
        lines.append(f"  {q['model']}: {quantized_text(q['dtype'], q['agreement'])}")
    lines.append(f"  recipients: {', '.join(r['recipients'])}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from edgepack import api

    result = api.pack(args.project, args.out, board=args.board,
                      stable_sections=args.stable_sections)
    emit(result.summary(), args.json, summary_text)
    return 0
