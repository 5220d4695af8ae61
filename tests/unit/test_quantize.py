# SPDX-License-Identifier: Apache-2.0
"""[models.quantize]: int8 through onnxruntime's quantize_static over a calibration folder,
fp16 weights, agreement with float32, and one error naming the file for bad calibration data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from spec_project import VALID_TOML, write_valid_project

from edgepack.errors import SpecError
from edgepack.model.ingest import ingest_model
from edgepack.model.quantize import QuantizationRefused
from edgepack.spec.loader import load_spec

CLASSES = 10


def make_conv_classifier(path: Path) -> Path:
    """input [1,3,32,32] -> Conv 3x3 (8) -> Relu -> Conv 3x3 (16) -> Relu -> GAP -> Gemm."""
    rng = np.random.default_rng(3)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        return numpy_helper.from_array(w.astype(np.float32), name)

    inits = [init("w1", 8, 3, 3, 3), init("b1", 8), init("w2", 16, 8, 3, 3), init("b2", 16),
             init("fc", CLASSES, 16), init("fcb", CLASSES)]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1] * 4,
                         strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "convnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def project(tmp: Path, quantize: str, *, preprocess: bool = False) -> Path:
    make_conv_classifier(tmp / "models" / "convnet.onnx")
    pre = """    [models.inputs.preprocess]
    source_size = [40, 48]
    mean = [123.675, 116.28, 103.53]
    std = [58.395, 57.12, 57.375]
""" if preprocess else ""
    toml = VALID_TOML[:VALID_TOML.index("[[models]]")] + f"""
[[models]]
name = "convnet"
path = "models/convnet.onnx"
  [[models.inputs]]
  name = "input"
{pre}  [models.postprocess]
  kind = "classification"
  output = "logits"
  [models.quantize]
{quantize}
"""
    return write_valid_project(tmp, toml)


def write_tensors(folder: Path, n: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        np.save(folder / f"input_{i}.npy", rng.standard_normal((1, 3, 32, 32)).astype(np.float32))


INT8 = 'dtype = "int8"\ncalibration = "calib"\n'


def test_int8_qdq_per_channel_with_agreement_and_params(tmp_path: Path) -> None:
    write_tensors(tmp_path / "calib", 16)
    spec = load_spec(project(tmp_path, INT8))
    q = spec.models[0].quantize
    assert q is not None and q.method == "minmax" and q.per_channel and q.dtype == "int8"
    m = ingest_model(spec.models[0])
    assert m.quantization is not None
    ops = [n.op_type for n in m.onnx.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    weights = [i for i in m.onnx.graph.initializer if i.data_type == TensorProto.INT8]
    assert {w.name.removesuffix("_quantized") for w in weights} >= {"w1", "w2"}
    params = {p.tensor: p for p in m.quantization.params}
    # per-channel conv weights: one scale per output channel, symmetric int8
    assert len(params["w1"].scale) == 8 and params["w1"].axis == 0
    assert params["w1"].dtype == "int8" and set(params["w1"].zero_point) == {0}
    # activations: per tensor uint8, the range covers what calibration saw
    assert params["input"].dtype == "uint8" and len(params["input"].scale) == 1
    seen = max(float(np.abs(np.load(p)).max()) for p in (tmp_path / "calib").iterdir())
    assert params["input"].scale[0] * 255 >= seen * 0.99
    agreement = m.quantization.agreement
    assert agreement.samples == 16 and agreement.top1 is not None
    assert agreement.outputs[0].name == "logits" and agreement.outputs[0].cosine > 0.98
    assert 0 < agreement.outputs[0].max_abs < 1.0
    manifest = m.quantization.to_manifest()
    assert manifest["dtype"] == "int8" and manifest["tensors"]


def test_methods_and_exclude_reach_onnxruntime(tmp_path: Path) -> None:
    write_tensors(tmp_path / "calib", 8)
    spec = load_spec(project(tmp_path, INT8 + 'method = "percentile"\nexclude = ["conv2"]\n'
                             "per_channel = false\n"))
    m = ingest_model(spec.models[0])
    assert m.quantization is not None
    params = {p.tensor: p for p in m.quantization.params}
    assert "w2" not in params and len(params["w1"].scale) == 1  # conv2 kept float
    conv2 = next(n for n in m.onnx.graph.node if n.name == "conv2")
    assert "w2" in conv2.input


def test_images_run_through_the_preprocessing(tmp_path: Path) -> None:
    from PIL import Image

    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(5)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)).save(
            calib / f"img{i}.png")
    spec = load_spec(project(tmp_path, INT8, preprocess=True))
    m = ingest_model(spec.models[0])
    assert m.quantization is not None and m.quantization.agreement.samples == 6
    params = {p.tensor: p for p in m.quantization.params}
    # normalised pixels span about [-2.1, 2.6]: the input's range is that, not raw 0..255
    assert 3.0 / 255 < params["input"].scale[0] < 6.0 / 255


def test_fp16_weights_half_computed_in_float(tmp_path: Path) -> None:
    spec = load_spec(project(tmp_path, 'dtype = "fp16"\n'))
    m = ingest_model(spec.models[0])
    assert m.quantization is not None
    halves = {i.name for i in m.onnx.graph.initializer if i.data_type == TensorProto.FLOAT16}
    # b1 (8 values) and fcb (10) stay float: below 16 values a Cast costs more than it saves
    assert halves == {"w1.fp16", "w2.fp16", "b2.fp16", "fc.fp16"}
    casts = [n for n in m.onnx.graph.node if n.op_type == "Cast"]
    assert {c.output[0] for c in casts} == {"w1", "w2", "b2", "fc"}
    assert m.quantization.agreement.outputs[0].cosine > 0.9999
    assert m.quantization.params == ()


def test_refused_below_min_cosine(tmp_path: Path) -> None:
    write_tensors(tmp_path / "calib", 4)
    spec = load_spec(project(tmp_path, INT8 + "min_cosine = 1.0\n"))
    with pytest.raises(QuantizationRefused, match=r"cosine .* below min_cosine 1.0"):
        ingest_model(spec.models[0])


def _calibration_error(tmp_path: Path) -> str:
    spec = load_spec(project(tmp_path, INT8))
    with pytest.raises(SpecError) as exc:
        ingest_model(spec.models[0])
    return str(exc.value)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "calib").mkdir()
    msg = _calibration_error(tmp_path)
    assert "calib: the calibration folder is empty" in msg and "'convnet'" in msg


def test_wrong_shape_names_the_file(tmp_path: Path) -> None:
    write_tensors(tmp_path / "calib", 3)
    np.save(tmp_path / "calib" / "input_1.npy", np.zeros((1, 3, 16, 16), np.float32))
    assert "input_1.npy: shape [1, 3, 16, 16] does not match input 'input' [1, 3, 32, 32]" \
        in _calibration_error(tmp_path)


def test_wrong_dtype_names_the_file(tmp_path: Path) -> None:
    write_tensors(tmp_path / "calib", 2)
    np.save(tmp_path / "calib" / "input_0.npy", np.zeros((1, 3, 32, 32), np.float64))
    assert "input_0.npy: dtype float64 does not match input 'input' (float32)" \
        in _calibration_error(tmp_path)


def test_unknown_input_name_names_the_file(tmp_path: Path) -> None:
    write_tensors(tmp_path / "calib", 1)
    np.save(tmp_path / "calib" / "images_0.npy", np.zeros((1, 3, 32, 32), np.float32))
    assert "images_0.npy: file name names no model input" in _calibration_error(tmp_path)


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "broken.jpg").write_bytes(b"not a jpeg")
    spec = load_spec(project(tmp_path, INT8, preprocess=True))
    with pytest.raises(SpecError, match=r"broken\.jpg: unreadable image"):
        ingest_model(spec.models[0])


def test_unknown_file_kind_names_the_file(tmp_path: Path) -> None:
    write_tensors(tmp_path / "calib", 1)
    (tmp_path / "calib" / "notes.txt").write_text("x")
    assert "notes.txt: neither an image" in _calibration_error(tmp_path)


def test_pack_prints_agreement_and_the_manifest_carries_scales(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgepack.artifact import container, keys, manifest
    from edgepack.cli import main

    write_tensors(tmp_path / "calib", 8)
    project(tmp_path, INT8)
    out = tmp_path / "q.epk"
    assert main(["pack", str(tmp_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "convnet: int8 vs float32 on 8 calibration sample(s): top-1 agreement" in text
    assert re.search(r"logits cosine (0\.9\d{3}|1\.0000) max-abs", text), text
    opened = container.open_artifact(
        out.read_bytes(), keys.load_device_private(tmp_path / "keys" / "dev1.key"),
        keys.load_publisher_public(tmp_path / "keys" / "publisher.pub"))
    doc = manifest.loads(opened.manifest_bytes)
    q = doc["models"][0]["quantization"]
    assert q["dtype"] == "int8" and q["method"] == "minmax" and q["agreement"]["samples"] == 8
    w1 = next(t for t in q["tensors"] if t["tensor"] == "w1")
    assert w1["dtype"] == "int8" and w1["axis"] == 0 and len(w1["scale"]) == 8


def test_pack_refusal_is_one_error_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from edgepack.cli import main

    write_tensors(tmp_path / "calib", 4)
    project(tmp_path, INT8 + "min_top1 = 1.0\nmin_cosine = 1.0\n")
    assert main(["pack", str(tmp_path), "--out", str(tmp_path / "q.epk")]) == 9
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("edgepack: error: ")]
    assert len(errors) == 1 and "refused" in errors[0] and "Traceback" not in err
    assert "Please consider" not in err  # onnxruntime's log lines do not reach the user


def test_int8_only_processor_needs_int8_quantize(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The Hi3559A's NNIE (npu) and VP6 (dsp) compute in int8 only (their peak is int8)."""
    from edgepack.cli import main

    toml = project(tmp_path, INT8) / "edgepack.toml"
    quantize = "  [models.quantize]\n" + INT8
    assert quantize in toml.read_text()
    placed = toml.read_text() + '\n[placement.hi3559a]\nconvnet = "npu"\n'
    toml.write_text(placed.replace(quantize, ""))
    assert main(["pack", str(tmp_path), "--board", "hi3559a", "--out",
                 str(tmp_path / "q.epk")]) == 3
    err = capsys.readouterr().err
    assert "placement.hi3559a.convnet: model 'convnet' is placed on processor 'npu'" in err
    assert "computes in int8 only; the model has no [models.quantize]" in err
    write_tensors(tmp_path / "calib", 4)
    toml.write_text(placed)
    assert main(["pack", str(tmp_path), "--board", "hi3559a", "--out",
                 str(tmp_path / "q.epk")]) == 0


def test_detector_agreement_matches_detections_by_iou(tmp_path: Path) -> None:
    from spec_project import make_detector

    make_detector(tmp_path / "models" / "det.onnx")
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(2)
    for i in range(4):
        np.save(calib / f"images_{i}.npy", rng.random((1, 3, 320, 320), np.float32))
    toml = VALID_TOML[:VALID_TOML.index("[[models]]")] + """
[[models]]
name = "det"
path = "models/det.onnx"
  [models.postprocess]
  kind = "detection"
  output = "predictions"
  [models.quantize]
  dtype = "int8"
  calibration = "calib"
  min_cosine = 0.9
  min_detections = 0.5
"""
    spec = load_spec(write_valid_project(tmp_path, toml))
    m = ingest_model(spec.models[0])
    assert m.quantization is not None
    agreement = m.quantization.agreement
    # random weights: 100 boxes with near-equal scores, so NMS keeps other neighbours after
    # int8 rounding (cosine 0.9999, about 2/3 of the detections matched)
    assert agreement.outputs[0].cosine > 0.999
    assert agreement.detections is not None and 0.5 <= agreement.detections < 1.0
    assert "detections matched (IoU >= 0.5)" in agreement.text()
    (tmp_path / "edgepack.toml").write_text(toml.replace("min_detections = 0.5",
                                                         "min_detections = 1.0"))
    with pytest.raises(QuantizationRefused, match=r"of the float32 detections matched, below "
                       r"min_detections 1.0"):
        ingest_model(load_spec(tmp_path).models[0])


def test_int8_convs_fuse_into_qlinear_conv(tmp_path: Path) -> None:
    """DQ -> Conv -> Relu -> Q becomes one QLinearConv (Relu folded: output zero point 0), the
    classifier's DQ -> Gemm -> Q a 1x1 QLinearConv between Reshapes (int8 weights [N, K, 1, 1]);
    agreement with float32 is measured on the fused graph."""
    from edgepack.model.quantize import fuse_qlinear_conv

    write_tensors(tmp_path / "calib", 8)
    spec = load_spec(project(tmp_path, INT8))
    m = ingest_model(spec.models[0])
    ops = [n.op_type for n in m.onnx.graph.node]
    assert ops.count("QLinearConv") == 3 and "Conv" not in ops and "Relu" not in ops
    i = next(i for i, n in enumerate(m.onnx.graph.node) if n.name == "fc")
    assert "Gemm" not in ops and ops[i - 1:i + 2] == ["Reshape", "QLinearConv", "Reshape"], ops
    fc = m.onnx.graph.node[i]
    fc_w = next(i for i in m.onnx.graph.initializer if i.name == fc.input[3])
    assert fc_w.data_type == TensorProto.INT8 and list(fc_w.dims) == [CLASSES, 16, 1, 1]
    qconv = next(n for n in m.onnx.graph.node if n.name == "conv1")
    weights = {i.name: numpy_helper.to_array(i) for i in m.onnx.graph.initializer}
    w = weights[qconv.input[3]]
    assert w.dtype == np.int8 and np.abs(w).max() <= 64  # reduce_range: 255 * 64 * 2 < 2^15
    assert fuse_qlinear_conv(m.onnx) == 0  # nothing left to fuse
    assert m.quantization is not None and m.quantization.agreement.outputs[0].cosine > 0.99
