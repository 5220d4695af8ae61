# SPDX-License-Identifier: Apache-2.0
"""The agent over a real SSH exec channel to a virtual board (sshd on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import os
import platform
import signal
import time
from pathlib import Path

import pytest

from edgepack.device.client import AgentClient, AgentError, sha256_file
from edgepack.device.protocol import (
    MAX_FRAME,
    Message,
    MsgType,
    cobs_encode,
    encode_frame,
    frame_bytes,
)
from edgepack.device.targets import Target
from edgepack.device.transport import Transport, start_agent
from edgepack.errors import DeviceError

SCRIPT = b"#!/bin/sh\necho \"out:$*\"\necho \"err:$EP_X\" >&2\nexit 3\n"


def _deploy(agent: AgentClient, data: bytes, path: str, mode: int = 0o644) -> str:
    res = agent.put_bytes(data)
    agent.install(res.sha256, path, mode)
    return res.sha256


def test_hello_reports_device_facts(agent: AgentClient, host_agent: Path, target: Target) -> None:
    h = agent.hello()
    assert h.protocol == 1 and h.agent_version == "0.1.0"
    assert h.agent_sha256 == sha256_file(host_agent)
    assert {"put", "install", "run", "get"} <= set(h.capabilities)
    assert h.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    f = h.facts
    assert f["machine"] == platform.machine()
    assert f["kernel"] == platform.release()
    assert f["cpu_cores"] == os.cpu_count()
    assert f["mem_total_kb"] > 0 and 0 < f["mem_available_kb"] <= f["mem_total_kb"]
    assert f["root"] == target.root and f["root_free_bytes"] > 0
    assert f["glibc"] == platform.libc_ver()[1]
    assert isinstance(f["cpus"], list) and isinstance(f["thermal"], list)
    assert h.session != agent.hello().session or True  # same agent: same session
    assert agent.hello().session == h.session


def test_put_install_run(agent: AgentClient, target: Target) -> None:
    data = os.urandom(300_000)
    first = agent.put_bytes(data)
    assert first.sha256 == hashlib.sha256(data).hexdigest() and first.bytes_sent == len(data)
    again = agent.put_bytes(data)  # content addressed: nothing travels twice
    assert again.already_present and again.bytes_sent == 0
    agent.install(first.sha256, "models/blob.bin")
    assert (Path(str(target.root)) / "models/blob.bin").read_bytes() == data
    assert agent.get("models/blob.bin") == data

    _deploy(agent, SCRIPT, "bin/tool", 0o755)
    res = agent.run(["bin/tool", "a b", "c"], env={"EP_X": "42"})
    assert res.exit_code == 3 and not res.timed_out
    assert res.stdout == b"out:a b c\n" and res.stderr == b"err:42\n"
    logs: list[tuple[str, bytes]] = []
    res = agent.run(["bin/tool", "s"], env={"EP_X": "1"}, stream=True,
                    on_log=lambda s, d: logs.append((s, d)))
    assert res.exit_code == 3 and res.stdout == b""
    assert ("stdout", b"out:s\n") in logs and ("stderr", b"err:1\n") in logs


def test_run_watchdog_kills_a_hung_program(agent: AgentClient) -> None:
    _deploy(agent, b"#!/bin/sh\necho started\nexec sleep 60\n", "bin/hang", 0o755)
    res = agent.run(["bin/hang"], timeout_s=0.5)
    assert res.timed_out and res.signal == signal.SIGTERM and res.exit_code == -1
    assert res.stdout == b"started\n"


@pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "a/../../x", "a//b", "./a",
                                  "link/out.bin"])
def test_paths_outside_the_root_are_refused(agent: AgentClient, target: Target,
                                            tmp_path: Path, path: str) -> None:
    link = Path(str(target.root)) / "link"
    if not link.is_symlink():
        link.symlink_to(tmp_path)
    sha = agent.put_bytes(b"x").sha256
    with pytest.raises(AgentError) as err:
        agent.install(sha, path)
    assert err.value.code == "path_outside_root"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(AgentError, match="path_outside_root"):
        agent.get(path)
    with pytest.raises(AgentError, match="path_reserved"):
        agent.get(".edgepack/cas/" + sha)


def test_oversize_upload_is_refused(agent: AgentClient) -> None:
    with pytest.raises(AgentError) as err:
        agent.request(MsgType.PUT_BEGIN, sha256="ab" * 32, size=3 << 30, chunk=65536)
    assert err.value.code == "too_large"
    agent.ping()


def test_malformed_frames_get_errors_and_the_agent_keeps_serving(agent: AgentClient) -> None:
    def errors_after(wire: bytes) -> list[Message]:
        agent.stream.write(wire)
        agent.ping()  # the agent answers in order, so the errors came before the PONG
        got = [m for m in agent._inbox if m.type == MsgType.ERROR]
        agent._inbox.clear()
        return got

    reported = agent.stats.bad_frames_reported
    agent.stream.write(b"\x00garbage that is not a frame\x00")
    good = bytearray(frame_bytes(Message.build(MsgType.PING, 77)))
    good[5] ^= 0x04  # a bit flip: the CRC no longer matches
    agent.stream.write(b"\x00" + cobs_encode(bytes(good)) + b"\x00")
    agent.stream.write(b"\x00" + b"\x41" * (MAX_FRAME + 100) + b"\x00")
    agent.ping()
    assert agent.stats.bad_frames_reported - reported == 3
    assert any("exceeds the limit" in n for n in agent.stats.notices)
    unknown = bytearray(frame_bytes(Message.build(MsgType.PING, 78)))
    unknown[2] = 0x55
    import zlib

    unknown[-4:] = (zlib.crc32(bytes(unknown[:-4])) & 0xFFFFFFFF).to_bytes(4, "little")
    (err,) = errors_after(b"\x00" + cobs_encode(bytes(unknown)) + b"\x00")
    assert err.seq == 78 and err.get_str("code") == "unknown_type"
    (err,) = errors_after(encode_frame(Message.build(MsgType.INSTALL, 79, path="x")))
    assert err.get_str("code") == "bad_request"
    assert agent.hello().protocol == 1


def test_upload_resumes_after_the_ssh_connection_dies(
        vboard: dict[str, object], transport: Transport, target: Target, host_agent: Path,
        tmp_path: Path) -> None:
    from edgepack.device.transport import TransportOptions, connect

    data = os.urandom(6 * 1024 * 1024)
    blob = tmp_path / "big.bin"
    blob.write_bytes(data)
    assert target.root
    agent, _ = start_agent(transport, target.root, host_agent)
    acked = 0

    def kill_at_40_percent(done: int, total: int) -> None:
        nonlocal acked
        acked = done
        if done > 0.4 * total:
            transport.close()  # the SSH connection dies mid-upload

    with pytest.raises(DeviceError):
        agent.put_file(blob, progress=kill_at_40_percent)
    assert 0.4 * len(data) < acked < len(data)

    t2 = connect(target, TransportOptions(known_hosts=Path(str(vboard["known_hosts"]))))
    try:
        agent2, _ = start_agent(t2, target.root, host_agent)
        res = agent2.put_file(blob)
        assert not res.already_present
        # Only what was not acknowledged before the cut travels again.
        assert res.bytes_sent <= len(data) - acked
        assert res.chunks_sent < res.chunks_total
        agent2.install(res.sha256, "models/big.bin")
        assert hashlib.sha256(agent2.get("models/big.bin")).hexdigest() == res.sha256
        agent2.bye()
    finally:
        t2.close()


def test_killed_install_leaves_the_previous_install_in_use(
        agent: AgentClient, transport: Transport, target: Target, host_agent: Path) -> None:
    assert target.root
    root = Path(target.root)
    v1 = b"version-1\n" * 1000
    _deploy(agent, v1, "models/m.bin")
    _deploy(agent, b"#!/bin/sh\nexec sha256sum models/m.bin\n", "bin/hash", 0o755)
    v2 = os.urandom(64 * 1024 * 1024)
    sha2 = agent.put_bytes(v2).sha256
    tmp = root / "models/m.bin.edgepack-tmp"
    killed_mid_install = False
    client = agent
    for _attempt in range(5):
        pid = client.hello().facts["pid"]
        client._send(Message.build(MsgType.INSTALL, 999_000 + _attempt, sha256=sha2,
                                   path="models/m.bin", mode=0o644))
        deadline = time.monotonic() + 10
        while not tmp.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        os.kill(pid, signal.SIGSTOP)  # freeze it, then look: is the rename still ahead?
        killed_mid_install = tmp.exists()
        os.kill(pid, signal.SIGKILL)
        client.stream.close()
        if killed_mid_install:
            break
        client, _ = start_agent(transport, target.root, host_agent)
        _deploy(client, v1, "models/m.bin")
    assert killed_mid_install
    assert (root / "models/m.bin").read_bytes() == v1
    fresh, _ = start_agent(transport, target.root, host_agent)
    res = fresh.run(["bin/hash"])
    assert res.stdout.split()[0].decode() == hashlib.sha256(v1).hexdigest()
    fresh.install(sha2, "models/m.bin")  # the next install completes and clears the temp file
    assert not tmp.exists()
    assert hashlib.sha256((root / "models/m.bin").read_bytes()).hexdigest() == sha2
    fresh.bye()


def test_aarch64_agent_under_qemu_behind_sshd(transport: Transport, target: Target,
                                              aarch64_agent: Path) -> None:
    assert target.root
    root = target.root + "/arm64"
    agent, uploaded = start_agent(transport, root, aarch64_agent)
    assert uploaded
    h = agent.hello_info
    assert h is not None and h.facts["machine"] == "aarch64"
    assert h.agent_sha256 == sha256_file(aarch64_agent)
    data = os.urandom(200_000)
    res = agent.put_bytes(data)
    agent.install(res.sha256, "models/x.bin")
    assert agent.get("models/x.bin") == data
    agent.bye()
    agent.stream.close()
    again, uploaded = start_agent(transport, root, aarch64_agent)
    assert not uploaded  # the HELLO hash matches: no second upload
    again.bye()


def test_put_with_compressed_chunks(agent: AgentClient, target: Target) -> None:
    assert "deflate" in agent.hello().capabilities
    agent.compress, agent.chunk_size = True, 4096
    try:
        text = b"".join(b"line %d of a compressible file\n" % i for i in range(20_000))
        noise = os.urandom(50_000)  # does not shrink: travels as is
        for data in (text, noise, text[:5000] + noise[:3000]):
            put = agent.put_bytes(data)
            assert put.bytes_sent == len(data)
            agent.install(put.sha256, "data/z.bin")
            assert (Path(str(target.root)) / "data/z.bin").read_bytes() == data
            if data is text:
                assert put.wire_bytes < 0.2 * len(data)
            if data is noise:
                assert put.wire_bytes == len(data)
    finally:
        agent.compress = False
    # A chunk that does not decode is refused, and nothing is stored.
    blob = os.urandom(2000)
    digest = hashlib.sha256(blob).hexdigest()
    agent.request(MsgType.PUT_BEGIN, sha256=digest, size=len(blob), chunk=4096)
    with pytest.raises(AgentError) as exc:
        agent.request(MsgType.PUT_CHUNK, sha256=digest, index=0, data=b"\x07junk",
                      encoding="deflate")
    assert exc.value.code == "bad_chunk"
