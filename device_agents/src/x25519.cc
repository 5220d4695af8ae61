// SPDX-License-Identifier: Apache-2.0
// X25519 after TweetNaCl's crypto_scalarmult (public domain): 16 limbs of 16 bits in int64,
// a constant-time Montgomery ladder. Small and slow (a few ms on a Cortex-A53), which is fine
// for the one key generation a provisioning does.
#include "x25519.h"

#include <cstring>

namespace epagent {
namespace {

using gf = int64_t[16];

void carry(int64_t* o) {
  for (int i = 0; i < 16; ++i) {
    o[i] += int64_t(1) << 16;
    const int64_t c = o[i] >> 16;
    o[(i + 1) * (i < 15)] += c - 1 + 37 * (c - 1) * (i == 15);
    o[i] -= c * 65536;
  }
}

// Swaps p and q when b is 1, in constant time.
void select(int64_t* p, int64_t* q, int64_t b) {
  const int64_t c = ~(b - 1);
  for (int i = 0; i < 16; ++i) {
    const int64_t t = c & (p[i] ^ q[i]);
    p[i] ^= t;
    q[i] ^= t;
  }
}

void pack(uint8_t* o, const int64_t* n) {
  gf m, t;
  for (int i = 0; i < 16; ++i) t[i] = n[i];
  carry(t);
  carry(t);
  carry(t);
  for (int j = 0; j < 2; ++j) {
    m[0] = t[0] - 0xffed;
    for (int i = 1; i < 15; ++i) {
      m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
      m[i - 1] &= 0xffff;
    }
    m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
    const int64_t b = (m[15] >> 16) & 1;
    m[14] &= 0xffff;
    select(t, m, 1 - b);
  }
  for (int i = 0; i < 16; ++i) {
    o[2 * i] = uint8_t(t[i] & 0xff);
    o[2 * i + 1] = uint8_t((t[i] >> 8) & 0xff);
  }
}

void unpack(int64_t* o, const uint8_t* n) {
  for (int i = 0; i < 16; ++i) o[i] = n[2 * i] + (int64_t(n[2 * i + 1]) << 8);
  o[15] &= 0x7fff;
}

void add(int64_t* o, const int64_t* a, const int64_t* b) {
  for (int i = 0; i < 16; ++i) o[i] = a[i] + b[i];
}

void sub(int64_t* o, const int64_t* a, const int64_t* b) {
  for (int i = 0; i < 16; ++i) o[i] = a[i] - b[i];
}

void mul(int64_t* o, const int64_t* a, const int64_t* b) {
  int64_t t[31] = {0};
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) t[i + j] += a[i] * b[j];
  for (int i = 0; i < 15; ++i) t[i] += 38 * t[i + 16];
  for (int i = 0; i < 16; ++i) o[i] = t[i];
  carry(o);
  carry(o);
}

void invert(int64_t* o, const int64_t* in) {
  gf c;
  for (int i = 0; i < 16; ++i) c[i] = in[i];
  for (int a = 253; a >= 0; --a) {
    mul(c, c, c);
    if (a != 2 && a != 4) mul(c, c, in);
  }
  for (int i = 0; i < 16; ++i) o[i] = c[i];
}

}  // namespace

void x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t point[32]) {
  static const gf k121665 = {0xDB41, 1};
  uint8_t z[32];
  std::memcpy(z, scalar, 32);
  z[31] = uint8_t((z[31] & 127) | 64);
  z[0] &= 248;
  gf x, a, b, c, d, e, f;
  unpack(x, point);
  for (int i = 0; i < 16; ++i) {
    b[i] = x[i];
    d[i] = a[i] = c[i] = 0;
  }
  a[0] = d[0] = 1;
  for (int i = 254; i >= 0; --i) {
    const int64_t r = (z[i >> 3] >> (i & 7)) & 1;
    select(a, b, r);
    select(c, d, r);
    add(e, a, c);
    sub(a, a, c);
    add(c, b, d);
    sub(b, b, d);
    mul(d, e, e);
    mul(f, a, a);
    mul(a, c, a);
    mul(c, b, e);
    add(e, a, c);
    sub(a, a, c);
    mul(b, a, a);
    sub(c, d, f);
    mul(a, c, k121665);
    add(a, a, d);
    mul(c, c, a);
    mul(a, d, f);
    mul(d, b, x);
    mul(b, e, e);
    select(a, b, r);
    select(c, d, r);
  }
  invert(c, c);
  mul(a, a, c);
  pack(out, a);
  std::memset(z, 0, sizeof z);
}

void x25519_base(uint8_t out[32], const uint8_t scalar[32]) {
  static const uint8_t nine[32] = {9};
  x25519(out, scalar, nine);
}

}  // namespace epagent
