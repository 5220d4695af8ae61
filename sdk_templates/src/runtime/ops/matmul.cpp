// SPDX-License-Identifier: Apache-2.0
// MatMul (float32, numpy semantics: 1-D operands promoted, batch dimensions broadcast). When B
// is a constant matrix (the common "linear layer" case) it is packed once at prepare and all of
// A's leading dimensions fold into M: one GEMM call. Otherwise (attention: Q K^T, weights V)
// each product of the batch is one GEMM, and with threads the batch is split across them, each
// with its own scratch slot (many small GEMMs split badly inside); gemm() reads A in place when
// B is narrow (weights times V). A third input, the bias of a linear layer, and a fused
// activation (GELU) are applied in the GEMM's output pass.
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
  size_t slot_floats = 0;  // batched: scratch floats per thread
  int threads = 1;
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
  // Optional third input (device graphs only): a constant bias of N values added along the last
  // axis in the GEMM's output pass (lowering folds a linear layer's Add into it). Read where it
  // lies: constants outlive the graph (runtime.h).
  if (const Tensor* bias = ctx.input(2)) {
    need_dtype(ctx, *bias, DType::kFloat32);
    if (!bias->constant || bias->numel() != st->n || b->rank != 2)
      ctx.fail("bias must be a constant of N = " + std::to_string(st->n) + " values for a 2-D B");
    st->ep.bias = bias->as<float>();
    st->ep.bias_per_row = false;
  }

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
  const size_t floats =
      kernels::gemm_scratch_floats(st->fold ? rows : st->m, st->n, st->k, false, st->fold);
  st->threads = st->fold ? 1 : std::max(ctx.threads, 1);
  st->slot_floats = (floats + 15) / 16 * 16;  // slots stay 64-byte aligned
  ctx.scratch_bytes = st->slot_floats * static_cast<size_t>(st->threads) * sizeof(float) + 64;
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
  const float* pa = a->as<float>();
  const float* pb = b->as<float>();
  auto product = [&](int64_t t, float* slot, ThreadPool* pool) {
    int64_t rem = t, oa = 0, ob = 0;
    for (int d = st->batch_rank - 1; d >= 0; --d) {
      const int64_t i = rem % st->batch_shape[d];
      rem /= st->batch_shape[d];
      oa += i * st->a_stride[d];
      ob += i * st->b_stride[d];
    }
    kernels::GemmOperand qa = opa, qb = opb;
    qa.data = pa + oa;
    qb.data = pb + ob;
    float* out = y + t * st->m * st->n;
    kernels::gemm(st->m, st->n, st->k, 1.0f, qa, qb, 0.0f, out, st->n, st->ep, slot, pool);
  };
  const double work = static_cast<double>(total) * static_cast<double>(st->m * st->n * st->k);
  ThreadPool* pool = pool_for(ctx.pool, work);
  const int threads = pool ? std::min(pool->threads(), st->threads) : 1;
  if (threads > 1 && total >= threads) {
    // One index per thread, each with its own scratch slot (see threadpool.h).
    pool->parallel_for(threads, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        float* slot = scratch + static_cast<size_t>(i) * st->slot_floats;
        const int64_t t1 = chunk_begin(total, threads, static_cast<int>(i) + 1);
        for (int64_t t = chunk_begin(total, threads, static_cast<int>(i)); t < t1; ++t)
          product(t, slot, nullptr);
      }
    });
    return;
  }
  for (int64_t t = 0; t < total; ++t) product(t, scratch, ctx.pool);
}

}  // namespace ops
}  // namespace edgepack
