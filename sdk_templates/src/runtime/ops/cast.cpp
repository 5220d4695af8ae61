// SPDX-License-Identifier: Apache-2.0
// Cast between float32, float16, uint8, int8, int16, int32, int64 and bool (float -> int
// truncates toward zero, as onnxruntime does; out-of-range values are implementation-defined in
// ONNX and saturate here; float16 goes through float32, rounding to nearest even).
#include <limits>

#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same<To, bool>::value) {
    return v != From(0);
  } else if constexpr (std::is_floating_point<From>::value && !std::is_floating_point<To>::value) {
    if (std::isnan(v)) return To(0);
    const double d = static_cast<double>(v);
    if (d <= static_cast<double>(std::numeric_limits<To>::lowest()))
      return std::numeric_limits<To>::lowest();
    if (d >= static_cast<double>(std::numeric_limits<To>::max()))
      return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}
}  // namespace

void cast_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  need_outputs(ctx, 1);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
}

void cast_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const int64_t n = x->numel();
  if (x->dtype == y->dtype) {
    std::memcpy(y->data, x->data, x->bytes());
    return;
  }
  if (x->dtype == DType::kFloat16) {  // half -> float -> target
    const uint16_t* s = x->as<uint16_t>();
    dispatch(y->dtype, [&](auto to_tag) {
      using To = decltype(to_tag);
      To* d = y->as<To>();
      for (int64_t i = 0; i < n; ++i) d[i] = convert<To>(half_to_float(s[i]));
    });
    return;
  }
  if (y->dtype == DType::kFloat16) {  // source -> float -> half
    uint16_t* d = y->as<uint16_t>();
    dispatch(x->dtype, [&](auto from_tag) {
      using From = decltype(from_tag);
      const From* s = x->as<From>();
      for (int64_t i = 0; i < n; ++i) d[i] = float_to_half(static_cast<float>(s[i]));
    });
    return;
  }
  dispatch(x->dtype, [&](auto from_tag) {
    using From = decltype(from_tag);
    dispatch(y->dtype, [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* s = x->as<From>();
      To* d = y->as<To>();
      for (int64_t i = 0; i < n; ++i) d[i] = convert<To>(s[i]);
    });
  });
}

}  // namespace ops
}  // namespace edgepack
