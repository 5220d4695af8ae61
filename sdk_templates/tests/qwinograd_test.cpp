// SPDX-License-Identifier: Apache-2.0
// The int8 Winograd F(2x2, 3x3) (runtime/kernels/qwinograd.h) against the exact reference: the
// direct convolution in int64 plus the bias, requantised by apply_multiplier() (qgemm.h), which
// is what the im2col + qgemm path writes; every output byte must be equal. Shapes around every
// tile, panel, band and channel-pair edge (odd sizes, C and M off 2 / the micro-kernel's rows,
// pads 0..2 and asymmetric), full-range, 7-bit and extreme (+-127 / -128) weights against
// extreme inputs, zero points 0 / 128 / 255, per-row multipliers below and above 1; inline and
// on 3 threads; run() calls no operator new. Prints "qwinograd: <isa>" and "<N> checks, <F>
// failures"; exits non-zero on any failure.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/qwinograd.h"
#include "runtime/kernels/threadpool.h"

namespace k = edgepack::kernels;

static int g_checks = 0, g_failures = 0;

// Every operator new of the process (run() must allocate nothing: the op's contract, op.h).
static std::atomic<long> g_news{0};
void* operator new(std::size_t n) {
  ++g_news;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

struct Case {
  int64_t c, m, h, w, pt, pl, pb, pr;
};

enum class Weights { kFull, kSeven, kExtreme };

static void run_case(std::mt19937& rng, const Case& cs, Weights wk, uint8_t za,
                     edgepack::ThreadPool* pool, int threads) {
  const int64_t oh = cs.h + cs.pt + cs.pb - 2, ow = cs.w + cs.pl + cs.pr - 2;
  std::uniform_int_distribution<int> u8(0, 255), s8(-127, 127), s7(-64, 64), coin(0, 1);
  std::uniform_int_distribution<int32_t> bias_d(-200000, 200000);
  std::vector<int8_t> w(static_cast<size_t>(cs.m * cs.c * 9));
  for (auto& v : w) {
    if (wk == Weights::kFull) v = static_cast<int8_t>(s8(rng));
    if (wk == Weights::kSeven) v = static_cast<int8_t>(s7(rng));
    if (wk == Weights::kExtreme) v = static_cast<int8_t>(coin(rng) != 0 ? 127 : -128);
  }
  std::vector<uint8_t> x(static_cast<size_t>(cs.c * cs.h * cs.w));
  // Extreme weights meet extreme inputs (0 or 255: |x - za| up to 255, the largest |V|).
  for (auto& v : x)
    v = static_cast<uint8_t>(wk == Weights::kExtreme ? (coin(rng) != 0 ? 255 : 0) : u8(rng));
  std::vector<int32_t> bias(static_cast<size_t>(cs.m));
  std::vector<k::QuantMultiplier> mult(static_cast<size_t>(cs.m));
  std::uniform_real_distribution<double> scale(-14.0, 0.5);  // log2: some rows M > 1
  for (int64_t j = 0; j < cs.m; ++j) {
    bias[size_t(j)] = bias_d(rng);
    mult[size_t(j)] = k::quant_multiplier(std::exp2(scale(rng)));
  }
  const uint8_t zo = static_cast<uint8_t>(u8(rng));
  if (!k::QWinograd3x3::exact_for(w.data(), cs.m, cs.c)) {
    std::printf("FAIL exact_for refused a small case (c %ld)\n", long(cs.c));
    ++g_failures;
    return;
  }
  k::QWinograd3x3 wino;
  k::QWinograd3x3::Shape s;
  s.in_channels = cs.c;
  s.out_channels = cs.m;
  s.in_h = cs.h;
  s.in_w = cs.w;
  s.out_h = oh;
  s.out_w = ow;
  s.pad_top = cs.pt;
  s.pad_left = cs.pl;
  k::QWinograd3x3::Quant q;
  q.x_zero = za;
  q.y_zero = zo;
  q.bias = bias.data();
  q.mult = mult.data();
  wino.prepare(s, w.data(), q, threads);
  std::vector<uint8_t> scratch(wino.scratch_bytes() + 64);
  auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) &
                                             ~uintptr_t(63));
  std::vector<uint8_t> out(static_cast<size_t>(cs.m * oh * ow), 0x5a);
  const long news = g_news;
  wino.run(x.data(), out.data(), aligned, pool);
  ++g_checks;
  if (g_news != news) {
    ++g_failures;
    std::printf("FAIL run() allocated (%ld operator new)\n", g_news - news);
  }
  int bad = 0;
  for (int64_t j = 0; j < cs.m; ++j)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        int64_t acc = bias[size_t(j)];
        for (int64_t c = 0; c < cs.c; ++c)
          for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx) {
              const int64_t iy = oy + ky - cs.pt, ix = ox + kx - cs.pl;
              if (iy < 0 || iy >= cs.h || ix < 0 || ix >= cs.w) continue;
              acc += int64_t(w[size_t(((j * cs.c + c) * 3 + ky) * 3 + kx)]) *
                     (int64_t(x[size_t((c * cs.h + iy) * cs.w + ix)]) - za);
            }
        const int64_t y =
            zo + int64_t(k::apply_multiplier(static_cast<int32_t>(acc), mult[size_t(j)]));
        const auto want = static_cast<uint8_t>(std::min<int64_t>(255, std::max<int64_t>(0, y)));
        const uint8_t got = out[size_t((j * oh + oy) * ow + ox)];
        ++g_checks;
        if (got != want) {
          ++g_failures;
          if (++bad <= 3 && g_failures < 20)
            std::printf(
                "FAIL c %ld m %ld %ldx%ld pads %ld %ld %ld %ld w %d za %d threads %d: "
                "[%ld][%ld][%ld] %d, want %d\n",
                long(cs.c), long(cs.m), long(cs.h), long(cs.w), long(cs.pt), long(cs.pl),
                long(cs.pb), long(cs.pr), int(wk), int(za), threads, long(j), long(oy), long(ox),
                int(got), int(want));
        }
      }
}

int main() {
  std::printf("qwinograd: %s\n", k::qwinograd_isa());
  std::mt19937 rng(13);
  edgepack::ThreadPool pool(3);
  const Case cases[] = {
      {1, 1, 3, 3, 0, 0, 0, 0},     {2, 3, 4, 4, 1, 1, 1, 1},     {3, 5, 5, 7, 1, 1, 1, 1},
      {5, 7, 9, 6, 0, 0, 0, 0},     {8, 6, 7, 7, 1, 1, 1, 1},     {9, 13, 13, 11, 1, 1, 1, 1},
      {16, 12, 14, 14, 1, 1, 1, 1}, {17, 19, 15, 17, 2, 1, 0, 2}, {4, 4, 3, 40, 1, 0, 1, 0},
      {33, 25, 20, 23, 0, 1, 1, 0}, {64, 64, 9, 9, 1, 1, 1, 1},   {7, 11, 30, 31, 1, 1, 1, 1},
      {130, 10, 6, 6, 1, 1, 1, 1},  {600, 8, 9, 12, 1, 1, 1, 1},  // bands of one panel
      {12, 18, 57, 33, 1, 1, 1, 1},                               // several bands of many panels
  };
  const uint8_t zas[] = {0, 128, 255, 117};
  int variant = 0;
  for (const Case& cs : cases) {
    for (Weights wk : {Weights::kFull, Weights::kSeven, Weights::kExtreme}) {
      const uint8_t za = zas[variant % 4];
      const bool threaded = variant % 2 == 1;
      ++variant;
      run_case(rng, cs, wk, za, threaded ? &pool : nullptr, threaded ? 3 : 1);
    }
  }
  // The exactness bound: 4 * 255 * sum |w| of a row below 2^31 (1842 channels of +-127 are not).
  std::vector<int8_t> big(size_t(1842) * 9, 127);
  ++g_checks;
  if (k::QWinograd3x3::exact_for(big.data(), 1, 1842) ||
      !k::QWinograd3x3::exact_for(big.data(), 1, 1841)) {
    ++g_failures;
    std::printf("FAIL exact_for bound\n");
  }
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
