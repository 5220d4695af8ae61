# SPDX-License-Identifier: Apache-2.0
"""Real models no one here wrote, for tests: graphs exported from torchvision, ultralytics and
timm by scripts/export_real_models.py, stored in tests/data/real_models/ without their large
weight tensors, and refilled here with seeded values before use.

The stored graphs keep every stripped initializer's name, dims and dtype (with no data) and list
the stripped names in the model's metadata_props under STRIPPED_KEY. ``load_real_model`` refills
them and returns a complete, runnable onnx.ModelProto; ``save_real_model`` writes one into a
project folder the way a user would bring it (the dynamo export keeps its ``model.onnx`` +
``model.onnx.data`` layout). See docs/real-models.md.

How values are chosen, so that activations stay in range through depth without any data:
- each tensor is drawn from its own generator, seeded by (seed, crc32 of its name), so the same
  seed gives the same bytes whatever the order;
- its role comes from the node that consumes it (followed through Transpose/Reshape/Cast/...):
  Conv/ConvTranspose weights are He-scaled by fan-in (std sqrt(2 / fan_in)), Gemm/MatMul weights
  by sqrt(1 / fan_in); normalization scales are ~1, shifts and means ~0, variances in
  [0.5, 1.5]; biases and additive constants are small; multiplicative constants ~1;
- then ``_calibrate`` runs the graph under onnxruntime on a seeded input (weights fed as inputs,
  every tensor returned) and rescales each refilled Conv/Gemm/MatMul weight by a power of two so
  that its layer's output (less its own bias) has an rms near 1, LSUV-style, a few passes until
  nothing changes: so SiLU/HardSwish nets, squeeze-excite gates, residual sums and attention
  neither vanish nor blow up. Power-of-two factors are exact, so the bytes are the same on any
  machine unless a measured rms lands on a rounding boundary.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, external_data_helper, helper

DATA = Path(__file__).resolve().parent / "data" / "real_models"
STRIPPED_KEY = "edgepack.stripped_initializers"
EXTERNAL_DATA = "model.onnx.data"  # the dynamo exporter's name for the weights file


@dataclass(frozen=True)
class RealModel:
    name: str
    source: str  # what was exported, e.g. "torchvision resnet18"
    inputs: Shapes
    outputs: tuple[str, ...]
    opset: int = 17
    external_data: bool = False  # stored as <name>/model.onnx + model.onnx.data
    # Tensors to cut the export at (``outputs = [...]``) when its own outputs come from
    # data-dependent post-processing that edgepack's post replaces.
    cut: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        if self.external_data:
            return DATA / self.name / "model.onnx"
        return DATA / f"{self.name}.onnx"


Shapes = dict[str, tuple[int, ...]]
IMAGENET: Shapes = {"input": (1, 3, 224, 224)}
YOLO_SIZE = 320
YOLO: Shapes = {"images": (1, 3, YOLO_SIZE, YOLO_SIZE)}

REAL_MODELS: list[RealModel] = [
    RealModel("resnet18", "torchvision resnet18", IMAGENET, ("logits",)),
    RealModel("mobilenet_v2", "torchvision mobilenet_v2", IMAGENET, ("logits",)),
    RealModel("mobilenet_v3_small", "torchvision mobilenet_v3_small", IMAGENET, ("logits",)),
    RealModel("mobilenet_v3_large", "torchvision mobilenet_v3_large", IMAGENET, ("logits",)),
    RealModel("efficientnet_b0", "torchvision efficientnet_b0", IMAGENET, ("logits",)),
    RealModel("shufflenet_v2_x1_0", "torchvision shufflenet_v2_x1_0", IMAGENET, ("logits",)),
    RealModel("yolov8n", "ultralytics yolov8n.yaml (detect)", YOLO, ("output0",)),
    RealModel("yolov8n_seg", "ultralytics yolov8n-seg.yaml", YOLO, ("output0", "output1")),
    RealModel("yolov8n_pose", "ultralytics yolov8n-pose.yaml", YOLO, ("output0",)),
    RealModel("yolo11n", "ultralytics yolo11n.yaml (detect)", YOLO, ("output0",)),
    RealModel("yolo11n_seg", "ultralytics yolo11n-seg.yaml", YOLO, ("output0", "output1")),
    RealModel("yolo11n_pose", "ultralytics yolo11n-pose.yaml", YOLO, ("output0",)),
    RealModel("vit_tiny_patch16_224", "timm vit_tiny_patch16_224", IMAGENET, ("logits",)),
    RealModel("convnext_atto", "timm convnext_atto", IMAGENET, ("logits",)),
    RealModel("mobilevit_xxs", "timm mobilevit_xxs", {"input": (1, 3, 256, 256)}, ("logits",)),
    RealModel("mobilenet_v3_small_dynamo", "torchvision mobilenet_v3_small, torch dynamo export",
              IMAGENET, ("logits",), opset=18, external_data=True),
]
# Exports that pack only cut at their head (``cut``), finished by edgepack's detection post:
# torchvision's SSDlite ends in per-class score thresholds, NonZero and batched NMS. Its head,
# as torchvision's post-processing sees it per image: boxes [3234, 4] (x1, y1, x2, y2 in
# model-input pixels, clipped) and softmax scores [3234, 91] with class 0 the background.
CUT_MODELS: list[RealModel] = [
    RealModel("ssdlite320_mobilenet_v3_large", "torchvision ssdlite320_mobilenet_v3_large",
              {"images": (1, 3, 320, 320)}, ("boxes", "scores", "labels"),
              cut=("/Reshape_output_0", "/Squeeze_2_output_0")),
]
BY_NAME = {m.name: m for m in [*REAL_MODELS, *CUT_MODELS]}
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}

# Ops a weight reaches its consumer through unchanged in role (exporters insert these).
_PASS_THROUGH = {"Transpose", "Reshape", "Identity", "Cast", "Unsqueeze", "Squeeze", "Flatten",
                 "Expand", "CastLike"}
# (op, input index) -> role
_ROLES = {
    ("Conv", 1): "conv_weight", ("ConvTranspose", 1): "convtranspose_weight",
    ("Conv", 2): "bias", ("ConvTranspose", 2): "bias",
    ("Gemm", 0): "matmul_a", ("Gemm", 1): "gemm_weight", ("Gemm", 2): "bias",
    ("MatMul", 0): "matmul_a", ("MatMul", 1): "matmul_weight",
    ("BatchNormalization", 1): "scale", ("BatchNormalization", 2): "shift",
    ("BatchNormalization", 3): "shift", ("BatchNormalization", 4): "variance",
    ("LayerNormalization", 1): "scale", ("LayerNormalization", 2): "shift",
    ("InstanceNormalization", 1): "scale", ("InstanceNormalization", 2): "shift",
    ("GroupNormalization", 1): "scale", ("GroupNormalization", 2): "shift",
    ("Add", 0): "shift", ("Add", 1): "shift", ("Sub", 0): "shift", ("Sub", 1): "shift",
    ("Mul", 0): "scale", ("Mul", 1): "scale", ("Div", 1): "variance",
    ("PRelu", 1): "shift",
}
_WEIGHTED = {"conv_weight", "convtranspose_weight", "gemm_weight", "matmul_weight", "matmul_a"}


def stripped_names(model: onnx.ModelProto) -> list[str]:
    """The initializers the export script emptied (from the model's metadata_props)."""
    for prop in model.metadata_props:
        if prop.key == STRIPPED_KEY:
            names = json.loads(prop.value)
            assert isinstance(names, list)
            return [str(n) for n in names]
    return []


def load_stripped(name: str) -> onnx.ModelProto:
    """The stored graph as committed: stripped tensors have dims and dtype but no data."""
    return onnx.load(str(BY_NAME[name].path))


def load_real_model(name: str, seed: int = 0) -> onnx.ModelProto:
    """The model ``name`` of REAL_MODELS with its stripped weights refilled from ``seed``: a
    fresh copy each call (the refill itself is computed once per process and seed)."""
    return onnx.load_from_string(_refilled(name, seed))


@functools.lru_cache(maxsize=8)
def _refilled(name: str, seed: int) -> bytes:
    model = load_stripped(name)
    refill(model, seed)
    return bytes(model.SerializeToString())


def save_real_model(name: str, folder: Path, seed: int = 0) -> Path:
    """Writes the refilled model into ``folder`` as a user would bring it; returns the .onnx path
    (``<name>.onnx``, or ``model.onnx`` + ``model.onnx.data`` for external-data models)."""
    spec = BY_NAME[name]
    model = load_real_model(name, seed)
    folder.mkdir(parents=True, exist_ok=True)
    if not spec.external_data:
        path = folder / f"{name}.onnx"
        onnx.save(model, str(path))
        return path
    path = folder / "model.onnx"
    save_external(model, path)
    return path


def save_external(model: onnx.ModelProto, path: Path) -> None:
    """Saves ``model`` as the dynamo exporter lays it out: float tensors in EXTERNAL_DATA
    beside ``path``, the small integer ones (axes, shapes) inline."""
    (path.parent / EXTERNAL_DATA).unlink(missing_ok=True)  # tensors are appended to it
    for t in model.graph.initializer:
        if t.data_type in FLOAT_TYPES and t.HasField("raw_data"):
            external_data_helper.set_external_data(t, EXTERNAL_DATA)
    onnx.save_model(model, str(path))


def refill(model: onnx.ModelProto, seed: int) -> None:
    """Fills the stripped initializers in place (see the module doc) and drops STRIPPED_KEY."""
    names = stripped_names(model)
    if not names:
        return
    inits = {t.name: t for t in model.graph.initializer}
    shapes = _known_shapes(model)
    roles = dict(_roles(model, set(names), shapes))
    values = {}
    for name in names:
        role, fan_in = roles.get(name, ("other", 0))
        dims = tuple(int(d) for d in inits[name].dims)
        values[name] = _draw(role, fan_in, dims,
                             np.random.default_rng([seed, zlib.crc32(name.encode())]))
    weights = [n for n in names if roles.get(n, ("other", 0))[0] in _WEIGHTED]
    _calibrate(model, values, weights, seed)
    for name in names:
        _store(inits[name], values[name])
    keep = [p for p in model.metadata_props if p.key != STRIPPED_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)


def _store(tensor: onnx.TensorProto, values: np.ndarray) -> None:
    dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
    tensor.ClearField("float_data")
    tensor.ClearField("double_data")
    tensor.ClearField("external_data")
    tensor.data_location = TensorProto.DEFAULT
    tensor.raw_data = values.astype(np.dtype(dtype).newbyteorder("<")).tobytes()


def _known_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inferred = onnx.shape_inference.infer_shapes(model)
    out: dict[str, tuple[int, ...]] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            out[vi.name] = tuple(int(d.dim_value) for d in dims)
    for t in model.graph.initializer:
        out[t.name] = tuple(int(d) for d in t.dims)
    return out


def consumers(model: onnx.ModelProto,
              names: set[str]) -> dict[str, tuple[onnx.NodeProto, int, str]]:
    """For each initializer in ``names``: the node that uses it, at which input, and under which
    name (exporters put Transpose/Reshape/Cast between a weight and its Conv or MatMul)."""
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in model.graph.node:
        for i, value in enumerate(node.input):
            uses.setdefault(value, []).append((node, i))
    found = {}
    for name in names:
        value = name
        for _ in range(8):  # follow pass-through chains of a few ops
            if value not in uses:
                break
            node, index = uses[value][0]
            if node.op_type in _PASS_THROUGH and index == 0:
                value = node.output[0]
                continue
            found[name] = (node, index, value)
            break
    return found


def _roles(model: onnx.ModelProto, names: set[str],
           shapes: dict[str, tuple[int, ...]]) -> Iterator[tuple[str, tuple[str, int]]]:
    """(name, (role, fan_in)) for each initializer whose consumer gives it a role."""
    for name, (node, index, value) in consumers(model, names).items():
        role = _ROLES.get((node.op_type, index))
        if role is not None:
            yield name, (role, _fan_in(role, node, shapes.get(value, ())))


def _fan_in(role: str, node: onnx.NodeProto, dims: tuple[int, ...]) -> int:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if not dims:
        return 0
    if role == "conv_weight":
        return math.prod(dims[1:])
    if role == "convtranspose_weight":
        strides = attrs.get("strides") or [1]
        return max(1, dims[0] * math.prod(dims[2:]) // int(math.prod(strides)))
    if role == "gemm_weight":
        return dims[1] if attrs.get("transB", 0) else dims[0]
    if role == "matmul_weight":
        return dims[-2] if len(dims) >= 2 else dims[0]
    if role == "matmul_a":
        return dims[-1]
    return 0


def _draw(role: str, fan_in: int, dims: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    normal = rng.standard_normal(dims, dtype=np.float32)
    if role in ("conv_weight", "convtranspose_weight") and fan_in:
        return normal * math.sqrt(2.0 / fan_in)
    if role in _WEIGHTED and fan_in:
        return normal * math.sqrt(1.0 / fan_in)
    if role == "scale":
        return 1.0 + 0.1 * normal
    if role == "variance":
        return 0.5 + rng.random(dims, dtype=np.float32)
    if role in ("shift", "bias"):
        return 0.05 * normal
    return 0.02 * normal  # embeddings, tokens and anything without a known role


CALIBRATION_PASSES = 16
MAX_PREDICTED_MOVE = 2  # in powers of two
# Ops whose output scale does not follow their input's (normalizing or saturating).
_SCALE_FREE = {"LayerNormalization", "InstanceNormalization", "GroupNormalization",
               "LpNormalization", "Softmax", "LogSoftmax", "Sigmoid", "HardSigmoid", "Tanh", "Erf",
               "Sign", "Shape", "Size", "ArgMax", "ArgMin", "Equal", "Less", "Greater",
               "Not", "And", "Or", "ConstantOfShape", "Range", "NonZero"}
_SUMS = {"Add", "Sub", "Sum", "Concat", "Max", "Min", "Mean", "Where"}
_PRODUCTS = {"Mul", "MatMul", "Einsum", "Gemm", "Conv", "ConvTranspose"}


def _calibrate(model: onnx.ModelProto, values: dict[str, np.ndarray], weights: list[str],
               seed: int) -> None:
    """Scales each weight in ``weights`` (arrays in ``values``, replaced) by a power of two so
    that its layer's output has an rms near 1 on a seeded standard-normal input (LSUV-style).

    One onnxruntime session takes the weights as inputs and returns every tensor of the graph.
    Per pass, every tensor's rms is measured, then the graph is walked in order with a scale
    model (a layer's output scales with its input times its weight factor; activations keep
    scale, normalizations and gates reset it, sums mix their inputs' scales by rms, products
    multiply them), which predicts how each layer's input moves when the layers before it are
    rescaled in the same pass. A few passes settle it; it stops when no factor changes."""
    import onnxruntime as ort

    used = consumers(model, set(weights))
    layers = {node.output[0]: (name, node.input[1 if index == 0 else 0])
              for name, (node, index, _) in used.items()}
    # A layer's own bias (Conv/Gemm input 2) is taken off its output before measuring: weights
    # cannot scale it (YOLO heads start with biases near -10 in their class convs).
    biases = {}
    for node, _, _ in used.values():
        if node.op_type in ("Conv", "ConvTranspose", "Gemm") and len(node.input) > 2 and \
                node.input[2]:
            bias = _initializer_value(model, node.input[2], values)
            if bias is not None:
                biases[node.output[0]] = bias
    if not layers:
        return
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.metadata_props[:]
    fed = [t for t in probe.graph.initializer if t.name in weights]
    kept = [t for t in probe.graph.initializer if t.name not in weights]
    del probe.graph.initializer[:]
    probe.graph.initializer.extend(kept)
    for t in probe.graph.initializer:  # the other refilled tensors, fixed during calibration
        if t.name in values:
            _store(t, values[t.name])
    for t in fed:
        probe.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    # Measured: each layer's output, and each input of a sum (to weigh the scales it mixes).
    measured = set(layers) | {v for n in model.graph.node if n.op_type in _SUMS for v in n.input}
    measured -= {t.name for t in model.graph.initializer} | {i.name for i in model.graph.input}
    outputs = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for o in node.output:
            if o in measured and o not in outputs:
                probe.graph.output.append(helper.make_empty_tensor_value_info(o))
                outputs.add(o)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs() if o.name in measured]
    rng = np.random.default_rng([seed, 0x5EED])
    constant = {t.name for t in model.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for vi in model.graph.input:
        if vi.name not in constant:
            shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
    dtypes = {t.name: helper.tensor_dtype_to_np_dtype(t.data_type) for t in fed}
    last: dict[str, int] = {}
    frozen: set[str] = set()
    flips: dict[str, int] = {}
    for _ in range(CALIBRATION_PASSES):
        run = {**feeds, **{w: values[w].astype(dtypes[w]) for w in weights}}
        rms = {name: _rms(_unbiased(out, biases.get(name)))
               for name, out in zip(names, session.run(names, run), strict=True)}
        rms.update({name: _rms(v) for name, v in feeds.items()})
        applied = False
        for layer, exponent in _rescale(model, layers, rms).items():
            if layer in frozen:
                continue
            if last.get(layer, 0) * exponent < 0:
                flips[layer] = flips.get(layer, 0) + 1
                if flips[layer] > 1:  # flip-flops between two states: keep this one
                    frozen.add(layer)
                    continue
            weight = layers[layer][0]
            values[weight] = values[weight] * 2.0 ** exponent
            last[layer] = exponent
            applied = True
        if not applied:
            break


def _unbiased(out: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is None:
        return out
    if bias.ndim == 1 and out.ndim > 2:  # Conv: one bias per channel (axis 1)
        bias = bias.reshape((1, -1) + (1,) * (out.ndim - 2))
    return np.asarray(out - bias)


def _rms(value: np.ndarray) -> float:
    if value.dtype.kind != "f" or value.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(value))))


def _rescale(model: onnx.ModelProto, layers: dict[str, tuple[str, str]],
             rms: dict[str, float]) -> dict[str, int]:
    """One pass of the scale model: {layer output: power-of-two exponent for its weight};
    ``layers`` maps each layer's output to (its weight, its data input)."""
    scale: dict[str, float] = {}  # predicted factor by which each tensor moves

    def f(value: str) -> float:
        return scale.get(value, 1.0)

    exponents: dict[str, int] = {}
    for node in model.graph.node:
        out = node.output[0] if node.output else ""
        if out in layers:
            moved = f(layers[out][1])
            r = rms.get(out, 0.0)
            # A layer whose input moves a lot in this pass waits for the next one: activations
            # are not homogeneous (SiLU, HardSwish), so large predicted moves are inexact.
            if r > 0.0 and math.isfinite(r) and abs(math.log2(moved)) <= MAX_PREDICTED_MOVE:
                off = math.log2(1.0 / (r * moved))
                exponent = round(off) if abs(off) > 1.0 else 0  # within 2x is close enough
                if exponent:
                    exponents[out] = exponent
                factor = moved * 2.0 ** exponent
            else:
                factor = moved
        elif node.op_type in _SCALE_FREE or not node.input:
            factor = 1.0
        elif node.op_type in _SUMS:  # constants and integer tensors have scale 1 / rms 0
            num = sum((f(v) * rms.get(v, 0.0)) ** 2 for v in node.input)
            den = sum(rms.get(v, 0.0) ** 2 for v in node.input)
            factor = math.sqrt(num / den) if den > 0 else 1.0
        elif node.op_type in _PRODUCTS:
            factor = math.prod(f(v) for v in node.input)
        elif node.op_type == "Div":
            factor = f(node.input[0]) / f(node.input[1])
        elif node.op_type in ("Sqrt", "Reciprocal"):
            factor = f(node.input[0]) ** (0.5 if node.op_type == "Sqrt" else -1.0)
        elif node.op_type == "Pow":
            factor = f(node.input[0]) ** _constant_exponent(model, node.input[1])
        else:
            factor = f(node.input[0])
        if not math.isfinite(factor) or factor <= 0.0:
            factor = 1.0
        for o in node.output:
            scale[o] = factor
    return exponents


def _constant_exponent(model: onnx.ModelProto, name: str) -> float:
    for t in model.graph.initializer:
        if t.name == name and math.prod(t.dims) == 1:
            return float(onnx.numpy_helper.to_array(t).reshape(()))
    for node in model.graph.node:
        if node.op_type == "Constant" and name in node.output:
            value = onnx.numpy_helper.to_array(node.attribute[0].t)
            if value.size == 1:
                return float(value.reshape(()))
    return 1.0


def _initializer_value(model: onnx.ModelProto, name: str,
                       values: dict[str, np.ndarray]) -> np.ndarray | None:
    """The constant value of ``name`` (an initializer, or an Identity of one), if it is one."""
    producers = {o: n for n in model.graph.node for o in n.output}
    while name in producers and producers[name].op_type == "Identity":
        name = producers[name].input[0]
    if name in values:
        return values[name]
    for t in model.graph.initializer:
        if t.name == name:
            return onnx.numpy_helper.to_array(t).astype(np.float64)
    return None
