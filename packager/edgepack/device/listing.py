# SPDX-License-Identifier: Apache-2.0
"""``edgepack device list``: the targets this machine can name, each as a ``--target`` value.

Three sources, none of them contacted: virtual boards (their saved state), serial adapters
(``/dev/serial/by-id`` and ``ttyUSB*``/``ttyACM*``), and SSH hosts whose keys are pinned in a
known_hosts file (only those edgepack has talked to; hashed entries cannot be read back).
"""

from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Listed:
    target: str  # what --target accepts
    kind: str  # "virtual" | "serial" | "ssh"
    state: str  # "running", "stopped", "present", "pinned"
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def virtual_targets() -> list[Listed]:
    from edgepack.device import virtual

    out = []
    for b in virtual.status():
        state = "running" if b["running"] else "stopped"
        out.append(Listed(f"virtual:{b['board']}", "virtual", state,
                          f"sshd on 127.0.0.1:{b['port']}"))
        if b.get("serial"):
            out.append(Listed(f"virtual:{b['board']}/serial", "virtual", state,
                              "serial console (pty)"))
    return out


def serial_targets(dev: Path = Path("/dev")) -> list[Listed]:
    """USB-serial adapters and CDC-ACM consoles, by their stable by-id name when there is one."""
    by_id = {}
    for link in sorted(glob.glob(str(dev / "serial" / "by-id" / "*"))):
        by_id[os.path.realpath(link)] = link
    found = sorted({*glob.glob(str(dev / "ttyUSB*")), *glob.glob(str(dev / "ttyACM*")),
                    *(os.path.realpath(p) for p in by_id)})
    return [Listed(f"serial://{by_id.get(p, p)}?baud=115200", "serial", "present", p)
            for p in found]


def ssh_targets(known_hosts: Path) -> list[Listed]:
    """Hosts pinned in ``known_hosts`` (``host`` or ``[host]:port`` entries)."""
    try:
        lines = known_hosts.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return []
    seen: dict[str, Listed] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or line.startswith(("#", "|", "@")):
            continue
        key_type = fields[1]
        for name in fields[0].split(","):
            host, port = name, 22
            if name.startswith("[") and "]:" in name:
                host, _, port_text = name[1:].partition("]:")
                port = int(port_text) if port_text.isdigit() else 22
            uri = f"ssh://USER@{host}" + (f":{port}" if port != 22 else "")
            seen.setdefault(uri, Listed(uri, "ssh", "pinned", f"{key_type} in {known_hosts}"))
    return list(seen.values())


def list_targets(known_hosts: Path | None = None) -> list[Listed]:
    if known_hosts is None:
        from edgepack.device.ssh import default_known_hosts

        known_hosts = default_known_hosts()
    return [*virtual_targets(), *serial_targets(), *ssh_targets(known_hosts)]
