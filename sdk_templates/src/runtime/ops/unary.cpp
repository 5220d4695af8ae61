// SPDX-License-Identifier: Apache-2.0
// Element-wise float32 ops: Sqrt, Exp, Neg, Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid,
// HardSwish. Neg and Relu also accept int32/int64.
#include <cmath>

#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {

enum class Un { kSqrt, kExp, kNeg, kRelu, kLeakyRelu, kClip, kSigmoid, kTanh, kHardSigmoid,
                kHardSwish };

struct UnaryState : OpState {
  Un op;
  float alpha = 0.0f, beta = 0.0f;
};

Un parse(const std::string& t) {
  if (t == "Sqrt") return Un::kSqrt;
  if (t == "Exp") return Un::kExp;
  if (t == "Neg") return Un::kNeg;
  if (t == "Relu") return Un::kRelu;
  if (t == "LeakyRelu") return Un::kLeakyRelu;
  if (t == "Clip") return Un::kClip;
  if (t == "Sigmoid") return Un::kSigmoid;
  if (t == "Tanh") return Un::kTanh;
  if (t == "HardSigmoid") return Un::kHardSigmoid;
  return Un::kHardSwish;
}

template <Un OP>
void apply(const float* x, float* y, int64_t n, float alpha, float beta) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if constexpr (OP == Un::kSqrt) y[i] = std::sqrt(v);
    else if constexpr (OP == Un::kExp) y[i] = std::exp(v);
    else if constexpr (OP == Un::kNeg) y[i] = -v;
    else if constexpr (OP == Un::kRelu) y[i] = v > 0.0f ? v : 0.0f;
    else if constexpr (OP == Un::kLeakyRelu) y[i] = v >= 0.0f ? v : alpha * v;
    else if constexpr (OP == Un::kClip) y[i] = v < alpha ? alpha : (v > beta ? beta : v);
    else if constexpr (OP == Un::kSigmoid) y[i] = 1.0f / (1.0f + std::exp(-v));
    else if constexpr (OP == Un::kTanh) y[i] = std::tanh(v);
    else if constexpr (OP == Un::kHardSigmoid)
      y[i] = std::min(std::max(alpha * v + beta, 0.0f), 1.0f);
    else y[i] = v * std::min(std::max(v / 6.0f + 0.5f, 0.0f), 1.0f);
  }
}

}  // namespace

void unary_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_outputs(ctx, 1);
  auto st = std::make_unique<UnaryState>();
  st->op = parse(ctx.op_type);
  const bool int_ok = st->op == Un::kNeg || st->op == Un::kRelu;
  if (x->dtype != DType::kFloat32 &&
      !(int_ok && (x->dtype == DType::kInt32 || x->dtype == DType::kInt64)))
    ctx.fail(std::string("unsupported dtype ") + dtype_name(x->dtype));
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  switch (st->op) {
    case Un::kLeakyRelu: st->alpha = ctx.attrs->get_float("alpha", 0.01f); break;
    case Un::kHardSigmoid:
      st->alpha = ctx.attrs->get_float("alpha", 0.2f);
      st->beta = ctx.attrs->get_float("beta", 0.5f);
      break;
    case Un::kClip:
      st->alpha = ctx.attrs->get_float("min", -INFINITY);
      st->beta = ctx.attrs->get_float("max", INFINITY);
      if (x->dtype != DType::kFloat32) ctx.fail("Clip supports float32 only");
      break;
    default: break;
  }
  ctx.state = std::move(st);
}

void unary_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto* st = ctx.state_as<UnaryState>();
  const int64_t n = x->numel();
  if (x->dtype != DType::kFloat32) {
    dispatch(x->dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same<T, int32_t>::value || std::is_same<T, int64_t>::value) {
        const T* px = x->as<T>();
        T* py = y->as<T>();
        for (int64_t i = 0; i < n; ++i)
          py[i] = st->op == Un::kNeg ? static_cast<T>(-px[i]) : (px[i] > 0 ? px[i] : T(0));
      }
    });
    return;
  }
  const float* px = x->as<float>();
  float* py = y->as<float>();
  const float a = st->alpha, b = st->beta;
  parallel(ctx.pool, (n + 4095) / 4096, [&](int64_t c0, int64_t c1) {
    const int64_t i0 = c0 * 4096, i1 = std::min(n, c1 * 4096);
    const float* s = px + i0;
    float* d = py + i0;
    const int64_t m = i1 - i0;
    switch (st->op) {
      case Un::kSqrt: apply<Un::kSqrt>(s, d, m, a, b); break;
      case Un::kExp: apply<Un::kExp>(s, d, m, a, b); break;
      case Un::kNeg: apply<Un::kNeg>(s, d, m, a, b); break;
      case Un::kRelu: apply<Un::kRelu>(s, d, m, a, b); break;
      case Un::kLeakyRelu: apply<Un::kLeakyRelu>(s, d, m, a, b); break;
      case Un::kClip: apply<Un::kClip>(s, d, m, a, b); break;
      case Un::kSigmoid: apply<Un::kSigmoid>(s, d, m, a, b); break;
      case Un::kTanh: apply<Un::kTanh>(s, d, m, a, b); break;
      case Un::kHardSigmoid: apply<Un::kHardSigmoid>(s, d, m, a, b); break;
      case Un::kHardSwish: apply<Un::kHardSwish>(s, d, m, a, b); break;
    }
  });
}

}  // namespace ops
}  // namespace edgepack
