# SPDX-License-Identifier: Apache-2.0
"""Checks shared by the bench tests (SSH, serial, keys): imported by name (tests/device is on
sys.path under pytest's rootdir import mode)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ITERATIONS = 5
# A PEM private key block (binaries linked with OpenSSL hold the bare header string).
PEM_PRIVATE = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]{40}")


def assert_no_host_key_on_device(root: Path, host_key: Path) -> None:
    """Walks the device root: no copy of the host-held key, no private key outside the
    agent's own key folder, and the content store is private (folders 0700, files 0600)."""
    secret = host_key.read_bytes()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        mode = path.lstat().st_mode & 0o777
        if rel.startswith(".edgepack/cas") or rel.startswith(".edgepack/keys"):
            assert mode == (0o700 if path.is_dir() else 0o600), f"{rel}: mode {mode:o}"
        if not path.is_file():
            continue
        data = path.read_bytes()
        assert secret not in data, f"{rel} holds the host's private key"
        if not rel.startswith(".edgepack/keys/"):
            assert not PEM_PRIVATE.search(data), f"{rel} holds a private key"


def check_bench_report(r: dict[str, Any]) -> None:
    """An aarch64 report with every stage timed ITERATIONS times and the accuracy check passed
    within its tolerance."""
    assert r["device"]["machine"] == "aarch64"
    assert r["conditions"]["iterations"] == ITERATIONS == r["end_to_end"]["n"]
    assert r["stages"], "per-stage timings are missing"
    for s in r["stages"]:
        assert s["ms"]["n"] == ITERATIONS
    acc = r["accuracy"]
    assert acc["passed"] and acc["outputs"]
    for o in acc["outputs"]:
        assert o["max_abs"] <= acc["tolerance"] * o["scale"] and o["cosine"] >= acc["min_cosine"]
