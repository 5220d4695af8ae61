# SPDX-License-Identifier: Apache-2.0
"""Plain numpy implementations of edgepack's pre/post-processing, written from the formulas
(not from the graphs), used as the third oracle next to onnxruntime and onnx.reference."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepack.model.prepost import geometry
from edgepack.spec.project import DetectionPost, PreprocessSpec

Array = np.ndarray[Any, Any]


def reorder(img: Array, src: str, dst: str) -> Array:
    x = img.astype(np.float32)
    if src == dst:
        return x
    if dst == "gray":
        rgb = x if src == "rgb" else x[..., ::-1]
        w = np.array([0.299, 0.587, 0.114], np.float32).reshape(3, 1)
        return rgb @ w
    if src == "gray":
        return np.repeat(x, 3, axis=2)
    return x[..., ::-1]


def resize_linear(x: Array, h: int, w: int) -> Array:
    """Bilinear, half-pixel centres, edge clamp (cv2 INTER_LINEAR / torch align_corners=False)."""
    src_h, src_w = x.shape[:2]

    def coords(n_out: int, n_in: int) -> tuple[Array, Array, Array]:
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, fy = coords(h, src_h)
    x0, x1, fx = coords(w, src_w)
    fy, fx = fy[:, None, None], fx[None, :, None]
    top = x[y0][:, x0] * (1 - fx) + x[y0][:, x1] * fx
    bottom = x[y1][:, x0] * (1 - fx) + x[y1][:, x1] * fx
    out: Array = (top * (1 - fy) + bottom * fy).astype(np.float32)
    return out


def resize_nearest(x: Array, h: int, w: int) -> Array:
    src_h, src_w = x.shape[:2]
    ys = np.minimum(np.floor(np.arange(h) * (src_h / h)).astype(int), src_h - 1)
    xs = np.minimum(np.floor(np.arange(w) * (src_w / w)).astype(int), src_w - 1)
    out: Array = x[ys][:, xs]
    return out


def preprocess(img: Array, pre: PreprocessSpec, h: int, w: int) -> Array:
    x = reorder(img, pre.pixel_format, pre.model_format)  # HWC float
    c = x.shape[2]
    geo = geometry(pre, h, w)
    if (geo.new_h, geo.new_w) != x.shape[:2]:
        resize = resize_linear if pre.interpolation == "linear" else resize_nearest
        x = resize(x, geo.new_h, geo.new_w)
    x = np.pad(x, ((geo.top, geo.bottom), (geo.left, geo.right), (0, 0)),
               constant_values=pre.pad_value)
    mean = np.broadcast_to(np.array(pre.mean, np.float32), (c,))
    std = np.broadcast_to(np.array(pre.std, np.float32), (c,))
    x = (x - mean) / std
    x = x[None]
    return x if pre.layout == "nhwc" else x.transpose(0, 3, 1, 2)


def iou(a: Array, b: Array) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def detection_post(pred: Array, post: DetectionPost, pre: PreprocessSpec | None, h: int,
                   w: int) -> tuple[Array, ...]:
    """(boxes, scores, classes) and, with extra columns, the extras of the kept boxes."""
    p = pred[0].astype(np.float32)
    if post.layout == "columns":
        p = p.T
    box = p[:, :4]
    if post.box_format == "cxcywh":
        box = np.concatenate([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], axis=1)
    end = p.shape[1] - post.extra_columns
    scores = p[:, 5:end] * p[:, 4:5] if post.has_objectness else p[:, 4:end]
    extras = p[:, end:]
    kept: list[tuple[float, int, int]] = []  # score, class, box index
    for c in range(scores.shape[1]):
        order = [i for i in np.argsort(-scores[:, c], kind="stable")
                 if scores[i, c] > post.score_threshold]
        chosen: list[int] = []
        for i in order:
            if len(chosen) >= post.max_detections:
                break
            if all(iou(box[i], box[j]) <= post.iou_threshold for j in chosen):
                chosen.append(i)
        kept += [(float(scores[i, c]), c, i) for i in chosen]
    kept.sort(key=lambda t: -t[0])
    kept = kept[:post.max_detections]
    boxes = np.array([box[i] for _, _, i in kept], np.float32).reshape(-1, 4)
    kept_extras = extras[[i for _, _, i in kept]].astype(np.float32)
    if pre is not None:
        geo = geometry(pre, h, w)
        off = np.array([geo.left, geo.top] * 2, np.float32)
        scale = np.array([geo.scale_x, geo.scale_y] * 2, np.float32)
        limit = np.array([geo.src_w, geo.src_h] * 2, np.float32)
        boxes = np.clip((boxes - off) / scale, 0, limit)
        if post.keypoints:
            kp = kept_extras.reshape(len(kept), post.extra_columns // 3, 3).copy()
            kp[..., :2] = np.clip((kp[..., :2] - off[:2]) / scale[:2], 0, limit[:2])
            kept_extras = kp.reshape(len(kept), post.extra_columns)
    out: tuple[Array, ...] = (boxes, np.array([s for s, _, _ in kept], np.float32),
                              np.array([c for _, c, _ in kept], np.int64))
    return (*out, kept_extras) if post.extra_columns else out


def _bilinear(img: Array, y: float, x: float) -> Array:
    """RoiAlign's sampling: zero outside [-1, size], clamp to the border inside."""
    _, h, w = img.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(img.shape[0], np.float64)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * img[:, y0, x0] + (1 - ly) * lx * img[:, y0, x1]
            + ly * (1 - lx) * img[:, y1, x0] + ly * lx * img[:, y1, x1])


def roi_align(img: Array, boxes: Array, out_h: int, out_w: int, sampling: int = 2) -> Array:
    """RoiAlign (avg, half_pixel, spatial_scale 1) on one CHW image."""
    out = np.zeros((len(boxes), img.shape[0], out_h, out_w), np.float64)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(np.float64)):
        x1, y1, x2, y2 = x1 - 0.5, y1 - 0.5, x2 - 0.5, y2 - 0.5
        bin_h, bin_w = (y2 - y1) / out_h, (x2 - x1) / out_w
        for i in range(out_h):
            for j in range(out_w):
                acc = np.zeros(img.shape[0], np.float64)
                for sy in range(sampling):
                    for sx in range(sampling):
                        yy = y1 + i * bin_h + (sy + 0.5) * bin_h / sampling
                        xx = x1 + j * bin_w + (sx + 0.5) * bin_w / sampling
                        acc += _bilinear(img, yy, xx)
                out[k, :, i, j] = acc / (sampling * sampling)
    return out.astype(np.float32)
