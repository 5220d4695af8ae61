# SPDX-License-Identifier: Apache-2.0
"""examples/vision-demo set up the way a user starts from it, for tests and benchmarks: the
folder copied, its models written by its own ``generate_models.py``, fresh keys; then packed,
and its next release (the classifier's weights changed).

Kept beside the tests rather than in ``edgepack.testing``: the example folder is part of the
source checkout, not of the wheel. Benchmarks put ``tests/`` on ``sys.path`` to import it.

    project = example_project(tmp_path / "vision-demo")
    artifact = pack_project(project, project / "demo.epk")
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import onnx

from edgepack.artifact import keys
from edgepack.cli import main as cli_main
from edgepack.model import zoo

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "vision-demo"
# What a copy never takes from the source folder: keys, generated models, outputs, artifacts.
_NOT_COPIED = shutil.ignore_patterns("keys", "models", "out", "*.onnx", "*.epk")


def example_project(root: Path, *, devices: Sequence[str] = ("dev1", "dev2"),
                    keys_by_cli: bool = False) -> Path:
    """Copy the example into ``root`` (created, or an existing empty folder), write its models
    with the copy's ``generate_models.py`` and create ``keys/<device>.key`` for each of
    ``devices`` (the spec's recipients are dev1 and dev2; others, e.g. "stranger", are keys
    the artifact is not sealed to) and ``keys/publisher.key``, each with its ``.pub`` beside
    it. ``keys_by_cli`` creates them with ``edgepack keys new`` as a user would (its lines are
    printed); otherwise through the key API, silently. Returns ``root``."""
    root = Path(root)
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=_NOT_COPIED)
    done = subprocess.run([sys.executable, str(root / "generate_models.py"), "--out",
                           str(root / "models")], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"generate_models.py failed:\n{done.stdout}\n{done.stderr}")
    wanted = [("device", root / "keys" / f"{name}.key") for name in devices]
    for kind, path in [*wanted, ("publisher", root / "keys" / "publisher.key")]:
        if keys_by_cli:
            if cli_main(["keys", "new", kind, "--out", str(path)]) != 0:
                raise RuntimeError(f"edgepack keys new {kind} --out {path} failed")
        elif kind == "device":
            keys.generate_device_key(path)
        else:
            keys.generate_publisher_key(path)
    return root


def pack_project(project: Path, out: Path) -> Path:
    """``edgepack pack PROJECT --out OUT`` in this process; returns ``out``. A failed pack
    raises (the CLI has printed its ``edgepack: error:`` line)."""
    if cli_main(["pack", str(project), "--out", str(out)]) != 0:
        raise RuntimeError(f"edgepack pack {project} failed (its error is printed above)")
    return out


def next_release(project: Path) -> None:
    """Make the project its next release: the classifier's weights changed (seed 3 instead of
    the example's 2, same topology, so a re-deploy sends only that model's section) and
    ``version_counter`` 7 -> 8."""
    onnx.save(zoo.mobilenet_classifier(seed=3, input_size=96, num_classes=10),
              project / "models" / "classifier.onnx")
    spec = project / "edgepack.toml"
    text = spec.read_text()
    if "version_counter = 7" not in text:
        raise RuntimeError(f"{spec}: no 'version_counter = 7' to raise")
    spec.write_text(text.replace("version_counter = 7", "version_counter = 8", 1))
