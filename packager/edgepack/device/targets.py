# SPDX-License-Identifier: Apache-2.0
"""``--target`` URIs: the ``Target`` record and ``parse_target``, which hands each URI to the
transport that registered its scheme (``device/transport.py``): ``ssh://user@host[:port]``
(``ssh.py``), ``serial:///dev/ttyX?baud=N`` (``serial.py``), ``labgrid://PLACE``
(``labgrid.py``) and ``virtual:BOARD[/serial]`` (a running virtual board, ``virtual.py``).

Every scheme takes ``root=`` (install root on the device, overriding the board file's); the
rest is the transport's own (``identity`` for ssh, ``baud`` and ``user`` for serial).

A target never installs into the host's own folders by accident: a target that is this
machine (an SSH host that is loopback, this machine's name or one of its addresses, or a serial
pseudo-terminal, whose other end is a program on this host) needs an explicit ``root=``
(``check_install_root``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from edgepack.errors import UsageError


@dataclass(frozen=True)
class Target:
    scheme: str  # the transport's scheme: "ssh" | "serial" | "labgrid" | a registered one
    uri: str
    host: str = ""
    port: int = 22
    user: str = ""  # ssh: login user; serial: "" = the board file's console login
    device: str = ""  # serial: the tty path
    baud: int | None = None  # serial: None = the board file's console baud (else 115200)
    identity: str | None = None
    root: str | None = None
    known_hosts: str | None = None  # ssh: the file that pins the host key (virtual boards)

    @property
    def host_key_name(self) -> str:
        """How known_hosts names this host (OpenSSH: ``[host]:port`` unless port 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def parse_target(uri: str, flag: str = "--target") -> Target:
    """The ``Target`` of ``uri``, parsed by the transport registered for its scheme."""
    from edgepack.device.transport import parse_uri

    return parse_uri(uri, flag)


# -- helpers for the transports' URI parsers ------------------------------------------------

def query_of(uri: str, allowed: Collection[str], flag: str) -> dict[str, str]:
    """The query parameters of ``uri``, each given once with a value, all of them known."""
    query = parse_qs(urlsplit(uri).query, keep_blank_values=True)
    unknown = set(query) - set(allowed)
    if unknown:
        raise UsageError(f"{flag} {uri}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    out: dict[str, str] = {}
    for key, values in query.items():
        if len(values) > 1 or not values[0]:
            raise UsageError(f"{flag} {uri}: give '{key}' once, with a value")
        out[key] = values[0]
    return out


def root_of(query: dict[str, str], uri: str, flag: str) -> str | None:
    root = query.get("root")
    if root is not None and not root.startswith("/"):
        raise UsageError(f"{flag} {uri}: root must be an absolute path on the device")
    return root


# -- this machine? --------------------------------------------------------------------------

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
