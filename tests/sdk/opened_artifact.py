# SPDX-License-Identifier: Apache-2.0
"""A packed artifact opened on the host the way the device opens it: the file, the key arguments
edgepack-run takes, the manifest, the decrypted sections and the golden inputs (decoded as the
C API decodes them). The preamble of the SDK tests that run the packed example."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepack.artifact import container as artifact
from edgepack.artifact import keys
from edgepack.artifact.golden import read_input


@dataclass(frozen=True)
class OpenedArtifact:
    epk: Path
    key: Path  # the device key it was opened with (PEM)
    publisher: Path  # the publisher's public key (PEM)
    manifest: dict[str, Any]
    sections: dict[str, bytes]

    @property
    def key_args(self) -> tuple[str, ...]:
        """edgepack-run's --key and --publisher."""
        return ("--key", str(self.key), "--publisher", str(self.publisher))

    def npy(self, section: str) -> np.ndarray:
        """A section that holds a .npy file."""
        return np.asarray(np.load(io.BytesIO(self.sections[section]), allow_pickle=False))

    def golden_inputs(self) -> dict[str, np.ndarray]:
        """The pipeline's golden inputs by name, decoded (int8 codes with a scale come back as
        float32)."""
        return {name: read_input(entry, self.sections)
                for name, entry in self.manifest["golden"]["inputs"].items()}

    def write_golden_inputs(self, folder: Path) -> Path:
        """The golden inputs as <name>.npy in `folder` (edgepack-run --inputs); returns it."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, value in self.golden_inputs().items():
            np.save(folder / f"{name}.npy", value)
        return folder


def open_artifact(epk: Path, key: Path, publisher: Path) -> OpenedArtifact:
    opened = artifact.open_artifact(epk.read_bytes(), keys.load_device_private(key),
                                    keys.load_publisher_public(publisher))
    return OpenedArtifact(epk, key, publisher, json.loads(opened.manifest_bytes),
                          dict(opened.sections))


def open_demo(packed_demo: tuple[Path, Path], device: str = "dev1") -> OpenedArtifact:
    """The packed example (conftest's packed_demo) opened with keys/<device>.key."""
    epk, project = packed_demo
    k = project / "keys"
    return open_artifact(epk, k / f"{device}.key", k / "publisher.pub")
