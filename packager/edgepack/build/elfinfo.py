# SPDX-License-Identifier: Apache-2.0
"""The few ELF facts a build check needs: class, machine, ARM float ABI, static or dynamic, and
the symbol versions a binary needs from its shared libraries (``.gnu.version_r``: GLIBC_2.17,
GLIBCXX_3.4.30, ...), which decide the oldest C library it loads on."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edgepack.spec.arch import EM_386, EM_AARCH64, EM_ARM, EM_X86_64

EF_ARM_ABI_FLOAT_HARD = 0x400
EF_ARM_ABI_FLOAT_SOFT = 0x200
PT_INTERP = 3
SHT_GNU_VERNEED = 0x6FFFFFFE
_MACHINES = {EM_386: "i386", EM_ARM: "arm", EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}


@dataclass(frozen=True)
class ElfInfo:
    bits: int  # 32 or 64 (EI_CLASS)
    machine: int  # e_machine
    flags: int  # e_flags (ARM: EABI version and float ABI)
    elf_type: int  # e_type: 2 executable, 3 shared object / PIE
    interpreter: str | None  # PT_INTERP, None for a static executable

    @property
    def machine_name(self) -> str:
        return _MACHINES.get(self.machine, f"e_machine={self.machine}")

    @property
    def hard_float(self) -> bool:
        return self.machine == EM_ARM and bool(self.flags & EF_ARM_ABI_FLOAT_HARD)

    @property
    def static(self) -> bool:
        return self.interpreter is None


class NotElf(ValueError):
    pass


def read_elf(path: Path) -> ElfInfo:
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or len(data) < 52:
        raise NotElf(f"{path} is not an ELF file")
    bits = {1: 32, 2: 64}.get(data[4])
    if bits is None or data[5] != 1:
        raise NotElf(f"{path}: unsupported ELF class/byte order")
    if bits == 64:
        e_type, machine, _, _, phoff, _, flags, _, phentsize, phnum = struct.unpack_from(
            "<HHIQQQIHHH", data, 16)
    else:
        e_type, machine, _, _, phoff, _, flags, _, phentsize, phnum = struct.unpack_from(
            "<HHIIIIIHHH", data, 16)
    interpreter = None
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + phentsize > len(data):
            break
        p_type = struct.unpack_from("<I", data, off)[0]
        if p_type != PT_INTERP:
            continue
        if bits == 64:
            p_offset, _, _, p_filesz = struct.unpack_from("<QQQQ", data, off + 8)
        else:
            p_offset, _, _, p_filesz = struct.unpack_from("<IIII", data, off + 4)
        interpreter = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode(errors="replace")
    return ElfInfo(bits=bits, machine=machine, flags=flags, elf_type=e_type,
                   interpreter=interpreter)


def _header(data: bytes, path: Path) -> tuple[int, int, int, int]:
    """(bits, e_shoff, e_shentsize, e_shnum) of a little-endian ELF file."""
    if data[:4] != b"\x7fELF" or len(data) < 52:
        raise NotElf(f"{path} is not an ELF file")
    bits = {1: 32, 2: 64}.get(data[4])
    if bits is None or data[5] != 1:
        raise NotElf(f"{path}: unsupported ELF class/byte order")
    if bits == 64:
        shoff = struct.unpack_from("<Q", data, 0x28)[0]
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    else:
        shoff = struct.unpack_from("<I", data, 0x20)[0]
        shentsize, shnum = struct.unpack_from("<HH", data, 0x2E)
    return bits, shoff, shentsize, shnum


def _sections(data: bytes, path: Path) -> list[tuple[int, int, int, int]]:
    """(sh_type, sh_offset, sh_size, sh_link) of every section header."""
    bits, shoff, shentsize, shnum = _header(data, path)
    out = []
    for i in range(shnum):
        off = shoff + i * shentsize
        if off + shentsize > len(data):
            raise NotElf(f"{path}: section header {i} lies outside the file")
        if bits == 64:
            _, sh_type, _, _, offset, size, link = struct.unpack_from("<IIQQQQI", data, off)
        else:
            _, sh_type, _, _, offset, size, link = struct.unpack_from("<IIIIIII", data, off)
        out.append((sh_type, offset, size, link))
    return out


def _cstring(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return data[offset:end if end >= 0 else len(data)].decode(errors="replace")


def version_needs(path: Path) -> dict[str, set[str]]:
    """Symbol versions needed per shared library, from ``.gnu.version_r`` (what ``readelf -V``
    lists under "Version needs"): e.g. ``{"libc.so.6": {"GLIBC_2.17", "GLIBC_2.34"}}``. Empty
    for a static executable."""
    data = Path(path).read_bytes()
    sections = _sections(data, Path(path))
    needs: dict[str, set[str]] = {}
    for sh_type, offset, size, link in sections:
        if sh_type != SHT_GNU_VERNEED or link >= len(sections):
            continue
        strtab = sections[link][1]
        entry = offset
        while offset <= entry < offset + size:
            _, count, file_name, aux, next_entry = struct.unpack_from("<HHIII", data, entry)
            names = needs.setdefault(_cstring(data, strtab + file_name), set())
            item = entry + aux
            for _ in range(count):
                _, _, _, name, next_aux = struct.unpack_from("<IHHII", data, item)
                names.add(_cstring(data, strtab + name))
                if next_aux == 0:
                    break
                item += next_aux
            if next_entry == 0:
                break
            entry += next_entry
    return needs


def version_key(version: str) -> tuple[int, ...]:
    """``"2.27"`` -> ``(2, 27)``: versions compared as numbers, not strings."""
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _highest(paths: Iterable[Path], prefix: str) -> str | None:
    found = {v.removeprefix(prefix) for p in paths for names in version_needs(p).values()
             for v in names if v.startswith(prefix) and v[len(prefix):][:1].isdigit()}
    return max(found, key=version_key) if found else None


def required_glibc(paths: Iterable[Path]) -> str | None:
    """The highest ``GLIBC_x.y`` any of ``paths`` needs (None: static or no glibc symbols):
    the oldest C library on which all of them load."""
    return _highest(paths, "GLIBC_")


def required_glibcxx(paths: Iterable[Path]) -> str | None:
    """The highest ``GLIBCXX_`` (a shared libstdc++ on the device) any of ``paths`` needs."""
    return _highest(paths, "GLIBCXX_")
