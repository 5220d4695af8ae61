// SPDX-License-Identifier: Apache-2.0
// QLinearConv (ONNX, 2-D NCHW, group 1 or depthwise): uint8 X and Y, int8 W per tensor or per
// output channel (symmetric: zero point 0), optional int32 bias. The packed int8 GEMM of
// kernels/qgemm.h (int32 accumulation, fixed-point requantisation by x_scale * w_scale[m] /
// y_scale) over X itself for a 1x1 convolution with stride 1 and no padding, otherwise over
// im2col rows [C*KH*KW][band pixels] in uint8 (padding takes X's zero point, i.e. real 0), one
// band of output rows at a time: the band (~256 KiB) stays in L2 between im2col and the GEMM's
// packing, and the scratch is bounded by the band, not the image (ResNet-18's stem: 1.8 MB).
// Weights are packed at prepare; all scales and zero points must be constant and are read there
// too. Depthwise (group = channels, one filter each): kernels/qdepthwise.h, channel planes split
// across threads.
#include <algorithm>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "runtime/kernels/qdepthwise.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/qwinograd.h"
#include "runtime/kernels/threadpool.h"
#include "runtime/ops/conv_attrs.h"

namespace edgepack {
namespace ops {
namespace {

struct QConvState : OpState {
  ConvAttrs a;
  int64_t c = 0, h = 0, w = 0, m = 0, oh = 0, ow = 0, k = 0;
  uint8_t x_zero = 0, y_zero = 0;
  bool direct = false;     // 1x1, stride 1, no padding: X is the GEMM's [k][pixels] operand
  int64_t band = 0;        // output rows per im2col band (not direct)
  bool depthwise = false;  // group = channels: kernels::qdepthwise_plane, dw_taps per channel
  bool winograd = false;   // 3x3 stride 1: kernels::QWinograd3x3 (exact, same bytes)
  // The GEMM packs its panels straight from the padded input rows of a band (no im2col copy):
  // kernels::qgemm_gather, element (kk, p) at gather_row[kk] + gather_col[p] of the planes.
  bool gather = false;
  std::vector<int32_t> gather_row, gather_col;
  int64_t gather_plane = 0;  // bytes per channel: band_in_rows(band) padded rows
  kernels::QWinograd3x3 wino;
  int slots = 1;  // per-thread scratch (GEMM panels or depthwise planes)
  kernels::QDepthwiseParams dw;
  std::vector<int8_t> dw_taps;  // [c][kh * kw]
  kernels::QGemmWeights weights;
  std::vector<int32_t> bias;
  std::vector<kernels::QuantMultiplier> mult;
};

inline size_t align64(size_t n) {
  return (n + 63) / 64 * 64;
}

// Bytes of im2col scratch per band (kBandBytes / row bytes output rows, at least one).
constexpr int64_t kBandBytes = 256 * 1024;
// Bytes the row copies below may write past an im2col row (the next row overwrites them; the
// scratch has them after the last) and read past a padded row (the next one, or the slack).
constexpr size_t kCopySlack = 64;
// Narrower "same" stride-1 convolutions use the padded rows (block_rows' per-row border fixes
// cost more there: ResNet-18's 7x7 layers 0.76 -> 0.65 ms, 28x28 0.633 -> 0.622; 56x56 0.695 ->
// 0.701 the other way).
constexpr int64_t kBlockRowsMinWidth = 32;
// Padded input rows of all channels that the gathered GEMM takes as one band (plan_gather).
constexpr int64_t kGatherBytes = 512 * 1024;

// Input rows of one band's padded plane: those the taps of `band` output rows read.
inline int64_t band_in_rows(const ConvAttrs& a, int64_t band) {
  return (band - 1) * a.sh + (a.kh - 1) * a.dh + 1;
}

inline int64_t padded_width(const QConvState& st) {
  return st.a.pl + st.w + st.a.pr;
}

// d[i] = s[i * stride] for i < n, in 16-byte chunks where it can: writes up to 15 bytes past n
// and reads up to 31 past the last byte it uses (kCopySlack).
inline void copy_row(const uint8_t* s, uint8_t* d, int64_t n, int64_t stride) {
  int64_t i = 0;
  if (stride == 1) {
    for (; i < n; i += 16) std::memcpy(d + i, s + i, 16);
    return;
  }
#if defined(__SSE2__)
  if (stride == 2) {  // the even bytes of 32, masked and packed
    const __m128i even = _mm_set1_epi16(0x00ff);
    for (; i < n; i += 16) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i + 16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                       _mm_packus_epi16(_mm_and_si128(a, even), _mm_and_si128(b, even)));
    }
    return;
  }
#endif
  for (; i < n; ++i) d[i] = s[i * stride];
}

// One im2col row of a stride-1 convolution whose output is as wide as its input ("same"
// padding): output row oy reads input row oy + dy, and since both rows have the same width the
// valid part of the whole band is one contiguous copy of the plane (d[oy][ox] = plane[oy + dy]
// [ox + x0]); the at most few border columns per row that this fills from the neighbouring
// row are set to the zero point afterwards, rows above and below the image too. One memcpy per
// (channel, tap) instead of one per output row (3x3: 2-3x faster im2col).
void block_rows(const QConvState& st, const uint8_t* plane, int64_t oy0, int64_t oy1, int64_t dy,
                int64_t x0, int64_t lo, int64_t hi, uint8_t* d) {
  const int64_t ow = st.ow;
  const int64_t a = std::min(oy1, std::max(oy0, -dy)), b = std::max(a, std::min(oy1, st.h - dy));
  std::memset(d, st.x_zero, static_cast<size_t>((a - oy0) * ow));
  std::memset(d + (b - oy0) * ow, st.x_zero, static_cast<size_t>((oy1 - b) * ow));
  if (b == a) return;
  uint8_t* first = d + (a - oy0) * ow;
  std::memcpy(first + lo, plane + (a + dy) * ow + x0 + lo,
              static_cast<size_t>((b - a - 1) * ow + hi - lo));
  for (int64_t oy = a; oy < b; ++oy) {
    uint8_t* r = d + (oy - oy0) * ow;
    for (int64_t ox = 0; ox < lo; ++ox) r[ox] = st.x_zero;
    for (int64_t ox = hi; ox < ow; ++ox) r[ox] = st.x_zero;
  }
}

// The input rows [iy0, iy0 + rows) of one channel plane with the padding around them (rows
// outside the image and the columns left and right: the zero point), padded_width() apart. In
// 16-byte chunks, no call per row (a call per row and border cost ResNet-18's 7x7 layers as
// much as the copies): a row's copy may write 15 bytes past it (the right padding and the next
// row, written after it; kCopySlack after the last) and read 15 past the input row, except the
// plane's last row when it is the tensor's last (`last_plane`).
void fill_pad(const QConvState& st, const uint8_t* plane, int64_t iy0, int64_t rows,
              bool last_plane, uint8_t* pad) {
  const ConvAttrs& a = st.a;
  const int64_t pw = padded_width(st);
  uint8_t zeros[16];
  std::memset(zeros, st.x_zero, sizeof(zeros));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* d = pad + r * pw;
    const int64_t iy = iy0 + r;
    if (iy < 0 || iy >= st.h) {
      for (int64_t i = 0; i < pw; i += 16) std::memcpy(d + i, zeros, 16);
      continue;
    }
    const uint8_t* s = plane + iy * st.w;
    if (last_plane && iy == st.h - 1)
      std::memcpy(d + a.pl, s, static_cast<size_t>(st.w));
    else
      for (int64_t i = 0; i < st.w; i += 16) std::memcpy(d + a.pl + i, s + i, 16);
    for (int64_t i = 0; i < a.pl; ++i) d[i] = st.x_zero;
    for (int64_t i = a.pl + st.w; i < pw; ++i) d[i] = st.x_zero;
  }
}

// im2col of output rows [oy0, oy1) of one image into rows [c][kh][kw] x [(oy1 - oy0) * ow].
// Per channel the input rows the band reads are first copied into `pad` with the padding around
// them (the zero point), so that every (tap, output row) is a plain strided copy in 16-byte
// chunks: no borders to find and fill per row, no call per row. ResNet-18 (AVX-512 VNNI, 1
// thread): the im2col of a 7x7 layer, one memcpy and the border fix per row before, cost a
// fifth of its GEMM.
void im2col_u8(const QConvState& st, const uint8_t* in, bool last_plane, int64_t oy0, int64_t oy1,
               uint8_t* col, uint8_t* pad) {
  const ConvAttrs& a = st.a;
  const int64_t pixels = (oy1 - oy0) * st.ow, rows = band_in_rows(a, oy1 - oy0);
  const int64_t pw = padded_width(st), iy0 = oy0 * a.sh - a.pt;
  // A wide stride-1 convolution whose output is as wide as its input: block_rows (one copy per
  // (channel, tap)).
  const bool same = a.sh == 1 && a.sw == 1 && st.ow == st.w && st.ow >= kBlockRowsMinWidth;
  // Without padding the taps read the input plane itself (but the tensor's last plane, whose
  // copies may read kCopySlack bytes past it).
  const bool unpadded = a.pt == 0 && a.pl == 0 && a.pb == 0 && a.pr == 0;
  for (int64_t c = 0; c < st.c; ++c) {
    const uint8_t* plane = in + c * st.h * st.w;
    if (same) {
      for (int64_t ky = 0; ky < a.kh; ++ky) {
        for (int64_t kx = 0; kx < a.kw; ++kx, col += pixels) {
          const int64_t x0 = kx * a.dw - a.pl;
          const int64_t lo = std::min(st.ow, std::max<int64_t>(0, -x0));
          const int64_t hi = std::max(lo, std::min(st.ow, st.w - x0));
          if (hi > lo)
            block_rows(st, plane, oy0, oy1, ky * a.dh - a.pt, x0, lo, hi, col);
          else  // the tap reads only padding
            std::memset(col, st.x_zero, static_cast<size_t>(pixels));
        }
      }
      continue;
    }
    const uint8_t* src = pad;
    if (unpadded && !(last_plane && c + 1 == st.c)) {
      src = plane + iy0 * st.w;
    } else {
      fill_pad(st, plane, iy0, rows, last_plane && c + 1 == st.c, pad);
    }
    for (int64_t ky = 0; ky < a.kh; ++ky)
      for (int64_t kx = 0; kx < a.kw; ++kx, col += pixels) {
        const uint8_t* s = src + ky * a.dh * pw + kx * a.dw;
        for (int64_t oy = 0; oy < oy1 - oy0; ++oy)
          copy_row(s + oy * a.sh * pw, col + oy * st.ow, st.ow, a.sw);
      }
  }
}

float scalar_float(PrepareContext& ctx, size_t i, const char* what) {
  Tensor* t = need_input(ctx, i, what);
  need_dtype(ctx, *t, DType::kFloat32);
  if (!t->constant || t->static_numel() != 1)
    ctx.fail(std::string(what) + " must be a constant scalar");
  return t->as<float>()[0];
}

uint8_t zero_u8(PrepareContext& ctx, size_t i, const char* what) {
  Tensor* t = ctx.input(i);
  if (t == nullptr) return 0;
  need_dtype(ctx, *t, DType::kUInt8);
  if (!t->constant || t->static_numel() != 1)
    ctx.fail(std::string(what) + " must be a constant uint8 scalar");
  return t->as<uint8_t>()[0];
}

void depthwise_run(const QConvState& st, const Tensor* x, Tensor* y, uint8_t* scratch,
                   ThreadPool* pool) {
  const int64_t planes = x->shape[0] * st.c, in_plane = st.h * st.w, out_plane = st.oh * st.ow;
  const size_t slot_bytes = align64(kernels::qdepthwise_scratch_bytes(st.dw));
  pool = pool_for(pool, double(planes * out_plane * st.k));
  const int64_t used = pool != nullptr ? std::min<int64_t>(st.slots, planes) : 1;
  auto body = [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      for (int64_t pi = chunk_begin(planes, int(used), int(s));
           pi < chunk_begin(planes, int(used), int(s) + 1); ++pi) {
        const int64_t c = pi % st.c;
        kernels::qdepthwise_plane(st.dw, x->as<uint8_t>() + pi * in_plane, st.x_zero,
                                  st.dw_taps.data() + c * st.k, st.bias[size_t(c)],
                                  st.mult[size_t(c)], st.y_zero, y->as<uint8_t>() + pi * out_plane,
                                  scratch + s * slot_bytes);
      }
    }
  };
  if (pool != nullptr && used > 1)
    pool->parallel_for(used, body);
  else
    body(0, 1);
}

// 3x3, stride 1, no dilation, group 1, with at least 32 input and 32 output channels, and only
// while the int8 GEMM's kernel is AVX2 (vpmaddubsw) or NEON (vmlal_s16): there the int16 Winograd
// F(2x2, 3x3) beats im2col + GEMM (AVX2, 1 thread: 1.1-1.6x per layer; with 16 channels its
// transforms cost more than the 2.25x fewer multiplies save: 0.6-0.9x). A GEMM doing four
// u8 x s8 products per int32 lane per instruction (AVX-512 VNNI vpdpbusd, SDOT) does not pay
// for it: against vpdpbusd even a vpdpwssd Winograd measured 0.8-1.04x. Nor do the portable
// loops (0.6-0.8x). See docs/quantization.md. Only where it is exact (QWinograd3x3::exact_for).
// The im2col band and the padded input rows of one channel (im2col_u8), with kCopySlack each.
size_t col_bytes(const QConvState& st) {
  return align64(static_cast<size_t>(st.band * st.ow * st.k) + kCopySlack);
}

size_t pad_bytes(const QConvState& st) {
  return align64(static_cast<size_t>(band_in_rows(st.a, st.band) * padded_width(st)) + kCopySlack);
}

// The padded input rows of one band, all channels (gather), with room for the 64-byte reads.
size_t gather_bytes(const QConvState& st) {
  return align64(static_cast<size_t>(st.c * st.gather_plane) + 3 * kCopySlack);
}

// The offsets of qgemm_gather over the padded band rows, if every panel of a band spans less
// than 128 bytes (all of ResNet-18's, MobileNetV2's and YOLOv8n's: stride 1 and 2 panels within
// a row or across a few).
bool plan_gather(QConvState& st, int64_t quads) {
  const ConvAttrs& a = st.a;
  // A strided 1x1 convolution's im2col is one strided copy of the rows it reads; the padded
  // copy of all rows would cost more (ResNet-18's 64->128 downsample 0.047 -> 0.056 ms).
  if (!kernels::qgemm_gather_supported() || a.kh * a.kw == 1) return false;
  // One band for the whole image where its padded rows fit kGatherBytes: one GEMM call, whose
  // panel groups then read each weight block once per group, not once per band.
  if (st.c * band_in_rows(a, st.oh) * padded_width(st) <= kGatherBytes) st.band = st.oh;
  const int64_t pw = padded_width(st), n = st.band * st.ow, taps = a.kh * a.kw;
  st.gather_plane = band_in_rows(a, st.band) * pw;
  std::vector<int32_t> col(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p)
    col[size_t(p)] = int32_t(p / st.ow * a.sh * pw + p % st.ow * a.sw);
  for (int64_t p0 = 0; p0 < n; p0 += kernels::kQgemmNr)
    if (col[size_t(std::min(n, p0 + kernels::kQgemmNr) - 1)] - col[size_t(p0)] >= 128) return false;
  if (st.c * st.gather_plane >= (int64_t(1) << 30)) return false;
  std::vector<int32_t> row(static_cast<size_t>(quads * 4), 0);
  for (int64_t kk = 0; kk < st.k; ++kk) {
    const int64_t c = kk / taps, t = kk % taps;
    row[size_t(kk)] = int32_t(c * st.gather_plane + t / a.kw * a.dh * pw + t % a.kw * a.dw);
  }
  st.gather_row = std::move(row);
  st.gather_col = std::move(col);
  st.gather = true;
  return true;
}

bool use_winograd(const QConvState& st, const int8_t* w) {
  const ConvAttrs& a = st.a;
  if (st.depthwise || a.kh != 3 || a.kw != 3 || a.sh != 1 || a.sw != 1 || a.dh != 1 || a.dw != 1)
    return false;
  if (st.c < 32 || st.m < 32) return false;
  const char* gemm = kernels::qgemm_isa();
  if (std::strcmp(gemm, "avx2") != 0 && std::strcmp(gemm, "neon") != 0) return false;
  return kernels::QWinograd3x3::exact_for(w, st.m, st.c);
}

void gather_run(const QConvState& st, const Tensor* x, Tensor* y, uint8_t* scratch,
                ThreadPool* pool) {
  const int64_t pixels = st.oh * st.ow;
  uint8_t* planes = scratch;
  uint8_t* panels = scratch + gather_bytes(st);
  kernels::QGemmOutput o;
  o.za = st.x_zero;
  o.bias = st.bias.data();
  o.mult = st.mult.data();
  o.zo = st.y_zero;
  o.ldo = pixels;
  kernels::QGemmGather g;
  g.base = planes;
  g.row = st.gather_row.data();
  g.col = st.gather_col.data();
  for (int64_t n = 0; n < x->shape[0]; ++n) {
    const uint8_t* in = x->as<uint8_t>() + n * st.c * st.h * st.w;
    const bool last = n + 1 == x->shape[0];
    for (int64_t oy0 = 0; oy0 < st.oh; oy0 += st.band) {
      const int64_t oy1 = std::min(st.oh, oy0 + st.band), cols = (oy1 - oy0) * st.ow;
      const int64_t rows = band_in_rows(st.a, oy1 - oy0), iy0 = oy0 * st.a.sh - st.a.pt;
      for (int64_t c = 0; c < st.c; ++c)
        fill_pad(st, in + c * st.h * st.w, iy0, rows, last && c + 1 == st.c,
                 planes + c * st.gather_plane);
      o.out = y->as<uint8_t>() + n * st.m * pixels + oy0 * st.ow;
      kernels::qgemm_gather(st.weights, g, cols, o, panels, st.slots, pool);
    }
  }
}

}  // namespace

void qlinear_conv_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "x");
  need_dtype(ctx, *x, DType::kUInt8);
  need_rank(ctx, *x, 4);
  const float x_scale = scalar_float(ctx, 1, "x_scale");
  auto st = std::make_unique<QConvState>();
  st->x_zero = zero_u8(ctx, 2, "x_zero_point");
  Tensor* w = need_input(ctx, 3, "w");
  need_dtype(ctx, *w, DType::kInt8);
  need_rank(ctx, *w, 4);
  if (!w->constant) ctx.fail("w must be a constant initializer");
  st->m = w->static_shape[0];
  Tensor* ws = need_input(ctx, 4, "w_scale");
  need_dtype(ctx, *ws, DType::kFloat32);
  if (!ws->constant || (ws->static_numel() != 1 && ws->static_numel() != st->m))
    ctx.fail("w_scale must be a constant scalar or have one value per output channel");
  Tensor* wz = need_input(ctx, 5, "w_zero_point");
  need_dtype(ctx, *wz, DType::kInt8);
  if (!wz->constant) ctx.fail("w_zero_point must be constant");
  for (int64_t i = 0; i < wz->static_numel(); ++i)
    if (wz->as<int8_t>()[i] != 0) ctx.fail("w_zero_point must be 0 (symmetric int8 weights)");
  const float y_scale = scalar_float(ctx, 6, "y_scale");
  st->y_zero = zero_u8(ctx, 7, "y_zero_point");
  if (!(x_scale > 0.0f) || !(y_scale > 0.0f)) ctx.fail("x_scale and y_scale must be positive");
  need_outputs(ctx, 1);

  st->a = read_conv_attrs(ctx, 2, w->static_shape + 2);
  ConvAttrs& a = st->a;
  st->depthwise = a.group != 1;
  if (st->depthwise &&
      (a.group != x->static_shape[1] || st->m != a.group || w->static_shape[1] != 1))
    ctx.fail("group must be 1 or the number of channels with one filter each (depthwise)");
  if (st->depthwise && a.kh * a.kw > kernels::kQDepthwiseMaxTaps)
    ctx.fail("depthwise kernels have at most " + std::to_string(kernels::kQDepthwiseMaxTaps) +
             " taps");
  if (a.auto_pad != "NOTSET" && a.auto_pad != "VALID") ctx.fail("auto_pad SAME_* is not supported");
  if (a.auto_pad == "VALID") a.pt = a.pl = a.pb = a.pr = 0;
  st->c = x->static_shape[1];
  st->h = x->static_shape[2];
  st->w = x->static_shape[3];
  if (w->static_shape[1] * a.group != st->c) ctx.fail("w's input channels do not match x");
  st->oh = (st->h + a.pt + a.pb - a.dh * (a.kh - 1) - 1) / a.sh + 1;
  st->ow = (st->w + a.pl + a.pr - a.dw * (a.kw - 1) - 1) / a.sw + 1;
  if (st->oh <= 0 || st->ow <= 0) ctx.fail("the kernel does not fit the padded input");
  need_shape(ctx, *ctx.outputs[0], {x->static_shape[0], st->m, st->oh, st->ow});
  need_dtype(ctx, *ctx.outputs[0], DType::kUInt8);

  st->k = w->static_shape[1] * a.kh * a.kw;
  if (st->depthwise) {
    st->dw_taps.assign(w->as<int8_t>(), w->as<int8_t>() + st->m * st->k);
    kernels::QDepthwiseParams& d = st->dw;
    set_window(a, d);
    d.in_h = st->h;
    d.in_w = st->w;
    d.out_h = st->oh;
    d.out_w = st->ow;
  }
  st->direct = a.kh == 1 && a.kw == 1 && a.sh == 1 && a.sw == 1 && a.pt == 0 && a.pl == 0 &&
               a.pb == 0 && a.pr == 0;
  st->bias.assign(static_cast<size_t>(st->m), 0);
  if (Tensor* b = ctx.input(8)) {
    need_dtype(ctx, *b, DType::kInt32);
    if (!b->constant || b->static_numel() != st->m)
      ctx.fail("bias B must be a constant int32 vector with one value per output channel");
    std::memcpy(st->bias.data(), b->data, static_cast<size_t>(st->m) * sizeof(int32_t));
  }
  for (int64_t j = 0; j < st->m; ++j) {
    const float wsj = ws->as<float>()[ws->static_numel() == 1 ? 0 : j];
    st->mult.push_back(kernels::quant_multiplier(double(x_scale) * double(wsj) / double(y_scale)));
  }
  st->band = std::min(st->oh, std::max<int64_t>(1, kBandBytes / (st->k * st->ow)));
  // A band of whole GEMM panels where one is at most a quarter smaller: each band's last panel
  // is otherwise padded (YOLOv8n's 40-wide head layers: 9 rows = 22.5 panels -> 8 rows = 20).
  for (int64_t r = st->band; st->band < st->oh && 4 * r > 3 * st->band; --r)
    if (r * st->ow % kernels::kQgemmNr == 0) {
      st->band = r;
      break;
    }
  st->slots = std::max(1, ctx.threads);
  if (st->depthwise) {
    ctx.scratch_bytes = size_t(st->slots) * align64(kernels::qdepthwise_scratch_bytes(st->dw));
    ctx.state = std::move(st);
    return;
  }
  if (use_winograd(*st, w->as<int8_t>())) {
    kernels::QWinograd3x3::Shape s;
    s.in_channels = st->c;
    s.out_channels = st->m;
    s.in_h = st->h;
    s.in_w = st->w;
    s.out_h = st->oh;
    s.out_w = st->ow;
    s.pad_top = a.pt;
    s.pad_left = a.pl;
    kernels::QWinograd3x3::Quant q;
    q.x_zero = st->x_zero;
    q.y_zero = st->y_zero;
    q.bias = st->bias.data();
    q.mult = st->mult.data();
    st->winograd = true;
    st->wino.prepare(s, w->as<int8_t>(), q, st->slots);
    ctx.scratch_bytes = st->wino.scratch_bytes();
    ctx.state = std::move(st);
    return;
  }
  kernels::qgemm_pack_weights(w->as<int8_t>(), st->m, st->k, &st->weights);
  if (!st->direct && plan_gather(*st, st->weights.quads)) {
    ctx.scratch_bytes = gather_bytes(*st) + size_t(st->slots) * kernels::qgemm_scratch_bytes(st->k);
    ctx.state = std::move(st);
    return;
  }
  ctx.scratch_bytes = (st->direct ? 0 : col_bytes(*st) + pad_bytes(*st)) +
                      size_t(st->slots) * kernels::qgemm_scratch_bytes(st->k);
  ctx.state = std::move(st);
}

void qlinear_conv_run(RunContext& ctx) {
  const auto* st = ctx.state_as<QConvState>();
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const int64_t pixels = st->oh * st->ow;
  if (st->depthwise) {
    depthwise_run(*st, x, y, static_cast<uint8_t*>(ctx.scratch), ctx.pool);
    return;
  }
  if (st->winograd) {
    for (int64_t n = 0; n < x->shape[0]; ++n)
      st->wino.run(x->as<uint8_t>() + n * st->c * st->h * st->w,
                   y->as<uint8_t>() + n * st->m * pixels, static_cast<uint8_t*>(ctx.scratch),
                   ctx.pool);
    return;
  }
  if (st->gather) {
    gather_run(*st, x, y, static_cast<uint8_t*>(ctx.scratch), ctx.pool);
    return;
  }
  auto* col = static_cast<uint8_t*>(ctx.scratch);
  uint8_t* pad = col + (st->direct ? 0 : col_bytes(*st));
  uint8_t* panels = pad + (st->direct ? 0 : pad_bytes(*st));
  kernels::QGemmOutput o;
  o.za = st->x_zero;
  o.bias = st->bias.data();
  o.mult = st->mult.data();
  o.zo = st->y_zero;
  o.ldo = pixels;
  for (int64_t n = 0; n < x->shape[0]; ++n) {
    const uint8_t* in = x->as<uint8_t>() + n * st->c * st->h * st->w;
    uint8_t* out = y->as<uint8_t>() + n * st->m * pixels;
    if (st->direct) {
      o.out = out;
      kernels::qgemm(st->weights, in, pixels, pixels, o, panels, st->slots, ctx.pool);
      continue;
    }
    for (int64_t oy0 = 0; oy0 < st->oh; oy0 += st->band) {
      const int64_t oy1 = std::min(st->oh, oy0 + st->band), cols = (oy1 - oy0) * st->ow;
      im2col_u8(*st, in, n + 1 == x->shape[0], oy0, oy1, col, pad);
      o.out = out + oy0 * st->ow;
      kernels::qgemm(st->weights, col, cols, cols, o, panels, st->slots, ctx.pool);
    }
  }
}

}  // namespace ops
}  // namespace edgepack
