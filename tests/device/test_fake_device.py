# SPDX-License-Identifier: Apache-2.0
"""The host side against a scripted peer that speaks the protocol over a real socket pair: a
device that floods LOG frames, announces a huge GET size, leaves a HELLO field out, sends a
RESULT larger than a frame, or loses streamed output. Each ends in one ``DeviceError`` line
naming the device and the request, within the request's deadline."""

from __future__ import annotations

import random
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import pytest

from edgepack.device.client import AgentClient, AgentError, ConnectionLost, Hello
from edgepack.device.protocol import (
    CRC,
    HEADER,
    MAGIC,
    MAX_CHUNK,
    MAX_CHUNKS,
    MAX_FRAME,
    MAX_PAYLOAD,
    PROTOCOL_VERSION,
    FieldInput,
    FrameDecoder,
    Message,
    MsgType,
    ProtocolError,
    cobs_encode,
    encode_fields,
    encode_frame,
)
from edgepack.errors import DeviceError, EdgepackError

DEVICE = "fake://board"

HELLO_FIELDS: dict[str, FieldInput] = {
    "protocol": 1, "agent_version": "0.1.0", "agent_sha256": "00" * 32,
    "capabilities": ["put", "install", "run", "get"], "boot_id": "b", "session": "s",
    "max_payload": MAX_PAYLOAD, "max_chunk": MAX_CHUNK, "max_upload": 1 << 30,
    "window": 262_144, "facts": "{}",
}


class SocketStream:
    """The client's ``ByteStream`` over one end of a socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return b""
        data = self.sock.recv(max_bytes)
        if not data:
            raise ConnectionLost("fake device closed the socket")
        return data

    def close(self) -> None:
        self.sock.close()


Script = Callable[["FakeDevice", Message], None]


class FakeDevice:
    """A peer thread: decodes the host's requests and hands each to ``script``."""

    def __init__(self, script: Script) -> None:
        self.host, self.dev = socket.socketpair()
        self.script = script
        self.requests: list[Message] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        dec = FrameDecoder()
        while not self.stop.is_set():
            ready, _, _ = select.select([self.dev], [], [], 0.05)
            if not ready:
                continue
            data = self.dev.recv(1 << 16)
            if not data:
                return
            for msg in dec.feed(data):
                self.requests.append(msg)
                self.script(self, msg)

    def reply(self, mtype: MsgType, seq: int, **fields: FieldInput) -> None:
        self.dev.sendall(encode_frame(Message.build(mtype, seq, **fields)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=20)
        self.host.close()
        self.dev.close()


@pytest.fixture()
def fake() -> Iterator[Callable[[Script], AgentClient]]:
    devices: list[FakeDevice] = []

    def make(script: Script) -> AgentClient:
        dev = FakeDevice(script)
        devices.append(dev)
        return AgentClient(SocketStream(dev.host), timeout=2.0, device=DEVICE)

    yield make
    for d in devices:
        d.close()


def _one_line(exc: EdgepackError) -> str:
    assert isinstance(exc, DeviceError)
    return str(exc).splitlines()[0]


def test_missing_hello_field_is_one_clear_line(fake: Callable[[Script], AgentClient]) -> None:
    fields = {k: v for k, v in HELLO_FIELDS.items() if k != "window"}
    client = fake(lambda dev, msg: dev.reply(MsgType.HELLO, msg.seq, **fields))
    with pytest.raises(ProtocolError) as err:
        client.hello()
    assert _one_line(err.value) == (f"{DEVICE}: HELLO: the agent's reply is malformed: HELLO "
                                    "message lacks field 'window'")


@pytest.mark.parametrize(("key", "value"), [
    ("window", 1 << 40), ("max_chunk", 0), ("max_chunk", MAX_CHUNK + 1),
    ("max_payload", -1), ("facts", "[1, 2]"), ("facts", "{" + "\"a\": 1," * 20000 + "}"),
])
def test_hello_values_outside_the_limits_are_refused(fake: Callable[[Script], AgentClient],
                                                     key: str, value: FieldInput) -> None:
    fields = {**HELLO_FIELDS, key: value}
    client = fake(lambda dev, msg: dev.reply(MsgType.HELLO, msg.seq, **fields))
    with pytest.raises(ProtocolError, match=key) as err:
        client.hello()
    assert _one_line(err.value).startswith(f"{DEVICE}: HELLO: ")


def test_log_flood_does_not_extend_the_deadline(fake: Callable[[Script], AgentClient]) -> None:
    def flood(dev: FakeDevice, msg: Message) -> None:
        if msg.type is not MsgType.RUN:
            return
        end = time.monotonic() + 15  # a device that never finishes
        while time.monotonic() < end and not dev.stop.is_set():
            dev.reply(MsgType.LOG, msg.seq, stream="stdout", data=b"still here\n")
            time.sleep(0.02)

    client = fake(flood)
    logs: list[bytes] = []
    start = time.monotonic()
    with pytest.raises(DeviceError, match="no reply from the agent within 2s") as err:
        client.request(MsgType.RUN, argv=["bin/x"], stream=1, timeout=2.0,
                       on_log=lambda _s, data: logs.append(data))
    assert time.monotonic() - start < 5
    assert len(logs) > 20
    assert _one_line(err.value).startswith(f"{DEVICE}: RUN: ")


def test_huge_get_size_is_refused_before_reading_on(fake: Callable[[Script], AgentClient]) -> None:
    gets: list[int] = []

    def answer(dev: FakeDevice, msg: Message) -> None:
        gets.append(msg.get_int("offset"))
        dev.reply(MsgType.OK, msg.seq, data=b"x" * MAX_CHUNK, size=1 << 50)

    client = fake(answer)
    with pytest.raises(DeviceError, match=r"announces 1125899906842624 bytes") as err:
        client.get("out/big.bin")
    assert _one_line(err.value).startswith(f"{DEVICE}: GET out/big.bin: ")
    assert gets == [0]  # refused at the first reply, nothing more requested


def test_get_that_changes_size_or_overruns_is_refused(
        fake: Callable[[Script], AgentClient]) -> None:
    sizes = iter([300_000, 400_000])
    client = fake(lambda dev, msg: dev.reply(MsgType.OK, msg.seq, data=b"x" * MAX_CHUNK,
                                             size=next(sizes, 1)))
    with pytest.raises(DeviceError, match=r"changed size while it was read"):
        client.get("a")
    client = fake(lambda dev, msg: dev.reply(MsgType.OK, msg.seq, data=b"x" * 100, size=50))
    with pytest.raises(ProtocolError, match=r"100 bytes at offset 0 of a 50-byte file"):
        client.get("b")


def _oversize_wire(seq: int) -> bytes:
    payload = encode_fields({"exit_code": 0, "stdout": b"o" * (MAX_PAYLOAD + 1000)})
    head = HEADER.pack(MAGIC, PROTOCOL_VERSION, int(MsgType.RESULT), 0, seq, len(payload))
    body = head + payload
    raw = body + CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)
    wire = b"\x00" + cobs_encode(raw) + b"\x00"
    assert len(wire) > MAX_FRAME
    return wire


def test_oversized_result_is_reported(fake: Callable[[Script], AgentClient]) -> None:
    client = fake(lambda dev, msg: dev.dev.sendall(_oversize_wire(msg.seq)))
    start = time.monotonic()
    with pytest.raises(ProtocolError, match=r"1 frame\(s\) larger than the") as err:
        client.request(MsgType.RUN, argv=["bin/x"], timeout=1.0)
    assert time.monotonic() - start < 3
    assert _one_line(err.value).startswith(f"{DEVICE}: RUN: no reply within 1s")


def test_streamed_output_that_was_lost_is_reported(fake: Callable[[Script], AgentClient]) -> None:
    def result(dev: FakeDevice, msg: Message) -> None:
        dev.reply(MsgType.LOG, msg.seq, stream="stdout", data=b"o" * 500)
        dev.reply(MsgType.RESULT, msg.seq, exit_code=0, stdout=b"", stderr=b"",
                  stdout_size=1000, stderr_size=0, output_streamed=1)

    client = fake(result)
    with pytest.raises(DeviceError, match=r"500 of the 1000 bytes of stdout arrived"):
        client.run(["bin/x"])


def test_large_result_streamed_by_the_peer_is_put_together(
        fake: Callable[[Script], AgentClient]) -> None:
    out = bytes(range(256)) * 2000

    def result(dev: FakeDevice, msg: Message) -> None:
        for off in range(0, len(out), MAX_CHUNK):
            dev.reply(MsgType.LOG, msg.seq, stream="stdout", data=out[off:off + MAX_CHUNK])
        dev.reply(MsgType.RESULT, msg.seq, exit_code=0, stdout=b"", stderr=b"",
                  stdout_size=len(out), stderr_size=0, output_streamed=1, stdout_truncated=1)

    client = fake(result)
    res = client.run(["bin/x"])
    assert res.stdout == out and res.stdout_truncated and res.stderr == b""


def test_have_with_a_tiny_chunk_is_refused(fake: Callable[[Script], AgentClient]) -> None:
    size = 10 << 20

    def have(dev: FakeDevice, msg: Message) -> None:
        dev.reply(MsgType.HAVE, msg.seq, sha256=msg.get_str("sha256"), size=size, chunk=1,
                  have=b"", complete=0)

    client = fake(have)
    with pytest.raises(ProtocolError, match=rf"makes {size} chunks \(at most {MAX_CHUNKS}\)"):
        client.put_bytes(b"\x01" * size)


def test_agent_error_names_device_and_request(fake: Callable[[Script], AgentClient]) -> None:
    client = fake(lambda dev, msg: dev.reply(MsgType.ERROR, msg.seq, code="io",
                                             message="disk full"))
    with pytest.raises(AgentError) as err:
        client.install("ab" * 32, "bin/x")
    assert str(err.value) == f"{DEVICE}: INSTALL: agent refused: io: disk full"
    assert err.value.code == "io"


def test_malformed_error_reply_is_a_device_error(fake: Callable[[Script], AgentClient]) -> None:
    client = fake(lambda dev, msg: dev.dev.sendall(encode_frame(
        Message(MsgType.OK, msg.seq, {"size": [struct.pack("<i", 7)]}))))
    with pytest.raises(ProtocolError, match=r"OK\.size is not an 8-byte integer") as err:
        client.get("x")
    assert _one_line(err.value).startswith(f"{DEVICE}: GET: the agent's reply is malformed")


def test_a_link_that_breaks_names_device_and_request(
        fake: Callable[[Script], AgentClient]) -> None:
    client = fake(lambda dev, msg: dev.dev.shutdown(socket.SHUT_RDWR))
    with pytest.raises(ConnectionLost) as err:
        client.ping()
    assert _one_line(err.value) == f"{DEVICE}: PING: fake device closed the socket"


def test_a_missing_capability_names_the_device(fake: Callable[[Script], AgentClient]) -> None:
    client = fake(lambda dev, msg: dev.reply(MsgType.HELLO, msg.seq, **HELLO_FIELDS))
    with pytest.raises(DeviceError) as err:
        client.keygen()
    assert _one_line(err.value) == (f"{DEVICE}: the agent (version 0.1.0) cannot create keys on "
                                    "the device (no 'keygen' capability)")


def _mutated_reply(rng: random.Random, msg: Message) -> bytes:
    """A plausible reply to ``msg`` with fields dropped, retyped or replaced."""
    good: dict[MsgType, tuple[MsgType, dict[str, FieldInput]]] = {
        MsgType.HELLO: (MsgType.HELLO, dict(HELLO_FIELDS)),
        MsgType.GET: (MsgType.OK, {"data": b"abc", "size": 3}),
        MsgType.RUN: (MsgType.RESULT, {"exit_code": 0, "stdout": b"o", "stderr": b"",
                                       "stdout_size": 1, "stderr_size": 0}),
        MsgType.PUT_BEGIN: (MsgType.HAVE, {"sha256": msg.get_bytes("sha256", b""), "size": 10,
                                           "chunk": 64, "have": b"", "complete": 0}),
        MsgType.PUT_CHUNK: (MsgType.OK, {"index": msg.get_bytes("index", b"")}),
        MsgType.KEYGEN: (MsgType.OK, {"name": "device", "path": "p", "public_key": b"k" * 32,
                                      "created": 1}),
    }
    mtype, fields = good.get(msg.type, (MsgType.OK, {}))
    values: list[FieldInput] = [-1, 0, 1 << 62, b"", b"\xff\xfe", "[" * 5000, "{}", "null",
                                b"\x01\x02\x03", "x" * 70_000]
    for _ in range(rng.randrange(1, 4)):
        if fields and rng.random() < 0.4:
            fields.pop(rng.choice(list(fields)))
        else:
            fields[rng.choice(list(fields) or ["x"])] = rng.choice(values)
    final = encode_frame(Message.build(mtype, msg.seq, **fields))
    other = rng.choice([MsgType.ERROR, MsgType.LOG, MsgType.PONG, MsgType.HAVE])
    wrong = encode_frame(Message.build(other, msg.seq, **fields))
    if rng.random() < 0.15:  # a reply of the wrong type (after a LOG, the right one follows)
        return wrong + (final if other is MsgType.LOG else b"")
    return final


def test_every_malformed_reply_is_a_device_error(fake: Callable[[Script], AgentClient]) -> None:
    """A short fuzz run of the host side: whatever a device answers, the client either
    succeeds or raises a DeviceError (never a KeyError, ValueError, RecursionError...)."""
    rng = random.Random(5)
    client = fake(lambda dev, msg: dev.dev.sendall(_mutated_reply(rng, msg)))
    client.timeout = 0.3
    calls: list[Callable[[], object]] = [
        client.hello, lambda: client.get("x"), lambda: client.run(["bin/x"]),
        lambda: client.put_bytes(b"y" * 10), lambda: client.keygen(), client.ping,
    ]
    outcomes = {"ok": 0, "device_error": 0}
    end = time.monotonic() + 6
    while time.monotonic() < end:
        client.hello_info = Hello(1, "0.1.0", "", ("keygen", "stdin"), "", "", MAX_PAYLOAD,
                                  MAX_CHUNK, 1 << 30, 262_144, {})
        try:
            rng.choice(calls)()
            outcomes["ok"] += 1
        except DeviceError:
            outcomes["device_error"] += 1
    assert outcomes["device_error"] > 50 and outcomes["ok"] > 5, outcomes
