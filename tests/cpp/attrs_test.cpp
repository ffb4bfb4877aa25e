// ir::Attrs: copy-on-write sharing, the kept hash (equal contents hash equal, whatever the order
// of writes), equality that matches the canonical text (floats bitwise), and interning (equal
// attributes alive at the same time share one identity, different ones never do).
#include "nef/attrs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "nef/error.h"

namespace nef::ir {
namespace {

using Entries = std::vector<Attrs::Entry>;

// A random attribute value of a random type (small ranges, so that collisions of values happen).
AttrValue random_value(std::mt19937& rng) {
  switch (rng() % 6) {
    case 0:
      return int64_t(rng() % 5) - 2;
    case 1:
      return double(int(rng() % 5) - 2) / 2;
    case 2:
      return bool(rng() % 2);
    case 3:
      return std::string(rng() % 3, char('a' + rng() % 2));
    case 4: {
      std::vector<int64_t> v(rng() % 3);
      for (auto& x : v) x = int64_t(rng() % 3);
      return v;
    }
    default: {
      std::vector<double> v(rng() % 3);
      for (auto& x : v) x = double(rng() % 3) / 4;
      return v;
    }
  }
}

TEST(Attrs, CopiesShareUntilWritten) {
  Attrs a;
  a.set("axis", int64_t{1});
  a.set("shape", std::vector<int64_t>{2, 3});
  Attrs b = a;
  EXPECT_EQ(a.identity(), b.identity());  // one body
  b.set("axis", int64_t{0});              // copy on write: a is untouched
  EXPECT_NE(a.identity(), b.identity());
  EXPECT_EQ(a.get_int("axis"), 1);
  EXPECT_EQ(b.get_int("axis"), 0);
  EXPECT_EQ(b.get_ints("shape"), (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(a == b);
  b.set("axis", int64_t{1});
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.hash(), b.hash());
  Attrs c = a;
  c.erase("shape");
  EXPECT_TRUE(a.has("shape"));
  EXPECT_FALSE(c.has("shape"));
  c.erase("missing");  // no-op
  EXPECT_EQ(c.values().size(), 1u);
}

TEST(Attrs, EntriesAreSortedAndGettersCheckTypes) {
  Attrs a(Entries{{"shape", std::vector<int64_t>{4}}, {"dtype", std::string("float32")}});
  ASSERT_EQ(a.values().size(), 2u);
  EXPECT_EQ(a.values()[0].first, "dtype");
  EXPECT_EQ(a.canonical(), "dtype=\"float32\",shape=[4]");
  EXPECT_THROW(a.get_int("dtype"), ValidationError);
  EXPECT_THROW(a.get_int("nope"), ValidationError);
  EXPECT_EQ(a.find("nope"), nullptr);
  Attrs twice(Entries{{"k", int64_t{1}}, {"k", int64_t{2}}});  // the last value wins
  EXPECT_EQ(twice.get_int("k"), 2);
  EXPECT_EQ(twice.values().size(), 1u);
  EXPECT_TRUE(Attrs(Entries{}).empty());
  EXPECT_TRUE(Attrs(Entries{}) == Attrs());
  EXPECT_EQ(Attrs().hash(), 0u);
}

// Any sequence of writes that ends with the same contents gives equal Attrs with equal hashes
// and canonical text; different final contents give unequal Attrs (and, here, unequal hashes).
TEST(Attrs, HashAndEqualityFollowTheContents) {
  for (unsigned seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    const char* names[] = {"a", "axis", "b", "shape", "value"};
    Attrs x, y;
    std::map<std::string, AttrValue> want_x, want_y;
    for (int k = int(rng() % 6); k > 0; --k) {
      std::string n = names[rng() % 5];
      AttrValue v = random_value(rng);
      x.set(n, v);
      want_x[n] = v;
      if (rng() % 4 == 0) {
        std::string e = names[rng() % 5];
        x.erase(e);
        want_x.erase(e);
      }
    }
    // y: the same final contents written in another order, or one differing entry.
    Entries e(want_x.begin(), want_x.end());
    std::shuffle(e.begin(), e.end(), rng);
    const bool differ = rng() % 2;
    if (differ) {
      if (e.empty() || rng() % 3 == 0) e.emplace_back("extra", int64_t{7});
      else e[rng() % e.size()].second = std::string("changed");
    }
    for (const auto& [n, v] : e) {
      y.set(n, v);
      want_y[n] = v;
    }
    Attrs z(e);  // all at once
    EXPECT_TRUE(y == z);
    EXPECT_EQ(y.hash(), z.hash());
    EXPECT_EQ(y.canonical(), z.canonical());
    EXPECT_EQ(x == y, !differ);
    EXPECT_EQ(x.canonical() == y.canonical(), !differ);
    if (!differ) EXPECT_EQ(x.hash(), y.hash());
    else EXPECT_NE(x.hash(), y.hash());  // a 64-bit hash: a collision here would be a bug
  }
}

TEST(Attrs, FloatsCompareBitwiseLikeTheirText) {
  Attrs p, n, q;
  p.set("value", 0.0);
  n.set("value", -0.0);
  EXPECT_FALSE(p == n);  // -0.0 is another constant (1/x differs)
  EXPECT_NE(p.canonical(), n.canonical());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  p.set("value", nan);
  q.set("value", nan);
  EXPECT_TRUE(p == q);  // the same NaN: the same attribute
  EXPECT_EQ(p.hash(), q.hash());
  Attrs i, f;
  i.set("value", int64_t{2});
  f.set("value", 2.0);
  EXPECT_FALSE(i == f);  // another type (check_and_infer normalizes before comparing)
  Attrs fs1, fs2;
  fs1.set("v", std::vector<double>{0.0, 1.0});
  fs2.set("v", std::vector<double>{-0.0, 1.0});
  EXPECT_FALSE(fs1 == fs2);
}

TEST(Attrs, InterningSharesIdentityOfEqualContentsOnly) {
  Attrs a(Entries{{"axis", int64_t{1}}, {"keepdims", true}});
  Attrs b;
  b.set("keepdims", true);
  b.set("axis", int64_t{1});
  Attrs c(Entries{{"axis", int64_t{2}}, {"keepdims", true}});
  Attrs ia = a.interned(), ib = b.interned(), ic = c.interned();
  EXPECT_EQ(ia.identity(), ib.identity());
  EXPECT_NE(ia.identity(), ic.identity());
  EXPECT_TRUE(ia == a);
  EXPECT_EQ(Attrs().interned().identity(), nullptr);
  // Bitwise floats: 0.0 and -0.0 never share an identity.
  Attrs z0(Entries{{"value", 0.0}}), z1(Entries{{"value", -0.0}});
  EXPECT_NE(z0.interned().identity(), z1.interned().identity());
  // A write to an interned copy copies it first: the shared body is not changed under others.
  Attrs w = ib;
  w.set("axis", int64_t{3});
  EXPECT_EQ(ia.get_int("axis"), 1);
  EXPECT_NE(w.interned().identity(), ia.identity());
  // Many short-lived distinct attributes: the table sweeps dead entries and stays correct.
  for (int k = 0; k < 5000; ++k) {
    Attrs t(Entries{{"k", int64_t{k}}});
    EXPECT_EQ(t.interned().get_int("k"), k);
  }
  EXPECT_EQ(a.interned().identity(), ia.identity());  // still alive (held by ia), still shared
}

}  // namespace
}  // namespace nef::ir
