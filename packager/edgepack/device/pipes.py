# SPDX-License-Identifier: Apache-2.0
"""The agent client's byte stream over a local child's stdin/stdout: the agent started without
a transport (the fake transport, agent tests over stdio, the board's agent under qemu-user)."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess

from edgepack.device.client import ConnectionLost


class PipeStream:
    """``ByteStream`` over ``proc``'s pipes; ``who`` names the peer in errors."""

    def __init__(self, proc: subprocess.Popen[bytes], who: str = "agent") -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc, self.stdin, self.stdout, self.who = proc, proc.stdin, proc.stdout, who

    def write(self, data: bytes) -> None:
        try:
            self.stdin.write(data)
            self.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:
            raise ConnectionLost(f"{self.who}: its stdin is closed: {exc}") from None

    def read(self, max_bytes: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        if not ready:
            return b""
        data = os.read(self.stdout.fileno(), max_bytes)
        if not data:
            raise ConnectionLost(f"{self.who} closed its stdout")
        return data

    def close(self) -> None:
        """Closes the child's stdin (the agent exits on end of input), reaps it (killing it
        after 5 s) and closes its stdout."""
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.stdout.close()
