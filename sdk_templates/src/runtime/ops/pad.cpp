// SPDX-License-Identifier: Apache-2.0
// Pad (modes constant, reflect, edge; pads resolved to 2 x rank values by lowering; negative
// pads crop).
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct PadState : OpState {
  std::vector<int64_t> pads;
  int mode = 0;  // 0 constant, 1 reflect, 2 edge
  float value = 0.0f;
};
}  // namespace

void pad_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  need_outputs(ctx, 1);
  auto st = std::make_unique<PadState>();
  st->pads = ctx.attrs->get_ints("pads");
  if (static_cast<int>(st->pads.size()) != 2 * x->rank) ctx.fail("pads needs 2 x rank values");
  const std::string mode = ctx.attrs->get_string("mode", "constant");
  st->mode = mode == "constant" ? 0 : mode == "reflect" ? 1 : mode == "edge" ? 2 : -1;
  if (st->mode < 0) ctx.fail("unknown mode '" + mode + "'");
  st->value = ctx.attrs->get_float("constant_value", 0.0f);
  std::vector<int64_t> out(x->rank);
  for (int d = 0; d < x->rank; ++d) {
    out[d] = x->static_shape[d] + st->pads[d] + st->pads[x->rank + d];
    if (st->mode == 1 &&
        (st->pads[d] >= x->static_shape[d] || st->pads[x->rank + d] >= x->static_shape[d]))
      ctx.fail("reflect pads must be smaller than the dimension");
  }
  if (x->dynamic_dim0 && (st->pads[0] != 0 || st->pads[x->rank] != 0))
    ctx.fail("cannot pad a dynamic dim 0");
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  need_shape(ctx, *ctx.outputs[0], out);
  ctx.state = std::move(st);
}

void pad_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<PadState>();
  const int r = x->rank;
  y->shape[0] = x->shape[0] + st.pads[0] + st.pads[r];
  int64_t in_stride[kMaxRank];
  int64_t s = 1;
  for (int d = r - 1; d >= 0; --d) {
    in_stride[d] = s;
    s *= x->shape[d];
  }
  dispatch(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* src = x->as<T>();
    T* dst = y->as<T>();
    const T fill = static_cast<T>(st.value);
    const int64_t n = y->numel();
    int64_t idx[kMaxRank] = {};
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = 0;
      bool inside = true;
      for (int d = 0; d < r; ++d) {
        int64_t c = idx[d] - st.pads[d];
        const int64_t dim = x->shape[d];
        if (c < 0 || c >= dim) {
          if (st.mode == 0 || dim == 0) {
            inside = false;
            break;
          }
          if (st.mode == 2)
            c = c < 0 ? 0 : dim - 1;
          else {
            const int64_t period = 2 * (dim - 1);
            c = period ? ((c % period) + period) % period : 0;
            if (c >= dim) c = period - c;
          }
        }
        off += c * in_stride[d];
      }
      dst[i] = inside ? src[off] : fill;
      for (int d = r - 1; d >= 0; --d) {
        if (++idx[d] < y->shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

}  // namespace ops
}  // namespace edgepack
