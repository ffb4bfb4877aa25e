// The lazy C++ API and the execute pipeline: laziness, kept values, caches, folding, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "compiler/compiler.h"
#include "ir/graph.h"
#include "nef/tensor.h"
#include "passes/pass.h"
#include "test_util.h"

namespace nef {
namespace {

int64_t stat(const char* name) { return stats().at(name); }

TEST(Api, OpsAreLazyUntilDemanded) {
  Tensor a = tensor<float>({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor<float>({5, 6, 7, 8}, {2, 2});
  int64_t graphs = stat("graphs_executed"), nodes = stat("nodes_executed");
  Tensor c = matmul(a, b);
  Tensor d = c * 2.0 + 1.0;
  EXPECT_EQ(stat("graphs_executed"), graphs);
  EXPECT_EQ(stat("nodes_executed"), nodes);
  EXPECT_FALSE(d.is_materialized());
  std::vector<float> v = d.to_vector<float>();
  EXPECT_EQ(v, (std::vector<float>{39, 45, 87, 101}));
  EXPECT_EQ(stat("graphs_executed"), graphs + 1);
  int64_t after = stat("nodes_executed");
  d.to_vector<float>();  // materialized: no second execution
  EXPECT_EQ(stat("graphs_executed"), graphs + 1);
  EXPECT_EQ(stat("nodes_executed"), after);
}

TEST(Api, EvaluatedTogetherTensorsAreKeptAndNotRecomputed) {
  Tensor a = tensor<float>({1, 2, 3}, {3});
  Tensor h = exp(a);
  Tensor y = sum(h * 3.0);
  evaluate({y, h});  // one graph; both values kept
  EXPECT_TRUE(h.is_materialized());
  EXPECT_TRUE(y.is_materialized());
  int64_t nodes = stat("nodes_executed");
  Tensor z = h + 1.0;  // only the add runs
  z.execute();
  EXPECT_EQ(stat("nodes_executed"), nodes + 1);
  EXPECT_NEAR(z.to_vector<double>()[2], std::exp(3.0) + 1, 1e-4);
}

TEST(Api, SameStructureHitsPlanAndKernelCaches) {
  auto run = [](float base) {
    Tensor x = tensor<float>({base, base + 1, base + 2, base + 3, base + 4, base + 5}, {2, 3});
    Tensor w = tensor<float>({1, 0, 0, 1, 1, 1}, {3, 2});
    return softmax(matmul(x, w) + 0.5, -1).to_vector<float>();
  };
  run(0);
  int64_t ph = stat("plan_cache_hits"), pm = stat("plan_cache_misses");
  int64_t km = stat("kernel_cache_misses");
  std::vector<float> r = run(10);  // new values, same structure
  EXPECT_EQ(stat("plan_cache_hits"), ph + 1);
  EXPECT_EQ(stat("plan_cache_misses"), pm);
  EXPECT_EQ(stat("kernel_cache_misses"), km);
  EXPECT_NEAR(r[0] + r[1], 1.0f, 1e-6);
}

TEST(Api, ConstantSubgraphsFold) {
  int64_t folded = stat("nodes_folded");
  Tensor t = scalar(2.0) * scalar(3.0) + scalar(1.0);
  EXPECT_DOUBLE_EQ(t.item(), 7.0);
  EXPECT_GE(stat("nodes_folded"), folded + 2);
}

TEST(Api, PlaceholderWithoutValueIsAValidationError) {
  Tensor x = placeholder("x", {2}, DType::Float32);
  Tensor y = x + 1.0;
  EXPECT_THROW(y.execute(), ValidationError);
}

TEST(Api, ShapeErrorsAtCreationNameTheOp) {
  Tensor a = zeros({2, 3});
  Tensor b = zeros({4, 5});
  try {
    matmul(a, b);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[matmul]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(op("no_such_op", {a}), UnsupportedError);
  EXPECT_THROW(add(a, b), ShapeError);
}

TEST(Api, DeepChainsNeitherOverflowNorRecurse) {
  Tensor x = tensor<float>({0}, {1});
  for (int i = 0; i < 20000; ++i) x = x + 1.0;
  EXPECT_EQ(x.to_vector<float>()[0], 20000.0f);
  Tensor y = tensor<float>({0}, {1});
  for (int i = 0; i < 300000; ++i) y = y + 1.0;  // dropped unexecuted: iterative destructor
}

TEST(Ir, TopoOrderDetectsCycles) {
  EXPECT_THROW(ir::topo_order({{1}, {2}, {0}}), GraphCycleError);
  std::vector<int> order = ir::topo_order({{}, {0}, {0, 1}});
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

ir::Node make(const char* op, std::vector<int> inputs, ir::Attrs attrs, const ir::Graph& g) {
  ir::Node n;
  n.op = &ir::get_op(op);
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  n.type = ir::check_and_infer(*n.op, g.input_types(n), n.attrs);
  return n;
}

ir::Graph small_graph() {
  ir::Graph g;
  ir::Attrs in;
  in.set("name", std::string("x"));
  in.set("shape", std::vector<int64_t>{3});
  in.set("dtype", std::string("float32"));
  ir::Node x = make("input", {}, in, g);
  x.binding = 0;
  x.name = "x";
  g.input_names.push_back("x");
  g.nodes.push_back(x);
  g.nodes.push_back(make("exp", {0}, {}, g));  // dead
  g.nodes.push_back(make("neg", {0}, {}, g));
  g.outputs = {2};
  g.output_names = {"y"};
  return g;
}

TEST(Ir, DeadNodeEliminationRemovesUnusedNodes) {
  ir::Graph g = small_graph();
  passes::dead_node_elimination(g, test::pass_ctx());
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[1].op->name, "neg");
  EXPECT_EQ(g.outputs[0], 1);
  EXPECT_NE(ir::to_text(g).find("%1 = neg(%0)"), std::string::npos) << ir::to_text(g);
}

TEST(Ir, ValidateRejectsInconsistentGraphs) {
  ir::Graph g = small_graph();
  g.nodes[2].type.shape = {4};
  EXPECT_THROW(ir::validate(g), ValidationError);
  g = small_graph();
  g.nodes[2].inputs = {2};  // refers to itself
  EXPECT_THROW(ir::validate(g), ValidationError);
  g = small_graph();
  g.nodes[0].binding = 3;
  EXPECT_THROW(ir::validate(g), ValidationError);
  g = small_graph();
  g.outputs = {7};
  EXPECT_THROW(ir::validate(g), ValidationError);
  g = small_graph();
  EXPECT_NO_THROW(ir::validate(g));
}

TEST(Api, RandomIsDeterministicPerSeed) {
  auto a = random_normal({1000}, 7).to_vector<float>();
  auto b = random_normal({1000}, 7).to_vector<float>();
  auto c = random_normal({1000}, 8).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace nef

namespace nef {
namespace {

// A graph x -> op1 [-> op2], with an optional device hint on x.
ir::Graph chain(const char* op1, const char* op2, const std::string& hint, int output) {
  ir::Graph g = small_graph();
  g.nodes.resize(1);
  g.nodes[0].device_hint = hint;
  g.nodes.push_back(make(op1, {0}, {}, g));
  if (op2) g.nodes.push_back(make(op2, {0}, {}, g));
  g.outputs = {output};
  return g;
}

TEST(Ir, UntrustedStringsCannotForgePlanCacheKeys) {
  // A device hint (free text from a file) that spells out another graph's node must not make
  // the two graphs share a key (and so a plan).
  ir::Graph a = chain("exp", nullptr, "cpu;relu(0,){}:(3,)float32", 1);
  ir::Graph b = chain("relu", "exp", "cpu", 1);
  EXPECT_NE(compiler::structural_key(a), compiler::structural_key(b));
  ir::Attrs q1, q2;
  q1.set("name", std::string("a\",b=\"c"));
  q2.set("name", std::string("a"));
  q2.set("b", std::string("c"));
  EXPECT_NE(q1.canonical(), q2.canonical());
}

TEST(Ir, ValidateRejectsRepeatedInputOrOutputNames) {
  ir::Graph g = small_graph();
  g.outputs = {2, 1};
  g.output_names = {"y", "y"};
  EXPECT_THROW(ir::validate(g), ValidationError);
  g.output_names = {"y", "z"};
  EXPECT_NO_THROW(ir::validate(g));
}

}  // namespace
}  // namespace nef

namespace nef {
namespace {

// Found by the npy fuzzer: an empty shape with huge other dims overflowed the stride product.
TEST(Ir, StridesOfEmptyShapesWithHugeDimsDoNotOverflow) {
  Shape s{int64_t{1} << 47, 0, int64_t{1} << 47, 3};
  EXPECT_EQ(checked_numel(s), 0);
  Strides st = contiguous_strides(s);
  EXPECT_EQ(st[3], 1);
  EXPECT_EQ(st[2], 3);
}

}  // namespace
}  // namespace nef

namespace nef {
namespace {

// Found by the npy fuzzer: a leading zero dim with huge later dims made a fresh empty array
// look non-contiguous, so Array::contiguous() tripped an invariant check.
TEST(Ir, EmptyArraysAreContiguousWhateverTheirStrides) {
  Shape s{0, 3, 23223, 2, 22, 23224, 22, 23224};
  Array a = Array::empty(s, DType::Float32);
  EXPECT_TRUE(a.is_contiguous());
  a.strides.assign(s.size(), 0);
  EXPECT_TRUE(a.is_contiguous());
  EXPECT_NO_THROW(a.contiguous());
}

}  // namespace
}  // namespace nef
