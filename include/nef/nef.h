/* NEF C API: the stable ABI other language bindings (Go, ...) stand on.
 * Opaque handles, status codes (nef_status mirrors nef::ErrorCode), no exceptions cross it.
 * Every function returns NEF_OK or an error code; the message of the last error on the calling
 * thread is available from nef_last_error(). Handles are freed with their *_free function;
 * freeing NULL is a no-op.
 *
 * Threads. Any function may be called from any thread, within these rules:
 * - Calls on tensor handles are not thread-safe with each other: executing a lazy tensor
 *   (nef_tensor_execute, nef_tensor_copy_to, nef_evaluate, nef_tensor_build, nef_build) writes
 *   the graph nodes it materializes, which other calls may be reading through tensors that share
 *   them. Serialize such calls, e.g. with one lock (the Go package does).
 * - The exception: nef_graph_run with materialized inputs (made by nef_tensor_from_data,
 *   returned by nef_graph_run, or executed). A materialized tensor is never written again, so
 *   such runs may proceed on any number of threads at once, on one graph or several, while other
 *   calls go on under the lock; the tensors a run returns belong to its caller. A run given a
 *   lazy input executes it first and so falls under the first rule.
 * - Graph, stats, device and thread functions are thread-safe. Freeing a handle must not race
 *   with its use. */
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
  NEF_ERROR_INVALID_ARGUMENT = 11, /* NULL handle or pointer passed to the C API */
  NEF_ERROR_CANCELLED = 12         /* a run was cancelled before it finished */
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
  NEF_BOOL = 8,
  NEF_INT16 = 9,
  NEF_UINT16 = 10,
  NEF_UINT32 = 11,
  NEF_UINT64 = 12,
  NEF_FLOAT8E4M3FN = 13, /* float8 types: storage only (cast them to a float type to compute) */
  NEF_FLOAT8E4M3FNUZ = 14,
  NEF_FLOAT8E5M2 = 15,
  NEF_FLOAT8E5M2FNUZ = 16
} nef_dtype;

typedef struct nef_tensor nef_tensor; /* a lazy tensor */
typedef struct nef_graph nef_graph;   /* a loaded .nef graph */

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

/* ---- typed attributes: every attribute type exactly (NaN and infinities included, which JSON
 * cannot carry). Setting a name twice keeps the last value; the op checks names and types. */
typedef struct nef_attrs nef_attrs;
NEF_API nef_status nef_attrs_new(nef_attrs** out);
NEF_API void nef_attrs_free(nef_attrs* a);
NEF_API nef_status nef_attrs_set_int(nef_attrs* a, const char* name, int64_t value);
NEF_API nef_status nef_attrs_set_float(nef_attrs* a, const char* name, double value);
NEF_API nef_status nef_attrs_set_bool(nef_attrs* a, const char* name, int value);
NEF_API nef_status nef_attrs_set_string(nef_attrs* a, const char* name, const char* value);
/* n >= 0 values (`values` may be NULL when n is 0). */
NEF_API nef_status nef_attrs_set_ints(nef_attrs* a, const char* name, const int64_t* values, int n);
NEF_API nef_status nef_attrs_set_floats(nef_attrs* a, const char* name, const double* values,
                                        int n);
/* nef_op with typed attributes (`attrs` may be NULL: no attributes). */
NEF_API nef_status nef_op_attrs(const char* op, nef_tensor* const* inputs, int num_inputs,
                                const nef_attrs* attrs, nef_tensor** out);

/* ---- more on tensors and graph files ---- */
/* Executes several tensors in one graph (shared parts run once); materialized ones are skipped. */
NEF_API nef_status nef_evaluate(nef_tensor* const* tensors, int num_tensors);
/* Writes a .nef file with `n` named outputs (names unique, non-empty). embed_plan != 0 also
 * stores the compiled plan so that loading it starts warm (docs/format.md). */
NEF_API nef_status nef_build(const char* path, const char* const* names, nef_tensor* const* tensors,
                             int n, int embed_plan);
/* 1 if the tensor holds its value (data, graph outputs, executed tensors), else 0. */
NEF_API nef_status nef_tensor_is_materialized(nef_tensor* t, int* materialized);
/* The name of the op that produced the tensor ("matmul"; "input" for data and placeholders).
 * Valid while the tensor handle lives. */
NEF_API nef_status nef_tensor_op_name(nef_tensor* t, const char** name);
NEF_API size_t nef_dtype_size(nef_dtype dtype);      /* bytes per element, 0 if invalid */
NEF_API const char* nef_dtype_name(nef_dtype dtype); /* "float32", ...; NULL if invalid */

/* A graph input's declared type. Symbolic dims of an imported ONNX model that are still unbound
 * are -1 in the shape, and nef_graph_input_dim_name gives their name ("" for fixed dims; the
 * text is valid until the next nef_graph_input_dim_name call on this thread). */
NEF_API nef_status nef_graph_input_dtype(nef_graph* g, int i, nef_dtype* dtype);
NEF_API nef_status nef_graph_input_rank(nef_graph* g, int i, int* rank);
NEF_API nef_status nef_graph_input_shape(nef_graph* g, int i, int64_t* shape /* rank entries */);
NEF_API nef_status nef_graph_input_dim_name(nef_graph* g, int i, int dim, const char** name);
/* Writes the graph as a .nef file (an imported model needs all symbolic dims bound). */
NEF_API nef_status nef_graph_save(nef_graph* g, const char* path, int embed_plan);

/* ---- runtime: stats, devices, threads, handle counts ---- */
/* The JSON text these return is valid until the same function is called again on this thread.
 * Counters since start or the last reset: {"graphs_executed": 3, "plan_cache_hits": 1, ...}. */
NEF_API nef_status nef_stats_json(const char** json);
NEF_API nef_status nef_reset_stats(void);
/* The hardware report as `nef devices --json` prints it: "cpu", "memory", "devices" (name,
 * kind, backend, index, description, memory_bytes, available, reason) and "enabled" (the
 * devices the planner may use). NEF_ERROR_DEVICE for a bad NEF_DEVICES. */
NEF_API nef_status nef_devices_json(const char** json);
/* Restricts the planner to these devices (wins over NEF_DEVICES); n == 0 clears the override.
 * Unknown names: NEF_ERROR_DEVICE, naming the known devices. */
NEF_API nef_status nef_set_devices(const char* const* names, int n);
NEF_API nef_status nef_set_num_threads(int n); /* CPU kernel threads; 0 = all cores */
NEF_API nef_status nef_num_threads(int* n);
/* Live handles of each kind in this process (created and not yet freed); any pointer may be
 * NULL. Bindings use it to check that they free every handle they create. */
NEF_API nef_status nef_live_handles(int64_t* tensors, int64_t* graphs, int64_t* attrs);

/* ---- language models (docs/llm.md): GGUF Llama-family models, streamed generation ---- */
typedef struct nef_llm nef_llm; /* a loaded model; thread-safe, shared by generations */
/* Loads a .gguf model. context: KV-cache capacity in tokens (0: the model's, at most 4096).
 * NEF_ERROR_FORMAT for a malformed file, NEF_ERROR_UNSUPPORTED for an architecture NEF does
 * not run. */
NEF_API nef_status nef_llm_load(const char* path, int64_t context, nef_llm** out);
NEF_API void nef_llm_free(nef_llm* m);
typedef struct nef_generate_options {
  int64_t max_tokens;      /* default 256 */
  double temperature;      /* default 0: greedy */
  int64_t top_k;           /* default 40 (0: all) */
  double top_p;            /* default 0.95 */
  double min_p;            /* default 0.05 */
  double repeat_penalty;   /* default 1 (off) */
  uint64_t seed;           /* default 0 */
  int chat;                /* nonzero: the prompt is a user message in the model's chat template */
  int ignore_eos;          /* nonzero: go on past end-of-generation tokens (default 0) */
  const char* const* stop; /* n_stop stop strings (never emitted); default none */
  int64_t n_stop;
} nef_generate_options;
NEF_API void nef_generate_options_init(nef_generate_options* o); /* the defaults above */
typedef struct nef_generate_stats {
  int64_t prompt_tokens, generated_tokens;
  double prompt_seconds, decode_seconds;
  char stop_reason[16]; /* "eos", "stop_string", "max_tokens", "context", "callback" */
} nef_generate_stats;
/* Called with the text of each generated token (UTF-8, possibly empty, not NUL-terminated) as
 * it is produced; returning nonzero stops the generation. */
typedef int (*nef_piece_fn)(const char* piece, size_t len, void* user);
/* Generates from `prompt`, calling `on_piece` per token; `opts` and `stats` may be NULL.
 * Runs on the calling thread; different threads may generate from one model at once. */
NEF_API nef_status nef_llm_generate(nef_llm* m, const char* prompt,
                                    const nef_generate_options* opts, nef_piece_fn on_piece,
                                    void* user, nef_generate_stats* stats);

#ifdef __cplusplus
}
#endif

#endif /* NEF_NEF_H_ */
