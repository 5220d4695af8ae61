// SPDX-License-Identifier: Apache-2.0
// Index-driven data movement: GatherElements, GatherND, ScatterND, ScatterElements (any dtype,
// int32/int64 indices, negative indices wrap, out-of-range indices are a run-time error).
#include <limits>

#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

struct IndexState : OpState {
  int64_t axis = 0;
  int64_t batch_dims = 0;
  Reduction reduction = Reduction::kNone;
};

bool is_index(DType t) {
  return t == DType::kInt32 || t == DType::kInt64;
}

int64_t index_at(const Tensor& t, int64_t i) {
  return t.dtype == DType::kInt64 ? t.as<int64_t>()[i] : t.as<int32_t>()[i];
}

[[noreturn]] void out_of_range(const char* node, int64_t v) {
  throw Error(ErrorCode::kRuntimeError,
              std::string("index ") + std::to_string(v) + " out of range in " + node);
}

int64_t wrap(int64_t v, int64_t dim, const char* node) {
  const int64_t w = v < 0 ? v + dim : v;
  if (w < 0 || w >= dim) out_of_range(node, v);
  return w;
}

Reduction parse_reduction(PrepareContext& ctx) {
  const std::string r = ctx.attrs->get_string("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (r == "add") return Reduction::kAdd;
  if (r == "mul") return Reduction::kMul;
  if (r == "max") return Reduction::kMax;
  if (r == "min") return Reduction::kMin;
  ctx.fail("unknown reduction '" + r + "'");
}

template <class T>
void combine(Reduction r, T& dst, T v) {
  switch (r) {
    case Reduction::kNone:
      dst = v;
      break;
    case Reduction::kAdd:
      dst = static_cast<T>(dst + v);
      break;
    case Reduction::kMul:
      dst = static_cast<T>(dst * v);
      break;
    case Reduction::kMax:
      dst = dst < v ? v : dst;
      break;
    case Reduction::kMin:
      dst = v < dst ? v : dst;
      break;
  }
}

void strides_of(const int64_t* shape, int rank, int64_t* strides) {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    strides[d] = s;
    s *= shape[d];
  }
}
}  // namespace

// ---- GatherElements / ScatterElements -------------------------------------------------------
void gather_elements_prepare(PrepareContext& ctx) {
  Tensor* data = need_input(ctx, 0, "data");
  Tensor* idx = need_input(ctx, 1, "indices");
  need_outputs(ctx, 1);
  if (!is_index(idx->dtype)) ctx.fail("indices must be int32 or int64");
  if (idx->rank != data->rank) ctx.fail("indices and data ranks differ");
  need_dtype(ctx, *ctx.outputs[0], data->dtype);
  need_shape(ctx, *ctx.outputs[0], idx->static_dims());
  auto st = std::make_unique<IndexState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", 0), data->rank);
  ctx.state = std::move(st);
}

void gather_elements_run(RunContext& ctx) {
  const Tensor* data = ctx.input(0);
  const Tensor* idx = ctx.input(1);
  Tensor* y = ctx.output(0);
  const int64_t axis = ctx.state_as<IndexState>()->axis;
  int64_t ds[kMaxRank];
  strides_of(data->shape, data->rank, ds);
  const int64_t n = idx->numel();
  const size_t es = dtype_size(data->dtype);
  const uint8_t* src = static_cast<const uint8_t*>(data->data);
  uint8_t* dst = static_cast<uint8_t*>(y->data);
  int64_t pos[kMaxRank] = {};
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int d = 0; d < idx->rank; ++d)
      off += (d == axis ? wrap(index_at(*idx, i), data->shape[d], ctx.node_name) : pos[d]) * ds[d];
    std::memcpy(dst + i * es, src + off * es, es);
    for (int d = idx->rank - 1; d >= 0; --d) {
      if (++pos[d] < idx->shape[d]) break;
      pos[d] = 0;
    }
  }
}

void scatter_elements_prepare(PrepareContext& ctx) {
  Tensor* data = need_input(ctx, 0, "data");
  Tensor* idx = need_input(ctx, 1, "indices");
  Tensor* upd = need_input(ctx, 2, "updates");
  need_outputs(ctx, 1);
  if (!is_index(idx->dtype)) ctx.fail("indices must be int32 or int64");
  if (idx->rank != data->rank || upd->static_dims() != idx->static_dims())
    ctx.fail("indices and updates must have data's rank and one shape");
  if (upd->dtype != data->dtype || data->dtype == DType::kFloat16 || data->dtype == DType::kBool)
    ctx.fail("updates must have data's dtype (numeric, not float16)");
  need_dtype(ctx, *ctx.outputs[0], data->dtype);
  need_shape(ctx, *ctx.outputs[0], data->static_dims());
  auto st = std::make_unique<IndexState>();
  st->axis = norm_axis(ctx, ctx.attrs->get_int("axis", 0), data->rank);
  st->reduction = parse_reduction(ctx);
  ctx.state = std::move(st);
}

void scatter_elements_run(RunContext& ctx) {
  const Tensor* data = ctx.input(0);
  const Tensor* idx = ctx.input(1);
  const Tensor* upd = ctx.input(2);
  Tensor* y = ctx.output(0);
  const auto& st = *ctx.state_as<IndexState>();
  std::memcpy(y->data, data->data, data->bytes());
  int64_t ds[kMaxRank];
  strides_of(data->shape, data->rank, ds);
  const int64_t n = idx->numel();
  dispatch(data->dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same<T, bool>::value) {
      const T* pu = upd->as<T>();
      T* py = y->as<T>();
      int64_t pos[kMaxRank] = {};
      for (int64_t i = 0; i < n; ++i) {
        int64_t off = 0;
        for (int d = 0; d < idx->rank; ++d)
          off += (d == st.axis ? wrap(index_at(*idx, i), data->shape[d], ctx.node_name) : pos[d]) *
                 ds[d];
        combine(st.reduction, py[off], pu[i]);
        for (int d = idx->rank - 1; d >= 0; --d) {
          if (++pos[d] < idx->shape[d]) break;
          pos[d] = 0;
        }
      }
    }
  });
}

// ---- GatherND / ScatterND -------------------------------------------------------------------
void gather_nd_prepare(PrepareContext& ctx) {
  Tensor* data = need_input(ctx, 0, "data");
  Tensor* idx = need_input(ctx, 1, "indices");
  need_outputs(ctx, 1);
  if (idx->dtype != DType::kInt64) ctx.fail("indices must be int64");
  auto st = std::make_unique<IndexState>();
  st->batch_dims = ctx.attrs->get_int("batch_dims", 0);
  const int64_t b = st->batch_dims;
  if (idx->rank < 1 || b < 0 || b >= std::min(data->rank, idx->rank)) ctx.fail("bad batch_dims");
  const int64_t k = idx->static_shape[idx->rank - 1];
  if (k < 1 || b + k > data->rank) ctx.fail("indices' last dimension exceeds data's rank");
  for (int d = 0; d < b; ++d)
    if (idx->static_shape[d] != data->static_shape[d]) ctx.fail("batch dimensions differ");
  std::vector<int64_t> out(idx->static_shape, idx->static_shape + idx->rank - 1);
  for (int d = static_cast<int>(b + k); d < data->rank; ++d) out.push_back(data->static_shape[d]);
  need_dtype(ctx, *ctx.outputs[0], data->dtype);
  need_shape(ctx, *ctx.outputs[0], out);
  ctx.state = std::move(st);
}

namespace {
// Calls f(tuple_index, data_offset_in_elements) for every index tuple of GatherND/ScatterND.
template <class F>
void for_each_tuple(const Tensor& data, const Tensor& idx, int64_t b, const char* node,
                    int64_t& slice, F&& f) {
  const int64_t k = idx.shape[idx.rank - 1];
  int64_t ds[kMaxRank];
  strides_of(data.shape, data.rank, ds);
  slice = 1;
  for (int d = static_cast<int>(b + k); d < data.rank; ++d) slice *= data.shape[d];
  int64_t batches = 1;
  for (int d = 0; d < b; ++d) batches *= idx.shape[d];
  const int64_t tuples = idx.numel() / k;
  const int64_t per_batch = batches ? tuples / batches : 0;
  const int64_t* pi = idx.as<int64_t>();
  for (int64_t t = 0; t < tuples; ++t) {
    const int64_t batch = per_batch ? t / per_batch : 0;
    int64_t off = 0, rem = batch;
    for (int d = static_cast<int>(b) - 1; d >= 0; --d) {
      off += (rem % data.shape[d]) * ds[d];
      rem /= data.shape[d];
    }
    for (int64_t j = 0; j < k; ++j) off += wrap(pi[t * k + j], data.shape[b + j], node) * ds[b + j];
    f(t, off);
  }
}
}  // namespace

void gather_nd_run(RunContext& ctx) {
  const Tensor* data = ctx.input(0);
  const Tensor* idx = ctx.input(1);
  Tensor* y = ctx.output(0);
  const size_t es = dtype_size(data->dtype);
  const uint8_t* src = static_cast<const uint8_t*>(data->data);
  uint8_t* dst = static_cast<uint8_t*>(y->data);
  int64_t slice = 1;
  for_each_tuple(*data, *idx, ctx.state_as<IndexState>()->batch_dims, ctx.node_name, slice,
                 [&](int64_t t, int64_t off) {
                   std::memcpy(dst + t * slice * es, src + off * es, slice * es);
                 });
}

void scatter_nd_prepare(PrepareContext& ctx) {
  Tensor* data = need_input(ctx, 0, "data");
  Tensor* idx = need_input(ctx, 1, "indices");
  Tensor* upd = need_input(ctx, 2, "updates");
  need_outputs(ctx, 1);
  if (idx->dtype != DType::kInt64) ctx.fail("indices must be int64");
  if (upd->dtype != data->dtype || data->dtype == DType::kFloat16)
    ctx.fail("updates must have data's dtype (not float16)");
  const int64_t k = idx->rank ? idx->static_shape[idx->rank - 1] : 0;
  if (k < 1 || k > data->rank) ctx.fail("indices' last dimension exceeds data's rank");
  std::vector<int64_t> ushape(idx->static_shape, idx->static_shape + idx->rank - 1);
  for (int d = static_cast<int>(k); d < data->rank; ++d) ushape.push_back(data->static_shape[d]);
  if (upd->static_dims() != ushape) ctx.fail("updates shape does not match indices and data");
  need_dtype(ctx, *ctx.outputs[0], data->dtype);
  need_shape(ctx, *ctx.outputs[0], data->static_dims());
  auto st = std::make_unique<IndexState>();
  st->reduction = parse_reduction(ctx);
  if (st->reduction != Reduction::kNone && data->dtype == DType::kBool)
    ctx.fail("a reduction on bool");
  ctx.state = std::move(st);
}

void scatter_nd_run(RunContext& ctx) {
  const Tensor* data = ctx.input(0);
  const Tensor* idx = ctx.input(1);
  const Tensor* upd = ctx.input(2);
  Tensor* y = ctx.output(0);
  const Reduction r = ctx.state_as<IndexState>()->reduction;
  std::memcpy(y->data, data->data, data->bytes());
  dispatch(data->dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pu = upd->as<T>();
    T* py = y->as<T>();
    int64_t slice = 1;
    for_each_tuple(*data, *idx, 0, ctx.node_name, slice, [&](int64_t t, int64_t off) {
      for (int64_t j = 0; j < slice; ++j) {
        if constexpr (std::is_same<T, bool>::value)
          py[off + j] = pu[t * slice + j];
        else
          combine(r, py[off + j], pu[t * slice + j]);
      }
    });
  });
}

}  // namespace ops
}  // namespace edgepack
