// SPDX-License-Identifier: Apache-2.0
// Resize: nearest (any dims; nearest modes round_prefer_floor/ceil, floor, ceil) and linear (last
// two dims); coordinate modes half_pixel, asymmetric, align_corners, pytorch_half_pixel.
// Source coordinates are precomputed at prepare from the static shapes.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct ResizeState : OpState {
  bool linear = false;
  std::vector<std::vector<int64_t>> nearest;       // per dim: source index per output index
  std::vector<int64_t> y0, y1, x0, x1;             // linear: source rows / cols
  std::vector<float> wy, wx;                       // linear: weight of y1 / x1
};

float source_coord(const std::string& mode, int64_t o, float scale, int64_t in, int64_t out) {
  const float x = static_cast<float>(o);
  if (mode == "asymmetric") return x / scale;
  if (mode == "align_corners")
    return out == 1 ? 0.0f : x * static_cast<float>(in - 1) / static_cast<float>(out - 1);
  if (mode == "pytorch_half_pixel") return out > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
  return (x + 0.5f) / scale - 0.5f;  // half_pixel
}

int64_t nearest_index(const std::string& mode, float c, int64_t in) {
  int64_t i;
  if (mode == "floor") i = static_cast<int64_t>(std::floor(c));
  else if (mode == "ceil") i = static_cast<int64_t>(std::ceil(c));
  else {
    const float f = std::floor(c);
    const float frac = c - f;
    if (frac == 0.5f) i = static_cast<int64_t>(mode == "round_prefer_ceil" ? f + 1.0f : f);
    else i = static_cast<int64_t>(std::round(c));
  }
  return std::min(std::max<int64_t>(i, 0), in - 1);
}
}  // namespace

void resize_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_outputs(ctx, 1);
  Tensor* y = ctx.outputs[0];
  need_dtype(ctx, *y, x->dtype);
  need_rank(ctx, *y, x->rank);
  auto st = std::make_unique<ResizeState>();
  const std::string mode = ctx.attrs->get_string("mode", "nearest");
  const std::string ctm = ctx.attrs->get_string("coordinate_transformation_mode", "half_pixel");
  const std::string nm = ctx.attrs->get_string("nearest_mode", "round_prefer_floor");
  const auto scales = ctx.attrs->get_floats("scales");
  if (static_cast<int>(scales.size()) != x->rank) ctx.fail("scales needs one value per dimension");
  if (ctm != "half_pixel" && ctm != "asymmetric" && ctm != "align_corners" &&
      ctm != "pytorch_half_pixel")
    ctx.fail("unsupported coordinate_transformation_mode '" + ctm + "'");
  if (x->dynamic_dim0 && x->static_shape[0] != y->static_shape[0])
    ctx.fail("cannot resize a dynamic dimension 0");
  st->linear = mode == "linear";
  if (!st->linear && mode != "nearest") ctx.fail("unsupported mode '" + mode + "'");
  if (st->linear) {
    if (x->rank < 2) ctx.fail("linear resize needs rank >= 2");
    if (x->dtype != DType::kFloat32 && x->dtype != DType::kUInt8)
      ctx.fail("linear resize supports float32 and uint8");
    for (int d = 0; d < x->rank - 2; ++d)
      if (x->static_shape[d] != y->static_shape[d]) ctx.fail("linear resize of a leading dim");
    for (int axis = x->rank - 2; axis < x->rank; ++axis) {
      const int64_t in = x->static_shape[axis], out = y->static_shape[axis];
      auto& i0 = axis == x->rank - 2 ? st->y0 : st->x0;
      auto& i1 = axis == x->rank - 2 ? st->y1 : st->x1;
      auto& w = axis == x->rank - 2 ? st->wy : st->wx;
      for (int64_t o = 0; o < out; ++o) {
        float c = source_coord(ctm, o, scales[axis], in, out);
        c = std::min(std::max(c, 0.0f), static_cast<float>(in - 1));
        const int64_t lo = static_cast<int64_t>(std::floor(c));
        i0.push_back(lo);
        i1.push_back(std::min(lo + 1, in - 1));
        w.push_back(c - static_cast<float>(lo));
      }
    }
  } else {
    for (int axis = 0; axis < x->rank; ++axis) {
      const int64_t in = x->static_shape[axis], out = y->static_shape[axis];
      std::vector<int64_t> map(out);
      for (int64_t o = 0; o < out; ++o)
        map[o] = nearest_index(nm, source_coord(ctm, o, scales[axis], in, out), in);
      st->nearest.push_back(std::move(map));
    }
  }
  ctx.state = std::move(st);
}

void resize_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<ResizeState>();
  const int r = x->rank;
  if (x->dynamic_dim0) y->shape[0] = x->shape[0];
  if (st.linear) {
    const int64_t ih = x->shape[r - 2], iw = x->shape[r - 1];
    const int64_t oh = y->shape[r - 2], ow = y->shape[r - 1];
    const int64_t planes = x->numel() / (ih * iw);
    dispatch(x->dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same<T, float>::value || std::is_same<T, uint8_t>::value) {
        const T* src = x->as<T>();
        T* dst = y->as<T>();
        parallel(ctx.pool, planes, [&](int64_t p0, int64_t p1) {
          for (int64_t p = p0; p < p1; ++p) {
            const T* s = src + p * ih * iw;
            T* d = dst + p * oh * ow;
            for (int64_t oy = 0; oy < oh; ++oy) {
              const T* r0 = s + st.y0[oy] * iw;
              const T* r1 = s + st.y1[oy] * iw;
              const float wy = st.wy[oy];
              for (int64_t ox = 0; ox < ow; ++ox) {
                const int64_t a = st.x0[ox], b = st.x1[ox];
                const float wx = st.wx[ox];
                const float top = static_cast<float>(r0[a]) * (1 - wx) + static_cast<float>(r0[b]) * wx;
                const float bot = static_cast<float>(r1[a]) * (1 - wx) + static_cast<float>(r1[b]) * wx;
                const float v = top * (1 - wy) + bot * wy;
                if constexpr (std::is_same<T, uint8_t>::value)
                  d[oy * ow + ox] = static_cast<uint8_t>(std::min(std::max(std::nearbyint(v), 0.0f), 255.0f));
                else
                  d[oy * ow + ox] = v;
              }
            }
          }
        });
      }
    });
    return;
  }
  int64_t in_stride[kMaxRank];
  int64_t s = 1;
  for (int d = r - 1; d >= 0; --d) {
    in_stride[d] = s;
    s *= x->shape[d];
  }
  const size_t es = dtype_size(x->dtype);
  const uint8_t* src = static_cast<const uint8_t*>(x->data);
  uint8_t* dst = static_cast<uint8_t*>(y->data);
  const int64_t n = y->numel();
  int64_t idx[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int d = 0; d < r; ++d) off += st.nearest[d][idx[d]] * in_stride[d];
    std::memcpy(dst + i * es, src + off * es, es);
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[d] < y->shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace ops
}  // namespace edgepack
