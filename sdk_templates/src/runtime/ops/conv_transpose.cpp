// SPDX-License-Identifier: Apache-2.0
// ConvTranspose (1-D/2-D, NCHW, float32, constant weights): GEMM + col2im in
// kernels::ConvTranspose2d; output_shape (when given) is turned into pads as ONNX specifies.
#include "runtime/kernels/conv_transpose.h"

#include "runtime/ops/conv_attrs.h"

namespace edgepack {
namespace ops {
namespace {

struct ConvTransposeState : OpState {
  kernels::ConvTranspose2d op;
  int64_t in_image = 0, out_image = 0;
};

}  // namespace

void conv_transpose_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_dtype(ctx, *x, DType::kFloat32);
  if (x->rank != 3 && x->rank != 4) ctx.fail("X must be N x C x W or N x C x H x W");
  const int spatial = x->rank - 2;
  Tensor* w = need_constant_weights(ctx, 1, "W", x->rank);
  const ConvAttrs a = read_conv_attrs(ctx, spatial, w->static_shape + 2);
  need_outputs(ctx, 1);

  kernels::ConvTranspose2dParams p;
  p.in_channels = x->static_shape[1];
  p.in_h = spatial == 2 ? x->static_shape[2] : 1;
  p.in_w = x->static_shape[x->rank - 1];
  p.groups = a.group;
  p.out_channels = w->static_shape[1] * a.group;
  set_window(a, p);
  const auto op = ctx.attrs->get_ints("output_padding", std::vector<int64_t>(spatial, 0));
  if (static_cast<int>(op.size()) != spatial) ctx.fail("output_padding has the wrong length");
  p.output_padding_h = spatial == 2 ? op[0] : 0;
  p.output_padding_w = op[spatial - 1];
  if (w->static_shape[0] != p.in_channels) ctx.fail("W's first dimension must equal X's channels");
  Tensor* b = optional_bias(ctx, 2, p.out_channels);
  const auto out_shape_attr = ctx.attrs->get_ints("output_shape", {});
  const bool same = a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER";
  if (!out_shape_attr.empty() || same) {
    // total_padding = stride * (in - 1) + output_padding + (k - 1) * d + 1 - out
    auto fit = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t opad, int64_t out,
                   int64_t& lo, int64_t& hi) {
      const int64_t total = s * (in - 1) + opad + (k - 1) * d + 1 - out;
      if (total < 0) ctx.fail("output_shape larger than ConvTranspose can produce");
      lo = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      hi = total - lo;
    };
    const int64_t oh =
        out_shape_attr.empty() ? p.in_h * p.stride_h : (spatial == 2 ? out_shape_attr[0] : 1);
    const int64_t ow = out_shape_attr.empty() ? p.in_w * p.stride_w : out_shape_attr.back();
    if (spatial == 2)
      fit(p.in_h, p.kernel_h, p.stride_h, p.dilation_h, p.output_padding_h, oh, p.pad_top,
          p.pad_bottom);
    fit(p.in_w, p.kernel_w, p.stride_w, p.dilation_w, p.output_padding_w, ow, p.pad_left,
        p.pad_right);
  } else if (a.auto_pad == "VALID") {
    p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = 0;
  }
  std::vector<int64_t> out_shape = {x->static_shape[0], p.out_channels};
  if (spatial == 2) out_shape.push_back(p.out_h());
  out_shape.push_back(p.out_w());
  need_shape(ctx, *ctx.outputs[0], out_shape);

  auto st = std::make_unique<ConvTransposeState>();
  try {
    st->op.prepare(p, w->as<float>(), b != nullptr ? b->as<float>() : nullptr, read_epilogue(ctx));
  } catch (const Error& e) {
    ctx.fail(e.what());
  }
  st->in_image = p.in_channels * p.in_h * p.in_w;
  st->out_image = p.out_channels * p.out_h() * p.out_w();
  ctx.scratch_bytes = st->op.scratch_bytes();
  ctx.state = std::move(st);
}

void conv_transpose_run(RunContext& ctx) {
  const auto* st = ctx.state_as<ConvTransposeState>();
  const Tensor* x = ctx.input(0);
  const float* in = x->as<float>();
  float* out = ctx.output(0)->as<float>();
  for (int64_t n = 0; n < x->shape[0]; ++n)
    st->op.run(in + n * st->in_image, out + n * st->out_image, ctx.scratch, ctx.pool);
}

}  // namespace ops
}  // namespace edgepack
