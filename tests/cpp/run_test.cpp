// The run object: steps stop at a pause or cancel request between steps and go on from there;
// values of finished steps are available; failures report their step; the CPU queue defers work
// that waits on another queue's event and keeps order.
#include "runtime/run.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "api/lazy.h"
#include "backends/cpu/cpu_queue.h"
#include "backends/registry.h"
#include "compiler/compiler.h"
#include "nef/tensor.h"
#include "test_util.h"

namespace nef {
namespace {

struct Chain {
  std::shared_ptr<const runtime::Plan> plan;
  std::vector<Array> bindings;
  std::vector<float> x;
};

// y = ((x * 2 + 1) ... ) five steps that do not fuse (softmax between them), on the CPU.
Chain chain() {
  Chain c;
  c.x = {0.5f, -1.f, 2.f, 3.f};
  Tensor x = tensor<float>(c.x, {4});
  Tensor y = x;
  for (int i = 0; i < 3; ++i) y = softmax(y * 2.0 + 1.0);
  detail::BuiltGraph built = detail::build_graph({y.node().get()}, detail::BuildMode::Execute);
  compiler::CompileOptions o;
  o.use_plan_cache = false;
  c.plan = compiler::compile(built.graph, o);
  c.bindings = built.bindings;
  return c;
}

TEST(Run, PauseBetweenStepsThenResume) {
  Chain c = chain();
  std::vector<Array> want = runtime::execute(c.plan, c.bindings);
  runtime::Run run(c.plan, c.bindings);
  run.request_pause();
  EXPECT_FALSE(run.advance());  // stopped before the first step
  EXPECT_EQ(run.next_step(), 0);
  run.resume();
  ASSERT_TRUE(run.advance());
  run.wait();
  ASSERT_FALSE(run.failure().has_value());
  ASSERT_TRUE(run.finished());
  std::vector<Array> got = run.outputs();
  EXPECT_EQ(test::to_doubles(got[0]), test::to_doubles(want[0]));
}

TEST(Run, PausedRunKeepsFinishedValuesAndCancelStops) {
  Chain c = chain();
  runtime::Run run(c.plan, c.bindings);
  // Pause from another thread while the run submits: it stops at a step boundary.
  std::atomic<bool> go{false};
  std::thread t([&] {
    while (!go.load()) std::this_thread::yield();
    run.request_pause();
  });
  go = true;
  bool all = run.advance();
  t.join();
  run.wait();
  int stopped = run.next_step();
  EXPECT_TRUE(all || stopped < int(c.plan->steps.size()));
  for (int s = 0; s < stopped; ++s) {
    const runtime::Step& st = c.plan->steps[s];
    if (st.kind == runtime::StepKind::Kernel) EXPECT_NE(run.value(st.node), nullptr) << s;
  }
  run.cancel();
  if (stopped < int(c.plan->steps.size())) EXPECT_FALSE(run.advance());  // nothing more runs
  EXPECT_EQ(run.next_step(), stopped);
  EXPECT_TRUE(run.cancelled());
}

TEST(Run, ExecuteOfACancelledRunIsACancelledError) {
  Chain c = chain();
  runtime::Run run(c.plan, c.bindings);
  run.cancel();
  EXPECT_FALSE(run.advance());
  run.wait();
  EXPECT_FALSE(run.finished());
  EXPECT_THROW(run.outputs(), Error);
}

TEST(Run, WrongBindingsAreStepFailuresNamingTheInput) {
  Chain c = chain();
  std::vector<Array> bad = {Array::empty({5}, DType::Float32)};
  runtime::Run run(c.plan, bad);
  EXPECT_FALSE(run.advance());
  run.wait();
  ASSERT_TRUE(run.failure().has_value());
  try {
    std::rethrow_exception(run.failure()->error);
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("expects shape (4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(runtime::Run(c.plan, {}), ValidationError);
}

TEST(CpuQueue, DefersWorkBehindPendingEventsInOrder) {
  backend::cpu::CpuQueue q;
  auto gate = std::make_shared<backend::HostEvent>();
  std::vector<int> order;
  backend::EventPtr waits[] = {gate};
  auto e1 = q.submit([&] { order.push_back(1); }, waits);
  auto e2 = q.submit([&] { order.push_back(2); }, {});  // after e1: in order
  EXPECT_FALSE(e1->ready());
  EXPECT_FALSE(e2->ready());
  EXPECT_TRUE(order.empty());
  gate->complete();
  e2->wait();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  // Work whose wait failed does not run and carries the error; later work still runs.
  auto bad = std::make_shared<backend::HostEvent>();
  bad->complete(std::make_exception_ptr(DeviceError("boom")));
  backend::EventPtr failing[] = {bad};
  bool ran = false;
  auto e3 = q.submit([&] { ran = true; }, failing);
  EXPECT_THROW(e3->wait(), DeviceError);
  EXPECT_FALSE(ran);
  auto e4 = q.submit([&] { throw TypeError("inside"); }, {});
  EXPECT_THROW(e4->wait(), TypeError);
  EXPECT_TRUE(e4->failed());
  q.synchronize();
}

}  // namespace
}  // namespace nef
