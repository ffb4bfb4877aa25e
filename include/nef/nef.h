/* NEF C API: the stable ABI other language bindings (Go, ...) stand on.
 * Opaque handles, status codes (nef_status mirrors nef::ErrorCode), no exceptions cross it.
 * Every function returns NEF_OK or an error code; the message of the last error on the calling
 * thread is available from nef_last_error(). Handles are freed with their *_free function;
 * freeing NULL is a no-op. Tensor handles may be used from one thread at a time. */
#ifndef NEF_NEF_H_
#define NEF_NEF_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define NEF_API __attribute__((visibility("default")))
#else
#define NEF_API
#endif

typedef enum nef_status {
  NEF_OK = 0,
  NEF_ERROR = 1,
  NEF_ERROR_GRAPH_CYCLE = 2,
  NEF_ERROR_VALIDATION = 3,
  NEF_ERROR_SHAPE = 4,
  NEF_ERROR_TYPE = 5,
  NEF_ERROR_UNSUPPORTED = 6,
  NEF_ERROR_FORMAT = 7,
  NEF_ERROR_OUT_OF_MEMORY = 8,
  NEF_ERROR_DEVICE = 9,
  NEF_ERROR_COMPILE = 10,
  NEF_ERROR_INVALID_ARGUMENT = 11 /* NULL handle or pointer passed to the C API */
} nef_status;

typedef enum nef_dtype {
  NEF_FLOAT32 = 0,
  NEF_FLOAT16 = 1,
  NEF_BFLOAT16 = 2,
  NEF_FLOAT64 = 3,
  NEF_INT8 = 4,
  NEF_UINT8 = 5,
  NEF_INT32 = 6,
  NEF_INT64 = 7,
  NEF_BOOL = 8
} nef_dtype;

typedef struct nef_tensor nef_tensor;  /* a lazy tensor */
typedef struct nef_graph nef_graph;    /* a loaded .nef graph */

/* The library version, e.g. "0.2.0" or "0.3.0rc1" (PEP 440): the same string as `nef --version`
 * and Python's nef.__version__, from the repository's VERSION file. */
NEF_API const char* nef_version(void);
/* Message of the last failed call on this thread ("" if none). Valid until the next call. */
NEF_API const char* nef_last_error(void);
NEF_API const char* nef_status_name(nef_status s); /* "NEFShapeError", ... */

/* Creates a tensor by copying `data` (row-major, numel * dtype size bytes). */
NEF_API nef_status nef_tensor_from_data(const void* data, nef_dtype dtype, const int64_t* shape,
                                        int rank, nef_tensor** out);
NEF_API nef_status nef_placeholder(const char* name, nef_dtype dtype, const int64_t* shape,
                                   int rank, nef_tensor** out);
NEF_API void nef_tensor_free(nef_tensor* t);

/* Any registered op by name. attrs_json: a JSON object of attributes or NULL, e.g.
 * {"axis": -1} or {"shape": [2, 3]}; integers are ints, numbers with '.' or 'e' are floats. */
NEF_API nef_status nef_op(const char* op, nef_tensor* const* inputs, int num_inputs,
                          const char* attrs_json, nef_tensor** out);
NEF_API nef_status nef_matmul(nef_tensor* a, nef_tensor* b, nef_tensor** out);
NEF_API nef_status nef_add(nef_tensor* a, nef_tensor* b, nef_tensor** out);

NEF_API nef_status nef_tensor_rank(nef_tensor* t, int* rank);
NEF_API nef_status nef_tensor_shape(nef_tensor* t, int64_t* shape /* rank entries */);
NEF_API nef_status nef_tensor_dtype(nef_tensor* t, nef_dtype* dtype);
NEF_API nef_status nef_tensor_execute(nef_tensor* t);
/* Executes if needed and copies the row-major value into `dst` (capacity in bytes). */
NEF_API nef_status nef_tensor_copy_to(nef_tensor* t, void* dst, size_t capacity);
NEF_API nef_status nef_tensor_build(nef_tensor* t, const char* path);

NEF_API nef_status nef_graph_load(const char* path, nef_graph** out);
/* Imports an ONNX model (docs/onnx.md) from a file or from its bytes. `dim_names`/`dim_values`
 * (num_dims entries, may be NULL when 0) bind symbolic input dims; dims left unbound are bound
 * by each nef_graph_run from its inputs' shapes. */
NEF_API nef_status nef_graph_from_onnx(const char* path, const char* const* dim_names,
                                       const int64_t* dim_values, int num_dims, nef_graph** out);
NEF_API nef_status nef_graph_from_onnx_bytes(const void* data, size_t size,
                                             const char* const* dim_names,
                                             const int64_t* dim_values, int num_dims,
                                             nef_graph** out);
NEF_API void nef_graph_free(nef_graph* g);
NEF_API nef_status nef_graph_num_inputs(nef_graph* g, int* n);
NEF_API nef_status nef_graph_num_outputs(nef_graph* g, int* n);
NEF_API nef_status nef_graph_input_name(nef_graph* g, int i, const char** name);
NEF_API nef_status nef_graph_output_name(nef_graph* g, int i, const char** name);
/* Runs with inputs given in graph-input order as tensors; returns outputs in order as
 * materialized tensors (caller frees each, and may copy them out with nef_tensor_copy_to). */
NEF_API nef_status nef_graph_run(nef_graph* g, nef_tensor* const* inputs, int num_inputs,
                                 nef_tensor** outputs, int num_outputs);

#ifdef __cplusplus
}
#endif

#endif /* NEF_NEF_H_ */
