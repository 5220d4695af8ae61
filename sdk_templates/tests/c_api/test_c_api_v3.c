/* SPDX-License-Identifier: Apache-2.0 */
/* API version 3, checked from C: a run with an input never set and a read before any run are
 * refused with messages that say what was expected; typed reads check the dtype; labels come
 * through the API; library warnings reach the log callback, not stderr; camera frames
 * (packed with a row stride, NV12) go in through ep_session_set_image.
 * Usage: test_c_api_v3 ARTIFACT DEVICE_KEY PUBLISHER_PUB. Prints "ok" and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_api_check.h"
#include "edgepack.h"

struct log_record {
  int calls;
  int level;
  char text[512];
};

static void on_log(void* user, int32_t level, const char* message) {
  struct log_record* r = (struct log_record*)user;
  ++r->calls;
  r->level = level;
  strncpy(r->text, message, sizeof(r->text) - 1);
}

/* Copies the first output of the first stage (the image preprocess: it depends on every
 * pixel) after a pipeline run. */
static unsigned char* output_copy(ep_session* s, const ep_tensor_info* unused, size_t* bytes) {
  ep_tensor t;
  ep_tensor_info info;
  const char* stage = NULL;
  unsigned char* copy;
  (void)unused;
  expect_message(ep_session_stage_name(s, 0, &stage), EP_OK, NULL);
  expect_message(ep_session_output_info(s, stage, 0, &info), EP_OK, NULL);
  expect_message(ep_session_get_tensor(s, stage, info.name, &t), EP_OK, NULL);
  copy = (unsigned char*)malloc(t.bytes ? t.bytes : 1);
  memcpy(copy, t.data, t.bytes);
  *bytes = t.bytes;
  return copy;
}

/* Camera frames: a packed RGB frame with padded rows (the input wants bgr) gives the same
 * outputs as the same pixels set as a tensor; an NV12 frame runs; wrong sizes are refused. */
static void check_images(ep_session* s, const ep_tensor_info* in, const ep_tensor_info* out) {
  const int w = (int)in->shape[in->rank - 2], h = (int)in->shape[in->rank - 3];
  const size_t stride = (size_t)w * 3 + 24;
  unsigned char* rgb = (unsigned char*)malloc(stride * (size_t)h);
  unsigned char* bgr = (unsigned char*)malloc((size_t)w * (size_t)h * 3);
  unsigned char* nv12 = (unsigned char*)malloc((size_t)w * (size_t)h * 3 / 2);
  unsigned char *a, *b;
  size_t na = 0, nb = 0, x, y;
  ep_image img;
  memset(rgb, 0xEE, stride * (size_t)h);
  for (y = 0; y < (size_t)h; ++y)
    for (x = 0; x < (size_t)w; ++x) {
      unsigned char* p = rgb + y * stride + x * 3;
      unsigned char* q = bgr + (y * (size_t)w + x) * 3;
      p[0] = (unsigned char)(x * 255 / (size_t)w); /* a gradient with a bright square */
      p[1] = (unsigned char)(y * 255 / (size_t)h);
      p[2] = (x > (size_t)w / 3 && x < (size_t)w / 2 && y > (size_t)h / 3) ? 250 : 40;
      q[0] = p[2], q[1] = p[1], q[2] = p[0];
    }
  memset(&img, 0, sizeof(img));
  img.format = EP_PIXEL_RGB8;
  img.width = w;
  img.height = h;
  img.planes[0] = rgb;
  img.strides[0] = stride;
  expect_message(ep_session_set_image(s, NULL, in->name, &img, 0), EP_OK, NULL);
  expect_message(ep_session_run(s, NULL), EP_OK, NULL);
  a = output_copy(s, out, &na);
  expect_message(ep_session_set_tensor(s, NULL, in->name, EP_DTYPE_UINT8, in->shape, in->rank, bgr,
                                       (size_t)w * (size_t)h * 3),
                 EP_OK, NULL);
  expect_message(ep_session_run(s, NULL), EP_OK, NULL);
  b = output_copy(s, out, &nb);
  CHECK(na > 0 && na == nb && memcmp(a, b, na) == 0);
  free(a);
  free(b);

  /* NV12, mid-gray with a colour cast. */
  memset(nv12, 126, (size_t)w * (size_t)h);
  for (x = 0; x < (size_t)w * (size_t)h / 2; x += 2)
    nv12[(size_t)w * (size_t)h + x] = 90, nv12[(size_t)w * (size_t)h + x + 1] = 200;
  img.format = EP_PIXEL_NV12;
  img.planes[0] = nv12;
  img.planes[1] = nv12 + (size_t)w * (size_t)h;
  img.strides[0] = img.strides[1] = (size_t)w;
  expect_message(ep_session_set_image(s, NULL, in->name, &img, 0), EP_OK, NULL);
  expect_message(ep_session_run(s, NULL), EP_OK, NULL);

  img.width = w - 2;
  expect_message(ep_session_set_image(s, NULL, in->name, &img, 0), EP_INVALID_ARGUMENT,
                 "(width x height)");
  img.width = w;
  img.format = 99;
  expect_message(ep_session_set_image(s, NULL, in->name, &img, 0), EP_INVALID_ARGUMENT,
                 "ep_pixel_format");
  img.format = EP_PIXEL_NV12;
  expect_message(ep_session_set_image(s, NULL, in->name, &img, 1), EP_INVALID_ARGUMENT, "flags");
  expect_message(ep_session_set_image(s, NULL, "no-such-input", &img, 0), EP_NOT_FOUND, NULL);
  free(rgb);
  free(bgr);
  free(nv12);
}

int main(int argc, char** argv) {
  ep_env* env = NULL;
  ep_session* session = NULL;
  ep_options* options = NULL;
  ep_key dev, pub;
  ep_tensor_info in, out_info;
  ep_tensor out;
  size_t n = 1, i, count = 0, inputs = 0;
  void* data;
  char expected_shape[128] = "[";
  struct log_record log;
  const char* backends[] = {"no_such_backend", "cpu"};
  if (argc != 4) {
    fprintf(stderr, "usage: test_c_api_v3 ARTIFACT DEVICE_KEY PUBLISHER_PUB\n");
    return 2;
  }
  dev = pem_file(argv[2]);
  pub = pem_file(argv[3]);
  CHECK(ep_get_api_version() >= 3);
  expect_message(ep_env_create(EP_API_VERSION, &env), EP_OK, NULL);

  /* Warnings go to the callback: a backend that cannot be loaded is reported, then skipped. */
  memset(&log, 0, sizeof(log));
  expect_message(ep_set_log_callback(on_log, &log), EP_OK, NULL);
  expect_message(ep_options_create(&options), EP_OK, NULL);
  expect_message(ep_options_set_backend_preference(options, backends, 2), EP_OK, NULL);
  expect_message(ep_session_create_from_file(env, argv[1], &dev, &pub, options, 0, &session), EP_OK,
                 NULL);
  expect_message(ep_session_prepare(session), EP_OK, NULL);
  CHECK(log.calls >= 1 && log.level == EP_LOG_WARNING);
  CHECK(strstr(log.text, "no_such_backend") != NULL);
  expect_message(ep_set_log_callback(NULL, NULL), EP_OK, NULL);

  /* A run before its inputs are set names the input and its expected dtype and shape. */
  expect_message(ep_session_input_count(session, NULL, &inputs), EP_OK, NULL);
  CHECK(inputs >= 1);
  expect_message(ep_session_input_info(session, NULL, 0, &in), EP_OK, NULL);
  for (i = 0; i < in.rank; ++i) {
    char dim[32];
    n *= (size_t)in.shape[i];
    snprintf(dim, sizeof(dim), "%s%lld", i ? ", " : "", (long long)in.shape[i]);
    strcat(expected_shape, dim);
  }
  strcat(expected_shape, "]");
  expect_message(ep_session_run(session, NULL), EP_INVALID_ARGUMENT, "was not set");
  expect_message(ep_session_run(session, NULL), EP_INVALID_ARGUMENT, expected_shape);

  /* Reading an output before any run is refused (it used to return the upper-bound buffer). */
  expect_message(ep_session_output_info(session, NULL, 0, &out_info), EP_OK, NULL);
  memset(&out, 0xCD, sizeof(out));
  expect_message(ep_session_get_tensor(session, NULL, out_info.name, &out), EP_INVALID_ARGUMENT,
                 "before a run");
  CHECK(out.bytes == (size_t)0xCDCDCDCDCDCDCDCDull);
  expect_message(ep_session_get_tensor(session, NULL, "no-such-output", &out), EP_NOT_FOUND, NULL);

  /* A wrong shape names the expected one. */
  n *= dtype_size(in.dtype);
  data = calloc(n, 1);
  {
    int64_t wrong[8];
    for (i = 0; i < in.rank && i < 8; ++i) wrong[i] = in.shape[i];
    wrong[in.rank - 1] += 1;
    expect_message(
        ep_session_set_tensor(session, NULL, in.name, (ep_dtype)in.dtype, wrong, in.rank, data, n),
        EP_INVALID_ARGUMENT, expected_shape);
  }
  for (i = 0; i < inputs; ++i) {
    ep_tensor_info t;
    size_t bytes = 1, d;
    void* zeros;
    expect_message(ep_session_input_info(session, NULL, i, &t), EP_OK, NULL);
    for (d = 0; d < t.rank; ++d) bytes *= (size_t)t.shape[d];
    bytes *= dtype_size(t.dtype);
    zeros = calloc(bytes ? bytes : 1, 1);
    expect_message(ep_session_set_tensor(session, NULL, t.name, (ep_dtype)t.dtype, t.shape, t.rank,
                                         zeros, bytes),
                   EP_OK, NULL);
    free(zeros);
  }
  expect_message(ep_session_run(session, NULL), EP_OK, NULL);

  /* Typed reads: the right dtype works, another one is refused and `out` stays untouched. */
  expect_message(
      ep_session_get_tensor_typed(session, NULL, out_info.name, (ep_dtype)out_info.dtype, &out),
      EP_OK, NULL);
  CHECK(out.dtype == out_info.dtype);
  {
    ep_tensor kept = out;
    ep_dtype other = out_info.dtype == EP_DTYPE_FLOAT32 ? EP_DTYPE_UINT8 : EP_DTYPE_FLOAT32;
    expect_message(ep_session_get_tensor_typed(session, NULL, out_info.name, other, &out),
                   EP_INVALID_ARGUMENT, "read as");
    CHECK(memcmp(&kept, &out, sizeof(out)) == 0);
  }

  check_images(session, &in, &out_info);

  /* Labels: the artifact's classifier has them (examples/vision-demo). */
  expect_message(ep_session_label_count(session, NULL, &count), EP_OK, NULL);
  CHECK(count > 0);
  if (count > 0) {
    const char* label = NULL;
    expect_message(ep_session_label(session, NULL, 0, &label), EP_OK, NULL);
    CHECK(label != NULL && strlen(label) > 0);
    expect_message(ep_session_label(session, NULL, count, &label), EP_INVALID_ARGUMENT, NULL);
    expect_message(ep_session_label_count(session, "no-such-model", &count), EP_NOT_FOUND, NULL);
    printf("label0=%s count=%zu\n", label, count);
  }
  free(data);
  ep_session_release(session);
  ep_options_release(options);
  ep_env_release(env);
  return finish();
}
