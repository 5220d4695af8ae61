# SPDX-License-Identifier: Apache-2.0
# 32-bit ARM Linux, hard-float ABI, Debian's cross GCC (apt-get install g++-arm-linux-gnueabihf),
# whose own target root is searched first; the board's CPU flags and the target libraries
# (EDGEPACK_ARCH_FLAGS, EDGEPACK_SYSROOT) as in every cross file: linux-cross.cmake.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
set(EDGEPACK_MULTIARCH arm-linux-gnueabihf)  # Debian's folder name for this ABI inside the sysroot
set(EDGEPACK_COMPILER_ROOT /usr/arm-linux-gnueabihf)
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
