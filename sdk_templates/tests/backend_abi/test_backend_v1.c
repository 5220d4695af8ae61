/* SPDX-License-Identifier: Apache-2.0 */
/* A plugin built against the frozen ABI 1 header (backend_abi/v1): a 2.x runtime must refuse
 * it with a reason naming both majors, and run everything on the CPU. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edgepack_backend.h"

static int supports(void* ctx, const edgepack_backend_node* node) {
  (void)ctx;
  return strcmp(node->op_type, "Relu") == 0;
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
  (void)node;
  (void)state;
  (void)err;
  (void)err_size;
  return 1; /* never reached: the runtime must refuse this plugin */
}

static const edgepack_backend_api k_api = {EDGEPACK_BACKEND_API_VERSION,
                                           sizeof(edgepack_backend_api),
                                           "test_v1",
                                           NULL,
                                           supports,
                                           prepare,
                                           run,
                                           NULL,
                                           NULL};

/* ABI 1 plugins answered any runtime version with their table. */
const edgepack_backend_api* edgepack_backend_init(uint32_t version) {
  (void)version;
  return &k_api;
}
