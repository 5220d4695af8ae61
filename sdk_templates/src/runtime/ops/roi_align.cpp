// SPDX-License-Identifier: Apache-2.0
// RoiAlign (opset 16; onnxruntime's sampling and bilinear rules): X [N,C,H,W], rois [R,4]
// (x1,y1,x2,y2), batch_indices [R]; output [R,C,oh,ow]. Modes avg and max; coordinate modes
// half_pixel and output_half_pixel. rois may be dynamic in dim 0 (boxes from NMS).
#include "runtime/ops/roi_align.h"

namespace edgepack {
namespace ops {
namespace {
struct RoiAlignState : OpState {
  RoiAlignAttrs a;
};
}  // namespace

void roi_align_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  auto st = std::make_unique<RoiAlignState>();
  st->a = read_roi_align(ctx);
  need_dtype(ctx, *x, DType::kFloat32);
  need_rank(ctx, *x, 4);
  need_shape(ctx, *ctx.outputs[0],
             {ctx.inputs[1]->static_shape[0], x->static_shape[1], st->a.oh, st->a.ow});
  ctx.state = std::move(st);
}

void roi_align_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* rois = ctx.input(1);
  const Tensor* bi = ctx.input(2);
  Tensor* y = ctx.output(0);
  const RoiAlignAttrs& a = ctx.state_as<RoiAlignState>()->a;
  const int64_t r_count = std::min(rois->shape[0], bi->shape[0]);
  y->shape[0] = r_count;
  const int64_t c_count = x->shape[1], h = x->shape[2], w = x->shape[3];
  for (int64_t r = 0; r < r_count; ++r) {
    const int64_t b = bi->dtype == DType::kInt64 ? bi->as<int64_t>()[r] : bi->as<int32_t>()[r];
    if (b < 0 || b >= x->shape[0])
      throw Error(ErrorCode::kRuntimeError,
                  std::string("RoiAlign: batch index out of range in ") + ctx.node_name);
    const RoiGrid g = roi_grid(a, rois->as<float>() + r * 4);
    for (int64_t c = 0; c < c_count; ++c) {
      const float* plane = x->as<float>() + (b * c_count + c) * h * w;
      float* out = y->as<float>() + ((r * c_count + c) * a.oh) * a.ow;
      auto at = [&](int64_t yy, int64_t xx) { return plane[yy * w + xx]; };
      for (int64_t ph = 0; ph < a.oh; ++ph)
        for (int64_t pw = 0; pw < a.ow; ++pw)
          out[ph * a.ow + pw] =
              roi_bin(a, g, h, w, ph, pw, [&](const AxisSample& sy, const AxisSample& sx) {
                return roi_sample(sy, sx, a.max, at);
              });
    }
  }
}

}  // namespace ops
}  // namespace edgepack
