// SPDX-License-Identifier: Apache-2.0
// AVX-512: 16 of 32 zmm registers hold the 8 x 32 tile. Compiled with its own -m flags (see
// CMakeLists.txt) and only called after a CPU check.
#include "microkernel.h"

namespace edgepack {
namespace kernels {

namespace {
constexpr int kMR = 8, kNR = 32, kKC = 192, kVB = 64;

void kernel(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
            float alpha, int accumulate, const TileEpilogue* ep) {
  microkernel_tile<kMR, kNR, kVB>(kc, a, 0, b, ldb, c, ldc, alpha, accumulate, ep);
}
void kernel_rows(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t ldc, float alpha, int accumulate, const TileEpilogue* ep) {
  microkernel_tile<kMR, kNR, kVB, true>(kc, a, lda, b, ldb, c, ldc, alpha, accumulate, ep);
}
void softmax_row(const float* x, float* y, int64_t n) {
  softmax_row_tmpl<kVB>(x, y, n);
}
void dw(const float* r0, const float* r1, const float* r2, const float* w9, float bias, float lo,
        float hi, float* out, int64_t count, int64_t stride) {
  dw3x3_row_tmpl(r0, r1, r2, w9, bias, lo, hi, out, count, stride);
}
void dw_taps(const float* const* taps, const float* w, int ntaps, float bias, float lo, float hi,
             float* out, int64_t count) {
  dw_taps_row_tmpl<32>(taps, w, ntaps, bias, lo, hi, out, count);
}
void dw_cblock(const float* in, const float* w, const float* bias, const DwBlock& g,
               const TileEpilogue& ep, float* work, float* out) {
  dw_cblock_tmpl<kVB>(in, w, bias, g, ep, work, out);
}
void dw_pack(const float* src, int64_t src_plane, int channels, int64_t h, int64_t w,
             int64_t pad_top, int64_t pad_left, int64_t padded_w, float* dst) {
  dw_pack_tmpl<kVB>(src, src_plane, channels, h, w, pad_top, pad_left, padded_w, dst);
}
void conv_oc_row(const OcConv& g, int64_t oh, int64_t blk, int nblk, const TileEpilogue& ep,
                 float* work) {
  conv_oc_row_tmpl<kVB>(g, oh, blk, nblk, ep, work);
}
void unpack(const float* src, int64_t n, int channels, float* dst, int64_t dst_plane) {
  dw_unpack_tmpl<kVB>(src, n, channels, dst, dst_plane);
}
void act_row(const TileEpilogue& ep, const float* x, float* y, int64_t n) {
  act_row_tmpl<kVB>(ep, x, y, n);
}
const MicroKernel kKernel = {kMR,     kNR,         kKC,     "avx512",    kernel,
                             dw,      dw_taps,     act_row, kVB / 4,     dw_cblock,
                             dw_pack, conv_oc_row, unpack,  kernel_rows, softmax_row};
}  // namespace

const MicroKernel* microkernel_avx512() {
  return &kKernel;
}

}  // namespace kernels
}  // namespace edgepack
