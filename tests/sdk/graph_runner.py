# SPDX-License-Identifier: Apache-2.0
"""Helpers for the runtime tests: lower + run ONNX graphs with edgepack-graph-run, and ORT."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgepack.lower.lowering import lower

# Built by the session fixture ``sdk_host`` (tests/sdk/conftest.py): one SDK build per session.


def graph_run_binary(build: Path) -> Path:
    return build / "tools" / "graph_run" / "edgepack-graph-run"


def _file(name: str) -> str:
    return "".join("_" if c in "/:\\" else c for c in name) + ".npy"


def run_device(
    build: Path, model: onnx.ModelProto, feeds: dict[str, np.ndarray], threads: int = 1,
    extra: list[str] | None = None, bounds: dict[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """The model lowered (``bounds``: dimension-0 bounds of dynamic inputs) and run by
    edgepack-graph-run on ``feeds``: its outputs by name."""
    blob = lower(model, bounds)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "in").mkdir()
        (t / "out").mkdir()
        (t / "g.epdg").write_bytes(blob)
        for k, v in feeds.items():
            np.save(t / "in" / _file(k), v)
        proc = subprocess.run(
            [str(graph_run_binary(build)), str(t / "g.epdg"), "--inputs", str(t / "in"),
             "--outputs", str(t / "out"), "--threads", str(threads), *(extra or [])],
            capture_output=True, text=True, env={**os.environ},
        )
        if proc.returncode != 0:
            raise AssertionError(f"edgepack-graph-run failed: {proc.stderr}")
        return {o.name: np.load(t / "out" / _file(o.name)) for o in model.graph.output}


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, sess.run(names, feeds), strict=True))
