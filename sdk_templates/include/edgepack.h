/* SPDX-License-Identifier: Apache-2.0 */
/*
 * edgepack C API: load a signed, encrypted `.epk` artifact and run its pipeline.
 *
 * Rules (docs/c-api-guidelines.md has the full list):
 *  - Every function that can fail returns `ep_status*`: NULL means success. A non-NULL status
 *    is owned by the caller and must be freed with ep_status_release().
 *  - On error, out-parameters are left untouched.
 *  - Release functions return void and accept NULL.
 *  - Strings are UTF-8 and NUL-terminated; sizes and counts are size_t.
 *  - No C++ exception ever crosses this boundary.
 *  - The API is append-only: new functions and enum values are added at the end, existing ones
 *    never change. EP_API_VERSION counts additions; ep_env_create() refuses a header newer
 *    than the library. The shared library's soname carries the ABI major (libedgepack.so.0).
 *  - The library never prints: warnings go to the ep_set_log_callback() function (default:
 *    one "edgepack: ..." line on stderr).
 *  - Handles are not thread-safe: use one session from one thread at a time (several sessions
 *    may run in parallel).
 *
 * Typical use:
 *   ep_env* env; ep_session* s; ep_status* st;
 *   st = ep_env_create(EP_API_VERSION, &env);
 *   ep_key dev = {EP_KEY_PEM_FILE, 0, "device.key", NULL, 0};
 *   ep_key pub = {EP_KEY_PEM_FILE, 0, "publisher.pub", NULL, 0};
 *   st = ep_session_create_from_file(env, "model.epk", &dev, &pub, NULL, 0, &s);
 *   st = ep_session_prepare(s);
 *   st = ep_session_set_tensor(s, NULL, "image", EP_DTYPE_UINT8, shape, 3, pixels, nbytes);
 *   st = ep_session_run(s, NULL);
 *   st = ep_session_get_tensor(s, NULL, "labels", &out);
 *   ep_session_release(s); ep_env_release(env);
 */
#ifndef EDGEPACK_H_
#define EDGEPACK_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define EP_API
#else
#define EP_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Version 1: the base API; 2: profiling; 3: checked runs and reads, typed reads, labels, a log
 * callback; 4: golden inputs; 5: CPU affinity; 6: image size bounds; 7: inputs bound without a
 * copy (see "Added in API version N" below). */
#define EP_API_VERSION 7

/* ---- status ----------------------------------------------------------------------------- */

/* Values match edgepack::ErrorCode inside the SDK; append only. */
typedef enum ep_error_code {
  EP_OK = 0,
  EP_INVALID_ARGUMENT = 1, /* a caller mistake: bad name, wrong dtype/shape, NULL pointer */
  EP_ARTIFACT_INVALID = 2, /* any failure verifying, unsealing, decrypting or parsing */
  EP_NOT_FOUND = 3,        /* unknown stage, tensor or file */
  EP_UNSUPPORTED = 4,      /* op, dtype or backend not available in this build */
  EP_RUNTIME_ERROR = 5,    /* a failure while running */
  EP_OUT_OF_MEMORY = 6,
  EP_IO_ERROR = 7 /* a file could not be read */
} ep_error_code;

typedef struct ep_status ep_status;

/* The code of `status`; EP_OK for NULL. */
EP_API ep_error_code ep_status_code(const ep_status* status);
/* The message of `status` ("" for NULL). Owned by the status: valid until ep_status_release.
 * For EP_ARTIFACT_INVALID it is always "artifact invalid (<reason>)", where reason is one of
 * the non-secret codes of docs/artifact-format.md (layout, signature, publisher, counter,
 * not_recipient, unseal, chunk, manifest). */
EP_API const char* ep_status_message(const ep_status* status);
/* Frees a status returned by any call. Accepts NULL. */
EP_API void ep_status_release(ep_status* status);

/* ---- library ---------------------------------------------------------------------------- */

/* The library version, e.g. "0.1.0". Static storage: never free it. */
EP_API const char* ep_get_version(void);
/* The EP_API_VERSION the library was built with. */
EP_API uint32_t ep_get_api_version(void);

/* ---- tensors ---------------------------------------------------------------------------- */

/* Values match edgepack::DType; append only. */
typedef enum ep_dtype {
  EP_DTYPE_FLOAT32 = 1,
  EP_DTYPE_UINT8 = 2,
  EP_DTYPE_INT32 = 3,
  EP_DTYPE_INT64 = 4
} ep_dtype;

/* ep_tensor_info.flags: dimension 0 is data-dependent; shape[0] is its bound. */
#define EP_TENSOR_DYNAMIC_DIM0 0x1u

/* A tensor's description. Every pointer in it is borrowed from the session and stays valid
 * until the session is released. Layout is frozen (static_assert in the library). */
typedef struct ep_tensor_info {
  const char* name;
  int32_t dtype;  /* ep_dtype */
  uint32_t flags; /* EP_TENSOR_* */
  size_t rank;
  const int64_t* shape; /* rank entries */
} ep_tensor_info;

/* A tensor's current value, as ep_session_get_tensor returns it. `shape` and `data` are
 * borrowed from the session: valid until the next ep_session_run on that session or its
 * release, whichever comes first. Copy what you keep. Layout is frozen. */
typedef struct ep_tensor {
  int32_t dtype;  /* ep_dtype */
  uint32_t flags; /* EP_TENSOR_* */
  size_t rank;
  const int64_t* shape; /* actual shape of the last run (dim 0 <= bound when dynamic) */
  const void* data;     /* C order, little-endian, `bytes` bytes */
  size_t bytes;
} ep_tensor;

/* ---- environment ------------------------------------------------------------------------ */

typedef struct ep_env ep_env;

/* Creates the library environment. Pass EP_API_VERSION: a header newer than the library is
 * refused with EP_UNSUPPORTED. `*out` is owned by the caller: ep_env_release. */
EP_API ep_status* ep_env_create(uint32_t api_version, ep_env** out);
/* Frees an environment after all its sessions. Accepts NULL. */
EP_API void ep_env_release(ep_env* env);

/* ---- options ---------------------------------------------------------------------------- */

typedef struct ep_options ep_options;

/* Defaults: 1 thread, built-in CPU backend, minimum version counter 0.
 * `*out` is owned by the caller: ep_options_release. */
EP_API ep_status* ep_options_create(ep_options** out);
EP_API void ep_options_release(ep_options* options);
/* Worker threads for kernels, >= 1. Without ep_options_set_cpus a session runs at most as many
 * as the CPUs in its affinity mask: more would run slower than one. */
EP_API ep_status* ep_options_set_threads(ep_options* options, int32_t threads);
/* API 5. Pins the kernel worker threads to these CPUs (Linux CPU numbers, e.g. one cluster of a
 * big.LITTLE SoC): worker i runs on cpus[(i + 1) % count]; cpus[0] is meant for the calling
 * thread, which the library does not move (pin it yourself, as edgepack-run --cpus does).
 * count 0 removes the pinning. A negative number or one >= 1024 is EP_INVALID_ARGUMENT here;
 * a CPU that is offline or outside the process's allowed set is EP_INVALID_ARGUMENT when the
 * session is created. The list is copied. */
EP_API ep_status* ep_options_set_cpus(ep_options* options, const int32_t* cpus, size_t count);
/* Backend names in order of preference, e.g. {"xnnpack", "cpu"}; count 0 = built-in CPU.
 * The strings are copied; the caller keeps ownership of `names`. */
EP_API ep_status* ep_options_set_backend_preference(ep_options* options, const char* const* names,
                                                    size_t count);
/* Refuse artifacts whose version counter is below `min_counter` (rollback protection). */
EP_API ep_status* ep_options_set_min_version_counter(ep_options* options, uint64_t min_counter);

/* ---- keys ------------------------------------------------------------------------------- */

typedef enum ep_key_format {
  EP_KEY_PEM_FILE = 1,  /* `path`: a PEM file (PKCS#8 private key / SubjectPublicKeyInfo) */
  EP_KEY_PEM_BYTES = 2, /* `data`, `size`: the PEM text */
  EP_KEY_RAW_BYTES = 3  /* `data`, `size` = 32: a raw X25519 private key (device key only) */
} ep_key_format;

/* Where a key comes from. Only read during the call it is passed to: the library keeps no
 * pointer into it, and the caller may wipe `data` right after. Layout is frozen. */
typedef struct ep_key {
  uint32_t format;   /* ep_key_format */
  uint32_t reserved; /* must be 0 */
  const char* path;  /* EP_KEY_PEM_FILE */
  const void* data;  /* EP_KEY_PEM_BYTES / EP_KEY_RAW_BYTES */
  size_t size;
} ep_key;

/* ---- session ---------------------------------------------------------------------------- */

typedef struct ep_session ep_session;

/* Opens an artifact: layout -> signature (with `publisher_key`, Ed25519) -> version counter ->
 * unseal (with `device_key`, X25519) -> decrypt and authenticate every section -> parse the
 * manifest and the stage graphs. Any failure of the artifact itself is EP_ARTIFACT_INVALID;
 * unreadable or malformed key files are EP_IO_ERROR / EP_NOT_FOUND / EP_INVALID_ARGUMENT.
 * Decrypted data lives only in memory owned by the session.
 * `options` may be NULL (defaults); it is copied. `flags` is reserved: pass 0.
 * `env` must outlive the session. `*out` is owned by the caller: ep_session_release. */
EP_API ep_status* ep_session_create_from_file(ep_env* env, const char* artifact_path,
                                              const ep_key* device_key, const ep_key* publisher_key,
                                              const ep_options* options, uint32_t flags,
                                              ep_session** out);
/* Same, from an artifact in memory. `data` is only read during the call (not retained). */
EP_API ep_status* ep_session_create_from_memory(ep_env* env, const void* data, size_t size,
                                                const ep_key* device_key,
                                                const ep_key* publisher_key,
                                                const ep_options* options, uint32_t flags,
                                                ep_session** out);
/* Frees a session and wipes its decrypted data. Accepts NULL. */
EP_API void ep_session_release(ep_session* session);

/* Allocates arenas, binds kernels, validates shapes. Idempotent; ep_session_run prepares on
 * first use when this was not called. */
EP_API ep_status* ep_session_prepare(ep_session* session);

/* Stages by index, in manifest order. `*name` is borrowed: valid until the session is released. */
EP_API ep_status* ep_session_stage_count(const ep_session* session, size_t* count);
EP_API ep_status* ep_session_stage_name(const ep_session* session, size_t index, const char** name);

/* Inputs / outputs of the whole pipeline (`stage` NULL) or of one stage. The pointers in
 * `*info` are borrowed: valid until the session is released. */
EP_API ep_status* ep_session_input_count(const ep_session* session, const char* stage,
                                         size_t* count);
EP_API ep_status* ep_session_input_info(const ep_session* session, const char* stage, size_t index,
                                        ep_tensor_info* info);
EP_API ep_status* ep_session_output_count(const ep_session* session, const char* stage,
                                          size_t* count);
EP_API ep_status* ep_session_output_info(const ep_session* session, const char* stage, size_t index,
                                         ep_tensor_info* info);

/* Copies `bytes` bytes from `data` into input `name` of the pipeline (`stage` NULL) or of a
 * stage. dtype and shape must match the input (dim 0 may be smaller for dynamic inputs; height
 * and width may be any within an image input's bounds, see ep_session_input_size_bounds); a
 * mismatch is EP_INVALID_ARGUMENT with a message naming the expected dtype and shape.
 * The value stays set for every later run until set again. The caller keeps ownership of
 * `shape` and `data`. */
EP_API ep_status* ep_session_set_tensor(ep_session* session, const char* stage, const char* name,
                                        ep_dtype dtype, const int64_t* shape, size_t rank,
                                        const void* data, size_t bytes);
/* Output `name` of the pipeline (`stage` NULL) or of a stage, after a run. The pointers in
 * `*tensor` are borrowed: valid until the next ep_session_run on this session or its release.
 * Since API version 3, reading before a run that produced the output (a pipeline run, or a run
 * of that stage) is EP_INVALID_ARGUMENT. */
EP_API ep_status* ep_session_get_tensor(ep_session* session, const char* stage, const char* name,
                                        ep_tensor* tensor);

/* Runs the whole pipeline (`stage` NULL) or one stage (a model name runs the model's stage).
 * Since API version 3, every input must have been set first (ep_session_set_tensor; for a
 * stage, a pipeline run also provides its inputs): otherwise EP_INVALID_ARGUMENT naming the
 * first missing input and its expected dtype and shape. A stage reads the tensors a pipeline
 * run binds to it where they lie, so a stage run after that sees them as they are then (a
 * pipeline input set again since, for example) until its inputs are set themselves. */
EP_API ep_status* ep_session_run(ep_session* session, const char* stage);

/* Per-step timings of the last run: `*count` entries; `*stage` is borrowed until the next run.
 * `runs` is the number of executions (rows of a "map" step). Any out-pointer may be NULL. */
EP_API ep_status* ep_session_timing_count(const ep_session* session, size_t* count);
EP_API ep_status* ep_session_stage_timing(const ep_session* session, size_t index,
                                          const char** stage, double* ms, int32_t* runs);
/* Cold-load timings in milliseconds: verify (layout, signature, counter), decrypt (unseal and
 * all sections), prepare (0 until prepared). Any out-pointer may be NULL. */
EP_API ep_status* ep_session_load_timing(const ep_session* session, double* verify_ms,
                                         double* decrypt_ms, double* prepare_ms);

/* Added in API version 2. */
/* Per-node profiling. While enabled, every run times each node of every stage graph; enabling
 * (again) clears the samples, disabling keeps them. Off by default (no cost). Prepares the
 * session if needed. */
EP_API ep_status* ep_session_set_profiling(ep_session* session, int enable);
/* The samples so far as JSON (schema "edgepack.profile/1"): {"runs", "total_ms", "nodes": [{
 * "stage", "name", "op", "backend", "partition" (plugin nodes only; the partition's time is on
 * its first node), "inputs", "outputs" (shapes), "samples", "ms" (median), "flops" (one
 * execution; multiply-add = 2), "flops_exact" (false: an estimate of about one operation per
 * element), "gflops"}], "backends": [{"stage", "name", "device", "nodes", "partitions", "ms"}]}.
 * `*json` is borrowed until the next call or release. */
EP_API ep_status* ep_session_profile_json(ep_session* session, const char** json);

/* Added in API version 3. */
/* Like ep_session_get_tensor, and the output must have dtype `dtype`: otherwise
 * EP_INVALID_ARGUMENT ("output 'x' is float32, read as uint8") and `*tensor` is untouched. */
EP_API ep_status* ep_session_get_tensor_typed(ep_session* session, const char* stage,
                                              const char* name, ep_dtype dtype, ep_tensor* tensor);
/* Class labels of a model (manifest `models[].labels`): `model` names a model or one of its
 * stages; NULL means the first model that has labels. A model without labels has count 0.
 * `*label` is borrowed: valid until the session is released. */
EP_API ep_status* ep_session_label_count(const ep_session* session, const char* model,
                                         size_t* count);
EP_API ep_status* ep_session_label(const ep_session* session, const char* model, size_t index,
                                   const char** label);

typedef enum ep_log_level {
  EP_LOG_DEBUG = 0,
  EP_LOG_INFO = 1,
  EP_LOG_WARNING = 2,
  EP_LOG_ERROR = 3
} ep_log_level;

/* Receives every message the library would otherwise print (e.g. a backend that was rejected
 * and why). `message` is borrowed for the call; the callback may run on any thread that calls
 * into the library, one call at a time. */
typedef void (*ep_log_fn)(void* user_data, int32_t level, const char* message);
/* Process-wide: sets the log callback (NULL restores the default, a line on stderr).
 * `user_data` is passed back untouched; the caller keeps ownership of it. */
EP_API ep_status* ep_set_log_callback(ep_log_fn callback, void* user_data);

/* Camera frames (API version 3). */
typedef enum ep_pixel_format {
  EP_PIXEL_RGB8 = 1, /* packed R, G, B */
  EP_PIXEL_BGR8 = 2, /* packed B, G, R */
  EP_PIXEL_GRAY8 = 3,
  EP_PIXEL_NV12 = 4,  /* Y plane + interleaved U, V plane at half resolution (BT.601 limited) */
  EP_PIXEL_NV21 = 5,  /* Y plane + interleaved V, U plane */
  EP_PIXEL_RGBA8 = 6, /* alpha ignored */
  EP_PIXEL_BGRA8 = 7
} ep_pixel_format;

/* A frame as the camera or video pipeline delivers it. Only read during the call. Layout is
 * frozen (static_assert in the library). */
typedef struct ep_image {
  uint32_t format;   /* ep_pixel_format */
  uint32_t reserved; /* must be 0 */
  int32_t width;
  int32_t height;
  const void* planes[2]; /* NV12/NV21: Y, then chroma; other formats: planes[0] only */
  size_t strides[2];     /* bytes from one row to the next in each plane (>= the row) */
} ep_image;

/* Converts `image` into image input `name` of the pipeline (`stage` NULL) or of a stage: to the
 * channel order the input's preprocess declares (pixel_format rgb, bgr or gray), HWC uint8, row
 * strides honoured. width and height must equal the input's declared size, or, when its
 * preprocess declares source_size_min / source_size_max (ep_session_input_size_bounds), be
 * within those bounds: each run may use another size, and the pipeline's results (detection
 * boxes, keypoints, crops) are in that frame's own pixels. A frame outside is
 * EP_INVALID_ARGUMENT naming both ("image is 100x50, input 'image' accepts 320x240 to 1920x1080
 * (width x height)"). An input without a preprocess table is EP_UNSUPPORTED (use
 * ep_session_set_tensor). `flags` is reserved: pass 0. Counts as setting the input
 * (ep_session_run). */
EP_API ep_status* ep_session_set_image(ep_session* session, const char* stage, const char* name,
                                       const ep_image* image, uint32_t flags);

/* Added in API version 4. */
/* The golden input `name` that the packer stored in the artifact for the pipeline (`stage`
 * NULL: manifest `golden.inputs`) or for one stage (`golden.stages.<stage>.inputs`), decoded
 * (manifest.md: a float32 input stored as int8 codes with a scale comes back as float32),
 * authenticated with the rest of the artifact. Feeding it with ep_session_set_tensor runs what
 * the host reference ran, without a copy sent beside the artifact (edgepack-run --inputs
 * @golden). The pointers in `*tensor` are borrowed: valid until the session is released. An
 * artifact without that golden input is EP_NOT_FOUND naming the golden inputs it has. */
EP_API ep_status* ep_session_golden_input(ep_session* session, const char* stage, const char* name,
                                          ep_tensor* tensor);

/* Added in API version 6. */
/* The frame sizes image input `name` of the pipeline (`stage` NULL) or of a stage accepts:
 * `min_hw` and `max_hw` receive [height, width] (caller-owned arrays of 2). An input whose
 * preprocess declares source_size_min / source_size_max takes any frame within them, through
 * ep_session_set_image or ep_session_set_tensor with shape [height, width, channels]; any other
 * input of rank >= 2 gives its fixed size twice (dims 0 and 1, or 1 and 2 for rank 4). Rank < 2
 * is EP_INVALID_ARGUMENT, an unknown name EP_NOT_FOUND. */
EP_API ep_status* ep_session_input_size_bounds(const ep_session* session, const char* stage,
                                               const char* name, int64_t min_hw[2],
                                               int64_t max_hw[2]);

/* Added in API version 7. */
/* ep_session_set_tensor without the copy: the next ep_session_run reads input `name` of the
 * pipeline (`stage` NULL) or of a stage from `data` where it lies (a camera or DMA buffer, a
 * mapped file), and every stage that reads it reads it there. The same checks as
 * ep_session_set_tensor. `data` must stay valid and unchanged until that run returns; the
 * binding ends then, however the run ends, and the input counts as not set: set or bind it
 * again before the next run. After a run that read a bound input, a run of one stage needs that
 * stage's inputs set (the stages read the caller's memory) until the next pipeline run that
 * binds nothing. A stage input is
 * read in place when `data` is aligned for its dtype and holds its whole static size; otherwise
 * it is copied now, as ep_session_set_tensor does. */
EP_API ep_status* ep_session_bind_tensor(ep_session* session, const char* stage, const char* name,
                                         ep_dtype dtype, const int64_t* shape, size_t rank,
                                         const void* data, size_t bytes);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EDGEPACK_H_ */
