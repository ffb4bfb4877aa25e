// Post-training weight quantization of a graph (LoadedGraph::quantize, `nef quantize`): every
// matmul by a constant float matrix becomes a qmatmul over its int8 copy.
#include <type_traits>
#include <vector>

#include "api/loaded_graph.h"
#include "common/dispatch.h"
#include "common/quant.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "nef/error.h"
#include "nef/tensor.h"

namespace nef {
namespace {

// W [K, N] (any float dtype, any strides) -> its transpose quantized per row of K: uint8
// [N, row_bytes(q8_0, K)].
Array quantize_transposed(const Array& w) {
  const Array wt = w.contiguous();
  const int64_t K = w.shape[0], N = w.shape[1];
  const quant::Format f = quant::Format::Q8_0;
  Array out = Array::empty({N, quant::row_bytes(f, K)}, DType::UInt8);
  std::vector<float> col(static_cast<size_t>(K));
  dispatch_dtype(wt.dtype, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      const T* src = static_cast<const T*>(wt.data());
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t k = 0; k < K; ++k) col[size_t(k)] = float(load_as(src[k * N + n]));
        quant::quantize_row(f, col.data(), out.data_as<uint8_t>() + n * out.shape[1], K);
      }
    } else {
      NEF_CHECK(false, "quantize: float weights expected");
    }
  });
  return out;
}

}  // namespace

LoadedGraph LoadedGraph::quantize(const std::string& scheme, QuantizeReport* report) const {
  if (scheme != "int8")
    throw UnsupportedError(str("[quantize] scheme '", scheme, "' is not supported (int8)"));
  if (impl_->deferred)
    throw ValidationError(
        "[quantize] the graph still has unbound symbolic dims: import it with "
        "its dims bound (nef.from_onnx(path, dims=...)) first");
  QuantizeReport r;
  ir::Graph g = impl_->graph;
  std::vector<int> users(g.nodes.size(), 0);
  for (const ir::Node& n : g.nodes)
    for (int i : n.inputs) ++users[size_t(i)];
  for (int o : g.outputs) ++users[size_t(o)];
  const ir::OpDef& qmatmul = ir::get_op("qmatmul");
  for (ir::Node& n : g.nodes) {
    if (!n.is("matmul")) continue;
    ir::Node& w = g.nodes[size_t(n.inputs[1])];
    if (!w.is("constant") || !w.constant) continue;  // activations times activations
    // Kept in float: other shapes and types, and weights shared with other ops.
    const bool eligible = w.type.shape.size() == 2 && is_floating(w.type.dtype) &&
                          w.type.shape[0] % 32 == 0 && n.type.dtype == DType::Float32 &&
                          !g.nodes[size_t(n.inputs[0])].type.shape.empty() &&
                          users[size_t(n.inputs[1])] == 1;
    if (!eligible) {
      ++r.kept;
      continue;
    }
    r.bytes_before += int64_t(w.constant->nbytes());
    w.constant = quantize_transposed(*w.constant);
    w.type = {w.constant->shape, DType::UInt8};
    w.attrs.set("shape", std::vector<int64_t>(w.type.shape.begin(), w.type.shape.end()));
    w.attrs.set("dtype", std::string(dtype_name(DType::UInt8)));
    r.bytes_after += int64_t(w.constant->nbytes());
    n.op = &qmatmul;
    n.attrs = ir::Attrs();
    n.attrs.set("format", std::string("q8_0"));
    ++r.quantized;
  }
  ir::validate(g);
  if (report) *report = r;
  LoadedGraph out;
  out.impl_ = std::make_shared<LoadedGraphImpl>();
  out.impl_->graph = std::move(g);
  index_input_types(*out.impl_);
  return out;
}

}  // namespace nef
