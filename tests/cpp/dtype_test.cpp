// DType tables and promotion. The exact numpy table is checked in Python against
// np.result_type (tests/python/test_elementwise.py); here: the C++ contracts, and that every
// promoted type holds both operands' values (the property numpy's rules are built on).
#include "nef/dtype.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/float8.h"
#include "nef/error.h"

namespace nef {
namespace {

// Every dtype with arithmetic (the float8 types are storage-only).
std::vector<DType> all_dtypes() {
  std::vector<DType> v;
  for (int i = 0; i < kNumDTypes; ++i)
    if (!is_storage_only(static_cast<DType>(i))) v.push_back(static_cast<DType>(i));
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
  EXPECT_EQ(kNumDTypes, 17);
  for (int i = 0; i < kNumDTypes; ++i) {
    const DType t = static_cast<DType>(i);
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
  EXPECT_EQ(int(DType::Float8E4M3FN), 13);
  EXPECT_EQ(int(DType::Float8E5M2FNUZ), 16);
  EXPECT_STREQ(dtype_name(DType::Float8E5M2), "float8_e5m2");
  for (DType f :
       {DType::Float8E4M3FN, DType::Float8E4M3FNUZ, DType::Float8E5M2, DType::Float8E5M2FNUZ}) {
    EXPECT_TRUE(is_storage_only(f) && !is_floating(f) && !is_integer(f)) << dtype_name(f);
    EXPECT_EQ(dtype_size(f), 1u);
    // No arithmetic promotion: a TypeError that names the dtype, never a silent choice.
    EXPECT_THROW(promote_types(f, DType::Float32), TypeError);
    EXPECT_THROW(promote_types(f, f), TypeError);
    EXPECT_THROW(promote_weak(f, DType::Float32), TypeError);
  }
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
          if (dtype_size(x) <= 2) {
            EXPECT_GE(mantissa_bits(r), int(need)) << dtype_name(x);
          } else {
            EXPECT_EQ(r, DType::Float64);
          }
        }
        if (is_floating(a) && is_floating(b)) {
          EXPECT_GE(dtype_size(r), std::max(dtype_size(a), dtype_size(b)));
        }
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

// float8 codecs: every bit pattern decodes, and every non-NaN pattern re-encodes to itself
// (the grid is exactly representable); values between neighbours round to the nearer, ties to
// the even code. The values themselves are checked against ml_dtypes in Python.
TEST(DType, Float8EveryCodeRoundTrips) {
  for (DType f :
       {DType::Float8E4M3FN, DType::Float8E4M3FNUZ, DType::Float8E5M2, DType::Float8E5M2FNUZ}) {
    SCOPED_TRACE(dtype_name(f));
    int nans = 0;
    for (int b = 0; b < 256; ++b) {
      const float v = float8_to_float(uint8_t(b), f);
      if (std::isnan(v)) {
        ++nans;
        EXPECT_TRUE(std::isnan(float8_to_float(float_to_float8(v, f, true), f)));
        continue;
      }
      if (std::isinf(v)) {
        EXPECT_EQ(float_to_float8(v, f, false), uint8_t(b));
        continue;
      }
      EXPECT_EQ(float_to_float8(v, f, true), uint8_t(b)) << b;
      EXPECT_EQ(float_to_float8(v, f, false), uint8_t(b)) << b;
    }
    const bool fnuz = f == DType::Float8E4M3FNUZ || f == DType::Float8E5M2FNUZ;
    EXPECT_EQ(nans, fnuz ? 1 : f == DType::Float8E4M3FN ? 2 : 6);
  }
  // The largest finite values and the rounding of the halfway point between 1 and the next code.
  EXPECT_EQ(float8_to_float(0x7E, DType::Float8E4M3FN), 448.0f);
  EXPECT_EQ(float8_to_float(0x7F, DType::Float8E4M3FNUZ), 240.0f);
  EXPECT_EQ(float8_to_float(0x7B, DType::Float8E5M2), 57344.0f);
  EXPECT_EQ(float8_to_float(0x7F, DType::Float8E5M2FNUZ), 57344.0f);
  EXPECT_EQ(float_to_float8(1.0625f, DType::Float8E4M3FN, true), 0x38);  // tie: even (1.0)
  EXPECT_EQ(float_to_float8(1.1875f, DType::Float8E4M3FN, true), 0x3A);  // tie: even (1.25)
  EXPECT_EQ(float_to_float8(1e9f, DType::Float8E4M3FN, true), 0x7E);
  EXPECT_EQ(float_to_float8(-1e9f, DType::Float8E4M3FN, false), 0xFF);   // -NaN
  EXPECT_EQ(float_to_float8(1e9f, DType::Float8E5M2, false), 0x7C);      // inf
  EXPECT_EQ(float_to_float8(-INFINITY, DType::Float8E5M2, true), 0xFB);  // -max
  EXPECT_EQ(float_to_float8(-0.0f, DType::Float8E4M3FNUZ, true), 0x00);  // no -0
}

}  // namespace
}  // namespace nef
