// Lazy nodes, and lazy DAG -> ir::Graph (build_graph) and -> compiled plan (plan_for), both
// from one walk of the DAG (lazy_walk.h).
#include <algorithm>
#include <unordered_set>

#include "api/lazy.h"
#include "api/lazy_walk.h"
#include "common/session.h"
#include "compiler/compiler.h"
#include "nef/error.h"

namespace nef::detail {

namespace {

// The attributes of a constant, or of an input when `name` is given.
ir::Attrs type_attrs(const ir::TensorType& t, const std::string* name = nullptr) {
  std::vector<ir::Attrs::Entry> e;
  e.reserve(3);
  e.emplace_back("dtype", std::string(dtype_name(t.dtype)));
  if (name) e.emplace_back("name", *name);
  e.emplace_back("shape", std::vector<int64_t>(t.shape.begin(), t.shape.end()));
  return ir::Attrs(std::move(e));
}

// Without `copy_bindings` (plan_for, which hands out pointers instead) Execute mode leaves
// out.bindings empty.
BuiltGraph build_from_walk(const Walk& w, const std::vector<LazyNode*>& targets, BuildMode mode,
                           const std::vector<std::string>& output_names,
                           bool copy_bindings = true) {
  BuiltGraph out;
  ir::Graph& g = out.graph;
  if (copy_bindings) out.bindings.reserve(w.bound_values.size());
  std::unordered_set<std::string> placeholder_names;
  g.nodes.reserve(w.order.size());
  const ir::OpDef& constant_op = ir::get_op("constant");
  const ir::OpDef& input_op = ir::get_op("input");
  // The lazy nodes are scattered and, on a cold compile, out of cache (a 10K-node walk reads
  // more than L2 holds): each node costs dependent misses (its lines, then its shape's array).
  // Prefetched ahead in two steps: the node's lines kPrefetchNode nodes ahead, its shape array
  // (whose address is then in cache) kPrefetchShape nodes ahead.
  constexpr size_t kPrefetchNode = 12, kPrefetchShape = 6;
  auto prefetch_node = [&](size_t j) {
    const char* p = reinterpret_cast<const char*>(w.order[j]);
    for (size_t off = 0; off < sizeof(LazyNode); off += 64) __builtin_prefetch(p + off);
  };
  for (size_t j = 0; j < std::min(kPrefetchNode, w.order.size()); ++j) prefetch_node(j);
  for (size_t i = 0; i < w.order.size(); ++i) {
    if (i + kPrefetchNode < w.order.size()) prefetch_node(i + kPrefetchNode);
    if (i + kPrefetchShape < w.order.size())
      __builtin_prefetch(w.order[i + kPrefetchShape]->type.shape.data());
    const LazyNode* cur = w.order[i];
    ir::Node& node = g.nodes.emplace_back();
    node.type = cur->type;
    node.device_hint = cur->device_hint;
    switch (w.kind[i]) {
      case kLiteral:
        node.op = &constant_op;
        // A literal is a constant node already: its (interned) attributes are shared.
        node.attrs = cur->op == &constant_op ? cur->attrs : type_attrs(cur->type);
        node.constant = *cur->value;
        break;
      case kBound:
      case kPlaceholder: {
        if (!cur->value && mode == BuildMode::Execute)
          throw ValidationError(str("[input] placeholder '", cur->attrs.get_string("name"), "' ",
                                    shape_str(cur->type.shape),
                                    " has no value: build the graph and run it with inputs "
                                    "(t.build(path); nef.load(path).run({...}))"));
        node.op = &input_op;
        node.binding = g.num_bindings();
        std::string nm;
        if (mode == BuildMode::Serialize) {
          nm = cur->attrs.get_string("name");
          if (nm.empty()) nm = str("input_", node.binding);
          if (!placeholder_names.insert(nm).second)
            throw ValidationError(str("[build] two placeholders are named '", nm, "'"));
        } else {
          nm = "arg" + std::to_string(node.binding);
          if (copy_bindings) out.bindings.push_back(*cur->value);
        }
        // Execute mode: the attributes carry the type only, name "" (the slot is node.binding,
        // its name node.name), so a data tensor's own (interned) attributes are shared.
        static const std::string kUnnamed;
        if (mode == BuildMode::Serialize) node.attrs = type_attrs(cur->type, &nm);
        else if (cur->op == &input_op && cur->attrs.get_string("name").empty())
          node.attrs = cur->attrs;
        else node.attrs = type_attrs(cur->type, &kUnnamed);
        node.name = nm;
        if (cur->value && !cur->value->on_host() && mode == BuildMode::Execute)
          node.device_hint = cur->value->device();  // bound where it lives
        g.input_names.push_back(std::move(nm));
        break;
      }
      default:
        node.op = cur->op;
        node.attrs = cur->attrs;
        node.inputs.assign(w.inputs.begin() + w.in_begin[i], w.inputs.begin() + w.in_begin[i + 1]);
        break;
    }
  }
  g.outputs = w.outputs;
  for (size_t i = 0; i < targets.size(); ++i) {
    g.output_names.push_back(i < output_names.size() ? output_names[i] : str("out", i));
    out.output_nodes.push_back(targets[i]);
  }
  return out;
}

}  // namespace

void LazyNode::set_inputs(std::vector<std::shared_ptr<LazyNode>> in) {
  for (auto& c : take_inputs()) c.reset();  // the old ones, released (none after make_node)
  inputs = std::move(in);
  n_in = uint32_t(inputs.size());
  for (uint32_t i = 0; i < n_in; ++i) {
    if (i < kInline) in_fast[i] = inputs[i].get();
    inputs[i]->users.fetch_add(1, std::memory_order_relaxed);
  }
}

std::vector<std::shared_ptr<LazyNode>> LazyNode::take_inputs() {
  for (const auto& c : inputs) c->users.fetch_sub(1, std::memory_order_relaxed);
  n_in = 0;
  for (auto& p : in_fast) p = nullptr;
  return std::move(inputs);
}

LazyNode::~LazyNode() {
  std::vector<std::shared_ptr<LazyNode>> stack = take_inputs();
  while (!stack.empty()) {
    std::shared_ptr<LazyNode> n = std::move(stack.back());
    stack.pop_back();
    if (n && n.use_count() == 1)
      for (auto& c : n->take_inputs()) stack.push_back(std::move(c));
  }
}

namespace {
thread_local std::string t_default_hint;  // DeviceScope

}  // namespace

const std::string& default_device_hint() { return t_default_hint; }
void set_default_device_hint(std::string hint) { t_default_hint = std::move(hint); }

std::shared_ptr<LazyNode> make_node(const std::string& op_name,
                                    std::vector<std::shared_ptr<LazyNode>> in, ir::Attrs attrs) {
  const ir::OpDef& op = ir::get_op(op_name);
  std::vector<ir::TensorType> types;
  types.reserve(in.size());
  for (const auto& n : in) {
    if (!n) throw ValidationError(str("[", op_name, "] got an undefined tensor"));
    types.push_back(n->type);
  }
  auto node = std::make_shared<LazyNode>();
  node->type = ir::check_and_infer(op, types, attrs);
  node->op = &op;
  node->attrs = attrs.interned();
  node->attrs_id = node->attrs.identity();
  node->set_inputs(std::move(in));
  node->set_device_hint(t_default_hint);
  return node;
}

BuiltGraph build_graph(const std::vector<LazyNode*>& targets, BuildMode mode,
                       const std::vector<std::string>& output_names) {
  Walk w;
  walk(targets, mode, w);
  return build_from_walk(w, targets, mode, output_names);
}

std::shared_ptr<const runtime::Plan> compile_built(ir::Graph g) {
  compiler::CompileOptions o;
  o.use_plan_cache = false;
  o.reinfer = false;
  return compiler::compile(std::move(g), o);
}

LazyPlan plan_for(const std::vector<LazyNode*>& targets) {
  // This thread's walk buffers, reused by every evaluate (a nested call, which nothing makes
  // today, would get fresh ones).
  thread_local Walk scratch;
  thread_local bool busy = false;
  std::optional<Walk> own;
  Walk& w = busy ? own.emplace() : scratch;
  struct Release {
    bool* flag;
    ~Release() {
      if (flag) *flag = false;
    }
  } release{busy ? nullptr : &busy};
  busy = true;
  // A keying walk: the hit path needs the key, the outputs and the bound values only.
  walk(targets, BuildMode::Execute, w, /*full=*/false);
  std::string devices = compiler::device_key();
  uint64_t dh = std::hash<std::string>()(devices);
  LazyPlan out;
  out.output_nodes = targets;
  compiler::FrontEntry e = compiler::find_front_plan(w.hash[0] ^ dh, w.hash[1]);
  if (e.plan && matches(*static_cast<const Signature*>(e.signature.get()), w, devices)) {
    nef::counters().plan_cache_hits++;
    out.plan = std::move(e.plan);
  } else {
    // A miss compiles (milliseconds): the full walk for the graph costs little beside it.
    walk(targets, BuildMode::Execute, w, /*full=*/true);
    BuiltGraph built = build_from_walk(w, targets, BuildMode::Execute, {}, false);
    out.plan = compile_built(std::move(built.graph));
    compiler::store_front_plan(w.hash[0] ^ dh, w.hash[1],
                               {make_signature(w, std::move(devices)), out.plan});
  }
  // Binding slots are the bound nodes in walk order (as build_from_walk numbers them).
  // A copy (one allocation): moving would leave the thread's walk to regrow the vector.
  out.bindings.assign(w.bound_values.begin(), w.bound_values.end());
  return out;
}

}  // namespace nef::detail
