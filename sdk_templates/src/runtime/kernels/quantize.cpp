// SPDX-License-Identifier: Apache-2.0
#include "runtime/kernels/quantize.h"

#include <limits>

namespace edgepack {
namespace kernels {

template <class T>
void quantize_linear(const float* x, T* y, int64_t n, float scale, float zero) {
  // Clamping before rounding equals rounding before clamping (the bounds are integers), and
  // keeps |v| < 2^22, where adding and subtracting 1.5 * 2^23 rounds half to even in the
  // default rounding mode (no fast-math here). NaN becomes the lowest value.
  const float lo = static_cast<float>(std::numeric_limits<T>::lowest()) - zero;
  const float hi = static_cast<float>(std::numeric_limits<T>::max()) - zero;
  constexpr float kMagic = 12582912.0f;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    v = (v + kMagic) - kMagic;
    y[i] = static_cast<T>(static_cast<int32_t>(v + zero));
  }
}

template <class T>
void dequantize_linear(const T* x, float* y, int64_t n, float scale, float zero) {
  for (int64_t i = 0; i < n; ++i) y[i] = (static_cast<float>(x[i]) - zero) * scale;
}

void lookup_bytes(const uint8_t* x, uint8_t* y, int64_t n, const uint8_t* table) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {  // four independent loads per step
    const uint8_t a = table[x[i]], b = table[x[i + 1]], c = table[x[i + 2]], d = table[x[i + 3]];
    y[i] = a;
    y[i + 1] = b;
    y[i + 2] = c;
    y[i + 3] = d;
  }
  for (; i < n; ++i) y[i] = table[x[i]];
}

void lookup_byte_pairs(const uint8_t* x, const uint8_t* x2, uint8_t* y, int64_t n,
                       const uint8_t* table) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {  // four independent loads per step
    const uint8_t a = table[x[i] << 8 | x2[i]], b = table[x[i + 1] << 8 | x2[i + 1]],
                  c = table[x[i + 2] << 8 | x2[i + 2]], d = table[x[i + 3] << 8 | x2[i + 3]];
    y[i] = a;
    y[i + 1] = b;
    y[i + 2] = c;
    y[i + 3] = d;
  }
  for (; i < n; ++i) y[i] = table[x[i] << 8 | x2[i]];
}

template void quantize_linear<uint8_t>(const float*, uint8_t*, int64_t, float, float);
template void quantize_linear<int8_t>(const float*, int8_t*, int64_t, float, float);
template void quantize_linear<uint16_t>(const float*, uint16_t*, int64_t, float, float);
template void quantize_linear<int16_t>(const float*, int16_t*, int64_t, float, float);
template void dequantize_linear<uint8_t>(const uint8_t*, float*, int64_t, float, float);
template void dequantize_linear<int8_t>(const int8_t*, float*, int64_t, float, float);
template void dequantize_linear<uint16_t>(const uint16_t*, float*, int64_t, float, float);
template void dequantize_linear<int16_t>(const int16_t*, float*, int64_t, float, float);
template void dequantize_linear<int32_t>(const int32_t*, float*, int64_t, float, float);

}  // namespace kernels
}  // namespace edgepack
