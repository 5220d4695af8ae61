// SPDX-License-Identifier: Apache-2.0
// RoiAlign (opset 16; onnxruntime's sampling and bilinear rules): X [N,C,H,W], rois [R,4]
// (x1,y1,x2,y2), batch_indices [R]; output [R,C,oh,ow]. Modes avg and max; coordinate modes
// half_pixel and output_half_pixel. rois may be dynamic in dim 0 (boxes from NMS).
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct RoiAlignState : OpState {
  bool max = false, half_pixel = true;
  int64_t oh = 1, ow = 1, sampling = 0;
  float scale = 1.0f;
};
}  // namespace

void roi_align_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  Tensor* rois = need_input(ctx, 1, "rois");
  Tensor* bi = need_input(ctx, 2, "batch_indices");
  need_outputs(ctx, 1);
  need_dtype(ctx, *x, DType::kFloat32);
  need_dtype(ctx, *rois, DType::kFloat32);
  need_rank(ctx, *x, 4);
  need_rank(ctx, *rois, 2);
  if (rois->static_shape[1] != 4) ctx.fail("rois must be [R, 4]");
  if (bi->dtype != DType::kInt64 && bi->dtype != DType::kInt32) ctx.fail("batch_indices: int64");
  auto st = std::make_unique<RoiAlignState>();
  st->max = ctx.attrs->get_string("mode", "avg") == "max";
  st->half_pixel =
      ctx.attrs->get_string("coordinate_transformation_mode", "half_pixel") == "half_pixel";
  st->oh = ctx.attrs->get_int("output_height", 1);
  st->ow = ctx.attrs->get_int("output_width", 1);
  st->sampling = ctx.attrs->get_int("sampling_ratio", 0);
  st->scale = ctx.attrs->get_float("spatial_scale", 1.0f);
  need_dtype(ctx, *ctx.outputs[0], DType::kFloat32);
  need_shape(ctx, *ctx.outputs[0], {rois->static_shape[0], x->static_shape[1], st->oh, st->ow});
  ctx.state = std::move(st);
}

void roi_align_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* rois = ctx.input(1);
  const Tensor* bi = ctx.input(2);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<RoiAlignState>();
  const int64_t r_count = std::min(rois->shape[0], bi->shape[0]);
  y->shape[0] = r_count;
  const int64_t c_count = x->shape[1], h = x->shape[2], w = x->shape[3];
  const float offset = st.half_pixel ? 0.5f : 0.0f;
  for (int64_t r = 0; r < r_count; ++r) {
    const float* roi = rois->as<float>() + r * 4;
    const int64_t b = bi->dtype == DType::kInt64 ? bi->as<int64_t>()[r] : bi->as<int32_t>()[r];
    if (b < 0 || b >= x->shape[0])
      throw Error(ErrorCode::kRuntimeError,
                  std::string("RoiAlign: batch index out of range in ") + ctx.node_name);
    const float x1 = roi[0] * st.scale - offset, y1 = roi[1] * st.scale - offset;
    float rw = roi[2] * st.scale - offset - x1, rh = roi[3] * st.scale - offset - y1;
    if (!st.half_pixel) {
      rw = std::max(rw, 1.0f);
      rh = std::max(rh, 1.0f);
    }
    const float bin_h = rh / static_cast<float>(st.oh), bin_w = rw / static_cast<float>(st.ow);
    const int64_t gh = st.sampling > 0 ? st.sampling : static_cast<int64_t>(std::ceil(rh / st.oh));
    const int64_t gw = st.sampling > 0 ? st.sampling : static_cast<int64_t>(std::ceil(rw / st.ow));
    const float count = static_cast<float>(std::max<int64_t>(gh * gw, 1));
    for (int64_t c = 0; c < c_count; ++c) {
      const float* plane = x->as<float>() + (b * c_count + c) * h * w;
      float* out = y->as<float>() + ((r * c_count + c) * st.oh) * st.ow;
      for (int64_t ph = 0; ph < st.oh; ++ph)
        for (int64_t pw = 0; pw < st.ow; ++pw) {
          float acc = st.max ? -INFINITY : 0.0f;
          bool any = false;
          for (int64_t iy = 0; iy < gh; ++iy) {
            float yy = y1 + ph * bin_h + (iy + 0.5f) * bin_h / static_cast<float>(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              float xx = x1 + pw * bin_w + (ix + 0.5f) * bin_w / static_cast<float>(gw);
              float v = 0.0f;
              if (!(yy < -1.0f || yy > static_cast<float>(h) || xx < -1.0f ||
                    xx > static_cast<float>(w))) {
                float sy = std::max(yy, 0.0f), sx = std::max(xx, 0.0f);
                int64_t y_lo = static_cast<int64_t>(sy), x_lo = static_cast<int64_t>(sx);
                int64_t y_hi, x_hi;
                if (y_lo >= h - 1) {
                  y_hi = y_lo = h - 1;
                  sy = static_cast<float>(y_lo);
                } else
                  y_hi = y_lo + 1;
                if (x_lo >= w - 1) {
                  x_hi = x_lo = w - 1;
                  sx = static_cast<float>(x_lo);
                } else
                  x_hi = x_lo + 1;
                const float ly = sy - y_lo, lx = sx - x_lo, hy = 1 - ly, hx = 1 - lx;
                const float v1 = hy * hx * plane[y_lo * w + x_lo];
                const float v2 = hy * lx * plane[y_lo * w + x_hi];
                const float v3 = ly * hx * plane[y_hi * w + x_lo];
                const float v4 = ly * lx * plane[y_hi * w + x_hi];
                v = st.max ? std::max(std::max(v1, v2), std::max(v3, v4)) : v1 + v2 + v3 + v4;
              }
              if (st.max)
                acc = any ? std::max(acc, v) : v;
              else
                acc += v;
              any = true;
            }
          }
          out[ph * st.ow + pw] = st.max ? (any ? acc : 0.0f) : acc / count;
        }
    }
  }
}

}  // namespace ops
}  // namespace edgepack
