#include "compiler/concurrency.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "backends/concurrent.h"
#include "nef/error.h"

namespace nef::compiler {
namespace {

using runtime::Plan;
using runtime::Step;
using runtime::StepKind;

// Kernels above this predicted time use their own threads well: running one next to another
// would take threads from it. Below it, the pool's fork and join is a large part of a kernel's
// time and many run on one thread anyway (their work is under the grain).
constexpr double kMaxMemberSeconds = 100e-6;
// Below this a kernel takes about as long as handing it to another thread (bench_concurrency:
// pairs of 1-us kernels ran 0.8-0.9x as fast grouped, pairs of 4-30 us ones 1.05-1.6x).
constexpr double kMinMemberSeconds = 2e-6;
// A group lasts as long as its slowest member: members more than this far apart in cost leave a
// thread idle for most of the group.
constexpr double kMaxImbalance = 4.0;

// How many kernels each device may run at once (1 where it cannot run them together).
std::vector<int> device_widths(const std::vector<backend::DevicePtr>& devices) {
  std::vector<int> width(devices.size(), 1);
  for (size_t d = 0; d < devices.size(); ++d)
    if (auto* cap = dynamic_cast<backend::ConcurrentKernels*>(devices[d].get()))
      width[d] = std::max(1, cap->max_concurrent_kernels());
  return width;
}

bool balanced(double lo, double hi) { return hi <= kMaxImbalance * std::max(lo, 1e-9); }

}  // namespace

void order_for_concurrency(ir::Graph& g, const std::vector<backend::DevicePtr>& devices) {
  const std::vector<int> width = device_widths(devices);
  if (std::all_of(width.begin(), width.end(), [](int w) { return w <= 1; })) return;
  const int n = int(g.nodes.size());
  // Per node: inputs, constants and views do no work (Free): they are placed as soon as they
  // can be, so that a kernel is ready when its real inputs are. Op identities by address: this
  // runs on every compile.
  static const ir::OpDef* const input_op = &ir::get_op("input");
  static const ir::OpDef* const constant_op = &ir::get_op("constant");
  static const ir::OpDef* const copy_op = &ir::get_op("copy");
  enum Kind : uint8_t { Free, Candidate, Other };
  std::vector<uint8_t> kind(n);
  bool any = false;
  for (int i = 0; i < n; ++i) {
    const ir::Node& nd = g.nodes[i];
    if (nd.op == input_op || nd.op == constant_op || nd.op->has(ir::kView)) {
      kind[i] = Free;
    } else if (nd.op != copy_op && nd.device >= 0 && width[nd.device] > 1 &&
               nd.predicted_seconds <= kMaxMemberSeconds &&
               nd.predicted_seconds >= kMinMemberSeconds) {
      kind[i] = Candidate;
      any = true;
    } else {
      kind[i] = Other;
    }
  }
  if (!any) return;
  // Users as one CSR array; pending = inputs not yet placed (repeats counted).
  std::vector<int> pending(n, 0), first_user(n + 1, 0), users;
  for (const ir::Node& nd : g.nodes)
    for (int in : nd.inputs) ++first_user[in + 1];
  for (int i = 0; i < n; ++i) first_user[i + 1] += first_user[i];
  users.resize(first_user[n]);
  {
    std::vector<int> fill(first_user.begin(), first_user.end() - 1);
    for (int i = 0; i < n; ++i)
      for (int in : g.nodes[i].inputs) {
        users[fill[in]++] = i;
        ++pending[i];
      }
  }
  // Ready kernels: a min-heap of node indexes (the original order breaks ties); a partner taken
  // out of turn stays in the heap, marked placed, and is skipped when it comes up.
  std::vector<int> ready, order, placed_now, stack;
  std::vector<uint8_t> placed(n, 0);
  bool partnered = false;
  // Kernels deeper in the DAG (more kernels on their longest path from an input) come later, the
  // original order breaking ties: branches advance level by level together, so that the same
  // step of two branches is ready at the same time and can be paired.
  std::vector<int> level(n, 0);
  for (int i = 0; i < n; ++i) {
    for (int in : g.nodes[i].inputs) level[i] = std::max(level[i], level[in]);
    level[i] += kind[i] != Free;
  }
  const auto later = [&](int a, int b) {
    return level[a] != level[b] ? level[a] > level[b] : a > b;
  };
  order.reserve(n);
  auto place = [&](int v) {
    stack.assign(1, v);
    while (!stack.empty()) {
      const int w = stack.back();
      stack.pop_back();
      placed[w] = 1;
      order.push_back(w);
      for (int k = first_user[w]; k < first_user[w + 1]; ++k)
        if (--pending[users[k]] == 0) {
          if (kind[users[k]] == Free) {
            stack.push_back(users[k]);
          } else {
            ready.push_back(users[k]);
            std::push_heap(ready.begin(), ready.end(), later);
          }
        }
    }
  };
  for (int i = 0; i < n; ++i)
    if (g.nodes[i].inputs.empty()) {  // the others are released by their inputs' placement
      if (kind[i] == Free) place(i);
      else {
        ready.push_back(i);
        std::push_heap(ready.begin(), ready.end(), later);
      }
    }
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), later);
    const int u = ready.back();
    ready.pop_back();
    if (placed[u]) continue;
    placed_now.assign(1, u);
    if (kind[u] == Candidate) {
      // Ready kernels are independent of u (u's users are not ready yet): the earliest ones of
      // similar cost go right after it, so that the grouping finds them next to each other.
      const int device = g.nodes[u].device;
      double lo = g.nodes[u].predicted_seconds, hi = lo;
      // The heap's first entries hold its smallest indexes (roughly): a short look suffices.
      const size_t scan = std::min<size_t>(ready.size(), 8);
      while (int(placed_now.size()) < width[device]) {
        int best = -1;
        for (size_t k = 0; k < scan; ++k) {
          const int v = ready[k];
          if (placed[v] || kind[v] != Candidate || g.nodes[v].device != device ||
              (best >= 0 && later(v, best)))
            continue;
          const double c = g.nodes[v].predicted_seconds;
          if (balanced(std::min(lo, c), std::max(hi, c))) best = v;
        }
        if (best < 0) break;
        lo = std::min(lo, g.nodes[best].predicted_seconds);
        hi = std::max(hi, g.nodes[best].predicted_seconds);
        placed[best] = 1;  // taken now; its heap entry is skipped later
        placed_now.push_back(best);
        partnered = true;
      }
    }
    // Views of a member may sit between members; kernels made ready wait for a later turn.
    for (int v : placed_now) place(v);
  }
  NEF_CHECK(int(order.size()) == n, "[concurrency] the graph has a cycle");
  if (!partnered) return;  // no kernel moved next to another: keep the order as it was
  std::vector<int> pos(n);
  for (int i = 0; i < n; ++i) pos[order[i]] = i;
  std::vector<ir::Node> nodes;
  nodes.reserve(n);
  for (int old : order) {
    nodes.push_back(std::move(g.nodes[old]));
    for (int& in : nodes.back().inputs) in = pos[in];
  }
  g.nodes = std::move(nodes);
  for (int& o : g.outputs) o = pos[o];
}

void group_concurrent_steps(Plan& plan) {
  const ir::Graph& g = plan.graph;
  const int steps = int(plan.steps.size());
  const std::vector<int> width = device_widths(plan.devices);
  if (std::all_of(width.begin(), width.end(), [](int w) { return w <= 1; })) return;
  std::vector<backend::ConcurrentKernels*> caps(plan.devices.size(), nullptr);
  for (size_t d = 0; d < plan.devices.size(); ++d)
    caps[d] = dynamic_cast<backend::ConcurrentKernels*>(plan.devices[d].get());
  // Computed once per step: can_run_concurrently is a dynamic_cast.
  std::vector<uint8_t> ok(steps);
  for (int i = 0; i < steps; ++i) {
    const Step& s = plan.steps[i];
    const int d = g.nodes[s.node].device;
    ok[i] = s.kind == StepKind::Kernel && s.kernel && !s.grouped() && width[d] > 1 &&
            s.predicted_seconds <= kMaxMemberSeconds && s.predicted_seconds >= kMinMemberSeconds &&
            caps[d]->can_run_concurrently(*s.kernel);
  }
  // The buffer each node's value lives in (a view's base), to see dependences through views.
  std::vector<int> root(g.nodes.size());
  for (const Step& s : plan.steps)
    root[s.node] = s.kind == StepKind::View ? root[g.nodes[s.node].inputs[0]] : s.node;

  std::vector<int> members;
  for (int s = 0; s < steps;) {
    if (!ok[s]) {
      ++s;
      continue;
    }
    const int device = g.nodes[plan.steps[s].node].device;
    members.assign(1, s);
    double lo = plan.steps[s].predicted_seconds, hi = lo;
    for (int t = s + 1; t < steps && int(members.size()) < width[device]; ++t) {
      const Step& st = plan.steps[t];
      // Inputs, constants and views do no work on the queue: they may sit between members.
      if (st.kind == StepKind::Input || st.kind == StepKind::Constant || st.kind == StepKind::View)
        continue;
      if (!ok[t] || g.nodes[st.node].device != device) break;
      const double lo2 = std::min(lo, st.predicted_seconds),
                   hi2 = std::max(hi, st.predicted_seconds);
      if (!balanced(lo2, hi2)) break;
      bool depends = false;
      for (int in : g.nodes[st.node].inputs)
        for (int m : members) depends = depends || root[in] == plan.steps[m].node;
      if (depends) break;
      members.push_back(t);
      lo = lo2;
      hi = hi2;
    }
    if (members.size() < 2) {
      ++s;
      continue;
    }
    for (int m : members) {
      plan.steps[m].group_first = members.front();
      plan.steps[m].group_last = members.back();
    }
    s = members.back() + 1;
  }
}

void verify_concurrent_groups(const Plan& plan) {
  const ir::Graph& g = plan.graph;
  const int steps = int(plan.steps.size());
  auto fail = [](const std::string& msg) {
    throw Error(ErrorCode::Generic, "[concurrent groups] " + msg);
  };
  std::vector<int> root(g.nodes.size());
  for (const Step& s : plan.steps)
    root[s.node] = s.kind == StepKind::View ? root[g.nodes[s.node].inputs[0]] : s.node;
  for (int s = 0; s < steps;) {
    const Step& first = plan.steps[s];
    if (!first.grouped()) {
      ++s;
      continue;
    }
    const int a = first.group_first, b = first.group_last;
    if (a != s || b <= a || b >= steps) fail(str("step ", s, " has group ", a, "..", b));
    const int device = g.nodes[first.node].device;
    auto* cap = dynamic_cast<const backend::ConcurrentKernels*>(plan.devices[device].get());
    std::vector<int> members;
    for (int t = a; t <= b; ++t) {
      const Step& st = plan.steps[t];
      if (st.kind == StepKind::Input || st.kind == StepKind::Constant ||
          st.kind == StepKind::View) {
        if (st.grouped()) fail(str("step ", t, " is not a kernel but is in group ", a, "..", b));
        continue;
      }
      if (st.kind != StepKind::Kernel || st.group_first != a || st.group_last != b ||
          g.nodes[st.node].device != device || !cap || !st.kernel ||
          !cap->can_run_concurrently(*st.kernel))
        fail(str("step ", t, " cannot run in group ", a, "..", b));
      for (int in : g.nodes[st.node].inputs)
        for (int m : members)
          if (root[in] == plan.steps[m].node)
            fail(str("step ", t, " reads step ", m, "'s result in group ", a, "..", b));
      members.push_back(t);
    }
    if (!plan.steps[b].grouped() || plan.steps[b].kind != StepKind::Kernel)
      fail(str("group ", a, "..", b, " does not end at a member"));
    s = b + 1;
  }
}

void clear_concurrent_groups(Plan& plan) {
  for (Step& s : plan.steps) s.group_first = s.group_last = -1;
}

}  // namespace nef::compiler
