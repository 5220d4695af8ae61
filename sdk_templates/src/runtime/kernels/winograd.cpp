// SPDX-License-Identifier: Apache-2.0
#include "winograd.h"

#include <algorithm>
#include <cstring>

#include "gemm.h"
#include "microkernel.h"
#include "winograd_transforms.h"

namespace edgepack {
namespace kernels {

namespace {

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// U = G g G^T for one 3x3 filter, in double.
template <class F>
void transform_filter(const float* g, double* u) {
  constexpr int a = F::a;
  double gg[a][3];
  for (int i = 0; i < a; ++i)
    for (int c = 0; c < 3; ++c) {
      double acc = 0.0;
      for (int r = 0; r < 3; ++r) acc += F::G[i][r] * static_cast<double>(g[r * 3 + c]);
      gg[i][c] = acc;
    }
  for (int i = 0; i < a; ++i)
    for (int j = 0; j < a; ++j) {
      double acc = 0.0;
      for (int c = 0; c < 3; ++c) acc += gg[i][c] * F::G[j][c];
      u[i * a + j] = acc;
    }
}

// The activation over the outputs of tiles [t0, t0 + nt) of one output plane (m x m tiles, raster
// order: a partial first tile row, whole ones, a partial last), a row of outputs at a time with
// the micro-kernel's vectors. Here rather than per tile on the transforms' four lanes: SiLU on
// four SSE lanes was most of YOLOv8n's output transform.
void act_rows(const Winograd3x3::Shape& s, int64_t tiles_w, int m, int64_t t0, int64_t nt,
              const TileEpilogue& te, float* plane) {
  const MicroKernel& kern = selected_microkernel();
  const int64_t OH = s.out_h, OW = s.out_w, last = t0 + nt - 1;
  for (int64_t tr = t0 / tiles_w; tr <= last / tiles_w; ++tr) {
    const int64_t c0 = (tr == t0 / tiles_w ? t0 % tiles_w : 0) * m;
    const int64_t c1 = std::min(OW, (tr == last / tiles_w ? last % tiles_w + 1 : tiles_w) * m);
    for (int64_t oh = tr * m; oh < std::min(OH, tr * m + m) && c0 < c1; ++oh)
      kern.act_row(te, plane + oh * OW + c0, plane + oh * OW + c0, c1 - c0);
  }
}

// The transforms at the width of the GEMM micro-kernel in use (so EDGEPACK_CPU_ISA caps it):
// 16 tiles per vector with AVX-512, 8 with AVX2 + FMA, else 4 (SSE, NEON).
struct Transforms {
  void (*input)(int tile, const Winograd3x3::Shape& s, const WinogradImage& img, int64_t t0,
                int64_t nt, int64_t block, int nr, float* v);
  void (*output_row)(int tile, const Winograd3x3::Shape& s, int64_t tiles_w, const float* src,
                     int64_t mstride, int64_t t0, int64_t nt, float bias, int clamp, float lo,
                     float hi, float* plane);
};

void input_w4(int tile, const Winograd3x3::Shape& s, const WinogradImage& img, int64_t t0,
              int64_t nt, int64_t block, int nr, float* v) {
  if (tile == 4)
    input_transform<F4, W4>(s, img, t0, nt, block, nr, v);
  else
    input_transform<F2, W4>(s, img, t0, nt, block, nr, v);
}

void output_row_w4(int tile, const Winograd3x3::Shape& s, int64_t tiles_w, const float* src,
                   int64_t mstride, int64_t t0, int64_t nt, float bias, int clamp, float lo,
                   float hi, float* plane) {
  if (tile == 4)
    output_row<F4, W4>(s, tiles_w, src, mstride, t0, nt, bias, clamp, lo, hi, plane);
  else
    output_row<F2, W4>(s, tiles_w, src, mstride, t0, nt, bias, clamp, lo, hi, plane);
}

Transforms pick_transforms() {
#if defined(__x86_64__) || defined(__i386__)
  const GemmShape& g = gemm_shape();
  if (std::strcmp(g.isa, "avx512") == 0 && g.nr % 16 == 0)
    return {winograd_input_avx512, winograd_output_row_avx512};
  if ((std::strcmp(g.isa, "avx512") == 0 || std::strcmp(g.isa, "avx2") == 0) && g.nr % 8 == 0)
    return {winograd_input_avx2, winograd_output_row_avx2};
#endif
  return {input_w4, output_row_w4};
}

const Transforms& transforms() {
  static const Transforms t = pick_transforms();
  return t;
}

// Y = A^T M A for output channels [m0, m0 + rows) and tiles [t0, t0 + nt): M_xi of channel oc
// (block-local row oc - m0) at mbuf + xi * mstride + (oc - m0) * block. Adds the bias and clamp,
// writes the tiles' valid outputs, then applies the activation to them (act_rows()).
void output_transform(int tile, const Winograd3x3::Shape& s, int64_t tiles_w, const float* mbuf,
                      int64_t mstride, int64_t block, int64_t t0, int64_t nt, int64_t m0,
                      int64_t rows, const Epilogue& ep, const TileEpilogue& te, float* out) {
  const Transforms& tf = transforms();
  const int64_t OH = s.out_h, OW = s.out_w;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t oc = m0 + r;
    float* plane = out + oc * OH * OW;
    tf.output_row(tile, s, tiles_w, mbuf + r * block, mstride, t0, nt,
                  ep.bias != nullptr ? ep.bias[oc] : 0.0f, te.clamp, te.lo, te.hi, plane);
    if (te.act != TileEpilogue::kNone) act_rows(s, tiles_w, tile, t0, nt, te, plane);
  }
}

template <class F>
void run_tiles(const Winograd3x3::Shape& s, const WinogradImage& img, float* output,
               const Epilogue& ep, const float* u, size_t a_floats, int64_t t0, int64_t nt,
               int64_t block, int64_t m0, int64_t rows, float* v, float* mbuf) {
  constexpr int a = F::a;
  const int nr = gemm_shape().nr;
  const int64_t cin = s.in_channels;
  transforms().input(F::m, s, img, t0, nt, block, nr, v);
  const int64_t mstride = xi_floats(rows, block);
  const Epilogue none;
  for (int xi = 0; xi < a * a; ++xi)
    gemm_packed_block(rows, nt, cin, u + xi * a_floats + packed_a_floats(m0, cin),
                      v + xi * xi_floats(cin, block), 0, nt, mbuf + xi * mstride, block, none);
  output_transform(F::m, s, img.tiles_w, mbuf, mstride, block, t0, nt, m0, rows, ep,
                   tile_epilogue(ep, 0, 0), output);
}

}  // namespace

void Winograd3x3::prepare(const Shape& shape, const float* weights, int tile, int threads) {
  s_ = shape;
  m_ = tile == 2 ? 2 : 4;
  a_ = m_ + 2;
  tiles_h_ = ceil_div(s_.out_h, m_);
  tiles_w_ = ceil_div(s_.out_w, m_);
  const int64_t cin = s_.in_channels, cout = s_.out_channels, xis = a_ * a_;
  std::vector<double> u(static_cast<size_t>(xis));
  std::vector<float> t(static_cast<size_t>(xis * cout * cin));  // [xi][oc][ic]
  for (int64_t oc = 0; oc < cout; ++oc)
    for (int64_t ic = 0; ic < cin; ++ic) {
      const float* g = weights + (oc * cin + ic) * 9;
      if (m_ == 4)
        transform_filter<F4>(g, u.data());
      else
        transform_filter<F2>(g, u.data());
      for (int64_t xi = 0; xi < xis; ++xi)
        t[static_cast<size_t>((xi * cout + oc) * cin + ic)] =
            static_cast<float>(u[static_cast<size_t>(xi)]);
    }
  a_floats_ = packed_a_floats(cout, cin);
  u_.assign(a_floats_ * static_cast<size_t>(xis), 0.0f);
  for (int64_t xi = 0; xi < xis; ++xi)
    pack_a(t.data() + xi * cout * cin, cin, false, cout, cin, u_.data() + xi * a_floats_);
  // Blocks of tiles whose transformed input (a^2 x in x block floats) is at most ~512 KiB, so it
  // is still in L2 when the GEMMs read it; at least one panel.
  const int64_t nr = gemm_shape().nr, tiles = tiles_h_ * tiles_w_;
  block_ =
      nr * std::max<int64_t>(1, std::min(ceil_div(tiles, nr), (512 * 1024 / 4) / (xis * cin * nr)));
  slots_ = std::max(1, threads);
  slot_floats_ = static_cast<size_t>(xis * (xi_floats(cin, block_) + xi_floats(cout, block_)));
  // The padded image covers every tile's a x a window, and 8 floats from each tile's first column
  // (the input transform's two vector loads).
  padded_h_ = tiles_h_ * m_ + 2;
  padded_w_ = tiles_w_ * m_ + 4;
  scratch_floats_ = slot_floats_ * static_cast<size_t>(slots_) +
                    static_cast<size_t>(cin * padded_h_ * padded_w_) + 16;
}

void Winograd3x3::run(const float* input, float* output, const Epilogue& ep, float* scratch,
                      ThreadPool* pool) const {
  const int64_t nr = gemm_shape().nr, mr = gemm_shape().mr;
  const int64_t tiles = tiles_h_ * tiles_w_, cout = s_.out_channels, cin = s_.in_channels;
  const int64_t xis = a_ * a_;
  const int64_t slots = pool != nullptr ? std::min<int64_t>(slots_, pool->threads()) : 1;
  // Blocks of equal width, as many as a multiple of the threads (see Conv2d's im2col path).
  const int64_t panels = ceil_div(tiles, nr);
  const int64_t blocks_min = ceil_div(panels, block_ / nr);
  const int64_t target =
      blocks_min >= slots ? std::min(panels, ceil_div(blocks_min, slots) * slots) : blocks_min;
  const int64_t bt = ceil_div(panels, target) * nr;
  const int64_t blocks = ceil_div(tiles, bt);
  // Few blocks, or blocks that do not deal out evenly: split them over output channels.
  int64_t parts = 1;
  if (slots > 1 && blocks < 4 * slots) {
    int64_t x = blocks, y = slots;
    while (y != 0) {
      const int64_t r = x % y;
      x = y;
      y = r;
    }
    parts = slots / x;
  }
  const int64_t mpanels = ceil_div(cout, mr);
  parts = std::max<int64_t>(1, std::min(parts, mpanels));
  const int64_t rows = ceil_div(mpanels, parts) * mr;
  parts = ceil_div(cout, rows);
  const int64_t tasks = blocks * parts;

  // The zero-padded input, after the slots.
  float* padded = scratch + static_cast<size_t>(slots_) * slot_floats_;
  const int64_t hp = padded_h_, wp = padded_w_, H = s_.in_h, W = s_.in_w;
  auto pad = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float* dst = padded + c * hp * wp;
      const float* src = input + c * H * W;
      for (int64_t i = 0; i < hp; ++i, dst += wp) {
        const int64_t ih = i - s_.pad_top;
        if (ih < 0 || ih >= H) {
          std::fill(dst, dst + wp, 0.0f);
          continue;
        }
        // Columns [pad_left, pad_left + W) hold the row; pad_left + W may pass wp (the right
        // columns no tile reads are dropped).
        const int64_t w = std::min(W, wp - s_.pad_left);
        std::fill(dst, dst + std::min(wp, s_.pad_left), 0.0f);
        if (w > 0) std::copy(src + ih * W, src + ih * W + w, dst + s_.pad_left);
        std::fill(dst + std::min(wp, s_.pad_left + std::max<int64_t>(w, 0)), dst + wp, 0.0f);
      }
    }
  };
  if (slots > 1)
    pool->parallel_for(cin, pad);
  else
    pad(0, cin);
  const WinogradImage img{padded, wp, hp * wp, tiles_w_};
  OwnedTasks owned(tasks, slots);  // thread t: the t-th share of the tile rows (see ThreadPool)
  auto work = [&](int64_t s0, int64_t s1) {
    for (int64_t slot = s0; slot < s1; ++slot) {
      float* v = scratch + static_cast<size_t>(slot) * slot_floats_;
      float* mbuf = v + xis * xi_floats(cin, block_);
      for (int64_t t = owned.claim(slot); t >= 0; t = owned.claim(slot)) {
        const int64_t blk = t / parts, m0 = (t % parts) * rows;
        const int64_t t0 = blk * bt, nt = std::min(bt, tiles - t0);
        const int64_t mrows = std::min(rows, cout - m0);
        if (m_ == 4)
          run_tiles<F4>(s_, img, output, ep, u_.data(), a_floats_, t0, nt, bt, m0, mrows, v, mbuf);
        else
          run_tiles<F2>(s_, img, output, ep, u_.data(), a_floats_, t0, nt, bt, m0, mrows, v, mbuf);
      }
    }
  };
  if (slots > 1)
    pool->parallel_for(slots, work);
  else
    work(0, 1);
}

}  // namespace kernels
}  // namespace edgepack
