# SPDX-License-Identifier: Apache-2.0
"""Reading and writing ``.epk`` artifacts, byte for byte as docs/artifact-format.md says.

``write_artifact`` seals named sections (the manifest first) for a set of recipients and signs
the result. ``parse_header`` checks the layout without any key (``edgepack inspect``).
``verify_artifact`` checks the signature (``edgepack verify``). ``open_artifact`` runs the whole
verification chain a device runs, in the same order, and returns the plaintext sections.
"""

from __future__ import annotations

import hashlib
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from edgepack.artifact import crypto
from edgepack.errors import ArtifactInvalid, UsageError
from edgepack.fsutil import write_atomic

MAGIC = b"\x89EPK\r\n\x1a\n"
FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 64 * 1024
MANIFEST_SECTION = "manifest"

MAX_HEADER_LEN = 1 << 20
MAX_NAME_LEN = 255
MAX_RECIPIENTS = 1024
MAX_SECTIONS = 4096
MAX_SECTION_SIZE = 2 << 30
MIN_CHUNK_SIZE = 1 << 10
MAX_CHUNK_SIZE = 16 << 20
STANZA_SIZE = 32 + crypto.ENC_SIZE + crypto.SEALED_KEY_SIZE


@dataclass(frozen=True)
class RecipientStanza:
    key_id: bytes
    enc: bytes
    sealed_content_key: bytes


@dataclass(frozen=True)
class SectionEntry:
    index: int
    name: str
    plaintext_size: int
    offset: int
    ciphertext_size: int


@dataclass(frozen=True)
class Header:
    format_version: int
    header_len: int
    package_name: str
    package_version: str
    version_counter: int
    publisher_key: bytes
    chunk_size: int
    recipients: tuple[RecipientStanza, ...]
    sections: tuple[SectionEntry, ...]
    file_len: int

    def section(self, name: str) -> SectionEntry:
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True)
class OpenedArtifact:
    header: Header
    sections: dict[str, bytes]  # name -> plaintext, in table order

    @property
    def manifest_bytes(self) -> bytes:
        return self.sections[MANIFEST_SECTION]


def _str16(s: str, what: str) -> bytes:
    raw = s.encode("utf-8")
    if not 1 <= len(raw) <= MAX_NAME_LEN:
        raise UsageError(f"{what} must be 1..{MAX_NAME_LEN} bytes of UTF-8, got {len(raw)}")
    return struct.pack("<H", len(raw)) + raw


def _header_bytes(
    *,
    package_name: str,
    package_version: str,
    version_counter: int,
    publisher: bytes,
    chunk_size: int,
    stanzas: list[RecipientStanza],
    sections: list[tuple[str, int, int]],  # name, plaintext_size, ciphertext_size
) -> bytes:
    """Serialises the header; offsets follow from its own length, so it is built twice."""

    def build(header_len: int) -> bytes:
        out = bytearray(MAGIC)
        out += struct.pack("<HHI", FORMAT_VERSION, 0, header_len)
        out += _str16(package_name, "package name")
        out += _str16(package_version, "package version")
        out += struct.pack("<Q", version_counter)
        out += publisher
        out += struct.pack("<IH", chunk_size, len(stanzas))
        for st in stanzas:
            out += st.key_id + st.enc + st.sealed_content_key
        out += struct.pack("<H", len(sections))
        offset = header_len
        for name, pt_size, ct_size in sections:
            out += _str16(name, "section name")
            out += struct.pack("<QQQ", pt_size, offset, ct_size)
            offset += ct_size
        return bytes(out)

    provisional = build(0)
    return build(len(provisional))


def write_artifact(
    out_path: Path,
    *,
    package_name: str,
    package_version: str,
    version_counter: int,
    publisher: Ed25519PrivateKey,
    recipients: list[X25519PublicKey],
    sections: list[tuple[str, bytes]],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Header:
    """Seals and signs ``sections`` (``manifest`` first) into ``out_path`` atomically."""
    if not sections or sections[0][0] != MANIFEST_SECTION:
        raise ValueError("the first section must be the manifest")
    names = [n for n, _ in sections]
    if len(set(names)) != len(names):
        raise ValueError("section names must be unique")
    if not recipients:
        raise UsageError("an artifact needs at least one recipient key")
    if not 0 <= version_counter < 1 << 64:
        raise UsageError("version_counter must fit in 64 bits")
    if len(recipients) > MAX_RECIPIENTS or len(sections) > MAX_SECTIONS:
        raise UsageError("too many recipients or sections")

    content_key = crypto.new_content_key()
    stanzas = []
    for r in recipients:
        enc, sealed = crypto.seal_content_key(content_key, r)
        stanzas.append(RecipientStanza(crypto.key_id(r), enc, sealed))
    layout = [
        (name, len(data), len(data) + crypto.TAG_SIZE * crypto.chunk_count(len(data), chunk_size))
        for name, data in sections
    ]
    header = _header_bytes(
        package_name=package_name,
        package_version=package_version,
        version_counter=version_counter,
        publisher=crypto.raw_public(publisher.public_key()),
        chunk_size=chunk_size,
        stanzas=stanzas,
        sections=layout,
    )
    if len(header) > MAX_HEADER_LEN:
        raise UsageError("artifact header exceeds 1 MiB (too many recipients or sections)")
    aad = hashlib.sha256(header).digest()
    body = bytearray(header)
    for i, (name, data) in enumerate(sections):
        key = crypto.section_key(content_key, i, name)
        body += crypto.seal_section(key, aad, data, chunk_size)
    body += crypto.sign(publisher, bytes(body))
    write_atomic(out_path, bytes(body))
    return parse_header(bytes(body))


class _Reader:
    """Bounds-checked cursor; any overrun is a layout failure."""

    def __init__(self, data: bytes, end: int) -> None:
        self.data = data
        self.pos = 0
        self.end = end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ArtifactInvalid("layout")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def str16(self) -> str:
        (n,) = self.unpack("<H")
        if not 1 <= n <= MAX_NAME_LEN:
            raise ArtifactInvalid("layout")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArtifactInvalid("layout") from exc


def parse_header(data: bytes) -> Header:
    """Step 1 of verification: the layout. Needs no key; authenticates nothing."""
    file_len = len(data)
    if file_len < len(MAGIC) + 8 + crypto.SIGNATURE_SIZE or data[:8] != MAGIC:
        raise ArtifactInvalid("layout")
    version, flags, header_len = struct.unpack_from("<HHI", data, 8)
    if version != FORMAT_VERSION or flags != 0:
        raise ArtifactInvalid("layout")
    if not 16 <= header_len <= min(MAX_HEADER_LEN, file_len - crypto.SIGNATURE_SIZE):
        raise ArtifactInvalid("layout")
    r = _Reader(data, header_len)
    r.take(16)
    package_name = r.str16()
    package_version = r.str16()
    (version_counter,) = r.unpack("<Q")
    publisher = r.take(32)
    chunk_size, n_recipients = r.unpack("<IH")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ArtifactInvalid("layout")
    if not 1 <= n_recipients <= MAX_RECIPIENTS:
        raise ArtifactInvalid("layout")
    stanzas = tuple(
        RecipientStanza(r.take(32), r.take(crypto.ENC_SIZE), r.take(crypto.SEALED_KEY_SIZE))
        for _ in range(n_recipients)
    )
    (n_sections,) = r.unpack("<H")
    if not 1 <= n_sections <= MAX_SECTIONS:
        raise ArtifactInvalid("layout")
    sections = []
    expected_offset = header_len
    seen: set[str] = set()
    for i in range(n_sections):
        name = r.str16()
        pt_size, offset, ct_size = r.unpack("<QQQ")
        if (
            name in seen
            or pt_size > MAX_SECTION_SIZE
            or offset != expected_offset
            or ct_size != pt_size + crypto.TAG_SIZE * crypto.chunk_count(pt_size, chunk_size)
        ):
            raise ArtifactInvalid("layout")
        seen.add(name)
        sections.append(SectionEntry(i, name, pt_size, offset, ct_size))
        expected_offset += ct_size
    if r.pos != header_len or expected_offset != file_len - crypto.SIGNATURE_SIZE:
        raise ArtifactInvalid("layout")
    if sections[0].name != MANIFEST_SECTION:
        raise ArtifactInvalid("layout")
    return Header(
        format_version=version,
        header_len=header_len,
        package_name=package_name,
        package_version=package_version,
        version_counter=version_counter,
        publisher_key=publisher,
        chunk_size=chunk_size,
        recipients=stanzas,
        sections=tuple(sections),
        file_len=file_len,
    )


def verify_artifact(data: bytes, publisher: Ed25519PublicKey) -> Header:
    """Steps 1-2: layout, then the signature by ``publisher`` (and its key in the header)."""
    header = parse_header(data)
    body_end = header.file_len - crypto.SIGNATURE_SIZE
    crypto.verify_signature(publisher, data[body_end:], data[:body_end])
    if header.publisher_key != crypto.raw_public(publisher):
        raise ArtifactInvalid("publisher")
    return header


def open_artifact(
    data: bytes,
    device_key: X25519PrivateKey,
    publisher: Ed25519PublicKey,
    min_counter: int = 0,
    names: set[str] | None = None,
) -> OpenedArtifact:
    """The device's whole chain: layout, signature, counter, unseal, decrypt; ``names``
    limits which sections are decrypted (the manifest always is)."""
    header = verify_artifact(data, publisher)
    if header.version_counter < min_counter:
        raise ArtifactInvalid("counter")
    own_id = crypto.key_id(device_key.public_key())
    stanza = next((s for s in header.recipients if s.key_id == own_id), None)
    if stanza is None:
        raise ArtifactInvalid("not_recipient")
    content_key = crypto.open_content_key(stanza.enc, stanza.sealed_content_key, device_key)
    aad = hashlib.sha256(data[: header.header_len]).digest()
    sections: dict[str, bytes] = {}
    for entry in header.sections:
        if names is not None and entry.name != MANIFEST_SECTION and entry.name not in names:
            continue
        key = crypto.section_key(content_key, entry.index, entry.name)
        ciphertext = data[entry.offset : entry.offset + entry.ciphertext_size]
        sections[entry.name] = crypto.open_section(
            key, aad, ciphertext, header.chunk_size, entry.plaintext_size
        )
    return OpenedArtifact(header=header, sections=sections)


def read_file(path: Path) -> bytes:
    """The artifact's bytes; only a regular file is read (a FIFO or ``/dev/zero`` never ends)."""
    try:
        if not stat.S_ISREG(Path(path).stat().st_mode):
            raise UsageError(f"{path}: not a regular file; an artifact is a .epk file")
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such artifact file") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot read artifact: {exc.strerror}") from exc
