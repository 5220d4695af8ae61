/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny backend plugin for the tests: claims float32 Relu and nothing else (ABI 2, partitions).
 * It writes max(x, 0) in host memory, like the CPU op. Built three times (tests/CMakeLists.txt)
 * against three copies of edgepack_backend.h: the current one, the frozen 2.0 header
 * (tests/backend_abi/v2_0) and an imaginary newer 2.9 one (tests/backend_abi/v2_9); the loader
 * must accept all three.
 * Environment knobs for tests/sdk/test_backend_abi.py:
 *   EDGEPACK_TEST_RELU_TRACE=1         one stderr line per prepared partition
 *   EDGEPACK_TEST_RELU_TRACE_RUNS=1    one stderr line per partition input and run: its name and
 *                                      the address it is read from (tests/sdk/test_pipeline.py)
 *   EDGEPACK_TEST_RELU_FAIL_PREPARE=1  prepare_partition fails (the nodes fall back to CPU)
 *   EDGEPACK_TEST_RELU_STRUCT_SIZE=N   the table claims N bytes (the loader must refuse N < 2.0's)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgepack_backend.h"

static int64_t g_runs = 0;

int64_t edgepack_test_relu_runs(void) {
  return g_runs;
}

static int env_on(const char* name) {
  const char* v = getenv(name);
  return v != NULL && strcmp(v, "1") == 0;
}

static int supports(void* ctx, const edgepack_backend_node* node) {
  (void)ctx;
  return strcmp(node->op_type, "Relu") == 0 && node->num_inputs == 1 &&
         node->inputs[0]->dtype == EP_BACKEND_FLOAT32;
}

static int prepare(void* ctx, const edgepack_backend_partition* part, void** state, char* err,
                   size_t err_size) {
  (void)ctx;
  *state = NULL;
  if (env_on("EDGEPACK_TEST_RELU_FAIL_PREPARE")) {
    snprintf(err, err_size, "refused on request (EDGEPACK_TEST_RELU_FAIL_PREPARE)");
    return 1;
  }
  for (size_t i = 0; i < part->num_nodes; ++i)
    if (strcmp(part->nodes[i]->op_type, "Relu") != 0) {
      snprintf(err, err_size, "node '%s' is not Relu", part->nodes[i]->name);
      return 1;
    }
  if (env_on("EDGEPACK_TEST_RELU_TRACE"))
    fprintf(stderr, "test_relu: abi %u.%u partition %u: %zu nodes, %zu inputs, %zu outputs\n",
            EDGEPACK_BACKEND_API_MAJOR, EDGEPACK_BACKEND_API_MINOR, part->index, part->num_nodes,
            part->num_inputs, part->num_outputs);
  return 0;
}

static int run(void* ctx, const edgepack_backend_partition* part, void* state, char* err,
               size_t err_size) {
  (void)ctx;
  (void)state;
  (void)err;
  (void)err_size;
  if (env_on("EDGEPACK_TEST_RELU_TRACE_RUNS"))
    for (size_t i = 0; i < part->num_inputs; ++i)
      fprintf(stderr, "test_relu: run partition %u input '%s' at %p\n", part->index,
              part->inputs[i]->name, part->inputs[i]->data);
  /* Host memory: every tensor's data is valid runtime memory, so the nodes run in place. */
  for (size_t k = 0; k < part->num_nodes; ++k) {
    const edgepack_backend_tensor* x = part->nodes[k]->inputs[0];
    edgepack_backend_tensor* y = part->nodes[k]->outputs[0];
    int64_t n = 1;
    for (int d = 0; d < x->rank; ++d) n *= x->shape[d];
    const float* in = (const float*)x->data;
    float* out = (float*)y->data;
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
  }
  ++g_runs;
  return 0;
}

static void release_partition(void* ctx, void* state) {
  (void)ctx;
  (void)state;
}

static void release(void* ctx) {
  (void)ctx;
}

#if EDGEPACK_BACKEND_API_MINOR >= 1
static const char* describe(void* ctx) {
  (void)ctx;
  return "test relu on the host CPU";
}
#endif

static edgepack_backend_api k_api;

const edgepack_backend_api* edgepack_backend_init(uint32_t version) {
  if (EDGEPACK_BACKEND_API_VERSION_MAJOR(version) != EDGEPACK_BACKEND_API_MAJOR) return NULL;
  memset(&k_api, 0, sizeof k_api);
  k_api.api_version = EDGEPACK_BACKEND_API_VERSION;
  k_api.struct_size = sizeof(edgepack_backend_api);
  if (getenv("EDGEPACK_TEST_RELU_STRUCT_SIZE"))
    k_api.struct_size = (uint32_t)strtoul(getenv("EDGEPACK_TEST_RELU_STRUCT_SIZE"), NULL, 10);
  k_api.name = "test_relu";
  k_api.supports_op = supports;
  k_api.prepare_partition = prepare;
  k_api.run_partition = run;
  k_api.release_partition = release_partition;
  k_api.release = release;
#if EDGEPACK_BACKEND_API_MINOR >= 1
  k_api.describe = describe;
#endif
  return &k_api;
}
