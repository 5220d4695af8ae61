/* SPDX-License-Identifier: Apache-2.0 */
/* What the C API test programs share: a failure count, CHECK, expect() on a returned status,
 * a PEM-file key, a file read into memory and the size of an ep_dtype. A program includes it
 * once, counts failures through it and ends with finish(). */
#ifndef EDGEPACK_TESTS_C_API_CHECK_H_
#define EDGEPACK_TESTS_C_API_CHECK_H_

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgepack.h"

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

/* Checks the code of `st`, that an error carries a message, and that the message contains
 * `text` (when not NULL); then releases `st`. */
static inline void expect_message(ep_status* st, ep_error_code code, const char* text) {
  if (ep_status_code(st) != code) {
    fprintf(stderr, "expected code %d, got %d (%s)\n", (int)code, (int)ep_status_code(st),
            ep_status_message(st));
    ++failures;
  } else if (text != NULL && strstr(ep_status_message(st), text) == NULL) {
    fprintf(stderr, "expected '%s' in: %s\n", text, ep_status_message(st));
    ++failures;
  }
  if (code != EP_OK) CHECK(st != NULL && strlen(ep_status_message(st)) > 0);
  ep_status_release(st);
}

static inline void expect(ep_status* st, ep_error_code code) {
  expect_message(st, code, NULL);
}

static inline ep_key pem_file(const char* path) {
  ep_key k;
  memset(&k, 0, sizeof(k));
  k.format = EP_KEY_PEM_FILE;
  k.path = path;
  return k;
}

/* The whole file, malloc'ed (the caller frees it), or NULL. */
static inline char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  char* buf;
  long n;
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = (char*)malloc((size_t)n + 1);
  *size = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

static inline size_t dtype_size(int32_t dtype) {
  return dtype == EP_DTYPE_UINT8 ? 1 : dtype == EP_DTYPE_INT64 ? 8 : 4;
}

/* Prints "ok" when nothing failed; the program's exit status. */
static inline int finish(void) {
  if (failures == 0) printf("ok\n");
  return failures == 0 ? 0 : 1;
}

#endif /* EDGEPACK_TESTS_C_API_CHECK_H_ */
