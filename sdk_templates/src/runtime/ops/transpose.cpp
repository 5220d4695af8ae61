// SPDX-License-Identifier: Apache-2.0
// Transpose (any rank up to 8; `perm` resolved by lowering): a strided copy
// (kernels::strided_copy: contiguous runs by memcpy, 2-D tiles otherwise, split across threads).
#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct TransposeState : OpState {
  std::vector<int64_t> perm;
};
}  // namespace

void transpose_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  need_outputs(ctx, 1);
  auto st = std::make_unique<TransposeState>();
  st->perm = ctx.attrs->get_ints("perm");
  if (static_cast<int>(st->perm.size()) != x->rank) ctx.fail("perm length differs from rank");
  std::vector<int64_t> out(x->rank);
  std::vector<bool> seen(x->rank, false);
  for (int d = 0; d < x->rank; ++d) {
    const int64_t p = st->perm[d];
    if (p < 0 || p >= x->rank || seen[p]) ctx.fail("perm is not a permutation");
    seen[p] = true;
    out[d] = x->static_shape[p];
  }
  if (x->dynamic_dim0 && st->perm[0] != 0) ctx.fail("a dynamic dimension 0 must stay first");
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  need_shape(ctx, *ctx.outputs[0], out);
  ctx.state = std::move(st);
}

void transpose_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& perm = ctx.state_as<TransposeState>()->perm;
  const int r = x->rank;
  int64_t in_stride[kMaxRank], src_stride[kMaxRank], out_shape[kMaxRank];
  int64_t s = 1;
  for (int d = r - 1; d >= 0; --d) {
    in_stride[d] = s;
    s *= x->shape[d];
  }
  for (int d = 0; d < r; ++d) {
    out_shape[d] = x->shape[perm[d]];
    src_stride[d] = in_stride[perm[d]];
    y->shape[d] = out_shape[d];
  }
  kernels::strided_copy(x->data, out_shape, src_stride, r, dtype_size(x->dtype), y->data, ctx.pool);
}

}  // namespace ops
}  // namespace edgepack
