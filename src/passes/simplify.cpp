// Op simplification, exact up to the rounding of the same operations:
//   x+0, 0+x, x-0, x*1, 1*x, x/1 -> x; pow(x, 1) -> x; pow(x, 2|3|4) -> products of x (numpy's
//   pow goes through powf, far slower than x*x*x); cast to the same dtype -> x; neg(neg(x)) -> x;
//   transpose(transpose(x)) -> one transpose (or x when the composed perm is the identity);
//   reshape(reshape(x)) -> one reshape; reshape/transpose that change nothing -> x.
// A node is only replaced by a value of exactly its type (a float64 `1.0` must not turn a
// float32 product into float64, nor a scalar broadcast into a bigger shape). No x/c -> x*(1/c):
// that changes rounding.
//
// The graph is rewritten in place, in order: every node, its inputs already simplified, either
// maps to an existing value or stays (rules may add helper nodes before it). dce drops what dies.
#include <algorithm>

#include "nef/error.h"
#include "passes/pass.h"
#include "passes/patterns_match.h"

namespace nef::passes {
namespace {

// The graph rewritten in place, in order: out.nodes[0, size) is the output so far, then a gap of
// free slots (at least the one of the node being rewritten), then the nodes not read yet, from
// position `next`. Rules read only output nodes (inputs are remapped before they run).
struct Builder {
  ir::Graph& out;
  int size = 0;
  size_t next = 0;

  const ir::Node& node(int i) const { return out.nodes[i]; }
  // Appends a node to the output; opens a slot when the gap is used up (a rule adding two nodes
  // in place of one, which is rare: the tail moves by one).
  int append(ir::Node n) {
    if (size_t(size) == next) {
      out.nodes.insert(out.nodes.begin() + size, ir::Node());
      ++next;
    }
    out.nodes[size] = std::move(n);
    return size++;
  }
  // Appends op(inputs){attrs}, inferring its type; -1 if inference fails.
  int emit(const std::string& op, std::vector<int> inputs, ir::Attrs attrs, const ir::Node& like) {
    ir::Node n;
    n.op = &ir::get_op(op);
    n.inputs = std::move(inputs);
    try {
      n.type = ir::check_and_infer(*n.op, out.input_types(n), attrs);
    } catch (const Error&) {
      return -1;
    }
    n.attrs = std::move(attrs);
    n.device_hint = like.device_hint;
    return append(std::move(n));
  }
};

bool same_type(const ir::TensorType& a, const ir::TensorType& b) {
  return a == b && a.weak == b.weak;
}

// x op c -> x when c is the identity scalar `v` and x already has the node's type.
std::optional<int> identity_operand(const Builder& b, const ir::Node& n) {
  const ir::Graph& g = b.out;
  auto pick = [&](int k, double v) -> std::optional<int> {
    int x = n.inputs[k], c = n.inputs[1 - k];
    if (match::is_scalar(g, c, v, 0) && same_type(g.nodes[x].type, n.type)) return x;
    return std::nullopt;
  };
  std::optional<int> r;
  if (n.is("add")) {
    r = pick(0, 0.0);
    if (!r) r = pick(1, 0.0);
  } else if (n.is("mul")) {
    r = pick(0, 1.0);
    if (!r) r = pick(1, 1.0);
  } else if (n.is("sub")) {
    r = pick(0, 0.0);
  } else if (n.is("div")) {
    r = pick(0, 1.0);
  }
  return r;
}

// pow(x, 1) -> x; pow(x, 2|3|4) -> x*x, (x*x)*x, (x*x)*(x*x) for floating x.
std::optional<int> small_pow(Builder& b, const ir::Node& n) {
  if (!n.is("pow")) return std::nullopt;
  int x = n.inputs[0];
  std::optional<double> e = match::scalar_value(b.out, n.inputs[1]);
  if (!e || !same_type(b.node(x).type, n.type) || !is_floating(n.type.dtype)) return std::nullopt;
  if (*e == 1) return x;
  if (*e != 2 && *e != 3 && *e != 4) return std::nullopt;
  if (*e == 2) return b.emit("mul", {x, x}, {}, n);
  int sq = b.emit("mul", {x, x}, {}, n);
  if (sq < 0) return std::nullopt;
  return *e == 3 ? b.emit("mul", {sq, x}, {}, n) : b.emit("mul", {sq, sq}, {}, n);
}

std::optional<int> layout_chain(Builder& b, const ir::Node& n) {
  if (n.is("cast") || n.is("reshape") || n.is("transpose")) {
    int x = n.inputs[0];
    // A no-op: same dtype cast, reshape to the same shape, identity permutation.
    bool noop = same_type(b.node(x).type, n.type);
    if (n.is("transpose")) {
      const auto& p = n.attrs.get_ints("perm");
      for (size_t d = 0; d < p.size(); ++d) noop = noop && p[d] == int64_t(d);
    }
    if (noop) return x;
  }
  if (n.is("neg") && b.node(n.inputs[0]).is("neg")) {
    int x = b.node(n.inputs[0]).inputs[0];
    if (same_type(b.node(x).type, n.type)) return x;
  }
  if (n.is("reshape") && b.node(n.inputs[0]).is("reshape")) {
    int x = b.node(n.inputs[0]).inputs[0];
    if (same_type(b.node(x).type, n.type)) return x;
    ir::Attrs a;
    a.set("shape", std::vector<int64_t>(n.type.shape.begin(), n.type.shape.end()));
    return b.emit("reshape", {x}, a, n);
  }
  if (n.is("transpose") && b.node(n.inputs[0]).is("transpose")) {
    const ir::Node& inner = b.node(n.inputs[0]);
    int x = inner.inputs[0];
    const auto& p1 = inner.attrs.get_ints("perm");
    const auto& p2 = n.attrs.get_ints("perm");
    // out[d] = inner[p2[d]] = x[p1[p2[d]]]
    std::vector<int64_t> q(p2.size());
    bool identity = true;
    for (size_t d = 0; d < p2.size(); ++d) {
      q[d] = p1[p2[d]];
      identity = identity && q[d] == int64_t(d);
    }
    if (identity && same_type(b.node(x).type, n.type)) return x;
    ir::Attrs a;
    a.set("perm", q);
    return b.emit("transpose", {x}, a, n);
  }
  return std::nullopt;
}

}  // namespace

void simplify(ir::Graph& g, const PassContext& ctx) {
  using Rule = std::optional<int> (*)(Builder&, const ir::Node&);
  static const Rule kRules[] = {
      [](Builder& b, const ir::Node& n) { return identity_operand(b, n); }, small_pow,
      layout_chain};
  // The ops some rule can rewrite: every other node is copied without trying the rules.
  static const std::vector<const ir::OpDef*> kRuleOps = [] {
    std::vector<const ir::OpDef*> v;
    for (const char* n : {"add", "mul", "sub", "div", "pow", "cast", "reshape", "transpose", "neg"})
      v.push_back(&ir::get_op(n));
    return v;
  }();
  // add/mul/sub/div rewrite only with a scalar operand (a constant or a full node).
  static const ir::OpDef* const kArith[] = {&ir::get_op("add"), &ir::get_op("mul"),
                                            &ir::get_op("sub"), &ir::get_op("div")};
  static const ir::OpDef* const kScalarOps[] = {&ir::get_op("constant"), &ir::get_op("full")};
  auto may_rewrite = [&](const ir::Node& n) {
    if (std::find(kRuleOps.begin(), kRuleOps.end(), n.op) == kRuleOps.end()) return false;
    if (std::find(std::begin(kArith), std::end(kArith), n.op) == std::end(kArith)) return true;
    for (int in : n.inputs)  // already remapped: output nodes
      if (const ir::OpDef* op = g.nodes[in].op; op == kScalarOps[0] || op == kScalarOps[1])
        return true;
    return false;
  };
  Builder b{g};
  const size_t count = g.nodes.size();
  std::vector<int> remap(count, -1);
  for (size_t i = 0; i < count; ++i) {
    const size_t at = b.next++;
    for (int& in : g.nodes[at].inputs) in = remap[in];
    if (!may_rewrite(g.nodes[at])) {
      // No rule applies: the node stays where it is when no slot opened before it (the usual
      // case: no move of a ~300-byte node), else moves down into the output.
      remap[i] = size_t(b.size) == at ? b.size++ : b.append(std::move(g.nodes[at]));
      continue;
    }
    ir::Node n = std::move(g.nodes[at]);
    const int before = b.size;
    std::optional<int> r;
    for (Rule rule : kRules) {
      r = rule(b, n);
      if (r && *r >= 0) break;
      r.reset();
    }
    if (r && !same_type(b.node(*r).type, n.type)) r.reset();  // never retype a value
    if (r) {
      // A rule's new node takes over the name; an existing value keeps its own.
      if (*r >= before) g.nodes[*r].name = n.name;
      remap[i] = *r;
    } else {
      remap[i] = b.append(std::move(n));
    }
  }
  g.nodes.erase(g.nodes.begin() + b.size, g.nodes.end());
  for (int& o : g.outputs) o = remap[o];
}

}  // namespace nef::passes
