// SPDX-License-Identifier: Apache-2.0
// Conv (2-D, NCHW, float32): groups (incl. depthwise), strides, dilations, asymmetric pads
// (lowering resolves auto_pad), optional bias, fused activation. Simple direct loops; the fast
// path lives in runtime/kernels/.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct ConvState : OpState {
  int64_t group = 1, kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0;
  FusedActivation act;
};
}  // namespace

void conv_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  Tensor* w = need_input(ctx, 1, "W");
  Tensor* b = ctx.input(2);
  need_outputs(ctx, 1);
  need_rank(ctx, *x, 4);
  need_rank(ctx, *w, 4);
  need_dtype(ctx, *x, DType::kFloat32);
  need_dtype(ctx, *w, DType::kFloat32);
  auto st = std::make_unique<ConvState>();
  st->group = ctx.attrs->get_int("group", 1);
  const auto s = ctx.attrs->get_ints("strides", {1, 1});
  const auto d = ctx.attrs->get_ints("dilations", {1, 1});
  const auto p = ctx.attrs->get_ints("pads", {0, 0, 0, 0});
  if (s.size() != 2 || d.size() != 2 || p.size() != 4) ctx.fail("only 2-D convolution");
  st->kh = w->static_shape[2];
  st->kw = w->static_shape[3];
  st->sh = s[0]; st->sw = s[1]; st->dh = d[0]; st->dw = d[1]; st->pt = p[0]; st->pl = p[1];
  const int64_t cin = x->static_shape[1], cout = w->static_shape[0];
  if (st->group < 1 || cin % st->group || cout % st->group ||
      w->static_shape[1] != cin / st->group)
    ctx.fail("weights " + shape_str(*w) + " do not match input " + shape_str(*x) +
             " with group " + std::to_string(st->group));
  if (b && (b->dtype != DType::kFloat32 || b->static_numel() != cout)) ctx.fail("bad bias");
  if (st->sh < 1 || st->sw < 1 || st->dh < 1 || st->dw < 1) ctx.fail("bad strides/dilations");
  const int64_t oh = (x->static_shape[2] + p[0] + p[2] - st->dh * (st->kh - 1) - 1) / st->sh + 1;
  const int64_t ow = (x->static_shape[3] + p[1] + p[3] - st->dw * (st->kw - 1) - 1) / st->sw + 1;
  need_shape(ctx, *ctx.outputs[0], {x->static_shape[0], cout, oh, ow});
  st->act = read_activation(ctx);
  ctx.state = std::move(st);
}

void conv_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* w = ctx.input(1);
  const Tensor* b = ctx.input(2);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<ConvState>();
  const int64_t n = x->shape[0], cin = x->shape[1], ih = x->shape[2], iw = x->shape[3];
  const int64_t cout = y->shape[1], oh = y->shape[2], ow = y->shape[3];
  const int64_t cin_g = cin / st.group, cout_g = cout / st.group;
  const float* px = x->as<float>();
  const float* pw = w->as<float>();
  const float* pb = b ? b->as<float>() : nullptr;
  float* py = y->as<float>();
  parallel(ctx.pool, n * cout, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t bn = j / cout, oc = j % cout, g = oc / cout_g;
      float* dst = py + j * oh * ow;
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          float acc = pb ? pb[oc] : 0.0f;
          for (int64_t ic = 0; ic < cin_g; ++ic) {
            const float* src = px + (bn * cin + g * cin_g + ic) * ih * iw;
            const float* k = pw + (oc * cin_g + ic) * st.kh * st.kw;
            for (int64_t ky = 0; ky < st.kh; ++ky) {
              const int64_t yy = oy * st.sh - st.pt + ky * st.dh;
              if (yy < 0 || yy >= ih) continue;
              for (int64_t kx = 0; kx < st.kw; ++kx) {
                const int64_t xx = ox * st.sw - st.pl + kx * st.dw;
                if (xx < 0 || xx >= iw) continue;
                acc += src[yy * iw + xx] * k[ky * st.kw + kx];
              }
            }
          }
          dst[oy * ow + ox] = st.act.apply(acc);
        }
    }
  });
}

}  // namespace ops
}  // namespace edgepack
