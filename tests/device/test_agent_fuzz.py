# SPDX-License-Identifier: Apache-2.0
"""A short protocol fuzz run of the agent built with AddressSanitizer + UndefinedBehaviorSanitizer,
over stdio, with the project's own codec: valid requests of every type with hostile field values
(extreme integers, NUL bytes, wrong types, repeated and missing fields), payloads with flipped
bits re-sealed with a good CRC (so they reach the field parser), and corrupted, truncated and
oversize frames. The agent must answer PING afterwards, exit 0 on BYE, and the sanitizers must
report nothing (any report aborts the agent)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from edgepack.device.pipes import PipeStream
from edgepack.device.protocol import (
    CRC,
    HEADER,
    MAGIC,
    MAX_CHUNK,
    MAX_FRAME,
    PROTOCOL_VERSION,
    FieldInput,
    FrameDecoder,
    Message,
    MsgType,
    cobs_encode,
    encode_fields,
)

REPO = Path(__file__).resolve().parents[2]
AGENT_SRC = REPO / "device_agents"
BUILD = REPO / "build" / "tests-device" / "agent-asan"
SANITIZER_ENV = {
    **os.environ,
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}
SECONDS = 8.0  # the fuzz budget: a CI step of seconds
FRAMES = 4000


@pytest.fixture(scope="module")
def asan_agent() -> Path:
    """The agent built with -fsanitize=address,undefined (dynamic: ASan cannot link statically),
    reused while no agent source is newer than it."""
    out = BUILD / "edgepack-agent"
    sources = [p for p in AGENT_SRC.rglob("*") if p.suffix in {".cc", ".h", ".txt"}]
    if not out.exists() or any(p.stat().st_mtime > out.stat().st_mtime for p in sources):
        cmake = shutil.which("cmake", path=str(REPO / ".venv" / "bin")) or "cmake"
        flags = "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
        subprocess.run([cmake, "-S", str(AGENT_SRC), "-B", str(BUILD), "-G", "Ninja",
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DEDGEPACK_AGENT_STATIC=OFF",
                        "-DEDGEPACK_AGENT_TESTS=OFF", f"-DCMAKE_CXX_FLAGS={flags}"],
                       check=True, capture_output=True)
        res = subprocess.run([cmake, "--build", str(BUILD), "-j2"], capture_output=True,
                             text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
    symbols = subprocess.run(["nm", "-u", str(out)], capture_output=True, text=True,
                             check=True).stdout
    assert "__asan_report_load" in symbols and "__ubsan_handle" in symbols
    return out


INTS = [0, 1, -1, 2, 7, 255, 4096, MAX_CHUNK, MAX_CHUNK + 1, 1 << 31, (1 << 31) - 1, 1 << 32,
        (1 << 62), (1 << 63) - 1, -(1 << 63), 0o4777, 0o170000]
STRS = ["", ".", "..", "a/../b", "/etc/passwd", "bin/echo", "bin/echo\0x", ".edgepack/cas",
        "link/x", "fifo", "x" * 5000, "ab" * 32, "device", "deflate", "\xff\xfe", "=", "A=B",
        "LD_PRELOAD=/x", "a//b", "dir/"]
KEYS = ["sha256", "size", "chunk", "index", "data", "encoding", "path", "mode", "argv", "cwd",
        "env", "timeout_ms", "stream", "max_output", "stdin", "offset", "length", "name",
        "create", "replace", "protocol", "client", "ranges", "base", "copies"]


def _value(rng: random.Random) -> FieldInput:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(INTS)
    if kind == 1:
        return rng.choice(STRS)
    if kind == 2:
        return rng.randbytes(rng.choice([0, 1, 3, 8, 9, 64, 300]))
    return [rng.choice(STRS) for _ in range(rng.randrange(1, 4))]


def _seeds(sha: str, data: bytes) -> list[tuple[MsgType, dict[str, FieldInput]]]:
    return [
        (MsgType.HELLO, {"protocol": 1, "client": "fuzz"}),
        (MsgType.PUT_BEGIN, {"sha256": sha, "size": len(data), "chunk": 64}),
        (MsgType.PUT_CHUNK, {"sha256": sha, "index": 0, "data": data[:64]}),
        (MsgType.PUT_CHUNK, {"sha256": sha, "index": 1, "data": zlib.compress(data[64:128])[2:-4],
                             "encoding": "deflate"}),
        (MsgType.PUT_END, {"sha256": sha}),
        (MsgType.INSTALL, {"sha256": sha, "path": "inst/file", "mode": 0o644}),
        (MsgType.GET, {"path": "bin/echo", "offset": 0, "length": 100}),
        (MsgType.RUN, {"argv": ["bin/echo", "a"], "timeout_ms": 2000, "max_output": 10}),
        (MsgType.RUN, {"argv": ["bin/echo"], "stream": 1, "env": ["A=1"], "stdin": b"in"}),
        (MsgType.KEYGEN, {"name": "device", "create": 1}),
        (MsgType.BAUD, {"baud": 921_600}),  # not a tty here: refused
        (MsgType.HASH, {"path": "inst/file", "ranges": struct.pack("<QQQQ", 0, 10, 5, 100)}),
        (MsgType.PUT_RECIPE, {"sha256": sha, "size": len(data), "chunk": 64, "base": "inst/file",
                              "copies": struct.pack("<QQQQQQ", 0, 0, 64, 100, 10, 50)}),
        (MsgType.PING, {}),
    ]


def _sealed(mtype: int, seq: int, payload: bytes) -> bytes:
    """A frame with a correct CRC around any payload (it reaches the field parser)."""
    body = HEADER.pack(MAGIC, PROTOCOL_VERSION, mtype, 0, seq, len(payload)) + payload
    return b"\x00" + cobs_encode(body + CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)) + b"\x00"


def _mutant(rng: random.Random, seeds: list[tuple[MsgType, dict[str, FieldInput]]],
            seq: int) -> bytes:
    mtype, fields = rng.choice(seeds)
    fields = dict(fields)
    for _ in range(rng.randrange(0, 4)):
        action = rng.randrange(3)
        if action == 0 and fields:
            fields.pop(rng.choice(list(fields)))
        else:
            fields[rng.choice(KEYS) if action == 1 else rng.choice(list(fields) or KEYS)] = (
                _value(rng))
    payload = encode_fields(fields)
    how = rng.randrange(10)
    if how == 0 and payload:  # flipped bits inside the payload, CRC still good
        b = bytearray(payload)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        payload = bytes(b)
    elif how == 1:
        payload = payload[:rng.randrange(len(payload) + 1)]
    wire = _sealed(rng.choice([int(mtype)] * 8 + [0, 0x11, 0xFF]), seq, payload)
    if how == 2:  # a corrupted frame (CRC or COBS fails)
        w = bytearray(wire)
        w[rng.randrange(1, len(w) - 1)] ^= 1 << rng.randrange(8)
        wire = bytes(w)
    elif how == 3:
        wire = rng.randbytes(rng.randrange(1, 200)) + wire
    return wire


def test_agent_survives_a_protocol_fuzz_run_under_sanitizers(asan_agent: Path,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "echo").write_text("#!/bin/sh\necho \"$@\"\necho err >&2\n")
    (root / "bin" / "echo").chmod(0o755)
    os.mkfifo(root / "fifo")
    (root / "link").symlink_to(".edgepack")
    rng = random.Random(11)
    data = rng.randbytes(150)
    sha = hashlib.sha256(data).hexdigest()
    seeds = _seeds(sha, data)
    stderr = tmp_path / "agent.stderr"
    with stderr.open("wb") as err:
        proc = subprocess.Popen([str(asan_agent), "--root", str(root)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, env=SANITIZER_ENV)
    stream = PipeStream(proc)
    dec = FrameDecoder()
    replies = 0
    sent = 0
    try:
        stream.write(b"\x41" * (MAX_FRAME + 100) + b"\x00")  # one oversize candidate
        end = time.monotonic() + SECONDS
        while sent < FRAMES and time.monotonic() < end:
            stream.write(_mutant(rng, seeds, sent + 1))
            sent += 1
            replies += len(dec.feed(stream.read(1 << 16, 0.0 if sent % 16 else 0.2)))
        stream.write(_sealed(int(MsgType.PING), 0xFFFF0001, b""))
        deadline = time.monotonic() + 30
        pong = False
        while not pong and time.monotonic() < deadline:
            for msg in dec.feed(stream.read(1 << 16, 0.2)):
                replies += 1
                pong = pong or (msg.type is MsgType.PONG and msg.seq == 0xFFFF0001)
        assert pong, "the agent stopped answering"
        stream.write(_sealed(int(MsgType.BYE), 0xFFFF0002, b""))
        proc.stdin.close()  # type: ignore[union-attr]
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
    report = stderr.read_text(errors="replace")
    assert "Sanitizer" not in report and "runtime error:" not in report, report[-4000:]
    assert code == 0, report[-4000:]
    assert sent >= 300 and replies >= sent // 2, (sent, replies)
    assert not (root / ".." / "escape").exists()
    print(f"fuzz: {sent} frames, {replies} replies")


def test_fuzz_messages_use_the_real_codec() -> None:
    rng = random.Random(3)
    seeds = _seeds("ab" * 32, b"x" * 150)
    parsed = [m for i in range(200) for m in FrameDecoder().feed(_mutant(rng, seeds, i + 1))]
    assert len(parsed) > 100 and {m.type for m in parsed} >= {MsgType.RUN, MsgType.PUT_BEGIN}
    assert all(isinstance(m, Message) for m in parsed)
