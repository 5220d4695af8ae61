# SPDX-License-Identifier: Apache-2.0
"""Wheel builds copy the run-time data folders into the package as ``edgepack/_data/``.

Everything else is in pyproject.toml. Editable installs skip the copy: edgepack.resources finds
the folders at the checkout's root.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("boards", "toolchains", "sdk_templates", "device_agents")  # = resources.py
SKIP = shutil.ignore_patterns("build", "out", "__pycache__", ".git", "*.pyc", ".cache")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "edgepack" / "_data"
        for name in DATA_FOLDERS:
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(ROOT / name, target / name, ignore=SKIP, symlinks=False)


setup(cmdclass={"build_py": BuildPyWithData})
