// Optimizer passes: each is one function over the IR graph, in its own file, listed once in
// pipeline.cpp. Passes must not change results beyond floating-point rounding of the same ops
// (except fold_matmul_scale and fold_conv_scale: inference batch-norm folding, see their notes).
//
// Two pipelines: the device-independent one runs before placement; the device pipeline (fusion)
// runs after it, per device: a fused node only ever joins nodes placed on one device, and only
// when that device supports the fused result (like ONNX Runtime's GetCapability), so no pass
// assumes the CPU. Passes never see a backend: what they need from one comes through PassContext.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "nef/array.h"

namespace nef::passes {

class PassContext {
 public:
  virtual ~PassContext() = default;
  // Evaluates `n` on constant `inputs` (constant folding), or nullopt when the host cannot.
  virtual std::optional<Array> evaluate(const ir::Node& n, const ir::Graph& g,
                                        const std::vector<Array>& inputs) const = 0;
  // Whether the device `n` is placed on (n.device) can run `n`: fusion asks it about the fused
  // node it would create. Before placement (n.device < 0): the host's answer.
  virtual bool supports(const ir::Node& n, const ir::Graph& g) const = 0;
};

using PassFn = void (*)(ir::Graph& g, const PassContext& ctx);
struct PassInfo {
  const char* name;
  PassFn run;
};

// The fixed, deterministic pipelines (in order).
const std::vector<PassInfo>& pipeline();         // before placement
const std::vector<PassInfo>& device_pipeline();  // after placement

// Runs a pipeline; with NEF_DUMP_PASSES=1 prints the IR after each pass to stderr. Appends the
// text dumps to `dumps` when non-null (for `nef inspect --passes` and tests).
void run_passes(const std::vector<PassInfo>& list, ir::Graph& g, const PassContext& ctx,
                std::vector<std::pair<std::string, std::string>>* dumps = nullptr);

void dead_node_elimination(ir::Graph& g, const PassContext& ctx);
void constant_folding(ir::Graph& g, const PassContext& ctx);
void common_subexpression_elimination(ir::Graph& g, const PassContext& ctx);  // cse.cpp
// identities, small pow, layout chains (simplify.cpp)
void simplify(ir::Graph& g, const PassContext& ctx);
// hand-written softmax/norms/gelu/silu/attention (patterns*.cpp)
void recognize_patterns(ir::Graph& g, const PassContext& ctx);
// (x@W)*s -> x@(W*s) for constant W, s (BN folding)
void fold_matmul_scale(ir::Graph& g, const PassContext& ctx);
// conv(x, W, b)*f + s -> conv(x, W*f, b*f + s) (BN folding)
void fold_conv_scale(ir::Graph& g, const PassContext& ctx);
// matmul (conv) + elementwise chain -> matmul_epilogue (conv_epilogue) (device pipeline)
void fuse_epilogue(ir::Graph& g, const PassContext& ctx);
// elementwise chains -> fused_elementwise (device pipeline; fuse_elementwise.cpp)
void fuse_elementwise(ir::Graph& g, const PassContext& ctx);

// Folding never creates a constant larger than this (bytes): keeps memory and files bounded.
inline constexpr size_t kMaxFoldedBytes = size_t{1} << 22;

}  // namespace nef::passes
