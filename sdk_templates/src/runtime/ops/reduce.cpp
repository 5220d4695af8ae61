// SPDX-License-Identifier: Apache-2.0
// ReduceMean/Max/Min/Sum/Prod/L1/L2/SumSquare/LogSum/LogSumExp (axes resolved by lowering,
// keepdims, noop_with_empty_axes; accumulated in double) and ArgMax/ArgMin (int64 output,
// keepdims, select_last_index).
#include <limits>

#include "runtime/kernels/vector_math.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
enum class Red { kMean, kMax, kMin, kSum, kProd, kL1, kL2, kSumSquare, kLogSum, kLogSumExp };

struct ReduceState : OpState {
  bool reduced[kMaxRank] = {};
  Red op = Red::kMean;
  bool noop = false;  // empty axes with noop_with_empty_axes: a copy
  int64_t axis = 0;   // ArgMax/ArgMin
  bool last = false;
  bool min = false;
  // float32 ReduceMean / ReduceSum over the trailing dimensions only (a global average pool,
  // ShuffleNetV2's head: [1, 1024, 7, 7] over {2, 3}): GlobalAveragePool's kernels::row_sums_f32,
  // one vectorised float32 sum per contiguous run of `inner` values, instead of the element walk
  // accumulating in double (0.139 ms there, ~2.8 ns per value).
  int64_t suffix_inner = 0;  // 0: the general path
};

Red parse(const std::string& t) {
  static const struct {
    const char* name;
    Red op;
  } kTable[] = {{"ReduceMean", Red::kMean},     {"ReduceMax", Red::kMax},
                {"ReduceMin", Red::kMin},       {"ReduceSum", Red::kSum},
                {"ReduceProd", Red::kProd},     {"ReduceL1", Red::kL1},
                {"ReduceL2", Red::kL2},         {"ReduceSumSquare", Red::kSumSquare},
                {"ReduceLogSum", Red::kLogSum}, {"ReduceLogSumExp", Red::kLogSumExp}};
  for (const auto& e : kTable)
    if (t == e.name) return e.op;
  return Red::kMean;
}

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

template <class T>
void reduce_typed(const Tensor& x, Tensor& y, const ReduceState& st, double* acc) {
  const T* px = x.as<T>();
  T* py = y.as<T>();
  const int64_t on = y.numel();
  const Red op = st.op;
  double init = 0.0;
  if (op == Red::kMax)
    init = -INFINITY;
  else if (op == Red::kMin)
    init = INFINITY;
  else if (op == Red::kProd)
    init = 1.0;
  if constexpr (std::is_integral<T>::value) {
    if (op == Red::kMax) init = static_cast<double>(std::numeric_limits<T>::lowest());
    if (op == Red::kMin) init = static_cast<double>(std::numeric_limits<T>::max());
  }
  for (int64_t i = 0; i < on; ++i) acc[i] = init;
  if (op == Red::kLogSumExp) {  // subtract the per-output max first (acc[on..2on))
    for (int64_t i = 0; i < on; ++i) acc[on + i] = -INFINITY;
    for_each_reduce(x, st.reduced, [&](int64_t i, int64_t o) {
      acc[on + o] = std::max(acc[on + o], static_cast<double>(px[i]));
    });
  }
  for_each_reduce(x, st.reduced, [&](int64_t i, int64_t o) {
    const double v = static_cast<double>(px[i]);
    switch (op) {
      case Red::kMean:
      case Red::kSum:
      case Red::kLogSum:
        acc[o] += v;
        break;
      case Red::kMax:
        acc[o] = v > acc[o] || std::isnan(v) ? v : acc[o];
        break;
      case Red::kMin:
        acc[o] = v < acc[o] || std::isnan(v) ? v : acc[o];
        break;
      case Red::kProd:
        acc[o] *= v;
        break;
      case Red::kL1:
        acc[o] += v < 0 ? -v : v;
        break;
      case Red::kL2:
      case Red::kSumSquare:
        acc[o] += v * v;
        break;
      case Red::kLogSumExp:
        acc[o] += std::exp(v - acc[on + o]);
        break;
    }
  });
  const double count = on ? static_cast<double>(x.numel() / on) : 1.0;
  for (int64_t i = 0; i < on; ++i) {
    double v = acc[i];
    if (op == Red::kMean)
      v /= count;
    else if (op == Red::kL2)
      v = std::sqrt(v);
    else if (op == Red::kLogSum)
      v = std::log(v);
    else if (op == Red::kLogSumExp)
      v = std::log(v) + acc[on + i];
    if constexpr (std::is_integral<T>::value) {
      if (op == Red::kMean) v = std::trunc(v);
    }
    py[i] = static_cast<T>(v);
  }
}
}  // namespace

void reduce_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  need_outputs(ctx, 1);
  auto st = std::make_unique<ReduceState>();
  st->op = parse(ctx.op_type);
  const bool int_ok = st->op == Red::kMax || st->op == Red::kMin || st->op == Red::kSum ||
                      st->op == Red::kProd || st->op == Red::kMean || st->op == Red::kL1 ||
                      st->op == Red::kSumSquare;
  const DType t = x->dtype;
  const bool is_int =
      t == DType::kInt32 || t == DType::kInt64 || t == DType::kUInt8 || t == DType::kInt8;
  const bool bool_ok = t == DType::kBool && (st->op == Red::kMax || st->op == Red::kMin);
  if (t != DType::kFloat32 && t != DType::kFloat64 && !(is_int && int_ok) && !bool_ok)
    ctx.fail(std::string("unsupported dtype ") + dtype_name(t));
  need_dtype(ctx, *ctx.outputs[0], t);
  std::vector<int64_t> axes = ctx.attrs->get_ints("axes");
  st->noop = axes.empty() && ctx.attrs->get_int("noop_with_empty_axes", 0) != 0;
  if (axes.empty() && !st->noop)
    for (int d = 0; d < x->rank; ++d) axes.push_back(d);
  for (int64_t a : axes) st->reduced[norm_axis(ctx, a, x->rank)] = true;
  if (x->dynamic_dim0 && st->reduced[0]) ctx.fail("cannot reduce a dynamic dimension 0");
  const bool keep = ctx.attrs->get_int("keepdims", 1) != 0;
  std::vector<int64_t> out;
  int64_t on = 1;
  for (int d = 0; d < x->rank; ++d)
    if (!st->reduced[d]) {
      out.push_back(x->static_shape[d]);
      on *= x->static_shape[d];
    } else if (keep)
      out.push_back(1);
  need_shape(ctx, *ctx.outputs[0], out);
  ctx.scratch_bytes = static_cast<size_t>(2 * on) * sizeof(double);
  int first = x->rank;  // the first of the reduced trailing dimensions
  while (first > 0 && st->reduced[first - 1]) --first;
  bool suffix = first < x->rank && !st->noop;
  for (int d = 0; d < first; ++d) suffix = suffix && !st->reduced[d];
  if (suffix && t == DType::kFloat32 && (st->op == Red::kMean || st->op == Red::kSum)) {
    st->suffix_inner = 1;  // (an empty run, 0, takes the general path)
    for (int d = first; d < x->rank; ++d) st->suffix_inner *= x->static_shape[d];
  }
  ctx.state = std::move(st);
}

void reduce_run(RunContext& ctx) {
  const Tensor* x = ctx.input(0);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<ReduceState>();
  if (st.noop) {
    std::memcpy(y->data, x->data, x->bytes());
    return;
  }
  if (st.suffix_inner > 0) {
    const int64_t inner = st.suffix_inner;
    kernels::row_sums_f32(x->as<float>(), x->numel() / inner, inner,
                          st.op == Red::kMean ? static_cast<float>(inner) : 1.0f, y->as<float>(),
                          ctx.pool);
    return;
  }
  double* acc = static_cast<double*>(ctx.scratch);
  dispatch(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    reduce_typed<T>(*x, *y, st, acc);
  });
}

void argmax_prepare(PrepareContext& ctx) {
  Tensor* x = need_input(ctx, 0, "data");
  need_outputs(ctx, 1);
  if (x->dtype == DType::kBool || x->dtype == DType::kFloat16) ctx.fail("unsupported dtype");
  need_dtype(ctx, *ctx.outputs[0], DType::kInt64);
  auto st = std::make_unique<ReduceState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", 0), x->rank);
  st->last = ctx.attrs->get_int("select_last_index", 0) != 0;
  st->min = ctx.op_type == "ArgMin";
  // Along a dynamic dim 0 the index is taken over the actual rows and the output is static
  // (a detection post uses this to count the rows NonMaxSuppression kept).
  const bool keep = ctx.attrs->get_int("keepdims", 1) != 0;
  std::vector<int64_t> out;
  for (int d = 0; d < x->rank; ++d)
    if (d != st->axis)
      out.push_back(x->static_shape[d]);
    else if (keep)
      out.push_back(1);
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
  if (n == 0)
    throw Error(ErrorCode::kRuntimeError, std::string("ArgMax: no rows in ") + ctx.node_name);
  int64_t* py = y->as<int64_t>();
  dispatch(x->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x->as<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* s = px + o * n * inner + i;
        int64_t best = 0;
        for (int64_t k = 1; k < n; ++k) {
          const T v = s[k * inner], b = s[best * inner];
          if ((st.min ? v < b : v > b) || (st.last && v == b)) best = k;
        }
        py[o * inner + i] = best;
      }
  });
}

}  // namespace ops
}  // namespace edgepack
