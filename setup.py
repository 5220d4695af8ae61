# SPDX-License-Identifier: Apache-2.0
"""Wheel builds copy the run-time data folders into the package as ``edgepack/_data/``.

Everything else is in pyproject.toml. Editable installs skip the copy: edgepack.resources finds
the folders at the checkout's root.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent

def _data_folders() -> tuple[str, ...]:
    """resources.DATA_FOLDERS, read from the module file itself (the package's __init__ and
    its dependencies need not be importable at build time)."""
    spec = importlib.util.spec_from_file_location(
        "_edgepack_resources", ROOT / "packager" / "edgepack" / "resources.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.DATA_FOLDERS)


DATA_FOLDERS = _data_folders()
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
