# SPDX-License-Identifier: Apache-2.0
"""The artifact's small golden reference (artifact/golden.py): float inputs round-trip exactly
through their int8 codes, small outputs are stored whole, and the summary of a large output
accepts the reference itself and a device within the tolerance, and rejects a wrong shape, a
shifted block, a wrong sampled element, a wrong extreme and a NaN."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from edgepack.artifact import golden
from edgepack.errors import ArtifactInvalid
from edgepack.model.reference import golden_inputs

Array = np.ndarray[Any, Any]
TOL = 1e-3


def _plan(dtype: str, shape: list[int]) -> dict[str, Any]:
    return {"pipeline": {"inputs": [{"name": "x", "dtype": dtype, "shape": shape}],
                         "steps": [], "outputs": {}}, "stages": []}


def _stored(entry_and_blobs: tuple[dict[str, Any], list[tuple[str, bytes]]]
            ) -> tuple[dict[str, Any], dict[str, bytes]]:
    entry, blobs = entry_and_blobs
    return entry, dict(blobs)


def test_float_input_is_stored_as_exact_int8_codes() -> None:
    x = golden_inputs(_plan("float32", [1, 3, 64, 64]), seed=0)["x"]
    assert x.dtype == np.float32 and 0.9 < float(x.std()) < 1.1  # still standard normal
    entry, sections = _stored(golden.input_sections("x", x))
    assert entry["scale"] == 2.0 ** -5
    assert len(sections["golden/input/x"]) < x.nbytes / 4 + 200  # int8 + .npy header
    decoded = golden.read_input(entry, sections)
    assert decoded.dtype == np.float32 and np.array_equal(decoded, x)
    assert np.load(io.BytesIO(golden.input_npy(entry, sections))).tobytes() == x.tobytes()


def test_other_inputs_are_stored_as_they_are() -> None:
    img = golden_inputs(_plan("uint8", [4, 5, 3]), seed=1)["x"]
    entry, sections = _stored(golden.input_sections("img", img))
    assert "scale" not in entry
    assert golden.input_npy(entry, sections) == sections["golden/input/img"]
    assert np.array_equal(golden.read_input(entry, sections), img)


def test_off_grid_float_input_is_refused() -> None:
    with pytest.raises(ValueError, match="grid"):
        golden.input_sections("x", np.array([0.1], np.float32))


def test_tampered_section_is_the_artifact_error() -> None:
    entry, sections = _stored(golden.input_sections("x", np.zeros(4, np.float32)))
    sections["golden/input/x"] = sections["golden/input/x"][:-1] + b"\x01"
    with pytest.raises(ArtifactInvalid):
        golden.read_input(entry, sections)


def test_small_output_is_stored_whole() -> None:
    logits = np.random.default_rng(0).standard_normal((1, 1000)).astype(np.float32)
    entry, sections = _stored(golden.output_sections("logits", logits))
    assert "summary" not in entry and list(sections) == ["golden/output/logits"]
    ref = golden.read_output(entry, sections)
    assert ref.full is not None and np.array_equal(ref.full, logits)
    scale = float(np.abs(logits).max())  # the tolerance is relative to it (above 1 here)
    assert ref.compare("logits", logits + 5e-4, TOL, 0.999)["passed"]
    assert ref.compare("logits", logits + 0.9 * TOL * scale, TOL, 0.999)["passed"]
    assert not ref.compare("logits", logits + 1.1 * TOL * scale, TOL, 0.999)["passed"]


@pytest.fixture(scope="module")
def head() -> tuple[Array, golden.Reference, int]:
    """A YOLO-sized head [1, 84, 2100] (706 KB as float32) and its summary."""
    rng = np.random.default_rng(3)
    value = (rng.standard_normal((1, 84, 2100)) * 40).astype(np.float32)
    entry, sections = _stored(golden.output_sections("output0", value))
    stored = sum(len(b) for b in sections.values())
    assert set(sections) == {"golden/output/output0", "golden/index/output0",
                             "golden/means/output0"}
    assert entry["summary"]["shape"] == [1, 84, 2100]
    return value, golden.read_output(entry, sections), stored


def test_summary_is_a_tenth_of_the_output(head: tuple[Array, golden.Reference, int]) -> None:
    value, _, stored = head
    assert stored < value.nbytes / 5, stored


def test_summary_accepts_the_reference_and_a_device_within_tolerance(
        head: tuple[Array, golden.Reference, int]) -> None:
    value, ref, _ = head
    exact = ref.compare("output0", value, TOL, 0.999)
    assert exact["passed"] and exact["max_abs"] == 0.0 and exact["cosine"] > 0.999999
    noise = np.random.default_rng(9).uniform(-0.9 * TOL, 0.9 * TOL, value.shape)
    assert ref.compare("output0", (value + noise).astype(np.float32), TOL, 0.999)["passed"]
    # The tolerance is relative to the output's largest |value| (the head's is ~190), which the
    # summary always samples.
    scale = float(np.abs(value).max())
    assert exact["scale"] == pytest.approx(scale)
    noise *= 0.9 * scale
    assert ref.compare("output0", (value + noise).astype(np.float32), TOL, 0.999)["passed"]


def test_summary_rejects_wrong_results(head: tuple[Array, golden.Reference, int]) -> None:
    value, ref, _ = head
    assert ref.index is not None

    def fails(device: Array) -> dict[str, Any]:
        result = ref.compare("output0", device, TOL, 0.999)
        assert not result["passed"], result
        return result

    assert "shape" in fails(value.reshape(1, 2100, 84))["reason"]
    # One block of 64 elements none of which is sampled, all off by 2x the tolerance (relative
    # to the output's largest |value|).
    off = 2 * TOL * float(np.abs(value).max())
    flat = value.ravel()
    sampled = np.zeros(flat.size, bool)
    sampled[ref.index] = True
    block = next(b for b in range(0, flat.size, 64) if not sampled[b:b + 64].any())
    shifted = flat.copy()
    shifted[block:block + 64] += off
    assert fails(shifted.reshape(value.shape))["max_abs"] == pytest.approx(off, rel=1e-3)
    # One wrong sampled element.
    wrong = flat.copy()
    wrong[ref.index[100]] += 1.0
    fails(wrong.reshape(value.shape))
    # The largest magnitude is always sampled.
    wrong = flat.copy()
    wrong[np.argmax(np.abs(flat))] *= 0.5
    fails(wrong.reshape(value.shape))
    # A NaN anywhere shows in its block mean.
    nan = flat.copy()
    nan[block + 3] = np.nan
    assert fails(nan.reshape(value.shape))["max_abs"] == 1e300


def test_damaged_summary_is_the_artifact_error() -> None:
    value = np.ones((200, 200), np.float32)
    entry, sections = _stored(golden.output_sections("y", value))
    entry["summary"]["shape"] = [10, 10]  # positions beyond the tensor
    with pytest.raises(ArtifactInvalid):
        golden.read_output(entry, sections)
