// SPDX-License-Identifier: Apache-2.0
// RoiAlign's attributes, sampling grid and bilinear taps (opset 16, onnxruntime's rules), shared
// by ops/roi_align.cpp (float NCHW input) and ops/frame_ops.cpp (FrameRoiAlign: the uint8 frame).
#pragma once

#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {

struct RoiAlignAttrs {
  bool max = false, half_pixel = true;
  int64_t oh = 1, ow = 1, sampling = 0;  // sampling 0: ceil(roi size / output size) per bin
  float scale = 1.0f;
};

// Checks rois [R, 4] float32 (input 1) and batch_indices (input 2, int64 or int32) and reads the
// attributes.
inline RoiAlignAttrs read_roi_align(PrepareContext& ctx) {
  Tensor* rois = need_input(ctx, 1, "rois");
  Tensor* bi = need_input(ctx, 2, "batch_indices");
  need_outputs(ctx, 1);
  need_dtype(ctx, *rois, DType::kFloat32);
  need_rank(ctx, *rois, 2);
  if (rois->static_shape[1] != 4) ctx.fail("rois must be [R, 4]");
  if (bi->dtype != DType::kInt64 && bi->dtype != DType::kInt32) ctx.fail("batch_indices: int64");
  need_dtype(ctx, *ctx.outputs[0], DType::kFloat32);
  RoiAlignAttrs a;
  a.max = ctx.attrs->get_string("mode", "avg") == "max";
  a.half_pixel =
      ctx.attrs->get_string("coordinate_transformation_mode", "half_pixel") == "half_pixel";
  a.oh = ctx.attrs->get_int("output_height", 1);
  a.ow = ctx.attrs->get_int("output_width", 1);
  a.sampling = ctx.attrs->get_int("sampling_ratio", 0);
  a.scale = ctx.attrs->get_float("spatial_scale", 1.0f);
  return a;
}

// One roi's bins: sample (iy, ix) of bin (ph, pw) lies at y0 + ph * bin_h + (iy + 0.5) * bin_h /
// gh (likewise x).
struct RoiGrid {
  float x0 = 0, y0 = 0, bin_w = 0, bin_h = 0;
  int64_t gh = 1, gw = 1;
  float count = 1;  // samples per bin

  float y(int64_t ph, int64_t iy) const {
    return y0 + ph * bin_h + (iy + 0.5f) * bin_h / static_cast<float>(gh);
  }
  float x(int64_t pw, int64_t ix) const {
    return x0 + pw * bin_w + (ix + 0.5f) * bin_w / static_cast<float>(gw);
  }
};

inline RoiGrid roi_grid(const RoiAlignAttrs& a, const float* roi) {
  const float offset = a.half_pixel ? 0.5f : 0.0f;
  RoiGrid g;
  g.x0 = roi[0] * a.scale - offset;
  g.y0 = roi[1] * a.scale - offset;
  float rw = roi[2] * a.scale - offset - g.x0, rh = roi[3] * a.scale - offset - g.y0;
  if (!a.half_pixel) {
    rw = std::max(rw, 1.0f);
    rh = std::max(rh, 1.0f);
  }
  g.bin_h = rh / static_cast<float>(a.oh);
  g.bin_w = rw / static_cast<float>(a.ow);
  g.gh = a.sampling > 0 ? a.sampling : static_cast<int64_t>(std::ceil(rh / a.oh));
  g.gw = a.sampling > 0 ? a.sampling : static_cast<int64_t>(std::ceil(rw / a.ow));
  g.count = static_cast<float>(std::max<int64_t>(g.gh * g.gw, 1));
  return g;
}

// A sample coordinate along an axis of `size` pixels: the two pixels it blends, the second's
// weight, and whether the sample counts (outside [-1, size] it adds 0).
struct AxisSample {
  int64_t lo = 0, hi = 0;
  float w = 0;  // weight of hi; lo's is 1 - w
  bool inside = false;
};

inline AxisSample axis_sample(float c, int64_t size) {
  AxisSample s;
  s.inside = !(c < -1.0f || c > static_cast<float>(size));
  float v = std::max(c, 0.0f);
  s.lo = static_cast<int64_t>(v);
  if (s.lo >= size - 1) {
    s.hi = s.lo = size - 1;
    v = static_cast<float>(s.lo);
  } else {
    s.hi = s.lo + 1;
  }
  s.w = v - static_cast<float>(s.lo);
  return s;
}

// The bilinear sample of `at(y, x)` at (sy, sx), both inside: onnxruntime's corner products
// (avg: their sum; max: their maximum).
template <class At>
float roi_sample(const AxisSample& sy, const AxisSample& sx, bool max, At&& at) {
  const float ly = sy.w, lx = sx.w, hy = 1 - ly, hx = 1 - lx;
  const float v1 = hy * hx * at(sy.lo, sx.lo), v2 = hy * lx * at(sy.lo, sx.hi);
  const float v3 = ly * hx * at(sy.hi, sx.lo), v4 = ly * lx * at(sy.hi, sx.hi);
  return max ? std::max(std::max(v1, v2), std::max(v3, v4)) : v1 + v2 + v3 + v4;
}

// One output of a bin: the samples' sum / count (avg) or their maximum (max; 0 when none).
template <class Sample>
float roi_bin(const RoiAlignAttrs& a, const RoiGrid& g, int64_t h, int64_t w, int64_t ph,
              int64_t pw, Sample&& sample) {
  float acc = a.max ? -INFINITY : 0.0f;
  bool any = false;
  for (int64_t iy = 0; iy < g.gh; ++iy) {
    const AxisSample sy = axis_sample(g.y(ph, iy), h);
    for (int64_t ix = 0; ix < g.gw; ++ix) {
      const AxisSample sx = axis_sample(g.x(pw, ix), w);
      const float v = sy.inside && sx.inside ? sample(sy, sx) : 0.0f;
      if (a.max)
        acc = any ? std::max(acc, v) : v;
      else
        acc += v;
      any = true;
    }
  }
  return a.max ? (any ? acc : 0.0f) : acc / g.count;
}

}  // namespace ops
}  // namespace edgepack
