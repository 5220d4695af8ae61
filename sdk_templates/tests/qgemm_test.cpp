// SPDX-License-Identifier: Apache-2.0
// int8 GEMM (runtime/kernels/qgemm.h) against naive references: exact int32 accumulation over
// sizes around every vector width and tail, and fixed-point requantisation against rounding
// in double (at most 1 apart, equal on >= 99.9% of random values).
// Prints "qgemm: <isa>" and "<N> checks, <F> failures"; exits non-zero on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "runtime/kernels/qgemm.h"

namespace k = edgepack::kernels;

static int g_checks = 0, g_failures = 0;

static void check(bool ok, const char* what, long a, long b, long c) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    if (g_failures < 20) std::printf("FAIL %s (%ld, %ld, %ld)\n", what, a, b, c);
  }
}

static void test_accumulation(std::mt19937& rng) {
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127), bias(-100000, 100000);
  const int64_t ks[] = {1, 3, 15, 16, 17, 31, 32, 33, 47, 64, 147, 576, 1153, 4608};
  for (int64_t kk : ks) {
    for (int64_t m : {1, 5}) {
      for (int64_t n : {1, 7, 16}) {
        const int64_t lda = kk + 3;  // a row stride larger than k
        std::vector<uint8_t> a(static_cast<size_t>(m * lda));
        std::vector<int8_t> w(static_cast<size_t>(n * kk));
        std::vector<int32_t> b(static_cast<size_t>(n)), sums(static_cast<size_t>(n)),
            acc(static_cast<size_t>(m * n));
        for (auto& v : a) v = uint8_t(u8(rng));
        for (auto& v : w) v = int8_t(s8(rng));
        for (auto& v : b) v = bias(rng);
        const uint8_t za = uint8_t(u8(rng));
        k::qgemm_row_sums(w.data(), n, kk, sums.data());
        k::qgemm_s32(a.data(), lda, za, w.data(), sums.data(), b.data(), m, n, kk, acc.data());
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            int64_t ref = b[size_t(j)];
            for (int64_t q = 0; q < kk; ++q)
              ref += (int64_t(a[size_t(i * lda + q)]) - za) * int64_t(w[size_t(j * kk + q)]);
            check(acc[size_t(i * n + j)] == ref, "qgemm_s32", long(kk), long(i), long(j));
          }
        }
        // bias may be null
        k::qgemm_s32(a.data(), lda, za, w.data(), sums.data(), nullptr, m, n, kk, acc.data());
        check(
            acc[0] + b[0] ==
                [&] {
                  int64_t r = b[0];
                  for (int64_t q = 0; q < kk; ++q) r += (int64_t(a[size_t(q)]) - za) * w[size_t(q)];
                  return r;
                }(),
            "qgemm_s32 without bias", long(kk), long(m), long(n));
      }
    }
  }
}

static void test_requantize(std::mt19937& rng) {
  std::uniform_real_distribution<double> scale(-14.0, -1.0);
  std::uniform_int_distribution<int32_t> accd(-2000000, 2000000);
  int exact = 0, total = 0;
  for (int t = 0; t < 200; ++t) {
    const double real = std::pow(2.0, scale(rng));
    const k::QuantMultiplier qm = k::quant_multiplier(real);
    check(qm.m0 >= (int32_t(1) << 30) && qm.shift <= 0, "quant_multiplier range", qm.m0, qm.shift,
          t);
    const double back = double(qm.m0) / double(int64_t(1) << 31) * std::ldexp(1.0, qm.shift);
    check(std::fabs(back - real) <= real * 1e-9, "quant_multiplier value", t, 0, 0);
    for (int r = 0; r < 200; ++r) {
      const int32_t x = accd(rng);
      const int32_t got = k::apply_multiplier(x, qm);
      const double want = double(x) * real;
      const long diff = std::lround(std::fabs(double(got) - std::round(want)));
      check(diff <= 1, "apply_multiplier within 1", long(x), long(got), long(std::round(want)));
      exact += diff == 0;
      ++total;
    }
  }
  // m0 carries 31 bits, so x * real rounds the other way only when it sits within ~2^-31
  // relative of a .5 boundary: essentially never on random values.
  check(exact >= total * 999 / 1000, "apply_multiplier exact on >= 99.9%", exact, total, 0);
  // requantize_u8: clamping to [0, 255] around the output zero point, per-channel multipliers
  const int32_t acc[6] = {-1000000, -10, 0, 10, 1000, 1000000};
  k::QuantMultiplier mult[3] = {k::quant_multiplier(0.01), k::quant_multiplier(0.5),
                                k::quant_multiplier(0.25)};
  uint8_t out[6];
  k::requantize_u8(acc, 2, 3, mult, 128, out, 3);
  const uint8_t want[6] = {0, 123, 128, 128, 255, 255};
  for (int i = 0; i < 6; ++i) check(out[i] == want[i], "requantize_u8", i, out[i], want[i]);
}

int main() {
  std::mt19937 rng(1234);
  std::printf("qgemm: %s\n", k::qgemm_isa());
  test_accumulation(rng);
  test_requantize(rng);
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
