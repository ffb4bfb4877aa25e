// The placement pass on synthetic targets: fixed profiles (so the decisions do not depend on this
// machine) and a fake accelerator that runs the ops a test allows. Checks where nodes go, why,
// the transfers between them, hints, fallback-only targets, budgets and unsupported ops.
#include <gtest/gtest.h>

#include <set>

#include "backends/registry.h"
#include "ir_builder.h"
#include "nef/error.h"
#include "planner/planner.h"
#include "test_util.h"

namespace nef {
namespace {

// An accelerator that supports the ops in `ops` (all of them when empty); it runs nothing.
class FakeAccelerator final : public backend::Device {
 public:
  FakeAccelerator(std::string id, std::set<std::string> ops) : ops_(std::move(ops)) {
    info_.id = std::move(id);
    info_.backend = "fake";
    info_.kind = "gpu";
    info_.memory_bytes = int64_t(1) << 30;
  }
  const backend::DeviceInfo& info() const override { return info_; }
  bool supports(const ir::Node& n, const ir::Graph&) const override {
    if (n.is("input") || n.is("constant") || n.op->has(ir::kView)) return true;
    return ops_.empty() || ops_.count(n.op->name);
  }
  std::shared_ptr<const backend::Kernel> compile(const ir::Node& n,
                                                 const ir::Graph&) const override {
    throw CompileError("[" + n.op->name + "] fake device");
  }
  std::shared_ptr<Storage> allocate(size_t) override { throw OutOfMemoryError("fake"); }
  backend::QueuePtr acquire_queue() override { return nullptr; }
  backend::EventPtr copy(const Array&, const Array&, backend::Queue&, backend::Waits) override {
    return backend::completed_event();
  }

 private:
  backend::DeviceInfo info_;
  std::set<std::string> ops_;
};

planner::DeviceProfile profile(double gflops, double gbs, double launch_us, double link_gbs) {
  planner::DeviceProfile p;
  p.flops = gflops * 1e9;
  p.bandwidth_bytes = gbs * 1e9;
  p.launch_seconds = launch_us * 1e-6;
  p.to_host_bytes = p.from_host_bytes = link_gbs * 1e9;
  p.transfer_seconds = 10e-6;
  p.measured = true;
  return p;
}

// The host (100 GFLOP/s, 20 GB/s) and a fake accelerator (`gflops`, 500 GB/s, behind a link).
std::vector<planner::Target> two(double gflops, std::set<std::string> ops = {},
                                 bool accel_fallback_only = false,
                                 bool host_fallback_only = false) {
  std::vector<planner::Target> t(2);
  t[0].device = backend::host_device();
  t[0].profile = profile(100, 20, 2, 1e6);
  t[0].fallback_only = host_fallback_only;
  t[1].device = std::make_shared<FakeAccelerator>("fake:0", std::move(ops));
  t[1].profile = profile(gflops, 500, 10, 10);
  t[1].fallback_only = accel_fallback_only;
  return t;
}

const ir::Node* find(const ir::Graph& g, const std::string& op, int k = 0) {
  for (const ir::Node& n : g.nodes)
    if (n.is(op) && k-- == 0) return &n;
  return nullptr;
}

int count(const ir::Graph& g, const std::string& op) {
  int c = 0;
  for (const ir::Node& n : g.nodes) c += n.is(op);
  return c;
}

// Every value read on another device comes through a copy placed on the reader's device.
void expect_transfers_consistent(const ir::Graph& g) {
  for (const ir::Node& n : g.nodes) {
    ASSERT_GE(n.device, 0) << n.op->name;
    for (int in : n.inputs) {
      if (n.is("copy")) {
        EXPECT_NE(g.nodes[in].device, n.device) << "a copy within one device";
      } else {
        EXPECT_EQ(g.nodes[in].device, n.device)
            << n.op->name << " reads " << g.nodes[in].op->name << " across devices";
      }
    }
  }
}

// x (256 x 512) @ W (512 x 512) -> tanh -> + bias: one big matmul and two cheap ops.
ir::Graph mlp(test::GraphBuilder& b, int64_t n = 256) {
  int x = b.input("x", {n, 512}, DType::Float32);
  int w = b.constant(Array::empty({512, 512}, DType::Float32));
  int bias = b.constant(Array::empty({512}, DType::Float32));
  int mm = b.add("matmul", {x, w});
  int th = b.add("tanh", {mm});
  int y = b.add("add", {th, bias});
  b.output(y, "y");
  return b.g;
}

TEST(Placement, FastAcceleratorTakesTheWholeChain) {
  test::GraphBuilder b;
  ir::Graph g = mlp(b);
  planner::place(g, two(10000));
  expect_transfers_consistent(g);
  EXPECT_EQ(find(g, "matmul")->device, 1);
  EXPECT_EQ(find(g, "tanh")->device, 1);  // its input is already there
  EXPECT_EQ(find(g, "add")->device, 1);
  EXPECT_EQ(count(g, "copy"), 1);  // x goes over once; the result stays on the device
  EXPECT_NE(find(g, "matmul")->placement_reason.find("earliest finish"), std::string::npos)
      << find(g, "matmul")->placement_reason;
  EXPECT_GT(find(g, "matmul")->predicted_seconds, 0);
  // The constants were placed on the device that reads them, not copied.
  for (const ir::Node& n : g.nodes)
    if (n.is("constant")) EXPECT_EQ(n.device, 1);
}

TEST(Placement, SlowAcceleratorIsLeftIdle) {
  test::GraphBuilder b;
  ir::Graph g = mlp(b);
  planner::place(g, two(1));
  for (const ir::Node& n : g.nodes) EXPECT_EQ(n.device, 0) << n.op->name;
  EXPECT_EQ(count(g, "copy"), 0);
}

TEST(Placement, TinyWorkStaysOnTheHostBecauseTransfersCostMore) {
  test::GraphBuilder b;
  int x = b.input("x", {4}, DType::Float32);
  b.output(b.add("exp", {x}), "y");
  planner::place(b.g, two(10000));
  EXPECT_EQ(find(b.g, "exp")->device, 0);
}

TEST(Placement, HintsWinAndUnusableHintsAreExplained) {
  test::GraphBuilder b;
  ir::Graph g = mlp(b);
  for (ir::Node& n : g.nodes)
    if (n.is("tanh")) n.device_hint = "gpu";         // a kind: the fake accelerator
    else if (n.is("matmul")) n.device_hint = "cpu";  // the host, though slower
    else if (n.is("add")) n.device_hint = "cuda:3";  // not present
  planner::place(g, two(10000));
  expect_transfers_consistent(g);
  EXPECT_EQ(find(g, "matmul")->device, 0);
  EXPECT_EQ(find(g, "matmul")->placement_reason, "device hint 'cpu'");
  EXPECT_EQ(find(g, "tanh")->device, 1);
  EXPECT_NE(find(g, "add")->placement_reason.find("hint 'cuda:3' unavailable"), std::string::npos);
}

TEST(Placement, FallbackOnlyTargetTakesOnlyWhatOthersCannotRun) {
  test::GraphBuilder b;
  ir::Graph g = mlp(b);
  // The accelerator runs everything but tanh; the host is fallback only (NEF_DEVICES=fake).
  planner::place(g, two(0.001, {"matmul", "add"}, false, true));
  expect_transfers_consistent(g);
  EXPECT_EQ(find(g, "matmul")->device, 1);  // slow, but the host is only a fallback
  EXPECT_EQ(find(g, "add")->device, 1);
  EXPECT_EQ(find(g, "tanh")->device, 0);
  EXPECT_NE(find(g, "tanh")->placement_reason.find("fallback"), std::string::npos);
  EXPECT_EQ(count(g, "copy"), 3);  // x up, matmul down for tanh, tanh up for add
}

TEST(Placement, IndependentBranchesSpreadOverEqualDevices) {
  // Two equal devices sharing memory (transfers nearly free): branch b goes where a is not.
  test::GraphBuilder b;
  int x = b.input("x", {1024, 1024}, DType::Float32);
  int w = b.constant(Array::empty({1024, 1024}, DType::Float32));
  int a1 = b.add("matmul", {x, w});
  int b1 = b.add("matmul", {w, x});
  b.output(a1, "a");
  b.output(b1, "b");
  auto t = two(100);
  t[1].profile = t[0].profile;
  t[1].profile.to_host_bytes = t[1].profile.from_host_bytes = 1e13;
  planner::place(b.g, t);
  expect_transfers_consistent(b.g);
  EXPECT_NE(find(b.g, "matmul", 0)->device, find(b.g, "matmul", 1)->device);
}

TEST(Placement, MemoryBudgetSendsBigNodesToTheHost) {
  test::GraphBuilder b;
  ir::Graph g = mlp(b, 4096);  // x is 8 MiB, the product 8 MiB
  auto t = two(10000);
  t[1].memory_budget = 4 << 20;
  planner::place(g, t);
  EXPECT_EQ(find(g, "matmul")->device, 0);
  EXPECT_NE(find(g, "matmul")->placement_reason.find("memory budget"), std::string::npos);
}

TEST(Placement, UnsupportedEverywhereIsAnUnsupportedError) {
  test::GraphBuilder b;
  int x = b.input("x", {3}, DType::Float32);
  b.output(b.add("exp", {x}), "y");
  // Only the fake device, which cannot run exp.
  std::vector<planner::Target> t = {two(10, {"add"})[1]};
  try {
    planner::place(b.g, t);
    FAIL() << "expected UnsupportedError";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("[exp]"), std::string::npos) << e.what();
  }
}

TEST(Placement, RerouteRedoesTheTransfers) {
  test::GraphBuilder b;
  ir::Graph g = mlp(b);
  auto t = two(10000);
  planner::place(g, t);
  int tanh = int(find(g, "tanh") - g.nodes.data());
  planner::reroute(g, tanh, 0, t, "compile failed");
  expect_transfers_consistent(g);
  EXPECT_EQ(find(g, "tanh")->device, 0);
  EXPECT_EQ(find(g, "tanh")->placement_reason, "compile failed");
  EXPECT_EQ(count(g, "copy"), 3);  // x up, the product down, tanh's result up again
  ir::validate(g);
}

}  // namespace
}  // namespace nef
