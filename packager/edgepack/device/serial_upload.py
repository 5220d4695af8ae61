# SPDX-License-Identifier: Apache-2.0
"""Uploading a file through a console shell in short, verified chunks (agent bootstrap).

Each chunk is one command line that decodes the chunk into a scratch file, checks its hash on
the board, and writes it at its offset — and only then prints an OK marker:

    echo '<base64>' | base64 -d >F.c && [ "$(md5sum <F.c)" = "<md5>  -" ] &&
      dd if=F.c of=F.part bs=64 seek=<off/64> conv=notrunc && echo K<tok>:<off>

Without ``base64`` the chunk travels as ``printf`` octal escapes (4 bytes a byte at worst,
but every shell has printf). Without ``dd`` chunks are appended, guarded by the current
size so a repeated chunk is never appended twice. A chunk whose OK marker does not come back
is sent again: writing at an offset is idempotent. The chunk size adapts like Kermit's packets:
halved after a failure, doubled after a run of clean chunks. At the end the whole file's
SHA-256 is checked on the board, then it is chmod-ed and renamed into place.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass
from typing import Literal

from ..errors import DeviceError
from ..ui import Progress
from .serial_shell import ShellDriver

Method = Literal["auto", "base64", "printf"]
BLOCK = 64  # chunk sizes and offsets are multiples of this (dd bs=64 seek=...)
MAX_LINE = 3000  # well below the 4,095-byte canonical-mode line limit of a Linux tty


@dataclass(frozen=True)
class UploadReport:
    path: str
    size: int
    sha256: str
    method: str
    chunks_sent: int
    chunks_resent: int
    line_bytes: int  # bytes written to the console for the chunks

    @property
    def efficiency(self) -> float:
        """Payload bytes per byte on the line."""
        return self.size / self.line_bytes if self.line_bytes else 0.0


def _printf_escape(data: bytes) -> str:
    # Letters and digits as they are; everything else as a 3-digit octal escape, which is
    # safe inside single quotes and never read as a printf % directive.
    return "".join(chr(b) if chr(b).isalnum() and b < 128 else f"\\{b:03o}" for b in data)


def _encoded_chars_per_byte(method: str) -> float:
    return 4 / 3 if method == "base64" else 4.0


class ShellUploader:
    def __init__(self, shell: ShellDriver, *, method: Method = "auto",
                 chunk_timeout: float = 5.0, max_attempts: int = 30) -> None:
        self.shell = shell
        self.chunk_timeout = chunk_timeout
        self.max_attempts = max_attempts
        if method == "auto":
            method = "base64" if shell.has("base64") else "printf"
        if method == "base64" and not shell.has("base64"):
            raise DeviceError("the board's shell has no working base64")
        if method == "printf" and not shell.has("printf"):
            raise DeviceError("the board's shell has no printf: nothing can write binary bytes")
        self.method = method
        if shell.has("md5sum"):
            self.chunk_hash = "md5sum"
        elif shell.has("sha256sum"):
            self.chunk_hash = "sha256sum"
        else:
            raise DeviceError("the board's shell has neither md5sum nor sha256sum: "
                              "uploads cannot be verified")
        self.use_dd = shell.has("dd")

    def _chunk_line(self, chunk: bytes, offset: int, scratch: str, part: str) -> str:
        h = (hashlib.md5(chunk, usedforsecurity=False) if self.chunk_hash == "md5sum"
             else hashlib.sha256(chunk)).hexdigest()
        if self.method == "base64":
            decode = f"echo '{base64.b64encode(chunk).decode()}'|base64 -d >{scratch}"
        else:
            decode = f"printf '{_printf_escape(chunk)}' >{scratch}"
        check = f'[ "$({self.chunk_hash} <{scratch})" = "{h}  -" ]'
        if self.use_dd:
            write = (f"dd if={scratch} of={part} bs={BLOCK} seek={offset // BLOCK} "
                     "conv=notrunc 2>/dev/null")
        else:
            write = f'[ "$(wc -c <{part})" -eq {offset} ] && cat {scratch} >>{part}'
        t = self.shell.token
        return f"{decode}&&{check}&&{write}&&echo K'{t}:{offset}'"

    def _max_chunk(self) -> int:
        per = _encoded_chars_per_byte(self.method)
        return max(BLOCK, int((MAX_LINE - 300) / per) // BLOCK * BLOCK)

    def upload(self, data: bytes, dest: str, *, mode: int = 0o755, chunk: int | None = None,
               label: str | None = None) -> UploadReport:
        """Write ``data`` to ``dest`` on the board (atomic rename at the end)."""
        sh = self.shell
        q = shlex.quote
        part, scratch = q(dest + ".ep-part"), q(dest + ".ep-chunk")
        digest = hashlib.sha256(data).hexdigest()
        sh.run_check(f"mkdir -p \"$(dirname {q(dest)})\" && rm -f {part} {scratch} && : >{part}")
        limit = self._max_chunk()
        size = min(limit, max(BLOCK, (chunk or (768 if self.method == "base64" else 256))
                              // BLOCK * BLOCK))
        offset = 0
        sent = resent = line_bytes = clean_run = attempts = 0
        with Progress(label or f"upload {dest} ({self.method})", total=len(data),
                      unit="B") as progress:
            while offset < len(data):
                piece = data[offset:offset + size]
                line = self._chunk_line(piece, offset, scratch, part)
                line_bytes += len(line) + 80  # + the marker echo around it
                sent += 1
                if self._send_chunk(line, offset, offset + len(piece), part):
                    offset += len(piece)
                    progress.advance(len(piece))
                    attempts = 0
                    clean_run += 1
                    if clean_run >= 8 and size < limit:
                        size, clean_run = min(limit, size * 2), 0
                    continue
                resent += 1
                clean_run = 0
                attempts += 1
                size = max(BLOCK, size // 2 // BLOCK * BLOCK)
                if attempts >= self.max_attempts:
                    raise DeviceError(f"upload of {dest} failed: the chunk at offset {offset} "
                                      f"was refused {attempts} times (line too noisy?)")
        self._finish(dest, part, scratch, digest, len(data), mode)
        return UploadReport(path=dest, size=len(data), sha256=digest, method=self.method,
                            chunks_sent=sent, chunks_resent=resent, line_bytes=line_bytes)

    def _send_chunk(self, line: str, offset: int, end: int, part: str) -> bool:
        sh = self.shell
        n = sh.send_command(line)
        res = sh.wait_result(n, self.chunk_timeout)
        if res is None:
            sh._resync()
        elif f"K{sh.token}:{offset}" in res.output.splitlines():
            return True
        if not self.use_dd:
            # An append whose OK marker got lost leaves the file already at ``end``; resending
            # would then be refused by the size guard forever. The size says what happened.
            got = sh.run(f"wc -c <{part}")
            return got.exit_code == 0 and got.output.strip() == str(end)
        return False

    def _finish(self, dest: str, part: str, scratch: str, digest: str, size: int,
                mode: int) -> None:
        sh = self.shell
        if sh.has("sha256sum"):
            out = sh.run_check(f"sha256sum <{part}", timeout=60)
            ok = out.strip().split()[:1] == [digest]
        else:
            out = sh.run_check(f"wc -c <{part}")
            ok = out.strip() == str(size)
        if not ok:
            sh.run(f"rm -f {part} {scratch}")
            raise DeviceError(f"upload of {dest}: the assembled file does not match "
                              f"(board says {out.strip()[:80]!r})")
        sh.run_check(f"chmod {mode:o} {part} && mv -f {part} {shlex.quote(dest)} && "
                     f"rm -f {scratch}")
