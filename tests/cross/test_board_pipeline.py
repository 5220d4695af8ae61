# SPDX-License-Identifier: Apache-2.0
"""The whole board pipeline under qemu: ``edgepack build <example copy> --board B`` (artifact +
SDK), then the board's own ``edgepack-run`` on that artifact with the golden inputs it carries,
and on an artifact of single-op stages (Conv, Resize, NonMaxSuppression, TopK, Softmax).

Oracles: the golden outputs in the artifact (the host reference pipeline, onnxruntime) for the
example, onnxruntime for the op stages. Tolerances are those of the host conformance tests
(tests/sdk/test_ops_conformance.py): float32 rtol 1e-4, atol 1e-5; Resize linear atol 1e-4.
The example's outputs pass through several networks: atol 1e-4 relative to each output's scale.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import board
from edgepack.artifact import container as artifact
from edgepack.artifact import keys, manifest
from edgepack.build import qemu
from edgepack.build.elfinfo import read_elf
from edgepack.cli import main
from edgepack.lower.lowering import lower
from edgepack.spec.arch import EM_AARCH64, EM_ARM
from example_project import example_project

PIPELINE_BOARDS = {"hi3559a": EM_AARCH64, "rpi4-armhf": EM_ARM}
NMS_K = 10  # boxes kept per class at most; 2 classes: at most 2 * NMS_K rows


@dataclass(frozen=True)
class BoardBuild:
    board: str
    project: Path  # the example copy, with its keys
    artifact: Path
    sdk_dir: Path

    @property
    def runner(self) -> Path:
        return self.sdk_dir / "bin" / "edgepack-run"


@pytest.fixture(scope="session")
def example_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/vision-demo copied as a user would start: models generated, keys created."""
    return example_project(tmp_path_factory.mktemp("examples-copy") / "vision-demo",
                           keys_by_cli=True)


@pytest.fixture(scope="session")
def board_build(cross_cache: Path, example_copy: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], BoardBuild]:
    """``edgepack build`` of the example copy for a board, once per board and session (the
    SDK's build folder is shared with ``sdk_for`` through the cache: Ninja has no work)."""
    builds: dict[str, BoardBuild] = {}

    def get(board_id: str) -> BoardBuild:
        if board_id not in builds:
            out = tmp_path_factory.mktemp(f"build-{board_id}")
            assert main(["build", str(example_copy), "--board", board_id, "--out", str(out),
                         "--json"]) == 0
            builds[board_id] = BoardBuild(board_id, example_copy,
                                          out / f"vision-demo-{board_id}.epk", out / board_id)
        return builds[board_id]

    return get


def _opened(path: Path, project: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    opened = artifact.open_artifact(
        artifact.read_file(path), keys.load_device_private(project / "keys" / "dev1.key"),
        keys.load_publisher_public(project / "keys" / "publisher.pub"))
    return json.loads(opened.manifest_bytes), opened.sections


def _npy(data: bytes) -> np.ndarray:
    loaded: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
    return loaded


def _run_board(build: BoardBuild, epk: Path, inputs: Path, outputs: Path,
               *extra: str) -> None:
    argv: list[str | Path] = [build.runner, epk, "--key", build.project / "keys" / "dev2.key",
            "--publisher", build.project / "keys" / "publisher.pub",
            "--inputs", inputs, "--outputs", outputs, *extra]
    done = qemu.run(board(build.board), argv, timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.mark.parametrize("board_id", sorted(PIPELINE_BOARDS))
def test_example_pipeline_on_board_matches_host_reference(
        board_build: Callable[[str], BoardBuild], tmp_path: Path, board_id: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    build = board_build(board_id)
    capsys.readouterr()
    assert read_elf(build.runner).machine == PIPELINE_BOARDS[board_id]
    doc, sections = _opened(build.artifact, build.project)
    assert doc["provenance"]["board"] == board_id
    golden = doc["golden"]
    assert golden["inputs"] and golden["outputs"]
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name, ref in golden["inputs"].items():
        (inputs / f"{name}.npy").write_bytes(sections[ref["section"]])
    _run_board(build, build.artifact, inputs, outputs)
    for name, ref in golden["outputs"].items():
        want = _npy(sections[ref["section"]])
        got = np.load(outputs / f"{name}.npy")
        assert got.shape == want.shape and got.dtype == want.dtype, name
        scale = float(np.abs(want).max()) if want.size else 1.0
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(scale, 1.0),
                                   err_msg=f"{board_id}: {name}")


def test_opencl_backend_without_a_gpu_falls_back_to_the_cpu(
        board_build: Callable[[str], BoardBuild], tmp_path: Path) -> None:
    """hi3559a's runner with --backend opencl where no OpenCL platform exists (qemu-user here;
    a board whose libmali is missing): the plugin is refused with one warning naming why, and
    the CPU runs the whole pipeline with the same outputs as without the flag."""
    build = board_build("hi3559a")
    assert (build.sdk_dir / "lib" / "libedgepack_opencl.so").is_file()
    doc, sections = _opened(build.artifact, build.project)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, ref in doc["golden"]["inputs"].items():
        (inputs / f"{name}.npy").write_bytes(sections[ref["section"]])
    argv: list[str | Path] = [build.runner, build.artifact,
                              "--key", build.project / "keys" / "dev2.key",
                              "--publisher", build.project / "keys" / "publisher.pub",
                              "--inputs", inputs]
    plain = qemu.run(board("hi3559a"), [*argv, "--outputs", tmp_path / "cpu"], timeout=600)
    assert plain.returncode == 0, plain.stderr.decode(errors="replace")
    gpu = qemu.run(board("hi3559a"), [*argv, "--outputs", tmp_path / "gpu", "--backend",
                                      "opencl"], timeout=600)
    err = gpu.stderr.decode(errors="replace")
    assert gpu.returncode == 0, err
    assert "backend 'opencl' rejected" in err or "no OpenCL platform" in err, err
    for name in doc["golden"]["outputs"]:
        np.testing.assert_array_equal(np.load(tmp_path / "gpu" / f"{name}.npy"),
                                      np.load(tmp_path / "cpu" / f"{name}.npy"), err_msg=name)


# ---- single-op stages ---------------------------------------------------------------------

DTYPES = {np.dtype(np.float32): ("float32", TensorProto.FLOAT),
          np.dtype(np.int64): ("int64", TensorProto.INT64)}


@dataclass
class OpCase:
    name: str
    op: str
    inputs: dict[str, np.ndarray]
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    outputs: int = 1
    atol: float = 1e-5

    def model(self) -> onnx.ModelProto:
        outs = [f"{self.name}_y{i}" for i in range(self.outputs)]
        node = helper.make_node(self.op, self.order or [*self.inputs, *self.consts], outs,
                                **self.attrs)
        graph = helper.make_graph(
            [node], self.name,
            [helper.make_tensor_value_info(k, DTYPES[v.dtype][1], v.shape)
             for k, v in self.inputs.items()],
            [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outs],
            [numpy_helper.from_array(v, k) for k, v in self.consts.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return onnx.shape_inference.infer_shapes(model)


def op_cases() -> list[OpCase]:
    """The same seeded cases on every call."""
    rng = np.random.default_rng(2024)
    i64 = np.int64

    def _f32(*shape: int) -> np.ndarray:
        return rng.uniform(-2, 2, size=shape).astype(np.float32)

    def _nms_inputs() -> dict[str, np.ndarray]:
        xy = rng.uniform(0, 8, (1, 16, 2)).astype(np.float32)
        size = rng.uniform(2, 8, (1, 16, 2)).astype(np.float32)
        return {"nms_boxes": np.concatenate([xy, xy + size], axis=2),
                "nms_scores": rng.uniform(0, 1, (1, 2, 16)).astype(np.float32)}

    return [
        OpCase("conv_pads_groups", "Conv", {"conv_x": _f32(1, 6, 9, 8)},
               {"conv_w": _f32(9, 2, 3, 3), "conv_b": _f32(9)},
               attrs={"group": 3, "pads": [1, 0, 2, 1], "strides": [2, 1]}),
        OpCase("resize_linear", "Resize", {"resize_x": _f32(1, 2, 5, 7)},
               {"resize_roi": np.zeros(0, np.float32),
                "resize_scales": np.array([1, 1, 2.0, 1.5], np.float32)},
               attrs={"mode": "linear", "coordinate_transformation_mode": "half_pixel"},
               atol=1e-4),
        OpCase("nms", "NonMaxSuppression", _nms_inputs(),
               {"nms_k": np.array(NMS_K, i64), "nms_iou": np.array(0.3, np.float32),
                "nms_th": np.array(0.2, np.float32)}),
        OpCase("topk", "TopK", {"topk_x": _f32(3, 10)}, {"topk_k": np.array([4], i64)},
               attrs={"axis": 1}, outputs=2),
        OpCase("softmax", "Softmax", {"softmax_x": _f32(2, 5, 7)}, attrs={"axis": -1}),
    ]


def _shape(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in value.type.tensor_type.shape.dim]


def _tensor(name: str, dtype: str, shape: list[int], dynamic: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "dtype": dtype, "shape": shape, "layout": None}
    if dynamic:
        entry["dynamic_dim0"] = True
    return entry


def op_stage_artifact(path: Path, project: Path, cases: list[OpCase],
                      results: dict[str, dict[str, np.ndarray]]) -> None:
    """One artifact, one stage per case; golden data = onnxruntime's outputs."""
    stages: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    blobs: list[tuple[str, bytes]] = []
    golden: dict[str, Any] = {"inputs": {}, "outputs": {}, "stages": {}}
    for case in cases:
        model = case.model()
        want = results[case.name]
        ins = [_tensor(k, DTYPES[v.dtype][0], list(v.shape)) for k, v in case.inputs.items()]
        outs = []
        for value in model.graph.output:
            dims = value.type.tensor_type.shape.dim
            dynamic = case.op == "NonMaxSuppression"
            shape = [2 * NMS_K, 3] if dynamic else _shape(value)
            outs.append(_tensor(value.name, DTYPES[want[value.name].dtype][0], shape, dynamic))
            assert dynamic or all(d.dim_value > 0 for d in dims), value.name
        onnx_bytes = model.SerializeToString(deterministic=True)
        blobs += [(f"onnx/{case.name}", onnx_bytes), (f"graph/{case.name}", lower(model))]
        stages.append({"name": case.name, "kind": "model", "model": case.name,
                       "processor": "cpu", "onnx": f"onnx/{case.name}",
                       "graph": f"graph/{case.name}", "inputs": ins, "outputs": outs,
                       "ops": [case.op]})
        models.append({"name": case.name, "source": f"{case.name}.onnx", "opset": 17,
                       "inputs": ins, "outputs": outs, "labels": None, "preprocess": None,
                       "postprocess": None, "stages": [case.name]})
    first = stages[0]
    doc: dict[str, Any] = {
        "schema": manifest.SCHEMA_ID,
        "package": {"name": "op-stages", "version": "1.0.0", "version_counter": 1},
        "provenance": {"tool": "edgepack", "tool_version": "test", "sdk_abi": manifest.SDK_ABI,
                       "board": None, "inputs": {}},
        "models": models,
        "stages": stages,
        "pipeline": {"inputs": first["inputs"],
                     "steps": [{"stage": first["name"],
                                "bind": {t["name"]: t["name"] for t in first["inputs"]}}],
                     "outputs": {t["name"]: f"{first['name']}:{t['name']}"
                                 for t in first["outputs"]}},
        "golden": golden,
    }
    manifest.validate(doc)
    artifact.write_artifact(
        path, package_name="op-stages", package_version="1.0.0", version_counter=1,
        publisher=keys.load_publisher_private(project / "keys" / "publisher.key"),
        recipients=[keys.load_device_public(project / "keys" / f"{d}.pub")
                    for d in ("dev1", "dev2")],
        sections=[(artifact.MANIFEST_SECTION, manifest.dumps(doc)), *blobs])


def _onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    return dict(zip(names, session.run(names, feeds), strict=True))


@pytest.mark.parametrize("board_id", sorted(PIPELINE_BOARDS))
def test_op_stages_on_board_match_onnxruntime(board_build: Callable[[str], BoardBuild],
                                              tmp_path: Path, board_id: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    build = board_build(board_id)
    capsys.readouterr()
    cases = op_cases()
    results = {c.name: _onnxruntime(c.model(), c.inputs) for c in cases}
    assert 0 < len(results["nms"]["nms_y0"]) < 2 * NMS_K  # NMS suppressed some, kept some
    epk = tmp_path / "ops.epk"
    op_stage_artifact(epk, build.project, cases, results)
    for case in cases:
        inputs, outputs = tmp_path / case.name / "in", tmp_path / case.name / "out"
        inputs.mkdir(parents=True)
        for name, value in case.inputs.items():
            np.save(inputs / f"{name}.npy", value)
        _run_board(build, epk, inputs, outputs, "--stage", case.name)
        for name, want in results[case.name].items():
            got = np.load(outputs / f"{name}.npy")
            assert got.shape == want.shape and got.dtype == want.dtype, (case.name, name)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=case.atol,
                                       err_msg=f"{board_id}: {case.name}: {name}")
