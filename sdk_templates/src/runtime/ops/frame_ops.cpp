// SPDX-License-Identifier: Apache-2.0
// Camera-frame ops that lowering fuses out of the pre-processing and crop graphs
// (packager/edgepack/lower/frame_fusion.py; not ONNX ops, docs/device-graph-format.md):
//
//   FramePreprocess  uint8 [H, W, C] frame -> float [1, C', h, w] (or [1, h, w, C']) in one pass:
//                    channel order (or luma), resize (linear half_pixel or nearest asymmetric
//                    floor), letterbox padding, (x - mean) / std.
//   FrameRoiAlign    uint8 frame + rois [R, 4] + batch_indices [R] -> RoiAlign crops
//                    [R, C', oh, ow] of the normalised frame, sampled from the frame's bytes.
//
// Each replaces Cast -> Gather/MatMul -> Unsqueeze -> Transpose -> [Resize] -> [Pad] -> [Sub] ->
// [Div] (-> RoiAlign): several passes over float copies of the whole frame. They compute the
// same values in another order (rows blended before columns, a multiply by 1 / std), so outputs
// match the ONNX graphs that the host reference runs to float rounding.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define EDGEPACK_FRAME_AVX2 1
#endif

#include "runtime/kernels/microkernel.h"
#include "runtime/kernels/vec4.h"
#include "runtime/ops/op_util.h"
#include "runtime/ops/roi_align.h"

namespace edgepack {
namespace ops {
namespace {

constexpr int kMaxChannels = 4;
// Floats readable past the end of a blended frame row: a pixel's channels are loaded as one
// four-lane vector (pixel_vector), whatever the frame's channel count.
constexpr int64_t kRowPad = 4;

// Output channel c' = sum_k matrix[c'][k] * frame channel k. One-hot rows (channel order, gray to
// colour) read one byte; other rows (luma) mix in float.
struct ChannelMap {
  int out = 0, in = 0;
  std::array<int, kMaxChannels> pick{};  // one-hot rows: the source channel; else -1
  std::vector<float> matrix;             // out x in
  std::array<float, kMaxChannels> mean{}, std{};
  bool sub = false, div = false;

  float mix(const uint8_t* px, int c) const {
    if (pick[c] >= 0) return static_cast<float>(px[pick[c]]);
    float v = 0.0f;
    for (int k = 0; k < in; ++k) v += matrix[c * in + k] * static_cast<float>(px[k]);
    return v;
  }
  float normalise(float v, int c) const {
    if (sub) v = v - mean[c];
    if (div) v = v / std[c];
    return v;
  }
};

ChannelMap read_channels(PrepareContext& ctx, int in) {
  ChannelMap m;
  m.in = in;
  m.matrix = ctx.attrs->get_floats("channel_matrix");
  if (in < 1 || in > kMaxChannels || m.matrix.empty() || m.matrix.size() % in != 0 ||
      m.matrix.size() / in > kMaxChannels)
    ctx.fail("channel_matrix does not fit a frame of " + std::to_string(in) + " channels");
  m.out = static_cast<int>(m.matrix.size()) / in;
  for (int c = 0; c < m.out; ++c) {
    int one = -1, nonzero = 0;
    for (int k = 0; k < in; ++k) {
      const float w = m.matrix[c * in + k];
      if (w != 0.0f) ++nonzero;
      if (w == 1.0f) one = k;
    }
    m.pick[c] = nonzero == 1 ? one : -1;
  }
  const std::vector<float> mean = ctx.attrs->get_floats("mean");
  const std::vector<float> std_ = ctx.attrs->get_floats("std");
  m.sub = !mean.empty();
  m.div = !std_.empty();
  if ((m.sub && static_cast<int>(mean.size()) != m.out) ||
      (m.div && static_cast<int>(std_.size()) != m.out))
    ctx.fail("mean and std need one value per output channel");
  for (int c = 0; c < m.out; ++c) {
    m.mean[c] = m.sub ? mean[c] : 0.0f;
    m.std[c] = m.div ? std_[c] : 1.0f;
  }
  return m;
}

Tensor* need_frame(PrepareContext& ctx) {
  Tensor* f = need_input(ctx, 0, "frame");
  need_dtype(ctx, *f, DType::kUInt8);
  need_rank(ctx, *f, 3);
  return f;
}

// Per output index along one axis: two source indices and the second one's weight (nearest:
// the same index twice, weight 0).
struct AxisTaps {
  std::vector<int64_t> lo, hi;
  std::vector<float> w;
};

AxisTaps axis_taps(bool linear, float scale, int64_t in, int64_t out) {
  AxisTaps t;
  t.lo.resize(static_cast<size_t>(out));
  t.hi.resize(static_cast<size_t>(out));
  t.w.assign(static_cast<size_t>(out), 0.0f);
  for (int64_t o = 0; o < out; ++o) {
    const auto i = static_cast<size_t>(o);
    if (!linear) {  // asymmetric, floor (cv2 INTER_NEAREST)
      const auto s = static_cast<int64_t>(std::floor(static_cast<float>(o) / scale));
      t.lo[i] = t.hi[i] = std::min(std::max<int64_t>(s, 0), in - 1);
      continue;
    }
    float c = (static_cast<float>(o) + 0.5f) / scale - 0.5f;  // half_pixel, as ops/resize.cpp
    c = std::min(std::max(c, 0.0f), static_cast<float>(in - 1));
    const auto lo = static_cast<int64_t>(std::floor(c));
    t.lo[i] = lo;
    t.hi[i] = std::min(lo + 1, in - 1);
    t.w[i] = c - static_cast<float>(lo);
  }
  return t;
}

struct PreprocessState : OpState {
  ChannelMap ch;
  int slots = 1;  // scratch rows: one per thread
  bool nhwc = false, linear = false;
  int64_t top = 0, left = 0, new_h = 0, new_w = 0, out_h = 0, out_w = 0;
  AxisTaps ty, tx;
  std::vector<int32_t> col_lo, col_hi;    // tx's source pixels as float offsets in a blended row
  std::vector<float> col_w8;              // tx's weights for preprocess_columns_avx2
  bool col_adjacent = false;              // every col_hi is col_lo + channels, or weight 0
  std::array<float, kMaxChannels> pad{};  // the padding value, normalised
  int64_t row_floats = 0;                 // one scratch row: the frame's row + kRowPad
};

// The frame channels of the pixel at float offset `at` of a blended row (lanes past the frame's
// channel count hold the next pixel's, or padding: never used).
inline V4 pixel_vector(const float* row, int32_t at) {
  return load4(row + at);
}

// What store_channels needs of a ChannelMap, copied into a local: its stores go through the
// may_alias V4 type, so fields read through a reference would be reloaded after every store
// (8% of FramePreprocess's column pass was such reloads).
struct ChannelStore {
  int out = 0;
  int pick[kMaxChannels] = {};
  float mean[kMaxChannels] = {}, scale[kMaxChannels] = {};
};

inline ChannelStore channel_store(const ChannelMap& ch, const float* scale) {
  ChannelStore cs;
  cs.out = ch.out;
  for (int c = 0; c < ch.out; ++c) {
    cs.pick[c] = ch.pick[c];
    cs.mean[c] = ch.mean[c];
    cs.scale[c] = scale[c];
  }
  return cs;
}

// out[c * cs + x] = (v[pick[c]] - n[x] * mean[c]) * scale[c] for four pixels side by side, x in
// [0, 4): v[j] holds pixel j's frame channels (transposed in place to one vector per channel);
// n[x] is how many samples the value sums (1 for one pixel). CO: the channel count when known
// at compile time (3: colour), else 0 and ch.out.
template <int CO>
inline void store_channels(V4* v, const ChannelStore& ch, V4 n, float* out, int64_t cs) {
  transpose4(v);
  const int co = CO > 0 ? CO : ch.out;
  for (int c = 0; c < co; ++c) store4(out + c * cs, (v[ch.pick[c]] - n * ch.mean[c]) * ch.scale[c]);
}

// Weights for preprocess_columns_avx2, eight pixels a block: per block the vectors j = 0..3 of
// pixels j and j + 4 (wx[j] four times, then wx[j + 4] four times), one load each.
std::vector<float> column_weights_avx2(const std::vector<float>& wx) {
  std::vector<float> v;
  const size_t n = wx.size() / 8 * 8;
  v.reserve(n * 4);
  for (size_t b = 0; b < n; b += 8)
    for (size_t j = 0; j < 4; ++j) {
      v.insert(v.end(), 4, wx[b + j]);
      v.insert(v.end(), 4, wx[b + j + 4]);
    }
  return v;
}

}  // namespace

void frame_preprocess_prepare(PrepareContext& ctx) {
  Tensor* f = need_frame(ctx);
  need_outputs(ctx, 1);
  auto st = std::make_unique<PreprocessState>();
  const int64_t h = f->static_shape[0], w = f->static_shape[1];
  st->ch = read_channels(ctx, static_cast<int>(f->static_shape[2]));
  const int co = st->ch.out;
  st->nhwc = ctx.attrs->get_string("layout", "nchw") == "nhwc";
  const std::string mode = ctx.attrs->get_string("mode", "none");
  if (mode != "none" && mode != "linear" && mode != "nearest")
    ctx.fail("unsupported resize mode '" + mode + "'");
  st->linear = mode == "linear";
  const std::vector<int64_t> resized = ctx.attrs->get_ints("resized");
  const std::vector<float> scales = ctx.attrs->get_floats("scales");
  const std::vector<int64_t> pads = ctx.attrs->get_ints("pads");
  if (resized.size() != 2 || scales.size() != 2 || pads.size() != 4)
    ctx.fail("needs resized [h, w], scales [y, x] and pads [top, left, bottom, right]");
  st->new_h = resized[0];
  st->new_w = resized[1];
  st->top = pads[0];
  st->left = pads[1];
  st->out_h = st->top + st->new_h + pads[2];
  st->out_w = st->left + st->new_w + pads[3];
  for (int64_t p : pads)
    if (p < 0) ctx.fail("negative padding");
  if (mode == "none" && (st->new_h != h || st->new_w != w))
    ctx.fail("a size change needs a resize mode");
  if (st->nhwc)
    need_shape(ctx, *ctx.outputs[0], {1, st->out_h, st->out_w, co});
  else
    need_shape(ctx, *ctx.outputs[0], {1, co, st->out_h, st->out_w});
  need_dtype(ctx, *ctx.outputs[0], DType::kFloat32);
  const bool resize = mode != "none";
  st->ty = axis_taps(st->linear, resize ? scales[0] : 1.0f, h, st->new_h);
  st->tx = axis_taps(st->linear, resize ? scales[1] : 1.0f, w, st->new_w);
  st->col_adjacent = true;
  for (size_t i = 0; i < st->tx.lo.size(); ++i) {
    st->col_lo.push_back(static_cast<int32_t>(st->tx.lo[i] * f->static_shape[2]));
    st->col_hi.push_back(static_cast<int32_t>(st->tx.hi[i] * f->static_shape[2]));
    st->col_adjacent = st->col_adjacent && (st->tx.hi[i] == st->tx.lo[i] + 1 ||
                                            (st->tx.hi[i] == st->tx.lo[i] && st->tx.w[i] == 0.0f));
  }
#if defined(EDGEPACK_FRAME_AVX2)
  st->col_w8 = column_weights_avx2(st->tx.w);
#endif
  const float pad_value = ctx.attrs->get_float("pad_value", 0.0f);
  for (int c = 0; c < co; ++c) st->pad[c] = st->ch.normalise(pad_value, c);
  st->slots = std::max(ctx.threads, 1);
  st->row_floats = w * f->static_shape[2] + kRowPad;
  ctx.scratch_bytes = static_cast<size_t>(st->slots * st->row_floats) * sizeof(float);
  ctx.state = std::move(st);
}

namespace {

// Prefetches two frame rows of n bytes over the `steps` steps of a loop, a few cache lines a
// step (step()), the rest at the end (rest()). The next output row's frame rows, read while this
// row's columns run: in the pipeline the networks have pushed the frame out of L2, and one burst
// of all the rows' lines ahead of the column pass was slower (more misses in flight than the
// core tracks; example pipeline, detector.pre 0.205 -> 0.175 ms spread).
struct RowPrefetch {
  const char *r0 = nullptr, *r1 = nullptr;
  int64_t lines = 0, per = 0, done = 0;
  RowPrefetch() = default;
  RowPrefetch(const uint8_t* a, const uint8_t* b, int64_t n, int64_t steps) {
    const auto base = [](const uint8_t* p) {
      return reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63});
    };
    r0 = base(a);
    r1 = base(b);
    lines = std::max(reinterpret_cast<const char*>(a) + n - r0,
                     reinterpret_cast<const char*>(b) + n - r1);
    lines = (lines + 63) / 64;
    per = steps > 0 ? (lines + steps - 1) / steps : lines;
  }
  void step() {
    for (const int64_t end = std::min(done + per, lines); done < end; ++done) {
      __builtin_prefetch(r0 + done * 64);
      __builtin_prefetch(r1 + done * 64);
    }
  }
  void rest() {
    per = lines;
    step();
  }
};

// The column pass of a linear FramePreprocess row into NCHW, four output pixels at a time, each
// pixel's channels one vector (two blended pixels of tmp mixed by wx). Returns the pixels done
// (a multiple of 4; the caller does the rest).
template <int CO>
int64_t preprocess_columns(const float* tmp, const int32_t* xl, const int32_t* xh, const float* wx,
                           int64_t n, const ChannelStore& ch, float* out, int64_t cs,
                           RowPrefetch& next) {
  const V4 one = {1.0f, 1.0f, 1.0f, 1.0f};
  int64_t rx = 0;
  for (; rx + 4 <= n; rx += 4) {
    next.step();
    V4 v[4];
    for (int j = 0; j < 4; ++j) {
      const V4 a = pixel_vector(tmp, xl[rx + j]);
      v[j] = a + wx[rx + j] * (pixel_vector(tmp, xh[rx + j]) - a);
    }
    store_channels<CO>(v, ch, one, out + rx, cs);
  }
  return rx;
}

#if defined(EDGEPACK_FRAME_AVX2)
// preprocess_columns eight pixels at a time on AVX2 + FMA (the library's baseline is SSE2):
// pixels j and j + 4 share a 256-bit register, one per 128-bit lane, so the in-lane 4x4
// transpose leaves each channel of pixels 0..7 contiguous. Chosen with the float GEMM's kernel
// set (so EDGEPACK_CPU_ISA=generic turns it off).
__attribute__((target("avx2,fma"))) inline __m256 load_pair(const float* p, const float* q) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(q), 1);
}

// Frame channel k (0-3) of pixels 0..7 from the halves t0..t3 of the in-lane 4x4 transpose (t0, t1
// = unpacklo / unpackhi of pixel vectors 0 and 1, t2, t3 of 2 and 3). The callers' k is the same
// for a whole loop: the branch is predicted and the vectors stay in registers (a run-time index
// into an array of them spilled them).
__attribute__((target("avx2,fma"), always_inline)) inline __m256 frame_channel(int k, __m256 t0,
                                                                               __m256 t1, __m256 t2,
                                                                               __m256 t3) {
  switch (k) {
    case 0:
      return _mm256_shuffle_ps(t0, t2, 0x44);
    case 1:
      return _mm256_shuffle_ps(t0, t2, 0xEE);
    case 2:
      return _mm256_shuffle_ps(t1, t3, 0x44);
    default:
      return _mm256_shuffle_ps(t1, t3, 0xEE);
  }
}

// The channel parameters of preprocess_columns_avx2, per output channel: its plane, the frame
// channel it reads, its scale and -mean * scale.
struct ColumnChannels {
  int out = 0;
  float* plane[kMaxChannels] = {};
  int pick[kMaxChannels] = {};
  float scale[kMaxChannels] = {}, shift[kMaxChannels] = {};
};

// Each right pixel is the left one's neighbour (PreprocessState::col_adjacent: xh = xl + ci, or
// the same pixel with weight 0, read against the next pixel of the row or its zeroed padding),
// so one offset a pixel.
__attribute__((target("avx2,fma"))) int64_t preprocess_columns_avx2(
    const float* tmp, const int32_t* xl, const float* w8, int64_t ci, int64_t n,
    const ColumnChannels& channels, RowPrefetch& prefetch) {
  const ColumnChannels ch = channels;  // locals: the stores may alias what a reference reads
  RowPrefetch next = prefetch;
  const int co = ch.out;
  __m256 scale[kMaxChannels], shift[kMaxChannels];
  for (int c = 0; c < kMaxChannels; ++c) {
    scale[c] = _mm256_set1_ps(ch.scale[c]);
    shift[c] = _mm256_set1_ps(ch.shift[c]);
  }
  int64_t rx = 0;
  for (; rx + 8 <= n; rx += 8, w8 += 32) {
    next.step();
    next.step();
    __m256 v[4];
    for (int j = 0; j < 4; ++j) {
      const int64_t p = rx + j, q = rx + 4 + j;
      const float* ap = tmp + xl[p];
      const float* aq = tmp + xl[q];
      const __m256 a = load_pair(ap, aq);
      const __m256 b = load_pair(ap + ci, aq + ci);
      v[j] = _mm256_fmadd_ps(_mm256_loadu_ps(w8 + 8 * j), _mm256_sub_ps(b, a), a);
    }
    // the in-lane 4x4 transpose: frame channel k of pixels 0..7 in order
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    for (int c = 0; c < co; ++c) {
      const __m256 x = frame_channel(ch.pick[c], t0, t1, t2, t3);
      _mm256_storeu_ps(ch.plane[c] + rx, _mm256_fmadd_ps(x, scale[c], shift[c]));
    }
  }
  prefetch = next;
  return rx;
}

#endif

// Whether the frame ops' AVX2 paths run: with the float GEMM's AVX2 or AVX-512 kernel set (so
// EDGEPACK_CPU_ISA=generic turns them off).
bool frame_avx2() {
  static const bool on = [] {
    const char* k = kernels::selected_microkernel().isa;
#if defined(EDGEPACK_FRAME_AVX2)
    return std::strcmp(k, "avx512") == 0 || std::strcmp(k, "avx2") == 0;
#else
    (void)k;
    return false;
#endif
  }();
  return on;
}

void blend_rows(const uint8_t* r0, const uint8_t* r1, float w0, float w1, float* y, int64_t n,
                bool accumulate) {
  kernels::selected_microkernel().blend_rows_u8(r0, r1, w0, w1, y, n, accumulate);
}

// One output row of FramePreprocess (ry: the row inside the resized area, or -1 for a padding
// row). Linear: the two source rows blended first (a contiguous pass over the row's bytes), then
// each output pixel from two blended values.
void preprocess_row(const PreprocessState& st, const uint8_t* frame, int64_t w, int64_t ci,
                    int64_t ry, float* tmp, float* y, int64_t oy) {
  const int co = st.ch.out;
  const int64_t plane = st.out_h * st.out_w;
  const int64_t cs = st.nhwc ? 1 : plane, xs = st.nhwc ? co : 1;  // channel, column strides
  float* row = y + (st.nhwc ? oy * st.out_w * co : oy * st.out_w);
  for (int c = 0; c < co; ++c) {
    float* out = row + c * cs;
    const float pad = st.pad[c];
    const int64_t lo = ry < 0 ? st.out_w : st.left, hi = ry < 0 ? st.out_w : st.left + st.new_w;
    if (xs == 1) {  // NCHW: contiguous runs (a vectorised fill, not a strided loop)
      std::fill(out, out + lo, pad);
      std::fill(out + hi, out + st.out_w, pad);
      continue;
    }
    for (int64_t ox = 0; ox < lo; ++ox) out[ox * xs] = pad;
    for (int64_t ox = hi; ox < st.out_w; ++ox) out[ox * xs] = pad;
  }
  if (ry < 0) return;
  const auto iy = static_cast<size_t>(ry);
  const uint8_t* r0 = frame + st.ty.lo[iy] * w * ci;
  const uint8_t* r1 = frame + st.ty.hi[iy] * w * ci;
  const int64_t n = w * ci;
  bool onehot = true;
  for (int c = 0; c < co; ++c) onehot = onehot && st.ch.pick[c] >= 0;
  if (st.linear && onehot) {
    const float wy = st.ty.w[iy];
    blend_rows(r0, r1, 1.0f - wy, wy, tmp, n, false);
    RowPrefetch next;  // the next row's frame rows, a few lines per step of the column pass
    if (iy + 1 < st.ty.lo.size())
      next = RowPrefetch(frame + st.ty.lo[iy + 1] * w * ci, frame + st.ty.hi[iy + 1] * w * ci, n,
                         st.new_w / 4);
    const int32_t* xl = st.col_lo.data();  // float offsets of the left / right pixel
    const int32_t* xh = st.col_hi.data();
    const float* wx = st.tx.w.data();
    float rstd[kMaxChannels];
    for (int c = 0; c < co; ++c) rstd[c] = 1.0f / st.ch.std[c];
    int64_t rx = 0;
    if (xs == 1) {  // NCHW: four pixels at a time, all channels of a pixel in one vector
      const ChannelStore chs = channel_store(st.ch, rstd);
#if defined(EDGEPACK_FRAME_AVX2)
      if (frame_avx2() && st.col_adjacent) {
        ColumnChannels cc;
        cc.out = co;
        for (int c = 0; c < co; ++c) {
          cc.plane[c] = row + st.left + c * cs;
          cc.pick[c] = st.ch.pick[c];
          cc.scale[c] = rstd[c];
          cc.shift[c] = -st.ch.mean[c] * rstd[c];
        }
        rx = preprocess_columns_avx2(tmp, xl, st.col_w8.data(), ci, st.new_w, cc, next);
      }
#endif
      const int64_t more = st.new_w - rx;
      rx += co == 3 ? preprocess_columns<3>(tmp, xl + rx, xh + rx, wx + rx, more, chs,
                                            row + st.left + rx, cs, next)
                    : preprocess_columns<0>(tmp, xl + rx, xh + rx, wx + rx, more, chs,
                                            row + st.left + rx, cs, next);
    }
    next.rest();
    for (int c = 0; c < co; ++c) {
      const float* t = tmp + st.ch.pick[c];
      const float mean = st.ch.mean[c];
      float* out = row + c * cs + st.left * xs;
      for (int64_t x = rx; x < st.new_w; ++x) {
        const float a = t[xl[x]];
        out[x * xs] = (a + wx[x] * (t[xh[x]] - a) - mean) * rstd[c];
      }
    }
    return;
  }
  const float wy = st.ty.w[iy];
  for (int64_t rx = 0; rx < st.new_w; ++rx) {
    const auto ix = static_cast<size_t>(rx);
    const int64_t x0 = st.tx.lo[ix] * ci, x1 = st.tx.hi[ix] * ci;
    const float wx = st.tx.w[ix];
    for (int c = 0; c < co; ++c) {
      float v;
      if (st.linear) {  // ops/resize.cpp's order: along x, then along y
        const float a0 = st.ch.mix(r0 + x0, c), a1 = st.ch.mix(r0 + x1, c);
        const float b0 = st.ch.mix(r1 + x0, c), b1 = st.ch.mix(r1 + x1, c);
        const float top = a0 * (1.0f - wx) + a1 * wx, bottom = b0 * (1.0f - wx) + b1 * wx;
        v = top * (1.0f - wy) + bottom * wy;
      } else {
        v = st.ch.mix(r0 + x0, c);
      }
      row[c * cs + (st.left + rx) * xs] = st.ch.normalise(v, c);
    }
  }
}

}  // namespace

void frame_preprocess_run(RunContext& ctx) {
  const auto& st = *ctx.state_as<PreprocessState>();
  const Tensor* f = ctx.input(0);
  const uint8_t* frame = f->as<uint8_t>();
  const int64_t w = f->shape[1], ci = f->shape[2];
  float* y = ctx.output(0)->as<float>();
  float* scratch = static_cast<float*>(ctx.scratch);
  const int64_t rows = st.out_h;
  for (int s = 0; s < st.slots; ++s)  // a blended row's padding: read with weight 0 (col_adjacent)
    std::fill(scratch + s * st.row_floats + w * ci, scratch + (s + 1) * st.row_floats, 0.0f);
  auto work = [&](int64_t s0, int64_t s1) {  // slots [s0, s1): their rows, one scratch row
    for (int64_t s = s0; s < s1; ++s)
      for (int64_t oy = rows * s / st.slots; oy < rows * (s + 1) / st.slots; ++oy) {
        const int64_t ry = oy - st.top;
        preprocess_row(st, frame, w, ci, ry >= 0 && ry < st.new_h ? ry : -1,
                       scratch + s0 * st.row_floats, y, oy);
      }
  };
  ThreadPool* pool = pool_for(ctx.pool, 8.0 * static_cast<double>(ctx.output(0)->numel()));
  if (pool != nullptr && st.slots > 1)
    pool->parallel_for(st.slots, work);
  else
    work(0, st.slots);
}

namespace {

struct CropState : OpState {
  ChannelMap ch;
  RoiAlignAttrs a;
  std::vector<float> lut;  // one-hot channels: normalised value per output channel and byte
  bool fast = false;       // avg, a fixed sampling grid, one-hot channels: crop_row
  int slots = 1;           // scratch per thread (fast): sample columns and accumulators
  size_t slot_bytes = 0;
};

// The column taps of a RoiAlign output row: per bin (a stride of 2 * gw taps) the blended
// pixels its samples read, each once with the sum of its weights (float offsets into the
// blended row), and their count. A crop narrower than its output has samples closer than a
// pixel apart, which share pixels: the example's crops read about half the taps that the
// samples' two pixels each would (samples outside the frame add 0 and have no tap).
struct ColumnTaps {
  int32_t* off;
  float* w;
  int32_t* count;  // per bin
};

// Adds weight w of pixel `at` to the taps [t, t + n) of one bin or of one output row.
template <class T>
inline void add_tap(T* at_list, float* w_list, int32_t& n, T at, float w) {
  if (w == 0.0f) return;
  for (int32_t k = 0; k < n; ++k)
    if (at_list[k] == at) {
      w_list[k] += w;
      return;
    }
  at_list[n] = at;
  w_list[n++] = w;
}

// crop_row's bins eight at a time (crop_bins_avx2), per block of eight bins: its tap count (the
// most of its bins'), then per tap the eight bins' pixel offsets (bins with fewer taps repeat a
// pixel of the row with weight 0) and their weights laid out as preprocess_columns_avx2's.
struct BinBlocks {
  int32_t* taps;
  int32_t* off;  // [block][tap][8]
  float* w;      // [block][tap][4][8]
};

size_t bin_block_bytes(int64_t ow, int64_t stride) {
  const auto blocks = static_cast<size_t>(ow / 8), n = static_cast<size_t>(stride);
  return blocks * sizeof(int32_t) + blocks * n * 8 * (sizeof(int32_t) + 4 * sizeof(float));
}

// Bytes of a crop_row slot: the span, the column taps, samples inside per bin, the frame rows
// of an output row and their weights, the bin blocks, the blended row.
size_t crop_slot_bytes(int64_t ow, int64_t sampling, int64_t w, int64_t ci) {
  const auto taps = static_cast<size_t>(2 * ow * sampling),
             rows = static_cast<size_t>(2 * sampling);
  const size_t bytes = 2 * sizeof(int64_t) + taps * (sizeof(int32_t) + sizeof(float)) +
                       static_cast<size_t>(ow) * (sizeof(int32_t) + sizeof(float)) +
                       rows * (sizeof(int32_t) + sizeof(float)) +
                       bin_block_bytes(ow, 2 * sampling) +
                       static_cast<size_t>(w * ci + kRowPad) * sizeof(float);
  return (bytes + 63) / 64 * 64;
}

#if defined(EDGEPACK_FRAME_AVX2)
// crop_row's bins on AVX2 + FMA, eight at a time (bins j and j + 4 share a register, as in
// preprocess_columns_avx2): each block's taps (BinBlocks) summed, then per output channel
// (sum - n * mean) * scale with n the bin's samples inside the frame. Returns the bins done.
__attribute__((target("avx2,fma"))) int64_t crop_bins_avx2(const float* tmp, const BinBlocks& bb,
                                                           int64_t blocks, int64_t stride,
                                                           const float* inside, float rows_inside,
                                                           const ColumnChannels& channels) {
  const ColumnChannels ch = channels;  // a local: the stores may alias what a reference reads
  const int co = ch.out;
  __m256 scale[kMaxChannels], shift[kMaxChannels];
  for (int c = 0; c < kMaxChannels; ++c) {
    scale[c] = _mm256_set1_ps(ch.scale[c]);
    shift[c] = _mm256_set1_ps(ch.shift[c]);
  }
  const __m256 rows = _mm256_set1_ps(rows_inside);
  for (int64_t b = 0; b < blocks; ++b) {
    __m256 v[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    const int32_t* o = bb.off + b * stride * 8;
    const float* w = bb.w + b * stride * 32;
    for (int32_t k = 0; k < bb.taps[b]; ++k, o += 8, w += 32)
      for (int j = 0; j < 4; ++j)
        v[j] = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8 * j), load_pair(tmp + o[j], tmp + o[j + 4]),
                               v[j]);
    const __m256 n = _mm256_mul_ps(rows, _mm256_loadu_ps(inside + b * 8));
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    for (int c = 0; c < co; ++c) {
      const __m256 x = frame_channel(ch.pick[c], t0, t1, t2, t3);
      _mm256_storeu_ps(ch.plane[c] + b * 8,
                       _mm256_fmadd_ps(x, scale[c], _mm256_mul_ps(n, shift[c])));
    }
  }
  return blocks * 8;
}
#endif

// RoiAlign output row `ph` of one roi, channels one-hot (avg mode, sampling grid gh x gw). The
// frame rows of all gh sample rows are blended into one row (a contiguous pass over the roi's
// columns: bilinear sampling is linear, so the bin's sum over its samples is the sum over its
// sample columns of this row; a frame row two samples read is read once, with both weights),
// then each bin sums its column taps, all channels of a pixel in one vector. The normalisation
// is affine and a sample's four weights sum to 1, so the average of normalised samples is
// ((sum of raw samples) - n * mean) / std over the n samples inside the frame (the others add
// 0, as in ops/roi_align.cpp).
// `same_roi`: the slot's column taps are this roi's already (the previous row's).
void crop_row(const CropState& st, const uint8_t* frame, int64_t h, int64_t w, int64_t ci,
              const float* roi, int64_t ph, void* slot, bool same_roi, float* out_roi) {
  const int co = st.ch.out;
  const int64_t ow = st.a.ow, oh = st.a.oh;
  const RoiGrid g = roi_grid(st.a, roi);
  const int64_t gh = g.gh, gw = g.gw, stride = 2 * gw;
  // slot: [first, last] pixel columns the taps read, then crop_slot_bytes' arrays
  int64_t* span = static_cast<int64_t*>(slot);
  auto* at = reinterpret_cast<int32_t*>(span + 2);
  ColumnTaps tap{at, reinterpret_cast<float*>(at + ow * stride), nullptr};
  tap.count = reinterpret_cast<int32_t*>(tap.w + ow * stride);
  auto* inside = reinterpret_cast<float*>(tap.count + ow);  // samples inside the frame per bin
  auto* row_at = reinterpret_cast<int32_t*>(inside + ow);   // 2 * gh frame rows and weights
  auto* row_w = reinterpret_cast<float*>(row_at + 2 * gh);
  const int64_t blocks = ow / 8;
  BinBlocks bb{reinterpret_cast<int32_t*>(row_w + 2 * gh), nullptr, nullptr};
  bb.off = bb.taps + blocks;
  bb.w = reinterpret_cast<float*>(bb.off + blocks * stride * 8);
  float* tmp = bb.w + blocks * stride * 32;  // w * ci + kRowPad: the blended frame rows
  int64_t& first = span[0];
  int64_t& last = span[1];
  if (!same_roi) {
    first = w;
    last = -1;
    for (int64_t pw = 0; pw < ow; ++pw) {
      inside[pw] = 0.0f;
      int32_t* o = tap.off + pw * stride;
      float* tw = tap.w + pw * stride;
      int32_t& n = tap.count[pw];
      n = 0;
      for (int64_t ix = 0; ix < gw; ++ix) {
        const AxisSample sx = axis_sample(g.x(pw, ix), w);
        if (!sx.inside) continue;  // adds 0
        add_tap(o, tw, n, static_cast<int32_t>(sx.lo * ci), 1 - sx.w);
        add_tap(o, tw, n, static_cast<int32_t>(sx.hi * ci), sx.w);
        inside[pw] += 1.0f;
        first = std::min(first, sx.lo);
        last = std::max(last, sx.hi);
      }
    }
#if defined(EDGEPACK_FRAME_AVX2)
    for (int64_t b = 0; b < blocks && frame_avx2() && last >= 0; ++b) {
      int32_t k_max = 0;
      for (int64_t i = 0; i < 8; ++i) k_max = std::max(k_max, tap.count[b * 8 + i]);
      bb.taps[b] = k_max;
      for (int32_t k = 0; k < k_max; ++k)
        for (int64_t i = 0; i < 8; ++i) {
          const int64_t pw = b * 8 + i;
          const bool has = k < tap.count[pw];
          const float wk = has ? tap.w[pw * stride + k] : 0.0f;
          // a padded tap reads the roi's first pixel: blended this row, so finite
          bb.off[(b * stride + k) * 8 + i] =
              has ? tap.off[pw * stride + k] : static_cast<int32_t>(first * ci);
          float* v = bb.w + ((b * stride + k) * 4 + i % 4) * 8 + (i / 4) * 4;
          std::fill(v, v + 4, wk);
        }
    }
#endif
  }
  float rows_inside = 0.0f;
  int32_t rows = 0;
  for (int64_t iy = 0; iy < gh && last >= 0; ++iy) {
    const AxisSample sy = axis_sample(g.y(ph, iy), h);
    if (!sy.inside) continue;  // adds 0 to every output
    add_tap(row_at, row_w, rows, static_cast<int32_t>(sy.lo), 1 - sy.w);
    add_tap(row_at, row_w, rows, static_cast<int32_t>(sy.hi), sy.w);
    rows_inside += 1.0f;
  }
  const int64_t k0 = first * ci, k1 = (last + 1) * ci;
  for (int32_t k = 0; k < rows; k += 2) {  // two frame rows a pass
    const uint8_t* r0 = frame + row_at[k] * w * ci + k0;
    const bool pair = k + 1 < rows;
    blend_rows(r0, pair ? frame + row_at[k + 1] * w * ci + k0 : r0, row_w[k],
               pair ? row_w[k + 1] : 0.0f, tmp + k0, k1 - k0, k > 0);
  }
  // The next output row's frame rows over this roi's columns, while the bins run: a few cache
  // lines per row at a stride of the frame's width, which the hardware does not fetch ahead.
  for (int64_t iy = 0; iy < gh && last >= 0 && ph + 1 < oh; ++iy) {
    const AxisSample sy = axis_sample(g.y(ph + 1, iy), h);
    if (!sy.inside) continue;
    for (int64_t b = k0; b < k1; b += 64) {
      __builtin_prefetch(frame + sy.lo * w * ci + b);
      __builtin_prefetch(frame + sy.hi * w * ci + b);
    }
  }
  float scale[kMaxChannels];
  for (int c = 0; c < co; ++c) scale[c] = 1.0f / st.ch.std[c] / g.count;
  const int64_t plane = oh * ow;
  float* out = out_roi + ph * ow;
  if (rows == 0) {  // no sample inside the frame: every bin averages zeros
    for (int c = 0; c < co; ++c)
      for (int64_t pw = 0; pw < ow; ++pw) out[c * plane + pw] = 0.0f;
    return;
  }
  auto bin = [&](int64_t pw) {  // the raw sum of bin column pw, all frame channels
    V4 s = {0.0f, 0.0f, 0.0f, 0.0f};
    const int32_t* o = tap.off + pw * stride;
    const float* tw = tap.w + pw * stride;
    for (int32_t k = 0; k < tap.count[pw]; ++k) s += tw[k] * pixel_vector(tmp, o[k]);
    return s;
  };
  const ChannelStore chs = channel_store(st.ch, scale);
  int64_t pw = 0;
#if defined(EDGEPACK_FRAME_AVX2)
  if (frame_avx2()) {
    ColumnChannels cc;
    cc.out = co;
    for (int c = 0; c < co; ++c) {
      cc.plane[c] = out + c * plane;
      cc.pick[c] = st.ch.pick[c];
      cc.scale[c] = scale[c];
      cc.shift[c] = -st.ch.mean[c] * scale[c];
    }
    pw = crop_bins_avx2(tmp, bb, blocks, stride, inside, rows_inside, cc);
  }
#endif
  for (; pw + 4 <= ow; pw += 4) {
    V4 v[4] = {bin(pw), bin(pw + 1), bin(pw + 2), bin(pw + 3)};
    const V4 n = rows_inside * load4(inside + pw);
    if (co == 3)
      store_channels<3>(v, chs, n, out + pw, plane);
    else
      store_channels<0>(v, chs, n, out + pw, plane);
  }
  for (; pw < ow; ++pw) {
    const V4 v = bin(pw);
    for (int c = 0; c < co; ++c)
      out[c * plane + pw] =
          (v[st.ch.pick[c]] - rows_inside * inside[pw] * st.ch.mean[c]) * scale[c];
  }
}

}  // namespace

void frame_roi_align_prepare(PrepareContext& ctx) {
  Tensor* f = need_frame(ctx);
  auto st = std::make_unique<CropState>();
  st->a = read_roi_align(ctx);
  st->ch = read_channels(ctx, static_cast<int>(f->static_shape[2]));
  need_shape(ctx, *ctx.outputs[0],
             {ctx.inputs[1]->static_shape[0], st->ch.out, st->a.oh, st->a.ow});
  st->lut.assign(static_cast<size_t>(st->ch.out) * 256, 0.0f);
  for (int c = 0; c < st->ch.out; ++c)
    for (int v = 0; v < 256; ++v)
      st->lut[static_cast<size_t>(c * 256 + v)] = st->ch.normalise(static_cast<float>(v), c);
  bool onehot = true;
  for (int c = 0; c < st->ch.out; ++c) onehot = onehot && st->ch.pick[c] >= 0;
  st->fast = onehot && !st->a.max && st->a.sampling > 0;
  if (st->fast) {
    st->slots = std::max(ctx.threads, 1);
    st->slot_bytes =
        crop_slot_bytes(st->a.ow, st->a.sampling, f->static_shape[1], f->static_shape[2]);
    ctx.scratch_bytes = st->slot_bytes * static_cast<size_t>(st->slots);
  }
  ctx.state = std::move(st);
}

// RoiAlign as ops/roi_align.cpp computes it (onnxruntime's sampling and bilinear rules), over
// the normalised frame: each of the four corners of a sample is one normalised pixel value.
void frame_roi_align_run(RunContext& ctx) {
  const auto& st = *ctx.state_as<CropState>();
  const Tensor* f = ctx.input(0);
  const Tensor* rois = ctx.input(1);
  const Tensor* bi = ctx.input(2);
  Tensor* y = ctx.output(0);
  const int64_t r_count = std::min(rois->shape[0], bi->shape[0]);
  y->shape[0] = r_count;
  const int64_t h = f->shape[0], w = f->shape[1], ci = f->shape[2];
  const int co = st.ch.out;
  const uint8_t* frame = f->as<uint8_t>();
  for (int64_t r = 0; r < r_count; ++r) {
    const int64_t b = bi->dtype == DType::kInt64 ? bi->as<int64_t>()[r] : bi->as<int32_t>()[r];
    if (b != 0)
      throw Error(ErrorCode::kRuntimeError,
                  std::string("RoiAlign: batch index out of range in ") + ctx.node_name);
  }
  const RoiAlignAttrs& a = st.a;
  ThreadPool* pool = pool_for(ctx.pool, 40.0 * static_cast<double>(r_count * co * a.oh * a.ow));
  if (st.fast) {
    const int64_t tasks = r_count * a.oh;
    auto work = [&](int64_t s0, int64_t s1) {
      void* slot =
          static_cast<unsigned char*>(ctx.scratch) + static_cast<size_t>(s0) * st.slot_bytes;
      int64_t roi_of_slot = -1;  // whose column samples the slot holds
      for (int64_t s = s0; s < s1; ++s)
        for (int64_t t = tasks * s / st.slots; t < tasks * (s + 1) / st.slots; ++t) {
          const int64_t r = t / a.oh;
          crop_row(st, frame, h, w, ci, rois->as<float>() + r * 4, t % a.oh, slot, r == roi_of_slot,
                   y->as<float>() + r * co * a.oh * a.ow);
          roi_of_slot = r;
        }
    };
    if (pool != nullptr && st.slots > 1)
      pool->parallel_for(st.slots, work);
    else
      work(0, st.slots);
    return;
  }
  // Other channel maps, max mode, an adaptive grid: ops/roi_align.cpp's loop over the frame with
  // each corner a normalised pixel value.
  parallel(pool, r_count * a.oh, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / a.oh, ph = t % a.oh;
      const RoiGrid g = roi_grid(a, rois->as<float>() + r * 4);
      for (int c = 0; c < co; ++c) {
        auto at = [&](int64_t yy, int64_t xx) {
          const int64_t p = (yy * w + xx) * ci;
          return st.ch.pick[c] >= 0
                     ? st.lut[static_cast<size_t>(c * 256 + frame[p + st.ch.pick[c]])]
                     : st.ch.normalise(st.ch.mix(frame + p, c), c);
        };
        float* out = y->as<float>() + ((r * co + c) * a.oh + ph) * a.ow;
        for (int64_t pw = 0; pw < a.ow; ++pw)
          out[pw] = roi_bin(a, g, h, w, ph, pw, [&](const AxisSample& sy, const AxisSample& sx) {
            return roi_sample(sy, sx, a.max, at);
          });
      }
    }
  });
}

}  // namespace ops
}  // namespace edgepack
