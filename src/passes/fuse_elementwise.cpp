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
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "ir/ops/fused_program.h"
#include "nef/error.h"
#include "passes/pass.h"

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

struct Group {
  int root = -1;
  std::vector<int> members;  // includes root
};

}  // namespace

void fuse_elementwise(ir::Graph& g, const PassContext& ctx) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<std::vector<int>> users(n);
  std::vector<bool> is_output(n, false), cand(n, false);
  // Earlier passes leave dead nodes for the final dce: their uses do not count.
  std::vector<bool> live = ir::live_nodes(g);
  for (int o : g.outputs) is_output[o] = true;
  for (int i = 0; i < n; ++i) {
    if (!live[i]) continue;
    for (int in : g.nodes[i].inputs) users[in].push_back(i);
    cand[i] = candidate(g, g.nodes[i]);
  }

  std::vector<int> group_of(n, -1);
  std::vector<Group> groups;
  for (int root = n - 1; root >= 0; --root) {
    if (!cand[root] || group_of[root] >= 0 || (users[root].empty() && !is_output[root])) continue;
    const int gid = static_cast<int>(groups.size());
    Group grp;
    grp.root = root;
    grp.members.push_back(root);
    group_of[root] = gid;
    // External operands of the group (values it reads but does not compute).
    std::unordered_set<int> external;
    for (int in : g.nodes[root].inputs) external.insert(in);
    std::priority_queue<int> frontier;  // producers to consider, largest index first
    for (int in : g.nodes[root].inputs) frontier.push(in);
    int last = -1;
    while (!frontier.empty()) {
      int p = frontier.top();
      frontier.pop();
      if (p == last) continue;  // duplicates are adjacent in a max-heap
      last = p;
      if (!cand[p] || group_of[p] >= 0 || is_output[p]) continue;
      if (g.nodes[p].device_hint != g.nodes[root].device_hint ||
          g.nodes[p].device != g.nodes[root].device)
        continue;
      if (static_cast<int>(grp.members.size()) >= kMaxInstrs) continue;
      bool all_inside = true;
      for (int u : users[p]) all_inside = all_inside && group_of[u] == gid;
      if (!all_inside) continue;
      // External operands after swallowing p: p leaves, its operands join (p's inputs precede
      // every member, so none of them is a member).
      std::vector<int> added;
      for (int in : g.nodes[p].inputs)
        if (!external.count(in) && std::find(added.begin(), added.end(), in) == added.end())
          added.push_back(in);
      int ext = static_cast<int>(external.size() + added.size()) - 1;
      if (ext > kMaxExternal) continue;
      group_of[p] = gid;
      grp.members.push_back(p);
      external.erase(p);
      for (int in : g.nodes[p].inputs) {
        external.insert(in);
        frontier.push(in);
      }
    }
    groups.push_back(std::move(grp));
  }

  for (Group& grp : groups) {
    if (grp.members.size() < 2) continue;
    std::sort(grp.members.begin(), grp.members.end());  // topological order
    const ir::Node& root = g.nodes[grp.root];
    std::unordered_map<int, int> reg, input_slot;
    std::vector<int> inputs;
    ir::FusedProgram prog;
    for (int m : grp.members) {
      const ir::Node& node = g.nodes[m];
      ir::FusedInstr ins;
      ins.op = *ir::fused_op_of(node);
      ins.dtype = node.type.dtype;
      ins.nargs = static_cast<int>(node.inputs.size());
      for (int a = 0; a < ins.nargs; ++a) {
        int in = node.inputs[a];
        auto r = reg.find(in);
        if (r != reg.end()) {
          ins.args[a] = r->second;
          continue;
        }
        auto [it, fresh] = input_slot.emplace(in, static_cast<int>(inputs.size()));
        if (fresh) inputs.push_back(in);
        ins.args[a] = -1 - it->second;
      }
      reg[m] = static_cast<int>(prog.code.size());
      prog.code.push_back(ins);
    }
    ir::Node fused;
    fused.op = &ir::get_op("fused_elementwise");
    fused.inputs = inputs;
    fused.attrs.set("program", ir::print_fused_program(prog, root.type.dtype));
    fused.attrs.set("shape", std::vector<int64_t>(root.type.shape.begin(), root.type.shape.end()));
    fused.attrs.set("dtype", std::string(dtype_name(root.type.dtype)));
    // Inference re-checks the program; a group it rejects (a bug) is left unfused.
    try {
      fused.type = ir::check_and_infer(*fused.op, g.input_types(fused), fused.attrs);
    } catch (const Error&) {
      continue;
    }
    if (!(fused.type == root.type)) continue;
    fused.name = root.name;
    fused.device_hint = root.device_hint;
    fused.device = root.device;
    fused.placement_reason = root.placement_reason;
    if (!ctx.supports(fused, g)) continue;
    g.nodes[grp.root] = std::move(fused);
  }
}

}  // namespace nef::passes
