// ir::Node's compact members: Note (placement reasons) and Boxed (a constant's value).
#include <gtest/gtest.h>

#include <sstream>

#include "ir/graph.h"

namespace nef::ir {
namespace {

TEST(IrNote, LiteralIsHeldByAddress) {
  static constexpr char kText[] = "the only device that supports it";
  Note n = kText;
  EXPECT_EQ(n.view().data(), kText);  // not copied
  EXPECT_EQ(n, "the only device that supports it");
  Note copy = n;
  EXPECT_EQ(copy.view().data(), kText);
  EXPECT_FALSE(n.empty());
  n.clear();
  EXPECT_TRUE(n.empty());
  EXPECT_EQ(copy.view(), kText);
}

TEST(IrNote, OtherTextIsOwnedAndShared) {
  Note a;
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.view(), "");
  {
    std::string text = std::string("earliest finish (") + "cpu 1 ms" + ")";
    a = text;
    text.assign(text.size(), 'x');  // the note holds its own copy
  }
  EXPECT_EQ(a, "earliest finish (cpu 1 ms)");
  Note b = a;  // a copy shares the text
  EXPECT_EQ(b.view().data(), a.view().data());
  Note c = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(c, "earliest finish (cpu 1 ms)");
  EXPECT_EQ(c.find("cpu"), size_t(17));
  std::ostringstream os;
  os << "(" << c << ")";
  EXPECT_EQ(os.str(), "(earliest finish (cpu 1 ms))");
  EXPECT_EQ(c.str(), "earliest finish (cpu 1 ms)");
  Note empty_text = std::string();
  EXPECT_TRUE(empty_text.empty());
}

TEST(IrBoxed, OptionalInterfaceWithDeepCopies) {
  Boxed b;
  EXPECT_FALSE(b);
  EXPECT_FALSE(b.has_value());
  Array a = Array::empty({2, 3}, DType::Float32);
  b = a;
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->shape, (Shape{2, 3}));
  EXPECT_EQ((*b).storage, a.storage);
  Boxed c = b;  // deep: its own Array, the same storage
  c->shape = {3, 2};
  EXPECT_EQ(b->shape, (Shape{2, 3}));
  EXPECT_EQ(c->storage, b->storage);
  Boxed d = std::move(c);
  EXPECT_EQ(d->shape, (Shape{3, 2}));
  b = std::nullopt;
  EXPECT_FALSE(b);
  b = std::optional<Array>(Array::empty({1}, DType::Int32));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->dtype, DType::Int32);
  b = std::optional<Array>();
  EXPECT_FALSE(b);
  d.reset();
  EXPECT_FALSE(d.has_value());
  Boxed self = Array::empty({4}, DType::Float32);
  const Boxed& alias = self;
  self = alias;  // self-assignment keeps the value
  ASSERT_TRUE(self);
  EXPECT_EQ(self->shape, (Shape{4}));
}

}  // namespace
}  // namespace nef::ir
