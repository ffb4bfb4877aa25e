#include "common/float8.h"

#include <algorithm>
#include <cmath>

#include "nef/error.h"

namespace nef {
namespace {

// Layout of a float8 format: sign, `exp_bits` exponent bits with `bias`, `man_bits` mantissa.
// fn: no infinities, NaN is S.1111.111. fnuz: no infinities, no -0, NaN is 0x80 alone.
// Neither: IEEE-like (E5M2): exponent all ones is inf (mantissa 0) or NaN.
struct Format {
  int exp_bits, man_bits, bias;
  bool fn, fnuz;
};

Format format_of(DType t) {
  switch (t) {
    case DType::Float8E4M3FN:
      return {4, 3, 7, true, false};
    case DType::Float8E4M3FNUZ:
      return {4, 3, 8, false, true};
    case DType::Float8E5M2:
      return {5, 2, 15, false, false};
    case DType::Float8E5M2FNUZ:
      return {5, 2, 16, false, true};
    default:
      break;
  }
  throw_error(ErrorCode::Type, str("[float8] ", dtype_name(t), " is not a float8 dtype"));
}

// The largest finite value's biased exponent and mantissa.
double max_finite(const Format& f) {
  const int top_exp = (1 << f.exp_bits) - 1;
  const int man_all = (1 << f.man_bits) - 1;
  // IEEE-like formats reserve the top exponent; fn reserves only the all-ones mantissa there.
  const int e = f.fn || f.fnuz ? top_exp : top_exp - 1;
  const int m = f.fn ? man_all - 1 : man_all;
  return std::ldexp(1.0 + double(m) / double(1 << f.man_bits), e - f.bias);
}

uint8_t nan_code(const Format& f, bool negative) {
  if (f.fnuz) return 0x80;
  const uint8_t nan = 0x7F;  // fn: S.1111.111; E5M2: exponent all ones, mantissa all ones
  return negative ? uint8_t(nan | 0x80) : nan;
}

}  // namespace

float float8_to_float(uint8_t bits, DType t) {
  const Format f = format_of(t);
  const bool neg = bits & 0x80;
  const int e = (bits >> f.man_bits) & ((1 << f.exp_bits) - 1);
  const int m = bits & ((1 << f.man_bits) - 1);
  if (f.fnuz && bits == 0x80) return std::nanf("");
  if (f.fn && (bits & 0x7F) == 0x7F) return neg ? -std::nanf("") : std::nanf("");
  if (!f.fn && !f.fnuz && e == (1 << f.exp_bits) - 1) {
    if (m != 0) return neg ? -std::nanf("") : std::nanf("");
    return neg ? -INFINITY : INFINITY;
  }
  const double mag = e == 0 ? std::ldexp(double(m), 1 - f.bias - f.man_bits)
                            : std::ldexp(1.0 + double(m) / double(1 << f.man_bits), e - f.bias);
  return float(neg ? -mag : mag);
}

uint8_t float_to_float8(float v, DType t, bool saturate) {
  const Format f = format_of(t);
  const bool neg = std::signbit(v);
  if (std::isnan(v)) return nan_code(f, neg);
  const double top = max_finite(f);
  const uint8_t sign = neg ? 0x80 : 0x00;
  auto overflow = [&]() -> uint8_t {
    if (saturate) return uint8_t(sign | float_to_float8(float(top), t, false));
    if (!f.fn && !f.fnuz) return uint8_t(sign | (((1 << f.exp_bits) - 1) << f.man_bits));  // inf
    return nan_code(f, neg);
  };
  double a = std::fabs(double(v));
  if (std::isinf(a)) return overflow();
  // Round to the grid of the value's binade (the subnormal grid below the smallest normal):
  // the quotient is a small integer plus a fraction, exact in double; nearbyint ties to even.
  const int min_exp = 1 - f.bias;
  int e2 = 0;
  std::frexp(a, &e2);  // a = m * 2^e2, m in [0.5, 1)
  const int q_exp = (a == 0.0 ? min_exp : std::max(e2 - 1, min_exp)) - f.man_bits;
  const double q = std::nearbyint(std::ldexp(a, -q_exp));
  a = std::ldexp(q, q_exp);
  if (a > top) return overflow();
  if (a == 0.0) return f.fnuz ? 0x00 : sign;
  std::frexp(a, &e2);
  const int e_unb = e2 - 1;
  if (e_unb < min_exp)  // subnormal: the mantissa counts units of 2^(min_exp - man_bits)
    return uint8_t(sign | int(std::ldexp(a, f.man_bits - min_exp)));
  const int man = int(std::ldexp(a, f.man_bits - e_unb)) - (1 << f.man_bits);
  return uint8_t(sign | ((e_unb + f.bias) << f.man_bits) | man);
}

}  // namespace nef
