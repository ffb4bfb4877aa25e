/* C helpers for the Go package: several C API calls in one cgo call. */
#ifndef GONEF_H_
#define GONEF_H_

#include <stdlib.h>

#include "nef/nef.h"

/* rank, shape (16 entries) and dtype of a tensor. */
static inline nef_status gonef_describe(nef_tensor* t, int* rank, int64_t* shape,
                                        nef_dtype* dtype) {
  nef_status s = nef_tensor_rank(t, rank);
  if (s != NEF_OK) return s;
  if (*rank > 16) return NEF_ERROR;
  s = nef_tensor_shape(t, shape);
  if (s != NEF_OK) return s;
  return nef_tensor_dtype(t, dtype);
}

/* The same for input i of a graph, with the dims' symbolic names (names[d] valid until the next
 * call on this thread, so the caller copies them at once). */
static inline nef_status gonef_graph_input(nef_graph* g, int i, int* rank, int64_t* shape,
                                           nef_dtype* dtype) {
  nef_status s = nef_graph_input_rank(g, i, rank);
  if (s != NEF_OK) return s;
  if (*rank > 16) return NEF_ERROR;
  s = nef_graph_input_shape(g, i, shape);
  if (s != NEF_OK) return s;
  return nef_graph_input_dtype(g, i, dtype);
}

/* Streamed generation: nef_llm_generate with Go's piece callback (gonefPiece, exported by
 * llm_export.go) and a cgo.Handle as its user pointer. */
#include <stdint.h>
extern int gonefPiece(char* piece, size_t len, uintptr_t user);
static inline int gonef_piece(const char* piece, size_t len, void* user) {
  return gonefPiece((char*)piece, len, (uintptr_t)user);
}
static inline nef_status gonef_llm_generate(nef_llm* m, const char* prompt,
                                            const nef_generate_options* o, uintptr_t user,
                                            nef_generate_stats* stats) {
  return nef_llm_generate(m, prompt, o, gonef_piece, (void*)user, stats);
}

#endif
