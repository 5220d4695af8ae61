// SPDX-License-Identifier: Apache-2.0
// MaxPool, AveragePool (2-D, NCHW; pads, strides, dilations, ceil_mode via the static output
// shape, count_include_pad) and GlobalAveragePool.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct PoolState : OpState {
  bool max = true;
  bool count_include_pad = false;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
};
}  // namespace

void pool_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_rank(ctx, *x, 4);
  need_dtype(ctx, *x, DType::kFloat32);
  need_outputs(ctx, 1);
  auto st = std::make_unique<PoolState>();
  st->max = ctx.op_type == "MaxPool";
  const auto k = ctx.attrs->get_ints("kernel_shape");
  const auto s = ctx.attrs->get_ints("strides", {1, 1});
  const auto d = ctx.attrs->get_ints("dilations", {1, 1});
  const auto p = ctx.attrs->get_ints("pads", {0, 0, 0, 0});
  if (k.size() != 2 || s.size() != 2 || d.size() != 2 || p.size() != 4)
    ctx.fail("kernel_shape/strides/dilations/pads must describe 2 spatial dims");
  st->kh = k[0]; st->kw = k[1]; st->sh = s[0]; st->sw = s[1]; st->dh = d[0]; st->dw = d[1];
  st->pt = p[0]; st->pl = p[1]; st->pb = p[2]; st->pr = p[3];
  if (st->kh < 1 || st->kw < 1 || st->sh < 1 || st->sw < 1 || st->dh < 1 || st->dw < 1)
    ctx.fail("kernel, strides and dilations must be >= 1");
  st->count_include_pad = ctx.attrs->get_int("count_include_pad", 0) != 0;
  const bool ceil = ctx.attrs->get_int("ceil_mode", 0) != 0;
  // ONNX output size; with ceil_mode a last window that would start in the end padding is
  // dropped (as onnxruntime and the ONNX reference do).
  auto out_size = [&](int64_t in, int64_t kk, int64_t ss, int64_t dd, int64_t pa, int64_t pe) {
    const int64_t span = in + pa + pe - ((kk - 1) * dd + 1);
    if (span < 0) ctx.fail("the pooling window is larger than the padded input");
    int64_t o = (ceil ? (span + ss - 1) / ss : span / ss) + 1;
    if (ceil && (o - 1) * ss >= in + pa) --o;
    return o;
  };
  need_shape(ctx, *ctx.outputs[0],
             {x->static_shape[0], x->static_shape[1],
              out_size(x->static_shape[2], st->kh, st->sh, st->dh, st->pt, st->pb),
              out_size(x->static_shape[3], st->kw, st->sw, st->dw, st->pl, st->pr)});
  ctx.state = std::move(st);
}

void pool_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<PoolState>();
  const int64_t planes = x->shape[0] * x->shape[1], ih = x->shape[2], iw = x->shape[3];
  const int64_t oh = y->shape[2], ow = y->shape[3];
  const float* px = x->as<float>();
  float* py = y->as<float>();
  parallel(ctx.pool, planes, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const float* src = px + p * ih * iw;
      float* dst = py + p * oh * ow;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t y0 = oy * st.sh - st.pt, x0 = ox * st.sw - st.pl;
          float acc = st.max ? -INFINITY : 0.0f;
          int64_t count = 0;
          for (int64_t ky = 0; ky < st.kh; ++ky) {
            const int64_t yy = y0 + ky * st.dh;
            if (yy < 0 || yy >= ih) continue;
            for (int64_t kx = 0; kx < st.kw; ++kx) {
              const int64_t xx = x0 + kx * st.dw;
              if (xx < 0 || xx >= iw) continue;
              const float v = src[yy * iw + xx];
              if (st.max) acc = std::max(acc, v);
              else acc += v;
              ++count;
            }
          }
          if (!st.max) {
            if (st.count_include_pad) {
              // Window clipped to the padded input (ceil_mode windows may overhang it).
              const int64_t ye = std::min(y0 + (st.kh - 1) * st.dh + 1, ih + st.pb);
              const int64_t xe = std::min(x0 + (st.kw - 1) * st.dw + 1, iw + st.pr);
              const int64_t ys = std::max(y0, -st.pt), xs = std::max(x0, -st.pl);
              count = ((ye - ys + st.dh - 1) / st.dh) * ((xe - xs + st.dw - 1) / st.dw);
            }
            acc = count ? acc / static_cast<float>(count) : 0.0f;
          }
          dst[oy * ow + ox] = acc;
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
  const float* px = x->as<float>();
  float* py = ctx.output(0)->as<float>();
  for (int64_t p = 0; p < planes; ++p) {
    float s = 0.0f;
    for (int64_t i = 0; i < inner; ++i) s += px[p * inner + i];
    py[p] = s / static_cast<float>(inner);
  }
}

}  // namespace ops
}  // namespace edgepack
