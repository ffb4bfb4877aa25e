// Recurrent layers: lstm, gru and rnn, ONNX's cells as single ops so that a sequence runs as one
// kernel (the input projection of every step as one GEMM, then the steps in a loop) instead of
// thousands of tiny nodes. A node has one output, so each op packs its results along dim 0:
// out [S + k, D, B, H] holds Y (rows 0..S-1), then Y_h (row S) and, for lstm, Y_c (row S+1);
// slices of it are views. See docs/ops.md for the contract.
#include "ir/ops/recurrent.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {

namespace {

struct ActInfo {
  RnnActivation a;
  const char* name;
  bool alpha, beta;
  double da, db;
};
constexpr ActInfo kActs[] = {
    {RnnActivation::Relu, "relu", false, false, 0, 0},
    {RnnActivation::Tanh, "tanh", false, false, 0, 0},
    {RnnActivation::Sigmoid, "sigmoid", false, false, 0, 0},
    {RnnActivation::Affine, "affine", true, true, 1.0, 0.0},
    {RnnActivation::LeakyRelu, "leakyrelu", true, false, 0.01, 0},
    {RnnActivation::ThresholdedRelu, "thresholdedrelu", true, false, 1.0, 0},
    {RnnActivation::ScaledTanh, "scaledtanh", true, true, 1.0, 1.0},
    {RnnActivation::HardSigmoid, "hardsigmoid", true, true, 0.2, 0.5},
    {RnnActivation::Elu, "elu", true, false, 1.0, 0},
    {RnnActivation::Softsign, "softsign", false, false, 0, 0},
    {RnnActivation::Softplus, "softplus", false, false, 0, 0},
};

const ActInfo& info(RnnActivation a) { return kActs[size_t(a)]; }

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (!std::isspace(static_cast<unsigned char>(c))) {
      cur += c;
    }
  }
  if (!s.empty()) out.push_back(cur);
  return out;
}

std::string join_names(const std::vector<RnnActivation>& acts) {
  std::string s;
  for (size_t i = 0; i < acts.size(); ++i) s += (i ? "," : "") + std::string(info(acts[i]).name);
  return s;
}

// Validates and canonicalizes direction, activations, alphas and betas (one per direction and
// slot, lower-case names, defaults filled), clip and the cell flags. Idempotent.
void canonical_attrs(const OpDef& op, const RnnCell& cell, int dirs, Attrs& attrs) {
  const std::vector<std::string> names = split_names(attrs.get_string("activations"));
  const size_t per = size_t(cell.activations), want = per * size_t(dirs);
  if (names.size() != per && names.size() != want)
    throw ValidationError(str("[", op.name, "] activations \"", attrs.get_string("activations"),
                              "\" must name ", per, dirs == 2 ? str(" (or ", want, ")") : "",
                              " functions"));
  std::vector<RnnActivation> acts;
  for (size_t i = 0; i < want; ++i) {
    const std::string& n = names[i % names.size()];
    auto a = rnn_activation(n);
    if (!a)
      throw ValidationError(str("[", op.name, "] unknown activation '", n,
                                "' (relu, tanh, sigmoid, affine, leakyrelu, thresholdedrelu, "
                                "scaledtanh, hardsigmoid, elu, softsign, softplus)"));
    acts.push_back(*a);
  }
  for (const char* key : {"activation_alpha", "activation_beta"}) {
    const bool is_alpha = std::string(key) == "activation_alpha";
    std::vector<double> v = attrs.get_floats(key);
    if (v.empty()) {
      for (RnnActivation a : acts)
        v.push_back(is_alpha ? rnn_activation_default_alpha(a) : rnn_activation_default_beta(a));
    } else if (v.size() == per && want != per) {
      const std::vector<double> once = v;  // one list for both directions
      v.insert(v.end(), once.begin(), once.end());
    } else if (v.size() != want) {
      throw ValidationError(str("[", op.name, "] ", key, " has ", v.size(),
                                " values; it needs one per activation (", want, ")"));
    }
    for (double x : v)
      if (!std::isfinite(x))
        throw ValidationError(str("[", op.name, "] ", key, " values must be finite"));
    attrs.set(key, v);
  }
  attrs.set("activations", join_names(acts));
  const double clip = attrs.get_float("clip");
  if (!(clip >= 0))
    throw ValidationError(str("[", op.name, "] clip must be >= 0 (0: no clipping), got ", clip));
}

// Inputs: x [S, B, I], w [D, G*H, I], r [D, G*H, H], b [D, 2*G*H], initial_h [D, B, H]
// (lstm: initial_c [D, B, H]), then optional sequence_lens [B] (int32/int64) and, for lstm,
// peepholes p [D, 3*H] (give sequence_lens too: all S when not ragged).
TensorType infer_rnn(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const RnnCell cell = rnn_cell(op.name);
  const auto dirs = rnn_directions(attrs.get_string("direction"));
  if (!dirs)
    throw ValidationError(str("[", op.name, "] direction \"", attrs.get_string("direction"),
                              "\" must be forward, reverse or bidirectional"));
  const int64_t D = *dirs;
  const DType t = in[0].dtype;
  if (!is_floating(t))
    throw TypeError(str("[", op.name, "] x must be a float tensor: ", types_str(in)));
  const size_t n_float = op.name == "lstm" ? 6 : 5;
  for (size_t i = 1; i < in.size(); ++i) {
    const bool is_lens = i == n_float;
    if (is_lens ? (in[i].dtype != DType::Int32 && in[i].dtype != DType::Int64) : in[i].dtype != t)
      throw TypeError(str("[", op.name, "] ",
                          is_lens ? "sequence_lens must be int32 or int64"
                                  : "every float input must have x's dtype",
                          ": ", types_str(in)));
  }
  for (size_t i = 0; i < 3; ++i)
    if (in[i].shape.size() != 3)
      throw ShapeError(str("[", op.name, "] x, w and r must be 3-D: ", types_str(in)));
  const int64_t S = in[0].shape[0], B = in[0].shape[1], I = in[0].shape[2];
  const int64_t H = in[2].shape[2], GH = int64_t(cell.gates) * H;
  auto expect = [&](size_t i, const Shape& want, const char* what) {
    if (in[i].shape != want)
      throw ShapeError(str("[", op.name, "] ", what, " must be ", shape_str(want), " (x ",
                           shape_str(in[0].shape), ", ", D, " direction", D == 2 ? "s" : "",
                           ", hidden size ", H, " from r), got ", shape_str(in[i].shape)));
  };
  expect(2, {D, GH, H}, "r");
  expect(1, {D, GH, I}, "w");
  expect(3, {D, 2 * GH}, "b");
  expect(4, {D, B, H}, "initial_h");
  if (op.name == "lstm") expect(5, {D, B, H}, "initial_c");
  if (in.size() > n_float) expect(n_float, {B}, "sequence_lens");
  if (in.size() > n_float + 1) expect(n_float + 1, {D, 3 * H}, "p");
  canonical_attrs(op, cell, int(D), attrs);
  Shape out{S + cell.states, D, B, H};
  checked_numel(out, op.name.c_str());
  return {out, t};
}

// Per direction and step: the input projection (2*B*I*G*H), the recurrent product
// (2*B*H*G*H) and ~10 flops of gate math per gate value.
Cost cost_rnn(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const double S = double(in[0].shape[0]), B = double(in[0].shape[1]), I = double(in[0].shape[2]);
  const double D = double(in[1].shape[0]), GH = double(in[1].shape[1]);
  const double H = double(in[2].shape[2]);
  Cost c;
  c.flops = D * S * B * GH * (2 * I + 2 * H + 10);
  for (const TensorType& t : in) c.bytes += double(numel(t.shape)) * dtype_size(t.dtype);
  c.bytes += double(numel(out.shape)) * dtype_size(out.dtype);
  return c;
}

OpDef make_rnn(const char* name, int max_inputs, const char* default_acts) {
  OpDef d;
  d.name = name;
  d.min_inputs = std::string(name) == "lstm" ? 6 : 5;
  d.max_inputs = max_inputs;
  d.attrs = {{"direction", AttrType::String, AttrValue(std::string("forward"))},
             {"activations", AttrType::String, AttrValue(std::string(default_acts))},
             {"activation_alpha", AttrType::Floats, AttrValue(std::vector<double>{})},
             {"activation_beta", AttrType::Floats, AttrValue(std::vector<double>{})},
             {"clip", AttrType::Float, AttrValue(0.0)}};
  if (d.name == "lstm") d.attrs.push_back({"input_forget", AttrType::Bool, AttrValue(false)});
  if (d.name == "gru") d.attrs.push_back({"linear_before_reset", AttrType::Bool, AttrValue(false)});
  d.infer = infer_rnn;
  d.cost = cost_rnn;
  return d;
}

}  // namespace

std::optional<RnnActivation> rnn_activation(std::string_view name) {
  std::string lower;
  for (char c : name) lower += char(std::tolower(static_cast<unsigned char>(c)));
  for (const ActInfo& a : kActs)
    if (lower == a.name) return a.a;
  return std::nullopt;
}

const char* rnn_activation_name(RnnActivation a) { return info(a).name; }
bool rnn_activation_uses_alpha(RnnActivation a) { return info(a).alpha; }
bool rnn_activation_uses_beta(RnnActivation a) { return info(a).beta; }
double rnn_activation_default_alpha(RnnActivation a) { return info(a).da; }
double rnn_activation_default_beta(RnnActivation a) { return info(a).db; }

RnnCell rnn_cell(std::string_view op) {
  if (op == "lstm") return {4, 3, 2};
  if (op == "gru") return {3, 2, 1};
  NEF_CHECK(op == "rnn", "rnn_cell: unknown op ", op);
  return {1, 1, 1};
}

std::optional<int> rnn_directions(std::string_view direction) {
  if (direction == "forward" || direction == "reverse") return 1;
  if (direction == "bidirectional") return 2;
  return std::nullopt;
}

RnnAttrs read_rnn_attrs(std::string_view op, const Attrs& attrs) {
  RnnAttrs r;
  const std::string& dir = attrs.get_string("direction");
  r.directions = rnn_directions(dir).value_or(1);
  r.reverse = dir == "reverse";
  for (const std::string& n : split_names(attrs.get_string("activations"))) {
    auto a = rnn_activation(n);
    NEF_CHECK(a.has_value(), "[", op, "] activation '", n, "' was not canonicalized");
    r.acts.push_back(*a);
  }
  r.alpha = attrs.get_floats("activation_alpha");
  r.beta = attrs.get_floats("activation_beta");
  const size_t want = size_t(rnn_cell(op).activations * r.directions);
  NEF_CHECK(r.acts.size() == want && r.alpha.size() == want && r.beta.size() == want, "[", op,
            "] activation attributes were not canonicalized");
  r.clip = attrs.get_float("clip");
  r.input_forget = attrs.has("input_forget") && attrs.get_bool("input_forget");
  r.linear_before_reset = attrs.has("linear_before_reset") && attrs.get_bool("linear_before_reset");
  return r;
}

void register_recurrent_ops(Registry& r) {
  r.add(make_rnn("lstm", 8, "sigmoid,tanh,tanh"));
  r.add(make_rnn("gru", 6, "sigmoid,tanh"));
  r.add(make_rnn("rnn", 6, "tanh"));
}

}  // namespace nef::ir
