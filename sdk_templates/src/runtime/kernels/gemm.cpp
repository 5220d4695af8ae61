// SPDX-License-Identifier: Apache-2.0
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "cpu_isa.h"
#include "microkernel.h"

namespace edgepack {
namespace kernels {

namespace {

// The best kernel this CPU supports, capped by EDGEPACK_CPU_ISA (cpu_isa.h).
const MicroKernel* select_microkernel() {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  switch (x86_isa()) {
    case X86Isa::kAvx512Vnni:
    case X86Isa::kAvx512:
      return microkernel_avx512();
    case X86Isa::kAvx2:
      return microkernel_avx2();
    case X86Isa::kGeneric:
      break;
  }
#endif
  return microkernel_generic();
}

const MicroKernel& mk() {
  static const MicroKernel* const kSelected = select_microkernel();
  return *kSelected;
}

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// pack_panel()'s copy of full panels of W contiguous values per depth step, W a constant: the
// copy is a few vector moves instead of a loop of runtime length per step (X^T of a 1x1 layer run
// transposed is packed every run: 8.6% of 576 -> 160 at 7x7, AVX-512).
template <int W>
void pack_full_panel(const float* x, int64_t ld, int64_t r0, int64_t depth, float* dst) {
  for (int64_t p = 0; p < depth; ++p) std::memcpy(dst + p * W, x + p * ld + r0, W * sizeof(float));
}

// Packs rows [r0, r0 + w) (w <= width) of op(X) (rows x depth) as one panel: for each depth
// index p, `width` consecutive values, zero beyond w. Used for A (rows = m) and, with op(B)
// viewed as its transpose, for B (rows = n).
void pack_panel(const float* x, int64_t ld, bool rows_contiguous_in_depth, int64_t r0, int64_t w,
                int64_t depth, int width, float* dst) {
  if (!rows_contiguous_in_depth && w == width) {
    switch (width) {
      case 4:
        return pack_full_panel<4>(x, ld, r0, depth, dst);
      case 6:
        return pack_full_panel<6>(x, ld, r0, depth, dst);
      case 8:
        return pack_full_panel<8>(x, ld, r0, depth, dst);
      case 16:
        return pack_full_panel<16>(x, ld, r0, depth, dst);
      case 32:
        return pack_full_panel<32>(x, ld, r0, depth, dst);
      default:
        break;
    }
  }
  if (!rows_contiguous_in_depth) {
    // Row r of the panel is x[p * ld + r]: each depth step copies w contiguous values.
    for (int64_t p = 0; p < depth; ++p) {
      const float* src = x + p * ld + r0;
      float* d = dst + p * width;
      int64_t i = 0;
      for (; i < w; ++i) d[i] = src[i];
      for (; i < width; ++i) d[i] = 0.0f;
    }
  } else {
    // Row r of the panel is x[r * ld + p]: gather across rows.
    for (int64_t i = 0; i < width; ++i) {
      if (i < w) {
        const float* src = x + (r0 + i) * ld;
        for (int64_t p = 0; p < depth; ++p) dst[p * width + i] = src[p];
      } else {
        for (int64_t p = 0; p < depth; ++p) dst[p * width + i] = 0.0f;
      }
    }
  }
}

template <class F>
void maybe_parallel(ThreadPool* pool, int64_t n, F&& fn) {
  if (pool != nullptr)
    pool->parallel_for(n, fn);
  else
    fn(int64_t{0}, n);
}

}  // namespace

const MicroKernel& selected_microkernel() {
  return mk();
}

const GemmShape& gemm_shape() {
  static const GemmShape kShape = {mk().mr, mk().nr, mk().isa};
  return kShape;
}

size_t packed_a_floats(int64_t m, int64_t k) {
  const int mr = mk().mr;
  return static_cast<size_t>(ceil_div(m, mr) * mr * k);
}

size_t packed_b_floats(int64_t k, int64_t n) {
  const int nr = mk().nr;
  return static_cast<size_t>(ceil_div(n, nr) * nr * k);
}

void pack_a(const float* a, int64_t lda, bool trans, int64_t m, int64_t k, float* dst,
            ThreadPool* pool) {
  const int mr = mk().mr;
  const int64_t panels = ceil_div(m, mr);
  maybe_parallel(pool, panels, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t r0 = p * mr;
      // op(A) row r, depth index q: A[r * lda + q] (not trans) or A[q * lda + r] (trans).
      pack_panel(a, lda, !trans, r0, std::min<int64_t>(mr, m - r0), k, mr, dst + p * mr * k);
    }
  });
}

void pack_b(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, float* dst,
            ThreadPool* pool) {
  const int nr = mk().nr;
  const int64_t panels = ceil_div(n, nr);
  maybe_parallel(pool, panels, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c0 = p * nr;
      // op(B) column c, depth q: B[q * ldb + c] (not trans) or B[c * ldb + q] (trans).
      pack_panel(b, ldb, trans, c0, std::min<int64_t>(nr, n - c0), k, nr, dst + p * nr * k);
    }
  });
}

size_t gemm_scratch_floats(int64_t m, int64_t n, int64_t k, bool a_packed, bool b_packed) {
  size_t total = 0;
  if (!a_packed) total += packed_a_floats(m, k) + 16;  // + 16: keep the B part 64-byte aligned
  if (!b_packed) total += packed_b_floats(k, n);
  return total;
}

TileEpilogue tile_epilogue(const Epilogue& ep, int64_t row0, int64_t col0) {
  TileEpilogue t;
  if (ep.bias != nullptr)
    (ep.bias_per_row ? t.row_bias : t.col_bias) = ep.bias + (ep.bias_per_row ? row0 : col0);
  if (ep.act == Activation::kRelu) {
    t.clamp = 1;
    t.lo = 0.0f;
    t.hi = std::numeric_limits<float>::infinity();
  } else if (ep.act == Activation::kClip) {
    t.clamp = 1;
    t.lo = ep.clip_min;
    t.hi = ep.clip_max;
  } else if (ep.act == Activation::kHardSwish) {
    t.act = TileEpilogue::kHardSwish;
  } else if (ep.act == Activation::kHardSigmoid) {
    t.act = TileEpilogue::kHardSigmoid;
    t.alpha = ep.alpha;
    t.beta = ep.beta;
  } else if (ep.act == Activation::kSilu) {
    t.act = TileEpilogue::kSilu;
  } else if (ep.act == Activation::kGelu) {
    t.act = TileEpilogue::kGelu;
  }
  return t;
}

void apply_epilogue(const Epilogue& ep, float* c, int64_t ldc, int64_t rows, int64_t cols,
                    int64_t row0, int64_t col0) {
  if (ep.is_identity()) return;
  const TileEpilogue vector_act = tile_epilogue(ep, 0, 0);  // act_row() reads only its act
  for (int64_t i = 0; i < rows; ++i) {
    float* row = c + i * ldc;
    if (ep.bias != nullptr) {
      if (ep.bias_per_row) {
        const float bv = ep.bias[row0 + i];
        for (int64_t j = 0; j < cols; ++j) row[j] += bv;
      } else {
        const float* bias = ep.bias + col0;
        for (int64_t j = 0; j < cols; ++j) row[j] += bias[j];
      }
    }
    switch (ep.act) {
      case Activation::kNone:
        break;
      case Activation::kRelu:
        for (int64_t j = 0; j < cols; ++j) row[j] = row[j] > 0.0f ? row[j] : 0.0f;
        break;
      case Activation::kClip: {
        const float lo = ep.clip_min, hi = ep.clip_max;
        for (int64_t j = 0; j < cols; ++j) row[j] = std::min(std::max(row[j], lo), hi);
        break;
      }
      case Activation::kHardSwish:
      case Activation::kHardSigmoid:
      case Activation::kSilu:
      case Activation::kGelu:
        // Vectorised with the micro-kernel's ISA (this file is built for the baseline one).
        mk().act_row(vector_act, row, row, cols);
        break;
    }
  }
}

namespace {

// B at most this many NR panels wide: gemm() reads an unpacked A in place (see a_direct).
constexpr int64_t kADirectMaxPanels = 4;

// compute_tiles() runs tiles row by row when K is at most this (see there).
constexpr int64_t kRowsOuterMaxK = 64;

// One MR x NR tile, for partial tiles at the edges.
constexpr int kEdgeFloats = 16 * 64;

// C[i0, i0 + mrows) x [j0, j0 + ncols) over all of K from packed A (pa) and B panels found by
// b_at(column, depth, ldb&). accumulate_c: add to C (already scaled by beta). fused: the
// micro-kernel applies `ep` on the last K block; otherwise the caller applies it.
template <class AAt, class BAt>
void compute_tiles(const MicroKernel& kern, int64_t m, int64_t n, int64_t k, int64_t i0,
                   int64_t mrows, int64_t j0, int64_t ncols, AAt&& a_at, BAt&& b_at, float alpha,
                   bool accumulate_c, float* c, int64_t ldc, const Epilogue& ep, bool fused,
                   float* edge) {
  const int mr = kern.mr, nr = kern.nr;
  const int64_t kc_max = ncols <= nr && k <= kern.kc_one_panel ? k : kern.kc;
  for (int64_t p0 = 0; p0 < k; p0 += kc_max) {
    const int64_t kc = std::min(kc_max, k - p0);
    const int accumulate = (p0 > 0 || accumulate_c) ? 1 : 0;
    const bool last = fused && p0 + kc >= k;
    // Tiles in column-panel order (each B panel stays in L1 while the block's A panels pass
    // over it), or, for a short K, row by row: C is then written in runs of the block's width
    // rather than NR columns at a time in every row of the block, while B (K x block width)
    // still fits in L1. 1x1 layers on 112x112 planes, AVX-512, 1 thread: 16 -> 64 channels with
    // ReLU 0.304 -> 0.280 ms, 16 -> 96 with ReLU6 0.451 -> 0.414, with SiLU 0.84 -> 0.74.
    const bool rows_outer = k <= kRowsOuterMaxK;
    const int64_t ni = ceil_div(mrows, mr), nj = ceil_div(ncols, nr);
    for (int64_t t = 0; t < ni * nj; ++t) {
      const int64_t i = i0 + (rows_outer ? t / nj : t % ni) * mr;
      const int64_t j = j0 + (rows_outer ? t % nj : t / ni) * nr;
      int64_t ldb = nr;
      const float* bpanel = b_at(j, p0, ldb);
      const int64_t nw = std::min<int64_t>(nr, n - j);
      int64_t lda = 0;
      const float* apanel = a_at(i, p0, lda);
      const MicroKernelFn tile = lda == 0 ? kern.fn : kern.fn_rows;  // packed / in place
      const int64_t mw = std::min<int64_t>(mr, m - i);
      float* ctile = c + i * ldc + j;
      if (nw == nr && (mw == mr || lda == 0)) {
        // A short row tile (packed A) computes only its rows: a product with 49 or 1 rows (7x7
        // or 1x1 planes run transposed) spent 1/8 or 7/8 of that tile on padding.
        const TileEpilogue te = last ? tile_epilogue(ep, i, j) : TileEpilogue{};
        (mw == mr ? tile : kern.fn_short[mw])(kc, apanel, lda, bpanel, ldb, ctile, ldc, alpha,
                                              accumulate, last ? &te : nullptr);
      } else {
        // A last panel of at most nr / 2 columns computes only those (with packed A, full rows).
        const bool half = nw <= nr / 2 && mw == mr && lda == 0;
        // With no C to add first, full rows and no column bias (which would be read past n),
        // the kernel applies the epilogue in registers here too: a second pass over 4 columns
        // a row was 4% of 80 -> 480 at 14x14 with HardSwish.
        const bool fuse =
            last && !accumulate && mw == mr && (ep.bias == nullptr || ep.bias_per_row);
        const TileEpilogue te = fuse ? tile_epilogue(ep, i, j) : TileEpilogue{};
        (half ? kern.fn_half : tile)(kc, apanel, lda, bpanel, ldb, edge, nr, alpha, 0,
                                     fuse ? &te : nullptr);
        for (int64_t ii = 0; ii < mw; ++ii)
          for (int64_t jj = 0; jj < nw; ++jj) {
            float& dst = ctile[ii * ldc + jj];
            dst = accumulate ? dst + edge[ii * nr + jj] : edge[ii * nr + jj];
          }
        if (last && !fuse) apply_epilogue(ep, ctile, ldc, mw, nw, i, j);
      }
    }
  }
}

}  // namespace

void gemm_packed_block(int64_t m, int64_t n, int64_t k, const float* packed_a,
                       const float* packed_b, int64_t j0, int64_t ncols, float* c, int64_t ldc,
                       const Epilogue& ep) {
  if (m <= 0 || ncols <= 0) return;
  const MicroKernel& kern = mk();
  const int nr = kern.nr;
  const bool fused = k > 0;  // k == 0: nothing runs the micro-kernel
  alignas(64) float edge[kEdgeFloats];
  if (k == 0)
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc + j0, c + i * ldc + j0 + ncols, 0.0f);
  auto b_at = [&](int64_t j, int64_t p0, int64_t& ldb) -> const float* {
    ldb = nr;
    return packed_b + ((j - j0) / nr) * nr * k + p0 * nr;
  };
  auto a_at = [&](int64_t i, int64_t p0, int64_t& lda) -> const float* {
    lda = 0;
    return packed_a + (i / kern.mr) * kern.mr * k + p0 * kern.mr;
  };
  compute_tiles(kern, m, n, k, 0, m, j0, ncols, a_at, b_at, 1.0f, false, c, ldc, ep, fused, edge);
  if (!fused) apply_epilogue(ep, c + j0, ldc, m, ncols, 0, j0);
}

void gemm(int64_t m, int64_t n, int64_t k, float alpha, const GemmOperand& a, const GemmOperand& b,
          float beta, float* c, int64_t ldc, const Epilogue& ep, float* scratch, ThreadPool* pool) {
  if (m <= 0 || n <= 0) return;
  pool = pool_for(pool, static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
  const MicroKernel& kern = mk();
  const int mr = kern.mr, nr = kern.nr;

  // B is read either from packed panels (row stride nr, panel j at pb + j * k) or, when it is
  // an unpacked, untransposed matrix, in place (row stride b.ld): only a partial last panel is
  // packed then. Skipping the copy matters for 1x1 convolutions, where B is the activation.
  const float* pa = a.packed;
  const float* pb = b.packed;
  const bool b_direct = pb == nullptr && !b.trans && k > 0;
  const int64_t full_cols = (n / nr) * nr;
  const float* b_tail = nullptr;  // packed columns [full_cols, n) in direct mode
  // A is likewise read in place (MicroKernel::fn_rows) when B is narrow: then each A value feeds
  // only n multiply-adds, and packing it costs about as much as the tiles. Attention weights
  // times V in MobileViT (16 products of 256 x 256 by 256 x 16, AVX2, 1 thread): 1.50 ms with A
  // packed, 0.96 in place (it was 2.4 computed transposed, onnxruntime 0.78).
  const bool a_direct =
      pa == nullptr && !a.trans && k > 0 && n <= kADirectMaxPanels * static_cast<int64_t>(nr);
  const int64_t full_rows = (m / mr) * mr;
  const float* a_tail = nullptr;  // packed rows [full_rows, m) in direct mode
  if (k > 0) {
    float* next = scratch;
    if (a_direct) {
      if (full_rows < m) {
        pack_panel(a.data, a.ld, true, full_rows, m - full_rows, k, mr, next);
        a_tail = next;
        next += packed_a_floats(m, k) + 16;
      }
    } else if (pa == nullptr) {
      pack_a(a.data, a.ld, a.trans, m, k, next, pool);
      pa = next;
      next += packed_a_floats(m, k) + 16;
    }
    if (b_direct) {
      if (full_cols < n) {
        pack_panel(b.data, b.ld, false, full_cols, n - full_cols, k, nr, next);
        b_tail = next;
      }
    } else if (pb == nullptr) {
      pack_b(b.data, b.ld, b.trans, k, n, next, pool);
      pb = next;
    }
  }
  const bool fused = k > 0;  // k == 0: nothing runs the micro-kernel
  // Tasks are (row block, column block) tiles of C, each computed over all of K by one thread.
  // Blocks shrink until every thread has a couple of tasks.
  const int threads = pool != nullptr ? pool->threads() : 1;
  int64_t mc = mr * std::max<int64_t>(1, 96 / mr);
  int64_t nc = nr * std::max<int64_t>(1, 384 / nr);
  auto tasks = [&] { return ceil_div(m, mc) * ceil_div(n, nc); };
  // A product with more output rows than depth (a 1x1 layer that widens: MobileNetV2's 16 -> 96
  // channels at 112x112) is split over the threads by rows first, so that each thread writes
  // whole channel planes, the ones the depthwise layer after it reads on the same thread.
  if (threads > 1 && m >= k && m >= 2 * static_cast<int64_t>(mr) * threads)
    mc = std::min(mc, ceil_div(ceil_div(m, threads), mr) * mr);
  while (threads > 1 && tasks() < 2 * threads && (nc > nr || mc > mr)) {
    if (nc > nr && (ceil_div(n, nc) <= ceil_div(m, mc) || mc <= mr))
      nc = std::max<int64_t>(nr, ceil_div(nc / 2, nr) * nr);
    else
      mc = std::max<int64_t>(mr, ceil_div(mc / 2, mr) * mr);
  }
  if (threads > 1) {
    // As many blocks, of equal size in whole tiles: 112 rows as 96 + 16 and 196 columns as 192 +
    // 4 gave one of four tasks 85% of the work (EfficientNet-B0's 672 -> 112 1x1 layers at 14x14,
    // 2 threads: 0.29-0.39 ms, balanced 0.25-0.27). Blocks never grow, so cache blocking holds.
    mc = ceil_div(ceil_div(m, ceil_div(m, mc)), mr) * mr;
    nc = ceil_div(ceil_div(n, ceil_div(n, nc)), nr) * nr;
  }
  const int64_t mblocks = ceil_div(m, mc), nblocks = ceil_div(n, nc);
  const int64_t ntasks = tasks();
  // With threads, tasks go in row order, so that thread t, which owns the t-th share of them
  // (see ThreadPool), writes the t-th range of rows: a 1x1 layer's output channels, the ones a
  // depthwise layer after it reads on the same thread (OwnedTasks). In column order each thread
  // wrote part of every channel's plane, in runs as short as 512 bytes on 14x14 planes, and the
  // next layer read half its input from the other core's L2.
  const bool rows_first = threads > 1;

  maybe_parallel(pool, ntasks, [&](int64_t t0, int64_t t1) {
    alignas(64) float edge[kEdgeFloats];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = (rows_first ? t / nblocks : t % mblocks) * mc;
      const int64_t j0 = (rows_first ? t % nblocks : t / mblocks) * nc;
      const int64_t mrows = std::min(mc, m - i0), ncols = std::min(nc, n - j0);
      if (beta != 0.0f && beta != 1.0f) {
        for (int64_t i = 0; i < mrows; ++i)
          for (int64_t j = 0; j < ncols; ++j) c[(i0 + i) * ldc + j0 + j] *= beta;
      }
      if (k == 0 && beta == 0.0f) {
        for (int64_t i = 0; i < mrows; ++i)
          for (int64_t j = 0; j < ncols; ++j) c[(i0 + i) * ldc + j0 + j] = 0.0f;
      }
      auto b_at = [&](int64_t j, int64_t p0, int64_t& ldb) -> const float* {
        ldb = nr;
        if (!b_direct) return pb + (j / nr) * nr * k + p0 * nr;
        if (j < full_cols) {
          ldb = b.ld;
          return b.data + p0 * b.ld + j;
        }
        return b_tail + p0 * nr;
      };
      auto a_at = [&](int64_t i, int64_t p0, int64_t& lda) -> const float* {
        lda = 0;
        if (!a_direct) return pa + (i / mr) * mr * k + p0 * mr;
        if (i < full_rows) {
          lda = a.ld;
          return a.data + i * a.ld + p0;
        }
        return a_tail + p0 * mr;
      };
      compute_tiles(kern, m, n, k, i0, mrows, j0, ncols, a_at, b_at, alpha, beta != 0.0f, c, ldc,
                    ep, fused, edge);
      if (!fused) apply_epilogue(ep, c + i0 * ldc + j0, ldc, mrows, ncols, i0, j0);
    }
  });
}

}  // namespace kernels
}  // namespace edgepack
