// SPDX-License-Identifier: Apache-2.0
// Resize: nearest (any dims; nearest modes round_prefer_floor/ceil, floor, ceil), linear and
// cubic (last two dims; cubic_coeff_a, exclude_outside); coordinate modes half_pixel,
// asymmetric, align_corners, pytorch_half_pixel and tf_crop_and_resize (`roi` attribute,
// extrapolation_value outside it). Source taps and weights are precomputed at prepare from the
// static shapes; run() only reads them. Nearest with every output index inside the input (no
// tf_crop_and_resize outside its roi) runs row by row: each output row from its source row by
// integer upsampling (vector shuffles) or a gather along the last axis, and an output row whose
// source row is that of the row before it copied from that row.
#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
constexpr int kMaxTaps = 4;

struct AxisTaps {  // per output index: kMaxTaps source indices and weights (-1: outside roi)
  std::vector<int64_t> idx;
  std::vector<float> w;
};

struct ResizeState : OpState {
  bool interp = false;  // linear or cubic (last two dims)
  int taps = 1;
  float extrapolation = 0.0f;
  std::vector<std::vector<int64_t>> nearest;  // per dim: source index per output index (-1 out)
  AxisTaps ty, tx;
  bool nearest_rows = false;  // nearest, every output index inside the input
  int64_t factor = 0;         // the last axis is upsampled by this integer factor (0: gather)
};

// The source coordinate of output index o along an axis (ONNX coordinate_transformation_mode).
// `scale` is the axis scale; align_corners uses the unrounded resized length in * scale.
float source_coord(const std::string& mode, int64_t o, float scale, int64_t in, int64_t out,
                   float roi_start, float roi_end) {
  const float x = static_cast<float>(o);
  if (mode == "asymmetric") return x / scale;
  if (mode == "align_corners") {
    const float len = static_cast<float>(in) * scale;
    return len <= 1.0f ? 0.0f : x * static_cast<float>(in - 1) / (len - 1.0f);
  }
  if (mode == "pytorch_half_pixel") return out > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
  if (mode == "tf_crop_and_resize") {
    const float span = static_cast<float>(in - 1);
    return out > 1
               ? roi_start * span + x * (roi_end - roi_start) * span / static_cast<float>(out - 1)
               : 0.5f * (roi_start + roi_end) * span;
  }
  return (x + 0.5f) / scale - 0.5f;  // half_pixel
}

int64_t nearest_index(const std::string& mode, float c, int64_t in) {
  int64_t i;
  if (mode == "floor")
    i = static_cast<int64_t>(std::floor(c));
  else if (mode == "ceil")
    i = static_cast<int64_t>(std::ceil(c));
  else {
    const float f = std::floor(c);
    const float frac = c - f;
    if (frac == 0.5f)
      i = static_cast<int64_t>(mode == "round_prefer_ceil" ? f + 1.0f : f);
    else
      i = static_cast<int64_t>(std::round(c));
  }
  return std::min(std::max<int64_t>(i, 0), in - 1);
}

void cubic_weights(float t, float a, float* w) {
  const float t1 = t + 1.0f, t2 = 1.0f - t, t3 = 2.0f - t;
  w[0] = ((a * t1 - 5.0f * a) * t1 + 8.0f * a) * t1 - 4.0f * a;
  w[1] = ((a + 2.0f) * t - (a + 3.0f)) * t * t + 1.0f;
  w[2] = ((a + 2.0f) * t2 - (a + 3.0f)) * t2 * t2 + 1.0f;
  w[3] = ((a * t3 - 5.0f * a) * t3 + 8.0f * a) * t3 - 4.0f * a;
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
      ctm != "pytorch_half_pixel" && ctm != "tf_crop_and_resize")
    ctx.fail("unsupported coordinate_transformation_mode '" + ctm + "'");
  std::vector<float> roi = ctx.attrs->get_floats("roi");
  if (ctm != "tf_crop_and_resize")
    roi.clear();
  else if (static_cast<int>(roi.size()) != 2 * x->rank)
    ctx.fail("roi needs 2 values per dimension");
  auto roi_at = [&](int axis, bool end) {
    return roi.empty() ? 0.0f : roi[static_cast<size_t>(axis + (end ? x->rank : 0))];
  };
  st->extrapolation = ctx.attrs->get_float("extrapolation_value", 0.0f);
  if (x->dynamic_dim0 && x->static_shape[0] != y->static_shape[0])
    ctx.fail("cannot resize a dynamic dimension 0");
  const bool cubic = mode == "cubic";
  st->interp = mode == "linear" || cubic;
  if (!st->interp && mode != "nearest") ctx.fail("unsupported mode '" + mode + "'");
  auto outside = [&](float c, int64_t in) {
    return !roi.empty() && (c < 0.0f || c > static_cast<float>(in - 1));
  };
  if (st->interp) {
    if (x->rank < 2) ctx.fail(mode + " resize needs rank >= 2");
    if (x->dtype != DType::kFloat32 && x->dtype != DType::kUInt8)
      ctx.fail(mode + " resize supports float32 and uint8");
    for (int d = 0; d < x->rank - 2; ++d)
      if (x->static_shape[d] != y->static_shape[d]) ctx.fail(mode + " resize of a leading dim");
    st->taps = cubic ? 4 : 2;
    const float a = ctx.attrs->get_float("cubic_coeff_a", -0.75f);
    const bool exclude = ctx.attrs->get_int("exclude_outside", 0) != 0;
    for (int axis = x->rank - 2; axis < x->rank; ++axis) {
      const int64_t in = x->static_shape[axis], out = y->static_shape[axis];
      AxisTaps& t = axis == x->rank - 2 ? st->ty : st->tx;
      t.idx.assign(static_cast<size_t>(out * kMaxTaps), 0);
      t.w.assign(static_cast<size_t>(out * kMaxTaps), 0.0f);
      for (int64_t o = 0; o < out; ++o) {
        float c =
            source_coord(ctm, o, scales[axis], in, out, roi_at(axis, false), roi_at(axis, true));
        int64_t* idx = &t.idx[static_cast<size_t>(o * kMaxTaps)];
        float* w = &t.w[static_cast<size_t>(o * kMaxTaps)];
        if (outside(c, in)) {
          idx[0] = -1;
          continue;
        }
        if (!cubic) {
          c = std::min(std::max(c, 0.0f), static_cast<float>(in - 1));
          const int64_t lo = static_cast<int64_t>(std::floor(c));
          idx[0] = lo;
          idx[1] = std::min(lo + 1, in - 1);
          w[1] = c - static_cast<float>(lo);
          w[0] = 1.0f - w[1];
          continue;
        }
        const int64_t lo = static_cast<int64_t>(std::floor(c));
        cubic_weights(c - static_cast<float>(lo), a, w);
        float sum = 0.0f;
        for (int k = 0; k < 4; ++k) {
          const int64_t i = lo - 1 + k;
          if (exclude && (i < 0 || i >= in)) w[k] = 0.0f;
          idx[k] = std::min(std::max<int64_t>(i, 0), in - 1);
          sum += w[k];
        }
        if (exclude && sum != 0.0f)
          for (int k = 0; k < 4; ++k) w[k] /= sum;
      }
    }
  } else {
    bool inside = true;  // every output index maps to an input index
    for (int axis = 0; axis < x->rank; ++axis) {
      const int64_t in = x->static_shape[axis], out = y->static_shape[axis];
      std::vector<int64_t> map(out);
      for (int64_t o = 0; o < out; ++o) {
        const float c =
            source_coord(ctm, o, scales[axis], in, out, roi_at(axis, false), roi_at(axis, true));
        map[o] = outside(c, in) ? -1 : nearest_index(nm, c, in);
        inside = inside && map[o] >= 0;
      }
      st->nearest.push_back(std::move(map));
    }
    if (!roi.empty() && x->dtype != DType::kFloat32)
      ctx.fail("tf_crop_and_resize with nearest supports float32");
    // (The last axis must be static: its map is indexed by the output's run-time length.)
    st->nearest_rows = inside && x->rank >= 1 && !(x->dynamic_dim0 && x->rank == 1);
    const int64_t in = x->rank ? x->static_shape[x->rank - 1] : 0;
    const int64_t out = x->rank ? y->static_shape[x->rank - 1] : 0;
    if (st->nearest_rows && in > 0 && out % in == 0) {
      const std::vector<int64_t>& last = st->nearest.back();
      st->factor = out / in;
      for (int64_t o = 0; o < out && st->factor; ++o)
        if (last[static_cast<size_t>(o)] != o / st->factor) st->factor = 0;
    }
  }
  ctx.state = std::move(st);
}

namespace {

// Nearest resize with every index inside the input, one output row (last axis) at a time; rows
// split across threads when the output is large enough to pay.
void nearest_rows(const ResizeState& st, const Tensor& x, const Tensor& y, const int64_t* in_stride,
                  size_t es, const uint8_t* src, uint8_t* dst, ThreadPool* pool) {
  const int r = x.rank, last = r - 1;
  const int64_t iw = x.shape[last], ow = y.shape[last];
  const int64_t n = y.numel();
  if (n == 0) return;
  const int64_t rows = n / ow;
  const size_t row_bytes = static_cast<size_t>(ow) * es;
  // Source index along leading dim d of output index i (a dynamic dim 0 is never resized).
  auto source = [&](int d, int64_t i) {
    return d == 0 && x.dynamic_dim0 ? i
                                    : st.nearest[static_cast<size_t>(d)][static_cast<size_t>(i)];
  };
  parallel(pool_for(pool, static_cast<double>(n) * static_cast<double>(es)), rows,
           [&](int64_t r0, int64_t r1) {
             int64_t idx[kMaxRank] = {};
             int64_t rem = r0;
             for (int d = last - 1; d >= 0; --d) {
               idx[d] = rem % y.shape[d];
               rem /= y.shape[d];
             }
             int64_t prev = -1;  // the source row offset of the row before (in this chunk)
             for (int64_t row = r0; row < r1; ++row) {
               int64_t off = 0;
               for (int d = 0; d < last; ++d) off += source(d, idx[d]) * in_stride[d];
               uint8_t* out = dst + static_cast<size_t>(row) * row_bytes;
               if (off == prev)
                 std::memcpy(out, out - row_bytes, row_bytes);
               else if (st.factor)
                 kernels::upsample_row(src + static_cast<size_t>(off) * es, iw, st.factor, out, es);
               else
                 kernels::gather_row(src + static_cast<size_t>(off) * es, st.nearest.back().data(),
                                     out, ow, es);
               prev = off;
               for (int d = last - 1; d >= 0; --d) {
                 if (++idx[d] < y.shape[d]) break;
                 idx[d] = 0;
               }
             }
           });
}

}  // namespace

void resize_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<ResizeState>();
  const int r = x->rank;
  if (x->dynamic_dim0) y->shape[0] = x->shape[0];
  if (st.interp) {
    const int64_t ih = x->shape[r - 2], iw = x->shape[r - 1];
    const int64_t oh = y->shape[r - 2], ow = y->shape[r - 1];
    const int64_t planes = x->numel() / (ih * iw);
    const int taps = st.taps;
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
              const int64_t* yi = &st.ty.idx[static_cast<size_t>(oy * kMaxTaps)];
              const float* yw = &st.ty.w[static_cast<size_t>(oy * kMaxTaps)];
              for (int64_t ox = 0; ox < ow; ++ox) {
                const int64_t* xi = &st.tx.idx[static_cast<size_t>(ox * kMaxTaps)];
                const float* xw = &st.tx.w[static_cast<size_t>(ox * kMaxTaps)];
                float v = 0.0f;
                if (yi[0] < 0 || xi[0] < 0)
                  v = st.extrapolation;
                else
                  for (int i = 0; i < taps; ++i) {
                    const T* row = s + yi[i] * iw;
                    float acc = 0.0f;
                    for (int j = 0; j < taps; ++j) acc += static_cast<float>(row[xi[j]]) * xw[j];
                    v += acc * yw[i];
                  }
                if constexpr (std::is_same<T, uint8_t>::value)
                  d[oy * ow + ox] =
                      static_cast<uint8_t>(std::min(std::max(std::nearbyint(v), 0.0f), 255.0f));
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
  if (st.nearest_rows) {
    nearest_rows(st, *x, *y, in_stride, es, src, dst, ctx.pool);
    return;
  }
  int64_t idx[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    bool out = false;
    for (int d = 0; d < r; ++d) {
      const int64_t k = st.nearest[d][idx[d]];
      out = out || k < 0;
      off += k * in_stride[d];
    }
    if (out)
      std::memcpy(dst + i * es, &st.extrapolation, es);  // float32 only (prepare)
    else
      std::memcpy(dst + i * es, src + off * es, es);
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[d] < y->shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace ops
}  // namespace edgepack
