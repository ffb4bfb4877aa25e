// Layout ops (reshape, transpose, slice, broadcast_to, expand_dims, squeeze, concat, gather):
// inference, attribute canonicalization, errors, and CPU kernel values checked against index
// arithmetic written here. Views must share the input's storage.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "test_util.h"

namespace nef {
namespace {

using test::element;
using test::random_array;
using test::run_kernel;
using test::to_doubles;
using Ints = std::vector<int64_t>;

std::mt19937_64 make_rng(uint64_t seed) {
  std::printf("[layout test] seed %llu\n", static_cast<unsigned long long>(seed));
  return std::mt19937_64(seed);
}

ir::Attrs attrs1(const std::string& k, ir::AttrValue v) {
  ir::Attrs a;
  a.set(k, std::move(v));
  return a;
}

ir::Attrs slice_attrs(Ints starts, Ints stops, Ints steps) {
  ir::Attrs a;
  a.set("starts", std::move(starts));
  a.set("stops", std::move(stops));
  a.set("steps", std::move(steps));
  return a;
}

// Row-major flat index of a multi-index in `shape`.
int64_t flat_of(const Ints& idx, const Shape& shape) {
  int64_t f = 0;
  for (size_t d = 0; d < shape.size(); ++d) f = f * shape[d] + idx[d];
  return f;
}
// Multi-index of a row-major flat index.
Ints unravel(int64_t flat, const Shape& shape) {
  Ints idx(shape.size());
  for (int d = int(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

// Runs inference only (with full attribute checks) and returns the type.
ir::TensorType infer(const std::string& op, const std::vector<ir::TensorType>& in, ir::Attrs& a) {
  return ir::check_and_infer(ir::get_op(op), in, a);
}

// Expects `fn` to throw E with a message starting with "[op]" and containing `needle`.
template <typename E, typename Fn>
void expect_error(Fn&& fn, const std::string& op, const std::string& needle = "") {
  try {
    fn();
    ADD_FAILURE() << "expected an exception for [" << op << "]";
  } catch (const E& e) {
    std::string m = e.what();
    EXPECT_EQ(m.rfind("[" + op + "]", 0), 0u) << m;
    if (!needle.empty()) {
      EXPECT_NE(m.find(needle), std::string::npos) << m;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type for [" << op << "]: " << e.what();
  }
}

bool same_storage(const Array& a, const Array& b) { return a.storage.get() == b.storage.get(); }

// ------------------------------------------------------------------------------------------
TEST(LayoutReshape, ContiguousIsZeroCopyView) {
  auto rng = make_rng(101);
  Array x = random_array({2, 3, 5}, DType::Float32, rng);
  Array y = run_kernel("reshape", {x}, attrs1("shape", Ints{5, -1}));
  EXPECT_EQ(y.shape, (Shape{5, 6}));
  EXPECT_TRUE(same_storage(x, y));
  EXPECT_EQ(y.data(), x.data());
  EXPECT_EQ(to_doubles(y), to_doubles(x));
}

TEST(LayoutReshape, CanonicalizesMinusOneIdempotently) {
  ir::Attrs a = attrs1("shape", Ints{-1, 4});
  auto t = infer("reshape", {{{2, 3, 4}, DType::Int8}}, a);
  EXPECT_EQ(t.shape, (Shape{6, 4}));
  EXPECT_EQ(t.dtype, DType::Int8);
  EXPECT_EQ(a.get_ints("shape"), (Ints{6, 4}));
  ir::Attrs b = a;
  EXPECT_EQ(infer("reshape", {{{2, 3, 4}, DType::Int8}}, b), t);
  EXPECT_EQ(a, b);
}

TEST(LayoutReshape, StridedButViewableStaysAView) {
  auto rng = make_rng(102);
  Array x = random_array({6, 4, 5}, DType::Float64, rng);
  Array s = run_kernel("slice", {x}, slice_attrs({0, 0, 0}, {6, 4, 5}, {2, 1, 1}));  // (3,4,5)
  Array y = run_kernel("reshape", {s}, attrs1("shape", Ints{3, 2, 10}));
  EXPECT_TRUE(same_storage(x, y));
  ASSERT_EQ(y.shape, (Shape{3, 2, 10}));
  for (int64_t i = 0; i < y.numel(); ++i) {
    Ints id = unravel(i, {3, 20});
    EXPECT_EQ(element(y, i), element(x, flat_of({2 * id[0], id[1] / 5, id[1] % 5}, x.shape)));
  }
}

TEST(LayoutReshape, NonViewableCopies) {
  auto rng = make_rng(103);
  Array x = random_array({3, 4}, DType::Int32, rng, -100, 100);
  Array t = run_kernel("transpose", {x});  // (4, 3), strides (1, 4)
  Array y = run_kernel("reshape", {t}, attrs1("shape", Ints{12}));
  EXPECT_FALSE(same_storage(x, y));
  ASSERT_EQ(y.shape, (Shape{12}));
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(element(y, i), element(x, (i % 3) * 4 + i / 3));
}

TEST(LayoutReshape, ScalarsOnesAndZeroSize) {
  auto rng = make_rng(104);
  Array s = random_array({}, DType::Float32, rng);
  Array a = run_kernel("reshape", {s}, attrs1("shape", Ints{1, 1, -1}));
  EXPECT_EQ(a.shape, (Shape{1, 1, 1}));
  Array b = run_kernel("reshape", {a}, attrs1("shape", Ints{}));
  EXPECT_EQ(b.shape, Shape{});
  EXPECT_EQ(element(b, 0), element(s, 0));
  Array z = Array::empty({0, 3}, DType::Float32);
  Array zz = run_kernel("reshape", {z}, attrs1("shape", Ints{1, -1, 3}));
  EXPECT_EQ(zz.shape, (Shape{1, 0, 3}));
  EXPECT_EQ(run_kernel("reshape", {z}, attrs1("shape", Ints{3, 0})).shape, (Shape{3, 0}));
}

TEST(LayoutReshape, Errors) {
  Array x = Array::empty({2, 3}, DType::Float32);
  expect_error<ShapeError>([&] { run_kernel("reshape", {x}, attrs1("shape", Ints{4, -1})); },
                           "reshape", "cannot reshape (2, 3) into (4, -1)");
  expect_error<ShapeError>([&] { run_kernel("reshape", {x}, attrs1("shape", Ints{7})); },
                           "reshape");
  expect_error<ValidationError>([&] { run_kernel("reshape", {x}, attrs1("shape", Ints{-1, -1})); },
                                "reshape");
  expect_error<ValidationError>([&] { run_kernel("reshape", {x}, attrs1("shape", Ints{-2, -3})); },
                                "reshape");
  Array z = Array::empty({0, 3}, DType::Float32);
  expect_error<ShapeError>([&] { run_kernel("reshape", {z}, attrs1("shape", Ints{0, -1})); },
                           "reshape");
  expect_error<ShapeError>(
      [&] { run_kernel("reshape", {x}, attrs1("shape", Ints{int64_t(1) << 40, int64_t(1) << 40})); },
      "reshape");
  expect_error<ValidationError>([&] { run_kernel("reshape", {x}); }, "reshape");  // missing attr
}

// ------------------------------------------------------------------------------------------
TEST(LayoutTranspose, PermutedIndexArithmetic) {
  auto rng = make_rng(201);
  Array x = random_array({3, 5, 7}, DType::Float32, rng);
  for (Ints perm : {Ints{2, 0, 1}, Ints{-1, 0, -2}, Ints{0, 1, 2}, Ints{1, 2, 0}}) {
    ir::Attrs a = attrs1("perm", perm);
    Array y = run_kernel("transpose", {x}, a);
    EXPECT_TRUE(same_storage(x, y));
    Ints p(3);
    for (int d = 0; d < 3; ++d) p[d] = perm[d] < 0 ? perm[d] + 3 : perm[d];
    for (int d = 0; d < 3; ++d) EXPECT_EQ(y.shape[d], x.shape[p[d]]);
    for (int64_t f = 0; f < y.numel(); ++f) {
      Ints yi = unravel(f, y.shape);
      Ints xi(3);
      for (int d = 0; d < 3; ++d) xi[p[d]] = yi[d];
      ASSERT_EQ(element(y, f), element(x, flat_of(xi, x.shape)));
    }
  }
}

TEST(LayoutTranspose, DefaultReversedAndCanonical) {
  ir::Attrs a;
  auto t = infer("transpose", {{{2, 3, 4, 5}, DType::Float16}}, a);
  EXPECT_EQ(t.shape, (Shape{5, 4, 3, 2}));
  EXPECT_EQ(a.get_ints("perm"), (Ints{3, 2, 1, 0}));
  ir::Attrs b = attrs1("perm", Ints{-1, 0, 1, 2});
  infer("transpose", {{{2, 3, 4, 5}, DType::Float16}}, b);
  EXPECT_EQ(b.get_ints("perm"), (Ints{3, 0, 1, 2}));
  ir::Attrs c = b;
  infer("transpose", {{{2, 3, 4, 5}, DType::Float16}}, c);
  EXPECT_EQ(b, c);
  // rank 0 and zero-size dims
  Array s = Array::empty({}, DType::Int64);
  s.data_as<int64_t>()[0] = 42;
  Array st = run_kernel("transpose", {s});
  EXPECT_EQ(st.shape, Shape{});
  EXPECT_EQ(element(st, 0), 42);
  Array z = run_kernel("transpose", {Array::empty({0, 4}, DType::Bool)});
  EXPECT_EQ(z.shape, (Shape{4, 0}));
}

TEST(LayoutTranspose, Errors) {
  Array x = Array::empty({2, 3, 4}, DType::Float32);
  expect_error<ValidationError>([&] { run_kernel("transpose", {x}, attrs1("perm", Ints{0, 0, 1})); },
                                "transpose");
  expect_error<ValidationError>([&] { run_kernel("transpose", {x}, attrs1("perm", Ints{1, 0})); },
                                "transpose");
  expect_error<ShapeError>([&] { run_kernel("transpose", {x}, attrs1("perm", Ints{0, 1, 3})); },
                           "transpose");
  expect_error<ValidationError>(
      [&] { run_kernel("transpose", {x}, attrs1("perm", std::string("nope"))); }, "transpose");
}

// ------------------------------------------------------------------------------------------
// Expected indices of Python's list(range(7))[slice] for each case (checked with CPython).
struct SliceCase {
  int64_t start, stop, step;
  Ints expect;
};
const std::vector<SliceCase> kSlices7 = {
    {5, -1, -2, {5, 3, 1}},                // slice(5, -8, -2).indices(7)
    {6, -1, -1, {6, 5, 4, 3, 2, 1, 0}},    // [::-1] as normalized by the frontend
    {-3, 7, 1, {4, 5, 6}},                 // raw negative start
    {1, 100, 3, {1, 4}},                   // stop clamped
    {-100, 3, 1, {0, 1, 2}},               // start clamped
    {2, 2, 1, {}},                         // empty
    {10, -10, -3, {6, 3, 0}},              // raw out-of-range bounds, negative step
    {-1, -1, -2, {6, 4, 2, 0}},            // [-1::-2]
    {3, 1, 1, {}},                         // empty, stop before start
    {0, 7, 2, {0, 2, 4, 6}},
};

TEST(LayoutSlice, OneDimCasesMatchPython) {
  auto rng = make_rng(301);
  Array x = random_array({7}, DType::Float64, rng);
  for (const SliceCase& c : kSlices7) {
    SCOPED_TRACE(str("slice(", c.start, ", ", c.stop, ", ", c.step, ")"));
    Array y = run_kernel("slice", {x}, slice_attrs({c.start}, {c.stop}, {c.step}));
    ASSERT_EQ(y.shape, (Shape{int64_t(c.expect.size())}));
    EXPECT_TRUE(same_storage(x, y));
    for (size_t i = 0; i < c.expect.size(); ++i) EXPECT_EQ(element(y, i), element(x, c.expect[i]));
  }
}

TEST(LayoutSlice, TwoDimAndComposedViews) {
  auto rng = make_rng(302);
  Array x = random_array({7, 7}, DType::Int32, rng, -1000, 1000);
  for (size_t a = 0; a < kSlices7.size(); a += 2) {
    for (size_t b = 1; b < kSlices7.size(); b += 3) {
      const SliceCase &ca = kSlices7[a], &cb = kSlices7[b];
      Array y = run_kernel("slice", {x}, slice_attrs({ca.start, cb.start}, {ca.stop, cb.stop},
                                                     {ca.step, cb.step}));
      ASSERT_EQ(y.shape, (Shape{int64_t(ca.expect.size()), int64_t(cb.expect.size())}));
      for (size_t i = 0; i < ca.expect.size(); ++i)
        for (size_t j = 0; j < cb.expect.size(); ++j)
          ASSERT_EQ(element(y, i * cb.expect.size() + j), element(x, ca.expect[i] * 7 + cb.expect[j]));
    }
  }
  // Reverse of a reverse with a step: rows 6,4,2,0 then reversed again -> 0,2,4,6; cols 1..5.
  Array r = run_kernel("slice", {x}, slice_attrs({6, 1}, {-1, 6}, {-2, 1}));
  Array rr = run_kernel("slice", {r}, slice_attrs({3, 0}, {-1, 5}, {-1, 1}));
  ASSERT_EQ(rr.shape, (Shape{4, 5}));
  EXPECT_TRUE(same_storage(x, rr));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 5; ++j) EXPECT_EQ(element(rr, i * 5 + j), element(x, 2 * i * 7 + 1 + j));
}

TEST(LayoutSlice, CanonicalAttrsAreIdempotent) {
  ir::Attrs a = slice_attrs({10, -3, 0}, {-10, 100, 0}, {-3, 1, 1});
  auto t = infer("slice", {{{7, 7, 0}, DType::Float32}}, a);
  EXPECT_EQ(t.shape, (Shape{3, 3, 0}));
  EXPECT_EQ(a.get_ints("starts"), (Ints{6, 4, 0}));
  EXPECT_EQ(a.get_ints("stops"), (Ints{-1, 7, 0}));
  ir::Attrs b = a;
  EXPECT_EQ(infer("slice", {{{7, 7, 0}, DType::Float32}}, b), t);
  EXPECT_EQ(a, b);
  // Zero-length dim: a reversed slice of an empty dim stays empty; rank 0 takes empty lists.
  Array z = run_kernel("slice", {Array::empty({0, 3}, DType::Float32)},
                       slice_attrs({-1, 0}, {-1, 3}, {-1, 1}));
  EXPECT_EQ(z.shape, (Shape{0, 3}));
  Array s = run_kernel("slice", {Array::empty({}, DType::UInt8)}, slice_attrs({}, {}, {}));
  EXPECT_EQ(s.shape, Shape{});
}

TEST(LayoutSlice, Errors) {
  Array x = Array::empty({4, 5}, DType::Float32);
  expect_error<ValidationError>(
      [&] { run_kernel("slice", {x}, slice_attrs({0, 0}, {4, 5}, {1, 0})); }, "slice", "zero");
  expect_error<ValidationError>(
      [&] { run_kernel("slice", {x}, slice_attrs({0}, {4, 5}, {1, 1})); }, "slice", "(4, 5)");
  expect_error<ValidationError>(
      [&] { run_kernel("slice", {x}, slice_attrs({0, 0, 0}, {4, 5, 1}, {1, 1, 1})); }, "slice");
  ir::Attrs missing;
  missing.set("starts", Ints{0, 0});
  expect_error<ValidationError>([&] { run_kernel("slice", {x}, missing); }, "slice");
}

// ------------------------------------------------------------------------------------------
TEST(LayoutBroadcastTo, StrideZeroView) {
  auto rng = make_rng(401);
  Array x = random_array({3, 1}, DType::BFloat16, rng);
  Array y = run_kernel("broadcast_to", {x}, attrs1("shape", Ints{2, 3, 4}));
  ASSERT_EQ(y.shape, (Shape{2, 3, 4}));
  EXPECT_TRUE(same_storage(x, y));
  EXPECT_EQ(y.strides[0], 0);
  EXPECT_EQ(y.strides[2], 0);
  for (int64_t f = 0; f < y.numel(); ++f) EXPECT_EQ(element(y, f), element(x, unravel(f, y.shape)[1]));
  Array s = random_array({}, DType::Int8, rng, -5, 5);
  Array ys = run_kernel("broadcast_to", {s}, attrs1("shape", Ints{2, 2}));
  for (int64_t f = 0; f < 4; ++f) EXPECT_EQ(element(ys, f), element(s, 0));
  Array z = run_kernel("broadcast_to", {Array::empty({1, 3}, DType::Float32)},
                       attrs1("shape", Ints{0, 3}));
  EXPECT_EQ(z.shape, (Shape{0, 3}));
}

TEST(LayoutBroadcastTo, Errors) {
  Array x = Array::empty({2, 3}, DType::Float32);
  expect_error<ShapeError>([&] { run_kernel("broadcast_to", {x}, attrs1("shape", Ints{4, 3})); },
                           "broadcast_to", "(2, 3)");
  expect_error<ShapeError>([&] { run_kernel("broadcast_to", {x}, attrs1("shape", Ints{3})); },
                           "broadcast_to");
  expect_error<ValidationError>(
      [&] { run_kernel("broadcast_to", {x}, attrs1("shape", Ints{-1, 3})); }, "broadcast_to");
  expect_error<ShapeError>(
      [&] { run_kernel("broadcast_to", {x}, attrs1("shape", Ints(17, 1))); }, "broadcast_to");
}

// ------------------------------------------------------------------------------------------
TEST(LayoutExpandSqueeze, ExpandDims) {
  auto rng = make_rng(501);
  Array x = random_array({2, 3}, DType::Float32, rng);
  ir::Attrs a = attrs1("axes", Ints{-1, 0});
  Array y = run_kernel("expand_dims", {x}, a);
  EXPECT_EQ(y.shape, (Shape{1, 2, 3, 1}));
  EXPECT_TRUE(same_storage(x, y));
  EXPECT_EQ(to_doubles(y), to_doubles(x));
  ir::Attrs b = attrs1("axes", Ints{-1, 0});
  infer("expand_dims", {{{2, 3}, DType::Float32}}, b);
  EXPECT_EQ(b.get_ints("axes"), (Ints{0, 3}));
  ir::Attrs c = attrs1("axes", Ints{1, 3});
  EXPECT_EQ(infer("expand_dims", {{{2, 3}, DType::Float32}}, c).shape, (Shape{2, 1, 3, 1}));
  Array s = run_kernel("expand_dims", {random_array({}, DType::Int64, rng)}, attrs1("axes", Ints{0}));
  EXPECT_EQ(s.shape, (Shape{1}));
  // Views of views: expand a transposed array and check values by index.
  Array t = run_kernel("transpose", {x});  // (3, 2)
  Array te = run_kernel("expand_dims", {t}, attrs1("axes", Ints{1}));
  ASSERT_EQ(te.shape, (Shape{3, 1, 2}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 2; ++j) EXPECT_EQ(element(te, i * 2 + j), element(x, j * 3 + i));
}

TEST(LayoutExpandSqueeze, Squeeze) {
  auto rng = make_rng(502);
  Array x = random_array({1, 3, 1, 2}, DType::UInt8, rng, 0, 255);
  ir::Attrs a;
  Array y = run_kernel("squeeze", {x}, a);
  EXPECT_EQ(y.shape, (Shape{3, 2}));
  EXPECT_TRUE(same_storage(x, y));
  EXPECT_EQ(to_doubles(y), to_doubles(x));
  Array y2 = run_kernel("squeeze", {x}, attrs1("axes", Ints{-2}));
  EXPECT_EQ(y2.shape, (Shape{1, 3, 2}));
  ir::Attrs b;
  infer("squeeze", {{{1, 3, 1, 2}, DType::UInt8}}, b);
  EXPECT_EQ(b.get_ints("axes"), (Ints{0, 2}));
  ir::Attrs c = b;
  infer("squeeze", {{{1, 3, 1, 2}, DType::UInt8}}, c);
  EXPECT_EQ(b, c);
  Array s = run_kernel("squeeze", {Array::empty({1, 1}, DType::Float32)});
  EXPECT_EQ(s.shape, Shape{});
  Array z = run_kernel("squeeze", {Array::empty({0, 1}, DType::Float32)});
  EXPECT_EQ(z.shape, (Shape{0}));
}

TEST(LayoutExpandSqueeze, Errors) {
  Array x = Array::empty({1, 3}, DType::Float32);
  expect_error<ShapeError>([&] { run_kernel("squeeze", {x}, attrs1("axes", Ints{1})); }, "squeeze",
                           "(1, 3)");
  expect_error<ShapeError>([&] { run_kernel("squeeze", {x}, attrs1("axes", Ints{2})); }, "squeeze");
  expect_error<ValidationError>([&] { run_kernel("squeeze", {x}, attrs1("axes", Ints{0, -2})); },
                                "squeeze");
  expect_error<ValidationError>(
      [&] { run_kernel("expand_dims", {x}, attrs1("axes", Ints{0, 0})); }, "expand_dims");
  expect_error<ShapeError>([&] { run_kernel("expand_dims", {x}, attrs1("axes", Ints{3})); },
                           "expand_dims");
  expect_error<ShapeError>(
      [&] { run_kernel("expand_dims", {x}, attrs1("axes", Ints{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                            11, 12, 13, 14})); },
      "expand_dims");
  expect_error<ValidationError>([&] { run_kernel("expand_dims", {x}); }, "expand_dims");
}

// ------------------------------------------------------------------------------------------
// Reference concat: output element at (..., k, ...) comes from the input whose range holds k.
void check_concat(const std::vector<Array>& ins, int axis, const Array& out) {
  int64_t pos = 0;
  std::vector<int64_t> starts;
  for (const Array& a : ins) {
    starts.push_back(pos);
    pos += a.shape[axis];
  }
  ASSERT_EQ(out.shape[axis], pos);
  for (int64_t f = 0; f < out.numel(); ++f) {
    Ints oi = unravel(f, out.shape);
    size_t k = 0;
    while (k + 1 < ins.size() && oi[axis] >= starts[k + 1]) ++k;
    Ints ii = oi;
    ii[axis] -= starts[k];
    double want = element(ins[k], flat_of(ii, ins[k].shape));
    // Converted through the output dtype (exact for these values: small ints or same dtype).
    ASSERT_EQ(element(out, f), want) << "flat " << f;
  }
}

TEST(LayoutConcat, SameDtypeOddSizesAndAxes) {
  auto rng = make_rng(601);
  std::vector<Array> ins = {random_array({3, 2, 5}, DType::Float32, rng),
                            random_array({3, 7, 5}, DType::Float32, rng),
                            random_array({3, 1, 5}, DType::Float32, rng)};
  ir::Attrs a = attrs1("axis", int64_t{-2});
  Array out = run_kernel("concat", ins, a);
  EXPECT_EQ(out.shape, (Shape{3, 10, 5}));
  check_concat(ins, 1, out);
  std::vector<Array> ins0 = {random_array({1, 4}, DType::Int64, rng, -1e6, 1e6),
                             random_array({5, 4}, DType::Int64, rng, -1e6, 1e6)};
  check_concat(ins0, 0, run_kernel("concat", ins0));
  std::vector<Array> one = {random_array({4, 3}, DType::Int8, rng, -100, 100)};
  check_concat(one, 1, run_kernel("concat", one, attrs1("axis", int64_t{1})));
}

TEST(LayoutConcat, MixedDtypesPromote) {
  auto rng = make_rng(602);
  std::vector<Array> ins = {random_array({2, 3}, DType::Int32, rng, -50, 50),
                            random_array({2, 1}, DType::Float32, rng),
                            random_array({2, 2}, DType::UInt8, rng, 0, 255),
                            random_array({2, 2}, DType::Bool, rng)};
  Array out = run_kernel("concat", ins, attrs1("axis", int64_t{1}));
  DType want = promote_types(promote_types(promote_types(DType::Int32, DType::Float32),
                                           DType::UInt8), DType::Bool);
  EXPECT_EQ(out.dtype, want);
  EXPECT_EQ(out.shape, (Shape{2, 8}));
  check_concat(ins, 1, out);
  std::vector<Array> halves = {random_array({3}, DType::Float16, rng),
                               random_array({2}, DType::Int8, rng, -100, 100)};
  Array h = run_kernel("concat", halves);
  EXPECT_EQ(h.dtype, promote_types(DType::Float16, DType::Int8));
  check_concat(halves, 0, h);
  std::vector<Array> bools = {random_array({3}, DType::Bool, rng), random_array({4}, DType::Bool, rng)};
  Array b = run_kernel("concat", bools);
  EXPECT_EQ(b.dtype, DType::Bool);
  check_concat(bools, 0, b);
}

TEST(LayoutConcat, StridedInputsZeroSizeAndLarge) {
  auto rng = make_rng(603);
  Array base = random_array({5, 4}, DType::Float64, rng);
  Array t = run_kernel("transpose", {base});                                       // (4, 5)
  Array r = run_kernel("slice", {base}, slice_attrs({4, 3}, {-1, -1}, {-1, -1}));  // (5, 4) reversed
  Array rt = run_kernel("transpose", {r});                                         // (4, 5)
  Array e = Array::empty({4, 0}, DType::Float64);
  Array bc = run_kernel("broadcast_to", {random_array({4, 1}, DType::Float64, rng)},
                        attrs1("shape", Ints{4, 3}));
  std::vector<Array> ins = {t, e, rt, bc};
  Array out = run_kernel("concat", ins, attrs1("axis", int64_t{1}));
  EXPECT_EQ(out.shape, (Shape{4, 13}));
  check_concat(ins, 1, out);
  std::vector<Array> empties = {Array::empty({0, 3}, DType::Float32), Array::empty({0, 3}, DType::Int32)};
  EXPECT_EQ(run_kernel("concat", empties).shape, (Shape{0, 3}));
  // Large enough to take the parallel path.
  std::vector<Array> big = {random_array({301, 257}, DType::Float32, rng),
                            random_array({301, 129}, DType::Float32, rng)};
  check_concat(big, 1, run_kernel("concat", big, attrs1("axis", int64_t{1})));
  std::vector<Array> bigmix = {random_array({700, 100}, DType::Int32, rng, -1000, 1000),
                               random_array({301, 100}, DType::Float64, rng)};
  check_concat(bigmix, 0, run_kernel("concat", bigmix));
}

TEST(LayoutConcat, Errors) {
  Array a = Array::empty({2, 3}, DType::Float32);
  expect_error<ShapeError>([&] { run_kernel("concat", {a, Array::empty({3, 3}, DType::Float32)},
                                            attrs1("axis", int64_t{1})); },
                           "concat", "(2, 3)");
  expect_error<ShapeError>([&] { run_kernel("concat", {a, Array::empty({2, 3, 1}, DType::Float32)}); },
                           "concat");
  expect_error<ShapeError>([&] { run_kernel("concat", {a}, attrs1("axis", int64_t{2})); }, "concat");
  expect_error<ShapeError>(
      [&] { run_kernel("concat", {Array::empty({}, DType::Float32), Array::empty({}, DType::Float32)}); },
      "concat");
  expect_error<ValidationError>([&] { run_kernel("concat", {}); }, "concat");
}

// ------------------------------------------------------------------------------------------
// Reference take: out[pre..., idx..., post...] = x[pre..., wrap(indices[idx...]), post...].
void check_gather(const Array& x, const Array& ind, int axis, const Array& out) {
  Shape xs = x.shape;
  int ir = ind.rank();
  Shape want(xs.begin(), xs.begin() + axis);
  want.insert(want.end(), ind.shape.begin(), ind.shape.end());
  want.insert(want.end(), xs.begin() + axis + 1, xs.end());
  ASSERT_EQ(out.shape, want);
  ASSERT_EQ(out.dtype, x.dtype);
  for (int64_t f = 0; f < out.numel(); ++f) {
    Ints oi = unravel(f, out.shape);
    Ints ii(oi.begin() + axis, oi.begin() + axis + ir);
    int64_t v = int64_t(element(ind, flat_of(ii, ind.shape)));
    if (v < 0) v += xs[axis];
    Ints xi(oi.begin(), oi.begin() + axis);
    xi.push_back(v);
    xi.insert(xi.end(), oi.begin() + axis + ir, oi.end());
    ASSERT_EQ(element(out, f), element(x, flat_of(xi, xs))) << "flat " << f;
  }
}

Array index_array(const Shape& s, DType dt, const Ints& vals) {
  Array a = Array::empty(s, dt);
  for (size_t i = 0; i < vals.size(); ++i) {
    if (dt == DType::Int64) a.data_as<int64_t>()[i] = vals[i];
    else a.data_as<int32_t>()[i] = int32_t(vals[i]);
  }
  return a;
}

TEST(LayoutGather, AxesNegativeIndicesAndDtypes) {
  auto rng = make_rng(701);
  Array x = random_array({5, 4}, DType::Float32, rng);
  Array i64 = index_array({3}, DType::Int64, {0, -1, 3});
  check_gather(x, i64, 0, run_kernel("gather", {x, i64}));
  Array i32 = index_array({2, 2}, DType::Int32, {3, -4, 0, 1});
  check_gather(x, i32, 1, run_kernel("gather", {x, i32}, attrs1("axis", int64_t{-1})));
  Array scalar = index_array({}, DType::Int64, {-2});
  Array s = run_kernel("gather", {x, scalar}, attrs1("axis", int64_t{1}));
  EXPECT_EQ(s.shape, (Shape{5}));
  check_gather(x, scalar, 1, s);
  for (DType dt : {DType::Float16, DType::Bool, DType::Int8, DType::Float64, DType::BFloat16}) {
    Array xd = random_array({3, 4, 2}, dt, rng, -100, 100);
    Array xt = run_kernel("transpose", {xd}, attrs1("perm", Ints{1, 2, 0}));  // non-contiguous
    Array ind = index_array({2, 3}, DType::Int32, {1, 0, -1, 1, 1, 0});
    check_gather(xt, ind, 1, run_kernel("gather", {xt, ind}, attrs1("axis", int64_t{1})));
    check_gather(xt, ind, 0, run_kernel("gather", {xt, ind}));
  }
}

TEST(LayoutGather, EmbeddingLookupAndStridedIndices) {
  auto rng = make_rng(702);
  const int64_t vocab = 50, dim = 16, batch = 3, seq = 7;
  Array table = random_array({vocab, dim}, DType::Float32, rng);
  Array ids = random_array({batch, seq}, DType::Int64, rng, -vocab, vocab - 1);
  Array out = run_kernel("gather", {table, ids});
  EXPECT_EQ(out.shape, (Shape{batch, seq, dim}));
  check_gather(table, ids, 0, out);
  // Indices that are themselves a strided, reversed view.
  Array idv = run_kernel("slice", {ids}, slice_attrs({2, 0}, {-1, 7}, {-1, 2}));
  check_gather(table, idv, 0, run_kernel("gather", {table, idv}));
  // Large: parallel path.
  Array big = random_array({1000, 64}, DType::Float32, rng);
  Array bid = random_array({4096}, DType::Int32, rng, -1000, 999);
  check_gather(big, bid, 0, run_kernel("gather", {big, bid}));
  Array col = random_array({513}, DType::Int64, rng, 0, 63);
  check_gather(big, col, 1, run_kernel("gather", {big, col}, attrs1("axis", int64_t{1})));
}

TEST(LayoutGather, ZeroSize) {
  Array x = Array::empty({4, 3}, DType::Float32);
  Array none = Array::empty({0}, DType::Int64);
  EXPECT_EQ(run_kernel("gather", {x, none}).shape, (Shape{0, 3}));
  Array ex = Array::empty({0, 3}, DType::Float32);
  EXPECT_EQ(run_kernel("gather", {ex, none}).shape, (Shape{0, 3}));
  Array one = index_array({1}, DType::Int64, {0});
  expect_error<ValidationError>([&] { run_kernel("gather", {ex, one}); }, "gather");
  Array zc = Array::empty({4, 0}, DType::Float32);
  EXPECT_EQ(run_kernel("gather", {zc, index_array({2}, DType::Int32, {1, 2})}).shape,
            (Shape{2, 0}));
}

TEST(LayoutGather, Errors) {
  Array x = Array::empty({5, 2}, DType::Float32);
  expect_error<ValidationError>(
      [&] { run_kernel("gather", {x, index_array({3}, DType::Int64, {0, 7, 1})}); }, "gather",
      "[gather] index 7 out of range for axis 0 with size 5");
  expect_error<ValidationError>(
      [&] { run_kernel("gather", {x, index_array({1}, DType::Int32, {-6})}); }, "gather", "-6");
  expect_error<ValidationError>(
      [&] { run_kernel("gather", {x, index_array({1}, DType::Int32, {2})}, attrs1("axis", int64_t{1})); },
      "gather", "axis 1 with size 2");
  expect_error<TypeError>([&] { run_kernel("gather", {x, Array::empty({2}, DType::Float32)}); },
                          "gather");
  expect_error<TypeError>([&] { run_kernel("gather", {x, Array::empty({2}, DType::UInt8)}); },
                          "gather");
  expect_error<ShapeError>(
      [&] { run_kernel("gather", {x, index_array({1}, DType::Int64, {0})}, attrs1("axis", int64_t{2})); },
      "gather");
  expect_error<ShapeError>(
      [&] { run_kernel("gather", {Array::empty({}, DType::Float32), index_array({1}, DType::Int64, {0})}); },
      "gather");
  expect_error<ValidationError>([&] { run_kernel("gather", {x}); }, "gather");
}

TEST(LayoutTraits, ViewsAreMarked) {
  for (const char* op : {"reshape", "transpose", "slice", "broadcast_to", "expand_dims", "squeeze"})
    EXPECT_TRUE(ir::get_op(op).has(ir::kView)) << op;
  for (const char* op : {"concat", "gather"}) EXPECT_FALSE(ir::get_op(op).has(ir::kView)) << op;
}

}  // namespace
}  // namespace nef
