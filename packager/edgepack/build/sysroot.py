# SPDX-License-Identifier: Apache-2.0
"""Target-architecture sysroots made from Debian packages (OpenSSL and friends for a board).

Packages are fetched with ``apt-get download <pkg>:<debian_arch>`` and unpacked with ``dpkg -x``
— never installed: a multiarch install of ``libssl-dev:arm64`` fails on an amd64 machine as soon
as the two architectures' versions differ. The C library is not part of it: each cross
compiler brings its own. A sysroot lives in the cache folder, one per architecture and package
set, is built in a temp folder and renamed into place (so a half-fetched one is never used),
under a lock file so parallel builds wait instead of racing. ``sysroot.json`` records the
packages and versions, which the SDK's BUILDINFO.json repeats.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgepack.errors import ToolchainError

CACHE_ENV = "EDGEPACK_CACHE"
SYSROOT_SCHEMA = "edgepack.sysroot/1"


@dataclass(frozen=True)
class Sysroot:
    path: Path  # extracted packages: usr/include, usr/lib/<multiarch>
    debian_arch: str
    packages: dict[str, str]  # package name -> Debian version

    def describe(self) -> dict[str, object]:
        return {"path": str(self.path), "debian_arch": self.debian_arch,
                "packages": dict(sorted(self.packages.items()))}


def cache_root() -> Path:
    """``$EDGEPACK_CACHE``, else ``~/.cache/edgepack``."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path.home() / ".cache" / "edgepack"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held for the ``with`` block (waits for other holders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def sysroot_dir(debian_arch: str, packages: Sequence[str], cache: Path | None = None) -> Path:
    """``<cache>/sysroots/<debian_arch>/<key>``: one folder per package set of that arch."""
    key = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:12]
    return (cache or cache_root()) / "sysroots" / debian_arch / key


def load_sysroot(path: Path) -> Sysroot | None:
    """A complete sysroot at ``path``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((path / "sysroot.json").read_text())
        return Sysroot(path=path, debian_arch=str(data["debian_arch"]),
                       packages={str(k): str(v) for k, v in data["packages"].items()})
    except (OSError, ValueError, KeyError, AttributeError):
        return None


def ensure_sysroot(debian_arch: str, packages: Sequence[str],
                   cache: Path | None = None) -> Sysroot:
    """The sysroot for ``packages`` of ``debian_arch``, fetched and unpacked on first use."""
    if not packages:
        raise ToolchainError(f"no sysroot packages given for {debian_arch}")
    target = sysroot_dir(debian_arch, packages, cache)
    existing = load_sysroot(target)
    if existing is not None:
        return existing
    with file_lock(target.parent / f"{target.name}.lock"):
        existing = load_sysroot(target)  # another build may have made it while we waited
        if existing is not None:
            return existing
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            versions = _fetch_and_extract(debian_arch, packages, staging)
            record = {"schema": SYSROOT_SCHEMA, "debian_arch": debian_arch,
                      "packages": dict(sorted(versions.items()))}
            (staging / "sysroot.json").write_text(json.dumps(record, indent=2) + "\n")
            if target.exists():  # an incomplete leftover without sysroot.json
                shutil.rmtree(target)
            os.rename(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    made = load_sysroot(target)
    assert made is not None
    return made


def _fetch_and_extract(debian_arch: str, packages: Sequence[str], root: Path) -> dict[str, str]:
    debs = root / ".debs"
    debs.mkdir()
    versions: dict[str, str] = {}
    for package in packages:
        # "name:all" names an architecture-independent package (headers): no arch qualifier.
        name, _, arch = package.partition(":")
        arch = arch or debian_arch
        spec = name if arch == "all" else f"{name}:{arch}"
        command = ["apt-get", "download", spec]
        try:
            done = subprocess.run(command, cwd=debs, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolchainError(f"cannot fetch sysroot package {spec}: {exc}",
                                 hint=f"run `{' '.join(command)}` by hand") from exc
        fetched = sorted(debs.glob(f"{name}_*_{arch}.deb"))
        if done.returncode != 0 or not fetched:
            reason = _first_error(done.stderr) or f"apt-get exited with {done.returncode}"
            raise ToolchainError(
                f"cannot fetch sysroot package {spec}: {reason}",
                hint=(f"`{' '.join(command)}` must work: run `dpkg --add-architecture "
                      f"{debian_arch} && apt-get update` once (scripts/setup.sh does this)"))
        deb = fetched[-1]
        versions[package] = _deb_field(deb, "Version")
        _run_checked(["dpkg-deb", "-x", str(deb), str(root)], f"unpack {deb.name}")
    shutil.rmtree(debs)
    return versions


def _deb_field(deb: Path, name: str) -> str:
    return _run_checked(["dpkg-deb", "-f", str(deb), name], f"read {deb.name}").strip()


def _run_checked(command: list[str], what: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except OSError as exc:
        raise ToolchainError(f"cannot {what}: {exc}", hint="apt-get install dpkg-dev") from exc
    if done.returncode != 0:
        raise ToolchainError(f"cannot {what}: {_first_error(done.stderr)}")
    return done.stdout


def _first_error(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("E:") or "error" in line.lower():
            return line.strip()
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("W:")]
    return lines[0] if lines else ""
