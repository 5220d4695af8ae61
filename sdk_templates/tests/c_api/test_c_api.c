/* SPDX-License-Identifier: Apache-2.0 */
/* The C API's rules, checked from C: NULL status means success, release functions accept
 * NULL, out-parameters stay untouched on error, codes match the documented values.
 * Usage: test_c_api ARTIFACT DEVICE_KEY OTHER_DEVICE_KEY PUBLISHER_PUB
 * (ARTIFACT sealed to DEVICE_KEY, not to OTHER_DEVICE_KEY). Prints "ok" and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_api_check.h"
#include "edgepack.h"

/* Inputs set once stay valid for every later run of that stage: the second run of the first
 * stage gives the same output (the stage's memory plan may reuse input space within a run). */
static void check_stage_inputs_persist(ep_session* session) {
  const char* stage = NULL;
  ep_tensor_info in;
  ep_tensor out;
  size_t n = 1, i, first_bytes = 0;
  unsigned char* data;
  unsigned char* first;
  expect(ep_session_stage_name(session, 0, &stage), EP_OK);
  expect(ep_session_input_info(session, stage, 0, &in), EP_OK);
  for (i = 0; i < in.rank; ++i) n *= (size_t)in.shape[i];
  n *= dtype_size(in.dtype);
  data = (unsigned char*)malloc(n);
  for (i = 0; i < n; ++i) data[i] = (unsigned char)(i * 7u + 3u);
  if (in.dtype == EP_DTYPE_FLOAT32)
    for (i = 0; i + 4 <= n; i += 4) data[i + 3] = 0x3f; /* finite floats in [0.5, 2) */
  expect(ep_session_set_tensor(session, stage, in.name, (ep_dtype)in.dtype, in.shape, in.rank, data,
                               n),
         EP_OK);
  expect(ep_session_run(session, stage), EP_OK);
  {
    ep_tensor_info oi;
    expect(ep_session_output_info(session, stage, 0, &oi), EP_OK);
    expect(ep_session_get_tensor(session, stage, oi.name, &out), EP_OK);
    first_bytes = out.bytes;
    first = (unsigned char*)malloc(first_bytes ? first_bytes : 1);
    memcpy(first, out.data, first_bytes);
    expect(ep_session_run(session, stage), EP_OK);
    expect(ep_session_get_tensor(session, stage, oi.name, &out), EP_OK);
  }
  CHECK(out.bytes == first_bytes && memcmp(out.data, first, first_bytes) == 0);
  free(first);
  free(data);
}

int main(int argc, char** argv) {
  ep_env* env = NULL;
  ep_env* sentinel_env = (ep_env*)0x1;
  ep_options* options = NULL;
  ep_session* session = NULL;
  ep_session* sentinel = (ep_session*)0x1;
  ep_key dev, other, pub, bad;
  size_t count = 12345, size = 0;
  char* bytes;
  if (argc != 5) {
    fprintf(stderr, "usage: test_c_api ARTIFACT DEVICE_KEY OTHER_DEVICE_KEY PUBLISHER_PUB\n");
    return 2;
  }
  dev = pem_file(argv[2]);
  other = pem_file(argv[3]);
  pub = pem_file(argv[4]);

  /* NULL rules. */
  CHECK(ep_status_code(NULL) == EP_OK);
  CHECK(strcmp(ep_status_message(NULL), "") == 0);
  ep_status_release(NULL);
  ep_env_release(NULL);
  ep_options_release(NULL);
  ep_session_release(NULL);
  CHECK(ep_get_api_version() == EP_API_VERSION);
  CHECK(strlen(ep_get_version()) > 0);

  /* Env: a newer header is refused and the out-parameter stays untouched. */
  expect(ep_env_create(EP_API_VERSION + 1, &sentinel_env), EP_UNSUPPORTED);
  CHECK(sentinel_env == (ep_env*)0x1);
  expect(ep_env_create(EP_API_VERSION, NULL), EP_INVALID_ARGUMENT);
  expect(ep_env_create(EP_API_VERSION, &env), EP_OK);
  CHECK(env != NULL);

  /* Options. */
  expect(ep_options_create(&options), EP_OK);
  expect(ep_options_set_threads(options, 0), EP_INVALID_ARGUMENT);
  expect(ep_options_set_threads(NULL, 2), EP_INVALID_ARGUMENT);
  expect(ep_options_set_threads(options, 2), EP_OK);
  {
    const int32_t bad[] = {0, -1};
    const int32_t big[] = {1024};
    expect(ep_options_set_cpus(options, bad, 2), EP_INVALID_ARGUMENT);
    expect(ep_options_set_cpus(options, big, 1), EP_INVALID_ARGUMENT);
    expect(ep_options_set_cpus(options, NULL, 1), EP_INVALID_ARGUMENT);
    expect(ep_options_set_cpus(NULL, bad, 1), EP_INVALID_ARGUMENT);
    expect(ep_options_set_cpus(options, bad, 1), EP_OK);
    expect(ep_options_set_cpus(options, NULL, 0), EP_OK); /* unpinned again */
  }
  expect(ep_options_set_backend_preference(options, NULL, 1), EP_INVALID_ARGUMENT);
  expect(ep_options_set_min_version_counter(options, 0), EP_OK);

  /* Session creation failures: each with its code, `out` untouched. */
  expect(ep_session_create_from_file(env, argv[1], &dev, &pub, options, 1, &sentinel),
         EP_INVALID_ARGUMENT); /* reserved flags */
  expect(ep_session_create_from_file(env, "does-not-exist.epk", &dev, &pub, options, 0, &sentinel),
         EP_NOT_FOUND);
  expect(ep_session_create_from_file(env, argv[1], &other, &pub, options, 0, &sentinel),
         EP_ARTIFACT_INVALID); /* not a recipient */
  expect(ep_session_create_from_file(env, argv[1], &pub, &pub, options, 0, &sentinel),
         EP_INVALID_ARGUMENT); /* a public key where the device key goes */
  bad = pem_file("no-such-key.pem");
  expect(ep_session_create_from_file(env, argv[1], &bad, &pub, options, 0, &sentinel),
         EP_NOT_FOUND);
  expect(ep_session_create_from_file(env, argv[1], NULL, &pub, options, 0, &sentinel),
         EP_INVALID_ARGUMENT);
  expect(ep_session_create_from_file(NULL, argv[1], &dev, &pub, options, 0, &sentinel),
         EP_INVALID_ARGUMENT);
  expect(ep_options_set_min_version_counter(options, (uint64_t)-1), EP_OK);
  expect(ep_session_create_from_file(env, argv[1], &dev, &pub, options, 0, &sentinel),
         EP_ARTIFACT_INVALID); /* counter below the minimum */
  CHECK(sentinel == (ep_session*)0x1);
  expect(ep_options_set_min_version_counter(options, 0), EP_OK);

  /* A tampered copy in memory. */
  bytes = read_file(argv[1], &size);
  CHECK(bytes != NULL && size > 200);
  if (bytes != NULL) {
    ep_status* st;
    bytes[size / 2] ^= 0x10;
    st = ep_session_create_from_memory(env, bytes, size, &dev, &pub, NULL, 0, &sentinel);
    CHECK(ep_status_code(st) == EP_ARTIFACT_INVALID);
    CHECK(strncmp(ep_status_message(st), "artifact invalid", 16) == 0);
    ep_status_release(st);
    CHECK(sentinel == (ep_session*)0x1);
    bytes[size / 2] ^= 0x10;
    /* The same bytes from memory, with the PEM publisher key as bytes. */
    {
      size_t pem_size = 0;
      char* pem = read_file(argv[4], &pem_size);
      ep_key pub_bytes;
      memset(&pub_bytes, 0, sizeof(pub_bytes));
      pub_bytes.format = EP_KEY_PEM_BYTES;
      pub_bytes.data = pem;
      pub_bytes.size = pem_size;
      expect(ep_session_create_from_memory(env, bytes, size, &dev, &pub_bytes, NULL, 0, &session),
             EP_OK);
      ep_session_release(session);
      session = NULL;
      free(pem);
    }
    free(bytes);
  }

  /* A good session; queries with bad arguments leave out-parameters untouched. */
  expect(ep_session_create_from_file(env, argv[1], &dev, &pub, options, 0, &session), EP_OK);
  CHECK(session != NULL);
  expect(ep_session_prepare(session), EP_OK);
  expect(ep_session_prepare(session), EP_OK); /* idempotent */
  expect(ep_session_stage_count(session, &count), EP_OK);
  CHECK(count > 0 && count != 12345);
  {
    const char* name = "untouched";
    ep_tensor_info info;
    ep_tensor tensor;
    double verify = -1, decrypt = -1, prep = -1;
    expect(ep_session_stage_name(session, count, &name), EP_INVALID_ARGUMENT);
    CHECK(strcmp(name, "untouched") == 0);
    expect(ep_session_stage_name(session, 0, &name), EP_OK);
    CHECK(strcmp(name, "untouched") != 0);
    count = 777;
    expect(ep_session_input_count(session, "no-such-stage", &count), EP_NOT_FOUND);
    CHECK(count == 777);
    expect(ep_session_input_count(session, NULL, &count), EP_OK);
    CHECK(count >= 1);
    memset(&info, 0xAB, sizeof(info));
    expect(ep_session_input_info(session, NULL, count, &info), EP_INVALID_ARGUMENT);
    CHECK(info.rank == (size_t)0xABABABABABABABABull);
    expect(ep_session_input_info(session, NULL, 0, &info), EP_OK);
    CHECK(info.name != NULL && info.rank >= 1);
    /* wrong dtype / wrong size are refused */
    {
      int64_t one = 1;
      float f = 0;
      ep_dtype wrong = info.dtype == EP_DTYPE_FLOAT32 ? EP_DTYPE_INT64 : EP_DTYPE_FLOAT32;
      expect(ep_session_set_tensor(session, NULL, info.name, wrong, info.shape, info.rank, &f,
                                   sizeof(f)),
             EP_INVALID_ARGUMENT);
      expect(ep_session_set_tensor(session, NULL, info.name, (ep_dtype)info.dtype, &one, 1, &f,
                                   sizeof(f)),
             EP_INVALID_ARGUMENT);
      expect(ep_session_set_tensor(session, NULL, "no-such-input", (ep_dtype)info.dtype, info.shape,
                                   info.rank, &f, sizeof(f)),
             EP_NOT_FOUND);
    }
    expect(ep_session_run(session, "no-such-stage"), EP_NOT_FOUND);
    memset(&tensor, 0xCD, sizeof(tensor));
    expect(ep_session_get_tensor(session, NULL, "no-such-output", &tensor), EP_NOT_FOUND);
    CHECK(tensor.bytes == (size_t)0xCDCDCDCDCDCDCDCDull);
    expect(ep_session_load_timing(session, &verify, &decrypt, &prep), EP_OK);
    CHECK(verify >= 0 && decrypt >= 0 && prep >= 0);
    expect(ep_session_load_timing(session, NULL, NULL, NULL), EP_OK);
    expect(ep_session_load_timing(NULL, &verify, NULL, NULL), EP_INVALID_ARGUMENT);
  }
  check_stage_inputs_persist(session);
  ep_session_release(session);
  ep_options_release(options);
  ep_env_release(env);
  return finish();
}
