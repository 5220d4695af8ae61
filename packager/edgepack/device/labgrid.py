# SPDX-License-Identifier: Apache-2.0
"""``labgrid://PLACE``: a board in a labgrid farm (docs/board-farm.md).

The place is acquired through the labgrid coordinator for as long as the transport is open and
released on close (also after Ctrl-C, and at interpreter exit as a last resort). The board is
reached through the place's resources: ``NetworkService`` (address, port, username) for SSH;
``NetworkSerialPort`` (ser2net) is the console; a power resource lets a board that stops
answering be power-cycled once before giving up.

Target: ``labgrid://PLACE?coordinator=HOST:PORT&identity=KEY&root=DIR&wait=SECONDS``
(coordinator default: ``$LG_COORDINATOR``, else labgrid's 127.0.0.1:20408; ``wait``: how long to
wait for a place another user holds, default 0 = fail at once naming the holder).

The coordinator is driven through ``labgrid-client``, labgrid's stable command-line interface
(``pip install labgrid``); its Python client API is internal and changes between releases.
"""

from __future__ import annotations

import ast
import atexit
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from edgepack.device.client import ByteStream
from edgepack.device.targets import Target, check_install_root
from edgepack.device.transport import CommandResult, Link, Transport, TransportOptions
from edgepack.errors import DeviceError, ToolchainError, UsageError

PARAMS = {"coordinator", "identity", "root", "wait"}
POWER_CLASSES = ("NetworkPowerPort", "PDUDaemonPort", "YKUSHPowerPort", "USBPowerPort",
                 "SiSPMPowerPort", "TasmotaPowerPort", "ModbusTCPCoil")
_HELD = re.compile(r"already acquired by (\S+?)\.")
_BOOT_WAIT_S = 60.0


@dataclass(frozen=True)
class Place:
    name: str
    coordinator: str | None
    wait_s: float


def parse_labgrid(uri: str, flag: str = "--target") -> Target:
    """``labgrid://PLACE?...`` as a Target (scheme "labgrid", the place in ``host``)."""
    parts = urlsplit(uri)
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - PARAMS
    if unknown:
        raise UsageError(f"{flag} {uri}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(PARAMS))}")
    for key, values in query.items():
        if len(values) != 1 or not values[0]:
            raise UsageError(f"{flag} {uri}: give '{key}' once, with a value")
    if not parts.netloc or parts.path not in ("", "/"):
        raise UsageError(f"{flag} {uri}: name the place: labgrid://PLACE")
    wait = query.get("wait", ["0"])[0]
    try:
        if float(wait) < 0:
            raise ValueError
    except ValueError:
        raise UsageError(f"{flag} {uri}: wait must be a number of seconds >= 0") from None
    root = query.get("root", [None])[0]
    if root is not None and not root.startswith("/"):
        raise UsageError(f"{flag} {uri}: root must be an absolute path on the device")
    return Target("labgrid", uri, host=parts.netloc, port=0,
                  identity=query.get("identity", [None])[0], root=root)


def place_of(target: Target) -> Place:
    query = parse_qs(urlsplit(target.uri).query)
    return Place(target.host, query.get("coordinator", [None])[0],
                 float(query.get("wait", ["0"])[0]))


def _client_program() -> str:
    local = Path(sys.executable).parent / "labgrid-client"
    if local.is_file():
        return str(local)
    found = shutil.which("labgrid-client")
    if found is None:
        raise ToolchainError("labgrid-client not found (labgrid:// targets need labgrid)",
                             hint="pip install labgrid")
    return found


def labgrid_client(place: Place, *argv: str,
                   timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    cmd = [_client_program()]
    if place.coordinator:
        cmd += ["-x", place.coordinator]
    cmd += ["-p", place.name, *argv]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"labgrid place {place.name}: labgrid-client {' '.join(argv)} "
                          f"timed out after {timeout:.0f} s",
                          hint="is the coordinator running and reachable?") from None


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    text = (done.stderr or done.stdout).strip().splitlines()
    return text[-1].removeprefix("labgrid-client: Error: ") if text else f"exit {done.returncode}"


def acquire(place: Place, log: Any = None) -> None:
    """Acquire the place; wait up to ``place.wait_s`` while another user holds it."""
    deadline = time.monotonic() + place.wait_s
    waited = False
    while True:
        done = labgrid_client(place, "acquire")
        if done.returncode == 0:
            return
        message = _error_line(done)
        held = _HELD.search(message)
        if held is not None:
            holder = held.group(1)
        elif "already acquired place" in message:
            # labgrid locks per user@host: another bench of this user (a parallel CI job, or
            # one that was killed without releasing) holds it. Queue behind it like any holder.
            holder = f"{_holder(place) or 'this user'} (another session of this user; a stale "
            holder += f"lock is freed with: labgrid-client -p {place.name} release)"
        elif "matches nothing" in message:
            raise DeviceError(f"labgrid place {place.name} does not exist "
                              f"(coordinator {place.coordinator or 'default'})",
                              hint="list the places with: labgrid-client places")
        else:
            raise DeviceError(f"labgrid place {place.name}: cannot acquire: {message}")
        if time.monotonic() >= deadline:
            raise DeviceError(
                f"labgrid place {place.name} is held by {holder}"
                + (f" (waited {place.wait_s:.0f} s)" if place.wait_s else ""),
                hint="wait for it with ?wait=SECONDS in the target, or ask its holder")
        if not waited and log is not None:
            log(f"labgrid place {place.name} is held by {holder}; waiting up to "
                f"{place.wait_s:.0f} s")
        waited = True
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _holder(place: Place) -> str | None:
    """``host/user`` holding the place, from ``labgrid-client show``."""
    done = labgrid_client(place, "show")
    for line in done.stdout.splitlines():
        if line.strip().startswith("acquired:"):
            value = line.split(":", 1)[1].strip()
            return None if value in ("", "None") else value
    return None


def release(place: Place) -> None:
    labgrid_client(place, "release")


def place_resources(place: Place) -> dict[str, dict[str, Any]]:
    """The acquired place's resources: class -> params (from ``labgrid-client show``)."""
    done = labgrid_client(place, "show")
    if done.returncode != 0:
        raise DeviceError(f"labgrid place {place.name}: {_error_line(done)}")
    found: dict[str, dict[str, Any]] = {}
    blocks = re.split(r"^Acquired resource '[^']*' \([^)]*\):\n", done.stdout, flags=re.M)[1:]
    for block in blocks:
        body = "".join(line + "\n" for line in block.splitlines() if line.startswith(" "))
        try:
            data = ast.literal_eval(body.strip())
        except (ValueError, SyntaxError):
            continue
        if isinstance(data, dict) and "cls" in data:
            found.setdefault(str(data["cls"]), dict(data.get("params", {})))
    return found


def ssh_target(target: Target, place: Place, resources: dict[str, dict[str, Any]]) -> Target:
    service = resources.get("NetworkService")
    if service is None:
        raise DeviceError(f"labgrid place {place.name} has no NetworkService resource "
                          f"(has: {', '.join(sorted(resources)) or 'none'})",
                          hint="edgepack reaches the board over SSH: export a NetworkService "
                          "for it")
    user = str(service.get("username") or "root")
    address = str(service["address"])
    port = int(service.get("port", 22))
    host = f"[{address}]" if ":" in address else address
    uri = f"ssh://{quote(user)}@{host}:{port}"
    return replace(target, scheme="ssh", uri=uri, host=address, port=port, user=user)


class LabgridTransport:
    """SSH to the place's NetworkService while the place is held; close() releases it."""

    def __init__(self, target: Target, options: TransportOptions) -> None:
        from edgepack.device import ssh

        self.target = target
        self.place = place_of(target)
        acquire(self.place, log=lambda m: print(m, file=sys.stderr))
        self._released = False
        atexit.register(self.close)
        try:
            resources = place_resources(self.place)
            self.console = resources.get("NetworkSerialPort")  # ser2net: host, port
            inner = ssh_target(target, self.place, resources)
            check_install_root(inner)
            try:
                self._ssh: Transport = ssh.connect(inner, options)
            except DeviceError:
                if not any(c in resources for c in POWER_CLASSES):
                    raise
                self._ssh = self._power_cycle_and_connect(inner, options)
        except BaseException:
            self.close()
            raise

    def _power_cycle_and_connect(self, inner: Target, options: TransportOptions) -> Transport:
        from edgepack.device import ssh

        print(f"labgrid place {self.place.name}: board does not answer; power-cycling it",
              file=sys.stderr)
        done = labgrid_client(self.place, "power", "cycle")
        if done.returncode != 0:
            raise DeviceError(f"labgrid place {self.place.name}: power cycle failed: "
                              f"{_error_line(done)}")
        deadline = time.monotonic() + _BOOT_WAIT_S
        while True:
            try:
                return ssh.connect(inner, options)
            except DeviceError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(2.0)

    @property
    def link(self) -> Link:
        return self._ssh.link

    def run_command(self, command: str, timeout: float = 60.0) -> CommandResult:
        return self._ssh.run_command(command, timeout)

    def upload(self, local: Path, remote: str, mode: int = 0o755) -> None:
        self._ssh.upload(local, remote, mode)

    def open_stream(self, command: str) -> ByteStream:
        return self._ssh.open_stream(command)

    def close(self) -> None:
        if getattr(self, "_released", True):
            return
        self._released = True
        atexit.unregister(self.close)
        try:
            ssh_transport = getattr(self, "_ssh", None)
            if ssh_transport is not None:
                ssh_transport.close()
        finally:
            release(self.place)


def connect(target: Target, options: TransportOptions) -> LabgridTransport:
    return LabgridTransport(target, options)
