// SPDX-License-Identifier: Apache-2.0
// Single-precision GEMM: C = act(alpha * op(A) * op(B) + beta * C + bias), row-major.
//
// Blocked and packed: op(A) is packed into MR-row panels and op(B) into NR-column panels
// (zero-padded at the tails), then a register-blocked micro-kernel chosen at run time for the
// CPU (AVX-512, AVX2+FMA, NEON or portable) computes MR x NR tiles. Operands that are constant
// (Conv/Gemm weights) are packed once at prepare with pack_a()/pack_b(); the run path then packs
// only the other operand, into caller-supplied scratch. Nothing here allocates at run time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "activation.h"
#include "threadpool.h"

namespace edgepack {
namespace kernels {

// The register-blocking shape of the micro-kernel selected for this CPU.
struct GemmShape {
  int mr;           // rows per A panel
  int nr;           // columns per B panel
  const char* isa;  // "avx512", "avx2", "neon", "generic"
};
const GemmShape& gemm_shape();

// Floats needed to hold a packed op(A) (m x k) / op(B) (k x n).
size_t packed_a_floats(int64_t m, int64_t k);
size_t packed_b_floats(int64_t k, int64_t n);

// Packs op(A) (m x k; A is m x k with row stride lda, or k x m when trans) into dst, which must
// hold packed_a_floats(m, k). pool may be nullptr (runs inline).
void pack_a(const float* a, int64_t lda, bool trans, int64_t m, int64_t k, float* dst,
            ThreadPool* pool = nullptr);
// Packs op(B) (k x n; B is k x n with row stride ldb, or n x k when trans) into dst.
void pack_b(const float* b, int64_t ldb, bool trans, int64_t k, int64_t n, float* dst,
            ThreadPool* pool = nullptr);

// The epilogue as the micro-kernel applies it to a finished tile (microkernel.h): bias (rows from
// row0 or columns from col0), the ReLU / Clip clamp, then HardSwish / HardSigmoid / SiLU.
struct TileEpilogue;
TileEpilogue tile_epilogue(const Epilogue& ep, int64_t row0, int64_t col0);

// One operand: either raw (data, ld, trans) or already packed (packed != nullptr, data ignored).
struct GemmOperand {
  const float* data = nullptr;
  int64_t ld = 0;
  bool trans = false;
  const float* packed = nullptr;
};

// Scratch floats gemm() needs for the operands that are not prepacked.
size_t gemm_scratch_floats(int64_t m, int64_t n, int64_t k, bool a_packed, bool b_packed);

// C (m x n, row stride ldc) = act(alpha * op(A) op(B) + beta * C + bias). With beta == 0, C is
// not read (may hold garbage). scratch: gemm_scratch_floats() floats, 64-byte aligned is best;
// may be nullptr when both operands are packed. pool may be nullptr. k == 0 gives
// act(beta * C + bias).
void gemm(int64_t m, int64_t n, int64_t k, float alpha, const GemmOperand& a, const GemmOperand& b,
          float beta, float* c, int64_t ldc, const Epilogue& ep, float* scratch,
          ThreadPool* pool = nullptr);

// One column block, single-threaded, for callers that produce B panel by panel (im2col fused
// with the GEMM, so B stays in cache): C[0, m) x [j0, j0 + ncols) = act(A op(B) + bias), C not
// read. packed_a: pack_a() of the m x k A; packed_b: the packed-B panels of columns [j0, j0 +
// ncols) only (j0 a multiple of NR), k * NR floats each; c: the whole C (row stride ldc).
void gemm_packed_block(int64_t m, int64_t n, int64_t k, const float* packed_a,
                       const float* packed_b, int64_t j0, int64_t ncols, float* c, int64_t ldc,
                       const Epilogue& ep);

}  // namespace kernels
}  // namespace edgepack
