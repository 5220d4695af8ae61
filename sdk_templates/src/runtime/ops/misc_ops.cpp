// SPDX-License-Identifier: Apache-2.0
// CumSum (`axis` resolved by lowering; exclusive, reverse), Trilu (`k` resolved; upper),
// OneHot (`depth` resolved, values input [off, on], axis), LRN and LpNormalization (float32),
// IsNaN and IsInf (bool output).
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct MiscState : OpState {
  int64_t axis = 0, k = 0, depth = 0, size = 1, p = 2;
  bool flag_a = false, flag_b = false;  // CumSum: exclusive, reverse; Trilu: upper
  float alpha = 0.0f, beta = 0.0f, bias = 0.0f;
};

void outer_inner(const Tensor& x, int64_t axis, int64_t& outer, int64_t& n, int64_t& inner) {
  outer = inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.shape[d];
  for (int d = static_cast<int>(axis) + 1; d < x.rank; ++d) inner *= x.shape[d];
  n = x.shape[axis];
}
}  // namespace

void cumsum_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "x");
  need_outputs(ctx, 1);
  if (x->dtype == DType::kBool || x->dtype == DType::kFloat16) ctx.fail("unsupported dtype");
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<MiscState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x->rank);
  st->flag_a = ctx.attrs->get_int("exclusive", 0) != 0;
  st->flag_b = ctx.attrs->get_int("reverse", 0) != 0;
  if (x->dynamic_dim0 && st->axis == 0) ctx.fail("cannot accumulate over a dynamic dimension 0");
  ctx.state = std::move(st);
}

void cumsum_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const auto& st = *ctx.state_as<MiscState>();
  int64_t outer, n, inner;
  outer_inner(*x, st.axis, outer, n, inner);
  dispatch(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same<T, bool>::value) {
      const T* px = x->as<T>();
      T* py = ctx.output(0)->as<T>();
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          T acc = T(0);
          for (int64_t j = 0; j < n; ++j) {
            const int64_t k = st.flag_b ? n - 1 - j : j;
            const int64_t at = (o * n + k) * inner + i;
            const T v = px[at];
            if (st.flag_a) {
              py[at] = acc;
              acc = static_cast<T>(acc + v);
            } else {
              acc = static_cast<T>(acc + v);
              py[at] = acc;
            }
          }
        }
    }
  });
}

void trilu_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  need_outputs(ctx, 1);
  if (x->rank < 2) ctx.fail("input needs rank >= 2");
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<MiscState>();
  st->k = ctx.attrs->get_int("k", 0);
  st->flag_a = ctx.attrs->get_int("upper", 1) != 0;
  ctx.state = std::move(st);
}

void trilu_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const auto& st = *ctx.state_as<MiscState>();
  const int64_t rows = x->shape[x->rank - 2], cols = x->shape[x->rank - 1];
  const int64_t mats = rows * cols != 0 ? x->numel() / (rows * cols) : 0;
  const size_t es = dtype_size(x->dtype);
  const uint8_t* src = static_cast<const uint8_t*>(x->data);
  uint8_t* dst = static_cast<uint8_t*>(ctx.output(0)->data);
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t at = (m * rows + r) * cols + c;
        const bool keep = st.flag_a ? c - r >= st.k : c - r <= st.k;
        if (keep)
          std::memcpy(dst + at * es, src + at * es, es);
        else
          std::memset(dst + at * es, 0, es);
      }
}

void onehot_prepare(PrepareContext& ctx) {
  Tensor* idx = need_input(ctx, 0, "indices");
  Tensor* values = need_input(ctx, 1, "values");
  need_outputs(ctx, 1);
  if (idx->dtype == DType::kBool || idx->dtype == DType::kFloat16) ctx.fail("bad indices dtype");
  if (values->static_numel() != 2 || values->dtype == DType::kFloat16)
    ctx.fail("values must be [off_value, on_value]");
  auto st = std::make_unique<MiscState>();
  st->depth = ctx.attrs->get_int("depth", 0);
  if (st->depth < 1) ctx.fail("depth must be >= 1");
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", -1), idx->rank + 1);
  std::vector<int64_t> out = idx->static_dims();
  out.insert(out.begin() + st->axis, st->depth);
  need_dtype(ctx, *ctx.outputs[0], values->dtype);
  need_shape(ctx, *ctx.outputs[0], out);
  ctx.state = std::move(st);
}

void onehot_run(RunContext& ctx) {
  const Tensor* idx = ctx.input(0);
  const Tensor* values = ctx.input(1);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<MiscState>();
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < st.axis; ++d) outer *= idx->shape[d];
  for (int d = static_cast<int>(st.axis); d < idx->rank; ++d) inner *= idx->shape[d];
  const size_t es = dtype_size(values->dtype);
  const uint8_t* off = static_cast<const uint8_t*>(values->data);
  const uint8_t* on = off + es;
  uint8_t* dst = static_cast<uint8_t*>(y->data);
  dispatch(idx->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pi = idx->as<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t hot = static_cast<int64_t>(pi[o * inner + i]);
        if (hot < 0) hot += st.depth;  // out of range: no hot position
        for (int64_t dd = 0; dd < st.depth; ++dd)
          std::memcpy(dst + ((o * st.depth + dd) * inner + i) * es, dd == hot ? on : off, es);
      }
  });
}

void lrn_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_outputs(ctx, 1);
  need_dtype(ctx, *x, DType::kFloat32);
  if (x->rank < 3) ctx.fail("input needs rank >= 3 (N, C, ...)");
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<MiscState>();
  st->size = ctx.attrs->get_int("size", 0);
  if (st->size < 1) ctx.fail("size must be >= 1");
  st->alpha = ctx.attrs->get_float("alpha", 1e-4f);
  st->beta = ctx.attrs->get_float("beta", 0.75f);
  st->bias = ctx.attrs->get_float("bias", 1.0f);
  ctx.state = std::move(st);
}

void lrn_run(RunContext& ctx) {  // across channels: x / (bias + alpha/size * sum sq)^beta
  const Tensor* x = ctx.input(0);
  const auto& st = *ctx.state_as<MiscState>();
  const int64_t n = x->shape[0], c = x->shape[1];
  int64_t inner = 1;
  for (int d = 2; d < x->rank; ++d) inner *= x->shape[d];
  const float* px = x->as<float>();
  float* py = ctx.output(0)->as<float>();
  const int64_t lo = (st.size - 1) / 2, hi = st.size - 1 - lo;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < inner; ++i) {
        double sq = 0.0;
        for (int64_t k = std::max<int64_t>(0, ch - lo); k <= std::min(c - 1, ch + hi); ++k) {
          const double v = px[(b * c + k) * inner + i];
          sq += v * v;
        }
        const int64_t at = (b * c + ch) * inner + i;
        py[at] = static_cast<float>(px[at] / std::pow(st.bias + st.alpha / st.size * sq, st.beta));
      }
}

void lpnorm_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  need_outputs(ctx, 1);
  need_dtype(ctx, *x, DType::kFloat32);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<MiscState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", -1), x->rank);
  st->p = ctx.attrs->get_int("p", 2);
  if (st->p != 1 && st->p != 2) ctx.fail("p must be 1 or 2");
  ctx.state = std::move(st);
}

void lpnorm_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const auto& st = *ctx.state_as<MiscState>();
  int64_t outer, n, inner;
  outer_inner(*x, st.axis, outer, n, inner);
  const float* px = x->as<float>();
  float* py = ctx.output(0)->as<float>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double norm = 0.0;
      for (int64_t k = 0; k < n; ++k) {
        const double v = px[(o * n + k) * inner + i];
        norm += st.p == 1 ? std::fabs(v) : v * v;
      }
      if (st.p == 2) norm = std::sqrt(norm);
      for (int64_t k = 0; k < n; ++k) {
        const int64_t at = (o * n + k) * inner + i;
        py[at] = norm == 0.0 ? 0.0f : static_cast<float>(px[at] / norm);
      }
    }
}

void isnan_isinf_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_outputs(ctx, 1);
  if (x->dtype != DType::kFloat32 && x->dtype != DType::kFloat64) ctx.fail("float32/float64 only");
  need_dtype(ctx, *ctx.outputs[0], DType::kBool);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<MiscState>();
  st->flag_a = ctx.op_type == "IsNaN";
  st->flag_b = ctx.attrs->get_int("detect_positive", 1) != 0;  // IsInf
  st->k = ctx.attrs->get_int("detect_negative", 1);
  ctx.state = std::move(st);
}

void isnan_isinf_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const auto& st = *ctx.state_as<MiscState>();
  bool* py = ctx.output(0)->as<bool>();
  const int64_t n = x->numel();
  auto test = [&](double v) {
    if (st.flag_a) return std::isnan(v);
    return std::isinf(v) && ((v > 0 && st.flag_b) || (v < 0 && st.k != 0));
  };
  if (x->dtype == DType::kFloat64)
    for (int64_t i = 0; i < n; ++i) py[i] = test(x->as<double>()[i]);
  else
    for (int64_t i = 0; i < n; ++i) py[i] = test(x->as<float>()[i]);
}

}  // namespace ops
}  // namespace edgepack
