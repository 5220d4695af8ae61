# SPDX-License-Identifier: Apache-2.0
"""Re-deploys against the real agent (PROTOCOL.md section 7b): HASH, PUT_RECIPE, a recipe
that yields the exact new file, a wrong recipe refused with nothing installed, resume, the
fallbacks, and the same frames over a serial console."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_stdio import stdio_agent

from edgepack.artifact import container
from edgepack.device import delta
from edgepack.device.client import AgentClient, AgentError
from edgepack.device.protocol import MAX_COPIES, MAX_RANGES, MsgType
from edgepack.device.serial import SerialTransport
from edgepack.device.serial_virtual import (
    SerialConsole,
    start_serial_console,
    stop_serial_console,
)
from edgepack.device.targets import parse_target
from edgepack.device.transport import TransportOptions, agent_path, connect, start_agent
from epk_synth import artifact, ciphertext
from example_project import example_project, next_release, pack_project

OLD_PATH = "run/artifact.epk"
MODELS = {"graph/a": 300_000, "graph/b": 200_000, "graph/c": 500_000}


def release(changed: str | None, counter: int) -> bytes:
    """An artifact-shaped release: a manifest that always changes, three model sections of
    which ``changed`` differs in content and size (the sections after it shift)."""
    secs = [("manifest", ciphertext(3000 + counter, 100 + counter))]
    for i, (name, size) in enumerate(MODELS.items()):
        if name == changed:
            secs.append((name, ciphertext(size + 4096 * counter, 1000 + counter)))
        else:
            secs.append((name, ciphertext(size, i)))
    return artifact(secs, counter)


@pytest.fixture()
def agent(host_agent: Path, tmp_path: Path) -> Iterator[AgentClient]:
    with stdio_agent(host_agent, tmp_path / "root") as client:
        client.chunk_size = 4096
        yield client


def _install(agent: AgentClient, data: bytes, path: str = OLD_PATH) -> None:
    agent.install(agent.put_bytes(data).sha256, path)


def _cas(agent: AgentClient) -> Path:
    return Path(agent.hello().facts["root"]) / ".edgepack" / "cas"


def test_recipe_upload_yields_the_exact_new_file(agent: AgentClient) -> None:
    old, new = release(None, 1), release("graph/b", 2)
    _install(agent, old)
    assert {"hash", "recipe"} <= set(agent.hello().capabilities)
    written = agent.stats.bytes_written
    put = agent.put_bytes(new, base=OLD_PATH)
    on_wire = agent.stats.bytes_written - written
    # graph/a and graph/c are copied on the device; header, manifest, graph/b and the
    # signature travel, each rounded up to whole 4 KiB chunks.
    unchanged = len(ciphertext(MODELS["graph/a"], 0)) + len(ciphertext(MODELS["graph/c"], 2))
    assert put.copied_bytes == unchanged
    must_travel = len(new) - unchanged
    assert must_travel <= put.bytes_sent <= must_travel + 4 * 4096
    assert on_wire < 1.1 * must_travel < 0.4 * len(new)
    agent.install(put.sha256, OLD_PATH)
    root = Path(agent.hello().facts["root"])
    assert (root / OLD_PATH).read_bytes() == new
    assert not list(_cas(agent).glob("*.partial")) and not list(_cas(agent).glob("*.chunks"))


def test_hash_reports_range_digests(agent: AgentClient) -> None:
    data = random.Random(1).randbytes(200_000)
    _install(agent, data, "data/blob.bin")
    ranges = [(0, 0), (0, 1), (5, 70_000), (199_999, 1), (0, 200_000)]
    reply = agent.request(MsgType.HASH, path="data/blob.bin",
                          ranges=b"".join(delta.RANGE.pack(o, n) for o, n in ranges))
    assert reply.get_int("size") == len(data)
    assert reply.get_bytes("sha256") == b"".join(hashlib.sha256(data[o:o + n]).digest()
                                                for o, n in ranges)


@pytest.mark.parametrize(("path", "ranges", "code"), [
    ("data/blob.bin", [(99, 2)], "bad_request"),  # past the end
    ("data/blob.bin", [(2**64 - 1, 2)], "bad_request"),  # offset + length overflows
    ("data/blob.bin", [], "bad_request"),
    ("data/blob.bin", [(0, 1)] * (MAX_RANGES + 1), "bad_request"),
    ("data/none.bin", [(0, 1)], "not_found"),
    ("data", [(0, 1)], "not_found"),  # a folder
    (".edgepack/keys/device.key", [(0, 1)], "path_reserved"),
    ("../outside", [(0, 1)], "path_outside_root"),
])
def test_hash_refuses(agent: AgentClient, path: str, ranges: list[tuple[int, int]],
                      code: str) -> None:
    _install(agent, bytes(100), "data/blob.bin")
    with pytest.raises(AgentError) as info:
        agent.request(MsgType.HASH, path=path,
                      ranges=b"".join(delta.RANGE.pack(o, n) for o, n in ranges))
    assert info.value.code == code


def test_wrong_recipe_is_refused_and_nothing_is_installed(agent: AgentClient) -> None:
    old, new = release(None, 1), release("graph/b", 2)
    _install(agent, old)
    digest = hashlib.sha256(new).hexdigest()
    # Tampered: every copy takes its bytes from one byte further into the old file.
    good = agent.recipe(new, OLD_PATH)
    assert len(good) == 2
    bad = [dataclasses.replace(c, src=c.src + 1) for c in good]
    have = agent.request(MsgType.PUT_RECIPE, sha256=digest, size=len(new), chunk=4096,
                         base=OLD_PATH, copies=delta.copies_field(bad))
    bitmap = have.get_bytes("have")
    missing = [i for i in range(-(-len(new) // 4096)) if not bitmap[i // 8] >> (i % 8) & 1]
    for i in missing:
        agent.request(MsgType.PUT_CHUNK, sha256=digest, index=i, data=new[i * 4096:(i + 1) * 4096])
    with pytest.raises(AgentError) as info:
        agent.request(MsgType.PUT_END, sha256=digest)
    assert info.value.code == "hash_mismatch"
    assert not (_cas(agent) / digest).exists()
    assert not list(_cas(agent).glob(f"{digest}.*"))  # no partial upload left
    with pytest.raises(AgentError) as info:
        agent.install(digest, OLD_PATH)
    assert info.value.code == "not_found"
    root = Path(agent.hello().facts["root"])
    assert (root / OLD_PATH).read_bytes() == old  # the installed file is untouched
    # The next upload starts over and yields the file.
    put = agent.put_bytes(new, base=OLD_PATH)
    assert put.copied_bytes > 0
    agent.install(put.sha256, OLD_PATH)
    assert (root / OLD_PATH).read_bytes() == new


@pytest.mark.parametrize("copies", [
    [delta.Copy(0, 0, 0)],  # empty
    [delta.Copy(4096, 0, 10), delta.Copy(0, 0, 10)],  # out of order
    [delta.Copy(0, 0, 100), delta.Copy(50, 0, 10)],  # overlapping
    [delta.Copy(0, 2**64 - 1, 10)],  # source overflows
    [delta.Copy(0, 999_990, 100)],  # past the end of the old file
    [delta.Copy(2**63, 0, 10)],  # past the end of the new file
])
def test_bad_copies_are_refused_before_anything_is_written(agent: AgentClient,
                                                          copies: list[delta.Copy]) -> None:
    _install(agent, bytes(1_000_000), "data/old.bin")
    digest = hashlib.sha256(b"new").hexdigest()
    with pytest.raises(AgentError) as info:
        agent.request(MsgType.PUT_RECIPE, sha256=digest, size=500_000, chunk=4096,
                      base="data/old.bin", copies=delta.copies_field(copies))
    assert info.value.code == "bad_request"
    assert not list(_cas(agent).glob(f"{digest}.*"))


def test_too_many_copies_and_a_missing_base_are_refused(agent: AgentClient) -> None:
    _install(agent, bytes(100_000), "data/old.bin")
    digest = hashlib.sha256(b"new").hexdigest()
    many = [delta.Copy(i, i, 1) for i in range(MAX_COPIES + 1)]
    for base, copies, code in [("data/old.bin", many, "bad_request"),
                               ("data/none.bin", many[:1], "not_found"),
                               (".edgepack/cas", many[:1], "path_reserved")]:
        with pytest.raises(AgentError) as info:
            agent.request(MsgType.PUT_RECIPE, sha256=digest, size=100_000, chunk=4096,
                          base=base, copies=delta.copies_field(copies))
        assert info.value.code == code


def test_interrupted_recipe_upload_resumes(host_agent: Path, tmp_path: Path) -> None:
    old, new = release(None, 1), release("graph/b", 2)
    digest = hashlib.sha256(new).hexdigest()
    root = tmp_path / "root"
    with stdio_agent(host_agent, root) as agent:
        agent.chunk_size = 4096
        _install(agent, old)
        copies = agent.recipe(new, OLD_PATH)
        have = agent.request(MsgType.PUT_RECIPE, sha256=digest, size=len(new), chunk=4096,
                             base=OLD_PATH, copies=delta.copies_field(copies))
        covered = delta.covered_chunks(copies, len(new), 4096)
        bitmap = have.get_bytes("have")
        got = {i for i in range(-(-len(new) // 4096)) if bitmap[i // 8] >> (i % 8) & 1}
        assert got == covered and len(covered) > 150  # the agent marks what the host expects
        missing = sorted(set(range(-(-len(new) // 4096))) - covered)
        for i in missing[:10]:  # then the link drops
            agent.request(MsgType.PUT_CHUNK, sha256=digest, index=i,
                          data=new[i * 4096:(i + 1) * 4096])
    with stdio_agent(host_agent, root) as agent:
        agent.chunk_size = 4096
        put = agent.put_bytes(new, base=OLD_PATH)
        assert put.chunks_sent == len(missing) - 10
        agent.install(put.sha256, OLD_PATH)
    assert (root / OLD_PATH).read_bytes() == new


def test_wrong_result_of_a_recipe_upload_is_uploaded_again_plainly(agent: AgentClient) -> None:
    old, new = release(None, 1), release("graph/a", 2)
    _install(agent, old)
    digest = hashlib.sha256(new).hexdigest()
    # An interrupted upload left a chunk with wrong bytes (a disk that lost a write).
    agent.request(MsgType.PUT_BEGIN, sha256=digest, size=len(new), chunk=4096)
    agent.request(MsgType.PUT_CHUNK, sha256=digest, index=0, data=bytes(4096))
    put = agent.put_bytes(new, base=OLD_PATH)  # the recipe resumes it: PUT_END refuses
    assert put.copied_bytes == 0 and put.bytes_sent == len(new)  # then a plain upload
    agent.install(put.sha256, OLD_PATH)
    assert (Path(agent.hello().facts["root"]) / OLD_PATH).read_bytes() == new


def test_plain_upload_when_no_recipe_is_possible(agent: AgentClient) -> None:
    new = release("graph/b", 2)
    # No old file at the base path: a plain upload.
    put = agent.put_bytes(new, base=OLD_PATH)
    assert put.copied_bytes == 0 and put.bytes_sent == len(new)
    # The old file is no artifact: a plain upload.
    _install(agent, random.Random(3).randbytes(50_000), "run/other.bin")
    put = agent.put_bytes(release("graph/a", 3), base="run/other.bin")
    assert put.copied_bytes == 0
    # An agent without the capability (an older one): a plain upload, no HASH sent.
    _install(agent, release(None, 1))
    assert agent.hello_info is not None
    agent.hello_info = dataclasses.replace(agent.hello_info, capabilities=("put", "install"))
    put = agent.put_bytes(release("graph/c", 4), base=OLD_PATH)
    assert put.copied_bytes == 0 and put.bytes_sent == put.size


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SerialConsole]:
    c = start_serial_console("aarch64", tmp_path_factory.mktemp("serial-redeploy"))
    yield c
    stop_serial_console(c)


def test_redeploy_over_a_serial_console(console: SerialConsole, aarch64_agent: Path) -> None:
    # The agent is put in place beside the test (the console bootstrap has tests of its own):
    # what crosses the console here are the frames.
    placed = Path(agent_path(console.device_root))
    placed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(aarch64_agent, placed)
    t = connect(parse_target(f"serial://{console.tty}?baud=115200"), TransportOptions())
    assert isinstance(t, SerialTransport)
    try:
        client, uploaded = start_agent(t, console.device_root, aarch64_agent, retransmit=True)
        assert not uploaded
        client.compress = True
        old, new = release(None, 1), release("graph/c", 2)
        client.install(client.put_bytes(old).sha256, OLD_PATH)
        written = client.stats.bytes_written
        put = client.put_bytes(new, base=OLD_PATH)
        assert put.copied_bytes == len(ciphertext(MODELS["graph/a"], 0)) + \
            len(ciphertext(MODELS["graph/b"], 1))
        assert client.stats.bytes_written - written < 0.7 * len(new)
        client.install(put.sha256, OLD_PATH)
        client.bye()
        client.stream.close()
    finally:
        t.close()
    assert (Path(console.device_root) / OLD_PATH).read_bytes() == new


def test_redeploy_of_the_example_with_one_model_changed(host_agent: Path,
                                                        tmp_path: Path) -> None:
    project = example_project(tmp_path / "vision-demo")
    old = pack_project(project, project / "demo.epk").read_bytes()
    next_release(project)  # the classifier's weights changed, a higher counter
    new = pack_project(project, project / "demo-next.epk").read_bytes()
    classifier = container.parse_header(new).section("graph/classifier")
    root = tmp_path / "root"
    with stdio_agent(host_agent, root) as agent:
        agent.chunk_size = 4096  # the serial chunk size: what a console would carry
        agent.compress = True
        _install(agent, old, "bench/artifact.epk")
        written = agent.stats.bytes_written
        put = agent.put_bytes(new, base="bench/artifact.epk")
        on_wire = agent.stats.bytes_written - written
        agent.install(put.sha256, "bench/artifact.epk")
    assert (root / "bench/artifact.epk").read_bytes() == new
    # The changed model's section travels; everything else but the header, the manifest, the
    # golden outputs and the signature is copied on the device.
    assert on_wire >= classifier.ciphertext_size
    assert on_wire < 0.1 * len(new), (on_wire, len(new))
    assert put.copied_bytes > 0.9 * len(new)
