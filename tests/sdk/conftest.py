# SPDX-License-Identifier: Apache-2.0
"""Session fixtures of the SDK tests: one host build of the SDK, one sanitized build, one packed
example."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sdk_host import SdkBuild, build_kernels_project, build_sdk, pack_example


@pytest.fixture(scope="session")
def sdk_host() -> SdkBuild:
    """The SDK built for the host (tests on) and installed under build/sdk-host/install."""
    return build_sdk("sdk-host", "-DEDGEPACK_BUILD_TESTS=ON", install=True)


@pytest.fixture(scope="session")
def kernels_native() -> Path:
    """tests/sdk/kernels_project built for the host once (the kernels library and its test
    programs: kernels_test, qgemm_test, qwinograd_test); the build folder."""
    return build_kernels_project()


@pytest.fixture(params=["native", "avx2", "generic"])
def isa(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The kernels' instruction sets capped by EDGEPACK_CPU_ISA for the runners a test starts
    (they read the environment): "native" is the host's best (AVX-512 where present)."""
    if request.param == "native":
        monkeypatch.delenv("EDGEPACK_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("EDGEPACK_CPU_ISA", request.param)
    return str(request.param)


@pytest.fixture(scope="session")
def sdk_asan() -> SdkBuild:
    """One clang build of the SDK with AddressSanitizer + UndefinedBehaviorSanitizer
    (RelWithDebInfo, into build/sdk-asan) for two suites: its unit tests, tools and example
    pipeline (test_sanitizers.py) and its libFuzzer targets (test_fuzz.py)."""
    env = {**os.environ, "CC": "clang", "CXX": "clang++"}
    return build_sdk("sdk-asan", "-DEDGEPACK_SANITIZE=ON", "-DEDGEPACK_BUILD_TESTS=ON",
                     "-DEDGEPACK_BUILD_FUZZERS=ON", env=env, build_type="RelWithDebInfo")


@pytest.fixture(scope="session")
def packed_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(artifact, project) for examples/vision-demo, sealed to keys/dev1 and keys/dev2."""
    return pack_example(tmp_path_factory.mktemp("vision-demo"))
