# SPDX-License-Identifier: Apache-2.0
# Linux on ARM (or any zig target) against an OLD glibc: zig's versioned glibc targets
# (pip install ziglang). `-target aarch64-linux-gnu.2.24` compiles against glibc 2.24's headers
# and links its symbol stubs, so the binaries load on a board whose C library is 2.24 or newer.
# C++ uses zig's libc++, linked statically (nothing needs a libstdc++ on the board).
# Cache variables (default: the same-named environment variables):
#   EDGEPACK_ZIG_TARGET  zig target with the glibc version, e.g. aarch64-linux-gnu.2.24
#   EDGEPACK_ARCH_FLAGS  CPU flags in zig/clang spelling, e.g. -mcpu=cortex_a53
#   EDGEPACK_SYSROOT     extracted Debian packages of the target (OpenSSL), optional
#   EDGEPACK_ZIG         the zig executable (default: `zig` on PATH, else python3's ziglang)
#   EDGEPACK_ZIG_CACHE   zig's global cache folder (default: zig's own, ~/.cache/zig)
#   EDGEPACK_ZIG_LIBCXX  OFF: C++ links without libc++ (`-nostdlib++` on every link, CMake's own
#                        checks included), so zig never builds it for this target; compiles
#                        keep libc++'s headers. For programs that need only header templates
#                        (the device agent). Default ON.
# CMAKE_C_COMPILER must be one executable, so this file writes small wrapper scripts
# (cc, c++, ar, ranlib) into the build folder and points CMake at them.
set(EDGEPACK_ZIG_TARGET "$ENV{EDGEPACK_ZIG_TARGET}" CACHE STRING "zig target, e.g. aarch64-linux-gnu.2.24")
set(EDGEPACK_ARCH_FLAGS "$ENV{EDGEPACK_ARCH_FLAGS}" CACHE STRING "CPU flags, e.g. -mcpu=cortex_a53")
set(EDGEPACK_SYSROOT "$ENV{EDGEPACK_SYSROOT}" CACHE PATH "Target-architecture libraries (extracted Debian packages)")
set(EDGEPACK_ZIG "$ENV{EDGEPACK_ZIG}" CACHE FILEPATH "zig executable")
set(EDGEPACK_ZIG_CACHE "$ENV{EDGEPACK_ZIG_CACHE}" CACHE PATH "zig global cache folder")
set(EDGEPACK_ZIG_LIBCXX ON CACHE BOOL "link C++ programs with zig's libc++")
if(NOT EDGEPACK_ZIG_TARGET MATCHES "^([a-z0-9_]+)-linux-(gnu[a-z]*|musl[a-z]*)(\\.[0-9.]+)?$")
  message(FATAL_ERROR "EDGEPACK_ZIG_TARGET must be a zig Linux target such as "
                      "aarch64-linux-gnu.2.24, not '${EDGEPACK_ZIG_TARGET}'")
endif()
set(_ep_arch ${CMAKE_MATCH_1})
set(_ep_abi ${CMAKE_MATCH_2})

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${_ep_arch})
set(EDGEPACK_MULTIARCH ${_ep_arch}-linux-${_ep_abi})  # Debian's folder name for this ABI

if(NOT EDGEPACK_ZIG)
  find_program(_ep_zig_on_path zig)
  if(_ep_zig_on_path)
    set(EDGEPACK_ZIG ${_ep_zig_on_path} CACHE FILEPATH "zig executable" FORCE)
  else()
    find_program(_ep_python NAMES python3 python)
    if(_ep_python)
      execute_process(
        COMMAND ${_ep_python} -c "import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), 'zig'))"
        OUTPUT_VARIABLE _ep_zig OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    endif()
    if(NOT _ep_zig OR NOT EXISTS "${_ep_zig}")
      message(FATAL_ERROR "zig not found: pip install ziglang (or put zig on PATH, or set EDGEPACK_ZIG)")
    endif()
    set(EDGEPACK_ZIG ${_ep_zig} CACHE FILEPATH "zig executable" FORCE)
  endif()
endif()

# try_compile projects re-read this file: hand them the same values and the same wrappers.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGEPACK_ZIG_TARGET EDGEPACK_ARCH_FLAGS
     EDGEPACK_SYSROOT EDGEPACK_ZIG EDGEPACK_ZIG_CACHE EDGEPACK_ZIG_LIBCXX EDGEPACK_ZIG_WRAPPERS)
if(NOT EDGEPACK_ZIG_WRAPPERS)
  set(EDGEPACK_ZIG_WRAPPERS ${CMAKE_BINARY_DIR}/zig-${EDGEPACK_ZIG_TARGET} CACHE INTERNAL "")
  set(_ep_env "")
  if(EDGEPACK_ZIG_CACHE)
    set(_ep_env "ZIG_GLOBAL_CACHE_DIR='${EDGEPACK_ZIG_CACHE}'; export ZIG_GLOBAL_CACHE_DIR\n")
  endif()
  # Without libc++: a command that compiles only (-c, -E, -S) keeps zig's libc++ headers, every
  # other one (a link) gets -nostdlib++.
  set(_ep_cxx_link "")
  if(NOT EDGEPACK_ZIG_LIBCXX)
    set(_ep_cxx_link "for a in \"$@\"; do case $a in -c|-E|-S) exec '${EDGEPACK_ZIG}' c++ -target ${EDGEPACK_ZIG_TARGET} \"$@\";; esac; done\n")
  endif()
  foreach(_ep_tool "cc;cc -target ${EDGEPACK_ZIG_TARGET}" "c++;c++ -target ${EDGEPACK_ZIG_TARGET}"
                   "ar;ar" "ranlib;ranlib")
    list(GET _ep_tool 0 _ep_name)
    list(GET _ep_tool 1 _ep_args)
    set(_ep_pre "")
    if(_ep_name STREQUAL "c++" AND _ep_cxx_link)
      set(_ep_pre "${_ep_cxx_link}")
      string(APPEND _ep_args " -nostdlib++")
    endif()
    file(WRITE ${EDGEPACK_ZIG_WRAPPERS}/${_ep_name}
         "#!/bin/sh\n${_ep_env}${_ep_pre}exec '${EDGEPACK_ZIG}' ${_ep_args} \"$@\"\n")
    file(CHMOD ${EDGEPACK_ZIG_WRAPPERS}/${_ep_name}
         PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
  endforeach()
endif()
set(CMAKE_C_COMPILER ${EDGEPACK_ZIG_WRAPPERS}/cc)
set(CMAKE_CXX_COMPILER ${EDGEPACK_ZIG_WRAPPERS}/c++)
set(CMAKE_AR ${EDGEPACK_ZIG_WRAPPERS}/ar CACHE FILEPATH "Archiver")
set(CMAKE_RANLIB ${EDGEPACK_ZIG_WRAPPERS}/ranlib CACHE FILEPATH "Ranlib")
# CPU flags, the sysroot's multiarch folders and the find-root modes, as in every cross file.
include(${CMAKE_CURRENT_LIST_DIR}/linux-cross.cmake)
