# SPDX-License-Identifier: Apache-2.0
"""Finding the external programs edgepack runs (cmake, conan, labgrid-client, ...).

The copy installed beside this Python (the virtual environment pyproject pins) wins over the
one on PATH, so a project's pinned version is the one used."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from edgepack.errors import ToolchainError


def find_program(name: str) -> str | None:
    """``name`` from this Python's bin folder, else from PATH; None when neither has it."""
    local = Path(sys.executable).parent / name
    return str(local) if local.is_file() else shutil.which(name)


def require_program(name: str, hint: str, message: str | None = None) -> str:
    """Like ``find_program``, but a missing program is a ToolchainError with ``hint``."""
    found = find_program(name)
    if found is None:
        raise ToolchainError(message or f"{name} not found", hint=hint)
    return found
