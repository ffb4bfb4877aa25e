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
  Int16 = 9,
  UInt16 = 10,
  UInt32 = 11,
  UInt64 = 12,
  // Storage-only float8 types (ONNX's FLOAT8E4M3FN ... FLOAT8E5M2FNUZ, ml_dtypes' numpy types):
  // cast, bitcast and layout ops move them; arithmetic needs a cast to a float type first.
  Float8E4M3FN = 13,
  Float8E4M3FNUZ = 14,
  Float8E5M2 = 15,
  Float8E5M2FNUZ = 16,
};
inline constexpr int kNumDTypes = 17;

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", "bfloat16", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool is_floating(DType t);
bool is_integer(DType t);  // signed or unsigned, not bool
bool is_signed(DType t);
bool is_storage_only(DType t);  // the float8 types: no arithmetic kernels

// Default float type for ops that turn integers into floats (exp of an int, int / int, mean).
inline constexpr DType kDefaultFloat = DType::Float32;

// numpy's promotion for two arrays, exactly as np.result_type (int8 + uint8 -> int16, uint32 +
// int32 -> int64, uint64 + any signed int -> float64, int16 + float16 -> float32). Where numpy
// has no answer (float16 with bfloat16, bfloat16 with an int wider than 8 bits) the result is
// the narrowest float that holds both: float32, or float64 for 32/64-bit ints. A storage-only
// dtype on either side is a TypeError (cast it to a float type first).
DType promote_types(DType a, DType b);

// Promotion where one side is a "weak" Python scalar (NEP 50): the tensor's dtype wins when the
// scalar's kind (bool < int < float) fits in it; a float scalar with an int/bool tensor gives
// kDefaultFloat; an int scalar with a bool tensor gives int64.
DType promote_weak(DType tensor, DType weak_scalar);

// The float type an op computes in when it needs a float (exp, mean, div): floats stay, others
// become kDefaultFloat; a storage-only dtype is a TypeError.
DType to_floating(DType t);

}  // namespace nef
