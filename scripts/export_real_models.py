# SPDX-License-Identifier: Apache-2.0
"""Exports the real-model test set (tests/real_models.py, REAL_MODELS and CUT_MODELS) to
tests/data/real_models/.

Run by hand, never in CI. It needs torch, torchvision, ultralytics, timm, onnx, onnxscript (for
the dynamo export) and onnxruntime, best in a virtual environment of its own outside the repo:

    python3 -m venv ../export-venv
    ../export-venv/bin/pip install torch torchvision ultralytics timm onnx onnxscript onnxruntime
    ../export-venv/bin/python scripts/export_real_models.py            # all models
    ../export-venv/bin/python scripts/export_real_models.py resnet18   # some of them

Nothing is downloaded: every model is built from its architecture with random weights
(torchvision ``weights=None``, ultralytics ``DetectionModel("yolov8n.yaml")`` and friends,
``timm.create_model(name, pretrained=False)``). Each model is exported at batch 1 with fixed
shapes, at opset 17 with torch's classic (TorchScript) exporter, as a user following each
project's own recipe would; the ultralytics models are prepared the way ultralytics' exporter
prepares them (eval, BatchNorm fused, Detect head in export mode, C2f split forward) but exported
with torch.onnx.export directly, without onnxslim, since ultralytics' exporter installs missing
packages at run time. One model, ``mobilenet_v3_small_dynamo``, comes from torch's dynamo
exporter (``dynamo=True``, opset 18, weights in ``model.onnx.data``) and keeps that layout.
torchvision's ``ssdlite320_mobilenet_v3_large`` is exported whole (``weights=None,
weights_backbone=None``), its data-dependent post-processing included; the tests cut it at its
head (``RealModel.cut``).

Then every float initializer larger than STRIP_BYTES that is a weight (consumed by a Conv,
ConvTranspose, Gemm, MatMul or a normalization node, through Transpose/Reshape/Cast if any), and
every float initializer larger than KEEP_CONSTANT_BYTES whatever its use, loses its data; its name,
dims and dtype stay, and the names are listed in the model's metadata_props under
``edgepack.stripped_initializers``. Smaller constants that are not weights (YOLO anchor grids and
strides, biases added after MatMul, layer scales) are kept: they are structure, and noise in them
would change what the graph computes. tests/real_models.py refills the stripped tensors with
seeded values. At the end every model is refilled and run under onnxruntime, and the total size
of the folder is checked against MAX_TOTAL_BYTES.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import real_models  # noqa: E402  (the list and the refill live with the tests)

STRIP_BYTES = 1024
KEEP_CONSTANT_BYTES = 64 * 1024
MAX_TOTAL_BYTES = 15 * 1024 * 1024
OPSET = 17
DYNAMO_OPSET = 18
WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization",
              "LayerNormalization", "InstanceNormalization", "GroupNormalization"}


def torchvision_model(arch: str) -> Callable[[], Any]:
    def build() -> Any:
        import torchvision

        return getattr(torchvision.models, arch)(weights=None)
    return build


def torchvision_detection(arch: str) -> Callable[[], Any]:
    """A torchvision detection model, whole: transform, backbone, head and its post-processing
    (the export keeps the per-class loop unrolled; the tests cut it at ``RealModel.cut``)."""
    def build() -> Any:
        import torchvision

        return getattr(torchvision.models.detection, arch)(weights=None,
                                                           weights_backbone=None)
    return build


def timm_model(arch: str) -> Callable[[], Any]:
    def build() -> Any:
        import timm

        return timm.create_model(arch, pretrained=False)
    return build


def ultralytics_model(yaml: str) -> Callable[[], Any]:
    """The model as ultralytics' exporter prepares it for ONNX (engine/exporter.py)."""
    def build() -> Any:
        from ultralytics.nn.modules import C2f, Detect
        from ultralytics.nn.tasks import (
            DetectionModel,
            PoseModel,
            SegmentationModel,
            guess_model_task,
            yaml_model_load,
        )

        cfg = yaml_model_load(yaml)
        cls = {"detect": DetectionModel, "segment": SegmentationModel, "pose": PoseModel}[
            guess_model_task(cfg)]
        model = cls(cfg, verbose=False)
        for p in model.parameters():
            p.requires_grad = False
        model.eval()
        model.float()
        model = model.fuse(verbose=False)
        for m in model.modules():
            if isinstance(m, Detect):
                m.dynamic = False
                m.export = True
                m.format = "onnx"
                m.shape = None
            elif isinstance(m, C2f):
                m.forward = m.forward_split
        return model
    return build


BUILDERS: dict[str, Callable[[], Any]] = {
    "resnet18": torchvision_model("resnet18"),
    "mobilenet_v2": torchvision_model("mobilenet_v2"),
    "mobilenet_v3_small": torchvision_model("mobilenet_v3_small"),
    "mobilenet_v3_large": torchvision_model("mobilenet_v3_large"),
    "efficientnet_b0": torchvision_model("efficientnet_b0"),
    "shufflenet_v2_x1_0": torchvision_model("shufflenet_v2_x1_0"),
    "yolov8n": ultralytics_model("yolov8n.yaml"),
    "yolov8n_seg": ultralytics_model("yolov8n-seg.yaml"),
    "yolov8n_pose": ultralytics_model("yolov8n-pose.yaml"),
    "yolo11n": ultralytics_model("yolo11n.yaml"),
    "yolo11n_seg": ultralytics_model("yolo11n-seg.yaml"),
    "yolo11n_pose": ultralytics_model("yolo11n-pose.yaml"),
    "vit_tiny_patch16_224": timm_model("vit_tiny_patch16_224"),
    "convnext_atto": timm_model("convnext_atto"),
    "mobilevit_xxs": timm_model("mobilevit_xxs"),
    "mobilenet_v3_small_dynamo": torchvision_model("mobilenet_v3_small"),
    "ssdlite320_mobilenet_v3_large": torchvision_detection("ssdlite320_mobilenet_v3_large"),
}


def export(spec: real_models.RealModel, folder: Path) -> Path:
    """Exports one model into ``folder``; returns the .onnx path."""
    import torch

    torch.manual_seed(0)
    module = BUILDERS[spec.name]().eval()
    (input_name, shape), = spec.inputs.items()
    example = torch.randn(*shape)
    with torch.no_grad():
        module(example)  # dry run: ultralytics heads compute their strides and anchors here
    path = folder / "model.onnx"
    if spec.external_data:
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=DYNAMO_OPSET,
                                    input_names=[input_name], output_names=list(spec.outputs))
        assert program is not None
        program.save(str(path), external_data=True)
    else:
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[input_name], output_names=list(spec.outputs),
                          do_constant_folding=True)
    return path


def strip(model: onnx.ModelProto) -> list[str]:
    """Empties the weight initializers (see the module doc); returns their names. The rule reads
    only dims, dtypes and the graph, so stripping a stored graph again finds the same tensors."""
    used_by = real_models.consumers(model, {t.name for t in model.graph.initializer})
    stripped = []
    for tensor in model.graph.initializer:
        if tensor.data_type not in real_models.FLOAT_TYPES:
            continue
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        size = itemsize * int(np.prod(tensor.dims, dtype=np.int64))
        is_weight = tensor.name in used_by and used_by[tensor.name][0].op_type in WEIGHT_OPS
        if (is_weight and size > STRIP_BYTES) or size > KEEP_CONSTANT_BYTES:
            for field in ("raw_data", "float_data", "double_data", "external_data"):
                tensor.ClearField(field)
            tensor.data_location = TensorProto.DEFAULT
            stripped.append(tensor.name)
    others = [p for p in model.metadata_props if p.key != real_models.STRIPPED_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(others)
    model.metadata_props.add(key=real_models.STRIPPED_KEY, value=json.dumps(stripped))
    return stripped


def drop_stack_traces(model: onnx.ModelProto) -> None:
    """The dynamo exporter records each node's Python stack trace, with the exporting machine's
    file paths; they say nothing about the graph and do not belong in the repository."""
    for node in model.graph.node:
        kept = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)


def save_stripped(spec: real_models.RealModel, exported: Path) -> list[str]:
    model = onnx.load(str(exported))  # external data, if any, is read from beside the file
    check_interface(spec, model)
    drop_stack_traces(model)
    names = strip(model)
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    if spec.external_data:
        real_models.save_external(model, spec.path)
    else:
        onnx.save(model, str(spec.path))
    return names


def check_interface(spec: real_models.RealModel, model: onnx.ModelProto) -> None:
    inits = {t.name for t in model.graph.initializer}
    inputs = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
              for i in model.graph.input if i.name not in inits}
    outputs = tuple(o.name for o in model.graph.output)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert inputs == spec.inputs, (spec.name, inputs)
    assert outputs == spec.outputs, (spec.name, outputs)
    assert opsets.get("", opsets.get("ai.onnx")) == spec.opset, (spec.name, opsets)


def verify(spec: real_models.RealModel) -> str:
    """Refills the stored graph, runs it under onnxruntime; returns a one-line summary."""
    import onnxruntime as ort

    model = real_models.load_real_model(spec.name)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in spec.inputs.items()}
    outs = session.run(None, feeds)
    assert all(np.isfinite(o).all() for o in outs), spec.name
    produced = {o for n in model.graph.node for o in n.output}
    assert all(name in produced for name in spec.cut), (spec.name, spec.cut)
    peaks = ", ".join(f"{o.shape} max|out| {float(np.abs(o).max(initial=0)):.3g}"
                      for o in outs)
    return peaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="models to export (default: all)")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown models: {sorted(unknown)}; known: {sorted(BUILDERS)}")
    assert set(BUILDERS) == set(real_models.BY_NAME), "BUILDERS and REAL_MODELS disagree"
    specs = [m for m in [*real_models.REAL_MODELS, *real_models.CUT_MODELS]
             if not args.names or m.name in args.names]
    for spec in specs:
        with tempfile.TemporaryDirectory() as tmp:
            exported = export(spec, Path(tmp))
            names = save_stripped(spec, exported)
        files = list(spec.path.parent.iterdir()) if spec.external_data else [spec.path]
        size = sum(p.stat().st_size for p in files)
        print(f"{spec.name}: {len(names)} tensors stripped, {size / 1024:.0f} KiB; "
              f"{verify(spec)}", flush=True)
    total = sum(p.stat().st_size for p in real_models.DATA.rglob("*") if p.is_file())
    print(f"total {total / 1024 / 1024:.2f} MiB in {real_models.DATA.relative_to(REPO)}")
    if total > MAX_TOTAL_BYTES:
        print(f"error: over {MAX_TOTAL_BYTES / 1024 / 1024:.0f} MiB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
