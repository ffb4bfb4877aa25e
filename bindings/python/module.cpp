// The nanobind module nef._nef: a thin layer over the C++ API (include/nef/tensor.h).
// Python conveniences (operators, indexing, dtype objects, defaults) live in python/nef/.
#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "api/lazy.h"
#include "backends/registry.h"
#include "common/faults.h"
#include "interop.h"
#include "nef/tensor.h"
#include "nef/version.h"
#include "onnx/converter.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace nefpy {
void bind_llm(nb::module_& m);  // llm.cpp: Tokenizer, StreamDecoder, ChatTemplate, StopStrings
void bind_llm_model(nb::module_& m);  // llm_model.cpp: LlmModel, LlmSession, LlmGeneration
}  // namespace nefpy

namespace {

// The C++ API does not allow executing one tensor from two threads at once; with the GIL
// released, Python threads could, so executions are serialized here.
std::mutex g_exec_mutex;

template <typename F>
auto run_released(F&& f) {
  nb::gil_scoped_release release;
  std::lock_guard<std::mutex> lock(g_exec_mutex);
  return f();
}

nef::DType parse_dtype(const std::string& name) {
  auto t = nef::dtype_from_name(name);
  if (!t) throw nef::TypeError(nef::str("unknown dtype '", name, "'"));
  return *t;
}

nb::tuple shape_tuple(const nef::Shape& s) {
  nb::list l;
  for (int64_t d : s) l.append(d);
  return nb::tuple(l);
}

int64_t to_int(const std::string& op, const std::string& key, nb::handle v) {
  PyObject* idx = PyNumber_Index(v.ptr());
  if (!idx) {
    PyErr_Clear();
    throw nef::ValidationError(nef::str("[", op, "] attribute '", key, "' expects integers, got ",
                                        nb::cast<std::string>(nb::str(v.type()))));
  }
  int overflow = 0;
  long long r = PyLong_AsLongLongAndOverflow(idx, &overflow);
  Py_DECREF(idx);
  if (overflow)
    throw nef::ValidationError(nef::str("[", op, "] attribute '", key, "' overflows int64"));
  return r;
}

double to_float(const std::string& op, const std::string& key, nb::handle v) {
  double r = PyFloat_AsDouble(v.ptr());
  if (r == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw nef::ValidationError(nef::str("[", op, "] attribute '", key, "' expects numbers, got ",
                                        nb::cast<std::string>(nb::str(v.type()))));
  }
  return r;
}

// Python value -> typed attribute. bool is checked before int (bool subclasses int); a list
// with any float becomes Floats, otherwise Ints.
nef::ir::AttrValue to_attr(const std::string& op, const std::string& key, nb::handle v) {
  PyObject* p = v.ptr();
  if (PyBool_Check(p)) return p == Py_True;
  if (PyLong_Check(p)) return to_int(op, key, v);
  if (PyFloat_Check(p)) return PyFloat_AsDouble(p);
  if (PyUnicode_Check(p)) return nb::cast<std::string>(v);
  if (PyList_Check(p) || PyTuple_Check(p)) {
    nb::sequence seq = nb::borrow<nb::sequence>(v);
    bool any_float = false;
    for (nb::handle e : seq) {
      if (PyFloat_Check(e.ptr())) any_float = true;
    }
    if (any_float) {
      std::vector<double> out;
      for (nb::handle e : seq) out.push_back(to_float(op, key, e));
      return out;
    }
    std::vector<int64_t> out;
    for (nb::handle e : seq) out.push_back(to_int(op, key, e));
    return out;
  }
  if (PyIndex_Check(p)) return to_int(op, key, v);  // numpy integers
  if (PyNumber_Check(p)) return to_float(op, key, v);
  throw nef::ValidationError(nef::str("[", op, "] attribute '", key, "' has unsupported type ",
                                      nb::cast<std::string>(nb::str(v.type()))));
}

nef::ir::Attrs to_attrs(const std::string& op, const nb::dict& d) {
  nef::ir::Attrs attrs;
  for (auto [k, v] : d) {
    std::string key = nb::cast<std::string>(k);
    if (v.is_none()) continue;  // None = attribute absent (its default applies)
    attrs.set(key, to_attr(op, key, v));
  }
  return attrs;
}

// Raises the Python class named after the error code, from nef.errors (imported lazily, so
// the module works before the package finishes importing).
void translate_nef_error(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const nef::Error& e) {
    nb::object cls;
    try {
      cls = nb::module_::import_("nef.errors").attr(nef::error_code_name(e.code()));
    } catch (...) {
      PyErr_Clear();
      PyErr_SetString(PyExc_RuntimeError, e.what());
      return;
    }
    // Messages may quote names from untrusted files: bytes that are not UTF-8 become U+FFFD
    // instead of failing the conversion.
    const std::string msg = e.what();
    PyObject* text = PyUnicode_DecodeUTF8(msg.data(), Py_ssize_t(msg.size()), "replace");
    if (!text) {
      PyErr_Clear();
      PyErr_SetString(cls.ptr(), "(message not decodable)");
      return;
    }
    PyErr_SetObject(cls.ptr(), text);
    Py_DECREF(text);
  }
}

// Run results as writable numpy arrays. A result on memory of its own that nothing else holds
// is handed over as it is; one that shares memory (a view of a constant or of an input, a mapped
// device buffer, two outputs of one value) is copied first, so writing never reaches NEF's data.
nb::dict arrays_to_dict(const std::map<std::string, nef::Array>& m) {
  nb::dict d;
  for (const auto& [k, a] : m) {
    bool own = a.storage && a.storage->owns_host_memory() && a.storage.use_count() == 1;
    d[k.c_str()] = nefpy::array_to_numpy(own ? a : nefpy::copy_array(a), true);
  }
  return d;
}

// Names of the placeholders a tensor's value depends on (those without a value), in the order
// a walk from the tensor meets them; empty when the tensor can be computed.
std::vector<std::string> pending_placeholders(const nef::Tensor& t) {
  std::vector<std::string> names;
  std::unordered_set<std::string> named;
  std::unordered_set<const nef::detail::LazyNode*> seen;
  std::vector<const nef::detail::LazyNode*> stack{t.node().get()};
  while (!stack.empty()) {
    const nef::detail::LazyNode* n = stack.back();
    stack.pop_back();
    if (!n || n->value || !seen.insert(n).second) continue;
    if (n->op->name == "input") {
      std::string nm = n->attrs.get_string("name");
      if (named.insert(nm).second) names.push_back(nm);
      continue;
    }
    for (auto it = n->inputs.rbegin(); it != n->inputs.rend(); ++it) stack.push_back(it->get());
  }
  return names;
}

// {"seconds", "predicted_seconds", "kernels": [{"step", "node", "op", "ops", "kernel", "device",
// "shape", "dtype", "seconds", "predicted_seconds"}]}: what Graph.profile aggregates.
std::vector<std::unique_ptr<nef::DeviceScope>>& device_scopes() {
  thread_local std::vector<std::unique_ptr<nef::DeviceScope>> stack;
  return stack;
}

nb::dict profile_to_dict(const nef::RunProfile& p) {
  nb::list kernels;
  for (const nef::KernelProfile& k : p.kernels) {
    nb::dict e;
    e["step"] = k.step;
    e["node"] = k.node;
    e["op"] = k.op;
    e["ops"] = k.ops;
    e["kernel"] = k.kernel;
    e["device"] = k.device;
    e["shape"] = shape_tuple(k.shape);
    e["dtype"] = std::string(nef::dtype_name(k.dtype));
    e["seconds"] = k.seconds;
    e["predicted_seconds"] = k.predicted_seconds;
    e["start"] = k.start;
    e["end"] = k.end;
    kernels.append(e);
  }
  nb::dict d;
  d["seconds"] = p.seconds;
  d["predicted_seconds"] = p.predicted_seconds;
  d["kernels"] = kernels;
  return d;
}

}  // namespace

NB_MODULE(_nef, m) {
  m.doc() = "NEF native core (use the `nef` package, not this module directly)";
  nb::register_exception_translator(translate_nef_error);
  nefpy::bind_interop(m);
  nefpy::bind_gguf(m);
  nefpy::bind_llm(m);
  nefpy::bind_llm_model(m);

  nb::class_<nef::Tensor>(m, "Tensor")
      .def_prop_ro("shape", [](const nef::Tensor& t) { return shape_tuple(t.shape()); })
      .def_prop_ro("dtype",
                   [](const nef::Tensor& t) { return std::string(nef::dtype_name(t.dtype())); })
      .def_prop_ro("op", [](const nef::Tensor& t) { return t.op(); })
      .def_prop_ro("is_materialized", &nef::Tensor::is_materialized)
      .def("execute",
           [](nef::Tensor& t) {
             run_released([&] {
               t.execute();
               return 0;
             });
           })
      .def(
          "build",
          [](const nef::Tensor& t, const std::string& path, bool embed_plan) {
            run_released([&] {
              t.build(path, embed_plan);
              return 0;
            });
          },
          nb::arg("path"), nb::arg("embed_plan") = false)
      .def("same_node",
           [](const nef::Tensor& a, const nef::Tensor& b) { return a.node() == b.node(); })
      .def("prefer", [](nef::Tensor& t, const std::string& d) { t.prefer(d); })
      .def_prop_ro("device_hint", [](const nef::Tensor& t) { return t.device_hint(); })
      .def_prop_ro("device", [](const nef::Tensor& t) { return t.device(); });
  // A stack of DeviceScope hints driven by `with nef.device(...)` (one per thread).
  m.def("push_device_scope", [](const std::string& d) {
    device_scopes().push_back(std::make_unique<nef::DeviceScope>(d));
  });
  m.def("pop_device_scope", [] {
    if (!device_scopes().empty()) device_scopes().pop_back();
  });

  m.def(
      "op",
      [](const std::string& name, const std::vector<nef::Tensor>& inputs, const nb::dict& attrs) {
        return nef::op(name, inputs, to_attrs(name, attrs));
      },
      "name"_a, "inputs"_a, "attrs"_a = nb::dict());

  // Ops with optional tensor inputs go through their C++ functions (which know the defaults).
  m.def(
      "layernorm",
      [](const nef::Tensor& x, std::optional<nef::Tensor> w, std::optional<nef::Tensor> b,
         double eps, int64_t axis) {
        return nef::layernorm(x, w.value_or(nef::Tensor()), b.value_or(nef::Tensor()), eps, axis);
      },
      "x"_a, "weight"_a.none(), "bias"_a.none(), "eps"_a, "axis"_a);
  m.def(
      "rmsnorm",
      [](const nef::Tensor& x, std::optional<nef::Tensor> w, double eps, int64_t axis) {
        return nef::rmsnorm(x, w.value_or(nef::Tensor()), eps, axis);
      },
      "x"_a, "weight"_a.none(), "eps"_a, "axis"_a);
  m.def(
      "attention",
      [](const nef::Tensor& q, const nef::Tensor& k, const nef::Tensor& v,
         std::optional<nef::Tensor> mask, std::optional<double> scale, bool causal) {
        return nef::attention(q, k, v, mask.value_or(nef::Tensor()), scale, causal);
      },
      "q"_a, "k"_a, "v"_a, "mask"_a.none(), "scale"_a.none(), "causal"_a);

  // ---- creation ----
  m.def("from_numpy", [](nb::handle arr) { return nef::from_array(nefpy::array_from_numpy(arr)); });
  m.def("to_numpy", [](nef::Tensor& t) {
    // A computed host value needs no run: skip releasing the GIL and the execution lock.
    if (const nef::Array* v = t.host_value()) return nefpy::array_to_numpy(*v);
    nef::Array a = run_released([&] { return t.array(); });
    return nefpy::array_to_numpy(a);
  });
  // DLPack: the value (computed, and brought to the host, first) as a capsule; `copy` exports a
  // copy the consumer owns instead of a read-only view.
  m.def(
      "dlpack_export",
      [](nef::Tensor& t, bool versioned, bool copy) {
        nef::Array a = run_released([&] { return t.array(); });
        return nefpy::dlpack_capsule(copy ? nefpy::copy_array(a) : a, versioned, copy);
      },
      "tensor"_a, "versioned"_a, "copy"_a);
  m.def("dlpack_import",
        [](nb::handle capsule) { return nef::from_array(nefpy::array_from_dlpack(capsule)); });
  m.def("pending_placeholders", &pending_placeholders);
  m.def("promote_types", [](const std::string& a, const std::string& b) {
    return std::string(nef::dtype_name(nef::promote_types(parse_dtype(a), parse_dtype(b))));
  });
  m.def("scalar", [](double v, const std::string& dt) { return nef::scalar(v, parse_dtype(dt)); });
  m.def("weak_scalar", &nef::weak_scalar, "value"_a, "is_float"_a);
  m.def("placeholder", [](const std::string& name, const nef::Shape& shape, const std::string& dt) {
    return nef::placeholder(name, shape, parse_dtype(dt));
  });
  m.def("full", [](const nef::Shape& shape, double v, const std::string& dt) {
    return nef::full(shape, v, parse_dtype(dt));
  });
  m.def("arange", [](double start, double stop, double step, const std::string& dt) {
    return nef::arange(start, stop, step, parse_dtype(dt));
  });
  m.def("random_uniform",
        [](const nef::Shape& shape, uint64_t seed, double lo, double hi, const std::string& dt) {
          return nef::random_uniform(shape, seed, lo, hi, parse_dtype(dt));
        });
  m.def("random_normal",
        [](const nef::Shape& shape, uint64_t seed, double mean, double std, const std::string& dt) {
          return nef::random_normal(shape, seed, mean, std, parse_dtype(dt));
        });
  m.def("einsum", [](const std::string& equation, const std::vector<nef::Tensor>& operands) {
    return nef::einsum(equation, operands);
  });
  m.def("topk", [](const nef::Tensor& x, int64_t k, int64_t axis, bool largest) {
    auto [values, indices] = nef::topk(x, k, axis, largest);
    return std::make_pair(values, indices);
  });
  // The ONNX converter table: {op: (revisions, oldest converted revision)} (docs/onnx.md; the
  // tests compare it with onnx.defs).
  m.def("_onnx_converters", [] {
    std::map<std::string, std::pair<std::vector<int>, int>> out;
    for (const auto& [name, e] : nef::onnx_import::converters()) out[name] = {e.since, e.min_since};
    return out;
  });
  m.def("_onnx_newest_opset", [] { return nef::onnx_import::kNewestOpset; });

  // ---- execution, files, stats ----
  m.def("evaluate", [](std::vector<nef::Tensor> ts) {
    run_released([&] {
      nef::evaluate(ts);
      return 0;
    });
  });
  m.def(
      "build",
      [](const std::string& path, const std::vector<std::pair<std::string, nef::Tensor>>& outputs,
         bool embed_plan) {
        run_released([&] {
          nef::build(path, outputs, embed_plan);
          return 0;
        });
      },
      nb::arg("path"), nb::arg("outputs"), nb::arg("embed_plan") = false);

  nb::class_<nef::LoadedGraph>(m, "LoadedGraph")
      .def_static("load",
                  [](const std::string& path) {
                    return run_released([&] { return nef::LoadedGraph::load(path); });
                  })
      .def(
          "quantize",
          [](const nef::LoadedGraph& g, const std::string& scheme) {
            nef::LoadedGraph::QuantizeReport r;
            nef::LoadedGraph q = run_released([&] { return g.quantize(scheme, &r); });
            nb::dict d;
            d["quantized"] = r.quantized;
            d["kept"] = r.kept;
            d["bytes_before"] = r.bytes_before;
            d["bytes_after"] = r.bytes_after;
            d["convs_quantized"] = r.convs_quantized;
            d["convs_kept"] = r.convs_kept;
            return nb::make_tuple(q, d);
          },
          "scheme"_a = "int8")
      .def_static(
          "from_onnx",
          [](const std::string& path, const std::map<std::string, int64_t>& dims) {
            return run_released([&] { return nef::LoadedGraph::from_onnx(path, dims); });
          },
          "path"_a, "dims"_a = std::map<std::string, int64_t>{})
      .def_static(
          "from_onnx_bytes",
          [](nb::bytes data, const std::map<std::string, int64_t>& dims) {
            std::string bytes(data.c_str(), data.size());
            return run_released([&] { return nef::LoadedGraph::from_onnx_bytes(bytes, dims); });
          },
          "data"_a, "dims"_a = std::map<std::string, int64_t>{})
      .def(
          "save",
          [](const nef::LoadedGraph& g, const std::string& path, bool embed_plan) {
            run_released([&] {
              g.save(path, embed_plan);
              return 0;
            });
          },
          "path"_a, "embed_plan"_a = false)
      .def_prop_ro("input_dim_names", &nef::LoadedGraph::input_dim_names)
      .def_prop_ro("inputs", &nef::LoadedGraph::inputs)
      .def_prop_ro("outputs", &nef::LoadedGraph::outputs)
      .def_prop_ro(
          "input_types",
          [](const nef::LoadedGraph& g) {
            nb::list out;
            for (const auto& [shape, dt] : g.input_types()) {
              out.append(nb::make_tuple(shape_tuple(shape), std::string(nef::dtype_name(dt))));
            }
            return out;
          })
      .def("run",
           [](const nef::LoadedGraph& g, const nb::dict& inputs) {
             std::map<std::string, nef::Array> in;
             for (auto [k, v] : inputs) in[nb::cast<std::string>(k)] = nefpy::array_from_numpy(v);
             auto out = run_released([&] { return g.run(in); });
             in.clear();  // drops the numpy references while we hold the GIL
             return arrays_to_dict(out);
           })
      .def("run_profiled",
           [](const nef::LoadedGraph& g, const nb::dict& inputs) {
             std::map<std::string, nef::Array> in;
             for (auto [k, v] : inputs) in[nb::cast<std::string>(k)] = nefpy::array_from_numpy(v);
             nef::RunProfile prof;
             auto out = run_released([&] { return g.run_profiled(in, prof); });
             in.clear();
             return nb::make_tuple(arrays_to_dict(out), profile_to_dict(prof));
           })
      // Compiling may take a while on a cold cache, so these release the GIL like run().
      .def(
          "describe_plan_json",
          [](const nef::LoadedGraph& g, int indent) {
            return run_released([&] { return g.describe_plan_json(indent); });
          },
          "indent"_a = -1)
      .def("describe_memory", [](const nef::LoadedGraph& g) {
        return run_released([&] { return g.describe_memory(); });
      });

  m.def("stats", &nef::stats);
  m.def("reset_stats", &nef::reset_stats);
  m.def("set_devices", &nef::set_devices);
  m.def("devices_json", [] { return nef::backend::to_json(nef::backend::detect()); });
  // Fault injection for the failure-ladder tests (common/faults.h).
  m.def("_set_faults", &nef::faults::set);
  m.def("set_num_threads", &nef::set_num_threads);
  m.def("num_threads", &nef::num_threads);
  m.attr("__version__") = NEF_VERSION_STRING;
}
