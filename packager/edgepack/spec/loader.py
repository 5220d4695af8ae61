# SPDX-License-Identifier: Apache-2.0
"""``load_spec``: read and validate edgepack.toml into the records of ``edgepack.spec.project``.

Every mistake is one ``SpecError`` naming the file, the line where known, and the dotted key
(``models[1].postprocess.top_k``); unknown keys come with the closest known key. docs/spec.md
documents every key.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import NoReturn

from edgepack.artifact import keys as keyfiles
from edgepack.artifact.container import MAX_NAME_LEN
from edgepack.errors import KeyFileError, SpecError
from edgepack.spec.boards import UnknownBoard, UnknownProcessor, load_board
from edgepack.spec.fields import LineIndex, SpecContext, Table, type_name
from edgepack.spec.models import check_name, parse_model, project_file
from edgepack.spec.project import (
    SPEC_FILENAME,
    KeysSpec,
    ModelSpec,
    PackageSpec,
    PipelineSpec,
    PipelineStageSpec,
    Spec,
)

TOP_KEYS = ("package", "keys", "models", "pipeline", "placement")
PACKAGE_KEYS = ("name", "version", "version_counter")
KEYS_KEYS = ("publisher", "recipients")
STAGE_KEYS = ("model", "crops_from")
# The artifact header stores the counter as an unsigned 64-bit integer.
MAX_VERSION_COUNTER = 2**64 - 1

_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def load_spec(path: Path) -> Spec:
    """Read ``path`` (a project folder or an edgepack.toml) and validate everything in it."""
    path = Path(path)
    file = path / SPEC_FILENAME if path.is_dir() else path
    if not file.is_file():
        raise SpecError(file, f"no {SPEC_FILENAME} here" if path.is_dir() else "file not found")
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(file, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start}); TOML files are UTF-8", line=line) from None
    index = LineIndex(text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        _raise_toml_error(file, exc, index)
    ctx = SpecContext(file, file.parent.resolve(), index)
    top = Table(ctx, data, "")
    top.check_keys(TOP_KEYS)
    package = _package(top.table("package"))
    key_spec = _keys(top.table("keys"))
    models = _models(top)
    pipeline = _pipeline(top.table("pipeline"), models) if top.has("pipeline") else None
    placement = _placement(top.table("placement"), models) if top.has("placement") else {}
    return Spec(path=file, root=ctx.root, package=package, keys=key_spec, models=models,
                pipeline=pipeline, placement=placement)


def _raise_toml_error(file: Path, exc: tomllib.TOMLDecodeError, index: LineIndex) -> NoReturn:
    message = str(exc)
    pos = _TOML_POS.search(message)
    line = int(pos.group(1)) if pos else None
    key = index.keys_at.get(line) if line else None
    text = _TOML_POS.sub("", message).strip()
    if pos:
        text += f" (column {pos.group(2)})"
    raise SpecError(file, f"invalid TOML: {text}", field=key, line=line) from None


def _package(t: Table) -> PackageSpec:
    t.check_keys(PACKAGE_KEYS)
    name = check_name(t, "name", "package name")
    version = t.string("version")
    if not version or any(c.isspace() or not c.isprintable() for c in version):
        t.fail("version", f"expected a version string without spaces, got {version!r}")
    for key, value in (("name", name), ("version", version)):
        if len(value.encode("utf-8")) > MAX_NAME_LEN:
            t.fail(key, f"at most {MAX_NAME_LEN} bytes (the artifact header's limit), "
                   f"got {len(value.encode('utf-8'))}")
    counter = t.integer("version_counter", minimum=0, maximum=MAX_VERSION_COUNTER)
    return PackageSpec(name=name, version=version, version_counter=counter)


def _keys(t: Table) -> KeysSpec:
    t.check_keys(KEYS_KEYS)
    publisher = project_file(t, "publisher", t.string("publisher"))
    try:
        keyfiles.load_publisher_private(publisher)
    except KeyFileError as exc:
        t.fail("publisher", exc.message)
    raw = t.require("recipients")
    if not isinstance(raw, list) or not raw or not all(isinstance(r, str) for r in raw):
        t.fail("recipients", "expected a non-empty array of key file paths, found "
               f"{type_name(raw) if not isinstance(raw, list) or raw else 'an empty array'}")
    recipients = []
    for i, value in enumerate(raw):
        rpath = project_file(t, f"recipients[{i}]", value)
        try:
            keyfiles.load_device_public(rpath)
        except KeyFileError as exc:
            t.fail(f"recipients[{i}]", exc.message)
        if rpath in recipients:
            t.fail(f"recipients[{i}]", f"{value} is listed twice")
        recipients.append(rpath)
    return KeysSpec(publisher=publisher, recipients=tuple(recipients))


def _models(top: Table) -> tuple[ModelSpec, ...]:
    tables = top.tables("models")
    if not tables:
        top.fail("models", "at least one [[models]] entry is needed")
    models: list[ModelSpec] = []
    for t in tables:
        model = parse_model(t)
        if any(m.name == model.name for m in models):
            t.fail("name", f"duplicate model name {model.name!r}")
        models.append(model)
    return tuple(models)


def _pipeline(t: Table, models: tuple[ModelSpec, ...]) -> PipelineSpec:
    t.check_keys(("stages",))
    by_name = {m.name: m for m in models}
    stages: list[PipelineStageSpec] = []
    tables = t.tables("stages")
    if not tables:
        t.fail("stages", "needs at least one stage")
    for st in tables:
        st.check_keys(STAGE_KEYS, "a pipeline stage")
        name = st.string("model")
        if name not in by_name:
            st.fail("model", f"unknown model {name!r} (models: {', '.join(by_name)})")
        if any(s.model == name for s in stages):
            st.fail("model", f"model {name!r} appears in two stages")
        crops_from = st.string("crops_from") if st.has("crops_from") else None
        if crops_from is not None:
            _check_crops_from(st, by_name[name], crops_from, stages, by_name)
        stages.append(PipelineStageSpec(model=name, crops_from=crops_from))
    return PipelineSpec(stages=tuple(stages))


def _check_crops_from(st: Table, model: ModelSpec, source: str,
                      earlier: list[PipelineStageSpec], by_name: dict[str, ModelSpec]) -> None:
    if not any(s.model == source for s in earlier):
        st.fail("crops_from", f"{source!r} is not an earlier stage of the pipeline "
                f"(earlier: {', '.join(s.model for s in earlier) or 'none'})")
    detector = by_name[source]
    if detector.postprocess is None or detector.postprocess.kind != "detection":
        st.fail("crops_from", f"model {source!r} has no detection postprocess, so it gives "
                "no boxes to crop")
    # The crop is cut from the pipeline's one source image, so both models must describe
    # the same image.
    if len(model.inputs) != 1 or model.inputs[0].preprocess is None:
        st.fail("crops_from", f"model {model.name!r} needs exactly one input with a "
                "[models.inputs.preprocess] table to run on crops")
    det_pre = [i.preprocess for i in detector.inputs if i.preprocess is not None]
    pre = model.inputs[0].preprocess
    if det_pre and (det_pre[0].source_size != pre.source_size
                    or det_pre[0].pixel_format != pre.pixel_format
                    or det_pre[0].source_size_min != pre.source_size_min
                    or det_pre[0].source_size_max != pre.source_size_max):
        st.fail("crops_from", f"model {model.name!r} and {source!r} must have the same "
                "preprocess source_size (and source_size_min/max) and pixel_format (crops "
                "come from the same image)")


def _placement(t: Table, models: tuple[ModelSpec, ...]) -> dict[str, dict[str, str]]:
    names = [m.name for m in models]
    placement: dict[str, dict[str, str]] = {}
    for board_id in t.data:
        bt = t.table(board_id)
        try:
            board = load_board(board_id, project_dir=t.ctx.root)
        except UnknownBoard as exc:
            t.fail(board_id, exc.message, hint=exc.hint)
        per_board: dict[str, str] = {}
        for model_name in bt.data:
            if model_name not in names:
                bt.fail(model_name, f"unknown model {model_name!r} (models: {', '.join(names)})")
            processor = bt.string(model_name)
            try:
                board.processor(processor)
            except UnknownProcessor as exc:
                bt.fail(model_name, exc.message)
            per_board[model_name] = processor
        placement[board_id] = per_board
    return placement
