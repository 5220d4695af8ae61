// SPDX-License-Identifier: Apache-2.0
// Gather along one axis with int32/int64 indices (negative indices count from the end).
// With a dynamic index tensor, the output's rows follow the actual index count.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct GatherState : OpState {
  int64_t axis = 0;
};
}  // namespace

void gather_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  Tensor* idx = need_input(ctx, 1, "indices");
  need_outputs(ctx, 1);
  if (idx->dtype != DType::kInt32 && idx->dtype != DType::kInt64)
    ctx.fail("indices must be int32 or int64");
  auto st = std::make_unique<GatherState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x->rank);
  std::vector<int64_t> out;
  for (int d = 0; d < st->axis; ++d) out.push_back(x->static_shape[d]);
  for (int d = 0; d < idx->rank; ++d) out.push_back(idx->static_shape[d]);
  for (int d = static_cast<int>(st->axis) + 1; d < x->rank; ++d) out.push_back(x->static_shape[d]);
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  need_shape(ctx, *ctx.outputs[0], out);
  ctx.state = std::move(st);
}

void gather_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* idx = ctx.input(1);
  Tensor* y = ctx.output(0);
  const int64_t axis = ctx.state_as<GatherState>()->axis;
  // Actual output shape: x dims before axis, index dims, x dims after axis.
  int r = 0;
  for (int d = 0; d < axis; ++d) y->shape[r++] = x->shape[d];
  for (int d = 0; d < idx->rank; ++d) y->shape[r++] = idx->shape[d];
  for (int d = static_cast<int>(axis) + 1; d < x->rank; ++d) y->shape[r++] = x->shape[d];
  int64_t outer = 1, inner = static_cast<int64_t>(dtype_size(x->dtype));
  for (int d = 0; d < axis; ++d) outer *= x->shape[d];
  for (int d = static_cast<int>(axis) + 1; d < x->rank; ++d) inner *= x->shape[d];
  const int64_t n_idx = idx->numel(), dim = x->shape[axis];
  const uint8_t* src = static_cast<const uint8_t*>(x->data);
  uint8_t* dst = static_cast<uint8_t*>(y->data);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n_idx; ++i) {
      int64_t k = idx->dtype == DType::kInt64 ? idx->as<int64_t>()[i] : idx->as<int32_t>()[i];
      if (k < 0) k += dim;
      if (k < 0 || k >= dim)
        throw Error(ErrorCode::kRuntimeError,
                    std::string("Gather index out of range in node ") + ctx.node_name);
      std::memcpy(dst + (o * n_idx + i) * inner, src + (o * dim + k) * inner,
                  static_cast<size_t>(inner));
    }
}

}  // namespace ops
}  // namespace edgepack
