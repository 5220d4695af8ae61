// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the CPU op files: dtype dispatch, shape checks, broadcasting,
// fused activations, parallel loops.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/kernels/threadpool.h"
#include "runtime/op.h"

namespace edgepack {
namespace ops {

// Calls f(T{}) with T the C++ type of `t`.
template <class F>
void dispatch(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32:
      f(float{});
      return;
    case DType::kUInt8:
      f(uint8_t{});
      return;
    case DType::kInt32:
      f(int32_t{});
      return;
    case DType::kInt64:
      f(int64_t{});
      return;
    case DType::kBool:
      f(bool{});
      return;
    case DType::kInt8:
      f(int8_t{});
      return;
    case DType::kInt16:
      f(int16_t{});
      return;
    case DType::kUInt16:
      f(uint16_t{});
      return;
    case DType::kUInt32:
      f(uint32_t{});
      return;
    case DType::kUInt64:
      f(uint64_t{});
      return;
    case DType::kFloat64:
      f(double{});
      return;
    case DType::kFloat16:
      break;  // storage only: Cast converts it, data movement copies bytes
  }
  throw Error(ErrorCode::kInvalidArgument,
              std::string("no arithmetic on dtype ") + dtype_name(t) + " (cast it first)");
}

// IEEE half <-> float (round to nearest even), for Cast and float16 storage.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0)
      bits = sign;
    else {  // subnormal
      float f = std::ldexp(static_cast<float>(man), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31)
    bits = sign | 0x7f800000u | (man << 13);
  else
    bits = sign | ((exp + 112) << 23) | (man << 13);
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u)
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (ax < 0x38800000u) {  // subnormal or zero: scale into the integer range and round
    float a;
    std::memcpy(&a, &ax, 4);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f)));
  }
  const uint32_t man = ax & 0x7fffffu;
  uint32_t h = ((ax >> 23) - 112) << 10 | (man >> 13);
  const uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

inline std::string shape_str(const int64_t* s, int rank) {
  std::string out = "[";
  for (int i = 0; i < rank; ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
inline std::string shape_str(const Tensor& t) {
  return shape_str(t.static_shape, t.rank);
}

inline Tensor* need_input(PrepareContext& ctx, size_t i, const char* what) {
  Tensor* t = ctx.input(i);
  if (!t) ctx.fail(std::string("missing input ") + what);
  return t;
}
inline void need_dtype(PrepareContext& ctx, const Tensor& t, DType d) {
  if (t.dtype != d)
    ctx.fail("tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) + ", expected " +
             dtype_name(d));
}
inline void need_rank(PrepareContext& ctx, const Tensor& t, int rank) {
  if (t.rank != rank)
    ctx.fail("tensor '" + t.name + "' has rank " + std::to_string(t.rank) + ", expected " +
             std::to_string(rank));
}
inline void need_outputs(PrepareContext& ctx, size_t n) {
  if (ctx.outputs.size() != n)
    ctx.fail("expected " + std::to_string(n) + " output(s), got " +
             std::to_string(ctx.outputs.size()));
}
// Checks that `out` has the static shape `expect` (lowering and runtime agree on the op).
inline void need_shape(PrepareContext& ctx, const Tensor& out, const std::vector<int64_t>& expect) {
  bool ok = static_cast<int>(expect.size()) == out.rank;
  for (int i = 0; ok && i < out.rank; ++i) ok = expect[i] == out.static_shape[i];
  if (!ok)
    ctx.fail("output '" + out.name + "' has shape " + shape_str(out) + ", expected " +
             shape_str(expect.data(), static_cast<int>(expect.size())));
}

// Numpy-style broadcasting of the inputs to `out_rank` dims: per-input strides (0 where a dim
// is broadcast). Computed from actual shapes, so it works for dynamic dim 0.
struct Broadcast {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[3][kMaxRank] = {};
};

// Returns false when shapes are not broadcast-compatible.
inline bool make_broadcast(const Tensor* const* ins, int n, const int64_t* const* shapes,
                           Broadcast& b) {
  b.rank = 0;
  for (int k = 0; k < n; ++k) b.rank = std::max(b.rank, ins[k]->rank);
  for (int d = 0; d < b.rank; ++d) b.shape[d] = 1;
  for (int k = 0; k < n; ++k) {
    const int off = b.rank - ins[k]->rank;
    for (int d = 0; d < ins[k]->rank; ++d) {
      const int64_t s = shapes[k][d];
      int64_t& o = b.shape[off + d];
      if (s == o || s == 1) continue;
      if (o != 1) return false;
      o = s;
    }
  }
  for (int k = 0; k < n; ++k) {
    const int off = b.rank - ins[k]->rank;
    int64_t stride = 1;
    for (int d = b.rank - 1; d >= 0; --d) {
      const int64_t s = d >= off ? shapes[k][d - off] : 1;
      b.strides[k][d] = s == 1 ? 0 : stride;
      stride *= s;
    }
  }
  return true;
}

// Iterates over every element of the broadcast shape calling f(out_index, off0, off1, off2).
template <class F>
void for_each_broadcast(const Broadcast& b, int n, F&& f) {
  int64_t total = 1;
  for (int d = 0; d < b.rank; ++d) total *= b.shape[d];
  if (total == 0) return;
  int64_t idx[kMaxRank] = {};
  int64_t off[3] = {0, 0, 0};
  const int last = b.rank - 1;
  for (int64_t i = 0; i < total;) {
    // Inner dimension as a tight loop.
    const int64_t inner = b.rank ? b.shape[last] : 1;
    const int64_t s0 = b.rank ? b.strides[0][last] : 0, s1 = b.rank ? b.strides[1][last] : 0,
                  s2 = b.rank ? b.strides[2][last] : 0;
    for (int64_t j = 0; j < inner; ++j) f(i + j, off[0] + j * s0, off[1] + j * s1, off[2] + j * s2);
    i += inner;
    for (int d = last - 1; d >= 0; --d) {
      ++idx[d];
      for (int k = 0; k < n; ++k) off[k] += b.strides[k][d];
      if (idx[d] < b.shape[d]) break;
      for (int k = 0; k < n; ++k) off[k] -= b.strides[k][d] * b.shape[d];
      idx[d] = 0;
    }
  }
}

// Fused activation attributes ("activation", "activation_min", "activation_max").
struct FusedActivation {
  enum Kind { kNone, kRelu, kClip, kHardSwish, kHardSigmoid, kSilu, kGelu } kind = kNone;
  float lo = 0.0f, hi = 0.0f;
  float alpha = 0.2f, beta = 0.5f;  // kHardSigmoid
  float apply(float x) const {
    switch (kind) {
      case kNone:
        return x;
      case kRelu:
        return x > 0.0f ? x : 0.0f;
      case kClip:
        return std::min(std::max(x, lo), hi);
      case kHardSwish:
        return x * std::min(std::max(x / 6.0f + 0.5f, 0.0f), 1.0f);
      case kHardSigmoid:
        return std::min(std::max(alpha * x + beta, 0.0f), 1.0f);
      case kSilu:
        return x / (1.0f + std::exp(-x));
      case kGelu:
        return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    }
    return x;
  }
};
inline FusedActivation read_activation(PrepareContext& ctx) {
  FusedActivation a;
  const std::string s = ctx.attrs->get_string("activation", "");
  if (s.empty()) return a;
  if (s == "Relu")
    a.kind = FusedActivation::kRelu;
  else if (s == "HardSwish")
    a.kind = FusedActivation::kHardSwish;
  else if (s == "Silu")
    a.kind = FusedActivation::kSilu;
  else if (s == "Gelu")
    a.kind = FusedActivation::kGelu;
  else if (s == "HardSigmoid") {
    a.kind = FusedActivation::kHardSigmoid;
    a.alpha = ctx.attrs->get_float("activation_alpha", 0.2f);
    a.beta = ctx.attrs->get_float("activation_beta", 0.5f);
  } else if (s == "Clip") {
    a.kind = FusedActivation::kClip;
    a.lo = ctx.attrs->get_float("activation_min", -INFINITY);
    a.hi = ctx.attrs->get_float("activation_max", INFINITY);
  } else
    ctx.fail("unknown fused activation '" + s + "'");
  return a;
}

// Runs f(begin, end) over [0, n) on the pool when there is one.
template <class F>
void parallel(ThreadPool* pool, int64_t n, F&& f) {
  if (pool)
    pool->parallel_for(n, f);
  else
    f(int64_t{0}, n);
}

// Normalises a possibly negative axis (lowering already does this; kept for robustness).
inline int64_t norm_axis(PrepareContext& ctx, int64_t axis, int rank) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= std::max(rank, 1)) ctx.fail("axis " + std::to_string(axis) + " out of range");
  return a;
}

}  // namespace ops
}  // namespace edgepack
