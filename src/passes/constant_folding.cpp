// Constant folding: a node whose inputs are all constants is evaluated now, with the host's
// kernels (through PassContext::evaluate), and replaced by a constant, unless the result is larger
// than kMaxFoldedBytes (a folded constant must not blow up memory or file size).
#include "common/session.h"
#include "passes/pass.h"

namespace nef::passes {

void constant_folding(ir::Graph& g, const PassContext& ctx) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    if (n.is("constant") || n.op->has(ir::kNoFold)) continue;
    bool all_const = true;
    for (int in : n.inputs) all_const = all_const && g.nodes[in].is("constant");
    if (!all_const) continue;
    size_t bytes = size_t(numel(n.type.shape)) * dtype_size(n.type.dtype);
    if (bytes > kMaxFoldedBytes) continue;
    std::vector<Array> inputs;
    for (int in : n.inputs) inputs.push_back(*g.nodes[in].constant);
    std::optional<Array> out = ctx.evaluate(n, g, inputs);
    if (!out) continue;
    ir::Node folded;
    folded.op = &ir::get_op("constant");
    folded.attrs.set("shape", std::vector<int64_t>(n.type.shape.begin(), n.type.shape.end()));
    folded.attrs.set("dtype", std::string(dtype_name(n.type.dtype)));
    folded.type = n.type;
    folded.name = n.name;
    folded.device_hint = n.device_hint;
    folded.constant = out->contiguous();
    n = std::move(folded);
    counters().nodes_folded++;
  }
}

}  // namespace nef::passes
