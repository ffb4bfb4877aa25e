// Elementwise fusion: connected chains of fusable elementwise nodes (with broadcasting) become one
// fused_elementwise node whose program (ir/ops/fused_program.h) lists the chain's ops, so the
// chain reads its inputs once and writes one output instead of a tensor per op. Runs after
// placement: a group never spans two devices, and is made only when its device supports it.
//
// Grouping, from the last node to the first: a candidate that is not in a group yet roots a new
// one; its producers join while they are candidates, every user they have is in the group (an
// intermediate needed elsewhere is never swallowed nor recomputed) and they are not graph
// outputs. Producers are considered in decreasing index order, so all of a producer's users
// have been decided before it is. Groups are bounded (kMaxInstrs, kMaxExternal inputs); groups
// of one node stay as they are. The root is replaced in place (its inputs, the group's external
// operands, all precede it); the swallowed nodes die and dce removes them.
//
// Conservative about dtypes, so fused results equal the unfused ones up to rounding: every
// fused value is a float (f16/bf16/f32/f64) or, for comparisons/logic/cast, bool; comparisons
// take float or bool operands only; integer operands (converted to the op's float dtype) are
// allowed only into ops whose result is f32/f64 (int -> f16 rounds differently in two steps).
#include <algorithm>

#include "ir/ops/fused_program.h"
#include "nef/error.h"
#include "passes/pass.h"
#include "passes/users.h"

namespace nef::passes {
namespace {

constexpr int kMaxInstrs = 64;
constexpr int kMaxExternal = 16;

bool small_exact_int(DType t) { return t == DType::Bool || t == DType::Int8 || t == DType::UInt8; }

bool candidate(const ir::Graph& g, const ir::Node& n) {
  if (!n.op->has(ir::kFusable) || !n.op->has(ir::kElementwise)) return false;
  std::optional<ir::FusedOp> op = ir::fused_op_of(n);
  if (!op || ir::fused_op_arity(*op) != int(n.inputs.size())) return false;
  DType t = n.type.dtype;
  if (ir::fused_op_is_bool(*op)) {
    if (t != DType::Bool) return false;
  } else if (*op == ir::FusedOp::Cast) {
    if (!is_floating(t) && t != DType::Bool) return false;
  } else if (!is_floating(t)) {
    return false;
  }
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    DType in = g.nodes[n.inputs[k]].type.dtype;
    if (is_storage_only(in)) return false;  // float8: only the cast kernel decodes it
    if (is_floating(in) || small_exact_int(in)) continue;
    bool where_cond = *op == ir::FusedOp::Where && k == 0;
    bool logical = *op == ir::FusedOp::LogicalAnd || *op == ir::FusedOp::LogicalOr ||
                   *op == ir::FusedOp::LogicalNot;
    if (where_cond || logical) continue;  // only tested against zero: exact for any int
    if (ir::fused_op_is_compare(*op)) return false;
    if (t != DType::Float32 && t != DType::Float64) return false;
  }
  return true;
}

}  // namespace

void fuse_elementwise(ir::Graph& g, const PassContext& ctx) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<bool> is_output(n, false), cand(n, false);
  // Earlier passes leave dead nodes for the final dce: their uses do not count.
  std::vector<bool> live = ir::live_nodes(g);
  for (int o : g.outputs) is_output[o] = true;
  int candidates = 0;
  for (int i = 0; i < n; ++i)
    if (live[i]) candidates += cand[i] = candidate(g, g.nodes[i]);
  if (candidates < 2) return;  // no group of two
  const Users users(g, live, /*distinct=*/false);

  // Groups, flat: group k is roots[k] with members[begin[k] .. begin[k + 1]) (root first).
  std::vector<int> group_of(n, -1), roots, members, begin{0};
  // Per group, reused: external operands (a set, as a small vector), the producers to consider
  // (a max-heap: largest index first), what swallowing a producer adds.
  std::vector<int> external, frontier, added;
  auto contains = [](const std::vector<int>& v, int x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  for (int root = n - 1; root >= 0; --root) {
    if (!cand[root] || group_of[root] >= 0 || (users.of(root).empty() && !is_output[root]))
      continue;
    const int gid = static_cast<int>(roots.size());
    roots.push_back(root);
    members.push_back(root);
    int size = 1;
    group_of[root] = gid;
    external.clear();
    frontier.clear();
    for (int in : g.nodes[root].inputs) {
      if (!contains(external, in)) external.push_back(in);
      frontier.push_back(in);
      std::push_heap(frontier.begin(), frontier.end());
    }
    int last = -1;
    while (!frontier.empty()) {
      std::pop_heap(frontier.begin(), frontier.end());
      int p = frontier.back();
      frontier.pop_back();
      if (p == last) continue;  // duplicates are adjacent in a max-heap
      last = p;
      if (!cand[p] || group_of[p] >= 0 || is_output[p]) continue;
      if (g.nodes[p].device_hint != g.nodes[root].device_hint ||
          g.nodes[p].device != g.nodes[root].device)
        continue;
      if (size >= kMaxInstrs) continue;
      bool all_inside = true;
      for (int u : users.of(p)) all_inside = all_inside && group_of[u] == gid;
      if (!all_inside) continue;
      // External operands after swallowing p: p leaves, its operands join (p's inputs precede
      // every member, so none of them is a member).
      added.clear();
      for (int in : g.nodes[p].inputs)
        if (!contains(external, in) && !contains(added, in)) added.push_back(in);
      int ext = static_cast<int>(external.size() + added.size()) - 1;
      if (ext > kMaxExternal) continue;
      group_of[p] = gid;
      members.push_back(p);
      ++size;
      external.erase(std::find(external.begin(), external.end(), p));
      external.insert(external.end(), added.begin(), added.end());
      for (int in : g.nodes[p].inputs) {
        frontier.push_back(in);
        std::push_heap(frontier.begin(), frontier.end());
      }
    }
    begin.push_back(static_cast<int>(members.size()));
  }

  // Register and input slot of each node in the group being built (-1: none), reset after it.
  std::vector<int> reg(n, -1), slot(n, -1);
  std::vector<int> inputs;
  std::vector<ir::TensorType> in_types;
  for (size_t k = 0; k < roots.size(); ++k) {
    if (begin[k + 1] - begin[k] < 2) continue;
    auto first = members.begin() + begin[k], last = members.begin() + begin[k + 1];
    std::sort(first, last);  // topological order
    const int root_index = roots[k];
    const ir::Node& root = g.nodes[root_index];
    inputs.clear();
    ir::FusedProgram prog;
    for (auto it = first; it != last; ++it) {
      const ir::Node& node = g.nodes[*it];
      ir::FusedInstr ins;
      ins.op = *ir::fused_op_of(node);
      ins.dtype = node.type.dtype;
      ins.nargs = static_cast<int>(node.inputs.size());
      for (int a = 0; a < ins.nargs; ++a) {
        int in = node.inputs[a];
        if (reg[in] >= 0) {
          ins.args[a] = reg[in];
          continue;
        }
        if (slot[in] < 0) {
          slot[in] = static_cast<int>(inputs.size());
          inputs.push_back(in);
        }
        ins.args[a] = -1 - slot[in];
      }
      reg[*it] = static_cast<int>(prog.code.size());
      prog.code.push_back(ins);
    }
    for (auto it = first; it != last; ++it) reg[*it] = -1;
    for (int in : inputs) slot[in] = -1;
    ir::Node fused;
    fused.op = &ir::get_op("fused_elementwise");
    fused.inputs = inputs;
    fused.attrs =
        ir::Attrs({{"program", ir::print_fused_program(prog, root.type.dtype)},
                   {"shape", std::vector<int64_t>(root.type.shape.begin(), root.type.shape.end())},
                   {"dtype", std::string(dtype_name(root.type.dtype))}});
    // Inference re-checks the program; a group it rejects (a bug) is left unfused.
    try {
      g.input_types(fused, in_types);
      fused.type = ir::check_and_infer(*fused.op, in_types, fused.attrs);
    } catch (const Error&) {
      continue;
    }
    if (!(fused.type == root.type)) continue;
    fused.name = root.name;
    fused.device_hint = root.device_hint;
    fused.device = root.device;
    fused.placement_reason = root.placement_reason;
    if (!ctx.supports(fused, g)) continue;
    g.nodes[root_index] = std::move(fused);
  }
}

}  // namespace nef::passes
