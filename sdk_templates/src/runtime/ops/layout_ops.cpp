// SPDX-License-Identifier: Apache-2.0
// Layout ops that copy elements to computed places: Expand (broadcast to the resolved `shape`),
// Tile (`repeats`), DepthToSpace (DCR/CRD) and SpaceToDepth (blocksize), and Range (`start`,
// `delta` from constant inputs; the element count is static). Any dtype (bytes are copied).
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct LayoutState : OpState {
  int64_t block = 1;
  bool crd = false;
  double start = 0.0, delta = 0.0;
  int64_t start_i = 0, delta_i = 0;
};

// Calls f(out_index, in_index) for y = x broadcast (Expand) or tiled (Tile) to y's shape.
template <class F>
void for_each_mapped(const Tensor& x, const Tensor& y, bool tile, F&& f) {
  const int r = y.rank, off = y.rank - x.rank;
  int64_t xs[kMaxRank] = {}, xd[kMaxRank] = {};
  int64_t s = 1;
  for (int d = x.rank - 1; d >= 0; --d) {
    xs[d + off] = s;
    xd[d + off] = x.shape[d];
    s *= x.shape[d];
  }
  for (int d = 0; d < off; ++d) xd[d] = 1;
  const int64_t n = y.numel();
  int64_t idx[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    int64_t src = 0;
    for (int d = off; d < r; ++d)
      src += (tile ? idx[d] % xd[d] : (xd[d] == 1 ? 0 : idx[d])) * xs[d];
    f(i, src);
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[d] < y.shape[d]) break;
      idx[d] = 0;
    }
  }
}

void copy_mapped(RunContext& ctx, bool tile) {
  const Tensor* x = ctx.input(0);
  const Tensor* y = ctx.output(0);
  const size_t es = dtype_size(x->dtype);
  const uint8_t* src = static_cast<const uint8_t*>(x->data);
  uint8_t* dst = static_cast<uint8_t*>(y->data);
  for_each_mapped(*x, *y, tile,
                  [&](int64_t i, int64_t s) { std::memcpy(dst + i * es, src + s * es, es); });
}
}  // namespace

void expand_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  need_outputs(ctx, 1);
  Tensor* y = ctx.outputs[0];
  need_dtype(ctx, *y, x->dtype);
  if (x->dynamic_dim0 || y->dynamic_dim0) ctx.fail("a dynamic dimension 0 is not supported");
  if (y->rank < x->rank) ctx.fail("output rank below the input's");
  for (int d = 0; d < x->rank; ++d) {
    const int64_t xd = x->static_shape[d], yd = y->static_shape[d + y->rank - x->rank];
    if (xd != yd && xd != 1) ctx.fail(shape_str(*x) + " does not broadcast to " + shape_str(*y));
  }
}

void expand_run(RunContext& ctx) {
  copy_mapped(ctx, false);
}

void tile_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  need_outputs(ctx, 1);
  Tensor* y = ctx.outputs[0];
  need_dtype(ctx, *y, x->dtype);
  if (x->dynamic_dim0) ctx.fail("a dynamic dimension 0 is not supported");
  const std::vector<int64_t> repeats = ctx.attrs->get_ints("repeats");
  if (static_cast<int>(repeats.size()) != x->rank) ctx.fail("repeats must have one value per dim");
  std::vector<int64_t> out;
  for (int d = 0; d < x->rank; ++d) out.push_back(x->static_shape[d] * repeats[d]);
  need_shape(ctx, *y, out);
}

void tile_run(RunContext& ctx) {
  copy_mapped(ctx, true);
}

void depth_space_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  need_outputs(ctx, 1);
  need_rank(ctx, *x, 4);
  need_dtype(ctx, *ctx.outputs[0], x->dtype);
  auto st = std::make_unique<LayoutState>();
  st->block = ctx.attrs->get_int("blocksize", 0);
  const int64_t b = st->block;
  if (b < 1) ctx.fail("blocksize must be >= 1");
  const int64_t n = x->static_shape[0], c = x->static_shape[1], h = x->static_shape[2],
                w = x->static_shape[3];
  if (ctx.op_type == "DepthToSpace") {
    const std::string mode = ctx.attrs->get_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD") ctx.fail("mode must be DCR or CRD");
    st->crd = mode == "CRD";
    if (c % (b * b)) ctx.fail("channels are not a multiple of blocksize^2");
    need_shape(ctx, *ctx.outputs[0], {n, c / (b * b), h * b, w * b});
  } else {
    if (h % b || w % b) ctx.fail("height and width must be multiples of blocksize");
    need_shape(ctx, *ctx.outputs[0], {n, c * b * b, h / b, w / b});
  }
  ctx.state = std::move(st);
}

void depth_space_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<LayoutState>();
  const int64_t b = st.block;
  const size_t es = dtype_size(x->dtype);
  const uint8_t* src = static_cast<const uint8_t*>(x->data);
  uint8_t* dst = static_cast<uint8_t*>(y->data);
  // Walk the space-side tensor (DepthToSpace: output, SpaceToDepth: input) and map to depth.
  const bool d2s = y->shape[2] > x->shape[2];
  const Tensor* space = d2s ? y : x;
  const Tensor* depth = d2s ? x : y;
  const int64_t n = space->shape[0], c = space->shape[1], hs = space->shape[2],
                ws = space->shape[3];
  const int64_t cd = depth->shape[1], hd = depth->shape[2], wd = depth->shape[3];
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t h = 0; h < hs; ++h)
        for (int64_t w = 0; w < ws; ++w) {
          const int64_t i = h % b, j = w % b;
          const int64_t dc = st.crd ? ic * b * b + i * b + j : (i * b + j) * c + ic;
          const int64_t so = ((in * c + ic) * hs + h) * ws + w;
          const int64_t dof = ((in * cd + dc) * hd + h / b) * wd + w / b;
          if (d2s)
            std::memcpy(dst + so * es, src + dof * es, es);
          else
            std::memcpy(dst + dof * es, src + so * es, es);
        }
}

void range_prepare(PrepareContext& ctx) {
  need_outputs(ctx, 1);
  Tensor* y = ctx.outputs[0];
  need_rank(ctx, *y, 1);
  auto st = std::make_unique<LayoutState>();
  st->start = ctx.attrs->get_float("start", 0.0f);
  st->delta = ctx.attrs->get_float("delta", 0.0f);
  st->start_i = ctx.attrs->get_int("start", 0);
  st->delta_i = ctx.attrs->get_int("delta", 0);
  if (y->dtype == DType::kBool || y->dtype == DType::kFloat16) ctx.fail("unsupported dtype");
  ctx.state = std::move(st);
}

void range_run(RunContext& ctx) {
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<LayoutState>();
  const int64_t n = y->numel();
  dispatch(y->dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = y->as<T>();
    if constexpr (std::is_floating_point<T>::value) {
      for (int64_t i = 0; i < n; ++i)
        p[i] = static_cast<T>(st.start + static_cast<double>(i) * st.delta);
    } else {
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(st.start_i + i * st.delta_i);
    }
  });
}

}  // namespace ops
}  // namespace edgepack
