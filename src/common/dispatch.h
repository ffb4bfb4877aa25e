// Calls a generic lambda with the C++ type of a runtime dtype:
//   dispatch_dtype(a.dtype, [&]<typename T>() { ... });
// float16_t/bfloat16_t are storage types: compute through nef::to_float / to_float16.
#pragma once

#include <cstdint>
#include <type_traits>

#include "common/float16.h"
#include "nef/dtype.h"
#include "nef/error.h"

namespace nef {

template <typename Fn>
decltype(auto) dispatch_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::Float32:
      return fn.template operator()<float>();
    case DType::Float16:
      return fn.template operator()<float16_t>();
    case DType::BFloat16:
      return fn.template operator()<bfloat16_t>();
    case DType::Float64:
      return fn.template operator()<double>();
    case DType::Int8:
      return fn.template operator()<int8_t>();
    case DType::UInt8:
      return fn.template operator()<uint8_t>();
    case DType::Int32:
      return fn.template operator()<int32_t>();
    case DType::Int64:
      return fn.template operator()<int64_t>();
    case DType::Bool:
      return fn.template operator()<bool>();
    case DType::Int16:
      return fn.template operator()<int16_t>();
    case DType::UInt16:
      return fn.template operator()<uint16_t>();
    case DType::UInt32:
      return fn.template operator()<uint32_t>();
    case DType::UInt64:
      return fn.template operator()<uint64_t>();
    case DType::Float8E4M3FN:
    case DType::Float8E4M3FNUZ:
    case DType::Float8E5M2:
    case DType::Float8E5M2FNUZ:
      throw_error(ErrorCode::Type, str("dtype ", dtype_name(t),
                                       " is storage-only (no kernel "
                                       "computes in it): cast it to a float type first"));
  }
  throw_error(ErrorCode::Generic, "invalid dtype");
}

// Unsigned type for wrapping integer math on C: at least unsigned int wide, so that uint16 *
// uint16 does not promote to a signed int that overflows.
template <typename C>
using wrap_t = decltype(std::make_unsigned_t<C>(0) + 0u);

// Compute type for a storage type: half types compute in float, others in themselves.
template <typename T>
struct compute_type {
  using type = T;
};
template <>
struct compute_type<float16_t> {
  using type = float;
};
template <>
struct compute_type<bfloat16_t> {
  using type = float;
};
template <typename T>
using compute_t = typename compute_type<T>::type;

template <typename T>
inline compute_t<T> load_as(T v) {
  return v;
}
inline float load_as(float16_t v) { return to_float(v); }
inline float load_as(bfloat16_t v) { return to_float(v); }

template <typename T, typename C>
inline T store_as(C v) {
  return static_cast<T>(v);
}
template <>
inline float16_t store_as<float16_t, float>(float v) {
  return to_float16(v);
}
template <>
inline bfloat16_t store_as<bfloat16_t, float>(float v) {
  return to_bfloat16(v);
}

}  // namespace nef
