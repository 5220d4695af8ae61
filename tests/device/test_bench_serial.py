# SPDX-License-Identifier: Apache-2.0
"""The whole ``edgepack bench`` over the console of a virtual serial board (aarch64 busybox
under qemu behind a pty): agent bootstrap through the shell, frames, runs, report; then a
re-deploy through a line paced at 115200 baud."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bench_checks import ITERATIONS, assert_no_host_key_on_device, check_bench_report

from edgepack.bench.report import load_report
from edgepack.cli import main as cli_main
from edgepack.device.faultproxy import FaultProxy, Faults

PACED_BAUD = 921_600  # a real console rate; benchmarks/transfer_serial.py measures 115200


def _bench(example: Path, artifact: Path, sdk: Path, target: str, out: Path) -> int:
    return cli_main([
        "bench", str(artifact), "--board", "hi3559a", "--target", target,
        "--key", str(example / "keys" / "dev1.key"),
        "--publisher", str(example / "keys" / "publisher.pub"),
        "--iterations", str(ITERATIONS), "--warmup", "1", "--sdk", str(sdk),
        "--json", str(out)])


def test_bench_over_serial_console(example: Path, vboard: dict[str, object],
                                   hi3559a_sdk: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    # A fresh device root: the agent goes up through the shell, runner and artifact in frames.
    root = tmp_path / "board"
    serial = vboard["serial"]
    assert isinstance(serial, dict)
    target = f"{serial['uri']}&root={root}"
    assert _bench(example, example / "demo.epk", hi3559a_sdk, target, tmp_path / "r.json") == 0
    assert "accuracy: PASS" in capsys.readouterr().out
    r = load_report(tmp_path / "r.json")  # validates against the schema
    check_bench_report(r)
    assert r["provenance"]["target"].startswith("serial://")
    transfer = r["transfer"]
    assert transfer["agent_uploaded"]
    assert transfer["bytes_sent"] == transfer["bytes_total"]  # the board had nothing
    # The runner's chunks travel DEFLATE-compressed (the encrypted artifact does not shrink).
    assert transfer["bytes_on_wire"] < 0.8 * transfer["bytes_sent"]
    # The golden inputs travel once, inside the artifact (edgepack-run --inputs @golden):
    # nothing but the runner, the artifact and the publisher key was uploaded for the run.
    run_dir = root / "bench"
    assert (run_dir / "artifact.epk").is_file() and (run_dir / "out").is_dir()
    assert [p for p in run_dir.rglob("*.npy") if p.parent != run_dir / "out"] == []
    assert_no_host_key_on_device(root, example / "keys" / "dev1.key")


def test_bench_redeploy_over_paced_line(example: Path, vboard: dict[str, object],
                                        hi3559a_sdk: Path, tmp_path: Path) -> None:
    """At a real baud rate: runner and agent already on the board, a newly packed artifact
    travels (only it: about 1 MB, so 921600 baud keeps the test short), and the bench
    completes with the report checked."""
    # The board gets runner and agent over the unpaced console first (a no-op after the SSH
    # bench, which shares the device root).
    assert _bench(example, example / "demo.epk", hi3559a_sdk, "virtual:hi3559a/serial",
                  tmp_path / "warm.json") == 0
    # Packing again without stable sections seals every section under new keys: every byte of
    # the artifact differs, so all of it travels (re-deploys of stable sections that send only
    # what changed: test_redeploy.py).
    fresh = tmp_path / "fresh.epk"
    assert cli_main(["pack", str(example), "--out", str(fresh), "--no-stable-sections"]) == 0
    serial = vboard["serial"]
    assert isinstance(serial, dict)
    link = tmp_path / "ttyPACED"
    with FaultProxy(serial["tty"], link, faults=Faults.clean(), baud=PACED_BAUD) as proxy:
        start = time.monotonic()
        code = _bench(example, fresh, hi3559a_sdk,
                      f"serial://{link}?baud={PACED_BAUD}&root={vboard['root']}",
                      tmp_path / "paced.json")
        elapsed = time.monotonic() - start
    assert proxy.error is None
    assert code == 0
    r = load_report(tmp_path / "paced.json")
    check_bench_report(r)
    transfer = r["transfer"]
    assert not transfer["agent_uploaded"]
    size = fresh.stat().st_size
    assert size <= transfer["bytes_sent"] < size + 4096  # only the artifact
    # The line really was paced: the bytes cannot have crossed faster than 115200 baud 8N1.
    assert elapsed >= transfer["bytes_on_wire"] * 10 / PACED_BAUD
