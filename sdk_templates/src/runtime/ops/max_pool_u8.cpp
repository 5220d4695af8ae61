// SPDX-License-Identifier: Apache-2.0
// MaxPool: uint8 2-D NCHW here (an int8 model's pooling on its bytes, edgepack/model/qdq_bytes.py:
// the maximum commutes with quantisation), every other case through ops/pool.cpp's float32
// pool. Per output row: the maximum over the window's valid input rows (a byte-wise loop the
// compiler vectorises), padded left and right with 0 (uint8's lowest value: padding never wins),
// then the maximum over the window's columns (for stride 1 also vectorised). With AVX-512 VBMI
// (plane_vbmi) the same maxima from registers, 64 outputs at a time.
#include <algorithm>
#include <cstring>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12.2's AVX-512 intrinsics
#endif
#include <immintrin.h>
#endif

#include "runtime/kernels/cpu_isa.h"
#include "runtime/kernels/threadpool.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {

void pool_prepare(PrepareContext& ctx);  // ops/pool.cpp
void pool_run(RunContext& ctx);

namespace {

struct MaxPoolU8State : OpState {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0;
  int64_t h = 0, w = 0, oh = 0, ow = 0;
  int64_t row_bytes = 0;  // one padded row of column maxima (scratch per thread)
  int slots = 1;
  // plane_vbmi: whether it runs (AVX-512 VBMI and vbmi_fits), its outputs per chunk, and per
  // tap kx the 64 byte indices of its vpermt2b (column t * sw + kx * dw of the chunk's 128).
  bool vbmi = false;
  int64_t chunk = 0;
  std::vector<uint8_t> perm;
};

// dst[x] = max(dst[x], src[x]). The count is a local: a byte store may alias any object, so a
// bound read through a pointer (st.w) is reloaded after every store and the loop stays scalar.
inline void max_into(uint8_t* __restrict dst, const uint8_t* __restrict src, int64_t n) {
  for (int64_t x = 0; x < n; ++x) dst[x] = std::max(dst[x], src[x]);
}

void plane(const MaxPoolU8State& st, const uint8_t* in, uint8_t* out, uint8_t* row) {
  uint8_t* v = row + st.pl;  // v[x] = max over the window's rows of column x; v[-pl..] = 0
  for (int64_t oy = 0; oy < st.oh; ++oy, out += st.ow) {
    bool any = false;
    for (int64_t ky = 0; ky < st.kh; ++ky) {
      const int64_t iy = oy * st.sh - st.pt + ky * st.dh;
      if (iy < 0 || iy >= st.h) continue;
      const uint8_t* r = in + iy * st.w;
      if (!any)
        std::memcpy(v, r, static_cast<size_t>(st.w));
      else
        max_into(v, r, st.w);
      any = true;
    }
    if (!any) std::memset(v, 0, static_cast<size_t>(st.w));
    const uint8_t* base = row;  // padded column 0
    if (st.sw == 1) {
      std::memcpy(out, base, static_cast<size_t>(st.ow));
      for (int64_t kx = 1; kx < st.kw; ++kx) max_into(out, base + kx * st.dw, st.ow);
      continue;
    }
    int64_t ox = 0;
#if defined(__SSE2__)
    if (st.sw == 2) {  // 16 outputs at a time: tap kx reads the even bytes from kx * dw on
      const __m128i even = _mm_set1_epi16(0x00ff);
      for (; ox + 16 <= st.ow; ox += 16) {
        __m128i m = _mm_setzero_si128();
        for (int64_t kx = 0; kx < st.kw; ++kx) {
          const uint8_t* b = base + 2 * ox + kx * st.dw;
          const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
          const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16));
          m = _mm_max_epu8(m, _mm_packus_epi16(_mm_and_si128(a, even), _mm_and_si128(c, even)));
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + ox), m);
      }
    }
#endif
    for (; ox < st.ow; ++ox) {
      const uint8_t* b = base + ox * st.sw;
      uint8_t m = b[0];
      for (int64_t kx = 1; kx < st.kw; ++kx) m = std::max(m, b[kx * st.dw]);
      out[ox] = m;
    }
  }
}

#if defined(__x86_64__) || defined(__i386__)
// plane() with AVX-512 VBMI, from the input rows directly (plane's row buffer, stored and then
// read at other offsets, stalls on store forwarding: 1.5x this): per chunk of up to 64 outputs
// from ox, the maximum over the window's rows of the 128 input columns from ox * sw - pl (masked
// loads: columns outside the row are 0, uint8's lowest value), then per tap kx one vpermt2b
// picks column t * sw + kx * dw of those 128 for output ox + t. Where vbmi_fits.
bool vbmi_fits(const MaxPoolU8State& st) {
  return st.kh <= 16 && st.kw <= 16 && (st.kw - 1) * st.dw + 15 * st.sw <= 127;
}

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void plane_vbmi(const MaxPoolU8State& st,
                                                                       const uint8_t* in,
                                                                       uint8_t* out) {
  const int64_t chunk = st.chunk;
  __m512i idx[16];
  for (int64_t kx = 0; kx < st.kw; ++kx) idx[kx] = _mm512_loadu_si512(st.perm.data() + kx * 64);
  const auto lanes = [](int64_t lo, int64_t hi) {  // mask of lanes [lo, hi) within [0, 64)
    lo = std::max<int64_t>(lo, 0), hi = std::min<int64_t>(hi, 64);
    if (hi <= lo) return __mmask64(0);
    return (hi - lo == 64 ? ~__mmask64(0) : (__mmask64(1) << (hi - lo)) - 1) << lo;
  };
  for (int64_t oy = 0; oy < st.oh; ++oy, out += st.ow) {
    const uint8_t* rows[16];
    int nr = 0;
    for (int64_t ky = 0; ky < st.kh; ++ky) {
      const int64_t iy = oy * st.sh - st.pt + ky * st.dh;
      if (iy >= 0 && iy < st.h) rows[nr++] = in + iy * st.w;
    }
    for (int64_t ox = 0; ox < st.ow; ox += chunk) {
      const int64_t c0 = ox * st.sw - st.pl;  // input column of the table's byte 0
      const __mmask64 k0 = lanes(-c0, st.w - c0), k1 = lanes(-c0 - 64, st.w - c0 - 64);
      __m512i t0 = _mm512_setzero_si512(), t1 = _mm512_setzero_si512();
      for (int i = 0; i < nr; ++i) {  // masked-off lanes are not read (no fault)
        t0 = _mm512_max_epu8(t0, _mm512_maskz_loadu_epi8(k0, rows[i] + c0));
        t1 = _mm512_max_epu8(t1, _mm512_maskz_loadu_epi8(k1, rows[i] + c0 + 64));
      }
      __m512i m = _mm512_permutex2var_epi8(t0, idx[0], t1);
      for (int64_t kx = 1; kx < st.kw; ++kx)
        m = _mm512_max_epu8(m, _mm512_permutex2var_epi8(t0, idx[kx], t1));
      _mm512_mask_storeu_epi8(out + ox, lanes(0, std::min(chunk, st.ow - ox)), m);
    }
  }
}
#endif

}  // namespace

void max_pool_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  if (x->dtype != DType::kUInt8) return pool_prepare(ctx);
  need_rank(ctx, *x, 4);
  need_outputs(ctx, 1);
  const auto k = ctx.attrs->get_ints("kernel_shape");
  const auto s = ctx.attrs->get_ints("strides", {1, 1});
  const auto d = ctx.attrs->get_ints("dilations", {1, 1});
  const auto p = ctx.attrs->get_ints("pads", {0, 0, 0, 0});
  if (k.size() != 2 || s.size() != 2 || d.size() != 2 || p.size() != 4)
    ctx.fail("a uint8 MaxPool is 2-D: kernel_shape/strides/dilations/pads of 2 dims");
  for (int i = 0; i < 2; ++i)
    if (k[i] < 1 || s[i] < 1 || d[i] < 1 || p[i] < 0 || p[i + 2] < 0 || p[i] >= k[i] * d[i])
      ctx.fail("kernel, strides and dilations must be >= 1, pads in [0, kernel)");
  auto st = std::make_unique<MaxPoolU8State>();
  st->kh = k[0], st->kw = k[1], st->sh = s[0], st->sw = s[1], st->dh = d[0], st->dw = d[1];
  st->pt = p[0], st->pl = p[1];
  st->h = x->static_shape[2], st->w = x->static_shape[3];
  // The output shape lowering gave (ceil_mode already applied there).
  Tensor* y = ctx.outputs[0];
  need_dtype(ctx, *y, DType::kUInt8);
  if (y->rank != 4 || y->static_shape[0] != x->static_shape[0] ||
      y->static_shape[1] != x->static_shape[1])
    ctx.fail("Y must be [N, C, out_h, out_w]");
  st->oh = y->static_shape[2], st->ow = y->static_shape[3];
  // Every window starts inside the input (ceil_mode's last windows may end past the padding:
  // the row buffer's zeros cover them). The last output column's window
  // ends at padded column reach - 1.
  const int64_t reach = (st->ow - 1) * st->sw + (st->kw - 1) * st->dw + 1;
  if (st->oh < 1 || st->ow < 1 || (st->oh - 1) * st->sh - st->pt >= st->h ||
      (st->ow - 1) * st->sw - st->pl >= st->w)
    ctx.fail("Y's shape does not match the window over the padded input");
  // (+ 32: the stride-2 loop reads 32 bytes from each tap of 16 outputs)
  st->row_bytes = (std::max(reach + 32, st->pl + st->w) + 63) / 64 * 64;
  st->slots = std::max(1, ctx.threads);
#if defined(__x86_64__) || defined(__i386__)
  st->vbmi = kernels::x86_has_avx512vbmi() && vbmi_fits(*st);
#endif
  if (st->vbmi) {
    st->chunk = std::min<int64_t>(64, (127 - (st->kw - 1) * st->dw) / st->sw + 1);
    st->perm.resize(static_cast<size_t>(st->kw * 64));
    for (int64_t kx = 0; kx < st->kw; ++kx)
      for (int64_t t = 0; t < 64; ++t)
        st->perm[kx * 64 + t] =
            static_cast<uint8_t>(std::min(t, st->chunk - 1) * st->sw + kx * st->dw);
  }
  // (plane_vbmi reads the input rows directly: no row buffers)
  ctx.scratch_bytes = st->vbmi ? 0 : static_cast<size_t>(st->slots * st->row_bytes);
  ctx.state = std::move(st);
}

void max_pool_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  if (x->dtype != DType::kUInt8) return pool_run(ctx);
  const auto& st = *ctx.state_as<MaxPoolU8State>();
  const int64_t planes = x->shape[0] * x->shape[1];
  const uint8_t* in = x->as<uint8_t>();
  uint8_t* out = ctx.output(0)->as<uint8_t>();
  auto* scratch = static_cast<uint8_t*>(ctx.scratch);
  const bool direct = st.vbmi;
  ThreadPool* pool = pool_for(ctx.pool, double(planes * st.oh * st.ow * st.kh * st.kw));
  const int64_t used = pool != nullptr ? std::min<int64_t>(st.slots, planes) : 1;
  auto body = [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      uint8_t* row = direct ? nullptr : scratch + s * st.row_bytes;
      if (!direct) std::memset(row, 0, static_cast<size_t>(st.row_bytes));  // padding columns
      for (int64_t pi = chunk_begin(planes, int(used), int(s));
           pi < chunk_begin(planes, int(used), int(s) + 1); ++pi) {
#if defined(__x86_64__) || defined(__i386__)
        if (direct) {
          plane_vbmi(st, in + pi * st.h * st.w, out + pi * st.oh * st.ow);
          continue;
        }
#endif
        plane(st, in + pi * st.h * st.w, out + pi * st.oh * st.ow, row);
      }
    }
  };
  if (pool != nullptr && used > 1)
    pool->parallel_for(used, body);
  else
    body(0, 1);
}

}  // namespace ops
}  // namespace edgepack
