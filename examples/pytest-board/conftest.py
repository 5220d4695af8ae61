# SPDX-License-Identifier: Apache-2.0
"""A tiny project packed once for the session's board (edgepack_device.board).

A real suite would pack its own project (``api.pack("path/to/project", ...)``) or take a
built ``.epk``; this one makes a small classifier and fresh keys so it runs anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepack import api
from edgepack.artifact import keys
from edgepack.pytest_plugin import EdgepackDevice

SPEC = """
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


@dataclass(frozen=True)
class Packed:
    artifact: Path
    key: Path  # the recipient's private key: reads the golden reference on the host
    publisher: Path  # the publisher's public key: the device checks the signature with it


def _model(path: Path) -> None:
    w = numpy_helper.from_array(
        np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w"], ["logits"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


@pytest.fixture(scope="session")
def packed(tmp_path_factory: pytest.TempPathFactory, edgepack_device: EdgepackDevice) -> Packed:
    root = tmp_path_factory.mktemp("tiny")
    _model(root / "models" / "tiny.onnx")
    publisher = keys.generate_publisher_key(root / "keys" / "publisher.key")
    keys.generate_device_key(root / "keys" / "board.key")
    (root / "edgepack.toml").write_text(SPEC)
    result = api.pack(root, root / "tiny.epk", board=edgepack_device.board)
    return Packed(result.path, root / "keys" / "board.key", publisher)
