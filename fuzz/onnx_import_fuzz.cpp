// libFuzzer target for the ONNX importer: parse, then (with every symbolic dim bound to 2)
// convert every node and compile the result. When converters need the values of graph inputs
// (an If condition, a Loop trip count, a Reshape target), the graph is specialized once more
// with those inputs filled with ones, so subgraphs (If branches, Loop/Scan bodies) are
// converted too. Any nef::Error is an accepted rejection; a crash, a sanitizer report or any
// other exception is a finding.
#include <cstdint>

#include "compiler/compiler.h"
#include "engine/segments.h"
#include "nef/error.h"
#include "nef/tensor.h"
#include "onnx/importer.h"

namespace {

void convert(const nef::onnx_import::Model& model, const std::map<std::string, int64_t>& dims,
             const std::map<std::string, nef::Array>& values) {
  nef::ir::Graph g = model.specialize(dims, values);
  // A graph with value-dependent shapes runs in segments; it has no single plan to compile.
  if (!nef::engine::has_unresolved(g)) (void)nef::compiler::compile(std::move(g));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto model = nef::onnx_import::Model::parse(data, size, "");
    std::map<std::string, int64_t> dims;
    for (const auto& s : model->symbols()) dims[s] = 2;
    try {
      convert(*model, dims, {});
    } catch (const nef::onnx_import::NeedsValues& nv) {
      std::map<std::string, nef::Array> values;
      for (const auto& in : model->inputs()) {
        bool needed = false;
        for (const auto& n : nv.inputs) needed = needed || n == in.name;
        if (!needed) continue;
        nef::Shape shape;
        for (size_t d = 0; d < in.dims.size(); ++d)
          shape.push_back(in.dims[d] >= 0 ? in.dims[d] : 2);
        if (nef::checked_numel(shape) > 4096) return 0;
        values[in.name] = nef::full(shape, 1, in.dtype).array();
      }
      convert(*model, dims, values);
    }
  } catch (const nef::Error&) {
  } catch (const nef::onnx_import::NeedsValues&) {
    // Values beyond the first round shape the graph: specialized at run time, nothing more.
  }
  return 0;
}
