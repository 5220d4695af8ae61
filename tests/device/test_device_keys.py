# SPDX-License-Identifier: Apache-2.0
"""Device keys stay on the device: KEYGEN and RUN's stdin pipe in the agent, a private content
store, and ``edgepack device provision`` + a bench with the on-device key (docs/keys.md)."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path

import pytest
from bench_checks import ITERATIONS, assert_no_host_key_on_device, check_bench_report
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from edgepack.bench.report import load_report
from edgepack.cli import main as cli_main
from edgepack.device.client import MAX_STDIN, AgentClient, AgentError
from edgepack.device.targets import Target
from edgepack.errors import DeviceError, ExitCode


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def test_keygen_creates_the_key_on_the_device(agent: AgentClient, target: Target) -> None:
    root = Path(str(target.root))
    key = agent.keygen("unit-test", replace=True)
    path = root / key.path
    assert key.created and key.path == ".edgepack/keys/unit-test.key"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert _mode(root / ".edgepack") == 0o700
    # The file is PKCS#8 PEM that OpenSSL (and cryptography) reads, and it is the private half
    # of the public key that came back.
    private = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(private, X25519PrivateKey)
    assert private.public_key().public_bytes_raw() == key.public
    # Again: the device keeps its key; --replace makes a new one.
    again = agent.keygen("unit-test")
    assert not again.created and again.public == key.public
    assert agent.keygen("unit-test", create=False).public == key.public
    new = agent.keygen("unit-test", replace=True)
    assert new.created and new.public != key.public
    with pytest.raises(AgentError) as exc:
        agent.keygen("absent-key", create=False)
    assert exc.value.code == "not_found"
    with pytest.raises(AgentError) as exc:
        agent.keygen("../escape")
    assert exc.value.code == "bad_request"
    # The private key cannot be read back, installed over or run through the agent.
    with pytest.raises(AgentError) as exc:
        agent.get(key.path)
    assert exc.value.code == "path_reserved"


def test_run_hands_stdin_through_a_pipe(agent: AgentClient, target: Target) -> None:
    put = agent.put_bytes(b"#!/bin/sh\nexec cat\n")
    agent.install(put.sha256, "bin/cat-stdin", 0o755)
    secret = b"-----BEGIN PRIVATE KEY-----\nnot really\n" + bytes(range(256)) * 8
    res = agent.run(["bin/cat-stdin"], stdin=secret)
    assert res.ok and res.stdout == secret
    assert agent.run(["bin/cat-stdin"]).stdout == b""  # no stdin: /dev/null
    with pytest.raises(DeviceError, match="limited"):
        agent.run(["bin/cat-stdin"], stdin=b"x" * (MAX_STDIN + 1))
    # Nothing of it was written under the root.
    for p in Path(str(target.root)).rglob("*"):
        if p.is_file():
            assert secret not in p.read_bytes(), p


def test_content_store_is_private(agent: AgentClient, target: Target) -> None:
    data = hashlib.sha256(b"cas-mode").digest() * 1000
    put = agent.put_bytes(data)
    cas = Path(str(target.root)) / ".edgepack" / "cas"
    assert _mode(cas) == 0o700 and _mode(cas.parent) == 0o700
    assert _mode(cas / put.sha256) == 0o600
    # A store an older agent left wide open is narrowed on the next upload.
    (cas / put.sha256).chmod(0o644)
    cas.chmod(0o755)
    agent.put_bytes(data)
    assert _mode(cas) == 0o700 and _mode(cas / put.sha256) == 0o600


def test_provision_then_bench_with_the_on_device_key(
        example: Path, vboard: dict[str, object], hi3559a_sdk: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(str(vboard["root"]))
    project = tmp_path / "project"
    shutil.copytree(example, project, ignore=shutil.ignore_patterns("*.epk"))
    out = project / "keys" / "board1.pub"
    argv = ["device", "provision", "virtual:hi3559a", "--out", str(out), "--sdk",
            str(hi3559a_sdk), "--json"]
    capsys.readouterr()
    assert cli_main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    device_key = root / ".edgepack" / "keys" / "device.key"
    assert info["device_path"] == str(device_key)
    assert _mode(device_key) == 0o600
    public = serialization.load_pem_public_key(out.read_bytes())
    assert isinstance(public, X25519PublicKey)
    device_private = serialization.load_pem_private_key(device_key.read_bytes(), None)
    assert isinstance(device_private, X25519PrivateKey)
    assert device_private.public_key().public_bytes_raw() == public.public_bytes_raw()
    # Provisioning again keeps the device's key: the same public key comes back.
    first = out.read_bytes()
    assert cli_main(argv) == 0
    assert not json.loads(capsys.readouterr().out)["created"] and out.read_bytes() == first

    # Pack to the provisioned key and to dev2 (a lab key the host holds for the reference).
    toml = project / "edgepack.toml"
    toml.write_text(toml.read_text().replace('"keys/dev1.pub"', '"keys/board1.pub"'))
    assert cli_main(["pack", str(project), "--out", str(project / "board1.epk")]) == 0

    def bench(artifact: Path, report: Path, name: str = "device") -> int:
        return cli_main([
            "bench", str(artifact), "--board", "hi3559a", "--target", "virtual:hi3559a",
            "--key", str(project / "keys" / "dev2.key"), "--device-key", name,
            "--publisher", str(project / "keys" / "publisher.pub"),
            "--iterations", str(ITERATIONS), "--warmup", "1", "--sdk", str(hi3559a_sdk),
            "--json", str(report)])

    assert bench(project / "board1.epk", tmp_path / "r.json") == 0
    check_bench_report(load_report(tmp_path / "r.json"))
    assert_no_host_key_on_device(root, project / "keys" / "dev2.key")
    # The runner really used the device's key: an artifact not sealed to it does not open.
    capsys.readouterr()
    assert bench(example / "demo.epk", tmp_path / "other.json") == ExitCode.DEVICE
    err = capsys.readouterr().err
    assert "golden-input run failed" in err and "artifact invalid" in err.lower(), err
    # A device never provisioned under that name: told so, with the command that fixes it.
    assert bench(project / "board1.epk", tmp_path / "none.json", "spare") == ExitCode.DEVICE
    err = capsys.readouterr().err
    assert "no provisioned key 'spare'" in err and "edgepack device provision" in err, err
