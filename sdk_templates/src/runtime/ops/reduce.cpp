// SPDX-License-Identifier: Apache-2.0
// ReduceMean, ReduceMax (axes resolved by lowering, keepdims) and ArgMax (int64 output,
// keepdims, select_last_index).
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct ReduceState : OpState {
  bool reduced[kMaxRank] = {};
  bool mean = false;
  int64_t axis = 0;  // ArgMax
  bool last = false;
};

// Maps each input element to its output offset (reduced dims contribute nothing).
template <class F>
void for_each_reduce(const Tensor& x, const bool* reduced, F&& f) {
  const int r = x.rank;
  int64_t out_stride[kMaxRank];
  int64_t s = 1;
  for (int d = r - 1; d >= 0; --d) {
    out_stride[d] = reduced[d] ? 0 : s;
    if (!reduced[d]) s *= x.shape[d];
  }
  const int64_t n = x.numel();
  int64_t idx[kMaxRank] = {};
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (int d = r - 1; d >= 0; --d) {
      ++idx[d];
      off += out_stride[d];
      if (idx[d] < x.shape[d]) break;
      off -= out_stride[d] * x.shape[d];
      idx[d] = 0;
    }
  }
}
}  // namespace

void reduce_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  need_dtype(ctx, *x, DType::kFloat32);
  need_outputs(ctx, 1);
  auto st = std::make_unique<ReduceState>();
  st->mean = ctx.op_type == "ReduceMean";
  std::vector<int64_t> axes = ctx.attrs->get_ints("axes");
  if (axes.empty())
    for (int d = 0; d < x->rank; ++d) axes.push_back(d);
  for (int64_t a : axes) st->reduced[norm_axis(ctx, a, x->rank)] = true;
  if (x->dynamic_dim0 && st->reduced[0]) ctx.fail("cannot reduce a dynamic dimension 0");
  const bool keep = ctx.attrs->get_int("keepdims", 1) != 0;
  std::vector<int64_t> out;
  for (int d = 0; d < x->rank; ++d)
    if (!st->reduced[d]) out.push_back(x->static_shape[d]);
    else if (keep) out.push_back(1);
  need_shape(ctx, *ctx.outputs[0], out);
  ctx.state = std::move(st);
}

void reduce_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<ReduceState>();
  const float* px = x->as<float>();
  float* py = y->as<float>();
  const int64_t on = y->numel();
  for (int64_t i = 0; i < on; ++i) py[i] = st.mean ? 0.0f : -INFINITY;
  if (st.mean) for_each_reduce(*x, st.reduced, [&](int64_t i, int64_t o) { py[o] += px[i]; });
  else for_each_reduce(*x, st.reduced, [&](int64_t i, int64_t o) { py[o] = std::max(py[o], px[i]); });
  if (st.mean && on) {
    const float count = static_cast<float>(x->numel() / on);
    for (int64_t i = 0; i < on; ++i) py[i] /= count;
  }
}

void argmax_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  need_outputs(ctx, 1);
  if (x->dtype != DType::kFloat32 && x->dtype != DType::kInt32 && x->dtype != DType::kInt64 &&
      x->dtype != DType::kUInt8)
    ctx.fail("unsupported dtype");
  need_dtype(ctx, *ctx.outputs[0], DType::kInt64);
  auto st = std::make_unique<ReduceState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x->rank);
  st->last = ctx.attrs->get_int("select_last_index", 0) != 0;
  // Along a dynamic dim 0 the index is taken over the actual rows and the output is static
  // (a detection post uses this to count the rows NonMaxSuppression kept).
  const bool keep = ctx.attrs->get_int("keepdims", 1) != 0;
  std::vector<int64_t> out;
  for (int d = 0; d < x->rank; ++d)
    if (d != st->axis) out.push_back(x->static_shape[d]);
    else if (keep) out.push_back(1);
  need_shape(ctx, *ctx.outputs[0], out);
  ctx.state = std::move(st);
}

void argmax_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const auto& st = *ctx.state_as<ReduceState>();
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < st.axis; ++d) outer *= x->shape[d];
  for (int d = static_cast<int>(st.axis) + 1; d < x->rank; ++d) inner *= x->shape[d];
  const int64_t n = x->shape[st.axis];
  Tensor* y = ctx.output(0);
  if (st.axis == 0)  // reduced the (maybe dynamic) rows: the output keeps its static shape
    for (int d = 0; d < y->rank; ++d) y->shape[d] = y->static_shape[d];
  if (n == 0) throw Error(ErrorCode::kRuntimeError, std::string("ArgMax: no rows in ") + ctx.node_name);
  int64_t* py = y->as<int64_t>();
  dispatch(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x->as<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* s = px + o * n * inner + i;
        int64_t best = 0;
        for (int64_t k = 1; k < n; ++k)
          if (s[k * inner] > s[best * inner] || (st.last && s[k * inner] == s[best * inner]))
            best = k;
        py[o * inner + i] = best;
      }
  });
}

}  // namespace ops
}  // namespace edgepack
