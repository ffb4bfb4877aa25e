// The lazy plan cache (detail::plan_for): a repeated evaluate is keyed straight from the lazy
// DAG. It must hit for the same structure on new values and miss when shapes, dtypes,
// attributes, literal values or the wiring (including DAG sharing) change; results are checked
// against values computed in the test.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <functional>
#include <random>
#include <set>
#include <tuple>

#include "api/lazy_walk.h"
#include "compiler/compiler.h"
#include "nef/tensor.h"
#include "runtime/plan.h"

namespace nef {
namespace {

int64_t stat(const char* name) { return stats().at(name); }

std::vector<float> rand_vec(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-2, 2);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

struct Counts {
  int64_t hits = stat("plan_cache_hits"), misses = stat("plan_cache_misses");
  int64_t new_hits() const { return stat("plan_cache_hits") - hits; }
  int64_t new_misses() const { return stat("plan_cache_misses") - misses; }
};

// (a * s + b) summed over axis `axis` of a [3, 5] pair: one graph per call, fresh tensors.
std::vector<double> run(const std::vector<float>& a, const std::vector<float>& b, double s,
                        int64_t axis, bool share) {
  Tensor ta = tensor<float>(a, {3, 5});
  Tensor tb = share ? ta : tensor<float>(b, {3, 5});
  return sum(ta * s + tb, std::vector<int64_t>{axis}).to_vector<double>();
}

std::vector<double> reference(const std::vector<float>& a, const std::vector<float>& b, double s,
                              int64_t axis) {
  std::vector<double> r(axis == 0 ? 5 : 3, 0.0);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j)
      r[axis == 0 ? j : i] += double(a[i * 5 + j]) * s + double(b[i * 5 + j]);
  return r;
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << "element " << i;
}

TEST(LazyPlanCache, NewValuesHitChangesMiss) {
  unsigned seed = 20261125;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  compiler::clear_caches();
  auto a = rand_vec(15, rng), b = rand_vec(15, rng);
  {
    Counts c;
    expect_near(run(a, b, 0.5, 1, false), reference(a, b, 0.5, 1));
    EXPECT_EQ(c.new_misses(), 1);
  }
  {  // same structure, new values: hit
    auto a2 = rand_vec(15, rng), b2 = rand_vec(15, rng);
    Counts c;
    expect_near(run(a2, b2, 0.5, 1, false), reference(a2, b2, 0.5, 1));
    EXPECT_EQ(c.new_hits(), 1);
    EXPECT_EQ(c.new_misses(), 0);
  }
  {  // another literal scalar: miss, and the new value is used
    Counts c;
    expect_near(run(a, b, 3.0, 1, false), reference(a, b, 3.0, 1));
    EXPECT_EQ(c.new_hits(), 0);
    EXPECT_EQ(c.new_misses(), 1);
  }
  {  // another attribute (reduction axis): miss
    Counts c;
    expect_near(run(a, b, 0.5, 0, false), reference(a, b, 0.5, 0));
    EXPECT_EQ(c.new_hits(), 0);
    EXPECT_EQ(c.new_misses(), 1);
  }
  {  // the two inputs are the same tensor (sharing): miss, then hit with new values
    Counts c;
    expect_near(run(a, b, 0.5, 1, true), reference(a, a, 0.5, 1));
    EXPECT_EQ(c.new_hits(), 0);
    EXPECT_EQ(c.new_misses(), 1);
    expect_near(run(b, a, 0.5, 1, true), reference(b, b, 0.5, 1));
    EXPECT_EQ(c.new_hits(), 1);
    expect_near(run(a, b, 0.5, 1, false), reference(a, b, 0.5, 1));  // unshared again: hit
    EXPECT_EQ(c.new_hits(), 2);
    EXPECT_EQ(c.new_misses(), 1);
  }
}

TEST(LazyPlanCache, ShapeAndDtypeChangesMiss) {
  compiler::clear_caches();
  auto f = [](Tensor x) { return exp(x) + 1.0; };
  {
    Counts c;
    EXPECT_NEAR(f(tensor<float>({0, 1, 2}, {3})).to_vector<double>()[2], std::exp(2.0) + 1, 1e-4);
    EXPECT_NEAR(f(tensor<float>({3, 1, 2}, {3})).to_vector<double>()[0], std::exp(3.0) + 1, 1e-3);
    EXPECT_EQ(c.new_misses(), 1);
    EXPECT_EQ(c.new_hits(), 1);
  }
  {
    Counts c;
    std::vector<double> v = f(tensor<float>({0, 1, 2, 3}, {4})).to_vector<double>();  // shape
    ASSERT_EQ(v.size(), 4u);
    EXPECT_NEAR(v[3], std::exp(3.0) + 1, 1e-3);
    v = f(tensor<float>({0, 1, 2, 3}, {2, 2})).to_vector<double>();  // same numel, other rank
    EXPECT_NEAR(v[3], std::exp(3.0) + 1, 1e-3);
    Tensor d = f(tensor<double>({0, 1, 2}, {3}));  // dtype
    EXPECT_EQ(d.dtype(), DType::Float64);
    EXPECT_DOUBLE_EQ(d.to_vector<double>()[1], std::exp(1.0) + 1);
    EXPECT_EQ(c.new_misses(), 3);
    EXPECT_EQ(c.new_hits(), 0);
  }
}

TEST(LazyPlanCache, WiringAndMaterializedIntermediates) {
  compiler::clear_caches();
  Tensor a = tensor<float>({1, 2}, {2}), b = tensor<float>({10, 20}, {2});
  Counts c;
  EXPECT_EQ((a - b).to_vector<float>(), (std::vector<float>{-9, -18}));
  // b - a walks b first: the same graph with the bindings swapped, and the right values.
  EXPECT_EQ((b - a).to_vector<float>(), (std::vector<float>{9, 18}));
  EXPECT_EQ(c.new_misses(), 1);
  EXPECT_EQ(c.new_hits(), 1);
  // exp(a) - b differs from a - b in wiring: miss.
  EXPECT_NEAR((exp(a) - b).to_vector<double>()[1], std::exp(2.0) - 20, 1e-4);
  EXPECT_EQ(c.new_misses(), 2);
  // A materialized intermediate is a bound input keyed by type: y - b hits the a - b plan.
  Tensor y = a * 3.0;
  y.execute();
  Counts c2;
  EXPECT_EQ((y - b).to_vector<float>(), (std::vector<float>{-7, -14}));
  EXPECT_EQ(c2.new_hits(), 1);
  EXPECT_EQ(c2.new_misses(), 0);
  // The same node reached twice is one binding: (a + a) differs from (a + b).
  Counts c3;
  EXPECT_EQ((a + a).to_vector<float>(), (std::vector<float>{2, 4}));
  EXPECT_EQ((a + b).to_vector<float>(), (std::vector<float>{11, 22}));
  EXPECT_EQ((b + b).to_vector<float>(), (std::vector<float>{20, 40}));
  EXPECT_EQ(c3.new_misses(), 2);
  EXPECT_EQ(c3.new_hits(), 1);
}

TEST(LazyPlanCache, SeveralTargetsAndClear) {
  compiler::clear_caches();
  auto go = [](float base) {
    Tensor x = tensor<float>({base, base + 1}, {2});
    Tensor h = x * 2.0;
    Tensor y = h + 1.0;
    evaluate({y, h});
    return std::make_pair(h.to_vector<float>(), y.to_vector<float>());
  };
  Counts c;
  auto r1 = go(1);
  auto r2 = go(5);
  EXPECT_EQ(r1.first, (std::vector<float>{2, 4}));
  EXPECT_EQ(r2.second, (std::vector<float>{11, 13}));
  EXPECT_EQ(c.new_misses(), 1);
  EXPECT_EQ(c.new_hits(), 1);
  compiler::clear_caches();
  auto r3 = go(0);
  EXPECT_EQ(r3.second, (std::vector<float>{1, 3}));
  EXPECT_EQ(c.new_misses(), 2);
}

// A hit must give exactly what a fresh compile gives on the same values (bindings in the right
// slots), for random shapes (zero-size and rank 0 included) and DAGs with sharing.
TEST(LazyPlanCache, HitsMatchFreshCompiles) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    std::vector<int64_t> dims = {0, 1, 3, 5};
    Shape sa, sb;
    int rank = int(rng() % 3);
    for (int i = 0; i < rank; ++i) sa.push_back(dims[rng() % dims.size()]);
    sb = sa;
    if (!sb.empty() && rng() % 2) sb[0] = 1;  // broadcast
    double lit = double(int(rng() % 5)) - 2.0;
    auto expr = [&](const std::vector<float>& va, const std::vector<float>& vb) {
      Tensor a = tensor<float>(va, sa), b = tensor<float>(vb, sb);
      Tensor t = tanh(a * lit + b);
      return (t * t - exp(-a) + b).to_vector<float>();  // t and a shared
    };
    auto vals = [&](const Shape& s) { return rand_vec(size_t(numel(s)), rng); };
    compiler::clear_caches();
    Counts c;
    expr(vals(sa), vals(sb));
    auto va = vals(sa), vb = vals(sb);
    std::vector<float> hit = expr(va, vb);
    EXPECT_EQ(c.new_hits(), 1);
    compiler::clear_caches();
    std::vector<float> fresh = expr(va, vb);
    EXPECT_EQ(c.new_misses(), 2);
    ASSERT_EQ(hit.size(), fresh.size());
    for (size_t i = 0; i < hit.size(); ++i)
      EXPECT_TRUE(hit[i] == fresh[i] || (std::isnan(hit[i]) && std::isnan(fresh[i]))) << i;
  }
}

// The lazy key against an independent exact encoding: compiler::structural_key of the graph the
// walk builds (a string naming ops, attributes, types, wiring, bindings, literal bytes, hints).
// Two lazy DAGs must match (and hash alike) exactly when their structural keys are equal, for
// random DAGs that differ in ops, attributes, shapes, dtypes, weak scalars, literal values,
// sharing, wiring, hints and target order; and matching never looks at the hash, so even a
// forced hash collision cannot alias two different graphs.
struct Keyed {
  std::vector<Tensor> keep;  // holds the DAG (and its values) alive
  std::vector<detail::LazyNode*> targets;
  detail::Walk walk;
  std::string key;
};

Keyed key_of(std::vector<Tensor> outs) {
  Keyed k;
  k.keep = std::move(outs);
  for (const Tensor& t : k.keep) k.targets.push_back(t.node().get());
  detail::walk(k.targets, detail::BuildMode::Execute, k.walk);
  k.key =
      compiler::structural_key(detail::build_graph(k.targets, detail::BuildMode::Execute).graph);
  return k;
}

// A small random DAG; `variant` perturbs one choice so that near-identical graphs are common.
std::vector<Tensor> random_dag(unsigned seed, int variant) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return int(rng() % unsigned(n)); };
  const int perturb_at = variant > 0 ? pick(6) : -1;
  int step = 0;
  auto choice = [&](int n) {  // the perturbed step takes another option
    int c = pick(n);
    return step++ == perturb_at ? (c + variant) % n : c;
  };
  DType dt = choice(3) == 0 ? DType::Float64 : DType::Float32;
  Shape s = choice(2) ? Shape{2, 3} : Shape{3, 2};
  std::vector<Tensor> pool;
  for (int k = 1 + choice(2); k >= 0; --k) {
    std::vector<double> v(6);
    for (double& x : v) x = double(pick(7)) - 3;
    pool.push_back(dt == DType::Float64 ? tensor<double>(v, s)
                                        : tensor<float>(std::vector<float>(v.begin(), v.end()), s));
  }
  for (int k = 0; k < 6; ++k) {
    Tensor a = pool[size_t(choice(int(pool.size())))];
    Tensor b = pool[size_t(choice(int(pool.size())))];
    Tensor t;
    switch (choice(9)) {
      case 0:
        t = a + b;
        break;
      case 1:
        t = a - b;
        break;
      case 2:
        t = exp(a) * b;
        break;
      case 3:
        t = a * double(choice(3));
        break;  // weak literal, by value
      case 4:
        t = a * scalar(choice(2) ? -0.0 : 0.0, dt);
        break;  // strong literal, -0 != 0
      case 5:
        t = a + (a * 0.5 + b) * (a * 0.5 + b);
        break;  // two equal subtrees
      case 6: {
        Tensor u = a * 0.5 + b;
        t = a + u * u;  // the same, shared
        break;
      }
      case 7:
        t = sum(a, std::vector<int64_t>{int64_t(choice(2))}, true) + b;
        break;
      default:
        t = reshape(reshape(a, {6}), a.shape()) - b;
        break;
    }
    if (choice(8) == 0) t.prefer(choice(2) ? "cpu" : "gpu");
    pool.push_back(t);
  }
  std::vector<Tensor> outs = {pool.back()};
  if (choice(3) == 0) outs.push_back(pool[pool.size() - 2]);
  if (outs.size() == 2 && choice(2)) std::swap(outs[0], outs[1]);
  return outs;
}

TEST(LazyPlanCache, KeyMatchesExactlyWhenTheStructureIsEqual) {
  const std::string devices = compiler::device_key();
  std::vector<Keyed> all;
  for (unsigned seed = 1; seed <= 60; ++seed) {
    for (int variant = 0; variant < 3; ++variant) all.push_back(key_of(random_dag(seed, variant)));
    all.push_back(key_of(random_dag(seed, 0)));  // the same code again: fresh nodes, equal
  }
  int equal_pairs = 0, different_pairs = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    auto sig = detail::make_signature(all[i].walk, devices);
    for (size_t j = 0; j < all.size(); ++j) {
      SCOPED_TRACE(testing::Message() << "graphs " << i << " and " << j);
      const bool same = all[i].key == all[j].key;
      (same ? equal_pairs : different_pairs)++;
      detail::Walk& w = all[j].walk;
      EXPECT_EQ(detail::matches(*sig, w, devices), same);
      const bool same_hash = w.hash[0] == all[i].walk.hash[0] && w.hash[1] == all[i].walk.hash[1];
      EXPECT_EQ(same_hash, same);
      // A forced collision: the hash only finds candidates, matching never trusts it.
      const uint64_t h0 = w.hash[0], h1 = w.hash[1];
      w.hash[0] = all[i].walk.hash[0];
      w.hash[1] = all[i].walk.hash[1];
      EXPECT_EQ(detail::matches(*sig, w, devices), same);
      w.hash[0] = h0;
      w.hash[1] = h1;
      if (same) EXPECT_FALSE(detail::matches(*sig, w, devices + "x"));  // other devices
    }
  }
  // Both kinds, with many near misses (one choice apart) among the different pairs.
  EXPECT_GE(equal_pairs, int(all.size()) + 2 * 60);
  EXPECT_GT(different_pairs, 20000);
}

// The same code again (fresh nodes) is the same key.
TEST(LazyPlanCache, FreshNodesMatch) {
  const std::string devices = compiler::device_key();
  for (unsigned seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    Keyed a = key_of(random_dag(seed, 0));
    Keyed b = key_of(random_dag(seed, 0));  // new tensors: other nodes
    EXPECT_NE(a.targets[0], b.targets[0]);
    EXPECT_TRUE(detail::matches(*detail::make_signature(a.walk, devices), b.walk, devices));
    EXPECT_EQ(a.walk.hash[0], b.walk.hash[0]);
    EXPECT_EQ(a.walk.hash[1], b.walk.hash[1]);
  }
}

// plan_for hands out the bound nodes' own arrays (no copies), one per binding slot in the
// plan's slot order, on a miss and on a hit; evaluate then runs with those values.
TEST(LazyPlanCache, BindingsAreTheBoundValuesInSlotOrder) {
  unsigned seed = 20261205;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  compiler::clear_caches();
  for (int round = 0; round < 2; ++round) {  // miss, then hit on fresh tensors
    Tensor x = tensor<float>(rand_vec(12, rng), {3, 4});
    Tensor y = tensor<float>(rand_vec(4, rng), {1, 4});
    Tensor z = tensor<float>(rand_vec(3, rng), {3, 1});
    Tensor out = z * x + (y - z);  // z is read twice: one slot
    Counts c;
    detail::LazyPlan lp = detail::plan_for({out.node().get()});
    EXPECT_EQ(c.new_hits(), round);
    const ir::Graph& g = lp.plan->graph;
    ASSERT_EQ(int(lp.bindings.size()), g.num_bindings());
    // Slots in walk order (post-order, inputs in order): z, x, y.
    const Tensor* want[] = {&z, &x, &y};
    ASSERT_EQ(lp.bindings.size(), 3u);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(lp.bindings[k], &*want[k]->node()->value) << "slot " << k;
      for (const ir::Node& n : g.nodes)
        if (n.binding == k) EXPECT_EQ(n.type.shape, lp.bindings[k]->shape) << "slot " << k;
    }
    // And the run with them computes the graph (evaluate goes through plan_for).
    std::vector<float> xv = x.to_vector<float>(), yv = y.to_vector<float>(),
                       zv = z.to_vector<float>(), got = out.to_vector<float>();
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j)
        EXPECT_NEAR(got[i * 4 + j], double(zv[i]) * xv[i * 4 + j] + (double(yv[j]) - double(zv[i])),
                    1e-5);
  }
}

// Graphs one attribute, one input shape, one dtype, one literal or one hint apart never share a
// plan: each variant misses once and then hits its own plan on fresh tensors, with the values of
// a float64 reference; and a forced hash collision (another variant's entry stored under this
// variant's hash) is caught by the exact verification, never run.
TEST(LazyPlanCache, OneAttributeShapeOrDtypeApartNeverSharesAPlan) {
  unsigned seed = 20261206;
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  struct Variant {
    const char* name;
    Shape shape;
    DType dtype;
    std::function<Tensor(const Tensor&)> f;
    // reference on the [r, c] values (row-major), float64
    std::function<std::vector<double>(const std::vector<double>&, int64_t, int64_t)> ref;
  };
  auto rowsum = [](const std::vector<double>& v, int64_t r, int64_t c) {
    std::vector<double> o(size_t(r), 0.0);
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) o[size_t(i)] += v[size_t(i * c + j)];
    return o;
  };
  auto colsum = [](const std::vector<double>& v, int64_t r, int64_t c) {
    std::vector<double> o(size_t(c), 0.0);
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) o[size_t(j)] += v[size_t(i * c + j)];
    return o;
  };
  auto scaled = [](double k) {
    return [k](const std::vector<double>& v, int64_t, int64_t) {
      std::vector<double> o(v);
      for (double& x : o) x *= k;
      return o;
    };
  };
  const std::vector<Variant> variants = {
      {"sum axis 0",
       {3, 5},
       DType::Float32,
       [](const Tensor& x) { return sum(x, std::vector<int64_t>{0}); },
       colsum},
      {"sum axis 1",
       {3, 5},
       DType::Float32,
       [](const Tensor& x) { return sum(x, std::vector<int64_t>{1}); },
       rowsum},
      {"sum axis 1 keepdims",
       {3, 5},
       DType::Float32,
       [](const Tensor& x) { return sum(x, std::vector<int64_t>{1}, true); },
       rowsum},
      {"sum axis 0, shape 5x3",
       {5, 3},
       DType::Float32,
       [](const Tensor& x) { return sum(x, std::vector<int64_t>{0}); },
       colsum},
      {"sum axis 0, float64",
       {3, 5},
       DType::Float64,
       [](const Tensor& x) { return sum(x, std::vector<int64_t>{0}); },
       colsum},
      {"x * 2", {3, 5}, DType::Float32, [](const Tensor& x) { return x * 2.0; }, scaled(2)},
      {"x * 3", {3, 5}, DType::Float32, [](const Tensor& x) { return x * 3.0; }, scaled(3)},
      {"x * strong 2",
       {3, 5},
       DType::Float32,
       [](const Tensor& x) { return x * scalar(2.0, DType::Float32); },
       scaled(2)},
      {"x * 2, hinted",
       {3, 5},
       DType::Float32,
       [](const Tensor& x) {
         Tensor t = x * 2.0;
         t.prefer("cpu");  // a hint set after creation keys too
         return t;
       },
       scaled(2)},
  };
  compiler::clear_caches();
  const std::string devices = compiler::device_key();
  const uint64_t dh = std::hash<std::string>()(devices);
  std::vector<std::shared_ptr<const runtime::Plan>> plans;
  std::vector<std::array<uint64_t, 2>> hashes;
  auto values = [&](const Variant& v) {
    std::vector<double> d = {};
    for (float x : rand_vec(size_t(numel(v.shape)), rng)) d.push_back(double(x));
    Tensor t = v.dtype == DType::Float64
                   ? tensor<double>(d, v.shape)
                   : tensor<float>(std::vector<float>(d.begin(), d.end()), v.shape);
    return std::make_pair(t, d);
  };
  for (const Variant& v : variants) {
    SCOPED_TRACE(v.name);
    auto [x1, d1] = values(v);
    Tensor t1 = v.f(x1);
    detail::LazyPlan first = detail::plan_for({t1.node().get()});
    for (const auto& p : plans) EXPECT_NE(first.plan, p);  // a plan of its own
    plans.push_back(first.plan);
    detail::Walk w;
    detail::walk({t1.node().get()}, detail::BuildMode::Execute, w);
    hashes.push_back({w.hash[0], w.hash[1]});
    auto [x2, d2] = values(v);  // the same code, fresh tensors and values: a hit
    Tensor t2 = v.f(x2);
    EXPECT_EQ(detail::plan_for({t2.node().get()}).plan, first.plan);
    std::vector<double> got = t2.to_vector<double>(), want = v.ref(d2, v.shape[0], v.shape[1]);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << "element " << i;
  }
  // Forced collisions: variant i's signature and plan stored under variant j's hash.
  for (size_t i = 0; i < variants.size(); ++i) {
    for (size_t j = 0; j < variants.size(); ++j) {
      if (i == j) continue;
      SCOPED_TRACE(testing::Message() << variants[i].name << " stored as " << variants[j].name);
      auto [xi, di] = values(variants[i]);
      Tensor ti = variants[i].f(xi);
      detail::Walk wi;
      detail::walk({ti.node().get()}, detail::BuildMode::Execute, wi);
      compiler::store_front_plan(hashes[j][0] ^ dh, hashes[j][1],
                                 {detail::make_signature(wi, devices), plans[i]});
      auto [xj, dj] = values(variants[j]);
      Tensor tj = variants[j].f(xj);
      detail::LazyPlan lp = detail::plan_for({tj.node().get()});
      EXPECT_NE(lp.plan, plans[i]);  // verified, not trusted: recompiled
      plans[j] = lp.plan;            // (now cached under j's hash again)
      std::vector<double> got = tj.to_vector<double>();
      std::vector<double> want = variants[j].ref(dj, variants[j].shape[0], variants[j].shape[1]);
      ASSERT_EQ(got.size(), want.size());
      for (size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-4) << k;
    }
  }
}

// The keying walk (what a hit pays) and the full walk (what a miss builds from) agree on the key,
// the outputs, the hash and the bound values, for random DAGs with sharing and several targets.
TEST(LazyPlanCache, KeyingWalkEqualsFullWalk) {
  for (unsigned seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::vector<Tensor> outs = random_dag(seed, 0);
    std::vector<detail::LazyNode*> targets;
    for (const Tensor& t : outs) targets.push_back(t.node().get());
    detail::Walk full, keying;
    detail::walk(targets, detail::BuildMode::Execute, full, true);
    detail::walk(targets, detail::BuildMode::Execute, keying, false);
    ASSERT_EQ(full.key.size(), keying.key.size());
    EXPECT_EQ(full.key.to_vector(), keying.key.to_vector());
    EXPECT_EQ(full.outputs, keying.outputs);
    EXPECT_EQ(full.hash[0], keying.hash[0]);
    EXPECT_EQ(full.hash[1], keying.hash[1]);
    EXPECT_EQ(full.bound_values, keying.bound_values);
    EXPECT_TRUE(keying.order.empty());
    // The full walk's bound nodes, in order, are the bound values.
    std::vector<const Array*> bound;
    for (size_t i = 0; i < full.order.size(); ++i)
      if (full.kind[i] == detail::kBound) bound.push_back(&*full.order[i]->value);
    EXPECT_EQ(bound, full.bound_values);
  }
}

// LazyNode::users counts the op nodes holding a node as an input; the walk skips the visited set
// for nodes with one user, so the count must follow creation, materialization and freeing.
TEST(LazyPlanCache, UserCountsFollowTheDag) {
  Tensor a = tensor<float>({1, 2}, {2});
  EXPECT_EQ(a.node()->users.load(), 0u);
  Tensor b = a * 2.0;
  EXPECT_EQ(a.node()->users.load(), 1u);
  Tensor c = a + a;  // with multiplicity
  EXPECT_EQ(a.node()->users.load(), 3u);
  {
    Tensor d = exp(b);
    EXPECT_EQ(b.node()->users.load(), 1u);
    EXPECT_EQ(b.node()->n_in, 2u);
    EXPECT_EQ(b.node()->in_fast[0], a.node().get());
  }
  EXPECT_EQ(b.node()->users.load(), 0u);  // d freed
  c.execute();                            // materialized: c drops its inputs
  EXPECT_EQ(a.node()->users.load(), 1u);
  EXPECT_EQ(c.node()->n_in, 0u);
  EXPECT_EQ(c.node()->in_fast[0], nullptr);
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{2, 4}));
  b = Tensor();
  EXPECT_EQ(a.node()->users.load(), 0u);
}

// Ops with more inputs than LazyNode keeps inline, inputs reached twice, and a target that is
// another target's input: one node each in the graph, hits on fresh tensors, right values.
TEST(LazyPlanCache, ManyInputsSharingAndNestedTargets) {
  compiler::clear_caches();
  auto go = [](float base) {
    Tensor x = tensor<float>({base, base + 1}, {2});
    Tensor y = tensor<float>({base * 2, base * 3}, {2});
    Tensor e = exp(x * 0.0);                        // ones
    Tensor cat = concat({x, y, e, x, y * 2.0}, 0);  // 5 inputs, x twice
    Tensor s = sum(cat, std::vector<int64_t>{0}, true);
    Tensor out = cat - s;
    std::vector<detail::LazyNode*> targets = {out.node().get(), cat.node().get()};
    detail::Walk w;
    detail::walk(targets, detail::BuildMode::Execute, w);
    std::set<detail::LazyNode*> unique(w.order.begin(), w.order.end());
    EXPECT_EQ(unique.size(), w.order.size());  // no node walked twice
    EXPECT_EQ(w.bound_values.size(), 2u);      // x and y, once each
    detail::LazyPlan lp = detail::plan_for(targets);
    evaluate({out, cat});
    return std::make_tuple(lp.plan, out.to_vector<float>(), cat.to_vector<float>());
  };
  auto [p1, o1, c1] = go(1);
  auto [p2, o2, c2] = go(-3);
  EXPECT_EQ(p1, p2);
  std::vector<float> want_cat = {-3, -2, -6, -9, 1, 1, -3, -2, -12, -18};
  EXPECT_EQ(c2, want_cat);
  float total = 0;
  for (float v : want_cat) total += v;
  ASSERT_EQ(o2.size(), want_cat.size());
  for (size_t i = 0; i < o2.size(); ++i) EXPECT_FLOAT_EQ(o2[i], want_cat[i] - total) << i;
}

}  // namespace
}  // namespace nef
