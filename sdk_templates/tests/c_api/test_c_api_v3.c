/* SPDX-License-Identifier: Apache-2.0 */
/* API version 3, checked from C: a run with an input never set and a read before any run are
 * refused with messages that say what was expected; typed reads check the dtype; labels come
 * through the API; library warnings reach the log callback, not stderr.
 * Usage: test_c_api_v3 ARTIFACT DEVICE_KEY PUBLISHER_PUB. Prints "ok" and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgepack.h"

static int failures = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
      ++failures;                                                                \
    }                                                                            \
  } while (0)

/* Checks the code of `st` and that its message contains `text` (may be NULL), then frees it. */
static void expect(ep_status* st, ep_error_code code, const char* text) {
  if (ep_status_code(st) != code) {
    fprintf(stderr, "expected code %d, got %d (%s)\n", (int)code, (int)ep_status_code(st),
            ep_status_message(st));
    ++failures;
  } else if (text != NULL && strstr(ep_status_message(st), text) == NULL) {
    fprintf(stderr, "expected '%s' in: %s\n", text, ep_status_message(st));
    ++failures;
  }
  ep_status_release(st);
}

static ep_key pem_file(const char* path) {
  ep_key k;
  memset(&k, 0, sizeof(k));
  k.format = EP_KEY_PEM_FILE;
  k.path = path;
  return k;
}

static size_t dtype_size(int32_t dtype) {
  return dtype == EP_DTYPE_UINT8 ? 1 : dtype == EP_DTYPE_INT64 ? 8 : 4;
}

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
  expect(ep_env_create(EP_API_VERSION, &env), EP_OK, NULL);

  /* Warnings go to the callback: a backend that cannot be loaded is reported, then skipped. */
  memset(&log, 0, sizeof(log));
  expect(ep_set_log_callback(on_log, &log), EP_OK, NULL);
  expect(ep_options_create(&options), EP_OK, NULL);
  expect(ep_options_set_backend_preference(options, backends, 2), EP_OK, NULL);
  expect(ep_session_create_from_file(env, argv[1], &dev, &pub, options, 0, &session), EP_OK,
         NULL);
  expect(ep_session_prepare(session), EP_OK, NULL);
  CHECK(log.calls >= 1 && log.level == EP_LOG_WARNING);
  CHECK(strstr(log.text, "no_such_backend") != NULL);
  expect(ep_set_log_callback(NULL, NULL), EP_OK, NULL);

  /* A run before its inputs are set names the input and its expected dtype and shape. */
  expect(ep_session_input_count(session, NULL, &inputs), EP_OK, NULL);
  CHECK(inputs >= 1);
  expect(ep_session_input_info(session, NULL, 0, &in), EP_OK, NULL);
  for (i = 0; i < in.rank; ++i) {
    char dim[32];
    n *= (size_t)in.shape[i];
    snprintf(dim, sizeof(dim), "%s%lld", i ? ", " : "", (long long)in.shape[i]);
    strcat(expected_shape, dim);
  }
  strcat(expected_shape, "]");
  expect(ep_session_run(session, NULL), EP_INVALID_ARGUMENT, "was not set");
  expect(ep_session_run(session, NULL), EP_INVALID_ARGUMENT, expected_shape);

  /* Reading an output before any run is refused (it used to return the upper-bound buffer). */
  expect(ep_session_output_info(session, NULL, 0, &out_info), EP_OK, NULL);
  memset(&out, 0xCD, sizeof(out));
  expect(ep_session_get_tensor(session, NULL, out_info.name, &out), EP_INVALID_ARGUMENT,
         "before a run");
  CHECK(out.bytes == (size_t)0xCDCDCDCDCDCDCDCDull);
  expect(ep_session_get_tensor(session, NULL, "no-such-output", &out), EP_NOT_FOUND, NULL);

  /* A wrong shape names the expected one. */
  n *= dtype_size(in.dtype);
  data = calloc(n, 1);
  {
    int64_t wrong[8];
    for (i = 0; i < in.rank && i < 8; ++i) wrong[i] = in.shape[i];
    wrong[in.rank - 1] += 1;
    expect(ep_session_set_tensor(session, NULL, in.name, (ep_dtype)in.dtype, wrong, in.rank, data,
                                 n),
           EP_INVALID_ARGUMENT, expected_shape);
  }
  for (i = 0; i < inputs; ++i) {
    ep_tensor_info t;
    size_t bytes = 1, d;
    void* zeros;
    expect(ep_session_input_info(session, NULL, i, &t), EP_OK, NULL);
    for (d = 0; d < t.rank; ++d) bytes *= (size_t)t.shape[d];
    bytes *= dtype_size(t.dtype);
    zeros = calloc(bytes ? bytes : 1, 1);
    expect(ep_session_set_tensor(session, NULL, t.name, (ep_dtype)t.dtype, t.shape, t.rank, zeros,
                                 bytes),
           EP_OK, NULL);
    free(zeros);
  }
  expect(ep_session_run(session, NULL), EP_OK, NULL);

  /* Typed reads: the right dtype works, another one is refused and `out` stays untouched. */
  expect(ep_session_get_tensor_typed(session, NULL, out_info.name, (ep_dtype)out_info.dtype,
                                     &out),
         EP_OK, NULL);
  CHECK(out.dtype == out_info.dtype);
  {
    ep_tensor kept = out;
    ep_dtype other = out_info.dtype == EP_DTYPE_FLOAT32 ? EP_DTYPE_UINT8 : EP_DTYPE_FLOAT32;
    expect(ep_session_get_tensor_typed(session, NULL, out_info.name, other, &out),
           EP_INVALID_ARGUMENT, "read as");
    CHECK(memcmp(&kept, &out, sizeof(out)) == 0);
  }

  /* Labels: the artifact's classifier has them (examples/vision-demo). */
  expect(ep_session_label_count(session, NULL, &count), EP_OK, NULL);
  CHECK(count > 0);
  if (count > 0) {
    const char* label = NULL;
    expect(ep_session_label(session, NULL, 0, &label), EP_OK, NULL);
    CHECK(label != NULL && strlen(label) > 0);
    expect(ep_session_label(session, NULL, count, &label), EP_INVALID_ARGUMENT, NULL);
    expect(ep_session_label_count(session, "no-such-model", &count), EP_NOT_FOUND, NULL);
    printf("label0=%s count=%zu\n", label, count);
  }
  free(data);
  ep_session_release(session);
  ep_options_release(options);
  ep_env_release(env);
  if (failures == 0) printf("ok\n");
  return failures == 0 ? 0 : 1;
}
