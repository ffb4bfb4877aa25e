// Building .nef files from lazy tensors, and loading/running them.
#include <cstdio>
#include <mutex>

#include "api/lazy.h"
#include "compiler/embedded_plan.h"
#include "compiler/plan.h"
#include "compiler/plan_json.h"
#include "format/nef_file.h"
#include "runtime/executor.h"

namespace nef {

struct LoadedGraphImpl {
  ir::Graph graph;
  std::vector<std::pair<Shape, DType>> input_types;
  mutable std::mutex mu;
  mutable std::shared_ptr<const compiler::Plan> plan;  // compiled on first run
  std::shared_ptr<const compiler::Plan> embedded;      // verified embedded plan, if any
};

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
  for (const ir::Node& n : g.impl_->graph.nodes)
    if (n.is("input")) {
      auto& types = g.impl_->input_types;
      if (types.size() <= size_t(n.binding)) types.resize(n.binding + 1);
      types[n.binding] = {n.type.shape, n.type.dtype};
    }
  return g;
}

const std::vector<std::string>& LoadedGraph::inputs() const { return impl_->graph.input_names; }
const std::vector<std::string>& LoadedGraph::outputs() const { return impl_->graph.output_names; }
std::vector<std::pair<Shape, DType>> LoadedGraph::input_types() const { return impl_->input_types; }

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

std::map<std::string, Array> LoadedGraph::run(const std::map<std::string, Array>& inputs) const {
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

std::string LoadedGraph::describe_plan() const { return compiler::describe(*plan_of(*impl_)); }
std::string LoadedGraph::describe_plan_json(int indent) const {
  return compiler::describe_json(*plan_of(*impl_), indent);
}
std::string LoadedGraph::describe_memory() const {
  return compiler::describe_memory(*plan_of(*impl_));
}

}  // namespace nef
