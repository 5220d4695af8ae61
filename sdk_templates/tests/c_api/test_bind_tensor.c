/* SPDX-License-Identifier: Apache-2.0 */
/* API version 7, checked from C: ep_session_bind_tensor. A bound frame gives the outputs of the
 * same bytes set by copy; the run reads the caller's memory when it runs (bytes changed after
 * binding count); the binding lasts one run, after which the input is not set (a pipeline run
 * and, since the stages read the caller's memory, a stage run are refused until it is); a
 * stage input binds too; a misaligned stage input is copied at bind time instead (changes after
 * binding do not count); wrong sizes are refused and leave nothing bound.
 * Usage: test_bind_tensor ARTIFACT DEVICE_KEY PUBLISHER_PUB (a pipeline whose first input is a
 * uint8 frame and whose second stage reads a float32 tensor). Prints "ok" and exits 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_api_check.h"
#include "edgepack.h"

/* A malloc'ed copy of output `index` of `stage` (NULL: the pipeline) after a run. */
static unsigned char* output_copy(ep_session* s, const char* stage, size_t index, size_t* bytes) {
  ep_tensor_info info;
  ep_tensor t;
  unsigned char* copy;
  expect(ep_session_output_info(s, stage, index, &info), EP_OK);
  expect(ep_session_get_tensor(s, stage, info.name, &t), EP_OK);
  copy = (unsigned char*)malloc(t.bytes ? t.bytes : 1);
  memcpy(copy, t.data, t.bytes);
  *bytes = t.bytes;
  return copy;
}

/* Whether output `index` of `stage` equals `want` (`n` bytes). */
static int output_is(ep_session* s, const char* stage, size_t index, const unsigned char* want,
                     size_t n) {
  size_t got_n = 0;
  unsigned char* got = output_copy(s, stage, index, &got_n);
  const int same = got_n == n && memcmp(got, want, n) == 0;
  free(got);
  return same;
}

static void pattern(unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = (unsigned char)((i * 7u + seed * 13u + (i >> 9)) & 0xFF);
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ARTIFACT DEVICE_KEY PUBLISHER_PUB\n", argv[0]);
    return 2;
  }
  ep_env* env = NULL;
  ep_session* s = NULL;
  CHECK(ep_get_api_version() >= 7);
  expect(ep_env_create(EP_API_VERSION, &env), EP_OK);
  ep_key dev = pem_file(argv[2]), pub = pem_file(argv[3]);
  expect(ep_session_create_from_file(env, argv[1], &dev, &pub, NULL, 0, &s), EP_OK);
  if (s == NULL) return 1;
  expect(ep_session_prepare(s), EP_OK);

  ep_tensor_info in;
  expect(ep_session_input_info(s, NULL, 0, &in), EP_OK);
  CHECK(in.dtype == EP_DTYPE_UINT8);
  size_t n = 1;
  for (size_t d = 0; d < in.rank; ++d) n *= (size_t)in.shape[d];
  unsigned char* frame_a = (unsigned char*)malloc(n);
  unsigned char* frame_b = (unsigned char*)malloc(n);
  unsigned char* bound = (unsigned char*)malloc(n);
  pattern(frame_a, n, 1);
  pattern(frame_b, n, 2);
  const char* first = NULL;  /* the first stage (the frame's preprocess) */
  const char* second = NULL; /* the network it feeds */
  expect(ep_session_stage_name(s, 0, &first), EP_OK);
  expect(ep_session_stage_name(s, 1, &second), EP_OK);

  /* The reference: each frame set by copy. */
  size_t pre_n = 0, out_n = 0, pre_b_n = 0;
  expect(ep_session_set_tensor(s, NULL, in.name, EP_DTYPE_UINT8, in.shape, in.rank, frame_a, n),
         EP_OK);
  expect(ep_session_run(s, NULL), EP_OK);
  unsigned char* pre_a = output_copy(s, first, 0, &pre_n);
  unsigned char* out_a = output_copy(s, NULL, 0, &out_n);
  expect(ep_session_set_tensor(s, NULL, in.name, EP_DTYPE_UINT8, in.shape, in.rank, frame_b, n),
         EP_OK);
  expect(ep_session_run(s, NULL), EP_OK);
  unsigned char* pre_b = output_copy(s, first, 0, &pre_b_n);
  CHECK(pre_n == pre_b_n && memcmp(pre_a, pre_b, pre_n) != 0); /* the frames differ */

  /* Bound: the same outputs as the copy of the same bytes. */
  memcpy(bound, frame_a, n);
  expect(ep_session_bind_tensor(s, NULL, in.name, EP_DTYPE_UINT8, in.shape, in.rank, bound, n),
         EP_OK);
  expect(ep_session_run(s, NULL), EP_OK);
  CHECK(output_is(s, first, 0, pre_a, pre_n));
  CHECK(output_is(s, NULL, 0, out_a, out_n));

  /* One run only: then the input is not set, for the pipeline and for a stage. */
  expect_message(ep_session_run(s, NULL), EP_INVALID_ARGUMENT, "was not set");
  expect_message(ep_session_run(s, first), EP_INVALID_ARGUMENT, "was not set");

  /* The run reads the caller's memory when it runs: bytes written after binding count. */
  memcpy(bound, frame_a, n);
  expect(ep_session_bind_tensor(s, NULL, in.name, EP_DTYPE_UINT8, in.shape, in.rank, bound, n),
         EP_OK);
  memcpy(bound, frame_b, n);
  expect(ep_session_run(s, NULL), EP_OK);
  CHECK(output_is(s, first, 0, pre_b, pre_n));

  /* A wrong size is refused and binds nothing. */
  expect_message(
      ep_session_bind_tensor(s, NULL, in.name, EP_DTYPE_UINT8, in.shape, in.rank, bound, n - 1),
      EP_INVALID_ARGUMENT, "bytes");
  expect_message(ep_session_run(s, NULL), EP_INVALID_ARGUMENT, "was not set");

  /* Set again by copy: the pipeline feeds its stages, so a stage run needs nothing set. */
  expect(ep_session_set_tensor(s, NULL, in.name, EP_DTYPE_UINT8, in.shape, in.rank, frame_a, n),
         EP_OK);
  expect(ep_session_run(s, NULL), EP_OK);
  expect(ep_session_run(s, first), EP_OK);
  CHECK(output_is(s, first, 0, pre_a, pre_n));

  /* A stage's float32 input bound in place (aligned) and bound misaligned (copied at bind time:
   * a change after binding does not count). */
  ep_tensor_info sin;
  expect(ep_session_input_info(s, second, 0, &sin), EP_OK);
  CHECK(sin.dtype == EP_DTYPE_FLOAT32 && sin.rank > 0);
  size_t count = 1;
  for (size_t d = 0; d < sin.rank; ++d) count *= (size_t)sin.shape[d];
  const size_t bytes = count * sizeof(float);
  float* x = (float*)malloc(bytes);
  for (size_t i = 0; i < count; ++i) x[i] = (float)((i * 37u) % 101u) / 50.0f - 1.0f;
  size_t ref_n = 0;
  expect(
      ep_session_set_tensor(s, second, sin.name, EP_DTYPE_FLOAT32, sin.shape, sin.rank, x, bytes),
      EP_OK);
  expect(ep_session_run(s, second), EP_OK);
  unsigned char* ref = output_copy(s, second, 0, &ref_n);

  float* aligned = (float*)malloc(bytes);
  memset(aligned, 0, bytes);
  expect(ep_session_bind_tensor(s, second, sin.name, EP_DTYPE_FLOAT32, sin.shape, sin.rank, aligned,
                                bytes),
         EP_OK);
  memcpy(aligned, x, bytes); /* read when the stage runs */
  expect(ep_session_run(s, second), EP_OK);
  CHECK(output_is(s, second, 0, ref, ref_n));
  expect_message(ep_session_run(s, second), EP_INVALID_ARGUMENT, "was not set");

  unsigned char* raw = (unsigned char*)malloc(bytes + 1);
  memcpy(raw + 1, x, bytes);
  expect(ep_session_bind_tensor(s, second, sin.name, EP_DTYPE_FLOAT32, sin.shape, sin.rank, raw + 1,
                                bytes),
         EP_OK);
  memset(raw + 1, 0, bytes); /* copied already: does not count */
  expect(ep_session_run(s, second), EP_OK);
  CHECK(output_is(s, second, 0, ref, ref_n));

  free(raw);
  free(aligned);
  free(ref);
  free(x);
  free(pre_a);
  free(pre_b);
  free(out_a);
  free(bound);
  free(frame_b);
  free(frame_a);
  ep_session_release(s);
  ep_env_release(env);
  return finish();
}
