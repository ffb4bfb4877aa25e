// The one op registry. Every op is one OpDef entry: name, arity, typed attribute schema,
// shape/dtype inference, traits and cost. Names, serialization, bindings, validation and the
// optimizer's checks all derive from this table; nothing keeps a parallel list by hand.
//
// Adding an op: add one OpDef in the family file under src/ir/ops/ (register_*_ops), one CPU
// kernel in src/backends/cpu/kernels/, and tests. See docs/architecture.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nef/attrs.h"
#include "nef/dtype.h"
#include "nef/shape.h"

namespace nef::ir {

struct TensorType {
  Shape shape;
  DType dtype = DType::Float32;
  // A Python scalar literal: promotes "weakly" (NEP 50, see promote_weak). Not part of equality.
  bool weak = false;
  bool operator==(const TensorType& o) const { return shape == o.shape && dtype == o.dtype; }
};

enum Trait : uint32_t {
  kElementwise = 1u << 0,  // out[i] depends only on the broadcast inputs at i
  kReduction = 1u << 1,    // reduces over attribute `axes`
  kFusable = 1u << 2,      // may join a fused elementwise group
  kView = 1u << 3,         // output may alias input 0's storage (reshape, transpose, slice...)
  kSource = 1u << 4,       // no tensor inputs (constant, input, full, arange, random_*)
  kRandom = 1u << 5,       // output depends on a seed attribute, not only on inputs
  kNoFold = 1u << 6,       // constant folding must not evaluate it (input: bound at run time)
  // The output's extent along one dim depends on input values (nonzero, unique...): Int
  // attribute "extent", -1 until known; op "<name>_extent" computes it (engine/segments.h).
  kValueShaped = 1u << 7,
};

struct AttrSpec {
  std::string name;
  AttrType type;
  std::optional<AttrValue> default_value;  // nullopt and !required: attribute may be absent
  bool required = false;
};

struct Cost {
  double flops = 0;
  double bytes = 0;  // bytes read + written
};

struct OpDef;
// Infers the output type from the inputs' types. May canonicalize attrs in place (negative axes
// made positive, defaults filled); must be idempotent so a loaded graph re-validates the same.
// Throws ShapeError / TypeError / ValidationError naming the op and the shapes.
using InferFn = TensorType (*)(const OpDef& op, const std::vector<TensorType>& inputs,
                               Attrs& attrs);
using CostFn = Cost (*)(const std::vector<TensorType>& inputs, const TensorType& out,
                        const Attrs& attrs);

struct OpDef {
  std::string name;
  int min_inputs = 0;
  int max_inputs = 0;  // -1: variadic
  std::vector<AttrSpec> attrs;
  InferFn infer = nullptr;
  uint32_t traits = 0;
  double flops_per_element = 0;  // used by the default cost when `cost` is null
  CostFn cost = nullptr;

  bool has(Trait t) const { return (traits & t) != 0; }
};

// Lookup; find_op returns nullptr for unknown names, get_op throws UnsupportedError.
const OpDef* find_op(std::string_view name);
const OpDef& get_op(std::string_view name);
const std::vector<const OpDef*>& all_ops();

// Full check of one node: arity, attribute names and types (unknown attributes rejected,
// defaults filled), then inference. Used by the API at op creation and by validation.
TensorType check_and_infer(const OpDef& op, const std::vector<TensorType>& inputs, Attrs& attrs);

Cost estimate_cost(const OpDef& op, const std::vector<TensorType>& inputs, const TensorType& out,
                   const Attrs& attrs);

// One registration function per op family (src/ir/ops/*.cpp); the registry calls each once.
class Registry;
void register_source_ops(Registry& r);        // input, constant, full, arange, random_*
void register_elementwise_ops(Registry& r);   // unary, binary, compare, logical, where, clip, cast
void register_reduction_ops(Registry& r);     // sum, mean, max, min, prod, argmax, argmin
void register_linalg_nn_ops(Registry& r);     // matmul, softmax, norms, attention
void register_layout_ops(Registry& r);        // reshape, transpose, slice, concat, gather...
void register_fused_ops(Registry& r);         // fused_elementwise (made by the fusion pass)
void register_fused_matmul_ops(Registry& r);  // matmul_epilogue (made by fuse_epilogue)
void register_pool_ops(Registry& r);          // max_pool, avg_pool
void register_image_ops(Registry& r);         // pad, resize
void register_conv_ops(Registry& r);          // conv, conv_transpose, conv_epilogue
void register_indexing_ops(Registry& r);      // gather_elements, gather_nd, scatter_*
void register_sort_scan_ops(Registry& r);     // topk, cumsum, cumprod
void register_decoder_ops(Registry& r);       // rope, cached_attention
void register_quant_ops(Registry& r);         // qmatmul, qgather, matmul_integer, conv_integer,
                                              // matmul_dynamic_int8, conv_dynamic_int8
void register_recurrent_ops(Registry& r);     // lstm, gru, rnn
void register_dynamic_ops(Registry& r);       // nonzero, unique, non_max_suppression, topk_k

class Registry {
 public:
  void add(OpDef def);  // aborts on duplicate names (a programming error at startup)
  const OpDef* find(std::string_view name) const;
  const std::vector<const OpDef*>& all() const { return ordered_; }

 private:
  std::vector<std::unique_ptr<OpDef>> defs_;
  std::vector<const OpDef*> ordered_;
  std::unordered_map<std::string_view, const OpDef*> by_name_;  // views of defs_' names
};

// Inference helpers shared by the family files.
Shape broadcast_all(const OpDef& op, const std::vector<TensorType>& inputs);
std::string types_str(const std::vector<TensorType>& inputs);  // "(2, 3) float32, (3,) int64"

}  // namespace nef::ir
