# SPDX-License-Identifier: Apache-2.0
"""Parse ``--target`` URIs: ``ssh://user@host[:port]``, ``serial:///dev/ttyX?baud=N`` and
``virtual:BOARD[/serial]`` (a running virtual board, resolved from its state) and
``labgrid://PLACE`` (a place in a labgrid farm: device/labgrid.py parses and reaches it).

Query parameters: ``identity`` (ssh: private key file), ``root`` (install root on the device,
overriding the board file's), ``baud`` and ``user`` (serial).

A target never installs into the host's own folders by accident: a target that is this
machine (an SSH host that is loopback, this machine's name or one of its addresses, or a serial
pseudo-terminal, whose other end is a program on this host) needs an explicit ``root=``
(``check_install_root``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from edgepack.errors import UsageError

SERIAL_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1500000)


@dataclass(frozen=True)
class Target:
    scheme: str  # "ssh" | "serial"
    uri: str
    host: str = ""
    port: int = 22
    user: str = ""
    device: str = ""  # serial: the tty path
    baud: int = 115200
    identity: str | None = None
    root: str | None = None
    known_hosts: str | None = None  # ssh: the file that pins the host key (virtual boards)

    @property
    def host_key_name(self) -> str:
        """How known_hosts names this host (OpenSSH: ``[host]:port`` unless port 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def _one(query: dict[str, list[str]], key: str, flag: str, uri: str) -> str | None:
    values = query.get(key)
    if not values:
        return None
    if len(values) > 1 or not values[0]:
        raise UsageError(f"{flag} {uri}: give '{key}' once, with a value")
    return values[0]


def parse_target(uri: str, flag: str = "--target") -> Target:
    if uri.startswith("virtual:"):
        from edgepack.device.virtual import resolve_target

        return resolve_target(uri, flag)
    if uri.startswith("labgrid://"):
        from edgepack.device.labgrid import parse_labgrid

        return parse_labgrid(uri, flag)
    parts = urlsplit(uri)
    query = parse_qs(parts.query, keep_blank_values=True)
    allowed = {"ssh": {"identity", "root"}, "serial": {"baud", "user", "root"}}
    if parts.scheme not in allowed:
        raise UsageError(
            f"{flag} {uri!r}: unknown scheme; use ssh://user@host[:port] or "
            "serial:///dev/ttyX?baud=115200")
    unknown = set(query) - allowed[parts.scheme]
    if unknown:
        raise UsageError(f"{flag} {uri}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(allowed[parts.scheme]))}")
    root = _one(query, "root", flag, uri)
    if root is not None and not root.startswith("/"):
        raise UsageError(f"{flag} {uri}: root must be an absolute path on the device")
    if parts.scheme == "ssh":
        if not parts.hostname:
            raise UsageError(f"{flag} {uri}: missing host; use ssh://user@host[:port]")
        if not parts.username:
            raise UsageError(f"{flag} {uri}: missing user; use ssh://user@host[:port]")
        try:
            port = parts.port or 22
        except ValueError:
            raise UsageError(f"{flag} {uri}: port must be a number 1..65535") from None
        if parts.password:
            raise UsageError(f"{flag} {uri}: passwords in the URI are not accepted; use a key "
                             "(?identity=FILE)")
        return Target("ssh", uri, host=parts.hostname, port=port, user=unquote(parts.username),
                      identity=_one(query, "identity", flag, uri), root=root)
    device = parts.path
    if parts.netloc or (not device.startswith("/dev/") and not device.startswith("/")):
        raise UsageError(f"{flag} {uri}: use serial:///dev/ttyX (three slashes, absolute path)")
    baud_text = _one(query, "baud", flag, uri) or "115200"
    if not baud_text.isdigit() or int(baud_text) not in SERIAL_BAUDS:
        raise UsageError(f"{flag} {uri}: baud must be one of "
                         f"{', '.join(str(b) for b in SERIAL_BAUDS)}")
    return Target("serial", uri, device=device, baud=int(baud_text),
                  user=_one(query, "user", flag, uri) or "root", root=root)


def is_this_host(target: Target) -> bool:
    """True when the target is this machine: installs there would land in the host's folders."""
    if target.scheme == "serial":
        # A pseudo-terminal's other end is a program on this host (a virtual console); a
        # USB-serial adapter or UART (ttyUSB*, ttyACM*, ttyS*) reaches another machine.
        return os.path.realpath(target.device).startswith("/dev/pts/")
    host = target.host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    if host in {socket.gethostname().lower(), socket.getfqdn().lower()}:
        return True
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False  # unresolvable: connecting will say so
    return any(_is_local_address(str(info[4][0])) for info in infos)


def _is_local_address(address: str) -> bool:
    """Loopback, or an address of one of this machine's interfaces (only those can be bound)."""
    addr = ipaddress.ip_address(address.split("%")[0])
    if addr.is_loopback:
        return True
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def check_install_root(target: Target, flag: str = "--target") -> None:
    """Refuse a target on this machine without ``root=``: the board file's install root
    (e.g. /opt/edgepack) would be the host's own folder."""
    if target.root is None and is_this_host(target):
        raise UsageError(
            f"{flag} {target.uri}: this target is this machine, so the board's install root "
            "would be a folder of the host itself; add ?root=DIR (a folder for the device "
            "files) or use virtual:BOARD for a virtual board")
