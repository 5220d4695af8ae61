# SPDX-License-Identifier: Apache-2.0
"""Seeded test models built with ``onnx.helper``: nothing is downloaded, everything is opset 17.

The weights are random (He-style, scaled so activations keep a sane range through depth), the
topologies are real: ResNet-18, MobileNetV2, a small depthwise-separable classifier with BN left
unfolded, and a small YOLO-style detector whose heads are decoded inside the graph. The same
seed gives the same bytes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgepack.model.graph_builder import GraphBuilder


class LayerBuilder(GraphBuilder):
    """``GraphBuilder`` plus layers with seeded random weights (He-style by fan-in)."""

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
        gain: float = 2.0,
    ) -> str:
        fan_in = (cin // groups) * k * k
        w = self.rng.normal(0.0, np.sqrt(gain / fan_in), (cout, cin // groups, k, k))
        inputs = [x, self.const("w", w.astype(np.float32))]
        if bias:
            inputs.append(self.const("b", self.rng.normal(0.0, 0.05, cout).astype(np.float32)))
        pad = k // 2
        return self.op1(
            "Conv",
            inputs,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            group=groups,
        )

    def bn(self, x: str, c: int) -> str:
        gamma = self.rng.uniform(0.8, 1.2, c).astype(np.float32)
        beta = self.rng.normal(0.0, 0.05, c).astype(np.float32)
        mean = self.rng.normal(0.0, 0.05, c).astype(np.float32)
        var = self.rng.uniform(0.8, 1.2, c).astype(np.float32)
        ins = [x] + [self.const(p, v) for p, v in
                     (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
        return self.op1("BatchNormalization", ins, epsilon=1e-5)

    def relu6(self, x: str) -> str:
        lo = self.const("clip_min", np.array(0.0, np.float32))
        hi = self.const("clip_max", np.array(6.0, np.float32))
        return self.op1("Clip", [x, lo, hi])

    def silu(self, x: str) -> str:
        return self.op1("Mul", [x, self.op1("Sigmoid", [x])])

    def classifier_head(self, x: str, c: int, num_classes: int, gain: float = 1.0) -> str:
        pooled = self.op1("GlobalAveragePool", [x])
        flat = self.op1("Flatten", [pooled], axis=1)
        w = self.rng.normal(0.0, np.sqrt(gain / c), (num_classes, c)).astype(np.float32)
        b = np.zeros(num_classes, np.float32)
        return self.op1("Gemm", [flat, self.const("fc_w", w), self.const("fc_b", b)], transB=1)


def _image_input(name: str, size: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, size, size])


def resnet18(seed: int = 0, input_size: int = 224, num_classes: int = 1000) -> onnx.ModelProto:
    """ResNet-18 as exported for inference (BN already folded into the convolutions)."""
    g = LayerBuilder(seed)
    x = g.op1("Relu", [g.conv("input", 3, 64, 7, stride=2)])
    x = g.op1("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            y = g.op1("Relu", [g.conv(x, cin, cout, 3, stride=stride)])
            # The residual branch is damped so the variance does not double at every add.
            y = g.conv(y, cout, cout, 3, gain=0.5)
            shortcut = g.conv(x, cin, cout, 1, stride=stride) if stride != 1 or cin != cout else x
            x = g.op1("Relu", [g.op1("Add", [y, shortcut])])
            cin = cout
    logits = g.classifier_head(x, 512, num_classes)
    return g.finish(
        "resnet18", [_image_input("input", input_size)], [(logits, "logits", [1, num_classes])]
    )


_MOBILENET_V2_CONFIG = (  # expansion t, channels c, repeats n, first stride s
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def mobilenet_v2(seed: int = 0, input_size: int = 224, num_classes: int = 1000) -> onnx.ModelProto:
    """MobileNetV2 (width 1.0): inverted residuals, depthwise 3x3, ReLU6 as Clip(0, 6)."""
    g = LayerBuilder(seed)
    x = g.relu6(g.conv("input", 3, 32, 3, stride=2))
    cin = 32
    for t, c, n, s in _MOBILENET_V2_CONFIG:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = g.relu6(g.conv(y, cin, hidden, 1))
            y = g.relu6(g.conv(y, hidden, hidden, 3, stride=stride, groups=hidden))
            y = g.conv(y, hidden, c, 1, gain=1.0)  # linear bottleneck
            x = g.op1("Add", [x, y]) if stride == 1 and cin == c else y
            cin = c
    x = g.relu6(g.conv(x, cin, 1280, 1))
    logits = g.classifier_head(x, 1280, num_classes)
    return g.finish(
        "mobilenet_v2", [_image_input("input", input_size)], [(logits, "logits", [1, num_classes])]
    )


def mobilenet_classifier(
    seed: int = 0, input_size: int = 96, num_classes: int = 10
) -> onnx.ModelProto:
    """A small depthwise-separable classifier with HardSwish; BN is left for the optimiser."""
    g = LayerBuilder(seed)
    x = g.op1("HardSwish", [g.bn(g.conv("input", 3, 16, 3, stride=2, bias=False), 16)])
    cin = 16
    for cout, stride in ((32, 2), (64, 2), (64, 1), (128, 2)):
        y = g.op1("HardSwish", [g.bn(g.conv(x, cin, cin, 3, stride, groups=cin, bias=False), cin)])
        y = g.op1("HardSwish", [g.bn(g.conv(y, cin, cout, 1, bias=False), cout)])
        x = g.op1("Add", [x, y]) if stride == 1 and cin == cout else y
        cin = cout
    logits = g.classifier_head(x, cin, num_classes, gain=100.0)  # HardSwish shrinks activations
    return g.finish(
        "mobilenet_classifier",
        [_image_input("input", input_size)],
        [(logits, "logits", [1, num_classes])],
    )


# Head scale and objectness prior chosen so random images in [0, 1] yield a few hundred
# candidates above a 0.25 score: NMS and the per-box pipeline then have real work to do.
HEAD_GAIN = 200.0
OBJ_PRIOR = -2.0
# Anchors (w, h) in input pixels per detection stride, YOLOv5-style but sized for small inputs.
_YOLO_ANCHORS = {16: ((20, 26), (40, 30), (32, 64)), 32: ((64, 56), (90, 120), (160, 140))}


def _yolo_conv(g: LayerBuilder, x: str, cin: int, cout: int, k: int, stride: int = 1) -> str:
    return g.silu(g.bn(g.conv(x, cin, cout, k, stride=stride, bias=False), cout))


def _yolo_decode(g: LayerBuilder, feat: str, cin: int, stride: int, grid: int, nc: int) -> str:
    """Detection head at one stride, decoded to [1, anchors*grid*grid, 5 + nc]."""
    anchors = _YOLO_ANCHORS[stride]
    na, no = len(anchors), 5 + nc
    w = g.rng.normal(0.0, np.sqrt(HEAD_GAIN / cin), (na * no, cin, 1, 1)).astype(np.float32)
    b = np.zeros((na, no), np.float32)
    b[:, 4] = OBJ_PRIOR  # objectness prior: most cells see no object
    raw = g.op1("Conv", [feat, g.const("head_w", w), g.const("head_b", b.reshape(-1))],
                kernel_shape=[1, 1])
    raw = g.op1("Identity", [raw])
    x = g.op1("Reshape", [raw, g.const("shape", np.array([1, na, no, grid, grid], np.int64))])
    x = g.op1("Transpose", [x], perm=[0, 1, 3, 4, 2])  # [1, na, gy, gx, no]
    x = g.op1("Sigmoid", [x])
    xy, wh, rest = g.op(
        "Split", [x, g.const("split", np.array([2, 2, no - 4], np.int64))], 3, axis=-1
    )
    gy, gx = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    cells = np.stack([gx, gy], axis=-1).reshape(1, 1, grid, grid, 2).astype(np.float32)
    two = g.const("two", np.array(2.0, np.float32))
    xy = g.op1("Sub", [g.op1("Mul", [xy, two]), g.const("half", np.array(0.5, np.float32))])
    xy = g.op1("Mul", [g.op1("Add", [xy, g.const("grid", cells)]),
                       g.const("stride", np.array(float(stride), np.float32))])
    anchor = np.array(anchors, np.float32).reshape(1, na, 1, 1, 2)
    wh = g.op1("Mul", [g.op1("Pow", [g.op1("Mul", [wh, two]), two]), g.const("anchor", anchor)])
    decoded = g.op1("Concat", [xy, wh, rest], axis=-1)
    # A Shape -> Gather -> Unsqueeze -> Concat chain as exporters write it: foldable.
    batch = g.op1("Gather", [g.op1("Shape", [decoded]), g.const("idx", np.array(0, np.int64))])
    batch = g.op1("Unsqueeze", [batch, g.const("axes", np.array([0], np.int64))])
    shape = g.op1("Concat", [batch, g.const("rows", np.array([-1, no], np.int64))], axis=0)
    return g.op1("Reshape", [decoded, shape])


def yolo_detector(seed: int = 0, input_size: int = 320, num_classes: int = 8) -> onnx.ModelProto:
    """A small YOLO-style detector: outputs ``predictions`` [1, N, 4 + 1 + classes] with
    cx, cy, w, h in input pixels, objectness and class scores (all after sigmoid)."""
    if input_size % 32:
        raise ValueError("yolo_detector input_size must be a multiple of 32")
    g = LayerBuilder(seed)
    x = _yolo_conv(g, "images", 3, 16, 3, 2)  # /2
    x = _yolo_conv(g, x, 16, 32, 3, 2)  # /4
    x = g.op1("Add", [x, _yolo_conv(g, x, 32, 32, 3)])
    x = _yolo_conv(g, x, 32, 64, 3, 2)  # /8
    x = g.op1("Dropout", [_yolo_conv(g, x, 64, 64, 3)])
    p4 = _yolo_conv(g, x, 64, 128, 3, 2)  # /16
    p5 = _yolo_conv(g, p4, 128, 128, 3, 2)  # /32
    p5 = g.op1("Identity", [p5])
    lateral = _yolo_conv(g, p5, 128, 64, 1)
    empty = g.const("roi", np.zeros(0, np.float32))
    scales = g.const("scales", np.array([1.0, 1.0, 2.0, 2.0], np.float32))
    up = g.op1("Resize", [lateral, empty, scales], mode="nearest",
               coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    p4 = _yolo_conv(g, g.op1("Concat", [up, p4], axis=1), 192, 128, 3)
    out16 = _yolo_decode(g, p4, 128, 16, input_size // 16, num_classes)
    out32 = _yolo_decode(g, p5, 128, 32, input_size // 32, num_classes)
    preds = g.op1("Concat", [out16, out32], axis=1)
    n = 3 * ((input_size // 16) ** 2 + (input_size // 32) ** 2)
    return g.finish(
        "yolo_detector",
        [_image_input("images", input_size)],
        [(preds, "predictions", [1, n, 5 + num_classes])],
    )
