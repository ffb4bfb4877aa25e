// nef::Dims (Shape / Strides): small-vector semantics checked against std::vector<int64_t> as
// the reference, across the inline -> heap boundary (kInline), for every insert/erase position,
// copies and moves in each storage state, comparisons, hashing and conversions.
#include "nef/shape.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <unordered_set>
#include <utility>
#include <vector>

#include "nef/array.h"

namespace nef {
namespace {

using Vec = std::vector<int64_t>;
constexpr size_t K = Dims::kInline;

Vec iota_vec(size_t n, int64_t start = 1) {
  Vec v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + static_cast<int64_t>(i) * 7;
  return v;
}

void expect_same(const Dims& d, const Vec& v) {
  ASSERT_EQ(d.size(), v.size());
  EXPECT_EQ(d.empty(), v.empty());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(d[i], v[i]) << "at " << i;
  EXPECT_EQ(Vec(d.begin(), d.end()), v);
  EXPECT_EQ(Vec(d.rbegin(), d.rend()), Vec(v.rbegin(), v.rend()));
  EXPECT_EQ(d.is_inline(), d.capacity() == K);
}

TEST(Dims, ConstructorsMatchVector) {
  for (size_t n : {size_t{0}, size_t{1}, K - 1, K, K + 1, 2 * K + 3}) {
    expect_same(Dims(n), Vec(n));
    expect_same(Dims(n, -3), Vec(n, -3));
    Vec src = iota_vec(n);
    expect_same(Dims(src.begin(), src.end()), src);
    expect_same(Dims(src), src);  // implicit from std::vector
    Dims d = src;
    Vec back = d;  // implicit back
    EXPECT_EQ(back, src);
    EXPECT_EQ(d.to_vector(), src);
    EXPECT_EQ(d.is_inline(), n <= K) << n;
  }
  expect_same(Dims{}, Vec{});
  expect_same(Dims{4, 5}, Vec{4, 5});  // initializer list, not (count, value)
  expect_same(Dims(size_t{4}, 5), Vec(4, 5));
  expect_same(Dims{1, 2, 3, 4, 5, 6, 7, 8}, Vec{1, 2, 3, 4, 5, 6, 7, 8});
}

TEST(Dims, NoHeapUpToInlineCapacity) {
  Dims d;
  for (size_t i = 0; i < K; ++i) {
    d.push_back(static_cast<int64_t>(i));
    EXPECT_TRUE(d.is_inline());
  }
  Vec ref(K);
  for (size_t i = 0; i < K; ++i) ref[i] = static_cast<int64_t>(i);
  d.push_back(99);  // first spill
  EXPECT_FALSE(d.is_inline());
  EXPECT_GE(d.capacity(), K + 1);
  ref.push_back(99);
  expect_same(d, ref);
  d.pop_back();
  ref.pop_back();
  expect_same(d, ref);
  d.clear();
  EXPECT_TRUE(d.empty());
  d.resize(3 * K, 2);
  expect_same(d, Vec(3 * K, 2));
  // insert and resize up to kInline never spill, whatever the starting rank.
  for (size_t n = 0; n < K; ++n) {
    Dims e(n, 1);
    e.insert(e.begin(), 2);
    EXPECT_TRUE(e.is_inline()) << n;
    Dims f(n, 1);
    f.insert(f.end(), K - n, 3);
    EXPECT_TRUE(f.is_inline()) << n;
    f.resize(K);
    EXPECT_TRUE(f.is_inline()) << n;
  }
  Dims r;
  r.reserve(K);
  EXPECT_TRUE(r.is_inline());
  r.reserve(K + 1);
  EXPECT_FALSE(r.is_inline());
}

TEST(Dims, CopyAndMoveInEachStorageState) {
  for (size_t n : {size_t{0}, size_t{2}, K, K + 1, 3 * K}) {
    for (size_t m : {size_t{0}, size_t{3}, K + 2}) {
      Vec a = iota_vec(n), b = iota_vec(m, 100);
      Dims x(a), y(b);
      Dims c(x);
      expect_same(c, a);
      expect_same(x, a);
      y = x;  // copy assign over each state
      expect_same(y, a);
      expect_same(x, a);
      Dims z(b);
      z = std::move(x);
      expect_same(z, a);
      EXPECT_TRUE(x.empty());
      EXPECT_TRUE(x.is_inline());  // moved-from is reusable
      x.push_back(5);
      expect_same(x, Vec{5});
      Dims w(std::move(z));
      expect_same(w, a);
      EXPECT_TRUE(z.empty());
      Dims s1(a), s2(b);
      s1.swap(s2);
      expect_same(s1, b);
      expect_same(s2, a);
      std::swap(s1, s2);
      expect_same(s1, a);
      expect_same(s2, b);
    }
  }
}

TEST(Dims, SelfAssignment) {
  for (size_t n : {size_t{0}, size_t{3}, K + 4}) {
    Vec a = iota_vec(n);
    Dims d(a);
    Dims& alias = d;
    d = alias;
    expect_same(d, a);
    d = std::move(alias);
    expect_same(d, a);
    d.swap(alias);
    expect_same(d, a);
  }
}

TEST(Dims, InsertAndEraseAtEveryPosition) {
  for (size_t n : {size_t{0}, size_t{1}, K - 1, K, K + 2}) {
    Vec base = iota_vec(n);
    for (size_t pos = 0; pos <= n; ++pos) {
      {  // one value
        Dims d(base);
        Vec v = base;
        auto it = d.insert(d.begin() + pos, -1);
        v.insert(v.begin() + pos, -1);
        EXPECT_EQ(it - d.begin(), static_cast<ptrdiff_t>(pos));
        expect_same(d, v);
      }
      {  // count copies, crossing the inline boundary
        Dims d(base);
        Vec v = base;
        d.insert(d.begin() + pos, K, 9);
        v.insert(v.begin() + pos, K, 9);
        expect_same(d, v);
      }
      {  // range from a std::vector and from itself (aliasing)
        Dims d(base);
        Vec v = base;
        Vec extra{11, 12, 13};
        d.insert(d.begin() + pos, extra.begin(), extra.end());
        v.insert(v.begin() + pos, extra.begin(), extra.end());
        expect_same(d, v);
        Vec v2 = v;
        d.insert(d.begin() + pos, d.begin(), d.end());
        v.insert(v.begin() + pos, v2.begin(), v2.end());
        expect_same(d, v);
      }
      {  // initializer list
        Dims d(base);
        Vec v = base;
        d.insert(d.begin() + pos, {21, 22});
        v.insert(v.begin() + pos, {21, 22});
        expect_same(d, v);
      }
      if (pos < n) {  // erase one, and every range starting here
        Dims d(base);
        Vec v = base;
        auto it = d.erase(d.begin() + pos);
        v.erase(v.begin() + pos);
        EXPECT_EQ(it - d.begin(), static_cast<ptrdiff_t>(pos));
        expect_same(d, v);
        for (size_t end = pos; end <= n; ++end) {
          Dims e(base);
          Vec w = base;
          e.erase(e.begin() + pos, e.begin() + end);
          w.erase(w.begin() + pos, w.begin() + end);
          expect_same(e, w);
        }
      }
    }
  }
}

TEST(Dims, AssignResizeAt) {
  Dims d{1, 2, 3};
  d.assign(K + 3, 4);
  expect_same(d, Vec(K + 3, 4));
  d.assign({7, 8});
  expect_same(d, Vec{7, 8});
  Vec src = iota_vec(K + 1);
  d.assign(src.begin(), src.end());
  expect_same(d, src);
  d.resize(2);
  expect_same(d, Vec{1, 8});
  d.resize(4);
  expect_same(d, Vec{1, 8, 0, 0});
  EXPECT_EQ(d.at(1), 8);
  EXPECT_THROW(d.at(4), std::out_of_range);
  EXPECT_EQ(d.front(), 1);
  EXPECT_EQ(d.back(), 0);
  d.emplace_back(6) += 1;
  EXPECT_EQ(d.back(), 7);
  d = {3, 2};
  expect_same(d, Vec{3, 2});
}

TEST(Dims, ComparisonsMatchVector) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> len(0, int(K) + 3), val(-2, 2);
  for (int t = 0; t < 500; ++t) {
    Vec a(len(rng)), b(len(rng));
    for (auto& x : a) x = val(rng);
    for (auto& x : b) x = val(rng);
    if (t % 5 == 0) b = a;
    Dims da(a), db(b);
    EXPECT_EQ(da == db, a == b);
    EXPECT_EQ(da != db, a != b);
    EXPECT_EQ(da < db, a < b);
    EXPECT_EQ(da <= db, a <= b);
    EXPECT_EQ(da > db, a > b);
    // mixed with std::vector on either side
    EXPECT_EQ(da == b, a == b);
    EXPECT_EQ(a == db, a == b);
    EXPECT_EQ(da != b, a != b);
    EXPECT_EQ(da < b, a < b);
    EXPECT_EQ(a < db, a < b);
    if (a == b) {
      EXPECT_EQ(da.hash(), db.hash());
    }
  }
}

TEST(Dims, HashDistinguishesShapes) {
  std::unordered_set<Dims> seen;
  seen.insert(Dims{});
  seen.insert(Dims{0});
  seen.insert(Dims{0, 0});
  seen.insert(Dims{2, 3});
  seen.insert(Dims{3, 2});
  seen.insert(Dims{2, 3});
  seen.insert(Dims(iota_vec(K + 2)));
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_TRUE(seen.count(Dims(iota_vec(K + 2))));
  const Dims d23{2, 3};
  EXPECT_EQ(std::hash<Dims>()(d23), d23.hash());
}

TEST(Dims, ShapeHelpersKeepTheirContracts) {
  EXPECT_EQ(shape_str(Shape{}), "()");
  EXPECT_EQ(shape_str(Shape{4}), "(4,)");
  EXPECT_EQ(shape_str(Shape{2, 3}), "(2, 3)");
  EXPECT_EQ(contiguous_strides(Shape{2, 3, 4}), (Strides{12, 4, 1}));
  Shape big(K + 2, 2);
  Strides cs = contiguous_strides(big);
  ASSERT_EQ(cs.size(), K + 2);
  EXPECT_EQ(cs.back(), 1);
  EXPECT_EQ(cs.front(), int64_t{1} << (K + 1));
  EXPECT_EQ(broadcast_shapes(Shape{3, 1}, Shape{1, 4}, "test"), (Shape{3, 4}));
  EXPECT_EQ(broadcast_strides(Shape{3, 1}, Strides{1, 1}, Shape{2, 3, 4}), (Strides{0, 1, 0}));
  EXPECT_EQ(numel(Shape{}), 1);
  EXPECT_EQ(checked_numel(Shape{2, 0, 5}), 0);
}

TEST(Dims, ArrayCopiesKeepShapes) {
  Array a = Array::empty(Shape{2, 3, 4, 5, 6, 7, 2}, DType::Float32);  // rank above kInline
  Array b = a;
  EXPECT_EQ(b.shape, a.shape);
  EXPECT_EQ(b.strides, a.strides);
  Array c = Array::empty(Shape{5}, DType::Float32);
  c = b;
  EXPECT_EQ(c.shape, (Shape{2, 3, 4, 5, 6, 7, 2}));
  // sizeof(Dims) is one cache line: a pointer, size, capacity and kInline dims.
  EXPECT_EQ(sizeof(Dims), 16 + K * sizeof(int64_t));
}

}  // namespace
}  // namespace nef
