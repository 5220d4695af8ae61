# SPDX-License-Identifier: Apache-2.0
"""The artifact manifest (docs/manifest.md): canonical bytes and schema validation."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from edgepack.errors import ArtifactInvalid

SCHEMA_ID = "edgepack.manifest/1"
SDK_ABI = 1  # bumped when the SDK's C ABI or the manifest contract changes incompatibly


@cache
def schema() -> dict[str, Any]:
    text = resources.files("edgepack").joinpath("schemas/manifest.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate(manifest: dict[str, Any]) -> None:
    """Raises jsonschema.ValidationError: a manifest we write must always validate."""
    jsonschema.validate(manifest, schema())


def dumps(manifest: dict[str, Any]) -> bytes:
    """Canonical bytes: sorted keys, no whitespace, UTF-8; same manifest, same bytes."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def loads(data: bytes) -> dict[str, Any]:
    """Parses an authenticated manifest; anything malformed is the opaque artifact error."""
    try:
        manifest = json.loads(data.decode("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA_ID:
            raise ValueError("not an edgepack manifest")
        validate(manifest)
    except (ValueError, jsonschema.ValidationError) as exc:
        raise ArtifactInvalid("manifest") from exc
    return manifest
