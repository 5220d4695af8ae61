# SPDX-License-Identifier: Apache-2.0
"""A first deploy of the example over a paced serial line: bytes and minutes.

The virtual hi3559a console (aarch64 busybox under qemu behind a pty) is reached through
``faultproxy.FaultProxy`` with no faults, pacing at the rate set on the console's own tty
(10 bits per byte, like a UART) and garbling what crosses while the two ends' rates differ.
A fresh device root gets what ``edgepack bench`` deploys: the agent (through the console
shell at the login rate: base64, gzip-compressed when the board has ``gunzip``), then, after
the agent's ``BAUD`` switch to the board file's ``console.max_baud`` (qemu-user passes at
most 460800 to the pty, so the agent steps down to that), the runner, the artifact and the
publisher key in agent frames (DEFLATE-compressed chunks). Each file is timed, and its
line-rate time (wire bytes x 10 / the rate it travelled at) is given beside the measured one.
``--no-switch`` keeps the frames at the login rate (``fast_baud=0``), ``--plain`` turns both
compressions off. Target: <= 5 minutes at 115200 baud.

Then a re-deploy: the example packed again with the classifier's weights changed (another seed)
and the next ``version_counter``, uploaded with the installed artifact as its base (``PUT_RECIPE``:
the unchanged sections are copied on the device, PROTOCOL.md section 7b); ``--no-recipe`` sends it
plainly instead. "on the wire" counts the chunk payloads; "frames" every byte the host wrote to
the line for that file (frames, requests, the re-deploy's GET and HASH) and is what the line-rate
time is computed from.

    .venv/bin/python benchmarks/transfer_deploy.py [--baud 115200] [--sdk DIR] [--no-switch]
        [--plain] [--no-recipe]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))
sys.path.insert(0, str(REPO / "tests"))  # example_project

from edgepack.bench.runner import RUN_DIR, sdk_for  # noqa: E402
from edgepack.device.client import AgentClient  # noqa: E402
from edgepack.device.faultproxy import FaultProxy, Faults  # noqa: E402
from edgepack.device.serial import SerialAgentStream, SerialTransport  # noqa: E402
from edgepack.device.serial_virtual import start_serial_console, stop_serial_console  # noqa: E402
from edgepack.device.targets import parse_target  # noqa: E402
from edgepack.device.transport import TransportOptions, start_agent  # noqa: E402
from edgepack.spec.boards import load_board  # noqa: E402
from edgepack.ui import format_table  # noqa: E402
from example_project import example_project, next_release, pack_project  # noqa: E402


def pack_example(work: Path) -> tuple[Path, Path, Path]:
    """The whole example project packed with fresh keys: (artifact, device key, publisher)."""
    project = example_project(work / "vision-demo")
    artifact = pack_project(project, project / "demo.epk")
    return artifact, project / "keys" / "dev1.key", project / "keys" / "publisher.pub"


def repack_changed(artifact: Path) -> Path:
    """The next release of the packed example: the classifier's weights changed (seed 3
    instead of 2, same topology), version_counter + 1."""
    next_release(artifact.parent)
    return pack_project(artifact.parent, artifact.parent / "demo-next.epk")


def _put(client: AgentClient, name: str, remote: str, data: bytes, baud: int,
         base: str | None = None) -> dict[str, Any]:
    written = client.stats.bytes_written
    start = time.perf_counter()
    put = client.put_bytes(data, base=base)
    client.install(put.sha256, remote, 0o644)
    return {"file": name, "bytes": len(data), "wire_bytes": put.wire_bytes,
            "frame_bytes": client.stats.bytes_written - written,
            "copied_bytes": put.copied_bytes, "baud": baud,
            "seconds": time.perf_counter() - start}


def deploy(link: Path, baud: int, root: str, sdk: Path, files: list[tuple[str, str, bytes]],
           plain: bool, switch: bool, redeploy: tuple[str, str, bytes] | None,
           recipe: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
    """Rows of {file, bytes, wire_bytes, frame_bytes, baud, seconds}, the re-deploy's row (the
    installed file at its path is the base) and the rate frames ran at."""
    disabled = frozenset({"gunzip"}) if plain else frozenset()
    uri = f"serial://{link}?baud={baud}&root={root}" + ("" if switch else "&fast_baud=0")
    board = load_board("hi3559a")
    t = SerialTransport(parse_target(uri), TransportOptions(console=board.console),
                        disabled_applets=disabled)
    rows: list[dict[str, Any]] = []
    try:
        agent_bin = sdk / "bin" / "edgepack-agent"
        start = time.perf_counter()
        client, uploaded = start_agent(t, root, agent_bin)  # upload, start, BAUD
        assert uploaded and t.last_upload is not None
        stream = client.stream
        assert isinstance(stream, SerialAgentStream)
        frames_baud = stream.baud
        rows.append({"file": "edgepack-agent (console shell)", "bytes": agent_bin.stat().st_size,
                     "wire_bytes": t.last_upload.line_bytes,
                     "frame_bytes": t.last_upload.line_bytes, "copied_bytes": 0, "baud": baud,
                     "seconds": time.perf_counter() - start})
        client.compress = not plain
        for name, remote, data in files:
            rows.append(_put(client, name, remote, data, frames_baud))
        again = None
        if redeploy is not None:
            name, remote, data = redeploy
            again = _put(client, name, remote, data, frames_baud, remote if recipe else None)
        client.bye()
        client.stream.close()
    finally:
        t.close()
    for r in [*rows, *([again] if again else [])]:
        r["line_rate_seconds"] = r["frame_bytes"] * 10 / r["baud"]
    return rows, again, frames_baud


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baud", type=int, default=115_200)
    ap.add_argument("--sdk", type=Path, help="a built hi3559a SDK tree (default: build it)")
    ap.add_argument("--plain", action="store_true", help="no gzip, no DEFLATE chunks")
    ap.add_argument("--no-switch", action="store_true",
                    help="frames stay at the login rate (no BAUD switch)")
    ap.add_argument("--no-recipe", action="store_true",
                    help="the re-deploy sends the whole artifact (no PUT_RECIPE)")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" /
                    "transfer_deploy.json")
    args = ap.parse_args()
    board = load_board("hi3559a")
    sdk = sdk_for(board, args.sdk)
    work = Path(tempfile.mkdtemp(prefix="edgepack-deploy-bench-"))
    console = None
    load_before = os.getloadavg()
    try:
        artifact, _key, publisher = pack_example(work)
        data = artifact.read_bytes()
        # The golden inputs are not sent beside the artifact: the runner reads them from it
        # (edgepack-run --inputs @golden). Installed where edgepack bench puts them.
        files = [("edgepack-run", "bin/edgepack-run",
                  (sdk / "bin" / "edgepack-run").read_bytes()),
                 ("artifact.epk", f"{RUN_DIR}/artifact.epk", data),
                 ("publisher.pub", f"{RUN_DIR}/keys/publisher.pub", publisher.read_bytes())]
        changed = ("artifact.epk (classifier changed)", f"{RUN_DIR}/artifact.epk",
                   repack_changed(artifact).read_bytes())
        console = start_serial_console(board, work / "state", baud=args.baud)
        root = str(work / "board")
        with FaultProxy(console.tty, work / "ttyPACED", faults=Faults.clean(),
                        device_pty=console.device_pty, match_rates=True) as proxy:
            rows, again, frames_baud = deploy(work / "ttyPACED", args.baud, root, sdk, files,
                                              args.plain, not args.no_switch, changed,
                                              not args.no_recipe)
        assert proxy.error is None, proxy.error
    finally:
        if console is not None:
            stop_serial_console(console)
        shutil.rmtree(work, ignore_errors=True)
    assert again is not None
    total_s = sum(r["seconds"] for r in rows)
    wire = sum(r["wire_bytes"] for r in rows)
    line_rate_min = sum(r["line_rate_seconds"] for r in rows) / 60
    print(format_table(["file", "bytes", "on the wire", "frames", "copied on device", "baud",
                        "seconds", "at line rate"],
                       [[r["file"], str(r["bytes"]), str(r["wire_bytes"]), str(r["frame_bytes"]),
                         str(r["copied_bytes"]), str(r["baud"]), f"{r['seconds']:.1f}",
                         f"{r['line_rate_seconds']:.1f}"] for r in [*rows, again]]))
    how = ("plain" if args.plain else "compressed") + (", no switch" if args.no_switch else
                                                       f", frames at {frames_baud}")
    print(f"first deploy at {args.baud} baud ({how}): {sum(r['bytes'] for r in rows)} bytes, "
          f"{wire} on the wire, {total_s / 60:.1f} minutes measured, {line_rate_min:.1f} at "
          f"line rate (target <= 5); load average {load_before[0]:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    first = next(r for r in rows if r["file"] == "artifact.epk")
    print(f"re-deploy with the classifier changed ({'plain' if args.no_recipe else 'recipe'}): "
          f"{again['frame_bytes']} of {again['bytes']} bytes in frames "
          f"({100 * again['frame_bytes'] / again['bytes']:.1f}%; the first deploy of the "
          f"artifact: {first['frame_bytes']}), {again['seconds']:.1f} s measured, "
          f"{again['line_rate_seconds']:.1f} s at line rate")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    suffix = (("-plain" if args.plain else "") + ("-no-switch" if args.no_switch else "")
              + ("-no-recipe" if args.no_recipe else ""))
    out = args.json.with_name(args.json.stem + suffix + ".json")
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"date": time.strftime("%Y-%m-%d", time.gmtime()),
                               "baud": args.baud, "frames_baud": frames_baud,
                               "switch": not args.no_switch, "plain": args.plain,
                               "bits_per_byte": 10, "minutes": total_s / 60,
                               "line_rate_minutes": line_rate_min,
                               "load_average": {"before": load_before[0],
                                                "after": os.getloadavg()[0]},
                               "rows": rows, "redeploy": {**again, "recipe": not args.no_recipe,
                                                          "changed": "classifier weights"}},
                              indent=2) + "\n")
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
