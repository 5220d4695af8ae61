// SPDX-License-Identifier: Apache-2.0
// int8 GEMM for QDQ models ([models.quantize], docs/quantization.md): int8 weights (symmetric,
// per output channel) times uint8 activations (asymmetric, zero point za), int32 accumulation,
// then fixed-point requantisation to uint8.
//
//   acc[j][p] = sum_k w[j][k] * (x[k][p] - za) + bias[j]
//   out[j][p] = clamp(zo + round(acc[j][p] * M[j]), 0, 255),  M[j] = sa * sw[j] / so
//
// M is applied in fixed point: M = m0 * 2^-31 * 2^shift with m0 in [2^30, 2^31), one 64-bit
// product and one rounding shift (TFLite's doubling high multiply + shift rounds twice and is
// off by one on about 1/2^|shift| of the values). No float arithmetic on the run path.
//
// Blocked and packed like the float GEMM (gemm.h): the weights (Conv OIHW flattened per output
// channel, row-major [m][k]) are packed once at prepare into blocks of kQgemmMr rows; the
// activations ([k][n], n = output pixels, the NCHW layout itself for a 1x1 convolution) are
// packed per panel of kQgemmNr columns on the run path, k in groups of 4 ("quads": the 4 bytes
// one 32-bit lane of a u8 x s8 dot-product instruction reads), a group of panels at a time that
// every weight block then runs over. A micro-kernel computes a kQgemmMr x kQgemmNr tile in
// registers and the epilogue requantises it straight into the output (on AVX2 in the same
// function, from the registers). Kernels chosen at run time: x86 AVX-512 VNNI (vpdpbusd, 4 rows
// x up to 4 panels per call, qgemm_avx512vnni.cpp) when the CPU has avx512f/bw/vl/vnni, else
// AVX2 (vpmaddubsw + vpmaddwd); on aarch64 the ARMv8.2 dot product (SDOT, qgemm_dotprod.cpp)
// when the build has it (the board file's `cpu: features: [dotprod]`) and getauxval(AT_HWCAP)
// reports HWCAP_ASIMDDP, else NEON (ARMv8.0 widening multiply-accumulate, vmlal_s16:
// Cortex-A53/A72/A73 have no SDOT); or portable. EDGEPACK_CPU_ISA caps it like the float GEMM
// (gemm.cpp): generic at the portable kernel, avx2 at the AVX2 one; neon at the ARMv8.0 kernel.
//
// Exactness: vpmaddubsw sums two u8 x s8 products in int16 with saturation, exact only while
// |w| <= 64 (2 * 255 * 64 = 32640). onnxruntime's quantiser gives such 7-bit weights
// (reduce_range); for the AVX2 kernel full-range weights are packed as two halves
// w = (w >> 1) + (w - (w >> 1)), each within [-64, 64], and cost two instructions per quad. The
// other kernels are exact on full-range weights as they are. The result is exact either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgepack {
class ThreadPool;
namespace kernels {

constexpr int kQgemmMr = 4;       // weight rows per micro-kernel tile
constexpr int kQgemmNr = 16;      // activation columns (pixels) per packed panel
constexpr int kQgemmTailMax = 4;  // at most this many last columns: expanded (AVX-512 VNNI)

// A real multiplier in (0, 1) as (m0, shift): M ~= m0 / 2^31 * 2^shift, m0 in [2^30, 2^31).
struct QuantMultiplier {
  int32_t m0;
  int shift;  // <= 0 for M < 1
};
QuantMultiplier quant_multiplier(double real);

// round(x * m0 * 2^(shift - 31)), half away from zero, saturated to int32.
int32_t apply_multiplier(int32_t x, QuantMultiplier m);

// out[i] = clamp(zo + apply_multiplier(acc[i] + add, m), 0, 255) for i < n (vectorised where the
// CPU allows; the same bytes either way).
void requantize_row(const int32_t* acc, int64_t n, int32_t add, QuantMultiplier m, uint8_t zo,
                    uint8_t* out);

// One output row's requantisation as the micro-kernels apply it (M < 1): acc + add, times m0,
// plus 2^(total - 1), shifted right by total (on |acc + add|, the sign put back).
struct QRowQuant {
  int32_t add;  // bias + zero-point correction of the row
  int total;    // 31 - shift, in [31, 62]
  int64_t m0;
  float mf;  // m0 * 2^-total rounded to float (the AVX-512 VNNI epilogue's first try)
};

// Weights packed at prepare (allocates; the run path does not).
struct QGemmWeights {
  int64_t m = 0, k = 0;
  int64_t quads = 0;   // ceil(k / 4)
  bool split = false;  // some |w| > 64 and the AVX2 kernel (not VNNI): two halves (see above)
  std::vector<int8_t> packed;
  std::vector<int32_t> sums;  // sum_k w[j][k], folds the activation zero point
};
// w: m x k, row-major (row stride k).
void qgemm_pack_weights(const int8_t* w, int64_t m, int64_t k, QGemmWeights* out);

// Where a GEMM's result goes. With mult == nullptr the int32 accumulators are written to acc
// (row stride ldo); otherwise the requantised bytes to out (row stride ldo).
struct QGemmOutput {
  uint8_t za = 0;                         // activation zero point
  const int32_t* bias = nullptr;          // m values, or nullptr
  const QuantMultiplier* mult = nullptr;  // m values, or nullptr (int32 output)
  uint8_t zo = 0;                         // output zero point
  uint8_t* out = nullptr;
  int32_t* acc = nullptr;
  int64_t ldo = 0;
};

// Scratch bytes per thread for depth k: a group of packed activation panels (qgemm() packs up
// to ~256 KiB of panels at a time and runs every weight block over them, so that a weight block
// is read once per group rather than once per panel).
size_t qgemm_scratch_bytes(int64_t k);

// y = W x for x of k rows and n columns (row stride ldx), written per `o`. scratch holds
// `slots` x qgemm_scratch_bytes(w.k) bytes, 64-byte aligned; at most `slots` threads of pool
// (which may be nullptr) share the work.
void qgemm(const QGemmWeights& w, const uint8_t* x, int64_t ldx, int64_t n, const QGemmOutput& o,
           uint8_t* scratch, int slots, ThreadPool* pool);

// An implicit [k][n] operand (im2col without its copy): element (kk, p) is the byte at
// base + row[kk] + col[p]. row has quads * 4 entries (those past k: any offset that can be read;
// their weights are 0); within each panel (columns 16 i .. 16 i + 15 of n) col[p] - col[16 i]
// is in [0, 128), and the 128 bytes from base + row[kk] + col[16 i] can be read (panels that
// span less than 64 bytes are packed faster).
struct QGemmGather {
  const uint8_t* base = nullptr;
  const int32_t* row = nullptr;
  const int32_t* col = nullptr;
};

// Whether qgemm_gather() can run here (x86 with AVX-512 VBMI: vpermt2b packs the panels).
bool qgemm_gather_supported();

// qgemm() of the implicit operand x: the panels are packed straight from it.
void qgemm_gather(const QGemmWeights& w, const QGemmGather& x, int64_t n, const QGemmOutput& o,
                  uint8_t* scratch, int slots, ThreadPool* pool);

// The micro-kernel in use: "avx512vnni", "avx2", "dotprod", "neon" or "generic".
const char* qgemm_isa();

}  // namespace kernels
}  // namespace edgepack
