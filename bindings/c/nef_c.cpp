// The C ABI over the C++ API: every entry point catches everything and returns a status.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "api/lazy.h"
#include "nef/nef.h"
#include "nef/tensor.h"
#include "nef/version.h"

struct nef_tensor {
  nef::Tensor t;
};
struct nef_graph {
  nef::LoadedGraph g;
};

namespace {
thread_local std::string last_error;

template <typename Fn>
nef_status guard(Fn&& fn) {
  try {
    last_error.clear();
    fn();
    return NEF_OK;
  } catch (const nef::Error& e) {
    last_error = e.what();
    return static_cast<nef_status>(e.code());
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
    return NEF_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    last_error = e.what();
    return NEF_ERROR;
  } catch (...) {
    last_error = "unknown error";
    return NEF_ERROR;
  }
}

struct InvalidArgument {};
#define NEF_REQUIRE(p)                                                           \
  do {                                                                           \
    if (!(p)) {                                                                  \
      last_error = "invalid argument: " #p " is NULL";                           \
      return NEF_ERROR_INVALID_ARGUMENT;                                         \
    }                                                                            \
  } while (0)

nef::DType to_dtype(nef_dtype d) {
  if (static_cast<int>(d) < 0 || static_cast<int>(d) >= nef::kNumDTypes)
    throw nef::TypeError(nef::str("invalid dtype code ", static_cast<int>(d)));
  return static_cast<nef::DType>(d);
}

nef::Shape to_shape(const int64_t* shape, int rank) {
  if (rank < 0 || rank > nef::kMaxRank) throw nef::ShapeError(nef::str("invalid rank ", rank));
  if (rank > 0 && !shape) throw nef::ShapeError("shape is NULL");
  return nef::Shape(shape, shape + rank);
}

nef::ir::Attrs attrs_from_json(const char* text) {
  nef::ir::Attrs attrs;
  if (!text || !*text) return attrs;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw nef::ValidationError(nef::str("attrs_json: ", e.what()));
  }
  if (!j.is_object()) throw nef::ValidationError("attrs_json must be a JSON object");
  for (auto& [k, v] : j.items()) {
    if (v.is_boolean()) attrs.set(k, v.get<bool>());
    else if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
      throw nef::ValidationError(nef::str("attrs_json: '", k, "' is out of the int64 range"));
    else if (v.is_number_integer()) attrs.set(k, v.get<int64_t>());
    else if (v.is_number_float()) attrs.set(k, v.get<double>());
    else if (v.is_string()) attrs.set(k, v.get<std::string>());
    else if (v.is_array()) {
      bool all_int = true;
      for (auto& e : v) {
        if (!e.is_number()) throw nef::ValidationError(nef::str("attrs_json: '", k, "' must hold numbers"));
        if (e.is_number_unsigned() && e.get<uint64_t>() > uint64_t(INT64_MAX))
          throw nef::ValidationError(nef::str("attrs_json: '", k, "' is out of the int64 range"));
        all_int = all_int && e.is_number_integer();
      }
      if (all_int) attrs.set(k, v.get<std::vector<int64_t>>());
      else attrs.set(k, v.get<std::vector<double>>());
    } else {
      throw nef::ValidationError(nef::str("attrs_json: unsupported value for '", k, "'"));
    }
  }
  return attrs;
}
}  // namespace

extern "C" {

const char* nef_version(void) { return NEF_VERSION_STRING; }
const char* nef_last_error(void) { return last_error.c_str(); }
const char* nef_status_name(nef_status s) {
  if (s == NEF_ERROR_INVALID_ARGUMENT) return "NEFInvalidArgument";
  return nef::error_code_name(static_cast<nef::ErrorCode>(s));
}

nef_status nef_tensor_from_data(const void* data, nef_dtype dtype, const int64_t* shape, int rank,
                                nef_tensor** out) {
  NEF_REQUIRE(out);
  return guard([&] {
    nef::Shape s = to_shape(shape, rank);
    nef::Array a = nef::Array::empty(s, to_dtype(dtype));
    if (a.nbytes() > 0) {
      if (!data) throw nef::ValidationError("[tensor] data is NULL");
      std::memcpy(a.data(), data, a.nbytes());
    }
    *out = new nef_tensor{nef::from_array(std::move(a))};
  });
}

nef_status nef_placeholder(const char* name, nef_dtype dtype, const int64_t* shape, int rank,
                           nef_tensor** out) {
  NEF_REQUIRE(name);
  NEF_REQUIRE(out);
  return guard([&] { *out = new nef_tensor{nef::placeholder(name, to_shape(shape, rank), to_dtype(dtype))}; });
}

void nef_tensor_free(nef_tensor* t) { delete t; }

nef_status nef_op(const char* op, nef_tensor* const* inputs, int num_inputs, const char* attrs_json,
                  nef_tensor** out) {
  NEF_REQUIRE(op);
  NEF_REQUIRE(out);
  NEF_REQUIRE(num_inputs == 0 || inputs);
  return guard([&] {
    std::vector<nef::Tensor> in;
    for (int i = 0; i < num_inputs; ++i) {
      if (!inputs[i]) throw nef::ValidationError(nef::str("[", op, "] input ", i, " is NULL"));
      in.push_back(inputs[i]->t);
    }
    *out = new nef_tensor{nef::op(op, in, attrs_from_json(attrs_json))};
  });
}

nef_status nef_matmul(nef_tensor* a, nef_tensor* b, nef_tensor** out) {
  nef_tensor* in[2] = {a, b};
  NEF_REQUIRE(a && b);
  return nef_op("matmul", in, 2, nullptr, out);
}
nef_status nef_add(nef_tensor* a, nef_tensor* b, nef_tensor** out) {
  nef_tensor* in[2] = {a, b};
  NEF_REQUIRE(a && b);
  return nef_op("add", in, 2, nullptr, out);
}

nef_status nef_tensor_rank(nef_tensor* t, int* rank) {
  NEF_REQUIRE(t && rank);
  return guard([&] { *rank = t->t.rank(); });
}
nef_status nef_tensor_shape(nef_tensor* t, int64_t* shape) {
  NEF_REQUIRE(t && shape);
  return guard([&] {
    for (int i = 0; i < t->t.rank(); ++i) shape[i] = t->t.shape()[i];
  });
}
nef_status nef_tensor_dtype(nef_tensor* t, nef_dtype* dtype) {
  NEF_REQUIRE(t && dtype);
  return guard([&] { *dtype = static_cast<nef_dtype>(t->t.dtype()); });
}
nef_status nef_tensor_execute(nef_tensor* t) {
  NEF_REQUIRE(t);
  return guard([&] { t->t.execute(); });
}
nef_status nef_tensor_copy_to(nef_tensor* t, void* dst, size_t capacity) {
  NEF_REQUIRE(t);
  return guard([&] {
    nef::Array a = t->t.array().contiguous();
    if (a.nbytes() > capacity)
      throw nef::ValidationError(nef::str("[copy_to] needs ", a.nbytes(), " bytes, buffer has ", capacity));
    if (a.nbytes() > 0) {
      if (!dst) throw nef::ValidationError("[copy_to] destination is NULL");
      std::memcpy(dst, a.data(), a.nbytes());
    }
  });
}
nef_status nef_tensor_build(nef_tensor* t, const char* path) {
  NEF_REQUIRE(t && path);
  return guard([&] { t->t.build(path); });
}

nef_status nef_graph_load(const char* path, nef_graph** out) {
  NEF_REQUIRE(path && out);
  return guard([&] { *out = new nef_graph{nef::LoadedGraph::load(path)}; });
}
namespace {
nef_status dims_from_c(const char* const* names, const int64_t* values, int n,
                       std::map<std::string, int64_t>* dims) {
  NEF_REQUIRE(n >= 0 && (n == 0 || (names && values)));
  for (int i = 0; i < n; ++i) {
    NEF_REQUIRE(names[i]);
    (*dims)[names[i]] = values[i];
  }
  return NEF_OK;
}
}  // namespace

nef_status nef_graph_from_onnx(const char* path, const char* const* dim_names,
                               const int64_t* dim_values, int num_dims, nef_graph** out) {
  NEF_REQUIRE(path && out);
  std::map<std::string, int64_t> dims;
  if (nef_status s = dims_from_c(dim_names, dim_values, num_dims, &dims); s != NEF_OK) return s;
  return guard([&] { *out = new nef_graph{nef::LoadedGraph::from_onnx(path, dims)}; });
}

nef_status nef_graph_from_onnx_bytes(const void* data, size_t size, const char* const* dim_names,
                                     const int64_t* dim_values, int num_dims, nef_graph** out) {
  NEF_REQUIRE((data || size == 0) && out);
  std::map<std::string, int64_t> dims;
  if (nef_status s = dims_from_c(dim_names, dim_values, num_dims, &dims); s != NEF_OK) return s;
  return guard([&] {
    std::string bytes(static_cast<const char*>(data), size);
    *out = new nef_graph{nef::LoadedGraph::from_onnx_bytes(bytes, dims)};
  });
}

void nef_graph_free(nef_graph* g) { delete g; }
nef_status nef_graph_num_inputs(nef_graph* g, int* n) {
  NEF_REQUIRE(g && n);
  return guard([&] { *n = static_cast<int>(g->g.inputs().size()); });
}
nef_status nef_graph_num_outputs(nef_graph* g, int* n) {
  NEF_REQUIRE(g && n);
  return guard([&] { *n = static_cast<int>(g->g.outputs().size()); });
}
nef_status nef_graph_input_name(nef_graph* g, int i, const char** name) {
  NEF_REQUIRE(g && name);
  return guard([&] {
    if (i < 0 || size_t(i) >= g->g.inputs().size())
      throw nef::ValidationError(nef::str("input index ", i, " out of range"));
    *name = g->g.inputs()[i].c_str();
  });
}
nef_status nef_graph_output_name(nef_graph* g, int i, const char** name) {
  NEF_REQUIRE(g && name);
  return guard([&] {
    if (i < 0 || size_t(i) >= g->g.outputs().size())
      throw nef::ValidationError(nef::str("output index ", i, " out of range"));
    *name = g->g.outputs()[i].c_str();
  });
}
nef_status nef_graph_run(nef_graph* g, nef_tensor* const* inputs, int num_inputs,
                         nef_tensor** outputs, int num_outputs) {
  NEF_REQUIRE(g);
  NEF_REQUIRE(num_inputs == 0 || inputs);
  NEF_REQUIRE(num_outputs == 0 || outputs);
  return guard([&] {
    const auto& names = g->g.inputs();
    if (size_t(num_inputs) != names.size())
      throw nef::ValidationError(nef::str("[run] graph has ", names.size(), " inputs, got ", num_inputs));
    if (size_t(num_outputs) != g->g.outputs().size())
      throw nef::ValidationError(nef::str("[run] graph has ", g->g.outputs().size(), " outputs, got ", num_outputs));
    std::map<std::string, nef::Array> in;
    for (int i = 0; i < num_inputs; ++i) {
      if (!inputs[i]) throw nef::ValidationError(nef::str("[run] input ", i, " is NULL"));
      in[names[i]] = inputs[i]->t.array();
    }
    auto res = g->g.run(in);
    std::vector<std::unique_ptr<nef_tensor>> made;  // nothing leaks if a later one throws
    for (int i = 0; i < num_outputs; ++i)
      made.push_back(std::make_unique<nef_tensor>(nef_tensor{nef::from_array(res.at(g->g.outputs()[i]))}));
    for (int i = 0; i < num_outputs; ++i) outputs[i] = made[i].release();
  });
}

}  // extern "C"
