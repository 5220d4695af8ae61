# SPDX-License-Identifier: Apache-2.0
"""The real-model data set (tests/data/real_models, see docs/real-models.md): each stored graph
is stripped as documented, refills deterministically, and runs under onnxruntime with finite
outputs of a sane magnitude."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from real_models import (
    BY_NAME,
    CUT_MODELS,
    DATA,
    EXTERNAL_DATA,
    REAL_MODELS,
    RealModel,
    load_real_model,
    load_stripped,
    refill,
    save_real_model,
    stripped_names,
)

NAMES = [m.name for m in [*REAL_MODELS, *CUT_MODELS]]
# Refilling runs the graph a few times (calibration); the bytes-level determinism check runs it
# twice more on one model of each family, the rest use the one cached refill.
DETERMINISM = ["mobilenet_v3_small", "yolov8n", "vit_tiny_patch16_224"]
# A refilled model's outputs stay within these bounds on a standard-normal input: weights that
# vanish or explode through depth would leave them (the bounds are wide: random weights).
MIN_PEAK, MAX_PEAK = 1e-2, 1e4
MAX_TOTAL_BYTES = 15 * 1024 * 1024  # the stripped set stays small in the repository


def run(model: onnx.ModelProto, spec: RealModel) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in spec.inputs.items()}
    return [np.asarray(o) for o in session.run(None, feeds)]


def test_the_set_is_complete() -> None:
    files = {p.name for p in BY_NAME["resnet18"].path.parent.iterdir()}
    for spec in [*REAL_MODELS, *CUT_MODELS]:
        assert spec.path.exists(), f"{spec.path} is missing: run scripts/export_real_models.py"
        if not spec.external_data:
            files.discard(spec.path.name)
    assert {f for f in files if f.endswith(".onnx")} == set(), "a stored graph the lists lack"
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total < MAX_TOTAL_BYTES, f"{DATA} holds {total} bytes"


@pytest.mark.parametrize("name", NAMES)
def test_stored_graph_is_stripped_and_declares_its_interface(name: str) -> None:
    spec = BY_NAME[name]
    model = load_stripped(name)
    names = stripped_names(model)
    assert names, "nothing was stripped"
    inits = {t.name: t for t in model.graph.initializer}
    for n in names:
        t = inits[n]
        assert not t.raw_data and not t.float_data and not t.external_data, n
        assert t.dims, n
    graph_inputs = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
                    for i in model.graph.input if i.name not in inits}
    assert graph_inputs == spec.inputs
    assert tuple(o.name for o in model.graph.output) == spec.outputs
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == spec.opset


def refilled(name: str) -> bytes:
    return bytes(load_real_model(name, seed=0).SerializeToString())  # cached in real_models


def refill_anew(name: str, seed: int) -> bytes:
    model = load_stripped(name)
    refill(model, seed)
    return bytes(model.SerializeToString())


@pytest.mark.parametrize("name", DETERMINISM)
def test_refill_is_deterministic(name: str) -> None:
    first = refill_anew(name, 0)
    assert refilled(name) == first  # the first call computes it again, independently
    assert refill_anew(name, 1) != first


@pytest.mark.parametrize("name", NAMES)
def test_refilled_model_is_valid_and_runs(name: str) -> None:
    spec = BY_NAME[name]
    model = onnx.load_from_string(refilled(name))
    onnx.checker.check_model(model)
    assert stripped_names(model) == []
    stored = {t.name: t for t in load_stripped(name).graph.initializer}
    for t in model.graph.initializer:  # refilled exactly the stripped tensors, same dims
        assert tuple(t.dims) == tuple(stored[t.name].dims), t.name
        assert t.raw_data or t.float_data or t.int64_data or t.int32_data or \
            t.double_data or t.data_type == onnx.TensorProto.BOOL, t.name
    for out, out_name in zip(run(model, spec), spec.outputs, strict=True):
        assert np.isfinite(out).all(), out_name
        peak = float(np.abs(out).max())
        assert MIN_PEAK < peak < MAX_PEAK, (out_name, peak)


def test_external_data_model_keeps_its_layout(tmp_path: Path) -> None:
    (spec,) = [m for m in REAL_MODELS if m.external_data]
    assert (spec.path.parent / EXTERNAL_DATA).exists()
    path = save_real_model(spec.name, tmp_path / "project" / "models")
    assert path.name == "model.onnx"
    assert (path.parent / EXTERNAL_DATA).stat().st_size > path.stat().st_size
    bare = onnx.load(str(path), load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in bare.graph.initializer
               if t.dims and len(t.dims) > 1)
    reloaded = onnx.load(str(path))
    ref = onnx.load_from_string(refilled(spec.name))
    assert [t.raw_data for t in reloaded.graph.initializer] == \
        [t.raw_data for t in ref.graph.initializer]


def export_script() -> ModuleType:
    """scripts/export_real_models.py: its stripping needs only onnx (torch is imported only to
    export)."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "export_real_models.py"
    spec = importlib.util.spec_from_file_location("export_real_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", NAMES)
def test_stored_graph_follows_the_export_scripts_stripping_rule(name: str) -> None:
    model = load_stripped(name)
    before = stripped_names(model)
    assert export_script().strip(model) == before
    assert stripped_names(model) == before
