// SPDX-License-Identifier: Apache-2.0
// Shared attribute parsing for Conv and ConvTranspose (1-D and 2-D, NCHW): kernel shape,
// strides, dilations, pads (auto_pad resolved), group, fused activation -> kernels::Epilogue.
#pragma once

#include <string>
#include <vector>

#include "runtime/kernels/activation.h"
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {

struct ConvAttrs {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t group = 1;
  std::string auto_pad;
};

// spatial = 1 (N, C, W) or 2 (N, C, H, W); 1-D is mapped to H = 1. wshape: weight dims 2.. .
inline ConvAttrs read_conv_attrs(PrepareContext& ctx, int spatial, const int64_t* wspatial) {
  ConvAttrs a;
  const auto ks = ctx.attrs->get_ints("kernel_shape", {wspatial, wspatial + spatial});
  const auto st = ctx.attrs->get_ints("strides", std::vector<int64_t>(spatial, 1));
  const auto di = ctx.attrs->get_ints("dilations", std::vector<int64_t>(spatial, 1));
  const auto pa = ctx.attrs->get_ints("pads", std::vector<int64_t>(2 * spatial, 0));
  if (static_cast<int>(ks.size()) != spatial || static_cast<int>(st.size()) != spatial ||
      static_cast<int>(di.size()) != spatial || static_cast<int>(pa.size()) != 2 * spatial)
    ctx.fail("kernel_shape/strides/dilations/pads do not match " + std::to_string(spatial) +
             " spatial dimension(s)");
  for (int i = 0; i < spatial; ++i)
    if (ks[i] != wspatial[i]) ctx.fail("kernel_shape does not match the weight shape");
  a.group = ctx.attrs->get_int("group", 1);
  a.auto_pad = ctx.attrs->get_string("auto_pad", "NOTSET");
  if (spatial == 2) {
    a.kh = ks[0];
    a.kw = ks[1];
    a.sh = st[0];
    a.sw = st[1];
    a.dh = di[0];
    a.dw = di[1];
    a.pt = pa[0];
    a.pl = pa[1];
    a.pb = pa[2];
    a.pr = pa[3];
  } else {
    a.kw = ks[0];
    a.sw = st[0];
    a.dw = di[0];
    a.pl = pa[0];
    a.pr = pa[1];
  }
  return a;
}

// Kernel size, strides, dilations and explicit pads into a kernels:: parameter struct
// (Conv2dParams, ConvTranspose2dParams: the same field names); auto_pad is resolved by the caller.
template <class Params>
void set_window(const ConvAttrs& a, Params& p) {
  p.kernel_h = a.kh;
  p.kernel_w = a.kw;
  p.stride_h = a.sh;
  p.stride_w = a.sw;
  p.dilation_h = a.dh;
  p.dilation_w = a.dw;
  p.pad_top = a.pt;
  p.pad_left = a.pl;
  p.pad_bottom = a.pb;
  p.pad_right = a.pr;
}

// The optional bias input i: nullptr, or a constant float32 tensor of `channels` values.
inline Tensor* optional_bias(PrepareContext& ctx, size_t i, int64_t channels) {
  Tensor* b = ctx.input(i);
  if (b == nullptr) return nullptr;
  need_dtype(ctx, *b, DType::kFloat32);
  if (!b->constant) ctx.fail("bias B must be a constant initializer");
  if (b->static_numel() != channels) ctx.fail("bias B must have one value per output channel");
  return b;
}

inline kernels::Epilogue read_epilogue(PrepareContext& ctx) {
  const FusedActivation f = read_activation(ctx);
  kernels::Epilogue ep;
  switch (f.kind) {
    case FusedActivation::kNone:
      ep.act = kernels::Activation::kNone;
      break;
    case FusedActivation::kRelu:
      ep.act = kernels::Activation::kRelu;
      break;
    case FusedActivation::kClip:
      ep.act = kernels::Activation::kClip;
      break;
    case FusedActivation::kHardSwish:
      ep.act = kernels::Activation::kHardSwish;
      break;
    case FusedActivation::kHardSigmoid:
      ep.act = kernels::Activation::kHardSigmoid;
      break;
    case FusedActivation::kSilu:
      ep.act = kernels::Activation::kSilu;
      break;
    case FusedActivation::kGelu:
      ep.act = kernels::Activation::kGelu;
      break;
  }
  ep.alpha = f.alpha;
  ep.beta = f.beta;
  ep.clip_min = f.lo;
  ep.clip_max = f.hi;
  return ep;
}

// Constant float32 tensor of the given rank, or a clear failure.
inline Tensor* need_constant_weights(PrepareContext& ctx, size_t i, const char* what, int rank) {
  Tensor* w = need_input(ctx, i, what);
  need_dtype(ctx, *w, DType::kFloat32);
  need_rank(ctx, *w, rank);
  if (!w->constant)
    ctx.fail(std::string(what) + " ('" + w->name + "') must be a constant initializer");
  return w;
}

}  // namespace ops
}  // namespace edgepack
