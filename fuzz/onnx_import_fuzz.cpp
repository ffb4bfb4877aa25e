// libFuzzer target for the ONNX importer: parse, then (with every symbolic dim bound to 2)
// convert every node and compile the result. Any nef::Error is an accepted rejection; a crash,
// a sanitizer report or any other exception is a finding.
#include <cstdint>

#include "compiler/compiler.h"
#include "nef/error.h"
#include "onnx/importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto model = nef::onnx_import::Model::parse(data, size, "");
    std::map<std::string, int64_t> dims;
    for (const auto& s : model->symbols()) dims[s] = 2;
    nef::ir::Graph g = model->specialize(dims);
    (void)nef::compiler::compile(std::move(g));
  } catch (const nef::Error&) {
  } catch (const nef::onnx_import::NeedsValues&) {
    // A graph input's values shape the graph: specialized at run time, nothing more to do.
  }
  return 0;
}
