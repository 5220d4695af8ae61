/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny backend plugin for the tests: claims Relu on float32 and nothing else. It writes
 * max(x, 0) like the CPU op, and counts its runs so the test can see it was used. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edgepack_backend.h"

static int64_t g_runs = 0;

int64_t edgepack_test_relu_runs(void) {
  return g_runs;
}

static int supports(void* ctx, const edgepack_backend_node* node) {
  (void)ctx;
  return strcmp(node->op_type, "Relu") == 0 && node->num_inputs == 1 &&
         node->inputs[0]->dtype == EP_BACKEND_FLOAT32;
}

static int prepare(void* ctx, const edgepack_backend_node* node, void** state, char* err,
                   size_t err_size) {
  (void)ctx;
  (void)node;
  (void)err;
  (void)err_size;
  *state = NULL;
  return 0;
}

static int run(void* ctx, const edgepack_backend_node* node, void* state, char* err,
               size_t err_size) {
  (void)ctx;
  (void)state;
  (void)err;
  (void)err_size;
  const edgepack_backend_tensor* x = node->inputs[0];
  edgepack_backend_tensor* y = node->outputs[0];
  int64_t n = 1;
  for (int d = 0; d < x->rank; ++d) n *= x->shape[d];
  const float* in = (const float*)x->data;
  float* out = (float*)y->data;
  for (int64_t i = 0; i < n; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
  ++g_runs;
  return 0;
}

static void release_node(void* ctx, void* state) {
  (void)ctx;
  (void)state;
}

static void release(void* ctx) {
  (void)ctx;
}

static const edgepack_backend_api k_api = {EDGEPACK_BACKEND_API_VERSION,
                                           sizeof(edgepack_backend_api),
                                           "test_relu",
                                           NULL,
                                           supports,
                                           prepare,
                                           run,
                                           release_node,
                                           release};

const edgepack_backend_api* edgepack_backend_init(uint32_t version) {
  return version == EDGEPACK_BACKEND_API_VERSION ? &k_api : NULL;
}
