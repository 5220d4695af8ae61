// SPDX-License-Identifier: Apache-2.0
#include "artifact/header.h"

#include <cstring>
#include <unordered_set>

#include "common/error.h"

namespace edgepack::epk {
namespace {

[[noreturn]] void layout_error() {
  throw ArtifactInvalid("layout");
}

// A bounds-checked little-endian cursor over [0, end).
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t end) : data_(data), end_(end) {}
  size_t pos() const { return pos_; }

  const uint8_t* take(size_t n) {
    if (n > end_ - pos_) layout_error();
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t uint(size_t n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }
  uint16_t u16() { return static_cast<uint16_t>(uint(2)); }
  uint32_t u32() { return static_cast<uint32_t>(uint(4)); }
  uint64_t u64() { return uint(8); }
  template <size_t N>
  std::array<uint8_t, N> bytes() {
    std::array<uint8_t, N> out;
    std::memcpy(out.data(), take(N), N);
    return out;
  }
  std::string str16() {
    const uint16_t n = u16();
    if (n == 0 || n > kMaxNameLen) layout_error();
    const uint8_t* p = take(n);
    if (!valid_utf8(p, n)) layout_error();
    return std::string(reinterpret_cast<const char*>(p), n);
  }

 private:
  static bool valid_utf8(const uint8_t* s, size_t n) {
    size_t i = 0;
    while (i < n) {
      const uint8_t c = s[i];
      size_t extra = 0;
      uint32_t cp = 0;
      if (c < 0x80) {
        ++i;
        continue;
      } else if ((c & 0xe0) == 0xc0) {
        extra = 1;
        cp = c & 0x1f;
      } else if ((c & 0xf0) == 0xe0) {
        extra = 2;
        cp = c & 0x0f;
      } else if ((c & 0xf8) == 0xf0) {
        extra = 3;
        cp = c & 0x07;
      } else {
        return false;
      }
      if (extra > n - i - 1) return false;
      for (size_t k = 1; k <= extra; ++k) {
        if ((s[i + k] & 0xc0) != 0x80) return false;
        cp = (cp << 6) | (s[i + k] & 0x3f);
      }
      static const uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
      if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
      i += extra + 1;
    }
    return true;
  }

  const uint8_t* data_;
  size_t end_;
  size_t pos_ = 0;
};

}  // namespace

uint64_t chunk_count(uint64_t plaintext_size, uint32_t chunk_size) {
  if (plaintext_size == 0) return 1;
  return plaintext_size / chunk_size + (plaintext_size % chunk_size != 0 ? 1 : 0);
}

Header parse_layout(const uint8_t* file, size_t file_len) {
  // The fixed prefix is magic(8) + version(2) + flags(2) + header_len(4).
  if (file == nullptr || file_len < 16 + kSignatureSize) layout_error();
  if (std::memcmp(file, kMagic, sizeof(kMagic)) != 0) layout_error();
  Cursor prefix(file + 8, 8);
  Header h;
  h.format_version = prefix.u16();
  h.flags = prefix.u16();
  h.header_len = prefix.u32();
  if (h.format_version != kFormatVersion || (h.flags & ~kKnownFlags) != 0) layout_error();
  if (h.header_len > kMaxHeaderLen || h.header_len < 16 ||
      h.header_len > file_len - kSignatureSize) {
    layout_error();
  }

  // Everything else is read strictly inside [16, header_len).
  Cursor c(file, h.header_len);
  c.take(16);
  h.package_name = c.str16();
  h.package_version = c.str16();
  h.version_counter = c.u64();
  h.publisher_key = c.bytes<32>();
  h.chunk_size = c.u32();
  if (h.chunk_size < kMinChunkSize || h.chunk_size > kMaxChunkSize) layout_error();

  const uint16_t recipient_count = c.u16();
  if (recipient_count == 0 || recipient_count > kMaxRecipients) layout_error();
  h.recipients.reserve(recipient_count);
  for (uint16_t i = 0; i < recipient_count; ++i) {
    RecipientStanza r;
    r.key_id = c.bytes<32>();
    r.enc = c.bytes<32>();
    r.sealed_content_key = c.bytes<48>();
    h.recipients.push_back(r);
  }

  const uint16_t section_count = c.u16();
  if (section_count == 0 || section_count > kMaxSections) layout_error();
  h.table_offset = static_cast<uint32_t>(c.pos());
  const uint64_t body_end = file_len - kSignatureSize;
  uint64_t expected_offset = h.header_len;
  std::unordered_set<std::string> names;
  h.sections.reserve(section_count);
  for (uint16_t i = 0; i < section_count; ++i) {
    SectionEntry s;
    s.name = c.str16();
    s.plaintext_size = c.u64();
    s.offset = c.u64();
    s.ciphertext_size = c.u64();
    if (h.stable_sections()) s.wrapped_key = c.bytes<kWrappedKeySize>();
    if (!names.insert(s.name).second) layout_error();
    if (i == 0 && s.name != kManifestSection) layout_error();
    if (s.plaintext_size > kMaxSectionPlaintext) layout_error();
    s.chunk_count = chunk_count(s.plaintext_size, h.chunk_size);
    // No overflow: plaintext <= 2^31 and chunk_count <= 2^31, so the sum is < 2^36.
    if (s.ciphertext_size != s.plaintext_size + kTagSize * s.chunk_count) layout_error();
    if (s.offset != expected_offset) layout_error();
    if (s.ciphertext_size > body_end - expected_offset) layout_error();
    expected_offset += s.ciphertext_size;
    h.sections.push_back(std::move(s));
  }
  // The table ends exactly at header_len and the last section exactly at the signature.
  if (c.pos() != h.header_len || expected_offset != body_end) layout_error();
  return h;
}

}  // namespace edgepack::epk
