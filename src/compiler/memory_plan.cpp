#include "compiler/memory_plan.h"

#include <algorithm>
#include <map>

#include "compiler/concurrency.h"
#include "nef/error.h"

namespace nef::compiler {
namespace {

using runtime::kArenaAlignment;
using runtime::Plan;
using runtime::Step;
using runtime::StepKind;

int64_t align_up(int64_t b) {
  return (b + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

// Lifetimes recomputed from the graph alone; the planner and the verifier each build their own.
struct Liveness {
  std::vector<int> pos;       // step of each node
  std::vector<int> root;      // buffer a node's value lives in (itself unless a view)
  std::vector<int> last;      // last step reading the node or (for roots) any view of it; a
                              // concurrent group's reads and writes last to its last member
  std::vector<bool> pinned;   // a graph output is this value or a view of it
  std::vector<bool> crosses;  // read by a transfer (a copy step): touched by two queues
};

Liveness liveness(const Plan& p) {
  const ir::Graph& g = p.graph;
  size_t n = g.nodes.size();
  Liveness l{std::vector<int>(n, -1), std::vector<int>(n), std::vector<int>(n, -1),
             std::vector<bool>(n, false), std::vector<bool>(n, false)};
  for (size_t s = 0; s < p.steps.size(); ++s) l.pos[p.steps[s].node] = int(s);
  for (const Step& st : p.steps) {
    int v = st.node;
    const ir::Node& nd = g.nodes[v];
    const int end = st.grouped() ? st.group_last : l.pos[v];
    l.root[v] = st.kind == StepKind::View ? l.root[nd.inputs[0]] : v;
    l.last[v] = std::max(l.last[v], end);
    for (int in : nd.inputs) l.last[in] = std::max(l.last[in], end);
    if (st.kind == StepKind::Copy) l.crosses[l.root[nd.inputs[0]]] = true;
  }
  // A view keeps its base alive: steps are in order, so views are visited after their roots.
  for (const Step& st : p.steps)
    if (l.root[st.node] != st.node)
      l.last[l.root[st.node]] = std::max(l.last[l.root[st.node]], l.last[st.node]);
  for (int o : g.outputs) l.pinned[o] = l.pinned[l.root[o]] = true;
  return l;
}

const Step& step_of(const Plan& p, const Liveness& l, int v) { return p.steps[l.pos[v]]; }

// Only kernel results go in the arena, and not those the user keeps (outputs) or a transfer reads.
bool in_arena_candidate(const Plan& p, const Liveness& l, int v) {
  return step_of(p, l, v).kind == StepKind::Kernel && l.root[v] == v && !l.pinned[v] &&
         !l.crosses[v];
}

bool inplace_safe(const Plan& p, const Liveness& l, int v) {
  const Step& st = step_of(p, l, v);
  return st.kind == StepKind::Kernel && st.kernel && st.kernel->inplace_safe();
}

// Whether node v may write over input u: u is a plain buffer of the output's dtype and element
// count (so not broadcast), dies at v, and v reads no other view of it. The caller checks that u
// is in the arena.
bool can_take_over(const Plan& p, const Liveness& l, int v, int u) {
  const ir::Graph& g = p.graph;
  const ir::Node& nv = g.nodes[v];
  const ir::Node& nu = g.nodes[u];
  if (l.root[u] != u || l.last[u] != l.pos[v]) return false;
  if (step_of(p, l, v).grouped()) return false;  // another member may still read u
  if (nu.type.dtype != nv.type.dtype || numel(nu.type.shape) != numel(nv.type.shape)) return false;
  if (nu.device != nv.device) return false;
  for (int w : nv.inputs)
    if (w != u && l.root[w] == u) return false;
  return true;
}

int64_t workspace_of(const Plan& p, const Liveness& l, int v) {
  const Step& st = step_of(p, l, v);
  return st.kind == StepKind::Kernel && st.kernel ? st.kernel->workspace_bytes() : 0;
}

// Best-fit heap over one arena: free blocks by offset, coalesced on release.
class Heap {
 public:
  int64_t alloc(int64_t size) {
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->second >= size && (best == free_.end() || it->second < best->second)) best = it;
    if (best != free_.end()) {
      int64_t off = best->first, rest = best->second - size;
      free_.erase(best);
      if (rest > 0) free_[off + size] = rest;
      return off;
    }
    // Grow the arena, reusing a free block that already touches its top.
    int64_t off = top_;
    if (!free_.empty() && free_.rbegin()->first + free_.rbegin()->second == top_) {
      off = free_.rbegin()->first;
      free_.erase(std::prev(free_.end()));
    }
    top_ = off + size;
    return off;
  }
  void release(int64_t off, int64_t size) {
    auto [it, ok] = free_.emplace(off, size);
    NEF_CHECK(ok, "double release at ", off);
    auto next = std::next(it);
    if (next != free_.end() && off + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == off) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }
  int64_t top() const { return top_; }

 private:
  std::map<int64_t, int64_t> free_;
  int64_t top_ = 0;
};

std::string device_name(const Plan& p, int d) {
  return d >= 0 && size_t(d) < p.devices.size() ? p.devices[d]->id() : std::string("none");
}

}  // namespace

void plan_memory(Plan& p) {
  const ir::Graph& g = p.graph;
  const int n = static_cast<int>(g.nodes.size());
  Liveness l = liveness(p);
  runtime::MemoryPlan m;
  m.enabled = true;
  m.offset.assign(n, -1);
  m.bytes.assign(n, 0);
  m.alias_of.assign(n, -1);
  m.inplace_of.assign(n, -1);
  m.live_begin.assign(n, -1);
  m.live_end.assign(n, -1);
  m.workspace_offset.assign(n, -1);
  m.workspace_bytes.assign(n, 0);
  m.arena_bytes.assign(p.devices.size(), 0);

  // Buffer groups: an in-place node joins its donor's group; a group ends at its last member's end.
  std::vector<int> group(n, -1), group_end(n, -1);
  std::vector<bool> arena(n, false);
  for (const Step& st : p.steps) {
    int v = st.node;
    const ir::Node& nd = g.nodes[v];
    if (l.root[v] != v) m.alias_of[v] = l.root[v];
    m.workspace_bytes[v] = workspace_of(p, l, v);
    m.naive_bytes += m.workspace_bytes[v];
    if (!in_arena_candidate(p, l, v)) continue;
    arena[v] = true;
    m.bytes[v] = static_cast<int64_t>(numel(nd.type.shape) * dtype_size(nd.type.dtype));
    m.live_begin[v] = l.pos[v];
    m.live_end[v] = l.last[v];
    m.naive_bytes += m.bytes[v];
    group[v] = v;
    if (inplace_safe(p, l, v)) {
      for (int u : nd.inputs) {
        if (arena[u] && can_take_over(p, l, v, u)) {
          m.inplace_of[v] = u;
          group[v] = group[u];
          ++m.inplace_count;
          break;
        }
      }
    }
    group_end[group[v]] = std::max(group_end[group[v]], l.last[v]);
  }

  // Simulate one heap per device in step order: a step's output and workspace are placed before
  // the buffers that die at that step are released (the kernel reads them while writing), and the
  // workspace is released right after its step.
  std::vector<Heap> heaps(p.devices.size());
  // Groups released at each step, in order, as linked lists through next_dying (no vector per
  // step).
  std::vector<int> first_dying(p.steps.size(), -1), last_dying(p.steps.size(), -1);
  std::vector<int> next_dying(n, -1);
  std::vector<int64_t> group_size(n, 0);
  // Workspaces of a concurrent group's members, held until its last member is placed.
  std::vector<std::pair<int, int64_t>> held_workspaces;
  for (size_t s = 0; s < p.steps.size(); ++s) {
    int v = p.steps[s].node;
    Heap& heap = heaps[g.nodes[v].device];
    if (arena[v] && group[v] == v) {
      group_size[v] = align_up(m.bytes[v]);
      m.offset[v] = group_size[v] ? heap.alloc(group_size[v]) : 0;
      if (group_size[v]) {
        const int e = group_end[v];
        (last_dying[e] < 0 ? first_dying[e] : next_dying[last_dying[e]]) = v;
        last_dying[e] = v;
      }
    } else if (arena[v]) {
      m.offset[v] = m.offset[group[v]];
    }
    const Step& st = p.steps[s];
    if (int64_t ws = align_up(m.workspace_bytes[v]); ws > 0) {
      m.workspace_offset[v] = heap.alloc(ws);
      if (st.grouped()) held_workspaces.emplace_back(v, ws);
      else heap.release(m.workspace_offset[v], ws);
    }
    if (st.grouped() && st.group_last == int(s)) {
      for (auto [w, ws] : held_workspaces)
        heaps[g.nodes[w].device].release(m.workspace_offset[w], ws);
      held_workspaces.clear();
    }
    for (int d = first_dying[s]; d >= 0; d = next_dying[d])
      heaps[g.nodes[d].device].release(m.offset[d], group_size[d]);
  }
  for (size_t d = 0; d < heaps.size(); ++d) {
    m.arena_bytes[d] = heaps[d].top();
    m.planned_peak_bytes += heaps[d].top();
  }
  p.memory = std::move(m);
}

void verify_memory_plan(const Plan& p) {
  const ir::Graph& g = p.graph;
  const runtime::MemoryPlan& m = p.memory;
  const int n = static_cast<int>(g.nodes.size());
  auto fail = [](const std::string& msg) {
    throw Error(ErrorCode::Generic, "[memory plan] " + msg);
  };
  verify_concurrent_groups(p);  // the lifetimes below rely on them
  if (!m.enabled) return;
  if (int(m.offset.size()) != n || int(m.bytes.size()) != n || int(m.inplace_of.size()) != n ||
      int(m.workspace_offset.size()) != n || m.arena_bytes.size() != p.devices.size())
    fail("tables do not match the graph size");
  Liveness l = liveness(p);
  int64_t total = 0;
  for (int64_t b : m.arena_bytes) total += b;
  if (total != m.planned_peak_bytes) fail("planned_peak_bytes is not the sum of the arenas");

  // Arena blocks: values (live pos..last) and workspaces (live at their step only).
  struct Block {
    int node;
    bool workspace;
    int64_t off, bytes;
    int begin, end;
  };
  std::vector<Block> blocks;
  for (int v = 0; v < n; ++v) {
    const ir::Node& nd = g.nodes[v];
    int64_t ws = workspace_of(p, l, v);
    if (m.workspace_bytes[v] != ws)
      fail(str("node ", v, " workspace ", m.workspace_bytes[v], " != ", ws));
    if (ws > 0 && m.workspace_offset[v] >= 0) {
      int64_t off = m.workspace_offset[v];
      if (off % kArenaAlignment || off + ws > m.arena_bytes[nd.device])
        fail(str("node ", v, " workspace [", off, ", ", off + ws, ") is misplaced"));
      const Step& st = step_of(p, l, v);
      blocks.push_back({v, true, off, ws, l.pos[v], st.grouped() ? st.group_last : l.pos[v]});
    }
    int64_t off = m.offset[v];
    if (off < 0) {
      if (m.inplace_of[v] >= 0) fail(str("node ", v, " is in place but not in the arena"));
      continue;
    }
    if (!in_arena_candidate(p, l, v))
      fail(str("node ", v, " (", nd.op->name, ") must not live in the arena"));
    int64_t bytes = static_cast<int64_t>(numel(nd.type.shape) * dtype_size(nd.type.dtype));
    if (m.bytes[v] != bytes) fail(str("node ", v, " size ", m.bytes[v], " != ", bytes));
    if (off % kArenaAlignment) fail(str("node ", v, " offset ", off, " is not aligned"));
    if (off + bytes > m.arena_bytes[nd.device])
      fail(str("node ", v, " [", off, ", ", off + bytes, ") exceeds the arena of ",
               m.arena_bytes[nd.device], " bytes"));
    if (int u = m.inplace_of[v]; u >= 0) {
      bool is_input = std::find(nd.inputs.begin(), nd.inputs.end(), u) != nd.inputs.end();
      if (!is_input || !inplace_safe(p, l, v) || !can_take_over(p, l, v, u) || m.offset[u] != off)
        fail(str("node ", v, " cannot run in place of node ", u));
    }
    if (bytes > 0) blocks.push_back({v, false, off, bytes, l.pos[v], l.last[v]});
  }
  // Sweep in order of birth; `active` holds blocks still alive at the current birth step.
  std::sort(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.workspace < b.workspace;
  });
  std::vector<Block> active;
  for (const Block& b : blocks) {
    std::erase_if(active, [&](const Block& a) { return a.end < b.begin; });
    for (const Block& a : active) {
      if (g.nodes[a.node].device != g.nodes[b.node].device) continue;
      bool overlap = a.off < b.off + b.bytes && b.off < a.off + a.bytes;
      bool handover =
          !a.workspace && !b.workspace && m.inplace_of[b.node] == a.node && a.end == b.begin;
      if (overlap && !handover)
        fail(str(a.workspace ? "workspace of node " : "node ", a.node, " and ",
                 b.workspace ? "workspace of node " : "node ", b.node,
                 " are live together and overlap: [", a.off, ", ", a.off + a.bytes, ") live ",
                 a.begin, "..", a.end, " vs [", b.off, ", ", b.off + b.bytes, ") live ", b.begin,
                 "..", b.end));
    }
    active.push_back(b);
  }
}

std::string describe_memory(const Plan& p) {
  const runtime::MemoryPlan& m = p.memory;
  if (!m.enabled) return "memory: not planned (every value allocated separately)\n";
  std::string s = str("memory: planned peak ", m.planned_peak_bytes, " bytes, naive ",
                      m.naive_bytes, " bytes, ", m.inplace_count, " in place\n");
  for (size_t d = 0; d < m.arena_bytes.size(); ++d)
    s += str("  arena ", device_name(p, int(d)), ": ", m.arena_bytes[d], " bytes\n");
  const ir::Graph& g = p.graph;
  for (const Step& st : p.steps) {
    int v = st.node;
    const ir::Node& nd = g.nodes[v];
    if (m.offset[v] >= 0) {
      s += str("  [", v, "] ", nd.op->name, " offset ", m.offset[v], " size ", m.bytes[v], " live ",
               m.live_begin[v], "..", m.live_end[v]);
      if (m.inplace_of[v] >= 0) s += str(" in place of [", m.inplace_of[v], "]");
      s += "\n";
    } else if (m.alias_of[v] >= 0 && m.offset[m.alias_of[v]] >= 0) {
      s += str("  [", v, "] ", nd.op->name, " view of [", m.alias_of[v], "]\n");
    }
    if (m.workspace_offset[v] >= 0)
      s += str("  [", v, "] ", nd.op->name, " workspace offset ", m.workspace_offset[v], " size ",
               m.workspace_bytes[v], "\n");
  }
  return s;
}

}  // namespace nef::compiler
