# SPDX-License-Identifier: Apache-2.0
"""The ONNX backend node tests of every op in the capability table, through lowering and the
native edgepack-graph-run (see onnx_node_cases.py for how each case runs).

The cases are generated once per onnx version into build/onnx-node-cases/ (about a minute the
first time); the run takes a few seconds per hundred cases on two workers. The per-op table of
this run is written to build/onnx-node-tests.md; docs/onnx-node-tests.md is the checked-in copy
(regenerate with the script, see its docstring).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx_node_cases import (
    REPO,
    THRESHOLD,
    CaseResult,
    generate_cases,
    pass_rate,
    pass_table,
    run_all,
)
from sdk_host import SdkBuild

from edgepack.lower.capabilities import runtime_ops


@pytest.fixture(scope="session")
def node_cases() -> Path:
    return generate_cases()


@pytest.fixture(scope="module")
def results(sdk_host: SdkBuild, node_cases: Path) -> list[CaseResult]:
    graph_run = sdk_host.build / "tools" / "graph_run" / "edgepack-graph-run"
    out = run_all(node_cases, graph_run)
    (REPO / "build" / "onnx-node-tests.md").write_text(pass_table(out), encoding="utf-8")
    return out


def test_claimed_ops_pass_the_onnx_node_tests(results: list[CaseResult]) -> None:
    native = [r for r in results if not r.foreign_dtype]
    assert len(native) > 500, "the node-test generator produced too few cases"
    failing = "\n".join(f"  {r.name}: {r.error}" for r in native if not r.passed)
    assert pass_rate(native) >= THRESHOLD, (
        f"{pass_rate(native):.1f}% of {len(native)} node cases pass (need {THRESHOLD}%); "
        f"failing:\n{failing}"
    )


def test_every_table_op_has_node_cases(results: list[CaseResult]) -> None:
    assert set(runtime_ops()) - {r.op for r in results} == set()


def test_fixed_wrong_answers_stay_fixed(results: list[CaseResult]) -> None:
    by_name = {r.name: r for r in results}
    for name in ("test_clip_min_greater_than_max", "test_convtranspose_output_shape",
                 "test_resize_downsample_scales_linear_align_corners"):
        assert by_name[name].passed, f"{name}: {by_name[name].error}"
