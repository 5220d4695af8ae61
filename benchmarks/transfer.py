# SPDX-License-Identifier: Apache-2.0
"""Transfer benchmark: uploads through the edgepack agent vs ``scp``, side by side in one run.

Starts a virtual board (real sshd on 127.0.0.1), then for one file of ``--size-mib``:
- ``scp`` of the file (OpenSSH client, the same sshd and keys);
- the agent's content-addressed PUT over an SSH exec channel (paramiko), fresh;
- re-deploying the unchanged file through the agent (bytes that travel; target < 1% of size).
Prints a table and writes JSON (``--json``). Other rows (serial) append to the same table.

    .venv/bin/python benchmarks/transfer.py --size-mib 32 --repeat 3 --json out/transfer.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "packager"))

from edgepack.device import virtual  # noqa: E402
from edgepack.device.client import AgentClient  # noqa: E402
from edgepack.device.targets import parse_target  # noqa: E402
from edgepack.device.transport import TransportOptions, connect, start_agent  # noqa: E402
from edgepack.ui import format_table  # noqa: E402


def build_agent() -> Path:
    build = REPO / "build" / "bench-agent"
    cmake = shutil.which("cmake", path=str(REPO / ".venv" / "bin")) or "cmake"
    subprocess.run([cmake, "-S", str(REPO / "device_agents"), "-B", str(build), "-G", "Ninja",
                    "-DEDGEPACK_AGENT_TESTS=OFF"], check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(build), "-j2"], check=True, capture_output=True)
    return build / "edgepack-agent"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="edgepack-transfer-"))
    os.environ["EDGEPACK_STATE"] = str(state)
    vb = virtual.up("hi3559a")
    try:
        agent_bin = build_agent()
        target = parse_target(vb.target)
        assert target.root
        blob = state / "payload.bin"
        size = args.size_mib << 20
        blob.write_bytes(os.urandom(size))
        rows: list[dict[str, object]] = []

        scp_s = []
        for i in range(args.repeat):
            t = time.perf_counter()
            subprocess.run(["scp", "-q", "-P", str(vb.port), "-i", str(vb.identity),
                            "-o", f"UserKnownHostsFile={vb.known_hosts}",
                            "-o", "StrictHostKeyChecking=yes", str(blob),
                            f"{vb.user}@127.0.0.1:{vb.root}/scp-{i}.bin"], check=True)
            scp_s.append(time.perf_counter() - t)
        rows.append({"method": "scp (OpenSSH)", "bytes": size, "bytes_sent": size,
                     "median_s": statistics.median(scp_s),
                     "mib_per_s": args.size_mib / statistics.median(scp_s)})

        transport = connect(target, TransportOptions(known_hosts=vb.known_hosts))
        agent_s, redeploy_sent = [], []
        for _ in range(args.repeat):
            shutil.rmtree(Path(target.root) / ".edgepack" / "cas", ignore_errors=True)
            agent, _ = start_agent(transport, target.root, agent_bin)
            t = time.perf_counter()
            res = agent.put_file(blob)
            agent.install(res.sha256, "payload.bin")
            agent_s.append(time.perf_counter() - t)
            again = _redeploy(agent, blob)
            redeploy_sent.append(again)
            agent.bye()
        transport.close()
        med = statistics.median(agent_s)
        rows.append({"method": "edgepack agent over SSH (paramiko)", "bytes": size,
                     "bytes_sent": size, "median_s": med, "mib_per_s": args.size_mib / med})
        rows.append({"method": "edgepack agent, unchanged re-deploy", "bytes": size,
                     "bytes_sent": max(redeploy_sent), "median_s": 0.0, "mib_per_s": 0.0,
                     "sent_fraction": max(redeploy_sent) / size})
        ratio = statistics.median(scp_s) / med
    finally:
        virtual.down("hi3559a")
        shutil.rmtree(state, ignore_errors=True)

    print(format_table(["method", "MiB", "sent bytes", "median s", "MiB/s"],
                       [[str(r["method"]), str(args.size_mib), str(r["bytes_sent"]),
                         f"{r['median_s']:.3f}", f"{r['mib_per_s']:.1f}"] for r in rows]))
    fraction = max(redeploy_sent) / size
    print(f"agent / scp throughput ratio: {ratio:.2f}; unchanged re-deploy sent "
          f"{max(redeploy_sent)} bytes ({100 * fraction:.4f}% of the file, target < 1%)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"size_mib": args.size_mib, "repeat": args.repeat,
                                         "rows": rows, "agent_over_scp_throughput": ratio},
                                        indent=2) + "\n")
    return 0


def _redeploy(agent: AgentClient, blob: Path) -> int:
    """Bytes that travel when the same file is deployed again (content addressed)."""
    before = agent.stats.bytes_written
    res = agent.put_file(blob)
    agent.install(res.sha256, "payload.bin")
    return agent.stats.bytes_written - before


if __name__ == "__main__":
    sys.exit(main())
