// SPDX-License-Identifier: Apache-2.0
// The plaintext header of an `.epk` (docs/artifact-format.md) and the layout check, step 1 of
// the verification order. parse_layout() reads nothing past the header and checks every bound
// before any section byte is touched; any violation is ArtifactInvalid("layout").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "artifact/format_table.h"

namespace edgepack::epk {

// kFormatVersion, the header flags (kFlagStableSections, kFlagBlockSignature, kKnownFlags) and
// the signature's parameters come from the Python writer's constants.
constexpr uint8_t kMagic[8] = {0x89, 'E', 'P', 'K', '\r', '\n', 0x1a, '\n'};
constexpr size_t kWrappedKeySize = 48;
constexpr size_t kStanzaSize = 112;
constexpr size_t kTagSize = 16;
constexpr uint32_t kMaxHeaderLen = 1u << 20;
constexpr size_t kMaxNameLen = 255;
constexpr uint32_t kMinChunkSize = 1u << 10;
constexpr uint32_t kMaxChunkSize = 1u << 24;
constexpr uint16_t kMaxRecipients = 1024;
constexpr uint16_t kMaxSections = 4096;
constexpr uint64_t kMaxSectionPlaintext = uint64_t{1} << 31;
constexpr char kManifestSection[] = "manifest";

struct RecipientStanza {
  std::array<uint8_t, 32> key_id;
  std::array<uint8_t, 32> enc;
  std::array<uint8_t, 48> sealed_content_key;
};

struct SectionEntry {
  std::string name;
  uint64_t plaintext_size = 0;
  uint64_t offset = 0;
  uint64_t ciphertext_size = 0;
  uint64_t chunk_count = 0;  // derived: max(1, ceil(plaintext_size / chunk_size))
  std::array<uint8_t, kWrappedKeySize> wrapped_key{};  // stable sections only
};

struct Header {
  uint16_t format_version = 0;
  uint16_t flags = 0;
  uint32_t header_len = 0;
  uint32_t table_offset = 0;  // offset of the first section entry (after section_count)
  std::string package_name;
  std::string package_version;
  uint64_t version_counter = 0;
  std::array<uint8_t, 32> publisher_key{};
  uint32_t chunk_size = 0;
  std::vector<RecipientStanza> recipients;
  std::vector<SectionEntry> sections;

  bool stable_sections() const { return (flags & kFlagStableSections) != 0; }
  bool block_signature() const { return (flags & kFlagBlockSignature) != 0; }
};

// Parses and checks the header of a whole file image of `file_len` bytes.
Header parse_layout(const uint8_t* file, size_t file_len);

// max(1, ceil(plaintext_size / chunk_size))
uint64_t chunk_count(uint64_t plaintext_size, uint32_t chunk_size);

}  // namespace edgepack::epk
