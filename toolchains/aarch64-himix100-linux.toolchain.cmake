# SPDX-License-Identifier: Apache-2.0
# HiSilicon's vendor GCC for Hi3559A (from the HiSilicon SDK); same ABI as aarch64-linux-gnu.
# The C library comes from the compiler's own sysroot; the board's CPU flags and the target
# libraries (EDGEPACK_ARCH_FLAGS, EDGEPACK_SYSROOT) as in every cross file: linux-cross.cmake.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-himix100-linux-gcc)
set(CMAKE_CXX_COMPILER aarch64-himix100-linux-g++)
set(EDGEPACK_MULTIARCH aarch64-linux-gnu)  # Debian's folder name for this ABI inside the sysroot
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
