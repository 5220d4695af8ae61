# SPDX-License-Identifier: Apache-2.0
"""``edgepack-run --inputs @golden`` (C API ``ep_session_golden_input``): the runner feeds the
golden inputs stored inside the artifact, so ``edgepack bench`` sends them once (inside the
artifact) instead of a second time as .npy files beside it.

Checked: a float input stored as int8 codes with a scale comes back decoded; the outputs equal,
bit for bit, those of the same run fed the same inputs from .npy files, and they match the
golden outputs; a stage without golden inputs is one error line
naming it (exit 13, not found)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from opened_artifact import OpenedArtifact, open_artifact, open_demo
from sdk_host import SdkBuild, run

from edgepack.artifact.golden import read_output
from edgepack.testing import tiny_project


@pytest.fixture(scope="module")
def opened(packed_demo: tuple[Path, Path]) -> OpenedArtifact:
    """The example: its golden image is uint8, stored as it is."""
    return open_demo(packed_demo)


@pytest.fixture(scope="module")
def opened_float(tmp_path_factory: pytest.TempPathFactory) -> OpenedArtifact:
    """The tiny classifier: its golden input is float32, stored as int8 codes with a scale."""
    tiny = tiny_project(tmp_path_factory.mktemp("tiny"))
    return open_artifact(tiny.pack(), tiny.key, tiny.publisher)


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.load(p) for p in sorted(folder.glob("*.npy"))}


@pytest.mark.parametrize("which", ["opened", "opened_float"])
def test_golden_inputs_from_the_artifact(sdk_host: SdkBuild, which: str,
                                         request: pytest.FixtureRequest, tmp_path: Path) -> None:
    o: OpenedArtifact = request.getfixturevalue(which)
    epk, key_args = o.epk, o.key_args
    golden = o.manifest["golden"]
    assert golden["inputs"], "the example must carry golden inputs"
    # A float input stored as int8 codes with a scale (manifest.md) comes back decoded from the
    # C API, exactly as the host reference ran it.
    assert any("scale" in e for e in golden["inputs"].values()) == (which == "opened_float")
    in_dir = o.write_golden_inputs(tmp_path / "in")
    run([sdk_host.runner, epk, *key_args, "--inputs", "@golden", "--outputs", tmp_path / "a"])
    run([sdk_host.runner, epk, *key_args, "--inputs", in_dir, "--outputs", tmp_path / "b"])
    from_artifact, from_files = _outputs(tmp_path / "a"), _outputs(tmp_path / "b")
    assert set(from_artifact) == set(golden["outputs"]) == set(from_files)
    for name, got in from_artifact.items():
        np.testing.assert_array_equal(got, from_files[name], err_msg=name)
        check = read_output(golden["outputs"][name], o.sections).compare(
            name, got, 1e-2 if name.endswith("boxes") else 1e-3, 0.999)
        assert check["passed"], check


def test_stage_without_golden_inputs_is_one_error(sdk_host: SdkBuild, opened: OpenedArtifact,
                                                  tmp_path: Path) -> None:
    epk, key_args, manifest = opened.epk, opened.key_args, opened.manifest
    stage = manifest["stages"][0]["name"]
    assert stage not in manifest["golden"].get("stages", {})
    proc = subprocess.run([str(sdk_host.runner), str(epk), *key_args, "--stage", stage,
                           "--inputs", "@golden"], capture_output=True, text=True, check=False)
    assert proc.returncode == 13, proc.stderr  # 10 + EP_NOT_FOUND
    assert proc.stderr == (f"edgepack-run: error: --inputs @golden: the artifact has no golden "
                           f"inputs for stage '{stage}'\n")
