// Value-shaped ops and the segment runner (engine/segments.h): a graph over placeholders whose
// nonzero/unique extents are known only at run time, run through LoadedGraph (from memory and
// from a .nef file) against references computed here; the plan cache across runs; compile's
// refusal of an unresolved graph; inference bounds and errors.
#include "engine/segments.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/session.h"
#include "compiler/compiler.h"
#include "nef/error.h"
#include "nef/tensor.h"

namespace nef {
namespace {

Array random_sparse(std::mt19937_64& rng, const Shape& shape, double p) {
  Array a = Array::empty(shape, DType::Float32);
  std::uniform_real_distribution<double> u(0, 1);
  float* d = a.data_as<float>();
  for (int64_t i = 0; i < a.numel(); ++i) d[i] = u(rng) < p ? float(1 + u(rng)) : 0.0f;
  return a;
}

std::vector<int64_t> ints(const Array& a) {
  Array c = a.contiguous();
  return std::vector<int64_t>(c.data_as<int64_t>(), c.data_as<int64_t>() + c.numel());
}

// nonzero(x) for a 2-d x, rows then columns, as [2, n] flattened.
std::vector<int64_t> nonzero_ref(const Array& x) {
  std::vector<int64_t> r, c;
  for (int64_t i = 0; i < x.shape[0]; ++i)
    for (int64_t j = 0; j < x.shape[1]; ++j)
      if (x.data_as<float>()[i * x.shape[1] + j] != 0) {
        r.push_back(i);
        c.push_back(j);
      }
  r.insert(r.end(), c.begin(), c.end());
  return r;
}

ir::Attrs attrs_of(std::initializer_list<std::pair<const char*, ir::AttrValue>> kv) {
  ir::Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

LoadedGraph nonzero_graph() {
  Tensor x = placeholder("x", {6, 5}, DType::Float32);
  Tensor nz = op("nonzero", {x});
  EXPECT_EQ(nz.shape(), (Shape{2, 30}));  // the upper bound until the graph runs
  // unique of the row indices: a second value-shaped node after the first.
  Tensor rows = squeeze(slice(nz, {0, 0}, {1, 30}, {1, 1}), std::vector<int64_t>{0});
  Tensor u = op("unique", {rows}, attrs_of({{"axis", int64_t{0}}}));
  return LoadedGraph::from_tensors({{"nz", nz}, {"u", u}, {"dense", x * 3.0}});
}

TEST(Segments, NonzeroThenUniqueAgainstReference) {
  std::mt19937_64 rng(std::random_device{}());
  LoadedGraph g = nonzero_graph();
  for (double p : {0.3, 0.0, 1.0, 0.6}) {
    Array x = random_sparse(rng, {6, 5}, p);
    auto out = g.run({{"x", x}});
    std::vector<int64_t> want = nonzero_ref(x);
    EXPECT_EQ(ints(out.at("nz")), want) << "p " << p;
    const int64_t n = int64_t(want.size()) / 2;
    EXPECT_EQ(out.at("nz").shape, (Shape{2, n}));
    std::map<int64_t, int64_t> counts;  // sorted unique rows with first index and count
    for (int64_t j = 0; j < n; ++j) counts.emplace(want[size_t(j)], 0).first->second++;
    std::vector<int64_t> u;
    for (const auto& [row, c] : counts) {
      int64_t first = 0;
      while (want[size_t(first)] != row) ++first;
      u.insert(u.end(), {first, c});
    }
    EXPECT_EQ(ints(out.at("u")), u);
    Array d = out.at("dense").contiguous();  // x * 3.0 (a C++ double: float64)
    ASSERT_EQ(d.dtype, DType::Float64);
    for (int64_t i = 0; i < x.numel(); ++i)
      EXPECT_DOUBLE_EQ(d.data_as<double>()[i], double(x.data_as<float>()[i]) * 3.0);
  }
}

TEST(Segments, SameExtentsHitThePlanCache) {
  std::mt19937_64 rng(7);
  LoadedGraph g = nonzero_graph();
  Array x = random_sparse(rng, {6, 5}, 0.5);
  g.run({{"x", x}});
  reset_stats();
  g.run({{"x", x}});
  std::map<std::string, int64_t> s = stats();
  EXPECT_EQ(s["plan_cache_misses"], 0);
  EXPECT_GE(s["plan_cache_hits"], 3);  // one per segment
}

TEST(Segments, NefFileRoundTrip) {
  std::mt19937_64 rng(11);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("nef_segments_" + std::to_string(::getpid()) + ".nef"))
                               .string();
  nonzero_graph().save(path, /*embed_plan=*/true);  // no plan embedded: warned, not an error
  LoadedGraph g = LoadedGraph::load(path);
  std::filesystem::remove(path);
  Array x = random_sparse(rng, {6, 5}, 0.4);
  EXPECT_EQ(ints(g.run({{"x", x}}).at("nz")), nonzero_ref(x));
}

TEST(Segments, CompileRefusesAnUnresolvedGraph) {
  LoadedGraph g = nonzero_graph();
  EXPECT_THROW(g.compile(), ValidationError);
}

TEST(Segments, LaterShapeMismatchIsAShapeError) {
  Tensor x = placeholder("x", {2, 3}, DType::Float32);
  Tensor y = op("nonzero", {x}) + from_array(Array::empty({2, 6}, DType::Int64));
  LoadedGraph g = LoadedGraph::from_tensors({{"y", y}});
  Array half = Array::empty({2, 3}, DType::Float32);
  for (int i = 0; i < 6; ++i) half.data_as<float>()[i] = float(i % 2);
  EXPECT_THROW(g.run({{"x", half}}), ShapeError);
}

TEST(Segments, EagerOverDataHasTheTrueShape) {
  Array x = Array::empty({3, 4}, DType::Float32);
  for (int i = 0; i < 12; ++i) x.data_as<float>()[i] = float(i % 3 == 0);
  Tensor nz = op("nonzero", {from_array(x)});
  EXPECT_EQ(nz.shape(), (Shape{2, 4}));
  EXPECT_EQ(nz.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 2, 0, 3, 2, 1}));
}

TEST(Segments, InferenceErrors) {
  Tensor s = from_array(Array::empty({}, DType::Float32));
  EXPECT_THROW(op("nonzero", {s}), ShapeError);
  Tensor x = placeholder("x", {4}, DType::Float32);
  EXPECT_THROW(op("nonzero", {x}, attrs_of({{"extent", int64_t{5}}})), ShapeError);
  Tensor boxes = placeholder("b", {1, 3, 4}, DType::Float32);
  Tensor scores = placeholder("s", {1, 2, 3}, DType::Float32);
  EXPECT_EQ(
      op("non_max_suppression", {boxes, scores}, attrs_of({{"max_output", int64_t{2}}})).shape(),
      (Shape{4, 3}));
  EXPECT_THROW(op("non_max_suppression", {boxes, boxes}), ShapeError);
  EXPECT_THROW(op("non_max_suppression", {boxes, scores}, attrs_of({{"iou_threshold", 1.5}})),
               ValidationError);
  EXPECT_THROW(op("topk_k", {x, x}), TypeError);
}

}  // namespace
}  // namespace nef
