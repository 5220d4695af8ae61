/* SPDX-License-Identifier: Apache-2.0 */
/* FROZEN COPY for the ABI tests: the header of ABI version 1 as shipped (never edit).
 * The edgepack backend plugin ABI (version 1). See docs/adding-a-backend.md.
 *
 * A backend is a shared library exporting one symbol, edgepack_backend_init. The runtime
 * dlopen()s it, calls the init function with the ABI version it speaks, checks the returned
 * table's api_version and struct_size, and logs why it rejected a plugin. For each graph node
 * (in the order of RuntimeOptions::backend_preference) the runtime asks supports_op(); the first
 * backend that says yes and prepares the node successfully runs it; everything else falls back
 * to the built-in CPU backend, one node at a time.
 *
 * Rules: plain C, no exceptions cross this boundary; every pointer handed to the plugin is owned
 * by the runtime and valid only for the duration of the call, except node and tensor structs,
 * which stay valid (same addresses) from prepare until release_node; tensor `data` and `shape`
 * are refreshed before each run. Append-only: new members go at the end of the structs, guarded
 * by struct_size. */
#ifndef EDGEPACK_BACKEND_H_
#define EDGEPACK_BACKEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDGEPACK_BACKEND_API_VERSION 1u
#define EDGEPACK_BACKEND_MAX_RANK 8

/* dtype codes (same as the device graph format) */
enum {
  EP_BACKEND_FLOAT32 = 1,
  EP_BACKEND_UINT8 = 2,
  EP_BACKEND_INT32 = 3,
  EP_BACKEND_INT64 = 4,
  EP_BACKEND_BOOL = 5
};

typedef struct edgepack_backend_tensor {
  const char* name;
  int32_t dtype;
  int32_t rank;
  int64_t shape[EDGEPACK_BACKEND_MAX_RANK]; /* actual shape; a plugin may lower shape[0] of a
                                               dynamic output (data-dependent row count) */
  int64_t static_shape[EDGEPACK_BACKEND_MAX_RANK];
  void* data;
  uint32_t is_constant; /* data valid at prepare time */
  uint32_t dynamic_dim0;
} edgepack_backend_tensor;

/* Attribute readers: return 1 and set *out when the attribute exists with that type, else 0. */
typedef struct edgepack_backend_attrs {
  const void* self;
  int (*get_int)(const void* self, const char* name, int64_t* out);
  int (*get_float)(const void* self, const char* name, float* out);
  /* arrays stay valid as long as the node */
  int (*get_ints)(const void* self, const char* name, const int64_t** data, size_t* count);
  int (*get_floats)(const void* self, const char* name, const float** data, size_t* count);
  int (*get_string)(const void* self, const char* name, const char** out);
} edgepack_backend_attrs;

typedef struct edgepack_backend_node {
  const char* op_type; /* ONNX op type, opset-17 semantics, attributes resolved by lowering */
  const char* name;
  size_t num_inputs;
  edgepack_backend_tensor* const* inputs; /* NULL entries for omitted optional inputs */
  size_t num_outputs;
  edgepack_backend_tensor* const* outputs;
  const edgepack_backend_attrs* attrs;
} edgepack_backend_node;

typedef struct edgepack_backend_api {
  uint32_t api_version; /* EDGEPACK_BACKEND_API_VERSION the plugin was built against: FIRST */
  uint32_t struct_size; /* sizeof(edgepack_backend_api) of the plugin */
  const char* name;     /* short id, e.g. "xnnpack" */
  void* context;        /* plugin-owned, passed back to every call */
  /* 1 when the backend can run this node (dtypes, shapes, attributes), else 0. */
  int (*supports_op)(void* context, const edgepack_backend_node* node);
  /* Prepares one node; *node_state is the plugin's. Returns 0 on success, else writes a message
   * into err (err_size bytes, NUL-terminated) and the runtime falls back to CPU for that node. */
  int (*prepare_node)(void* context, const edgepack_backend_node* node, void** node_state,
                      char* err, size_t err_size);
  /* Runs one node; must not allocate. 0 on success, else message in err. */
  int (*run_node)(void* context, const edgepack_backend_node* node, void* node_state, char* err,
                  size_t err_size);
  void (*release_node)(void* context, void* node_state); /* accepts NULL */
  void (*release)(void* context);                        /* when the runtime unloads it */
} edgepack_backend_api;

/* The one entry symbol. Returns NULL when the plugin cannot serve runtime_api_version. */
typedef const edgepack_backend_api* (*edgepack_backend_init_fn)(uint32_t runtime_api_version);
#define EDGEPACK_BACKEND_INIT_SYMBOL "edgepack_backend_init"

#ifdef __cplusplus
}
#endif

#endif /* EDGEPACK_BACKEND_H_ */
