// SPDX-License-Identifier: Apache-2.0
// QuantizeLinear (float32 -> uint8/int8/uint16/int16: round half to even, saturate) and
// DequantizeLinear (uint8/int8/uint16/int16/int32 -> float32), per tensor or per axis (scale and
// zero point 1-D along `axis`), so that QDQ models run in float32.
//
// QuantizeLinear with a fourth input, `table` (256 constant bytes of the output's dtype; only
// lowering writes it, edgepack/lower/int8_tables.py), takes a uint8/int8 x instead: an int8
// model's element-wise float chain (e.g. SiLU between Q/DQ) evaluated at pack time for every
// byte value, so y = table[x as its byte pattern]. y_scale and y_zero_point describe y as usual.
// With a fifth input x2 (bytes of x's shape) the table has 65536 entries, y = table[256 * x +
// x2]: a chain of two byte tensors, e.g. a residual DQ(a) + DQ(b) -> Relu -> Q.
// Without a table but with x2 (input 3 omitted) and the attributes x_scales (x's and x2's
// scale), x_zero_points and relu (0/1), it is such a residual computed in float32 op by op
// (kernels::add_byte_pairs), which lowering emits only where that gives the table's bytes for
// all 65536 pairs.
#include <limits>

#include "runtime/kernels/quantize.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct QuantState : OpState {
  int64_t axis = 0;
  bool per_axis = false;
  const uint8_t* table = nullptr;  // the lookup form (see the top of this file)
  bool pairs = false;              // 65536 entries indexed by (x, x2)
  bool add_pairs = false;          // y = Q(DQ(x) + DQ(x2) [-> Relu]) computed
  bool relu = false;
  float x_scales[2] = {1.0f, 1.0f};
  int32_t x_zero_points[2] = {0, 0};
};

bool is_byte(DType t) {
  return t == DType::kUInt8 || t == DType::kInt8;
}

void add_pairs_prepare(PrepareContext& ctx, const Tensor& x, const Tensor& x2, const Tensor* zp) {
  if (!is_byte(x.dtype) || !is_byte(x2.dtype))
    ctx.fail("x and x2 of a residual addition must be uint8 or int8");
  const DType out = ctx.outputs[0]->dtype;
  if (!is_byte(out))
    ctx.fail(std::string("a residual addition writes uint8 or int8, not ") + dtype_name(out));
  if (x2.static_dims() != x.static_dims() || x.dynamic_dim0 || x2.dynamic_dim0)
    ctx.fail("x2 must have x's static shape");
  need_dtype(ctx, *ctx.input(1), DType::kFloat32);
  if (ctx.input(1)->static_numel() != 1) ctx.fail("y_scale must be one value");
  if (zp) {
    need_dtype(ctx, *zp, out);
    if (zp->static_numel() != 1) ctx.fail("y_zero_point must be one value");
  }
  const std::vector<float> scales = ctx.attrs->get_floats("x_scales", {});
  const std::vector<int64_t> zeros = ctx.attrs->get_ints("x_zero_points", {});
  if (scales.size() != 2 || zeros.size() != 2)
    ctx.fail("x_scales and x_zero_points must have two values (x, x2)");
  need_shape(ctx, *ctx.outputs[0], x.static_dims());
  auto st = std::make_unique<QuantState>();
  st->add_pairs = true;
  st->relu = ctx.attrs->get_int("relu", 0) != 0;
  for (int i = 0; i < 2; ++i) {
    const DType t = i == 0 ? x.dtype : x2.dtype;
    const int64_t lo = t == DType::kUInt8 ? 0 : -128, hi = t == DType::kUInt8 ? 255 : 127;
    if (zeros[i] < lo || zeros[i] > hi) ctx.fail("x_zero_points outside the input's range");
    st->x_scales[i] = scales[i];
    st->x_zero_points[i] = static_cast<int32_t>(zeros[i]);
  }
  ctx.state = std::move(st);
}

template <class A, class B>
void run_add_pairs(const Tensor& x, const Tensor& x2, Tensor& y, const kernels::BytePairAdd& p) {
  kernels::add_byte_pairs(x.as<A>(), x2.as<B>(), y.as<uint8_t>(), x.numel(), p);
}

void table_prepare(PrepareContext& ctx, const Tensor& x, const Tensor& table, const Tensor* zp) {
  if (x.dtype != DType::kUInt8 && x.dtype != DType::kInt8)
    ctx.fail(std::string("a table lookup reads uint8 or int8, not ") + dtype_name(x.dtype));
  const DType out = ctx.outputs[0]->dtype;
  if (out != DType::kUInt8 && out != DType::kInt8)
    ctx.fail(std::string("a table lookup writes uint8 or int8, not ") + dtype_name(out));
  need_dtype(ctx, table, out);
  const Tensor* x2 = ctx.input(4);
  if (x2 != nullptr) {
    if (x2->dtype != DType::kUInt8 && x2->dtype != DType::kInt8)
      ctx.fail(std::string("a table lookup reads uint8 or int8, not ") + dtype_name(x2->dtype));
    if (x2->static_dims() != x.static_dims() || x.dynamic_dim0 || x2->dynamic_dim0)
      ctx.fail("x2 must have x's static shape");
  }
  const int64_t entries = x2 != nullptr ? 65536 : 256;
  if (!table.constant || table.static_numel() != entries)
    ctx.fail("table must be a constant of " + std::to_string(entries) + " entries");
  if (zp) need_dtype(ctx, *zp, out);
  need_shape(ctx, *ctx.outputs[0], x.static_dims());
  auto st = std::make_unique<QuantState>();
  st->table = static_cast<const uint8_t*>(table.data);
  st->pairs = x2 != nullptr;
  ctx.state = std::move(st);
}

void quant_common(PrepareContext& ctx, const Tensor& x, Tensor* scale, Tensor* zp, QuantState& st) {
  need_dtype(ctx, *scale, DType::kFloat32);
  if (scale->rank > 1) ctx.fail("scale must be a scalar or 1-D (blocked quantization unsupported)");
  st.per_axis = scale->rank == 1 && scale->static_shape[0] != 1;
  if (st.per_axis) {
    st.axis = norm_axis(ctx, ctx.attrs->get_int("axis", 1), x.rank);
    if (scale->static_shape[0] != x.static_shape[st.axis])
      ctx.fail("scale length does not match the axis dimension");
  }
  if (zp && zp->static_numel() != scale->static_numel())
    ctx.fail("zero point and scale differ in size");
}

template <class F>
void for_each_channel(const Tensor& x, const QuantState& st, F&& f) {
  int64_t outer = 1, n = 1, inner = 1;
  if (st.per_axis) {
    for (int d = 0; d < st.axis; ++d) outer *= x.shape[d];
    n = x.shape[st.axis];
    for (int d = static_cast<int>(st.axis) + 1; d < x.rank; ++d) inner *= x.shape[d];
  } else {
    inner = x.numel();
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < n; ++c) f((o * n + c) * inner, inner, c);
}

double zero_point(const Tensor* zp, int64_t c) {
  if (!zp) return 0.0;
  double v = 0.0;
  dispatch(zp->dtype, [&](auto tag) {
    using T = decltype(tag);
    v = static_cast<double>(zp->as<T>()[c]);
  });
  return v;
}
}  // namespace

void quantize_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "x");
  Tensor* scale = need_input(ctx, 1, "y_scale");
  Tensor* zp = ctx.input(2);
  need_outputs(ctx, 1);
  if (const Tensor* table = ctx.input(3)) return table_prepare(ctx, *x, *table, zp);
  if (const Tensor* x2 = ctx.input(4)) return add_pairs_prepare(ctx, *x, *x2, zp);
  need_dtype(ctx, *x, DType::kFloat32);
  const DType out = ctx.outputs[0]->dtype;
  if (out != DType::kUInt8 && out != DType::kInt8 && out != DType::kUInt16 && out != DType::kInt16)
    ctx.fail(std::string("quantizing to ") + dtype_name(out) + " is not supported");
  if (zp) need_dtype(ctx, *zp, out);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<QuantState>();
  quant_common(ctx, *x, scale, zp, *st);
  ctx.state = std::move(st);
}

void quantize_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const float* scale = ctx.input(1)->as<float>();
  const Tensor* zp = ctx.input(2);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<QuantState>();
  if (st.add_pairs) {
    const Tensor* x2 = ctx.input(4);
    const bool u8 = y->dtype == DType::kUInt8;
    kernels::BytePairAdd p{};
    p.scale_a = st.x_scales[0];
    p.scale_b = st.x_scales[1];
    p.zero_a = st.x_zero_points[0];
    p.zero_b = st.x_zero_points[1];
    p.scale_y = scale[0];
    p.zero_y = static_cast<float>(zero_point(zp, 0));
    p.lo = static_cast<float>(u8 ? 0 : -128) - p.zero_y;
    p.hi = static_cast<float>(u8 ? 255 : 127) - p.zero_y;
    if (st.relu && p.lo < 0.0f) p.lo = 0.0f;
    const bool xu = x->dtype == DType::kUInt8, x2u = x2->dtype == DType::kUInt8;
    if (xu && x2u) run_add_pairs<uint8_t, uint8_t>(*x, *x2, *y, p);
    if (xu && !x2u) run_add_pairs<uint8_t, int8_t>(*x, *x2, *y, p);
    if (!xu && x2u) run_add_pairs<int8_t, uint8_t>(*x, *x2, *y, p);
    if (!xu && !x2u) run_add_pairs<int8_t, int8_t>(*x, *x2, *y, p);
    return;
  }
  if (st.table != nullptr && st.pairs) {
    kernels::lookup_byte_pairs(x->as<uint8_t>(), ctx.input(4)->as<uint8_t>(), y->as<uint8_t>(),
                               x->numel(), st.table);
    return;
  }
  if (st.table != nullptr) {
    kernels::lookup_bytes(x->as<uint8_t>(), y->as<uint8_t>(), x->numel(), st.table);
    return;
  }
  const float* px = x->as<float>();
  dispatch(y->dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same<T, uint8_t>::value || std::is_same<T, int8_t>::value ||
                  std::is_same<T, uint16_t>::value || std::is_same<T, int16_t>::value) {
      T* py = y->as<T>();
      for_each_channel(*x, st, [&](int64_t off, int64_t count, int64_t c) {
        const float s = scale[st.per_axis ? c : 0];
        const auto z = static_cast<float>(zero_point(zp, st.per_axis ? c : 0));
        kernels::quantize_linear<T>(px + off, py + off, count, s, z);
      });
    }
  });
}

void dequantize_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "x");
  Tensor* scale = need_input(ctx, 1, "x_scale");
  Tensor* zp = ctx.input(2);
  need_outputs(ctx, 1);
  const DType t = x->dtype;
  if (t != DType::kUInt8 && t != DType::kInt8 && t != DType::kUInt16 && t != DType::kInt16 &&
      t != DType::kInt32)
    ctx.fail(std::string("dequantizing ") + dtype_name(t) + " is not supported");
  if (zp) need_dtype(ctx, *zp, t);
  need_dtype(ctx, *ctx.outputs[0], DType::kFloat32);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<QuantState>();
  quant_common(ctx, *x, scale, zp, *st);
  ctx.state = std::move(st);
}

void dequantize_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const float* scale = ctx.input(1)->as<float>();
  const Tensor* zp = ctx.input(2);
  float* py = ctx.output(0)->as<float>();
  const auto& st = *ctx.state_as<QuantState>();
  dispatch(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same<T, uint8_t>::value || std::is_same<T, int8_t>::value ||
                  std::is_same<T, uint16_t>::value || std::is_same<T, int16_t>::value ||
                  std::is_same<T, int32_t>::value) {
      const T* px = x->as<T>();
      for_each_channel(*x, st, [&](int64_t off, int64_t count, int64_t c) {
        const float s = scale[st.per_axis ? c : 0];
        const auto z = static_cast<float>(zero_point(zp, st.per_axis ? c : 0));
        kernels::dequantize_linear<T>(px + off, py + off, count, s, z);
      });
    }
  });
}

}  // namespace ops
}  // namespace edgepack
