# SPDX-License-Identifier: Apache-2.0
"""The agent started over its stdin/stdout (what an SSH exec channel carries), for tests that
need no sshd: a byte stream over the pipes and a context manager that starts and ends it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from edgepack.device.client import AgentClient
from edgepack.device.pipes import PipeStream


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
