// The ONNX importer: parse and check the model once (Model::parse), then convert it node by node
// for each set of concrete input shapes (Model::specialize). Values are lazy nef::Tensors, so a
// shape computation (Shape -> Gather -> Concat -> Reshape) is evaluated with NEF's own kernels
// when a converter asks for it, and weights become constants the optimizer may fold.
#include "onnx/importer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "api/lazy.h"
#include "onnx/converter.h"
#include "onnx/onnx-ml.pb.h"
#include "onnx/tensor_proto.h"

namespace nef::onnx_import {

namespace {
bool is_onnx_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }
// Loops unroll at import: a bound on the nodes one specialization converts (hostile trip counts).
constexpr int64_t kMaxConvertedNodes = int64_t(1) << 20;
// Subgraphs (If branches, Loop/Scan bodies) nested deeper than this are refused at parse.
constexpr int kMaxSubgraphDepth = 16;
}  // namespace

struct ModelImpl {
  // Shared: initializers' raw_data is borrowed (not copied) by the weight arrays.
  std::shared_ptr<::onnx::ModelProto> proto_owner = std::make_shared<::onnx::ModelProto>();
  ::onnx::ModelProto& proto = *proto_owner;
  std::string base_dir;
  int opset = 0;
  std::vector<InputDecl> inputs;
  std::vector<std::string> outputs;
  // Initializers decoded once; every specialization shares their storage.
  std::vector<std::pair<std::string, Array>> weights;
};

// One specialization: the value table and what is known at import time.
class Importer {
 public:
  Importer(const ModelImpl& m, const std::map<std::string, Array>& values)
      : m_(m), values_in_(values) {}

  ir::Graph run(const std::map<std::string, int64_t>& dims);

  // A value by name: the innermost subgraph scope first, then the enclosing ones (ONNX
  // subgraphs see outer-scope values by name).
  const Tensor& value(const std::string& name, const NodeCtx& ctx) const {
    for (auto s = scopes_.rbegin(); s != scopes_.rend(); ++s)
      if (auto it = s->find(name); it != s->end()) return it->second;
    auto it = values_.find(name);
    if (it == values_.end())
      throw FormatError(str(ctx.where(), ": uses value '", name,
                            "', which no earlier node, input or initializer defines"));
    return it->second;
  }
  void define(const std::string& name, Tensor t) {
    (scopes_.empty() ? values_ : scopes_.back())[name] = std::move(t);
  }
  // Converts a subgraph (If branch, Loop/Scan body) in a new scope with its formal inputs bound
  // to `inputs`; returns its outputs in order. Outer values stay visible by name.
  std::vector<Tensor> run_subgraph(const ::onnx::GraphProto& g, const std::vector<Tensor>& inputs,
                                   const NodeCtx& ctx);
  void convert_nodes(const ::onnx::GraphProto& g);
  void convert_node(const ConverterTable& table, const ::onnx::NodeProto& node, int k);
  // True when the value's lazy DAG reaches no unbound placeholder (memoized per node).
  bool is_static(const Tensor& t) {
    std::vector<detail::LazyNode*> stack{t.node().get()};
    std::vector<detail::LazyNode*> order;
    while (!stack.empty()) {
      detail::LazyNode* n = stack.back();
      if (static_memo_.count(n)) {
        stack.pop_back();
        continue;
      }
      if (n->value || n->inputs.empty()) {
        static_memo_[n] = n->value.has_value() || n->op->name != "input";
        stack.pop_back();
        continue;
      }
      bool ready = true;
      for (const auto& in : n->inputs)
        if (!static_memo_.count(in.get())) {
          ready = false;
          stack.push_back(in.get());
        }
      if (ready) {
        bool s = true;
        for (const auto& in : n->inputs) s = s && static_memo_[in.get()];
        static_memo_[n] = s;
        stack.pop_back();
      }
    }
    return static_memo_[t.node().get()];
  }
  // True when the value's shape is known only at run time: its lazy DAG reaches an unresolved
  // value-shaped node (nonzero over a graph input...). Memoized per node.
  bool is_dynamic(const Tensor& t) {
    std::vector<detail::LazyNode*> stack{t.node().get()};
    while (!stack.empty()) {
      detail::LazyNode* n = stack.back();
      if (dynamic_memo_.count(n)) {
        stack.pop_back();
        continue;
      }
      if (n->value || n->inputs.empty()) {
        dynamic_memo_[n] = false;
        stack.pop_back();
        continue;
      }
      bool ready = true;
      for (const auto& in : n->inputs)
        if (!dynamic_memo_.count(in.get())) {
          ready = false;
          stack.push_back(in.get());
        }
      if (ready) {
        bool d = n->op->has(ir::kValueShaped) && n->attrs.get_int("extent") < 0;
        for (const auto& in : n->inputs) d = d || dynamic_memo_[in.get()];
        dynamic_memo_[n] = d;
        stack.pop_back();
      }
    }
    return dynamic_memo_[t.node().get()];
  }
  // A converter may take an input of run-time shape only where it never reads that input's dims
  // (they are upper bounds until the graph runs); otherwise the graph is specialized on the
  // values of the graph inputs behind it (NeedsValues). Bit i: input i may be dynamic.
  void check_dynamic_inputs(const NodeCtx& ctx, const ::onnx::NodeProto& node) {
    static const std::unordered_map<std::string, uint32_t> kAllowed = {
        {"Identity", 1},  {"Cast", 1},    {"Transpose", 1},
        {"Unsqueeze", 1}, {"Gather", 2},  {"Neg", 1},
        {"Abs", 1},       {"Relu", 1},    {"Sigmoid", 1},
        {"Exp", 1},       {"Log", 1},     {"Sqrt", 1},
        {"Not", 1},       {"Add", 3},     {"Sub", 3},
        {"Mul", 3},       {"Div", 3},     {"Equal", 3},
        {"Less", 3},      {"Greater", 3}, {"And", 3},
        {"Or", 3},        {"NonZero", 1}, {"Compress", 2},
        {"Unique", 0},    {"TopK", 1},    {"NonMaxSuppression", 3}};
    auto it = kAllowed.find(node.op_type());
    const uint32_t allowed = it == kAllowed.end() ? 0 : it->second;
    for (int i = 0; i < node.input_size(); ++i) {
      if (node.input(i).empty() || (i < 32 && (allowed >> i) & 1)) continue;
      const Tensor& t = value(node.input(i), ctx);
      if (!is_dynamic(t)) continue;
      throw NeedsValues{placeholders_of(t),
                        str(ctx.where(), ": input ", i, " ('", node.input(i),
                            "') has a shape known only at run time, which this op cannot take")};
    }
  }
  const ModelImpl& model() const { return m_; }

  // The graph inputs (unbound placeholders) `t` depends on.
  static std::vector<std::string> placeholders_of(const Tensor& t) {
    std::vector<std::string> out;
    std::unordered_set<const detail::LazyNode*> seen;
    std::vector<const detail::LazyNode*> stack{t.node().get()};
    while (!stack.empty()) {
      const detail::LazyNode* n = stack.back();
      stack.pop_back();
      if (!seen.insert(n).second || n->value) continue;
      if (n->inputs.empty() && n->op->name == "input") out.push_back(n->attrs.get_string("name"));
      for (const auto& in : n->inputs) stack.push_back(in.get());
    }
    return out;
  }

 private:
  const ModelImpl& m_;
  const std::map<std::string, Array>& values_in_;
  std::unordered_map<std::string, Tensor> values_;
  std::unordered_map<detail::LazyNode*, bool> static_memo_;
  std::unordered_map<detail::LazyNode*, bool> dynamic_memo_;
  std::vector<std::unordered_map<std::string, Tensor>> scopes_;  // open subgraphs, innermost last
  int64_t converted_ = 0;                                        // nodes converted (all scopes)
};

std::vector<Tensor> Importer::run_subgraph(const ::onnx::GraphProto& g,
                                           const std::vector<Tensor>& inputs, const NodeCtx& ctx) {
  if (g.input_size() != int(inputs.size()))
    ctx.fail(str("subgraph '", g.name(), "' declares ", g.input_size(), " inputs, the op gives ",
                 inputs.size()));
  if (g.sparse_initializer_size() > 0) ctx.unsupported("sparse initializers in a subgraph");
  struct Pop {
    std::vector<std::unordered_map<std::string, Tensor>>& s;
    ~Pop() { s.pop_back(); }
  };
  scopes_.emplace_back();
  Pop pop{scopes_};
  for (int i = 0; i < g.input_size(); ++i) scopes_.back()[g.input(i).name()] = inputs[size_t(i)];
  for (const auto& init : g.initializer())
    scopes_.back()[init.name()] = from_array(array_from_tensor_proto(
        init, m_.base_dir, str(ctx.where(), " subgraph initializer '", init.name(), "'")));
  convert_nodes(g);
  std::vector<Tensor> outs;
  for (const auto& o : g.output()) outs.push_back(value(o.name(), ctx));
  return outs;
}

// ---- NodeCtx -------------------------------------------------------------------------------

NodeCtx::NodeCtx(Importer& imp, const ::onnx::NodeProto& node, int opset, int version, int index)
    : imp_(imp), node_(node), opset_(opset), version_(version), index_(index) {}

const std::string& NodeCtx::op_type() const { return node_.op_type(); }
const std::string& NodeCtx::name() const { return node_.name(); }

std::string NodeCtx::where() const {
  if (node_.name().empty())
    return str("[onnx] ", node_.op_type(), " node #", index_, " (opset ", opset_, ")");
  return str("[onnx] ", node_.op_type(), " node '", node_.name(), "' (opset ", opset_, ")");
}
void NodeCtx::unsupported(const std::string& what) const {
  throw UnsupportedError(str(where(), ": ", what));
}
void NodeCtx::fail(const std::string& what) const { throw FormatError(str(where(), ": ", what)); }

size_t NodeCtx::num_inputs() const { return size_t(node_.input_size()); }
bool NodeCtx::has_input(size_t i) const { return i < num_inputs() && !node_.input(int(i)).empty(); }
Tensor NodeCtx::input(size_t i) const {
  if (!has_input(i)) fail(str("input ", i, " is required but absent"));
  return imp_.value(node_.input(int(i)), *this);
}
bool NodeCtx::input_is_static(size_t i) const { return imp_.is_static(input(i)); }
Array NodeCtx::static_input(size_t i) const {
  Tensor t = input(i);
  if (!imp_.is_static(t)) {
    // The caller may specialize on those inputs' values and convert again.
    NeedsValues need{Importer::placeholders_of(t),
                     str(where(), ": input ", i, " ('", node_.input(int(i)),
                         "') must be known when the graph is built but depends on the values "
                         "of graph inputs")};
    throw need;
  }
  // Import-time values are shapes, axes and scalars; a huge one is a hostile or broken model.
  constexpr int64_t kMaxStaticElements = int64_t(1) << 24;
  if (t.numel() > kMaxStaticElements)
    unsupported(str("input ", i, " ('", node_.input(int(i)), "') ", shape_str(t.shape()),
                    " is too large to evaluate at import time"));
  return t.array();
}
std::vector<int64_t> NodeCtx::static_ints(size_t i) const {
  Tensor t = input(i);
  if (!is_integer(t.dtype()))
    fail(str("input ", i, " must be an integer tensor, got ", dtype_name(t.dtype())));
  if (t.rank() > 1) fail(str("input ", i, " must be 0-d or 1-d, got ", shape_str(t.shape())));
  Array a = static_input(i);
  Tensor as64 = t.dtype() == DType::Int64 ? from_array(a) : cast(from_array(a), DType::Int64);
  return as64.to_vector<int64_t>();
}
std::vector<double> NodeCtx::static_floats(size_t i) const {
  Tensor t = input(i);
  if (t.rank() > 1) fail(str("input ", i, " must be 0-d or 1-d, got ", shape_str(t.shape())));
  Array a = static_input(i);
  Tensor as64 = t.dtype() == DType::Float64 ? from_array(a) : cast(from_array(a), DType::Float64);
  return as64.to_vector<double>();
}

size_t NodeCtx::num_outputs() const { return size_t(node_.output_size()); }
bool NodeCtx::output_wanted(size_t i) const {
  return i < num_outputs() && !node_.output(int(i)).empty();
}

const ::onnx::AttributeProto* NodeCtx::find_attr(const std::string& name) const {
  for (const auto& a : node_.attribute())
    if (a.name() == name) {
      read_.insert(name);
      return &a;
    }
  return nullptr;
}

const ::onnx::AttributeProto& NodeCtx::need_attr(const std::string& name, int type) const {
  const ::onnx::AttributeProto* a = find_attr(name);
  NEF_CHECK(a != nullptr);
  if (!a->ref_attr_name().empty())
    unsupported(str("attribute '", name, "' refers to a function attribute"));
  if (a->type() != type)
    fail(str("attribute '", name, "' has type ",
             ::onnx::AttributeProto_AttributeType_Name(a->type()), ", expected ",
             ::onnx::AttributeProto_AttributeType_Name(
                 static_cast<::onnx::AttributeProto_AttributeType>(type))));
  return *a;
}

bool NodeCtx::has_attr(const std::string& name) const {
  for (const auto& a : node_.attribute())
    if (a.name() == name) return true;
  return false;
}

int64_t NodeCtx::attr_int(const std::string& name, std::optional<int64_t> dflt) const {
  if (!has_attr(name)) {
    if (!dflt) fail(str("attribute '", name, "' is required"));
    return *dflt;
  }
  return need_attr(name, ::onnx::AttributeProto::INT).i();
}
double NodeCtx::attr_float(const std::string& name, std::optional<double> dflt) const {
  if (!has_attr(name)) {
    if (!dflt) fail(str("attribute '", name, "' is required"));
    return *dflt;
  }
  return need_attr(name, ::onnx::AttributeProto::FLOAT).f();
}
std::string NodeCtx::attr_string(const std::string& name, std::optional<std::string> dflt) const {
  if (!has_attr(name)) {
    if (!dflt) fail(str("attribute '", name, "' is required"));
    return *dflt;
  }
  return need_attr(name, ::onnx::AttributeProto::STRING).s();
}
std::vector<int64_t> NodeCtx::attr_ints(const std::string& name,
                                        std::optional<std::vector<int64_t>> dflt) const {
  if (!has_attr(name)) {
    if (!dflt) fail(str("attribute '", name, "' is required"));
    return *dflt;
  }
  const auto& a = need_attr(name, ::onnx::AttributeProto::INTS);
  return {a.ints().begin(), a.ints().end()};
}
std::vector<double> NodeCtx::attr_floats(const std::string& name,
                                         std::optional<std::vector<double>> dflt) const {
  if (!has_attr(name)) {
    if (!dflt) fail(str("attribute '", name, "' is required"));
    return *dflt;
  }
  const auto& a = need_attr(name, ::onnx::AttributeProto::FLOATS);
  return {a.floats().begin(), a.floats().end()};
}
std::vector<std::string> NodeCtx::attr_strings(const std::string& name,
                                               std::optional<std::vector<std::string>> dflt) const {
  if (!has_attr(name)) {
    if (!dflt) fail(str("attribute '", name, "' is required"));
    return *dflt;
  }
  const auto& a = need_attr(name, ::onnx::AttributeProto::STRINGS);
  return {a.strings().begin(), a.strings().end()};
}
Array NodeCtx::attr_tensor(const std::string& name) const {
  if (!has_attr(name)) fail(str("attribute '", name, "' is required"));
  const auto& a = need_attr(name, ::onnx::AttributeProto::TENSOR);
  return array_from_tensor_proto(a.t(), imp_.model().base_dir,
                                 str(where(), " attribute '", name, "'"));
}
void NodeCtx::ignore_attr(const std::string& name) const { find_attr(name); }
const ::onnx::GraphProto& NodeCtx::attr_graph(const std::string& name) const {
  if (!find_attr(name)) fail(str("attribute '", name, "' is required"));
  return need_attr(name, ::onnx::AttributeProto::GRAPH).g();
}

std::vector<Tensor> NodeCtx::run_graph(const ::onnx::GraphProto& g,
                                       const std::vector<Tensor>& inputs) const {
  return imp_.run_subgraph(g, inputs, *this);
}
bool NodeCtx::is_static(const Tensor& t) const { return imp_.is_static(t); }
Array NodeCtx::static_value(const Tensor& t, const std::string& what) const {
  if (!imp_.is_static(t))
    throw NeedsValues{Importer::placeholders_of(t),
                      str(where(), ": ", what,
                          " must be known when the graph is built but "
                          "depends on the values of graph inputs")};
  if (t.numel() > (int64_t(1) << 24)) unsupported(str(what, " is too large to evaluate at import"));
  return Tensor(t).array();
}

std::vector<std::string> NodeCtx::unread_attrs() const {
  std::vector<std::string> out;
  for (const auto& a : node_.attribute())
    if (!read_.count(a.name())) out.push_back(a.name());
  return out;
}

// ---- specialization --------------------------------------------------------------------------

void Importer::convert_nodes(const ::onnx::GraphProto& g) {
  const ConverterTable& table = converters();
  for (int k = 0; k < g.node_size(); ++k) {
    const ::onnx::NodeProto& node = g.node(k);
    if (++converted_ > kMaxConvertedNodes)
      throw UnsupportedError(str("[onnx] the model converts to more than ", kMaxConvertedNodes,
                                 " nodes (loops are unrolled at import): node '", node.name(),
                                 "' (", node.op_type(), ")"));
    convert_node(table, node, k);
  }
}

void Importer::convert_node(const ConverterTable& table, const ::onnx::NodeProto& node, int k) {
  if (!is_onnx_domain(node.domain()))
    throw UnsupportedError(str("[onnx] op '", node.domain(), ".", node.op_type(), "' (node '",
                               node.name(), "'): only the default ONNX domain is supported"));
  auto it = table.find(node.op_type());
  // The op's revision in force at the model's opset: the newest one not after it.
  const int version = it == table.end() ? 0 : op_revision(it->second, m_.opset);
  NodeCtx ctx(*this, node, m_.opset, version, k);
  if (it == table.end())
    throw UnsupportedError(str(ctx.where(), ": op '", node.op_type(), "' is not supported"));
  if (version == 0)
    throw FormatError(str(ctx.where(), ": op '", node.op_type(), "' does not exist in opset ",
                          m_.opset, " (ONNX defines it from opset ", it->second.since.front(),
                          ")"));
  if (version < it->second.min_since)
    throw UnsupportedError(str(ctx.where(), ": NEF implements ", node.op_type(), " from its opset-",
                               it->second.min_since, " revision; opset ", m_.opset,
                               " uses its opset-", version, " revision"));
  std::vector<Tensor> outs;
  check_dynamic_inputs(ctx, node);
  try {
    outs = it->second.fn(ctx);
  } catch (const NeedsValues&) {
    throw;
  } catch (const Error& e) {
    // Errors from NEF's ops (shape/dtype checks at creation) get the node's name.
    if (std::string(e.what()).rfind("[onnx]", 0) == 0) throw;
    throw_error(e.code(), str(ctx.where(), ": ", e.what()));
  }
  std::vector<std::string> unread = ctx.unread_attrs();
  if (!unread.empty()) ctx.unsupported(str("attribute '", unread[0], "' is not supported"));
  // A converter may return outputs the node does not list (lazy tensors: never built).
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    if (!ctx.output_wanted(i)) continue;
    if (i >= outs.size() || !outs[i].defined())
      ctx.unsupported(str("output ", i, " ('", node.output(int(i)), "') is not supported"));
    define(node.output(int(i)), outs[i]);
  }
}

ir::Graph Importer::run(const std::map<std::string, int64_t>& dims) {
  const ::onnx::GraphProto& g = m_.proto.graph();
  for (const InputDecl& in : m_.inputs) {
    if (auto v = values_in_.find(in.name); v != values_in_.end()) {
      // Specialized on this input's value: a private copy, the caller may reuse its buffer.
      Array c = Array::empty(v->second.shape, v->second.dtype);
      copy_strided(v->second, c);
      values_[in.name] = from_array(std::move(c));
      continue;
    }
    Shape shape;
    for (size_t d = 0; d < in.dims.size(); ++d) {
      if (in.dims[d] >= 0) {
        shape.push_back(in.dims[d]);
        continue;
      }
      auto it = dims.find(in.dim_names[d]);
      NEF_CHECK(it != dims.end(), "unbound symbol ", in.dim_names[d]);
      shape.push_back(it->second);
    }
    values_[in.name] = placeholder(in.name, shape, in.dtype);
  }
  for (const auto& [name, arr] : m_.weights) values_[name] = from_array(arr);

  convert_nodes(g);

  std::vector<detail::LazyNode*> targets;
  std::vector<std::string> names;
  for (const auto& out : g.output()) {
    auto it = values_.find(out.name());
    if (it == values_.end())
      throw FormatError(str("[onnx] graph output '", out.name(), "' is not computed by any node"));
    targets.push_back(it->second.node().get());
    names.push_back(out.name());
  }
  detail::BuiltGraph built = detail::build_graph(targets, detail::BuildMode::Serialize, names);
  ir::Graph& graph = built.graph;
  // The graph's inputs are the model's, in the model's order, used or not (build_graph numbers
  // only the placeholders the outputs reach, in walk order).
  std::unordered_map<std::string, int> binding_of;
  for (size_t i = 0; i < m_.inputs.size(); ++i) binding_of[m_.inputs[i].name] = int(i);
  std::vector<bool> present(m_.inputs.size(), false);
  for (ir::Node& n : graph.nodes)
    if (n.is("input")) {
      auto it = binding_of.find(n.name);
      NEF_CHECK(it != binding_of.end(), "placeholder '", n.name, "' is not a model input");
      n.binding = it->second;
      present[size_t(it->second)] = true;
    }
  for (size_t i = 0; i < m_.inputs.size(); ++i) {
    if (present[i]) continue;
    const Tensor& t = values_.at(m_.inputs[i].name);
    ir::Node& n = graph.nodes.emplace_back();
    n.op = &ir::get_op("input");
    n.type = t.node()->type;
    n.type.weak = false;
    n.name = m_.inputs[i].name;
    n.binding = int(i);
    n.attrs.set("name", n.name);
    n.attrs.set("shape", std::vector<int64_t>(n.type.shape.begin(), n.type.shape.end()));
    n.attrs.set("dtype", std::string(dtype_name(n.type.dtype)));
  }
  graph.input_names.clear();
  for (const InputDecl& in : m_.inputs) graph.input_names.push_back(in.name);
  ir::validate(graph);
  return std::move(graph);
}

// ---- Model -----------------------------------------------------------------------------------

Model::~Model() = default;

namespace {
InputDecl input_decl(const ::onnx::ValueInfoProto& v) {
  InputDecl d;
  d.name = v.name();
  if (d.name.empty()) throw FormatError("[onnx] a graph input has no name");
  if (!v.has_type() || !v.type().has_tensor_type())
    throw UnsupportedError(str("[onnx] graph input '", d.name, "' is not a tensor"));
  const auto& tt = v.type().tensor_type();
  std::optional<DType> dt = dtype_from_onnx(tt.elem_type());
  if (!dt)
    throw UnsupportedError(str("[onnx] graph input '", d.name, "' has data type ",
                               onnx_type_name(tt.elem_type()), ", which NEF does not support"));
  d.dtype = *dt;
  if (!tt.has_shape())
    throw UnsupportedError(str("[onnx] graph input '", d.name, "' has no shape (unknown rank)"));
  if (tt.shape().dim_size() > 16)
    throw UnsupportedError(str("[onnx] graph input '", d.name, "' has rank > 16"));
  for (int i = 0; i < tt.shape().dim_size(); ++i) {
    const auto& dim = tt.shape().dim(i);
    // Unknown dims are free, each its own symbol: no dim at all, a negative dim_value (exporters
    // write -1; ONNX Runtime and onnx.checker accept it) and the dim_param '?' that some
    // exporters write for "unknown" (treating it as one shared name would tie unrelated dims).
    const bool named = dim.has_dim_param() && !dim.dim_param().empty() && dim.dim_param() != "?";
    if (dim.has_dim_value() && dim.dim_value() >= 0) {
      d.dims.push_back(dim.dim_value());
      d.dim_names.emplace_back();
    } else {
      d.dims.push_back(-1);
      d.dim_names.push_back(named ? dim.dim_param() : str(d.name, ":", i));
    }
  }
  return d;
}
}  // namespace

namespace {

bool visible(const std::string& name, const std::unordered_set<std::string>& defined,
             const std::vector<const std::unordered_set<std::string>*>& outer) {
  if (defined.count(name)) return true;
  for (const auto* s : outer)
    if (s->count(name)) return true;
  return false;
}

// The nodes of `g` (the main graph at depth 0) in order: inputs visible, outputs new, each
// GRAPH/GRAPHS attribute checked the same way one level deeper (bounded: a hostile model
// could nest subgraphs until the stack overflows).
void check_nodes(const ::onnx::GraphProto& g, std::unordered_set<std::string>& defined,
                 std::vector<const std::unordered_set<std::string>*>& outer, int depth) {
  for (int k = 0; k < g.node_size(); ++k) {
    const auto& node = g.node(k);
    if (node.op_type().empty()) throw FormatError(str("[onnx] node ", k, " has no op_type"));
    for (const auto& in : node.input())
      if (!in.empty() && !visible(in, defined, outer))
        throw FormatError(str("[onnx] ", node.op_type(), " node '", node.name(), "' uses value '",
                              in,
                              "', which no earlier node, input or initializer defines "
                              "(nodes must be topologically sorted)"));
    for (const auto& a : node.attribute()) {
      if (a.type() != ::onnx::AttributeProto::GRAPH && a.type() != ::onnx::AttributeProto::GRAPHS)
        continue;
      if (depth + 1 > kMaxSubgraphDepth)
        throw FormatError(str("[onnx] ", node.op_type(), " node '", node.name(),
                              "': subgraphs nested deeper than ", kMaxSubgraphDepth));
      std::vector<const ::onnx::GraphProto*> subs;
      if (a.type() == ::onnx::AttributeProto::GRAPH) subs.push_back(&a.g());
      for (const auto& sg : a.graphs()) subs.push_back(&sg);
      outer.push_back(&defined);
      for (const ::onnx::GraphProto* sg : subs) {
        std::unordered_set<std::string> inner;
        for (const auto& init : sg->initializer())
          if (init.name().empty() || !inner.insert(init.name()).second)
            throw FormatError(str("[onnx] ", node.op_type(), " node '", node.name(),
                                  "': a subgraph initializer has no name or a repeated one"));
        for (const auto& in : sg->input()) {
          // (IR < 4 lists initializers as inputs too: a repeat is not an error)
          if (in.name().empty())
            throw FormatError(str("[onnx] ", node.op_type(), " node '", node.name(),
                                  "': a subgraph input has no name"));
          inner.insert(in.name());
        }
        check_nodes(*sg, inner, outer, depth + 1);
        for (const auto& out : sg->output())
          if (!visible(out.name(), inner, outer))
            throw FormatError(str("[onnx] ", node.op_type(), " node '", node.name(),
                                  "': subgraph output '", out.name(),
                                  "' is not computed by any node"));
      }
      outer.pop_back();
    }
    for (const auto& out : node.output())
      if (!out.empty() && !defined.insert(out).second)
        throw FormatError(
            str("[onnx] value '", out, "' is defined twice (node '", node.name(), "')"));
  }
}

}  // namespace

std::shared_ptr<Model> Model::parse(const void* data, size_t size, const std::string& base_dir) {
  return parse_with(
      base_dir,
      [&](::onnx::ModelProto& proto) {
        if (size > size_t(INT32_MAX))
          throw FormatError(
              "[onnx] model is larger than 2 GiB (protobuf's limit): store the "
              "weights as external data");
        return proto.ParseFromArray(data, int(size));
      },
      size);
}

std::shared_ptr<Model> Model::parse_with(const std::string& base_dir,
                                         const std::function<bool(::onnx::ModelProto&)>& decode,
                                         size_t size) {
  std::shared_ptr<Model> m(new Model());
  m->impl_ = std::make_unique<ModelImpl>();
  ModelImpl& mi = *m->impl_;
  mi.base_dir = base_dir;
  if (!decode(mi.proto))
    throw FormatError(
        str("[onnx] not a valid ONNX model (", size, " bytes): protobuf parse failed"));
  if (!mi.proto.has_graph()) throw FormatError("[onnx] the model has no graph");
  for (const auto& op : mi.proto.opset_import())
    if (is_onnx_domain(op.domain())) mi.opset = int(std::clamp<int64_t>(op.version(), 0, 1 << 20));
  if (mi.opset == 0) {
    std::string domains;
    for (const auto& op : mi.proto.opset_import())
      domains += (domains.empty() ? "" : ", ") + op.domain();
    throw UnsupportedError(str("[onnx] the model imports only the domains (", domains,
                               "); NEF supports the default ONNX domain"));
  }
  // Each op is checked against its own revisions when converted (converter.h); an opset newer
  // than the table knows could hold revisions NEF would convert with older semantics.
  if (mi.opset > kNewestOpset)
    throw UnsupportedError(str("[onnx] opset ", mi.opset, " is newer than the newest NEF knows (",
                               kNewestOpset, "); convert the model with onnx.version_converter"));
  const ::onnx::GraphProto& g = mi.proto.graph();
  if (g.sparse_initializer_size() > 0)
    throw UnsupportedError("[onnx] sparse initializers are not supported");

  std::unordered_set<std::string> defined;
  for (const auto& init : g.initializer()) {
    if (init.name().empty()) throw FormatError("[onnx] an initializer has no name");
    if (!defined.insert(init.name()).second)
      throw FormatError(str("[onnx] initializer '", init.name(), "' is defined twice"));
    mi.weights.emplace_back(
        init.name(), array_from_tensor_proto(init, base_dir, str("initializer '", init.name(), "'"),
                                             mi.proto_owner));
  }
  for (const auto& in : g.input()) {
    if (defined.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
    mi.inputs.push_back(input_decl(in));
    defined.insert(in.name());
  }
  // Structure: every node input defined before use, no value defined twice; the same for
  // every subgraph, which also sees the values defined before its node in enclosing graphs.
  std::vector<const std::unordered_set<std::string>*> outer;
  check_nodes(g, defined, outer, 0);
  if (g.output_size() == 0) throw FormatError("[onnx] the graph has no outputs");
  for (const auto& out : g.output()) {
    if (!defined.count(out.name()))
      throw FormatError(str("[onnx] graph output '", out.name(), "' is not computed by any node"));
    mi.outputs.push_back(out.name());
  }
  return m;
}

std::shared_ptr<Model> Model::parse_file(const std::string& path) {
  // Parsed from the file descriptor: the file's bytes are not held twice (a mapping plus the
  // parsed message), and weights borrow the message's buffers.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(str("[onnx] cannot open '", path, "': ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FormatError(str("[onnx] '", path, "' is not a regular file"));
  }
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  try {
    auto m = parse_with(
        dir,
        [&](::onnx::ModelProto& proto) {
          if (st.st_size > off_t(INT32_MAX))
            throw FormatError(
                "[onnx] model is larger than 2 GiB (protobuf's limit): store the "
                "weights as external data");
          return proto.ParseFromFileDescriptor(fd);
        },
        size_t(st.st_size));
    ::close(fd);
    return m;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

const std::vector<InputDecl>& Model::inputs() const { return impl_->inputs; }
const std::vector<std::string>& Model::outputs() const { return impl_->outputs; }
int Model::opset() const { return impl_->opset; }

std::vector<std::string> Model::symbols() const {
  std::vector<std::string> out;
  for (const auto& in : impl_->inputs)
    for (const auto& s : in.dim_names)
      if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  return out;
}

std::map<std::string, int64_t> Model::bind(const std::vector<Shape>& shapes) const {
  NEF_CHECK(shapes.size() == impl_->inputs.size());
  std::map<std::string, int64_t> dims;
  std::map<std::string, std::string> bound_by;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const InputDecl& in = impl_->inputs[i];
    if (shapes[i].size() != in.dims.size())
      throw ShapeError(str("[run] input '", in.name, "' has rank ", in.dims.size(), ", got shape ",
                           shape_str(shapes[i])));
    for (size_t d = 0; d < in.dims.size(); ++d) {
      const int64_t v = shapes[i][d];
      if (in.dims[d] >= 0) {
        if (v != in.dims[d])
          throw ShapeError(str("[run] input '", in.name, "' dim ", d, " must be ", in.dims[d],
                               ", got shape ", shape_str(shapes[i])));
        continue;
      }
      auto [it, fresh] = dims.emplace(in.dim_names[d], v);
      if (fresh) {
        bound_by[in.dim_names[d]] = in.name;
      } else if (it->second != v) {
        throw ShapeError(str("[run] dim '", in.dim_names[d], "' is ", it->second, " in input '",
                             bound_by[in.dim_names[d]], "' but ", v, " in input '", in.name,
                             "' (shape ", shape_str(shapes[i]), ")"));
      }
    }
  }
  return dims;
}

ir::Graph Model::specialize(const std::map<std::string, int64_t>& dims,
                            const std::map<std::string, Array>& values) const {
  std::string missing;
  for (const auto& s : symbols())
    if (!dims.count(s)) missing += (missing.empty() ? "" : ", ") + s;
  if (!missing.empty())
    throw ValidationError(str("[onnx] symbolic dims must be bound to build a graph: ", missing));
  for (const auto& [k, v] : dims)
    if (v < 0) throw ValidationError(str("[onnx] dim '", k, "' bound to negative ", v));
  for (const auto& [name, v] : values)
    if (v.numel() > kMaxValueInputElements)
      throw UnsupportedError(str("[onnx] input '", name, "' ", shape_str(v.shape),
                                 " shapes the graph but is too large to specialize on"));
  Importer imp(*impl_, values);
  return imp.run(dims);
}

}  // namespace nef::onnx_import
