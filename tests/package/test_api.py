# SPDX-License-Identifier: Apache-2.0
"""edgepack.api: the CLI's operations as functions with typed results (docs/python-api.md).

Bench and build through the API run in test_pytest_plugin.py and tests/farm (the plugin and
the labgrid target call api.bench); here: the fast paths and the errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepack import api
from edgepack.artifact import keys
from edgepack.errors import SpecError, UsageError


def _project(root: Path) -> Path:
    w = numpy_helper.from_array(
        np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("Gemm", ["flat", "w"], ["logits"])], "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (root / "models").mkdir(parents=True)
    onnx.save(model, str(root / "models" / "tiny.onnx"))
    keys.generate_publisher_key(root / "keys" / "publisher.key")
    keys.generate_device_key(root / "keys" / "board.key")
    (root / "edgepack.toml").write_text(
        '[package]\nname = "tiny"\nversion = "0.1.0"\nversion_counter = 1\n'
        '[keys]\npublisher = "keys/publisher.key"\nrecipients = ["keys/board.pub"]\n'
        '[[models]]\nname = "classifier"\npath = "models/tiny.onnx"\n'
        '[pipeline]\nstages = [ { model = "classifier" } ]\n')
    return root


def test_boards_are_typed_records() -> None:
    boards = {b.id: b for b in api.boards()}
    assert {"host", "hi3559a", "rpi4"} <= set(boards)
    assert boards["rpi4"].arch == "aarch64"


def test_pack_returns_the_result(tmp_path: Path) -> None:
    project = _project(tmp_path / "tiny")
    packed = api.pack(str(project), tmp_path / "out" / "tiny.epk", board="host")
    assert isinstance(packed, api.PackResult)
    assert packed.path.is_file() and packed.path.stat().st_size == packed.header.file_len
    summary = packed.summary()
    assert (summary["package"], summary["board"]) == ("tiny", "host")
    assert [s["name"] for s in summary["stages"]] == ["classifier"]


def test_pack_errors_are_edgepack_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"edgepack\.toml"):
        api.pack(tmp_path, tmp_path / "x.epk")


@pytest.mark.parametrize(("kw", "flag"), [({"iterations": 0}, "--iterations"),
                                          ({"warmup": -1}, "--warmup")])
def test_bench_refuses_bad_counts_before_reaching_a_board(
        tmp_path: Path, kw: dict[str, int], flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        api.bench(tmp_path / "x.epk", board="host", target="virtual:host",
                  key=tmp_path / "k", publisher=tmp_path / "p", **kw)


def test_compare_refuses_an_invalid_report(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="base report"):
        api.compare_reports({"schema": "edgepack.report/2"}, {"schema": "edgepack.report/2"})


def test_device_up_and_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEPACK_STATE", str(tmp_path / "state"))
    board = api.device_up("host")
    try:
        assert isinstance(board, api.VirtualBoard) and board.board == "host"
        assert board.target.startswith(f"ssh://{board.user}@127.0.0.1:{board.port}")
        assert api.device_up("virtual:host").pids == board.pids  # running: reused
    finally:
        assert api.device_down("host") == ["host"]
    assert api.device_down() == []
