// SPDX-License-Identifier: Apache-2.0
// Broadcasting binary ops (Add, Sub, Mul, Div, Pow), comparisons (Equal, Greater, Less) and
// Where, with numpy broadcasting computed from actual shapes at run time.
#include <cmath>

#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {

enum class Bin { kAdd, kSub, kMul, kDiv, kPow, kEqual, kGreater, kLess };

struct BinaryState : OpState {
  Bin op;
};

Bin parse(const std::string& t) {
  if (t == "Add") return Bin::kAdd;
  if (t == "Sub") return Bin::kSub;
  if (t == "Mul") return Bin::kMul;
  if (t == "Div") return Bin::kDiv;
  if (t == "Pow") return Bin::kPow;
  if (t == "Equal") return Bin::kEqual;
  if (t == "Greater") return Bin::kGreater;
  return Bin::kLess;
}

bool is_compare(Bin b) { return b == Bin::kEqual || b == Bin::kGreater || b == Bin::kLess; }

template <class T>
T arith(Bin op, T a, T b) {
  switch (op) {
    case Bin::kAdd: return static_cast<T>(a + b);
    case Bin::kSub: return static_cast<T>(a - b);
    case Bin::kMul: return static_cast<T>(a * b);
    case Bin::kDiv:
      if constexpr (std::is_floating_point<T>::value) return a / b;
      else return b == 0 ? T(0) : static_cast<T>(a / b);
    case Bin::kPow: return static_cast<T>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    default: return T(0);
  }
}

template <class T>
bool compare(Bin op, T a, T b) {
  return op == Bin::kEqual ? a == b : (op == Bin::kGreater ? a > b : a < b);
}

}  // namespace

void binary_prepare(PrepareContext& ctx) {
  Tensor* a = need_input(ctx, 0, "A");
  Tensor* b = need_input(ctx, 1, "B");
  need_outputs(ctx, 1);
  auto st = std::make_unique<BinaryState>();
  st->op = parse(ctx.op_type);
  if (st->op != Bin::kPow && a->dtype != b->dtype)
    ctx.fail(std::string("input dtypes differ: ") + dtype_name(a->dtype) + " vs " +
             dtype_name(b->dtype));
  if (st->op == Bin::kPow && (a->dtype != DType::kFloat32 || b->dtype != DType::kFloat32))
    ctx.fail("Pow supports float32 only");
  need_dtype(ctx, *ctx.outputs[0], is_compare(st->op) ? DType::kBool : a->dtype);
  if (!is_compare(st->op) && a->dtype == DType::kBool) ctx.fail("arithmetic on bool");
  const Tensor* ins[2] = {a, b};
  const int64_t* shapes[2] = {a->static_shape, b->static_shape};
  Broadcast bc;
  if (!make_broadcast(ins, 2, shapes, bc))
    ctx.fail("shapes " + shape_str(*a) + " and " + shape_str(*b) + " do not broadcast");
  need_shape(ctx, *ctx.outputs[0], std::vector<int64_t>(bc.shape, bc.shape + bc.rank));
  ctx.state = std::move(st);
}

void binary_run(RunContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  Tensor* y = ctx.output(0);
  const Bin op = ctx.state_as<BinaryState>()->op;
  const Tensor* ins[2] = {a, b};
  const int64_t* shapes[2] = {a->shape, b->shape};
  Broadcast bc;
  if (!make_broadcast(ins, 2, shapes, bc))
    throw Error(ErrorCode::kRuntimeError, std::string("shapes do not broadcast in ") + ctx.node_name);
  for (int d = 0; d < bc.rank; ++d) y->shape[d] = bc.shape[d];
  dispatch(a->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a->as<T>();
    const T* pb = b->as<T>();
    if constexpr (std::is_same<T, bool>::value) {
      bool* out = y->as<bool>();
      for_each_broadcast(bc, 2, [&](int64_t i, int64_t ia, int64_t ib, int64_t) {
        out[i] = op == Bin::kEqual ? pa[ia] == pb[ib] : compare(op, pa[ia], pb[ib]);
      });
    } else if (is_compare(op)) {
      bool* out = y->as<bool>();
      for_each_broadcast(bc, 2, [&](int64_t i, int64_t ia, int64_t ib, int64_t) {
        out[i] = compare(op, pa[ia], pb[ib]);
      });
    } else {
      T* out = y->as<T>();
      // Fast path: same shapes.
      if (a->numel() == b->numel() && a->numel() == y->numel() && a->rank == b->rank) {
        bool same = true;
        for (int d = 0; d < a->rank; ++d) same = same && a->shape[d] == b->shape[d];
        if (same) {
          const int64_t n = y->numel();
          for (int64_t i = 0; i < n; ++i) out[i] = arith(op, pa[i], pb[i]);
          return;
        }
      }
      for_each_broadcast(bc, 2, [&](int64_t i, int64_t ia, int64_t ib, int64_t) {
        out[i] = arith(op, pa[ia], pb[ib]);
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
    throw Error(ErrorCode::kRuntimeError, std::string("shapes do not broadcast in ") + ctx.node_name);
  for (int d = 0; d < bc.rank; ++d) out->shape[d] = bc.shape[d];
  const bool* pc = c->as<bool>();
  dispatch(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x->as<T>();
    const T* py = y->as<T>();
    T* po = out->as<T>();
    for_each_broadcast(bc, 3, [&](int64_t i, int64_t ic, int64_t ix, int64_t iy) {
      po[i] = pc[ic] ? px[ix] : py[iy];
    });
  });
}

}  // namespace ops
}  // namespace edgepack
