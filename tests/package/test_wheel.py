# SPDX-License-Identifier: Apache-2.0
"""The wheel works anywhere: build it, install it into a fresh venv, run it outside the tree.

The wheel is built from a copy of the files the build reads (pyproject.toml, setup.py,
MANIFEST.in, README.md, LICENSE, packager/ and the four data folders), so stale output of an
earlier build in the checkout cannot leak into it. It is installed with ``--no-index --no-deps``
into a fresh venv whose only other path is this venv's site-packages (a ``.pth`` line, which
adds the folder without running the ``.pth`` files in it: the editable install of the checkout
stays out). Nothing is downloaded. Every command runs with its working directory in a temp
folder, away from the source tree.

Cost: wheel + venv + boards + pack ~20 s; the host SDK build dominates (a fresh cache: its
sources are the installed copy, so no build folder of the checkout is reused). The tests share
one cache, so `bench` reuses the SDK that `build` made (a no-op rebuild). Measured 2026-11-30
on the 2-core dev machine under a load of 12-15: 15 min for the whole file (before the bench).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE")
TREES = ("packager", "boards", "toolchains", "sdk_templates", "device_agents")
SKIP = shutil.ignore_patterns("__pycache__", "*.egg-info", ".cache")


def _build_wheel(work: Path) -> Path:
    src = work / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        shutil.copy2(REPO / name, src / name)
    for name in TREES:
        shutil.copytree(REPO / name, src / name, ignore=SKIP)
    dist = work / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                    "--no-build-isolation", "-q", "-w", str(dist), str(src)],
                   check=True, cwd=work)
    (wheel,) = dist.glob("edgepack-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh venv with the wheel installed; returns its bin/ folder."""
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = Path(subprocess.run(
        [str(root / "bin" / "python"), "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    (site / "edgepack-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"),
                    "install", "-q", "--no-index", "--no-deps", str(wheel)], check=True)
    return root / "bin"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The installed edgepack's cache (sysroots, SDK builds) and virtual-board state, shared
    by the tests of this file: the host SDK is built once, by `build`, and reused by `bench`."""
    return tmp_path_factory.mktemp("wheel-home")


@pytest.fixture()
def outside(tmp_path: Path, home: Path) -> Path:
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / ".home").symlink_to(home)
    return work


def _env(cwd: Path) -> dict[str, str]:
    """The environment of the installed edgepack, run in ``cwd`` (inside an ``outside``)."""
    home = next(p / ".home" for p in (cwd, *cwd.parents) if (p / ".home").exists())
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "EDGEPACK_BOARDS_PATH", "EDGEPACK_TOOLCHAINS_PATH")}
    env["EDGEPACK_CACHE"] = str(home.resolve() / "cache")
    env["EDGEPACK_STATE"] = str(home.resolve() / "state")
    return env


def _edgepack(venv: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "edgepack"), *argv], cwd=cwd, env=_env(cwd),
                          capture_output=True, text=True, timeout=900)


def test_wheel_ships_the_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("edgepack/_data/boards/host.yaml", "edgepack/_data/boards/hi3559a.yaml",
                 "edgepack/_data/toolchains/host.toolchain.cmake",
                 "edgepack/_data/sdk_templates/CMakeLists.txt",
                 "edgepack/_data/sdk_templates/include/edgepack.h",
                 "edgepack/_data/sdk_templates/conanfile.py",
                 "edgepack/_data/device_agents/CMakeLists.txt",
                 "edgepack/schemas/board.schema.json", "edgepack/lower/op_table.toml",
                 "edgepack/py.typed"):
        assert path in names, path
    assert "edgepack/build/sdkbuild.py" in names  # the build package, not a build folder
    assert not [n for n in names if "__pycache__" in n or (n.startswith("edgepack/_data/")
                and "/build/" in n)]


def test_installed_package_is_the_wheel(venv: Path, outside: Path) -> None:
    out = subprocess.run(
        [str(venv / "python"), "-c",
         "import edgepack, edgepack.resources as r; print(edgepack.__file__); "
         "print(r.data_root())"],
        cwd=outside, env=_env(outside), check=True, capture_output=True, text=True).stdout
    module, data = (Path(line) for line in out.split())
    assert module.is_relative_to(venv.parent) and not module.is_relative_to(REPO)
    assert data == module.parent / "_data"


def test_boards_outside_the_tree(venv: Path, outside: Path) -> None:
    done = _edgepack(venv, outside, "boards", "--json")
    assert done.returncode == 0, done.stderr
    ids = {b["id"] for b in json.loads(done.stdout)}
    assert ids >= {"host", "hi3559a", "rpi4", "rpi4-armhf", "jetson-nano", "jetson-orin-nano"}


def _project(venv: Path, root: Path) -> Path:
    """edgepack.testing's tiny classifier, written by the installed package; its keys made
    with the installed CLI."""
    subprocess.run([str(venv / "python"), "-c", "import sys; from edgepack.testing import "
                    "tiny_project; tiny_project(sys.argv[1], make_keys=False)", str(root)],
                   check=True, cwd=root.parent, env=_env(root.parent))
    for kind, name in (("publisher", "publisher.key"), ("device", "board.key")):
        done = _edgepack(venv, root, "keys", "new", kind, "--out", f"keys/{name}")
        assert done.returncode == 0, done.stderr
    return root


def test_pack_outside_the_tree(venv: Path, outside: Path) -> None:
    project = _project(venv, outside / "tiny")
    done = _edgepack(venv, project, "pack", "--out", "tiny.epk", "--json")
    assert done.returncode == 0, done.stderr
    packed = json.loads(done.stdout)
    artifact = Path(packed["artifact"])
    if not artifact.is_absolute():
        artifact = project / artifact
    assert artifact.is_file() and artifact.stat().st_size == packed["size"]
    done = _edgepack(venv, project, "inspect", str(artifact), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["package"]["name"] == "tiny"


def test_build_host_outside_the_tree(venv: Path, outside: Path) -> None:
    project = _project(venv, outside / "tiny")
    done = _edgepack(venv, project, "build", "--board", "host", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    built = json.loads(done.stdout)
    sdk = project / "out" / "host"
    assert (sdk / "include" / "edgepack.h").is_file()
    assert (sdk / "lib" / "cmake" / "edgepack").is_dir()
    info = json.loads((sdk / "BUILDINFO.json").read_text())
    assert info["board"] == "host"
    assert Path(built["artifact"]["artifact"]).name == "tiny-host.epk"
    # The SDK's build cache is keyed by the installed sources, not the checkout's.
    caches = list(Path(_env(project)["EDGEPACK_CACHE"]).glob("build/*/*/CMakeCache.txt"))
    assert caches and all(str(REPO) not in p.read_text() for p in caches)


def test_bench_outside_the_tree(venv: Path, outside: Path) -> None:
    """A bench on the virtual host board, as a user of the wheel runs it: the runner and
    agent come from the installed sources (the SDK build of the test above, reused)."""
    project = _project(venv, outside / "tiny")
    done = _edgepack(venv, project, "pack", "--board", "host", "--out", "tiny.epk")
    assert done.returncode == 0, done.stderr
    done = _edgepack(venv, project, "device", "up", "virtual:host", "--json")
    assert done.returncode == 0, done.stderr
    try:
        done = _edgepack(venv, project, "bench", "tiny.epk", "--board", "host", "--target",
                         "virtual:host", "--key", "keys/board.key", "--publisher",
                         "keys/publisher.pub", "--iterations", "5", "--json")
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        down = _edgepack(venv, project, "device", "down")
        assert down.returncode == 0, down.stderr
    report = json.loads(done.stdout)
    assert report["accuracy"]["passed"] and report["end_to_end"]["n"] == 5
    assert report["provenance"]["board"] == "host"
