// LoadedGraph::from_onnx: an imported model as a graph to run. With every symbolic dim bound and
// no input whose values shape the graph, it is one static graph; otherwise an OnnxDeferred that
// specializes the model per distinct binding (dims from the input shapes, value inputs' bytes).
#include <algorithm>
#include <set>

#include "api/loaded_graph.h"
#include "nef/error.h"
#include "onnx/importer.h"

namespace nef {
namespace {

class OnnxDeferred final : public DeferredGraph {
 public:
  OnnxDeferred(std::shared_ptr<onnx_import::Model> model, std::map<std::string, int64_t> bound,
               std::set<std::string> value_inputs, std::string why,
               std::vector<std::string> input_names, std::vector<std::pair<Shape, DType>> types)
      : model_(std::move(model)),
        bound_(std::move(bound)),
        value_inputs_(std::move(value_inputs)),
        why_(std::move(why)),
        names_(std::move(input_names)),
        types_(std::move(types)) {}

  std::shared_ptr<LoadedGraphImpl> specialize(const std::map<std::string, Array>& inputs) override {
    std::vector<Shape> shapes;
    for (size_t i = 0; i < names_.size(); ++i) {
      auto it = inputs.find(names_[i]);
      if (it == inputs.end())
        throw ValidationError(str("[run] missing input '", names_[i], "' ",
                                  shape_str(types_[i].first), " ", dtype_name(types_[i].second)));
      shapes.push_back(it->second.shape);
    }
    std::map<std::string, int64_t> dims = model_->bind(shapes);
    for (const auto& [k, v] : bound_)
      if (dims.count(k) && dims[k] != v)
        throw ShapeError(
            str("[run] dim '", k, "' was bound to ", v, " at import, inputs give ", dims[k]));
    // Each round either finds/builds the specialization or learns more inputs whose values
    // shape the graph (at most one round per input).
    for (size_t round = 0;; ++round) {
      std::set<std::string> value_names;
      {
        std::lock_guard<std::mutex> lock(mu_);
        value_names = value_inputs_;
      }
      std::map<std::string, Array> values;
      std::string key;
      for (const auto& [k, v] : dims) key += str(k, "=", v, ";");
      for (const auto& name : value_names) {
        Array a = to_host(inputs.at(name)).contiguous();
        key += str(name, ":", dtype_name(a.dtype), shape_str(a.shape), ":");
        key.append(static_cast<const char*>(a.data()), a.nbytes());
        values[name] = std::move(a);
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = specs_.find(key);
        if (it != specs_.end()) return last_ = it->second;
      }
      try {
        auto fresh = std::make_shared<LoadedGraphImpl>();
        fresh->graph = model_->specialize(dims, values);
        index_input_types(*fresh);
        std::lock_guard<std::mutex> lock(mu_);
        return last_ = specs_.emplace(key, fresh).first->second;
      } catch (const onnx_import::NeedsValues& nv) {
        bool learned = false;
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& n : nv.inputs) learned = value_inputs_.insert(n).second || learned;
        if (!learned || round > names_.size()) throw UnsupportedError(nv.what);
      }
    }
  }

  std::shared_ptr<LoadedGraphImpl> last(const char* what) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (last_) return last_;
    std::string names = unbound();
    if (names.empty())
      throw ValidationError(str("[", what,
                                "] the graph's shapes depend on the values of its "
                                "inputs (",
                                why_, "): run it once first"));
    throw ValidationError(str("[", what, "] the graph has unbound symbolic dims (", names,
                              "): bind them when importing (dims=...) or run it once first"));
  }

  [[noreturn]] void cannot_save() override {
    std::string names = unbound();
    if (!names.empty())
      throw ValidationError(str("[save] the graph has unbound symbolic dims (", names,
                                "): bind them when importing (dims=...) to write a .nef"));
    throw UnsupportedError(str("[save] the values of graph inputs shape this graph (", why_,
                               "); a .nef has static shapes"));
  }

 private:
  std::string unbound() const {
    std::string names;
    for (const auto& s : model_->symbols())
      if (!bound_.count(s)) names += (names.empty() ? "" : ", ") + s;
    return names;
  }

  std::shared_ptr<onnx_import::Model> model_;
  std::map<std::string, int64_t> bound_;  // bound at import
  std::mutex mu_;
  std::set<std::string> value_inputs_;  // inputs whose values shape the graph
  std::string why_;                     // the converter's message when value_inputs_ is not empty
  std::vector<std::string> names_;
  std::vector<std::pair<Shape, DType>> types_;
  std::map<std::string, std::shared_ptr<LoadedGraphImpl>> specs_;  // by dims and values' bytes
  std::shared_ptr<LoadedGraphImpl> last_;
};

LoadedGraph from_model(std::shared_ptr<onnx_import::Model> model,
                       const std::map<std::string, int64_t>& dims) {
  std::vector<std::string> symbols = model->symbols();
  for (const auto& [k, v] : dims) {
    if (std::find(symbols.begin(), symbols.end(), k) == symbols.end()) {
      std::string known;
      for (const auto& s : symbols) known += (known.empty() ? "" : ", ") + s;
      throw ValidationError(str("[onnx] '", k,
                                "' is not a symbolic dim of the model (its symbolic dims: ",
                                known.empty() ? "none" : known, ")"));
    }
    if (v < 0) throw ValidationError(str("[onnx] dim '", k, "' bound to negative ", v));
  }
  auto impl = std::make_shared<LoadedGraphImpl>();
  bool all_bound = true;
  for (const auto& s : symbols) all_bound = all_bound && dims.count(s);
  std::set<std::string> value_inputs;
  std::string why;
  if (all_bound) {
    try {
      impl->graph = model->specialize(dims);
      index_input_types(*impl);
      return LoadedGraph(impl);
    } catch (const onnx_import::NeedsValues& nv) {
      value_inputs.insert(nv.inputs.begin(), nv.inputs.end());
      why = nv.what;
    }
  }
  for (const auto& in : model->inputs()) {
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
  impl->graph.output_names = model->outputs();
  impl->deferred =
      std::make_shared<OnnxDeferred>(std::move(model), dims, std::move(value_inputs),
                                     std::move(why), impl->graph.input_names, impl->input_types);
  return LoadedGraph(impl);
}

}  // namespace

LoadedGraph LoadedGraph::from_onnx(const std::string& path,
                                   const std::map<std::string, int64_t>& dims) {
  return from_model(onnx_import::Model::parse_file(path), dims);
}
LoadedGraph LoadedGraph::from_onnx_bytes(const std::string& bytes,
                                         const std::map<std::string, int64_t>& dims) {
  return from_model(onnx_import::Model::parse(bytes.data(), bytes.size(), ""), dims);
}

}  // namespace nef
