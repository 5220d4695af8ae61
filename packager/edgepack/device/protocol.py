# SPDX-License-Identifier: Apache-2.0
"""Frames and messages of the device agent protocol (device_agents/PROTOCOL.md).

Two layers, both pure and transport-free so the SSH and serial links share them:

- framing: ``encode_frame`` turns a ``Message`` into wire bytes (COBS, 0x00 delimiters,
  CRC-32); ``FrameDecoder`` is fed arbitrary byte pieces and yields the messages in them,
  dropping noise and corrupted frames and resynchronising at the next delimiter;
- fields: a payload is a list of ``key -> value`` fields (repeatable keys) with int / str /
  bytes values, read back through ``Message`` accessors that raise ``ProtocolError`` when a
  field is missing or malformed.

The message ids (``MsgType``) and the limits (``LIMITS``) below are the one source of both
sides: the agent's ``device_agents/src/protocol_table.h`` is rendered from them
(``python -m edgepack.device.protocol_header --write``; a test fails when it is stale).
"""

from __future__ import annotations

import enum
import json
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgepack.errors import DeviceError

PROTOCOL_VERSION = 1
MAGIC = 0xE9
HEADER = struct.Struct("<BBBBII")  # magic, version, type, flags, seq, len
CRC = struct.Struct("<I")


@dataclass(frozen=True)
class Limit:
    value: int
    doc: str
    agent: bool = True  # rendered into the agent's header (host-only limits are not)


# Every bound of the protocol, in one table (PROTOCOL.md section 2 lists each of them).
LIMITS: dict[str, Limit] = {
    "MAX_PAYLOAD": Limit(262_144, "bytes of one frame's payload"),
    "MAX_CHUNK": Limit(131_072, "bytes of one PUT_CHUNK and of one GET reply"),
    "MAX_CHUNKS": Limit(1_048_576, "chunks of one upload (the HAVE bitmap stays <= 128 KiB)"),
    "MAX_STDIN": Limit(4_096, "bytes RUN hands to a program on stdin (PIPE_BUF)"),
    "DEFAULT_OUTPUT": Limit(1_048_576, "RUN output kept per stream when max_output is absent"),
    "MAX_OUTPUT": Limit(16_777_216, "largest RUN max_output (bytes per stream)"),
    "MAX_TIMEOUT_MS": Limit(604_800_000, "largest RUN timeout_ms (7 days)"),
    "KILL_GRACE_MS": Limit(2_000, "SIGTERM to SIGKILL when a RUN times out"),
    "ORPHAN_GRACE_MS": Limit(500, "how long output pipes may stay open after the program exits"),
    "MAX_ENV": Limit(4_096, "RUN env entries"),
    "MAX_ARGV": Limit(4_096, "RUN argv entries"),
    "MAX_PATH": Limit(4_095, "bytes of a path in a request"),
    "PARTIAL_MAX_AGE_S": Limit(604_800, "an abandoned upload older than this is deleted (7 days)"),
    "MAX_RANGES": Limit(4_096, "ranges of one HASH request (the reply holds 32 bytes each)"),
    "MAX_COPIES": Limit(8_192, "copy ops of one PUT_RECIPE (24 bytes each in the request)"),
    "BAUD_SETTLE_MS": Limit(50, "BAUD: the wait after the OK drained, before the tty switches"),
    "BAUD_CONFIRM_MS": Limit(3_000, "BAUD: back to the old rate without a valid frame at the new"),
    "BAUD_PROBATION_MS": Limit(10_000, "BAUD: how long after the switch garbage still reverts it"),
    "MAX_WINDOW": Limit(16_777_216, "largest window a peer may announce in HELLO", agent=False),
    "MAX_UPLOAD_CAP": Limit(1_048_576 * 131_072,
                            "largest max_upload a peer may announce in HELLO", agent=False),
    "MAX_GET": Limit(268_435_456, "largest file the host reads with GET by default", agent=False),
    "MAX_FACTS": Limit(65_536, "bytes of the HELLO facts JSON the host accepts", agent=False),
}
MAX_PAYLOAD = LIMITS["MAX_PAYLOAD"].value
MAX_CHUNK = LIMITS["MAX_CHUNK"].value
MAX_CHUNKS = LIMITS["MAX_CHUNKS"].value
MAX_STDIN = LIMITS["MAX_STDIN"].value
DEFAULT_OUTPUT = LIMITS["DEFAULT_OUTPUT"].value
MAX_OUTPUT = LIMITS["MAX_OUTPUT"].value
MAX_TIMEOUT_MS = LIMITS["MAX_TIMEOUT_MS"].value
MAX_RANGES = LIMITS["MAX_RANGES"].value
MAX_COPIES = LIMITS["MAX_COPIES"].value
MAX_WINDOW = LIMITS["MAX_WINDOW"].value
MAX_UPLOAD_CAP = LIMITS["MAX_UPLOAD_CAP"].value
MAX_GET = LIMITS["MAX_GET"].value
MAX_FACTS = LIMITS["MAX_FACTS"].value
FRAME_OVERHEAD = HEADER.size + CRC.size
MAX_FRAME = MAX_PAYLOAD + FRAME_OVERHEAD + (MAX_PAYLOAD + FRAME_OVERHEAD) // 254 + 2

DEFAULT_CHUNK_SSH = 65_536
DEFAULT_CHUNK_SERIAL = 1_024


class MsgType(enum.IntEnum):
    HELLO = 0x01
    PUT_BEGIN = 0x02
    HAVE = 0x03
    PUT_CHUNK = 0x04
    PUT_END = 0x05
    INSTALL = 0x06
    RUN = 0x07
    RESULT = 0x08
    LOG = 0x09
    GET = 0x0A
    OK = 0x0B
    ERROR = 0x0C
    PING = 0x0D
    PONG = 0x0E
    BYE = 0x0F
    KEYGEN = 0x10
    BAUD = 0x11
    HASH = 0x12
    PUT_RECIPE = 0x13


class ProtocolError(DeviceError):
    """A peer broke the protocol (missing field, wrong type, a size over a limit). The client
    adds the device and the request to the message (``AgentClient``)."""


FieldValue = int | str | bytes
FieldInput = FieldValue | Sequence[FieldValue] | None


# --- COBS -------------------------------------------------------------------------------


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result holds no 0x00 byte."""
    out = bytearray()
    code_pos = 0
    out.append(0)
    code = 1
    for b in data:
        if b == 0:
            out[code_pos] = code
            code_pos = len(out)
            out.append(0)
            code = 1
            continue
        out.append(b)
        code += 1
        if code == 0xFF:
            out[code_pos] = code
            code_pos = len(out)
            out.append(0)
            code = 1
    out[code_pos] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of ``cobs_encode``; raises ``ValueError`` on malformed input."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ValueError("zero byte inside COBS data")
        end = i + code
        if end > n:
            raise ValueError("COBS block runs past the end")
        out += data[i + 1 : end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


# --- messages ---------------------------------------------------------------------------


def _encode_value(value: FieldValue) -> bytes:
    if isinstance(value, bool):
        return struct.pack("<q", int(value))
    if isinstance(value, int):
        return struct.pack("<q", value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def encode_fields(fields: Mapping[str, FieldInput]) -> bytes:
    """``{"argv": ["a", "b"], "timeout_ms": 5}`` -> payload bytes. ``None`` values are left out."""
    out = bytearray()
    for key, value in fields.items():
        if value is None:
            continue
        kb = key.encode("ascii")
        if not 0 < len(kb) < 256:
            raise ValueError(f"field key {key!r} must be 1..255 ASCII bytes")
        values: Sequence[FieldValue] = (
            value if isinstance(value, (list, tuple)) else [value]  # type: ignore[list-item]
        )
        for v in values:
            vb = _encode_value(v)
            out.append(len(kb))
            out += kb
            out += struct.pack("<I", len(vb))
            out += vb
    return bytes(out)


def decode_fields(payload: bytes) -> dict[str, list[bytes]]:
    fields: dict[str, list[bytes]] = {}
    i = 0
    n = len(payload)
    while i < n:
        klen = payload[i]
        if klen == 0 or i + 1 + klen + 4 > n:
            raise ProtocolError("truncated field header")
        key = payload[i + 1 : i + 1 + klen].decode("ascii", errors="replace")
        i += 1 + klen
        (vlen,) = struct.unpack_from("<I", payload, i)
        i += 4
        if i + vlen > n:
            raise ProtocolError(f"field {key!r} runs past the payload")
        fields.setdefault(key, []).append(payload[i : i + vlen])
        i += vlen
    return fields


@dataclass
class Message:
    """One protocol message: type, request sequence number, fields."""

    type: MsgType
    seq: int
    fields: dict[str, list[bytes]] = field(default_factory=dict)

    @classmethod
    def build(cls, type: MsgType, seq: int, **fields: FieldInput) -> Message:
        return cls(type, seq, decode_fields(encode_fields(fields)))

    def payload(self) -> bytes:
        out = bytearray()
        for key, values in self.fields.items():
            kb = key.encode("ascii")
            for v in values:
                out.append(len(kb))
                out += kb
                out += struct.pack("<I", len(v))
                out += v
        return bytes(out)

    def has(self, key: str) -> bool:
        return key in self.fields

    def raw(self, key: str) -> bytes:
        try:
            return self.fields[key][0]
        except (KeyError, IndexError):
            raise ProtocolError(f"{self.type.name} message lacks field {key!r}") from None

    def get_bytes(self, key: str, default: bytes | None = None) -> bytes:
        if default is not None and key not in self.fields:
            return default
        return self.raw(key)

    def get_int(self, key: str, default: int | None = None) -> int:
        if default is not None and key not in self.fields:
            return default
        raw = self.raw(key)
        if len(raw) != 8:
            raise ProtocolError(f"{self.type.name}.{key} is not an 8-byte integer")
        value: int = struct.unpack("<q", raw)[0]
        return value

    def get_str(self, key: str, default: str | None = None) -> str:
        if default is not None and key not in self.fields:
            return default
        try:
            return self.raw(key).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"{self.type.name}.{key} is not UTF-8") from None

    def get_strs(self, key: str) -> list[str]:
        return [v.decode("utf-8", errors="replace") for v in self.fields.get(key, [])]

    def get_json(self, key: str) -> Any:
        try:
            return json.loads(self.raw(key).decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, or nested too deep
            raise ProtocolError(f"{self.type.name}.{key} is not JSON: {exc}") from None


# --- frames -----------------------------------------------------------------------------


def frame_bytes(msg: Message) -> bytes:
    """The raw frame (before COBS): header, payload, CRC-32."""
    payload = msg.payload()
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD {MAX_PAYLOAD}")
    head = HEADER.pack(MAGIC, PROTOCOL_VERSION, int(msg.type), 0, msg.seq, len(payload))
    body = head + payload
    return body + CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)


def encode_frame(msg: Message) -> bytes:
    """Wire bytes for one message: ``0x00 COBS(frame) 0x00``."""
    return b"\x00" + cobs_encode(frame_bytes(msg)) + b"\x00"


def parse_frame(raw: bytes) -> Message:
    """Check and parse one decoded frame; raises ``ValueError`` naming what is wrong."""
    if len(raw) < FRAME_OVERHEAD:
        raise ValueError("frame too short")
    magic, version, mtype, _flags, seq, length = HEADER.unpack_from(raw, 0)
    if magic != MAGIC:
        raise ValueError("bad magic")
    if version != PROTOCOL_VERSION:
        raise ValueError(f"frame version {version}")
    if length != len(raw) - FRAME_OVERHEAD:
        raise ValueError("length mismatch")
    (crc,) = CRC.unpack_from(raw, len(raw) - CRC.size)
    if zlib.crc32(raw[: -CRC.size]) & 0xFFFFFFFF != crc:
        raise ValueError("bad CRC")
    try:
        kind = MsgType(mtype)
    except ValueError:
        raise ValueError(f"unknown message type 0x{mtype:02x}") from None
    try:
        fields = decode_fields(raw[HEADER.size : -CRC.size])
    except ProtocolError as exc:
        raise ValueError(str(exc)) from None
    return Message(kind, seq, fields)


@dataclass
class DecoderStats:
    frames: int = 0
    dropped: int = 0  # candidates that failed COBS, magic, length, CRC or type
    oversize: int = 0  # candidates longer than MAX_FRAME, discarded unbuffered
    noise_bytes: int = 0  # bytes in dropped candidates


class FrameDecoder:
    """Incremental receiver: ``feed(bytes)`` returns the messages completed by those bytes.

    Anything between two 0x00 delimiters is one candidate; bad candidates are counted in
    ``stats`` and dropped, so the decoder is back in sync at the next delimiter.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._skipping = False
        self.stats = DecoderStats()

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        start = 0
        while True:
            idx = data.find(b"\x00", start)
            piece = data[start:] if idx < 0 else data[start:idx]
            if not self._skipping:
                self._buf += piece
                if len(self._buf) > self.max_frame:
                    self._skipping = True
                    self.stats.oversize += 1
                    self.stats.noise_bytes += len(self._buf)
                    self._buf.clear()
            else:
                self.stats.noise_bytes += len(piece)
            if idx < 0:
                return out
            msg = self._finish()
            if msg is not None:
                out.append(msg)
            start = idx + 1

    def _finish(self) -> Message | None:
        if self._skipping:
            self._skipping = False
            return None
        candidate = bytes(self._buf)
        self._buf.clear()
        if not candidate:
            return None
        try:
            msg = parse_frame(cobs_decode(candidate))
        except ValueError:
            self.stats.dropped += 1
            self.stats.noise_bytes += len(candidate)
            return None
        self.stats.frames += 1
        return msg


def iter_messages(chunks: Iterable[bytes]) -> Iterator[Message]:
    """All messages in a stream given as byte pieces (tests, captures)."""
    dec = FrameDecoder()
    for chunk in chunks:
        yield from dec.feed(chunk)
