// SPDX-License-Identifier: Apache-2.0
// Checks every optimised CPU kernel against a naive reference over many shapes: GEMM (odd sizes,
// tails, M/N/K = 1, transposes, leading dimensions, alpha/beta, bias, every activation, packed
// and unpacked operands), Conv and ConvTranspose (strides, dilations, groups, depthwise of every
// kernel size, stride and dilation, asymmetric pads), each with 1..4 threads. Prints one line per
// failure; exit status 1 if any.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "runtime/kernels/conv.h"
#include "runtime/kernels/conv_transpose.h"
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/threadpool.h"
#include "runtime/kernels/vector_math.h"

using edgepack::ThreadPool;
namespace k = edgepack::kernels;

namespace {

int g_failures = 0;
int g_checks = 0;
std::mt19937 g_rng(1234);

std::vector<float> random_vec(size_t n) {
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g_rng);
  return v;
}

// Aligned scratch as the arena gives it.
struct Scratch {
  std::vector<float> buf;
  float* get(size_t bytes) {
    buf.assign(bytes / sizeof(float) + 32, std::nanf(""));
    return buf.data();
  }
};

k::Epilogue make_epilogue(int act, const float* bias, bool per_row) {
  k::Epilogue ep;
  ep.bias = bias;
  ep.bias_per_row = per_row;
  ep.act = static_cast<k::Activation>(act);
  ep.clip_min = -0.25f;
  ep.clip_max = 0.5f;
  ep.alpha = 0.3f;  // HardSigmoid: not the defaults, so a dropped value shows
  ep.beta = 0.4f;
  return ep;
}

// Compares with a tolerance scaled by the magnitude of the summed products.
void compare(const std::string& what, const std::vector<float>& got, const std::vector<double>& ref,
             const std::vector<double>& mag) {
  ++g_checks;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double tol = 1e-5 * (mag[i] + 1.0);
    if (!(std::fabs(got[i] - ref[i]) <= tol)) {
      ++g_failures;
      std::printf("FAIL %s: index %zu got %.7g want %.7g\n", what.c_str(), i,
                  static_cast<double>(got[i]), ref[i]);
      return;
    }
  }
}

constexpr int kActivations =
    6;  // k::Activation values: none, relu, clip, hardswish, hardsigmoid, silu

// Exact (double) activations, independent of the kernels' approximations.
double activate_ref(const k::Epilogue& ep, double x) {
  switch (ep.act) {
    case k::Activation::kHardSigmoid:
      return std::min(
          std::max(static_cast<double>(ep.alpha) * x + static_cast<double>(ep.beta), 0.0), 1.0);
    case k::Activation::kSilu:
      return x / (1.0 + std::exp(-x));
    default:
      return static_cast<double>(k::activate(ep, static_cast<float>(x)));
  }
}

void test_threadpool() {
  for (int threads = 1; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    for (int64_t n = 0; n < 40; ++n) {
      std::vector<int> hits(static_cast<size_t>(n), 0);
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        // A nested call runs inline on the calling thread.
        pool.parallel_for(3, [&](int64_t, int64_t) {});
      });
      ++g_checks;
      for (int64_t i = 0; i < n; ++i)
        if (hits[static_cast<size_t>(i)] != 1) {
          ++g_failures;
          std::printf("FAIL threadpool threads=%d n=%lld index %lld hit %d times\n", threads,
                      static_cast<long long>(n), static_cast<long long>(i),
                      hits[static_cast<size_t>(i)]);
          break;
        }
    }
  }
  // Back-to-back jobs of changing sizes (so changing chunk counts): a worker finishing one job
  // must never claim a chunk of the next one that does not exist (that ran a chunk twice, hung
  // the caller or crashed it in vision transformers at 2 threads).
  for (int threads = 2; threads <= 4; ++threads) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(64);
    int bad = 0;
    for (int iter = 0; iter < 20000 && bad == 0; ++iter) {
      const int64_t n = 1 + (iter * 7) % 23;
      for (int64_t i = 0; i < n; ++i) hits[static_cast<size_t>(i)].store(0);
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) bad += hits[static_cast<size_t>(i)].load() != 1;
    }
    ++g_checks;
    if (bad != 0) {
      ++g_failures;
      std::printf(
          "FAIL threadpool threads=%d: jobs of changing sizes ran an index twice or never\n",
          threads);
    }
  }
}

// usable_threads: an unpinned session's thread count is capped at the CPUs it may use; a
// pinned one keeps what it asked for.
void test_usable_threads() {
  const int cpus = static_cast<int>(std::thread::hardware_concurrency());
  const int all = edgepack::usable_threads(1 << 20, {});
  const bool ok = all >= 1 && (cpus <= 0 || all <= cpus) && edgepack::usable_threads(0, {}) == 1 &&
                  edgepack::usable_threads(1, {}) == 1 && edgepack::usable_threads(4, {0}) == 4 &&
                  edgepack::usable_threads(0, {0, 1}) == 1;
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::printf("FAIL usable_threads: %d of %d CPUs for 2^20 threads\n", all, cpus);
  }
}

// OwnedTasks: every task is handed out exactly once; a slot takes its own share front to back,
// then the other shares from their backs (one thread claiming for slot 1 of 3 over 10 tasks:
// 3 4 5, then share 2 = 6..9 from the back, then share 0 = 0..2 from the back).
void test_owned_tasks(ThreadPool* pools[4]) {
  {
    edgepack::OwnedTasks owned(10, 3);
    const int64_t want[10] = {3, 4, 5, 9, 8, 7, 6, 2, 1, 0};
    bool ok = true;
    for (int64_t w : want) ok = ok && owned.claim(1) == w;
    ok = ok && owned.claim(1) == -1 && owned.claim(0) == -1;
    ++g_checks;
    if (!ok) {
      ++g_failures;
      std::printf("FAIL owned tasks: slot 1 of 3 did not take 3 4 5 9 8 7 6 2 1 0\n");
    }
  }
  for (int t = 1; t < 4; ++t)
    for (int64_t n : {0, 1, 5, 37, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (auto& h : hits) h.store(0);
      const int64_t slots = t + (n % 2);  // also more slots than threads
      edgepack::OwnedTasks owned(n, slots);
      pools[t]->parallel_for(slots, [&](int64_t s0, int64_t s1) {
        for (int64_t slot = s0; slot < s1; ++slot)
          for (int64_t i = owned.claim(slot); i >= 0; i = owned.claim(slot))
            hits[static_cast<size_t>(i)].fetch_add(1);
      });
      ++g_checks;
      for (int64_t i = 0; i < n; ++i)
        if (hits[static_cast<size_t>(i)].load() != 1) {
          ++g_failures;
          std::printf("FAIL owned tasks threads=%d n=%lld: task %lld ran %d times\n", t,
                      static_cast<long long>(n), static_cast<long long>(i),
                      hits[static_cast<size_t>(i)].load());
          break;
        }
    }
}

void test_gemm_case(int64_t m, int64_t n, int64_t kd, bool ta, bool tb, int64_t pad, float alpha,
                    float beta, int act, int bias_mode, bool prepack_a, bool prepack_b,
                    ThreadPool* pool) {
  const int64_t lda = (ta ? m : kd) + pad, ldb = (tb ? kd : n) + pad, ldc = n + pad;
  const auto a = random_vec(static_cast<size_t>((ta ? kd : m) * lda));
  const auto b = random_vec(static_cast<size_t>((tb ? n : kd) * ldb));
  const auto c0 = random_vec(static_cast<size_t>(m * ldc));
  const auto bias = random_vec(static_cast<size_t>(std::max(m, n)));
  const k::Epilogue ep = make_epilogue(act, bias_mode ? bias.data() : nullptr, bias_mode == 1);

  std::vector<double> ref(static_cast<size_t>(m * ldc)), mag(ref.size());
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t idx = static_cast<size_t>(i * ldc + j);
      if (j >= n) {  // beyond n: untouched
        ref[idx] = c0[idx];
        continue;
      }
      double s = 0, sa = 0;
      for (int64_t p = 0; p < kd; ++p) {
        const double av =
            ta ? a[static_cast<size_t>(p * lda + i)] : a[static_cast<size_t>(i * lda + p)];
        const double bv =
            tb ? b[static_cast<size_t>(j * ldb + p)] : b[static_cast<size_t>(p * ldb + j)];
        s += av * bv;
        sa += std::fabs(av * bv);
      }
      double v = alpha * s + (beta != 0.0f ? beta * c0[idx] : 0.0);
      if (bias_mode) v += bias[static_cast<size_t>(bias_mode == 1 ? i : j)];
      ref[idx] = activate_ref(ep, v);
      mag[idx] = sa + std::fabs(v);
    }

  std::vector<float> pa, pb;
  k::GemmOperand opa, opb;
  opa.data = a.data();
  opa.ld = lda;
  opa.trans = ta;
  opb.data = b.data();
  opb.ld = ldb;
  opb.trans = tb;
  if (prepack_a) {
    pa.resize(k::packed_a_floats(m, kd));
    k::pack_a(a.data(), lda, ta, m, kd, pa.data(), pool);
    opa.packed = pa.data();
  }
  if (prepack_b) {
    pb.resize(k::packed_b_floats(kd, n));
    k::pack_b(b.data(), ldb, tb, kd, n, pb.data(), pool);
    opb.packed = pb.data();
  }
  Scratch scratch;
  float* s = scratch.get(k::gemm_scratch_floats(m, n, kd, prepack_a, prepack_b) * sizeof(float));
  std::vector<float> c = c0;
  if (beta == 0.0f)  // C must not be read: poison the part gemm writes
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[static_cast<size_t>(i * ldc + j)] = std::nanf("");
  k::gemm(m, n, kd, alpha, opa, opb, beta, c.data(), ldc, ep, s, pool);
  char what[256];
  std::snprintf(what, sizeof what,
                "gemm m=%lld n=%lld k=%lld ta=%d tb=%d pad=%lld alpha=%g beta=%g act=%d bias=%d "
                "packA=%d packB=%d threads=%d",
                static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(kd),
                ta, tb, static_cast<long long>(pad), static_cast<double>(alpha),
                static_cast<double>(beta), act, bias_mode, prepack_a, prepack_b,
                pool ? pool->threads() : 0);
  compare(what, c, ref, mag);
}

void test_gemm(ThreadPool* pools[4]) {
  const int64_t sizes[] = {1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 100};
  std::uniform_int_distribution<int> pick(0, 13), coin(0, 1), act(0, kActivations - 1), bias(0, 2),
      pad(0, 3), tp(0, 4);
  const float alphas[] = {1.0f, 0.5f, -2.0f};
  const float betas[] = {0.0f, 1.0f, -0.7f};
  // Fixed shapes that cross the K block and tile boundaries, then a random sweep.
  const int64_t big[][3] = {{1, 1000, 512}, {64, 3136, 147}, {130, 70, 600}, {200, 1, 300},
                            {1, 1, 1},      {96, 49, 1100},  {17, 33, 1},    {256, 16, 256},
                            {197, 64, 197}, {13, 40, 700},   {45, 12, 480}};
  for (auto& s : big)
    for (int t = 0; t < 4; ++t)
      test_gemm_case(s[0], s[1], s[2], false, t % 2 == 1, t, 1.0f, 0.0f, t, t % 3, t == 2, t >= 2,
                     pools[t]);
  // One panel of C, K past kc but within kc_one_panel (x86: all of K in one block), added to C.
  test_gemm_case(45, 12, 480, false, false, 0, 0.5f, -0.7f, 1, 1, true, true, nullptr);
  for (int iter = 0; iter < 600; ++iter) {
    const int64_t m = sizes[pick(g_rng)], n = sizes[pick(g_rng)], kd = sizes[pick(g_rng)];
    test_gemm_case(m, n, kd, coin(g_rng), coin(g_rng), pad(g_rng) == 0 ? 5 : 0, alphas[iter % 3],
                   betas[(iter / 3) % 3], act(g_rng), bias(g_rng), coin(g_rng), coin(g_rng),
                   tp(g_rng) == 0 ? nullptr : pools[iter % 4]);
  }
  // k == 0: C = act(beta * C + bias).
  test_gemm_case(5, 7, 0, false, false, 0, 1.0f, 0.5f, 1, 1, false, false, pools[1]);
  test_gemm_case(5, 7, 0, false, false, 0, 1.0f, 0.0f, 0, 2, false, false, nullptr);
}

void test_conv_case(const k::Conv2dParams& p, int act, bool with_bias, ThreadPool* pool) {
  const int64_t cin_g = p.in_channels / p.groups, cout_g = p.out_channels / p.groups;
  const auto x = random_vec(static_cast<size_t>(p.batch * p.in_channels * p.in_h * p.in_w));
  const auto w = random_vec(static_cast<size_t>(p.out_channels * cin_g * p.kernel_h * p.kernel_w));
  const auto bias = random_vec(static_cast<size_t>(p.out_channels));
  const k::Epilogue ep = make_epilogue(act, nullptr, true);
  const int64_t oh_n = p.out_h(), ow_n = p.out_w();
  std::vector<double> ref(static_cast<size_t>(p.batch * p.out_channels * oh_n * ow_n)),
      mag(ref.size());
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
      const int64_t g = oc / cout_g;
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          double s = with_bias ? bias[static_cast<size_t>(oc)] : 0.0, sa = std::fabs(s);
          for (int64_t ic = 0; ic < cin_g; ++ic)
            for (int64_t kh = 0; kh < p.kernel_h; ++kh)
              for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
                const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
                const int64_t iw = ow * p.stride_w - p.pad_left + kw * p.dilation_w;
                if (ih < 0 || ih >= p.in_h || iw < 0 || iw >= p.in_w) continue;
                const double xv = x[static_cast<size_t>(
                    ((b * p.in_channels + g * cin_g + ic) * p.in_h + ih) * p.in_w + iw)];
                const double wv =
                    w[static_cast<size_t>(((oc * cin_g + ic) * p.kernel_h + kh) * p.kernel_w + kw)];
                s += xv * wv;
                sa += std::fabs(xv * wv);
              }
          const size_t idx =
              static_cast<size_t>(((b * p.out_channels + oc) * oh_n + oh) * ow_n + ow);
          ref[idx] = activate_ref(ep, s);
          mag[idx] = sa;
        }
    }
  k::Conv2d conv;
  conv.prepare(p, w.data(), with_bias ? bias.data() : nullptr, ep, pool ? pool->threads() : 1);
  Scratch scratch;
  float* s = scratch.get(conv.scratch_bytes());
  std::vector<float> out(ref.size(), std::nanf(""));
  conv.run(x.data(), out.data(), s, pool);
  char what[320];
  std::snprintf(what, sizeof what,
                "conv path=%d n=%lld c=%lld %lldx%lld -> %lld k=%lldx%lld s=%lld,%lld d=%lld,%lld "
                "pads=%lld,%lld,%lld,%lld g=%lld act=%d bias=%d threads=%d",
                static_cast<int>(conv.path()), static_cast<long long>(p.batch),
                static_cast<long long>(p.in_channels), static_cast<long long>(p.in_h),
                static_cast<long long>(p.in_w), static_cast<long long>(p.out_channels),
                static_cast<long long>(p.kernel_h), static_cast<long long>(p.kernel_w),
                static_cast<long long>(p.stride_h), static_cast<long long>(p.stride_w),
                static_cast<long long>(p.dilation_h), static_cast<long long>(p.dilation_w),
                static_cast<long long>(p.pad_top), static_cast<long long>(p.pad_left),
                static_cast<long long>(p.pad_bottom), static_cast<long long>(p.pad_right),
                static_cast<long long>(p.groups), act, with_bias, pool ? pool->threads() : 0);
  compare(what, out, ref, mag);
}

void test_conv(ThreadPool* pools[4]) {
  std::uniform_int_distribution<int> r(0, 1 << 20);
  auto any = [&](int lo, int hi) { return lo + r(g_rng) % (hi - lo + 1); };
  int paths[static_cast<int>(k::Conv2d::Path::kDirectOc) + 1] = {};  // by Conv2d::Path (the last)
  for (int iter = 0; iter < 300; ++iter) {
    k::Conv2dParams p;
    const int kind = iter % 4;  // 0: general, 1: depthwise 3x3, 2: pointwise, 3: grouped
    p.batch = any(1, 2);
    p.in_h = any(1, 13);
    p.in_w = any(1, 19);
    p.kernel_h = kind == 1 ? 3 : (kind == 2 ? 1 : any(1, 5));
    p.kernel_w = kind == 1 ? 3 : (kind == 2 ? 1 : any(1, 5));
    p.stride_h = kind == 2 ? 1 : any(1, 3);
    p.stride_w = kind == 1 ? p.stride_h : (kind == 2 ? 1 : any(1, 3));
    if (kind == 1 && p.stride_h > 2) p.stride_h = p.stride_w = 2;
    p.dilation_h = kind == 0 ? any(1, 2) : 1;
    p.dilation_w = kind == 0 ? any(1, 2) : 1;
    if (kind != 2) {
      p.pad_top = any(0, 2);
      p.pad_left = any(0, 2);
      p.pad_bottom = any(0, 2);
      p.pad_right = any(0, 2);
    }
    if (kind == 1) {
      p.groups = p.in_channels = p.out_channels = any(1, 9);
      p.depthwise_blocked = (iter / 4) % 3 - 1;  // prepare()'s choice, row path, blocked path
    } else if (kind == 3) {
      p.groups = any(2, 3);
      p.in_channels = p.groups * any(1, 3);
      p.out_channels = p.groups * any(1, 4);
    } else {
      p.in_channels = any(1, 9);
      p.out_channels = any(1, 20);
      p.pointwise_transposed = (iter / 4) % 3 - 1;  // prepare()'s choice, direct, transposed
    }
    if (p.out_h() < 1 || p.out_w() < 1) continue;
    test_conv_case(p, iter % kActivations, iter % 5 != 0,
                   iter % 3 == 0 ? nullptr : pools[iter % 4]);
    k::Conv2d probe;
    probe.prepare(p,
                  random_vec(static_cast<size_t>(p.out_channels * (p.in_channels / p.groups) *
                                                 p.kernel_h * p.kernel_w))
                      .data(),
                  nullptr, k::Epilogue{});
    paths[static_cast<int>(probe.path())]++;
  }
  // Network-sized layers (ResNet stem, MobileNet depthwise stride 2, a 1x1 expansion).
  k::Conv2dParams stem;
  stem.in_channels = 3;
  stem.in_h = stem.in_w = 32;
  stem.out_channels = 16;
  stem.kernel_h = stem.kernel_w = 7;
  stem.stride_h = stem.stride_w = 2;
  stem.pad_top = stem.pad_left = stem.pad_bottom = stem.pad_right = 3;
  test_conv_case(stem, 1, true, pools[1]);
  k::Conv2dParams dw;
  dw.in_channels = dw.out_channels = dw.groups = 32;
  dw.in_h = dw.in_w = 28;
  dw.kernel_h = dw.kernel_w = 3;
  dw.stride_h = dw.stride_w = 2;
  dw.pad_top = dw.pad_left = dw.pad_bottom = dw.pad_right = 1;
  test_conv_case(dw, 2, true, pools[3]);
  dw.depthwise_blocked = 0;
  test_conv_case(dw, 2, true, pools[3]);
  // Depthwise, every activation, on both sides of the flattened small-plane path (padded plane
  // <= 4096 floats) and the row-by-row path for large planes; asymmetric pads.
  for (int big = 0; big < 2; ++big)
    for (int stride = 1; stride <= 2; ++stride)
      for (int act = 0; act < kActivations; ++act) {
        k::Conv2dParams d;
        d.in_channels = d.out_channels = d.groups = 3;
        d.in_h = big ? 71 : 14;
        d.in_w = big ? 66 : 9;
        d.kernel_h = d.kernel_w = 3;
        d.stride_h = d.stride_w = stride;
        d.pad_top = 1;
        d.pad_left = act % 2;
        d.pad_bottom = act / 2;
        d.pad_right = 1;
        d.depthwise_blocked = 0;  // the row paths (the blocked one: test_depthwise)
        test_conv_case(d, act, act != 1, act % 2 ? pools[2] : nullptr);
      }
  // Kernels wider than 16 taps take the generic im2col loop.
  k::Conv2dParams wide;
  wide.in_channels = 2;
  wide.in_h = 5;
  wide.in_w = 40;
  wide.out_channels = 5;
  wide.kernel_h = 3;
  wide.kernel_w = 17;
  wide.stride_w = 2;
  wide.pad_left = 4;
  wide.pad_right = 3;
  wide.pad_top = 1;
  test_conv_case(wide, 2, true, pools[1]);
  wide.kernel_h = 18;
  wide.kernel_w = 2;
  wide.in_h = 20;
  wide.stride_h = 3;
  wide.dilation_w = 2;
  test_conv_case(wide, 0, false, nullptr);
  k::Conv2dParams pw;
  pw.in_channels = 24;
  pw.out_channels = 144;
  pw.in_h = pw.in_w = 14;
  test_conv_case(pw, 3, true, pools[2]);
  // 1x1 with few input channels and every activation fused in the micro-kernel's tile (SiLU,
  // HardSwish, HardSigmoid too); M and N not multiples of the tile.
  pw.in_channels = 5;
  pw.out_channels = 43;
  pw.in_h = 11;
  pw.in_w = 13;
  for (int act = 0; act < kActivations; ++act)
    test_conv_case(pw, act, act != 2, act % 2 ? pools[1] : nullptr);
  // Late 1x1 layers with few output pixels (7x7: computed transposed), channel counts that are
  // and are not multiples of the panel width, batch 2, 1..4 threads.
  for (int t = 0; t < 4; ++t) {
    k::Conv2dParams late_pw;
    late_pw.batch = t == 2 ? 2 : 1;
    late_pw.in_channels = t % 2 ? 160 : 37;
    late_pw.out_channels = t % 2 ? 96 : 53;
    late_pw.in_h = late_pw.in_w = 7;
    late_pw.pointwise_transposed = t % 2 ? 1 : -1;
    test_conv_case(late_pw, 2 + t, t != 1, pools[t]);
  }
  // Late-stage 3x3 layers: few output pixels, so one or three im2col column blocks, split over
  // output channels for 2..4 threads.
  k::Conv2dParams late;
  late.in_channels = 24;
  late.out_channels = 70;
  late.in_h = late.in_w = 7;
  late.kernel_h = late.kernel_w = 3;
  late.pad_top = late.pad_left = late.pad_bottom = late.pad_right = 1;
  for (int t = 1; t < 4; ++t) test_conv_case(late, 1 + t, true, pools[t]);
  late.in_channels = 3;
  late.in_h = late.in_w = 30;
  for (int t = 1; t < 4; ++t) test_conv_case(late, 5, t != 2, pools[t]);
  ++g_checks;
  if (paths[0] == 0 || paths[1] == 0 || paths[2] == 0 || paths[5] == 0 || paths[6] == 0) {
    ++g_failures;
    std::printf("FAIL conv sweep did not reach every path: %d %d %d %d %d\n", paths[0], paths[1],
                paths[2], paths[5], paths[6]);
  }
}

// 3x3 stride-1 convolutions on the Winograd path: both tile sizes (F(4x4, 3x3) on larger planes,
// F(2x2, 3x3) on small ones), planes that are not multiples of the tile, asymmetric pads (0..2),
// tile counts below, at and above a panel, every activation, batch 2, 1..4 threads.
void test_winograd(ThreadPool* pools[4]) {
  std::uniform_int_distribution<int> r(0, 1 << 20);
  auto any = [&](int lo, int hi) { return lo + r(g_rng) % (hi - lo + 1); };
  int reached[2] = {0, 0};
  for (int iter = 0; iter < 60; ++iter) {
    k::Conv2dParams p;
    p.batch = iter % 7 == 0 ? 2 : 1;
    p.in_channels = any(8, 40);
    p.out_channels = any(8, 50);
    p.in_h = any(2, 30);
    p.in_w = any(2, 45);
    p.kernel_h = p.kernel_w = 3;
    p.pad_top = any(0, 2);
    p.pad_left = any(0, 2);
    p.pad_bottom = any(0, 2);
    p.pad_right = any(0, 2);
    if (p.out_h() < 1 || p.out_w() < 1) continue;
    k::Conv2d probe;
    probe.prepare(p, random_vec(static_cast<size_t>(p.out_channels * p.in_channels * 9)).data(),
                  nullptr, k::Epilogue{});
    if (probe.path() == k::Conv2d::Path::kWinograd) reached[p.out_h() * p.out_w() >= 300]++;
    test_conv_case(p, iter % kActivations, iter % 4 != 0,
                   iter % 5 == 0 ? nullptr : pools[iter % 4]);
  }
  ++g_checks;
  if (reached[0] < 5 || reached[1] < 5) {
    ++g_failures;
    std::printf("FAIL winograd sweep reached the path %d (small) / %d (large) times\n", reached[0],
                reached[1]);
  }
  // Network-sized layers: ResNet-18's stages (56x56 x 64, 28x28 x 128, 14x14 x 256, 7x7 x 512)
  // and a YOLO bottleneck (16 channels, 80x80), with ReLU / SiLU. Every kernel set takes the
  // same tile: F(4x4) down to 14x14 (16 tiles: AVX-512's half panel), F(2x2) at 7x7.
  struct Layer {
    int64_t c, hw;
    int tile;
  };
  int layer = 0;
  for (const Layer& l : {Layer{64, 56, 4}, Layer{128, 28, 4}, Layer{256, 14, 4}, Layer{512, 7, 2},
                         Layer{16, 80, 4}}) {
    k::Conv2dParams p;
    p.in_channels = p.out_channels = l.c;
    p.in_h = p.in_w = l.hw;
    p.kernel_h = p.kernel_w = 3;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 1;
    k::Conv2d probe;
    probe.prepare(p, random_vec(static_cast<size_t>(p.out_channels * p.in_channels * 9)).data(),
                  nullptr, k::Epilogue{});
    ++g_checks;
    if (probe.wino_tile() != l.tile) {
      ++g_failures;
      std::printf("FAIL winograd %lldx%lld x %lld: tile %d, want %d\n",
                  static_cast<long long>(l.hw), static_cast<long long>(l.hw),
                  static_cast<long long>(l.c), probe.wino_tile(), l.tile);
    }
    const int t = layer++ % 2 == 0 ? 0 : 3;  // 1 and 4 threads, in turn
    test_conv_case(p, t == 0 ? 1 : 5, true, pools[t]);
  }
}

// Depthwise of every kernel size, stride, dilation and pad, every activation, 1..4 threads, row
// lengths below, at and above each vector width, channel counts below, at and above each vector
// width (the channel-blocked path's partial last block), on the row paths (kDepthwise: all but
// 3x3 with stride 1/2 and no dilation) and on the channel-blocked one; plus network-sized layers
// (MobileNetV3 / EfficientNet 5x5 stride 1 and 2, a 7x7, 3x3 at 7x7).
void test_depthwise(ThreadPool* pools[4]) {
  std::uniform_int_distribution<int> r(0, 1 << 20);
  auto any = [&](int lo, int hi) { return lo + r(g_rng) % (hi - lo + 1); };
  int reached = 0, blocked = 0;
  for (int iter = 0; iter < 360; ++iter) {
    k::Conv2dParams p;
    p.batch = any(1, 2);
    p.groups = p.in_channels = p.out_channels = iter % 3 == 2 ? any(1, 37) : any(1, 6);
    p.depthwise_blocked = iter % 3 - 1;  // prepare()'s choice, row paths, blocked path
    p.in_h = any(1, 20);
    p.in_w = any(1, 70);
    p.kernel_h = any(1, 7);
    p.kernel_w = any(1, 7);
    p.stride_h = any(1, 3);
    p.stride_w = any(1, 3);
    p.dilation_h = any(1, 3);
    p.dilation_w = any(1, 3);
    p.pad_top = any(0, 3);
    p.pad_left = any(0, 3);
    p.pad_bottom = any(0, 3);
    p.pad_right = any(0, 3);
    if (p.out_h() < 1 || p.out_w() < 1) continue;
    k::Conv2d probe;
    probe.prepare(p,
                  random_vec(static_cast<size_t>(p.out_channels * p.kernel_h * p.kernel_w)).data(),
                  nullptr, k::Epilogue{});
    reached += probe.path() == k::Conv2d::Path::kDepthwise;
    blocked += probe.path() == k::Conv2d::Path::kDepthwiseBlocked;
    test_conv_case(p, iter % kActivations, iter % 3 != 0,
                   iter % 5 == 0 ? nullptr : pools[iter % 4]);
  }
  ++g_checks;
  if (reached < 80 || blocked < 150) {
    ++g_failures;
    std::printf("FAIL depthwise sweep reached the kDepthwise path %d times, kDepthwiseBlocked %d\n",
                reached, blocked);
  }
  struct Layer {
    int64_t c, hw, k, s, d;
  };
  for (const Layer& l : {Layer{72, 28, 5, 2, 1}, Layer{240, 14, 5, 1, 1}, Layer{32, 56, 7, 1, 1},
                         Layer{48, 33, 3, 1, 2}, Layer{16, 40, 3, 3, 1}, Layer{64, 7, 5, 1, 1},
                         Layer{6, 83, 5, 1, 1},  // (stride 1, too big for one flat pass)
                         Layer{67, 14, 5, 2, 1}, Layer{35, 7, 3, 1, 1}, Layer{21, 56, 3, 2, 1},
                         // (in bands of rows that fit L2: MobileNetV2's second depthwise layer)
                         Layer{20, 112, 3, 2, 1}}) {
    k::Conv2dParams p;
    p.groups = p.in_channels = p.out_channels = l.c;
    p.in_h = p.in_w = l.hw;
    p.kernel_h = p.kernel_w = l.k;
    p.stride_h = p.stride_w = l.s;
    p.dilation_h = p.dilation_w = l.d;
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = l.d * (l.k - 1) / 2;
    for (int t = 0; t < 4; ++t) {
      p.depthwise_blocked = t % 2 == 0 ? -1 : 1;
      test_conv_case(p, (t + static_cast<int>(l.k)) % kActivations, true, pools[t]);
    }
  }
}

// Layers with few input channels on the direct path (output channels in vectors): every kernel
// size, stride, dilation and pad, output channel counts below, at and above one and two vector
// blocks, every activation, batch 2, 1..4 threads, prepare()'s choice and forced; plus stems
// (3 -> 16 and 3 -> 32, 3x3 stride 2).
void test_direct_oc(ThreadPool* pools[4]) {
  std::uniform_int_distribution<int> r(0, 1 << 20);
  auto any = [&](int lo, int hi) { return lo + r(g_rng) % (hi - lo + 1); };
  int reached = 0;
  for (int iter = 0; iter < 120; ++iter) {
    k::Conv2dParams p;
    p.batch = iter % 9 == 0 ? 2 : 1;
    p.in_channels = any(1, 4);
    p.out_channels = any(1, 40);
    p.in_h = any(1, 20);
    p.in_w = any(1, 40);
    p.kernel_h = any(1, 4);
    p.kernel_w = any(1, 4);
    p.stride_h = any(1, 3);
    p.stride_w = any(1, 3);
    p.dilation_h = any(1, 2);
    p.dilation_w = any(1, 2);
    p.pad_top = any(0, 2);
    p.pad_left = any(0, 2);
    p.pad_bottom = any(0, 2);
    p.pad_right = any(0, 2);
    p.direct_oc = iter % 2 == 0 ? 1 : -1;
    if (p.out_h() < 1 || p.out_w() < 1) continue;
    k::Conv2d probe;
    probe.prepare(
        p,
        random_vec(static_cast<size_t>(p.out_channels * p.in_channels * p.kernel_h * p.kernel_w))
            .data(),
        nullptr, k::Epilogue{});
    reached += probe.path() == k::Conv2d::Path::kDirectOc;
    test_conv_case(p, iter % kActivations, iter % 4 != 0,
                   iter % 5 == 0 ? nullptr : pools[iter % 4]);
  }
  ++g_checks;
  if (reached < 60) {
    ++g_failures;
    std::printf("FAIL direct-oc sweep reached the kDirectOc path only %d times\n", reached);
  }
  for (int t = 0; t < 4; ++t) {
    k::Conv2dParams stem;
    stem.in_channels = 3;
    stem.out_channels = t % 2 ? 32 : 16;
    stem.in_h = t % 2 ? 50 : 64;
    stem.in_w = t % 2 ? 57 : 64;
    stem.kernel_h = stem.kernel_w = 3;
    stem.stride_h = stem.stride_w = 2;
    stem.pad_top = stem.pad_left = stem.pad_bottom = stem.pad_right = 1;
    test_conv_case(stem, 2 + t, true, pools[t]);
  }
}

// The pool's cost on small ops: 64 items of `len` multiply-adds each (a few thousand to a few
// hundred thousand in all, like squeeze-and-excitation layers or late 7x7 stages), split over the
// pool vs run inline; medians of many calls. Printed, not checked (it depends on the machine's
// load): it sizes kMinParallelWork.
void measure_pool_cost(ThreadPool* pools[4]) {
  for (int len : {64, 1024, 4096}) {
    std::vector<float> data(static_cast<size_t>(64 * len), 1.0f);
    auto item = [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float acc = 0.0f;
        for (int j = 0; j < len; ++j) acc += data[static_cast<size_t>(i * len + j)] * 0.5f;
        data[static_cast<size_t>(i * len)] = acc * 1e-6f + 1.0f;
      }
    };
    auto median_us = [&](ThreadPool* pool) {
      std::vector<double> us;
      for (int i = 0; i < 1000; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        if (pool != nullptr)
          pool->parallel_for(64, item);
        else
          item(0, 64);
        us.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count());
      }
      std::sort(us.begin(), us.end());
      return us[us.size() / 2];
    };
    std::printf("pool: %d multiply-adds inline %.2f us; 2 threads %.2f us, 4 threads %.2f us\n",
                64 * len, median_us(nullptr), median_us(pools[1]), median_us(pools[3]));
  }
}

void test_conv_transpose(ThreadPool* pools[4]) {
  std::uniform_int_distribution<int> r(0, 1 << 20);
  auto any = [&](int lo, int hi) { return lo + r(g_rng) % (hi - lo + 1); };
  for (int iter = 0; iter < 60; ++iter) {
    k::ConvTranspose2dParams p;
    p.batch = any(1, 2);
    p.groups = any(1, 2);
    p.in_channels = p.groups * any(1, 3);
    p.out_channels = p.groups * any(1, 3);
    p.in_h = any(1, 7);
    p.in_w = any(1, 8);
    p.kernel_h = any(1, 4);
    p.kernel_w = any(1, 4);
    p.stride_h = any(1, 3);
    p.stride_w = any(1, 3);
    p.dilation_h = any(1, 2);
    p.dilation_w = any(1, 2);
    p.pad_top = any(0, 1);
    p.pad_left = any(0, 1);
    p.pad_bottom = any(0, 1);
    p.pad_right = any(0, 1);
    p.output_padding_h = any(0, static_cast<int>(p.stride_h) - 1);
    p.output_padding_w = any(0, static_cast<int>(p.stride_w) - 1);
    if (p.out_h() < 1 || p.out_w() < 1) continue;
    const int64_t cin_g = p.in_channels / p.groups, cout_g = p.out_channels / p.groups;
    const auto x = random_vec(static_cast<size_t>(p.batch * p.in_channels * p.in_h * p.in_w));
    const auto w =
        random_vec(static_cast<size_t>(p.in_channels * cout_g * p.kernel_h * p.kernel_w));
    const auto bias = random_vec(static_cast<size_t>(p.out_channels));
    const k::Epilogue ep = make_epilogue(iter % kActivations, nullptr, true);
    const int64_t oh_n = p.out_h(), ow_n = p.out_w();
    std::vector<double> acc(static_cast<size_t>(p.batch * p.out_channels * oh_n * ow_n), 0.0),
        mag(acc.size(), 0.0);
    for (int64_t b = 0; b < p.batch; ++b)
      for (int64_t ic = 0; ic < p.in_channels; ++ic) {
        const int64_t g = ic / cin_g;
        for (int64_t ocg = 0; ocg < cout_g; ++ocg)
          for (int64_t ih = 0; ih < p.in_h; ++ih)
            for (int64_t iw = 0; iw < p.in_w; ++iw)
              for (int64_t kh = 0; kh < p.kernel_h; ++kh)
                for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
                  const int64_t oh = ih * p.stride_h - p.pad_top + kh * p.dilation_h;
                  const int64_t ow = iw * p.stride_w - p.pad_left + kw * p.dilation_w;
                  if (oh < 0 || oh >= oh_n || ow < 0 || ow >= ow_n) continue;
                  const double v = x[static_cast<size_t>(
                                       ((b * p.in_channels + ic) * p.in_h + ih) * p.in_w + iw)] *
                                   static_cast<double>(w[static_cast<size_t>(
                                       ((ic * cout_g + ocg) * p.kernel_h + kh) * p.kernel_w + kw)]);
                  const size_t idx = static_cast<size_t>(
                      ((b * p.out_channels + g * cout_g + ocg) * oh_n + oh) * ow_n + ow);
                  acc[idx] += v;
                  mag[idx] += std::fabs(v);
                }
      }
    for (size_t i = 0; i < acc.size(); ++i) {
      const int64_t oc =
          static_cast<int64_t>(i / static_cast<size_t>(oh_n * ow_n)) % p.out_channels;
      acc[i] = activate_ref(ep, acc[i] + bias[static_cast<size_t>(oc)]);
    }
    k::ConvTranspose2d ct;
    ct.prepare(p, w.data(), bias.data(), ep);
    Scratch scratch;
    std::vector<float> out(acc.size(), std::nanf(""));
    ct.run(x.data(), out.data(), scratch.get(ct.scratch_bytes()), pools[iter % 4]);
    compare("conv_transpose iter " + std::to_string(iter), out, acc, mag);
  }
}

}  // namespace

// Vectorised element-wise loops against libm in double: Sigmoid and Erf over [-30, 30] (the
// tails included) and tiny values; Add/Sub/Mul/Div/Add+Relu for every stride pattern and odd
// lengths.
void test_vector_math() {
  std::vector<float> x;
  for (int i = -3000; i <= 3000; ++i) x.push_back(float(i) * 0.01f);
  for (float v : {1e-6f, -1e-6f, 3e-4f, -9e-3f, 0.0f, 100.0f, -100.0f}) x.push_back(v);
  std::vector<float> y(x.size());
  double worst_sig = 0.0, worst_erf = 0.0;
  k::sigmoid_f32(x.data(), y.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = 1.0 / (1.0 + std::exp(-double(x[i])));
    worst_sig = std::max(worst_sig, std::fabs(y[i] - want) / std::max(want, 1e-30));
  }
  k::erf_f32(x.data(), y.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::erf(double(x[i]));
    // absolute below 0.01, relative (3e-5) above
    worst_erf = std::max(worst_erf, std::fabs(y[i] - want) / std::max(std::fabs(want) * 1e2, 1.0));
  }
  ++g_checks;
  if (!(worst_sig < 1e-6 && worst_erf < 3e-7)) {
    ++g_failures;
    std::printf("FAIL vector_math: sigmoid rel %.3g, erf abs %.3g\n", worst_sig, worst_erf);
  }
  // softmax rows: around 4, 8 and 16 lanes and their doubles (the kernel's unroll), spreads of 37
  for (int64_t n : {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 197, 257}) {
    std::vector<float> row(static_cast<size_t>(n)), out(row.size());
    for (int64_t i = 0; i < n; ++i) row[size_t(i)] = float((i * 37) % 23) * 1.7f - 20.0f;
    k::softmax_row_f32(row.data(), out.data(), n);
    double mx = -1e30, sum = 0.0, worst = 0.0;
    for (float v : row) mx = std::max(mx, double(v));
    for (float v : row) sum += std::exp(double(v) - mx);
    for (int64_t i = 0; i < n; ++i) {
      const double want = std::exp(double(row[size_t(i)]) - mx) / sum;
      worst = std::max(worst, std::fabs(out[size_t(i)] - want) / want);
    }
    ++g_checks;
    if (!(worst < 1e-5)) {  // exp_approx ~2e-7 per value; FMA contraction differs by ISA
      ++g_failures;
      std::printf("FAIL softmax_row_f32 n %ld: relative error %.3g\n", long(n), worst);
    }
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int64_t n : {1, 7, 8, 33}) {
    std::vector<float> a(static_cast<size_t>(n)), b(a), out(a);
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    for (int op = 0; op < 5; ++op) {
      for (int64_t sa : {0, 1}) {
        for (int64_t sb : {0, 1}) {
          k::binary_f32(static_cast<k::BinaryOp>(op), a.data(), sa, b.data(), sb, out.data(), n);
          for (int64_t i = 0; i < n; ++i) {
            const float p = a[size_t(i * sa)], q = b[size_t(i * sb)];
            const float want = op == 0   ? p + q
                               : op == 1 ? p - q
                               : op == 2 ? p * q
                               : op == 3 ? p / q
                                         : std::max(p + q, 0.0f);  // kAddRelu
            ++g_checks;
            if (out[size_t(i)] != want) {
              ++g_failures;
              std::printf("FAIL binary_f32 op %d n %ld sa %ld sb %ld i %ld\n", op, long(n),
                          long(sa), long(sb), long(i));
            }
          }
        }
      }
    }
  }
}

int main() {
  ThreadPool p1(1), p2(2), p3(3), p4(4);
  ThreadPool* pools[4] = {&p1, &p2, &p3, &p4};
  std::printf("micro-kernel: %s (%d x %d)\n", k::gemm_shape().isa, k::gemm_shape().mr,
              k::gemm_shape().nr);
  test_threadpool();
  test_owned_tasks(pools);
  test_usable_threads();
  test_gemm(pools);
  test_conv(pools);
  test_depthwise(pools);
  test_winograd(pools);
  test_direct_oc(pools);
  test_conv_transpose(pools);
  test_vector_math();
  measure_pool_cost(pools);
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
