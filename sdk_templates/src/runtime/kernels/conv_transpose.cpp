// SPDX-License-Identifier: Apache-2.0
#include "conv_transpose.h"

#include <algorithm>
#include <string>

#include "common/error.h"
#include "gemm.h"

namespace edgepack {
namespace kernels {

namespace {
[[noreturn]] void bad(const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, "ConvTranspose: " + what);
}
inline float* align64(void* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) &
                                  ~static_cast<uintptr_t>(63));
}
}  // namespace

void ConvTranspose2d::prepare(const ConvTranspose2dParams& params, const float* weights,
                              const float* bias, const Epilogue& epilogue) {
  const ConvTranspose2dParams& p = params;
  if (p.batch < 1 || p.in_channels < 1 || p.in_h < 1 || p.in_w < 1 || p.out_channels < 1)
    bad("input/output dimensions must be positive");
  if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.dilation_h < 1 ||
      p.dilation_w < 1)
    bad("kernel_shape, strides and dilations must be positive");
  if (p.pad_top < 0 || p.pad_left < 0 || p.pad_bottom < 0 || p.pad_right < 0 ||
      p.output_padding_h < 0 || p.output_padding_w < 0)
    bad("pads and output_padding must be non-negative");
  if (p.groups < 1 || p.in_channels % p.groups != 0 || p.out_channels % p.groups != 0)
    bad("group must divide input and output channels");
  if (p.out_h() < 1 || p.out_w() < 1) bad("output size is not positive");
  if (weights == nullptr) bad("weights missing");
  p_ = p;
  ep_ = epilogue;
  ep_.bias_per_row = true;
  bias_.assign(static_cast<size_t>(p.out_channels), 0.0f);
  if (bias != nullptr) std::copy(bias, bias + p.out_channels, bias_.begin());
  ep_.bias = bias != nullptr ? bias_.data() : nullptr;

  const int64_t cin_g = p.in_channels / p.groups, cout_g = p.out_channels / p.groups;
  const int64_t m = cout_g * p.kernel_h * p.kernel_w, n = p.in_h * p.in_w;
  group_a_floats_ = packed_a_floats(m, cin_g);
  weights_.assign(group_a_floats_ * static_cast<size_t>(p.groups), 0.0f);
  // Group g's weights are a cin_g x m row-major block; op(A) = its transpose (m x cin_g).
  for (int64_t g = 0; g < p.groups; ++g)
    pack_a(weights + g * cin_g * m, m, true, m, cin_g, weights_.data() + g * group_a_floats_);
  col_floats_ = static_cast<size_t>(m * n + 16);
  scratch_bytes_ = (col_floats_ + packed_b_floats(cin_g, n)) * sizeof(float) + 64;
}

void ConvTranspose2d::run(const float* input, float* output, void* scratch,
                          ThreadPool* pool) const {
  const ConvTranspose2dParams& p = p_;
  const int64_t cin_g = p.in_channels / p.groups, cout_g = p.out_channels / p.groups;
  const int64_t kk = p.kernel_h * p.kernel_w;
  const int64_t m = cout_g * kk, n = p.in_h * p.in_w;
  const int64_t oh_n = p.out_h(), ow_n = p.out_w(), out_plane = oh_n * ow_n;
  float* col = align64(scratch);
  float* packed_b = col + col_floats_;

  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* in = input + (b * p.in_channels + g * cin_g) * n;
      float* out = output + (b * p.out_channels + g * cout_g) * out_plane;
      GemmOperand a;
      a.packed = weights_.data() + g * group_a_floats_;
      GemmOperand bop;  // the input (cin_g x n) read in place; packed_b takes a partial panel
      bop.data = in;
      bop.ld = n;
      gemm(m, n, cin_g, 1.0f, a, bop, 0.0f, col, n, Epilogue{}, packed_b, pool);

      auto col2im = [&](int64_t c0, int64_t c1) {
        for (int64_t oc = c0; oc < c1; ++oc) {
          float* dst = out + oc * out_plane;
          std::fill(dst, dst + out_plane, 0.0f);
          for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
            for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
              const float* src = col + ((oc * p.kernel_h + kh) * p.kernel_w + kw) * n;
              for (int64_t ih = 0; ih < p.in_h; ++ih) {
                const int64_t oh = ih * p.stride_h - p.pad_top + kh * p.dilation_h;
                if (oh < 0 || oh >= oh_n) continue;
                float* drow = dst + oh * ow_n;
                const float* srow = src + ih * p.in_w;
                for (int64_t iw = 0; iw < p.in_w; ++iw) {
                  const int64_t ow = iw * p.stride_w - p.pad_left + kw * p.dilation_w;
                  if (ow >= 0 && ow < ow_n) drow[ow] += srow[iw];
                }
              }
            }
          }
          Epilogue ep = ep_;
          if (ep.bias != nullptr) ep.bias += g * cout_g;
          apply_epilogue(ep, dst, out_plane, 1, out_plane, oc, 0);
        }
      };
      if (pool != nullptr)
        pool->parallel_for(cout_g, col2im);
      else
        col2im(0, cout_g);
    }
  }
}

}  // namespace kernels
}  // namespace edgepack
