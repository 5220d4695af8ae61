# SPDX-License-Identifier: Apache-2.0
# cryptography's key classes are abstract; passing them as isinstance targets is intended.
# mypy: disable-error-code="type-abstract"
"""Key files: the publisher's Ed25519 signing key and X25519 device (recipient) keys.

Private keys are PEM PKCS#8 files with mode 0600; the public key lies beside them as
``<stem>.pub`` (PEM SubjectPublicKeyInfo). Both are written atomically (temp file in the same
folder, then ``os.replace``). Loading checks the kind: a mistake names the file and says what
was expected and what was found, so an Ed25519 key given as a recipient never gets further
than here.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from edgepack.errors import KeyFileError
from edgepack.fsutil import write_atomic

KeyKind = Literal["publisher", "device"]
PublicKey = Ed25519PublicKey | X25519PublicKey


# --- writing -----------------------------------------------------------------------------

def public_path_for(private_path: Path) -> Path:
    """Where the public half of a private key file lives: ``<stem>.pub`` beside it."""
    return private_path.with_suffix(".pub")


def generate_publisher_key(out: Path, force: bool = False) -> Path:
    """Write a new Ed25519 private key to ``out`` and its public key beside it; return the .pub."""
    return _generate(Path(out), Ed25519PrivateKey.generate(), force)


def generate_device_key(out: Path, force: bool = False) -> Path:
    """Write a new X25519 private key to ``out`` and its public key beside it; return the .pub."""
    return _generate(Path(out), X25519PrivateKey.generate(), force)


def _generate(out: Path, key: Ed25519PrivateKey | X25519PrivateKey, force: bool) -> Path:
    pub = public_path_for(out)
    if out.suffix == ".pub":
        raise KeyFileError(f"{out}: a private key file must not end in .pub "
                           "(its public key is written beside it as <stem>.pub)")
    if not force:
        for p in (out, pub):
            if p.exists():
                raise KeyFileError(f"{p}: already exists; refusing to overwrite a key",
                                   hint="pass --force to replace it")
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, private_pem, 0o600)
    write_atomic(pub, public_pem, 0o644)
    return pub


# --- reading -----------------------------------------------------------------------------

def _read_pem(path: Path, expected: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found (expected {expected})") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise KeyFileError(f"{path}: not a PEM file (expected {expected})")
    return data


def _describe(key: object) -> str:
    names = {
        Ed25519PrivateKey: "an Ed25519 (publisher) private key",
        Ed25519PublicKey: "an Ed25519 (publisher) public key",
        X25519PrivateKey: "an X25519 (device) private key",
        X25519PublicKey: "an X25519 (device) public key",
    }
    for cls, name in names.items():
        if isinstance(key, cls):
            return name
    half = "private" if hasattr(key, "private_bytes") else "public"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"an RSA {half} key"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"an EC ({key.curve.name}) {half} key"
    return f"a {type(key).__name__.removeprefix('_')} key"


def _load_any(path: Path, expected: str) -> object:
    """Parse a PEM private or public key of any algorithm; KeyFileError when it is neither."""
    data = _read_pem(path, expected)
    if b"PRIVATE KEY-----" in data:
        if b"ENCRYPTED PRIVATE KEY" in data:
            raise KeyFileError(f"{path}: the private key is encrypted; edgepack needs an "
                               f"unencrypted PKCS#8 key (expected {expected})")
        try:
            return serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFileError(f"{path}: not a readable private key ({exc}); "
                               f"expected {expected}") from None
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{path}: not a readable public key ({exc}); "
                           f"expected {expected}") from None


_Private = TypeVar("_Private", Ed25519PrivateKey, X25519PrivateKey)
_Public = TypeVar("_Public", Ed25519PublicKey, X25519PublicKey)


def _load_private(path: Path, kind: type[_Private], expected: str) -> _Private:
    key = _load_any(Path(path), expected)
    if not isinstance(key, kind):
        raise KeyFileError(f"{path}: expected {expected}, found {_describe(key)}")
    return key


def _load_public(path: Path, private_kind: type[_Private], kind: type[_Public],
                 expected: str) -> _Public:
    """A .pub file, or a private key file from which the public key is derived."""
    key = _load_any(Path(path), expected)
    if isinstance(key, private_kind):
        key = key.public_key()
    if not isinstance(key, kind):
        raise KeyFileError(f"{path}: expected {expected}, found {_describe(key)}")
    return key


def load_publisher_private(path: Path) -> Ed25519PrivateKey:
    return _load_private(path, Ed25519PrivateKey, "an Ed25519 publisher private key")


def load_publisher_public(path: Path) -> Ed25519PublicKey:
    """A .pub file, or a private key file from which the public key is derived."""
    return _load_public(path, Ed25519PrivateKey, Ed25519PublicKey, "an Ed25519 publisher key")


def load_device_private(path: Path) -> X25519PrivateKey:
    return _load_private(path, X25519PrivateKey, "an X25519 device private key")


def load_device_public(path: Path) -> X25519PublicKey:
    """A .pub file, or a private key file from which the public key is derived."""
    return _load_public(path, X25519PrivateKey, X25519PublicKey, "an X25519 device key")


# --- identity ----------------------------------------------------------------------------

def raw_public_bytes(key: PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 or X25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: PublicKey) -> bytes:
    """SHA-256 of the raw public key: how artifacts name signers and recipients."""
    return hashlib.sha256(raw_public_bytes(public_key)).digest()


def fingerprint(public_key: PublicKey) -> str:
    """``SHA256:<base64 without padding>`` of the key id, the way OpenSSH prints fingerprints."""
    return "SHA256:" + base64.b64encode(key_id(public_key)).decode("ascii").rstrip("=")


def describe_key_file(path: Path) -> dict[str, Any]:
    """What a key file holds: kind (publisher|device), form (private|public), fingerprint."""
    expected = "an Ed25519 publisher key or an X25519 device key"
    key = _load_any(Path(path), expected)
    public: PublicKey
    if isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        public, form = key.public_key(), "private"
    elif isinstance(key, Ed25519PublicKey | X25519PublicKey):
        public, form = key, "public"
    else:
        raise KeyFileError(f"{path}: expected {expected}, found {_describe(key)}")
    kind: KeyKind = "publisher" if isinstance(public, Ed25519PublicKey) else "device"
    return {
        "path": str(path),
        "kind": kind,
        "form": form,
        "algorithm": "Ed25519" if kind == "publisher" else "X25519",
        "fingerprint": fingerprint(public),
        "key_id": key_id(public).hex(),
    }
