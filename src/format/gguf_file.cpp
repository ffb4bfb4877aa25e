// GgufFile's accessors: the GGML type table, typed metadata getters, zero-copy tensor views and
// dequantization to float32.
#include <cmath>
#include <cstring>
#include <limits>

#include "common/float16.h"
#include "format/format_internal.h"
#include "format/gguf.h"
#include "nef/error.h"

namespace nef::format {
namespace {

// Every type id ggml has defined (ids 4, 5, 31-33 and 36-38 were retired and are unknown).
constexpr GgmlTypeInfo kGgmlTypes[] = {
    {0, "f32", 1, 4},         {1, "f16", 1, 2},         {2, "q4_0", 32, 18},
    {3, "q4_1", 32, 20},      {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},
    {8, "q8_0", 32, 34},      {9, "q8_1", 32, 40},      {10, "q2_k", 256, 84},
    {11, "q3_k", 256, 110},   {12, "q4_k", 256, 144},   {13, "q5_k", 256, 176},
    {14, "q6_k", 256, 210},   {15, "q8_k", 256, 292},   {16, "iq2_xxs", 256, 66},
    {17, "iq2_xs", 256, 74},  {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},
    {20, "iq4_nl", 32, 18},   {21, "iq3_s", 256, 110},  {22, "iq2_s", 256, 82},
    {23, "iq4_xs", 256, 136}, {24, "i8", 1, 1},         {25, "i16", 1, 2},
    {26, "i32", 1, 4},        {27, "i64", 1, 8},        {28, "f64", 1, 8},
    {29, "iq1_m", 256, 56},   {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},
    {35, "tq2_0", 256, 66},   {39, "mxfp4", 32, 17},    {40, "nvfp4", 64, 36},
    {41, "q1_0", 128, 18},
};

constexpr const char* kReadable =
    "f32, f16, bf16, f64, i8, i32, i64, q4_0, q4_1, q8_0, q4_k, q5_k, q6_k";

bool is_int_type(GgufType t) {
  switch (t) {
    case GgufType::UInt8:
    case GgufType::UInt16:
    case GgufType::UInt32:
    case GgufType::UInt64:
    case GgufType::Int8:
    case GgufType::Int16:
    case GgufType::Int32:
    case GgufType::Int64:
      return true;
    default:
      return false;
  }
}
bool is_unsigned(GgufType t) {
  return t == GgufType::UInt8 || t == GgufType::UInt16 || t == GgufType::UInt32 ||
         t == GgufType::UInt64;
}
bool is_float_type(GgufType t) { return t == GgufType::Float32 || t == GgufType::Float64; }

[[noreturn]] void type_mismatch(const std::string& source, std::string_view key,
                                const char* expected, const std::string& actual) {
  throw FormatError(str("[gguf] ", source, ": metadata ", detail::quote(std::string(key)),
                        " should be ", expected, ", but is ", actual));
}

std::string describe(const GgufValue& v) {
  if (v.type != GgufType::Array) return gguf_type_name(v.type);
  return str("an array of ", gguf_type_name(v.array.elem_type));
}

// An integer value within [lo, hi] as int128-free arithmetic: unsigned and signed apart.
template <typename T>
T int_in_range(const std::string& source, std::string_view key, const GgufValue& v,
               const char* expected) {
  if (!is_int_type(v.type)) type_mismatch(source, key, expected, describe(v));
  if (is_unsigned(v.type)) {
    if (v.u > uint64_t(std::numeric_limits<T>::max()))
      type_mismatch(source, key, expected, str(gguf_type_name(v.type), " ", v.u));
    return T(v.u);
  }
  if (v.i < 0 && !std::numeric_limits<T>::is_signed)
    type_mismatch(source, key, expected, str(gguf_type_name(v.type), " ", v.i));
  if (v.i > 0 && uint64_t(v.i) > uint64_t(std::numeric_limits<T>::max()))
    type_mismatch(source, key, expected, str(gguf_type_name(v.type), " ", v.i));
  return T(v.i);
}

double as_double(const std::string& source, std::string_view key, const GgufValue& v) {
  if (is_float_type(v.type)) return v.f;
  if (is_unsigned(v.type)) return double(v.u);
  if (is_int_type(v.type)) return double(v.i);
  type_mismatch(source, key, "a number", describe(v));
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UInt8:
      return "uint8";
    case GgufType::Int8:
      return "int8";
    case GgufType::UInt16:
      return "uint16";
    case GgufType::Int16:
      return "int16";
    case GgufType::UInt32:
      return "uint32";
    case GgufType::Int32:
      return "int32";
    case GgufType::Float32:
      return "float32";
    case GgufType::Bool:
      return "bool";
    case GgufType::String:
      return "string";
    case GgufType::Array:
      return "array";
    case GgufType::UInt64:
      return "uint64";
    case GgufType::Int64:
      return "int64";
    case GgufType::Float64:
      return "float64";
  }
  return "invalid";
}

size_t GgufArray::size() const { return u.size() + i.size() + f.size() + s.size() + arrays.size(); }

const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  for (const GgmlTypeInfo& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

Shape GgufTensorInfo::array_shape() const {
  if (!quant) return shape;
  Shape s = shape.empty() ? Shape{1} : shape;
  s.back() = quant::row_bytes(*quant, s.back());
  return s;
}

// --- metadata

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &values_[it->second];
}

const GgufValue& GgufFile::value(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v)
    throw FormatError(
        str("[gguf] ", source_, ": no metadata key ", detail::quote(std::string(key))));
  return *v;
}

uint32_t GgufFile::get_u32(std::string_view key) const {
  return int_in_range<uint32_t>(source_, key, value(key), "an integer in the uint32 range");
}
uint64_t GgufFile::get_u64(std::string_view key) const {
  return int_in_range<uint64_t>(source_, key, value(key), "an integer in the uint64 range");
}
int64_t GgufFile::get_i64(std::string_view key) const {
  return int_in_range<int64_t>(source_, key, value(key), "an integer in the int64 range");
}
double GgufFile::get_f64(std::string_view key) const { return as_double(source_, key, value(key)); }
float GgufFile::get_f32(std::string_view key) const { return float(get_f64(key)); }

bool GgufFile::get_bool(std::string_view key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::Bool) type_mismatch(source_, key, "a bool", describe(v));
  return v.u != 0;
}

const std::string& GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::String) type_mismatch(source_, key, "a string", describe(v));
  return v.s;
}

const std::vector<std::string>& GgufFile::get_string_array(std::string_view key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::Array || v.array.elem_type != GgufType::String)
    type_mismatch(source_, key, "an array of strings", describe(v));
  return v.array.s;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::Array || !is_int_type(v.array.elem_type))
    type_mismatch(source_, key, "an array of integers", describe(v));
  if (!is_unsigned(v.array.elem_type)) return v.array.i;
  std::vector<int64_t> out;
  out.reserve(v.array.u.size());
  for (uint64_t x : v.array.u) {
    if (x > uint64_t(std::numeric_limits<int64_t>::max()))
      type_mismatch(source_, key, "an array of integers in the int64 range",
                    str("an array of uint64 holding ", x));
    out.push_back(int64_t(x));
  }
  return out;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue& v = value(key);
  if (v.type != GgufType::Array ||
      !(is_float_type(v.array.elem_type) || is_int_type(v.array.elem_type)))
    type_mismatch(source_, key, "an array of numbers", describe(v));
  std::vector<float> out;
  out.reserve(v.array.size());
  for (double x : v.array.f) out.push_back(float(x));
  for (int64_t x : v.array.i) out.push_back(float(x));
  for (uint64_t x : v.array.u) out.push_back(float(x));
  return out;
}

// --- tensors

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor_info(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t)
    throw FormatError(str("[gguf] ", source_, ": no tensor ", detail::quote(std::string(name))));
  return *t;
}

Array GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo& t = tensor_info(name);
  if (!t.supported())
    throw UnsupportedError(str("[gguf] tensor ", detail::quote(t.name), " has type ", t.type_name,
                               ", which NEF does not read (it reads ", kReadable, ")"));
  Array a;
  // The mapping is private copy-on-write, so handing out a mutable pointer is safe.
  auto* p = const_cast<uint8_t*>(base_ + data_offset_ + t.offset);
  a.storage = Storage::borrow(p, size_t(t.nbytes), owner_);
  a.shape = t.array_shape();
  a.strides = contiguous_strides(a.shape);
  a.dtype = t.dtype.value_or(DType::UInt8);
  return a;
}

Array GgufFile::raw(std::string_view name) const {
  const GgufTensorInfo& t = tensor_info(name);
  const GgmlTypeInfo* ti = ggml_type_info(t.ggml_type);
  NEF_CHECK(ti != nullptr, "type checked at open");
  Array a;
  auto* p = const_cast<uint8_t*>(base_ + data_offset_ + t.offset);
  a.storage = Storage::borrow(p, size_t(t.nbytes), owner_);
  a.shape = t.shape.empty() ? Shape{1} : t.shape;
  a.shape.back() = a.shape.back() / ti->block_elems * ti->block_bytes;
  a.strides = contiguous_strides(a.shape);
  a.dtype = DType::UInt8;
  return a;
}

Array GgufFile::dequantize(std::string_view name) const {
  const GgufTensorInfo& t = tensor_info(name);
  Array raw = tensor(name);  // UnsupportedError for unreadable types
  if (t.dtype && !is_floating(*t.dtype))
    throw TypeError(str("[gguf] tensor ", detail::quote(t.name), " holds ", t.type_name,
                        " integers; dequantize gives float32 for float and quantized types"));
  Array out = Array::empty(t.shape, DType::Float32);
  auto* y = out.data_as<float>();
  int64_t n = out.numel();
  if (t.quant) {
    int64_t k = t.ne.empty() ? 1 : t.ne[0];
    int64_t rb = quant::row_bytes(*t.quant, k);
    const auto* src = raw.data_as<const uint8_t>();
    for (int64_t r = 0; r < n / k; ++r) quant::dequantize_row(*t.quant, src + r * rb, y + r * k, k);
    return out;
  }
  switch (*t.dtype) {
    case DType::Float32:
      std::memcpy(y, raw.data(), size_t(n) * 4);
      break;
    case DType::Float16:
      for (int64_t j = 0; j < n; ++j) y[j] = to_float(raw.data_as<const float16_t>()[j]);
      break;
    case DType::BFloat16:
      for (int64_t j = 0; j < n; ++j) y[j] = to_float(raw.data_as<const bfloat16_t>()[j]);
      break;
    case DType::Float64:
      for (int64_t j = 0; j < n; ++j) y[j] = float(raw.data_as<const double>()[j]);
      break;
    default:
      NEF_CHECK(false, "unhandled gguf dtype");
  }
  return out;
}

}  // namespace nef::format
