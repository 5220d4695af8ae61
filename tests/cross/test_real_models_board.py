# SPDX-License-Identifier: Apache-2.0
"""Real exports on a board build under qemu: resnet18 (torchvision) and yolov8n (ultralytics),
packed for hi3559a, run by the board's own edgepack-run (aarch64, under qemu-user) and compared
with onnxruntime on the refilled export. Tolerance as in tests/sdk/test_real_models.py: max
|error| <= 1e-4 x max(1, max |onnxruntime|) per output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgepack.artifact.pack import pack_project
from edgepack.build import qemu
from edgepack.build.sdkbuild import SdkBuild
from edgepack.spec.boards import load_board
from real_models import REAL_MODELS, load_real_model
from real_projects import write_project

BOARD = "hi3559a"
TOLERANCE = 1e-4


@pytest.mark.parametrize("name", ["resnet18", "yolov8n"])
def test_real_model_on_hi3559a_matches_onnxruntime(sdk_for: Callable[[str], SdkBuild],
                                                   tmp_path: Path, name: str) -> None:
    spec = next(m for m in REAL_MODELS if m.name == name)
    root = write_project(tmp_path / "project", name)
    epk = tmp_path / f"{name}.epk"
    pack_project(root, epk, board=BOARD)
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in spec.inputs.items()}
    (tmp_path / "in").mkdir()
    for n, v in feeds.items():
        np.save(tmp_path / "in" / f"{n}.npy", v)
    runner = sdk_for(BOARD).sdk_dir / "bin" / "edgepack-run"
    done = qemu.run(load_board(BOARD), [runner, epk, "--key", root / "keys" / "dev1.key",
                                   "--publisher", root / "keys" / "publisher.pub",
                                   "--inputs", tmp_path / "in", "--outputs", tmp_path / "out"],
                    timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    session = ort.InferenceSession(load_real_model(name).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    want = dict(zip(spec.outputs, session.run(None, feeds), strict=True))
    for out, ref in want.items():
        got = np.load(tmp_path / "out" / f"{out}.npy")
        assert got.shape == ref.shape and got.dtype == ref.dtype, out
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOLERANCE * scale,
                                   err_msg=f"{BOARD}: {name}: {out}")
