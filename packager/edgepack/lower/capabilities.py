# SPDX-License-Identifier: Apache-2.0
"""The CPU runtime's op-capability table (``op_table.toml``): one source for the packer's
refusal and the C++ op registry (``sdk_templates/src/runtime/ops/op_list.h``, rendered from it).

``python -m edgepack.lower.capabilities --write`` regenerates op_list.h from the table;
``--check`` exits 1 when the checked-in file differs.
"""

from __future__ import annotations

import sys
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from edgepack.fsutil import generated_file_main
from edgepack.lower.device_graph import DTYPES

TABLE = Path(__file__).with_name("op_table.toml")
OP_LIST_H = Path("sdk_templates/src/runtime/ops/op_list.h")  # relative to the repository root
# Ops folded away at lowering time when their inputs are known (never reach the device).
FOLDABLE_ONLY: frozenset[str] = frozenset({"Constant", "Shape", "ConstantOfShape", "Size"})
LOWERED = "lowered"  # impl of an op that lowering rewrites into other ops of the table
DTYPE_NAMES = tuple(DTYPES)  # the device graph's dtypes (lower/device_graph.py)


@dataclass(frozen=True)
class OpCapability:
    op_type: str
    impl: str
    dtypes: tuple[str, ...]
    const_inputs: tuple[int, ...] = ()
    limits: str = ""
    via_float32: tuple[str, ...] = ()  # dtypes lowering computes as float32 (cast in and out)
    fused_only: bool = False  # a device op that lowering fuses out of others: not an ONNX op


def _parse(text: str, source: str) -> dict[str, OpCapability]:
    raw = tomllib.loads(text)
    out: dict[str, OpCapability] = {}
    for op, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("impl"), str):
            raise ValueError(f"{source}: [{op}] needs impl = \"<function prefix>\"")
        unknown = set(entry) - {"impl", "dtypes", "const_inputs", "limits", "via_float32",
                                "fused_only"}
        if unknown:
            raise ValueError(f"{source}: [{op}] unknown field(s) {sorted(unknown)}")
        dtypes = tuple(entry.get("dtypes", ()))
        via = tuple(entry.get("via_float32", ()))
        bad = [d for d in (*dtypes, *via) if d not in DTYPE_NAMES]
        if not dtypes or bad:
            raise ValueError(f"{source}: [{op}] dtypes must be a non-empty subset of {DTYPE_NAMES}")
        out[op] = OpCapability(op, entry["impl"], dtypes,
                               tuple(int(i) for i in entry.get("const_inputs", ())),
                               str(entry.get("limits", "")), via,
                               bool(entry.get("fused_only", False)))
    return out


@cache
def op_table() -> dict[str, OpCapability]:
    """op type -> capability, in table order."""
    return _parse(TABLE.read_text(encoding="utf-8"), TABLE.name)


def runtime_ops() -> frozenset[str]:
    """The ONNX op types the CPU runtime runs (not the device-only ops that lowering fuses)."""
    return frozenset(op for op, cap in op_table().items() if not cap.fused_only)


def missing_ops_message(op_types: Iterable[str]) -> str:
    """'missing ops: Foo x3, Bar x1' for the op types (one entry per node) not in the table,
    most frequent first; '' when none is missing."""
    table = op_table()
    counts = Counter(op for op in op_types if op not in table and op not in FOLDABLE_ONLY)
    if not counts:
        return ""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    listed = ", ".join(f"{op} x{n}" for op, n in ranked)
    return f"missing ops: {listed}"


def render_op_list() -> str:
    """The C++ registration list (op_list.h) for the table."""
    lines = [
        "// SPDX-License-Identifier: Apache-2.0",
        "// GENERATED from packager/edgepack/lower/op_table.toml by",
        "// `python -m edgepack.lower.capabilities --write`: edit the table, not this file.",
        "// The CPU op registration table: ONE line per op,",
        "// EDGEPACK_OP(OnnxType, function prefix). The op file defines",
        "// `void <prefix>_prepare(PrepareContext&)` and `void <prefix>_run(RunContext&)` in",
        "// namespace edgepack::ops; several ONNX types may share one implementation (op family).",
        "// Included (with EDGEPACK_OP defined) by ops/registry.cpp only.",
        "// See docs/adding-an-op.md.",
    ]
    lines += [f"EDGEPACK_OP({c.op_type}, {c.impl})" for c in op_table().values()
              if c.impl != LOWERED]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated_file_main("edgepack.lower.capabilities", OP_LIST_H, render_op_list, argv)


if __name__ == "__main__":
    sys.exit(main())
