// Post-training weight quantization of a graph (LoadedGraph::quantize, `nef quantize --int8`):
// every matmul by a constant float matrix W [K, N] runs on int8 weights, in one of two forms
// chosen by the activation rows M it multiplies (known from the graph's shapes):
//  - M >= kIntegerRows (encoders, prefill): W per output channel, symmetric (Wq = round(W / s_n),
//    s_n = max_k |W[k, n]| / 127); activations per row at run time, asymmetric over the row's
//    range (uint8 codes xq with a zero point z_m and scale s_m, as ONNX's DynamicQuantizeLinear
//    per row: post-GELU rows lose half their resolution to a symmetric map); y = float((xq - z_m)
//    @ Wq) * s_m * s_n (+ a bias added to the product, absorbed) with an exact int32 product
//    (AVX-512 VNNI), all in one op, matmul_dynamic_int8, faster than the float GEMM there.
//  - fewer rows (decoding, GEMV): Q8_0 blocks (a scale per 32 weights of each column) for
//    qmatmul, whose one-row kernel reads the blocks directly; weight bytes bound such products,
//    where matmul_integer's operand packing would cost more than the products.
#include <algorithm>
#include <cmath>
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

// From this many activation rows on, the per-channel integer form. Measured at K = 384,
// N = 1536, 1 thread (product alone, ms): 16 rows 0.34 (Q8_0) vs 0.39 (integer), 32 rows 0.87 vs
// 0.50, 128 rows 1.87 vs 1.01 (the float GEMM 0.32 / 0.44 / 1.30). Below, matmul_integer's
// packing of the weights on every run dominates.
constexpr int64_t kIntegerRows = 32;

// W [K, N] (any float dtype, any strides) as contiguous float64 values, row-major.
std::vector<double> weights(const Array& w) {
  const Array c = w.contiguous();
  std::vector<double> v(size_t(c.numel()));
  dispatch_dtype(c.dtype, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      const T* src = static_cast<const T*>(c.data());
      for (size_t i = 0; i < v.size(); ++i) v[i] = double(load_as(src[i]));
    } else {
      NEF_CHECK(false, "quantize: float weights expected");
    }
  });
  return v;
}

// W [K, N] -> its transpose quantized per row of K: uint8 [N, row_bytes(q8_0, K)].
Array quantize_q8_0_transposed(const Array& w) {
  const std::vector<double> v = weights(w);
  const int64_t K = w.shape[0], N = w.shape[1];
  const quant::Format f = quant::Format::Q8_0;
  Array out = Array::empty({N, quant::row_bytes(f, K)}, DType::UInt8);
  std::vector<float> col(static_cast<size_t>(K));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) col[size_t(k)] = float(v[size_t(k * N + n)]);
    quant::quantize_row(f, col.data(), out.data_as<uint8_t>() + n * out.shape[1], K);
  }
  return out;
}

// W [K, N] -> int8 [K, N] and the float32 scale of each column [N] (symmetric, max |w| -> 127;
// an all-zero column gets scale 1).
std::pair<Array, Array> quantize_per_column(const Array& w) {
  const std::vector<double> v = weights(w);
  const int64_t K = w.shape[0], N = w.shape[1];
  Array q = Array::empty({K, N}, DType::Int8), s = Array::empty({N}, DType::Float32);
  int8_t* qp = q.data_as<int8_t>();
  float* sp = s.data_as<float>();
  for (int64_t n = 0; n < N; ++n) {
    double amax = 0;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::abs(v[size_t(k * N + n)]));
    const float scale = amax > 0 && std::isfinite(amax) ? float(amax / 127) : 1.0f;
    sp[n] = scale;
    for (int64_t k = 0; k < K; ++k) {
      const double r = std::nearbyint(v[size_t(k * N + n)] / double(scale));
      qp[k * N + n] = int8_t(std::clamp(std::isfinite(r) ? r : 0.0, -127.0, 127.0));
    }
  }
  return {std::move(q), std::move(s)};
}

// The graph rebuilt in order: kept nodes move over (inputs remapped), rewritten ones append their
// replacement's nodes, each inferred as the lazy API infers it.
struct Builder {
  std::vector<ir::Node> nodes;
  const ir::Node& at(int i) const { return nodes[size_t(i)]; }
  int push(ir::Node n) {
    nodes.push_back(std::move(n));
    return int(nodes.size()) - 1;
  }
  int constant(Array value, const std::string& hint) {
    ir::Node c;
    c.op = &ir::get_op("constant");
    c.attrs.set("shape", std::vector<int64_t>(value.shape.begin(), value.shape.end()));
    c.attrs.set("dtype", std::string(dtype_name(value.dtype)));
    c.type = {value.shape, value.dtype};
    c.device_hint = hint;
    c.constant = std::move(value);
    return push(std::move(c));
  }
  // Inference cannot fail on the operands of a float32 matmul it rewrites: a failure is a bug.
  int emit(const char* op, std::vector<int> inputs, ir::Attrs attrs, const std::string& hint) {
    ir::Node n;
    n.op = &ir::get_op(op);
    n.inputs = std::move(inputs);
    std::vector<ir::TensorType> types;
    for (int in : n.inputs) types.push_back(at(in).type);
    n.type = ir::check_and_infer(*n.op, types, attrs);
    n.attrs = std::move(attrs);
    n.device_hint = hint;
    return push(std::move(n));
  }
};

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
  std::vector<int> users(g.nodes.size(), 0), user(g.nodes.size(), -1);  // count, the last one
  for (size_t k = 0; k < g.nodes.size(); ++k)
    for (int i : g.nodes[k].inputs) ++users[size_t(i)], user[size_t(i)] = int(k);
  for (int o : g.outputs) ++users[size_t(o)];
  // Which matmuls take which form, decided on the original graph.
  enum Form { kKeep, kQ8, kInteger };
  std::vector<Form> form(g.nodes.size(), kKeep);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (!n.is("matmul")) continue;
    const ir::Node& x = g.nodes[size_t(n.inputs[0])];
    const ir::Node& w = g.nodes[size_t(n.inputs[1])];
    // Kept in float: activations times activations, other shapes and types, weights shared
    // with other ops.
    const bool weight = w.is("constant") && w.constant && w.type.shape.size() == 2 &&
                        is_floating(w.type.dtype) && n.type.dtype == DType::Float32 &&
                        !x.type.shape.empty() && users[size_t(n.inputs[1])] == 1;
    if (!weight) continue;
    const int64_t rows = x.type.shape.size() >= 2 ? x.type.shape[x.type.shape.size() - 2] : 1;
    if (rows >= kIntegerRows && x.type.dtype == DType::Float32) form[i] = kInteger;
    else if (w.type.shape[0] % 32 == 0) form[i] = kQ8;
  }
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].is("matmul")) ++(form[i] == kKeep ? r.kept : r.quantized);

  // The replacement of matmul `n` (inputs already remapped), appended to b; returns its value.
  auto rewrite = [&](Builder& b, const ir::Node& n, Form f, int bias,
                     const std::string& activation) -> int {
    // Copies: b grows below, which moves its nodes.
    const Array w = *b.at(n.inputs[1]).constant;
    const std::string hint = b.at(n.inputs[1]).device_hint;
    r.bytes_before += int64_t(w.nbytes());
    if (f == kQ8) {
      const int wq = b.constant(quantize_q8_0_transposed(w), hint);
      r.bytes_after += int64_t(b.at(wq).constant->nbytes());
      ir::Attrs a;
      a.set("format", std::string("q8_0"));
      return b.emit("qmatmul", {n.inputs[0], wq}, a, hint);
    }
    auto [q, s] = quantize_per_column(w);
    r.bytes_after += int64_t(q.nbytes() + s.nbytes());
    std::vector<int> in = {n.inputs[0], b.constant(std::move(q), hint),
                           b.constant(std::move(s), hint)};
    if (bias >= 0) in.push_back(bias);
    ir::Attrs a;
    if (!activation.empty()) a.set("activation", activation);
    return b.emit("matmul_dynamic_int8", std::move(in), std::move(a), hint);
  };
  // An integer-form product absorbs what follows it alone: a float32 bias added to it, then a
  // ReLU or exact GELU; the op is emitted where its chain ends (where the bias is in place).
  std::vector<int> bias_of(g.nodes.size(), -1), chain_end(g.nodes.size(), -1);
  std::vector<std::string> activation_of(g.nodes.size());
  std::vector<int> product_of(g.nodes.size(), -1);  // chain end -> its product
  std::vector<bool> inside(g.nodes.size(), false);  // absorbed, not the chain's end
  auto only_user = [&](int v) { return users[size_t(v)] == 1 ? user[size_t(v)] : -1; };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (form[i] != kInteger) continue;
    int end = int(i);
    const ir::Node& mm = g.nodes[i];
    if (int u = only_user(end); u >= 0) {
      const ir::Node& a = g.nodes[size_t(u)];
      const int c = a.is("add") && a.inputs.size() == 2 ? a.inputs[a.inputs[0] == end ? 1 : 0] : -1;
      if (c >= 0 && c != end && a.type == mm.type && g.nodes[size_t(c)].is("constant") &&
          g.nodes[size_t(c)].type.dtype == DType::Float32 &&
          g.nodes[size_t(c)].type.shape == Shape{mm.type.shape.back()})
        bias_of[i] = c, end = u;
    }
    if (int u = only_user(end); u >= 0) {
      const ir::Node& a = g.nodes[size_t(u)];
      const bool gelu = a.is("gelu") && a.attrs.get_string("approximate") == "none";
      if ((gelu || a.is("relu")) && a.type == mm.type) {
        activation_of[i] = gelu ? "gelu" : "relu";
        end = u;
      }
    }
    chain_end[i] = end;
    product_of[size_t(end)] = int(i);
    if (bias_of[i] >= 0 && end != only_user(int(i))) inside[size_t(only_user(int(i)))] = true;
  }
  Builder b;
  std::vector<int> remap(g.nodes.size(), -1);
  std::vector<ir::Node> waiting(g.nodes.size());  // products waiting for their chain's end
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node n = std::move(g.nodes[i]);
    for (int& in : n.inputs) in = remap[size_t(in)];  // an absorbed value: -1, unused
    if (chain_end[i] >= 0 && chain_end[i] != int(i)) {
      waiting[i] = std::move(n);
      continue;
    }
    if (inside[i]) continue;
    if (const int mm = product_of[i]; mm >= 0) {
      const int bias = bias_of[size_t(mm)] >= 0 ? remap[size_t(bias_of[size_t(mm)])] : -1;
      remap[i] = rewrite(b, mm == int(i) ? n : waiting[size_t(mm)], kInteger, bias,
                         activation_of[size_t(mm)]);
      b.nodes[size_t(remap[i])].name = n.name;  // output and file names stay with the value
      continue;
    }
    if (form[i] == kKeep) {
      remap[i] = b.push(std::move(n));
      continue;
    }
    remap[i] = rewrite(b, n, form[i], -1, "");
    b.nodes[size_t(remap[i])].name = n.name;
  }
  g.nodes = std::move(b.nodes);
  for (int& o : g.outputs) o = remap[size_t(o)];
  ir::remove_dead(g);  // the float weights the rewrite replaced
  ir::validate(g);
  if (report) *report = r;
  LoadedGraph out;
  out.impl_ = std::make_shared<LoadedGraphImpl>();
  out.impl_->graph = std::move(g);
  index_input_types(*out.impl_);
  return out;
}

}  // namespace nef
