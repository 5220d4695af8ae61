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
import re
import shlex
from dataclasses import dataclass
from typing import Literal

from edgepack.device.serial_shell import ShellDriver
from edgepack.errors import DeviceError
from edgepack.ui import Progress

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
                 stream: bool = True, chunk_timeout: float = 3.0, max_attempts: int = 30,
                 baud: int = 115_200, bits_per_byte: int = 10) -> None:
        self.shell = shell
        self.chunk_timeout = chunk_timeout
        self.max_attempts = max_attempts
        self.baud = baud
        self.bits_per_byte = bits_per_byte  # on the line: start + data + parity + stop bits
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
        # Stream mode: the command reads the encoded chunk from the tty itself
        # (``stty -icanon; head -c N``), so a chunk is not bound by the line limit.
        self.stream = stream and shell.has("head") and shell.has("stty")

    def _encode(self, chunk: bytes) -> str:
        if self.method == "base64":
            return base64.b64encode(chunk).decode()
        return _printf_escape(chunk)

    def _helper(self, scratch: str, part: str) -> str:
        """A shell function that receives, checks and writes one chunk.

        ``_epu TAG LEN HASH OFFSET [DATA]``: defined once per upload so each chunk's
        command line is short (fewer bytes for noise to hit than the chunk itself).
        """
        if self.stream:
            # R<tag> says "reading now"; the host then sends exactly LEN encoded bytes. The
            # tty goes back to canonical mode before anything else runs.
            src = 'head -c "$2"'
            if self.method == "base64":
                decode = f"{src}|base64 -d >{scratch}"
            else:
                decode = f'printf "$({src})" >{scratch}'
            decode = (f'stty -icanon min 1 time 0&&echo R"$1"&&{decode};'
                      "r=$?;stty icanon;[ $r = 0 ]")
        elif self.method == "base64":
            decode = f'echo "$5"|base64 -d >{scratch}'
        else:
            decode = f'printf "$5" >{scratch}'
        check = f'[ "$({self.chunk_hash} <{scratch})" = "$3  -" ]'
        if self.use_dd:
            write = (f'dd if={scratch} of={part} bs={BLOCK} seek=$(($4/{BLOCK})) '
                     "conv=notrunc 2>/dev/null")
        else:
            write = f'[ "$(wc -c <{part})" -eq "$4" ]&&cat {scratch} >>{part}'
        # The offset travels twice (in the tag and alone) and must agree, so noise in the
        # offset can never write a good chunk at a wrong place.
        guard = f'[ "$1" = "{self.shell.token}:$4" ]'
        return f'_epu(){{ {guard}&&{decode}&&{check}&&{write}&&echo K"$1:$3";}}'

    def _chunk_line(self, chunk: bytes, encoded: str, offset: int) -> tuple[str, str]:
        h = (hashlib.md5(chunk, usedforsecurity=False) if self.chunk_hash == "md5sum"
             else hashlib.sha256(chunk)).hexdigest()
        line = f"_epu {self.shell.token}:{offset} {len(encoded)} {h} {offset}"
        if not self.stream:
            line += f" '{encoded}'"
        return line, h

    def _max_chunk(self) -> int:
        if self.stream:
            return 196_608
        per = _encoded_chars_per_byte(self.method)
        return max(BLOCK, int((MAX_LINE - 200) / per) // BLOCK * BLOCK)

    def _first_chunk(self) -> int:
        if self.stream:
            return 4096
        return 768 if self.method == "base64" else 256

    def upload(self, data: bytes, dest: str, *, mode: int = 0o755, chunk: int | None = None,
               label: str | None = None) -> UploadReport:
        """Write ``data`` to ``dest`` on the board (atomic rename at the end)."""
        sh = self.shell
        q = shlex.quote
        part, scratch = q(dest + ".ep-part"), q(dest + ".ep-chunk")
        digest = hashlib.sha256(data).hexdigest()
        helper = self._helper(scratch, part)
        sh.run_check(f"mkdir -p \"$(dirname {q(dest)})\" && rm -f {part} {scratch} && "
                     f": >{part} && {helper}")
        limit = self._max_chunk()
        size = min(limit, max(BLOCK, (chunk or self._first_chunk()) // BLOCK * BLOCK))
        offset = 0
        sent = resent = line_bytes = clean_run = attempts = 0
        with Progress(label or f"upload {dest} ({self.method})", total=len(data),
                      unit="B") as progress:
            while offset < len(data):
                piece = data[offset:offset + size]
                encoded = self._encode(piece)
                line, h = self._chunk_line(piece, encoded, offset)
                line_bytes += len(line) + 70  # + the marker echoes around it
                if self.stream:
                    line_bytes += len(encoded)
                sent += 1
                if self._send_chunk(line, encoded, offset, h, offset + len(piece), part):
                    offset += len(piece)
                    progress.advance(len(piece))
                    attempts = 0
                    clean_run += 1
                    if clean_run >= 2 and size < limit:
                        size, clean_run = min(limit, size * 2), 0
                    continue
                resent += 1
                clean_run = 0
                attempts += 1
                size = max(BLOCK, size // 2 // BLOCK * BLOCK)
                if attempts % 6 == 0:
                    # Noise may have hit the helper's definition itself: define it again.
                    sh.run(helper)
                if attempts >= self.max_attempts:
                    raise DeviceError(f"upload of {dest} failed: the chunk at offset {offset} "
                                      f"was refused {attempts} times (line too noisy?)")
        self._finish(dest, part, scratch, digest, len(data), mode)
        return UploadReport(path=dest, size=len(data), sha256=digest, method=self.method,
                            chunks_sent=sent, chunks_resent=resent, line_bytes=line_bytes)

    def _send_chunk(self, line: str, encoded: str, offset: int, h: str, end: int,
                    part: str) -> bool:
        sh = self.shell
        n = sh.send_command(line)
        timeout = self.chunk_timeout + 1.5 * len(line) * self.bits_per_byte / self.baud
        res = None
        if self.stream:
            timeout += 1.5 * len(encoded) * self.bits_per_byte / self.baud
            begin = f"B{sh.token}:{n}\n".encode()
            ready = re.escape(begin) + rb"R" + re.escape(f"{sh.token}:{offset}".encode()) + b"\n"
            if sh.expect([re.compile(ready)], self.chunk_timeout) is not None:
                sh.write(encoded.encode())
                sh.unread(begin)  # wait_result looks for the begin marker
                res = sh.wait_result(n, timeout)
        else:
            res = sh.wait_result(n, timeout)
        if res is None:
            sh.resync()
        elif f"K{sh.token}:{offset}:{h}" in res.output.splitlines():
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
        tool, want = ("sha256sum", digest) if sh.has("sha256sum") else ("md5sum", None)
        if want is None:
            raise DeviceError("the board's shell has no sha256sum: the upload cannot be "
                              "verified end to end")
        # The comparison runs on the board, so noise on the way back can only hide the
        # verdict (then it is asked again), never fake a match.
        t = sh.token
        check = (f'if [ "$({tool} <{part})" = "{want}  -" ]; then echo V"{t}":good; '
                 f'else echo V"{t}":bad; fi')
        verdict = ""
        for _ in range(5):
            out = sh.run(check, timeout=60).output.splitlines()
            if f"V{t}:good" in out:
                verdict = "good"
                break
            if f"V{t}:bad" in out:
                verdict = "bad"
                break
        if verdict != "good":
            sh.run(f"rm -f {part} {scratch}")
            raise DeviceError(f"upload of {dest}: the assembled file does not match its "
                              "SHA-256 on the board" if verdict else
                              f"upload of {dest}: no verdict from the board's {tool}")
        # Noise can garble this line too (a flipped bit makes a syntax error): ask the board
        # where the file is now and retry until it sits at ``dest`` with the right digest.
        finish = f"chmod {mode:o} {part} && mv -f {part} {shlex.quote(dest)} && rm -f {scratch}"
        probe = (f'if [ -f {part} ]; then echo W"{t}":part; '
                 f'elif [ "$({tool} <{shlex.quote(dest)})" = "{want}  -" ]; then '
                 f'chmod {mode:o} {shlex.quote(dest)} && echo W"{t}":done; '
                 f'else echo W"{t}":lost; fi')
        for _ in range(5):
            if sh.run(finish, timeout=60).exit_code == 0:
                return
            out = sh.run(probe, timeout=60).output.splitlines()
            if f"W{t}:done" in out:
                sh.run(f"rm -f {scratch}")
                return
            if f"W{t}:lost" in out:
                break
        raise DeviceError(f"upload of {dest}: could not move the verified file into place "
                          "on the board")
