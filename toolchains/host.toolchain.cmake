# SPDX-License-Identifier: Apache-2.0
# The build machine itself (x86_64 Linux) with the system GCC; OpenSSL from the system
# (apt-get install libssl-dev). Same cache variables as the cross files, so every board builds
# the same way: EDGEPACK_ARCH_FLAGS (the board's cpu.flags) and an optional EDGEPACK_SYSROOT.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER gcc)
set(CMAKE_CXX_COMPILER g++)

set(EDGEPACK_ARCH_FLAGS "$ENV{EDGEPACK_ARCH_FLAGS}" CACHE STRING "Board CPU flags, e.g. -march=x86-64-v2")
set(EDGEPACK_SYSROOT "$ENV{EDGEPACK_SYSROOT}" CACHE PATH "Extra libraries and headers searched before the system's")
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGEPACK_ARCH_FLAGS EDGEPACK_SYSROOT)
set(CMAKE_C_FLAGS_INIT "${EDGEPACK_ARCH_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${EDGEPACK_ARCH_FLAGS}")

if(EDGEPACK_SYSROOT)
  list(APPEND CMAKE_PREFIX_PATH ${EDGEPACK_SYSROOT}/usr)
  list(APPEND CMAKE_LIBRARY_PATH ${EDGEPACK_SYSROOT}/usr/lib/x86_64-linux-gnu)
endif()
