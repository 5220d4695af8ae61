# SPDX-License-Identifier: Apache-2.0
"""Read an ONNX model file and the external data files its tensors name.

External data (torch's exporter writes ``model.onnx.data`` beside ``model.onnx``) is resolved
relative to the model file's folder, never the working directory, and must stay inside that
folder: a location that is absolute, climbs with ``..`` or leaves through a symlink is refused,
as is a range outside the data file. Every problem is a ``ModelError`` naming the model file and,
for external data, the tensor.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from edgepack.errors import ModelError
from edgepack.model.diagnostics import one_line


@dataclass(frozen=True)
class LoadedModel:
    proto: onnx.ModelProto  # every tensor's data in memory
    sha256: str  # of the model file as read
    data_files: dict[str, str]  # external data file (relative to the model's folder) -> sha256


def _tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """Every tensor of the model, subgraphs (If/Loop bodies) and Constant attributes included."""
    found: list[onnx.TensorProto] = []

    def walk(graph: onnx.GraphProto) -> None:
        found.extend(graph.initializer)
        found.extend(s.values for s in graph.sparse_initializer)
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    found.append(attr.t)
                found.extend(attr.tensors)
                if attr.HasField("g"):
                    walk(attr.g)
                for sub in attr.graphs:
                    walk(sub)

    walk(model.graph)
    return found


def _confined(path_str: str, folder: Path, tensor: str, location: str) -> Path:
    """The data file for ``location``, checked to lie inside ``folder``."""
    where = f"{path_str}: tensor {tensor!r} stores its data in {location!r}"
    if not location:
        raise ModelError(f"{where}: the location is empty")
    for pure in (PurePosixPath(location), PureWindowsPath(location)):
        if pure.is_absolute() or pure.drive or pure.anchor:
            raise ModelError(f"{where}, an absolute path; external data must lie in the "
                             "model's folder, named relative to it")
        if ".." in pure.parts:
            raise ModelError(f"{where}, which climbs out with '..'; external data must lie "
                             "in the model's folder")
    candidate = folder / location
    real_folder = Path(os.path.realpath(folder))
    real = Path(os.path.realpath(candidate))
    if not real.is_relative_to(real_folder):
        raise ModelError(f"{where}, a link that leaves the model's folder (to {real})")
    if not real.is_file():
        raise ModelError(f"{where}, which is not a file beside the model",
                         hint="keep the .data file the exporter wrote next to the model file")
    return real


def _read_external(path_str: str, model: onnx.ModelProto, folder: Path) -> dict[str, str]:
    """Fill every externally stored tensor's ``raw_data``; returns the files' digests."""
    cache: dict[Path, bytes] = {}
    digests: dict[str, str] = {}
    for tensor in _tensors(model):
        if not uses_external_data(tensor):
            continue
        try:
            info = ExternalDataInfo(tensor)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{path_str}: tensor {tensor.name!r} has malformed external data "
                             f"fields ({one_line(exc)})") from exc
        location = str(info.location)
        data_path = _confined(path_str, folder, tensor.name, location)
        if data_path not in cache:
            try:
                cache[data_path] = data_path.read_bytes()
            except OSError as exc:
                raise ModelError(f"{path_str}: tensor {tensor.name!r}: cannot read its data "
                                 f"file {location!r} ({exc.strerror})") from exc
            digests[location] = hashlib.sha256(cache[data_path]).hexdigest()
        blob = cache[data_path]
        offset = int(info.offset or 0)
        length = len(blob) - offset if info.length is None else int(info.length)
        if offset < 0 or length < 0 or offset + length > len(blob):
            raise ModelError(f"{path_str}: tensor {tensor.name!r} reads bytes "
                             f"{offset}..{offset + length} of {location!r}, which has "
                             f"{len(blob)} bytes")
        tensor.raw_data = blob[offset:offset + length]
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
    return dict(sorted(digests.items()))


def load_model_file(path: Path) -> LoadedModel:
    """Read the model at ``path`` with its external data resolved beside it."""
    path_str = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path_str}: cannot read model file ({exc.strerror})") from exc
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelError(f"{path_str}: not an ONNX model ({one_line(exc)})") from exc
    data_files = _read_external(path_str, proto, path.parent)
    return LoadedModel(proto, hashlib.sha256(data).hexdigest(), data_files)
