// DType tables and promotion. The exact numpy table is checked in Python against
// np.result_type (tests/python/test_elementwise.py); here: the C++ contracts, and that every
// promoted type holds both operands' values (the property numpy's rules are built on).
#include "nef/dtype.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "nef/error.h"

namespace nef {
namespace {

std::vector<DType> all_dtypes() {
  std::vector<DType> v;
  for (int i = 0; i < kNumDTypes; ++i) v.push_back(static_cast<DType>(i));
  return v;
}

// Range of an integer or bool dtype, and how many mantissa bits a float has.
struct Range {
  double lo, hi;
};
Range int_range(DType t) {
  if (t == DType::Bool) return {0, 1};
  const int bits = int(dtype_size(t)) * 8;
  if (is_signed(t)) return {-std::ldexp(1.0, bits - 1), std::ldexp(1.0, bits - 1) - 1};
  return {0, std::ldexp(1.0, bits) - 1};
}
int mantissa_bits(DType t) {
  switch (t) {
    case DType::Float16:
      return 11;
    case DType::BFloat16:
      return 8;
    case DType::Float32:
      return 24;
    default:
      return 53;
  }
}

TEST(DType, NamesSizesKinds) {
  EXPECT_EQ(kNumDTypes, 13);
  for (DType t : all_dtypes()) {
    SCOPED_TRACE(dtype_name(t));
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
    EXPECT_FALSE(is_floating(t) && is_integer(t));
  }
  // The numbering is the C ABI and the .nef format: appended, never renumbered.
  EXPECT_EQ(int(DType::Int16), 9);
  EXPECT_EQ(int(DType::UInt16), 10);
  EXPECT_EQ(int(DType::UInt32), 11);
  EXPECT_EQ(int(DType::UInt64), 12);
  EXPECT_STREQ(dtype_name(DType::UInt64), "uint64");
  EXPECT_EQ(dtype_size(DType::Int16), 2u);
  EXPECT_EQ(dtype_size(DType::UInt16), 2u);
  EXPECT_EQ(dtype_size(DType::UInt32), 4u);
  EXPECT_EQ(dtype_size(DType::UInt64), 8u);
  EXPECT_TRUE(is_signed(DType::Int16) && is_integer(DType::Int16));
  for (DType u : {DType::UInt8, DType::UInt16, DType::UInt32, DType::UInt64})
    EXPECT_TRUE(is_integer(u) && !is_signed(u)) << dtype_name(u);
  EXPECT_EQ(dtype_from_name("uint128"), std::nullopt);
  EXPECT_THROW(dtype_size(static_cast<DType>(kNumDTypes)), TypeError);
}

TEST(DType, PromotionIsSymmetricAndHoldsBothOperands) {
  for (DType a : all_dtypes()) {
    EXPECT_EQ(promote_types(a, a), a);
    EXPECT_EQ(promote_types(a, DType::Bool), a);
    for (DType b : all_dtypes()) {
      SCOPED_TRACE(std::string(dtype_name(a)) + " + " + dtype_name(b));
      const DType r = promote_types(a, b);
      EXPECT_EQ(promote_types(b, a), r);
      if (is_floating(r)) {
        // Floats: exact for every value of an 8/16-bit int; 32/64-bit ints go to float64
        // (numpy's choice, exact only up to 2^53).
        for (DType x : {a, b}) {
          if (is_floating(x) || x == DType::Bool) continue;
          const Range rx = int_range(x);
          const double need = std::log2(std::max(-rx.lo, rx.hi + 1));
          if (dtype_size(x) <= 2) EXPECT_GE(mantissa_bits(r), int(need)) << dtype_name(x);
          else EXPECT_EQ(r, DType::Float64);
        }
        if (is_floating(a) && is_floating(b))
          EXPECT_GE(dtype_size(r), std::max(dtype_size(a), dtype_size(b)));
        continue;
      }
      // Integers: the result holds both ranges, and is the narrowest such type numpy has.
      const Range ra = int_range(a), rb = int_range(b), rr = int_range(r);
      EXPECT_LE(rr.lo, std::min(ra.lo, rb.lo));
      EXPECT_GE(rr.hi, std::max(ra.hi, rb.hi));
      for (DType n : all_dtypes()) {
        if (!is_integer(n) || dtype_size(n) >= dtype_size(r)) continue;
        const Range rn = int_range(n);
        EXPECT_FALSE(rn.lo <= std::min(ra.lo, rb.lo) && rn.hi >= std::max(ra.hi, rb.hi))
            << dtype_name(n) << " is narrower and holds both";
      }
    }
  }
  // uint64 with any signed int has no integer home: float64, as numpy.
  for (DType s : {DType::Int8, DType::Int16, DType::Int32, DType::Int64})
    EXPECT_EQ(promote_types(DType::UInt64, s), DType::Float64);
}

TEST(DType, WeakScalarsKeepTheTensorType) {
  for (DType t : all_dtypes()) {
    if (t == DType::Bool) continue;
    EXPECT_EQ(promote_weak(t, DType::Int64), t) << dtype_name(t);
  }
  EXPECT_EQ(promote_weak(DType::UInt16, DType::Float32), kDefaultFloat);
  EXPECT_EQ(promote_weak(DType::Bool, DType::Int64), DType::Int64);
}

}  // namespace
}  // namespace nef
