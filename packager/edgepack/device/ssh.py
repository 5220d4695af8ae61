# SPDX-License-Identifier: Apache-2.0
"""SSH transport (paramiko) with pinned host keys.

- Host keys are checked against a known_hosts file: edgepack's own
  (``~/.config/edgepack/known_hosts``) unless ``--known-hosts`` names one. An unknown key is
  refused with its fingerprint; ``--trust-new-host`` accepts it and records it. A changed key
  is always refused; no paramiko policy that accepts unknown keys is ever installed.
- Every blocking step has a timeout (connect, banner, auth, channel) and the transport sends
  keepalives, so a dead board is reported instead of waited on.
- The agent runs behind an exec channel without a PTY (a PTY would translate CR/LF and echo,
  corrupting frames); frames flow over its stdin/stdout.
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paramiko

from edgepack.device.client import ConnectionLost
from edgepack.device.targets import Target, query_of, root_of
from edgepack.device.transport import CommandResult, Link, TransportOptions
from edgepack.errors import DeviceError, KeyFileError, UsageError
from edgepack.fsutil import write_atomic

KEEPALIVE_S = 5


def default_known_hosts() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgepack" / "known_hosts"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH style: ``SHA256:<base64 without padding>``."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class HostKeyRefused(DeviceError):
    pass


class _PinnedPolicy(paramiko.MissingHostKeyPolicy):
    """Unknown keys: refuse with the fingerprint, or record them when trusting new hosts."""

    def __init__(self, known_hosts: Path, trust_new: bool) -> None:
        self.known_hosts = known_hosts
        self.trust_new = trust_new

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        if not self.trust_new:
            raise HostKeyRefused(
                f"unknown host key for {hostname}: {key.get_name()} {fingerprint(key)} "
                f"(not in {self.known_hosts})",
                hint="check the fingerprint on the device (ssh-keygen -lf on its host key), "
                "then pass --trust-new-host to record it")
        _append_known_host(self.known_hosts, hostname, key)


def _append_known_host(path: Path, hostname: str, key: paramiko.PKey) -> None:
    """Adds one line, writing a new file next to the old one and renaming it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    write_atomic(path, old + line)


class ChannelStream:
    """A ``ByteStream`` over a paramiko channel (stdout only; stderr is kept for messages)."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self.stderr = bytearray()

    def write(self, data: bytes) -> None:
        try:
            self.channel.sendall(data)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ConnectionLost(f"SSH channel to the agent closed: {exc}") from None

    def read(self, max_bytes: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            if self.channel.recv_stderr_ready():
                self.stderr += self.channel.recv_stderr(65536)
            if self.channel.recv_ready():
                return bytes(self.channel.recv(max_bytes))
            if self.channel.exit_status_ready() or self.channel.closed or \
                    self.channel.eof_received:
                if self.channel.recv_ready():
                    continue
                tail = self.stderr.decode(errors="replace").strip()[-500:]
                raise ConnectionLost("the agent's SSH channel closed" +
                                     (f": {tail}" if tail else ""))
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            select.select([self.channel], [], [], min(left, 0.5))

    def close(self) -> None:
        self.channel.close()


def parse_uri(uri: str, flag: str = "--target") -> Target:
    """``ssh://user@host[:port][?identity=FILE&root=DIR]``."""
    parts = urlsplit(uri)
    query = query_of(uri, {"identity", "root"}, flag)
    root = root_of(query, uri, flag)
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
                  identity=query.get("identity"), root=root)


class SshTransport:
    # A reliable stream: the default chunk size, no retransmission, no compression (that
    # pays on slow links only).
    link = Link()

    def __init__(self, target: Target, options: TransportOptions) -> None:
        self.target = target
        pinned = Path(target.known_hosts) if target.known_hosts else None
        self.known_hosts = options.known_hosts or pinned or default_known_hosts()
        self.client = paramiko.SSHClient()
        if self.known_hosts.exists():
            try:
                self.client.load_host_keys(str(self.known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise KeyFileError(f"{self.known_hosts}: unreadable known_hosts file: "
                                   f"{exc}") from None
        self.client.set_missing_host_key_policy(
            _PinnedPolicy(self.known_hosts, options.trust_new_host))
        identity = options.identity or (Path(target.identity) if target.identity else None)
        if identity is not None and not identity.is_file():
            raise KeyFileError(f"{identity}: SSH identity file not found")
        t = options.connect_timeout
        try:
            self.client.connect(
                target.host, port=target.port, username=target.user,
                key_filename=str(identity) if identity else None,
                look_for_keys=identity is None, allow_agent=identity is None,
                timeout=t, banner_timeout=t, auth_timeout=t, channel_timeout=t)
        except paramiko.BadHostKeyException as exc:
            raise HostKeyRefused(
                f"host key for {target.host_key_name} CHANGED: expected "
                f"{fingerprint(exc.expected_key)}, got {exc.key.get_name()} "
                f"{fingerprint(exc.key)} (pinned in {self.known_hosts}); refusing to connect",
                hint="if the device was really re-installed, remove its line from "
                f"{self.known_hosts} yourself; --trust-new-host never replaces a pinned key"
            ) from None
        except paramiko.AuthenticationException as exc:
            raise DeviceError(f"{target.uri}: SSH authentication failed: {exc}",
                              hint="pass the key with ?identity=FILE in the target") from None
        except (OSError, paramiko.SSHException, EOFError) as exc:
            if isinstance(exc, HostKeyRefused):
                raise
            raise DeviceError(f"{target.uri}: cannot connect: {exc}",
                              hint="is the board up and reachable?") from None
        transport = self.client.get_transport()
        if transport is None:
            raise DeviceError(f"{target.uri}: SSH connection closed right after connecting")
        transport.set_keepalive(KEEPALIVE_S)
        self.transport = transport

    def _channel(self, command: str) -> paramiko.Channel:
        try:
            chan = self.transport.open_session(timeout=10.0)
            chan.exec_command(command)  # no PTY: binary-clean stdio, separate stderr
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise ConnectionLost(f"{self.target.uri}: cannot open an SSH channel: {exc}") from None
        return chan

    def open_stream(self, command: str) -> ChannelStream:
        return ChannelStream(self._channel(command))

    def run_command(self, command: str, timeout: float = 60.0,
                    stdin: bytes | None = None) -> CommandResult:
        chan = self._channel(command)
        out, err = bytearray(), bytearray()
        if stdin is not None:
            try:
                chan.sendall(stdin)
            except (OSError, paramiko.SSHException) as exc:
                raise ConnectionLost(f"{self.target.uri}: sending input failed: {exc}") from None
        chan.shutdown_write()
        deadline = time.monotonic() + timeout
        # Drain both streams while waiting, so a chatty command cannot block (paramiko #448).
        while True:
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if chan.exit_status_ready() and not chan.recv_ready() and \
                    not chan.recv_stderr_ready():
                break
            if time.monotonic() > deadline:
                chan.close()
                raise DeviceError(f"{self.target.uri}: command did not finish within "
                                  f"{timeout:.0f}s: {command}")
            select.select([chan], [], [], 0.2)
        code = chan.recv_exit_status()
        chan.close()
        return CommandResult(code, bytes(out), bytes(err))

    def upload(self, local: Path, remote: str, mode: int = 0o755) -> None:
        """``cat >`` through an exec channel (no SFTP needed), then a SHA-256 check and rename."""
        data = local.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        tmp = remote + ".upload-tmp"
        q = _quote
        parent = remote.rsplit("/", 1)[0] or "/"
        res = self.run_command(f"mkdir -p {q(parent)} && cat > {q(tmp)}", timeout=600.0,
                               stdin=data)
        if res.exit_code != 0:
            raise DeviceError(f"{self.target.uri}: upload to {remote} failed: "
                              f"{res.stderr.decode(errors='replace').strip()}")
        check = self.run_command(
            f"(sha256sum {q(tmp)} 2>/dev/null || openssl dgst -sha256 -r {q(tmp)}) | "
            f"cut -c1-64")
        got = check.stdout.decode(errors="replace").strip()
        if got and got != digest:
            self.run_command(f"rm -f {q(tmp)}")
            raise DeviceError(f"{self.target.uri}: upload of {local.name} arrived corrupted "
                              f"(sha256 {got}, expected {digest})")
        fin = self.run_command(f"chmod {mode:o} {q(tmp)} && mv -f {q(tmp)} {q(remote)}")
        if fin.exit_code != 0:
            raise DeviceError(f"{self.target.uri}: cannot install {remote}: "
                              f"{fin.stderr.decode(errors='replace').strip()}")

    def close(self) -> None:
        self.client.close()


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def connect(target: Target, options: TransportOptions) -> SshTransport:
    return SshTransport(target, options)
