# SPDX-License-Identifier: Apache-2.0
"""Sysroots from Debian packages: apt-get download + dpkg -x, cached, atomic, locked."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from edgepack.build.sysroot import Sysroot, ensure_sysroot, sysroot_dir
from edgepack.errors import ToolchainError

PACKAGES = ("libssl-dev", "libssl3")


@pytest.mark.parametrize(("debian_arch", "multiarch"), [("arm64", "aarch64-linux-gnu"),
                                                        ("armhf", "arm-linux-gnueabihf")])
def test_sysroot_has_target_openssl(cross_cache: Path, debian_arch: str, multiarch: str) -> None:
    root = ensure_sysroot(debian_arch, PACKAGES, cross_cache)
    assert root.path == sysroot_dir(debian_arch, PACKAGES, cross_cache)
    assert (root.path / "usr/include/openssl/evp.h").is_file()
    assert (root.path / f"usr/include/{multiarch}/openssl/configuration.h").is_file()
    crypto = root.path / f"usr/lib/{multiarch}/libcrypto.a"
    assert crypto.stat().st_size > 1_000_000
    # The static library holds objects of the target architecture.
    member = subprocess.run(["ar", "t", str(crypto)], capture_output=True, text=True,
                            check=True).stdout.split()[0]
    assert member.endswith(".o")
    record = json.loads((root.path / "sysroot.json").read_text())
    assert record["debian_arch"] == debian_arch
    assert set(record["packages"]) == set(PACKAGES)
    assert record["packages"] == root.packages
    # The recorded version is the one apt serves for that architecture.
    policy = subprocess.run(["apt-cache", "policy", f"libssl3:{debian_arch}"],
                            capture_output=True, text=True, check=True).stdout
    assert root.packages["libssl3"] in policy


def test_second_call_reuses_the_cache(cross_cache: Path) -> None:
    first = ensure_sysroot("arm64", PACKAGES, cross_cache)
    stamp = (first.path / "sysroot.json").stat().st_mtime_ns
    again = ensure_sysroot("arm64", list(reversed(PACKAGES)), cross_cache)  # order-insensitive
    assert again == first
    assert (again.path / "sysroot.json").stat().st_mtime_ns == stamp


def test_parallel_builds_share_one_fetch(tmp_path: Path) -> None:
    results: list[Sysroot] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(ensure_sysroot("armhf", ["libssl3"], tmp_path))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.path for r in results}) == 1
    arch_dir = tmp_path / "sysroots" / "armhf"
    leftovers = [p.name for p in arch_dir.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
    assert (results[0].path / "usr/lib/arm-linux-gnueabihf/libcrypto.so.3").is_file()


def test_unknown_package_names_package_and_command(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError) as err:
        ensure_sysroot("arm64", ["libssl3", "edgepack-no-such-package"], tmp_path)
    text = str(err.value)
    assert "edgepack-no-such-package:arm64" in text
    assert "apt-get download edgepack-no-such-package:arm64" in text
    # Nothing half-made is left where the sysroot would be.
    target = sysroot_dir("arm64", ["libssl3", "edgepack-no-such-package"], tmp_path)
    assert not target.exists()
    assert [p for p in target.parent.iterdir() if ".tmp-" in p.name] == []
