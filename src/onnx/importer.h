// ONNX import: an ONNX model (ModelProto bytes, default-domain opset 1 to kNewestOpset; each op
// checked against the revisions its converter implements) parsed once, then specialized to
// concrete input shapes as an ir::Graph: graph inputs become placeholders, initializers become
// constants, each node goes through its converter (src/onnx/ops/), and shape-computation
// subgraphs are evaluated at import time. Symbolic dims ("batch", "sequence") stay symbolic in
// the Model and are bound per specialization; a mismatch between inputs is a ShapeError.
//
// Errors: malformed/hostile bytes -> FormatError; ops, attributes, dtypes or opsets NEF does not
// implement -> UnsupportedError naming the op, the node and the opset; a structurally invalid
// model (undefined value, wrong arity) -> ValidationError.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "nef/array.h"
#include "nef/dtype.h"

namespace onnx {
class ModelProto;
}

namespace nef::onnx_import {

// A graph input as the model declares it: each dim is fixed (>= 0) or named (symbolic).
struct InputDecl {
  std::string name;
  DType dtype = DType::Float32;
  std::vector<int64_t> dims;  // -1 where symbolic
  // "" where fixed. Unknown dims without a usable name (no dim_param, a negative dim_value, the
  // dim_param '?') are each their own symbol "<input>:<axis>".
  std::vector<std::string> dim_names;
};

// Thrown by Model::specialize (not a nef::Error: callers that can supply the values retry).
struct NeedsValues {
  std::vector<std::string> inputs;  // graph inputs whose values are needed
  std::string what;                 // the converter's error, for callers that cannot retry
};

// Largest graph input NEF specializes on by value (shape-like tensors are tiny).
inline constexpr int64_t kMaxValueInputElements = int64_t(1) << 16;

struct ModelImpl;
class Model {
 public:
  // Parses and checks the model (FormatError/UnsupportedError). `base_dir` is where external
  // data files are looked up ("" for models given as bytes: external data is then an error).
  static std::shared_ptr<Model> parse(const void* data, size_t size, const std::string& base_dir);
  static std::shared_ptr<Model> parse_file(const std::string& path);
  ~Model();

  const std::vector<InputDecl>& inputs() const;
  const std::vector<std::string>& outputs() const;
  int opset() const;
  // The symbolic dim names, in order of first appearance.
  std::vector<std::string> symbols() const;

  // The dim values of every symbol, read from concrete input shapes (ShapeError when a fixed
  // dim or a shared symbol does not match, ValidationError for a wrong rank).
  std::map<std::string, int64_t> bind(const std::vector<Shape>& input_shapes) const;
  // The graph for the given symbol values (all symbols must be bound: ValidationError naming
  // the unbound ones otherwise). Validated; constants share the model's weight storage.
  // `values`: graph inputs whose values shape the graph (Reshape targets, Resize scales, axes
  // given as inputs...); the graph is specialized to them (they become constants and their
  // graph inputs stay, unused). Throws NeedsValues when a converter needs the value of an
  // input that is not in `values`.
  ir::Graph specialize(const std::map<std::string, int64_t>& dims,
                       const std::map<std::string, Array>& values = {}) const;

 private:
  Model() = default;
  static std::shared_ptr<Model> parse_with(const std::string& base_dir,
                                           const std::function<bool(::onnx::ModelProto&)>& decode,
                                           size_t size);
  std::unique_ptr<ModelImpl> impl_;
};

}  // namespace nef::onnx_import
