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
# Header flags (docs/artifact-format.md; the C++ reader's copy is generated from these:
# edgepack.artifact.format_header). Bit 0: stable sections (section keys that depend on the
# content, not the release, wrapped in the section table). Bit 1: block-hash signature (the
# signature is over the SHA-256 of every 1 MiB block, so a reader hashes them in parallel).
# Readers refuse other bits.
FLAG_STABLE_SECTIONS = 0x0001
FLAG_BLOCK_SIGNATURE = 0x0002
KNOWN_FLAGS = FLAG_STABLE_SECTIONS | FLAG_BLOCK_SIGNATURE

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
    wrapped_key: bytes = b""  # stable sections only: the section key under the wrap key


@dataclass(frozen=True)
class Header:
    format_version: int
    flags: int
    header_len: int
    table_offset: int  # where the first section entry starts: the wrapped keys' AAD covers
    # the header before it
    package_name: str
    package_version: str
    version_counter: int
    publisher_key: bytes
    chunk_size: int
    recipients: tuple[RecipientStanza, ...]
    sections: tuple[SectionEntry, ...]
    file_len: int

    @property
    def stable_sections(self) -> bool:
        return bool(self.flags & FLAG_STABLE_SECTIONS)

    @property
    def block_signature(self) -> bool:
        return bool(self.flags & FLAG_BLOCK_SIGNATURE)

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


@dataclass(frozen=True)
class _HeaderFields:
    package_name: str
    package_version: str
    version_counter: int
    publisher: bytes
    chunk_size: int
    flags: int
    stanzas: list[RecipientStanza]
    sections: list[tuple[str, int, int]]  # name, plaintext_size, ciphertext_size

    def prefix(self, header_len: int) -> bytes:
        """The header up to the first section entry (section_count included)."""
        out = bytearray(MAGIC)
        out += struct.pack("<HHI", FORMAT_VERSION, self.flags, header_len)
        out += _str16(self.package_name, "package name")
        out += _str16(self.package_version, "package version")
        out += struct.pack("<Q", self.version_counter)
        out += self.publisher
        out += struct.pack("<IH", self.chunk_size, len(self.stanzas))
        for st in self.stanzas:
            out += st.key_id + st.enc + st.sealed_content_key
        out += struct.pack("<H", len(self.sections))
        return bytes(out)

    def table(self, header_len: int, wrapped: list[bytes]) -> bytes:
        out = bytearray()
        offset = header_len
        for (name, pt_size, ct_size), wrapped_key in zip(self.sections, wrapped, strict=True):
            out += _str16(name, "section name")
            out += struct.pack("<QQQ", pt_size, offset, ct_size)
            out += wrapped_key
            offset += ct_size
        return bytes(out)

    def header_len(self) -> int:
        """Offsets follow from the header's own length: measured on a provisional build."""
        wrapped = crypto.WRAPPED_KEY_SIZE if self.flags & FLAG_STABLE_SECTIONS else 0
        return len(self.prefix(0)) + len(self.table(0, [b"\0" * wrapped] * len(self.sections)))


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
    stable_sections: bool = True,
    block_signature: bool = True,
) -> Header:
    """Seals and signs ``sections`` (``manifest`` first) into ``out_path`` atomically.

    With ``stable_sections`` (the default) a section's ciphertext depends only on the
    publisher, the package name, the section's name, the chunk size and its plaintext, so
    that a section unchanged between two releases has the same bytes in both (delta
    transfers); without it every section gets a key derived from this release's content key.
    With ``block_signature`` (the default) the signature is over the SHA-256 of every block of
    the file (a reader checks it on all its cores); without it over the file's bytes."""
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
    fields = _HeaderFields(
        package_name=package_name,
        package_version=package_version,
        version_counter=version_counter,
        publisher=crypto.raw_public(publisher.public_key()),
        chunk_size=chunk_size,
        flags=(FLAG_STABLE_SECTIONS if stable_sections else 0)
        | (FLAG_BLOCK_SIGNATURE if block_signature else 0),
        stanzas=stanzas,
        sections=layout,
    )
    header_len = fields.header_len()
    if header_len > MAX_HEADER_LEN:
        raise UsageError("artifact header exceeds 1 MiB (too many recipients or sections)")
    prefix = fields.prefix(header_len)
    if stable_sections:
        secret = crypto.stable_secret(publisher)
        key_wrap = crypto.wrap_key(content_key)
        prefix_digest = hashlib.sha256(prefix).digest()
        keys = [crypto.stable_section_key(secret, package_name, name, chunk_size, data)
                for name, data in sections]
        wrapped = [crypto.wrap_section_key(key_wrap, i, crypto.wrap_aad(prefix_digest, name), k)
                   for i, ((name, _), k) in enumerate(zip(sections, keys, strict=True))]
        header = prefix + fields.table(header_len, wrapped)
        aads = [crypto.stable_chunk_aad(package_name, name) for name, _ in sections]
    else:
        header = prefix + fields.table(header_len, [b""] * len(sections))
        keys = [crypto.section_key(content_key, i, name) for i, (name, _) in enumerate(sections)]
        aads = [hashlib.sha256(header).digest()] * len(sections)
    assert len(header) == header_len
    body = bytearray(header)
    for (_, data), key, aad in zip(sections, keys, aads, strict=True):
        body += crypto.seal_section(key, aad, data, chunk_size)
    body += sign_body(publisher, bytes(body))
    write_atomic(out_path, bytes(body))
    return parse_header(bytes(body))


def signed_message(body: bytes | memoryview, flags: int) -> bytes | memoryview:
    """What the signature over ``body`` (bytes ``[0, file_len - 64)``) signs: with the
    block-hash flag the short block-digest message, otherwise ``body`` itself."""
    return crypto.block_signature_message(body) if flags & FLAG_BLOCK_SIGNATURE else body


def sign_body(publisher: Ed25519PrivateKey, body: bytes) -> bytes:
    """The 64-byte signature of ``body``, in the mode its header's flags name."""
    flags = struct.unpack_from("<H", body, 10)[0] if len(body) >= 12 else 0
    return crypto.sign(publisher, bytes(signed_message(body, flags)))


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


def parse_header(data: bytes, file_len: int | None = None) -> Header:
    """Step 1 of verification: the layout. Needs no key; authenticates nothing. ``data`` is
    the file, or (with ``file_len``, the file's length) at least its first header_len bytes:
    the section table is checked against that length without the sections' bytes."""
    file_len = len(data) if file_len is None else file_len
    if file_len < len(MAGIC) + 8 + crypto.SIGNATURE_SIZE or len(data) < 16 or data[:8] != MAGIC:
        raise ArtifactInvalid("layout")
    version, flags, header_len = struct.unpack_from("<HHI", data, 8)
    if version != FORMAT_VERSION or flags & ~KNOWN_FLAGS:
        raise ArtifactInvalid("layout")
    if not 16 <= header_len <= min(MAX_HEADER_LEN, file_len - crypto.SIGNATURE_SIZE, len(data)):
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
    table_offset = r.pos
    wrapped_size = crypto.WRAPPED_KEY_SIZE if flags & FLAG_STABLE_SECTIONS else 0
    sections = []
    expected_offset = header_len
    seen: set[str] = set()
    for i in range(n_sections):
        name = r.str16()
        pt_size, offset, ct_size = r.unpack("<QQQ")
        wrapped_key = r.take(wrapped_size)
        if (
            name in seen
            or pt_size > MAX_SECTION_SIZE
            or offset != expected_offset
            or ct_size != pt_size + crypto.TAG_SIZE * crypto.chunk_count(pt_size, chunk_size)
        ):
            raise ArtifactInvalid("layout")
        seen.add(name)
        sections.append(SectionEntry(i, name, pt_size, offset, ct_size, wrapped_key))
        expected_offset += ct_size
    if r.pos != header_len or expected_offset != file_len - crypto.SIGNATURE_SIZE:
        raise ArtifactInvalid("layout")
    if sections[0].name != MANIFEST_SECTION:
        raise ArtifactInvalid("layout")
    return Header(
        format_version=version,
        flags=flags,
        header_len=header_len,
        table_offset=table_offset,
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
    body = memoryview(data)[:body_end]
    crypto.verify_signature(publisher, data[body_end:], bytes(signed_message(body, header.flags)))
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
    section_keys = _section_keys(data, header, content_key)
    sections: dict[str, bytes] = {}
    for entry, (key, aad) in zip(header.sections, section_keys, strict=True):
        if names is not None and entry.name != MANIFEST_SECTION and entry.name not in names:
            continue
        ciphertext = data[entry.offset : entry.offset + entry.ciphertext_size]
        sections[entry.name] = crypto.open_section(
            key, aad, ciphertext, header.chunk_size, entry.plaintext_size
        )
    return OpenedArtifact(header=header, sections=sections)


def _section_keys(data: bytes, header: Header, content_key: bytes) -> list[tuple[bytes, bytes]]:
    """(key, chunk AAD) of every section. Stable sections unwrap every key here, in step 4
    (unseal), before any section is decrypted."""
    if not header.stable_sections:
        aad = hashlib.sha256(data[: header.header_len]).digest()
        return [(crypto.section_key(content_key, e.index, e.name), aad) for e in header.sections]
    key_wrap = crypto.wrap_key(content_key)
    prefix_digest = hashlib.sha256(data[: header.table_offset]).digest()
    return [
        (crypto.unwrap_section_key(key_wrap, e.index, crypto.wrap_aad(prefix_digest, e.name),
                                   e.wrapped_key),
         crypto.stable_chunk_aad(header.package_name, e.name))
        for e in header.sections
    ]


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
