# SPDX-License-Identifier: Apache-2.0
"""Key files: generation, permissions, kind checks, identity, refusal to overwrite."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from edgepack.artifact import keys
from edgepack.errors import KeyFileError


def test_publisher_key_pair(tmp_path: Path) -> None:
    out = tmp_path / "keys" / "publisher.key"
    pub = keys.generate_publisher_key(out)
    assert pub == tmp_path / "keys" / "publisher.pub"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    private = keys.load_publisher_private(out)
    public = keys.load_publisher_public(pub)
    assert isinstance(private, Ed25519PrivateKey) and isinstance(public, Ed25519PublicKey)
    # The .pub file is the public half of the private key: a signature verifies with it.
    public.verify(private.sign(b"manifest"), b"manifest")
    assert keys.raw_public_bytes(keys.load_publisher_public(out)) == keys.raw_public_bytes(public)
    # No temp files left behind by the atomic writes.
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["publisher.key",
                                                                     "publisher.pub"]


def test_device_key_pair(tmp_path: Path) -> None:
    pub = keys.generate_device_key(tmp_path / "dev1")
    assert pub == tmp_path / "dev1.pub"
    private = keys.load_device_private(tmp_path / "dev1")
    public = keys.load_device_public(pub)
    assert isinstance(private, X25519PrivateKey) and isinstance(public, X25519PublicKey)
    # Key agreement between the pair and a fresh peer proves the halves belong together.
    peer = X25519PrivateKey.generate()
    assert private.exchange(peer.public_key()) == peer.exchange(public)
    assert keys.raw_public_bytes(keys.load_device_public(tmp_path / "dev1")) == \
        keys.raw_public_bytes(public)


def test_identity(tmp_path: Path) -> None:
    pub = keys.load_device_public(keys.generate_device_key(tmp_path / "d.key"))
    raw = keys.raw_public_bytes(pub)
    assert len(raw) == 32
    assert keys.key_id(pub) == hashlib.sha256(raw).digest()
    fp = keys.fingerprint(pub)
    assert fp.startswith("SHA256:") and not fp.endswith("=")
    assert base64.b64decode(fp[7:] + "=") == keys.key_id(pub)


def test_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "publisher.key"
    keys.generate_publisher_key(out)
    before = out.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        keys.generate_publisher_key(out)
    with pytest.raises(KeyFileError, match="already exists"):
        keys.generate_device_key(out)
    assert out.read_bytes() == before
    (tmp_path / "other.pub").write_text("a public key someone keeps here")
    with pytest.raises(KeyFileError, match=r"other\.pub: already exists"):
        keys.generate_device_key(tmp_path / "other.key")
    assert not (tmp_path / "other.key").exists()
    keys.generate_publisher_key(out, force=True)
    assert out.read_bytes() != before
    with pytest.raises(KeyFileError, match=r"must not end in \.pub"):
        keys.generate_device_key(tmp_path / "x.pub")


def test_describe_key_file(tmp_path: Path) -> None:
    pub = keys.generate_publisher_key(tmp_path / "p.key")
    dpub = keys.generate_device_key(tmp_path / "d.key")
    private = keys.describe_key_file(tmp_path / "p.key")
    public = keys.describe_key_file(pub)
    assert (private["kind"], private["form"]) == ("publisher", "private")
    assert (public["kind"], public["form"]) == ("publisher", "public")
    assert private["fingerprint"] == public["fingerprint"]
    device = keys.describe_key_file(dpub)
    assert (device["kind"], device["form"], device["algorithm"]) == ("device", "public", "X25519")
    assert device["fingerprint"] == keys.fingerprint(keys.load_device_public(dpub))


def _write_pem(path: Path, key: object) -> Path:
    if hasattr(key, "private_bytes"):
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    else:
        data = key.public_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                serialization.PublicFormat.SubjectPublicKeyInfo)
    path.write_bytes(data)
    return path


def test_wrong_kinds_name_file_expected_and_found(tmp_path: Path) -> None:
    ppub = keys.generate_publisher_key(tmp_path / "p.key")
    dpub = keys.generate_device_key(tmp_path / "d.key")
    cases = [
        (keys.load_device_public, ppub, "an X25519 device key",
         "an Ed25519 (publisher) public key"),
        (keys.load_device_private, dpub, "an X25519 device private key",
         "an X25519 (device) public key"),
        (keys.load_publisher_private, tmp_path / "d.key", "an Ed25519 publisher private key",
         "an X25519 (device) private key"),
        (keys.load_publisher_public, dpub, "an Ed25519 publisher key",
         "an X25519 (device) public key"),
    ]
    for loader, path, expected, found in cases:
        with pytest.raises(KeyFileError) as info:
            loader(path)
        assert str(info.value) == f"{path}: expected {expected}, found {found}"


def test_foreign_and_broken_files(tmp_path: Path) -> None:
    rsa_key = _write_pem(tmp_path / "rsa.pem",
                         rsa.generate_private_key(public_exponent=65537, key_size=1024))
    ec_pub = _write_pem(tmp_path / "ec.pub", ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(KeyFileError, match=r"rsa\.pem: expected an X25519 device key, found an RSA "
                       r"private key"):
        keys.load_device_public(rsa_key)
    with pytest.raises(KeyFileError, match=r"ec\.pub: expected an Ed25519 publisher key, "
                       r"found an EC \(secp256r1\) public key"):
        keys.load_publisher_public(ec_pub)
    with pytest.raises(KeyFileError, match=r"rsa\.pem: expected an Ed25519 publisher key or"):
        keys.describe_key_file(rsa_key)
    with pytest.raises(KeyFileError, match=r"missing\.pub: key file not found"):
        keys.load_device_public(tmp_path / "missing.pub")
    (tmp_path / "junk.pub").write_text("ssh-ed25519 AAAA... user@host\n")
    with pytest.raises(KeyFileError, match=r"junk\.pub: not a PEM file"):
        keys.load_device_public(tmp_path / "junk.pub")
    (tmp_path / "bad.pub").write_text(
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyFileError, match=r"bad\.pub: not a readable public key"):
        keys.load_device_public(tmp_path / "bad.pub")
    enc = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"))
    (tmp_path / "enc.key").write_bytes(enc)
    with pytest.raises(KeyFileError, match=r"enc\.key: the private key is encrypted"):
        keys.load_publisher_private(tmp_path / "enc.key")
    (tmp_path / "dir.key").mkdir()
    with pytest.raises(KeyFileError, match=r"dir\.key: cannot read key file"):
        keys.load_publisher_private(tmp_path / "dir.key")
