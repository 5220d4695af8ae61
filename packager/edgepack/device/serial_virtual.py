# SPDX-License-Identifier: Apache-2.0
"""A virtual serial console: a real busybox shell of the board's architecture behind a pty.

``start_serial_console`` fetches Debian's ``busybox-static`` for the board's architecture
(``apt-get download`` + ``dpkg -x`` into the sysroot cache, no multiarch install), then runs

    socat pty,link=<tty>,raw,echo=0 EXEC:"<busybox> sh -i",pty,setsid,ctty,stderr,sane

so the host opens ``<tty>`` with pyserial exactly like a USB-serial adapter, and an aarch64
(or armhf) busybox runs under qemu-user (binfmt) on the other side. The shell sees a pty in
cooked mode with echo, like a getty console, so the host meets the real quirks: echoed input,
``\\r\\n`` line ends, wrapped long lines and ``ESC [6n`` cursor queries from line editing.
With ``login_user`` set, a small gate script asks ``login:`` (and ``Password:`` when a
password is set) before it execs the interactive shell, to exercise login handling.

The shell's working directory and ``HOME`` are the board's device root, the same folder the
SSH virtual board serves. ``QEMU_LD_PREFIX`` points qemu-user at the board's C library (the
cross sysroot, as on the SSH virtual board), so dynamically linked board programs (the SDK
runner) find ``/lib/ld-linux-*.so`` the way they would in a board's rootfs. A pty ignores
the baud rate, but it keeps the speed a program sets on it: the shell's own tty (the console's
``device_pty``) starts at the board's console baud, the agent switches it with ``BAUD``, and
``faultproxy.FaultProxy(..., device_pty=console.device_pty)`` paces the line at whatever rate
is set there, so a test sees the rate the device really runs at.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

from edgepack.build.sysroot import ensure_sysroot
from edgepack.errors import DeviceError, ToolchainError, UsageError
from edgepack.fsutil import write_atomic
from edgepack.spec.arch import ARCHES, arch_facts

STATE_FILE = "serial-console.json"
# socat processes started by this process, kept so they are reaped (not left to __del__).
_RUNNING: dict[int, subprocess.Popen[bytes]] = {}
DEFAULT_BAUD = 115_200


class SerialConsole(dict[str, Any]):
    """A running virtual console, as a plain JSON-able dict (virtual boards store it as is).

    Keys: ``board``, ``arch``, ``tty`` (the host end: open it with pyserial), ``device_pty``
    (the shell's own tty, where the agent sets its line rate), ``pid`` (socat),
    ``pids`` (``{"socat": pid}``: what stops it), ``device_root``, ``busybox``, ``log``,
    ``login_user``, ``password``, ``baud`` and ``uri`` (``serial://<tty>?baud=N[&user=U]``).
    """

    @property
    def tty(self) -> str:
        return str(self["tty"])

    @property
    def device_pty(self) -> str:
        return str(self["device_pty"])

    @property
    def pid(self) -> int:
        return int(self["pid"])

    @property
    def device_root(self) -> str:
        return str(self["device_root"])

    @property
    def login_user(self) -> str | None:
        user = self.get("login_user")
        return str(user) if user else None

    @property
    def password(self) -> str | None:
        pw = self.get("password")
        return str(pw) if pw else None

    @property
    def baud(self) -> int:
        return int(self.get("baud", DEFAULT_BAUD))

    @property
    def uri(self) -> str:
        return str(self["uri"])

    def to_json(self) -> str:
        return json.dumps(dict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SerialConsole:
        return cls(json.loads(text))


def debian_arch(arch: str) -> str:
    """The Debian architecture of busybox-static for an arch (edgepack's, Debian's or
    ``uname -m``'s name)."""
    try:
        return arch_facts(arch).debian
    except KeyError:
        raise UsageError(
            f"board arch {arch!r} has no busybox for a virtual serial console "
            f"(known: {', '.join(sorted(ARCHES))})"
        ) from None


def fetch_busybox(arch: str, cache_dir: Path | None = None) -> Path:
    """The path of a static busybox for ``arch``, fetched once into the sysroot cache."""
    tree = ensure_sysroot(debian_arch(arch), ["busybox-static"], cache_dir).path
    busybox = tree / "bin" / "busybox"
    if not busybox.is_file():
        raise ToolchainError(f"busybox-static unpacked into {tree} but has no bin/busybox")
    return busybox


_GATE_SCRIPT = """\
# A login gate in front of the console shell, like getty + login on a board.
echo ''
echo 'edgepack virtual board {board} ({arch})'
while :; do
  printf {login_prompt}
  read -r user || exit 1
  pw=''
  if [ -n {password} ]; then
    printf {password_prompt}
    stty -echo
    read -r pw
    stty echo
    echo ''
  fi
  if [ "$user" = {user} ] && [ "$pw" = {password} ]; then
    echo 'Welcome.'
    exec {busybox} sh -i
  fi
  sleep 1
  echo 'Login incorrect'
done
"""


def _board_facts(board: object) -> tuple[str, str]:
    """(id, arch) of a board record, or of a plain arch name such as ``"aarch64"``."""
    if isinstance(board, str):
        return board, board
    board_id = getattr(board, "id", None)
    arch = getattr(board, "arch", None)
    if not isinstance(board_id, str) or not isinstance(arch, str):
        raise TypeError("board must be an arch name or a record with str `id` and `arch`")
    return board_id, arch


def _ld_prefix(board: object) -> str | None:
    """The folder that plays the board's rootfs for qemu-user, or None (native or arch only)."""
    if getattr(board, "qemu", None) is None:
        return None
    from edgepack.build.qemu import default_ld_prefix

    return str(default_ld_prefix(board))  # type: ignore[arg-type]


def _check_socat_safe(path: Path) -> None:
    # socat splits addresses on these characters; a path holding one would be cut.
    if any(c in str(path) for c in " ,:!'\"\\"):
        raise UsageError(f"path {path} has a character socat cannot pass (space , : ! quotes)")


def start_serial_console(
    board: object,
    state_dir: Path,
    *,
    device_root: Path | None = None,
    login_user: str | None = None,
    password: str | None = None,
    cache_dir: Path | None = None,
    baud: int | None = None,
    prompts: tuple[str, str] | None = None,
    timeout: float = 15.0,
) -> SerialConsole:
    """Start a busybox shell of the board's arch behind a pty and return its console.

    ``board`` is a board record (``id`` and ``arch`` attributes) or an arch name.
    ``device_root`` defaults to ``<state_dir>/root`` (the SSH virtual board's root).
    ``prompts``: what the login gate prints to ask for the user and the password (default
    ``"<board> login: "`` and ``"Password: "``), to try a board file's console prompts. The
    console is described in ``<state_dir>/serial-console.json``; stop it with
    ``stop_serial_console``.
    """
    board_id, arch = _board_facts(board)
    board_console = getattr(board, "console", None)
    if baud is None:
        baud = int(getattr(board_console, "baud", DEFAULT_BAUD))
    socat = shutil.which("socat")
    if socat is None:
        raise ToolchainError("socat not found", hint="run `bash scripts/setup.sh` (installs socat)")
    busybox = fetch_busybox(arch, cache_dir)
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    root = (device_root or state_dir / "root").resolve()
    root.mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    tty = state_dir / "ttyCONSOLE"
    log = state_dir / "serial-console.log"
    for p in (busybox, state_dir, root):
        _check_socat_safe(p)
    if tty.is_symlink() or tty.exists():
        tty.unlink()

    if login_user:
        gate = state_dir / "login-gate.sh"
        text = _GATE_SCRIPT.format(
            board=board_id, arch=arch, user=shlex.quote(login_user),
            password=shlex.quote(password or ""), busybox=busybox,
            login_prompt=shlex.quote(prompts[0] if prompts else f"{board_id} login: "),
            password_prompt=shlex.quote(prompts[1] if prompts else "Password: "),
        )
        fd = os.open(gate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        program = f"{busybox} sh {gate}"
    else:
        program = f"{busybox} sh -i"

    env = {
        # Busybox's standalone shell prefers its own applets; the board's own folder comes
        # first so an uploaded agent is found by name.
        "PATH": f"{root}/bin:{busybox.parent}",
        "HOME": str(root),
        "TERM": "vt100",
        "PS1": "# ",
        "ENV": "",
    }
    # The board's rootfs: its loader and C library, where qemu-user looks for
    # /lib/ld-linux-*.so and libc.so.6 (the SSH virtual board's sshd sets the same).
    ld_prefix = _ld_prefix(board)
    if ld_prefix is not None:
        env["QEMU_LD_PREFIX"] = ld_prefix
    # The shell's pty gets the console's rate from socat itself (b<baud>, applied before the
    # exec): busybox's line editing saves the termios it starts with and writes them back after
    # every line, so a rate set on the pty after the shell started was undone by its first
    # command about one time in two (the line then ran at 38400 against the host's rate).
    cmd = [
        socat, "-d", "-d",
        f"pty,link={tty},raw,echo=0",
        f"EXEC:{program},pty,setsid,ctty,stderr,sane,b{baud}",
    ]
    with open(log, "ab") as logf:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
            start_new_session=True,
        )
    _RUNNING[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while not tty.exists():
        if proc.poll() is not None:
            raise DeviceError(f"socat exited with {proc.returncode} before the console "
                              f"came up; see {log}")
        if time.monotonic() > deadline:
            _kill(proc.pid)
            raise DeviceError(f"virtual serial console did not come up within {timeout:.0f}s; "
                              f"see {log}")
        time.sleep(0.02)

    try:
        device_pty = _shell_pty(proc, deadline)
        _set_speed(device_pty, baud)
    except DeviceError:
        _kill(proc.pid)
        raise
    uri = f"serial://{tty}?baud={baud}" + (f"&user={login_user}" if login_user else "")
    console = SerialConsole(
        board=board_id, arch=arch, tty=str(tty), device_pty=device_pty, pid=proc.pid,
        pids={"socat": proc.pid},
        device_root=str(root), busybox=str(busybox), log=str(log), login_user=login_user,
        password=password, baud=baud, uri=uri,
    )
    write_atomic(state_dir / STATE_FILE, console.to_json())  # 0600: it holds the password
    return console


def _shell_pty(proc: subprocess.Popen[bytes], deadline: float) -> str:
    """The pty socat gave the shell (its child's stdin), e.g. ``/dev/pts/7``."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    while True:
        for child in children.read_text().split() if children.exists() else []:
            try:
                link = os.readlink(f"/proc/{child}/fd/0")
            except OSError:
                continue
            if link.startswith("/dev/pts/"):
                return link
        if proc.poll() is not None or time.monotonic() > deadline:
            raise DeviceError("the virtual console's shell did not start (no pty on its "
                              "stdin)")
        time.sleep(0.02)


def _set_speed(pty: str, baud: int) -> None:
    """Set the line rate of ``pty`` as a board's getty sets its console's."""
    speed = getattr(termios, f"B{baud}", None)
    if speed is None:
        raise UsageError(f"baud {baud} has no termios speed on this host")
    fd = os.open(pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = speed
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    finally:
        os.close(fd)


def load_serial_console(state_dir: Path) -> SerialConsole | None:
    state = state_dir / STATE_FILE
    if not state.is_file():
        return None
    return SerialConsole.from_json(state.read_text())


def _kill(pid: int, grace: float = 3.0) -> None:
    """SIGTERM the process group socat leads, then SIGKILL after ``grace`` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its existence instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            done = 0
        if done:
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def stop_serial_console(console: SerialConsole | int) -> None:
    """Stop a console (or the socat pid it was started with), and its shell."""
    pid = console if isinstance(console, int) else console.pid
    _kill(pid)
    proc = _RUNNING.pop(pid, None)
    if proc is not None:
        proc.wait()
    if isinstance(console, SerialConsole):
        tty = Path(console.tty)
        if tty.is_symlink():
            tty.unlink()
