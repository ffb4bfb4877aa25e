// Memory plan tests: liveness, arena offsets, in-place reuse and views, checked by the verifier
// on every planned graph and numerically against runs without a memory plan (every value
// allocated separately) and float64 references written here.
#include "compiler/memory_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <thread>

#include "api/lazy.h"
#include "common/session.h"
#include "compiler/compiler.h"
#include "nef/tensor.h"
#include "runtime/run.h"
#include "test_util.h"

namespace nef {
namespace {

using runtime::Plan;
using PlanPtr = std::shared_ptr<const Plan>;

// The graph computing `outs`; placeholders become inputs (bound by name at run time).
ir::Graph graph_of(const std::vector<Tensor>& outs) {
  std::vector<detail::LazyNode*> targets;
  for (const Tensor& t : outs) targets.push_back(t.node().get());
  return detail::build_graph(targets, detail::BuildMode::Serialize).graph;
}

// Compiles without the plan cache and checks the memory plan with the verifier.
PlanPtr compile_checked(const ir::Graph& g, bool plan_memory = true, bool run_passes = true) {
  compiler::CompileOptions o;
  o.use_plan_cache = false;
  o.plan_memory = plan_memory;
  o.run_passes = run_passes;
  PlanPtr p = compiler::compile(g, o);
  EXPECT_NO_THROW(compiler::verify_memory_plan(*p)) << compiler::describe(*p);
  return p;
}

using Inputs = std::map<std::string, Array>;

std::vector<Array> run(const PlanPtr& p, const Inputs& in) {
  std::vector<Array> b;
  for (const std::string& name : p->graph.input_names) b.push_back(in.at(name));
  return runtime::execute(p, b);
}

Inputs random_inputs(const ir::Graph& g, std::mt19937_64& rng) {
  Inputs in;
  for (const ir::Node& n : g.nodes)
    if (n.is("input")) in[n.name] = test::random_array(n.type.shape, n.type.dtype, rng, -1, 1);
  return in;
}

void expect_identical(const std::vector<Array>& got, const std::vector<Array>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t o = 0; o < got.size(); ++o) {
    ASSERT_EQ(got[o].shape, want[o].shape) << "output " << o;
    std::vector<double> g = test::to_doubles(got[o]), w = test::to_doubles(want[o]);
    for (size_t i = 0; i < g.size(); ++i)
      if (!(g[i] == w[i] || (std::isnan(g[i]) && std::isnan(w[i])))) {
        ADD_FAILURE() << "output " << o << " element " << i << ": " << g[i] << " vs " << w[i];
        return;
      }
  }
}

void expect_close(const Array& got, const std::vector<double>& want, double tol = 1e-4) {
  std::vector<double> g = test::to_doubles(got);
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i)
    if (!(std::abs(g[i] - want[i]) <= tol * (1 + std::abs(want[i])))) {
      ADD_FAILURE() << "element " << i << ": " << g[i] << " vs reference " << want[i];
      return;
    }
}

// Planned and unplanned runs of one graph agree bitwise (same kernels, same order).
void expect_same_as_unplanned(const ir::Graph& g, uint64_t seed, bool run_passes = true) {
  SCOPED_TRACE(::testing::Message() << "seed=" << seed);
  std::mt19937_64 rng(seed);
  Inputs in = random_inputs(g, rng);
  PlanPtr planned = compile_checked(g, true, run_passes);
  PlanPtr plain = compile_checked(g, false, run_passes);
  expect_identical(run(planned, in), run(plain, in));
}

// ---- graphs --------------------------------------------------------------------------------

constexpr int64_t kB = 37, kIn = 64, kHid = 129, kOut = 10;

ir::Graph mlp_graph() {
  Tensor x = placeholder("x", {kB, kIn}, DType::Float32);
  Tensor w1 = placeholder("w1", {kIn, kHid}, DType::Float32);
  Tensor b1 = placeholder("b1", {kHid}, DType::Float32);
  Tensor w2 = placeholder("w2", {kHid, kOut}, DType::Float32);
  Tensor b2 = placeholder("b2", {kOut}, DType::Float32);
  return graph_of({matmul(relu(matmul(x, w1) + b1), w2) + b2});
}

std::vector<double> mlp_reference(const Inputs& in) {
  auto at = [&](const char* n, int64_t i) { return test::element(in.at(n), i); };
  std::vector<double> h(kB * kHid), y(kB * kOut);
  for (int64_t r = 0; r < kB; ++r)
    for (int64_t j = 0; j < kHid; ++j) {
      double s = at("b1", j);
      for (int64_t k = 0; k < kIn; ++k) s += at("x", r * kIn + k) * at("w1", k * kHid + j);
      h[r * kHid + j] = s > 0 ? s : 0;
    }
  for (int64_t r = 0; r < kB; ++r)
    for (int64_t j = 0; j < kOut; ++j) {
      double s = at("b2", j);
      for (int64_t k = 0; k < kHid; ++k) s += h[r * kHid + k] * at("w2", k * kOut + j);
      y[r * kOut + j] = s;
    }
  return y;
}

// Pre-norm encoder block with hand-written attention (views feed matmuls) and a GELU MLP.
ir::Graph transformer_graph(int64_t S = 17, int64_t D = 32, int64_t H = 4) {
  int64_t dh = D / H;
  auto P = [](const char* n, const Shape& s) { return placeholder(n, s, DType::Float32); };
  Tensor x = P("x", {S, D});
  Tensor ln1 = layernorm(x, P("g1", {D}), P("be1", {D}));
  auto heads = [&](const Tensor& t) { return transpose(reshape(t, {S, H, dh}), {1, 0, 2}); };
  Tensor q = heads(matmul(ln1, P("wq", {D, D})));
  Tensor k = heads(matmul(ln1, P("wk", {D, D})));
  Tensor v = heads(matmul(ln1, P("wv", {D, D})));
  Tensor scores = matmul(q, transpose(k, {0, 2, 1})) * (1.0 / std::sqrt(double(dh)));
  Tensor ctx = reshape(transpose(matmul(softmax(scores), v), {1, 0, 2}), {S, D});
  Tensor h = x + matmul(ctx, P("wo", {D, D}));
  Tensor ln2 = layernorm(h, P("g2", {D}), P("be2", {D}));
  Tensor f = matmul(gelu(matmul(ln2, P("w1", {D, 4 * D})) + P("b1", {4 * D})), P("w2", {4 * D, D}));
  return graph_of({h + (f + P("b2", {D}))});
}

// ---- tests ---------------------------------------------------------------------------------

TEST(MemoryPlan, MlpPeakBelowNaiveAndMatchesReference) {
  ir::Graph g = mlp_graph();
  PlanPtr p = compile_checked(g);
  const runtime::MemoryPlan& m = p->memory;
  ASSERT_TRUE(m.enabled);
  std::cout << "[MemoryPlan] MLP " << kB << "x" << kIn << "->" << kHid << "->" << kOut
            << ": planned peak " << m.planned_peak_bytes << " B, naive " << m.naive_bytes << " B\n"
            << compiler::describe_memory(*p);
  EXPECT_GT(m.naive_bytes, 0);
  // With matmul epilogues fused the only intermediate is the first layer's output: nothing to
  // share, so the peak is that one buffer rounded up to the arena alignment. Reuse proper is
  // checked on the unfused plan below.
  EXPECT_LE(m.planned_peak_bytes, m.naive_bytes + runtime::kArenaAlignment);

  uint64_t seed = 1234;
  SCOPED_TRACE(::testing::Message() << "seed=" << seed);
  std::mt19937_64 rng(seed);
  Inputs in = random_inputs(g, rng);
  std::vector<Array> got = run(p, in);
  expect_close(got[0], mlp_reference(in));
  expect_identical(got, run(compile_checked(g, false), in));
  // Unoptimized graph: the bias add and relu run in place over the first matmul's buffer.
  PlanPtr raw = compile_checked(g, true, false);
  EXPECT_GE(raw->memory.inplace_count, 2) << compiler::describe(*raw);
  EXPECT_LT(raw->memory.planned_peak_bytes, raw->memory.naive_bytes);
  expect_identical(run(raw, in), got);
}

TEST(MemoryPlan, TransformerBlockPeakBelowNaive) {
  struct Size {
    int64_t S, D, H;
  };
  for (Size z : {Size{17, 32, 4}, Size{128, 256, 8}}) {
    ir::Graph g = transformer_graph(z.S, z.D, z.H);
    PlanPtr p = compile_checked(g);
    PlanPtr raw = compile_checked(g, true, false);
    for (const PlanPtr& q : {p, raw}) {
      const runtime::MemoryPlan& m = q->memory;
      std::cout << "[MemoryPlan] transformer block S=" << z.S << " D=" << z.D << " H=" << z.H
                << " (" << (q == p ? "optimized" : "unoptimized") << "): planned peak "
                << m.planned_peak_bytes << " B, naive " << m.naive_bytes << " B, "
                << m.inplace_count << " in place\n";
      EXPECT_LT(m.planned_peak_bytes, m.naive_bytes);
    }
    expect_same_as_unplanned(g, 99);
    expect_same_as_unplanned(g, 100, false);
  }
}

TEST(MemoryPlan, ElementwiseChainRunsInPlace) {
  Tensor x = placeholder("x", {3, 333}, DType::Float32);
  Tensor a = exp(x);
  Tensor b = a * 2.0;
  Tensor c = tanh(b);
  Tensor d = c + x;
  ir::Graph g = graph_of({d * 3.0});
  PlanPtr p = compile_checked(g, true, false);  // no fusion: the chain stays four kernels
  const runtime::MemoryPlan& m = p->memory;
  int chain = 0;
  for (size_t v = 0; v < p->graph.nodes.size(); ++v) {
    const ir::Node& n = p->graph.nodes[v];
    if (n.is("mul") && v != size_t(p->graph.outputs[0])) {
      EXPECT_GE(m.inplace_of[v], 0) << "mul\n" << compiler::describe(*p);
      ++chain;
    }
    if (n.is("tanh") || n.is("add")) {
      EXPECT_GE(m.inplace_of[v], 0) << n.op->name << "\n" << compiler::describe(*p);
      ++chain;
    }
    if (m.inplace_of[v] >= 0) {
      EXPECT_EQ(m.offset[v], m.offset[m.inplace_of[v]]);
    }
  }
  EXPECT_EQ(chain, 3);
  EXPECT_EQ(m.inplace_count, 3);
  // One buffer serves the whole chain.
  EXPECT_EQ(m.planned_peak_bytes, (3 * 333 * 4 + 63) / 64 * 64);

  std::mt19937_64 rng(7);
  Inputs in = random_inputs(g, rng);
  std::vector<double> want(3 * 333);
  for (int64_t i = 0; i < 3 * 333; ++i) {
    double xv = test::element(in["x"], i);
    want[i] = (std::tanh(std::exp(xv) * 2) + xv) * 3;
  }
  expect_close(run(p, in)[0], want);
}

TEST(MemoryPlan, NoInPlaceWhenInputLivesOnOrIsViewed) {
  Tensor x = placeholder("x", {6, 6}, DType::Float32);
  Tensor a = exp(x);
  Tensor b = a * 2.0;  // a is read again later: b must not take a's buffer
  Tensor c = b + a;
  Tensor e = exp(c);
  Tensor t = e + transpose(e);  // reads e through a view at once: not in place of e
  ir::Graph g = graph_of({t * 1.5});
  PlanPtr p = compile_checked(g, true, false);
  const runtime::MemoryPlan& m = p->memory;
  for (size_t v = 0; v < p->graph.nodes.size(); ++v) {
    const ir::Node& n = p->graph.nodes[v];
    bool reads_view = n.is("add") && p->graph.nodes[n.inputs[1]].is("transpose");
    if ((n.is("mul") && m.offset[v] >= 0) || reads_view) {
      EXPECT_EQ(m.inplace_of[v], -1) << compiler::describe(*p);
    }
  }
  std::mt19937_64 rng(8);
  Inputs in = random_inputs(g, rng);
  std::vector<double> ev(36), want(36);
  for (int i = 0; i < 36; ++i) {
    double av = std::exp(test::element(in["x"], i));
    ev[i] = std::exp(av * 2 + av);
  }
  for (int r = 0; r < 6; ++r)
    for (int c2 = 0; c2 < 6; ++c2) want[r * 6 + c2] = (ev[r * 6 + c2] + ev[c2 * 6 + r]) * 1.5;
  expect_close(run(p, in)[0], want);
}

TEST(MemoryPlan, SecondRunDoesNotClobberHeldOutputs) {
  ir::Graph g = mlp_graph();
  PlanPtr p = compile_checked(g);
  std::mt19937_64 rng(21);
  Inputs in1 = random_inputs(g, rng), in2 = random_inputs(g, rng);
  std::vector<Array> out1 = run(p, in1);
  std::vector<Array> out2 = run(p, in2);  // reuses the arena of the first run
  expect_close(out1[0], mlp_reference(in1));
  expect_close(out2[0], mlp_reference(in2));
  EXPECT_NE(out1[0].storage, out2[0].storage);
}

TEST(MemoryPlan, ViewOutputOfIntermediateSurvivesNextRun) {
  Tensor x = placeholder("x", {5, 7}, DType::Float32);
  Tensor a = exp(x) * 2.0;
  Tensor s = sum(a * a, std::vector<int64_t>{1});  // a is also read by later steps
  ir::Graph g = graph_of({transpose(a), s});
  PlanPtr p = compile_checked(g, true, false);
  int base = p->graph.nodes[p->graph.outputs[0]].inputs[0];
  EXPECT_EQ(p->memory.offset[base], -1) << "a graph output views it\n" << compiler::describe(*p);

  std::mt19937_64 rng(33);
  Inputs in1 = random_inputs(g, rng), in2 = random_inputs(g, rng);
  auto want = [](const Inputs& in) {
    std::vector<double> t(35);
    for (int r = 0; r < 5; ++r)
      for (int c = 0; c < 7; ++c) t[c * 5 + r] = std::exp(test::element(in.at("x"), r * 7 + c)) * 2;
    return t;
  };
  std::vector<Array> o1 = run(p, in1);
  std::vector<Array> o2 = run(p, in2);
  expect_close(o1[0], want(in1));
  expect_close(o2[0], want(in2));
  // Same with the optimizer on (whatever it fuses, the view output stays valid).
  PlanPtr opt = compile_checked(g);
  std::vector<Array> p1 = run(opt, in1);
  run(opt, in2);
  expect_close(p1[0], want(in1));
}

TEST(MemoryPlan, SteadyRunAllocatesOnlyOutputs) {
  ir::Graph g = transformer_graph();
  PlanPtr p = compile_checked(g);
  std::mt19937_64 rng(5);
  Inputs in = random_inputs(g, rng);
  run(p, in);  // first run allocates the arena
  nef::reset_stats();
  std::vector<Array> out = run(p, in);
  int64_t out_bytes = 0;
  for (const Array& o : out) out_bytes += int64_t(o.nbytes());
  EXPECT_EQ(nef::counters().bytes_allocated.load(), out_bytes);
}

TEST(MemoryPlan, ConcurrentRunsOfOnePlan) {
  ir::Graph g = transformer_graph(9, 16, 2);
  PlanPtr p = compile_checked(g);
  PlanPtr plain = compile_checked(g, false);
  constexpr int kThreads = 4, kRuns = 15;
  std::vector<Inputs> ins;
  std::vector<std::vector<Array>> want;
  std::mt19937_64 rng(77);
  for (int t = 0; t < kThreads; ++t) {
    ins.push_back(random_inputs(g, rng));
    want.push_back(run(plain, ins.back()));
  }
  std::vector<int> bad(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        std::vector<Array> got = run(p, ins[t]);
        if (test::to_doubles(got[0]) != test::to_doubles(want[t][0])) ++bad[t];
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

TEST(MemoryPlan, ZeroSizeAndScalarValues) {
  Tensor z = placeholder("z", {0, 5}, DType::Float32);
  Tensor s = placeholder("s", {}, DType::Float32);
  Tensor zz = exp(z) * 2.0;
  Tensor ss = tanh(exp(s) + 1.0);
  ir::Graph g = graph_of({zz + 1.0, ss * s, sum(zz)});
  PlanPtr p = compile_checked(g, true, false);
  std::mt19937_64 rng(3);
  Inputs in = random_inputs(g, rng);
  std::vector<Array> out = run(p, in);
  EXPECT_EQ(out[0].shape, (Shape{0, 5}));
  double sv = test::element(in["s"], 0);
  expect_close(out[1], {std::tanh(std::exp(sv) + 1) * sv});
  expect_close(out[2], {0.0});
  expect_same_as_unplanned(g, 4);
}

TEST(MemoryPlan, VerifierRejectsOverlap) {
  ir::Graph g = mlp_graph();
  PlanPtr p = compile_checked(g, true, false);
  Plan bad = *p;
  // Put two intermediates that are live together (the first matmul and its bias add's
  // successor) at the same offset without an in-place relation.
  std::vector<int> placed;
  for (size_t v = 0; v < bad.graph.nodes.size(); ++v)
    if (bad.memory.offset[v] >= 0 && bad.memory.inplace_of[v] < 0) placed.push_back(int(v));
  ASSERT_GE(placed.size(), 2u) << compiler::describe(bad);
  // Second matmul reads relu(...) which shares the first matmul's buffer.
  bad.memory.offset[placed[1]] = bad.memory.offset[placed[0]];
  EXPECT_THROW(compiler::verify_memory_plan(bad), Error);
  Plan unaligned = *p;
  unaligned.memory.offset[placed[1]] += 4;
  EXPECT_THROW(compiler::verify_memory_plan(unaligned), Error);
}

TEST(MemoryPlan, DescribeListsOffsets) {
  PlanPtr p = compile_checked(mlp_graph(), true, false);
  std::string d = compiler::describe(*p);
  EXPECT_NE(d.find("memory: planned peak"), std::string::npos) << d;
  EXPECT_NE(d.find("offset 0 size"), std::string::npos) << d;
  EXPECT_NE(d.find("in place of"), std::string::npos) << d;
}

// Random compositions of elementwise, view, matmul and reduction ops over square values: the
// verifier accepts every plan and planned runs equal unplanned ones.
TEST(MemoryPlan, RandomGraphs) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed=" << seed);
    std::mt19937_64 rng(seed);
    int64_t n = 1 + int64_t(rng() % 9);
    std::vector<Tensor> pool = {placeholder("a", {n, n}, DType::Float32),
                                placeholder("b", {n, n}, DType::Float32)};
    int steps = 5 + int(rng() % 25);
    for (int i = 0; i < steps; ++i) {
      const Tensor& x = pool[rng() % pool.size()];
      const Tensor& y = pool[pool.size() - 1 - rng() % std::min<size_t>(pool.size(), 4)];
      switch (rng() % 9) {
        case 0:
          pool.push_back(tanh(x));
          break;
        case 1:
          pool.push_back(x + y);
          break;
        case 2:
          pool.push_back(x * y);
          break;
        case 3:
          pool.push_back(transpose(x));
          break;
        case 4:
          pool.push_back(matmul(x, y) * 0.25);
          break;
        case 5:
          pool.push_back(reshape(reshape(x, {n * n}), {n, n}));
          break;
        case 6:
          pool.push_back(x - sum(y, std::vector<int64_t>{1}, true));
          break;
        case 7:
          pool.push_back(relu(x) + transpose(y));
          break;
        default:
          pool.push_back(slice(x, {0, 0}, {n, n}, {1, 1}) * 0.5);
          break;
      }
    }
    size_t second = rng() % 2 ? 2 + rng() % (pool.size() - 2) : pool.size() - 1;
    ir::Graph g =
        second == pool.size() - 1 ? graph_of({pool.back()}) : graph_of({pool.back(), pool[second]});
    expect_same_as_unplanned(g, seed, false);
    expect_same_as_unplanned(g, seed, true);
  }
}

}  // namespace
}  // namespace nef
