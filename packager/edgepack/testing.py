# SPDX-License-Identifier: Apache-2.0
"""A tiny project to check a board, a build or an install with (docs/pytest-plugin.md).

``tiny_project(root)`` writes a complete edgepack project: a 4-class classifier (one
GlobalAveragePool + Gemm on a 1x3x16x16 float input, seeded weights), an ``edgepack.toml``
with labels and top-2 postprocessing, and fresh keys. It packs in about a second and runs in
microseconds, so a bench of it measures the path to the board, not the model.

    from edgepack.testing import tiny_project
    tiny = tiny_project(tmp_path / "tiny")
    artifact = tiny.pack(board="host")
    edgepack_device.bench(artifact, key=tiny.key, publisher=tiny.publisher)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPEC = """\
[package]
name = "tiny"
version = "0.1.0"
version_counter = 1

[keys]
publisher = "keys/publisher.key"
recipients = ["keys/board.pub"]

[[models]]
name = "classifier"
path = "models/tiny.onnx"
labels = ["a", "b", "c", "d"]
  [models.postprocess]
  kind = "classification"
  output = "logits"
  top_k = 2

[pipeline]
stages = [ { model = "classifier" } ]
"""
INPUT_SHAPE = (1, 3, 16, 16)  # the pipeline input "input", float32


@dataclass(frozen=True)
class TinyProject:
    root: Path
    key: Path  # the recipient's private key (keys/board.key): reads the golden reference
    publisher: Path  # the publisher's public key (keys/publisher.pub): checks the signature

    def pack(self, board: str | None = None, out: Path | None = None) -> Path:
        """Pack the project (``out`` default: ``ROOT/tiny.epk``); returns the artifact."""
        from edgepack import api

        return api.pack(self.root, out or self.root / "tiny.epk", board=board).path


def write_tiny_model(path: Path) -> None:
    """The classifier's ONNX file (opset 17), the same bytes every time."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(
        np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w"], ["logits"])]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def tiny_project(root: Path, *, make_keys: bool = True) -> TinyProject:
    """Write the tiny project into ``root`` (created). ``make_keys=False`` leaves
    ``keys/publisher.key`` and ``keys/board.key`` to the caller (e.g. ``edgepack keys new``)."""
    root = Path(root)
    write_tiny_model(root / "models" / "tiny.onnx")
    (root / "edgepack.toml").write_text(SPEC)
    key, publisher = root / "keys" / "board.key", root / "keys" / "publisher.pub"
    if make_keys:
        from edgepack.artifact import keys

        keys.generate_publisher_key(root / "keys" / "publisher.key")
        keys.generate_device_key(key)
    return TinyProject(root, key, publisher)
