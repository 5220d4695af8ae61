/* SPDX-License-Identifier: Apache-2.0 */
/* API version 6, checked from C: an artifact whose image input declares source_size_min/max
 * takes camera frames of other sizes through ep_session_set_image (BGR with a padded row
 * stride), one size per run, and refuses frames outside the bounds with a message naming them.
 * Usage: test_frame_size ARTIFACT DEVICE_KEY PUBLISHER_PUB HxW:FILE...
 * Each FILE holds a packed BGR frame of H x W pixels. Prints "bounds MINH MINW MAXH MAXW", then
 * per frame "frame HxW" and one line per pipeline output: "out NAME DTYPE RANK DIMS... :
 * VALUES..." (float32 as %.6f, int64 as integers); "ok" last. Exits 0 when every check held. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_api_check.h"
#include "edgepack.h"

/* A BGR frame of `w` x `h` with rows `stride` bytes apart (the padding bytes are 0xAB). */
static ep_image bgr_frame(uint8_t* pixels, int32_t w, int32_t h, size_t stride) {
  ep_image im;
  memset(&im, 0, sizeof(im));
  im.format = EP_PIXEL_BGR8;
  im.width = w;
  im.height = h;
  im.planes[0] = pixels;
  im.strides[0] = stride;
  return im;
}

static void print_outputs(ep_session* s) {
  size_t count = 0;
  expect_message(ep_session_output_count(s, NULL, &count), EP_OK, NULL);
  for (size_t i = 0; i < count; ++i) {
    ep_tensor_info info;
    ep_tensor t;
    expect_message(ep_session_output_info(s, NULL, i, &info), EP_OK, NULL);
    expect_message(ep_session_get_tensor(s, NULL, info.name, &t), EP_OK, NULL);
    printf("out %s %d %zu", info.name, (int)t.dtype, t.rank);
    size_t n = 1;
    for (size_t d = 0; d < t.rank; ++d) {
      printf(" %" PRId64, t.shape[d]);
      n *= (size_t)t.shape[d];
    }
    printf(" :");
    for (size_t k = 0; k < n; ++k) {
      if (t.dtype == EP_DTYPE_FLOAT32)
        printf(" %.6f", (double)((const float*)t.data)[k]);
      else if (t.dtype == EP_DTYPE_INT64)
        printf(" %" PRId64, ((const int64_t*)t.data)[k]);
    }
    printf("\n");
  }
}

static int run_frame(ep_session* s, const char* spec) {
  int h = 0, w = 0;
  char path[1024];
  if (sscanf(spec, "%dx%d:%1023s", &h, &w, path) != 3) {
    fprintf(stderr, "bad frame argument: %s\n", spec);
    return 0;
  }
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", path);
    return 0;
  }
  const size_t row = (size_t)w * 3, stride = row + 8;
  uint8_t* pixels = (uint8_t*)malloc(stride * (size_t)h);
  memset(pixels, 0xAB, stride * (size_t)h);
  int ok = 1;
  for (int y = 0; y < h && ok; ++y) ok = fread(pixels + (size_t)y * stride, 1, row, f) == row;
  fclose(f);
  if (ok) {
    ep_image im = bgr_frame(pixels, w, h, stride);
    expect_message(ep_session_set_image(s, NULL, "image", &im, 0), EP_OK, NULL);
    expect_message(ep_session_run(s, NULL), EP_OK, NULL);
    printf("frame %dx%d\n", h, w);
    print_outputs(s);
  }
  free(pixels);
  return ok;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s ARTIFACT DEVICE_KEY PUBLISHER_PUB HxW:FILE...\n", argv[0]);
    return 2;
  }
  ep_env* env = NULL;
  ep_session* s = NULL;
  CHECK(ep_get_api_version() >= 6);
  expect_message(ep_env_create(EP_API_VERSION, &env), EP_OK, NULL);
  ep_key dev = pem_file(argv[2]), pub = pem_file(argv[3]);
  expect_message(ep_session_create_from_file(env, argv[1], &dev, &pub, NULL, 0, &s), EP_OK, NULL);
  if (s == NULL) return 1;

  int64_t lo[2] = {-1, -1}, hi[2] = {-1, -1};
  expect_message(ep_session_input_size_bounds(s, NULL, "image", lo, hi), EP_OK, NULL);
  printf("bounds %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", lo[0], lo[1], hi[0], hi[1]);
  expect_message(ep_session_input_size_bounds(s, NULL, "nope", lo, hi), EP_NOT_FOUND, "nope");
  expect_message(ep_session_input_size_bounds(s, NULL, "image", NULL, hi), EP_INVALID_ARGUMENT,
                 NULL);

  /* Outside the bounds, one pixel too narrow and one too tall: refused, naming both sizes. */
  const int32_t w_small = (int32_t)lo[1] - 1, h_big = (int32_t)hi[0] + 1;
  uint8_t* big = (uint8_t*)calloc((size_t)h_big * (size_t)hi[1] * 3, 1);
  char want[160];
  ep_image im = bgr_frame(big, w_small, (int32_t)lo[0], (size_t)hi[1] * 3);
  snprintf(want, sizeof want, "image is %dx%d, input 'image' accepts %dx%d to %dx%d", w_small,
           (int)lo[0], (int)lo[1], (int)lo[0], (int)hi[1], (int)hi[0]);
  expect_message(ep_session_set_image(s, NULL, "image", &im, 0), EP_INVALID_ARGUMENT, want);
  im = bgr_frame(big, (int32_t)hi[1], h_big, (size_t)hi[1] * 3);
  expect_message(ep_session_set_image(s, NULL, "image", &im, 0), EP_INVALID_ARGUMENT, "accepts");
  /* The same bounds hold for ep_session_set_tensor with an HWC shape. */
  const int64_t shape[3] = {h_big, hi[1], 3};
  snprintf(want, sizeof want, "(height %d..%d, width %d..%d)", (int)lo[0], (int)hi[0], (int)lo[1],
           (int)hi[1]);
  expect_message(ep_session_set_tensor(s, NULL, "image", EP_DTYPE_UINT8, shape, 3, big,
                                       (size_t)h_big * (size_t)hi[1] * 3),
                 EP_INVALID_ARGUMENT, want);
  free(big);
  /* Nothing was set by the refused calls: a run is still refused. */
  expect_message(ep_session_run(s, NULL), EP_INVALID_ARGUMENT, "was not set");

  for (int i = 4; i < argc; ++i) CHECK(run_frame(s, argv[i]));

  ep_session_release(s);
  ep_env_release(env);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
