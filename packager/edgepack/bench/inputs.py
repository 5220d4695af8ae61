# SPDX-License-Identifier: Apache-2.0
"""``edgepack bench --input``: the pipeline inputs the timed runs use instead of the seeded
golden input.

- ``FILE.npy``: the one pipeline input (dtype and shape exactly as the manifest declares);
- ``DIR``: ``<input name>.npy`` for every pipeline input;
- an image file (PNG, JPEG, BMP, ... through Pillow): a pipeline whose input is the camera
  image of a ``[models.inputs.preprocess]`` model. It is converted to the declared pixel format
  (rgb, bgr or gray) and, when its size differs, resized (bilinear) to the declared
  ``source_size`` (kept as it is when the input declares ``source_size_min`` / ``_max`` and
  it is within them, like a ``.npy`` of such a size); the board then runs the project's own
  preprocessing on it.

Every mistake is one ``UsageError`` naming ``--input`` and the file.

With ``--project DIR`` (the project the artifact was packed from) the host reference runs on
the same input (``reference_outputs``), and the accuracy check covers the board's outputs for
it as well as for the golden input.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.errors import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm"}


@dataclass(frozen=True)
class BenchInputs:
    """Pipeline inputs by name, as ``.npy`` bytes, and where they came from (for the report)."""

    arrays: dict[str, bytes]
    source: str  # the file or folder name given to --input
    kind: str  # "npy" | "folder" | "image"
    sha256: str  # over the inputs' .npy bytes, in input-name order

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "sha256": self.sha256}


def _fail(path: Path, why: str) -> UsageError:
    return UsageError(f"--input {path}: {why}")


def _pipeline_inputs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return list(manifest.get("pipeline", {}).get("inputs", []))


def _shape(desc: dict[str, Any]) -> list[int]:
    return [int(d) for d in desc["shape"]]


def _within_bounds(desc: dict[str, Any], height: int, width: int) -> bool:
    """Whether a frame of ``height`` x ``width`` fits an input with ``size_min`` / ``size_max``
    (an image input whose size the app chooses per run)."""
    low, high = desc.get("size_min"), desc.get("size_max")
    return bool(low and high and low[0] <= height <= high[0] and low[1] <= width <= high[1])


def _check(path: Path, desc: dict[str, Any], array: np.ndarray[Any, Any]) -> None:
    want_dtype, want_shape = str(desc["dtype"]), _shape(desc)
    shape = list(array.shape)
    if str(array.dtype) == want_dtype and len(shape) == len(want_shape) >= 2 and \
            shape[2:] == want_shape[2:] and _within_bounds(desc, shape[0], shape[1]):
        return
    if str(array.dtype) != want_dtype or shape != want_shape:
        bounds = (f" (height {desc['size_min'][0]}..{desc['size_max'][0]}, width "
                  f"{desc['size_min'][1]}..{desc['size_max'][1]})" if "size_max" in desc else "")
        raise _fail(path, f"pipeline input {desc['name']!r} is {want_dtype} {want_shape}"
                    f"{bounds}, the file holds {array.dtype} {shape}")


def _load_npy(path: Path) -> np.ndarray[Any, Any]:
    try:
        with path.open("rb") as f:
            array = np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise _fail(path, f"not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise _fail(path, "not a single array")
    return array


def _npy_bytes(array: np.ndarray[Any, Any]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _image_format(manifest: dict[str, Any]) -> str | None:
    """The pixel format of the pipeline's camera image, or None when no model preprocesses."""
    for model in manifest.get("models", []):
        pre = model.get("preprocess")
        if isinstance(pre, dict):
            return str(pre.get("pixel_format", "rgb"))
    return None


def _load_image(path: Path, desc: dict[str, Any], pixel_format: str,
                log: Callable[[str], None]) -> np.ndarray[Any, Any]:
    from PIL import Image, UnidentifiedImageError

    h, w = _shape(desc)[:2]
    try:
        with Image.open(path) as img:
            img.load()
            converted = img.convert("L" if pixel_format == "gray" else "RGB")
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise _fail(path, f"not a readable image ({exc})") from None
    if converted.size != (w, h) and not _within_bounds(desc, converted.size[1],
                                                       converted.size[0]):
        log(f"--input {path.name}: {converted.size[0]}x{converted.size[1]} resized to the "
            f"declared source_size {w}x{h}")
        converted = converted.resize((w, h), Image.Resampling.BILINEAR)
    array = np.asarray(converted, dtype=np.uint8)
    if pixel_format == "gray":
        array = array[:, :, None]
    elif pixel_format == "bgr":
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)


def load_inputs(path: Path, manifest: dict[str, Any],
                log: Callable[[str], None] = lambda _m: None) -> BenchInputs:
    """Read ``--input PATH`` for the artifact's pipeline (``manifest``)."""
    descs = _pipeline_inputs(manifest)
    names = ", ".join(d["name"] for d in descs)
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    if path.is_dir():
        kind = "folder"
        for desc in descs:
            file = path / f"{desc['name']}.npy"
            if not file.is_file():
                raise _fail(path, f"no {file.name} in the folder (pipeline inputs: {names})")
            arrays[desc["name"]] = _load_npy(file)
            _check(file, desc, arrays[desc["name"]])
    elif path.suffix.lower() == ".npy" or path.suffix.lower() in IMAGE_SUFFIXES:
        if len(descs) != 1:
            raise _fail(path, f"the pipeline has {len(descs)} inputs ({names}): give a folder "
                        "holding <input name>.npy for each")
        desc = descs[0]
        if path.suffix.lower() == ".npy":
            kind = "npy"
            arrays[desc["name"]] = _load_npy(path)
        else:
            kind = "image"
            pixel_format = _image_format(manifest)
            shape = _shape(desc)
            if (pixel_format is None or desc["dtype"] != "uint8" or len(shape) != 3
                    or shape[2] not in (1, 3)):
                raise _fail(path, f"pipeline input {desc['name']!r} is {desc['dtype']} {shape},"
                            " not a camera image (no [models.inputs.preprocess] in the "
                            "project): give a .npy file")
            arrays[desc["name"]] = _load_image(path, desc, pixel_format, log)
        _check(path, desc, arrays[desc["name"]])
    elif not path.exists():
        raise _fail(path, "no such file or folder")
    else:
        raise _fail(path, "give a .npy file, an image file ("
                    + ", ".join(sorted(IMAGE_SUFFIXES)) + ") or a folder of <input name>.npy")
    encoded = {name: _npy_bytes(a) for name, a in arrays.items()}
    digest = hashlib.sha256()
    for name in sorted(encoded):
        digest.update(encoded[name])
    return BenchInputs(encoded, path.name, kind, digest.hexdigest())


def reference_outputs(project: Path, manifest: dict[str, Any], board: str,
                      inputs: BenchInputs) -> dict[str, np.ndarray[Any, Any]]:
    """The host reference (onnxruntime on the project's stage graphs) for ``inputs``."""
    from edgepack.model.reference import run_pipeline
    from edgepack.model.stages import build_stage_plan
    from edgepack.spec.loader import load_spec

    spec = load_spec(project)
    packed = (manifest.get("package") or {}).get("name")
    if packed is not None and spec.package.name != packed:
        raise UsageError(f"--project {project}: package {spec.package.name!r}, but the "
                         f"artifact holds {packed!r}")
    plan = build_stage_plan(spec, spec.placement.get(board, {}))
    return run_pipeline(plan, {n: _array_of(b) for n, b in inputs.arrays.items()})


def _array_of(data: bytes) -> np.ndarray[Any, Any]:
    array: np.ndarray[Any, Any] = np.load(io.BytesIO(data), allow_pickle=False)
    return array
