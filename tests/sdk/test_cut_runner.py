# SPDX-License-Identifier: Apache-2.0
"""A cut export through the host SDK: the SSD-like graph (tests/ssd_like.py) cut at its head,
as one tensor (``outputs = ["head"]``) and as two (``outputs = ["boxes", "scores"]`` with
``scores_output``), packed and run whole by edgepack-run against the host reference pipeline.
Tolerance: boxes atol 1e-3 px, scores atol 1e-5, classes equal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sdk_host import SdkBuild, run

from edgepack.artifact.pack import pack_project
from edgepack.model.reference import run_pipeline
from edgepack.model.stages import build_stage_plan
from edgepack.spec.loader import load_spec
from ssd_like import POST, SIZE, project

CUTS = {
    "one-tensor": 'outputs = ["head"]\n' + POST,
    "two-tensor": 'outputs = ["boxes", "scores"]\n' + POST.replace(
        'output = "head"', 'output = "boxes"\n  scores_output = "scores"'),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_cut_export_runs_through_the_runner(sdk_host: SdkBuild, tmp_path: Path,
                                            cut: str) -> None:
    root = project(tmp_path / "project", CUTS[cut])
    epk = tmp_path / "ssd.epk"
    pack_project(root, epk)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "images.npy", x)
    run([sdk_host.runner, epk, "--key", root / "keys" / "dev1.key", "--publisher",
         root / "keys" / "publisher.pub", "--inputs", tmp_path / "in", "--outputs",
         tmp_path / "out"])
    want = run_pipeline(build_stage_plan(load_spec(root)), {"images": x})
    assert len(want["scores"]) >= 3
    for name, ref in want.items():
        got = np.load(tmp_path / "out" / f"{name}.npy")
        assert got.shape == ref.shape and got.dtype == ref.dtype, name
        if name == "classes":
            np.testing.assert_array_equal(got, ref)
        else:
            atol = 1e-3 if name == "boxes" else 1e-5
            np.testing.assert_allclose(got, ref, rtol=0, atol=atol, err_msg=name)
