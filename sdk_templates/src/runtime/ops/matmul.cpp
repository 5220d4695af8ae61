// SPDX-License-Identifier: Apache-2.0
// MatMul (float32, numpy semantics: 1-D operands promoted, batch dimensions broadcast). When B
// is a constant matrix (the common "linear layer" case) it is packed once at prepare and all of
// A's leading dimensions fold into M: one GEMM call.
#include "runtime/kernels/gemm.h"

#include "runtime/ops/conv_attrs.h"

namespace edgepack {
namespace ops {
namespace {

struct MatMulState : OpState {
  int64_t m = 0, k = 0, n = 0;
  bool fold = false;  // B is a constant 2-D matrix: one GEMM over all rows of A
  std::vector<float> packed_b;
  // Batched case: output batch shape and per-operand batch strides (0 = broadcast).
  int batch_rank = 0;
  int64_t batch_shape[kMaxRank] = {};
  int64_t a_stride[kMaxRank] = {}, b_stride[kMaxRank] = {};
  kernels::Epilogue ep;
};

float* align64(void* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) &
                                  ~static_cast<uintptr_t>(63));
}

}  // namespace

void matmul_prepare(PrepareContext& ctx) {
  Tensor* a = need_input(ctx, 0, "A");
  Tensor* b = need_input(ctx, 1, "B");
  need_outputs(ctx, 1);
  need_dtype(ctx, *a, DType::kFloat32);
  need_dtype(ctx, *b, DType::kFloat32);
  if (a->rank < 1 || b->rank < 1) ctx.fail("MatMul operands must have rank >= 1");
  auto st = std::make_unique<MatMulState>();
  st->ep = read_epilogue(ctx);
  const int64_t* as = a->static_shape;
  const int64_t* bs = b->static_shape;
  st->m = a->rank == 1 ? 1 : as[a->rank - 2];
  st->k = as[a->rank - 1];
  const int64_t kb = b->rank == 1 ? bs[0] : bs[b->rank - 2];
  st->n = b->rank == 1 ? 1 : bs[b->rank - 1];
  if (st->k != kb) ctx.fail("inner dimensions differ: A " + shape_str(*a) + ", B " + shape_str(*b));

  // Batch dims: A[:-2] and B[:-2], broadcast.
  const int ab = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
  st->batch_rank = std::max(ab, bb);
  int64_t sa = st->m * st->k, sb = st->k * st->n;
  for (int d = st->batch_rank - 1; d >= 0; --d) {
    const int ia = d - (st->batch_rank - ab), ib = d - (st->batch_rank - bb);
    const int64_t da = ia >= 0 ? as[ia] : 1, db = ib >= 0 ? bs[ib] : 1;
    if (da != db && da != 1 && db != 1)
      ctx.fail("batch dimensions do not broadcast: A " + shape_str(*a) + ", B " + shape_str(*b));
    st->batch_shape[d] = std::max(da, db);
    st->a_stride[d] = da == 1 ? 0 : sa;
    st->b_stride[d] = db == 1 ? 0 : sb;
    sa *= da;
    sb *= db;
  }
  st->fold = b->constant && b->rank <= 2;
  if (st->fold) {
    st->packed_b.resize(kernels::packed_b_floats(st->k, st->n));
    kernels::pack_b(b->as<float>(), st->n, false, st->k, st->n, st->packed_b.data());
  } else if (a->dynamic_dim0 && ab == 0) {
    ctx.fail("a dynamic first dimension needs a constant 2-D B");
  }
  int64_t rows = st->m;
  for (int d = 0; d < st->batch_rank; ++d) rows *= st->batch_shape[d];
  ctx.scratch_bytes =
      kernels::gemm_scratch_floats(st->fold ? rows : st->m, st->n, st->k, false, st->fold) *
          sizeof(float) +
      64;
  ctx.state = std::move(st);
}

void matmul_run(RunContext& ctx) {
  const auto* st = ctx.state_as<MatMulState>();
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  float* y = ctx.output(0)->as<float>();
  float* scratch = align64(ctx.scratch);
  kernels::GemmOperand opa, opb;
  opa.data = a->as<float>();
  opa.ld = st->k;
  if (st->fold) {
    // Every row of A (all leading dims, actual dim 0) times the packed B.
    const int64_t rows = a->numel() / st->k;
    opb.packed = st->packed_b.data();
    kernels::gemm(rows, st->n, st->k, 1.0f, opa, opb, 0.0f, y, st->n, st->ep, scratch, ctx.pool);
    return;
  }
  opb.ld = st->n;
  int64_t total = 1;
  for (int d = 0; d < st->batch_rank; ++d) total *= st->batch_shape[d];
  // Dynamic dim 0 of a batched A scales the leading batch dimension.
  if (st->batch_rank > 0 && a->rank - 2 == st->batch_rank && a->shape[0] != a->static_shape[0])
    total = total / st->batch_shape[0] * a->shape[0];
  for (int64_t t = 0; t < total; ++t) {
    int64_t rem = t, oa = 0, ob = 0;
    for (int d = st->batch_rank - 1; d >= 0; --d) {
      const int64_t i = rem % st->batch_shape[d];
      rem /= st->batch_shape[d];
      oa += i * st->a_stride[d];
      ob += i * st->b_stride[d];
    }
    opa.data = a->as<float>() + oa;
    opb.data = b->as<float>() + ob;
    kernels::gemm(st->m, st->n, st->k, 1.0f, opa, opb, 0.0f, y + t * st->m * st->n, st->n, st->ep,
                  scratch, ctx.pool);
  }
}

}  // namespace ops
}  // namespace edgepack
