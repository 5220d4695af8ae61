# SPDX-License-Identifier: Apache-2.0
"""The stage plan: every ONNX graph the runtime executes and the pipeline that chains them.

Stage names and pipeline rules are those of docs/manifest.md: ``<model>.pre`` -> ``<model>`` ->
``<model>.post`` per model; a model with ``crops_from`` gets ``<model>.crop`` instead of a
``.pre`` and runs (with its post) once per detected box (``map: true``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import onnx

from edgepack.errors import SpecError
from edgepack.model.frame_size import SIZE_INPUT, SIZE_SUFFIX
from edgepack.model.ingest import IngestedModel, ingest_model
from edgepack.model.prepost import (
    build_classification_post,
    build_crop,
    build_detection_post,
    build_preprocess,
    channels,
    detection_outputs,
    model_hw,
)
from edgepack.model.tensors import TensorDesc
from edgepack.spec.project import (
    ClassificationPost,
    DetectionPost,
    InputSpec,
    ModelSpec,
    PipelineStageSpec,
    PreprocessSpec,
    Spec,
)

StageKind = Literal["pre", "model", "post", "crop"]


@dataclass(frozen=True)
class Stage:
    name: str
    kind: StageKind
    model: str
    processor: str
    onnx: onnx.ModelProto
    inputs: tuple[TensorDesc, ...]
    outputs: tuple[TensorDesc, ...]

    def output(self, name: str) -> TensorDesc:
        for t in self.outputs:
            if t.name == name:
                return t
        raise KeyError(f"{self.name}:{name}")

    def to_manifest(self) -> dict[str, Any]:
        """The manifest entry (the packer adds ``onnx`` where it stores the ONNX graph)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "model": self.model,
            "processor": self.processor,
            "graph": f"graph/{self.name}",
            "inputs": [t.to_manifest() for t in self.inputs],
            "outputs": [t.to_manifest() for t in self.outputs],
        }


@dataclass(frozen=True)
class Step:
    stage: str
    bind: dict[str, str]  # stage input -> tensor reference
    map: bool = False

    def to_manifest(self) -> dict[str, Any]:
        d: dict[str, Any] = {"stage": self.stage, "bind": dict(self.bind)}
        if self.map:
            d["map"] = True
        return d


@dataclass(frozen=True)
class StagePlan:
    spec: Spec
    models: tuple[IngestedModel, ...]
    stages: tuple[Stage, ...]
    inputs: tuple[TensorDesc, ...]  # pipeline inputs
    steps: tuple[Step, ...]
    outputs: dict[str, str] = field(default_factory=dict)  # public name -> tensor reference
    # pipeline image inputs whose size the app chooses per run: name -> ((min h, w), (max h, w))
    size_bounds: dict[str, tuple[tuple[int, int], tuple[int, int]]] = field(
        default_factory=dict)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def model(self, name: str) -> IngestedModel:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def manifest_models(self) -> list[dict[str, Any]]:
        out = []
        for m in self.models:
            spec = m.spec
            pre = next((i.preprocess for i in spec.inputs if i.preprocess is not None), None)
            out.append({
                "name": m.name,
                "source": _relative(self.spec, spec),
                "opset": m.opset,
                "inputs": [t.to_manifest() for t in m.inputs],
                "outputs": [t.to_manifest() for t in m.outputs],
                "labels": list(spec.labels) if spec.labels is not None else None,
                "preprocess": _echo(pre),
                "postprocess": _echo(spec.postprocess),
                "stages": [s.name for s in self.stages if s.model == m.name],
                # [models.quantize]: dtype, agreement with float32, scale/zero point per tensor
                "quantization": (m.quantization.to_manifest()
                                 if m.quantization is not None else None),
            })
        return out

    def manifest_stages(self) -> list[dict[str, Any]]:
        return [s.to_manifest() for s in self.stages]

    def pipeline(self) -> dict[str, Any]:
        inputs = []
        for t in self.inputs:
            entry = t.to_manifest()
            if t.name in self.size_bounds:
                low, high = self.size_bounds[t.name]
                entry["size_min"], entry["size_max"] = list(low), list(high)
            inputs.append(entry)
        return {
            "inputs": inputs,
            "steps": [s.to_manifest() for s in self.steps],
            "outputs": dict(self.outputs),
        }


def _relative(spec: Spec, model: ModelSpec) -> str:
    try:
        return model.path.resolve().relative_to(spec.root.resolve()).as_posix()
    except ValueError:
        return model.path.as_posix()


def _echo(record: PreprocessSpec | ClassificationPost | DetectionPost | None) -> Any:
    if record is None:
        return None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(record).items()}


def _image_desc(name: str, pre: PreprocessSpec, stage: bool = False) -> TensorDesc:
    """The app's image: at ``source_size`` as a pipeline input; as a stage input, at the
    largest size when the size is chosen at run time (the frame arrives top-left in it)."""
    h, w = (pre.source_size_max or pre.source_size) if stage else pre.source_size
    return TensorDesc(name, "uint8", (h, w, channels(pre.pixel_format)), "HWC")


def _size_desc() -> TensorDesc:
    return TensorDesc(SIZE_INPUT, "int64", (2,))


def _preprocessed(spec: Spec, model: ModelSpec) -> InputSpec | None:
    pre = [i for i in model.inputs if i.preprocess is not None]
    if len(pre) > 1:
        raise SpecError(spec.path, "edgepack preprocesses at most one input per model",
                        field=f"models.{model.name}.inputs")
    return pre[0] if pre else None


class _PlanBuilder:
    def __init__(self, spec: Spec, placement: dict[str, str]) -> None:
        self.spec = spec
        self.placement = placement
        self.models: dict[str, IngestedModel] = {}
        self.stages: list[Stage] = []
        self.post_reads: dict[str, dict[str, str]] = {}  # post stage -> input -> model output

    def add(self, stage: Stage) -> Stage:
        self.stages.append(stage)
        return stage

    def model_stage(self, m: IngestedModel) -> Stage:
        return self.add(Stage(m.name, "model", m.name, self.placement.get(m.name, "cpu"),
                              m.onnx, m.inputs, m.outputs))

    def pre_stage(self, m: IngestedModel, inp: InputSpec) -> Stage:
        assert inp.preprocess is not None
        desc = next(t for t in m.inputs if t.name == inp.name)
        graph = build_preprocess(inp.preprocess, desc)
        out = desc.renamed("output")
        inputs = (_image_desc("image", inp.preprocess, stage=True),
                  *((_size_desc(),) if inp.preprocess.bounded else ()))
        return self.add(Stage(f"{m.name}.pre", "pre", m.name, "cpu", graph, inputs, (out,)))

    def post_stage(self, m: IngestedModel) -> Stage | None:
        """The model's postprocess stage; its inputs are the model outputs it reads, renamed
        ``head.<name>`` where a name is also one of the post's outputs (a two-tensor head
        whose outputs are called ``boxes`` and ``scores``). ``self.post_reads`` maps them back."""
        post = m.spec.postprocess
        if post is None:
            return None
        names = [post.output]
        if isinstance(post, DetectionPost) and post.scores_output is not None:
            names.append(post.scores_output)
        taken = ({"scores", "indices"} if isinstance(post, ClassificationPost)
                 else {t.name for t in detection_outputs(post)})
        reads: dict[str, str] = {}
        descs = []
        for name in names:
            desc = next(t for t in m.outputs if t.name == name)
            if name in taken:
                desc = desc.renamed(f"head.{name}")
            reads[desc.name] = name
            descs.append(desc)
        self.post_reads[f"{m.name}.post"] = reads
        if isinstance(post, ClassificationPost):
            graph = build_classification_post(post, descs[0])
            outs = tuple(TensorDesc(o.name, "float32" if o.name == "scores" else "int64",
                                    tuple(d.dim_value for d in o.type.tensor_type.shape.dim))
                         for o in graph.graph.output)
        else:
            inp = _preprocessed(self.spec, m.spec)
            pre = inp.preprocess if inp is not None else None
            model_input = next((t for t in m.inputs if inp and t.name == inp.name), None)
            graph = build_detection_post(post, descs[0], pre, model_input,
                                         descs[1] if len(descs) > 1 else None)
            outs = detection_outputs(post)
            if pre is not None and pre.bounded:
                descs.append(_size_desc())
        return self.add(Stage(f"{m.name}.post", "post", m.name, "cpu", graph, tuple(descs),
                              outs))

    def crop_stage(self, m: IngestedModel, source: IngestedModel) -> Stage:
        inp = _preprocessed(self.spec, m.spec)
        post = source.spec.postprocess
        if inp is None or len(m.spec.inputs) != 1 or not isinstance(post, DetectionPost):
            raise SpecError(self.spec.path, f"model {m.name!r} cannot run on crops of "
                            f"{source.name!r}: it needs exactly one preprocessed input and "
                            f"{source.name!r} a detection postprocess", field="pipeline.stages")
        assert inp.preprocess is not None
        desc = m.inputs[0]
        model_hw(inp.preprocess, desc)
        bound = post.max_detections
        boxes = TensorDesc("boxes", "float32", (bound, 4), None, True)
        out = TensorDesc("output", "float32", (bound, *desc.shape[1:]), desc.layout, True)
        return self.add(Stage(f"{m.name}.crop", "crop", m.name, "cpu",
                              build_crop(inp.preprocess, desc),
                              (_image_desc("image", inp.preprocess, stage=True), boxes),
                              (out,)))


def build_stage_plan(spec: Spec, board_placement: dict[str, str] | None = None) -> StagePlan:
    """Ingest every model, build its pre/post/crop graphs and the pipeline."""
    b = _PlanBuilder(spec, dict(board_placement or {}))
    for model_spec in spec.models:
        b.models[model_spec.name] = ingest_model(model_spec)
    order = spec.pipeline.stages if spec.pipeline is not None else tuple(
        PipelineStageSpec(m.name) for m in spec.models)
    in_pipeline = {st.model for st in order}
    # Models left out of an explicit pipeline still get their stages (not chained).
    order = order + tuple(PipelineStageSpec(m.name) for m in spec.models
                          if m.name not in in_pipeline)

    sources = [(st.model, i) for st in order if st.crops_from is None and st.model in in_pipeline
               for i in spec.model(st.model).inputs]
    single = len(sources) == 1

    def input_name(model: str, inp: InputSpec) -> str:
        if single:
            return "image" if inp.preprocess is not None else inp.name
        return f"{model}.{inp.name}"

    pipeline_inputs: list[TensorDesc] = []
    size_bounds: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
    steps: list[Step] = []
    outputs: dict[str, str] = {}
    single_model = len(in_pipeline) == 1
    for st in order:
        m = b.models[st.model]
        chained = st.model in in_pipeline
        bind: dict[str, str] = {}
        frame_size: str | None = None  # "<image input>#size" when the frame size is bounded
        if st.crops_from is not None:
            source = b.models[st.crops_from]
            crop = b.crop_stage(m, source)
            src_inp = _preprocessed(spec, source.spec)
            if src_inp is None or src_inp.preprocess is None or (
                crop.inputs[0].shape != _image_desc("", src_inp.preprocess, stage=True).shape
            ):
                raise SpecError(spec.path, f"model {m.name!r} crops from {source.name!r}: both "
                                "need the same source_size and pixel_format",
                                field="pipeline.stages")
            steps.append(Step(crop.name, {"image": input_name(source.name, src_inp),
                                          "boxes": f"{source.name}.post:boxes"}))
            bind[m.inputs[0].name] = f"{crop.name}:output"
        else:
            for inp in m.spec.inputs:
                ref = input_name(m.name, inp)
                if inp.preprocess is not None:
                    pre = b.pre_stage(m, inp)
                    if chained:
                        pipeline_inputs.append(_image_desc(ref, inp.preprocess))
                        pre_bind = {"image": ref}
                        p = inp.preprocess
                        if p.source_size_min is not None and p.source_size_max is not None:
                            size_bounds[ref] = (p.source_size_min, p.source_size_max)
                            frame_size = pre_bind[SIZE_INPUT] = ref + SIZE_SUFFIX
                        steps.append(Step(pre.name, pre_bind))
                    ref = f"{pre.name}:output"
                elif chained:
                    desc = next(t for t in m.inputs if t.name == inp.name)
                    pipeline_inputs.append(desc.renamed(ref))
                bind[inp.name] = ref
        mapped = st.crops_from is not None
        model_stage = b.model_stage(m)
        post = b.post_stage(m)
        if not chained:
            continue
        steps.append(Step(model_stage.name, bind, mapped))
        final = model_stage
        if post is not None:
            post_bind = {name: f"{m.name}:{output}"
                         for name, output in b.post_reads[post.name].items()}
            if any(t.name == SIZE_INPUT for t in post.inputs):
                if frame_size is None:
                    raise SpecError(spec.path, f"model {m.name!r} runs on crops: its "
                                    "preprocess cannot declare source_size_min/max",
                                    field=f"models.{m.name}.inputs")
                post_bind[SIZE_INPUT] = frame_size
            steps.append(Step(post.name, post_bind, mapped))
            final = post
        # A postprocess reads one model output; the others (e.g. YOLOv8-seg mask prototypes)
        # stay pipeline outputs beside the post's.
        finals = [(final, o) for o in final.outputs]
        if post is not None:
            read = set(b.post_reads[post.name].values())
            finals += [(model_stage, o) for o in model_stage.outputs if o.name not in read]
        for stage, out in finals:
            public = out.name if single_model else f"{m.name}.{out.name}"
            if public in outputs:
                raise SpecError(spec.path, f"model {m.name!r}: output {out.name!r} has the "
                                "name of a postprocess output; rename it in the model",
                                field=f"models.{m.name}.postprocess")
            outputs[public] = f"{stage.name}:{out.name}"
    return StagePlan(spec, tuple(b.models.values()), tuple(b.stages), tuple(pipeline_inputs),
                     tuple(steps), outputs, size_bounds)
