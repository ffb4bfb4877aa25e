// Recurrent layers: LSTM, GRU and RNN become NEF's lstm / gru / rnn ops (one kernel runs the
// whole sequence; see src/ir/ops/recurrent.cpp), with ONNX's attributes mapped onto them:
// layout 1 ([batch, seq, ...]) through transposed views, activation_alpha / activation_beta
// consumed in the order of the activations that take them (as ONNX Runtime does), and
// hidden_size checked against R.
#include "ir/ops/recurrent.h"

#include <string>
#include <vector>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

// ONNX lists one alpha per activation that uses alpha (likewise beta), in activation order;
// NEF takes one of each per activation, defaults filled.
void map_activations(const NodeCtx& ctx, int per, int dirs, RecurrentOptions& o,
                     const std::vector<std::string>& defaults) {
  std::vector<std::string> names = ctx.attr_strings("activations", defaults);
  if (names.size() != size_t(per) && names.size() != size_t(per * dirs))
    ctx.fail(str("activations lists ", names.size(), " functions; ", per,
                 dirs == 2 ? str(" per direction (", per * dirs, " in all)") : "", " expected"));
  if (dirs == 2 && names.size() == size_t(per)) {
    const std::vector<std::string> once = names;
    names.insert(names.end(), once.begin(), once.end());
  }
  const std::vector<double> alphas = ctx.attr_floats("activation_alpha", std::vector<double>{});
  const std::vector<double> betas = ctx.attr_floats("activation_beta", std::vector<double>{});
  size_t ia = 0, ib = 0;
  for (const std::string& n : names) {
    auto a = ir::rnn_activation(n);
    if (!a) ctx.unsupported(str("activation '", n, "'"));
    o.activations.push_back(ir::rnn_activation_name(*a));
    o.activation_alpha.push_back(ir::rnn_activation_uses_alpha(*a) && ia < alphas.size()
                                     ? alphas[ia++]
                                     : ir::rnn_activation_default_alpha(*a));
    o.activation_beta.push_back(ir::rnn_activation_uses_beta(*a) && ib < betas.size()
                                    ? betas[ib++]
                                    : ir::rnn_activation_default_beta(*a));
  }
  if (ia < alphas.size() || ib < betas.size())
    ctx.fail(str("activation_alpha/activation_beta list more values (", alphas.size(), "/",
                 betas.size(), ") than the activations use (", ia, "/", ib, ")"));
}

std::vector<Tensor> recurrent(NodeCtx& ctx, const std::string& op) {
  const ir::RnnCell cell = ir::rnn_cell(op);
  const bool lstm = op == "lstm";
  RecurrentOptions o;
  o.direction = ctx.attr_string("direction", std::string("forward"));
  const auto dirs = ir::rnn_directions(o.direction);
  if (!dirs)
    ctx.fail(str("direction '", o.direction, "' is not forward, reverse or bidirectional"));
  const std::vector<std::string> defaults =
      lstm          ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
      : op == "gru" ? std::vector<std::string>{"Sigmoid", "Tanh"}
                    : std::vector<std::string>{"Tanh"};
  map_activations(ctx, cell.activations, *dirs, o, defaults);
  if (ctx.has_attr("clip")) {
    o.clip = ctx.attr_float("clip");
    if (!(o.clip > 0)) ctx.fail(str("clip must be positive, got ", o.clip));
  }
  if (lstm) o.input_forget = ctx.attr_int("input_forget", 0) != 0;
  if (op == "gru" && ctx.version() >= 3)
    o.linear_before_reset = ctx.attr_int("linear_before_reset", 0) != 0;
  // output_sequence (revision 1; GRU also 3) only allowed leaving Y out: Y is computed
  // whenever the node lists it.
  if (ctx.version() < 7) ctx.ignore_attr("output_sequence");
  const int64_t layout = ctx.version() >= 14 ? ctx.attr_int("layout", 0) : 0;
  if (layout != 0 && layout != 1) ctx.fail(str("layout ", layout, " is not 0 or 1"));

  Tensor x = ctx.input(0), w = ctx.input(1), r = ctx.input(2);
  if (x.rank() != 3 || w.rank() != 3 || r.rank() != 3)
    ctx.fail(str("X, W and R must be 3-D, got ", shape_str(x.shape()), ", ", shape_str(w.shape()),
                 ", ", shape_str(r.shape())));
  if (ctx.has_attr("hidden_size") && ctx.attr_int("hidden_size") != r.shape()[2])
    ctx.fail(str("hidden_size ", ctx.attr_int("hidden_size"), " does not match R ",
                 shape_str(r.shape())));
  auto opt = [&](size_t i) { return ctx.has_input(i) ? ctx.input(i) : Tensor{}; };
  // layout 1: X [B, S, I], initial states [B, D, H]; the op works on [S, B, I] / [D, B, H].
  auto to_op = [&](Tensor t) { return layout == 1 && t.defined() ? transpose(t, {1, 0, 2}) : t; };
  if (layout == 1) x = transpose(x, {1, 0, 2});
  const Tensor b = opt(3), lens = opt(4), h0 = to_op(opt(5));
  if (lens.defined() && lens.dtype() != DType::Int32)
    ctx.fail(str("sequence_lens must be int32, got ", dtype_name(lens.dtype())));
  std::vector<Tensor> out = lstm ? nef::lstm(x, w, r, b, h0, to_op(opt(6)), lens, opt(7), o)
                            : op == "gru" ? nef::gru(x, w, r, b, h0, lens, o)
                                          : nef::rnn(x, w, r, b, h0, lens, o);
  if (layout == 1) {
    out[0] = transpose(out[0], {2, 0, 1, 3});  // [S, D, B, H] -> [B, S, D, H]
    for (size_t i = 1; i < out.size(); ++i) out[i] = transpose(out[i], {1, 0, 2});
  }
  return out;
}

}  // namespace

void register_recurrent(ConverterTable& t) {
  t["LSTM"] = {[](NodeCtx& c) { return recurrent(c, "lstm"); }, {1, 7, 14, 22}, 1};
  t["GRU"] = {[](NodeCtx& c) { return recurrent(c, "gru"); }, {1, 3, 7, 14, 22}, 1};
  t["RNN"] = {[](NodeCtx& c) { return recurrent(c, "rnn"); }, {1, 7, 14, 22}, 1};
}

}  // namespace nef::onnx_import
