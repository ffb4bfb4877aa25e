// Optimizer passes: each is one function over the IR graph, in its own file, listed once in
// pipeline.cpp. Passes must not change results beyond floating-point rounding of the same ops
// (except fold_matmul_scale and fold_conv_scale: inference batch-norm folding, see their notes).
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace nef::passes {

struct PassInfo {
  const char* name;
  void (*run)(ir::Graph& g);
};

// The fixed, deterministic pipeline (in order).
const std::vector<PassInfo>& pipeline();

// Runs every pass; with NEF_DUMP_PASSES=1 prints the IR after each to stderr. Returns the text
// dumps when `dumps` is non-null (for `nef inspect --passes` and tests).
void run_pipeline(ir::Graph& g, std::vector<std::pair<std::string, std::string>>* dumps = nullptr);

void dead_node_elimination(ir::Graph& g);
void constant_folding(ir::Graph& g);
void common_subexpression_elimination(ir::Graph& g);  // cse.cpp
void simplify(ir::Graph& g);            // identities, small pow, layout chains (simplify.cpp)
void recognize_patterns(ir::Graph& g);  // hand-written softmax/norms/gelu/silu (patterns*.cpp)
void fold_matmul_scale(ir::Graph& g);  // (x@W)*s -> x@(W*s) for constant W, s (BN folding)
void fold_conv_scale(ir::Graph& g);    // conv(x, W, b)*f + s -> conv(x, W*f, b*f + s) (BN folding)
void fuse_matmul_epilogue(ir::Graph& g);  // matmul + elementwise chain -> matmul_epilogue
void fuse_elementwise(ir::Graph& g);    // elementwise chains -> fused_elementwise (fuse_elementwise.cpp)

// Folding never creates a constant larger than this (bytes): keeps memory and files bounded.
inline constexpr size_t kMaxFoldedBytes = size_t{1} << 22;

}  // namespace nef::passes
