// SPDX-License-Identifier: Apache-2.0
// TopK along one axis: K from the `k` attribute, or (data-dependent) from the K input, in which
// case the output's dim 0 is dynamic (lowering allows that only along axis 0). Ties keep the
// lower index first, as ONNX specifies. Scratch holds one index array of the axis length.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct TopKState : OpState {
  int64_t axis = 0, k = -1;
  bool largest = true;
};
}  // namespace

void topk_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  need_outputs(ctx, 2);
  if (x->dtype == DType::kBool || x->dtype == DType::kFloat16) ctx.fail("unsupported dtype");
  auto st = std::make_unique<TopKState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", -1), x->rank);
  st->largest = ctx.attrs->get_int("largest", 1) != 0;
  Tensor* kin = ctx.input(1);
  if (kin) {
    if (kin->dtype != DType::kInt64 || kin->static_numel() != 1) ctx.fail("K must be one int64");
    if (st->axis != 0) ctx.fail("a computed K is only supported along axis 0");
  } else {
    st->k = ctx.attrs->get_int("k", -1);
    if (st->k < 0 || st->k > x->static_shape[st->axis]) ctx.fail("k out of range");
  }
  std::vector<int64_t> out = x->static_dims();
  if (!kin) out[st->axis] = st->k;
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  need_dtype(ctx, *ctx.outputs[1], DType::kInt64);
  need_shape(ctx, *ctx.outputs[0], out);
  need_shape(ctx, *ctx.outputs[1], out);
  ctx.scratch_bytes = static_cast<size_t>(x->static_shape[st->axis]) * sizeof(int64_t);
  ctx.state = std::move(st);
}

void topk_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* vals = ctx.output(0);
  Tensor* inds = ctx.output(1);
  const auto& st = *ctx.state_as<TopKState>();
  const int64_t n = x->shape[st.axis];
  int64_t k = st.k;
  if (k < 0) {
    k = ctx.input(1)->as<int64_t>()[0];
    if (k < 0 || k > n)
      throw Error(ErrorCode::kRuntimeError,
                  std::string("TopK: K out of range in ") + ctx.node_name);
  }
  vals->shape[st.axis] = k;
  inds->shape[st.axis] = k;
  for (int d = 0; d < x->rank; ++d)
    if (d != st.axis) vals->shape[d] = inds->shape[d] = x->shape[d];
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < st.axis; ++d) outer *= x->shape[d];
  for (int d = static_cast<int>(st.axis) + 1; d < x->rank; ++d) inner *= x->shape[d];
  int64_t* order = static_cast<int64_t*>(ctx.scratch);
  dispatch(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x->as<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* s = px + o * n * inner + i;
        for (int64_t j = 0; j < n; ++j) order[j] = j;
        auto before = [&](int64_t a, int64_t b) {
          const T va = s[a * inner], vb = s[b * inner];
          if (va != vb) return st.largest ? va > vb : va < vb;
          return a < b;
        };
        std::partial_sort(order, order + k, order + n, before);
        for (int64_t j = 0; j < k; ++j) {
          vals->as<T>()[(o * k + j) * inner + i] = s[order[j] * inner];
          inds->as<int64_t>()[(o * k + j) * inner + i] = order[j];
        }
      }
  });
}

}  // namespace ops
}  // namespace edgepack
