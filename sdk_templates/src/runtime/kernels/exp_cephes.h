// SPDX-License-Identifier: Apache-2.0
// The constants of the branch-free e^x used by the scalar exp_approx() (activation.h) and the
// vector VecAct::exp() (microkernel.h). One list, so both give the same values up to FMA
// contraction. x is clamped to [kMin, kMax] (no denormals, no overflow), split as
// x = n ln2 + r with |r| <= ln2 / 2 (ln2 = kLn2Hi - kLn2Lo, in two parts so n ln2 is exact), e^r by
// the Cephes expf polynomial (relative error about 2e-7), 2^n through the exponent bits. The bodies
// stay two: GCC drops vector attributes from typedefs passed as template arguments, so one template
// over float and the vector types does not compile there.
#pragma once

namespace edgepack {
namespace kernels {
namespace exp_cephes {

constexpr float kMin = -87.3f;
constexpr float kMax = 88.3f;
constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = 2.12194440e-4f;
// e^r ~ 1 + r + r^2 (kP0 + kP1 r + ... + kP5 r^5), evaluated by Horner from kP5.
constexpr float kP5 = 1.9875691500e-4f;
constexpr float kP4 = 1.3981999507e-3f;
constexpr float kP3 = 8.3334519073e-3f;
constexpr float kP2 = 4.1665795894e-2f;
constexpr float kP1 = 1.6666665459e-1f;
constexpr float kP0 = 5.0000001201e-1f;

}  // namespace exp_cephes
}  // namespace kernels
}  // namespace edgepack
