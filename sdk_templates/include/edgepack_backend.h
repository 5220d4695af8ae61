/* SPDX-License-Identifier: Apache-2.0 */
/* The edgepack backend plugin ABI, version 2.1. See docs/adding-a-backend.md.
 *
 * A backend is a shared library exporting one symbol, edgepack_backend_init. The runtime
 * dlopen()s it, calls the init function with the ABI version it speaks, checks the returned
 * table (versioning rule below) and logs exactly why it rejected a plugin.
 *
 * Partitions. For each graph node, in the order of RuntimeOptions::backend_preference, the
 * runtime asks supports_op(). Consecutive nodes (in the graph's topological order) claimed by the
 * same backend form one partition, as long as possible. The backend prepares each partition once
 * (compile kernels, upload constants, allocate its buffers) and runs it as one call. Tensors that
 * cross the partition boundary are listed in partition->inputs / ->outputs: run_partition copies
 * the inputs in from their host `data` and writes the outputs back to theirs before returning
 * (explicit copies; the runtime never shares device memory). Tensors used only inside the
 * partition are the backend's business; their `data` still points at valid runtime memory of the
 * right size during run_partition (a host-memory backend may use it). A partition whose
 * prepare_partition fails is logged and its nodes are claimed again by the backends after this
 * one in preference order (finally the built-in CPU backend, which runs every op).
 *
 * Rules: plain C, no exceptions cross this boundary. Every pointer handed to the plugin is owned
 * by the runtime. Node, tensor and partition structs keep their addresses from prepare_partition
 * until release_partition; tensor `data` and `shape` are refreshed before each run_partition.
 * Partition inputs are read-only (a graph input's `data` may be memory the stage does not own).
 * run_partition must not allocate host memory per call.
 *
 * Versioning rule (append-only growth, checked by the loader in runtime/backend.cpp):
 *  - api_version = (major << 16) | minor (ABI 1 wrote a plain 1: major 1). A new major is an
 *    incompatible change; a new minor only APPENDS members at the end of edgepack_backend_api
 *    (never reorders, resizes or removes one); each appended member's comment names its minor.
 *  - The loader accepts a plugin iff its major equals the runtime's major and its struct_size is
 *    at least EDGEPACK_BACKEND_API_MIN_SIZE (the table of 2.0: every member up to `release`).
 *    The plugin's minor may be lower or higher than the runtime's.
 *  - The runtime reads a member added after 2.0 only when the plugin's struct_size covers it
 *    (EDGEPACK_BACKEND_HAS); otherwise it behaves as if the member were NULL. Members it does not
 *    know (a plugin built against a newer header: larger struct_size) are ignored.
 *  - The runtime-side structs (edgepack_backend_partition) carry their own struct_size under the
 *    same rule, so a plugin built against an older header reads only the prefix it knows, and one
 *    built against a newer header checks struct_size before reading a newer member.
 *  - The init function receives the runtime's api_version; a plugin returns NULL when it cannot
 *    serve that major. */
#ifndef EDGEPACK_BACKEND_H_
#define EDGEPACK_BACKEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDGEPACK_BACKEND_API_MAJOR 2u
#define EDGEPACK_BACKEND_API_MINOR 1u
#define EDGEPACK_BACKEND_API_VERSION \
  ((EDGEPACK_BACKEND_API_MAJOR << 16) | EDGEPACK_BACKEND_API_MINOR)
/* The major of an api_version; ABI 1 (before this encoding) wrote a plain 1. */
#define EDGEPACK_BACKEND_API_VERSION_MAJOR(v) \
  ((uint32_t)(v) < 0x10000u ? (uint32_t)(v) : (uint32_t)(v) >> 16)
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
  uint32_t is_constant; /* data valid (read-only) from prepare on */
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

/* One graph node. A tensor shared by two nodes is the SAME edgepack_backend_tensor (compare
 * pointers to follow data through a partition). */
typedef struct edgepack_backend_node {
  const char* op_type; /* ONNX op type, opset-17 semantics, attributes resolved by lowering */
  const char* name;
  size_t num_inputs;
  edgepack_backend_tensor* const* inputs; /* NULL entries for omitted optional inputs */
  size_t num_outputs;
  edgepack_backend_tensor* const* outputs;
  const edgepack_backend_attrs* attrs;
} edgepack_backend_node;

/* A maximal run of consecutive nodes claimed by one backend. */
typedef struct edgepack_backend_partition {
  uint32_t struct_size; /* sizeof(edgepack_backend_partition) of the runtime */
  uint32_t index;       /* 0, 1, ... among the partitions of one graph instance */
  size_t num_nodes;
  const edgepack_backend_node* const* nodes; /* topological order */
  /* Non-constant tensors read by the partition and produced outside it (graph inputs or CPU
   * results): copy them in from `data`. */
  size_t num_inputs;
  edgepack_backend_tensor* const* inputs;
  /* Tensors produced by the partition and read outside it (graph outputs or later nodes of
   * another backend): write them to `data` (and their actual shape) before returning. */
  size_t num_outputs;
  edgepack_backend_tensor* const* outputs;
} edgepack_backend_partition;

typedef struct edgepack_backend_api {
  /* --- 2.0 --- */
  uint32_t api_version; /* EDGEPACK_BACKEND_API_VERSION the plugin was built against: FIRST */
  uint32_t struct_size; /* sizeof(edgepack_backend_api) of the plugin */
  const char* name;     /* short id, e.g. "opencl" */
  void* context;        /* plugin-owned, passed back to every call */
  /* 1 when the backend can run this node (dtypes, shapes, attributes), else 0. Only the node's
   * own tensors are valid here (its neighbours are not yet decided). */
  int (*supports_op)(void* context, const edgepack_backend_node* node);
  /* Prepares one partition; *state is the plugin's. Returns 0 on success, else writes a message
   * into err (err_size bytes, NUL-terminated) and the runtime gives the nodes to the next
   * backend. release_partition is called on *state either way. */
  int (*prepare_partition)(void* context, const edgepack_backend_partition* partition, void** state,
                           char* err, size_t err_size);
  /* Runs one partition: copy inputs in, run the nodes, copy outputs out. 0 on success, else a
   * message in err (the run fails with that message). */
  int (*run_partition)(void* context, const edgepack_backend_partition* partition, void* state,
                       char* err, size_t err_size);
  void (*release_partition)(void* context, void* state); /* accepts NULL */
  void (*release)(void* context);                        /* when the runtime unloads it */
  /* --- 2.1 --- */
  /* One line naming the device (e.g. "Mali-G71 (OpenCL 2.0, fp16)"), for logs and reports; the
   * string stays valid until release. NULL member or NULL result: none. */
  const char* (*describe)(void* context);
} edgepack_backend_api;

/* The size of the 2.0 table: the least struct_size the loader accepts. */
#define EDGEPACK_BACKEND_API_MIN_SIZE \
  (offsetof(edgepack_backend_api, release) + sizeof(void (*)(void*)))
/* Whether a table of `api`->struct_size bytes has `member` (added in some minor). */
#define EDGEPACK_BACKEND_HAS(api, member)                                                  \
  ((api)->struct_size >= offsetof(edgepack_backend_api, member) + sizeof((api)->member) && \
   (api)->member != NULL)

/* The one entry symbol. Returns NULL when the plugin cannot serve runtime_api_version's major. */
typedef const edgepack_backend_api* (*edgepack_backend_init_fn)(uint32_t runtime_api_version);
#define EDGEPACK_BACKEND_INIT_SYMBOL "edgepack_backend_init"

#ifdef __cplusplus
}
#endif

#endif /* EDGEPACK_BACKEND_H_ */
