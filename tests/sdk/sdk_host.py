# SPDX-License-Identifier: Apache-2.0
"""Builds the C++ SDK for the host once per test session (into <repo>/build/), and the shared
inputs of the SDK tests: key sets and a packed example artifact."""

from __future__ import annotations

import fcntl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgepack.artifact import keys
from example_project import EXAMPLE as EXAMPLE  # the example folder, for the SDK tests
from example_project import example_project, pack_project

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk_templates"
CMAKE = REPO / ".venv" / "bin" / "cmake"


def run(cmd: Sequence[object], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Runs a build step; a failure shows the command and its output."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc  # type: ignore[no-any-return]


def build_kernels_project() -> Path:
    """Configures and builds tests/sdk/kernels_project (only the CPU kernels library and its
    test programs) into build/tests-kernels/native; returns the build folder."""
    build = REPO / "build" / "tests-kernels" / "native"
    build.parent.mkdir(parents=True, exist_ok=True)
    with open(build.parent / "native.lock", "w") as lock:  # as build_sdk()
        fcntl.flock(lock, fcntl.LOCK_EX)
        run([CMAKE, "-S", REPO / "tests" / "sdk" / "kernels_project", "-B", build, "-G", "Ninja",
             "-DCMAKE_BUILD_TYPE=Release"])
        run([CMAKE, "--build", build, "-j2"])
    return build


@dataclass(frozen=True)
class SdkBuild:
    build: Path
    prefix: Path  # install prefix

    @property
    def runner(self) -> Path:
        return self.build / "tools" / "edgepack_run" / "edgepack-run"

    @property
    def epk_check(self) -> Path:
        return self.build / "tests" / "artifact" / "epk_check"

    @property
    def hpke_vectors(self) -> Path:
        return self.build / "tests" / "artifact" / "test_hpke_vectors"

    @property
    def c_api_test(self) -> Path:
        return self.build / "tests" / "c_api" / "test_c_api"


def build_sdk(name: str, *options: str, env: dict[str, str] | None = None,
              targets: tuple[str, ...] = (), install: bool = False,
              build_type: str = "Release") -> SdkBuild:
    """Configures and builds sdk_templates into build/<name> (ninja keeps it incremental)."""
    build = REPO / "build" / name
    prefix = build / "install"
    build.parent.mkdir(parents=True, exist_ok=True)
    # Two test runs building the same folder at once would corrupt it (a half-written library
    # installed): the second waits for the first.
    with open(build.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run([CMAKE, "-S", SDK, "-B", build, "-G", "Ninja", f"-DCMAKE_BUILD_TYPE={build_type}",
             f"-DCMAKE_INSTALL_PREFIX={prefix}", *options], env=env)
        target_args = [a for t in targets for a in ("--target", t)]
        run([CMAKE, "--build", build, "-j2", *target_args])
        if install:
            run([CMAKE, "--install", build])
    return SdkBuild(build, prefix)


def make_keyset(root: Path) -> dict[str, Path]:
    """dev1, dev2, stranger (device keys) and publisher, other_publisher; values are the
    private key paths (the public key sits beside it as .pub)."""
    out: dict[str, Path] = {}
    for name in ("dev1", "dev2", "stranger"):
        out[name] = root / f"{name}.key"
        keys.generate_device_key(out[name])
    for name in ("publisher", "other_publisher"):
        out[name] = root / f"{name}.key"
        keys.generate_publisher_key(out[name])
    return out


def pub(path: Path) -> Path:
    return keys.public_path_for(path)


def pack_example(root: Path) -> tuple[Path, Path]:
    """Packs examples/vision-demo with fresh keys (dev1, dev2 sealed to; stranger not);
    returns (artifact, project folder)."""
    project = example_project(root, devices=("dev1", "dev2", "stranger"))
    return pack_project(project, root / "vision-demo.epk"), project
