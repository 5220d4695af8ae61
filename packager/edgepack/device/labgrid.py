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

``labgrid://?tags=board=rpi4,lab=a``: any place carrying all these tags, chosen by the
coordinator through a labgrid reservation (``labgrid-client reserve``); ``wait`` as above, for
one of them to be free.

``via=console``: reach the board through its console (the place's ``NetworkSerialPort``, a
ser2net TCP port) with the serial transport instead of SSH: for boards without a network.

The coordinator is driven through ``labgrid-client``, labgrid's stable command-line interface
(``pip install labgrid``); its Python client API is internal and changes between releases.
"""

from __future__ import annotations

import ast
import atexit
import os
import re
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
from edgepack.errors import DeviceError, UsageError
from edgepack.programs import require_program

PARAMS = {"coordinator", "identity", "root", "tags", "via", "wait"}
VIAS = ("ssh", "console")
POWER_CLASSES = ("NetworkPowerPort", "PDUDaemonPort", "YKUSHPowerPort", "USBPowerPort",
                 "SiSPMPowerPort", "TasmotaPowerPort", "ModbusTCPCoil")
_HELD = re.compile(r"already acquired by (\S+?)\.")
_BOOT_WAIT_S = 60.0
_ALLOCATE_S = 5.0  # how long the coordinator may take to allocate a free place


@dataclass(frozen=True)
class Place:
    name: str  # "" until a reservation by tags is allocated
    coordinator: str | None
    wait_s: float
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def tag_text(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.tags)


def parse_tags(text: str, uri: str, flag: str = "--target") -> tuple[tuple[str, str], ...]:
    """``board=rpi4,lab=a`` -> (("board", "rpi4"), ("lab", "a"))."""
    tags = []
    for item in text.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise UsageError(f"{flag} {uri}: tags are KEY=VALUE[,KEY=VALUE...], got {item!r}")
        tags.append((key.strip(), value.strip()))
    return tuple(tags)


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
    if "tags" in query:
        parse_tags(query["tags"][0], uri, flag)
        if parts.netloc:
            raise UsageError(f"{flag} {uri}: name a place or give tags, not both "
                             "(labgrid://PLACE or labgrid://?tags=KEY=VALUE)")
    elif not parts.netloc:
        raise UsageError(f"{flag} {uri}: name the place (labgrid://PLACE) or choose one by "
                         "tags (labgrid://?tags=board=rpi4)")
    if parts.path not in ("", "/"):
        raise UsageError(f"{flag} {uri}: name the place: labgrid://PLACE")
    wait = query.get("wait", ["0"])[0]
    try:
        if float(wait) < 0:
            raise ValueError
    except ValueError:
        raise UsageError(f"{flag} {uri}: wait must be a number of seconds >= 0") from None
    if query.get("via", ["ssh"])[0] not in VIAS:
        raise UsageError(f"{flag} {uri}: via must be one of {', '.join(VIAS)}")
    root = query.get("root", [None])[0]
    if root is not None and not root.startswith("/"):
        raise UsageError(f"{flag} {uri}: root must be an absolute path on the device")
    return Target("labgrid", uri, host=parts.netloc, port=0,
                  identity=query.get("identity", [None])[0], root=root)


def place_of(target: Target) -> Place:
    query = parse_qs(urlsplit(target.uri).query)
    tags = parse_tags(query["tags"][0], target.uri) if "tags" in query else ()
    return Place(target.host, query.get("coordinator", [None])[0],
                 float(query.get("wait", ["0"])[0]), tags)


def _client_program() -> str:
    return require_program("labgrid-client", hint="pip install labgrid",
                           message="labgrid-client not found (labgrid:// targets need labgrid)")


def labgrid_client(place: Place, *argv: str, timeout: float = 60.0,
                   token: str | None = None) -> subprocess.CompletedProcess[str]:
    """``labgrid-client -p PLACE ARGV`` (``-p +`` with the reservation ``token``; no ``-p``
    for the commands about reservations and places, while the place has no name yet)."""
    cmd = [_client_program()]
    if place.coordinator:
        cmd += ["-x", place.coordinator]
    env = None
    if token is not None:
        env = {**os.environ, "LG_TOKEN": token}
        cmd += ["-p", "+"]
    elif place.name:
        cmd += ["-p", place.name]
    cmd += list(argv)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              env=env)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"labgrid place {place.name or place.tag_text}: labgrid-client "
                          f"{' '.join(argv)} timed out after {timeout:.0f} s",
                          hint="is the coordinator running and reachable?") from None


def list_places(place: Place) -> dict[str, dict[str, Any]]:
    """Every place of the coordinator: name -> {"tags": {...}, "acquired": holder or None}."""
    done = labgrid_client(replace(place, name=""), "-v", "places")
    if done.returncode != 0:
        raise DeviceError(f"labgrid coordinator {place.coordinator or 'default'}: "
                          f"{_error_line(done)}")
    places: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in done.stdout.splitlines():
        head = re.match(r"^Place '([^']+)':", line)
        if head:
            current = places.setdefault(head.group(1), {"tags": {}, "acquired": None})
        elif current is not None and line.strip().startswith("tags:"):
            for item in line.split(":", 1)[1].split(","):
                key, _, value = item.strip().partition("=")
                if key:
                    current["tags"][key] = value
        elif current is not None and line.strip().startswith("acquired:"):
            value = line.split(":", 1)[1].strip()
            current["acquired"] = None if value in ("", "None") else value
    return places


def reserve(place: Place, log: Any = None) -> tuple[Place, str]:
    """Choose a place by its tags through a labgrid reservation; returns the place (named)
    and the reservation token. Waits up to ``place.wait_s`` for a matching place to be free;
    the reservation is cancelled on failure."""
    wanted = dict(place.tags)
    places = list_places(place)
    matching = {n: p for n, p in places.items()
                if all(p["tags"].get(k) == v for k, v in wanted.items())}
    if not matching:
        raise DeviceError(f"no labgrid place has the tags {place.tag_text} (coordinator "
                          f"{place.coordinator or 'default'}; places: "
                          f"{', '.join(sorted(places)) or 'none'})",
                          hint="tag a place with: labgrid-client -p PLACE set-tags KEY=VALUE")
    done = labgrid_client(place, "reserve", "--shell", *(f"{k}={v}" for k, v in place.tags))
    token = re.search(r"LG_TOKEN=(\w+)", done.stdout)
    if done.returncode != 0 or token is None:
        raise DeviceError(f"labgrid tags {place.tag_text}: cannot reserve: {_error_line(done)}")
    held = {n: p["acquired"] for n, p in matching.items() if p["acquired"]}
    if held and len(held) == len(matching) and place.wait_s and log is not None:
        log(f"every labgrid place with tags {place.tag_text} is held ("
            + ", ".join(f"{n} by {h}" for n, h in sorted(held.items()))
            + f"); waiting up to {place.wait_s:.0f} s")
    try:
        waited = labgrid_client(place, "wait", token.group(1),
                                timeout=max(place.wait_s, _ALLOCATE_S))
    except DeviceError:  # timed out: every matching place stayed held
        labgrid_client(place, "cancel-reservation", token.group(1))
        holders = ", ".join(f"{n} by {h}" for n, h in sorted(held.items())) or "none free"
        raise DeviceError(f"every labgrid place with tags {place.tag_text} is held ({holders})"
                          + (f" (waited {place.wait_s:.0f} s)" if place.wait_s else ""),
                          hint="wait for one with ?wait=SECONDS in the target") from None
    allocated = re.search(r"^\s*main:\s*(\S+)\s*$",
                          waited.stdout.split("allocations:", 1)[-1], re.M)
    if waited.returncode != 0 or allocated is None:
        labgrid_client(place, "cancel-reservation", token.group(1))
        raise DeviceError(f"labgrid tags {place.tag_text}: reservation failed: "
                          f"{_error_line(waited)}")
    return replace(place, name=allocated.group(1)), token.group(1)


def cancel_reservation(place: Place, token: str) -> None:
    labgrid_client(replace(place, name=""), "cancel-reservation", token)


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    text = (done.stderr or done.stdout).strip().splitlines()
    return text[-1].removeprefix("labgrid-client: Error: ") if text else f"exit {done.returncode}"


def acquire(place: Place, log: Any = None, token: str | None = None) -> None:
    """Acquire the place; wait up to ``place.wait_s`` while another user holds it. With the
    ``token`` of a reservation, the place it was allocated."""
    deadline = time.monotonic() + place.wait_s
    waited = False
    while True:
        done = labgrid_client(place, "acquire", token=token)
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


def console_transport(target: Target, place: Place, resources: dict[str, dict[str, Any]],
                      options: TransportOptions) -> Transport:
    """The serial transport over the place's console: ser2net's raw TCP port opened as a
    pyserial ``socket://`` port (line settings are ser2net's, from its configuration)."""
    import serial as pyserial

    from edgepack.device import serial

    console = resources.get("NetworkSerialPort")
    if console is None:
        raise DeviceError(f"labgrid place {place.name} has no NetworkSerialPort resource "
                          f"(has: {', '.join(sorted(resources)) or 'none'})",
                          hint="export the board's console through ser2net, or use via=ssh")
    host, port = str(console.get("host") or "127.0.0.1"), int(console["port"])
    url = f"socket://{host}:{port}"
    try:
        handle = pyserial.serial_for_url(url, timeout=0.2)
    except (pyserial.SerialException, OSError) as exc:
        raise DeviceError(f"labgrid place {place.name}: cannot open its console {host}:{port} "
                          f"(ser2net): {exc}") from None
    inner = replace(target, scheme="serial", uri=f"serial://{url}", device=url, host="",
                    port=0)
    return serial.SerialTransport(inner, options, port=handle,
                                  password=os.environ.get(serial.PASSWORD_ENV) or None)


class LabgridTransport:
    """The board of a held place, over SSH to its NetworkService (or with ``via=console``
    over its ser2net console); close() releases the place."""

    def __init__(self, target: Target, options: TransportOptions) -> None:
        from edgepack.device import ssh

        self.target = target
        self.place = place_of(target)
        self.token: str | None = None

        def log(m: str) -> None:
            print(m, file=sys.stderr)

        if self.place.tags:
            self.place, self.token = reserve(self.place, log)
            log(f"labgrid tags {self.place.tag_text}: place {self.place.name}")
        try:
            acquire(self.place, log=log, token=self.token)
        except BaseException:
            if self.token is not None:
                cancel_reservation(self.place, self.token)
            raise
        self._released = False
        atexit.register(self.close)
        try:
            resources = place_resources(self.place)
            self.console = resources.get("NetworkSerialPort")  # ser2net: host, port
            if parse_qs(urlsplit(target.uri).query).get("via", ["ssh"])[0] == "console":
                self._ssh: Transport = console_transport(target, self.place, resources,
                                                         options)
                return
            inner = ssh_target(target, self.place, resources)
            check_install_root(inner)
            try:
                self._ssh = ssh.connect(inner, options)
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
            if self.token is not None:
                cancel_reservation(self.place, self.token)


def connect(target: Target, options: TransportOptions) -> LabgridTransport:
    return LabgridTransport(target, options)
