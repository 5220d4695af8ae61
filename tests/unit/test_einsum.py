# SPDX-License-Identifier: Apache-2.0
"""Two-operand Einsum becomes Transpose/Reshape/MatMul at ingest (model/einsum.py): the
attention and batched-matmul equations, ellipses, implicit outputs, letters summed in one
operand; the result equals numpy's einsum under onnxruntime. Diagonals and broadcast batch
letters stay Einsum."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgepack.model.equivalence import run_onnxruntime
from edgepack.model.optimize import optimize

CASES = [
    ("bhid,bhjd->bhij", (1, 4, 16, 8), (1, 4, 12, 8)),  # attention scores
    ("bhij,bhjd->bhid", (1, 4, 16, 12), (1, 4, 12, 8)),  # attention-weighted values
    ("bij,bjk->bik", (2, 3, 4), (2, 4, 5)),
    ("...ij,...jk->...ik", (2, 3, 4, 5), (2, 3, 5, 6)),
    ("ij,jk", (3, 4), (4, 5)),  # implicit output
    ("bnd,bmd->bnm", (2, 7, 3), (2, 5, 3)),
    ("abc,cd->abd", (2, 3, 4), (4, 6)),
    ("ij,kj->ikj", (3, 4), (5, 4)),  # a batch letter moved in the output
    ("abc,ab->c", (2, 3, 4), (2, 3)),
    ("abc,d->ad", (2, 3, 4), (5,)),  # letters summed within one operand
    ("b,b->", (4,), (4,)),
]


def _model(equation: str, sa: tuple[int, ...], sb: tuple[int, ...]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Einsum", ["a", "b"], ["y"], equation=equation, name="/einsum")], "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, list(sa)),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, list(sb))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(("equation", "sa", "sb"), CASES, ids=[c[0] for c in CASES])
def test_two_operand_einsum_becomes_matmul(equation: str, sa: tuple[int, ...],
                                          sb: tuple[int, ...]) -> None:
    optimized, report = optimize(_model(equation, sa, sb))
    assert report["einsum_to_matmul"] == 1
    ops = [n.op_type for n in optimized.graph.node]
    assert "Einsum" not in ops and ops.count("MatMul") == 1, ops
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=sa).astype(np.float32), rng.normal(size=sb).astype(np.float32)
    (got,) = run_onnxruntime(optimized, {"a": a, "b": b})
    want = np.einsum(equation, a.astype(np.float64), b.astype(np.float64))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("equation", "sa", "sb"), [
    ("ii,ij->ij", (3, 3), (3, 4)),  # a diagonal
    ("bij,bjk->bik", (1, 3, 4), (2, 4, 5)),  # batch letter broadcast from size 1
])
def test_other_equations_stay_einsum(equation: str, sa: tuple[int, ...],
                                     sb: tuple[int, ...]) -> None:
    optimized, report = optimize(_model(equation, sa, sb))
    assert report["einsum_to_matmul"] == 0
    assert [n.op_type for n in optimized.graph.node] == ["Einsum"]
