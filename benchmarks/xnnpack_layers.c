// SPDX-License-Identifier: Apache-2.0
// One 2-D convolution layer through XNNPACK's operator API (the 2022 snapshot Debian ships as
// libxnnpack-dev), on one thread (no pthreadpool), timed per xnn_run_operator call.
// benchmarks/xnnpack_layers.py compiles and drives it; it is not part of the SDK.
//
//   xnnpack_layers CIN H W COUT K STRIDE PAD GROUPS ITERS WARMUP DIR
//
// DIR holds input.f32 (NCHW), weight.f32 (OIHW) and bias.f32 as raw float32. It writes
// DIR/out_nhwc.f32 (the NHWC operator's result, transposed back to NCHW) and, when XNNPACK
// has an NCHW operator for the layer, DIR/out_nchw.f32; then one JSON object on stdout:
// per-run milliseconds of the NHWC operator ("nhwc"), of the NCHW operator ("nchw", or null
// with "nchw_status"), and of the layout transposes an NCHW graph needs around the NHWC
// operator ("to_nhwc" for the input, "to_nchw" for the output; plain tiled loops).
#define _POSIX_C_SOURCE 200809L  // clock_gettime
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xnnpack.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static float* alloc_floats(size_t n) {
  // XNNPACK may read up to XNN_EXTRA_BYTES past the end of a buffer
  size_t bytes = (n * sizeof(float) + XNN_EXTRA_BYTES + 63) / 64 * 64;
  float* p = aligned_alloc(64, bytes);
  if (p == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  memset(p, 0, bytes);
  return p;
}

static float* read_floats(const char* dir, const char* name, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(1);
  }
  float* p = alloc_floats(n);
  if (fread(p, sizeof(float), n, f) != n) {
    fprintf(stderr, "%s is shorter than %zu floats\n", path, n);
    exit(1);
  }
  fclose(f);
  return p;
}

static void write_floats(const char* dir, const char* name, const float* p, size_t n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "wb");
  if (f == NULL || fwrite(p, sizeof(float), n, f) != n) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

// dst[j][i] = src[i][j] for a rows x cols matrix, in 32x32 tiles written row by row (whole
// cache lines): NCHW <-> NHWC of one image (rows = C, cols = H*W one way; rows = H*W, cols = C
// the other).
static void transpose(const float* src, float* dst, size_t rows, size_t cols) {
  enum { kTile = 32 };
  for (size_t i0 = 0; i0 < rows; i0 += kTile) {
    size_t i1 = i0 + kTile < rows ? i0 + kTile : rows;
    for (size_t j0 = 0; j0 < cols; j0 += kTile) {
      size_t j1 = j0 + kTile < cols ? j0 + kTile : cols;
      for (size_t j = j0; j < j1; j++)
        for (size_t i = i0; i < i1; i++) dst[j * rows + i] = src[i * cols + j];
    }
  }
}

static void print_samples(const char* key, const double* s, size_t n) {
  printf("\"%s\": [", key);
  for (size_t i = 0; i < n; i++) printf("%s%.6f", i ? ", " : "", s[i]);
  printf("]");
}

// Times `iters` runs of `op` after `warmup`; returns 0 or the failing status.
static enum xnn_status time_op(xnn_operator_t op, size_t iters, size_t warmup, double* out) {
  for (size_t i = 0; i < warmup + iters; i++) {
    double t0 = now_ms();
    enum xnn_status st = xnn_run_operator(op, NULL);
    if (st != xnn_status_success) return st;
    if (i >= warmup) out[i - warmup] = now_ms() - t0;
  }
  return xnn_status_success;
}

int main(int argc, char** argv) {
  if (argc != 12) {
    fprintf(stderr, "usage: %s CIN H W COUT K STRIDE PAD GROUPS ITERS WARMUP DIR\n", argv[0]);
    return 2;
  }
  size_t v[10];
  for (int i = 0; i < 10; i++) v[i] = (size_t)strtoul(argv[i + 1], NULL, 10);
  const size_t cin = v[0], h = v[1], w = v[2], cout = v[3], k = v[4], stride = v[5], pad = v[6],
               groups = v[7], iters = v[8], warmup = v[9];
  const char* dir = argv[11];
  if (groups == 0 || cin % groups || cout % groups || iters == 0 || stride == 0 || k == 0) {
    fprintf(stderr, "bad layer arguments\n");
    return 2;
  }
  const size_t gi = cin / groups, go = cout / groups;
  const size_t oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;

  if (xnn_initialize(NULL) != xnn_status_success) {
    fprintf(stderr, "xnn_initialize failed (unsupported CPU?)\n");
    return 1;
  }
  float* in_nchw = read_floats(dir, "input.f32", cin * h * w);
  float* w_oihw = read_floats(dir, "weight.f32", cout * gi * k * k);
  float* bias = read_floats(dir, "bias.f32", cout);
  // XNNPACK's kernel layout: [groups][group_output_channels][kh][kw][group_input_channels]
  float* w_ohwi = alloc_floats(cout * gi * k * k);
  for (size_t o = 0; o < cout; o++)
    for (size_t c = 0; c < gi; c++)
      for (size_t t = 0; t < k * k; t++)
        w_ohwi[(o * k * k + t) * gi + c] = w_oihw[(o * gi + c) * k * k + t];

  float* in_nhwc = alloc_floats(cin * h * w);
  float* out_nhwc = alloc_floats(cout * oh * ow);
  float* out_nchw = alloc_floats(cout * oh * ow);
  double* s_nhwc = calloc(iters, sizeof(double));
  double* s_nchw = calloc(iters, sizeof(double));
  double* s_in = calloc(iters, sizeof(double));
  double* s_out = calloc(iters, sizeof(double));
  if (!s_nhwc || !s_nchw || !s_in || !s_out) return 1;

  xnn_operator_t op = NULL;
  enum xnn_status st =
      xnn_create_convolution2d_nhwc_f32(pad, pad, pad, pad, k, k, stride, stride, 1, 1, groups, gi,
                                        go, cin, cout, w_ohwi, bias, -INFINITY, INFINITY, 0, &op);
  if (st != xnn_status_success) {
    fprintf(stderr, "xnn_create_convolution2d_nhwc_f32 failed: status %d\n", st);
    return 1;
  }
  st = xnn_setup_convolution2d_nhwc_f32(op, 1, h, w, in_nhwc, out_nhwc, NULL);
  if (st != xnn_status_success) {
    fprintf(stderr, "xnn_setup_convolution2d_nhwc_f32 failed: status %d\n", st);
    return 1;
  }
  transpose(in_nchw, in_nhwc, cin, h * w);
  if ((st = time_op(op, iters, warmup, s_nhwc)) != xnn_status_success) {
    fprintf(stderr, "xnn_run_operator failed: status %d\n", st);
    return 1;
  }
  transpose(out_nhwc, out_nchw, oh * ow, cout);
  write_floats(dir, "out_nhwc.f32", out_nchw, cout * oh * ow);
  xnn_delete_operator(op);
  op = NULL;
  for (size_t i = 0; i < warmup + iters; i++) {
    double t0 = now_ms();
    transpose(in_nchw, in_nhwc, cin, h * w);
    double t1 = now_ms();
    transpose(out_nhwc, out_nchw, oh * ow, cout);
    double t2 = now_ms();
    if (i >= warmup) s_in[i - warmup] = t1 - t0, s_out[i - warmup] = t2 - t1;
  }

  // The NCHW operator covers few layers (depthwise 3x3 / 5x5, 1x1 as sparse x dense, and a
  // 3-channel 3x3 stride-2 stem that reads NHWC); others are refused at create.
  const uint32_t nchw_flags = (gi == 3 && groups == 1 && k == 3) ? XNN_FLAG_INPUT_NHWC : 0;
  const float* nchw_in = nchw_flags ? in_nhwc : in_nchw;
  enum xnn_status nchw_st = xnn_create_convolution2d_nchw_f32(
      pad, pad, pad, pad, k, k, stride, stride, 1, 1, groups, gi, go, cin, cout, w_ohwi, bias,
      -INFINITY, INFINITY, nchw_flags, &op);
  if (nchw_st == xnn_status_success)
    nchw_st = xnn_setup_convolution2d_nchw_f32(op, 1, h, w, nchw_in, out_nchw, NULL);
  if (nchw_st == xnn_status_success) nchw_st = time_op(op, iters, warmup, s_nchw);
  if (nchw_st == xnn_status_success) write_floats(dir, "out_nchw.f32", out_nchw, cout * oh * ow);
  if (op != NULL) xnn_delete_operator(op);

  printf("{");
  print_samples("nhwc", s_nhwc, iters);
  printf(", ");
  if (nchw_st == xnn_status_success)
    print_samples("nchw", s_nchw, iters);
  else
    printf("\"nchw\": null");
  printf(", \"nchw_status\": %d, \"nchw_input_nhwc\": %s, ", (int)nchw_st,
         nchw_flags ? "true" : "false");
  print_samples("to_nhwc", s_in, iters);
  printf(", ");
  print_samples("to_nchw", s_out, iters);
  printf("}\n");
  xnn_deinitialize();
  return 0;
}
