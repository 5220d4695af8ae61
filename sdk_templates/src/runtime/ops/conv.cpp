// SPDX-License-Identifier: Apache-2.0
// Conv (1-D/2-D, NCHW, float32, constant weights): kernels::Conv2d with weights packed at
// prepare, bias and a fused activation applied in the output pass.
#include "runtime/kernels/conv.h"

#include "runtime/ops/conv_attrs.h"

namespace edgepack {
namespace ops {
namespace {

struct ConvState : OpState {
  kernels::Conv2d conv;
  int64_t in_image = 0, out_image = 0;  // floats per batch item
};

}  // namespace

void conv_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_dtype(ctx, *x, DType::kFloat32);
  if (x->rank != 3 && x->rank != 4) ctx.fail("X must be N x C x W or N x C x H x W");
  const int spatial = x->rank - 2;
  Tensor* w = need_constant_weights(ctx, 1, "W", x->rank);
  Tensor* b = optional_bias(ctx, 2, w->static_shape[0]);
  need_outputs(ctx, 1);
  const ConvAttrs a = read_conv_attrs(ctx, spatial, w->static_shape + 2);

  kernels::Conv2dParams p;
  p.batch = 1;
  p.in_channels = x->static_shape[1];
  p.in_h = spatial == 2 ? x->static_shape[2] : 1;
  p.in_w = x->static_shape[x->rank - 1];
  p.out_channels = w->static_shape[0];
  set_window(a, p);
  p.groups = a.group;
  if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
    auto same = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t& lo, int64_t& hi) {
      const int64_t out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + d * (k - 1) + 1 - in);
      lo = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      hi = total - lo;
    };
    same(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.pad_top, p.pad_bottom);
    same(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.pad_left, p.pad_right);
  } else if (a.auto_pad == "VALID") {
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 0;
  } else if (a.auto_pad != "NOTSET") {
    ctx.fail("unknown auto_pad '" + a.auto_pad + "'");
  }
  if (w->static_shape[1] * p.groups != p.in_channels)
    ctx.fail("W has " + std::to_string(w->static_shape[1]) + " input channels per group, X has " +
             std::to_string(p.in_channels) + " channels and group is " + std::to_string(p.groups));

  std::vector<int64_t> out_shape = {x->static_shape[0], p.out_channels};
  if (spatial == 2) out_shape.push_back(p.out_h());
  out_shape.push_back(p.out_w());
  need_shape(ctx, *ctx.outputs[0], out_shape);

  auto st = std::make_unique<ConvState>();
  try {
    st->conv.prepare(p, w->as<float>(), b != nullptr ? b->as<float>() : nullptr, read_epilogue(ctx),
                     ctx.threads);
  } catch (const Error& e) {
    ctx.fail(e.what());
  }
  st->in_image = p.in_channels * p.in_h * p.in_w;
  st->out_image = p.out_channels * p.out_h() * p.out_w();
  ctx.scratch_bytes = st->conv.scratch_bytes();
  ctx.state = std::move(st);
}

void conv_run(RunContext& ctx) {
  const auto* st = ctx.state_as<ConvState>();
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const float* in = x->as<float>();
  float* out = y->as<float>();
  for (int64_t n = 0; n < x->shape[0]; ++n)
    st->conv.run(in + n * st->in_image, out + n * st->out_image, ctx.scratch, ctx.pool);
}

}  // namespace ops
}  // namespace edgepack
