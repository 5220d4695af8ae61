# SPDX-License-Identifier: Apache-2.0
"""Serial payload throughput as a fraction of the line rate, on a paced pty.

A pty has no line rate, so the virtual board's console (an aarch64 busybox under qemu behind
socat) is reached through ``faultproxy.FaultProxy`` with no faults and ``baud`` set: bytes are
paced at 10 bits each (8N1) in both directions, like a UART. For each rate the benchmark
uploads random data (incompressible) with

- agent frames (``AgentClient.put_bytes``: COBS + CRC-32 frames, windowed, 1 KiB and
  ~4 KiB chunks), target >= 0.95 of the line rate with the larger chunk;
- the shell bootstrap (``ShellUploader``: base64 through ``head -c`` with a hash check per
  chunk), for comparison: base64 alone caps it at 0.75.

fraction = payload bytes / (seconds * baud / 10). Medians over ``--repeat`` runs. Prints a
table and writes JSON. ``benchmarks/transfer.py`` can import ``run_serial`` for its serial rows.

    .venv/bin/python benchmarks/transfer_serial.py --repeat 2 --json out/transfer_serial.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))

from edgepack.device.faultproxy import FaultProxy, Faults  # noqa: E402
from edgepack.device.serial import SerialTransport  # noqa: E402
from edgepack.device.serial_upload import ShellUploader  # noqa: E402
from edgepack.device.serial_virtual import start_serial_console, stop_serial_console  # noqa: E402
from edgepack.device.targets import parse_target  # noqa: E402
from edgepack.device.transport import TransportOptions, start_agent  # noqa: E402
from edgepack.ui import format_table  # noqa: E402

AGENT_CHUNKS = (1024, 3968)  # 3968: two chunks (+ framing) fit the agent's 8 KiB tty window


def build_aarch64_agent() -> Path:
    """The static aarch64 agent (cross g++), rebuilt when a source is newer."""
    src = REPO / "device_agents" / "src"
    out = REPO / "build" / "bench-serial" / "edgepack-agent-aarch64"
    sources = sorted(src.glob("*.cc"))
    newest = max(p.stat().st_mtime for p in src.iterdir())
    if not out.exists() or out.stat().st_mtime < newest:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        subprocess.run(["aarch64-linux-gnu-g++", "-std=c++17", "-Os", "-static", "-s", "-o",
                        str(tmp), *map(str, sources)], check=True)
        os.replace(tmp, out)
    return out


def _transport(tty: Path, baud: int) -> SerialTransport:
    return SerialTransport(parse_target(f"serial://{tty}?baud={baud}"), TransportOptions())


def _agent_put(tty: Path, baud: int, root: str, agent: Path, size: int, chunk: int) -> float:
    t = _transport(tty, baud)
    try:
        client, _ = start_agent(t, root, agent, retransmit=True)
        client.chunk_size = chunk
        data = random.randbytes(size)
        start = time.perf_counter()
        client.put_bytes(data)
        elapsed = time.perf_counter() - start
        client.bye()
        client.stream.close()
        return elapsed
    finally:
        t.close()


def _shell_put(tty: Path, baud: int, size: int) -> float:
    t = _transport(tty, baud)
    try:
        t.shell.start()
        up = ShellUploader(t.shell, method="base64", baud=baud)
        data = random.randbytes(size)
        start = time.perf_counter()
        up.upload(data, "tmp/bench-shell.bin", label="shell upload")
        return time.perf_counter() - start
    finally:
        t.close()


def run_serial(bauds: tuple[int, ...] = (115_200, 921_600), seconds: float = 6.0,
               repeat: int = 2) -> list[dict[str, Any]]:
    """Rows of {method, baud, chunk, bytes, median_s, fraction_of_line_rate}."""
    agent = build_aarch64_agent()
    state = Path(tempfile.mkdtemp(prefix="edgepack-serial-bench-"))
    console = start_serial_console("aarch64", state)
    rows: list[dict[str, Any]] = []
    try:
        # The agent goes up once over the clean (unpaced) console; paced runs find it there.
        t = _transport(Path(console.tty), 115_200)
        client, _ = start_agent(t, console.device_root, agent, retransmit=True)
        client.bye()
        client.stream.close()
        t.close()
        for baud in bauds:
            line_bps = baud / 10
            paced = state / f"tty{baud}"
            with FaultProxy(console.tty, paced, faults=Faults.clean(), baud=baud) as proxy:
                cases: list[tuple[str, int, int]] = [
                    ("agent frames", chunk, int(line_bps * seconds)) for chunk in AGENT_CHUNKS]
                cases.append(("shell base64 bootstrap", 0, int(line_bps * seconds * 0.6)))
                for method, chunk, size in cases:
                    times = []
                    for _ in range(repeat):
                        if chunk:
                            times.append(_agent_put(paced, baud, console.device_root, agent,
                                                    size, chunk))
                        else:
                            times.append(_shell_put(paced, baud, size))
                    med = statistics.median(times)
                    rows.append({"method": method, "baud": baud, "chunk": chunk or None,
                                 "bytes": size, "median_s": med,
                                 "payload_bytes_per_s": size / med,
                                 "fraction_of_line_rate": size / med / line_bps})
                assert proxy.error is None, proxy.error
    finally:
        stop_serial_console(console)
        shutil.rmtree(state, ignore_errors=True)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    return format_table(
        ["method", "baud", "chunk", "bytes", "median s", "payload B/s", "of line rate"],
        [[str(r["method"]), str(r["baud"]), str(r["chunk"] or "-"), str(r["bytes"]),
          f"{r['median_s']:.2f}", f"{r['payload_bytes_per_s']:.0f}",
          f"{r['fraction_of_line_rate']:.3f}"] for r in rows])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=6.0,
                    help="payload size in seconds of line time (agent rows)")
    ap.add_argument("--baud", type=int, action="append",
                    help="line rates to measure (default 115200 and 921600)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" /
                    "transfer_serial.json")
    args = ap.parse_args()
    bauds = tuple(args.baud) if args.baud else (115_200, 921_600)
    rows = run_serial(bauds, args.seconds, args.repeat)
    print(format_rows(rows))
    best = max((r["fraction_of_line_rate"] for r in rows if r["method"] == "agent frames"
                and r["baud"] == bauds[0]), default=0.0)
    print(f"agent frames at {bauds[0]} baud: {best:.3f} of the line rate (target >= 0.95)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps({"repeat": args.repeat, "seconds": args.seconds,
                               "bits_per_byte": 10, "rows": rows}, indent=2) + "\n")
    os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
