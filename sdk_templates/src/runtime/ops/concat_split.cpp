// SPDX-License-Identifier: Apache-2.0
// Concat and Split along one axis (axis resolved by lowering; Split sizes resolved too).
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct AxisState : OpState {
  int64_t axis = 0;
};

// outer = product of dims before axis; inner bytes = product of dims after axis x element size.
void outer_inner(const Tensor& t, int64_t axis, int64_t& outer, int64_t& inner_bytes) {
  outer = 1;
  inner_bytes = static_cast<int64_t>(dtype_size(t.dtype));
  for (int d = 0; d < axis; ++d) outer *= t.shape[d];
  for (int d = static_cast<int>(axis) + 1; d < t.rank; ++d) inner_bytes *= t.shape[d];
}
}  // namespace

void concat_prepare(PrepareContext& ctx) {
  need_outputs(ctx, 1);
  Tensor* y = ctx.outputs[0];
  if (ctx.inputs.empty()) ctx.fail("no inputs");
  auto st = std::make_unique<AxisState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", 0), y->rank);
  int64_t total = 0;
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    Tensor* x = need_input(ctx, i, "inputs");
    need_dtype(ctx, *x, y->dtype);
    need_rank(ctx, *x, y->rank);
    for (int d = 0; d < y->rank; ++d)
      if (d != st->axis && x->static_shape[d] != y->static_shape[d])
        ctx.fail("input '" + x->name + "' shape " + shape_str(*x) + " does not match");
    total += x->static_shape[st->axis];
  }
  if (total != y->static_shape[st->axis]) ctx.fail("concatenated size does not match the output");
  ctx.state = std::move(st);
}

void concat_run(RunContext& ctx) {
  Tensor* y = ctx.output(0);
  const int64_t axis = ctx.state_as<AxisState>()->axis;
  int64_t total = 0;
  for (const Tensor* x : *ctx.inputs) total += x->shape[axis];
  y->shape[axis] = total;
  if (axis != 0)
    for (const Tensor* x : *ctx.inputs) y->shape[0] = x->shape[0];  // dynamic rows follow inputs
  int64_t outer, out_inner;
  outer_inner(*y, axis, outer, out_inner);
  const int64_t out_row = out_inner * y->shape[axis];
  int64_t pos = 0;
  for (const Tensor* x : *ctx.inputs) {
    int64_t xo, xi;
    outer_inner(*x, axis, xo, xi);
    const int64_t chunk = xi * x->shape[axis];
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(static_cast<uint8_t*>(y->data) + o * out_row + pos,
                  static_cast<const uint8_t*>(x->data) + o * chunk, static_cast<size_t>(chunk));
    pos += chunk;
  }
}

void split_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  auto st = std::make_unique<AxisState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x->rank);
  if (x->dynamic_dim0 && st->axis == 0) ctx.fail("cannot split a dynamic dimension 0");
  int64_t total = 0;
  for (Tensor* y : ctx.outputs) {
    need_dtype(ctx, *y, x->dtype);
    need_rank(ctx, *y, x->rank);
    total += y->static_shape[st->axis];
  }
  if (total != x->static_shape[st->axis]) ctx.fail("split sizes do not add up to the input");
  ctx.state = std::move(st);
}

void split_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const int64_t axis = ctx.state_as<AxisState>()->axis;
  int64_t outer, in_inner;
  outer_inner(*x, axis, outer, in_inner);
  const int64_t in_row = in_inner * x->shape[axis];
  int64_t pos = 0;
  for (Tensor* y : *ctx.outputs) {
    if (axis != 0) y->shape[0] = x->shape[0];
    const int64_t chunk = in_inner * y->shape[axis];
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(static_cast<uint8_t*>(y->data) + o * chunk,
                  static_cast<const uint8_t*>(x->data) + o * in_row + pos,
                  static_cast<size_t>(chunk));
    pos += chunk;
  }
}

}  // namespace ops
}  // namespace edgepack
