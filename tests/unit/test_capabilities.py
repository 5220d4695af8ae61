# SPDX-License-Identifier: Apache-2.0
"""The op-capability table (lower/op_table.toml): loading, its rules, and the refusal text."""

from __future__ import annotations

import pytest

from edgepack.lower.capabilities import (
    FOLDABLE_ONLY,
    _parse,
    missing_ops_message,
    op_table,
    render_op_list,
    runtime_ops,
)
from edgepack.lower.device_graph import DTYPES
from edgepack.model.ingest import RUNTIME_OPS


def test_table_loads_and_is_the_one_op_list() -> None:
    table = op_table()
    assert {"Conv", "LayerNormalization", "Erf", "Einsum", "GatherElements"} <= set(table)
    fused = {op for op, cap in table.items() if cap.fused_only}
    assert fused == {"FramePreprocess", "FrameRoiAlign"}  # device-only: lower/frame_fusion.py
    assert RUNTIME_OPS == runtime_ops() == frozenset(table) - fused
    assert not FOLDABLE_ONLY & set(table)
    for cap in table.values():
        assert set(cap.dtypes) <= set(DTYPES), cap.op_type
        assert cap.impl.isidentifier(), cap.op_type


def test_op_list_h_has_one_line_per_table_entry() -> None:
    lines = [ln for ln in render_op_list().splitlines() if ln.startswith("EDGEPACK_OP(")]
    assert lines == [f"EDGEPACK_OP({c.op_type}, {c.impl})" for c in op_table().values()
                     if c.impl != "lowered"]
    assert "EDGEPACK_OP(CastLike" not in render_op_list()


@pytest.mark.parametrize(("text", "message"), [
    ('[Foo]\ndtypes = ["float32"]\n', r"\[Foo\] needs impl"),
    ('[Foo]\nimpl = "foo"\n', r"\[Foo\] dtypes must be a non-empty subset"),
    ('[Foo]\nimpl = "foo"\ndtypes = ["float32", "complex64"]\n', r"\[Foo\] dtypes must be"),
    ('[Foo]\nimpl = "foo"\ndtypes = ["float32"]\nconst_input = [1]\n',
     r"\[Foo\] unknown field\(s\) \['const_input'\]"),
])
def test_broken_table_entries_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _parse(text, "op_table.toml")


def test_missing_ops_message_counts_distinct_ops_most_frequent_first() -> None:
    ops = ["Conv", "NonZero", "Unique", "NonZero", "Loop", "NonZero", "Unique", "Shape"]
    assert missing_ops_message(ops) == "missing ops: NonZero x3, Unique x2, Loop x1"
    assert missing_ops_message(["Conv", "Relu", "Constant"]) == ""
