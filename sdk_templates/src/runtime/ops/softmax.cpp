// SPDX-License-Identifier: Apache-2.0
// Softmax, LogSoftmax and Hardmax (opset 13+: along one axis) and BatchNormalization (inference
// form).
#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct AxisState : OpState {
  int64_t axis = -1;
  bool log = false;  // LogSoftmax
};
struct BatchNormState : OpState {
  std::vector<float> scale, shift;  // inference: y = x * scale[c] + shift[c]
  float eps = 1e-5f, momentum = 0.9f;
  bool training = false;  // training_mode=1: batch statistics, running outputs
};
}  // namespace

void softmax_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  need_outputs(ctx, 1);
  need_dtype(ctx, *x, DType::kFloat32);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<AxisState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", -1), x->rank);
  st->log = ctx.op_type == "LogSoftmax";
  ctx.state = std::move(st);
}

void softmax_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const int64_t axis = ctx.state_as<AxisState>()->axis;
  const bool log = ctx.state_as<AxisState>()->log;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x->shape[d];
  for (int d = static_cast<int>(axis) + 1; d < x->rank; ++d) inner *= x->shape[d];
  const int64_t n = x->shape[axis];
  const float* px = x->as<float>();
  float* py = ctx.output(0)->as<float>();
  if (inner == 1 && !log) {  // the last axis (attention): contiguous rows, vectorised exp
    parallel(ctx.pool, outer, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        kernels::softmax_row_f32(px + o * n, py + o * n, n);
      }
    });
    return;
  }
  if (!log) {  // a strided axis (YOLO's DFL: 16 bins x 8400 anchors): column tiles
    const int64_t tiles_per_outer =
        (inner + kernels::kSoftmaxColumns - 1) / kernels::kSoftmaxColumns;
    // ~20 operations per element (exp_approx, max, sum, scale)
    ThreadPool* pool = pool_for(ctx.pool, 20.0 * static_cast<double>(outer * n * inner));
    parallel(pool, outer * tiles_per_outer, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t o = t / tiles_per_outer,
                      c0 = (t % tiles_per_outer) * kernels::kSoftmaxColumns;
        const int64_t cols = std::min(kernels::kSoftmaxColumns, inner - c0);
        kernels::softmax_columns_f32(px + o * n * inner + c0, py + o * n * inner + c0, n, inner,
                                     cols);
      }
    });
    return;
  }
  parallel(ctx.pool, outer, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const float* s = px + o * n * inner + i;
        float* d = py + o * n * inner + i;
        float m = -INFINITY;
        for (int64_t k = 0; k < n; ++k) m = std::max(m, s[k * inner]);
        float sum = 0.0f;  // LogSoftmax: x - max - log(sum(exp(x - max)))
        for (int64_t k = 0; k < n; ++k) sum += std::exp(s[k * inner] - m);
        const float shift = m + std::log(sum);
        for (int64_t k = 0; k < n; ++k) d[k * inner] = s[k * inner] - shift;
      }
  });
}

void hardmax_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "input");
  need_outputs(ctx, 1);
  need_dtype(ctx, *x, DType::kFloat32);
  need_dtype(ctx, *ctx.outputs[0], DType::kFloat32);
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  auto st = std::make_unique<AxisState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", -1), x->rank);
  ctx.state = std::move(st);
}

void hardmax_run(RunContext& ctx) {  // 1 at the first maximum along axis, 0 elsewhere
  const Tensor* x = ctx.input(0);
  const int64_t axis = ctx.state_as<AxisState>()->axis;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x->shape[d];
  for (int d = static_cast<int>(axis) + 1; d < x->rank; ++d) inner *= x->shape[d];
  const int64_t n = x->shape[axis];
  const float* px = x->as<float>();
  float* py = ctx.output(0)->as<float>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* s = px + o * n * inner + i;
      float* d = py + o * n * inner + i;
      int64_t best = 0;
      for (int64_t k = 0; k < n; ++k) {
        if (s[k * inner] > s[best * inner]) best = k;
        d[k * inner] = 0.0f;
      }
      if (n) d[best * inner] = 1.0f;
    }
}

void batchnorm_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "X");
  if (x->rank < 2) ctx.fail("input needs rank >= 2");
  need_dtype(ctx, *x, DType::kFloat32);
  const int64_t c = x->static_shape[1];
  auto st = std::make_unique<BatchNormState>();
  st->eps = ctx.attrs->get_float("epsilon", 1e-5f);
  st->momentum = ctx.attrs->get_float("momentum", 0.9f);
  st->training = ctx.attrs->get_int("training_mode", 0) != 0;
  const Tensor* p[4];
  for (int k = 0; k < 4; ++k) {
    p[k] = need_input(ctx, 1 + k, "scale/B/mean/var");
    if (!p[k]->constant) ctx.fail("scale, B, mean and var must be constants");
    need_dtype(ctx, *p[k], DType::kFloat32);
    if (p[k]->static_numel() != c) ctx.fail("parameter size does not match the channel count");
  }
  if (ctx.outputs.empty() || ctx.outputs.size() > 3 || (!st->training && ctx.outputs.size() > 1))
    ctx.fail("expected Y (and in training mode optionally running_mean, running_var)");
  if (x->dynamic_dim0 && st->training) ctx.fail("training mode over a dynamic dimension 0");
  need_shape(ctx, *ctx.outputs[0], x->static_dims());
  for (size_t k = 1; k < ctx.outputs.size(); ++k) need_shape(ctx, *ctx.outputs[k], {c});
  st->scale.resize(c);
  st->shift.resize(c);
  for (int64_t i = 0; i < c; ++i) {
    const float s = p[0]->as<float>()[i] / std::sqrt(p[3]->as<float>()[i] + st->eps);
    st->scale[i] = s;
    st->shift[i] = p[1]->as<float>()[i] - p[2]->as<float>()[i] * s;
  }
  ctx.state = std::move(st);
}

void batchnorm_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  const auto* st = ctx.state_as<BatchNormState>();
  const int64_t n = x->shape[0], c = x->shape[1];
  int64_t inner = 1;
  for (int d = 2; d < x->rank; ++d) inner *= x->shape[d];
  const float* px = x->as<float>();
  float* py = ctx.output(0)->as<float>();
  for (int64_t ch = 0; ch < c; ++ch) {
    float s = st->scale[ch], t = st->shift[ch];
    if (st->training) {  // normalise with this batch's statistics (population variance)
      double sum = 0.0, sq = 0.0;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < inner; ++i) sum += px[(b * c + ch) * inner + i];
      const double count = static_cast<double>(n * inner), mean = sum / count;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < inner; ++i) {
          const double d = px[(b * c + ch) * inner + i] - mean;
          sq += d * d;
        }
      const double var = sq / count;
      const float gamma = ctx.input(1)->as<float>()[ch], beta = ctx.input(2)->as<float>()[ch];
      s = static_cast<float>(gamma / std::sqrt(var + st->eps));
      t = static_cast<float>(beta - mean * s);
      const float m = st->momentum;
      if (ctx.outputs->size() > 1 && ctx.output(1))
        ctx.output(1)->as<float>()[ch] =
            ctx.input(3)->as<float>()[ch] * m + static_cast<float>(mean) * (1.0f - m);
      if (ctx.outputs->size() > 2 && ctx.output(2))
        ctx.output(2)->as<float>()[ch] =
            ctx.input(4)->as<float>()[ch] * m + static_cast<float>(var) * (1.0f - m);
    }
    for (int64_t b = 0; b < n; ++b) {
      const float* src = px + (b * c + ch) * inner;
      float* dst = py + (b * c + ch) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] = src[i] * s + t;
    }
  }
}

}  // namespace ops
}  // namespace edgepack
