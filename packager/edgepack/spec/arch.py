# SPDX-License-Identifier: Apache-2.0
"""One table of CPU-architecture facts: everything that maps a board's ``arch`` to the name
another tool uses for it reads this table (board checks, sysroots, busybox for virtual
consoles, zig and Conan settings, ELF checks, the device's ``uname -m``).

Adding an architecture is one row here plus its ``enum`` in ``schemas/board.schema.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

# ELF e_machine values (System V ABI).
EM_386 = 3
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183


@dataclass(frozen=True)
class ArchFacts:
    name: str  # edgepack's name, a board file's ``arch``
    debian: str  # Debian architecture: sysroot packages, busybox-static
    triplet: str  # GNU triplet = Debian multiarch folder (usr/lib/<triplet>) = cross prefix
    qemu: str | None  # qemu-user binary that runs its programs on an x86_64 host; None: native
    zig_gnu: str  # zig target against glibc, without the version (``<zig_gnu>.2.24``)
    zig_musl: str  # zig target of the fully static agent
    conan: str  # Conan ``arch`` setting
    elf_machine: int  # ELF e_machine
    elf_bits: int  # ELF class: 32 or 64
    uname: tuple[str, ...]  # what ``uname -m`` prints on such a device
    cross_gxx_package: str | None  # Debian package of the cross g++; None: the host compiler
    # Optional CPU extensions a board file may list under ``cpu: features:`` (each has a kernel
    # built for it and chosen at run time when the CPU reports it).
    cpu_features: tuple[str, ...] = ()


ARCHES: dict[str, ArchFacts] = {
    "aarch64": ArchFacts(
        name="aarch64", debian="arm64", triplet="aarch64-linux-gnu", qemu="qemu-aarch64",
        zig_gnu="aarch64-linux-gnu", zig_musl="aarch64-linux-musl", conan="armv8",
        elf_machine=EM_AARCH64, elf_bits=64, uname=("aarch64", "arm64"),
        cross_gxx_package="g++-aarch64-linux-gnu", cpu_features=("dotprod",)),
    "armhf": ArchFacts(
        name="armhf", debian="armhf", triplet="arm-linux-gnueabihf", qemu="qemu-arm",
        zig_gnu="arm-linux-gnueabihf", zig_musl="arm-linux-musleabihf", conan="armv7hf",
        elf_machine=EM_ARM, elf_bits=32, uname=("armv7l", "armv8l", "armv7"),
        cross_gxx_package="g++-arm-linux-gnueabihf"),
    "x86_64": ArchFacts(
        name="x86_64", debian="amd64", triplet="x86_64-linux-gnu", qemu=None,
        zig_gnu="x86_64-linux-gnu", zig_musl="x86_64-linux-musl", conan="x86_64",
        elf_machine=EM_X86_64, elf_bits=64, uname=("x86_64", "amd64"),
        cross_gxx_package=None),
}


def arch_facts(name: str) -> ArchFacts:
    """The row for an arch given by edgepack's, Debian's or ``uname -m``'s name."""
    if name in ARCHES:
        return ARCHES[name]
    for facts in ARCHES.values():
        if name == facts.debian or name in facts.uname:
            return facts
    raise KeyError(f"unknown architecture {name!r} (known: {', '.join(ARCHES)})")


def by_triplet(triplet: str) -> ArchFacts | None:
    """The row whose GNU triplet is ``triplet`` (e.g. a board's toolchain name), if any."""
    for facts in ARCHES.values():
        if facts.triplet == triplet:
            return facts
    return None
