# SPDX-License-Identifier: Apache-2.0
"""Board builds: toolchains, sysroots, SDK build, Conan package, ELF checks, qemu."""
