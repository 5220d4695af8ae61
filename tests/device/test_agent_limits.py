# SPDX-License-Identifier: Apache-2.0
"""The agent under hostile or careless requests (issue 11), over stdio: every size and option
is checked before anything is allocated, large output arrives whole or flagged, the watchdog
ends every descendant of a RUN, and the agent answers PING while a RUN is in progress."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_stdio import stdio_agent

from edgepack.device.client import AgentClient, AgentError
from edgepack.device.protocol import MAX_CHUNKS, MAX_PAYLOAD, Message, MsgType
from edgepack.errors import DeviceError


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "bin").mkdir(parents=True)
    return r


@pytest.fixture()
def agent(host_agent: Path, root: Path) -> Iterator[AgentClient]:
    with stdio_agent(host_agent, root) as client:
        yield client


def _script(root: Path, name: str, body: str) -> str:
    path = root / "bin" / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return f"bin/{name}"


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_output_larger_than_a_frame_arrives_whole(agent: AgentClient, root: Path) -> None:
    # 600 KiB of stdout and 300 KiB of stderr: more than one 256 KiB frame together.
    prog = _script(root, "loud", "head -c 614400 /dev/zero | tr '\\0' o\n"
                   "head -c 307200 /dev/zero | tr '\\0' e >&2\n")
    agent.timeout = 10.0
    res = agent.run([prog], timeout_s=20)
    assert res.exit_code == 0
    assert res.stdout == b"o" * 614400 and res.stderr == b"e" * 307200
    assert not res.stdout_truncated and not res.stderr_truncated


def test_output_beyond_max_output_is_cut_and_flagged(agent: AgentClient, root: Path) -> None:
    prog = _script(root, "loud", "head -c 400000 /dev/zero | tr '\\0' o\necho short >&2\n")
    res = agent.run([prog], timeout_s=20, max_output=300_000)
    assert res.stdout == b"o" * 300_000 and res.stdout_truncated
    assert res.stderr == b"short\n" and not res.stderr_truncated
    assert any("stdout cut at 300000 bytes" in n for n in agent.stats.notices)


def test_setsid_grandchild_is_ended_when_the_program_exits(agent: AgentClient,
                                                           root: Path) -> None:
    # The grandchild leaves the program's session and keeps the output pipe open.
    prog = _script(root, "escape", "setsid sleep 60 &\necho $! > escaped.pid\necho started\n")
    start = time.monotonic()
    res = agent.run([prog], timeout_s=30)
    assert time.monotonic() - start < 10, "the agent waited on the escaped child's pipe"
    assert res.exit_code == 0 and res.stdout == b"started\n"
    assert _wait_gone(int((root / "escaped.pid").read_text()))


def test_timeout_ends_every_descendant(agent: AgentClient, root: Path) -> None:
    prog = _script(root, "hang", "setsid sleep 60 &\necho $! > escaped.pid\n"
                   "sh -c 'sleep 60' &\necho $! > child.pid\nsleep 60\n")
    res = agent.run([prog], timeout_s=1)
    assert res.timed_out
    for name in ("escaped.pid", "child.pid"):
        assert _wait_gone(int((root / name).read_text())), name


def test_ping_is_answered_while_a_run_is_in_progress(agent: AgentClient, root: Path) -> None:
    prog = _script(root, "slow", "setsid sleep 60 &\nsleep 2\necho done\n")
    run = Message.build(MsgType.RUN, 1000, argv=[prog], timeout_ms=30_000)
    agent._send(run)
    time.sleep(0.5)  # the RUN is in progress now
    agent._send(Message.build(MsgType.PING, 1001))
    agent._send(Message.build(MsgType.GET, 1002, path="bin/slow"))
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and agent._take(1001) is None:
        agent._pump(0.1)
    assert time.monotonic() < deadline, "no PONG while the RUN ran"
    while (busy := agent._take(1002)) is None:
        agent._pump(0.1)
    assert busy.type is MsgType.ERROR and busy.get_str("code") == "busy"
    deadline = time.monotonic() + 10
    while (result := agent._take(1000)) is None:
        assert time.monotonic() < deadline, "no RESULT"
        agent._pump(0.1)
    assert result.type is MsgType.RESULT and result.get_bytes("stdout") == b"done\n"
    agent.ping()


def test_host_environment_wins(host_agent: Path, root: Path) -> None:
    # printenv reads getenv(), which takes the first of duplicate entries (a shell the last).
    shutil.copy(shutil.which("printenv") or "/usr/bin/printenv", root / "bin" / "printenv")
    prog = "bin/printenv"
    with stdio_agent(host_agent, root, env={**os.environ, "EP_MODE": "agent"}) as agent:
        assert agent.run([prog, "EP_MODE"]).stdout == b"agent\n"
        assert agent.run([prog, "EP_MODE"], env={"EP_MODE": "host"}).stdout == b"host\n"


@pytest.mark.parametrize("fields", [
    {"max_output": -1}, {"max_output": 1 << 40}, {"timeout_ms": -5}, {"stream": 2},
    {"env": "NO_EQUALS"}, {"env": "A=\0b"}, {"argv": ["bin/x\0y"]},
])
def test_run_options_are_validated(agent: AgentClient, root: Path,
                                   fields: dict[str, object]) -> None:
    _script(root, "x", "exit 0\n")
    request: dict[str, object] = {"argv": ["bin/x"], **fields}
    with pytest.raises(AgentError) as err:
        agent.request(MsgType.RUN, **request)  # type: ignore[arg-type]
    assert err.value.code == "bad_request"


def test_put_begin_sizes_are_checked_before_allocating(agent: AgentClient) -> None:
    sha = "ab" * 32
    start = time.monotonic()
    with pytest.raises(AgentError, match="chunks of at least") as err:
        agent.request(MsgType.PUT_BEGIN, sha256=sha, size=(2 << 30) - 1, chunk=1)
    assert err.value.code == "bad_request" and time.monotonic() - start < 2
    with pytest.raises(AgentError) as err:
        agent.request(MsgType.PUT_BEGIN, sha256=sha, size=1 << 40, chunk=131072)
    assert err.value.code == "too_large"
    # The largest have-list the agent builds fits one frame.
    have = agent.request(MsgType.PUT_BEGIN, sha256=sha, size=MAX_CHUNKS, chunk=1)
    assert len(have.get_bytes("have")) == MAX_CHUNKS // 8 < MAX_PAYLOAD
    with pytest.raises(AgentError) as err:
        agent.request(MsgType.PUT_CHUNK, sha256=sha, index=1 << 62, data=b"x")
    assert err.value.code == "bad_chunk"


def test_put_larger_than_free_space_is_refused(agent: AgentClient, root: Path) -> None:
    free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
    with pytest.raises(AgentError) as err:
        agent.request(MsgType.PUT_BEGIN, sha256="cd" * 32, size=free + (1 << 30),
                      chunk=131072)
    assert err.value.code in ("no_space", "too_large")


def test_get_serves_only_regular_files(agent: AgentClient, root: Path) -> None:
    os.mkfifo(root / "fifo")
    (root / "dir").mkdir()
    for path in ("fifo", "dir"):
        start = time.monotonic()
        with pytest.raises(AgentError) as err:
            agent.get(path)
        assert err.value.code == "not_found" and time.monotonic() - start < 2
    (root / "f").write_bytes(b"12345")
    with pytest.raises(AgentError) as err:
        agent.request(MsgType.GET, path="f", offset=-1)
    assert err.value.code == "bad_request"
    assert agent.get("f") == b"12345"


def test_symlinks_into_the_agent_state_are_refused(agent: AgentClient, root: Path) -> None:
    put = agent.put_bytes(b"secret content")
    agent.keygen("device")
    (root / "store").symlink_to(".edgepack/cas")
    (root / "key").symlink_to(root / ".edgepack" / "keys" / "device.key")
    (root / "state").symlink_to(".edgepack")
    for path in (f"store/{put.sha256}", "key", "state/keys/device.key"):
        with pytest.raises(AgentError) as err:
            agent.get(path)
        assert err.value.code == "path_reserved", path
    with pytest.raises(AgentError) as err:
        agent.install(put.sha256, "store/overwrite")
    assert err.value.code == "path_reserved"


def test_names_with_nul_are_refused(agent: AgentClient, root: Path) -> None:
    put = agent.put_bytes(b"data")
    with pytest.raises(AgentError) as err:
        agent.install(put.sha256, "ok\0/../../escape")
    assert err.value.code == "bad_request"
    assert not list(root.glob("ok*"))
    with pytest.raises(AgentError) as err:
        agent.request(MsgType.INSTALL, sha256=put.sha256, path="m", mode=0o170000)
    assert err.value.code == "bad_request"


def _partial(root: Path, data: bytes, size: int, age_s: float) -> Path:
    cas = root / ".edgepack" / "cas"
    cas.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(data).hexdigest()
    p = cas / f"{sha}.partial"
    with p.open("wb") as f:
        f.truncate(size)
    (cas / f"{sha}.chunks").write_bytes(b"")
    when = time.time() - age_s
    os.utime(p, (when, when))
    return p


def test_abandoned_uploads_expire_by_age(agent: AgentClient, root: Path) -> None:
    old = _partial(root, b"old", 1000, 8 * 86400)
    recent = _partial(root, b"recent", 1000, 3600)
    agent.put_bytes(b"new upload")
    assert not old.exists() and not old.with_suffix(".chunks").exists()
    assert recent.exists()


def test_abandoned_uploads_expire_by_quota(host_agent: Path, root: Path) -> None:
    older = _partial(root, b"older", 600_000, 7200)
    newer = _partial(root, b"newer", 600_000, 3600)
    with stdio_agent(host_agent, root, "--max-upload", str(1 << 20)) as agent:
        agent.put_bytes(os.urandom(100_000))
    assert not older.exists() and newer.exists()


def test_hello_limits_are_announced_and_bounded(agent: AgentClient) -> None:
    info = agent.hello()
    assert info.max_payload == MAX_PAYLOAD and info.max_chunk == 131072
    with pytest.raises(DeviceError, match="max_output"):
        agent.run(["bin/x"], max_output=-1)


def test_end_of_input_during_a_run_ends_the_program_and_the_agent(host_agent: Path,
                                                                  root: Path) -> None:
    prog = _script(root, "long", "echo $$ > long.pid\nexec sleep 60\n")
    with stdio_agent(host_agent, root) as agent:
        agent._send(Message.build(MsgType.RUN, 77, argv=[prog]))
        deadline = time.monotonic() + 10
        while not (root / "long.pid").exists() or not (root / "long.pid").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pid = int((root / "long.pid").read_text())
        assert not _gone(pid)
        proc = agent.stream.proc  # type: ignore[attr-defined]
        proc.stdin.close()  # the SSH channel closes
        assert proc.wait(timeout=10) == 0
    assert _wait_gone(pid)


def test_error_replies_quoting_the_request_stay_within_a_frame(agent: AgentClient) -> None:
    huge = "f" * (MAX_PAYLOAD - 200)  # echoed in "no PUT_BEGIN for <sha256>"
    with pytest.raises(AgentError) as err:
        agent.request(MsgType.PUT_CHUNK, sha256=huge, index=0, data=b"")
    assert err.value.code == "unknown_upload" and len(err.value.agent_message) < 1100
