# SPDX-License-Identifier: Apache-2.0
# 64-bit ARM Linux with Debian's cross GCC (apt-get install g++-aarch64-linux-gnu), whose own
# target root is searched first; the board's CPU flags and the target libraries
# (EDGEPACK_ARCH_FLAGS, EDGEPACK_SYSROOT) as in every cross file: linux-cross.cmake.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(EDGEPACK_MULTIARCH aarch64-linux-gnu)  # Debian's folder name for this ABI inside the sysroot
set(EDGEPACK_COMPILER_ROOT /usr/aarch64-linux-gnu)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
