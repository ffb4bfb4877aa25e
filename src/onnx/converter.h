// The contract between the ONNX importer and its op converters. One converter per ONNX op type
// (domain "" / "ai.onnx"), registered in one family file under src/onnx/ops/ with the op's
// revisions (the opsets in which ONNX changed it) and the oldest revision it implements. A
// converter reads its node through NodeCtx and returns the node's outputs as lazy nef::Tensors
// built with the C++ API (nef::op, nef::matmul, ...): the importer wires them to the consumers,
// and the optimizer later folds whatever is static.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nef/array.h"
#include "nef/error.h"
#include "nef/tensor.h"

namespace onnx {
class NodeProto;
class AttributeProto;
class GraphProto;
}  // namespace onnx

namespace nef::onnx_import {

class Importer;

// One ONNX node being converted. Errors thrown through `fail`/`unsupported` name the op type,
// the node and the opset, e.g. "[onnx] Resize node 'up1' (opset 19): mode 'cubic' ...".
class NodeCtx {
 public:
  NodeCtx(Importer& imp, const ::onnx::NodeProto& node, int opset, int version, int index = -1);

  const std::string& op_type() const;
  const std::string& name() const;      // the node's name as the file gives it (may be "")
  int opset() const { return opset_; }  // the model's default-domain opset
  // The op's revision in force: the newest since-version of the op not after opset() (e.g.
  // Softmax in an opset-12 model is revision 11). Converters branch on this, not on opset().
  int version() const { return version_; }

  // ---- inputs (ONNX allows optional inputs to be absent or given as "") ----------------------
  size_t num_inputs() const;
  bool has_input(size_t i) const;  // present and not ""
  // The input as a lazy tensor; ValidationError naming the node when absent.
  Tensor input(size_t i) const;
  // Whether the input's value is known at import time (depends on no graph input: weights,
  // Constant nodes, Shape of a static tensor and what is computed from those).
  bool input_is_static(size_t i) const;
  // The value of a static input, computed now with NEF's own kernels (small tensors: shapes,
  // axes, pads, scalars). UnsupportedError naming the node when it depends on a graph input.
  Array static_input(size_t i) const;
  // Convenience over static_input: the values as int64 (from any integer dtype) / as doubles.
  std::vector<int64_t> static_ints(size_t i) const;
  std::vector<double> static_floats(size_t i) const;

  // ---- attributes (each read marks it used; after the converter returns, an attribute that
  // was never read raises UnsupportedError, so an attribute a converter does not know is never
  // silently ignored) ------------------------------------------------------------------------
  bool has_attr(const std::string& name) const;
  int64_t attr_int(const std::string& name, std::optional<int64_t> dflt = std::nullopt) const;
  double attr_float(const std::string& name, std::optional<double> dflt = std::nullopt) const;
  std::string attr_string(const std::string& name,
                          std::optional<std::string> dflt = std::nullopt) const;
  std::vector<int64_t> attr_ints(const std::string& name,
                                 std::optional<std::vector<int64_t>> dflt = std::nullopt) const;
  std::vector<double> attr_floats(const std::string& name,
                                  std::optional<std::vector<double>> dflt = std::nullopt) const;
  std::vector<std::string> attr_strings(
      const std::string& name, std::optional<std::vector<std::string>> dflt = std::nullopt) const;
  Array attr_tensor(const std::string& name) const;  // TENSOR attribute (Constant, ConstantOfShape)
  // Marks an attribute as read without reading it (e.g. one that only matters for training).
  void ignore_attr(const std::string& name) const;
  // A GRAPH attribute (If branches, Loop/Scan bodies), checked at parse like the main graph.
  const ::onnx::GraphProto& attr_graph(const std::string& name) const;

  // ---- subgraphs and values (control flow) ---------------------------------------------------
  // Converts subgraph `g` with its formal inputs bound to `inputs` (outer values visible by
  // name) and returns its outputs in order. Errors name the node converting it.
  std::vector<Tensor> run_graph(const ::onnx::GraphProto& g,
                                const std::vector<Tensor>& inputs) const;
  // Whether `t` is known at import (depends on no graph input), and its value if so; a value
  // that depends on graph inputs throws NeedsValues (the graph is then specialized on them).
  bool is_static(const Tensor& t) const;
  Array static_value(const Tensor& t, const std::string& what) const;

  // ---- outputs ---------------------------------------------------------------------------------
  size_t num_outputs() const;          // as listed by the node (optional trailing ones may be "")
  bool output_wanted(size_t i) const;  // present and not ""

  // ---- errors ----------------------------------------------------------------------------------
  [[noreturn]] void unsupported(const std::string& what) const;  // UnsupportedError
  [[noreturn]] void fail(const std::string& what) const;         // ValidationError (bad model)
  // "[onnx] Op node 'name' (opset N)", or "[onnx] Op node #index (opset N)" for unnamed nodes.
  std::string where() const;

  // For the importer: attributes present on the node that no accessor read.
  std::vector<std::string> unread_attrs() const;

 private:
  const ::onnx::AttributeProto* find_attr(const std::string& name) const;
  const ::onnx::AttributeProto& need_attr(const std::string& name, int type) const;
  Importer& imp_;
  const ::onnx::NodeProto& node_;
  int opset_;
  int version_;
  int index_;
  mutable std::set<std::string> read_;
};

// A converter returns one tensor per node output, in order; it may return fewer than
// num_outputs() when the trailing outputs are not wanted (an unwanted output in the middle may
// be an undefined Tensor{}), or more (outputs the node does not list are dropped). Throw
// through ctx.unsupported/ctx.fail.
using Converter = std::function<std::vector<Tensor>(NodeCtx&)>;

// The newest default-domain opset the table knows (the pinned onnx package's); newer models
// are refused, since an op revised after it would be converted with older semantics.
inline constexpr int kNewestOpset = 27;

struct ConverterEntry {
  Converter fn;
  // Every revision of the op in the default domain: the since_version of each of its schemas,
  // ascending, as the pinned onnx package defines them (tests/python/test_onnx_versions.py
  // checks the table against onnx.defs).
  std::vector<int> since;
  // The oldest revision the converter implements. Older ones (legacy attributes such as
  // consumed_inputs or per-op broadcast flags) are refused with UnsupportedError.
  int min_since = 0;
};
using ConverterTable = std::map<std::string, ConverterEntry>;

// The revision of `e`'s op in force at `opset` (the newest since-version <= opset), 0 when the
// op does not exist yet at that opset.
int op_revision(const ConverterEntry& e, int opset);

// Family registration (one function per file in src/onnx/ops/, listed once in converters.cpp).
void register_elementwise(ConverterTable& t);   // ops/elementwise.cpp
void register_reduction(ConverterTable& t);     // ops/reduction.cpp
void register_shape(ConverterTable& t);         // ops/shape.cpp: reshape/slice/gather/concat/...
void register_nn(ConverterTable& t);            // ops/nn.cpp: matmul/gemm/softmax/norms/conv/...
void register_transformer(ConverterTable& t);   // ops/transformer.cpp: Attention, RMSNormalization
void register_indexing(ConverterTable& t);      // ops/indexing.cpp: TopK, CumSum, scatters, ...
void register_loss(ConverterTable& t);          // ops/loss.cpp: NegativeLogLikelihoodLoss, ...
void register_signal(ConverterTable& t);        // ops/signal.cpp: HannWindow, HammingWindow, ...
void register_recurrent(ConverterTable& t);     // ops/recurrent.cpp: LSTM, GRU, RNN
void register_dynamic(ConverterTable& t);       // ops/dynamic.cpp: NonZero, Compress, Unique, NMS
void register_control_flow(ConverterTable& t);  // ops/control_flow.cpp: If, Loop, Scan
void register_quant(ConverterTable& t);         // ops/quant.cpp: QuantizeLinear, QLinearConv, ...

const ConverterTable& converters();

// ONNX TensorProto data types <-> NEF dtypes (nullopt: no NEF dtype, e.g. STRING, INT16).
std::optional<DType> dtype_from_onnx(int onnx_type);
int dtype_to_onnx(DType t);
const char* onnx_type_name(int onnx_type);  // "FLOAT", "INT16", ... for error messages

// Small helpers converters share.
Tensor scalar_like(double value, DType dtype);  // a 0-d constant of `dtype` (not weak)
// Normalizes an ONNX axis against `rank` (ShapeError via ctx when out of range).
int64_t norm_axis(const NodeCtx& ctx, int64_t axis, int64_t rank);

}  // namespace nef::onnx_import
