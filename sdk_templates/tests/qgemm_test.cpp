// SPDX-License-Identifier: Apache-2.0
// int8 GEMM (runtime/kernels/qgemm.h) against naive references: exact int32 accumulation over
// sizes around every tile, panel and quad edge (7-bit and full-range weights, 1, 2 and 3
// threads, activation zero points 0, 128, 255 and random), fixed-point requantisation against
// rounding in double (at most 1 apart, equal on
// >= 99.9% of random values), and the requantising epilogue against apply_multiplier.
// Prints "qgemm: <isa>" and "<N> checks, <F> failures"; exits non-zero on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "runtime/kernels/qdepthwise.h"
#include "runtime/kernels/quantize.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/threadpool.h"

namespace k = edgepack::kernels;

static int g_checks = 0, g_failures = 0;

static void check(bool ok, const char* what, long a, long b, long c) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    if (g_failures < 20) std::printf("FAIL %s (%ld, %ld, %ld)\n", what, a, b, c);
  }
}

// Exact reference of the whole GEMM: sum_k w[j][k] * (x[k][p] - za) + bias[j].
static std::vector<int64_t> reference(const std::vector<int8_t>& w, const std::vector<uint8_t>& x,
                                      const std::vector<int32_t>& bias, int64_t m, int64_t kk,
                                      int64_t n, int64_t ldx, uint8_t za) {
  std::vector<int64_t> ref(static_cast<size_t>(m * n));
  for (int64_t j = 0; j < m; ++j)
    for (int64_t p = 0; p < n; ++p) {
      int64_t r = bias.empty() ? 0 : bias[size_t(j)];
      for (int64_t q = 0; q < kk; ++q)
        r += int64_t(w[size_t(j * kk + q)]) * (int64_t(x[size_t(q * ldx + p)]) - za);
      ref[size_t(j * n + p)] = r;
    }
  return ref;
}

// int32 accumulation over sizes around every tile and quad edge, 7-bit (one vpmaddubsw per
// quad) and full-range (two halves on AVX2) weights, with and without bias, inline and on 2 and 3
// threads; the same GEMMs requantised with per-row multipliers. Column counts cover groups of
// panels that the AVX-512 VNNI kernel runs 4 at a time, with a narrower last panel (masked
// stores) and without, and last panels of 1-4 columns (its expanded tails, from 16 quads).
static void test_accumulation(std::mt19937& rng, edgepack::ThreadPool& pool) {
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127), s7(-64, 64), bias(-100000, 100000);
  const int64_t ks[] = {1, 2, 3, 4, 5, 15, 16, 17, 33, 64, 147, 576, 1153};
  const int64_t ms[] = {1, 3, 4, 5, 9, 16};
  const int64_t ns[] = {1, 7, 16, 17, 20, 34, 49, 51, 64, 70, 128, 300};
  const uint8_t zas[] = {0, 128, 255};
  int variant = 0;
  for (int64_t kk : ks) {
    for (int64_t m : ms) {
      for (int64_t n : ns) {
        const bool full = (variant & 1) != 0, with_bias = (variant & 2) != 0;
        const int slots = 1 + variant % 3;  // 1, 2 or 3 threads
        const bool threaded = slots > 1;
        const int zsel = variant % 5;
        ++variant;
        const int64_t ldx = n + 5, ldo = n + 2;  // strides larger than n
        std::vector<uint8_t> x(static_cast<size_t>(kk * ldx));
        std::vector<int8_t> w(static_cast<size_t>(m * kk));
        std::vector<int32_t> b;
        for (auto& v : x) v = uint8_t(u8(rng));
        for (auto& v : w) v = int8_t(full ? s8(rng) : s7(rng));
        if (full) w[0] = -128;  // the extremes of both halves
        if (with_bias)
          for (int64_t j = 0; j < m; ++j) b.push_back(bias(rng));
        const uint8_t za = zsel < 3 ? zas[zsel] : uint8_t(u8(rng));
        k::QGemmWeights pw;
        k::qgemm_pack_weights(w.data(), m, kk, &pw);
        // Only the AVX2 kernel's int16 pair sums saturate (qgemm.h); VNNI's vpdpbusd does not.
        check(pw.split == (full && std::strcmp(k::qgemm_isa(), "avx2") == 0),
              "split exactly when some |w| > 64 on avx2", long(kk), long(m), long(n));
        std::vector<uint8_t> scratch(size_t(slots) * k::qgemm_scratch_bytes(kk));
        std::vector<int32_t> acc(static_cast<size_t>(m * ldo), 0x5a5a5a5a);
        k::QGemmOutput o;
        o.za = za;
        o.bias = with_bias ? b.data() : nullptr;
        o.acc = acc.data();
        o.ldo = ldo;
        k::qgemm(pw, x.data(), ldx, n, o, scratch.data(), slots, threaded ? &pool : nullptr);
        const std::vector<int64_t> ref = reference(w, x, b, m, kk, n, ldx, za);
        for (int64_t j = 0; j < m; ++j) {
          for (int64_t p = 0; p < n; ++p)
            check(acc[size_t(j * ldo + p)] == ref[size_t(j * n + p)], "qgemm int32", long(kk),
                  long(j), long(p));
          for (int64_t p = n; p < ldo; ++p)  // nothing written past n
            check(acc[size_t(j * ldo + p)] == 0x5a5a5a5a, "qgemm wrote past n", long(kk), long(j),
                  long(p));
        }
        // Requantised with a multiplier per row (the fused AVX2 tile on full panels, the
        // epilogue on column tails and rows with M >= 1), against apply_multiplier.
        std::vector<k::QuantMultiplier> mult;
        const double span = 255.0 * (full ? 128.0 : 64.0) * std::sqrt(double(kk)) + 1.0;
        for (int64_t j = 0; j < m; ++j)
          mult.push_back(k::quant_multiplier((j == 2 ? 1.5 : 0.7 + 0.3 * double(j)) * 80.0 / span));
        if (m > 4) mult[4] = k::quant_multiplier(1.25);  // M > 1 in the second row block
        // kQgemmNr bytes of slack: a full-width store of the last row's last panel shows there.
        std::vector<uint8_t> out(static_cast<size_t>(m * ldo + k::kQgemmNr), 0xa5);
        o.mult = mult.data();
        o.zo = uint8_t(u8(rng));
        o.out = out.data();
        k::qgemm(pw, x.data(), ldx, n, o, scratch.data(), slots, threaded ? &pool : nullptr);
        for (int64_t j = 0; j < m; ++j) {
          for (int64_t p = 0; p < n; ++p) {
            int32_t v =
                k::apply_multiplier(int32_t(ref[size_t(j * n + p)]), mult[size_t(j)]) + o.zo;
            v = v < 0 ? 0 : (v > 255 ? 255 : v);
            check(out[size_t(j * ldo + p)] == v, "qgemm requantised", long(kk), long(j), long(p));
          }
          for (int64_t p = n; p < ldo; ++p)
            check(out[size_t(j * ldo + p)] == 0xa5, "qgemm wrote bytes past n", long(kk), long(j),
                  long(p));
        }
        for (size_t i = size_t(m * ldo); i < out.size(); ++i)
          check(out[i] == 0xa5, "qgemm wrote bytes past the output", long(kk), long(m), long(n));
      }
    }
  }
}

// The extremes of both operands and zero points (the SDOT kernel reads activations as x - 128;
// the AVX2 kernel's pair sums saturate beyond |w| = 64): every combination of x in {0, 255} and
// w in {-128, 127}, zero points 0, 128 and 255, depths around the quad edge, requantised to both
// clamps and to int32.
static void test_extremes() {
  const int64_t ks[] = {1, 2, 3, 4, 5, 7, 8, 9, 255, 1027};
  const uint8_t xs[] = {0, 255};
  const int8_t ws[] = {-128, 127};
  const uint8_t zas[] = {0, 128, 255};
  for (int64_t kk : ks)
    for (uint8_t xv : xs)
      for (int8_t wv : ws)
        for (uint8_t za : zas) {
          const int64_t m = 5, n = 19;  // a row and column tail
          std::vector<uint8_t> x(static_cast<size_t>(kk * n), xv);
          std::vector<int8_t> w(static_cast<size_t>(m * kk), wv);
          for (int64_t j = 0; j < m; ++j) w[size_t(j * kk)] = int8_t(j % 2 ? -128 : 127);
          x[0] = uint8_t(255 - xv);
          std::vector<int32_t> b(size_t(m), 0);
          k::QGemmWeights pw;
          k::qgemm_pack_weights(w.data(), m, kk, &pw);
          std::vector<uint8_t> scratch(k::qgemm_scratch_bytes(kk));
          std::vector<int32_t> acc(static_cast<size_t>(m * n));
          k::QGemmOutput o;
          o.za = za;
          o.acc = acc.data();
          o.ldo = n;
          k::qgemm(pw, x.data(), n, n, o, scratch.data(), 1, nullptr);
          const std::vector<int64_t> ref = reference(w, x, b, m, kk, n, n, za);
          // Requantised: a multiplier that maps the largest sum to ~2x the byte range, so
          // extreme sums saturate at 0 or 255 and the others land in between.
          std::vector<k::QuantMultiplier> mult(
              size_t(m), k::quant_multiplier(2.0 * 255.0 / (128.0 * 255.0 * double(kk))));
          std::vector<uint8_t> out(static_cast<size_t>(m * n));
          o.mult = mult.data();
          o.zo = 128;
          o.out = out.data();
          k::qgemm(pw, x.data(), n, n, o, scratch.data(), 1, nullptr);
          for (int64_t i = 0; i < m * n; ++i) {
            check(acc[size_t(i)] == ref[size_t(i)], "qgemm int32 at the extremes", long(kk),
                  long(i), long(za));
            int32_t v = k::apply_multiplier(int32_t(ref[size_t(i)]), mult[0]) + 128;
            v = v < 0 ? 0 : (v > 255 ? 255 : v);
            check(out[size_t(i)] == v, "requantised at the extremes", long(kk), long(i), long(za));
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
  // The requantising epilogue: exactly apply_multiplier + zero point, clamped to [0, 255],
  // per-channel multipliers (a big weight range so both clamps are hit).
  const int64_t m = 6, kk = 37, n = 39;  // two full panels and a tail
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  std::vector<uint8_t> x(static_cast<size_t>(kk * n));
  std::vector<int8_t> w(static_cast<size_t>(m * kk));
  for (auto& v : x) v = uint8_t(u8(rng));
  for (auto& v : w) v = int8_t(s8(rng));
  std::vector<int32_t> b = {-50000, 0, 12345, 100, -7, 90000};
  std::vector<k::QuantMultiplier> mult;
  for (int64_t j = 0; j < m; ++j) mult.push_back(k::quant_multiplier(0.0005 * double(j + 1)));
  mult.back() = k::quant_multiplier(1.7);  // M > 1: the scalar epilogue
  k::QGemmWeights pw;
  k::qgemm_pack_weights(w.data(), m, kk, &pw);
  std::vector<uint8_t> scratch(k::qgemm_scratch_bytes(kk)), out(static_cast<size_t>(m * n));
  k::QGemmOutput o;
  o.za = 100;
  o.bias = b.data();
  o.mult = mult.data();
  o.zo = 128;
  o.out = out.data();
  o.ldo = n;
  k::qgemm(pw, x.data(), n, n, o, scratch.data(), 1, nullptr);
  const std::vector<int64_t> ref = reference(w, x, b, m, kk, n, n, 100);
  int low = 0, high = 0;
  for (int64_t j = 0; j < m; ++j)
    for (int64_t p = 0; p < n; ++p) {
      int32_t v = k::apply_multiplier(int32_t(ref[size_t(j * n + p)]), mult[size_t(j)]) + 128;
      v = v < 0 ? 0 : (v > 255 ? 255 : v);
      low += v == 0;
      high += v == 255;
      check(out[size_t(j * n + p)] == v, "requantised output", long(j), long(p), long(v));
    }
  check(low > 0 && high > 0, "both clamps exercised", low, high, 0);
}

// qgemm_gather (an implicit operand, element (kk, p) at base[row[kk] + col[p]]) against qgemm()
// of the same operand copied out, requantised and int32, where the CPU has it.
static void test_gather(std::mt19937& rng, edgepack::ThreadPool& pool) {
  if (!k::qgemm_gather_supported()) return;
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  for (int maxgap : {1, 3, 8})  // panels within 32 bytes, mostly within 64, and up to 128
    for (int64_t kk : {1, 5, 27, 64, 147, 300}) {
      for (int64_t n : {1, 16, 37, 100}) {
        std::uniform_int_distribution<int> gap(0, maxgap);
        const int64_t m = 9, quads = (kk + 3) / 4;
        std::vector<int32_t> col(static_cast<size_t>(n)), row(static_cast<size_t>(quads * 4), 0);
        int32_t c = 0;
        for (int64_t p = 0; p < n; ++p) {  // within a panel: steps of 0..maxgap bytes
          if (p % 16 == 0) c += 50;
          col[size_t(p)] = c;
          c += gap(rng);
        }
        for (int64_t i = 0; i < kk; ++i) row[size_t(i)] = int32_t(i * 7 % 97 + c);
        std::vector<uint8_t> base(static_cast<size_t>(2 * c + 300));
        for (auto& v : base) v = uint8_t(u8(rng));
        std::vector<uint8_t> x(static_cast<size_t>(kk * n));
        for (int64_t i = 0; i < kk; ++i)
          for (int64_t p = 0; p < n; ++p)
            x[size_t(i * n + p)] = base[size_t(row[size_t(i)] + col[size_t(p)])];
        std::vector<int8_t> w(static_cast<size_t>(m * kk));
        for (auto& v : w) v = int8_t(s8(rng));
        std::vector<int32_t> b(static_cast<size_t>(m));
        for (auto& v : b) v = u8(rng) * 40 - 5000;
        std::vector<k::QuantMultiplier> mult(static_cast<size_t>(m), k::quant_multiplier(0.0007));
        k::QGemmWeights pw;
        k::qgemm_pack_weights(w.data(), m, kk, &pw);
        std::vector<uint8_t> scratch(3 * k::qgemm_scratch_bytes(kk) + 64);
        uint8_t* sc = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
        k::QGemmGather g;
        g.base = base.data();
        g.row = row.data();
        g.col = col.data();
        for (bool requant : {true, false}) {
          std::vector<uint8_t> want(static_cast<size_t>(m * n)), got(want.size());
          std::vector<int32_t> want32(want.size()), got32(want.size());
          k::QGemmOutput o;
          o.za = 19;
          o.bias = b.data();
          o.mult = requant ? mult.data() : nullptr;
          o.zo = 7;
          o.ldo = n;
          o.out = want.data();
          o.acc = want32.data();
          k::qgemm(pw, x.data(), n, n, o, sc, 1, nullptr);
          o.out = got.data();
          o.acc = got32.data();
          k::qgemm_gather(pw, g, n, o, sc, 3, &pool);
          check(requant ? want == got : want32 == got32, "qgemm_gather", long(kk), long(n),
                long(maxgap));
        }
      }
    }
}

// The requantising epilogue on every accumulator value where its bytes are not saturated, for
// multipliers with exact .5 ties (2^-k, m0 = 2^30), others (random, near 1/2 and its either
// side) and zero points 0, 3, 128, 255: a depth-1 GEMM of weight 1 over x = 0..255 with biases
// 256 apart sweeps |v M| <= 600 (the AVX-512 VNNI epilogue's float first try, rows that it
// hands to the exact form, both clamps).
static void test_requant_sweep(std::mt19937& rng) {
  std::vector<double> ms = {0.5,     0.25,      1.0 / 8, 1.0 / 64, 1.0 / 512, 1.0 / 1024,
                            0.49999, 0.5000001, 0.3,     0.0041,   0.00113};
  std::uniform_real_distribution<double> lg(-10.0, -1.0);
  for (int i = 0; i < 12; ++i) ms.push_back(std::pow(2.0, lg(rng)));
  const int64_t n = 256, kk = 1;
  std::vector<uint8_t> x(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) x[size_t(p)] = uint8_t(p);
  int64_t ties = 0;
  for (double real : ms) {
    const k::QuantMultiplier qm = k::quant_multiplier(real);
    const auto span = static_cast<int64_t>(600.0 / real) + 512;  // v in [-span, span)
    const int64_t m = (2 * span + n - 1) / n;
    std::vector<int8_t> w(static_cast<size_t>(m), 1);
    std::vector<int32_t> b(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) b[size_t(j)] = int32_t(-span + j * n);
    std::vector<k::QuantMultiplier> mult(static_cast<size_t>(m), qm);
    k::QGemmWeights pw;
    k::qgemm_pack_weights(w.data(), m, kk, &pw);
    std::vector<uint8_t> scratch(k::qgemm_scratch_bytes(kk)), out(static_cast<size_t>(m * n));
    for (int zo : {0, 3, 128, 255}) {
      k::QGemmOutput o;
      o.za = 0;
      o.bias = b.data();
      o.mult = mult.data();
      o.zo = uint8_t(zo);
      o.out = out.data();
      o.ldo = n;
      k::qgemm(pw, x.data(), n, n, o, scratch.data(), 1, nullptr);
      int bad = 0;
      for (int64_t j = 0; j < m; ++j)
        for (int64_t p = 0; p < n; ++p) {
          const int32_t acc = b[size_t(j)] + int32_t(p);
          int32_t v = k::apply_multiplier(acc, qm) + zo;
          v = v < 0 ? 0 : (v > 255 ? 255 : v);
          const double up =
              std::floor(double(acc) * std::ldexp(double(qm.m0), qm.shift - 31) + 0.5) + zo;
          ties += up >= 0 && up <= 255 && int32_t(up) != v;
          if (out[size_t(j * n + p)] != v && bad++ < 3)
            check(false, "requantised sweep", long(acc), long(out[size_t(j * n + p)]), long(v));
        }
      check(bad == 0, "requantised sweep", long(qm.m0), qm.shift, zo);
    }
  }
  check(ties > 0, "requantised sweep: ties exercised", long(ties), 0, 0);
}

// The int8 depthwise plane (qdepthwise.h) against the exact integer reference followed by
// apply_multiplier: kernel sizes, strides, dilations and paddings, odd plane sizes. Each shape
// runs with several requantisations: M with exact .5 ties (0.25), small and near 1, M >= 1 (the
// int16 path), a bias large enough that the AVX-512 VNNI quad path hands the plane over, random
// output zero points. Shapes cover the quad path (kernels up to 4 columns with dilation, stride_w
// 1 and 2, stride_h 1-3, planes narrower and wider than 64 outputs, one row, one column) and the
// int16 path (5x5, 7x7, dilated 3x3).
static void test_depthwise(std::mt19937& rng) {
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127), bias_d(-60000, 60000);
  struct Case {
    int64_t h, w, kh, kw, sh, sw, d, p;
  };
  const Case cases[] = {{7, 9, 3, 3, 1, 1, 1, 1},
                        {13, 11, 3, 3, 2, 2, 1, 1},
                        {12, 17, 5, 5, 1, 1, 1, 2},
                        {16, 15, 3, 3, 2, 2, 2, 2},
                        {5, 4, 3, 3, 1, 1, 1, 0},
                        {9, 33, 7, 7, 2, 2, 1, 3},
                        // 3x3 planes wider than a vector (the AVX2 9-tap path, stride-2 phases)
                        {20, 37, 3, 3, 1, 1, 1, 1},
                        {30, 45, 3, 3, 2, 2, 1, 1},
                        {14, 56, 3, 3, 2, 2, 1, 0},
                        // MobileNetV2's planes: 112 / 56 / 28 / 14 / 7, stride 1 and 2
                        {112, 112, 3, 3, 1, 1, 1, 1},
                        {112, 112, 3, 3, 2, 2, 1, 1},
                        {56, 56, 3, 3, 2, 2, 1, 1},
                        {28, 28, 3, 3, 1, 1, 1, 1},
                        {14, 14, 3, 3, 2, 2, 1, 1},
                        {7, 7, 3, 3, 1, 1, 1, 1},
                        // rows across 64-output blocks, odd widths, one row / column, tiny
                        {9, 70, 3, 3, 1, 1, 1, 1},
                        {11, 131, 3, 3, 2, 2, 1, 1},
                        {6, 127, 3, 3, 2, 2, 1, 0},
                        {1, 1, 3, 3, 1, 1, 1, 1},
                        {1, 200, 3, 3, 1, 1, 1, 1},
                        {150, 1, 3, 3, 2, 2, 1, 1},
                        {3, 3, 3, 3, 1, 1, 1, 0},
                        // other quad kernels: 2 and 4 columns, 5 rows, dilation inside 4 bytes
                        {10, 21, 2, 4, 1, 1, 1, 1},
                        {13, 19, 5, 3, 1, 1, 1, 2},
                        {15, 23, 2, 2, 1, 1, 2, 1},
                        {12, 30, 1, 1, 1, 2, 1, 0},
                        // stride_h != stride_w
                        {17, 20, 3, 3, 2, 1, 1, 1},
                        {17, 20, 3, 3, 1, 2, 1, 1},
                        {19, 25, 3, 3, 3, 1, 1, 1}};
  // (M, weights within +-wmax): ties at .5 need outputs inside 0..255, so the M of 2^-k come with
  // sums of the matching size; M >= 1 runs the int16 path.
  const struct {
    double m;
    int wmax;
  } reqs[] = {{0.003, 128}, {1.0 / 1024, 128}, {0.25, 3},   {1.0 / 3, 4},
              {1.5, 2},     {1.1e-7, 128},     {1e-9, 128}, {0.9, 2}};
  int64_t ties = 0;  // outputs where rounding half away from zero (not up) decided the byte
  int variant = 0;
  for (const Case& c : cases) {
    k::QDepthwiseParams p;
    p.in_h = c.h;
    p.in_w = c.w;
    p.kernel_h = c.kh;
    p.kernel_w = c.kw;
    p.stride_h = c.sh;
    p.stride_w = c.sw;
    p.dilation_h = p.dilation_w = c.d;
    p.pad_top = p.pad_left = c.p;
    p.out_h = (c.h + 2 * c.p - c.d * (c.kh - 1) - 1) / c.sh + 1;
    p.out_w = (c.w + 2 * c.p - c.d * (c.kw - 1) - 1) / c.sw + 1;
    std::vector<uint8_t> in(static_cast<size_t>(c.h * c.w)),
        out(static_cast<size_t>(p.out_h * p.out_w));
    std::vector<int8_t> w(static_cast<size_t>(c.kh * c.kw));
    std::vector<uint8_t> scratch(k::qdepthwise_scratch_bytes(p) + 64);
    for (int round = 0; round < 3; ++round, ++variant) {
      const auto& rq = reqs[size_t(variant) % (sizeof(reqs) / sizeof(reqs[0]))];
      std::uniform_int_distribution<int> wd(-rq.wmax, rq.wmax - 1);
      for (auto& v : in) v = uint8_t(u8(rng));
      for (auto& v : w) v = int8_t(wd(rng));
      if (variant % 5 == 3 && rq.wmax == 128)
        for (auto& v : w) v = int8_t(v < 0 ? -128 : 127);
      const uint8_t za = uint8_t(variant % 5 == 0 ? 0 : u8(rng));
      const uint8_t zo = uint8_t(variant % 4 == 1 ? 0 : 64 + u8(rng) / 2);
      const double real = rq.m;
      // M = 1.1e-7: a bias near 2^31 (the sums stay inside int32); else a random one, +-200
      // with the small weights
      const int64_t most = c.kh * c.kw * 255 * 128 + 1000;
      const int32_t bias = real == 1.1e-7 ? int32_t((int64_t(1) << 31) - 1 - most)
                                          : int32_t(bias_d(rng) / (rq.wmax == 128 ? 1 : 300));
      const k::QuantMultiplier mult = k::quant_multiplier(real);
      out.assign(out.size(), uint8_t(0x5a));
      k::qdepthwise_plane(p, in.data(), za, w.data(), bias, mult, zo, out.data(), scratch.data());
      int64_t bad = 0;
      for (int64_t oy = 0; oy < p.out_h; ++oy)
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          int64_t acc = bias;
          for (int64_t ky = 0; ky < c.kh; ++ky)
            for (int64_t kx = 0; kx < c.kw; ++kx) {
              const int64_t iy = oy * c.sh - c.p + ky * c.d, ix = ox * c.sw - c.p + kx * c.d;
              if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
              acc += int64_t(w[size_t(ky * c.kw + kx)]) * (int64_t(in[size_t(iy * c.w + ix)]) - za);
            }
          int32_t v = k::apply_multiplier(int32_t(acc), mult) + zo;
          v = v < 0 ? 0 : (v > 255 ? 255 : v);
          if (mult.shift <= 0 && mult.shift > -31) {  // rounding half up would differ here
            const int total = 31 - mult.shift;
            int64_t up = ((acc * mult.m0 + (int64_t(1) << (total - 1))) >> total) + zo;
            up = up < 0 ? 0 : (up > 255 ? 255 : up);
            ties += up != v;
          }
          if (out[size_t(oy * p.out_w + ox)] != v && bad++ == 0)
            check(false, "qdepthwise_plane", long(&c - cases), long(oy), long(ox));
        }
      if (bad == 0) check(true, "qdepthwise_plane", 0, 0, 0);
    }
  }
  check(ties > 0, "qdepthwise_plane: ties exercised", long(ties), 0, 0);
}

// lookup_bytes (the table form of QuantizeLinear, kernels/quantize.h) against the plain loop:
// lengths around the 64-byte vector step, a table of every byte value.
static void test_lookup(std::mt19937& rng) {
  std::uniform_int_distribution<int> u8(0, 255);
  std::vector<uint8_t> table(256);
  for (auto& v : table) v = uint8_t(u8(rng));
  for (const int64_t n : {1, 63, 64, 65, 200, 4099}) {
    std::vector<uint8_t> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (auto& v : x) v = uint8_t(u8(rng));
    x[0] = 255;
    k::lookup_bytes(x.data(), y.data(), n, table.data());
    for (int64_t i = 0; i < n; ++i)
      check(y[size_t(i)] == table[x[size_t(i)]], "lookup_bytes", long(n), long(i), 0);
  }
  // Pairs: a 65536-entry table, its last entries included.
  std::vector<uint8_t> pairs(65536);
  for (auto& v : pairs) v = uint8_t(u8(rng));
  for (const int64_t n : {1, 15, 16, 17, 200, 4099}) {
    std::vector<uint8_t> x(static_cast<size_t>(n)), x2(x.size()), y(x.size());
    for (auto& v : x) v = uint8_t(u8(rng));
    for (auto& v : x2) v = uint8_t(u8(rng));
    x[0] = x2[0] = 255;
    x[size_t(n - 1)] = 255;
    x2[size_t(n - 1)] = 254;
    k::lookup_byte_pairs(x.data(), x2.data(), y.data(), n, pairs.data());
    for (int64_t i = 0; i < n; ++i)
      check(y[size_t(i)] == pairs[size_t(x[size_t(i)]) << 8 | x2[size_t(i)]], "lookup_byte_pairs",
            long(n), long(i), 0);
  }
}

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // FAIL lines survive a later crash
  std::mt19937 rng(1234);
  std::printf("qgemm: %s\n", k::qgemm_isa());
  edgepack::ThreadPool pool(3);
  test_accumulation(rng, pool);
  test_extremes();
  test_requantize(rng);
  test_requant_sweep(rng);
  test_gather(rng, pool);
  test_depthwise(rng);
  test_lookup(rng);
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
