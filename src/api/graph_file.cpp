// Building .nef files from lazy tensors, and loading/running them.
#include <algorithm>
#include <cstdio>
#include <mutex>

#include "api/lazy.h"
#include "api/loaded_graph.h"
#include "common/log.h"
#include "common/session.h"
#include "compiler/compiler.h"
#include "compiler/embedded_plan.h"
#include "compiler/memory_plan.h"
#include "compiler/plan_json.h"
#include "engine/execute.h"
#include "engine/segments.h"
#include "format/nef_file.h"

namespace nef {

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

namespace {

format::WriteOptions write_options(const ir::Graph& g, bool embed_plan) {
  format::WriteOptions opts;
  // A graph that runs in segments has no single plan to embed (engine/segments.h).
  if (embed_plan && engine::has_unresolved(g))
    warn("no embedded plan: the graph has value-dependent shapes and is compiled per segment");
  else if (embed_plan) opts.embedded = compiler::make_embedded(g);
  return opts;
}

}  // namespace

namespace {

// The graph of named outputs over placeholders, validated (build's and from_tensors' checks).
ir::Graph graph_of(const char* what, const std::vector<std::pair<std::string, Tensor>>& outputs) {
  if (outputs.empty()) throw ValidationError(str("[", what, "] no outputs given"));
  std::vector<detail::LazyNode*> targets;
  std::vector<std::string> names;
  for (const auto& [name, t] : outputs) {
    if (!t.defined()) throw ValidationError(str("[", what, "] output '", name, "' is undefined"));
    if (name.empty()) throw ValidationError(str("[", what, "] output names must not be empty"));
    for (const auto& n : names)
      if (n == name) throw ValidationError(str("[", what, "] two outputs are named '", name, "'"));
    targets.push_back(t.node().get());
    names.push_back(name);
  }
  detail::BuiltGraph built = detail::build_graph(targets, detail::BuildMode::Serialize, names);
  ir::validate(built.graph);
  return std::move(built.graph);
}

}  // namespace

void build(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& outputs,
           bool embed_plan) {
  ir::Graph g = graph_of("build", outputs);
  format::write_nef(path, g, write_options(g, embed_plan));
}

LoadedGraph LoadedGraph::from_tensors(const std::vector<std::pair<std::string, Tensor>>& outputs) {
  LoadedGraph g;
  g.impl_ = std::make_shared<LoadedGraphImpl>();
  g.impl_->graph = graph_of("from_tensors", outputs);
  index_input_types(*g.impl_);
  return g;
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
    // Used only when it parses, validates, and its hash matches this graph on the enabled
    // devices; otherwise one warning and the normal compile path.
    std::string why = c.embedded_error;
    if (why.empty() && c.embedded) {
      std::string want =
          compiler::embedded_key_hash(g.impl_->graph, c.embedded->graph, c.embedded->devices);
      if (want != c.embedded->key_hash) {
        why = "hash mismatch (stale, modified, or written for other devices)";
      } else {
        try {
          g.impl_->embedded = compiler::plan_from_embedded(
              g.impl_->graph, std::move(c.embedded->graph), c.embedded->devices);
        } catch (const Error& e) {
          why = e.what();
        }
      }
    }
    if (!g.impl_->embedded) warn(str("embedded plan ignored: ", why));
  }
  index_input_types(*g.impl_);
  return g;
}

#ifndef NEF_HAVE_ONNX
LoadedGraph LoadedGraph::from_onnx(const std::string&, const std::map<std::string, int64_t>&) {
  throw UnsupportedError("[onnx] this build of NEF has no ONNX importer (NEF_BUILD_ONNX=OFF)");
}
LoadedGraph LoadedGraph::from_onnx_bytes(const std::string&,
                                         const std::map<std::string, int64_t>&) {
  throw UnsupportedError("[onnx] this build of NEF has no ONNX importer (NEF_BUILD_ONNX=OFF)");
}
#endif

const std::vector<std::string>& LoadedGraph::inputs() const { return impl_->graph.input_names; }
const std::vector<std::string>& LoadedGraph::outputs() const { return impl_->graph.output_names; }
std::vector<std::pair<Shape, DType>> LoadedGraph::input_types() const { return impl_->input_types; }
std::vector<std::vector<std::string>> LoadedGraph::input_dim_names() const {
  return impl_->dim_names;
}

namespace {

std::shared_ptr<const runtime::Plan> plan_of(const LoadedGraphImpl& impl) {
  if (impl.embedded) return impl.embedded;
  // The graph's own plan while the devices (and their settings, e.g. the thread count) are those
  // it was compiled for: a run skips hashing the whole graph for the plan cache (~30 us for one
  // small node, more for a model). Otherwise through the plan cache, which a second
  // LoadedGraph of the same file hits too.
  std::string devices = compiler::device_key();
  {
    std::lock_guard<std::mutex> lock(impl.mu);
    if (impl.plan && impl.plan_devices == devices) {
      counters().plan_cache_hits++;
      return impl.plan;
    }
  }
  auto p = compiler::compile(impl.graph);
  std::lock_guard<std::mutex> lock(impl.mu);
  impl.plan = p;
  impl.plan_devices = std::move(devices);
  return p;
}

// The static graph to describe: the graph itself, or a deferred one's latest specialization.
std::shared_ptr<const LoadedGraphImpl> static_impl(const std::shared_ptr<LoadedGraphImpl>& impl,
                                                   const char* what) {
  if (impl->deferred) return impl->deferred->last(what);
  return impl;
}

std::map<std::string, Array> run_static(const LoadedGraphImpl& impl,
                                        const std::map<std::string, Array>& inputs) {
  const ir::Graph& g = impl.graph;
  std::vector<Array> bindings(g.input_names.size());
  for (size_t i = 0; i < g.input_names.size(); ++i) {
    auto it = inputs.find(g.input_names[i]);
    if (it == inputs.end())
      throw ValidationError(str("[run] missing input '", g.input_names[i], "' ",
                                shape_str(impl.input_types[i].first), " ",
                                dtype_name(impl.input_types[i].second)));
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
  std::vector<Array> outs = engine::has_unresolved(g)
                                ? engine::run_segmented(g, std::move(bindings))
                                : engine::execute(plan_of(impl), std::move(bindings));
  std::map<std::string, Array> result;
  // A graph file's results go back to the caller in host memory.
  for (size_t i = 0; i < outs.size(); ++i) result[g.output_names[i]] = to_host(outs[i]);
  return result;
}

}  // namespace

std::map<std::string, Array> LoadedGraph::run(const std::map<std::string, Array>& inputs) const {
  if (impl_->deferred) return run_static(*impl_->deferred->specialize(inputs), inputs);
  return run_static(*impl_, inputs);
}

void LoadedGraph::compile() const { plan_of(*static_impl(impl_, "compile")); }

void LoadedGraph::save(const std::string& path, bool embed_plan) const {
  if (impl_->deferred) impl_->deferred->cannot_save();
  format::write_nef(path, impl_->graph, write_options(impl_->graph, embed_plan));
}

std::string LoadedGraph::describe_plan() const {
  auto impl = static_impl(impl_, "plan");
  if (!engine::has_unresolved(impl->graph)) return compiler::describe(*plan_of(*impl));
  // No single plan: each run plans its segments (engine/segments.h) through the plan cache.
  std::string nodes;
  for (size_t i = 0; i < impl->graph.nodes.size(); ++i)
    if (engine::unresolved(impl->graph.nodes[i]))
      nodes += str(nodes.empty() ? "" : ", ", "node ", i, " (", impl->graph.nodes[i].op->name, ")");
  return str("the graph runs in segments: shapes depend on values at ", nodes,
             "; each run plans one segment per value-dependent step (plan cache keyed by the "
             "concrete shapes)\n");
}
std::string LoadedGraph::describe_plan_json(int indent) const {
  return compiler::describe_json(*plan_of(*static_impl(impl_, "plan")), indent);
}
std::string LoadedGraph::describe_memory() const {
  return compiler::describe_memory(*plan_of(*static_impl(impl_, "memory")));
}

}  // namespace nef
