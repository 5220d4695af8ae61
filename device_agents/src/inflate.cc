// SPDX-License-Identifier: Apache-2.0
// Raw DEFLATE decoding after Mark Adler's puff.c (canonical Huffman codes decoded bit by bit):
// slower than zlib's table decoder but a few hundred lines, and far faster than a serial line.
#include "inflate.h"

#include <cstring>

namespace epagent {
namespace {

constexpr int kMaxBits = 15;
constexpr int kMaxLitLen = 286;
constexpr int kMaxDist = 30;
constexpr int kFixedLitLen = 288;

struct Bits {
  const uint8_t* p;
  const uint8_t* end;
  uint32_t buf = 0;
  int count = 0;
  bool overrun = false;

  // The next `n` (0..16) bits, least significant first; sets `overrun` past the input.
  uint32_t take(int n) {
    while (count < n) {
      if (p == end) {
        overrun = true;
        return 0;
      }
      buf |= uint32_t(*p++) << count;
      count += 8;
    }
    const uint32_t v = buf & ((uint32_t(1) << n) - 1);
    buf >>= n;
    count -= n;
    return v;
  }
};

struct Huffman {
  uint16_t count[kMaxBits + 1];
  uint16_t symbol[kFixedLitLen];
};

// Builds the canonical code of `lengths`; false when the lengths over-subscribe it.
bool build(Huffman* h, const uint8_t* lengths, int n) {
  std::memset(h->count, 0, sizeof h->count);
  for (int s = 0; s < n; ++s) h->count[lengths[s]]++;
  h->count[0] = 0;
  int left = 1;
  for (int len = 1; len <= kMaxBits; ++len) {
    left = left * 2 - h->count[len];
    if (left < 0) return false;
  }
  uint16_t offs[kMaxBits + 1];
  offs[1] = 0;
  for (int len = 1; len < kMaxBits; ++len) offs[len + 1] = uint16_t(offs[len] + h->count[len]);
  for (int s = 0; s < n; ++s)
    if (lengths[s] != 0) h->symbol[offs[lengths[s]]++] = uint16_t(s);
  return true;
}

int decode(Bits* b, const Huffman& h) {
  int code = 0, first = 0, index = 0;
  for (int len = 1; len <= kMaxBits; ++len) {
    code |= int(b->take(1));
    if (b->overrun) return -1;
    const int count = h.count[len];
    if (code - count < first) return h.symbol[index + (code - first)];
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  return -1;  // a code not in the table
}

const uint16_t kLenBase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                               31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
const uint8_t kLenExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                               2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
const uint16_t kDistBase[30] = {1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
                                33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
                                1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
const uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

bool codes(Bits* b, const Huffman& lit, const Huffman& dist, size_t max_out,
           std::vector<uint8_t>* out) {
  for (;;) {
    int sym = decode(b, lit);
    if (sym < 0) return false;
    if (sym < 256) {
      if (out->size() >= max_out) return false;
      out->push_back(uint8_t(sym));
      continue;
    }
    if (sym == 256) return true;
    sym -= 257;
    if (sym >= 29) return false;
    const size_t len = kLenBase[sym] + b->take(kLenExtra[sym]);
    const int dsym = decode(b, dist);
    if (dsym < 0 || dsym >= 30) return false;
    const size_t d = kDistBase[dsym] + b->take(kDistExtra[dsym]);
    if (b->overrun || d > out->size() || out->size() + len > max_out) return false;
    const size_t from = out->size() - d;
    for (size_t i = 0; i < len; ++i) out->push_back((*out)[from + i]);  // may overlap
  }
}

bool stored(Bits* b, size_t max_out, std::vector<uint8_t>* out) {
  b->buf = 0;  // drop the rest of the current byte (fewer than 8 bits are ever buffered)
  b->count = 0;
  if (b->end - b->p < 4) return false;
  const unsigned len = b->p[0] | (b->p[1] << 8), nlen = b->p[2] | (b->p[3] << 8);
  b->p += 4;
  if (len != (~nlen & 0xffff) || size_t(b->end - b->p) < len || out->size() + len > max_out)
    return false;
  out->insert(out->end(), b->p, b->p + len);
  b->p += len;
  return true;
}

bool fixed(Bits* b, size_t max_out, std::vector<uint8_t>* out) {
  static Huffman lit, dist;
  static bool ready = false;
  if (!ready) {
    uint8_t lengths[kFixedLitLen];
    int s = 0;
    for (; s < 144; ++s) lengths[s] = 8;
    for (; s < 256; ++s) lengths[s] = 9;
    for (; s < 280; ++s) lengths[s] = 7;
    for (; s < kFixedLitLen; ++s) lengths[s] = 8;
    build(&lit, lengths, kFixedLitLen);
    for (s = 0; s < kMaxDist; ++s) lengths[s] = 5;
    build(&dist, lengths, kMaxDist);
    ready = true;
  }
  return codes(b, lit, dist, max_out, out);
}

bool dynamic(Bits* b, size_t max_out, std::vector<uint8_t>* out) {
  static const uint8_t order[19] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                    11, 4,  12, 3, 13, 2, 14, 1, 15};
  const int nlen = int(b->take(5)) + 257, ndist = int(b->take(5)) + 1, ncode = int(b->take(4)) + 4;
  if (b->overrun || nlen > kMaxLitLen || ndist > kMaxDist) return false;
  uint8_t lengths[kMaxLitLen + kMaxDist] = {0};
  for (int i = 0; i < ncode; ++i) lengths[order[i]] = uint8_t(b->take(3));
  Huffman lencode, distcode;
  if (b->overrun || !build(&lencode, lengths, 19)) return false;
  int index = 0;
  while (index < nlen + ndist) {
    int sym = decode(b, lencode);
    if (sym < 0) return false;
    if (sym < 16) {
      lengths[index++] = uint8_t(sym);
      continue;
    }
    uint8_t len = 0;
    int repeat;
    if (sym == 16) {
      if (index == 0) return false;
      len = lengths[index - 1];
      repeat = 3 + int(b->take(2));
    } else if (sym == 17) {
      repeat = 3 + int(b->take(3));
    } else {
      repeat = 11 + int(b->take(7));
    }
    if (b->overrun || index + repeat > nlen + ndist) return false;
    while (repeat--) lengths[index++] = len;
  }
  if (lengths[256] == 0) return false;  // no end-of-block code
  if (!build(&lencode, lengths, nlen) || !build(&distcode, lengths + nlen, ndist)) return false;
  return codes(b, lencode, distcode, max_out, out);
}

}  // namespace

bool inflate_raw(const uint8_t* in, size_t in_len, size_t max_out, std::vector<uint8_t>* out) {
  out->clear();
  Bits b{in, in + in_len};
  for (;;) {
    const uint32_t last = b.take(1), type = b.take(2);
    if (b.overrun) return false;
    bool ok = type == 0   ? stored(&b, max_out, out)
              : type == 1 ? fixed(&b, max_out, out)
              : type == 2 ? dynamic(&b, max_out, out)
                          : false;
    if (!ok || b.overrun) return false;
    if (last) return true;
  }
}

}  // namespace epagent
