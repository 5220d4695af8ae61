// SPDX-License-Identifier: Apache-2.0
// Broadcasting binary ops (Add, Sub, Mul, Div, Pow, Min, Max, PRelu, Mod), comparisons (Equal,
// Greater, Less, GreaterOrEqual, LessOrEqual), logical ops (And, Or, Xor) and Where, with numpy
// broadcasting computed from actual shapes at run time. Variadic Min/Max arrive as chains of
// binary nodes (lowering).
#include <cmath>

#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {

enum class Bin {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kPow,
  kMin,
  kMax,
  kPRelu,
  kMod,
  kEqual,
  kGreater,
  kLess,
  kGreaterOrEqual,
  kLessOrEqual,
  kAnd,
  kOr,
  kXor,
  kUnknown
};

struct BinaryState : OpState {
  Bin op;
  bool fmod = false;  // Mod: fmod=1 (C fmod) or integer mod with the divisor's sign
  bool relu = false;  // float32 Add with a fused Relu (lowering: Add + Relu residuals)
};

Bin parse(const std::string& t) {
  static const struct {
    const char* name;
    Bin op;
  } kTable[] = {{"Add", Bin::kAdd},
                {"Sub", Bin::kSub},
                {"Mul", Bin::kMul},
                {"Div", Bin::kDiv},
                {"Pow", Bin::kPow},
                {"Min", Bin::kMin},
                {"Max", Bin::kMax},
                {"PRelu", Bin::kPRelu},
                {"Mod", Bin::kMod},
                {"Equal", Bin::kEqual},
                {"Greater", Bin::kGreater},
                {"Less", Bin::kLess},
                {"GreaterOrEqual", Bin::kGreaterOrEqual},
                {"LessOrEqual", Bin::kLessOrEqual},
                {"And", Bin::kAnd},
                {"Or", Bin::kOr},
                {"Xor", Bin::kXor}};
  for (const auto& e : kTable)
    if (t == e.name) return e.op;
  return Bin::kUnknown;
}

bool is_compare(Bin b) {
  return b == Bin::kEqual || b == Bin::kGreater || b == Bin::kLess || b == Bin::kGreaterOrEqual ||
         b == Bin::kLessOrEqual;
}
bool is_logical(Bin b) {
  return b == Bin::kAnd || b == Bin::kOr || b == Bin::kXor;
}

template <class T>
T arith(Bin op, T a, T b, bool fmod) {
  switch (op) {
    case Bin::kAdd:
      return static_cast<T>(a + b);
    case Bin::kSub:
      return static_cast<T>(a - b);
    case Bin::kMul:
      return static_cast<T>(a * b);
    case Bin::kDiv:
      if constexpr (std::is_floating_point<T>::value)
        return a / b;
      else
        return b == 0 ? T(0) : static_cast<T>(a / b);
    case Bin::kMin:
      if constexpr (std::is_floating_point<T>::value)
        if (std::isnan(a) || std::isnan(b)) return NAN;
      return b < a ? b : a;
    case Bin::kMax:
      if constexpr (std::is_floating_point<T>::value)
        if (std::isnan(a) || std::isnan(b)) return NAN;
      return a < b ? b : a;
    case Bin::kPRelu:
      return a < T(0) ? static_cast<T>(a * b) : a;
    case Bin::kMod:
      if constexpr (std::is_floating_point<T>::value) {
        if (fmod) return std::fmod(a, b);
        const T r = std::fmod(a, b);
        return r != T(0) && ((r < 0) != (b < 0)) ? r + b : r;
      } else {
        if (b == 0) return T(0);
        const T r = static_cast<T>(a % b);
        if (fmod) return r;
        return r != 0 && ((r < 0) != (b < 0)) ? static_cast<T>(r + b) : r;
      }
    default:
      return T(0);
  }
}

template <class T>
bool compare(Bin op, T a, T b) {
  switch (op) {
    case Bin::kEqual:
      return a == b;
    case Bin::kGreater:
      return a > b;
    case Bin::kLess:
      return a < b;
    case Bin::kGreaterOrEqual:
      return a >= b;
    case Bin::kLessOrEqual:
      return a <= b;
    case Bin::kAnd:
      return a && b;
    case Bin::kOr:
      return a || b;
    case Bin::kXor:
      return a != b;
    default:
      return false;
  }
}

}  // namespace

void binary_prepare(PrepareContext& ctx) {
  Tensor* a = need_input(ctx, 0, "A");
  Tensor* b = need_input(ctx, 1, "B");
  need_outputs(ctx, 1);
  auto st = std::make_unique<BinaryState>();
  st->op = parse(ctx.op_type);
  if (st->op == Bin::kUnknown) ctx.fail("not a binary op");
  st->fmod = ctx.attrs->get_int("fmod", 0) != 0;
  if (st->op != Bin::kPow && a->dtype != b->dtype)
    ctx.fail(std::string("input dtypes differ: ") + dtype_name(a->dtype) + " vs " +
             dtype_name(b->dtype));
  if (a->dtype == DType::kFloat16 || b->dtype == DType::kFloat16)
    ctx.fail("float16 is a storage type here: Cast it to float32 first");
  if (st->op == Bin::kPow && (a->dtype == DType::kBool || b->dtype == DType::kBool))
    ctx.fail("Pow on bool");
  const bool to_bool = is_compare(st->op) || is_logical(st->op);
  need_dtype(ctx, *ctx.outputs[0], to_bool ? DType::kBool : a->dtype);
  if (is_logical(st->op))
    need_dtype(ctx, *a, DType::kBool);
  else if (!is_compare(st->op) && a->dtype == DType::kBool)
    ctx.fail("arithmetic on bool");
  const Tensor* ins[2] = {a, b};
  const int64_t* shapes[2] = {a->static_shape, b->static_shape};
  Broadcast bc;
  if (!make_broadcast(ins, 2, shapes, bc))
    ctx.fail("shapes " + shape_str(*a) + " and " + shape_str(*b) + " do not broadcast");
  need_shape(ctx, *ctx.outputs[0], std::vector<int64_t>(bc.shape, bc.shape + bc.rank));
  const FusedActivation act = read_activation(ctx);
  st->relu = act.kind == FusedActivation::kRelu;
  if (act.kind != FusedActivation::kNone &&
      !(st->relu && st->op == Bin::kAdd && a->dtype == DType::kFloat32))
    ctx.fail("only a float32 Add takes a fused activation (Relu)");
  ctx.state = std::move(st);
}

// The same iteration with fewer, longer rows: dimensions of size 1 dropped, and a dimension
// merged into the one inside it where every operand steps over the inner one whole (contiguous
// in both, or broadcast in both). A squeeze-and-excitation scale, N C H W by N C 1 1, becomes
// C rows of H * W instead of C * H rows of W.
Broadcast coalesce(const Broadcast& bc, int operands) {
  Broadcast c;
  for (int d = 0; d < bc.rank; ++d) {
    if (bc.shape[d] == 1) continue;
    bool merge = c.rank > 0;
    for (int q = 0; q < operands && merge; ++q)
      merge = c.strides[q][c.rank - 1] == bc.strides[q][d] * bc.shape[d];
    if (merge) {
      c.shape[c.rank - 1] *= bc.shape[d];
      for (int q = 0; q < operands; ++q) c.strides[q][c.rank - 1] = bc.strides[q][d];
      continue;
    }
    c.shape[c.rank] = bc.shape[d];
    for (int q = 0; q < operands; ++q) c.strides[q][c.rank] = bc.strides[q][d];
    ++c.rank;
  }
  return c;
}

// Float Add (+ fused Relu)/Sub/Mul/Div through the vectorised kernels, one innermost row at a time
// (numpy broadcasting gives each operand an inner stride of 0 or 1; rows as long as coalesce()
// makes them), rows split across threads when the tensor is large enough to pay. False for
// other ops.
bool float_arith(Bin op, bool relu, const Broadcast& full, const float* pa, const float* pb,
                 float* out, ThreadPool* pool) {
  kernels::BinaryOp k;
  switch (op) {
    case Bin::kAdd:
      k = relu ? kernels::BinaryOp::kAddRelu : kernels::BinaryOp::kAdd;
      break;
    case Bin::kSub:
      k = kernels::BinaryOp::kSub;
      break;
    case Bin::kMul:
      k = kernels::BinaryOp::kMul;
      break;
    case Bin::kDiv:
      k = kernels::BinaryOp::kDiv;
      break;
    default:
      return false;
  }
  const Broadcast bc = coalesce(full, 2);
  if (bc.rank == 0) {
    kernels::binary_f32(k, pa, 0, pb, 0, out, 1);
    return true;
  }
  int64_t total = 1;
  for (int d = 0; d < bc.rank; ++d) total *= bc.shape[d];
  const int last = bc.rank - 1;
  const int64_t inner = bc.shape[last], sa = bc.strides[0][last], sb = bc.strides[1][last];
  if (total == 0 || inner == 0) return true;
  const int64_t rows = total / inner;
  // Large tensors split across threads: by rows, or a single long row by pieces.
  ThreadPool* p = pool_for(pool, kMemoryBoundElementWork * static_cast<double>(total));
  if (rows == 1) {
    // Pieces of 4096 elements: the pool deals them out evenly. With 16384 a 24 x 28 x 28 residual
    // Add (18816 elements) was one piece of 16384 and one of 2432, 2.7x slower at 2 threads than
    // at 1 (MobileNetV3-small's Adds at 2 threads 0.022 -> 0.015 ms, MobileNetV2's 0.066 -> 0.051).
    constexpr int64_t kPiece = 4096;
    parallel(p, (inner + kPiece - 1) / kPiece, [&](int64_t c0, int64_t c1) {
      const int64_t b = c0 * kPiece, e = std::min(inner, c1 * kPiece);
      kernels::binary_f32(k, pa + b * sa, sa, pb + b * sb, sb, out + b, e - b);
    });
    return true;
  }
  if (bc.rank == 2) {  // one call per thread's rows: many short rows cost a call each otherwise
    const int64_t ra = bc.strides[0][0], rb = bc.strides[1][0];
    parallel(p, rows, [&](int64_t r0, int64_t r1) {
      kernels::binary_f32_rows(k, pa + r0 * ra, ra, sa, pb + r0 * rb, rb, sb, out + r0 * inner,
                               r1 - r0, inner);
    });
    return true;
  }
  parallel(p, rows, [&](int64_t r0, int64_t r1) {
    // Offsets of row r0 over the outer dimensions, then an odometer.
    int64_t idx[kMaxRank] = {};
    int64_t off[2] = {0, 0};
    int64_t rem = r0;
    for (int d = last - 1; d >= 0; --d) {
      idx[d] = rem % bc.shape[d];
      rem /= bc.shape[d];
      for (int q = 0; q < 2; ++q) off[q] += idx[d] * bc.strides[q][d];
    }
    for (int64_t r = r0; r < r1; ++r) {
      kernels::binary_f32(k, pa + off[0], sa, pb + off[1], sb, out + r * inner, inner);
      for (int d = last - 1; d >= 0; --d) {
        ++idx[d];
        for (int q = 0; q < 2; ++q) off[q] += bc.strides[q][d];
        if (idx[d] < bc.shape[d]) break;
        for (int q = 0; q < 2; ++q) off[q] -= bc.strides[q][d] * bc.shape[d];
        idx[d] = 0;
      }
    }
  });
  return true;
}

void binary_run(RunContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  Tensor* y = ctx.output(0);
  const auto* st = ctx.state_as<BinaryState>();
  const Bin op = st->op;
  const bool fm = st->fmod;
  const Tensor* ins[2] = {a, b};
  const int64_t* shapes[2] = {a->shape, b->shape};
  Broadcast bc;
  if (!make_broadcast(ins, 2, shapes, bc))
    throw Error(ErrorCode::kRuntimeError,
                std::string("shapes do not broadcast in ") + ctx.node_name);
  for (int d = 0; d < bc.rank; ++d) y->shape[d] = bc.shape[d];
  if (op == Bin::kPow) {  // base dtype T, exponent any numeric dtype
    // A float tensor squared (YOLO box decodes: (2 * sigmoid(x))^2): x * x, vectorised, is the
    // same float as pow in double rounded once (the double square of a float is exact).
    if (a->dtype == DType::kFloat32 && b->dtype == DType::kFloat32 && b->numel() == 1 &&
        *b->as<float>() == 2.0f && a->numel() == y->numel()) {
      const float* pa = a->as<float>();
      kernels::binary_f32(kernels::BinaryOp::kMul, pa, 1, pa, 1, y->as<float>(), y->numel());
      return;
    }
    dispatch(a->dtype, [&](auto tag) {
      using T = decltype(tag);
      dispatch(b->dtype, [&](auto etag) {
        using E = decltype(etag);
        const T* pa = a->as<T>();
        const E* pb = b->as<E>();
        T* out = y->as<T>();
        for_each_broadcast(bc, 2, [&](int64_t i, int64_t ia, int64_t ib, int64_t) {
          out[i] =
              static_cast<T>(std::pow(static_cast<double>(pa[ia]), static_cast<double>(pb[ib])));
        });
      });
    });
    return;
  }
  dispatch(a->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a->as<T>();
    const T* pb = b->as<T>();
    if (is_compare(op) || is_logical(op)) {
      bool* out = y->as<bool>();
      for_each_broadcast(bc, 2, [&](int64_t i, int64_t ia, int64_t ib, int64_t) {
        out[i] = compare(op, pa[ia], pb[ib]);
      });
    } else if constexpr (!std::is_same<T, bool>::value) {
      T* out = y->as<T>();
      if constexpr (std::is_same<T, float>::value)
        if (float_arith(op, st->relu, bc, pa, pb, out, ctx.pool)) return;
      // Fast path: same shapes.
      if (a->numel() == b->numel() && a->numel() == y->numel() && a->rank == b->rank) {
        bool same = true;
        for (int d = 0; d < a->rank; ++d) same = same && a->shape[d] == b->shape[d];
        if (same) {
          const int64_t n = y->numel();
          for (int64_t i = 0; i < n; ++i) out[i] = arith(op, pa[i], pb[i], fm);
          return;
        }
      }
      for_each_broadcast(bc, 2, [&](int64_t i, int64_t ia, int64_t ib, int64_t) {
        out[i] = arith(op, pa[ia], pb[ib], fm);
      });
    }
  });
}

void where_prepare(PrepareContext& ctx) {
  Tensor* c = need_input(ctx, 0, "condition");
  Tensor* x = need_input(ctx, 1, "X");
  Tensor* y = need_input(ctx, 2, "Y");
  need_outputs(ctx, 1);
  need_dtype(ctx, *c, DType::kBool);
  if (x->dtype != y->dtype) ctx.fail("X and Y dtypes differ");
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  const Tensor* ins[3] = {c, x, y};
  const int64_t* shapes[3] = {c->static_shape, x->static_shape, y->static_shape};
  Broadcast bc;
  if (!make_broadcast(ins, 3, shapes, bc)) ctx.fail("inputs do not broadcast");
  need_shape(ctx, *ctx.outputs[0], std::vector<int64_t>(bc.shape, bc.shape + bc.rank));
}

void where_run(RunContext& ctx) {
  const Tensor* c = ctx.input(0);
  const Tensor* x = ctx.input(1);
  const Tensor* y = ctx.input(2);
  Tensor* out = ctx.output(0);
  const Tensor* ins[3] = {c, x, y};
  const int64_t* shapes[3] = {c->shape, x->shape, y->shape};
  Broadcast bc;
  if (!make_broadcast(ins, 3, shapes, bc))
    throw Error(ErrorCode::kRuntimeError,
                std::string("shapes do not broadcast in ") + ctx.node_name);
  for (int d = 0; d < bc.rank; ++d) out->shape[d] = bc.shape[d];
  const bool* pc = c->as<bool>();
  const size_t es = dtype_size(x->dtype);  // any dtype: elements are copied as bytes
  const uint8_t* px = static_cast<const uint8_t*>(x->data);
  const uint8_t* py = static_cast<const uint8_t*>(y->data);
  uint8_t* po = static_cast<uint8_t*>(out->data);
  for_each_broadcast(bc, 3, [&](int64_t i, int64_t ic, int64_t ix, int64_t iy) {
    std::memcpy(po + i * es, pc[ic] ? px + ix * es : py + iy * es, es);
  });
}

}  // namespace ops
}  // namespace edgepack
