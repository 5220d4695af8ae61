// SPDX-License-Identifier: Apache-2.0
// Gemm (float32): Y = act(alpha * op(A) op(B) + beta * C). A constant operand is packed once at
// prepare; a constant row-vector C becomes the GEMM's fused bias (one pass over Y). One row of A
// times a constant B (a classifier) is a GEMV over B in place: constants point into the
// artifact's decrypted section, which outlives the graph (runtime.h), so B is never copied.
#include "runtime/kernels/gemm.h"
#include "runtime/kernels/vector_math.h"

#include "runtime/ops/conv_attrs.h"

namespace edgepack {
namespace ops {
namespace {

struct GemmState : OpState {
  bool trans_a = false, trans_b = false;
  float alpha = 1.0f, beta = 0.0f;
  int64_t k = 0, n = 0;
  std::vector<float> packed_a, packed_b, bias;
  const float* gemv_b = nullptr;  // GEMV: the constant B itself (nullptr: the GEMM path)
  kernels::Epilogue ep;
  bool c_as_bias = false;
};

float* align64(void* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) &
                                  ~static_cast<uintptr_t>(63));
}

}  // namespace

void gemm_prepare(PrepareContext& ctx) {
  Tensor* a = need_input(ctx, 0, "A");
  Tensor* b = need_input(ctx, 1, "B");
  Tensor* c = ctx.input(2);
  need_outputs(ctx, 1);
  need_dtype(ctx, *a, DType::kFloat32);
  need_dtype(ctx, *b, DType::kFloat32);
  need_rank(ctx, *a, 2);
  need_rank(ctx, *b, 2);
  auto st = std::make_unique<GemmState>();
  st->trans_a = ctx.attrs->get_int("transA", 0) != 0;
  st->trans_b = ctx.attrs->get_int("transB", 0) != 0;
  st->alpha = ctx.attrs->get_float("alpha", 1.0f);
  st->beta = ctx.attrs->get_float("beta", 1.0f);
  const int64_t m = st->trans_a ? a->static_shape[1] : a->static_shape[0];
  const int64_t k = st->trans_a ? a->static_shape[0] : a->static_shape[1];
  const int64_t kb = st->trans_b ? b->static_shape[1] : b->static_shape[0];
  const int64_t n = st->trans_b ? b->static_shape[0] : b->static_shape[1];
  if (k != kb) ctx.fail("inner dimensions differ: A " + shape_str(*a) + ", B " + shape_str(*b));
  if (st->trans_a && a->dynamic_dim0) ctx.fail("transA with a dynamic first dimension");
  need_shape(ctx, *ctx.outputs[0], {m, n});
  st->k = k;
  st->n = n;
  st->ep = read_epilogue(ctx);

  if (c != nullptr && st->beta != 0.0f) {
    need_dtype(ctx, *c, DType::kFloat32);
    if (c->rank > 2) ctx.fail("C must have rank <= 2");
    const int64_t cm = c->rank == 2 ? c->static_shape[0] : 1;
    const int64_t cn = c->rank >= 1 ? c->static_shape[c->rank - 1] : 1;
    if ((cm != 1 && cm != m) || (cn != 1 && cn != n))
      ctx.fail("C " + shape_str(*c) + " does not broadcast to [" + std::to_string(m) + ", " +
               std::to_string(n) + "]");
    if (c->constant && cm == 1) {
      st->bias.resize(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j)
        st->bias[static_cast<size_t>(j)] = st->beta * c->as<float>()[cn == 1 ? 0 : j];
      st->c_as_bias = true;
      st->ep.bias = st->bias.data();
      st->ep.bias_per_row = false;
    }
  }
  const bool c_other = c != nullptr && st->beta != 0.0f && !st->c_as_bias;
  if (b->constant && m == 1 && !a->dynamic_dim0 && !c_other) {
    // GEMV on B where it lies: transB, a dot product per output over B's n rows of k;
    // otherwise y = x^T B, one pass over B's k rows of n.
    st->gemv_b = b->as<float>();
    ctx.state = std::move(st);
    return;
  }
  if (b->constant) {
    st->packed_b.resize(kernels::packed_b_floats(k, n));
    kernels::pack_b(b->as<float>(), b->static_shape[1], st->trans_b, k, n, st->packed_b.data());
  }
  if (a->constant && !a->dynamic_dim0) {
    st->packed_a.resize(kernels::packed_a_floats(m, k));
    kernels::pack_a(a->as<float>(), a->static_shape[1], st->trans_a, m, k, st->packed_a.data());
  }
  ctx.scratch_bytes =
      kernels::gemm_scratch_floats(m, n, k, !st->packed_a.empty(), !st->packed_b.empty()) *
          sizeof(float) +
      64;
  ctx.state = std::move(st);
}

void gemm_run(RunContext& ctx) {
  const auto* st = ctx.state_as<GemmState>();
  const Tensor* a = ctx.input(0);
  const Tensor* b = ctx.input(1);
  const Tensor* c = ctx.input(2);
  float* y = ctx.output(0)->as<float>();
  const int64_t m = st->trans_a ? a->shape[1] : a->shape[0];
  const int64_t n = st->n;
  if (st->gemv_b != nullptr) {
    const float* x = a->as<float>();  // one row: transA changes nothing
    if (st->trans_b)
      kernels::gemv_f32(st->gemv_b, x, y, n, st->k, st->alpha, ctx.pool);
    else
      kernels::gemv_rows_f32(st->gemv_b, x, y, st->k, n, st->alpha, ctx.pool);
    if (!st->ep.is_identity()) kernels::apply_epilogue(st->ep, y, n, 1, n, 0, 0);
    return;
  }
  float beta = 0.0f;
  if (c != nullptr && st->beta != 0.0f && !st->c_as_bias) {
    // Y = C broadcast, then the GEMM accumulates onto beta * Y.
    const int64_t cm = c->rank == 2 ? c->shape[0] : 1;
    const int64_t cn = c->rank >= 1 ? c->shape[c->rank - 1] : 1;
    const float* cv = c->as<float>();
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] = cv[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
    beta = st->beta;
  }
  kernels::GemmOperand opa, opb;
  opa.data = a->as<float>();
  opa.ld = a->shape[1];
  opa.trans = st->trans_a;
  opa.packed = st->packed_a.empty() ? nullptr : st->packed_a.data();
  opb.data = b->as<float>();
  opb.ld = b->shape[1];
  opb.trans = st->trans_b;
  opb.packed = st->packed_b.empty() ? nullptr : st->packed_b.data();
  kernels::gemm(m, n, st->k, st->alpha, opa, opb, beta, y, n, st->ep, align64(ctx.scratch),
                ctx.pool);
}

}  // namespace ops
}  // namespace edgepack
