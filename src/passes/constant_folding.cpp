// Constant folding: a node whose inputs are all constants is evaluated now, with the same CPU
// kernels the runtime uses, and replaced by a constant, unless the result is larger than
// kMaxFoldedBytes (a folded constant must not blow up memory or file size).
#include "backends/backend.h"
#include "passes/pass.h"
#include "runtime/stats.h"

namespace nef::passes {

void constant_folding(ir::Graph& g) {
  auto cpu = backend::find_backend("cpu");
  if (!cpu) return;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    if (n.is("constant") || n.op->has(ir::kNoFold)) continue;
    bool all_const = true;
    for (int in : n.inputs) all_const = all_const && g.nodes[in].is("constant");
    if (!all_const) continue;
    size_t bytes = size_t(numel(n.type.shape)) * dtype_size(n.type.dtype);
    if (bytes > kMaxFoldedBytes || !cpu->supports(n, g)) continue;
    std::vector<Array> inputs;
    for (int in : n.inputs) inputs.push_back(*g.nodes[in].constant);
    Array out;
    if (!n.op->has(ir::kView)) out = cpu->allocate(n.type.shape, n.type.dtype);
    auto kernel = cpu->compile(n, g);
    kernel->run(backend::KernelArgs{inputs, out, n.attrs, n});
    ir::Node folded;
    folded.op = &ir::get_op("constant");
    folded.attrs.set("shape", std::vector<int64_t>(n.type.shape.begin(), n.type.shape.end()));
    folded.attrs.set("dtype", std::string(dtype_name(n.type.dtype)));
    folded.type = n.type;
    folded.name = n.name;
    folded.device_hint = n.device_hint;
    folded.constant = out.contiguous();
    n = std::move(folded);
    runtime::stats().nodes_folded++;
  }
}

}  // namespace nef::passes
