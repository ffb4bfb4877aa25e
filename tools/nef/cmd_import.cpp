// `nef import MODEL.onnx -o MODEL.nef [--dim batch=1 ...]`: the ONNX importer from the command
// line. A .nef has static shapes, so every symbolic dim must be bound here.
#include <charconv>
#include <iostream>

#include "cli.h"

namespace nef::cli {

int cmd_import(const ImportOptions& opts) {
  require_file(opts.model, "ONNX model");
  std::map<std::string, int64_t> dims;
  for (const std::string& spec : opts.dims) {
    auto [name, value] = split_input_spec(spec);
    int64_t v = -1;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || end != value.data() + value.size() || v < 0)
      throw UsageError("--dim " + spec + ": the value must be a non-negative integer");
    if (!dims.emplace(name, v).second) throw UsageError("--dim " + name + " given twice");
  }
  LoadedGraph g = LoadedGraph::from_onnx(opts.model, dims);
  std::string unbound;
  const auto names = g.input_dim_names();
  const auto types = g.input_types();
  for (size_t i = 0; i < names.size(); ++i)
    for (size_t d = 0; d < names[i].size(); ++d)
      if (types[i].first[d] < 0 && unbound.find(names[i][d]) == std::string::npos)
        unbound += (unbound.empty() ? "" : ", ") + names[i][d];
  if (!unbound.empty())
    throw UsageError("the model has symbolic dims (" + unbound +
                     "): bind each with --dim NAME=VALUE (a .nef has static shapes)");
  g.save(opts.output, opts.embed_plan);
  std::cout << "wrote " << opts.output << " (" << g.inputs().size() << " inputs, "
            << g.outputs().size() << " outputs)" << std::endl;
  return 0;
}

}  // namespace nef::cli
