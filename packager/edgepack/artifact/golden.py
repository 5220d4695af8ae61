# SPDX-License-Identifier: Apache-2.0
"""The golden reference inside an artifact, kept small (docs/manifest.md, ``golden``).

A float32 golden input is stored as int8 codes: its values are drawn on the grid
``code x INPUT_SCALE`` (``reference.golden_inputs``), so the codes hold it exactly and the device
decodes it exactly (``value = float(code) * scale``): a quarter of the bytes, nothing lost.
Other inputs (uint8 images, integers) are stored as they are.

A golden output of at most ``FULL_OUTPUT_BYTES`` is stored whole. A larger one (a YOLO head is
700 KB, its seg prototypes 800 KB) is stored as a summary the accuracy check can still use:
- ``SAMPLES`` of its elements at full precision, at seeded random positions plus the positions
  of its ``EXTREMES`` largest magnitudes (the confident boxes, the peaks);
- the float64 mean of every block of ``BLOCK`` consecutive elements, which covers every element.
The check (``Reference.compare``) computes max |device - reference| over the sampled elements
and over the block means, and the cosine over the sampled elements. Both maxima are lower
bounds of the whole tensor's max-abs error, so a device that passes the full check passes
this one; what the summary can miss is an error confined to a few unsampled elements that
leaves its block mean within the tolerance.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepack.errors import ArtifactInvalid

Array = np.ndarray[Any, Any]

INPUT_SCALE = 2.0 ** -5  # float32 golden inputs: int8 code x 1/32, in [-4, 3.97]
FULL_OUTPUT_BYTES = 64 * 1024
SAMPLES = 8192
EXTREMES = 256
BLOCK = 64
SAMPLE_SEED = 0


def npy_bytes(array: Array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _npy(data: bytes) -> Array:
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False))


def _section(name: str, data: bytes) -> tuple[dict[str, Any], tuple[str, bytes]]:
    return {"section": name, "sha256": hashlib.sha256(data).hexdigest()}, (name, data)


def on_input_grid(values: Array) -> Array:
    """Float values moved onto the golden input grid (what ``golden_inputs`` draws)."""
    codes = np.clip(np.rint(np.asarray(values, np.float64) / INPUT_SCALE), -128, 127)
    return (codes * INPUT_SCALE + 0.0).astype(np.float32)  # + 0.0: no -0.0, as decoded


def input_sections(name: str, value: Array) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """Manifest entry and sections of the golden input ``name``."""
    section = f"golden/input/{name}"
    if value.dtype != np.float32:
        entry, blob = _section(section, npy_bytes(value))
        return entry, [blob]
    codes = value.astype(np.float64) / INPUT_SCALE
    if not np.array_equal(codes, np.clip(np.rint(codes), -128, 127)):
        raise ValueError(f"golden input {name!r} is not on the int8 x {INPUT_SCALE} grid")
    entry, blob = _section(section, npy_bytes(codes.astype(np.int8)))
    entry["scale"] = INPUT_SCALE
    return entry, [blob]


def read_input(entry: Mapping[str, Any], sections: Mapping[str, bytes]) -> Array:
    """The golden input an entry describes, decoded (float32 for a scaled entry)."""
    stored = _npy(_checked(entry, sections))
    if "scale" not in entry:
        return stored
    if stored.dtype != np.int8:
        raise ArtifactInvalid(f"golden input {entry['section']}: scaled but not int8")
    return (stored.astype(np.float32) * np.float32(entry["scale"])).astype(np.float32)


def input_npy(entry: Mapping[str, Any], sections: Mapping[str, bytes]) -> bytes:
    """The .npy bytes ``edgepack-run --inputs DIR`` reads for this golden input."""
    return npy_bytes(read_input(entry, sections)) if "scale" in entry else _checked(entry,
                                                                                    sections)


def output_sections(name: str, value: Array) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """Manifest entry and sections of the golden output ``name``: whole when small or not
    float, else the summary (sampled values, their positions, block means)."""
    section = f"golden/output/{name}"
    if value.nbytes <= FULL_OUTPUT_BYTES or value.dtype != np.float32:
        entry, blob = _section(section, npy_bytes(value))
        return entry, [blob]
    flat = value.ravel()
    index = sample_positions(flat)
    entry, values_blob = _section(section, npy_bytes(flat[index]))
    index_entry, index_blob = _section(f"golden/index/{name}", npy_bytes(index))
    means_entry, means_blob = _section(f"golden/means/{name}", npy_bytes(block_means(flat)))
    entry["summary"] = {"shape": [int(d) for d in value.shape], "block": BLOCK,
                        "index": index_entry, "means": means_entry}
    return entry, [values_blob, index_blob, means_blob]


def sample_positions(flat: Array) -> Array:
    """Sorted int32 positions: ``SAMPLES`` seeded random ones and the ``EXTREMES`` largest
    magnitudes (NaN counts as largest)."""
    rng = np.random.default_rng(SAMPLE_SEED)
    picked = rng.choice(flat.size, size=min(SAMPLES, flat.size), replace=False)
    magnitude = np.nan_to_num(np.abs(flat.astype(np.float64)), nan=np.inf)
    top = np.argpartition(-magnitude, min(EXTREMES, flat.size) - 1)[:EXTREMES]
    return np.unique(np.concatenate([picked, top])).astype(np.int32)


def block_means(flat: Array, block: int = BLOCK) -> Array:
    """float64 mean of each run of ``block`` consecutive elements (the last may be shorter)."""
    starts = np.arange(0, flat.size, block)
    sums = np.add.reduceat(flat.astype(np.float64), starts)
    counts = np.diff(np.append(starts, flat.size))
    result: Array = sums / counts
    return result


def _checked(entry: Mapping[str, Any], sections: Mapping[str, bytes]) -> bytes:
    data = sections.get(entry["section"])
    if data is None or hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ArtifactInvalid(f"golden section {entry['section']}")
    return data


@dataclass(frozen=True)
class Reference:
    """One golden output: ``full`` when stored whole, else the summary."""

    shape: tuple[int, ...]
    full: Array | None = None
    index: Array | None = None
    values: Array | None = None
    means: Array | None = None
    block: int = BLOCK

    def compare(self, name: str, device: Array, tolerance: float,
                min_cosine: float) -> dict[str, Any]:
        """The bench's accuracy entry (name, shape, max_abs, cosine, passed[, reason])."""
        from edgepack.bench.report import compare_output, output_scale

        if self.full is not None:
            return compare_output(name, device, self.full, tolerance, min_cosine)
        assert self.index is not None and self.values is not None and self.means is not None
        entry: dict[str, Any] = {"name": name, "shape": list(self.shape)}
        if tuple(device.shape) != self.shape:
            entry.update(max_abs=1e300, cosine=0.0, passed=False,
                         reason=f"shape {list(device.shape)} != reference {list(self.shape)}")
            return entry
        flat = device.ravel()
        got = flat[self.index].astype(np.float64)
        want = self.values.astype(np.float64)
        max_abs = max(_max_abs(got, want), _max_abs(block_means(flat, self.block), self.means))
        na, nb = float(np.linalg.norm(got)), float(np.linalg.norm(want))
        cosine = float(np.dot(got, want) / (na * nb)) if na > 0 and nb > 0 else float(na == nb)
        if not np.isfinite(cosine):
            cosine = 0.0
        scale = output_scale(want, self.means)
        entry.update(max_abs=min(max_abs, 1e300), cosine=cosine, scale=scale,
                     passed=bool(max_abs <= tolerance * scale and cosine >= min_cosine))
        if not entry["passed"]:
            entry["reason"] = (f"summary check: {self.index.size} sampled elements and "
                               f"{self.means.size} block means of {self.block}")
        return entry


def _max_abs(a: Array, b: Array) -> float:
    """max |a - b|; equal NaN positions count as 0, a NaN against a number as infinity."""
    if not a.size:
        return 0.0
    diff = np.abs(a - b)
    both = np.isnan(a) & np.isnan(b)
    diff[both] = 0.0
    diff[np.isnan(diff)] = np.inf
    return float(diff.max())


def read_output(entry: Mapping[str, Any], sections: Mapping[str, bytes]) -> Reference:
    """The golden output an entry describes."""
    stored = _npy(_checked(entry, sections))
    summary = entry.get("summary")
    if summary is None:
        return Reference(shape=tuple(int(d) for d in stored.shape), full=stored)
    index = _npy(_checked(summary["index"], sections))
    means = _npy(_checked(summary["means"], sections))
    shape = tuple(int(d) for d in summary["shape"])
    size = int(np.prod(shape))
    block = int(summary["block"])
    if (index.shape != stored.shape or index.ndim != 1 or block < 1
            or (index.size and (index.min() < 0 or index.max() >= size))
            or means.shape != (-(-size // block),)):
        raise ArtifactInvalid(f"golden summary of {entry['section']}")
    return Reference(shape=shape, index=index.astype(np.int64), values=stored, means=means,
                     block=block)
