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
// large enough to pay (memcpy: half a unit per byte, as strided_copy counts it), the parts are cut
// into pieces of about kPiece bytes spread across threads (Cut); otherwise one copy_rows a part.
constexpr int64_t kPiece = 65536;

// `rows` rows of `bytes` bytes from s (row stride ss) to d (row stride ds). Rows of a few bytes
// (YOLO heads split [boxes, 4 + classes] into 4-column and 80-column parts, 2-column box pieces)
// are copied by fixed-size moves the compiler inlines: a memcpy call per 8-byte row cost more
// than the copy (the example's detector.post: Split of [1500, 13] into 4/1/8 columns 0.019 ->
// 0.010 ms, of [1500, 4] into 2/2 0.011 -> 0.001 ms).
template <int64_t N>
void copy_rows_fixed(uint8_t* d, int64_t ds, const uint8_t* s, int64_t ss, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r, d += ds, s += ss) std::memcpy(d, s, N);
}

void copy_rows(uint8_t* d, int64_t ds, const uint8_t* s, int64_t ss, int64_t rows, int64_t bytes) {
  switch (bytes) {
    case 1:
      return copy_rows_fixed<1>(d, ds, s, ss, rows);
    case 2:
      return copy_rows_fixed<2>(d, ds, s, ss, rows);
    case 4:
      return copy_rows_fixed<4>(d, ds, s, ss, rows);
    case 8:
      return copy_rows_fixed<8>(d, ds, s, ss, rows);
    case 12:
      return copy_rows_fixed<12>(d, ds, s, ss, rows);
    case 16:
      return copy_rows_fixed<16>(d, ds, s, ss, rows);
    case 32:
      return copy_rows_fixed<32>(d, ds, s, ss, rows);
    default:
      break;
  }
  if (bytes <= 64 && bytes % 4 == 0) {  // whole 4-byte elements, row by row
    for (int64_t r = 0; r < rows; ++r, d += ds, s += ss)
      for (int64_t b = 0; b < bytes; b += 4) std::memcpy(d + b, s + b, 4);
    return;
  }
  for (int64_t r = 0; r < rows; ++r, d += ds, s += ss)
    std::memcpy(d, s, static_cast<size_t>(bytes));
}

// How a part's rows are cut into pieces for the threads: blocks of whole rows of about kPiece
// bytes when a row is at most kPiece bytes (a piece per 8-byte row would cost more than its
// copy), else one row in pieces of kPiece bytes.
struct Cut {
  int64_t rows = 1;     // rows per piece
  int64_t per_row = 1;  // pieces per row
  int64_t pieces(int64_t outer) const { return (outer + rows - 1) / rows * per_row; }
};

Cut cut(int64_t chunk) {
  if (chunk <= 0) return {1, 0};
  if (chunk <= kPiece) return {kPiece / chunk, 1};
  return {1, (chunk + kPiece - 1) / kPiece};
}

template <class Part>
void copy_parts(size_t parts, int64_t outer, int64_t row, bool into_joined, uint8_t* joined,
                Part part, ThreadPool* pool) {
  // Rows [r0, r1) of part p, bytes [b, e) of each row.
  auto copy = [&](uint8_t* p, int64_t chunk, int64_t pos, int64_t r0, int64_t r1, int64_t b,
                  int64_t e) {
    uint8_t* j = joined + r0 * row + pos + b;
    uint8_t* q = p + r0 * chunk + b;
    if (j == q) return;  // a Concat input the memory plan put in place (concat_in_place)
    if (into_joined)
      copy_rows(j, row, q, chunk, r1 - r0, e - b);
    else
      copy_rows(q, chunk, j, row, r1 - r0, e - b);
  };
  ThreadPool* split = pool_for(pool, static_cast<double>(outer * row) / 2);
  if (!split) {
    int64_t pos = 0;
    for (size_t i = 0; i < parts; ++i) {
      int64_t chunk = 0;
      uint8_t* p = part(i, chunk);
      copy(p, chunk, pos, 0, outer, 0, chunk);
      pos += chunk;
    }
    return;
  }
  // Pieces numbered part by part (Cut): a block of rows, or a piece of one row.
  int64_t pieces = 0;
  for (size_t i = 0; i < parts; ++i) {
    int64_t chunk = 0;
    part(i, chunk);
    pieces += cut(chunk).pieces(outer);
  }
  split->parallel_for(pieces, [&](int64_t k0, int64_t k1) {
    int64_t first = 0, pos = 0;  // the first piece of part i, the part's byte in a joined row
    for (size_t i = 0; i < parts && first < k1; ++i) {
      int64_t chunk = 0;
      uint8_t* p = part(i, chunk);
      const Cut c = cut(chunk);
      const int64_t end = first + c.pieces(outer);
      for (int64_t k = std::max(k0, first); k < std::min(k1, end); ++k) {
        const int64_t r0 = (k - first) / c.per_row * c.rows, b = (k - first) % c.per_row * kPiece;
        copy(p, chunk, pos, r0, std::min(outer, r0 + c.rows), b, std::min(chunk, b + kPiece));
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
