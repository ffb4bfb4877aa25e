// Element types, their sizes and names, and numpy-style type promotion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace nef {

// Numeric values are part of the C ABI and the .nef format; append only.
enum class DType : uint8_t {
  Float32 = 0,
  Float16 = 1,
  BFloat16 = 2,
  Float64 = 3,
  Int8 = 4,
  UInt8 = 5,
  Int32 = 6,
  Int64 = 7,
  Bool = 8,
};
inline constexpr int kNumDTypes = 9;

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", "bfloat16", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool is_floating(DType t);
bool is_integer(DType t);  // signed or unsigned, not bool
bool is_signed(DType t);

// Default float type for ops that turn integers into floats (exp of an int, int / int, mean).
inline constexpr DType kDefaultFloat = DType::Float32;

// numpy's promotion for two arrays (int8 + uint8 -> int32... int64 + float16 -> float16 is
// numpy's choice only for scalars; for arrays numpy gives float64, and so do we).
DType promote_types(DType a, DType b);

// Promotion where one side is a "weak" Python scalar (NEP 50): the tensor's dtype wins when the
// scalar's kind (bool < int < float) fits in it; a float scalar with an int/bool tensor gives
// kDefaultFloat; an int scalar with a bool tensor gives int64.
DType promote_weak(DType tensor, DType weak_scalar);

// The float type an op computes in when it needs a float (exp, mean, div): floats stay, others
// become kDefaultFloat.
DType to_floating(DType t);

}  // namespace nef
