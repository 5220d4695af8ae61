# SPDX-License-Identifier: Apache-2.0
"""[models.quantize] dtype = "int8" on real exports: the QDQ model onnxruntime's quantize_static
makes packs, runs through the host SDK's edgepack-run and matches the host int8 reference
(onnxruntime on the same QDQ graph).

Group-1 convolutions run as QLinearConv on the int8 kernel, the rest in float32 between
QuantizeLinear / DequantizeLinear (docs/quantization.md). onnxruntime with its graph
optimisations off runs the same graph op by op, so the match is tight there (cosine >= 0.9999);
with its optimisations on it fuses further (e.g. Add), rounding differently now and then
(cosine >= 0.999 is asserted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from sdk_host import SdkBuild
from test_real_models import runner_outputs

from edgepack.artifact.pack import pack_project
from edgepack.model.stages import build_stage_plan
from edgepack.spec.loader import load_spec
from real_models import REAL_MODELS
from real_projects import write_project

Array = np.ndarray[Any, Any]
CALIBRATION_SAMPLES = 4


def _ort(model: Any, feeds: dict[str, Array], optimise: bool) -> list[Array]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if not optimise:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, feeds)]


def _cosine(a: Array, b: Array) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


@pytest.mark.parametrize("name", ["resnet18", "yolov8n"])
def test_int8_model_through_the_runner(sdk_host: SdkBuild, tmp_path: Path, name: str) -> None:
    spec = next(m for m in REAL_MODELS if m.name == name)
    (input_name, shape), = spec.inputs.items()
    calib = tmp_path / "project" / "calib"
    calib.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(CALIBRATION_SAMPLES):
        np.save(calib / f"{input_name}_{i}.npy", rng.standard_normal(shape).astype(np.float32))
    root = write_project(tmp_path / "project", name, """\
  [models.quantize]
  dtype = "int8"
  calibration = "calib"
  min_cosine = 0.9
""")
    epk = tmp_path / "model.epk"
    packed = pack_project(root, epk)
    q = packed.manifest["models"][0]["quantization"]
    assert q["dtype"] == "int8" and len(q["tensors"]) > 20

    plan = build_stage_plan(load_spec(root))
    qdq = plan.models[0].onnx
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) > 10
    feeds = {input_name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    got = runner_outputs(sdk_host, root, epk, feeds, tmp_path)
    emulated = dict(zip(spec.outputs, _ort(qdq, feeds, optimise=False), strict=True))
    int8 = dict(zip(spec.outputs, _ort(qdq, feeds, optimise=True), strict=True))
    for out, ref in emulated.items():
        assert got[out].shape == ref.shape and got[out].dtype == ref.dtype
        assert _cosine(got[out], ref) >= 0.9999, out
        assert _cosine(got[out], int8[out]) >= 0.999, out
