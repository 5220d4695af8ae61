# SPDX-License-Identifier: Apache-2.0
"""A fake transport for unit tests: the "device" is a folder on this host.

A unit-test aid, not proof: commands run in this host's ``/bin/sh`` and the agent as a local
process over pipes, so nothing of a real link is exercised (no SSH, no console, no noise, no
board C library). Tests of transports and of whole benches use real parts (``tests/device``:
sshd, ptys with busybox under qemu, labgrid). What the fake is for: code that drives *some*
transport (``start_agent``, the registry, a command that runs something on a device) tested
in milliseconds, with a record of what it asked the transport to do.

It is not registered by default; a test registers it (``register()``) and removes it again
(``unregister()``). URI: ``fake:///ABSOLUTE/ROOT`` (the folder that stands for the device;
device paths are host paths under it, and everything outside it is refused).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from edgepack.device.pipes import PipeStream
from edgepack.device.targets import Target, query_of
from edgepack.device.transport import (
    CommandResult,
    Link,
    TransportOptions,
    register_transport,
    unregister_transport,
)
from edgepack.errors import DeviceError, UsageError

SCHEME = "fake"


def parse_uri(uri: str, flag: str = "--target") -> Target:
    """``fake:///ABSOLUTE/ROOT``: the root is both the device and its install root."""
    parts = urlsplit(uri)
    query_of(uri, (), flag)
    if parts.netloc or not parts.path.startswith("/"):
        raise UsageError(f"{flag} {uri}: use fake:///ABSOLUTE/FOLDER")
    return Target(SCHEME, uri, root=parts.path)


@dataclass
class FakeTransport:
    """The ``Transport`` protocol over a local folder; ``calls`` records what was asked."""

    target: Target
    link: Link = field(default_factory=Link)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (what, argument)
    _streams: list[PipeStream] = field(default_factory=list)

    @property
    def root(self) -> Path:
        assert self.target.root is not None
        return Path(self.target.root)

    def _inside(self, remote: str) -> Path:
        path = Path(os.path.normpath(remote))
        if not path.is_relative_to(self.root):
            raise DeviceError(f"fake device {self.root}: {remote} is outside the device folder")
        return path

    def run_command(self, command: str, timeout: float = 60.0) -> CommandResult:
        self.calls.append(("run_command", command))
        try:
            proc = subprocess.run(["/bin/sh", "-c", command], cwd=self.root,
                                  capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"fake device: {command!r} timed out after {timeout:.0f}s"
                              ) from None
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def upload(self, local: Path, remote: str, mode: int = 0o755) -> None:
        self.calls.append(("upload", remote))
        dest = self._inside(remote)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".fake-upload")
        shutil.copyfile(local, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)

    def open_stream(self, command: str) -> PipeStream:
        self.calls.append(("open_stream", command))
        proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=self.root,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        stream = PipeStream(proc, who="fake device")
        self._streams.append(stream)
        return stream

    def close(self) -> None:
        self.calls.append(("close", ""))
        for stream in self._streams:
            stream.close()
        self._streams.clear()


def connect(target: Target, options: TransportOptions) -> FakeTransport:
    return FakeTransport(target)


def register() -> None:
    register_transport(SCHEME, parse=parse_uri, connect=connect, usage="fake:///FOLDER")


def unregister() -> None:
    unregister_transport(SCHEME)
