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

// Concat and Split are the same copy: part i (an input of Concat, an output of Split) is `outer`
// rows of `chunk` bytes, each at the sum of the parts' chunks before it in a row of the joined
// tensor (`row` bytes); part(i, chunk) returns part i's data and sets its chunk. When the copy is
// large enough to pay (memcpy: half a unit per byte, as strided_copy counts it), rows are cut
// into pieces of at most kPiece bytes spread across threads; otherwise one memcpy per row.
constexpr int64_t kPiece = 65536;

template <class Part>
void copy_parts(size_t parts, int64_t outer, int64_t row, bool into_joined, uint8_t* joined,
                Part part, ThreadPool* pool) {
  auto copy = [&](uint8_t* p, int64_t chunk, int64_t pos, int64_t o, int64_t b, int64_t e) {
    uint8_t* j = joined + o * row + pos + b;
    uint8_t* q = p + o * chunk + b;
    if (into_joined)
      std::memcpy(j, q, static_cast<size_t>(e - b));
    else
      std::memcpy(q, j, static_cast<size_t>(e - b));
  };
  ThreadPool* split = pool_for(pool, static_cast<double>(outer * row) / 2);
  if (!split) {
    int64_t pos = 0;
    for (size_t i = 0; i < parts; ++i) {
      int64_t chunk = 0;
      uint8_t* p = part(i, chunk);
      for (int64_t o = 0; o < outer; ++o) copy(p, chunk, pos, o, 0, chunk);
      pos += chunk;
    }
    return;
  }
  // Pieces numbered part by part, row by row: part i has outer * ceil(chunk / kPiece).
  int64_t pieces = 0;
  for (size_t i = 0; i < parts; ++i) {
    int64_t chunk = 0;
    part(i, chunk);
    pieces += outer * ((chunk + kPiece - 1) / kPiece);
  }
  split->parallel_for(pieces, [&](int64_t k0, int64_t k1) {
    int64_t first = 0, pos = 0;  // the first piece of part i, the part's byte in a joined row
    for (size_t i = 0; i < parts && first < k1; ++i) {
      int64_t chunk = 0;
      uint8_t* p = part(i, chunk);
      const int64_t per_row = (chunk + kPiece - 1) / kPiece;
      const int64_t end = first + outer * per_row;
      for (int64_t k = std::max(k0, first); k < std::min(k1, end); ++k) {
        const int64_t o = (k - first) / per_row, b = (k - first) % per_row * kPiece;
        copy(p, chunk, pos, o, b, std::min(chunk, b + kPiece));
      }
      first = end;
      pos += chunk;
    }
  });
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
  const auto& inputs = *ctx.inputs;
  copy_parts(
      inputs.size(), outer, out_inner * y->shape[axis], true, static_cast<uint8_t*>(y->data),
      [&](size_t i, int64_t& chunk) {
        int64_t xo;
        outer_inner(*inputs[i], axis, xo, chunk);
        chunk *= inputs[i]->shape[axis];
        return static_cast<uint8_t*>(inputs[i]->data);
      },
      ctx.pool);
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
  const auto& outputs = *ctx.outputs;
  if (axis != 0)
    for (Tensor* y : outputs) y->shape[0] = x->shape[0];
  copy_parts(
      outputs.size(), outer, in_inner * x->shape[axis], false, static_cast<uint8_t*>(x->data),
      [&](size_t i, int64_t& chunk) {
        chunk = in_inner * outputs[i]->shape[axis];
        return static_cast<uint8_t*>(outputs[i]->data);
      },
      ctx.pool);
}

}  // namespace ops
}  // namespace edgepack
