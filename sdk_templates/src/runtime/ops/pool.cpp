// SPDX-License-Identifier: Apache-2.0
// MaxPool, AveragePool (2-D NCHW and 3-D NCDHW; 1-D arrives as 2-D from lowering; pads,
// strides, dilations, ceil_mode, count_include_pad) and GlobalAveragePool.
#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
// Spatial dims are handled as three (depth, height, width); 2-D pools have depth 1.
struct PoolState : OpState {
  bool max = true;
  bool count_include_pad = false;
  bool column_major = false;  // MaxPool Indices with storage_order=1
  int64_t k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, pa[3] = {0, 0, 0},
          pe[3] = {0, 0, 0};
  // 2-D MaxPool without Indices (YOLO's SPPF 5x5 stride 1, ResNet's 3x3 stride 2): each plane
  // padded with -inf into a scratch slot, then two vectorised passes (see max_plane).
  bool max_plane = false;
  int64_t slot_floats = 0;  // scratch per thread: the padded plane and the vertical maxima
  int threads = 1;
};

// The padded plane a 2-D pool reads: rows and columns up to the last window's end.
int64_t padded_rows(const PoolState& st, int64_t oh) {
  return (oh - 1) * st.s[1] + (st.k[1] - 1) * st.d[1] + 1;
}
int64_t padded_cols(const PoolState& st, int64_t ow) {
  return (ow - 1) * st.s[2] + (st.k[2] - 1) * st.d[2] + 1;
}
}  // namespace

void pool_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  if (x->rank != 4 && x->rank != 5) ctx.fail("input needs rank 4 or 5 (NCHW, NCDHW)");
  need_dtype(ctx, *x, DType::kFloat32);
  const int n = x->rank - 2;
  auto st = std::make_unique<PoolState>();
  st->max = ctx.op_type == "MaxPool";
  const auto k = ctx.attrs->get_ints("kernel_shape");
  const auto s = ctx.attrs->get_ints("strides", std::vector<int64_t>(n, 1));
  const auto d = ctx.attrs->get_ints("dilations", std::vector<int64_t>(n, 1));
  const auto p = ctx.attrs->get_ints("pads", std::vector<int64_t>(2 * n, 0));
  if (static_cast<int>(k.size()) != n || static_cast<int>(s.size()) != n ||
      static_cast<int>(d.size()) != n || static_cast<int>(p.size()) != 2 * n)
    ctx.fail("kernel_shape/strides/dilations/pads must describe " + std::to_string(n) +
             " spatial dims");
  const int off = 3 - n;
  for (int i = 0; i < n; ++i) {
    st->k[off + i] = k[i];
    st->s[off + i] = s[i];
    st->d[off + i] = d[i];
    st->pa[off + i] = p[i];
    st->pe[off + i] = p[n + i];
    if (k[i] < 1 || s[i] < 1 || d[i] < 1) ctx.fail("kernel, strides and dilations must be >= 1");
    if (p[i] < 0 || p[n + i] < 0) ctx.fail("pads must be >= 0");
  }
  st->count_include_pad = ctx.attrs->get_int("count_include_pad", 0) != 0;
  const bool ceil = ctx.attrs->get_int("ceil_mode", 0) != 0;
  // ONNX output size; with ceil_mode a last window that would start in the end padding is
  // dropped (as onnxruntime and the ONNX reference do).
  std::vector<int64_t> out = {x->static_shape[0], x->static_shape[1]};
  for (int i = 0; i < n; ++i) {
    const int64_t in = x->static_shape[2 + i], a = off + i;
    const int64_t span = in + st->pa[a] + st->pe[a] - ((st->k[a] - 1) * st->d[a] + 1);
    if (span < 0) ctx.fail("the pooling window is larger than the padded input");
    int64_t o = (ceil ? (span + st->s[a] - 1) / st->s[a] : span / st->s[a]) + 1;
    if (ceil && (o - 1) * st->s[a] >= in + st->pa[a]) --o;
    out.push_back(o);
  }
  const bool indices = ctx.outputs.size() == 2 && ctx.outputs[1];
  if (ctx.outputs.empty() || ctx.outputs.size() > 2 || (indices && !st->max))
    ctx.fail("expected Y (and for MaxPool optionally Indices)");
  need_shape(ctx, *ctx.outputs[0], out);
  if (indices) {
    need_dtype(ctx, *ctx.outputs[1], DType::kInt64);
    need_shape(ctx, *ctx.outputs[1], out);
    st->column_major = ctx.attrs->get_int("storage_order", 0) != 0;
  }
  if (st->max && n == 2 && !indices && out[2] > 0 && out[3] > 0) {
    const int64_t oh = out[2], ow = out[3], pw = padded_cols(*st, ow);
    st->max_plane = true;
    st->slot_floats = ((padded_rows(*st, oh) + oh) * pw + 15) / 16 * 16;  // 64-byte slots
    st->threads = std::max(ctx.threads, 1);
    ctx.scratch_bytes =
        static_cast<size_t>(st->slot_floats) * sizeof(float) * static_cast<size_t>(st->threads);
  }
  ctx.state = std::move(st);
}

namespace {

// 2-D AveragePool windows without dilation: separable, a vertical pass over the window's valid
// rows into one row of column sums, then the horizontal windows over that row (the average's
// divisor is separable too: a product of the valid rows and columns). 2-D MaxPool: max_plane.
constexpr int64_t kMaxFastRow = 4096;  // columns of the stack row (16 KiB)

bool fast_avg_2d(const PoolState& st, int n, int64_t width) {
  return n == 2 && !st.max && st.d[1] == 1 && st.d[2] == 1 && width <= kMaxFastRow;
}

// Valid taps of the window starting at `start` (may be negative) over an axis of `in`, and the
// average's count for that axis.
struct Span {
  int64_t begin, end, count;
};
Span span(int64_t start, int64_t k, int64_t in, int64_t pad_end, bool include_pad) {
  Span sp{std::max<int64_t>(start, 0), std::min(start + k, in), 0};
  if (sp.end < sp.begin) sp.end = sp.begin;
  // count_include_pad: the window clipped to the padded input (a ceil_mode window may overhang).
  sp.count = include_pad ? std::min(start + k, in + pad_end) - start : sp.end - sp.begin;
  return sp;
}

void avg_plane_2d(const PoolState& st, const float* src, float* dst, int64_t ih, int64_t iw,
                  int64_t oh, int64_t ow) {
  float row[kMaxFastRow];
  for (int64_t oy = 0; oy < oh; ++oy) {
    const Span ys = span(oy * st.s[1] - st.pa[1], st.k[1], ih, st.pe[1], st.count_include_pad);
    std::fill(row, row + iw, 0.0f);
    for (int64_t y = ys.begin; y < ys.end; ++y) {
      const float* r = src + y * iw;
      for (int64_t x = 0; x < iw; ++x) row[x] += r[x];
    }
    float* out = dst + oy * ow;
    for (int64_t ox = 0; ox < ow; ++ox) {
      const Span xs = span(ox * st.s[2] - st.pa[2], st.k[2], iw, st.pe[2], st.count_include_pad);
      float acc = 0.0f;
      for (int64_t x = xs.begin; x < xs.end; ++x) acc += row[x];
      const int64_t count = ys.count * xs.count;
      out[ox] = count ? acc / static_cast<float>(count) : 0.0f;
    }
  }
}

// One plane of a 2-D MaxPool: the plane copied into `pad` with -inf around it (rows and columns
// of the padded input, the ceil_mode overhang included), the vertical maxima of every column of
// each output row, then the horizontal maxima. With stride 1 each pass is one long loop over whole
// padded rows (results past a row's last window are computed and dropped, the output rows copied
// out at the end); otherwise one loop per output row.
void max_plane(const PoolState& st, const float* src, float* dst, int64_t ih, int64_t iw,
               int64_t oh, int64_t ow, float* pad) {
  const int64_t ph = padded_rows(st, oh), pw = padded_cols(st, ow);
  const int64_t top = st.pa[1], left = st.pa[2];
  for (int64_t r = 0; r < ph; ++r) {
    float* row = pad + r * pw;
    const int64_t y = r - top;
    if (y < 0 || y >= ih) {
      std::fill(row, row + pw, -INFINITY);
      continue;
    }
    // Columns [c0, c1) hold source values (none when the left pad covers every window).
    const int64_t c0 = std::min(left, pw), c1 = std::max(c0, std::min(pw, left + iw));
    std::fill(row, row + c0, -INFINITY);
    if (c1 > c0) std::memcpy(row + c0, src + y * iw, static_cast<size_t>(c1 - c0) * sizeof(float));
    std::fill(row + c1, row + pw, -INFINITY);
  }
  float* vert = pad + ph * pw;
  const int kh = static_cast<int>(st.k[1]), kw = static_cast<int>(st.k[2]);
  if (st.s[1] == 1) {
    kernels::max_taps_f32(pad, oh * pw, kh, st.d[1] * pw, 1, vert);
  } else {
    for (int64_t oy = 0; oy < oh; ++oy)
      kernels::max_taps_f32(pad + oy * st.s[1] * pw, pw, kh, st.d[1] * pw, 1, vert + oy * pw);
  }
  if (st.s[2] == 1) {
    kernels::max_taps_f32(vert, (oh - 1) * pw + ow, kw, st.d[2], 1, pad);
    for (int64_t oy = 0; oy < oh; ++oy)
      std::memcpy(dst + oy * ow, pad + oy * pw, static_cast<size_t>(ow) * sizeof(float));
  } else {
    for (int64_t oy = 0; oy < oh; ++oy)
      kernels::max_taps_f32(vert + oy * pw, ow, kw, st.d[2], st.s[2], dst + oy * ow);
  }
}

}  // namespace

void pool_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<PoolState>();
  const int n = x->rank - 2, off = 3 - n;
  int64_t in[3] = {1, 1, 1}, on[3] = {1, 1, 1};
  for (int i = 0; i < n; ++i) {
    in[off + i] = x->shape[2 + i];
    on[off + i] = y->shape[2 + i];
  }
  const int64_t planes = x->shape[0] * x->shape[1];
  const int64_t isz = in[0] * in[1] * in[2], osz = on[0] * on[1] * on[2];
  const float* px = x->as<float>();
  float* py = y->as<float>();
  // MaxPool's Indices: flat row-major indices into X (batch and channel included).
  int64_t* pi = ctx.outputs->size() == 2 && ctx.output(1) ? ctx.output(1)->as<int64_t>() : nullptr;
  if (st.max_plane && planes > 0) {
    // One scratch slot per item; items are contiguous runs of planes, at most one per thread.
    const int items = static_cast<int>(std::min<int64_t>(planes, st.threads));
    const double work = static_cast<double>(planes * osz) * static_cast<double>(st.k[1] + st.k[2]);
    float* scratch = static_cast<float*>(ctx.scratch);  // 64-byte aligned, slot_floats x threads
    parallel(pool_for(ctx.pool, work), items, [&](int64_t i0, int64_t i1) {
      for (int64_t it = i0; it < i1; ++it) {
        float* slot = scratch + it * st.slot_floats;
        const int64_t p1 = chunk_begin(planes, items, static_cast<int>(it) + 1);
        for (int64_t p = chunk_begin(planes, items, static_cast<int>(it)); p < p1; ++p)
          max_plane(st, px + p * isz, py + p * osz, in[1], in[2], on[1], on[2], slot);
      }
    });
    return;
  }
  if (fast_avg_2d(st, n, in[2])) {
    parallel(ctx.pool, planes, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        avg_plane_2d(st, px + p * isz, py + p * osz, in[1], in[2], on[1], on[2]);
    });
    return;
  }
  parallel(ctx.pool, planes, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* src = px + p * isz;
      float* dst = py + p * osz;
      int64_t o[3];
      for (o[0] = 0; o[0] < on[0]; ++o[0])
        for (o[1] = 0; o[1] < on[1]; ++o[1])
          for (o[2] = 0; o[2] < on[2]; ++o[2]) {
            int64_t start[3];
            for (int a = 0; a < 3; ++a) start[a] = o[a] * st.s[a] - st.pa[a];
            float acc = st.max ? -INFINITY : 0.0f;
            int64_t count = 0, best = -1;
            for (int64_t kz = 0; kz < st.k[0]; ++kz) {
              const int64_t zz = start[0] + kz * st.d[0];
              if (zz < 0 || zz >= in[0]) continue;
              for (int64_t ky = 0; ky < st.k[1]; ++ky) {
                const int64_t yy = start[1] + ky * st.d[1];
                if (yy < 0 || yy >= in[1]) continue;
                for (int64_t kx = 0; kx < st.k[2]; ++kx) {
                  const int64_t xx = start[2] + kx * st.d[2];
                  if (xx < 0 || xx >= in[2]) continue;
                  const int64_t at = (zz * in[1] + yy) * in[2] + xx;
                  const float v = src[at];
                  if (st.max) {
                    if (best < 0 || v > acc) best = at;
                    acc = std::max(acc, v);
                  } else {
                    acc += v;
                  }
                  ++count;
                }
              }
            }
            if (!st.max) {
              if (st.count_include_pad) {
                // Window clipped to the padded input (ceil_mode windows may overhang it).
                count = 1;
                for (int a = 0; a < 3; ++a) {
                  const int64_t e =
                      std::min(start[a] + (st.k[a] - 1) * st.d[a] + 1, in[a] + st.pe[a]);
                  const int64_t b = std::max(start[a], -st.pa[a]);
                  count *= (e - b + st.d[a] - 1) / st.d[a];
                }
              }
              acc = count ? acc / static_cast<float>(count) : 0.0f;
            }
            const int64_t oi = (o[0] * on[1] + o[1]) * on[2] + o[2];
            dst[oi] = acc;
            if (pi) {
              int64_t at = best;
              if (st.column_major) {  // spatial index with the first spatial dim fastest
                const int64_t z = best / (in[1] * in[2]), r = best % (in[1] * in[2]);
                at = (r % in[2] * in[1] + r / in[2]) * in[0] + z;
              }
              pi[p * osz + oi] = p * isz + at;
            }
          }
    }
  });
}

void global_avgpool_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_dtype(ctx, *x, DType::kFloat32);
  if (x->rank < 3) ctx.fail("input needs rank >= 3");
  need_outputs(ctx, 1);
  std::vector<int64_t> out = x->static_dims();
  for (int d = 2; d < x->rank; ++d) out[d] = 1;
  need_shape(ctx, *ctx.outputs[0], out);
}

void global_avgpool_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const int64_t planes = x->shape[0] * x->shape[1];
  int64_t inner = 1;
  for (int d = 2; d < x->rank; ++d) inner *= x->shape[d];
  kernels::row_sums_f32(x->as<float>(), planes, inner, static_cast<float>(inner),
                        ctx.output(0)->as<float>(), ctx.pool);
}

}  // namespace ops
}  // namespace edgepack
