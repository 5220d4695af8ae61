# SPDX-License-Identifier: Apache-2.0
# The part every Linux cross toolchain file shares, included at its end once it has set the
# system, the compilers and EDGEPACK_MULTIARCH (Debian's folder name for the ABI inside the
# sysroot), and optionally EDGEPACK_COMPILER_ROOT (the compiler's own target root, searched
# before the sysroot). Cache variables (default: the same-named environment variables, which
# Conan profiles set):
#   EDGEPACK_ARCH_FLAGS  the board's cpu.flags in this compiler's spelling
#   EDGEPACK_SYSROOT     extracted Debian packages of the target (OpenSSL), searched for libraries
#                        and headers; the C library comes from the compiler, programs from the host
set(EDGEPACK_ARCH_FLAGS "$ENV{EDGEPACK_ARCH_FLAGS}" CACHE STRING "Board CPU flags, e.g. -mcpu=cortex-a72")
set(EDGEPACK_SYSROOT "$ENV{EDGEPACK_SYSROOT}" CACHE PATH "Target-architecture libraries (extracted Debian packages)")
# try_compile projects re-read the toolchain file: hand them the same values.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGEPACK_ARCH_FLAGS EDGEPACK_SYSROOT)
set(CMAKE_C_FLAGS_INIT "${EDGEPACK_ARCH_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${EDGEPACK_ARCH_FLAGS}")

if(EDGEPACK_SYSROOT)
  # Debian keeps per-ABI headers (openssl/configuration.h) and libraries in multiarch folders.
  set(CMAKE_C_STANDARD_INCLUDE_DIRECTORIES ${EDGEPACK_SYSROOT}/usr/include/${EDGEPACK_MULTIARCH})
  set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES ${EDGEPACK_SYSROOT}/usr/include/${EDGEPACK_MULTIARCH})
  list(APPEND CMAKE_LIBRARY_PATH ${EDGEPACK_SYSROOT}/usr/lib/${EDGEPACK_MULTIARCH})
endif()
set(CMAKE_FIND_ROOT_PATH ${EDGEPACK_COMPILER_ROOT} ${EDGEPACK_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# BOTH: an app finds the unpacked SDK (find_package(edgepack)) wherever it was unpacked.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
