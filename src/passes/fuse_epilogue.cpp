// Epilogue fusion: a floating-point matmul (or conv with bias) whose only user starts a chain of
// elementwise ops (bias add, activation, residual add...) becomes one matmul_epilogue (or
// conv_epilogue) node whose program (ir/ops/fused_program.h, i0 = the product) runs on each
// output tile while it is in cache, instead of writing the product and reading it back once per
// op. A conv's chain takes only single-value extra operands (clip bounds): its kernel applies
// the program to rows of the output, with no broadcasting of other operands.
//
// Runs before fuse_elementwise, which would otherwise swallow the chain. The chain is linear:
// starting at the matmul's user, each member's only user joins while it is a fusable elementwise
// op with the matmul's dtype and output shape (so the program never broadcasts the result), the
// member is not a graph output, and the limits hold (kMaxInstrs ops, kMaxExtra extra operands).
// Every member's other operands become extra inputs; as no other node reads a member, they never
// depend on the chain. The last member is replaced in place (its inputs all precede it); the
// matmul and the other members die and dce removes them. Only same-dtype float operands into the
// matmul, so the fused GEMM computes exactly what the matmul kernel computes. Runs after
// placement: the chain stays on the matmul's device, and the fusion happens only when that
// device supports the fused node (the CPU's GEMM and conv epilogues take float32/float64).
#include <algorithm>
#include <optional>
#include <unordered_map>

#include "ir/ops/fused_program.h"
#include "nef/error.h"
#include "passes/pass.h"
#include "passes/users.h"

namespace nef::passes {
namespace {

constexpr int kMaxInstrs = 16;
constexpr int kMaxExtra = 4;

bool float_matmul(const ir::Graph& g, const ir::Node& n) {
  if (!n.is("matmul") || n.inputs.size() != 2) return false;
  DType t = n.type.dtype;
  if (!is_floating(t)) return false;
  return g.nodes[n.inputs[0]].type.dtype == t && g.nodes[n.inputs[1]].type.dtype == t;
}

// A conv with bias whose operands share its float32/float64 dtype.
bool float_conv(const ir::Graph& g, const ir::Node& n) {
  if (!n.is("conv") || n.inputs.size() != 3) return false;
  DType t = n.type.dtype;
  if (t != DType::Float32 && t != DType::Float64) return false;
  for (int in : n.inputs)
    if (g.nodes[in].type.dtype != t) return false;
  return true;
}

// An op that may join the epilogue of a matmul of type `mm`: the same dtype and shape (the
// elementwise result never broadcasts the product), float math, operands the kernel can load.
bool epilogue_candidate(const ir::Graph& g, const ir::Node& n, const ir::TensorType& mm) {
  if (!n.op->has(ir::kFusable) || !n.op->has(ir::kElementwise)) return false;
  std::optional<ir::FusedOp> op = ir::fused_op_of(n);
  if (!op || ir::fused_op_arity(*op) != int(n.inputs.size())) return false;
  if (ir::fused_op_is_bool(*op) || !(n.type == mm)) return false;
  for (int in : n.inputs) {
    DType t = g.nodes[in].type.dtype;
    if (!is_floating(t) && !is_integer(t) && t != DType::Bool) return false;
  }
  return true;
}

}  // namespace

void fuse_epilogue(ir::Graph& g, const PassContext& ctx) {
  const int n = static_cast<int>(g.nodes.size());
  // Nothing to do without a float matmul or conv (a cheap scan before any allocation).
  bool any = false;
  for (const ir::Node& node : g.nodes)
    if ((any = float_matmul(g, node) || float_conv(g, node))) break;
  if (!any) return;
  std::vector<bool> is_output(n, false), taken(n, false);
  std::vector<bool> live = ir::live_nodes(g);
  for (int o : g.outputs) is_output[o] = true;
  const Users users(g, live, /*distinct=*/true);
  // The single distinct user of v, or -1.
  auto only_user = [&](int v) { return users.of(v).size() == 1 ? users.of(v)[0] : -1; };

  // Reused across chains (a transformer has a matmul every few nodes).
  std::vector<int> members, extras, added;
  std::vector<ir::TensorType> in_types;
  for (int m = 0; m < n; ++m) {
    if (!live[m] || taken[m] || is_output[m]) continue;
    const bool conv = float_conv(g, g.nodes[m]);
    if (!conv && !float_matmul(g, g.nodes[m])) continue;
    const ir::Node& mm = g.nodes[m];
    members.clear();
    extras.clear();
    int prev = m;
    while (static_cast<int>(members.size()) < kMaxInstrs) {
      int u = only_user(prev);
      if (u < 0 || taken[u] || (prev != m && is_output[prev])) break;
      const ir::Node& un = g.nodes[u];
      if (un.device != mm.device || un.device_hint != mm.device_hint ||
          !epilogue_candidate(g, un, mm.type))
        break;
      added.clear();
      bool single = true;  // every new extra a single value (what a conv epilogue takes)
      for (int in : un.inputs)
        if (in != prev && std::find(extras.begin(), extras.end(), in) == extras.end() &&
            std::find(added.begin(), added.end(), in) == added.end()) {
          added.push_back(in);
          single = single && numel(g.nodes[in].type.shape) == 1;
        }
      if (static_cast<int>(extras.size() + added.size()) > kMaxExtra || (conv && !single)) break;
      extras.insert(extras.end(), added.begin(), added.end());
      members.push_back(u);
      prev = u;
    }
    if (members.empty()) continue;

    // The program: i0 = the matmul result, i1.. = extras, one register per member.
    ir::FusedProgram prog;
    for (size_t k = 0; k < members.size(); ++k) {
      const ir::Node& node = g.nodes[members[k]];
      ir::FusedInstr ins;
      ins.op = *ir::fused_op_of(node);
      ins.dtype = node.type.dtype;
      ins.nargs = static_cast<int>(node.inputs.size());
      for (int a = 0; a < ins.nargs; ++a) {
        int in = node.inputs[a];
        if (in == m) {
          ins.args[a] = -1;
        } else if (k > 0 && in == members[k - 1]) {
          ins.args[a] = static_cast<int>(k - 1);
        } else {
          auto it = std::find(extras.begin(), extras.end(), in);
          ins.args[a] = -2 - static_cast<int>(it - extras.begin());
        }
      }
      prog.code.push_back(ins);
    }
    const int root = members.back();
    ir::Node fused;
    fused.op = &ir::get_op(conv ? "conv_epilogue" : "matmul_epilogue");
    fused.inputs = mm.inputs;
    fused.inputs.insert(fused.inputs.end(), extras.begin(), extras.end());
    if (conv) fused.attrs = mm.attrs;  // the geometry
    fused.attrs.set("program", ir::print_fused_program(prog, mm.type.dtype));
    // Inference re-checks everything; a chain it rejects (a bug) is left unfused.
    try {
      g.input_types(fused, in_types);
      fused.type = ir::check_and_infer(*fused.op, in_types, fused.attrs);
    } catch (const Error&) {
      continue;
    }
    if (!(fused.type == g.nodes[root].type)) continue;
    fused.name = g.nodes[root].name;
    fused.device_hint = g.nodes[root].device_hint;
    fused.device = g.nodes[root].device;
    fused.placement_reason = g.nodes[root].placement_reason;
    if (!ctx.supports(fused, g)) continue;
    taken[m] = true;
    for (int k : members) taken[k] = true;
    g.nodes[root] = std::move(fused);
  }
}

}  // namespace nef::passes
