// SPDX-License-Identifier: Apache-2.0
// Slice with per-axis start and step (lowering clamps starts and resolves axes); the element
// counts come from the output's static shape. A strided copy (kernels::strided_copy).
#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct SliceState : OpState {
  std::vector<int64_t> starts, steps;
};
}  // namespace

void slice_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  need_outputs(ctx, 1);
  Tensor* y = ctx.outputs[0];
  need_dtype(ctx, *y, x->dtype);
  need_rank(ctx, *y, x->rank);
  auto st = std::make_unique<SliceState>();
  st->starts = ctx.attrs->get_ints("starts");
  st->steps = ctx.attrs->get_ints("steps");
  if (static_cast<int>(st->starts.size()) != x->rank ||
      static_cast<int>(st->steps.size()) != x->rank)
    ctx.fail("starts/steps must have one entry per dimension");
  for (int d = 0; d < x->rank; ++d) {
    const int64_t n = y->static_shape[d], s = st->starts[d], k = st->steps[d];
    if (k == 0) ctx.fail("step 0");
    if (n == 0) continue;
    const int64_t last = s + (n - 1) * k;
    if (s < 0 || s >= x->static_shape[d] || last < 0 || last >= x->static_shape[d])
      ctx.fail("slice of dimension " + std::to_string(d) + " leaves the input");
    if (d == 0 && x->dynamic_dim0 && (s != 0 || k != 1)) ctx.fail("cannot slice a dynamic dim 0");
  }
  ctx.state = std::move(st);
}

void slice_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<SliceState>();
  const int r = x->rank;
  if (x->dynamic_dim0) y->shape[0] = std::min(y->static_shape[0], x->shape[0]);
  int64_t in_stride[kMaxRank];
  int64_t s = 1;
  for (int d = r - 1; d >= 0; --d) {
    in_stride[d] = s;
    s *= x->shape[d];
  }
  int64_t off = 0, step_stride[kMaxRank];
  for (int d = 0; d < r; ++d) {
    off += st.starts[d] * in_stride[d];
    step_stride[d] = st.steps[d] * in_stride[d];
  }
  const size_t es = dtype_size(x->dtype);
  kernels::strided_copy(static_cast<const uint8_t*>(x->data) + off * static_cast<int64_t>(es),
                        y->shape, step_stride, r, es, y->data, ctx.pool);
}

}  // namespace ops
}  // namespace edgepack
