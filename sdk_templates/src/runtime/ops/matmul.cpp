// SPDX-License-Identifier: Apache-2.0
// MatMul with numpy semantics: batch dims broadcast, 1-D operands promoted and squeezed.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct MatMulState : OpState {
  FusedActivation act;
};

// Splits a tensor's shape into batch dims and the matrix [rows, cols] (1-D promoted).
void split_shape(const Tensor& t, bool left, int64_t* batch, int& batch_rank, int64_t& rows,
                 int64_t& cols, const int64_t* shape) {
  if (t.rank == 1) {
    batch_rank = 0;
    rows = left ? 1 : shape[0];
    cols = left ? shape[0] : 1;
    return;
  }
  batch_rank = t.rank - 2;
  for (int d = 0; d < batch_rank; ++d) batch[d] = shape[d];
  rows = shape[t.rank - 2];
  cols = shape[t.rank - 1];
}

struct Plan {
  int rank = 0;
  int64_t batch[kMaxRank] = {}, sa[kMaxRank] = {}, sb[kMaxRank] = {};
  int64_t m = 0, k = 0, n = 0, count = 1;
  std::vector<int64_t> out_shape;
};

bool make_plan(const Tensor& a, const Tensor& b, const int64_t* as, const int64_t* bs, Plan& p) {
  int64_t ba[kMaxRank], bb[kMaxRank];
  int ra, rb;
  int64_t kb;
  split_shape(a, true, ba, ra, p.m, p.k, as);
  split_shape(b, false, bb, rb, kb, p.n, bs);
  if (p.k != kb) return false;
  p.rank = std::max(ra, rb);
  int64_t stride_a = p.m * p.k, stride_b = p.k * p.n;
  for (int d = p.rank - 1; d >= 0; --d) {
    const int ia = d - (p.rank - ra), ib = d - (p.rank - rb);
    const int64_t da = ia >= 0 ? ba[ia] : 1, db = ib >= 0 ? bb[ib] : 1;
    if (da != db && da != 1 && db != 1) return false;
    p.batch[d] = std::max(da, db);
    p.sa[d] = da == 1 ? 0 : stride_a;
    p.sb[d] = db == 1 ? 0 : stride_b;
    stride_a *= da;
    stride_b *= db;
  }
  p.count = 1;
  p.out_shape.clear();
  for (int d = 0; d < p.rank; ++d) {
    p.count *= p.batch[d];
    p.out_shape.push_back(p.batch[d]);
  }
  if (a.rank != 1) p.out_shape.push_back(p.m);
  if (b.rank != 1) p.out_shape.push_back(p.n);
  return true;
}
}  // namespace

void matmul_prepare(PrepareContext& ctx) {
  Tensor* a = need_input(ctx, 0, "A");
  Tensor* b = need_input(ctx, 1, "B");
  need_outputs(ctx, 1);
  need_dtype(ctx, *a, DType::kFloat32);
  need_dtype(ctx, *b, DType::kFloat32);
  if (a->rank < 1 || b->rank < 1) ctx.fail("operands need rank >= 1");
  Plan p;
  if (!make_plan(*a, *b, a->static_shape, b->static_shape, p))
    ctx.fail("shapes " + shape_str(*a) + " and " + shape_str(*b) + " do not multiply");
  need_shape(ctx, *ctx.outputs[0], p.out_shape);
  auto st = std::make_unique<MatMulState>();
  st->act = read_activation(ctx);
  ctx.state = std::move(st);
}

void matmul_run(RunContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  Tensor* y = ctx.output(0);
  const auto& act = ctx.state_as<MatMulState>()->act;
  Plan p;
  // Plan::out_shape is a vector; reserve-free path: compute without it on the run path.
  int64_t ba[kMaxRank], bb[kMaxRank];
  int ra, rb;
  int64_t kb;
  split_shape(*a, true, ba, ra, p.m, p.k, a->shape);
  split_shape(*b, false, bb, rb, kb, p.n, b->shape);
  p.rank = std::max(ra, rb);
  int64_t stride_a = p.m * p.k, stride_b = p.k * p.n;
  for (int d = p.rank - 1; d >= 0; --d) {
    const int ia = d - (p.rank - ra), ib = d - (p.rank - rb);
    const int64_t da = ia >= 0 ? ba[ia] : 1, db = ib >= 0 ? bb[ib] : 1;
    p.batch[d] = std::max(da, db);
    p.sa[d] = da == 1 ? 0 : stride_a;
    p.sb[d] = db == 1 ? 0 : stride_b;
    stride_a *= da;
    stride_b *= db;
    p.count *= p.batch[d];
  }
  if (p.rank > 0) y->shape[0] = p.batch[0];
  else if (a->rank == 2) y->shape[0] = p.m;
  const float* pa = a->as<float>();
  const float* pb = b->as<float>();
  float* py = y->as<float>();
  const int64_t m = p.m, k = p.k, n = p.n;
  parallel(ctx.pool, p.count * m, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t bi = r / m, i = r % m;
      int64_t oa = 0, ob = 0, rem = bi;
      for (int d = p.rank - 1; d >= 0; --d) {
        const int64_t idx = rem % p.batch[d];
        rem /= p.batch[d];
        oa += idx * p.sa[d];
        ob += idx * p.sb[d];
      }
      float* dst = py + r * n;
      for (int64_t j = 0; j < n; ++j) dst[j] = 0.0f;
      for (int64_t q = 0; q < k; ++q) {
        const float av = pa[oa + i * k + q];
        const float* brow = pb + ob + q * n;
        for (int64_t j = 0; j < n; ++j) dst[j] += av * brow[j];
      }
      for (int64_t j = 0; j < n; ++j) dst[j] = act.apply(dst[j]);
    }
  });
}

}  // namespace ops
}  // namespace edgepack
