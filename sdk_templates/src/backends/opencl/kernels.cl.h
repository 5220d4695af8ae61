// SPDX-License-Identifier: Apache-2.0
// The OpenCL C 1.2 kernels of the OpenCL backend, embedded as one source string (built once per
// process, see opencl_backend.cpp). One work-item per output element: simple, correct kernels
// that every OpenCL 1.2 device (Mali, Adreno, PoCL) compiles. Tensors are stored as float, or as
// half when the program is built with -DEP_FP16 (vload_half/vstore_half, core OpenCL 1.2, so no
// extension is needed); arithmetic is float either way.
#pragma once

namespace edgepack_opencl {

inline const char* kernel_source() {
  return R"CL(
#ifdef EP_FP16
typedef half real; /* storage only: vload_half / vstore_half are core OpenCL 1.2 */
#define LD(p, i) vload_half((i), (p))
#define ST(p, i, v) vstore_half((v), (i), (p))
#else
typedef float real;
#define LD(p, i) ((float)(p)[i])
#define ST(p, i, v) ((p)[i] = (real)(v))
#endif

/* Fused activations, as the lowering writes them (attribute "activation"). */
float act(float v, int a, float p0, float p1) {
  switch (a) {
    case 1: return fmax(v, 0.0f);                                   /* Relu */
    case 2: return fmin(fmax(v, p0), p1);                           /* Clip */
    case 3: return v * fmin(fmax(v / 6.0f + 0.5f, 0.0f), 1.0f);    /* HardSwish */
    case 4: return fmin(fmax(p0 * v + p1, 0.0f), 1.0f);            /* HardSigmoid */
    case 5: return v / (1.0f + exp(-v));                            /* Silu */
    case 6: return 1.0f / (1.0f + exp(-v));                         /* Sigmoid */
    case 7: return tanh(v);                                         /* Tanh */
    case 8: return v >= 0.0f ? v : p0 * v;                          /* LeakyRelu */
    case 9: return v >= 0.0f ? v : p0 * (exp(v) - 1.0f);            /* Elu */
    case 10: return exp(v);
    case 11: return fabs(v);
    case 12: return -v;
    case 13: return sqrt(v);
    case 14: return log(v);
    case 15: return v;                                              /* Identity / copy */
    default: return v;
  }
}

/* NCHW convolution with groups (depthwise: group == C == M), pads, strides, dilations, bias. */
__kernel void conv2d(__global const real* x, __global const real* w, __global const real* b,
                     __global real* y, int C, int H, int W, int M, int OH, int OW, int KH, int KW,
                     int SH, int SW, int PT, int PL, int DH, int DW, int G, int has_bias, int a,
                     float p0, float p1) {
  const int ox = get_global_id(0), oy = get_global_id(1), nm = get_global_id(2);
  if (ox >= OW || oy >= OH) return;
  const int m = nm % M, n = nm / M;
  const int cg = C / G, mg = M / G, g = m / mg;
  float acc = has_bias ? LD(b, m) : 0.0f;
  for (int c = 0; c < cg; ++c) {
    const int ci = g * cg + c;
    __global const real* xp = x + ((size_t)n * C + ci) * H * W;
    __global const real* wp = w + ((size_t)m * cg + c) * KH * KW;
    for (int ky = 0; ky < KH; ++ky) {
      const int iy = oy * SH - PT + ky * DH;
      if (iy < 0 || iy >= H) continue;
      for (int kx = 0; kx < KW; ++kx) {
        const int ix = ox * SW - PL + kx * DW;
        if (ix < 0 || ix >= W) continue;
        acc += LD(xp, iy * W + ix) * LD(wp, ky * KW + kx);
      }
    }
  }
  ST(y, ((size_t)nm * OH + oy) * OW + ox, act(acc, a, p0, p1));
}

/* The same convolution, 4 output channels x 4 output columns per work-item (the input value
 * and weight loads are shared across the tile); needs M / G divisible by 4. */
__kernel void conv2d_t44(__global const real* x, __global const real* w, __global const real* b,
                         __global real* y, int C, int H, int W, int M, int OH, int OW, int KH,
                         int KW, int SH, int SW, int PT, int PL, int DH, int DW, int G,
                         int has_bias, int a, float p0, float p1) {
  const int ox0 = get_global_id(0) * 4, oy = get_global_id(1), nmb = get_global_id(2);
  if (ox0 >= OW || oy >= OH) return;
  const int MB = M / 4, m0 = (nmb % MB) * 4, n = nmb / MB;
  const int cg = C / G, mg = M / G, g = m0 / mg, kk = KH * KW, wstride = cg * kk;
  float acc[4][4];
  for (int i = 0; i < 4; ++i) {
    const float bv = has_bias ? LD(b, m0 + i) : 0.0f;
    for (int j = 0; j < 4; ++j) acc[i][j] = bv;
  }
  for (int c = 0; c < cg; ++c) {
    __global const real* xp = x + ((size_t)n * C + g * cg + c) * H * W;
    __global const real* wp = w + ((size_t)m0 * cg + c) * kk;
    for (int ky = 0; ky < KH; ++ky) {
      const int iy = oy * SH - PT + ky * DH;
      if (iy < 0 || iy >= H) continue;
      for (int kx = 0; kx < KW; ++kx) {
        float xv[4];
        for (int j = 0; j < 4; ++j) {
          const int ix = (ox0 + j) * SW - PL + kx * DW;
          xv[j] = (ix >= 0 && ix < W) ? LD(xp, iy * W + ix) : 0.0f;
        }
        const int k = ky * KW + kx;
        for (int i = 0; i < 4; ++i) {
          const float wv = LD(wp, i * wstride + k);
          for (int j = 0; j < 4; ++j) acc[i][j] += wv * xv[j];
        }
      }
    }
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4 && ox0 + j < OW; ++j)
      ST(y, (((size_t)n * M + m0 + i) * OH + oy) * OW + ox0 + j, act(acc[i][j], a, p0, p1));
}

/* Y[b] = act(alpha * op(A[b]) x op(B[b]) + beta * C); strides in elements (0 = broadcast). */
__kernel void matmul(__global const real* A, __global const real* B, __global const real* Cm,
                     __global real* Y, int M, int N, int K, int sam, int sak, int sbk, int sbn,
                     int sab, int sbb, int scm, int scn, float alpha, float beta, int has_c,
                     int a, float p0, float p1) {
  const int n = get_global_id(0), m = get_global_id(1), bt = get_global_id(2);
  if (n >= N || m >= M) return;
  __global const real* ap = A + (size_t)bt * sab + (size_t)m * sam;
  __global const real* bp = B + (size_t)bt * sbb + (size_t)n * sbn;
  float acc = 0.0f;
  for (int k = 0; k < K; ++k) acc += LD(ap, k * sak) * LD(bp, k * sbk);
  acc *= alpha;
  if (has_c) acc += beta * LD(Cm, m * scm + n * scn);
  ST(Y, ((size_t)bt * M + m) * N + n, act(acc, a, p0, p1));
}

/* 2-D max / average pooling over NCHW (window clipped like the CPU op). */
__kernel void pool2d(__global const real* x, __global real* y, int H, int W, int OH, int OW,
                     int KH, int KW, int SH, int SW, int PT, int PL, int PB, int PR, int DH,
                     int DW, int is_max, int include_pad) {
  const int ox = get_global_id(0), oy = get_global_id(1), nc = get_global_id(2);
  if (ox >= OW || oy >= OH) return;
  __global const real* xp = x + (size_t)nc * H * W;
  const int y0 = oy * SH - PT, x0 = ox * SW - PL;
  float acc = is_max ? -INFINITY : 0.0f;
  int count = 0;
  for (int ky = 0; ky < KH; ++ky) {
    const int iy = y0 + ky * DH;
    if (iy < 0 || iy >= H) continue;
    for (int kx = 0; kx < KW; ++kx) {
      const int ix = x0 + kx * DW;
      if (ix < 0 || ix >= W) continue;
      const float v = LD(xp, iy * W + ix);
      acc = is_max ? fmax(acc, v) : acc + v;
      ++count;
    }
  }
  if (!is_max) {
    if (include_pad) {
      const int ey = min(y0 + (KH - 1) * DH + 1, H + PB), by = max(y0, -PT);
      const int ex = min(x0 + (KW - 1) * DW + 1, W + PR), bx = max(x0, -PL);
      count = ((ey - by + DH - 1) / DH) * ((ex - bx + DW - 1) / DW);
    }
    acc = count ? acc / (float)count : 0.0f;
  }
  ST(y, ((size_t)nc * OH + oy) * OW + ox, acc);
}

__kernel void global_avgpool(__global const real* x, __global real* y, int HW) {
  const int nc = get_global_id(0);
  float acc = 0.0f;
  for (int i = 0; i < HW; ++i) acc += LD(x, (size_t)nc * HW + i);
  ST(y, nc, acc / (float)HW);
}

/* Broadcasting binary op with an optional fused activation; shape/strides: rank entries each in `meta` (out dims, a strides,
 * b strides), elements, stride 0 on broadcast dims. */
__kernel void binary(__global const real* A, __global const real* B, __global real* Y,
                     __constant int* meta, int rank, int op, int total, int act_code, float p0,
                     float p1) {
  const int i = get_global_id(0);
  if (i >= total) return;
  int r = i, ia = 0, ib = 0;
  for (int d = rank - 1; d >= 0; --d) {
    const int c = r % meta[d];
    r /= meta[d];
    ia += c * meta[rank + d];
    ib += c * meta[2 * rank + d];
  }
  const float a = LD(A, ia), b = LD(B, ib);
  float v;
  switch (op) {
    case 0: v = a + b; break;
    case 1: v = a - b; break;
    case 2: v = a * b; break;
    case 3: v = a / b; break;
    case 4: v = fmax(a, b); break;
    case 5: v = fmin(a, b); break;
    case 6: v = pow(a, b); break;
    default: v = a >= 0.0f ? a : a * b; break; /* PRelu */
  }
  ST(Y, i, act(v, act_code, p0, p1)); /* a fused activation (e.g. Add + Relu) */
}

/* Transpose; meta: rank output dims, then rank input strides (elements) in output order. */
__kernel void transpose(__global const real* x, __global real* y, __constant int* meta, int rank,
                        int total) {
  const int i = get_global_id(0);
  if (i >= total) return;
  int r = i, ix = 0;
  for (int d = rank - 1; d >= 0; --d) {
    ix += (r % meta[d]) * meta[rank + d];
    r /= meta[d];
  }
  ST(y, i, LD(x, ix));
}

__kernel void unary(__global const real* x, __global real* y, int a, float p0, float p1,
                    int total) {
  const int i = get_global_id(0);
  if (i >= total) return;
  ST(y, i, act(LD(x, i), a, p0, p1));
}

/* Copies one Concat input into its slice of the output: outer x (len * inner) elements. */
__kernel void concat_part(__global const real* x, __global real* y, int row_in, int row_out,
                          int offset, int total) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const int o = i / row_in, j = i % row_in;
  ST(y, (size_t)o * row_out + offset + j, LD(x, i)); /* exact for half too */
}

/* Softmax over a middle axis: one work-item per (outer, inner) row. */
__kernel void softmax(__global const real* x, __global real* y, int len, int inner,
                      int total) {
  const int i = get_global_id(0);
  if (i >= total) return;
  const size_t base = (size_t)(i / inner) * len * inner + i % inner;
  float mx = -INFINITY;
  for (int k = 0; k < len; ++k) mx = fmax(mx, LD(x, base + (size_t)k * inner));
  float sum = 0.0f;
  for (int k = 0; k < len; ++k) sum += exp(LD(x, base + (size_t)k * inner) - mx);
  for (int k = 0; k < len; ++k)
    ST(y, base + (size_t)k * inner, exp(LD(x, base + (size_t)k * inner) - mx) / sum);
}

/* Source coordinate of output index o (ONNX coordinate_transformation_mode). */
float src_coord(int o, float scale, int in_len, int out_len, int ctm) {
  switch (ctm) {
    case 1: return o / scale;                                            /* asymmetric */
    case 2: return out_len > 1 ? o * (float)(in_len - 1) / (out_len - 1) : 0.0f; /* align */
    case 3: return out_len > 1 ? (o + 0.5f) / scale - 0.5f : 0.0f;       /* pytorch_half */
    default: return (o + 0.5f) / scale - 0.5f;                           /* half_pixel */
  }
}

int nearest_index(float s, int mode, int len) {
  int i;
  switch (mode) {
    case 1: i = (int)floor(s); break;                      /* floor */
    case 2: i = (int)ceil(s); break;                       /* ceil */
    case 3: i = (int)floor(s + 0.5f); break;               /* round_prefer_ceil */
    default: i = (int)ceil(s - 0.5f); break;               /* round_prefer_floor */
  }
  return clamp(i, 0, len - 1);
}

/* Resize of the last two dims of NCHW: nearest or (bi)linear. */
__kernel void resize2d(__global const real* x, __global real* y, int H, int W, int OH, int OW,
                       float sh, float sw, int ctm, int linear, int nearest_mode) {
  const int ox = get_global_id(0), oy = get_global_id(1), nc = get_global_id(2);
  if (ox >= OW || oy >= OH) return;
  __global const real* xp = x + (size_t)nc * H * W;
  const float fy = src_coord(oy, sh, H, OH, ctm), fx = src_coord(ox, sw, W, OW, ctm);
  float v;
  if (!linear) {
    v = LD(xp, nearest_index(fy, nearest_mode, H) * W + nearest_index(fx, nearest_mode, W));
  } else {
    const float cy = clamp(fy, 0.0f, (float)(H - 1)), cx = clamp(fx, 0.0f, (float)(W - 1));
    const int y0 = (int)floor(cy), x0 = (int)floor(cx);
    const int y1 = min(y0 + 1, H - 1), x1 = min(x0 + 1, W - 1);
    const float ly = cy - y0, lx = cx - x0;
    v = (1 - ly) * ((1 - lx) * LD(xp, y0 * W + x0) + lx * LD(xp, y0 * W + x1)) +
        ly * ((1 - lx) * LD(xp, y1 * W + x0) + lx * LD(xp, y1 * W + x1));
  }
  ST(y, ((size_t)nc * OH + oy) * OW + ox, v);
}
)CL";
}

}  // namespace edgepack_opencl
