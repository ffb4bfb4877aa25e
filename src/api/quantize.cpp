// Post-training weight quantization of a graph (LoadedGraph::quantize, `nef quantize --int8`):
// every matmul by a constant float matrix W [K, N] runs on int8 weights, in one of two forms
// chosen by the activation rows M it multiplies (known from the graph's shapes):
//  - M >= kIntegerRows (encoders, prefill): W per output channel, symmetric (Wq = round(W / s_n),
//    s_n = max_k |W[k, n]| / 127); activations per row at run time, asymmetric over the row's
//    range (uint8 codes xq with a zero point z_m and scale s_m, as ONNX's DynamicQuantizeLinear
//    per row: post-GELU rows lose half their resolution to a symmetric map); y = float((xq - z_m)
//    @ Wq) * s_m * s_n (+ a bias added to the product, absorbed) with an exact int32 product
//    (AVX-512 VNNI or AVX-VNNI byte products), all in one op, matmul_dynamic_int8, faster than the
//    float GEMM there.
//  - fewer rows (decoding, GEMV): Q8_0 blocks (a scale per 32 weights of each column) for
//    qmatmul, whose one-row kernel reads the blocks directly; weight bytes bound such products,
//    where matmul_integer's operand packing would cost more than the products.
// Every 1-D / 2-D conv by a constant float weight [M, C/G, k...] of a shape class where the int8
// conv is faster (int8_conv_pays below) runs as conv_integer: weights per output channel,
// symmetric (as the matmuls'); the activation quantized at run time per tensor, asymmetric over
// its range (ONNX DynamicQuantizeLinear: ConvInteger takes one x zero point, so one scale per
// tensor; a batch of one image, the usual CNN call, is per image); y = float(acc) * (s_x * s_w[m])
// + bias. All of it is one node, conv_dynamic_int8 (ir/ops/quant.cpp): its kernel quantizes an
// image into the conv's own input planes and rescales each finished tile, where the ops spelled
// out (range, quantize, conv_integer, rescale) made three more passes over the activations and
// two over the int32 result (1x1 convs lost to float that way).
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

// ---- convs ------------------------------------------------------------------------------------

// Whether a conv of this geometry runs faster as the int8 conv_integer (with its run-time
// quantization and rescaling) than as the float conv; x [N, C, spatial...], w [M, C/G, k...].
// Measured, 1 thread, ms per image, float conv vs conv_dynamic_int8 (bench/bench_conv_int8.py,
// AVX-512 VNNI; indicative, a loaded machine): 3x3 convs win from 16 channels up (16 x 160 x 160
// 1.08 vs 0.66, 32 -> 64 stride 2 x 160 2.23 vs 1.36, 128 x 40 x 40 3.37 vs 1.17); the rules
// below say where it loses. With AVX-VNNI and no AVX-512 (NEF_CPU_TARGET=avx2vnni: 256-bit byte
// products against the AVX2 float conv) the same 3x3 convs win too: 1.56 vs 0.98, 3.09 vs 2.13,
// 4.86 vs 1.65, 64 x 40 x 40 1.20 vs 0.54; with AVX2 alone (int16 pairs) at 0.90-1.19 of the
// float time.
bool int8_conv_pays(const Shape& x, const Shape& w, int64_t groups) {
  if (x.size() != 3 && x.size() != 4) return false;  // 3-D convs: the im2col integer GEMM
  const int64_t cg = w[1], mg = w[0] / std::max<int64_t>(groups, 1);
  // Depthwise convs: their direct int8 loop (conv_integer.h) multiplies int32 lanes, as many per
  // vector as the float conv's, so the run-time quantization and rescale are pure cost (96
  // channels x 80 x 80 3x3 depthwise, AVX-512, three interleaved runs: 0.23-0.29 float,
  // 0.28-0.37 conv_integer alone, 0.43-0.57 conv_dynamic_int8; on the tiles before it 1.06-1.59
  // and 1.31-1.89). Other convs of few channels per group: the tile rows and channel words
  // would be mostly padding (a 3 -> 16 stem at 160 x 160 stride 2: 0.13 float, 0.19 int8).
  if (mg < 8 || cg < 8) return false;
  // 1x1 convs: the float GEMM reads the input as it lies, and with K = C alone the int8 conv
  // gains little. Since the run-time quantization runs whole channels (not rows) and the rescale
  // is vectorized, int8 wins from 64 input channels on (64 -> 64 x 80 x 80 0.231 float vs 0.206
  // int8, 128 -> 64 x 40 x 40 0.118 / 0.101, 256 x 40 x 40 0.889 / 0.436, 512 -> 128 x 20 x 20
  // 0.223 / 0.138) and loses below (32 -> 192 x 80 x 80 0.358 / 0.405, 16 -> 32 x 160 x 160
  // 0.159 / 0.253). Yet in ddddocr's detector, also rewriting its 35 1x1 convs of 64+ channels
  // took 23.5 ms against 25.2 (31 convs: noise-level) with a larger score error (0.102 against
  // 0.083): kept float.
  int64_t taps = 1;
  for (size_t d = 2; d < w.size(); ++d) taps *= w[d];
  return taps > 1;
}

// W [M, ...] (any float dtype) -> int8 of the same shape and the float32 scale of each output
// channel [M] (symmetric, max |w| -> 127; an all-zero channel gets scale 1).
std::pair<Array, Array> quantize_per_output_channel(const Array& w) {
  const std::vector<double> v = weights(w);
  const int64_t M = w.shape[0], K = numel(w.shape) / std::max<int64_t>(M, 1);
  Array q = Array::empty(w.shape, DType::Int8), s = Array::empty({M}, DType::Float32);
  int8_t* qp = q.data_as<int8_t>();
  float* sp = s.data_as<float>();
  for (int64_t m = 0; m < M; ++m) {
    const double* row = v.data() + m * K;
    double amax = 0;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::abs(row[k]));
    const float scale = amax > 0 && std::isfinite(amax) ? float(amax / 127) : 1.0f;
    sp[m] = scale;
    for (int64_t k = 0; k < K; ++k) {
      const double r = std::nearbyint(row[k] / double(scale));
      qp[m * K + k] = int8_t(std::clamp(std::isfinite(r) ? r : 0.0, -127.0, 127.0));
    }
  }
  return {std::move(q), std::move(s)};
}

// Whether graph node i is a conv this rewrite takes: float32, a constant float weight used by it
// alone, 1-D or 2-D, of a shape class where int8 pays.
bool quantizable_conv(const ir::Graph& g, size_t i, const std::vector<int>& users) {
  const ir::Node& n = g.nodes[i];
  if (!n.is("conv")) return false;
  const ir::Node& x = g.nodes[size_t(n.inputs[0])];
  const ir::Node& w = g.nodes[size_t(n.inputs[1])];
  return w.is("constant") && w.constant && is_floating(w.type.dtype) &&
         n.type.dtype == DType::Float32 && x.type.dtype == DType::Float32 &&
         users[size_t(n.inputs[1])] == 1 &&
         int8_conv_pays(x.type.shape, w.type.shape, n.attrs.get_int("groups"));
}

// The replacement of conv `n` (inputs already remapped), appended to b; returns its value.
int rewrite_conv(Builder& b, const ir::Node& n, const std::string& activation,
                 LoadedGraph::QuantizeReport& r) {
  const Array w = *b.at(n.inputs[1]).constant;  // a copy: b grows below
  const std::string hint = b.at(n.inputs[1]).device_hint;
  r.bytes_before += int64_t(w.nbytes());
  auto [q, s] = quantize_per_output_channel(w);
  r.bytes_after += int64_t(q.nbytes() + s.nbytes());
  std::vector<int> in = {n.inputs[0], b.constant(std::move(q), hint),
                         b.constant(std::move(s), hint)};
  if (n.inputs.size() == 3) in.push_back(n.inputs[2]);
  ir::Attrs geometry;
  for (const char* a : {"strides", "pads", "dilations"}) geometry.set(a, n.attrs.get_ints(a));
  geometry.set("groups", n.attrs.get_int("groups"));
  geometry.set("activation", activation);
  return b.emit("conv_dynamic_int8", std::move(in), std::move(geometry), hint);
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
  // Which convs run in int8, decided on the original graph, and the relu / silu that is a
  // rewritten conv's only user: it runs in the conv's epilogue (the float convs get it fused by
  // the conv_epilogue pass; a separate silu kernel took 28 of 64 ms in ddddocr's detector).
  std::vector<bool> int8_conv(g.nodes.size(), false);
  std::vector<int> fused_into(g.nodes.size(), -1);  // activation node -> its conv
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.is("conv")) {
      int8_conv[i] = quantizable_conv(g, i, users);
      ++(int8_conv[i] ? r.convs_quantized : r.convs_kept);
    } else if ((n.is("relu") || n.is("silu")) && n.inputs.size() == 1 &&
               int8_conv[size_t(n.inputs[0])] && users[size_t(n.inputs[0])] == 1) {
      fused_into[i] = n.inputs[0];
    } else if (n.is("mul") && n.inputs.size() == 2) {
      // SiLU as exported (x * sigmoid(x)): the conv feeds the sigmoid and the mul only, the
      // sigmoid the mul only.
      for (int k = 0; k < 2; ++k) {
        const int c = n.inputs[size_t(k)], sg = n.inputs[size_t(1 - k)];
        const ir::Node& s = g.nodes[size_t(sg)];
        if (int8_conv[size_t(c)] && users[size_t(c)] == 2 && s.is("sigmoid") &&
            s.inputs.size() == 1 && s.inputs[0] == c && users[size_t(sg)] == 1) {
          fused_into[i] = c;
          fused_into[size_t(sg)] = c;
          break;
        }
      }
    }
  }
  std::vector<std::string> activation(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (fused_into[i] >= 0 && !g.nodes[i].is("sigmoid"))
      activation[size_t(fused_into[i])] = g.nodes[i].is("relu") ? "relu" : "silu";
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
    if (int8_conv[i]) {
      remap[i] = rewrite_conv(b, n, activation[i], r);
      b.nodes[size_t(remap[i])].name = n.name;
      continue;
    }
    if (fused_into[i] >= 0) {  // ran in its conv's epilogue: the conv's node is its value
      remap[i] = remap[size_t(fused_into[i])];
      if (!n.is("sigmoid")) b.nodes[size_t(remap[i])].name = n.name;
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
