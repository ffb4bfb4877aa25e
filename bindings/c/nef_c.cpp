// The C ABI over the C++ API: every entry point catches everything and returns a status.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "api/lazy.h"
#include "backends/registry.h"
#include "llm/generate.h"
#include "nef/nef.h"
#include "nef/tensor.h"
#include "nef/version.h"

namespace {
// Live handles per kind (nef_live_handles): a member of each handle struct counts itself, so
// every way a handle is made or destroyed is counted.
enum HandleKind { kTensorHandle, kGraphHandle, kAttrsHandle, kNumHandleKinds };
std::atomic<int64_t> live_handles[kNumHandleKinds];
template <HandleKind K>
struct Counted {
  Counted() { ++live_handles[K]; }
  Counted(const Counted&) { ++live_handles[K]; }
  Counted& operator=(const Counted&) = default;
  ~Counted() { --live_handles[K]; }
};
}  // namespace

struct nef_tensor {
  nef::Tensor t;
  Counted<kTensorHandle> counted{};
};
struct nef_graph {
  nef::LoadedGraph g;
  Counted<kGraphHandle> counted{};
};
struct nef_attrs {
  nef::ir::Attrs a;
  Counted<kAttrsHandle> counted{};
};

namespace {
thread_local std::string last_error;
// Text returned by nef_stats_json, nef_devices_json, nef_graph_input_dim_name (per thread).
thread_local std::string stats_text, devices_text, dim_name_text;

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
#define NEF_REQUIRE(p)                                 \
  do {                                                 \
    if (!(p)) {                                        \
      last_error = "invalid argument: " #p " is NULL"; \
      return NEF_ERROR_INVALID_ARGUMENT;               \
    }                                                  \
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
        if (!e.is_number())
          throw nef::ValidationError(nef::str("attrs_json: '", k, "' must hold numbers"));
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
  return guard([&] {
    *out = new nef_tensor{nef::placeholder(name, to_shape(shape, rank), to_dtype(dtype))};
  });
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
      throw nef::ValidationError(
          nef::str("[copy_to] needs ", a.nbytes(), " bytes, buffer has ", capacity));
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
      throw nef::ValidationError(
          nef::str("[run] graph has ", names.size(), " inputs, got ", num_inputs));
    if (size_t(num_outputs) != g->g.outputs().size())
      throw nef::ValidationError(
          nef::str("[run] graph has ", g->g.outputs().size(), " outputs, got ", num_outputs));
    std::map<std::string, nef::Array> in;
    for (int i = 0; i < num_inputs; ++i) {
      if (!inputs[i]) throw nef::ValidationError(nef::str("[run] input ", i, " is NULL"));
      in[names[i]] = inputs[i]->t.array();
    }
    auto res = g->g.run(in);
    std::vector<std::unique_ptr<nef_tensor>> made;  // nothing leaks if a later one throws
    for (int i = 0; i < num_outputs; ++i)
      made.push_back(
          std::make_unique<nef_tensor>(nef_tensor{nef::from_array(res.at(g->g.outputs()[i]))}));
    for (int i = 0; i < num_outputs; ++i) outputs[i] = made[i].release();
  });
}

// ---- typed attributes --------------------------------------------------------------------

nef_status nef_attrs_new(nef_attrs** out) {
  NEF_REQUIRE(out);
  return guard([&] { *out = new nef_attrs{}; });
}
void nef_attrs_free(nef_attrs* a) { delete a; }
nef_status nef_attrs_set_int(nef_attrs* a, const char* name, int64_t value) {
  NEF_REQUIRE(a && name);
  return guard([&] { a->a.set(name, value); });
}
nef_status nef_attrs_set_float(nef_attrs* a, const char* name, double value) {
  NEF_REQUIRE(a && name);
  return guard([&] { a->a.set(name, value); });
}
nef_status nef_attrs_set_bool(nef_attrs* a, const char* name, int value) {
  NEF_REQUIRE(a && name);
  return guard([&] { a->a.set(name, value != 0); });
}
nef_status nef_attrs_set_string(nef_attrs* a, const char* name, const char* value) {
  NEF_REQUIRE(a && name && value);
  return guard([&] { a->a.set(name, std::string(value)); });
}
nef_status nef_attrs_set_ints(nef_attrs* a, const char* name, const int64_t* values, int n) {
  NEF_REQUIRE(a && name && n >= 0 && (n == 0 || values));
  return guard([&] { a->a.set(name, std::vector<int64_t>(values, values + n)); });
}
nef_status nef_attrs_set_floats(nef_attrs* a, const char* name, const double* values, int n) {
  NEF_REQUIRE(a && name && n >= 0 && (n == 0 || values));
  return guard([&] { a->a.set(name, std::vector<double>(values, values + n)); });
}

namespace {
std::vector<nef::Tensor> tensors_from_c(const char* what, nef_tensor* const* ts, int n) {
  std::vector<nef::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) {
    if (!ts[i]) throw nef::ValidationError(nef::str("[", what, "] input ", i, " is NULL"));
    out.push_back(ts[i]->t);
  }
  return out;
}
}  // namespace

nef_status nef_op_attrs(const char* op, nef_tensor* const* inputs, int num_inputs,
                        const nef_attrs* attrs, nef_tensor** out) {
  NEF_REQUIRE(op);
  NEF_REQUIRE(out);
  NEF_REQUIRE(num_inputs >= 0 && (num_inputs == 0 || inputs));
  return guard([&] {
    *out = new nef_tensor{
        nef::op(op, tensors_from_c(op, inputs, num_inputs), attrs ? attrs->a : nef::ir::Attrs{})};
  });
}

// ---- more on tensors and graph files ------------------------------------------------------

nef_status nef_evaluate(nef_tensor* const* tensors, int num_tensors) {
  NEF_REQUIRE(num_tensors >= 0 && (num_tensors == 0 || tensors));
  return guard([&] { nef::evaluate(tensors_from_c("execute", tensors, num_tensors)); });
}

nef_status nef_build(const char* path, const char* const* names, nef_tensor* const* tensors, int n,
                     int embed_plan) {
  NEF_REQUIRE(path);
  NEF_REQUIRE(n >= 0 && (n == 0 || (names && tensors)));
  return guard([&] {
    if (n == 0) throw nef::ValidationError("[build] no outputs");
    std::vector<std::pair<std::string, nef::Tensor>> outs;
    for (int i = 0; i < n; ++i) {
      if (!names[i]) throw nef::ValidationError(nef::str("[build] output name ", i, " is NULL"));
      if (!tensors[i])
        throw nef::ValidationError(nef::str("[build] output '", names[i], "' is NULL"));
      outs.emplace_back(names[i], tensors[i]->t);
    }
    nef::build(path, outs, embed_plan != 0);
  });
}

nef_status nef_tensor_is_materialized(nef_tensor* t, int* materialized) {
  NEF_REQUIRE(t && materialized);
  return guard([&] { *materialized = t->t.is_materialized() ? 1 : 0; });
}
nef_status nef_tensor_op_name(nef_tensor* t, const char** name) {
  NEF_REQUIRE(t && name);
  return guard([&] { *name = t->t.op().c_str(); });
}
size_t nef_dtype_size(nef_dtype dtype) {
  int d = static_cast<int>(dtype);
  return d >= 0 && d < nef::kNumDTypes ? nef::dtype_size(static_cast<nef::DType>(d)) : 0;
}
const char* nef_dtype_name(nef_dtype dtype) {
  int d = static_cast<int>(dtype);
  return d >= 0 && d < nef::kNumDTypes ? nef::dtype_name(static_cast<nef::DType>(d)) : nullptr;
}

namespace {
void check_input_index(nef_graph* g, int i) {
  if (i < 0 || size_t(i) >= g->g.inputs().size())
    throw nef::ValidationError(nef::str("input index ", i, " out of range"));
}
}  // namespace

nef_status nef_graph_input_dtype(nef_graph* g, int i, nef_dtype* dtype) {
  NEF_REQUIRE(g && dtype);
  return guard([&] {
    check_input_index(g, i);
    *dtype = static_cast<nef_dtype>(g->g.input_types()[i].second);
  });
}
nef_status nef_graph_input_rank(nef_graph* g, int i, int* rank) {
  NEF_REQUIRE(g && rank);
  return guard([&] {
    check_input_index(g, i);
    *rank = static_cast<int>(g->g.input_types()[i].first.size());
  });
}
nef_status nef_graph_input_shape(nef_graph* g, int i, int64_t* shape) {
  NEF_REQUIRE(g && shape);
  return guard([&] {
    check_input_index(g, i);
    const nef::Shape s = g->g.input_types()[i].first;
    std::copy(s.begin(), s.end(), shape);
  });
}
nef_status nef_graph_input_dim_name(nef_graph* g, int i, int dim, const char** name) {
  NEF_REQUIRE(g && name);
  return guard([&] {
    check_input_index(g, i);
    int rank = static_cast<int>(g->g.input_types()[i].first.size());
    if (dim < 0 || dim >= rank)
      throw nef::ValidationError(nef::str("dim index ", dim, " out of range for rank ", rank));
    auto names = g->g.input_dim_names();  // built per call, so the text lives per thread
    dim_name_text = size_t(i) < names.size() && size_t(dim) < names[i].size() ? names[i][dim] : "";
    *name = dim_name_text.c_str();
  });
}
nef_status nef_graph_save(nef_graph* g, const char* path, int embed_plan) {
  NEF_REQUIRE(g && path);
  return guard([&] { g->g.save(path, embed_plan != 0); });
}

// ---- runtime ------------------------------------------------------------------------------

nef_status nef_stats_json(const char** json) {
  NEF_REQUIRE(json);
  return guard([&] {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : nef::stats()) j[k] = v;
    stats_text = j.dump();
    *json = stats_text.c_str();
  });
}
nef_status nef_reset_stats(void) {
  return guard([&] { nef::reset_stats(); });
}
nef_status nef_devices_json(const char** json) {
  NEF_REQUIRE(json);
  return guard([&] {
    devices_text = nef::backend::to_json(nef::backend::detect());
    *json = devices_text.c_str();
  });
}
nef_status nef_set_devices(const char* const* names, int n) {
  NEF_REQUIRE(n >= 0 && (n == 0 || names));
  return guard([&] {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i) {
      if (!names[i]) throw nef::ValidationError(nef::str("[set_devices] name ", i, " is NULL"));
      v.emplace_back(names[i]);
    }
    nef::set_devices(v);
  });
}
nef_status nef_set_num_threads(int n) {
  return guard([&] {
    if (n < 0)
      throw nef::ValidationError(nef::str("[set_num_threads] threads must be >= 0, got ", n));
    nef::set_num_threads(n);
  });
}
nef_status nef_num_threads(int* n) {
  NEF_REQUIRE(n);
  return guard([&] { *n = nef::num_threads(); });
}
nef_status nef_live_handles(int64_t* tensors, int64_t* graphs, int64_t* attrs) {
  if (tensors) *tensors = live_handles[kTensorHandle].load();
  if (graphs) *graphs = live_handles[kGraphHandle].load();
  if (attrs) *attrs = live_handles[kAttrsHandle].load();
  last_error.clear();
  return NEF_OK;
}

}  // extern "C"

// ---- language models ---------------------------------------------------------------------

struct nef_llm {
  std::shared_ptr<const nef::llm::Model> m;
};

nef_status nef_llm_load(const char* path, int64_t context, nef_llm** out) {
  NEF_REQUIRE(path);
  NEF_REQUIRE(out);
  return guard([&] {
    nef::llm::LoadOptions o;
    o.context = context;
    *out = new nef_llm{nef::llm::Model::load(path, o)};
  });
}

void nef_llm_free(nef_llm* m) { delete m; }

void nef_generate_options_init(nef_generate_options* o) {
  if (!o) return;
  const nef::llm::SamplingParams d;
  *o = nef_generate_options{
      256, d.temperature, d.top_k, d.top_p, d.min_p, d.repeat_penalty, d.seed, 0, 0, nullptr, 0};
}

nef_status nef_llm_generate(nef_llm* m, const char* prompt, const nef_generate_options* opts,
                            nef_piece_fn on_piece, void* user, nef_generate_stats* stats) {
  NEF_REQUIRE(m);
  NEF_REQUIRE(prompt);
  NEF_REQUIRE(on_piece);
  return guard([&] {
    nef_generate_options o;
    nef_generate_options_init(&o);
    if (opts) o = *opts;
    nef::llm::GenerateOptions g;
    g.max_tokens = o.max_tokens;
    g.sampling.temperature = o.temperature;
    g.sampling.top_k = o.top_k;
    g.sampling.top_p = o.top_p;
    g.sampling.min_p = o.min_p;
    g.sampling.repeat_penalty = o.repeat_penalty;
    g.sampling.seed = o.seed;
    g.ignore_eos = o.ignore_eos != 0;
    if (o.n_stop < 0 || (o.n_stop > 0 && !o.stop))
      throw nef::ValidationError(
          nef::str("[generate] n_stop = ", o.n_stop, " with stop ", o.stop ? "set" : "NULL"));
    for (int64_t i = 0; i < o.n_stop; ++i) {
      if (!o.stop[i])
        throw nef::ValidationError(nef::str("[generate] stop string ", i, " is NULL"));
      g.stop.emplace_back(o.stop[i]);
    }
    nef::llm::Generation gen = o.chat ? nef::llm::Generation::chat(m->m, {{"user", prompt}}, g)
                                      : nef::llm::Generation(m->m, prompt, g);
    std::string reason;
    while (auto piece = gen.next()) {
      if (on_piece(piece->data(), piece->size(), user) != 0) {
        reason = "callback";
        break;
      }
    }
    if (stats) {
      const nef::llm::GenerateStats& s = gen.stats();
      stats->prompt_tokens = s.prompt_tokens;
      stats->generated_tokens = s.generated_tokens;
      stats->prompt_seconds = s.prompt_seconds;
      stats->decode_seconds = s.decode_seconds;
      if (reason.empty()) reason = s.stop_reason;
      std::snprintf(stats->stop_reason, sizeof stats->stop_reason, "%s", reason.c_str());
    }
  });
}
