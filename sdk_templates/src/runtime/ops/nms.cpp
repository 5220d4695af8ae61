// SPDX-License-Identifier: Apache-2.0
// NonMaxSuppression (onnxruntime semantics): per batch and class, boxes with score above
// score_threshold, by descending score (lower index first on ties), greedily kept unless their
// IoU with a kept box exceeds iou_threshold, at most max_output_boxes_per_class. Output rows
// [batch, class, box] (int64), dim 0 dynamic with the bound from lowering.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
struct NmsState : OpState {
  int64_t per_class = 0;
  float iou = 0.0f, score = 0.0f;
  bool has_score = false, center = false;
};

struct Box {
  float y1, x1, y2, x2;
};

Box read_box(const float* b, bool center) {
  if (center) {
    const float xc = b[0], yc = b[1], w = b[2], h = b[3];
    return {yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2};
  }
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

bool suppresses(const Box& a, const Box& b, float threshold) {
  const float iy1 = std::max(a.y1, b.y1), ix1 = std::max(a.x1, b.x1);
  const float iy2 = std::min(a.y2, b.y2), ix2 = std::min(a.x2, b.x2);
  const float inter = std::max(iy2 - iy1, 0.0f) * std::max(ix2 - ix1, 0.0f);
  if (inter <= 0.0f) return false;
  const float area_a = (a.y2 - a.y1) * (a.x2 - a.x1), area_b = (b.y2 - b.y1) * (b.x2 - b.x1);
  const float uni = area_a + area_b - inter;
  if (area_a <= 0.0f || area_b <= 0.0f || uni <= 0.0f) return false;
  return inter / uni > threshold;
}
}  // namespace

void nms_prepare(PrepareContext& ctx) {
  Tensor* boxes = need_input(ctx, 0, "boxes");
  Tensor* scores = need_input(ctx, 1, "scores");
  need_outputs(ctx, 1);
  need_dtype(ctx, *boxes, DType::kFloat32);
  need_dtype(ctx, *scores, DType::kFloat32);
  need_rank(ctx, *boxes, 3);
  need_rank(ctx, *scores, 3);
  if (boxes->static_shape[2] != 4 || boxes->static_shape[0] != scores->static_shape[0] ||
      boxes->static_shape[1] != scores->static_shape[2])
    ctx.fail("boxes " + shape_str(*boxes) + " and scores " + shape_str(*scores) + " do not match");
  if (boxes->dynamic_dim0 || scores->dynamic_dim0) ctx.fail("inputs must have static shapes");
  Tensor* y = ctx.outputs[0];
  need_dtype(ctx, *y, DType::kInt64);
  need_rank(ctx, *y, 2);
  if (y->static_shape[1] != 3) ctx.fail("output must be [N, 3]");
  auto st = std::make_unique<NmsState>();
  st->per_class = ctx.attrs->get_int("max_output_boxes_per_class", 0);
  st->iou = ctx.attrs->get_float("iou_threshold", 0.0f);
  st->score = ctx.attrs->get_float("score_threshold", 0.0f);
  st->has_score = ctx.attrs->get_int("has_score_threshold", 0) != 0;
  st->center = ctx.attrs->get_int("center_point_box", 0) != 0;
  ctx.scratch_bytes = static_cast<size_t>(boxes->static_shape[1]) * 2 * sizeof(int64_t);
  ctx.state = std::move(st);
}

void nms_run(RunContext& ctx) {
  const Tensor* boxes = ctx.input(0);
  const Tensor* scores = ctx.input(1);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<NmsState>();
  const int64_t batch = boxes->shape[0], n = boxes->shape[1], classes = scores->shape[1];
  const int64_t bound = y->static_shape[0];
  int64_t* cand = static_cast<int64_t*>(ctx.scratch);
  int64_t* kept = cand + n;
  int64_t* out = y->as<int64_t>();
  int64_t rows = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < classes; ++c) {
      const float* sc = scores->as<float>() + (b * classes + c) * n;
      const float* bx = boxes->as<float>() + b * n * 4;
      int64_t m = 0;
      for (int64_t i = 0; i < n; ++i)
        if (!st.has_score || sc[i] > st.score) cand[m++] = i;
      // std::sort with an index tie-break: stable order without stable_sort's buffer allocation.
      std::sort(cand, cand + m,
                [&](int64_t a, int64_t d) { return sc[a] > sc[d] || (sc[a] == sc[d] && a < d); });
      int64_t nk = 0;
      for (int64_t j = 0; j < m && nk < st.per_class; ++j) {
        const Box cur = read_box(bx + cand[j] * 4, st.center);
        bool keep = true;
        for (int64_t q = 0; q < nk && keep; ++q)
          keep = !suppresses(read_box(bx + kept[q] * 4, st.center), cur, st.iou);
        if (!keep) continue;
        kept[nk++] = cand[j];
        if (rows < bound) {
          out[rows * 3] = b;
          out[rows * 3 + 1] = c;
          out[rows * 3 + 2] = cand[j];
          ++rows;
        }
      }
    }
  y->shape[0] = rows;
}

}  // namespace ops
}  // namespace edgepack
