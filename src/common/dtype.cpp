#include "nef/dtype.h"

#include <array>

#include "nef/error.h"

namespace nef {
namespace {

struct DTypeInfo {
  const char* name;
  size_t size;
  char kind;  // 'b' bool, 'i' signed, 'u' unsigned, 'f' float
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
}};

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
bool is_signed(DType t) { return info(t).kind == 'i' || info(t).kind == 'f'; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (size_t i = 0; i < kInfo.size(); ++i)
    if (name == kInfo[i].name) return static_cast<DType>(i);
  if (name == "bool_") return DType::Bool;
  return std::nullopt;
}

DType to_floating(DType t) { return is_floating(t) ? t : kDefaultFloat; }

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  const DTypeInfo &ia = info(a), &ib = info(b);
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
    // int with float: numpy picks a float wide enough for the int (int8/uint8 -> float16,
    // int32/int64 -> float64, except that a wider float already wins).
    DType f = ia.kind == 'f' ? a : b;
    DType i = ia.kind == 'f' ? b : a;
    size_t need = dtype_size(i) <= 1 ? 2 : 8;  // int16 would need float32; we have no int16
    if (dtype_size(f) >= need) return f;
    if (need == 2) return f;  // bfloat16 with int8: keep bfloat16 (ml_dtypes does the same)
    return DType::Float64;
  }
  // Both integers.
  if (ia.kind == ib.kind) return ia.size >= ib.size ? a : b;
  DType s = ia.kind == 'i' ? a : b;
  DType u = ia.kind == 'i' ? b : a;  // only uint8 exists
  (void)u;
  if (dtype_size(s) > 1) return s;  // int32/int64 hold all uint8
  return DType::Int32;  // int8 with uint8: numpy gives int16; we have no int16
}

DType promote_weak(DType tensor, DType weak_scalar) {
  const DTypeInfo &t = info(tensor), &s = info(weak_scalar);
  auto rank = [](char k) { return k == 'b' ? 0 : (k == 'f' ? 2 : 1); };
  if (rank(s.kind) <= rank(t.kind)) return tensor;
  if (s.kind == 'f') return kDefaultFloat;
  return DType::Int64;  // int scalar with a bool tensor
}

}  // namespace nef
