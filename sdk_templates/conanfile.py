# SPDX-License-Identifier: Apache-2.0
"""Conan 2 recipe for the edgepack C++ SDK (``edgepack-sdk/<version>``).

Builds this CMake project with CMakeToolchain + CMakeDeps and the host profile's toolchain file
(``edgepack sdk conan`` generates the profile from the board file; it sets
``tools.cmake.cmaketoolchain:user_toolchain``). No Conan
dependencies: OpenSSL comes from the board's sysroot (``EDGEPACK_SYSROOT``), linked statically,
so the package works offline and needs nothing from a remote.
"""

import os
import re

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import load


class EdgepackSdkConan(ConanFile):
    name = "edgepack-sdk"
    # Two components, as in the SDK's own CMake config: edgepack::edgepack (libedgepack.so)
    # and edgepack::edgepack_static (one archive with libcrypto inside). Both are always
    # built (no "shared" option), so the package type is the shared library's.
    package_type = "shared-library"
    license = "Apache-2.0"
    description = "edgepack runtime: loads signed, encrypted model artifacts and runs them"
    settings = "os", "arch", "compiler", "build_type"
    exports_sources = ("CMakeLists.txt", "include/*", "src/*", "tools/*", "tests/*", "fuzz/*",
                       "examples/*", "cmake/*")

    def set_version(self):
        text = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        self.version = re.search(r"project\(\s*\w+\s+VERSION\s+([0-9.]+)", text).group(1)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["EDGEPACK_BUILD_TESTS"] = False
        tc.cache_variables["EDGEPACK_STATIC_CRYPTO"] = True
        tc.cache_variables["OPENSSL_USE_STATIC_LIBS"] = True
        sysroot = os.environ.get("EDGEPACK_SYSROOT")
        if sysroot:
            # Debian's multiarch layout: FindOpenSSL needs the static libraries named.
            usr = os.path.join(sysroot, "usr")
            tc.cache_variables["OPENSSL_ROOT_DIR"] = usr
            tc.cache_variables["OPENSSL_INCLUDE_DIR"] = os.path.join(usr, "include")
            libdir = os.path.join(usr, "lib")
            for sub in sorted(os.listdir(libdir)):
                crypto = os.path.join(libdir, sub, "libcrypto.a")
                if os.path.isfile(crypto):
                    tc.cache_variables["OPENSSL_CRYPTO_LIBRARY"] = crypto
                    tc.cache_variables["OPENSSL_SSL_LIBRARY"] = os.path.join(libdir, sub,
                                                                            "libssl.a")
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        CMake(self).install()

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "edgepack")
        self.cpp_info.set_property("cmake_target_name", "edgepack::all")
        for component, lib in (("edgepack", "edgepack"), ("edgepack_static", "edgepack_static")):
            c = self.cpp_info.components[component]
            c.set_property("cmake_target_name", f"edgepack::{component}")
            c.libs = [lib]
            c.system_libs = ["pthread", "dl", "m"]
