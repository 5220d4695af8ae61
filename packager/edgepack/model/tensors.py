# SPDX-License-Identifier: Apache-2.0
"""Tensor descriptions as the manifest writes them (docs/manifest.md, "Tensor descriptions")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

# ONNX element type <-> the dtype names the manifest and the runtime use.
ONNX_TO_DTYPE: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.UINT8: "uint8",
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
}
DTYPE_TO_ONNX = {v: k for k, v in ONNX_TO_DTYPE.items()}


@dataclass(frozen=True)
class TensorDesc:
    name: str
    dtype: str  # float32 | uint8 | int32 | int64
    shape: tuple[int, ...]  # static; for dynamic_dim0 tensors dimension 0 is the bound
    layout: str | None = None  # e.g. "NCHW", "HWC"; None when it has no image meaning
    dynamic_dim0: bool = False

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return np.dtype(self.dtype)

    def to_manifest(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "layout": self.layout,
        }
        if self.dynamic_dim0:
            d["dynamic_dim0"] = True
        return d

    def renamed(self, name: str) -> TensorDesc:
        return TensorDesc(name, self.dtype, self.shape, self.layout, self.dynamic_dim0)


def describe_value(value: onnx.ValueInfoProto, layout: str | None = None) -> TensorDesc:
    """A TensorDesc for a graph input/output whose shape is fully static."""
    t = value.type.tensor_type
    if t.elem_type not in ONNX_TO_DTYPE:
        raise ValueError(f"tensor {value.name!r}: element type {t.elem_type} is not supported")
    shape = tuple(int(d.dim_value) for d in t.shape.dim)
    return TensorDesc(value.name, ONNX_TO_DTYPE[t.elem_type], shape, layout)
