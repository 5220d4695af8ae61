// SPDX-License-Identifier: Apache-2.0
// The CPU op registration table: ONE line per op, EDGEPACK_OP(OnnxType, function prefix).
// Each op file defines `void <prefix>_prepare(PrepareContext&)` and `void <prefix>_run(RunContext&)`.
// Included (with EDGEPACK_OP defined) by ops/registry.cpp only.
EDGEPACK_OP(Conv, conv)
EDGEPACK_OP(ConvTranspose, conv_transpose)
EDGEPACK_OP(Gemm, gemm)
EDGEPACK_OP(MatMul, matmul)
