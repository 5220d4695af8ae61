# SPDX-License-Identifier: Apache-2.0
"""Virtual boards: a device root folder + a real OpenSSH sshd on 127.0.0.1 + qemu-user.

``up("hi3559a")`` creates ``<state>/virtual/hi3559a/`` (state: ``$EDGEPACK_STATE`` or
``~/.local/state/edgepack``) holding a generated host key and user key, an ``sshd_config``,
the device root ``root/`` and a ``known_hosts`` file that pins the host key, and starts
``/usr/sbin/sshd -f sshd_config -E sshd.log``. ARM binaries on the "board" run through
qemu-user's binfmt handler (static ones directly; ``QEMU_LD_PREFIX`` is set for dynamic ones).
``down`` stops every process it started, by pid. ``--serial`` adds a serial console through
``edgepack.device.serial_virtual.start_serial_console``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from edgepack.build.qemu import binfmt_registered, default_ld_prefix
from edgepack.device.targets import Target, parse_target
from edgepack.errors import DeviceError, ToolchainError, UsageError
from edgepack.fsutil import write_atomic
from edgepack.spec.boards import load_board

SSHD = "/usr/sbin/sshd"
STATE_FILE = "board.json"


def state_base() -> Path:
    env = os.environ.get("EDGEPACK_STATE")
    return Path(env) if env else Path.home() / ".local" / "state" / "edgepack"


def board_dir(board_id: str) -> Path:
    return state_base() / "virtual" / board_id


def parse_virtual(spec: str) -> str:
    if not spec.startswith("virtual:") or len(spec) <= len("virtual:"):
        raise UsageError(f"{spec!r}: name a virtual board as virtual:BOARD (e.g. virtual:hi3559a)")
    return spec[len("virtual:"):]


@dataclass(frozen=True)
class VirtualBoard:
    board: str
    dir: Path
    root: Path
    port: int
    user: str
    identity: Path
    known_hosts: Path
    host_key_line: str
    pids: dict[str, int]
    serial: dict[str, Any] | None

    @property
    def target(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}?identity={self.identity}&root={self.root}"

    def to_json(self) -> dict[str, Any]:
        return {
            "board": self.board, "dir": str(self.dir), "root": str(self.root),
            "port": self.port, "user": self.user, "identity": str(self.identity),
            "known_hosts": str(self.known_hosts), "known_hosts_entry": self.host_key_line,
            "target": self.target, "pids": self.pids, "serial": self.serial,
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _keygen(path: Path, comment: str) -> None:
    if path.exists():
        return
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise ToolchainError("ssh-keygen not found", hint="apt-get install openssh-client "
                             "(scripts/setup.sh installs it)")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _sshd_config(d: Path, port: int, env: dict[str, str]) -> str:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {d / 'host_ed25519'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        f"PidFile {d / 'sshd.pid'}",
        "Subsystem sftp internal-sftp",
        "ClientAliveInterval 5",
        "ClientAliveCountMax 3",
        "MaxStartups 50",
        "MaxSessions 50",
    ]
    if env:
        lines.append("SetEnv " + " ".join(f"{k}={v}" for k, v in env.items()))
    return "\n".join(lines) + "\n"


def load(board_id: str) -> VirtualBoard | None:
    f = board_dir(board_id) / STATE_FILE
    if not f.exists():
        return None
    d = json.loads(f.read_text())
    return VirtualBoard(d["board"], Path(d["dir"]), Path(d["root"]), d["port"], d["user"],
                        Path(d["identity"]), Path(d["known_hosts"]), d["known_hosts_entry"],
                        dict(d["pids"]), d.get("serial"))


def resolve_target(spec: str, flag: str = "--target") -> Target:
    """``virtual:BOARD`` (its SSH target) or ``virtual:BOARD/serial`` (its console), from the
    running virtual board's state: device root, user key and pinned host key included."""
    name = parse_virtual(spec)
    board_id, _, kind = name.partition("/")
    if kind not in ("", "ssh", "serial"):
        raise UsageError(f"{flag} {spec}: use virtual:{board_id} (SSH) or "
                         f"virtual:{board_id}/serial (its console)")
    vb = load(board_id)
    if vb is None or not all(_alive(p) for p in vb.pids.values()):
        raise UsageError(f"{flag} {spec}: virtual:{board_id} is not running",
                         hint=f"start it with: edgepack device up virtual:{board_id}"
                         + (" --serial" if kind == "serial" else ""))
    if kind == "serial":
        if not vb.serial:
            raise UsageError(f"{flag} {spec}: virtual:{board_id} has no serial console",
                             hint=f"edgepack device down virtual:{board_id}; then "
                             f"edgepack device up virtual:{board_id} --serial")
        uri = f"{vb.serial['uri']}&root={quote(str(vb.root))}"
        return replace(parse_target(uri, flag), uri=spec)
    return replace(parse_target(vb.target, flag), uri=spec, known_hosts=str(vb.known_hosts))


def _save(vb: VirtualBoard) -> None:
    write_atomic(vb.dir / STATE_FILE, json.dumps(vb.to_json(), indent=2, sort_keys=True) + "\n")


def up(board_id: str, *, serial: bool = False) -> VirtualBoard:
    board = load_board(board_id)
    existing = load(board.id)
    if existing is not None and all(_alive(p) for p in existing.pids.values()):
        if serial and existing.serial is None:
            raise UsageError(f"virtual:{board.id} is already up without --serial; "
                             "run 'edgepack device down' first")
        return existing
    if existing is not None:
        down(board.id)
    if not Path(SSHD).exists():
        raise ToolchainError(f"{SSHD} not found", hint="apt-get install openssh-server "
                             "(scripts/setup.sh installs it)")
    env: dict[str, str] = {}
    if board.qemu is not None:
        if not binfmt_registered(board.qemu):
            raise ToolchainError(f"binfmt_misc has no enabled {board.qemu} handler, so the "
                                 f"virtual board cannot run {board.arch} programs",
                                 hint="apt-get install qemu-user-static binfmt-support")
        env["QEMU_LD_PREFIX"] = str(default_ld_prefix(board))
    d = board_dir(board.id)
    root = d / "root"
    root.mkdir(parents=True, exist_ok=True)
    _keygen(d / "host_ed25519", f"edgepack-virtual-{board.id}")
    _keygen(d / "user_ed25519", "edgepack-virtual-user")
    (d / "authorized_keys").write_text((d / "user_ed25519.pub").read_text())
    host_pub = (d / "host_ed25519.pub").read_text().split()
    if os.getuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    last_error = ""
    for _attempt in range(5):
        port = _free_port()
        (d / "sshd_config").write_text(_sshd_config(d, port, env))
        pidfile = d / "sshd.pid"
        pidfile.unlink(missing_ok=True)
        log = d / "sshd.log"
        res = subprocess.run([SSHD, "-f", str(d / "sshd_config"), "-E", str(log)],
                             capture_output=True, text=True, check=False)
        pid = _wait_pidfile(pidfile) if res.returncode == 0 else None
        if pid is not None and _wait_listening(port, pid):
            break
        if pid is not None:
            _stop_pid(pid)
        last_error = (res.stderr.strip() or (log.read_text()[-800:] if log.exists() else ""))
    else:
        raise DeviceError(f"sshd for virtual:{board.id} did not start: {last_error}",
                          hint=f"see {d / 'sshd.log'}")
    line = f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}"
    (d / "known_hosts").write_text(line + "\n")
    vb = VirtualBoard(board.id, d, root, port, _user(), d / "user_ed25519", d / "known_hosts",
                      line, {"sshd": pid}, None)
    if serial:
        from edgepack.device.serial_virtual import start_serial_console  # the serial console part

        console = start_serial_console(board, d, device_root=root)
        info: dict[str, Any] = json.loads(console.to_json())
        info["target"] = console.uri
        pids = dict(vb.pids)
        pids["serial.console"] = console.pid
        vb = VirtualBoard(vb.board, d, root, port, vb.user, vb.identity, vb.known_hosts, line,
                          pids, info)
    _save(vb)
    return vb


def _wait_pidfile(pidfile: Path, timeout: float = 10.0) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = pidfile.read_text().strip()
            if text:
                return int(text)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return None


def _wait_listening(port: int, pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.settimeout(2.0)
                return s.recv(4).startswith(b"SSH")
        except OSError:
            time.sleep(0.05)
    return False


def _stop_pid(pid: int, timeout: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        with contextlib.suppress(ChildProcessError):  # reap it when it is our child
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def down(board_id: str | None = None) -> list[str]:
    """Stops the named virtual board (or all); returns the ids it stopped."""
    base = state_base() / "virtual"
    ids = [board_id] if board_id else sorted(p.name for p in base.glob("*") if p.is_dir())
    stopped = []
    for bid in ids:
        vb = load(bid)
        if vb is None:
            continue
        for pid in vb.pids.values():
            _stop_pid(pid)
        (vb.dir / STATE_FILE).unlink(missing_ok=True)
        stopped.append(bid)
    return stopped


def status() -> list[dict[str, Any]]:
    base = state_base() / "virtual"
    out = []
    for p in sorted(base.glob("*")):
        vb = load(p.name)
        if vb is None:
            continue
        info = vb.to_json()
        info["running"] = all(_alive(pid) for pid in vb.pids.values())
        out.append(info)
    return out
