# SPDX-License-Identifier: Apache-2.0
"""Where the data edgepack ships lives: board files, toolchain files, SDK and agent sources.

One place that knows the two layouts:

- an installed wheel carries the folders as package data under ``edgepack/_data/`` (the wheel
  build copies them there, see ``setup.py``);
- a source checkout (also ``pip install -e .``) has them at the repository root, two levels
  above this package (``packager/edgepack`` -> the root).

The folder names are the same in both: ``boards/``, ``toolchains/``, ``sdk_templates/``,
``device_agents/``. Schemas and the op table are ordinary package data beside the modules.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DATA_DIR = PACKAGE_DIR / "_data"  # only in an installed wheel
# The folders a wheel ships under _data/ (setup.py copies exactly these).
DATA_FOLDERS = ("boards", "toolchains", "sdk_templates", "device_agents")


@cache
def data_root() -> Path:
    """The folder holding ``boards/``, ``toolchains/``, ``sdk_templates/``, ``device_agents/``.

    The wheel's ``_data`` when it is there, else the source checkout's root. A broken install
    (neither has the folders) still returns the checkout path: the caller that needs a file
    reports the missing path in its own error.
    """
    if (SHIPPED_DATA_DIR / "boards").is_dir():
        return SHIPPED_DATA_DIR
    return PACKAGE_DIR.parents[1]


def boards_dir() -> Path:
    return data_root() / "boards"


def toolchains_dir() -> Path:
    return data_root() / "toolchains"


def sdk_source_dir() -> Path:
    return data_root() / "sdk_templates"


def agent_source_dir() -> Path:
    return data_root() / "device_agents"
