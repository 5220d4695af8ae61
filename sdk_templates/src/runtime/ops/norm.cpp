// SPDX-License-Identifier: Apache-2.0
// LayerNormalization (opset 17: normalise over dims [axis, rank), optional Mean and InvStdDev
// outputs) and InstanceNormalization (per sample and channel over the spatial dims), float32.
// LayerNorm rows with dense scale/bias run kernels::layernorm_row_f32 (vectorised, float lanes);
// the broadcast forms and InstanceNorm accumulate in double.
#include <algorithm>
#include <string>

#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct NormState : OpState {
  int64_t axis = 0;
  float eps = 1e-5f;
};

// Broadcast strides of `t` (rank <= out_rank, right-aligned) over the normalised block
// [axis, out_rank): per-dim strides, 0 where broadcast.
bool block_strides(const Tensor& t, int rank, int64_t axis, const int64_t* shape,
                   int64_t* strides) {
  const int off = rank - t.rank;
  int64_t s = 1;
  for (int d = rank - 1; d >= axis; --d) {
    const int td = d - off;
    const int64_t dim = td >= 0 ? t.static_shape[td] : 1;
    if (dim != 1 && dim != shape[d]) return false;
    strides[d] = dim == 1 ? 0 : s;
    s *= dim;
  }
  for (int td = 0; td < t.rank && td + off < axis; ++td)
    if (t.static_shape[td] != 1) return false;  // scale/bias vary only inside the block
  return true;
}

struct LayerNormState : NormState {
  int64_t s_stride[kMaxRank] = {}, b_stride[kMaxRank] = {};
  int rank = 0;
  bool simple = false;          // scale/bias are dense over the block (the common case)
  bool channels_first = false;  // over dim 1 only, per position (see layernorm_prepare)
};
}  // namespace

void layernorm_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  Tensor* scale = need_input(ctx, 1, "Scale");
  Tensor* bias = ctx.input(2);
  need_dtype(ctx, *x, DType::kFloat32);
  need_dtype(ctx, *scale, DType::kFloat32);
  if (bias) need_dtype(ctx, *bias, DType::kFloat32);
  if (ctx.outputs.empty() || ctx.outputs.size() > 3) ctx.fail("expected 1 to 3 outputs");
  auto st = std::make_unique<LayerNormState>();
  st->rank = x->rank;
  st->eps = ctx.attrs->get_float("epsilon", 1e-5f);
  // channels_first = 1 (lowering's fusion of Transpose(0, 2, .., 1) -> LayerNorm(last axis) ->
  // Transpose back): X stays channels-first and each position is normalised across dim 1;
  // Scale and B hold one value per channel.
  if (ctx.attrs->get_int("channels_first", 0) != 0) {
    if (x->rank < 2 || x->dynamic_dim0) ctx.fail("channels_first needs a static X of rank >= 2");
    if (ctx.outputs.size() != 1) ctx.fail("channels_first has one output");
    const int64_t c = x->static_shape[1];
    if (scale->static_numel() != c || (bias && bias->static_numel() != c))
      ctx.fail("channels_first: Scale/B need " + std::to_string(c) + " values (dim 1 of X)");
    st->channels_first = true;
    st->axis = 1;
    need_shape(ctx, *ctx.outputs[0], x->static_dims());
    ctx.state = std::move(st);
    return;
  }
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", -1), x->rank);
  if (x->dynamic_dim0 && st->axis == 0) ctx.fail("cannot normalise over a dynamic dimension 0");
  if (!block_strides(*scale, x->rank, st->axis, x->static_shape, st->s_stride) ||
      (bias && !block_strides(*bias, x->rank, st->axis, x->static_shape, st->b_stride)))
    ctx.fail("Scale/B do not broadcast over the normalised dimensions of " + shape_str(*x));
  int64_t block = 1;
  for (int d = static_cast<int>(st->axis); d < x->rank; ++d) block *= x->static_shape[d];
  st->simple = scale->static_numel() == block && (!bias || bias->static_numel() == block);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  std::vector<int64_t> stat = x->static_dims();
  for (int d = static_cast<int>(st->axis); d < x->rank; ++d) stat[d] = 1;
  for (size_t k = 1; k < ctx.outputs.size(); ++k)
    if (ctx.outputs[k]) {
      need_dtype(ctx, *ctx.outputs[k], DType::kFloat32);
      need_shape(ctx, *ctx.outputs[k], stat);
    }
  ctx.state = std::move(st);
}

void layernorm_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const Tensor* scale = ctx.input(1);
  const Tensor* bias = ctx.input(2);
  const auto& st = *ctx.state_as<LayerNormState>();
  int64_t outer = 1, block = 1;
  for (int d = 0; d < st.axis; ++d) outer *= x->shape[d];
  for (int d = static_cast<int>(st.axis); d < x->rank; ++d) block *= x->shape[d];
  const float* px = x->as<float>();
  float* py = ctx.output(0)->as<float>();
  float* mean_out = ctx.outputs->size() > 1 && ctx.output(1) ? ctx.output(1)->as<float>() : nullptr;
  float* inv_out = ctx.outputs->size() > 2 && ctx.output(2) ? ctx.output(2)->as<float>() : nullptr;
  const float* ps = scale->as<float>();
  const float* pb = bias ? bias->as<float>() : nullptr;
  if (st.channels_first) {
    const int64_t n = x->shape[0], c = x->shape[1], plane = block / c;
    // Positions in pieces of 128 per image: each piece reads its columns of every channel.
    const int64_t pieces = (plane + 127) / 128;
    parallel(pool_for(ctx.pool, 8.0 * static_cast<double>(n * block)), n * pieces,
             [&](int64_t t0, int64_t t1) {
               for (int64_t t = t0; t < t1; ++t) {
                 const int64_t b = t / pieces, p0 = (t % pieces) * 128;
                 kernels::layernorm_channels_f32(px + b * block, py + b * block, c, plane, p0,
                                                 std::min(plane, p0 + 128), ps, pb, st.eps);
               }
             });
    return;
  }
  if (st.simple) {
    parallel(pool_for(ctx.pool, 8.0 * static_cast<double>(outer * block)), outer,
             [&](int64_t o0, int64_t o1) {
               for (int64_t o = o0; o < o1; ++o)
                 kernels::layernorm_row_f32(px + o * block, py + o * block, block, ps, pb, st.eps,
                                            mean_out ? mean_out + o : nullptr,
                                            inv_out ? inv_out + o : nullptr);
             });
    return;
  }
  parallel(ctx.pool, outer, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const float* s = px + o * block;
      float* d = py + o * block;
      double sum = 0.0, sq = 0.0;
      for (int64_t i = 0; i < block; ++i) sum += s[i];
      const double mean = sum / static_cast<double>(block);
      for (int64_t i = 0; i < block; ++i) sq += (s[i] - mean) * (s[i] - mean);
      const float inv =
          static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(block) + st.eps));
      const float m = static_cast<float>(mean);
      if (mean_out) mean_out[o] = m;
      if (inv_out) inv_out[o] = inv;
      int64_t idx[kMaxRank] = {};
      int64_t so = 0, bo = 0;
      for (int64_t i = 0; i < block; ++i) {
        d[i] = (s[i] - m) * inv * ps[so] + (pb ? pb[bo] : 0.0f);
        for (int dd = st.rank - 1; dd >= st.axis; --dd) {
          ++idx[dd];
          so += st.s_stride[dd];
          bo += st.b_stride[dd];
          if (idx[dd] < x->shape[dd]) break;
          so -= st.s_stride[dd] * x->shape[dd];
          bo -= st.b_stride[dd] * x->shape[dd];
          idx[dd] = 0;
        }
      }
    }
  });
}

void instancenorm_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  Tensor* scale = need_input(ctx, 1, "scale");
  Tensor* bias = need_input(ctx, 2, "B");
  need_outputs(ctx, 1);
  need_dtype(ctx, *x, DType::kFloat32);
  if (x->rank < 3) ctx.fail("input needs rank >= 3 (N, C, spatial...)");
  for (const Tensor* t : {scale, bias}) {
    need_dtype(ctx, *t, DType::kFloat32);
    if (t->rank != 1 || t->static_shape[0] != x->static_shape[1])
      ctx.fail("scale and B must have shape [C]");
  }
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<NormState>();
  st->eps = ctx.attrs->get_float("epsilon", 1e-5f);
  ctx.state = std::move(st);
}

void instancenorm_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const float* ps = ctx.input(1)->as<float>();
  const float* pb = ctx.input(2)->as<float>();
  const float eps = ctx.state_as<NormState>()->eps;
  const int64_t n = x->shape[0], c = x->shape[1];
  int64_t inner = 1;
  for (int d = 2; d < x->rank; ++d) inner *= x->shape[d];
  const float* px = x->as<float>();
  float* py = ctx.output(0)->as<float>();
  parallel(ctx.pool, n * c, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* s = px + r * inner;
      float* d = py + r * inner;
      double sum = 0.0, sq = 0.0;
      for (int64_t i = 0; i < inner; ++i) sum += s[i];
      const double mean = sum / static_cast<double>(inner);
      for (int64_t i = 0; i < inner; ++i) sq += (s[i] - mean) * (s[i] - mean);
      const float inv = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(inner) + eps));
      const int64_t ch = r % c;
      const float a = ps[ch] * inv, b = pb[ch] - static_cast<float>(mean) * a;
      for (int64_t i = 0; i < inner; ++i) d[i] = s[i] * a + b;
    }
  });
}

}  // namespace ops
}  // namespace edgepack
