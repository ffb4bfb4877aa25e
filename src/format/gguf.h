// GGUF reader: ggml's model container (versions 2 and 3, little-endian), read through mmap.
//
// Nothing in the file is trusted: the magic and version, every count, string length, value
// type, array nesting, tensor rank, dimension, type, offset and size is checked against the
// file and against fixed limits before it is used, keys and strings must be UTF-8, and names
// must be unique. Any deviation is a FormatError naming the file, the byte offset and the key or
// tensor. Tensor data is never copied: tensor() returns an Array borrowing the mapping (the
// mapping lives as long as any such Array or the GgufFile).
//
// Shapes: GGUF stores dims as ne[0..n), ne[0] the fastest-varying (the row length). NEF exposes
// numpy order, `shape` = reversed ne, so shape.back() == ne[0]. A quantized tensor is a uint8
// array of shape shape[:-1] + [row_bytes(fmt, ne[0])] (for a matrix [N, K]: [N, row_bytes], the
// convention of common/quant.h), exactly as the bytes lie in the file.
//
// Thread-safety: a GgufFile is immutable after open; all const members may be called from any
// thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/quant.h"
#include "nef/array.h"

namespace nef::format {

// Metadata value types, numbered as GGUF stores them.
enum class GgufType : uint32_t {
  UInt8 = 0,
  Int8 = 1,
  UInt16 = 2,
  Int16 = 3,
  UInt32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  UInt64 = 10,
  Int64 = 11,
  Float64 = 12,
};
const char* gguf_type_name(GgufType t);  // "uint8", ..., "float64"; "invalid" outside the enum

// An array value: its element type and the elements, in the one vector that type uses.
struct GgufArray {
  GgufType elem_type = GgufType::UInt8;
  std::vector<uint64_t> u;        // UInt8..UInt64, Bool (0 or 1)
  std::vector<int64_t> i;         // Int8..Int64
  std::vector<double> f;          // Float32 (exactly), Float64
  std::vector<std::string> s;     // String
  std::vector<GgufArray> arrays;  // Array (nested)
  size_t size() const;
};

// One metadata value as stored: the field that matches `type` is set (u for unsigned and
// bool, i for signed, f for floats, s for strings, array for arrays).
struct GgufValue {
  GgufType type = GgufType::UInt8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  GgufArray array;
};

// GGML tensor types: the ids GGUF stores, with names ("f32", "q4_k", "iq2_xxs", ...) and sizes.
struct GgmlTypeInfo {
  uint32_t id;
  const char* name;
  int64_t block_elems;  // 1 for plain types
  int64_t block_bytes;
};
// nullptr for an id no ggml version defines.
const GgmlTypeInfo* ggml_type_info(uint32_t id);

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::string type_name;               // "f32", "q4_k", ... (ggml_type_info's name)
  std::vector<int64_t> ne;             // GGUF order, ne[0] the row length
  Shape shape;                         // numpy order: reversed ne
  uint64_t offset = 0;                 // from the start of the data section
  uint64_t nbytes = 0;                 // bytes of data in the file
  std::optional<quant::Format> quant;  // set for the quantized formats NEF reads
  std::optional<DType> dtype;          // set for the plain types NEF has a dtype for
  bool supported() const { return quant.has_value() || dtype.has_value(); }
  // Shape of the Array tensor() returns: `shape`, or for quantized types the uint8 bytes shape.
  Shape array_shape() const;
};

class GgufFile {
 public:
  // Maps `path`; throws Error(Generic) on I/O errors, FormatError on a malformed file.
  static GgufFile open(const std::string& path);
  // Same from memory, copied once into owned storage (tests, fuzzing); errors name "<memory>".
  static GgufFile parse(const uint8_t* data, size_t size);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }      // general.alignment, default 32
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
  size_t file_size() const { return size_; }
  const std::string& source() const { return source_; }  // the path, or "<memory>"

  // --- metadata, in file order
  const std::vector<std::string>& keys() const { return keys_; }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const GgufValue* find(std::string_view key) const;  // nullptr when absent
  // The value; FormatError naming the key when absent.
  const GgufValue& value(std::string_view key) const;

  // Typed accessors. Each throws FormatError naming the key when it is absent, or when the
  // stored type does not fit (the message names the expected and the actual type, or the
  // value that is out of range). Integer getters take any integer type whose value fits; float
  // getters take float32, float64 and integers; the others need their exact type.
  uint32_t get_u32(std::string_view key) const;
  uint64_t get_u64(std::string_view key) const;
  int64_t get_i64(std::string_view key) const;
  float get_f32(std::string_view key) const;
  double get_f64(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const std::vector<std::string>& get_string_array(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;

  // --- tensors, in file order
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;  // nullptr when absent
  const GgufTensorInfo& tensor_info(std::string_view name) const;  // FormatError when absent
  // Zero-copy view of the tensor's bytes in the mapping: the tensor's dtype and numpy shape for
  // plain types, uint8 array_shape() for quantized ones. UnsupportedError naming the type for
  // types NEF does not read (they are listed in tensors() all the same).
  Array tensor(std::string_view name) const;
  // Zero-copy uint8 view of the tensor's bytes, for every type (unreadable ones included):
  // shape[:-1] + [bytes per row], as the gguf Python package shapes raw data.
  Array raw(std::string_view name) const;
  // The values as float32 (a new array, numpy shape): converted for float types, dequantized
  // with quant::dequantize_row for quantized ones. TypeError for integer types,
  // UnsupportedError for types NEF does not read.
  Array dequantize(std::string_view name) const;

 private:
  GgufFile() = default;
  static GgufFile load(const uint8_t* data, size_t size, std::shared_ptr<void> owner,
                       std::string source);
  friend class GgufParser;

  std::shared_ptr<void> owner_;  // keeps `base_` valid
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string source_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::vector<GgufValue> values_;  // parallel to keys_
  std::map<std::string, size_t, std::less<>> key_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace nef::format
