#include "nef/dtype.h"

#include <array>

#include "nef/error.h"

namespace nef {
namespace {

struct DTypeInfo {
  const char* name;
  size_t size;
  char kind;  // 'b' bool, 'i' signed, 'u' unsigned, 'f' float, 's' storage-only float8
};

constexpr std::array<DTypeInfo, kNumDTypes> kInfo = {{
    {"float32", 4, 'f'},
    {"float16", 2, 'f'},
    {"bfloat16", 2, 'f'},
    {"float64", 8, 'f'},
    {"int8", 1, 'i'},
    {"uint8", 1, 'u'},
    {"int32", 4, 'i'},
    {"int64", 8, 'i'},
    {"bool", 1, 'b'},
    {"int16", 2, 'i'},
    {"uint16", 2, 'u'},
    {"uint32", 4, 'u'},
    {"uint64", 8, 'u'},
    {"float8_e4m3fn", 1, 's'},
    {"float8_e4m3fnuz", 1, 's'},
    {"float8_e5m2", 1, 's'},
    {"float8_e5m2fnuz", 1, 's'},
}};

[[noreturn]] void storage_only(const char* what, DType a, DType b) {
  throw_error(ErrorCode::Type, str("[", what, "] ", dtype_name(a), " with ", dtype_name(b),
                                   ": float8 types are storage-only; cast to a float type first"));
}

const DTypeInfo& info(DType t) {
  auto i = static_cast<size_t>(t);
  if (i >= kInfo.size()) throw_error(ErrorCode::Type, str("invalid dtype code ", i));
  return kInfo[i];
}

}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
const char* dtype_name(DType t) { return info(t).name; }
bool is_floating(DType t) { return info(t).kind == 'f'; }
bool is_integer(DType t) { return info(t).kind == 'i' || info(t).kind == 'u'; }
bool is_signed(DType t) {
  const char k = info(t).kind;
  return k == 'i' || k == 'f' || k == 's';
}
bool is_storage_only(DType t) { return info(t).kind == 's'; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (size_t i = 0; i < kInfo.size(); ++i)
    if (name == kInfo[i].name) return static_cast<DType>(i);
  if (name == "bool_") return DType::Bool;
  return std::nullopt;
}

DType to_floating(DType t) {
  if (is_storage_only(t))
    throw_error(ErrorCode::Type, str("[float op] ", dtype_name(t),
                                     " is storage-only: cast it to a float type first"));
  return is_floating(t) ? t : kDefaultFloat;
}

DType promote_types(DType a, DType b) {
  const DTypeInfo &ia = info(a), &ib = info(b);
  if (ia.kind == 's' || ib.kind == 's') storage_only("promote", a, b);
  if (a == b) return a;
  if (ia.kind == 'b') return b;
  if (ib.kind == 'b') return a;
  if (ia.kind == 'f' || ib.kind == 'f') {
    if (ia.kind == 'f' && ib.kind == 'f') {
      // float16 with bfloat16 has no common 16-bit type: numpy/ml_dtypes go to float32.
      if ((a == DType::Float16 && b == DType::BFloat16) ||
          (a == DType::BFloat16 && b == DType::Float16))
        return DType::Float32;
      return ia.size >= ib.size ? a : b;
    }
    // int with float: numpy picks a float wide enough for the int (8-bit ints -> float16,
    // 16-bit -> float32, 32/64-bit -> float64), unless the float is already wider.
    DType f = ia.kind == 'f' ? a : b;
    DType i = ia.kind == 'f' ? b : a;
    const size_t need = dtype_size(i) == 1 ? 2 : dtype_size(i) == 2 ? 4 : 8;
    if (dtype_size(f) >= need) return f;
    return need == 4 ? DType::Float32 : DType::Float64;
  }
  // Both integers: same signedness takes the wider; mixed needs a signed type wider than the
  // unsigned one (uint64 has none: numpy goes to float64).
  if (ia.kind == ib.kind) return ia.size >= ib.size ? a : b;
  DType s = ia.kind == 'i' ? a : b;
  DType u = ia.kind == 'i' ? b : a;
  if (dtype_size(s) > dtype_size(u)) return s;
  switch (dtype_size(u)) {
    case 1:
      return DType::Int16;
    case 2:
      return DType::Int32;
    case 4:
      return DType::Int64;
    default:
      return DType::Float64;
  }
}

DType promote_weak(DType tensor, DType weak_scalar) {
  const DTypeInfo &t = info(tensor), &s = info(weak_scalar);
  if (t.kind == 's' || s.kind == 's') storage_only("promote", tensor, weak_scalar);
  auto rank = [](char k) { return k == 'b' ? 0 : (k == 'f' ? 2 : 1); };
  if (rank(s.kind) <= rank(t.kind)) return tensor;
  if (s.kind == 'f') return kDefaultFloat;
  return DType::Int64;  // int scalar with a bool tensor
}

}  // namespace nef
