# SPDX-License-Identifier: Apache-2.0
"""``AgentClient``: the host side of the agent protocol over any byte stream.

The stream is anything with ``write``/``read``/``close`` (an SSH exec channel, a serial port,
a pipe). The client numbers requests, waits for their replies, pipelines upload chunks within
the agent's window, and on lossy links (``retransmit=True``, serial) sends a request again
when its reply does not come; the agent answers repeats without executing twice
(device_agents/PROTOCOL.md section 3).

Everything the agent announces is checked against the limits of ``protocol.LIMITS`` before the
client allocates or reads anything for it, and every failure is a ``DeviceError`` naming the
device and the request.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgepack.device import delta
from edgepack.device.protocol import (
    DEFAULT_CHUNK_SSH,
    DEFAULT_OUTPUT,
    LIMITS,
    MAX_CHUNK,
    MAX_CHUNKS,
    MAX_FACTS,
    MAX_FRAME,
    MAX_GET,
    MAX_OUTPUT,
    MAX_PAYLOAD,
    MAX_RANGES,
    MAX_TIMEOUT_MS,
    MAX_UPLOAD_CAP,
    MAX_WINDOW,
    PROTOCOL_VERSION,
    FieldInput,
    FrameDecoder,
    Message,
    MsgType,
    ProtocolError,
    encode_frame,
)
from edgepack.device.protocol import (
    MAX_STDIN as MAX_STDIN,  # re-exported: callers size RUN stdin with it
)
from edgepack.errors import DeviceError


class ByteStream(Protocol):
    """A bidirectional byte stream to a running agent."""

    def write(self, data: bytes) -> None:
        """Send all of ``data``; raise ``ConnectionLost`` when the stream is gone."""

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Up to ``max_bytes``; ``b""`` after ``timeout`` seconds without data.

        Raises ``ConnectionLost`` at end of stream.
        """

    def close(self) -> None: ...


class ConnectionLost(DeviceError):
    """The byte stream to the agent closed or broke."""


class AgentError(DeviceError):
    """The agent answered a request with ERROR."""

    def __init__(self, code: str, message: str, where: str = "") -> None:
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}agent refused: {code}: {message}")
        self.code = code
        self.agent_message = message


@dataclass(frozen=True)
class Hello:
    protocol: int
    agent_version: str
    agent_sha256: str
    capabilities: tuple[str, ...]
    boot_id: str
    session: str
    max_payload: int
    max_chunk: int
    max_upload: int
    window: int
    facts: dict[str, Any]


@dataclass(frozen=True)
class PutResult:
    sha256: str
    size: int
    chunk: int
    chunks_total: int
    chunks_sent: int
    bytes_sent: int  # bytes of the chunks that travelled (resume skips the rest)
    already_present: bool
    wire_bytes: int = 0  # what those chunks took on the wire (less when compressed)
    copied_bytes: int = 0  # re-deploy: bytes the device copied from its old file (recipe)


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    signal: int
    core_dumped: bool
    timed_out: bool
    wall_ns: int
    utime_us: int
    stime_us: int
    maxrss_kb: int
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool = False  # the program wrote more than max_output bytes
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.signal == 0


@dataclass(frozen=True)
class DeviceKey:
    name: str
    path: str  # relative to the agent's root, e.g. ".edgepack/keys/device.key"
    public: bytes  # raw X25519 public key, 32 bytes
    created: bool  # false: the key already existed and was kept


ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)
LogFn = Callable[[str, bytes], None]  # (stream name, data)


@dataclass
class LinkStats:
    bytes_written: int = 0
    bytes_read: int = 0
    retransmits: int = 0
    bad_frames_reported: int = 0  # ERROR bad_frame / frame_too_large from the agent
    frames_dropped: int = 0  # candidates our decoder dropped
    notices: list[str] = field(default_factory=list)


# The replies each request may get besides ERROR (LOG only while a RUN is in progress).
_REPLIES: dict[MsgType, tuple[MsgType, ...]] = {
    MsgType.HELLO: (MsgType.HELLO,),
    MsgType.PUT_BEGIN: (MsgType.HAVE,),
    MsgType.PUT_CHUNK: (MsgType.OK,),
    MsgType.PUT_END: (MsgType.OK,),
    MsgType.INSTALL: (MsgType.OK,),
    MsgType.RUN: (MsgType.RESULT, MsgType.LOG),
    MsgType.GET: (MsgType.OK,),
    MsgType.PING: (MsgType.PONG,),
    MsgType.BYE: (MsgType.BYE,),
    MsgType.KEYGEN: (MsgType.OK,),
    MsgType.BAUD: (MsgType.OK,),
    MsgType.HASH: (MsgType.OK,),
    MsgType.PUT_RECIPE: (MsgType.HAVE,),
}


def _bounded(msg: Message, key: str, lo: int, hi: int) -> int:
    """An int field the peer announces, refused outside ``lo..hi`` before it sizes anything."""
    value = msg.get_int(key)
    if not lo <= value <= hi:
        raise ProtocolError(f"{msg.type.name}.{key} = {value} is outside {lo}..{hi}")
    return value


def deflate_raw(data: bytes, level: int = 6) -> bytes:
    """Raw DEFLATE (no zlib header), what the agent's decoder reads."""
    z = zlib.compressobj(level, zlib.DEFLATED, -15)
    return z.compress(data) + z.flush()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class AgentClient:
    def __init__(self, stream: ByteStream, *, timeout: float = 60.0,
                 retransmit: bool = False, retry_after: float = 2.0,
                 chunk_size: int = DEFAULT_CHUNK_SSH, device: str = "the device") -> None:
        self.stream = stream
        self.device = device  # named in every error (a target URI)
        self.timeout = timeout
        self.retransmit = retransmit
        self.retry_after = retry_after
        self.chunk_size = chunk_size
        # Compress chunks on the wire (raw DEFLATE, PROTOCOL.md section 7) when the agent can
        # decode them: worth it on slow links (serial), not on SSH.
        self.compress = False
        self.stats = LinkStats()
        self.hello_info: Hello | None = None
        self._decoder = FrameDecoder()
        self._inbox: deque[Message] = deque()
        self._seq = 0
        self._window = 65_536

    # --- low level -----------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1
        return self._seq

    def _send(self, msg: Message) -> None:
        wire = encode_frame(msg)
        self.stream.write(wire)
        self.stats.bytes_written += len(wire)

    def _pump(self, timeout: float) -> None:
        data = self.stream.read(1 << 16, timeout)
        if not data:
            return
        self.stats.bytes_read += len(data)
        before = self._decoder.stats.dropped + self._decoder.stats.oversize
        for msg in self._decoder.feed(data):
            if msg.type == MsgType.ERROR and msg.seq == 0:
                self.stats.bad_frames_reported += 1
                self.stats.notices.append(msg.get_str("message", ""))
                continue
            self._inbox.append(msg)
        after = self._decoder.stats.dropped + self._decoder.stats.oversize
        self.stats.frames_dropped += after - before

    def _take(self, seq: int) -> Message | None:
        for i, msg in enumerate(self._inbox):
            if msg.seq == seq:
                del self._inbox[i]
                return msg
        return None

    def _where(self, mtype: MsgType) -> str:
        return f"{self.device}: {mtype.name}"

    @contextlib.contextmanager
    def _reading(self, mtype: MsgType) -> Iterator[None]:
        """Turns a malformed reply (``ProtocolError``) into one line naming the device and the
        request."""
        try:
            yield
        except ProtocolError as exc:
            raise ProtocolError(f"{self._where(mtype)}: the agent's reply is malformed: "
                                f"{exc.message}",
                                hint="the agent on the device speaks another protocol "
                                "version, or the link corrupts data") from None

    def request(self, mtype: MsgType, *, on_log: LogFn | None = None,
                timeout: float | None = None, **fields: FieldInput) -> Message:
        """Send one request and return its final reply; ``LOG`` frames go to ``on_log``.

        ``timeout`` is an absolute deadline: output (``LOG``) does not extend it. Raises
        ``AgentError`` for an ERROR reply, ``DeviceError`` when no reply comes in time and
        ``ConnectionLost`` when the link breaks, each naming the device and the request.
        """
        with self._link(mtype):
            return self._exchange(mtype, on_log, timeout, fields)

    @contextlib.contextmanager
    def _link(self, mtype: MsgType) -> Iterator[None]:
        """Names the device and the request in a broken-link error."""
        try:
            yield
        except ConnectionLost as exc:
            if exc.message.startswith(f"{self.device}: "):
                raise
            raise ConnectionLost(f"{self._where(mtype)}: {exc.message}", hint=exc.hint) from None

    def _exchange(self, mtype: MsgType, on_log: LogFn | None, timeout: float | None,
                  fields: dict[str, FieldInput]) -> Message:
        seq = self._next_seq()
        msg = Message.build(mtype, seq, **fields)
        self._send(msg)
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        oversize_before = self._decoder.stats.oversize
        resend_at = time.monotonic() + self.retry_after
        while True:
            reply = self._take(seq)
            if reply is not None:
                with self._reading(mtype):
                    if reply.type not in (*_REPLIES.get(mtype, tuple(MsgType)), MsgType.ERROR):
                        raise ProtocolError(f"a {reply.type.name} reply")
                    if reply.type == MsgType.LOG:
                        if on_log is not None:
                            on_log(reply.get_str("stream", "stdout"),
                                   reply.get_bytes("data", b""))
                        continue
                    if reply.type == MsgType.ERROR:
                        raise AgentError(reply.get_str("code", "?"),
                                         reply.get_str("message", ""), self._where(mtype))
                return reply
            now = time.monotonic()
            if now >= deadline:
                oversize = self._decoder.stats.oversize - oversize_before
                if oversize:
                    raise ProtocolError(f"{self._where(mtype)}: no reply within {limit:.0f}s; "
                                        f"{oversize} frame(s) larger than the {MAX_FRAME}-byte "
                                        "limit arrived and were dropped",
                                        hint="the agent on the device is older than this "
                                        "edgepack: rebuild the SDK so the current agent is "
                                        "uploaded")
                raise DeviceError(f"{self._where(mtype)}: no reply from the agent within "
                                  f"{limit:.0f}s",
                                  hint="is the board still up? check the link and retry")
            if self.retransmit and now >= resend_at:
                self.stats.retransmits += 1
                self._send(msg)
                resend_at = now + self.retry_after
            self._pump(min(0.5, max(0.01, deadline - now)))

    # --- requests ------------------------------------------------------------------------

    def hello(self, timeout: float | None = None) -> Hello:
        reply = self.request(MsgType.HELLO, protocol=PROTOCOL_VERSION, client="edgepack",
                             timeout=timeout)
        with self._reading(MsgType.HELLO):
            if len(reply.get_bytes("facts", b"")) > MAX_FACTS:
                raise ProtocolError(f"facts of {len(reply.raw('facts'))} bytes exceed "
                                    f"{MAX_FACTS}")
            facts = reply.get_json("facts")
            if not isinstance(facts, dict):
                raise ProtocolError("HELLO.facts is not a JSON object")
            info = Hello(
                protocol=reply.get_int("protocol"),
                agent_version=reply.get_str("agent_version"),
                agent_sha256=reply.get_str("agent_sha256", ""),
                capabilities=tuple(reply.get_strs("capabilities")),
                boot_id=reply.get_str("boot_id", ""),
                session=reply.get_str("session", ""),
                max_payload=_bounded(reply, "max_payload", 64, MAX_PAYLOAD),
                max_chunk=_bounded(reply, "max_chunk", 1, MAX_CHUNK),
                max_upload=_bounded(reply, "max_upload", 0, MAX_UPLOAD_CAP),
                window=_bounded(reply, "window", 1, MAX_WINDOW),
                facts=facts,
            )
        self.hello_info = info
        self._window = info.window
        return info

    def ping(self) -> None:
        self.request(MsgType.PING)

    def change_baud(self, baud: int, old: int, set_rate: Callable[[int], None]) -> bool:
        """Switch a serial line to ``baud`` (PROTOCOL.md section 8d): ``BAUD`` at the old
        rate, then ``set_rate(baud)`` switches this side and a ``PONG`` at the new rate
        confirms it. Without one, this side goes back to ``old`` (``set_rate(old)``) and waits
        until the agent, which has heard no valid frame at the new rate, is back there too.
        Returns whether the line runs at ``baud``. Raises ``AgentError`` when the agent's tty
        does not take ``baud`` (nothing switched) and ``DeviceError`` when the agent is not
        heard at either rate."""
        self.request(MsgType.BAUD, baud=baud, timeout=15.0)
        settle = LIMITS["BAUD_SETTLE_MS"].value / 1000
        confirm = LIMITS["BAUD_CONFIRM_MS"].value / 1000
        with self._link(MsgType.BAUD):
            time.sleep(settle)  # our last bytes leave at the old rate; the agent switches next
            set_rate(baud)
            time.sleep(2 * settle)
            # Within the agent's own deadline, while it still listens at the new rate.
            if self._confirm(0.6 * confirm):
                return True
            set_rate(old)
            # The agent goes back after BAUD_CONFIRM_MS without a frame; if our PING reached
            # it but its PONG was lost, after BAUD_CONFIRM_MS of bytes that form no frame.
            if self._confirm(3 * confirm):
                return False
        raise DeviceError(f"{self._where(MsgType.BAUD)}: the agent answers at neither "
                          f"{baud} nor {old} baud after a rate switch",
                          hint="power-cycle the board; add ?fast_baud=0 to the target to "
                          "keep the line at its console rate")

    def _confirm(self, seconds: float) -> bool:
        """PING until a PONG comes back (any of ours), at most ``seconds``."""
        deadline = time.monotonic() + seconds
        sent: set[int] = set()
        while time.monotonic() < deadline:
            msg = Message.build(MsgType.PING, self._next_seq())
            sent.add(msg.seq)
            self._send(msg)
            until = min(deadline, time.monotonic() + 0.4)
            while time.monotonic() < until:
                self._pump(max(0.01, until - time.monotonic()))
                pongs = [m for m in self._inbox if m.seq in sent and m.type == MsgType.PONG]
                if pongs:
                    self._inbox = deque(m for m in self._inbox if m.seq not in sent)
                    return True
        self._inbox = deque(m for m in self._inbox if m.seq not in sent)
        return False

    def bye(self) -> None:
        with contextlib.suppress(DeviceError):  # the agent is going away either way
            self.request(MsgType.BYE, timeout=5.0)

    def put_file(self, path: Path, progress: ProgressFn | None = None,
                 sha256: str | None = None, base: str | None = None) -> PutResult:
        """Upload ``path`` into the content store. ``base``: the device path of an older
        version (where the file is installed now); the device copies what the two share
        (``PUT_RECIPE``) and only the rest travels."""
        digest = sha256 or sha256_file(path)
        with path.open("rb") as f:
            return self._put(digest, path.stat().st_size, f, progress, base)

    def put_bytes(self, data: bytes, progress: ProgressFn | None = None,
                  base: str | None = None) -> PutResult:
        import io

        return self._put(hashlib.sha256(data).hexdigest(), len(data), io.BytesIO(data),
                         progress, base)

    def _put(self, digest: str, size: int, f: Any, progress: ProgressFn | None,
             base: str | None = None) -> PutResult:
        top = min(MAX_CHUNK, self.hello_info.max_chunk if self.hello_info else MAX_CHUNK)
        if size > MAX_CHUNKS * top:
            raise DeviceError(f"{self._where(MsgType.PUT_BEGIN)}: a file of {size} bytes is more "
                              f"than {MAX_CHUNKS} chunks of {top} bytes")
        # At least size / MAX_CHUNKS bytes per chunk: the agent's have-list is bounded.
        chunk = min(max(self._chunk_for(f, size), -(-size // MAX_CHUNKS)), top)
        copies = self._recipe(base, f, size) if base is not None else []
        begin = MsgType.PUT_RECIPE if copies else MsgType.PUT_BEGIN
        try:
            have = (self.request(MsgType.PUT_RECIPE, sha256=digest, size=size, chunk=chunk,
                                 base=base, copies=delta.copies_field(copies),
                                 timeout=max(self.timeout, 120.0)) if copies
                    else self.request(MsgType.PUT_BEGIN, sha256=digest, size=size, chunk=chunk))
        except AgentError as exc:
            if not copies or exc.code not in ("bad_request", "not_found"):
                raise
            # The old file changed between HASH and PUT_RECIPE: upload plainly.
            return self._put(digest, size, f, progress)
        with self._reading(begin):
            if have.get_int("complete"):
                if progress:
                    progress(size, size)
                return PutResult(digest, size, chunk, 0, 0, 0, True)
            # The agent keeps the chunk size of a partial upload; it must still be in bounds.
            chunk = _bounded(have, "chunk", 1, top)
            nchunks = (size + chunk - 1) // chunk
            if nchunks > MAX_CHUNKS:
                raise ProtocolError(f"HAVE.chunk {chunk} makes {nchunks} chunks (at most "
                                    f"{MAX_CHUNKS})")
            bitmap = have.get_bytes("have", b"")
            if len(bitmap) > (nchunks + 7) // 8:
                raise ProtocolError(f"HAVE.have holds {len(bitmap)} bytes for {nchunks} chunks")
        missing = [i for i in range(nchunks)
                   if not (i // 8 < len(bitmap) and bitmap[i // 8] >> (i % 8) & 1)]
        # What the device holds (copied or resumed) counts as done: the ETA is for what travels.
        done = size - sum(min(chunk, size - i * chunk) for i in missing)
        if progress:
            progress(done, size)
        sent_bytes, wire_bytes = self._send_chunks(digest, size, chunk, missing, f, done,
                                                   progress)
        try:
            self.request(MsgType.PUT_END, sha256=digest, timeout=max(self.timeout, 120.0))
        except AgentError as exc:
            if not copies or exc.code != "hash_mismatch":
                raise
            # The old file changed after it was hashed; the agent dropped the upload.
            return self._put(digest, size, f, progress)
        copied = sum(c.length for c in copies)
        return PutResult(digest, size, chunk, nchunks, len(missing), sent_bytes, False,
                         wire_bytes, copied)

    def recipe(self, data: bytes, base: str) -> list[delta.Copy]:
        """The copies ``put_bytes(data, base=base)`` would ask the device for."""
        import io

        return self._recipe(base, io.BytesIO(data), len(data))

    def _recipe(self, base: str, f: Any, size: int) -> list[delta.Copy]:
        """Copies from the device's ``base`` for a new artifact (PROTOCOL.md section 7b);
        empty when the agent cannot take a recipe, ``base`` is missing or no artifact, or
        nothing matches: then the file is uploaded plainly."""
        info = self.hello_info
        if info is None or not {"hash", "recipe"} <= set(info.capabilities):
            return []
        f.seek(0)
        head = f.read(delta.HEAD_PROBE)
        n = delta.header_len(head)
        if n is None:
            return []
        if n > len(head):
            f.seek(0)
            head = f.read(n)
        new = delta.sections(head, size)
        if new is None:
            return []
        try:
            old_head, old_size = self._read_head(base, n)
            old = delta.sections(old_head, old_size) if old_head else None
            if old is None:
                return []
            wanted = delta.candidates(old, new)
            old_digests: list[bytes] = []
            for at in range(0, len(wanted), MAX_RANGES):
                old_digests += self._hash(base, wanted[at:at + MAX_RANGES], old_size)
        except AgentError:
            return []  # no old file there (or not one the agent may read): a plain upload
        new_digests = []
        for s in new:
            h = hashlib.sha256()
            f.seek(s.offset)
            left = s.length
            while left > 0:
                block = f.read(min(left, 1 << 20))
                if not block:
                    raise DeviceError(f"{self._where(MsgType.PUT_RECIPE)}: the file to upload "
                                      "changed while it was read")
                h.update(block)
                left -= len(block)
            new_digests.append(h.digest())
        return delta.plan(new, new_digests, wanted, old_digests)

    def _read_head(self, path: str, guess: int) -> tuple[bytes, int]:
        """The header bytes of the artifact at ``path`` on the device (``guess`` bytes read
        first: the new header's length) and the file's size; ``b""`` when the file is no
        artifact (or its header is implausibly long)."""
        out = bytearray()
        want, size = max(16, guess), 0
        while len(out) < want:
            reply = self.request(MsgType.GET, path=path, offset=len(out),
                                 length=min(MAX_CHUNK, want - len(out)))
            with self._reading(MsgType.GET):
                data = reply.get_bytes("data", b"")
                size = reply.get_int("size")
            if size < 0 or len(data) > MAX_CHUNK:
                raise ProtocolError(f"{self._where(MsgType.GET)}: a {len(data)}-byte reply "
                                    f"for a {size}-byte file")
            out += data
            if not data or len(out) >= size:
                break
            n = delta.header_len(bytes(out))
            if n is None or n > delta.MAX_HEADER_LEN:
                return b"", size
            want = max(want, n)
        return bytes(out), size

    def _hash(self, path: str, ranges: Sequence[delta.Section], size: int) -> list[bytes]:
        reply = self.request(MsgType.HASH, path=path, ranges=delta.ranges_field(ranges),
                             timeout=max(self.timeout, 120.0))
        with self._reading(MsgType.HASH):
            digests = reply.get_bytes("sha256")
            if reply.get_int("size") != size or len(digests) != 32 * len(ranges):
                raise ProtocolError(f"{len(digests)} digest bytes for {len(ranges)} ranges of "
                                    f"a {reply.get_int('size')}-byte file (want {size} bytes)")
        return [digests[i:i + 32] for i in range(0, len(digests), 32)]

    def _deflating(self) -> bool:
        return self.compress and "deflate" in (self.hello_info.capabilities
                                               if self.hello_info else ())

    def _chunk_for(self, f: Any, size: int) -> int:
        """The chunk size for this file: doubled when its chunks travel compressed to less
        than half, so a compressed frame is about as long on the wire as a plain one (fewer
        frames, a better ratio), and a chunk that does not shrink still fits the window."""
        if not self._deflating() or size <= self.chunk_size:
            return self.chunk_size
        f.seek(0)
        sample = f.read(min(size, 16 * self.chunk_size))
        ratio = len(deflate_raw(sample)) / max(1, len(sample))
        return self.chunk_size * 2 if ratio < 0.5 else self.chunk_size

    def _send_chunks(self, digest: str, size: int, chunk: int, missing: Sequence[int], f: Any,
                     done: int, progress: ProgressFn | None) -> tuple[int, int]:
        """Pipelines PUT_CHUNK frames within the agent's window; returns the chunk bytes sent
        and the payload bytes they took on the wire."""
        with self._link(MsgType.PUT_CHUNK):
            return self._pipeline(digest, size, chunk, missing, f, done, progress)

    def _pipeline(self, digest: str, size: int, chunk: int, missing: Sequence[int], f: Any,
                  done: int, progress: ProgressFn | None) -> tuple[int, int]:
        # seq -> (msg, chunk bytes, wire size, sent at)
        pending: dict[int, tuple[Message, int, int, float]] = {}
        in_flight = 0
        queue = deque(missing)
        sent_bytes = wire_bytes = 0
        deflate = self._deflating()
        ready: tuple[int, bytes, bytes, str | None] | None = None  # the next chunk, encoded
        last_progress = time.monotonic()
        while queue or pending or ready:
            while queue or ready:
                if ready is None:
                    index = queue.popleft()
                    f.seek(index * chunk)
                    data = f.read(min(chunk, size - index * chunk))
                    payload, encoding = data, None
                    if deflate:
                        packed = deflate_raw(data)
                        if len(packed) < len(data):
                            payload, encoding = packed, "deflate"
                    ready = (index, data, payload, encoding)
                index, data, payload, encoding = ready
                wire = len(payload) + 64  # what counts against the window: the wire size
                if pending and in_flight + wire > self._window:
                    break
                ready = None
                msg = Message.build(MsgType.PUT_CHUNK, self._next_seq(), sha256=digest,
                                    index=index, data=payload, encoding=encoding)
                self._send(msg)
                sent_bytes += len(data)
                wire_bytes += len(payload)
                pending[msg.seq] = (msg, len(data), wire, time.monotonic())
                in_flight += wire
            self._pump(0.2)
            for seq in list(pending):
                reply = self._take(seq)
                if reply is None:
                    continue
                msg, plain, wire, _ = pending.pop(seq)
                in_flight -= wire
                with self._reading(MsgType.PUT_CHUNK):
                    if reply.type == MsgType.ERROR:
                        raise AgentError(reply.get_str("code", "?"), reply.get_str("message", ""),
                                         self._where(MsgType.PUT_CHUNK))
                    if reply.type != MsgType.OK:
                        raise ProtocolError(f"a {reply.type.name} reply")
                done += plain
                last_progress = time.monotonic()
                if progress:
                    progress(done, size)
            now = time.monotonic()
            if pending and now - last_progress > self.timeout:
                raise DeviceError(f"{self._where(MsgType.PUT_CHUNK)}: upload stalled: no chunk "
                                  f"acknowledged for {self.timeout:.0f}s")
            if self.retransmit:
                for seq, (msg, plain, wire, at) in list(pending.items()):
                    if now - at > self.retry_after:
                        self.stats.retransmits += 1
                        self._send(msg)
                        pending[seq] = (msg, plain, wire, now)
        return sent_bytes, wire_bytes

    def install(self, sha256: str, path: str, mode: int = 0o644) -> None:
        self.request(MsgType.INSTALL, sha256=sha256, path=path, mode=mode,
                     timeout=max(self.timeout, 120.0))

    def run(self, argv: Sequence[str], *, cwd: str = ".", env: dict[str, str] | None = None,
            timeout_s: float = 0.0, stream: bool = False, on_log: LogFn | None = None,
            max_output: int = DEFAULT_OUTPUT, stdin: bytes | None = None) -> RunResult:
        """Run a program under the root. ``stdin`` (at most ``MAX_STDIN`` bytes) reaches the
        program through a pipe, never a file on the device: how a host-held key travels.

        The reply must come within ``timeout_s`` + 5 s + the client timeout (an hour instead
        of ``timeout_s`` when it is 0), output or not. Output beyond one frame arrives as
        ``LOG`` frames before ``RESULT``; output beyond ``max_output`` bytes per stream is cut
        and flagged (``stdout_truncated``) and noted in ``stats.notices``."""
        where = self._where(MsgType.RUN)
        if stdin is not None:
            self._need("stdin", "hand bytes to a program's stdin")
            if len(stdin) > MAX_STDIN:
                raise DeviceError(f"{where}: stdin is limited to {MAX_STDIN} bytes, got "
                                  f"{len(stdin)}")
        if not 0 <= max_output <= MAX_OUTPUT:
            raise DeviceError(f"{where}: max_output must be 0..{MAX_OUTPUT}, got {max_output}")
        if not 0 <= timeout_s * 1000 <= MAX_TIMEOUT_MS:
            raise DeviceError(f"{where}: timeout must be 0..{MAX_TIMEOUT_MS // 1000} s, got "
                              f"{timeout_s}")
        env_list = [f"{k}={v}" for k, v in (env or {}).items()]
        wait = self.timeout + (timeout_s + 5.0 if timeout_s else 3600.0)
        collected: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

        def collect(name: str, data: bytes) -> None:
            buf = collected.get(name)
            if buf is None or len(buf) + len(data) > max_output:
                raise ProtocolError(f"LOG of {name!r} beyond max_output {max_output}")
            buf += data

        reply = self.request(MsgType.RUN, argv=list(argv), cwd=cwd, env=env_list or None,
                             timeout_ms=int(timeout_s * 1000), stream=int(stream),
                             max_output=max_output, stdin=stdin,
                             on_log=on_log if stream else collect, timeout=wait)
        with self._reading(MsgType.RUN):
            out: dict[str, bytes] = {}
            truncated: dict[str, bool] = {}
            for name in ("stdout", "stderr"):
                truncated[name] = bool(reply.get_int(f"{name}_truncated", 0))
                if stream:
                    out[name] = b""
                    continue
                out[name] = (bytes(collected[name]) if reply.get_int("output_streamed", 0)
                             else reply.get_bytes(name, b""))
                size = reply.get_int(f"{name}_size", len(out[name]))
                if len(out[name]) != size:
                    raise DeviceError(f"{where}: {len(out[name])} of the {size} bytes of "
                                      f"{name} arrived (output frames were lost on the link)")
                if truncated[name]:
                    self.stats.notices.append(f"{argv[0]}: {name} cut at {max_output} bytes")
            return RunResult(
                exit_code=reply.get_int("exit_code"),
                signal=reply.get_int("signal", 0),
                core_dumped=bool(reply.get_int("core_dumped", 0)),
                timed_out=bool(reply.get_int("timed_out", 0)),
                wall_ns=reply.get_int("wall_ns", 0),
                utime_us=reply.get_int("utime_us", 0),
                stime_us=reply.get_int("stime_us", 0),
                maxrss_kb=reply.get_int("maxrss_kb", 0),
                stdout=out["stdout"],
                stderr=out["stderr"],
                stdout_truncated=truncated["stdout"],
                stderr_truncated=truncated["stderr"],
            )

    def keygen(self, name: str = "device", *, create: bool = True,
               replace: bool = False) -> DeviceKey:
        """Have the agent create the X25519 key ``<root>/.edgepack/keys/<name>.key`` on the
        device, or look up the one it has (kept unless ``replace``; ``create=False``: an
        ``AgentError`` ``not_found`` when there is none). Only the public key comes back."""
        self._need("keygen", "create keys on the device")
        reply = self.request(MsgType.KEYGEN, name=name, create=int(create),
                             replace=int(replace))
        with self._reading(MsgType.KEYGEN):
            public = reply.get_bytes("public_key")
            if len(public) != 32:
                raise ProtocolError(f"a {len(public)}-byte public key (want 32)")
            return DeviceKey(name=reply.get_str("name"), path=reply.get_str("path"),
                             public=public, created=bool(reply.get_int("created", 0)))

    def _need(self, capability: str, what: str) -> None:
        info = self.hello_info or self.hello()
        if capability not in info.capabilities:
            raise DeviceError(f"{self.device}: the agent (version {info.agent_version}) "
                              f"cannot {what} (no '{capability}' capability)",
                              hint="rebuild the SDK so the bench uploads the current agent")

    def get(self, path: str, max_size: int = MAX_GET) -> bytes:
        """The file at ``path`` (under the root), read ``MAX_CHUNK`` bytes per request. A size
        the device announces above ``max_size`` is refused before anything is read."""
        out = bytearray()
        size: int | None = None
        while True:
            reply = self.request(MsgType.GET, path=path, offset=len(out), length=MAX_CHUNK)
            with self._reading(MsgType.GET):
                data = reply.get_bytes("data", b"")
                announced = reply.get_int("size")
                if announced < 0 or announced > max_size:
                    raise DeviceError(f"{self._where(MsgType.GET)} {path}: the device announces "
                                      f"{announced} bytes, more than the {max_size} allowed")
                if size is not None and announced != size:
                    raise DeviceError(f"{self._where(MsgType.GET)} {path}: the file changed "
                                      f"size while it was read ({size} -> {announced} bytes)")
                size = announced
                if len(data) > MAX_CHUNK or len(out) + len(data) > size:
                    raise ProtocolError(f"{len(data)} bytes at offset {len(out)} of a "
                                        f"{size}-byte file")
            out += data
            if not data or len(out) >= size:
                return bytes(out)

    def deploy_file(self, local: Path, remote: str, mode: int = 0o644,
                    progress: ProgressFn | None = None) -> PutResult:
        """Upload (only what the device lacks) and install atomically at ``remote``."""
        result = self.put_file(local, progress)
        self.install(result.sha256, remote, mode if mode else os.stat(local).st_mode & 0o777)
        return result
