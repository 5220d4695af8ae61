# SPDX-License-Identifier: Apache-2.0
"""Two-operand Einsum as MatMul: the runtime's Einsum is a direct sum over every index (fine
for small contractions, slow for attention), while MatMul runs on the GEMM kernels.

With static shapes, ``A`` and ``B`` are summed over the letters only they use (ReduceSum),
transposed to ``[batch, free, contracted]`` and ``[batch, contracted, free]``, reshaped to
3-D, multiplied, reshaped back and transposed into the output's letter order. Equations with
a repeated letter in one operand (diagonals), broadcast batch letters of different sizes,
more or fewer than two operands, or operands that are not float32 are left to the runtime's
Einsum.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _parse(equation: str, ranks: list[int]) -> tuple[list[str], str] | None:
    """(operand letters, output letters) with ``...`` spelled out; None when not handled."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        return None
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in eq]
    dots = max((r - len(t.replace("...", "")) for t, r in zip(terms, ranks, strict=True)
                if "..." in t), default=0)
    if dots > len(spare):
        return None
    fill = "".join(spare[:dots])
    spelled = []
    for term, rank in zip(terms, ranks, strict=True):
        if "..." in term:
            term = term.replace("...", fill[dots - (rank - len(term.replace("...", ""))):])
        if len(term) != rank or len(set(term)) != len(term) or not term.isalpha():
            return None
        spelled.append(term)
    if not arrow:  # implicit output: the letters used once, in alphabetical order
        letters = "".join(spelled)
        rhs = fill + "".join(sorted(c for c in set(letters) if letters.count(c) == 1
                                    and c not in fill))
    rhs = rhs.replace("...", fill)
    if not rhs.isalpha() and rhs:
        return None
    return spelled, rhs


def _plan(a: str, b: str, out: str, sa: tuple[int, ...], sb: tuple[int, ...]
          ) -> tuple[list[str], list[str], list[str], list[str]] | None:
    """(batch, a-free, contracted, b-free) letters, or None when sizes do not line up."""
    size = dict(zip(a, sa, strict=True))
    for c, n in zip(b, sb, strict=True):
        if c in size and size[c] != n:
            return None  # broadcasting a size-1 letter: left to the runtime
        size[c] = n
    if set(out) - set(a) - set(b) or len(set(out)) != len(out):
        return None
    batch = [c for c in out if c in a and c in b]
    left = [c for c in out if c in a and c not in b]
    right = [c for c in out if c in b and c not in a]
    contracted = [c for c in a if c in b and c not in out]
    return batch, left, contracted, right


def einsum_to_matmul(model: onnx.ModelProto) -> int:
    """Rewrites each handled two-operand Einsum; returns how many."""
    from edgepack.model.optimize import _elem_types, static_shapes  # optimize runs this pass

    graph = model.graph
    if not any(n.op_type == "Einsum" for n in graph.node):
        return 0
    types = _elem_types(model)
    shapes = {name: shape for name, shape in static_shapes(model).items()
              if types.get(name) == onnx.TensorProto.FLOAT}  # MatMul runs float32
    taken = ({i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
             | {i.name for i in graph.input})
    done = 0
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        replaced = _rewrite(graph, node, shapes, taken) if node.op_type == "Einsum" else None
        if replaced is None:
            nodes.append(node)
        else:
            nodes.extend(replaced)
            done += 1
    if done:
        del graph.node[:]
        graph.node.extend(nodes)
    return done


def _rewrite(graph: onnx.GraphProto, node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]],
             taken: set[str]) -> list[onnx.NodeProto] | None:
    if len(node.input) != 2 or not all(i in shapes for i in node.input):
        return None
    equation = next((helper.get_attribute_value(a) for a in node.attribute
                     if a.name == "equation"), b"")
    sa, sb = shapes[node.input[0]], shapes[node.input[1]]
    parsed = _parse(equation.decode() if isinstance(equation, bytes) else str(equation),
                    [len(sa), len(sb)])
    if parsed is None:
        return None
    (a, b), out = parsed
    plan = _plan(a, b, out, sa, sb)
    if plan is None:
        return None
    batch, left, contracted, right = plan
    size = {**dict(zip(a, sa, strict=True)), **dict(zip(b, sb, strict=True))}
    base = node.name or node.output[0]
    new: list[onnx.NodeProto] = []

    def tensor(what: str) -> str:
        name, n = f"{base}/{what}", 0
        while name in taken:
            n += 1
            name = f"{base}/{what}_{n}"
        taken.add(name)
        return name

    def const(what: str, value: list[int]) -> str:
        name = tensor(what)
        graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
        return name

    def add(op: str, inputs: list[str], what: str, **attrs: object) -> str:
        result = tensor(what)
        new.append(helper.make_node(op, inputs, [result], name=result, **attrs))  # type: ignore[arg-type]
        return result

    def prepare(name: str, letters: str, order: list[str]) -> str:
        """Sum away the letters ``order`` lacks, then transpose into ``order``."""
        alone = [i for i, c in enumerate(letters) if c not in order]
        if alone:
            name = add("ReduceSum", [name, const("axes", alone)], "summed", keepdims=0)
            letters = "".join(c for c in letters if c in order)
        perm = [letters.index(c) for c in order]
        if perm != list(range(len(perm))):
            name = add("Transpose", [name], "moved", perm=perm)
        return name

    def prod(letters: list[str]) -> int:
        return int(np.prod([size[c] for c in letters], dtype=np.int64))

    nb = prod(batch)
    lhs = prepare(node.input[0], a, batch + left + contracted)
    rhs = prepare(node.input[1], b, batch + contracted + right)
    lhs = add("Reshape", [lhs, const("lhs_shape", [nb, prod(left), prod(contracted)])], "lhs")
    rhs = add("Reshape", [rhs, const("rhs_shape", [nb, prod(contracted), prod(right)])], "rhs")
    product = add("MatMul", [lhs, rhs], "product")
    order = batch + left + right
    full = add("Reshape", [product, const("shape", [size[c] for c in order])], "full")
    perm = [order.index(c) for c in out]
    if perm == list(range(len(perm))):
        new.append(helper.make_node("Identity", [full], [node.output[0]], name=f"{base}/out"))
    else:
        new.append(helper.make_node("Transpose", [full], [node.output[0]], perm=perm,
                                    name=f"{base}/out"))
    return new
