# SPDX-License-Identifier: Apache-2.0
"""edgepack.toml: the valid example loads into the records; each broken file fails one rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from spec_project import VALID_TOML, make_detector, populate, write_valid_project

from edgepack.errors import SpecError
from edgepack.spec.loader import load_spec
from edgepack.spec.project import ClassificationPost, DetectionPost

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "data" / "spec_invalid"
RULES = sorted(p.name for p in INVALID.iterdir() if p.is_dir())


def test_valid_project_fills_every_record(tmp_path: Path) -> None:
    spec = load_spec(write_valid_project(tmp_path))
    assert spec.path == tmp_path / "edgepack.toml"
    assert spec.root == tmp_path.resolve()
    assert (spec.package.name, spec.package.version, spec.package.version_counter) == \
        ("vision-demo", "1.2.0", 7)
    assert spec.keys.publisher == (tmp_path / "keys" / "publisher.key").resolve()
    assert [p.name for p in spec.keys.recipients] == ["dev1.pub", "dev2.pub"]
    det, cls = spec.models
    assert det.path == (tmp_path / "models" / "detector.onnx").resolve()
    assert det.labels is not None and len(det.labels) == 8 and det.labels[0] == "person"
    pre = det.inputs[0].preprocess
    assert pre is not None
    assert (det.inputs[0].name, det.inputs[0].shape) == ("images", (1, 3, 320, 320))
    assert pre.source_size == (480, 640) and pre.pixel_format == "bgr"
    assert pre.resize == "letterbox" and pre.std == (255.0, 255.0, 255.0)
    assert isinstance(det.postprocess, DetectionPost)
    assert det.postprocess.max_detections == 20 and det.postprocess.has_objectness
    assert isinstance(cls.postprocess, ClassificationPost)
    assert cls.postprocess.top_k == 5 and cls.labels is not None and len(cls.labels) == 10
    assert spec.pipeline is not None
    assert [(s.model, s.crops_from) for s in spec.pipeline.stages] == \
        [("detector", None), ("classifier", "detector")]
    assert spec.placement == {"hi3559a": {"detector": "npu"}}
    assert spec.model("classifier") is cls


def test_loads_from_the_toml_path_too(tmp_path: Path) -> None:
    write_valid_project(tmp_path)
    assert load_spec(tmp_path / "edgepack.toml").package.name == "vision-demo"


def test_defaults_and_shape_from_a_static_model(tmp_path: Path) -> None:
    """Without inputs, shape or optional keys: shape comes from the model, defaults fill in."""
    toml = VALID_TOML[:VALID_TOML.index("[[models]]")] + """
[[models]]
name = "classifier"
path = "models/classifier.onnx"
  [[models.inputs]]
  name = "input"
    [models.inputs.preprocess]
    source_size = [96, 96]
  [models.postprocess]
  kind = "classification"
  output = "logits"

[[models]]
name = "plain"
path = "models/detector.onnx"
  [models.postprocess]
  kind = "none"
"""
    spec = load_spec(write_valid_project(tmp_path, toml))
    cls, plain = spec.models
    assert cls.inputs[0].shape == (1, 3, 96, 96)
    pre = cls.inputs[0].preprocess
    assert pre is not None and pre.pixel_format == "rgb" and pre.resize == "stretch"
    assert pre.mean == (0.0, 0.0, 0.0) and pre.std == (1.0, 1.0, 1.0)
    assert cls.postprocess == ClassificationPost(output="logits", softmax=True, top_k=5)
    assert plain.postprocess is None and plain.labels is None
    assert [(i.name, i.shape, i.preprocess) for i in plain.inputs] == \
        [("images", (1, 3, 320, 320), None)]
    assert spec.pipeline is None and spec.placement == {}


def test_dynamic_model_with_shape_in_spec(tmp_path: Path) -> None:
    toml = VALID_TOML.replace('path = "models/detector.onnx"', 'path = "models/dynamic.onnx"')
    spec = load_spec(write_valid_project(tmp_path, toml))
    assert spec.models[0].inputs[0].shape == (1, 3, 320, 320)


def test_gray_model_gets_one_channel_defaults(tmp_path: Path) -> None:
    populate(tmp_path)
    # A 1-channel variant: the default mean/std follow the model's channel count.
    import onnx
    model = onnx.load(str(make_detector(tmp_path / "models" / "gray.onnx")))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1
    model.graph.initializer[0].dims[1] = 1
    del model.graph.initializer[0].float_data[:]
    model.graph.initializer[0].raw_data = model.graph.initializer[0].raw_data[: 13 * 32 * 32 * 4]
    onnx.save(model, str(tmp_path / "models" / "gray.onnx"))
    toml = VALID_TOML.replace('path = "models/detector.onnx"', 'path = "models/gray.onnx"') \
        .replace("shape = [1, 3, 320, 320]", "shape = [1, 1, 320, 320]") \
        .replace('model_format = "rgb"', 'model_format = "gray"', 1) \
        .replace("mean = [0, 0, 0]\n    std = [255, 255, 255]\n", "")
    (tmp_path / "edgepack.toml").write_text(toml)
    pre = load_spec(tmp_path).models[0].inputs[0].preprocess
    assert pre is not None and pre.mean == (0.0,) and pre.std == (1.0,)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no edgepack\.toml here"):
        load_spec(tmp_path)
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "other.toml")


def test_every_rule_has_a_folder() -> None:
    assert len(RULES) >= 15


@pytest.mark.parametrize("rule", RULES)
def test_invalid_spec(rule: str, tmp_path: Path) -> None:
    folder = INVALID / rule
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    populate(tmp_path)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "edgepack.toml")), message
    assert info.value.path == str(tmp_path / "edgepack.toml")
    expected = [line for line in (folder / "expected.txt").read_text().splitlines() if line]
    assert expected, f"{rule}/expected.txt is empty"
    for substring in expected:
        assert substring in message, f"{rule}: {substring!r} not in {message!r}"


@pytest.mark.parametrize("key", ["labels", "path"])
def test_symlink_leaving_the_project_is_refused(tmp_path: Path, key: str) -> None:
    """A file named in the spec is resolved with symlinks; one that lands outside the project
    folder is refused, so a spec cannot pull any file of this machine into an artifact."""
    project = tmp_path / "project"
    write_valid_project(project)
    outside = tmp_path / "secret.txt"
    outside.write_text("id_ed25519\n")
    link = project / "models" / "link"
    link.symlink_to(outside)
    toml = (project / "edgepack.toml").read_text()
    old = 'labels = "labels/coco8.txt"' if key == "labels" else 'path = "models/detector.onnx"'
    assert old in toml
    (project / "edgepack.toml").write_text(toml.replace(old, f'{key} = "models/link"', 1))
    with pytest.raises(SpecError) as info:
        load_spec(project)
    assert f"models[0].{key}: models/link resolves to {outside}" in str(info.value)
    assert "outside the project folder" in str(info.value)
