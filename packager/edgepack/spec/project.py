# SPDX-License-Identifier: Apache-2.0
"""The project spec ``edgepack.toml`` as typed records.

This module holds the records only; ``edgepack.spec.loader.load_spec`` reads and validates a
file into them (every mistake is a ``SpecError`` naming file, line where known, and key).
docs/spec.md documents every key with a full example. Paths here are already resolved
against the project folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SPEC_FILENAME = "edgepack.toml"

PixelFormat = Literal["rgb", "bgr", "gray"]
ResizeMode = Literal["stretch", "letterbox"]
Interpolation = Literal["linear", "nearest"]
Layout = Literal["nchw", "nhwc"]
BoxFormat = Literal["cxcywh", "xyxy"]
DetectionLayout = Literal["rows", "columns"]
QuantizeDtype = Literal["int8", "fp16"]
CalibrationMethod = Literal["minmax", "entropy", "percentile"]


@dataclass(frozen=True)
class PackageSpec:
    name: str
    version: str
    version_counter: int  # monotonic; devices refuse artifacts with a lower counter


@dataclass(frozen=True)
class KeysSpec:
    publisher: Path  # Ed25519 private key (PEM, PKCS#8) that signs the artifact
    recipients: tuple[Path, ...]  # X25519 public keys (PEM) of devices or fleets


@dataclass(frozen=True)
class PreprocessSpec:
    """How the app's uint8 HWC image becomes the model's float input."""

    source_size: tuple[int, int]  # (height, width) of the image the app passes
    pixel_format: PixelFormat = "rgb"  # channel order of the app's image
    model_format: PixelFormat = "rgb"  # channel order the model expects
    resize: ResizeMode = "stretch"
    interpolation: Interpolation = "linear"
    pad_value: float = 114.0  # letterbox fill, in pixel units (before mean/std)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # per model channel, in pixel units
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    layout: Layout = "nchw"  # layout of the model input
    # (height, width) bounds of the frame the app may pass per run instead of source_size
    # (inclusive); None: only source_size. source_size stays the nominal size (golden data).
    source_size_min: tuple[int, int] | None = None
    source_size_max: tuple[int, int] | None = None

    @property
    def bounded(self) -> bool:
        """Whether the app chooses the frame size at run time (within min..max)."""
        return self.source_size_max is not None


@dataclass(frozen=True)
class InputSpec:
    name: str  # ONNX graph input name
    shape: tuple[int, ...]  # fixed shape used for shape inference (no symbolic dims left)
    preprocess: PreprocessSpec | None = None


@dataclass(frozen=True)
class ClassificationPost:
    output: str  # ONNX output holding logits or scores, shape [1, classes]
    softmax: bool = True
    top_k: int = 5
    kind: Literal["classification"] = "classification"


@dataclass(frozen=True)
class DetectionPost:
    """YOLO-style head already decoded to boxes. Each box has 4 box values, an optional
    objectness, the class scores and ``extra_columns`` values carried through NMS (YOLOv8-seg
    mask coefficients, pose keypoints). ``rows``: output [1, N, values] (YOLOv5);
    ``columns``: output [1, values, N] (YOLOv8 / YOLO11, no objectness)."""

    output: str
    box_format: BoxFormat = "cxcywh"  # in model-input pixel coordinates
    has_objectness: bool = True  # column 4 is objectness, multiplied into class scores
    layout: DetectionLayout = "rows"
    extra_columns: int = 0  # values after the class scores, returned per detection as `extras`
    keypoints: bool = False  # extras are (x, y, visibility) triples in model-input pixels
    # Two-tensor heads (SSD, RetinaNet-style exports cut at their head): ``output`` holds the
    # boxes [1, N, 4] and this output the class scores [1, N, C] (layout rows, no objectness);
    # or, as torchvision's per-image post-processing has them, [N, 4] and [N, C].
    scores_output: str | None = None
    # A class that means "no object" (torchvision SSD / Faster R-CNN: 0): never a detection.
    background_class: int | None = None
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 100  # bound on the data-dependent number of boxes
    kind: Literal["detection"] = "detection"


PostprocessSpec = ClassificationPost | DetectionPost


@dataclass(frozen=True)
class QuantizeSpec:
    """``[models.quantize]``: post-training quantisation (docs/quantization.md).

    int8: static QDQ quantisation by onnxruntime over the ``calibration`` folder (images run
    through the model's preprocessing, or ``<input>.npy`` / ``<input>_<i>.npy`` tensors).
    fp16: weights stored in half precision, computed in float32 (no calibration)."""

    dtype: QuantizeDtype
    calibration: Path | None = None  # a folder inside the project; required for int8
    method: CalibrationMethod = "minmax"
    per_channel: bool = True  # one weight scale per output channel
    exclude: tuple[str, ...] = ()  # node names kept in float
    # pack refuses the quantised model below these (agreement with float32 on calibration):
    min_cosine: float = 0.98  # per output
    min_top1: float = 0.9  # classifiers: fraction of samples with the same top-1 class
    min_detections: float = 0.8  # detectors: float32 detections matched at IoU >= 0.5


@dataclass(frozen=True)
class ModelSpec:
    name: str  # stage name used everywhere (manifest, runner --stage, reports)
    path: Path
    inputs: tuple[InputSpec, ...]
    postprocess: PostprocessSpec | None = None
    labels: tuple[str, ...] | None = None
    # Tensors the model ends at (cut there: later nodes dropped); None keeps the graph outputs.
    outputs: tuple[str, ...] | None = None
    quantize: QuantizeSpec | None = None


@dataclass(frozen=True)
class PipelineStageSpec:
    """One step of the pipeline. ``crops_from`` names an earlier detection model: this model
    then runs once per detected box on a crop (RoiAlign) of the source image."""

    model: str
    crops_from: str | None = None


@dataclass(frozen=True)
class PipelineSpec:
    stages: tuple[PipelineStageSpec, ...]


@dataclass(frozen=True)
class Spec:
    path: Path  # the edgepack.toml that was read
    root: Path  # the project folder; every relative path is resolved against it
    package: PackageSpec
    keys: KeysSpec
    models: tuple[ModelSpec, ...]
    pipeline: PipelineSpec | None = None
    # board id -> (model name -> processor id from the board file); unlisted models run on "cpu"
    placement: dict[str, dict[str, str]] = field(default_factory=dict)

    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)
