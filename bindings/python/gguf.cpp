// nef._nef.GgufFile: the GGUF reader (src/format/gguf.h) for python/nef/gguf.py. Tensor data
// leaves as numpy views and nef tensors over the mapping (no copies); metadata as Python values.
#include "format/gguf.h"

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <utility>

#include "common/quant.h"
#include "interop.h"
#include "nef/tensor.h"

namespace nefpy {
namespace {

using nef::format::GgufArray;
using nef::format::GgufFile;
using nef::format::GgufType;
using nef::format::GgufValue;

nb::object array_to_py(const GgufArray& a) {
  nb::list out;
  switch (a.elem_type) {
    case GgufType::Bool:
      for (uint64_t v : a.u) out.append(nb::bool_(v != 0));
      break;
    case GgufType::UInt8:
    case GgufType::UInt16:
    case GgufType::UInt32:
    case GgufType::UInt64:
      for (uint64_t v : a.u) out.append(nb::int_(v));
      break;
    case GgufType::Int8:
    case GgufType::Int16:
    case GgufType::Int32:
    case GgufType::Int64:
      for (int64_t v : a.i) out.append(nb::int_(v));
      break;
    case GgufType::Float32:
    case GgufType::Float64:
      for (double v : a.f) out.append(nb::float_(v));
      break;
    case GgufType::String:
      for (const std::string& v : a.s) out.append(nb::str(v.data(), v.size()));
      break;
    case GgufType::Array:
      for (const GgufArray& v : a.arrays) out.append(array_to_py(v));
      break;
  }
  return std::move(out);
}

nb::object value_to_py(const GgufValue& v) {
  switch (v.type) {
    case GgufType::Bool:
      return nb::bool_(v.u != 0);
    case GgufType::UInt8:
    case GgufType::UInt16:
    case GgufType::UInt32:
    case GgufType::UInt64:
      return nb::int_(v.u);
    case GgufType::Int8:
    case GgufType::Int16:
    case GgufType::Int32:
    case GgufType::Int64:
      return nb::int_(v.i);
    case GgufType::Float32:
    case GgufType::Float64:
      return nb::float_(v.f);
    case GgufType::String:
      return nb::str(v.s.data(), v.s.size());
    case GgufType::Array:
      return array_to_py(v.array);
  }
  return nb::none();
}

nb::tuple ints_tuple(const std::vector<int64_t>& xs) {
  nb::list l;
  for (int64_t x : xs) l.append(x);
  return nb::tuple(l);
}

nef::quant::Format parse_format(const std::string& name) {
  auto f = nef::quant::format_from_name(name);
  if (!f)
    throw nef::ValidationError(
        nef::str("[quant] unknown format '", name, "' (q4_0, q4_1, q8_0, q4_k, q5_k, q6_k)"));
  return *f;
}

// Rows of a C-contiguous host array: (rows, last dim), rows = product of the other dims.
std::pair<int64_t, int64_t> rows_of(const nef::Array& a, const char* op) {
  if (a.rank() == 0) throw nef::ShapeError(nef::str("[", op, "] needs at least one dimension"));
  int64_t k = a.shape.back();
  return {k == 0 ? 0 : a.numel() / k, k};
}

}  // namespace

void bind_gguf(nb::module_& m) {
  // quant::quantize_row over the last axis of a float32 array: uint8 [..., row_bytes].
  m.def("quantize", [](nb::handle arr, const std::string& fmt) {
    nef::quant::Format f = parse_format(fmt);
    nef::Array x = array_from_numpy(arr);
    if (x.dtype != nef::DType::Float32)
      throw nef::TypeError(nef::str("[quantize] expects float32, got ", nef::dtype_name(x.dtype)));
    x = x.contiguous();
    auto [rows, k] = rows_of(x, "quantize");
    int64_t rb = nef::quant::row_bytes(f, k);
    nef::Shape shape = x.shape;
    shape.back() = rb;
    nef::Array out = nef::Array::empty(shape, nef::DType::UInt8);
    for (int64_t r = 0; r < rows; ++r)
      nef::quant::quantize_row(f, x.data_as<const float>() + r * k, out.data_as<uint8_t>() + r * rb,
                               k);
    return array_to_numpy(out, /*writable=*/true);
  });
  // quant::dequantize_row over the last axis of a uint8 array of whole blocks: float32.
  m.def("dequantize", [](nb::handle arr, const std::string& fmt) {
    nef::quant::Format f = parse_format(fmt);
    nef::Array x = array_from_numpy(arr);
    if (x.dtype != nef::DType::UInt8)
      throw nef::TypeError(
          nef::str("[dequantize] expects uint8 blocks, got ", nef::dtype_name(x.dtype)));
    x = x.contiguous();
    auto [rows, rb] = rows_of(x, "dequantize");
    const nef::quant::FormatInfo& fi = nef::quant::info(f);
    if (rb % fi.block_bytes != 0)
      throw nef::ShapeError(nef::str("[dequantize] rows of ", rb, " bytes are not whole ", fi.name,
                                     " blocks of ", fi.block_bytes, " bytes"));
    int64_t k = rb / fi.block_bytes * fi.block_elems;
    nef::Shape shape = x.shape;
    shape.back() = k;
    nef::Array out = nef::Array::empty(shape, nef::DType::Float32);
    for (int64_t r = 0; r < rows; ++r)
      nef::quant::dequantize_row(f, x.data_as<const uint8_t>() + r * rb,
                                 out.data_as<float>() + r * k, k);
    return array_to_numpy(out, /*writable=*/true);
  });

  nb::class_<GgufFile>(m, "GgufFile")
      .def_static("open",
                  [](const std::string& path) {
                    nb::gil_scoped_release release;
                    return GgufFile::open(path);
                  })
      .def_static("parse",
                  [](nb::bytes data) {
                    return GgufFile::parse(static_cast<const uint8_t*>(data.data()), data.size());
                  })
      .def_prop_ro("version", &GgufFile::version)
      .def_prop_ro("alignment", &GgufFile::alignment)
      .def_prop_ro("data_offset", &GgufFile::data_offset)
      .def_prop_ro("file_size", &GgufFile::file_size)
      .def_prop_ro("keys", &GgufFile::keys)
      // (type name, element type name or None) of a key, as the file stores it.
      .def("value_type",
           [](const GgufFile& f, const std::string& key) {
             const GgufValue& v = f.value(key);
             nb::object elem = nb::none();
             if (v.type == GgufType::Array) elem = nb::str(gguf_type_name(v.array.elem_type));
             return nb::make_tuple(nb::str(gguf_type_name(v.type)), elem);
           })
      .def("value",
           [](const GgufFile& f, const std::string& key) { return value_to_py(f.value(key)); })
      .def("metadata",
           [](const GgufFile& f) {
             nb::dict d;
             for (const std::string& k : f.keys())
               d[nb::str(k.data(), k.size())] = value_to_py(f.value(k));
             return d;
           })
      // One tuple per tensor, file order: (name, type name, ggml type id, numpy shape,
      // data offset, nbytes, supported).
      .def("tensor_infos",
           [](const GgufFile& f) {
             nb::list out;
             for (const auto& t : f.tensors())
               out.append(nb::make_tuple(nb::str(t.name.data(), t.name.size()), t.type_name,
                                         t.ggml_type, ints_tuple(t.shape), t.offset, t.nbytes,
                                         t.supported()));
             return out;
           })
      .def("raw",
           [](const GgufFile& f, const std::string& name) { return array_to_numpy(f.raw(name)); })
      .def("view", [](const GgufFile& f,
                      const std::string& name) { return array_to_numpy(f.tensor(name)); })
      .def("dequantize",
           [](const GgufFile& f, const std::string& name) {
             nef::Array a;
             {
               nb::gil_scoped_release release;
               a = f.dequantize(name);
             }
             return array_to_numpy(a, /*writable=*/true);
           })
      .def("tensor", [](const GgufFile& f, const std::string& name) {
        return nef::from_array(f.tensor(name));
      });
}

}  // namespace nefpy
