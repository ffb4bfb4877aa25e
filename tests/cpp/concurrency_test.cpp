// Inter-op parallelism (compiler/concurrency.h): small independent kernels are ordered next to
// each other and grouped; a grouped plan verifies, gives the same bits as the same plan run one
// kernel at a time, keeps each member's failure to itself, and the verifier rejects bad groups.
#include "compiler/concurrency.h"

#include <gtest/gtest.h>

#include <random>

#include "api/lazy.h"
#include "common/faults.h"
#include "common/session.h"
#include "compiler/compiler.h"
#include "compiler/memory_plan.h"
#include "nef/error.h"
#include "nef/tensor.h"
#include "runtime/run.h"
#include "test_util.h"

namespace nef {
namespace {

struct Built {
  std::shared_ptr<const runtime::Plan> plan;
  std::vector<Array> bindings;
};

// Restores the session's thread count.
struct Threads {
  explicit Threads(int n) : before(current_session().threads()) {
    current_session().set_threads(n);
  }
  ~Threads() { current_session().set_threads(before); }
  int before;
};

Built compile(const std::vector<Tensor>& outs) {
  std::vector<detail::LazyNode*> roots;
  for (const Tensor& t : outs) roots.push_back(t.node().get());
  detail::BuiltGraph built = detail::build_graph(roots, detail::BuildMode::Execute);
  compiler::CompileOptions o;
  o.use_plan_cache = false;
  return {compiler::compile(built.graph, o), built.bindings};
}

std::vector<float> random_values(size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// `branches` independent chains of small matmuls, tanh and softmax over views (a transpose and a
// reshape between the kernels), summed at the end.
std::vector<Tensor> branchy(int branches, int depth, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensor sum;
  std::vector<Tensor> outs;
  for (int b = 0; b < branches; ++b) {
    Tensor y = tensor<float>(random_values(size_t(n * (n + 3)), rng), {n, n + 3});
    for (int d = 0; d < depth; ++d) {
      Tensor w = tensor<float>(random_values(size_t((n + 3) * (n + 3)), rng), {n + 3, n + 3});
      y = tanh(matmul(y, w) * 0.25);
      y = softmax(reshape(transpose(y), {n + 3, n})).transpose().reshape({n, n + 3});
    }
    sum = b ? sum + y : y;
    outs.push_back(y);
  }
  outs.push_back(sum);
  return outs;
}

int grouped_steps(const runtime::Plan& p) {
  int k = 0;
  for (const runtime::Step& s : p.steps) k += s.grouped();
  return k;
}

std::vector<std::vector<double>> run_all(const Built& b) {
  std::vector<std::vector<double>> out;
  for (const Array& a : runtime::execute(b.plan, b.bindings)) out.push_back(test::to_doubles(a));
  return out;
}

TEST(Concurrency, IndependentBranchesAreGroupedAndVerify) {
  Threads two(2);
  Built b = compile(branchy(3, 4, 61, 1));
  EXPECT_GE(grouped_steps(*b.plan), 8);
  EXPECT_NO_THROW(compiler::verify_memory_plan(*b.plan));
  // One thread: nothing to run together.
  Threads one(1);
  Built serial = compile(branchy(3, 4, 61, 1));
  EXPECT_EQ(grouped_steps(*serial.plan), 0);
}

TEST(Concurrency, SameBitsAsOneKernelAtATime) {
  Threads two(2);
  for (int64_t n : {53, 77, 101}) {  // kernels of 2-100 us: grouped
    Built b = compile(branchy(2, 5, n, uint64_t(n)));
    ASSERT_GT(grouped_steps(*b.plan), 0) << n;
    auto alone = std::make_shared<runtime::Plan>(*b.plan);
    compiler::clear_concurrent_groups(*alone);
    compiler::plan_memory(*alone);
    compiler::verify_memory_plan(*alone);
    std::vector<std::vector<double>> grouped = run_all(b);
    for (int rep = 0; rep < 3; ++rep)  // again: arenas reused, workers warm
      EXPECT_EQ(run_all(b), grouped) << n;
    EXPECT_EQ(run_all(Built{alone, b.bindings}), grouped) << n;
  }
}

// Two independent kernels of a few microseconds each (so grouped): a 3000-row gather from a 64-row
// table (one index `bad_row` when >= 0 is set to 64, out of range) and a tanh of 3000 x 64.
Built gather_and_tanh(uint64_t seed, int bad_row) {
  std::mt19937_64 rng(seed);
  Tensor x = tensor<float>(random_values(64 * 64, rng), {64, 64});
  std::vector<int64_t> rows(3000);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = int64_t(i % 64);
  if (bad_row >= 0) rows[size_t(bad_row)] = 64;
  Tensor picked = gather(x, tensor<int64_t>(rows, {3000}), 0);
  Tensor other = tanh(tensor<float>(random_values(3000 * 64, rng), {3000, 64}));
  return compile({picked, other});
}

TEST(Concurrency, MemberFailureStaysWithItsStep) {
  Threads two(2);
  Built b = gather_and_tanh(7, 1234);
  int gather_step = -1, tanh_step = -1;
  for (const runtime::Step& s : b.plan->steps) {
    const ir::Node& n = b.plan->graph.nodes[s.node];
    if (n.is("gather")) gather_step = int(&s - b.plan->steps.data());
    if (s.kind == runtime::StepKind::Kernel && !n.is("gather")) tanh_step = s.node;
  }
  ASSERT_GE(gather_step, 0);
  ASSERT_TRUE(b.plan->steps[gather_step].grouped()) << compiler::describe(*b.plan);
  runtime::Run run(b.plan, b.bindings);
  EXPECT_TRUE(run.advance());
  run.wait();
  ASSERT_TRUE(run.failure().has_value());
  EXPECT_EQ(run.failure()->step, gather_step);
  EXPECT_THROW(std::rethrow_exception(run.failure()->error), ValidationError);
  ASSERT_NE(run.value(tanh_step), nullptr);  // the other member finished
}

TEST(Concurrency, FailureBeforeTheLastMemberStillRunsTheOthers) {
  Threads two(2);
  Built b = gather_and_tanh(3, -1);
  // The last member of the group fails to allocate: the first must still complete.
  int second = -1;
  for (const runtime::Step& s : b.plan->steps)
    if (s.grouped() && s.node == s.group_last) {
      second = s.node;
      break;
    }
  ASSERT_GE(second, 0);
  const ir::Node& n = b.plan->graph.nodes[second];
  const int first = b.plan->steps[second].group_first;
  ASSERT_NE(b.plan->graph.nodes[first].op->name, n.op->name);  // the fault picks one member
  faults::set(str("oom:cpu:", n.op->name));
  runtime::Run run(b.plan, b.bindings);
  EXPECT_FALSE(run.advance());
  run.wait();  // must not hang on the first member's event
  faults::set("");
  ASSERT_TRUE(run.failure().has_value());
  EXPECT_EQ(run.failure()->step, second);
  EXPECT_NE(run.value(first), nullptr);
}

TEST(Concurrency, VerifierRejectsDependentMembers) {
  Threads two(2);
  Built b = compile(branchy(2, 2, 61, 9));
  auto bad = std::make_shared<runtime::Plan>(*b.plan);
  compiler::clear_concurrent_groups(*bad);
  // Group the first two kernels of one chain: the second reads the first (through views).
  std::vector<int> kernels;
  for (const runtime::Step& s : bad->steps)
    if (s.kind == runtime::StepKind::Kernel) kernels.push_back(s.node);
  ASSERT_GE(kernels.size(), 2u);
  int a = -1, c = -1;
  for (size_t i = 0; i < kernels.size() && a < 0; ++i)
    for (size_t j = i + 1; j < kernels.size(); ++j) {
      bool between_ok = true;
      for (int t = kernels[i] + 1; t < kernels[j]; ++t)
        between_ok = between_ok && bad->steps[t].kind != runtime::StepKind::Kernel;
      if (!between_ok) break;
      for (int in : bad->graph.nodes[kernels[j]].inputs) {
        int r = in;
        while (bad->steps[r].kind == runtime::StepKind::View) r = bad->graph.nodes[r].inputs[0];
        if (r == kernels[i]) a = kernels[i], c = kernels[j];
      }
      break;
    }
  ASSERT_GE(a, 0) << "no adjacent dependent pair";
  for (int s : {a, c}) {
    bad->steps[s].group_first = a;
    bad->steps[s].group_last = c;
  }
  compiler::plan_memory(*bad);
  try {
    compiler::verify_memory_plan(*bad);
    FAIL() << "a dependent group verified";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("reads step"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nef
