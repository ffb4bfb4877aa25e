#include <cstring>
#include <unordered_set>

#include "api/lazy.h"
#include "common/session.h"
#include "compiler/compiler.h"
#include "nef/error.h"

namespace nef::detail {

namespace {

// 128-bit structural hashing: two independently seeded and mixed 64-bit lanes. Only a filter:
// every hit is verified exactly, so the quality matters for speed, not for correctness.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
struct Hasher {
  uint64_t a = 0x243f6a8885a308d3ull, b = 0x13198a2e03707344ull;
  void add(uint64_t v) {
    a = mix64(a ^ v) + 0x9e3779b97f4a7c15ull;
    b = mix64((b + v) * 0xff51afd7ed558ccdull) ^ (b >> 17);
  }
  void add(const void* p, size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    add(n);
    for (; n >= 8; n -= 8, c += 8) {
      uint64_t w;
      std::memcpy(&w, c, 8);
      add(w);
    }
    if (n) {
      uint64_t w = 0;
      std::memcpy(&w, c, n);
      add(w);
    }
  }
  void add2(const uint64_t h[2]) {
    add(h[0]);
    add(h[1]);
  }
};

void hash_type(Hasher& h, const ir::TensorType& t) {
  h.add(uint64_t(t.dtype) | (uint64_t(t.shape.size()) << 16));
  for (int64_t d : t.shape) h.add(uint64_t(d));
}

// Constants up to this size are keyed by value, larger ones by storage identity (as the
// compiler's structural key does): scalar literals recreated on every call must hit the cache.
constexpr size_t kKeyByValueBytes = 64;

void hash_literal(Hasher& h, const Array& a) {
  if (a.nbytes() <= kKeyByValueBytes) {
    if (a.is_contiguous()) {  // the usual scalar: no copy
      h.add(a.data(), a.nbytes());
      return;
    }
    Array c = a.contiguous();
    h.add(c.data(), c.nbytes());
  } else {
    h.add(a.storage->id());
    h.add(uint64_t(a.offset));
    for (int64_t s : a.strides) h.add(uint64_t(s));
  }
}

bool same_literal(const Array& x, const Array& y) {
  if (x.dtype != y.dtype || x.shape != y.shape) return false;
  if (x.nbytes() <= kKeyByValueBytes) {
    if (x.nbytes() == 0) return true;  // same shape and dtype, no data (storage may be null)
    if (x.is_contiguous() && y.is_contiguous())
      return std::memcmp(x.data(), y.data(), x.nbytes()) == 0;
    Array cx = x.contiguous(), cy = y.contiguous();
    return std::memcmp(cx.data(), cy.data(), cx.nbytes()) == 0;
  }
  return x.storage->id() == y.storage->id() && x.offset == y.offset && x.strides == y.strides;
}

// Open-addressing map LazyNode* -> position in the walk: no allocation per node.
class NodeIndex {
 public:
  explicit NodeIndex(size_t expect) {
    size_t cap = 1024;
    while (cap < expect * 2) cap *= 2;
    slots_.assign(cap, {nullptr, -1});
  }
  int find(const LazyNode* p) const {
    size_t m = slots_.size() - 1;
    for (size_t i = slot(p) & m;; i = (i + 1) & m) {
      if (slots_[i].first == p) return slots_[i].second;
      if (!slots_[i].first) return -1;
    }
  }
  void insert(const LazyNode* p, int v) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    size_t m = slots_.size() - 1;
    size_t i = slot(p) & m;
    while (slots_[i].first) i = (i + 1) & m;
    slots_[i] = {p, v};
    ++size_;
  }

 private:
  static size_t slot(const LazyNode* p) { return size_t(mix64(reinterpret_cast<uintptr_t>(p))); }
  void grow() {
    std::vector<std::pair<const LazyNode*, int>> old(slots_.size() * 2, {nullptr, -1});
    old.swap(slots_);
    size_ = 0;
    for (const auto& [p, v] : old)
      if (p) insert(p, v);
  }
  std::vector<std::pair<const LazyNode*, int>> slots_;
  size_t size_ = 0;
};

enum Kind : uint8_t { kOp = 0, kBound = 1, kLiteral = 2, kPlaceholder = 3 };

// One post-order walk of the reachable DAG: the node order (the graph's node order), how each
// node enters the graph, the wiring, and the structural hash of the whole.
struct Walk {
  std::vector<LazyNode*> order;
  std::vector<uint8_t> kind;
  std::vector<int> in_begin;  // order.size() + 1 offsets into `inputs`
  std::vector<int> inputs;    // positions in `order`
  std::vector<int> outputs;
  uint64_t hash[2] = {0, 0};
};

Walk walk(const std::vector<LazyNode*>& targets, BuildMode mode) {
  // The last walk's size on this thread: a repeated evaluate reserves once, no regrowth.
  thread_local size_t last_nodes = 0, last_inputs = 0;
  Walk w;
  NodeIndex index(last_nodes);
  Hasher h;
  w.order.reserve(last_nodes);
  w.kind.reserve(last_nodes);
  w.in_begin.reserve(last_nodes + 1);
  w.inputs.reserve(last_inputs);
  w.in_begin.push_back(0);
  // Iterative post-order DFS (deep chains must not overflow the stack); inputs in order so the
  // node order, and so the plan-cache key, is deterministic.
  std::vector<std::pair<LazyNode*, size_t>> stack;
  static const ir::OpDef* const input_op = &ir::get_op("input");
  for (LazyNode* t : targets) {
    if (index.find(t) >= 0) continue;
    stack.push_back({t, 0});
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      bool leaf = n->value.has_value() || n->op == input_op;
      if (!leaf && next == 0)  // the DAG is scattered in memory: fetch the siblings early
        for (const auto& in : n->inputs) __builtin_prefetch(in.get());
      if (!leaf && next < n->inputs.size()) {
        LazyNode* child = n->inputs[next++].get();
        if (index.find(child) < 0) stack.push_back({child, 0});
        continue;
      }
      LazyNode* cur = n;
      stack.pop_back();
      if (index.find(cur) >= 0) continue;
      Kind k;
      if (cur->value && (cur->literal || mode == BuildMode::Serialize)) k = kLiteral;
      else if (cur->value) k = kBound;
      else if (cur->op == input_op) k = kPlaceholder;
      else k = kOp;
      h.add(k);
      switch (k) {
        case kBound:
          h.add2(cur->type_hash);
          h.add(cur->type.weak);
          if (!cur->value->on_host()) {  // where the value lives shapes the plan
            const std::string& d = cur->value->device();
            h.add(d.data(), d.size());
          }
          break;
        case kLiteral:
          // Constants are host data (a plan uploads them to the devices that read them).
          if (!cur->value->on_host()) cur->value = to_host(*cur->value);
          h.add2(cur->type_hash);
          h.add(cur->type.weak);
          hash_literal(h, *cur->value);
          break;
        default:
          h.add2(cur->op_hash);
          break;
      }
      if (!cur->device_hint.empty()) h.add(cur->device_hint.data(), cur->device_hint.size());
      if (k == kOp) {
        for (const auto& in : cur->inputs) {
          int i = index.find(in.get());
          w.inputs.push_back(i);
          h.add(uint64_t(i));
        }
      }
      h.add(~uint64_t(0));  // end of node
      index.insert(cur, int(w.order.size()));
      w.order.push_back(cur);
      w.kind.push_back(k);
      w.in_begin.push_back(int(w.inputs.size()));
    }
  }
  for (LazyNode* t : targets) {
    int i = index.find(t);
    w.outputs.push_back(i);
    h.add(uint64_t(i));
  }
  w.hash[0] = h.a;
  w.hash[1] = h.b;
  last_nodes = w.order.size();
  last_inputs = w.inputs.size();
  return w;
}

// The exact canonical form of a walked DAG, stored with its plan and compared on every hit.
struct Signature {
  std::string devices;
  std::vector<std::string> residence;  // bound values on a device other than the host
  std::vector<uint8_t> kind;
  std::vector<const ir::OpDef*> op;
  std::vector<std::shared_ptr<const std::string>> attrs;
  std::vector<ir::TensorType> type;  // leaves only (bound inputs, literals)
  std::vector<std::string> device_hint;
  std::vector<std::optional<Array>> literal;
  std::vector<int> in_begin, inputs, outputs;
};

// The device a bound value lives on when it is not the host ("" otherwise).
std::string residence(const LazyNode* c, uint8_t kind) {
  return kind == kBound && !c->value->on_host() ? c->value->device() : std::string();
}

std::shared_ptr<Signature> make_signature(const Walk& w, std::string devices) {
  auto s = std::make_shared<Signature>();
  s->devices = std::move(devices);
  size_t n = w.order.size();
  s->kind = w.kind;
  s->op.reserve(n);
  s->attrs.reserve(n);
  s->type.reserve(n);
  s->device_hint.reserve(n);
  s->literal.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const LazyNode* c = w.order[i];
    bool op = w.kind[i] == kOp;
    s->op.push_back(op ? c->op : nullptr);
    s->attrs.push_back(op ? c->canon_attrs : nullptr);
    s->type.push_back(op ? ir::TensorType{} : c->type);  // op types are implied (see matches)
    s->device_hint.push_back(c->device_hint);
    s->literal.push_back(w.kind[i] == kLiteral ? c->value : std::nullopt);
    s->residence.push_back(residence(c, w.kind[i]));
  }
  s->in_begin = w.in_begin;
  s->inputs = w.inputs;
  s->outputs = w.outputs;
  return s;
}

bool matches(const Signature& s, const Walk& w, const std::string& devices) {
  size_t n = w.order.size();
  if (s.devices != devices || s.kind != w.kind || s.in_begin != w.in_begin ||
      s.inputs != w.inputs || s.outputs != w.outputs)
    return false;
  for (size_t i = 0; i < n; ++i) {
    const LazyNode* c = w.order[i];
    if (s.device_hint[i] != c->device_hint) return false;
    if (s.residence[i] != residence(c, w.kind[i])) return false;
    if (w.kind[i] == kOp) {
      // An op node's type is inferred (a pure function) from its op, attributes and input
      // types, all verified here or at its inputs: comparing it too would only add cache misses.
      if (s.op[i] != c->op) return false;
      if (s.attrs[i] != c->canon_attrs && *s.attrs[i] != *c->canon_attrs) return false;
    } else {
      const ir::TensorType& t = s.type[i];
      if (!(t == c->type) || t.weak != c->type.weak) return false;
      if (w.kind[i] == kLiteral && !same_literal(*s.literal[i], *c->value)) return false;
    }
  }
  return true;
}

void set_type_attrs(ir::Node& node, const ir::TensorType& t) {
  node.attrs.set("shape", std::vector<int64_t>(t.shape.begin(), t.shape.end()));
  node.attrs.set("dtype", std::string(dtype_name(t.dtype)));
}

BuiltGraph build_from_walk(const Walk& w, const std::vector<LazyNode*>& targets, BuildMode mode,
                           const std::vector<std::string>& output_names) {
  BuiltGraph out;
  ir::Graph& g = out.graph;
  std::unordered_set<std::string> placeholder_names;
  g.nodes.reserve(w.order.size());
  const ir::OpDef& constant_op = ir::get_op("constant");
  const ir::OpDef& input_op = ir::get_op("input");
  for (size_t i = 0; i < w.order.size(); ++i) {
    const LazyNode* cur = w.order[i];
    ir::Node& node = g.nodes.emplace_back();
    node.type = cur->type;
    node.device_hint = cur->device_hint;
    switch (w.kind[i]) {
      case kLiteral:
        node.op = &constant_op;
        set_type_attrs(node, cur->type);
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
          nm = str("arg", node.binding);
          out.bindings.push_back(*cur->value);
        }
        node.name = nm;
        node.attrs.set("name", nm);
        if (cur->value && !cur->value->on_host() && mode == BuildMode::Execute)
          node.device_hint = cur->value->device();  // bound where it lives
        set_type_attrs(node, cur->type);
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

LazyNode::~LazyNode() {
  std::vector<std::shared_ptr<LazyNode>> stack = std::move(inputs);
  while (!stack.empty()) {
    std::shared_ptr<LazyNode> n = std::move(stack.back());
    stack.pop_back();
    if (n && n.use_count() == 1) {
      for (auto& c : n->inputs) stack.push_back(std::move(c));
      n->inputs.clear();
    }
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
  node->attrs = std::move(attrs);
  node->inputs = std::move(in);
  node->device_hint = t_default_hint;
  // Most nodes have no attributes: they share one empty canonical text.
  static const auto empty = std::make_shared<const std::string>();
  node->canon_attrs = node->attrs.values().empty()
                          ? empty
                          : std::make_shared<const std::string>(node->attrs.canonical());
  Hasher th;
  hash_type(th, node->type);
  node->type_hash[0] = th.a;
  node->type_hash[1] = th.b;
  Hasher oh;
  oh.add(op.name.data(), op.name.size());
  oh.add(node->canon_attrs->data(), node->canon_attrs->size());
  oh.add2(node->type_hash);
  node->op_hash[0] = oh.a;
  node->op_hash[1] = oh.b;
  return node;
}

BuiltGraph build_graph(const std::vector<LazyNode*>& targets, BuildMode mode,
                       const std::vector<std::string>& output_names) {
  return build_from_walk(walk(targets, mode), targets, mode, output_names);
}

LazyPlan plan_for(const std::vector<LazyNode*>& targets) {
  Walk w = walk(targets, BuildMode::Execute);
  std::string devices = compiler::device_key();
  Hasher h;
  h.add(w.hash[0]);
  h.add(w.hash[1]);
  h.add(devices.data(), devices.size());
  LazyPlan out;
  out.output_nodes = targets;
  compiler::FrontEntry e = compiler::find_front_plan(h.a, h.b);
  if (e.plan && matches(*static_cast<const Signature*>(e.signature.get()), w, devices)) {
    nef::counters().plan_cache_hits++;
    out.plan = std::move(e.plan);
    for (size_t i = 0; i < w.order.size(); ++i)
      if (w.kind[i] == kBound) out.bindings.push_back(*w.order[i]->value);
    return out;
  }
  BuiltGraph built = build_from_walk(w, targets, BuildMode::Execute, {});
  out.plan = compiler::compile(std::move(built.graph));
  out.bindings = std::move(built.bindings);
  compiler::store_front_plan(h.a, h.b, {make_signature(w, std::move(devices)), out.plan});
  return out;
}

}  // namespace nef::detail
