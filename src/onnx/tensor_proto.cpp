// TensorProto decoding. Every size is checked against the dims before a byte is copied: the
// model may be hostile.
#include "onnx/tensor_proto.h"

#include <cstring>
#include <filesystem>

#include "common/float16.h"
#include "format/mmap_file.h"
#include "onnx/converter.h"
#include "onnx/onnx-ml.pb.h"

namespace nef::onnx_import {
namespace {

Shape dims_of(const ::onnx::TensorProto& t, const std::string& what) {
  Shape shape;
  for (int64_t d : t.dims()) {
    if (d < 0) throw FormatError(str("[onnx] ", what, ": negative dim ", d));
    shape.push_back(d);
  }
  if (shape.size() > 16)
    throw UnsupportedError(str("[onnx] ", what, ": rank ", shape.size(), " > 16"));
  checked_numel(shape, "onnx");
  return shape;
}

std::string external_key(const ::onnx::TensorProto& t, const std::string& key) {
  for (const auto& kv : t.external_data())
    if (kv.key() == key) return kv.value();
  return "";
}

int64_t parse_size(const std::string& s, const std::string& what, const char* key) {
  if (s.empty()) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9' || v > (int64_t(1) << 50))
      throw FormatError(str("[onnx] ", what, ": bad external data ", key, " '", s, "'"));
    v = v * 10 + (c - '0');
  }
  return v;
}

Array read_external(const ::onnx::TensorProto& t, const Shape& shape, DType dt,
                    const std::string& base_dir, const std::string& what) {
  namespace fs = std::filesystem;
  const std::string loc = external_key(t, "location");
  if (loc.empty()) throw FormatError(str("[onnx] ", what, ": external data without a location"));
  if (base_dir.empty())
    throw FormatError(str("[onnx] ", what, ": external data '", loc,
                          "' needs the model's file path (load the model from a file)"));
  fs::path rel(loc);
  if (rel.is_absolute())
    throw FormatError(str("[onnx] ", what, ": absolute external path '", loc, "'"));
  for (const auto& part : rel)
    if (part == "..")
      throw FormatError(
          str("[onnx] ", what, ": external path '", loc, "' leaves the model folder"));
  const int64_t offset =
      std::max<int64_t>(0, parse_size(external_key(t, "offset"), what, "offset"));
  const int64_t length = parse_size(external_key(t, "length"), what, "length");
  const int64_t want = numel(shape) * int64_t(dtype_size(dt));
  if (length >= 0 && length != want)
    throw FormatError(str("[onnx] ", what, ": external length ", length, " but ", shape_str(shape),
                          " ", dtype_name(dt), " needs ", want, " bytes"));
  std::shared_ptr<format::MappedFile> file;
  try {
    file = format::MappedFile::open((fs::path(base_dir) / rel).string());
  } catch (const Error& e) {
    throw FormatError(str("[onnx] ", what, ": external data: ", e.what()));
  }
  if (uint64_t(offset) > file->size() || uint64_t(want) > file->size() - uint64_t(offset))
    throw FormatError(str("[onnx] ", what, ": external file '", loc, "' has ", file->size(),
                          " bytes, needs ", offset, "+", want));
  Array a = Array::empty(shape, dt);
  if (want > 0) std::memcpy(a.data(), file->data() + offset, size_t(want));
  return a;
}

template <typename Field>
void check_count(const Field& f, int64_t n, const std::string& what, const char* name) {
  if (int64_t(f.size()) != n)
    throw FormatError(
        str("[onnx] ", what, ": ", name, " has ", f.size(), " values, dims need ", n));
}

}  // namespace

Array array_from_tensor_proto(const ::onnx::TensorProto& t, const std::string& base_dir,
                              const std::string& what, std::shared_ptr<const void> owner) {
  const int code = t.data_type();
  std::optional<DType> odt = dtype_from_onnx(code);
  if (!odt)
    throw UnsupportedError(str("[onnx] ", what, ": data type ", onnx_type_name(code), " (", code,
                               ") is not supported"));
  const DType dt = *odt;
  if (t.has_segment()) throw UnsupportedError(str("[onnx] ", what, ": segmented tensors"));
  const Shape shape = dims_of(t, what);
  const int64_t n = numel(shape);
  if (t.data_location() == ::onnx::TensorProto::EXTERNAL)
    return read_external(t, shape, dt, base_dir, what);

  // Sizes are checked before allocating: hostile dims must not reserve memory.
  const size_t nbytes = size_t(n) * dtype_size(dt);
  if (t.has_raw_data()) {
    if (t.raw_data().size() != nbytes)
      throw FormatError(str("[onnx] ", what, ": raw_data has ", t.raw_data().size(), " bytes, ",
                            shape_str(shape), " ", dtype_name(dt), " needs ", nbytes));
    if (owner && dt != DType::Bool && nbytes > 0) {
      // Borrowed: the message outlives the array (kernels never write constants).
      Array a;
      a.storage = Storage::borrow(const_cast<char*>(t.raw_data().data()), nbytes,
                                  std::const_pointer_cast<void>(owner));
      a.shape = shape;
      a.strides = contiguous_strides(shape);
      a.dtype = dt;
      return a;
    }
    Array a = Array::empty(shape, dt);
    if (nbytes) std::memcpy(a.data(), t.raw_data().data(), nbytes);
    if (dt == DType::Bool)  // a bool byte other than 0/1 would break kernels' assumptions
      for (int64_t i = 0; i < n; ++i) a.data_as<uint8_t>()[i] = a.data_as<uint8_t>()[i] != 0;
    return a;
  }
  const int64_t given = dt == DType::Float32                         ? t.float_data_size()
                        : dt == DType::Float64                       ? t.double_data_size()
                        : dt == DType::Int64                         ? t.int64_data_size()
                        : dt == DType::UInt32 || dt == DType::UInt64 ? t.uint64_data_size()
                                                                     : t.int32_data_size();
  if (given != n)
    throw FormatError(
        str("[onnx] ", what, ": ", given, " values stored, ", shape_str(shape), " needs ", n));
  Array a = Array::empty(shape, dt);
  switch (dt) {
    case DType::Float32:
      check_count(t.float_data(), n, what, "float_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<float>()[i] = t.float_data(int(i));
      break;
    case DType::Float64:
      check_count(t.double_data(), n, what, "double_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<double>()[i] = t.double_data(int(i));
      break;
    case DType::Int64:
      check_count(t.int64_data(), n, what, "int64_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<int64_t>()[i] = t.int64_data(int(i));
      break;
    case DType::Int32:
      check_count(t.int32_data(), n, what, "int32_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<int32_t>()[i] = t.int32_data(int(i));
      break;
    case DType::Int8:
      check_count(t.int32_data(), n, what, "int32_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<int8_t>()[i] = int8_t(t.int32_data(int(i)));
      break;
    case DType::UInt8:
      check_count(t.int32_data(), n, what, "int32_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<uint8_t>()[i] = uint8_t(t.int32_data(int(i)));
      break;
    case DType::Int16:  // 16-bit ints live in int32_data, 32/64-bit unsigned in uint64_data
      check_count(t.int32_data(), n, what, "int32_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<int16_t>()[i] = int16_t(t.int32_data(int(i)));
      break;
    case DType::UInt16:
      check_count(t.int32_data(), n, what, "int32_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<uint16_t>()[i] = uint16_t(t.int32_data(int(i)));
      break;
    case DType::UInt32:
      check_count(t.uint64_data(), n, what, "uint64_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<uint32_t>()[i] = uint32_t(t.uint64_data(int(i)));
      break;
    case DType::UInt64:
      check_count(t.uint64_data(), n, what, "uint64_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<uint64_t>()[i] = t.uint64_data(int(i));
      break;
    case DType::Float8E4M3FN:  // float8: one bit pattern per int32_data entry
    case DType::Float8E4M3FNUZ:
    case DType::Float8E5M2:
    case DType::Float8E5M2FNUZ:
      check_count(t.int32_data(), n, what, "int32_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<uint8_t>()[i] = uint8_t(t.int32_data(int(i)));
      break;
    case DType::Bool:
      check_count(t.int32_data(), n, what, "int32_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<uint8_t>()[i] = t.int32_data(int(i)) != 0;
      break;
    case DType::Float16:
    case DType::BFloat16:  // both are stored as their 16-bit patterns in int32_data
      check_count(t.int32_data(), n, what, "int32_data");
      for (int64_t i = 0; i < n; ++i) a.data_as<uint16_t>()[i] = uint16_t(t.int32_data(int(i)));
      break;
  }
  return a;
}

}  // namespace nef::onnx_import
