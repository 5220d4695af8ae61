// SPDX-License-Identifier: Apache-2.0
// Checks the layout and transformer kernels of kernels/vector_math.h against naive references:
// strided_copy (Transpose / Slice views of every rank, negative steps, element sizes 1..8 and
// odd ones), GELU (erf and tanh forms, against libm in double), LayerNorm rows (odd lengths, a
// large mean) and across channels, the GEMV (odd sizes, 1..4 threads), and the row kernels of
// Resize and the pools (upsample_row, gather_row, max_taps_f32, sum_f32), the cheap activations
// (unary_f32) and the broadcast arithmetic (binary_f32, binary_f32_rows), and exp_approx (the e^x
// of SiLU, Sigmoid, GELU and Softmax) over its whole range. Prints one line per failure; exit
// status 1 if any.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "runtime/kernels/activation.h"
#include "runtime/kernels/threadpool.h"
#include "runtime/kernels/vector_math.h"

using edgepack::ThreadPool;
namespace k = edgepack::kernels;

namespace {

int g_failures = 0;
int g_checks = 0;
std::mt19937 g_rng(4321);

void fail(const char* what, const std::vector<int64_t>& shape, int threads) {
  ++g_failures;
  std::printf("FAIL %s shape", what);
  for (int64_t d : shape) std::printf(" %ld", long(d));
  std::printf(" threads %d\n", threads);
}

// Naive strided gather, element by element.
std::vector<uint8_t> naive_copy(const uint8_t* src, const std::vector<int64_t>& shape,
                                const std::vector<int64_t>& strides, size_t es) {
  const int r = int(shape.size());
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<uint8_t> out(size_t(n) * es);
  std::vector<int64_t> idx(size_t(r), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int d = 0; d < r; ++d) off += idx[size_t(d)] * strides[size_t(d)];
    std::memcpy(out.data() + size_t(i) * es, src + off * int64_t(es), es);
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < shape[size_t(d)]) break;
      idx[size_t(d)] = 0;
    }
  }
  return out;
}

void check_copy(const char* what, const std::vector<uint8_t>& buf, int64_t base,
                const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, size_t es,
                ThreadPool* pool) {
  const std::vector<uint8_t> want = naive_copy(buf.data() + base * int64_t(es), shape, strides, es);
  std::vector<uint8_t> got(want.size() + 16, 0xAB);
  k::strided_copy(buf.data() + base * int64_t(es), shape.data(), strides.data(), int(shape.size()),
                  es, got.data(), pool);
  ++g_checks;
  bool guard = true;
  for (size_t i = want.size(); i < got.size(); ++i) guard = guard && got[i] == 0xAB;
  if (!guard || std::memcmp(got.data(), want.data(), want.size()) != 0)
    fail(what, shape, pool ? pool->threads() : 1);
}

std::vector<int64_t> row_major(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

void test_transposes(ThreadPool* pools[4]) {
  // Shapes of the real models (channel shuffle, attention heads, NCHW <-> NHWC) and odd ones.
  const struct {
    std::vector<int64_t> shape;
    std::vector<int> perm;
  } cases[] = {
      {{1, 2, 58, 28, 28}, {0, 2, 1, 3, 4}},  // ShuffleNet channel shuffle
      {{1, 197, 3, 3, 64}, {2, 0, 3, 1, 4}},  // ViT q/k/v split
      {{1, 40, 56, 56}, {0, 2, 3, 1}},        // ConvNeXt NCHW -> NHWC
      {{1, 56, 56, 40}, {0, 3, 1, 2}},        // and back
      {{4, 4, 256, 16}, {0, 1, 3, 2}},        // K^T
      {{3, 5, 7}, {2, 1, 0}},                 // no contiguous dimension left
      {{17, 33}, {1, 0}},                     // tile tails both ways
      {{1, 1, 5}, {2, 1, 0}},                 // unit dimensions only around
      {{2, 3, 1, 4, 5, 1, 2, 3}, {7, 0, 6, 2, 5, 1, 4, 3}},
      {{300, 3}, {1, 0}},
      {{1024, 16, 2, 2}, {0, 2, 1, 3}},  // MobileViT unfold: contiguous rows of 2 elements
      {{640, 2, 8, 2}, {0, 2, 1, 3}},    // and fold
      {{6, 5, 4}, {1, 0, 2}},            // rows of 4
  };
  for (const auto& c : cases) {
    int64_t n = 1;
    for (int64_t d : c.shape) n *= d;
    for (size_t es : {size_t(1), size_t(2), size_t(4), size_t(8), size_t(3)}) {
      std::vector<uint8_t> buf(size_t(n) * es);
      for (auto& b : buf) b = uint8_t(g_rng());
      const std::vector<int64_t> in_stride = row_major(c.shape);
      std::vector<int64_t> shape, strides;
      for (int p : c.perm) {
        shape.push_back(c.shape[size_t(p)]);
        strides.push_back(in_stride[size_t(p)]);
      }
      for (int t = 0; t < 4; ++t)
        check_copy("strided_copy transpose", buf, 0, shape, strides, es,
                   t == 0 ? nullptr : pools[t]);
    }
  }
}

void test_slices(ThreadPool* pools[4]) {
  // (input shape, starts, steps, output shape): channel halves, strided and reversed views.
  const struct {
    std::vector<int64_t> in, starts, steps, out;
  } cases[] = {
      {{1, 232, 14, 14}, {0, 116, 0, 0}, {1, 1, 1, 1}, {1, 116, 14, 14}},
      {{1, 64, 128, 128}, {0, 0, 0, 0}, {1, 1, 1, 1}, {1, 64, 128, 128}},  // whole: long memcpy
      {{5, 6, 4}, {4, 1, 3}, {-1, 2, -1}, {3, 3, 4}},
      {{8, 9, 10}, {1, 0, 2}, {2, 3, 3}, {4, 3, 3}},
      {{300, 257}, {3, 1}, {1, 2}, {290, 128}},
      {{2, 3}, {1, 2}, {1, 1}, {1, 1}},
      {{7, 5}, {0, 1}, {1, 1}, {7, 2}},              // rows of 2 whose stride is odd
      {{5, 6, 2}, {0, 1, 0}, {1, 1, 1}, {5, 4, 2}},  // rows of 2 at an offset of 2
  };
  for (const auto& c : cases) {
    int64_t n = 1;
    for (int64_t d : c.in) n *= d;
    const std::vector<int64_t> in_stride = row_major(c.in);
    int64_t base = 0;
    std::vector<int64_t> strides;
    for (size_t d = 0; d < c.in.size(); ++d) {
      base += c.starts[d] * in_stride[d];
      strides.push_back(c.steps[d] * in_stride[d]);
    }
    for (size_t es : {size_t(1), size_t(4), size_t(8)}) {
      std::vector<uint8_t> buf(size_t(n) * es);
      for (auto& b : buf) b = uint8_t(g_rng());
      for (int t = 0; t < 4; ++t)
        check_copy("strided_copy slice", buf, base, c.out, strides, es,
                   t == 0 ? nullptr : pools[t]);
    }
  }
}

// exp_approx against libm in double over its clamp range, every 0.001: relative error below 3e-7
// (the degree-5 polynomial's own is 2.1e-7; 2.0e-7 with FMA, 2.3e-7 without, on x86 and aarch64).
void test_exp() {
  double worst = 0.0;
  float at = 0.0f;
  for (int i = -87300; i <= 88300; ++i) {
    const float x = float(i) * 1e-3f;
    const double want = std::exp(double(x));
    const double err = std::fabs(k::exp_approx(x) - want) / want;
    if (err > worst) {
      worst = err;
      at = x;
    }
  }
  ++g_checks;
  if (!(worst < 3e-7)) {
    ++g_failures;
    std::printf("FAIL exp_approx: relative error %.3g at %g\n", worst, double(at));
  }
}

void test_gelu() {
  std::vector<float> x;
  for (int i = -1200; i <= 1200; ++i) x.push_back(float(i) * 0.01f);
  for (float v : {1e-7f, -1e-6f, 4e-3f, -9e-3f, 0.0f, 30.0f, -30.0f, 100.0f, -100.0f})
    x.push_back(v);
  std::vector<float> y(x.size());
  for (bool tanh_form : {false, true}) {
    k::gelu_f32(x.data(), y.data(), int64_t(x.size()), tanh_form);
    double worst = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double v = x[i];
      const double want =
          tanh_form ? 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
                    : 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
      // absolute near 0, relative for large |x| (float rounding of x itself)
      worst = std::max(worst, std::fabs(y[i] - want) / std::max(1.0, std::fabs(want)));
    }
    ++g_checks;
    if (!(worst < 1e-6)) {
      ++g_failures;
      std::printf("FAIL gelu_f32 %s: error %.3g\n", tanh_form ? "tanh" : "erf", worst);
    }
  }
}

void test_layernorm() {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t n : {1, 7, 8, 9, 40, 192, 257}) {
    std::vector<float> x(static_cast<size_t>(n)), s(x), b(x), y(x);
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = 50.0f + 3.0f * nd(g_rng);  // a mean far from 0: the centred second pass matters
      s[i] = nd(g_rng);
      b[i] = nd(g_rng);
    }
    for (bool with_bias : {true, false}) {
      float mean = 0.0f, inv = 0.0f;
      k::layernorm_row_f32(x.data(), y.data(), n, s.data(), with_bias ? b.data() : nullptr, 1e-5f,
                           &mean, &inv);
      double m = 0.0, v = 0.0;
      for (float t : x) m += t;
      m /= double(n);
      for (float t : x) v += (t - m) * (t - m);
      const double iv = 1.0 / std::sqrt(v / double(n) + 1e-5);
      double worst = std::fabs(mean - m) / 50.0 + std::fabs(inv - iv) / iv;
      for (size_t i = 0; i < x.size(); ++i) {
        const double want = (x[i] - m) * iv * s[i] + (with_bias ? b[i] : 0.0);
        worst = std::max(worst, std::fabs(y[i] - want));
      }
      ++g_checks;
      if (!(worst < 2e-5)) {
        ++g_failures;
        std::printf("FAIL layernorm_row_f32 n %ld bias %d: error %.3g\n", long(n), int(with_bias),
                    worst);
      }
    }
  }
}

// layernorm_channels_f32: channels-first planes (a position's values a plane apart), position
// ranges not starting at 0 and crossing the 128-position block, 1-320 channels, a large mean,
// in place and not, with and without B.
void test_layernorm_channels() {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  struct Case {
    int64_t channels, plane, p0, p1;
  };
  for (const Case& c : {Case{40, 196, 0, 196}, Case{1, 9, 0, 9}, Case{3, 300, 5, 290},
                        Case{320, 49, 0, 49}, Case{24, 260, 130, 260}, Case{7, 1, 0, 1}}) {
    const size_t n = size_t(c.channels * c.plane);
    std::vector<float> x(n), s(size_t(c.channels)), b(s.size());
    for (auto& v : x) v = 50.0f + 3.0f * nd(g_rng);
    for (size_t i = 0; i < s.size(); ++i) {
      s[i] = nd(g_rng);
      b[i] = nd(g_rng);
    }
    for (int variant = 0; variant < 3; ++variant) {  // bias, no bias, in place
      const bool with_bias = variant != 1;
      std::vector<float> y = variant == 2 ? x : std::vector<float>(n, -7.0f);
      const float* src = variant == 2 ? y.data() : x.data();
      k::layernorm_channels_f32(src, y.data(), c.channels, c.plane, c.p0, c.p1, s.data(),
                                with_bias ? b.data() : nullptr, 1e-5f);
      double worst = 0.0;
      for (int64_t p = 0; p < c.plane; ++p) {
        double m = 0.0, v = 0.0;
        for (int64_t ch = 0; ch < c.channels; ++ch) m += x[size_t(ch * c.plane + p)];
        m /= double(c.channels);
        for (int64_t ch = 0; ch < c.channels; ++ch) {
          const double d = x[size_t(ch * c.plane + p)] - m;
          v += d * d;
        }
        const double iv = 1.0 / std::sqrt(v / double(c.channels) + 1e-5);
        for (int64_t ch = 0; ch < c.channels; ++ch) {
          const size_t i = size_t(ch * c.plane + p);
          const bool inside = p >= c.p0 && p < c.p1;
          const double want =
              inside ? (x[i] - m) * iv * s[size_t(ch)] + (with_bias ? b[size_t(ch)] : 0.0)
                     : (variant == 2 ? x[i] : -7.0);
          worst = std::max(worst, std::fabs(y[i] - want));
        }
      }
      ++g_checks;
      if (!(worst < 2e-5)) {
        ++g_failures;
        std::printf("FAIL layernorm_channels_f32 %ld x %ld [%ld, %ld) variant %d: error %.3g\n",
                    long(c.channels), long(c.plane), long(c.p0), long(c.p1), variant, worst);
      }
    }
  }
}

void test_gemv(ThreadPool* pools[4]) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t sizes[][2] = {{1000, 1024}, {1, 1}, {3, 5}, {7, 9}, {13, 300}, {1001, 1280}};
  for (const auto& nk : sizes) {
    const int64_t n = nk[0], kk = nk[1];
    std::vector<float> w(static_cast<size_t>(n * kk)), x(static_cast<size_t>(kk));
    std::vector<float> y(static_cast<size_t>(n) + 1, 7.0f);
    for (auto& v : w) v = u(g_rng);
    for (auto& v : x) v = u(g_rng);
    for (int t = 0; t < 4; ++t) {
      k::gemv_f32(w.data(), x.data(), y.data(), n, kk, 0.5f, t == 0 ? nullptr : pools[t]);
      double worst = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        double want = 0.0;
        for (int64_t i = 0; i < kk; ++i) want += double(w[size_t(j * kk + i)]) * x[size_t(i)];
        worst = std::max(worst, std::fabs(y[size_t(j)] - 0.5 * want));
      }
      ++g_checks;
      if (!(worst < 1e-4) || y[size_t(n)] != 7.0f) {
        ++g_failures;
        std::printf("FAIL gemv_f32 n %ld k %ld threads %d: error %.3g\n", long(n), long(kk), t + 1,
                    worst);
      }
    }
  }
}

// gemv_rows_f32 (B used in place, k rows of n) against a naive loop in double: odd sizes, sizes
// across the 16-column blocks and the 4096-column tiles, inline and on 2..4 threads; y[n] (a
// guard) must stay.
void test_gemv_rows(ThreadPool* pools[4]) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t sizes[][2] = {{1, 1},     {1, 7},      {3, 5},    {5, 3},     {7, 9},
                              {13, 17},   {300, 13},   {768, 33}, {1024, 16}, {33, 1025},
                              {17, 2049}, {768, 3000}, {9, 4113}};
  for (const auto& kn : sizes) {
    const int64_t kk = kn[0], n = kn[1];
    std::vector<float> b(static_cast<size_t>(kk * n)), x(static_cast<size_t>(kk));
    for (auto& v : b) v = u(g_rng);
    for (auto& v : x) v = u(g_rng);
    for (int t = 0; t < 4; ++t) {
      std::vector<float> y(static_cast<size_t>(n) + 1, 7.0f);
      k::gemv_rows_f32(b.data(), x.data(), y.data(), kk, n, 0.5f, t == 0 ? nullptr : pools[t]);
      double worst = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        double want = 0.0;
        for (int64_t i = 0; i < kk; ++i) want += double(x[size_t(i)]) * b[size_t(i * n + j)];
        worst = std::max(worst, std::fabs(y[size_t(j)] - 0.5 * want));
      }
      ++g_checks;
      if (!(worst < 1e-4) || y[size_t(n)] != 7.0f) {
        ++g_failures;
        std::printf("FAIL gemv_rows_f32 k %ld n %ld threads %d: error %.3g\n", long(kk), long(n),
                    t + 1, worst);
      }
    }
  }
}

// upsample_row and gather_row against an element-by-element copy: factors 1..6 (the fixed
// 2..4 and the generic loop), element sizes 1, 2, 4, 8 and 3 (byte by byte), row lengths around
// the vector widths; a guard byte after each row must stay.
void test_nearest_rows() {
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t es : {size_t(1), size_t(2), size_t(3), size_t(4), size_t(8)}) {
    for (int64_t n : {1, 3, 4, 7, 8, 9, 16, 17, 33, 80}) {
      std::vector<uint8_t> x(size_t(n) * es);
      for (auto& v : x) v = uint8_t(byte(g_rng));
      for (int64_t f = 1; f <= 6; ++f) {
        const int64_t m = n * f;
        std::vector<uint8_t> got(size_t(m) * es + 1, 0xAB), want(size_t(m) * es);
        for (int64_t o = 0; o < m; ++o)
          std::memcpy(want.data() + size_t(o) * es, x.data() + size_t(o / f) * es, es);
        k::upsample_row(x.data(), n, f, got.data(), es);
        ++g_checks;
        if (std::memcmp(got.data(), want.data(), want.size()) != 0 || got.back() != 0xAB) {
          ++g_failures;
          std::printf("FAIL upsample_row es %zu n %ld factor %ld\n", es, long(n), long(f));
        }
      }
      // A gather: every other element backwards, then the first one repeated.
      std::vector<int64_t> idx;
      for (int64_t i = n - 1; i >= 0; i -= 2) idx.push_back(i);
      for (int i = 0; i < 5; ++i) idx.push_back(0);
      const int64_t m = int64_t(idx.size());
      std::vector<uint8_t> got(size_t(m) * es + 1, 0xAB), want(size_t(m) * es);
      for (int64_t o = 0; o < m; ++o)
        std::memcpy(want.data() + size_t(o) * es, x.data() + size_t(idx[size_t(o)]) * es, es);
      k::gather_row(x.data(), idx.data(), got.data(), m, es);
      ++g_checks;
      if (std::memcmp(got.data(), want.data(), want.size()) != 0 || got.back() != 0xAB) {
        ++g_failures;
        std::printf("FAIL gather_row es %zu n %ld\n", es, long(n));
      }
    }
  }
}

// max_taps_f32 against the scalar loop it replaces (std::max from -inf over the taps, so a NaN
// in x is passed over): taps 1..8 (fixed 2..5, per-tap otherwise), steps 1, 2 (a dilation) and a
// row width, strides 1, 2 (the fixed kernels) and 3, lengths around the vector widths, with -inf,
// +inf and NaN among the values.
void test_max_taps() {
  std::uniform_real_distribution<float> u(-5.0f, 5.0f);
  for (int taps = 1; taps <= 8; ++taps) {
    for (int64_t step : {1, 2, 13}) {
      for (int64_t stride : {1, 2, 3}) {
        for (int64_t n : {1, 5, 8, 15, 16, 31, 100}) {
          std::vector<float> x(size_t((n - 1) * stride + (taps - 1) * step + 1));
          for (auto& v : x) v = u(g_rng);
          x[x.size() / 2] = -INFINITY;
          x[x.size() / 3] = INFINITY;
          if (x.size() > 4) x[x.size() / 4] = NAN;
          std::vector<float> got(size_t(n) + 1, 7.0f);
          k::max_taps_f32(x.data(), n, taps, step, stride, got.data());
          bool ok = got[size_t(n)] == 7.0f;
          for (int64_t i = 0; i < n && ok; ++i) {
            float want = -INFINITY;
            for (int j = 0; j < taps; ++j) want = std::max(want, x[size_t(i * stride + j * step)]);
            ok = std::memcmp(&want, &got[size_t(i)], sizeof(float)) == 0;
          }
          ++g_checks;
          if (!ok) {
            ++g_failures;
            std::printf("FAIL max_taps_f32 taps %d step %ld stride %ld n %ld\n", taps, long(step),
                        long(stride), long(n));
          }
        }
      }
    }
  }
}

// unary_f32 against each op's scalar expression in double: values around the clamps' corners,
// infinities and NaN (NaN must stay NaN), lengths around the vector widths.
void test_unary() {
  std::vector<float> x = {0.0f, -0.0f, 3.0f,     -3.0f,     2.5f, -2.5f,
                          6.0f, -6.0f, INFINITY, -INFINITY, NAN};
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  while (x.size() < 77) x.push_back(u(g_rng));
  const float alpha = 0.2f, beta = 0.5f;
  auto want = [&](k::UnaryOp op, double v) -> double {
    switch (op) {
      case k::UnaryOp::kRelu:
        return v > 0 ? v : 0;
      case k::UnaryOp::kLeakyRelu:
        return v >= 0 ? v : alpha * v;
      case k::UnaryOp::kClip:  // min = alpha, max = beta
        return std::isnan(v) ? v : std::min(std::max(v, double(alpha)), double(beta));
      case k::UnaryOp::kHardSigmoid:
        return std::isnan(v) ? v : std::min(std::max(alpha * v + beta, 0.0), 1.0);
      case k::UnaryOp::kHardSwish:
        return std::isnan(v) ? v : v * std::min(std::max(v / 6 + 0.5, 0.0), 1.0);
      case k::UnaryOp::kNeg:
        return -v;
      case k::UnaryOp::kAbs:
        return std::fabs(v);
    }
    return 0;
  };
  for (int op = 0; op <= int(k::UnaryOp::kAbs); ++op) {
    for (int64_t n : {1, 7, 8, 9, 17, 77}) {
      std::vector<float> y(size_t(n) + 1, 7.0f);
      k::unary_f32(k::UnaryOp(op), x.data(), y.data(), n, alpha, beta);
      bool ok = y[size_t(n)] == 7.0f;
      for (int64_t i = 0; i < n && ok; ++i) {
        const double w = want(k::UnaryOp(op), x[size_t(i)]);
        const double g = y[size_t(i)];
        ok = std::isnan(w) ? std::isnan(g)
                           : (g == w || std::fabs(g - w) <= 1e-6 * std::max(1.0, std::fabs(w)));
      }
      ++g_checks;
      if (!ok) {
        ++g_failures;
        std::printf("FAIL unary_f32 op %d n %ld\n", op, long(n));
      }
    }
  }
}

// sum_f32 against a double sum.
void test_sum() {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t n : {0, 1, 7, 8, 9, 49, 196, 3136, 10001}) {
    std::vector<float> x(static_cast<size_t>(n));
    double want = 0.0;
    for (auto& v : x) {
      v = u(g_rng);
      want += v;
    }
    const double got = k::sum_f32(x.data(), n);
    ++g_checks;
    if (!(std::fabs(got - want) <= 1e-6 * std::max(1.0, double(n)))) {
      ++g_failures;
      std::printf("FAIL sum_f32 n %ld: %.9g vs %.9g\n", long(n), got, want);
    }
  }
}

// binary_f32 and binary_f32_rows for every op and stride pattern (a scalar, a row-broadcast
// column, both full), rows of lengths around the vector widths, against the plain expression;
// the output guard past the last row must stay untouched.
void test_binary() {
  using k::BinaryOp;
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  auto ref = [](BinaryOp op, float a, float b) {
    switch (op) {
      case BinaryOp::kAdd:
        return a + b;
      case BinaryOp::kSub:
        return a - b;
      case BinaryOp::kMul:
        return a * b;
      case BinaryOp::kDiv:
        return a / b;
      case BinaryOp::kAddRelu:
        return std::max(a + b, 0.0f);
    }
    return 0.0f;
  };
  for (BinaryOp op :
       {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv, BinaryOp::kAddRelu})
    for (int64_t rows : {1, 3, 1500})
      for (int64_t n : {1, 2, 4, 7, 8, 13, 33})
        for (int pattern = 0; pattern < 4; ++pattern) {  // bit 0: a full, bit 1: b full
          const int64_t sa = pattern & 1, sb = (pattern >> 1) & 1;
          // a row stride of n (full) or 1 (one value per row), b likewise
          const int64_t ra = sa ? n : 1, rb = sb ? n : 1;
          std::vector<float> a(size_t(rows * n)), b(size_t(rows * n)), got(size_t(rows * n + 4));
          for (auto& v : a) v = u(g_rng);
          for (auto& v : b) v = u(g_rng) + 3.0f;  // no division by ~0
          std::fill(got.begin(), got.end(), 7.5f);
          k::binary_f32_rows(op, a.data(), ra, sa, b.data(), rb, sb, got.data(), rows, n);
          bool ok = true;
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < n; ++i) {
              const float want = ref(op, a[size_t(r * ra + i * sa)], b[size_t(r * rb + i * sb)]);
              ok = ok && std::fabs(got[size_t(r * n + i)] - want) <= 1e-6f * std::fabs(want);
            }
          for (size_t i = size_t(rows * n); i < got.size(); ++i) ok = ok && got[i] == 7.5f;
          if (rows == 1) {  // the one-row entry point gives the same floats
            std::vector<float> one(static_cast<size_t>(n));
            k::binary_f32(op, a.data(), sa, b.data(), sb, one.data(), n);
            ok = ok && std::memcmp(one.data(), got.data(), size_t(n) * sizeof(float)) == 0;
          }
          ++g_checks;
          if (!ok) {
            ++g_failures;
            std::printf("FAIL binary_f32_rows op %d rows %ld n %ld pattern %d\n", int(op),
                        long(rows), long(n), pattern);
          }
        }
}

}  // namespace

int main() {
  ThreadPool p1(1), p2(2), p3(3), p4(4);
  ThreadPool* pools[4] = {&p1, &p2, &p3, &p4};
  test_transposes(pools);
  test_slices(pools);
  test_exp();
  test_gelu();
  test_layernorm();
  test_layernorm_channels();
  test_gemv(pools);
  test_gemv_rows(pools);
  test_nearest_rows();
  test_max_taps();
  test_sum();
  test_unary();
  test_binary();
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
