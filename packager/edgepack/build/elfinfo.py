# SPDX-License-Identifier: Apache-2.0
"""The few ELF facts a build check needs: class, machine, ARM float ABI, static or dynamic."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

EM_386 = 3
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EF_ARM_ABI_FLOAT_HARD = 0x400
EF_ARM_ABI_FLOAT_SOFT = 0x200
PT_INTERP = 3
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
