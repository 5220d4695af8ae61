# SPDX-License-Identifier: Apache-2.0
"""The agent started over its stdin/stdout (what an SSH exec channel carries), for tests that
need no sshd: a byte stream over the pipes and a context manager that starts and ends it."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from edgepack.device.client import AgentClient, ConnectionLost


class PipeStream:
    """The client's ``ByteStream`` over a child's pipes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc, self.stdin, self.stdout = proc, proc.stdin, proc.stdout

    def write(self, data: bytes) -> None:
        try:
            self.stdin.write(data)
            self.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise ConnectionLost(f"agent stdin closed: {exc}") from None

    def read(self, max_bytes: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        if not ready:
            return b""
        data = os.read(self.stdout.fileno(), max_bytes)
        if not data:
            raise ConnectionLost("agent closed its stdout")
        return data

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.stdin.close()


@contextlib.contextmanager
def stdio_agent(binary: Path, root: Path, *args: str, env: Mapping[str, str] | None = None,
                timeout: float = 20.0) -> Iterator[AgentClient]:
    """``binary --root ROOT ARGS`` over pipes, HELLO done; stopped (and reaped) on exit."""
    proc = subprocess.Popen([str(binary), "--root", str(root), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(env) if env is not None else None)
    try:
        client = AgentClient(PipeStream(proc), timeout=timeout, device="stdio-agent")
        client.hello()
        yield client
    finally:
        with contextlib.suppress(OSError, ValueError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
