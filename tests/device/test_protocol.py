# SPDX-License-Identifier: Apache-2.0
"""The frame codec and message fields, in Python and in the agent's C++ unit test."""

from __future__ import annotations

import random
import subprocess
import zlib
from pathlib import Path

import pytest

from edgepack.device.protocol import (
    MAX_FRAME,
    FrameDecoder,
    Message,
    MsgType,
    ProtocolError,
    cobs_decode,
    cobs_encode,
    decode_fields,
    encode_frame,
    frame_bytes,
)


def test_cobs_round_trip_and_no_zero_bytes() -> None:
    rng = random.Random(7)
    for n in [0, 1, 2, 253, 254, 255, 256, 509, 4000]:
        data = bytes(rng.choice([0, 0, 1, 255, rng.randrange(256)]) for _ in range(n))
        enc = cobs_encode(data)
        assert 0 not in enc
        assert len(enc) <= n + n // 254 + 1
        assert cobs_decode(enc) == data
    assert cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    with pytest.raises(ValueError):
        cobs_decode(b"\x05\x01")


def test_crc_is_zlib_crc32_over_the_frame() -> None:
    raw = frame_bytes(Message.build(MsgType.PING, 3))
    assert int.from_bytes(raw[-4:], "little") == zlib.crc32(raw[:-4])


def test_fields_round_trip_with_repeats_and_types() -> None:
    msg = Message.build(MsgType.RUN, 9, argv=["bin/run", "--x"], timeout_ms=-1, data=b"\0\xff",
                        cwd=None)
    (back,) = FrameDecoder().feed(encode_frame(msg))
    assert back.type is MsgType.RUN and back.seq == 9
    assert back.get_strs("argv") == ["bin/run", "--x"]
    assert back.get_int("timeout_ms") == -1
    assert back.get_bytes("data") == b"\0\xff"
    assert not back.has("cwd")
    with pytest.raises(ProtocolError, match="lacks field 'env'"):
        back.get_str("env")
    with pytest.raises(ProtocolError):
        decode_fields(b"\x05key")


def test_decoder_resyncs_after_noise_and_bit_flips() -> None:
    rng = random.Random(1234)
    msgs = [Message.build(MsgType.PUT_CHUNK, i + 1, index=i, data=rng.randbytes(300))
            for i in range(200)]
    stream = bytearray()
    corrupted = set()
    for m in msgs:
        wire = bytearray(encode_frame(m))
        if rng.random() < 0.2:  # flip one bit inside the frame
            pos = rng.randrange(1, len(wire) - 1)
            wire[pos] ^= 1 << rng.randrange(8)
            corrupted.add(m.seq)
        if rng.random() < 0.2:  # console noise between frames
            stream += b"[  12.345] usb 1-1: new device\r\n"
        stream += wire
    dec = FrameDecoder()
    got = []
    pos = 0
    while pos < len(stream):  # arbitrary read sizes, like a serial port
        n = rng.randrange(1, 700)
        got += dec.feed(bytes(stream[pos:pos + n]))
        pos += n
    seqs = {m.seq for m in got}
    # Every intact frame arrives; no corrupted frame is accepted (a flip of a 0x00 delimiter can
    # also take its neighbour with it, so intact frames next to a flip may be lost, never wrong).
    assert seqs.isdisjoint(corrupted)
    for m in got:
        assert m.get_bytes("data") == msgs[m.seq - 1].get_bytes("data")
    assert len(seqs) >= len(msgs) - 2 * len(corrupted)
    assert dec.stats.dropped >= 1


def test_decoder_skips_oversize_candidates_without_buffering() -> None:
    dec = FrameDecoder()
    ping = encode_frame(Message.build(MsgType.PING, 5))
    assert dec.feed(b"\x41" * (MAX_FRAME + 10)) == []
    assert len(dec._buf) == 0
    (msg,) = dec.feed(ping)
    assert msg.type is MsgType.PING and dec.stats.oversize == 1


def test_agent_codec_unit_test(host_agent_build: Path) -> None:
    res = subprocess.run([str(host_agent_build / "edgepack-agent-codec-test")],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "codec test: ok" in res.stdout


REPO = Path(__file__).resolve().parents[2]


def test_agent_protocol_table_is_generated_from_the_python_table() -> None:
    from edgepack.device.protocol_header import HEADER_PATH, render_header

    text = render_header()
    assert (REPO / HEADER_PATH).read_text(encoding="utf-8") == text, (
        "protocol_table.h is stale: run python -m edgepack.device.protocol_header --write")
    for t in MsgType:
        assert f"= 0x{int(t):02X}," in text
    assert "constexpr int64_t kMaxChunks = 1048576;" in text


def test_every_limit_is_documented_with_its_value() -> None:
    from edgepack.device.protocol import LIMITS

    doc = (REPO / "device_agents" / "PROTOCOL.md").read_text(encoding="utf-8")
    for name, limit in LIMITS.items():
        row = f"| `{name}` | {limit.value:,} |"
        assert row in doc, f"PROTOCOL.md section 2 lacks the row {row!r}"


def test_protocol_errors_are_device_errors() -> None:
    from edgepack.errors import DeviceError, EdgepackError

    assert issubclass(ProtocolError, DeviceError) and issubclass(ProtocolError, EdgepackError)
    with pytest.raises(ProtocolError, match=r"^HELLO message lacks field 'window'$"):
        Message.build(MsgType.HELLO, 1).get_int("window")
