// Optimizer passes: common-subexpression elimination and op simplification. Each rewrite is
// checked by structure (the optimized IR) and numerically against the unoptimized graph.
#include <gtest/gtest.h>

#include <cstring>

#include "passes/pass.h"
#include "passes_test_util.h"

namespace nef {
namespace {

using test::Both;
using test::expect_equivalent;
using test::lit;
using test::rand_tensor;

// A hand-built IR graph (for constants, which the lazy API only makes from scalars).
struct GraphBuilder {
  ir::Graph g;
  int add(ir::Node n) {
    n.type = ir::check_and_infer(*n.op, g.input_types(n), n.attrs);
    g.nodes.push_back(std::move(n));
    return static_cast<int>(g.nodes.size()) - 1;
  }
  int input(const Shape& s) {
    ir::Node n;
    n.op = &ir::get_op("input");
    n.attrs.set("name", str("in", g.num_bindings()));
    n.attrs.set("shape", std::vector<int64_t>(s.begin(), s.end()));
    n.attrs.set("dtype", std::string("float32"));
    n.binding = g.num_bindings();
    g.input_names.push_back(str("in", n.binding));
    return add(std::move(n));
  }
  int constant(const Array& a) {
    ir::Node n;
    n.op = &ir::get_op("constant");
    n.attrs.set("shape", std::vector<int64_t>(a.shape.begin(), a.shape.end()));
    n.attrs.set("dtype", std::string(dtype_name(a.dtype)));
    n.constant = a;
    return add(std::move(n));
  }
  int op(const std::string& name, std::vector<int> inputs, ir::Attrs attrs = {}) {
    ir::Node n;
    n.op = &ir::get_op(name);
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    return add(std::move(n));
  }
  void output(int i) {
    g.outputs.push_back(i);
    g.output_names.push_back(str("out", g.outputs.size()));
  }
  int count(std::string_view op) const {
    int k = 0;
    for (const ir::Node& n : g.nodes) k += n.is(op);
    return k;
  }
};

Array filled(const Shape& s, float v) {
  Array a = Array::empty(s, DType::Float32);
  for (int64_t i = 0; i < a.numel(); ++i) a.data_as<float>()[i] = v;
  return a;
}

// ---- CSE ---------------------------------------------------------------------------------------

TEST(PassCse, MergesDuplicateChains) {
  NEF_SEEDED_RNG(rng, 101);
  Tensor x = rand_tensor(rng, {3, 5});
  auto f = [&] { return tanh(x * 2.0 + 1.0); };  // built twice: distinct nodes and literals
  Both b = NEF_BOTH(f() * f());
  EXPECT_EQ(b.count("tanh"), 1) << b.text();
  EXPECT_EQ(b.count("add"), 1) << b.text();
  EXPECT_EQ(b.count("mul"), 2) << b.text();  // x*2 and the product
  expect_equivalent(b);
}

TEST(PassCse, DifferentAttributesOrSeedsStayApart) {
  NEF_SEEDED_RNG(rng, 102);
  Tensor x = rand_tensor(rng, {4, 4});
  Tensor y = sum(x, std::vector<int64_t>{0}) + sum(x, std::vector<int64_t>{1}) +
             sum(x, std::vector<int64_t>{-1});  // -1 canonicalizes to 1: merges with it
  Both b = NEF_BOTH(y);
  EXPECT_EQ(b.count("sum"), 2) << b.text();
  expect_equivalent(b);

  Tensor r = random_uniform({8}, 7) + random_uniform({8}, 7) + random_uniform({8}, 8);
  Both c = NEF_BOTH(r);
  // Same seed: same values, merged (checked on cse alone: folding would evaluate them).
  ir::Graph g = detail::build_graph({r.node().get()}, detail::BuildMode::Execute).graph;
  passes::common_subexpression_elimination(g, test::pass_ctx());
  passes::dead_node_elimination(g, test::pass_ctx());
  EXPECT_EQ(test::count_text(ir::to_text(g), "random_uniform("), 2) << ir::to_text(g);
  expect_equivalent(c);
}

TEST(PassCse, InputsNeverMergeAndOutputsAreRewired) {
  NEF_SEEDED_RNG(rng, 103);
  Array data = test::random_array({2, 3}, DType::Float32, rng);
  Tensor a = from_array(data), a2 = from_array(data);
  Both b = NEF_BOTH(exp(a) + exp(a2), sigmoid(a), sigmoid(a));
  EXPECT_EQ(b.count("input"), 2) << b.text();
  EXPECT_EQ(b.count("exp"), 2) << b.text();
  EXPECT_EQ(b.count("sigmoid"), 1) << b.text();
  ASSERT_EQ(b.graph().outputs.size(), 3u);
  EXPECT_EQ(b.graph().outputs[1], b.graph().outputs[2]);
  expect_equivalent(b);
}

TEST(PassCse, ConstantsMergeBySmallValueOrSameStorage) {
  GraphBuilder gb;
  int x = gb.input({4, 8});
  Array big = filled({4, 8}, 1.5f);  // 128 bytes: compared by storage, not by value
  Array big_copy = filled({4, 8}, 1.5f);
  Array small = filled({8}, 2.0f), small_copy = filled({8}, 2.0f);
  Array zero = filled({}, 0.0f), neg_zero = filled({}, -0.0f);
  int c1 = gb.constant(big), c2 = gb.constant(big), c3 = gb.constant(big_copy);
  int s1 = gb.constant(small), s2 = gb.constant(small_copy);
  int z1 = gb.constant(zero), z2 = gb.constant(neg_zero);
  int y = gb.op("add", {gb.op("mul", {x, c1}), gb.op("mul", {x, c2})});  // merged
  y = gb.op("add", {y, gb.op("mul", {x, c3})});                          // kept apart
  y = gb.op("add", {y, gb.op("sub", {gb.op("mul", {x, s1}), gb.op("mul", {x, s2})})});
  y = gb.op("add", {y, gb.op("sub", {gb.op("add", {x, z1}), gb.op("add", {x, z2})})});
  gb.output(y);
  ir::Graph g = gb.g;
  passes::common_subexpression_elimination(g, test::pass_ctx());
  passes::dead_node_elimination(g, test::pass_ctx());
  int consts = 0;
  for (const ir::Node& n : g.nodes) consts += n.is("constant");
  EXPECT_EQ(consts, 5) << ir::to_text(g);  // big, big_copy, small (once), +0 and -0 apart
  int muls = 0;
  for (const ir::Node& n : g.nodes) muls += n.is("mul");
  EXPECT_EQ(muls, 3) << ir::to_text(g);  // x*big (twice -> once), x*big_copy, x*small (once)
  EXPECT_NO_THROW(ir::validate(g));
}

// ---- simplification ----------------------------------------------------------------------------

TEST(PassSimplify, ArithmeticIdentitiesDisappear) {
  NEF_SEEDED_RNG(rng, 201);
  for (Shape s : {Shape{3, 7}, Shape{}, Shape{0, 3}}) {
    Tensor x = rand_tensor(rng, s);
    Tensor y = ((((x + 0.0) * 1.0) - 0.0) / 1.0);
    Tensor z = lit(1.0) * (lit(0.0) + x);
    Both b = NEF_BOTH(y, z);
    for (const char* op : {"add", "sub", "mul", "div"}) EXPECT_EQ(b.count(op), 0) << b.text();
    EXPECT_EQ(b.graph().outputs[0], b.graph().outputs[1]);
    EXPECT_TRUE(b.graph().nodes[b.graph().outputs[0]].is("input"));
    expect_equivalent(b, 0, 0);
  }
}

// Nodes no rule rewrites stay in place until a rewrite opens a slot, then move down with their
// inputs remapped: a mix of removed identities, rule ops without a scalar operand (kept as is)
// and other ops, in one chain, gives the same values and a graph that validates.
TEST(PassSimplify, NodesAfterARewriteMoveDownRemapped) {
  NEF_SEEDED_RNG(rng, 209);
  for (Shape s : {Shape{5, 3}, Shape{0, 3}}) {
    Tensor x = rand_tensor(rng, s), y = rand_tensor(rng, s);
    Tensor a = tanh(x * y);        // no rule applies: stays where it is
    Tensor b = exp(a + 0.0) + y;   // the identity is removed; exp and the add move down
    Tensor c = (b * 1.0) - a * y;  // again: every later node moves, inputs remapped
    Tensor d = transpose(transpose(c)) / (b + x);
    Both both = NEF_BOTH(d, b);
    EXPECT_EQ(both.count("transpose"), 0) << both.text();
    EXPECT_EQ(both.count("constant"), 0) << both.text();
    ir::Graph g = both.graph();
    EXPECT_NO_THROW(ir::validate(g));
    expect_equivalent(both, 0, 0);
    expect_equivalent(both, 1, 0);
  }
}

// The hand-built path: simplify itself, on a graph where the first node after a removed one is
// a rule op with no scalar operand (so it is moved without trying the rules).
TEST(PassSimplify, InPlaceRewriteKeepsOrderAndWiring) {
  GraphBuilder b;
  int x = b.input({4}), y = b.input({4});
  int zero = b.constant(filled({}, 0.0f));
  int a = b.op("add", {x, zero});  // -> x
  int m = b.op("mul", {a, y});     // rule op, no scalar operand: moves down
  int t = b.op("tanh", {m});       // not a rule op: moves down
  int n1 = b.op("neg", {t});
  int n2 = b.op("neg", {n1});  // -> t
  int s = b.op("sub", {n2, x});
  b.output(s);
  b.output(m);
  auto ctx = compiler::pass_context();
  passes::simplify(b.g, *ctx);
  passes::dead_node_elimination(b.g, *ctx);
  ir::validate(b.g);
  EXPECT_EQ(b.count("add"), 0) << ir::to_text(b.g);
  EXPECT_EQ(b.count("neg"), 0) << ir::to_text(b.g);
  const ir::Node& sub = b.g.nodes[b.g.outputs[0]];
  ASSERT_TRUE(sub.is("sub")) << ir::to_text(b.g);
  const ir::Node& tanh_node = b.g.nodes[sub.inputs[0]];
  ASSERT_TRUE(tanh_node.is("tanh")) << ir::to_text(b.g);
  EXPECT_EQ(tanh_node.inputs[0], b.g.outputs[1]);
  const ir::Node& mul = b.g.nodes[b.g.outputs[1]];
  ASSERT_TRUE(mul.is("mul"));
  EXPECT_TRUE(b.g.nodes[mul.inputs[0]].is("input"));
  EXPECT_TRUE(b.g.nodes[mul.inputs[1]].is("input"));
  EXPECT_TRUE(b.g.nodes[sub.inputs[1]].is("input"));
  EXPECT_EQ(b.g.nodes[sub.inputs[1]].binding, 0);
  EXPECT_EQ(b.g.nodes[mul.inputs[0]].binding, 0);
  EXPECT_EQ(b.g.nodes[mul.inputs[1]].binding, 1);
}

TEST(PassSimplify, IdentitiesThatWouldChangeTheTypeStay) {
  NEF_SEEDED_RNG(rng, 202);
  Tensor xi = rand_tensor(rng, {5}, DType::Int32, -9, 9);
  Tensor x = rand_tensor(rng, {3});
  Both b = NEF_BOTH(xi * scalar(1.0, DType::Float32),  // int32 -> float32
                    x + scalar(0.0, DType::Float64),   // float32 -> float64
                    x * ones({2, 3}),                  // broadcast to (2, 3)
                    xi / lit(1.0));                    // true division: float
  EXPECT_EQ(b.count("mul"), 2) << b.text();
  EXPECT_EQ(b.count("add"), 1) << b.text();
  EXPECT_EQ(b.count("div"), 1) << b.text();
  expect_equivalent(b, 0, 0);
}

TEST(PassSimplify, NoRoundingChangingRewrites) {
  NEF_SEEDED_RNG(rng, 203);
  Tensor x = rand_tensor(rng, {6});
  Both b = NEF_BOTH(x / 3.0, lit(0.0) - x, x * 2.0, pow(x, lit(0.5)), pow(x, lit(-1.0)),
                    pow(x, lit(5.0)));
  EXPECT_EQ(b.count("div"), 1) << b.text();  // x/3 is not x*(1/3)
  EXPECT_EQ(b.count("sub"), 1) << b.text();
  EXPECT_EQ(b.count("pow"), 3) << b.text();
  EXPECT_EQ(b.count("neg"), 0) << b.text();
  expect_equivalent(b, 0, 0);
}

TEST(PassSimplify, SmallIntegerPowersBecomeMultiplications) {
  NEF_SEEDED_RNG(rng, 204);
  Tensor x = rand_tensor(rng, {4, 9}, DType::Float32, -3, 3);
  struct Case {
    double e;
    int muls;
  };
  for (Case c : {Case{1, 0}, Case{2, 1}, Case{3, 2}, Case{4, 2}}) {
    SCOPED_TRACE(c.e);
    Both b = NEF_BOTH(pow(x, lit(c.e)));
    EXPECT_EQ(b.count("pow"), 0) << b.text();
    EXPECT_EQ(b.count("mul"), c.muls) << b.text();
    expect_equivalent(b, 3e-7, 0);  // x*x*x rounds twice, powf once
  }
  Both f64 = NEF_BOTH(pow(rand_tensor(rng, {7}, DType::Float64), lit(3.0)));
  EXPECT_EQ(f64.count("mul"), 2) << f64.text();
  expect_equivalent(f64, 1e-15, 0);
  // Integer powers keep the integer kernel.
  Both ints = NEF_BOTH(pow(rand_tensor(rng, {7}, DType::Int32, -5, 5), weak_scalar(3, false)));
  EXPECT_EQ(ints.count("mul"), 0) << ints.text();
}

TEST(PassSimplify, CastToSameDtypeAndNegNeg) {
  NEF_SEEDED_RNG(rng, 205);
  Tensor x = rand_tensor(rng, {2, 5});
  Both b = NEF_BOTH(cast(x, DType::Float32), -(-x), -(-(-x)), cast(x, DType::Float64));
  EXPECT_EQ(b.count("cast"), 1) << b.text();
  EXPECT_EQ(b.count("neg"), 1) << b.text();
  EXPECT_TRUE(b.graph().nodes[b.graph().outputs[0]].is("input"));
  expect_equivalent(b, 0, 0);
}

TEST(PassSimplify, TransposeChainsCompose) {
  NEF_SEEDED_RNG(rng, 206);
  Tensor x = rand_tensor(rng, {2, 3, 5});
  Both b = NEF_BOTH(exp(transpose(transpose(x, {1, 2, 0}), {2, 0, 1})),  // identity
                    exp(transpose(transpose(x, {1, 0, 2}), {0, 2, 1})),
                    exp(transpose(transpose(transpose(x)), {0, 2, 1})));
  EXPECT_EQ(b.count("transpose"), 2) << b.text();  // z and w: one each; y: none
  const ir::Node& t = b.first("transpose");
  EXPECT_EQ(t.attrs.get_ints("perm"), (std::vector<int64_t>{1, 2, 0})) << b.text();
  EXPECT_EQ(t.type.shape, (Shape{3, 5, 2}));
  expect_equivalent(b, 0, 0);
}

TEST(PassSimplify, ReshapeChainsCollapse) {
  NEF_SEEDED_RNG(rng, 207);
  Tensor x = rand_tensor(rng, {4, 6});
  Tensor e = rand_tensor(rng, {0, 3});
  Both b = NEF_BOTH(reshape(reshape(reshape(x, {2, 12}), {24}), {3, 8}) + 1.0,
                    reshape(reshape(x, {24}), {4, 6}) + 1.0,  // back to x
                    reshape(reshape(e, {3, 0}), {0, 3}));
  EXPECT_EQ(b.count("reshape"), 1) << b.text();
  EXPECT_EQ(b.first("reshape").attrs.get_ints("shape"), (std::vector<int64_t>{3, 8}));
  expect_equivalent(b, 0, 0);
}

TEST(PassSimplify, PassDumpsShowEachStep) {
  NEF_SEEDED_RNG(rng, 208);
  Tensor x = rand_tensor(rng, {3});
  Both b = NEF_BOTH(pow(x, lit(2.0)) + 0.0);
  std::vector<std::string> names;
  for (const auto& [name, text] : b.opt->pass_dumps) names.push_back(name);
  ASSERT_GE(names.size(), 4u);
  EXPECT_EQ(names[1], "simplify");
  EXPECT_NE(b.opt->pass_dumps[0].second.find("pow"), std::string::npos);
  EXPECT_EQ(b.opt->pass_dumps[1].second.find("pow("), std::string::npos)
      << b.opt->pass_dumps[1].second;
}

}  // namespace
}  // namespace nef
