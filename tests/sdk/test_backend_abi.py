# SPDX-License-Identifier: Apache-2.0
"""The backend plugin ABI 2 (sdk_templates/include/edgepack_backend.h): partitions, boundary
copies, CPU fallback, and the versioning rule, with real plugins built against three copies of
the header (sdk_templates/tests/CMakeLists.txt): the current one (2.1), the frozen 2.0 one and an
imaginary newer 2.9 one (all must load and run), and one against the frozen ABI 1 header (must be
refused with the reason)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from graph_runner import graph_run_binary, run_ort
from onnx import TensorProto, helper
from sdk_host import SdkBuild

from edgepack.lower.lowering import lower

RNG = np.random.default_rng(7)
X = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
RELU_NODES = {"a", "b", "c", "d"}


def relu_chain() -> onnx.ModelProto:
    """a = Relu(x); b = Relu(a); s = Sigmoid(b) (CPU); c = Relu(s); d = Relu(c); y = d + a.
    Partitions of the test plugin: {a, b} (input x; outputs a and b, both read outside) and
    {c, d} (input s; output d)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["ta"], name="a"),
        helper.make_node("Relu", ["ta"], ["tb"], name="b"),
        helper.make_node("Sigmoid", ["tb"], ["ts"], name="s"),
        helper.make_node("Relu", ["ts"], ["tc"], name="c"),
        helper.make_node("Relu", ["tc"], ["td"], name="d"),
        helper.make_node("Add", ["td", "ta"], ["y"], name="add"),
    ]
    shape = list(X.shape)
    graph = helper.make_graph(nodes, "relu_chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def plugin(sdk: SdkBuild, abi: str) -> Path:
    name = "edgepack_backend_test_relu" + ("" if abi == "current" else f"_{abi}")
    path = sdk.build / "tests" / f"lib{name}.so"
    assert path.is_file(), f"{path} was not built"
    return path


def run_graph(sdk: SdkBuild, tmp: Path, backend: Path,
              env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str],
                                                           dict[str, str], dict[str, object]]:
    """edgepack-graph-run of relu_chain with --backend, --placement and --profile; returns the
    process, node -> backend, and the JSON report. Checks the output against onnxruntime."""
    model = relu_chain()
    (tmp / "in").mkdir(exist_ok=True)
    (tmp / "out").mkdir(exist_ok=True)
    (tmp / "g.epdg").write_bytes(lower(model))
    np.save(tmp / "in" / "x.npy", X)
    proc = subprocess.run(
        [str(graph_run_binary(sdk.build)), str(tmp / "g.epdg"), "--inputs", str(tmp / "in"),
         "--outputs", str(tmp / "out"), "--bench", "2", "--warmup", "1", "--backend",
         str(backend), "--placement", "--profile", "--json", str(tmp / "report.json")],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    assert proc.returncode == 0, proc.stderr
    placement = dict(line.split("\t") for line in proc.stdout.splitlines() if "\t" in line)
    np.testing.assert_allclose(np.load(tmp / "out" / "y.npy"), run_ort(model, {"x": X})["y"],
                               rtol=1e-6, atol=1e-6)
    return proc, placement, json.loads((tmp / "report.json").read_text())


@pytest.mark.parametrize("abi,device", [("current", "test relu on the host CPU"),
                                        ("v2_0", ""),
                                        ("v2_9", "test relu on the host CPU")])
def test_plugins_of_older_and_newer_headers_load_and_run_partitions(
        sdk_host: SdkBuild, tmp_path: Path, abi: str, device: str) -> None:
    proc, placement, report = run_graph(sdk_host, tmp_path, plugin(sdk_host, abi),
                                        env={"EDGEPACK_TEST_RELU_TRACE": "1"})
    assert "rejected" not in proc.stderr
    assert {k for k, v in placement.items() if v == "test_relu"} == RELU_NODES
    assert {v for k, v in placement.items() if k not in RELU_NODES} == {"cpu"}
    # Two maximal partitions with their boundary tensors, prepared once each.
    major_minor = {"current": "2.1", "v2_0": "2.0", "v2_9": "2.9"}[abi]
    traces = [ln for ln in proc.stderr.splitlines() if ln.startswith("test_relu:")]
    assert traces == [
        f"test_relu: abi {major_minor} partition 0: 2 nodes, 1 inputs, 2 outputs",
        f"test_relu: abi {major_minor} partition 1: 2 nodes, 1 inputs, 1 outputs",
    ]
    profile = report["profile"]
    assert isinstance(profile, dict)
    nodes = {n["name"]: n for n in profile["nodes"]}
    assert [nodes[k].get("partition") for k in ("a", "b", "s", "c", "d", "add")] == [
        0, 0, None, 1, 1, None]
    backends = {b["name"]: b for b in profile["backends"]}
    assert backends["test_relu"]["nodes"] == 4 and backends["test_relu"]["partitions"] == 2
    assert backends["cpu"]["nodes"] == 2 and backends["cpu"]["partitions"] == 0
    # describe() exists from ABI 2.1 on: a 2.0 table is not read past its struct_size.
    assert backends["test_relu"]["device"] == device


def test_prepare_failure_falls_back_to_cpu(sdk_host: SdkBuild, tmp_path: Path) -> None:
    proc, placement, _ = run_graph(sdk_host, tmp_path, plugin(sdk_host, "current"),
                                   env={"EDGEPACK_TEST_RELU_FAIL_PREPARE": "1"})
    assert set(placement.values()) == {"cpu"}
    assert "could not prepare the partition of 2 nodes from 'a'" in proc.stderr
    assert "refused on request" in proc.stderr


def test_abi1_plugin_is_refused_with_the_reason(sdk_host: SdkBuild, tmp_path: Path) -> None:
    v1 = sdk_host.build / "tests" / "libedgepack_backend_test_v1.so"
    proc, placement, _ = run_graph(sdk_host, tmp_path, v1)
    assert set(placement.values()) == {"cpu"}
    assert "rejected: built for ABI 1 (major 1), runtime speaks ABI 2.1 (major 2)" in proc.stderr


def test_table_smaller_than_2_0_is_refused(sdk_host: SdkBuild, tmp_path: Path) -> None:
    proc, placement, _ = run_graph(sdk_host, tmp_path, plugin(sdk_host, "current"),
                                   env={"EDGEPACK_TEST_RELU_STRUCT_SIZE": "40"})
    assert set(placement.values()) == {"cpu"}
    assert "rejected: function table of 40 bytes, smaller than ABI 2.0's" in proc.stderr
