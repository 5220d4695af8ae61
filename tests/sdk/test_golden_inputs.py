# SPDX-License-Identifier: Apache-2.0
"""``edgepack-run --inputs @golden`` (C API ``ep_session_golden_input``): the runner feeds the
golden inputs stored inside the artifact, so ``edgepack bench`` sends them once (inside the
artifact) instead of a second time as .npy files beside it.

Checked: the outputs equal, bit for bit, those of the same run fed the same inputs from .npy
files, and they match the golden outputs; a stage without golden inputs is one error line
naming it (exit 13, not found)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sdk_host import SdkBuild, run

from edgepack.artifact import container as artifact
from edgepack.artifact import keys

Opened = tuple[Path, tuple[str, ...], artifact.OpenedArtifact]  # artifact, key args, contents


@pytest.fixture(scope="module")
def opened(packed_demo: tuple[Path, Path]) -> Opened:
    epk, project = packed_demo
    k = project / "keys"
    o = artifact.open_artifact(epk.read_bytes(), keys.load_device_private(k / "dev1.key"),
                               keys.load_publisher_public(k / "publisher.pub"))
    return epk, ("--key", str(k / "dev1.key"), "--publisher", str(k / "publisher.pub")), o


def _npy(data: bytes) -> np.ndarray:
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False))


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.load(p) for p in sorted(folder.glob("*.npy"))}


def test_golden_inputs_from_the_artifact(sdk_host: SdkBuild, opened: Opened,
                                         tmp_path: Path) -> None:
    epk, key_args, o = opened
    golden = json.loads(o.manifest_bytes)["golden"]
    assert golden["inputs"], "the example must carry golden inputs"
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    for name, entry in golden["inputs"].items():
        (in_dir / f"{name}.npy").write_bytes(o.sections[entry["section"]])
    run([sdk_host.runner, epk, *key_args, "--inputs", "@golden", "--outputs", tmp_path / "a"])
    run([sdk_host.runner, epk, *key_args, "--inputs", in_dir, "--outputs", tmp_path / "b"])
    from_artifact, from_files = _outputs(tmp_path / "a"), _outputs(tmp_path / "b")
    assert set(from_artifact) == set(golden["outputs"]) == set(from_files)
    for name, got in from_artifact.items():
        np.testing.assert_array_equal(got, from_files[name], err_msg=name)
        want = _npy(o.sections[golden["outputs"][name]["section"]])
        assert got.dtype == want.dtype and got.shape == want.shape, name
        if np.issubdtype(want.dtype, np.floating):
            atol = 1e-2 if name.endswith("boxes") else \
                1e-4 * max(1.0, float(np.abs(want).max(initial=0.0)))
            np.testing.assert_allclose(got, want, rtol=0, atol=atol, err_msg=name)


def test_stage_without_golden_inputs_is_one_error(sdk_host: SdkBuild, opened: Opened,
                                                  tmp_path: Path) -> None:
    epk, key_args, o = opened
    manifest = json.loads(o.manifest_bytes)
    stage = manifest["stages"][0]["name"]
    assert stage not in manifest["golden"].get("stages", {})
    proc = subprocess.run([str(sdk_host.runner), str(epk), *key_args, "--stage", stage,
                           "--inputs", "@golden"], capture_output=True, text=True, check=False)
    assert proc.returncode == 13, proc.stderr  # 10 + EP_NOT_FOUND
    assert proc.stderr == (f"edgepack-run: error: --inputs @golden: the artifact has no golden "
                           f"inputs for stage '{stage}'\n")
