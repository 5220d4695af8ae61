# SPDX-License-Identifier: Apache-2.0
"""``[models.quantize]``: post-training quantisation of an ingested model (docs/quantization.md).

int8: onnxruntime's ``quantize_static`` (QDQ format, per-channel int8 weights, uint8
activations) over the calibration folder; the calibration itself is onnxruntime's, not
edgepack's. fp16: float32 weights stored as float16 initialisers with a Cast back to float32.

Both are then compared with the float32 model on the calibration samples (onnxruntime on both):
max-abs and cosine per output, top-1 agreement for a classifier's output. Below the spec's
``min_cosine`` / ``min_top1`` the model is refused. Calibration files that do not fit the model
(shape, dtype, unreadable image, unknown input name) fail with one error naming the file.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgepack.errors import EdgepackError, ExitCode, ModelError, SpecError
from edgepack.model.diagnostics import one_line
from edgepack.model.prepost import build_detection_post, build_preprocess
from edgepack.model.qdq_bytes import fuse_byte_ops
from edgepack.model.tensors import TensorDesc
from edgepack.spec.boards import Board
from edgepack.spec.project import (
    ClassificationPost,
    DetectionPost,
    ModelSpec,
    QuantizeSpec,
    Spec,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp")
_NP_DTYPES = {"float32": np.float32, "uint8": np.uint8, "int32": np.int32, "int64": np.int64,
              "float16": np.float16, "int8": np.int8, "bool": np.bool_}
_Q_DTYPES = {TensorProto.INT8: "int8", TensorProto.UINT8: "uint8",
             TensorProto.INT16: "int16", TensorProto.UINT16: "uint16",
             TensorProto.INT32: "int32"}  # int32: biases (scale = input scale x weight scale)

Sample = dict[str, np.ndarray]


class QuantizationRefused(EdgepackError):
    """The quantised model agrees with float32 less than the spec's thresholds allow."""

    exit_code = ExitCode.CHECK_FAILED


@dataclass(frozen=True)
class OutputAgreement:
    name: str
    max_abs: float  # over every sample
    cosine: float  # the lowest per-sample cosine similarity


@dataclass(frozen=True)
class Agreement:
    """The quantised model against float32 on the calibration samples (onnxruntime on both)."""

    samples: int
    outputs: tuple[OutputAgreement, ...]
    top1: float | None = None  # classifiers: fraction of samples with the same top-1 class
    # detectors: float32 detections (after NMS) matched by a quantised one of the same class
    # with IoU >= 0.5, over all samples (None: no detection postprocess or no detections)
    detections: float | None = None

    def to_manifest(self) -> dict[str, Any]:
        return {"samples": self.samples, "top1": self.top1, "detections": self.detections,
                "outputs": [{"name": o.name, "max_abs": o.max_abs, "cosine": o.cosine}
                            for o in self.outputs]}

    def text(self) -> str:
        parts = [f"{o.name}: cosine {o.cosine:.4f}, max-abs {o.max_abs:.4g}"
                 for o in self.outputs]
        if self.top1 is not None:
            parts.insert(0, f"top-1 agreement {self.top1:.1%}")
        if self.detections is not None:
            parts.insert(0, f"detections matched (IoU >= 0.5) {self.detections:.1%}")
        return f"vs float32 on {self.samples} calibration sample(s): " + "; ".join(parts)


@dataclass(frozen=True)
class QuantParam:
    """Scale and zero point of one quantised tensor (per tensor, or per ``axis`` channel)."""

    tensor: str  # the float tensor (activation or weight) the int values stand for
    dtype: str  # int8 | uint8 | int16 | uint16
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def to_manifest(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "dtype": self.dtype, "scale": list(self.scale),
                "zero_point": list(self.zero_point), "axis": self.axis}


@dataclass(frozen=True)
class QuantizedModel:
    spec: QuantizeSpec
    onnx: onnx.ModelProto
    agreement: Agreement
    params: tuple[QuantParam, ...] = ()  # int8 only

    def to_manifest(self) -> dict[str, Any]:
        return {"dtype": self.spec.dtype, "method": self.spec.method if self.spec.dtype == "int8"
                else None, "per_channel": self.spec.per_channel,
                "exclude": list(self.spec.exclude), "agreement": self.agreement.to_manifest(),
                "tensors": [p.to_manifest() for p in self.params]}


# --- calibration data -------------------------------------------------------------------------

def _fail(path: Path, message: str, model: ModelSpec) -> SpecError:
    return SpecError(path, f"{message} (calibration data of model {model.name!r})")


def _load_npy(path: Path, desc: TensorDesc, model: ModelSpec) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError for a bad file
        raise _fail(path, f"not a readable .npy tensor ({one_line(exc)})", model) from exc
    if not isinstance(array, np.ndarray):
        raise _fail(path, "not a single .npy tensor", model)
    want = _NP_DTYPES.get(desc.dtype)
    if want is None or array.dtype != np.dtype(want):
        raise _fail(path, f"dtype {array.dtype} does not match input {desc.name!r} "
                    f"({desc.dtype})", model)
    if tuple(array.shape) != tuple(desc.shape):
        raise _fail(path, f"shape {list(array.shape)} does not match input {desc.name!r} "
                    f"{list(desc.shape)}", model)
    return array


def _tensor_samples(files: list[Path], inputs: Sequence[TensorDesc],
                    model: ModelSpec) -> list[Sample]:
    by_input: dict[str, dict[int, Path]] = {d.name: {} for d in inputs}
    for path in files:
        stem = path.name[:-len(".npy")]
        match = None
        for d in inputs:
            m = re.fullmatch(re.escape(d.name) + r"(?:_(\d+))?", stem)
            if m:
                match = (d.name, int(m.group(1)) if m.group(1) is not None else 0)
                break
        if match is None:
            raise _fail(path, "file name names no model input; expected <input>.npy or "
                        f"<input>_<i>.npy with input one of: {', '.join(by_input)}", model)
        name, index = match
        if index in by_input[name]:
            raise _fail(path, f"sample {index} of input {name!r} is also given by "
                        f"{by_input[name][index].name}", model)
        by_input[name][index] = path
    indices = sorted(set().union(*(set(v) for v in by_input.values())))
    folder = files[0].parent
    samples = []
    for i in indices:
        sample: Sample = {}
        for d in inputs:
            found = by_input[d.name].get(i)
            if found is None:
                raise _fail(folder / f"{d.name}_{i}.npy", f"missing: sample {i} has no tensor "
                            f"for input {d.name!r}", model)
            sample[d.name] = _load_npy(found, d, model)
        samples.append(sample)
    return samples


def _image_samples(files: list[Path], inputs: Sequence[TensorDesc],
                   model: ModelSpec) -> list[Sample]:
    from PIL import Image, UnidentifiedImageError

    pre_inputs = [i for i in model.inputs if i.preprocess is not None]
    if len(pre_inputs) != 1 or len(inputs) != 1:
        raise _fail(files[0], "images calibrate a model with exactly one input that has "
                    "[models.inputs.preprocess]; give <input>.npy tensors instead", model)
    pre = pre_inputs[0].preprocess
    assert pre is not None
    import onnxruntime as ort

    # Images are resized to the nominal source_size: the fixed-size graph (a bounded one also
    # takes image_size; both give the same tensor for that size).
    fixed = replace(pre, source_size_min=None, source_size_max=None)
    graph = build_preprocess(fixed, inputs[0])
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    h, w = pre.source_size
    mode = "L" if pre.pixel_format == "gray" else "RGB"
    samples = []
    for path in files:
        try:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert(mode).resize((w, h), Image.Resampling.BILINEAR))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise _fail(path, f"unreadable image ({one_line(exc)})", model) from exc
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if pre.pixel_format == "bgr":
            pixels = pixels[:, :, ::-1]
        out = session.run(None, {"image": np.ascontiguousarray(pixels, dtype=np.uint8)})[0]
        samples.append({inputs[0].name: np.asarray(out, dtype=np.float32)})
    return samples


def load_calibration(model: ModelSpec, inputs: Sequence[TensorDesc]) -> list[Sample]:
    """The calibration folder as model feeds, one dict per sample (in file-name order)."""
    q = model.quantize
    assert q is not None and q.calibration is not None
    files = sorted(p for p in q.calibration.iterdir() if not p.name.startswith("."))
    if not files:
        raise _fail(q.calibration, "the calibration folder is empty; put images or "
                    "<input>.npy / <input>_<i>.npy tensors in it", model)
    npy = [p for p in files if p.suffix == ".npy"]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    for p in files:
        if p not in npy and p not in images:
            raise _fail(p, "neither an image ("
                        f"{', '.join(IMAGE_SUFFIXES)}) nor a .npy tensor", model)
    if npy and images:
        raise _fail(images[0], f"images and .npy tensors mixed in one folder (also "
                    f"{npy[0].name}); use one kind", model)
    return _tensor_samples(npy, inputs, model) if npy else _image_samples(images, inputs, model)


# --- quantisers -------------------------------------------------------------------------------

class _Reader:
    """onnxruntime's CalibrationDataReader protocol over the loaded samples."""

    def __init__(self, samples: list[Sample]) -> None:
        self._it: Iterator[Sample] = iter(samples)

    def get_next(self) -> Sample | None:
        return next(self._it, None)


class _QuietRootLogger(logging.Filter):
    """onnxruntime.quantization logs advice (run its pre-processing) to the root logger; that
    is not the user's business, so its records are dropped while it runs."""

    def __init__(self) -> None:
        super().__init__()
        logging.getLogger().addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING

    def close(self) -> None:
        logging.getLogger().removeFilter(self)


def _int8(proto: onnx.ModelProto, q: QuantizeSpec, samples: list[Sample],
          path_str: str) -> onnx.ModelProto:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(_Reader, CalibrationDataReader):  # type: ignore[misc]
        pass

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[q.method]
    with tempfile.TemporaryDirectory(prefix="edgepack-quant-") as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, str(src))
        quiet = _QuietRootLogger()
        try:
            quantize_static(
                str(src), str(dst), Reader(samples), quant_format=QuantFormat.QDQ,
                per_channel=q.per_channel, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=method,
                # 7-bit weights: onnxruntime's x86 u8 x s8 kernels (the host int8 reference)
                # sum product pairs in int16 with saturation: exact for |w| <= 64 only
                reduce_range=True,
                nodes_to_exclude=list(q.exclude),
                extra_options={"CalibTensorRangeSymmetric": False,
                               "CalibMovingAverage": False})
        except EdgepackError:
            raise
        except Exception as exc:
            raise ModelError(f"{path_str}: onnxruntime could not quantise the model: "
                             f"{one_line(exc)}") from exc
        finally:
            quiet.close()
        return onnx.load(str(dst))


def _fp16(proto: onnx.ModelProto, q: QuantizeSpec) -> onnx.ModelProto:
    """Float32 initialisers read only by nodes outside ``exclude`` stored as float16, each
    with a Cast to float32 in front of the graph (weights half the size, computed in fp32)."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    g = out.graph
    readers: dict[str, set[str]] = {}
    for n in g.node:
        for name in n.input:
            readers.setdefault(name, set()).add(n.name)
    excluded = set(q.exclude)
    outputs = {o.name for o in g.output}
    keep: list[onnx.TensorProto] = []
    casts: list[onnx.NodeProto] = []
    for init in g.initializer:
        users = readers.get(init.name, set())
        array = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        if (array is None or array.size < 16 or not users or users & excluded
                or init.name in outputs
                or not np.all(np.abs(array) <= np.finfo(np.float16).max)):
            keep.append(init)
            continue
        half = f"{init.name}.fp16"
        keep.append(numpy_helper.from_array(array.astype(np.float16), half))
        casts.append(helper.make_node("Cast", [half], [init.name], name=f"{init.name}.to_fp32",
                                      to=TensorProto.FLOAT))
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = [*casts, *g.node]
    del g.node[:]
    g.node.extend(nodes)
    return out


# --- QDQ patterns to int8 ops ----------------------------------------------------------------

def _init_type(inits: dict[str, onnx.TensorProto], name: str) -> int | None:
    return inits[name].data_type if name in inits else None


def _scalar_int(inits: dict[str, onnx.TensorProto], name: str) -> int | None:
    if name not in inits:
        return None
    values = numpy_helper.to_array(inits[name]).reshape(-1)
    return int(values[0]) if values.size == 1 else None


def _fusable_group(group: int, dq_w: onnx.NodeProto | None,
                   inits: dict[str, onnx.TensorProto], depthwise: bool) -> bool:
    """group 1, or (with ``depthwise``) one 2-D filter of at most 64 taps per channel (the
    runtime's kernels/qdepthwise.h); other grouped convolutions stay float."""
    if group == 1:
        return True
    if not depthwise or dq_w is None or dq_w.input[0] not in inits:
        return False
    dims = list(inits[dq_w.input[0]].dims)
    return len(dims) == 4 and dims[0] == group and dims[1] == 1 and dims[2] * dims[3] <= 64


def _gemm_as_conv(gemm: onnx.NodeProto, dq_w: onnx.NodeProto | None,
                  inits: dict[str, onnx.TensorProto]) -> bool:
    """A Gemm that is a 1x1 convolution of [M, K, 1, 1]: A [M, K] untransposed, B the constant
    [N, K] (transB = 1, a Linear layer as torch exports it; per-channel scales on axis 0), alpha
    and beta 1."""
    attrs = {a.name: helper.get_attribute_value(a) for a in gemm.attribute}
    if (attrs.get("transA", 0) != 0 or attrs.get("transB", 0) != 1
            or float(attrs.get("alpha", 1.0)) != 1.0 or float(attrs.get("beta", 1.0)) != 1.0):
        return False
    return (dq_w is not None and dq_w.input[0] in inits
            and len(inits[dq_w.input[0]].dims) == 2)


def fuse_qlinear_conv(proto: onnx.ModelProto, depthwise: bool = True) -> int:
    """DequantizeLinear(x) / (int8 weights) / (int32 bias) -> Conv [-> Relu] -> QuantizeLinear
    becomes one QLinearConv (uint8 in and out, the runtime's int8 kernel). A Relu folds only
    when the output zero point is 0 (the clamp at 0 is then the Relu). Depthwise convolutions
    (group = channels) fuse too unless ``depthwise`` is false; other grouped convolutions, SAME
    padding and anything else stay as they are. A Gemm in the same pattern that is a Linear
    layer (_gemm_as_conv: a classifier) becomes Reshape [M, K, 1, 1] -> QLinearConv 1x1 ->
    Reshape [M, N]: its weights stay int8 in the artifact (MobileNetV2's classifier, 5.1 MB in
    float32, is 1.3 MB) and it runs on the int8 kernel. Returns the number of fused nodes."""
    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    outputs = {o.name for o in g.output}
    index = {id(n): i for i, n in enumerate(g.node)}  # g.node is only replaced after the loop
    replaced: dict[int, list[onnx.NodeProto]] = {}
    dropped: set[int] = set()
    new_inits: list[onnx.TensorProto] = []
    for conv in g.node:
        if (conv.op_type not in ("Conv", "Gemm") or len(conv.input) < 2
                or conv.output[0] in outputs):
            continue
        dq_x, dq_w = producers.get(conv.input[0]), producers.get(conv.input[1])
        gemm = conv.op_type == "Gemm"
        if gemm:
            if not _gemm_as_conv(conv, dq_w, inits):
                continue
        else:
            attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
            auto_pad = attrs.get("auto_pad", b"NOTSET")
            if auto_pad not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
                continue
            if not _fusable_group(int(attrs.get("group", 1)), dq_w, inits, depthwise):
                continue
        has_b = len(conv.input) > 2 and conv.input[2] != ""
        dq_b = producers.get(conv.input[2]) if has_b else None
        if (dq_x is None or dq_x.op_type != "DequantizeLinear" or len(dq_x.input) < 3
                or dq_w is None or dq_w.op_type != "DequantizeLinear" or len(dq_w.input) < 3
                or _init_type(inits, dq_x.input[2]) != TensorProto.UINT8
                or _init_type(inits, dq_w.input[0]) != TensorProto.INT8
                or len(inits[dq_w.input[0]].dims) != (2 if gemm else 4)
                or any(next((a.i for a in dq_w.attribute if a.name == "axis"), 1) != 0
                       for _ in [0] if numpy_helper.to_array(inits[dq_w.input[1]]).size > 1)):
            continue
        if has_b and (dq_b is None or dq_b.op_type != "DequantizeLinear"
                      or _init_type(inits, dq_b.input[0]) != TensorProto.INT32):
            continue
        y = conv.output[0]
        relu = None
        users = consumers.get(y, [])
        if len(users) == 1 and users[0].op_type == "Relu" and users[0].output[0] not in outputs:
            relu = users[0]
            users = consumers.get(relu.output[0], [])
        if len(users) != 1 or users[0].op_type != "QuantizeLinear" or len(users[0].input) < 3:
            continue
        q = users[0]
        if _init_type(inits, q.input[2]) != TensorProto.UINT8:
            continue
        if relu is not None and _scalar_int(inits, q.input[2]) != 0:
            continue
        w_name = dq_w.input[0]
        if gemm:  # the weights as [N, K, 1, 1], the activations through Reshapes around it
            w = numpy_helper.to_array(inits[w_name])
            w_name = f"{w_name}_1x1"
            new_inits.append(numpy_helper.from_array(w.reshape(*w.shape, 1, 1), w_name))
            shapes = (f"{conv.name}_to_1x1_shape", f"{conv.name}_from_1x1_shape")
            new_inits.append(numpy_helper.from_array(np.array([0, -1, 1, 1], np.int64), shapes[0]))
            new_inits.append(numpy_helper.from_array(np.array([0, -1], np.int64), shapes[1]))
            x4, y4 = f"{conv.name}_x_1x1", f"{conv.name}_y_1x1"
            inputs = [x4, *dq_x.input[1:3], w_name, *dq_w.input[1:3], q.input[1], q.input[2]]
            if dq_b is not None:
                inputs.append(dq_b.input[0])
            replaced[index[id(conv)]] = [
                helper.make_node("Reshape", [dq_x.input[0], shapes[0]], [x4],
                                 name=f"{conv.name}_to_1x1"),
                helper.make_node("QLinearConv", inputs, [y4], name=conv.name),
                helper.make_node("Reshape", [y4, shapes[1]], [q.output[0]],
                                 name=f"{conv.name}_from_1x1")]
        else:
            inputs = [*dq_x.input[:3], w_name, *dq_w.input[1:3], q.input[1], q.input[2]]
            if dq_b is not None:
                inputs.append(dq_b.input[0])
            fused = helper.make_node("QLinearConv", inputs, [q.output[0]], name=conv.name)
            fused.attribute.extend(conv.attribute)
            replaced[index[id(conv)]] = [fused]
        dropped.update(index[id(n)] for n in (q, relu) if n is not None)
        for dq in (dq_w, dq_b):
            if dq is not None and len(consumers.get(dq.output[0], [])) == 1:
                dropped.add(index[id(dq)])
        if len(consumers.get(dq_x.output[0], [])) == 1:
            dropped.add(index[id(dq_x)])
    nodes = [m for i, n in enumerate(g.node) if i not in dropped
             for m in replaced.get(i, [n])]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    used = {name for n in g.node for name in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return len(replaced)


# --- agreement and parameters -----------------------------------------------------------------

def _run(proto: onnx.ModelProto, samples: list[Sample]) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return [[np.asarray(v) for v in session.run(None, s)] for s in samples]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = float(np.linalg.norm(a64)), float(np.linalg.norm(b64))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a64, b64) / (na * nb))


def agreement(reference: onnx.ModelProto, quantised: onnx.ModelProto, samples: list[Sample],
              model: ModelSpec) -> Agreement:
    ref, got = _run(reference, samples), _run(quantised, samples)
    names = [o.name for o in reference.graph.output]
    outputs = []
    for i, name in enumerate(names):
        pairs = [(r[i].astype(np.float64), g[i].astype(np.float64)) for r, g in zip(ref, got,
                                                                                   strict=True)]
        outputs.append(OutputAgreement(
            name, max(float(np.max(np.abs(r - g), initial=0.0)) for r, g in pairs),
            min(_cosine(r, g) for r, g in pairs)))
    top1 = None
    post = model.postprocess
    if isinstance(post, ClassificationPost) and post.output in names:
        i = names.index(post.output)
        same = [int(np.argmax(r[i].reshape(-1))) == int(np.argmax(g[i].reshape(-1)))
                for r, g in zip(ref, got, strict=True)]
        top1 = sum(same) / len(same)
    detections = None
    if isinstance(post, DetectionPost):
        detections = _detection_agreement(post, names, ref, got)
    return Agreement(len(samples), tuple(outputs), top1, detections)


def _area(r: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip(r[..., 2] - r[..., 0], 0, None)
                      * np.clip(r[..., 3] - r[..., 1], 0, None))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box ``a`` [4] (x1, y1, x2, y2) with every box of ``b`` [K, 4]."""
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = _area(a) + _area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _detection_agreement(post: DetectionPost, names: list[str], ref: list[list[np.ndarray]],
                         got: list[list[np.ndarray]]) -> float | None:
    """Run the model's detection post (NMS, in model-input pixels) on both models' outputs and
    match each float32 detection greedily to an unused quantised one of its class."""
    import onnxruntime as ort

    heads = [post.output] + ([post.scores_output] if post.scores_output else [])
    idx = [names.index(h) for h in heads]
    descs = [TensorDesc(f"head.{h}", "float32", tuple(ref[0][i].shape)) for h, i in
             zip(heads, idx, strict=True)]
    graph = build_detection_post(post, descs[0], None, None, descs[1] if len(descs) > 1 else None)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    wanted = matched = 0
    for r, g in zip(ref, got, strict=True):
        rb, _, rc = session.run(["boxes", "scores", "classes"],
                                {d.name: r[i] for d, i in zip(descs, idx, strict=True)})
        gb, _, gc = session.run(["boxes", "scores", "classes"],
                                {d.name: g[i] for d, i in zip(descs, idx, strict=True)})
        free = np.ones(len(gb), bool)
        for box, cls in zip(rb, rc, strict=True):
            wanted += 1
            ious = np.where(free & (gc == cls), _iou(box, gb), 0.0) if len(gb) else np.zeros(0)
            if len(ious) and ious.max() >= 0.5:
                free[int(ious.argmax())] = False
                matched += 1
    return matched / wanted if wanted else None


def quant_params(proto: onnx.ModelProto) -> tuple[QuantParam, ...]:
    """Scale and zero point of every tensor a QuantizeLinear / DequantizeLinear pair encodes:
    activations under the float tensor's name, weights under the float weight's name."""
    inits = {i.name: i for i in proto.graph.initializer}
    params: dict[str, QuantParam] = {}
    for n in proto.graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(n.input) < 3:
            continue
        if n.op_type == "QuantizeLinear":
            tensor = n.input[0]
        elif n.input[0] in inits:  # a stored int8 weight
            tensor = n.input[0].removesuffix("_quantized")
        else:
            continue
        if tensor in params or n.input[1] not in inits or n.input[2] not in inits:
            continue
        zp = inits[n.input[2]]
        scale = numpy_helper.to_array(inits[n.input[1]]).reshape(-1)
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1) if scale.size > 1 \
            else None
        params[tensor] = QuantParam(
            tensor, _Q_DTYPES.get(zp.data_type, str(zp.data_type)),
            tuple(float(v) for v in scale),
            tuple(int(v) for v in numpy_helper.to_array(zp).reshape(-1)), axis)
    return tuple(params.values())


def quantize_model(proto: onnx.ModelProto, model: ModelSpec,
                   inputs: Sequence[TensorDesc]) -> QuantizedModel:
    """``proto`` (the ingested float32 graph) quantised as ``model.quantize`` says, checked
    against float32; ``QuantizationRefused`` below the spec's thresholds."""
    q = model.quantize
    assert q is not None
    path_str = str(model.path)
    if q.dtype == "int8":
        samples = load_calibration(model, inputs)
        quantised = _int8(proto, q, samples, path_str)
        params = quant_params(quantised)
        fuse_qlinear_conv(quantised)
        fuse_byte_ops(quantised)
    else:
        rng = np.random.default_rng(0)
        samples = [{d.name: rng.standard_normal(d.shape).astype(np.float32)
                    if d.dtype == "float32" else np.zeros(d.shape, _NP_DTYPES[d.dtype])
                    for d in inputs} for _ in range(4)]
        quantised = _fp16(proto, q)
        params = ()
    agreed = agreement(proto, quantised, samples, model)
    worst = min(agreed.outputs, key=lambda o: o.cosine)
    if worst.cosine < q.min_cosine:
        raise QuantizationRefused(
            f"{path_str}: {q.dtype} model {model.name!r} refused: output {worst.name!r} has "
            f"cosine {worst.cosine:.4f} against float32, below min_cosine {q.min_cosine} "
            f"({agreed.text()})",
            hint="add the nodes that lose accuracy to [models.quantize] exclude, try method = "
                 "\"percentile\", or lower min_cosine")
    if agreed.top1 is not None and agreed.top1 < q.min_top1:
        raise QuantizationRefused(
            f"{path_str}: {q.dtype} model {model.name!r} refused: top-1 agreement "
            f"{agreed.top1:.1%} with float32, below min_top1 {q.min_top1} ({agreed.text()})",
            hint="more calibration samples, exclude = [...] for sensitive nodes, or lower "
                 "min_top1")
    if agreed.detections is not None and agreed.detections < q.min_detections:
        raise QuantizationRefused(
            f"{path_str}: {q.dtype} model {model.name!r} refused: {agreed.detections:.1%} of "
            f"the float32 detections matched, below min_detections {q.min_detections} "
            f"({agreed.text()})",
            hint="more calibration samples, exclude = [...] for the head's nodes, or lower "
                 "min_detections")
    return QuantizedModel(q, quantised, agreed, params)


def check_int8_placement(spec: Spec, board: Board) -> None:
    """A model placed on a processor that computes in int8 only (its peak is given in int8:
    the Hi3559A's NNIE and VP6 DSP) needs ``[models.quantize] dtype = "int8"``."""
    for model_name, processor_id in spec.placement.get(board.id, {}).items():
        proc = next((p for p in board.processors if p.id == processor_id), None)
        if proc is None or proc.peak is None or proc.peak.dtype != "int8":
            continue
        q = spec.model(model_name).quantize
        if q is None or q.dtype != "int8":
            have = "no [models.quantize]" if q is None else f'dtype = "{q.dtype}"'
            raise SpecError(
                spec.path, f"model {model_name!r} is placed on processor {proc.id!r} "
                f"({proc.name}) of board {board.id!r}, which computes in int8 only; the model "
                f"has {have}", field=f"placement.{board.id}.{model_name}",
                hint='add [models.quantize] with dtype = "int8" and a calibration folder to '
                     "the model, or place it on \"cpu\"")
