// SPDX-License-Identifier: Apache-2.0
// Element-wise unary ops. float32: Sqrt, Exp, Log, Neg, Abs, Sign, Floor, Ceil, Round,
// Reciprocal, Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish, Softplus, Softsign,
// Erf, Elu, Selu, Celu, ThresholdedRelu, Shrink, Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh,
// Asinh, Acosh, Atanh, Gelu (opset 20: approximate "none" or "tanh"; lowering also fuses the
// Erf chain torch exports for GELU into one Gelu). Mish arrives as its ONNX function body.
// Integer dtypes: Neg, Abs, Sign, Relu, Clip. bool: Not.
#include <array>
#include <cmath>
#include <utility>

#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {

enum class Un {
  kSqrt,
  kExp,
  kLog,
  kNeg,
  kAbs,
  kSign,
  kFloor,
  kCeil,
  kRound,
  kReciprocal,
  kRelu,
  kLeakyRelu,
  kClip,
  kSigmoid,
  kTanh,
  kHardSigmoid,
  kHardSwish,
  kSoftplus,
  kSoftsign,
  kErf,
  kElu,
  kSin,
  kCos,
  kTan,
  kAsin,
  kAcos,
  kAtan,
  kSinh,
  kCosh,
  kAsinh,
  kAcosh,
  kAtanh,
  kSelu,
  kCelu,
  kThresholdedRelu,
  kShrink,
  kGelu,
  kNot,
  kUnknown
};

struct UnaryState : OpState {
  Un op;
  float alpha = 0.0f, beta = 0.0f;
};

Un parse(const std::string& t) {
  static const struct {
    const char* name;
    Un op;
  } kTable[] = {{"Sqrt", Un::kSqrt},
                {"Exp", Un::kExp},
                {"Log", Un::kLog},
                {"Neg", Un::kNeg},
                {"Abs", Un::kAbs},
                {"Sign", Un::kSign},
                {"Floor", Un::kFloor},
                {"Ceil", Un::kCeil},
                {"Round", Un::kRound},
                {"Reciprocal", Un::kReciprocal},
                {"Relu", Un::kRelu},
                {"LeakyRelu", Un::kLeakyRelu},
                {"Clip", Un::kClip},
                {"Sigmoid", Un::kSigmoid},
                {"Tanh", Un::kTanh},
                {"HardSigmoid", Un::kHardSigmoid},
                {"HardSwish", Un::kHardSwish},
                {"Softplus", Un::kSoftplus},
                {"Softsign", Un::kSoftsign},
                {"Erf", Un::kErf},
                {"Elu", Un::kElu},
                {"Sin", Un::kSin},
                {"Cos", Un::kCos},
                {"Selu", Un::kSelu},
                {"Celu", Un::kCelu},
                {"ThresholdedRelu", Un::kThresholdedRelu},
                {"Shrink", Un::kShrink},
                {"Tan", Un::kTan},
                {"Asin", Un::kAsin},
                {"Acos", Un::kAcos},
                {"Atan", Un::kAtan},
                {"Sinh", Un::kSinh},
                {"Cosh", Un::kCosh},
                {"Asinh", Un::kAsinh},
                {"Acosh", Un::kAcosh},
                {"Atanh", Un::kAtanh},
                {"Gelu", Un::kGelu},
                {"Not", Un::kNot}};
  for (const auto& e : kTable)
    if (t == e.name) return e.op;
  return Un::kUnknown;
}

bool int_ok(Un op) {
  return op == Un::kNeg || op == Un::kAbs || op == Un::kSign || op == Un::kRelu || op == Un::kClip;
}

inline float softplus(float v) {
  return v > 20.0f ? v : std::log1p(std::exp(v));
}

template <Un OP>
void apply(const float* x, float* y, int64_t n, float alpha, float beta) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if constexpr (OP == Un::kSqrt)
      y[i] = std::sqrt(v);
    else if constexpr (OP == Un::kExp)
      y[i] = std::exp(v);
    else if constexpr (OP == Un::kLog)
      y[i] = std::log(v);
    else if constexpr (OP == Un::kSign)
      y[i] = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v);
    else if constexpr (OP == Un::kFloor)
      y[i] = std::floor(v);
    else if constexpr (OP == Un::kCeil)
      y[i] = std::ceil(v);
    else if constexpr (OP == Un::kRound)
      y[i] = std::nearbyint(v);  // half to even
    else if constexpr (OP == Un::kReciprocal)
      y[i] = 1.0f / v;
    else if constexpr (OP == Un::kTanh)
      y[i] = std::tanh(v);
    else if constexpr (OP == Un::kSoftplus)
      y[i] = softplus(v);
    else if constexpr (OP == Un::kSoftsign)
      y[i] = v / (1.0f + std::fabs(v));
    else if constexpr (OP == Un::kElu)
      y[i] = v >= 0.0f ? v : alpha * (std::exp(v) - 1.0f);
    else if constexpr (OP == Un::kSin)
      y[i] = std::sin(v);
    else if constexpr (OP == Un::kCos)
      y[i] = std::cos(v);
    else if constexpr (OP == Un::kTan)
      y[i] = std::tan(v);
    else if constexpr (OP == Un::kAsin)
      y[i] = std::asin(v);
    else if constexpr (OP == Un::kAcos)
      y[i] = std::acos(v);
    else if constexpr (OP == Un::kAtan)
      y[i] = std::atan(v);
    else if constexpr (OP == Un::kSinh)
      y[i] = std::sinh(v);
    else if constexpr (OP == Un::kCosh)
      y[i] = std::cosh(v);
    else if constexpr (OP == Un::kAsinh)
      y[i] = std::asinh(v);
    else if constexpr (OP == Un::kAcosh)
      y[i] = std::acosh(v);
    else if constexpr (OP == Un::kAtanh)
      y[i] = std::atanh(v);
    else if constexpr (OP == Un::kSelu)  // alpha, gamma
      y[i] = v > 0.0f ? beta * v : beta * alpha * (std::exp(v) - 1.0f);
    else if constexpr (OP == Un::kCelu)
      y[i] = std::max(0.0f, v) + std::min(0.0f, alpha * (std::exp(v / alpha) - 1.0f));
    else if constexpr (OP == Un::kThresholdedRelu)
      y[i] = v > alpha ? v : 0.0f;
    else if constexpr (OP == Un::kShrink)  // lambd, bias
      y[i] = v < -alpha ? v + beta : (v > alpha ? v - beta : 0.0f);
  }
}

// One float32 kernel per op, indexed by Un (the ops of vector_math.h, kNot and kUnknown get a
// no-op instance: unary_run calls vector_math for them).
using Kernel = void (*)(const float*, float*, int64_t, float, float);
template <size_t... I>
constexpr std::array<Kernel, sizeof...(I)> make_kernels(std::index_sequence<I...>) {
  return {&apply<static_cast<Un>(I)>...};
}
constexpr auto kKernels =
    make_kernels(std::make_index_sequence<static_cast<size_t>(Un::kUnknown) + 1>());

template <class T>
void apply_int(Un op, const T* x, T* y, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    switch (op) {
      case Un::kNeg:
        y[i] = static_cast<T>(-v);
        break;
      case Un::kAbs:
        y[i] = v < T(0) ? static_cast<T>(-v) : v;
        break;
      case Un::kSign:
        y[i] = static_cast<T>(v > T(0) ? 1 : (v < T(0) ? -1 : 0));
        break;
      case Un::kRelu:
        y[i] = v > T(0) ? v : T(0);
        break;
      case Un::kClip:
        y[i] = static_cast<T>(std::min(std::max(static_cast<double>(v), lo), hi));
        break;
      default:
        y[i] = v;
        break;
    }
  }
}

// The float32 ops vector_math.h computes (false for the others).
bool vector_op(Un op, kernels::UnaryOp& out) {
  static const struct {
    Un op;
    kernels::UnaryOp kernel;
  } kTable[] = {{Un::kRelu, kernels::UnaryOp::kRelu},
                {Un::kLeakyRelu, kernels::UnaryOp::kLeakyRelu},
                {Un::kClip, kernels::UnaryOp::kClip},
                {Un::kHardSigmoid, kernels::UnaryOp::kHardSigmoid},
                {Un::kHardSwish, kernels::UnaryOp::kHardSwish},
                {Un::kNeg, kernels::UnaryOp::kNeg},
                {Un::kAbs, kernels::UnaryOp::kAbs}};
  for (const auto& e : kTable)
    if (e.op == op) {
      out = e.kernel;
      return true;
    }
  return false;
}

}  // namespace

void unary_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_outputs(ctx, 1);
  auto st = std::make_unique<UnaryState>();
  st->op = parse(ctx.op_type);
  if (st->op == Un::kUnknown) ctx.fail("not a unary op");
  const bool is_int = x->dtype == DType::kInt8 || x->dtype == DType::kInt16 ||
                      x->dtype == DType::kInt32 || x->dtype == DType::kInt64 ||
                      x->dtype == DType::kUInt8;
  const bool ok = st->op == Un::kNot ? x->dtype == DType::kBool
                                     : x->dtype == DType::kFloat32 || (is_int && int_ok(st->op));
  if (!ok) ctx.fail(std::string("unsupported dtype ") + dtype_name(x->dtype));
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  switch (st->op) {
    case Un::kLeakyRelu:
      st->alpha = ctx.attrs->get_float("alpha", 0.01f);
      break;
    case Un::kElu:
      st->alpha = ctx.attrs->get_float("alpha", 1.0f);
      break;
    case Un::kCelu:
      st->alpha = ctx.attrs->get_float("alpha", 1.0f);
      break;
    case Un::kThresholdedRelu:
      st->alpha = ctx.attrs->get_float("alpha", 1.0f);
      break;
    case Un::kSelu:
      st->alpha = ctx.attrs->get_float("alpha", 1.67326319217681884765625f);
      st->beta = ctx.attrs->get_float("gamma", 1.05070102214813232421875f);
      break;
    case Un::kShrink:
      st->alpha = ctx.attrs->get_float("lambd", 0.5f);
      st->beta = ctx.attrs->get_float("bias", 0.0f);
      break;
    case Un::kHardSigmoid:
      st->alpha = ctx.attrs->get_float("alpha", 0.2f);
      st->beta = ctx.attrs->get_float("beta", 0.5f);
      break;
    case Un::kClip:
      st->alpha = ctx.attrs->get_float("min", -INFINITY);
      st->beta = ctx.attrs->get_float("max", INFINITY);
      break;
    case Un::kGelu: {
      const std::string approx = ctx.attrs->get_string("approximate", "none");
      if (approx != "none" && approx != "tanh")
        ctx.fail("approximate must be \"none\" or \"tanh\", not \"" + approx + "\"");
      st->alpha = approx == "tanh" ? 1.0f : 0.0f;
      break;
    }
    default:
      break;
  }
  ctx.state = std::move(st);
}

void unary_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto* st = ctx.state_as<UnaryState>();
  const int64_t n = x->numel();
  if (st->op == Un::kNot) {
    const bool* px = x->as<bool>();
    bool* py = y->as<bool>();
    for (int64_t i = 0; i < n; ++i) py[i] = !px[i];
    return;
  }
  if (x->dtype != DType::kFloat32) {
    dispatch(x->dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same<T, bool>::value && !std::is_floating_point<T>::value)
        apply_int<T>(st->op, x->as<T>(), y->as<T>(), n, st->alpha, st->beta);
    });
    return;
  }
  const float* px = x->as<float>();
  float* py = y->as<float>();
  const float a = st->alpha, b = st->beta;
  kernels::UnaryOp vop = kernels::UnaryOp::kRelu;
  const bool vector = vector_op(st->op, vop);
  // Split across threads only when the work pays for it (pool_for's units are multiply-adds):
  // per element a vectorised clamp costs about an eighth of one, the vectorised exp_approx
  // functions (Sigmoid, Erf, Gelu) about two, libm's scalar functions about eight.
  const bool approx = st->op == Un::kSigmoid || st->op == Un::kErf || st->op == Un::kGelu;
  const double work = static_cast<double>(n) * (vector ? 0.125 : approx ? 2.0 : 8.0);
  parallel(pool_for(ctx.pool, work), (n + 4095) / 4096, [&](int64_t c0, int64_t c1) {
    const int64_t i0 = c0 * 4096, i1 = std::min(n, c1 * 4096);
    const float* s = px + i0;
    float* d = py + i0;
    const int64_t m = i1 - i0;
    if (vector)
      kernels::unary_f32(vop, s, d, m, a, b);
    else if (st->op == Un::kSigmoid)
      kernels::sigmoid_f32(s, d, m);
    else if (st->op == Un::kErf)
      kernels::erf_f32(s, d, m);
    else if (st->op == Un::kGelu)
      kernels::gelu_f32(s, d, m, a != 0.0f);
    else
      kKernels[static_cast<size_t>(st->op)](s, d, m, a, b);
  });
}

}  // namespace ops
}  // namespace edgepack
