# SPDX-License-Identifier: Apache-2.0
"""The OpenCL backend (libedgepack_opencl.so, sdk_templates/src/backends/opencl) on PoCL.

Op conformance: small single-op graphs run with ``--backend <libedgepack_opencl.so>`` must place
their node on "opencl" and match the built-in CPU backend on the same graph (float32, rtol/atol
1e-5 scaled by the output; with fp16 storage 1e-2). Real models (tests/real_models.py, seeded
weights: resnet18, mobilenet_v2, mobilenet_v3_small, and yolov8n whose Split/Slice nodes stay
on the CPU between 10 partitions) run on OpenCL against onnxruntime (1e-4 x max(1, max
|reference|), the real-model suite's tolerance; 5e-3 with fp16 storage).

PoCL is a real dependency of these tests (scripts/setup.sh installs pocl-opencl-icd): without an
OpenCL ICD they fail, naming setup.sh. PoCL compiles the kernel program with LLVM once per
process; POCL_CACHE_DIR under build/cache keeps the result across runs.

This module is also the backend conformance kit: EDGEPACK_CONFORMANCE_PLUGIN=<path to a plugin
.so> runs the op cases against that plugin instead (docs/adding-a-backend.md); the expected
backend name then comes from EDGEPACK_CONFORMANCE_BACKEND (default "opencl").
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from graph_runner import graph_run_binary, run_ort
from onnx import TensorProto, helper, numpy_helper
from sdk_host import REPO, SdkBuild

from edgepack.artifact.pack import pack_project
from edgepack.lower.lowering import lower
from edgepack.model.optimize import optimize
from real_models import BY_NAME, load_real_model
from real_projects import write_project

Array = np.ndarray[Any, Any]
ICD_DIR = Path("/etc/OpenCL/vendors")
SETUP_HINT = ("install the OpenCL ICD loader, headers and PoCL with scripts/setup.sh "
              "(ocl-icd-opencl-dev, opencl-c-headers, pocl-opencl-icd)")


@dataclass(frozen=True)
class Plugin:
    path: Path
    name: str  # the backend name placement must show
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def plugin(sdk_host: SdkBuild) -> Plugin:
    """The plugin under test: libedgepack_opencl.so of the host SDK build on PoCL, or the one
    EDGEPACK_CONFORMANCE_PLUGIN names."""
    env = {"POCL_CACHE_DIR": str(REPO / "build" / "cache" / "pocl")}
    Path(env["POCL_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    if os.environ.get("EDGEPACK_CONFORMANCE_PLUGIN"):
        path = Path(os.environ["EDGEPACK_CONFORMANCE_PLUGIN"])
        if not path.is_file():
            pytest.fail(f"EDGEPACK_CONFORMANCE_PLUGIN={path}: no such file")
        return Plugin(path, os.environ.get("EDGEPACK_CONFORMANCE_BACKEND", "opencl"), env)
    icds = sorted(ICD_DIR.glob("*.icd")) if ICD_DIR.is_dir() else []
    if not icds:
        pytest.fail(f"no OpenCL ICD registered in {ICD_DIR}: {SETUP_HINT}")
    path = sdk_host.build / "src" / "backends" / "opencl" / "libedgepack_opencl.so"
    if not path.is_file():
        pytest.fail(f"{path} was not built (the CMake log says why): {SETUP_HINT}")
    return Plugin(path, "opencl", env)


@dataclass
class Run:
    outputs: dict[str, Array]
    placement: dict[str, str]
    report: dict[str, Any]
    stderr: str


def graph_run(sdk: SdkBuild, model: onnx.ModelProto, feeds: dict[str, Array],
              plugin: Plugin | None, bench: int = 0) -> Run:
    """edgepack-graph-run of ``model`` (lowered) with --placement, --profile and --json (the
    profile over ``bench`` timed runs, or one run after the first), on ``plugin`` or the CPU
    alone."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "in").mkdir()
        (t / "out").mkdir()
        (t / "g.epdg").write_bytes(lower(model))
        for k, v in feeds.items():
            np.save(t / "in" / f"{k}.npy", v)
        cmd = [str(graph_run_binary(sdk.build)), str(t / "g.epdg"), "--inputs", str(t / "in"),
               "--outputs", str(t / "out"), "--placement", "--profile", "--json",
               str(t / "r.json")]
        if bench:
            cmd += ["--bench", str(bench), "--warmup", "0"]
        if plugin is not None:
            cmd += ["--backend", str(plugin.path)]
        env = {**os.environ, **(plugin.env if plugin else {})}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        assert proc.returncode == 0, f"edgepack-graph-run failed:\n{proc.stderr}"
        placement = dict(ln.split("\t") for ln in proc.stdout.splitlines() if "\t" in ln)
        outputs = {o.name: np.load(t / "out" / f"{o.name}.npy") for o in model.graph.output}
        report = json.loads((t / "r.json").read_text())
        return Run(outputs, placement, report, proc.stderr)


# --- op conformance ----------------------------------------------------------------------------

RNG = np.random.default_rng(11)


def f32(*shape: int) -> Array:
    return RNG.standard_normal(shape).astype(np.float32)


def single(op: str, inputs: dict[str, Array], out_shape: list[int],
           consts: dict[str, Array] | None = None, extra: list[onnx.NodeProto] | None = None,
           **attrs: Any) -> tuple[onnx.ModelProto, dict[str, Array]]:
    """A graph of one ``op`` node (named "n") over float32 graph inputs and constants, output
    "y"; ``extra`` nodes follow it (e.g. an activation the lowering fuses)."""
    consts = consts or {}
    names = list(inputs) + list(consts)
    y = "y" if not extra else "t"
    nodes = [helper.make_node(op, names, [y], name="n", **attrs), *(extra or [])]
    graph = helper.make_graph(
        nodes, op,
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape))
         for k, v in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), inputs


def act(op: str, **attrs: Any) -> list[onnx.NodeProto]:
    return [helper.make_node(op, ["t"], ["y"], name="act", **attrs)]


def resize(mode: str, ctm: str, out: list[int], **attrs: Any) -> Any:
    """Resize of a (1, 2, 5, 7) input to ``out`` (given as sizes)."""
    model, feeds = single("Resize", {"x": f32(1, 2, 5, 7)}, out, mode=mode,
                          coordinate_transformation_mode=ctm, **attrs)
    node = model.graph.node[0]
    del node.input[:]
    node.input.extend(["x", "", "", "sizes"])
    model.graph.initializer.append(numpy_helper.from_array(np.array(out, np.int64), "sizes"))
    return model, feeds


def concat3() -> Any:
    model, feeds = single("Concat", {"a": f32(2, 3, 4), "b": f32(2, 1, 4), "c": f32(2, 5, 4)},
                          [2, 9, 4], axis=1)
    return model, feeds


CASES: dict[str, Any] = {
    "conv_pads_strides": lambda: single(
        "Conv", {"x": f32(1, 3, 9, 8)}, [1, 4, 5, 4], {"w": f32(4, 3, 3, 3), "b": f32(4)},
        pads=[1, 1, 1, 1], strides=[2, 2]),
    "conv_dilated_asym_pads": lambda: single(
        "Conv", {"x": f32(2, 2, 7, 7)}, [2, 3, 6, 4], {"w": f32(3, 2, 2, 3)},
        pads=[1, 0, 0, 1], dilations=[2, 2]),
    "conv_grouped_relu": lambda: single(
        "Conv", {"x": f32(1, 4, 6, 6)}, [1, 6, 6, 6], {"w": f32(6, 2, 3, 3), "b": f32(6)},
        pads=[1, 1, 1, 1], group=2, extra=act("Relu")),
    "conv_depthwise_relu6": lambda: single(
        "Conv", {"x": f32(1, 8, 10, 10)}, [1, 8, 5, 5], {"w": f32(8, 1, 3, 3), "b": f32(8)},
        pads=[1, 1, 1, 1], strides=[2, 2], group=8,
        extra=[helper.make_node("Clip", ["t", "lo", "hi"], ["y"], name="act")]),
    "conv_1x1_hardswish": lambda: single(
        "Conv", {"x": f32(1, 16, 4, 4)}, [1, 8, 4, 4], {"w": f32(8, 16, 1, 1), "b": f32(8)},
        extra=act("HardSwish")),
    "gemm_transb_bias": lambda: single(
        "Gemm", {"a": f32(3, 10)}, [3, 7], {"w": f32(7, 10), "c": f32(7)}, transB=1,
        alpha=0.5, beta=2.0),
    "gemm_transa_relu": lambda: single(
        "Gemm", {"a": f32(10, 3)}, [3, 7], {"w": f32(10, 7), "c": f32(3, 1)}, transA=1,
        extra=act("Relu")),
    "matmul_batched_shared_b": lambda: single(
        "MatMul", {"a": f32(2, 5, 6)}, [2, 5, 4], {"w": f32(6, 4)}),
    "matmul_batched_both": lambda: single(
        "MatMul", {"a": f32(3, 4, 6), "b": f32(3, 6, 5)}, [3, 4, 5]),
    "maxpool_pads_ceil": lambda: single(
        "MaxPool", {"x": f32(1, 3, 7, 7)}, [1, 3, 4, 4], kernel_shape=[3, 3], strides=[2, 2],
        pads=[1, 1, 1, 1], ceil_mode=1),
    "avgpool_exclude_pad": lambda: single(
        "AveragePool", {"x": f32(2, 2, 6, 6)}, [2, 2, 3, 3], kernel_shape=[3, 3],
        strides=[2, 2], pads=[1, 1, 1, 1]),
    "avgpool_include_pad": lambda: single(
        "AveragePool", {"x": f32(1, 2, 5, 5)}, [1, 2, 5, 5], kernel_shape=[3, 3],
        pads=[1, 1, 1, 1], count_include_pad=1),
    "global_avgpool": lambda: single("GlobalAveragePool", {"x": f32(2, 5, 4, 3)}, [2, 5, 1, 1]),
    "add_broadcast": lambda: single("Add", {"x": f32(2, 3, 4, 5)}, [2, 3, 4, 5],
                                    {"b": f32(3, 1, 1)}),
    "mul_both_broadcast": lambda: single("Mul", {"x": f32(2, 1, 5), "z": f32(4, 1)}, [2, 4, 5]),
    "sub": lambda: single("Sub", {"x": f32(3, 4), "z": f32(3, 4)}, [3, 4]),
    "div": lambda: single("Div", {"x": f32(3, 4)}, [3, 4],
                          {"d": (RNG.uniform(0.5, 2.0, (4,))).astype(np.float32)}),
    "sigmoid": lambda: single("Sigmoid", {"x": f32(4, 6)}, [4, 6]),
    "tanh": lambda: single("Tanh", {"x": f32(4, 6)}, [4, 6]),
    "leaky_relu": lambda: single("LeakyRelu", {"x": f32(4, 6)}, [4, 6], alpha=0.2),
    "hardsigmoid": lambda: single("HardSigmoid", {"x": f32(4, 6)}, [4, 6], alpha=0.3, beta=0.4),
    "concat_axis1": concat3,
    "softmax_axis1": lambda: single("Softmax", {"x": f32(2, 5, 3, 2)}, [2, 5, 3, 2], axis=1),
    "softmax_last": lambda: single("Softmax", {"x": f32(3, 10)}, [3, 10], axis=-1),
    "resize_nearest_asym_floor": lambda: resize("nearest", "asymmetric", [1, 2, 10, 14],
                                                nearest_mode="floor"),
    "resize_nearest_half_pixel": lambda: resize("nearest", "half_pixel", [1, 2, 8, 9]),
    "resize_linear_half_pixel": lambda: resize("linear", "half_pixel", [1, 2, 10, 14]),
    "resize_linear_align_corners": lambda: resize("linear", "align_corners", [1, 2, 9, 4]),
    "resize_linear_pytorch": lambda: resize("linear", "pytorch_half_pixel", [1, 2, 3, 11]),
    "flatten": lambda: single("Flatten", {"x": f32(2, 3, 4)}, [2, 12], axis=1),
    "prelu": lambda: single("PRelu", {"x": f32(2, 3, 4, 4)}, [2, 3, 4, 4],
                            {"slope": f32(3, 1, 1)}),
    "transpose_nhwc": lambda: single("Transpose", {"x": f32(2, 3, 4, 5)}, [2, 4, 5, 3],
                                     perm=[0, 2, 3, 1]),
    "transpose_default": lambda: single("Transpose", {"x": f32(2, 3, 4)}, [4, 3, 2]),
}


def add_clip_bounds(model: onnx.ModelProto) -> None:
    if any(n.op_type == "Clip" for n in model.graph.node):
        model.graph.initializer.extend([numpy_helper.from_array(np.array(0, np.float32), "lo"),
                                        numpy_helper.from_array(np.array(6, np.float32), "hi")])


@pytest.fixture(scope="module")
def warm(sdk_host: SdkBuild, plugin: Plugin) -> Iterator[None]:
    """Builds the kernel program once (into POCL_CACHE_DIR) before the timed cases."""
    model, feeds = CASES["sigmoid"]()
    graph_run(sdk_host, model, feeds, plugin)
    yield


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_cpu_backend(sdk_host: SdkBuild, plugin: Plugin, warm: None,
                                case: str) -> None:
    model, feeds = CASES[case]()
    add_clip_bounds(model)
    onnx.checker.check_model(model, full_check=True)
    got = graph_run(sdk_host, model, feeds, plugin)
    want = graph_run(sdk_host, model, feeds, None)
    not_claimed = {k: v for k, v in got.placement.items() if v != plugin.name}
    assert not not_claimed, f"{case}: nodes not run by {plugin.name}: {not_claimed}\n{got.stderr}"
    assert set(want.placement.values()) == {"cpu"}
    for k, ref in want.outputs.items():
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got.outputs[k], ref, rtol=1e-5, atol=1e-5 * scale,
                                   err_msg=f"{case}: {k}")
    # and the CPU backend itself agrees with onnxruntime on these graphs
    ort_out = run_ort(model, feeds)
    for k, ref in ort_out.items():
        np.testing.assert_allclose(want.outputs[k], ref, rtol=1e-5, atol=1e-5, err_msg=k)


def test_fused_activation_on_binary_op_applies_and_elsewhere_is_refused(
        sdk_host: SdkBuild, plugin: Plugin, warm: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The lowering may fuse an activation into more ops than Conv/Gemm/MatMul (Add + Relu in
    ResNet's residuals): the binary kernel applies it, and an op whose kernel would drop it
    (here MaxPool) is left to the CPU."""
    from edgepack.lower import lowering
    monkeypatch.setattr(lowering, "FUSABLE", lowering.FUSABLE | {"Add", "MaxPool"})
    model, feeds = single("Add", {"x": f32(2, 3, 4, 5)}, [2, 3, 4, 5], {"b": f32(3, 1, 1)},
                          extra=act("Relu"))
    got = graph_run(sdk_host, model, feeds, plugin)
    assert got.placement == {"n": plugin.name}  # one node: the Relu was fused
    np.testing.assert_allclose(got.outputs["y"], run_ort(model, feeds)["y"], rtol=1e-6,
                               atol=1e-6)
    model, feeds = single("MaxPool", {"x": f32(1, 2, 4, 4)}, [1, 2, 2, 2], kernel_shape=[2, 2],
                          strides=[2, 2], extra=act("Relu"))
    assert graph_run(sdk_host, model, feeds, plugin).placement == {"n": "cpu"}


def test_unsupported_node_stays_on_cpu_between_partitions(sdk_host: SdkBuild,
                                                          plugin: Plugin) -> None:
    """Conv -> Erf (not an OpenCL op) -> Conv: two OpenCL partitions, the boundary tensors
    copied both ways, the result equal to the CPU run."""
    w1, w2 = f32(4, 3, 3, 3), f32(2, 4, 1, 1)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="c1"),
             helper.make_node("Erf", ["a"], ["e"], name="erf"),
             helper.make_node("Conv", ["e", "w2"], ["y"], name="c2")]
    graph = helper.make_graph(
        nodes, "split", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"x": f32(1, 3, 6, 6)}
    got = graph_run(sdk_host, model, feeds, plugin, bench=2)
    assert got.placement == {"c1": plugin.name, "erf": "cpu", "c2": plugin.name}
    nodes_json = {n["name"]: n for n in got.report["profile"]["nodes"]}
    assert (nodes_json["c1"]["partition"], nodes_json["c2"]["partition"]) == (0, 1)
    want = graph_run(sdk_host, model, feeds, None)
    np.testing.assert_allclose(got.outputs["y"], want.outputs["y"], rtol=1e-5, atol=1e-5)


FP16_CASES = ["add_broadcast", "concat_axis1", "conv_depthwise_relu6", "conv_pads_strides",
              "gemm_transb_bias", "maxpool_pads_ceil", "resize_linear_half_pixel",
              "softmax_axis1"]


def fp16(plugin: Plugin) -> Plugin:
    """The OpenCL backend with half storage (an option of that backend only: the conformance
    kit, `make backend-conformance`, deselects the fp16 cases)."""
    return Plugin(plugin.path, plugin.name, {**plugin.env, "EDGEPACK_OPENCL_PRECISION": "fp16"})


@pytest.mark.parametrize("case", FP16_CASES)
def test_op_with_fp16_storage_is_close_to_cpu_backend(sdk_host: SdkBuild, plugin: Plugin,
                                                      warm: None, case: str) -> None:
    """Half storage (vload_half/vstore_half, core OpenCL 1.2, so PoCL runs it too): every tensor
    rounded to 11 significant bits, float arithmetic; within 1e-2 of float32 relative to the
    output scale."""
    model, feeds = CASES[case]()
    add_clip_bounds(model)
    got = graph_run(sdk_host, model, feeds, fp16(plugin), bench=1)
    want = graph_run(sdk_host, model, feeds, None)
    assert set(got.placement.values()) == {plugin.name}
    backends = {b["name"]: b for b in got.report["profile"]["backends"]}
    assert "fp16 storage" in backends[plugin.name]["device"]
    for k, ref in want.outputs.items():
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got.outputs[k], ref, rtol=1e-2, atol=1e-2 * scale, err_msg=k)
        assert not np.array_equal(got.outputs[k], ref), "fp16 storage left no rounding at all"


# --- real models -------------------------------------------------------------------------------

REAL_CASES = [  # model, precision, op types left to the CPU (the OpenCL backend lacks them)
    ("resnet18", "fp32", set()),
    ("mobilenet_v2", "fp32", set()),
    ("mobilenet_v2", "fp16", set()),
    ("mobilenet_v3_small", "fp32", set()),
    ("yolov8n", "fp32", {"Split", "Slice"}),  # 10 partitions: boundary copies both ways
]


@pytest.mark.parametrize("name,precision,cpu_ops", REAL_CASES,
                         ids=[f"{n}-{p}" for n, p, _ in REAL_CASES])
def test_real_model_on_opencl_matches_onnxruntime(sdk_host: SdkBuild, plugin: Plugin,
                                                  warm: None, name: str, precision: str,
                                                  cpu_ops: set[str]) -> None:
    """Every node the plugin supports runs there (one partition, or several around the CPU
    nodes); float32 within 1e-4 of onnxruntime (relative to max(1, max |reference|)), fp16
    storage within 5e-3 (measured 1.0e-3 for mobilenet_v2)."""
    spec = BY_NAME[name]
    model = optimize(load_real_model(name))[0]
    feeds = {k: np.random.default_rng(0).standard_normal(s).astype(np.float32)
             for k, s in spec.inputs.items()}
    got = graph_run(sdk_host, model, feeds, fp16(plugin) if precision == "fp16" else plugin)
    nodes = got.report["profile"]["nodes"]
    on_cpu = {n["op"] for n in nodes if n["backend"] != plugin.name}
    assert on_cpu <= cpu_ops, on_cpu - cpu_ops
    backends = {b["name"]: b for b in got.report["profile"]["backends"]}
    runs_on_plugin = backends[plugin.name]
    assert runs_on_plugin["nodes"] == sum(n["backend"] == plugin.name for n in nodes) > 0
    assert runs_on_plugin["ms"] > 0
    if not cpu_ops:
        assert runs_on_plugin["partitions"] == 1 and backends["cpu"]["nodes"] == 0
    want = run_ort(model, feeds)
    tolerance = 5e-3 if precision == "fp16" else 1e-4
    for k, ref in want.items():
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(got.outputs[k], ref, rtol=tolerance, atol=tolerance * scale,
                                   err_msg=k)


# --- placement ---------------------------------------------------------------------------------

def test_placement_gpu_runs_the_model_stage_on_opencl(sdk_host: SdkBuild, plugin: Plugin,
                                                      warm: None, tmp_path: Path) -> None:
    """[placement.hi3559a] model = "gpu" (processor gpu, backend opencl in boards/hi3559a.yaml):
    the packed stage names backend "opencl", and the installed edgepack-run (bin/) finds the
    installed lib/libedgepack_opencl.so by itself and runs every node of the stage there."""
    name = "mobilenet_v2"
    root = write_project(tmp_path / "p", name)
    toml = root / "edgepack.toml"
    toml.write_text(toml.read_text() + '\n[placement.hi3559a]\nmobilenet-v2 = "gpu"\n')
    epk = tmp_path / "m.epk"
    packed = pack_project(root, epk, board="hi3559a")
    assert [(s["processor"], s.get("backend")) for s in packed.manifest["stages"]] == [
        ("gpu", "opencl")]
    x = np.random.default_rng(3).standard_normal(BY_NAME[name].inputs["input"]).astype(
        np.float32)
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "input.npy", x)
    env = {k: v for k, v in {**os.environ, **plugin.env}.items() if k != "EDGEPACK_BACKEND_PATH"}
    runner = sdk_host.prefix / "bin" / "edgepack-run"
    proc = subprocess.run(
        [str(runner), str(epk), "--key", str(root / "keys" / "dev1.key"), "--publisher",
         str(root / "keys" / "publisher.pub"), "--inputs", str(tmp_path / "in"), "--outputs",
         str(tmp_path / "out"), "--profile", "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    profile = json.loads((tmp_path / "r.json").read_text())["profile"]
    nodes = profile["nodes"]
    assert nodes and {n["backend"] for n in nodes} == {plugin.name}
    assert {n.get("partition") for n in nodes} == {0}
    backends = {b["name"]: b for b in profile["backends"]}
    assert backends[plugin.name]["nodes"] == len(nodes)
    assert backends[plugin.name]["partitions"] == 1 and backends[plugin.name]["ms"] > 0
    assert backends["cpu"]["nodes"] == 0
    want = run_ort(load_real_model(name), {"input": x})["logits"]
    got = np.load(tmp_path / "out" / "logits.npy")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))
