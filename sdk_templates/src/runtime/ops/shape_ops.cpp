// SPDX-License-Identifier: Apache-2.0
// Ops that only change the shape: Reshape, Flatten, Squeeze, Unsqueeze, Identity. Lowering has
// resolved the output shape, so run() is a copy (dim 0 of a dynamic tensor scales the size).
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {

void reshape_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  need_outputs(ctx, 1);
  Tensor* y = ctx.outputs[0];
  need_dtype(ctx, *y, x->dtype);
  if (x->static_numel() != y->static_numel())
    ctx.fail("element count changes from " + shape_str(*x) + " to " + shape_str(*y));
}

void reshape_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  // Keep the actual element count: dim 0 of the output absorbs a dynamic dim 0 of the input.
  const int64_t n = x->numel();
  if (y->rank > 0 && n != y->numel()) {
    int64_t rest = 1;
    for (int d = 1; d < y->rank; ++d) rest *= y->shape[d];
    y->shape[0] = rest ? n / rest : 0;
  }
  if (y->data != x->data) std::memmove(y->data, x->data, x->bytes());
}

}  // namespace ops
}  // namespace edgepack
