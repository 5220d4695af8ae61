// SPDX-License-Identifier: Apache-2.0
// Gemm: Y = alpha * op(A) * op(B) + beta * C (C broadcast to [M, N]), fused activation.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct GemmState : OpState {
  bool ta = false, tb = false;
  float alpha = 1.0f, beta = 1.0f;
  FusedActivation act;
};
}  // namespace

void gemm_prepare(PrepareContext& ctx) {
  Tensor* a = need_input(ctx, 0, "A");
  Tensor* b = need_input(ctx, 1, "B");
  Tensor* c = ctx.input(2);
  need_outputs(ctx, 1);
  need_rank(ctx, *a, 2);
  need_rank(ctx, *b, 2);
  need_dtype(ctx, *a, DType::kFloat32);
  need_dtype(ctx, *b, DType::kFloat32);
  auto st = std::make_unique<GemmState>();
  st->ta = ctx.attrs->get_int("transA", 0) != 0;
  st->tb = ctx.attrs->get_int("transB", 0) != 0;
  st->alpha = ctx.attrs->get_float("alpha", 1.0f);
  st->beta = ctx.attrs->get_float("beta", 1.0f);
  const int64_t m = a->static_shape[st->ta ? 1 : 0], k = a->static_shape[st->ta ? 0 : 1];
  const int64_t kb = b->static_shape[st->tb ? 1 : 0], n = b->static_shape[st->tb ? 0 : 1];
  if (k != kb) ctx.fail("inner dimensions differ: " + shape_str(*a) + " x " + shape_str(*b));
  if (c) {
    need_dtype(ctx, *c, DType::kFloat32);
    if (c->rank > 2) ctx.fail("C must have rank <= 2");
    const int64_t cm = c->rank == 2 ? c->static_shape[0] : 1;
    const int64_t cn = c->rank >= 1 ? c->static_shape[c->rank - 1] : 1;
    if ((cm != 1 && cm != m) || (cn != 1 && cn != n)) ctx.fail("C does not broadcast to [M, N]");
  }
  need_shape(ctx, *ctx.outputs[0], {m, n});
  st->act = read_activation(ctx);
  ctx.state = std::move(st);
}

void gemm_run(RunContext& ctx) {
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  const Tensor* c = ctx.input(2);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<GemmState>();
  const int64_t m = a->shape[st.ta ? 1 : 0], k = a->shape[st.ta ? 0 : 1];
  const int64_t n = b->shape[st.tb ? 0 : 1];
  y->shape[0] = m;
  const float* pa = a->as<float>();
  const float* pb = b->as<float>();
  float* py = y->as<float>();
  const int64_t cm = c ? (c->rank == 2 ? c->shape[0] : 1) : 0;
  const int64_t cn = c ? (c->rank >= 1 ? c->shape[c->rank - 1] : 1) : 0;
  parallel(ctx.pool, m, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float acc = 0.0f;
        for (int64_t q = 0; q < k; ++q)
          acc += pa[st.ta ? q * m + i : i * k + q] * pb[st.tb ? j * k + q : q * n + j];
        float v = st.alpha * acc;
        if (c) v += st.beta * c->as<float>()[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        py[i * n + j] = st.act.apply(v);
      }
  });
}

}  // namespace ops
}  // namespace edgepack
