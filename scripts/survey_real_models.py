# SPDX-License-Identifier: Apache-2.0
"""Packs each model of the real-model test set (tests/real_models.py) as a user would and prints
a Markdown table: model, pack status, runner status, first error. Optionally runs what packed
through the host SDK's ``edgepack-run`` and compares it with onnxruntime (worst output's
max |error| / max(1, max |reference|) on a seeded standard-normal input).

    .venv/bin/python scripts/survey_real_models.py                    # pack only
    .venv/bin/python scripts/survey_real_models.py --runner RUNNER     # and run what packs
    .venv/bin/python scripts/survey_real_models.py resnet18 yolov8n   # some models

Each model is written (refilled, seed 0) into a fresh project folder with a minimal
edgepack.toml (package, keys, one [[models]] entry with name and path) and packed with
``edgepack pack``; the first ``edgepack: error:`` line, or the last line of a traceback, is
reported. RUNNER is the host SDK's runner, e.g. build/sdk-host/tools/edgepack_run/edgepack-run
after the SDK tests built it. Needs only the project's own environment (no torch).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import real_models  # noqa: E402
from edgepack.artifact import keys  # noqa: E402

TOML = """\
[package]
name = "real-{name}"
version = "1.0.0"
version_counter = 1

[keys]
publisher = "keys/publisher.key"
recipients = ["keys/dev1.pub"]

[[models]]
name = "model"
path = "models/{file}"
"""


def first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith("edgepack: error:"):
            return line.removeprefix("edgepack: error:").strip()
    if any(ln.startswith("Traceback") for ln in lines):
        return "traceback: " + lines[-1]
    return lines[-1] if lines else "(no output)"


def make_project(spec: real_models.RealModel, root: Path) -> Path:
    model = real_models.save_real_model(spec.name, root / "models")
    (root / "edgepack.toml").write_text(
        TOML.format(name=spec.name.replace("_", "-"), file=model.relative_to(root / "models")))
    keys.generate_publisher_key(root / "keys" / "publisher.key")
    keys.generate_device_key(root / "keys" / "dev1.key")
    return root


def run_runner(runner: Path, spec: real_models.RealModel, root: Path, epk: Path) -> str:
    """edgepack-run on the artifact vs onnxruntime on the refilled model: the worst output's
    max |error| / max(1, max |reference|), or why it could not be had."""
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in spec.inputs.items()}
    (root / "in").mkdir()
    for n, v in feeds.items():
        np.save(root / "in" / f"{n}.npy", v)
    proc = subprocess.run(
        [runner, epk, "--key", root / "keys" / "dev1.key", "--publisher",
         root / "keys" / "publisher.pub", "--inputs", root / "in", "--outputs", root / "out",
         "--stage", "model"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise Failure("runner: " + first_error(proc.stderr + proc.stdout))
    model = real_models.load_real_model(spec.name)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip(spec.outputs, session.run(None, feeds), strict=True))
    worst = 0.0
    for name, ref in want.items():
        path = root / "out" / f"{name}.npy"
        if not path.exists():
            raise Failure(f"runner wrote no {name}.npy")
        got = np.load(path)
        if got.shape != ref.shape:
            raise Failure(f"runner: {name} shape {got.shape}, onnxruntime {ref.shape}")
        scale = max(1.0, float(np.abs(ref).max()))
        worst = max(worst, float(np.abs(got - ref).max()) / scale)
    return f"matches, {worst:.1e}"


class Failure(Exception):
    pass


def survey(spec: real_models.RealModel, runner: Path | None) -> tuple[str, str, str]:
    """(pack status, runner status, first error)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(spec, Path(tmp))
        epk = root / "out.epk"
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "edgepack.cli", "pack", root, "--out", epk],
                              capture_output=True, text=True, check=False)
        took = time.monotonic() - start
        if proc.returncode != 0:
            return "fails", "", first_error(proc.stderr + proc.stdout)
        onnx_bytes = sum(p.stat().st_size for p in (root / "models").iterdir())
        size = epk.stat().st_size
        status = f"packs ({took:.0f} s, {size / 1e6:.1f} MB = {size / onnx_bytes:.2f}x ONNX)"
        if runner is None:
            return status, "not run", ""
        try:
            return status, run_runner(runner, spec, root, epk), ""
        except Failure as e:
            return status, "fails", str(e)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="models (default: all)")
    parser.add_argument("--runner", type=Path, help="the host SDK's edgepack-run")
    args = parser.parse_args()
    specs = [m for m in real_models.REAL_MODELS if not args.names or m.name in args.names]
    print("| model | edgepack pack | host edgepack-run vs onnxruntime | first error |\n"
          "|---|---|---|---|", flush=True)
    for spec in specs:
        cells = survey(spec, args.runner)
        print(f"| {spec.name} | " + " | ".join(c.replace("|", "/") for c in cells) + " |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
