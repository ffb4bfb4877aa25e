// The execution IR: a flat list of nodes in topological order, each producing one tensor.
// Built from lazy API nodes (api/), from a .nef file (format/) or later from ONNX; consumed by
// validation, passes, the planner and the compiler. Node indices are positions in `nodes`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "ir/op_registry.h"
#include "nef/array.h"
#include "nef/attrs.h"

namespace nef::ir {

// Text that is usually a string literal (a placement reason): a literal is held by address, with
// no copy, so giving each of 10K nodes its reason allocates nothing; any other text is copied
// once into a shared immutable string (copying a Note never allocates). The literal constructor
// is consteval: it accepts only constant arrays (string literals), never a buffer that could
// change or go away.
class Note {
 public:
  Note() = default;
  template <size_t N>
  consteval Note(const char (&literal)[N]) : text_(literal, N - 1) {}
  Note(std::string s)
      : own_(s.empty() ? nullptr : std::make_shared<const std::string>(std::move(s))),
        text_(own_ ? std::string_view(*own_) : std::string_view()) {}
  Note(const Note& o) = default;
  Note(Note&& o) noexcept : own_(std::move(o.own_)), text_(o.text_) { o.text_ = {}; }
  Note& operator=(const Note& o) = default;
  Note& operator=(Note&& o) noexcept {
    own_ = std::move(o.own_);
    text_ = o.text_;
    o.text_ = {};
    return *this;
  }

  std::string_view view() const { return text_; }
  operator std::string_view() const { return text_; }
  std::string str() const { return std::string(text_); }
  bool empty() const { return text_.empty(); }
  void clear() { *this = Note(); }
  size_t find(std::string_view s) const { return text_.find(s); }
  bool operator==(std::string_view s) const { return text_ == s; }
  friend std::ostream& operator<<(std::ostream& os, const Note& n) { return os << n.text_; }

 private:
  std::shared_ptr<const std::string> own_;  // null for a literal
  std::string_view text_;                   // into the literal or *own_
};

// An optional value kept out of line (std::optional's interface): most nodes are not constants,
// and an inline std::optional<Array> would be ~90 of a node's bytes, which every pass and every
// node move carries. Copies are deep (a copied Array shares its storage, as before).
class Boxed {
 public:
  Boxed() = default;
  Boxed(std::nullopt_t) {}
  Boxed(Array a) : p_(std::make_unique<Array>(std::move(a))) {}
  Boxed(const Boxed& o) : p_(o.p_ ? std::make_unique<Array>(*o.p_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<Array>(*o.p_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  Boxed& operator=(std::nullopt_t) {
    p_.reset();
    return *this;
  }
  Boxed& operator=(Array a) {
    if (p_) *p_ = std::move(a);
    else p_ = std::make_unique<Array>(std::move(a));
    return *this;
  }
  Boxed& operator=(std::optional<Array> a) {
    if (a) *this = std::move(*a);
    else p_.reset();
    return *this;
  }

  bool has_value() const { return p_ != nullptr; }
  explicit operator bool() const { return p_ != nullptr; }
  Array& operator*() { return *p_; }
  const Array& operator*() const { return *p_; }
  Array* operator->() { return p_.get(); }
  const Array* operator->() const { return p_.get(); }
  void reset() { p_.reset(); }

 private:
  std::unique_ptr<Array> p_;
};

struct Node {
  // What most passes read per node comes first (the first two cache lines).
  const OpDef* op = nullptr;
  Attrs attrs;
  std::vector<int> inputs;  // indices of earlier nodes
  TensorType type;          // inferred output shape and dtype
  int binding = -1;         // op "input": index into the run-time bindings
  int device = -1;          // index into the plan's devices, set by the planner
  // op "constant": the value. op "input": unset (bound at run time through `binding`).
  Boxed constant;
  double predicted_seconds = 0;  // the planner's cost-model estimate on that device
  std::string device_hint;       // "", "cpu", "gpu", ... (a preference, not a command)
  std::string name;       // tensor name (graph inputs/outputs, file tensor names); may be empty
  Note placement_reason;  // why the planner put it there

  bool is(std::string_view op_name) const { return op && op->name == op_name; }
};

struct Graph {
  std::vector<Node> nodes;
  std::vector<int> outputs;               // node indices, in output order
  std::vector<std::string> output_names;  // same length as outputs
  std::vector<std::string> input_names;   // one per binding slot, in binding order

  int num_bindings() const { return static_cast<int>(input_names.size()); }
  std::vector<TensorType> input_types(const Node& n) const;
  // The same into `out`, reusing its capacity (no allocation in a loop over nodes).
  void input_types(const Node& n, std::vector<TensorType>& out) const;
};

// Checks the structure (input indices earlier than their node, outputs in range, bindings
// consistent, constants matching their type) and, with `reinfer`, re-runs inference on every
// node, comparing with the recorded type. Without it the caller vouches that every node's type
// and attributes are what check_and_infer gives on its inputs (the lazy API infers each node
// when it is created). Throws ValidationError (or the inference's ShapeError/TypeError) naming
// the node.
void validate(Graph& g, bool reinfer = true);

// Reorders nodes topologically given arbitrary input references; throws GraphCycleError naming a
// node on the cycle. `inputs_of[i]` are node positions. Returns the new order (old indices).
std::vector<int> topo_order(const std::vector<std::vector<int>>& inputs_of);

// Which nodes some graph output depends on (outputs included). Passes use it to ignore the
// dead nodes earlier passes leave for the final dce.
std::vector<bool> live_nodes(const Graph& g);

// Removes nodes that no output depends on, keeping order; remaps indices. Returns removed count.
int remove_dead(Graph& g);

// Deterministic text form used in tests, dumps and cache keys (includes constant identity).
std::string to_text(const Graph& g);

}  // namespace nef::ir
