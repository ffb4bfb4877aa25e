// Building .nef files from lazy tensors, and loading/running them.
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <set>

#include "api/lazy.h"
#include "compiler/embedded_plan.h"
#include "compiler/plan.h"
#include "compiler/plan_json.h"
#include "format/nef_file.h"
#include "runtime/executor.h"
#ifdef NEF_HAVE_ONNX
#include "format/mmap_file.h"
#include "onnx/importer.h"
#endif

namespace nef {

struct LoadedGraphImpl {
  // For an imported model with unbound symbolic dims: only the names (nodes empty), and the
  // graph lives in one specialization per binding.
  ir::Graph graph;
  std::vector<std::pair<Shape, DType>> input_types;
  mutable std::mutex mu;
  mutable std::shared_ptr<const compiler::Plan> plan;  // compiled on first run
  std::shared_ptr<const compiler::Plan> embedded;      // verified embedded plan, if any
#ifdef NEF_HAVE_ONNX
  // Set while the graph depends on run-time inputs: symbolic dims still unbound, or graph
  // inputs whose values shape the graph (value_inputs, found while converting).
  std::shared_ptr<onnx_import::Model> onnx;
  std::map<std::string, int64_t> bound_dims;  // bound at import
  mutable std::set<std::string> value_inputs;
  std::string deferred_why;  // the converter's message when value_inputs is not empty
  // Specializations keyed by dims and the value inputs' bytes.
  mutable std::map<std::string, std::shared_ptr<LoadedGraphImpl>> specs;
  mutable std::shared_ptr<LoadedGraphImpl> last_spec;
#endif
  std::vector<std::vector<std::string>> dim_names;
};

namespace {
void index_input_types(LoadedGraphImpl& impl) {
  for (const ir::Node& n : impl.graph.nodes)
    if (n.is("input")) {
      auto& types = impl.input_types;
      if (types.size() <= size_t(n.binding)) types.resize(n.binding + 1);
      types[n.binding] = {n.type.shape, n.type.dtype};
    }
  impl.dim_names.assign(impl.input_types.size(), {});
  for (size_t i = 0; i < impl.input_types.size(); ++i)
    impl.dim_names[i].assign(impl.input_types[i].first.size(), "");
}
}  // namespace

void build(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& outputs,
           bool embed_plan) {
  if (outputs.empty()) throw ValidationError("[build] no outputs given");
  std::vector<detail::LazyNode*> targets;
  std::vector<std::string> names;
  for (const auto& [name, t] : outputs) {
    if (!t.defined()) throw ValidationError(str("[build] output '", name, "' is undefined"));
    if (name.empty()) throw ValidationError("[build] output names must not be empty");
    for (const auto& n : names)
      if (n == name) throw ValidationError(str("[build] two outputs are named '", name, "'"));
    targets.push_back(t.node().get());
    names.push_back(name);
  }
  detail::BuiltGraph built = detail::build_graph(targets, detail::BuildMode::Serialize, names);
  ir::validate(built.graph);
  format::WriteOptions opts;
  if (embed_plan) opts.compiler_cache = "embedded";
  format::write_nef(path, built.graph, opts);
}

void Tensor::build(const std::string& path, bool embed_plan) const {
  nef::build(path, {{"output", *this}}, embed_plan);
}

LoadedGraph LoadedGraph::load(const std::string& path) {
  LoadedGraph g;
  g.impl_ = std::make_shared<LoadedGraphImpl>();
  format::NefContents c = format::read_nef_contents(path);
  g.impl_->graph = std::move(c.graph);
  if (c.compiler_cache == "embedded") {
    // Used only when it parses, validates, and its hash matches this graph on this build's
    // backends; otherwise one warning and the normal compile path.
    std::string why = c.embedded_error;
    if (why.empty() && c.embedded) {
      std::string want = compiler::embedded_key_hash(g.impl_->graph, c.embedded->graph,
                                                     c.embedded->devices);
      if (want != c.embedded->key_hash) {
        why = "hash mismatch (stale, modified, or written for other backends)";
      } else {
        try {
          g.impl_->embedded = compiler::plan_from_embedded(
              g.impl_->graph, std::move(c.embedded->graph), c.embedded->devices);
        } catch (const Error& e) {
          why = e.what();
        }
      }
    }
    if (!g.impl_->embedded)
      std::fprintf(stderr, "nef: warning: embedded plan ignored: %s\n", why.c_str());
  }
  index_input_types(*g.impl_);
  return g;
}

#ifdef NEF_HAVE_ONNX
namespace {
LoadedGraph from_model(std::shared_ptr<onnx_import::Model> model,
                       const std::map<std::string, int64_t>& dims) {
  std::vector<std::string> symbols = model->symbols();
  for (const auto& [k, v] : dims) {
    if (std::find(symbols.begin(), symbols.end(), k) == symbols.end()) {
      std::string known;
      for (const auto& s : symbols) known += (known.empty() ? "" : ", ") + s;
      throw ValidationError(str("[onnx] '", k, "' is not a symbolic dim of the model (its symbolic dims: ",
                                known.empty() ? "none" : known, ")"));
    }
    if (v < 0) throw ValidationError(str("[onnx] dim '", k, "' bound to negative ", v));
  }
  auto impl = std::make_shared<LoadedGraphImpl>();
  bool all_bound = true;
  for (const auto& s : symbols) all_bound = all_bound && dims.count(s);
  if (all_bound) {
    try {
      impl->graph = model->specialize(dims);
      index_input_types(*impl);
      return LoadedGraph(impl);
    } catch (const onnx_import::NeedsValues& nv) {
      impl->value_inputs.insert(nv.inputs.begin(), nv.inputs.end());
      impl->deferred_why = nv.what;
    }
  }
  {
    impl->onnx = std::move(model);
    impl->bound_dims = dims;
    for (const auto& in : impl->onnx->inputs()) {
      impl->graph.input_names.push_back(in.name);
      Shape shape;
      std::vector<std::string> names;
      for (size_t d = 0; d < in.dims.size(); ++d) {
        auto it = in.dim_names[d].empty() ? dims.end() : dims.find(in.dim_names[d]);
        shape.push_back(in.dims[d] >= 0 ? in.dims[d] : it != dims.end() ? it->second : -1);
        names.push_back(in.dim_names[d]);
      }
      impl->input_types.emplace_back(shape, in.dtype);
      impl->dim_names.push_back(names);
    }
    impl->graph.output_names = impl->onnx->outputs();
  }
  return LoadedGraph(impl);
}
}  // namespace

LoadedGraph LoadedGraph::from_onnx(const std::string& path, const std::map<std::string, int64_t>& dims) {
  return from_model(onnx_import::Model::parse_file(path), dims);
}
LoadedGraph LoadedGraph::from_onnx_bytes(const std::string& bytes,
                                         const std::map<std::string, int64_t>& dims) {
  return from_model(onnx_import::Model::parse(bytes.data(), bytes.size(), ""), dims);
}
#else
LoadedGraph LoadedGraph::from_onnx(const std::string&, const std::map<std::string, int64_t>&) {
  throw UnsupportedError("[onnx] this build of NEF has no ONNX importer (NEF_BUILD_ONNX=OFF)");
}
LoadedGraph LoadedGraph::from_onnx_bytes(const std::string&, const std::map<std::string, int64_t>&) {
  throw UnsupportedError("[onnx] this build of NEF has no ONNX importer (NEF_BUILD_ONNX=OFF)");
}
#endif

const std::vector<std::string>& LoadedGraph::inputs() const { return impl_->graph.input_names; }
const std::vector<std::string>& LoadedGraph::outputs() const { return impl_->graph.output_names; }
std::vector<std::pair<Shape, DType>> LoadedGraph::input_types() const { return impl_->input_types; }
std::vector<std::vector<std::string>> LoadedGraph::input_dim_names() const { return impl_->dim_names; }

namespace {
std::shared_ptr<const compiler::Plan> plan_of(const LoadedGraphImpl& impl) {
  if (impl.embedded) return impl.embedded;
  // Through the plan cache every time: a second LoadedGraph of the same file hits it too.
  auto p = compiler::compile(impl.graph);
  std::lock_guard<std::mutex> lock(impl.mu);
  impl.plan = p;
  return p;
}
}  // namespace

namespace {
// The static graph to describe or save: the graph itself, or for a model with unbound symbolic
// dims the most recent specialization.
const LoadedGraphImpl& static_impl(const LoadedGraphImpl& impl, const char* what) {
#ifdef NEF_HAVE_ONNX
  if (impl.onnx) {
    std::lock_guard<std::mutex> lock(impl.mu);
    if (impl.last_spec) return *impl.last_spec;
    std::string names;
    for (const auto& s : impl.onnx->symbols())
      if (!impl.bound_dims.count(s)) names += (names.empty() ? "" : ", ") + s;
    if (names.empty())
      throw ValidationError(str("[", what, "] the graph's shapes depend on the values of its "
                                "inputs (", impl.deferred_why, "): run it once first"));
    throw ValidationError(str("[", what, "] the graph has unbound symbolic dims (", names,
                              "): bind them when importing (dims=...) or run it once first"));
  }
#endif
  (void)what;
  return impl;
}

std::map<std::string, Array> run_static(const LoadedGraphImpl& impl,
                                        const std::map<std::string, Array>& inputs);
}  // namespace

std::map<std::string, Array> LoadedGraph::run(const std::map<std::string, Array>& inputs) const {
#ifdef NEF_HAVE_ONNX
  if (impl_->onnx) {
    const auto& names = impl_->graph.input_names;
    std::vector<Shape> shapes;
    for (size_t i = 0; i < names.size(); ++i) {
      auto it = inputs.find(names[i]);
      if (it == inputs.end())
        throw ValidationError(str("[run] missing input '", names[i], "' ",
                                  shape_str(impl_->input_types[i].first), " ",
                                  dtype_name(impl_->input_types[i].second)));
      shapes.push_back(it->second.shape);
    }
    std::map<std::string, int64_t> dims = impl_->onnx->bind(shapes);
    for (const auto& [k, v] : impl_->bound_dims)
      if (dims.count(k) && dims[k] != v)
        throw ShapeError(str("[run] dim '", k, "' was bound to ", v, " at import, inputs give ", dims[k]));
    std::shared_ptr<LoadedGraphImpl> spec;
    // Each round either finds/builds the specialization or learns more inputs whose values
    // shape the graph (at most one round per input).
    for (size_t round = 0; !spec; ++round) {
      std::set<std::string> value_names;
      {
        std::lock_guard<std::mutex> lock(impl_->mu);
        value_names = impl_->value_inputs;
      }
      std::map<std::string, Array> values;
      std::string key;
      for (const auto& [k, v] : dims) key += str(k, "=", v, ";");
      for (const auto& name : value_names) {
        Array a = inputs.at(name).contiguous();
        key += str(name, ":", dtype_name(a.dtype), shape_str(a.shape), ":");
        key.append(static_cast<const char*>(a.data()), a.nbytes());
        values[name] = std::move(a);
      }
      {
        std::lock_guard<std::mutex> lock(impl_->mu);
        auto it = impl_->specs.find(key);
        if (it != impl_->specs.end()) spec = it->second;
      }
      if (spec) break;
      try {
        auto fresh = std::make_shared<LoadedGraphImpl>();
        fresh->graph = impl_->onnx->specialize(dims, values);
        index_input_types(*fresh);
        std::lock_guard<std::mutex> lock(impl_->mu);
        spec = impl_->specs.emplace(key, fresh).first->second;
      } catch (const onnx_import::NeedsValues& nv) {
        bool learned = false;
        std::lock_guard<std::mutex> lock(impl_->mu);
        for (const auto& n : nv.inputs) learned = impl_->value_inputs.insert(n).second || learned;
        if (!learned || round > names.size()) throw UnsupportedError(nv.what);
      }
    }
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      impl_->last_spec = spec;
    }
    return run_static(*spec, inputs);
  }
#endif
  return run_static(*impl_, inputs);
}

void LoadedGraph::save(const std::string& path, bool embed_plan) const {
#ifdef NEF_HAVE_ONNX
  if (impl_->onnx) {
    std::string names;
    for (const auto& s : impl_->onnx->symbols())
      if (!impl_->bound_dims.count(s)) names += (names.empty() ? "" : ", ") + s;
    if (!names.empty())
      throw ValidationError(str("[save] the graph has unbound symbolic dims (", names,
                                "): bind them when importing (dims=...) to write a .nef"));
    throw UnsupportedError(str("[save] the values of graph inputs shape this graph (",
                               impl_->deferred_why, "); a .nef has static shapes"));
  }
#endif
  format::WriteOptions opts;
  if (embed_plan) opts.compiler_cache = "embedded";
  format::write_nef(path, impl_->graph, opts);
}

namespace {
std::map<std::string, Array> run_static(const LoadedGraphImpl& impl,
                                        const std::map<std::string, Array>& inputs) {
  const LoadedGraphImpl* impl_ = &impl;
  const ir::Graph& g = impl_->graph;
  std::vector<Array> bindings(g.input_names.size());
  for (size_t i = 0; i < g.input_names.size(); ++i) {
    auto it = inputs.find(g.input_names[i]);
    if (it == inputs.end())
      throw ValidationError(str("[run] missing input '", g.input_names[i], "' ",
                                shape_str(impl_->input_types[i].first), " ",
                                dtype_name(impl_->input_types[i].second)));
    bindings[i] = it->second;
  }
  for (const auto& [name, value] : inputs) {
    bool known = false;
    for (const auto& n : g.input_names) known = known || n == name;
    if (!known) {
      std::string names;
      for (const auto& n : g.input_names) names += (names.empty() ? "" : ", ") + n;
      throw ValidationError(str("[run] unknown input '", name, "' (graph inputs: ", names, ")"));
    }
  }
  auto plan = plan_of(*impl_);
  std::vector<Array> outs = runtime::execute(*plan, bindings);
  std::map<std::string, Array> result;
  for (size_t i = 0; i < outs.size(); ++i) result[g.output_names[i]] = std::move(outs[i]);
  return result;
}
}  // namespace

std::string LoadedGraph::describe_plan() const {
  return compiler::describe(*plan_of(static_impl(*impl_, "plan")));
}
std::string LoadedGraph::describe_plan_json(int indent) const {
  return compiler::describe_json(*plan_of(static_impl(*impl_, "plan")), indent);
}
std::string LoadedGraph::describe_memory() const {
  return compiler::describe_memory(*plan_of(static_impl(*impl_, "memory")));
}

}  // namespace nef
