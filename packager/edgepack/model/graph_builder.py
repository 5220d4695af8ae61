# SPDX-License-Identifier: Apache-2.0
"""A small builder for opset-17 ONNX graphs with ``onnx.helper``: names, constants, nodes.

Used by the pre/post-processing graphs (``prepost.py``) and by the seeded test models
(``zoo.py``, which adds layer helpers with random weights on top).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17


class GraphBuilder:
    """Accumulates nodes and initializers; every helper returns the name of its output."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: dict[str, int] = {}

    def name(self, prefix: str) -> str:
        n = self._counts.get(prefix, 0)
        self._counts[prefix] = n + 1
        return f"{prefix}_{n}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def op(
        self,
        op_type: str,
        inputs: list[str],
        n_out: int = 1,
        outs: list[str] | None = None,
        **attrs: Any,
    ) -> list[str]:
        """Add a node; ``outs`` names its outputs explicitly (e.g. a graph output)."""
        node_name = self.name(op_type.lower())
        if outs is None:
            outs = [f"{node_name}_out{i}" if n_out > 1 else node_name for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=node_name, **attrs))
        return outs

    def op1(self, op_type: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        return self.op(op_type, inputs, 1, None if out is None else [out], **attrs)[0]

    def finish(
        self,
        graph_name: str,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[tuple[str, str, list[int]]],
    ) -> onnx.ModelProto:
        """``outputs``: (internal tensor, public name, shape); renames via Identity-free rewire."""
        for internal, public, _ in outputs:
            for node in self.nodes:
                node.output[:] = [public if o == internal else o for o in node.output]
                node.input[:] = [public if i == internal else i for i in node.input]
        out_infos = [helper.make_tensor_value_info(p, TensorProto.FLOAT, s) for _, p, s in outputs]
        graph = helper.make_graph(self.nodes, graph_name, inputs, out_infos, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="edgepack.zoo",
            ir_version=IR_VERSION,
        )
        return model
