// SPDX-License-Identifier: Apache-2.0
// The constants of the branch-free e^x used by the scalar exp_approx() (activation.h) and the
// vector VecAct::exp() (microkernel.h). One list, so both give the same values up to FMA
// contraction. x is clamped to [kMin, kMax] (no denormals, no overflow), split as
// x = n ln2 + r with |r| <= ln2 / 2 (ln2 = kLn2Hi - kLn2Lo, in two parts so n ln2 is exact: the
// Cephes reduction), e^r by a degree-5 polynomial (relative error below 3e-7), 2^n through the
// exponent bits. The polynomial is a minimax fit of e^r on [-ln2 / 2, ln2 / 2] evaluated by
// Horner in float: five multiply-adds where the Cephes expf form (1 + r + r^2 P(r), degree 5 P)
// takes seven. The bodies
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
// e^r ~ kE0 + kE1 r + ... + kE5 r^5, evaluated by Horner from kE5.
constexpr float kE5 = 8.297654800117016e-3f;
constexpr float kE4 = 4.191538318991661e-2f;
constexpr float kE3 = 1.6667574644088745e-1f;
constexpr float kE2 = 4.9998894333839417e-1f;
constexpr float kE1 = 9.999997019767761e-1f;
constexpr float kE0 = 1.0000001192092896f;

}  // namespace exp_cephes
}  // namespace kernels
}  // namespace edgepack
