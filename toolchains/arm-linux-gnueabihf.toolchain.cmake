# SPDX-License-Identifier: Apache-2.0
# 32-bit ARM Linux, hard-float ABI, Debian's cross GCC (apt-get install g++-arm-linux-gnueabihf).
# Cache variables (default: the same-named environment variables, which Conan profiles set):
# EDGEPACK_ARCH_FLAGS (the board's cpu.flags) and EDGEPACK_SYSROOT (extracted
# Debian armhf packages such as OpenSSL; searched for libraries and headers, while the C
# library comes from the compiler's own sysroot and programs from the host).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
set(EDGEPACK_MULTIARCH arm-linux-gnueabihf)  # Debian's folder name for this ABI inside the sysroot

set(EDGEPACK_ARCH_FLAGS "$ENV{EDGEPACK_ARCH_FLAGS}" CACHE STRING "Board CPU flags, e.g. -mcpu=cortex-a72 -mfpu=neon-fp-armv8 -mfloat-abi=hard")
set(EDGEPACK_SYSROOT "$ENV{EDGEPACK_SYSROOT}" CACHE PATH "Target-architecture libraries (extracted Debian packages)")
# try_compile projects re-read this file: hand them the same values.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGEPACK_ARCH_FLAGS EDGEPACK_SYSROOT)
set(CMAKE_C_FLAGS_INIT "${EDGEPACK_ARCH_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${EDGEPACK_ARCH_FLAGS}")

if(EDGEPACK_SYSROOT)
  # Debian keeps per-ABI headers (openssl/configuration.h) and libraries in multiarch folders.
  set(CMAKE_C_STANDARD_INCLUDE_DIRECTORIES ${EDGEPACK_SYSROOT}/usr/include/${EDGEPACK_MULTIARCH})
  set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES ${EDGEPACK_SYSROOT}/usr/include/${EDGEPACK_MULTIARCH})
  list(APPEND CMAKE_LIBRARY_PATH ${EDGEPACK_SYSROOT}/usr/lib/${EDGEPACK_MULTIARCH})
endif()
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf ${EDGEPACK_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# BOTH: an app finds the unpacked SDK (find_package(edgepack)) wherever it was unpacked.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
