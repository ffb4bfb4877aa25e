// Planning overhead: lazy graph -> ir::Graph -> compiled plan (validate, passes, device planner,
// kernel lookup, memory plan), no kernel execution. Random and transformer-shaped graphs of
// about 100, 1K and 10K nodes.
//   cold:      build_graph + detail::compile_built, what evaluate() pays on a plan-cache miss
//              besides the walk (kernels already in the kernel cache: a new graph of known ops)
//   coldest:   plan and kernel caches cleared before each compile
//   warm:      plan cache hit as evaluate() pays it: detail::plan_for (one walk of the lazy DAG,
//              128-bit key, exact verification, pointers to the bound values), no ir::Graph
//              built (the one copy of the bound values is the run's, in evaluate())
//   warm_graph: plan cache hit through the ir::Graph (build_graph + structural key + lookup:
//              what a loaded .nef or a direct compiler::compile call pays)
//   stages:    the cold pipeline split per stage (counters in ms per compile); it repeats the
//              steps of compiler::compile (src/compiler/compiler.cpp) one by one.
// Build and run: bench/run_planning.sh (results: bench/PLANNING.md).
#include <benchmark/benchmark.h>

#include <cmath>
#include <ctime>
#include <map>
#include <random>
#include <string>

#include "api/lazy.h"
#include "backends/backend.h"
#include "compiler/compiler.h"
#include "compiler/memory_plan.h"
#include "nef/tensor.h"
#include "passes/pass.h"
#include "planner/planner.h"

using namespace nef;

namespace {

Tensor data(const Shape& s, std::mt19937_64& rng) {
  Array a = Array::empty(s, DType::Float32);
  float* p = a.data_as<float>();
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t i = 0; i < a.numel(); ++i) p[i] = u(rng);
  return from_array(a);
}

size_t graph_nodes(const std::vector<Tensor>& outs) {
  std::vector<detail::LazyNode*> t;
  for (const Tensor& o : outs) t.push_back(o.node().get());
  return detail::build_graph(t, detail::BuildMode::Execute).graph.nodes.size();
}

// Pre-norm encoder blocks (S=16, D=64, 4 heads; attention and GELU MLP written out with
// matmul/transpose/softmax), stacked until the graph has about `target` nodes.
std::vector<Tensor> transformer(size_t target) {
  std::mt19937_64 rng(1);
  const int64_t S = 16, D = 64, H = 4, dh = D / H;
  Tensor x = data({S, D}, rng);
  auto heads = [&](const Tensor& t) { return transpose(reshape(t, {S, H, dh}), {1, 0, 2}); };
  size_t per_block = 0;
  for (int b = 0;; ++b) {
    Tensor ln1 = layernorm(x, data({D}, rng), data({D}, rng));
    Tensor q = heads(matmul(ln1, data({D, D}, rng)));
    Tensor k = heads(matmul(ln1, data({D, D}, rng)));
    Tensor v = heads(matmul(ln1, data({D, D}, rng)));
    Tensor scores = matmul(q, transpose(k, {0, 2, 1})) * (1.0 / std::sqrt(double(dh)));
    Tensor ctx = reshape(transpose(matmul(softmax(scores), v), {1, 0, 2}), {S, D});
    Tensor h = x + matmul(ctx, data({D, D}, rng));
    Tensor ln2 = layernorm(h, data({D}, rng), data({D}, rng));
    Tensor f = matmul(gelu(matmul(ln2, data({D, 4 * D}, rng)) + data({4 * D}, rng)),
                      data({4 * D, D}, rng));
    x = h + (f + data({D}, rng));
    if (b == 0) per_block = graph_nodes({x});
    if ((b + 2) * per_block > target + per_block / 2) break;
  }
  return {x};
}

// Random compositions over [32, 48] values: elementwise with broadcast and weak scalars,
// matmul, reductions with keepdims, softmax/layernorm (also hand-written), layout round trips.
std::vector<Tensor> random_graph(size_t target) {
  std::mt19937_64 rng(2);
  const int64_t R = 32, C = 48;
  std::vector<Tensor> pool = {data({R, C}, rng), data({R, C}, rng)};
  // Grows until the built graph has about `target` nodes (checked every few steps).
  size_t step = std::max<size_t>(4, target / 40);
  for (size_t it = 1;; ++it) {
    if (it % step == 0) {
      Tensor out = pool.back();
      for (size_t i = 2; i + 1 < pool.size(); i += 97) out = out + pool[i];
      if (graph_nodes({out}) >= target) break;
    }
    Tensor x = pool[pool.size() - 1 - rng() % std::min<size_t>(pool.size(), 6)];
    Tensor y = pool[rng() % pool.size()];
    Tensor z;
    switch (rng() % 12) {
      case 0:
        z = tanh(x) * y;
        break;
      case 1:
        z = x + data({C}, rng);
        break;
      case 2:
        z = exp(x * 0.1) - y;
        break;
      case 3:
        z = matmul(x, data({C, C}, rng));
        break;
      case 4:
        z = x - max(x, std::vector<int64_t>{1}, true);
        break;
      case 5:
        z = softmax(x);
        break;
      case 6:
        z = layernorm(x, data({C}, rng), data({C}, rng));
        break;
      case 7: {
        Tensor e = exp(x - max(x, std::vector<int64_t>{1}, true));
        z = e / sum(e, std::vector<int64_t>{1}, true);

        break;
      }
      case 8:
        z = transpose(transpose(x)) + y;
        break;
      case 9:
        z = reshape(reshape(x, {R * C}), {R, C}) * y;
        break;
      case 10:
        z = maximum(x, y * 0.5) / (abs(y) + 1.0);
        break;
      default:
        z = x * sigmoid(x);
        break;
    }
    pool.push_back(z);
  }
  // Every value feeds the output, so nothing is dead code: sum the tail into it.
  Tensor out = pool.back();
  for (size_t i = 2; i + 1 < pool.size(); i += 97) out = out + pool[i];
  return {out};
}

using Maker = std::vector<Tensor> (*)(size_t);

detail::BuiltGraph build(const std::vector<Tensor>& outs) {
  std::vector<detail::LazyNode*> t;
  for (const Tensor& o : outs) t.push_back(o.node().get());
  return detail::build_graph(t, detail::BuildMode::Execute);
}

void set_counters(benchmark::State& st, const std::vector<Tensor>& outs,
                  const runtime::Plan& plan) {
  st.counters["nodes"] = double(graph_nodes(outs));
  st.counters["nodes_after"] = double(plan.graph.nodes.size());
}

void bm_cold(benchmark::State& st, Maker make, size_t n, bool clear_kernels) {
  std::vector<Tensor> outs = make(n);
  std::shared_ptr<const runtime::Plan> plan;
  for (auto _ : st) {
    if (clear_kernels) {
      st.PauseTiming();
      compiler::clear_caches();
      st.ResumeTiming();
    }
    detail::BuiltGraph b = build(outs);
    plan = detail::compile_built(std::move(b.graph));
    benchmark::DoNotOptimize(plan.get());
  }
  set_counters(st, outs, *plan);
}

void bm_warm(benchmark::State& st, Maker make, size_t n) {
  std::vector<Tensor> outs = make(n);
  std::vector<detail::LazyNode*> t;
  for (const Tensor& o : outs) t.push_back(o.node().get());
  compiler::clear_caches();
  detail::plan_for(t);  // fills the plan cache
  std::shared_ptr<const runtime::Plan> plan;
  for (auto _ : st) {
    detail::LazyPlan lp = detail::plan_for(t);
    plan = lp.plan;
    benchmark::DoNotOptimize(lp.bindings.data());
  }
  set_counters(st, outs, *plan);
}

void bm_warm_graph(benchmark::State& st, Maker make, size_t n) {
  std::vector<Tensor> outs = make(n);
  compiler::clear_caches();
  compiler::compile(build(outs).graph);  // fills the plan cache
  std::shared_ptr<const runtime::Plan> plan;
  for (auto _ : st) {
    detail::BuiltGraph b = build(outs);
    plan = compiler::compile(std::move(b.graph));
    benchmark::DoNotOptimize(plan.get());
  }
  set_counters(st, outs, *plan);
}

// CPU time of this thread: the machine is shared, so wall time would count others' work.
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// The cold pipeline one stage at a time (the steps of compiler::compile), each stage's mean in
// ms of CPU time per compile as a counter; passes are also timed one by one ("pass:NAME", summed
// over the runs of a pass that appears twice).
void bm_stages(benchmark::State& st, Maker make, size_t n) {
  std::vector<Tensor> outs = make(n);
  std::map<std::string, double> total;  // seconds
  auto lap = [&](double& t, const std::string& name) {
    double now = thread_seconds();
    total[name] += now - t;
    t = now;
  };
  size_t nodes_after = 0;
  for (auto _ : st) {
    double t = thread_seconds();
    detail::BuiltGraph b = build(outs);
    lap(t, "1_build_graph");
    std::string key = compiler::structural_key(b.graph);
    benchmark::DoNotOptimize(key.data());
    lap(t, "2_structural_key");
    ir::Graph& g = b.graph;
    ir::validate(g, /*reinfer=*/false);  // as compile_built does
    lap(t, "3_validate");
    auto ctx = compiler::pass_context();
    for (const passes::PassInfo& p : passes::pipeline()) {
      p.run(g, *ctx);
      lap(t, std::string("4_pass:") + p.name);
    }
    auto plan = std::make_shared<runtime::Plan>();
    std::vector<planner::Target> targets = planner::targets();
    for (const auto& tg : targets) plan->devices.push_back(tg.device);
    planner::place(g, targets);
    lap(t, "5_planner");
    auto dctx = compiler::pass_context(plan->devices);
    for (const passes::PassInfo& p : passes::device_pipeline()) {
      p.run(g, *dctx);
      lap(t, std::string("6_pass:") + p.name);
    }
    planner::estimate(g, targets);
    lap(t, "7_estimate");
    nodes_after = g.nodes.size();
    compiler::lower_placed_graph(*plan, std::move(g));
    lap(t, "8_lower");
    compiler::plan_memory(*plan);
    lap(t, "9_memory_plan");
    benchmark::DoNotOptimize(plan.get());
  }
  double iters = double(st.iterations());
  for (const auto& [name, s] : total) st.counters[name] = s * 1e3 / iters;  // ms per compile
  st.counters["nodes"] = double(graph_nodes(outs));
  st.counters["nodes_after"] = double(nodes_after);
}

void register_all() {
  struct Kind {
    const char* name;
    Maker make;
  };
  for (Kind k : {Kind{"random", random_graph}, Kind{"transformer", transformer}})
    for (size_t n : {100, 1000, 10000}) {
      std::string suffix = std::string(k.name) + "/" + std::to_string(n);
      benchmark::RegisterBenchmark(("cold/" + suffix).c_str(), bm_cold, k.make, n, false)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("coldest/" + suffix).c_str(), bm_cold, k.make, n, true)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("warm/" + suffix).c_str(), bm_warm, k.make, n)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("warm_graph/" + suffix).c_str(), bm_warm_graph, k.make, n)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("stages/" + suffix).c_str(), bm_stages, k.make, n)
          ->Unit(benchmark::kMillisecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
