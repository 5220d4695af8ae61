// SPDX-License-Identifier: Apache-2.0
// Generated from packager/edgepack/artifact/container.py and crypto.py by
// `python -m edgepack.artifact.format_header --write`: edit those, not this file.
// The `.epk` format version, header flags and signature parameters
// (docs/artifact-format.md).
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgepack::epk {

constexpr uint16_t kFormatVersion = 1;
// Header flags; readers refuse any other bit. Stable sections: every section entry
// carries its key wrapped under this release's content key ("Stable section keys").
constexpr uint16_t kFlagStableSections = 0x0001;
// Block-hash signature: Ed25519 over kBlockSignaturePrefix (its NUL included), the
// signed length (u64), kSignatureBlockSize (u32) and the SHA-256 of every block.
constexpr uint16_t kFlagBlockSignature = 0x0002;
constexpr uint16_t kKnownFlags = 0x0003;
constexpr size_t kSignatureSize = 64;
constexpr uint32_t kSignatureBlockSize = 1048576;
constexpr char kBlockSignaturePrefix[] = "edgepack-epk-blocks-v1";
static_assert(sizeof(kBlockSignaturePrefix) == 23, "the prefix's NUL is signed");

}  // namespace edgepack::epk
