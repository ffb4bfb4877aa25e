// The recurrent layer functions (nef::lstm, gru, rnn): absent optional inputs become zeros (or
// full lengths where a later input is given), and the op's packed result [S + k, D, B, H] is
// sliced into Y, Y_h (and Y_c) views.
#include <string>
#include <vector>

#include "nef/tensor.h"

namespace nef {
namespace {

std::vector<Tensor> recurrent(const std::string& name, const Tensor& x, const Tensor& w,
                              const Tensor& r, const std::vector<Tensor>& optional,
                              const RecurrentOptions& o) {
  for (const Tensor* t : {&x, &w, &r})
    if (!t->defined()) throw ValidationError(str("[", name, "] x, w and r are required"));
  if (x.rank() != 3 || w.rank() != 3 || r.rank() != 3)
    throw ShapeError(str("[", name, "] x, w and r must be 3-D, got ", shape_str(x.shape()), ", ",
                         shape_str(w.shape()), ", ", shape_str(r.shape())));
  const int64_t S = x.shape()[0], B = x.shape()[1], D = w.shape()[0];
  const int64_t GH = r.shape()[1], H = r.shape()[2];
  const DType t = x.dtype();
  // Inputs after initial_h/initial_c: sequence_lens, then (lstm) p.
  const size_t states = name == "lstm" ? 2 : 1;
  std::vector<Tensor> in{x, w, r, optional[0].defined() ? optional[0] : full({D, 2 * GH}, 0, t)};
  for (size_t i = 1; i <= states; ++i)
    in.push_back(optional[i].defined() ? optional[i] : full({D, B, H}, 0, t));
  size_t last = optional.size();
  while (last > states + 1 && !optional[last - 1].defined()) --last;
  for (size_t i = states + 1; i < last; ++i)
    in.push_back(optional[i].defined() ? optional[i] : full({B}, double(S), DType::Int32));
  ir::Attrs a;
  a.set("direction", o.direction);
  std::string acts;
  for (size_t i = 0; i < o.activations.size(); ++i) acts += (i ? "," : "") + o.activations[i];
  if (!o.activations.empty()) a.set("activations", acts);
  a.set("activation_alpha", o.activation_alpha);
  a.set("activation_beta", o.activation_beta);
  a.set("clip", o.clip);
  if (name == "lstm") a.set("input_forget", o.input_forget);
  else if (o.input_forget)
    throw ValidationError(str("[", name, "] input_forget is an lstm option"));
  if (name == "gru") a.set("linear_before_reset", o.linear_before_reset);
  else if (o.linear_before_reset)
    throw ValidationError(str("[", name, "] linear_before_reset is a gru option"));
  const Tensor packed = op(name, in, std::move(a));
  const Shape& ps = packed.shape();
  auto rows = [&](int64_t r0, int64_t r1) {
    return slice(packed, {r0, 0, 0, 0}, {r1, ps[1], ps[2], ps[3]}, {1, 1, 1, 1});
  };
  std::vector<Tensor> out{rows(0, S)};
  for (int64_t k = 0; k < int64_t(states); ++k)
    out.push_back(squeeze(rows(S + k, S + k + 1), {{0}}));
  return out;
}

}  // namespace

std::vector<Tensor> lstm(const Tensor& x, const Tensor& w, const Tensor& r, const Tensor& b,
                         const Tensor& initial_h, const Tensor& initial_c,
                         const Tensor& sequence_lens, const Tensor& p,
                         const RecurrentOptions& options) {
  return recurrent("lstm", x, w, r, {b, initial_h, initial_c, sequence_lens, p}, options);
}

std::vector<Tensor> gru(const Tensor& x, const Tensor& w, const Tensor& r, const Tensor& b,
                        const Tensor& initial_h, const Tensor& sequence_lens,
                        const RecurrentOptions& options) {
  return recurrent("gru", x, w, r, {b, initial_h, sequence_lens}, options);
}

std::vector<Tensor> rnn(const Tensor& x, const Tensor& w, const Tensor& r, const Tensor& b,
                        const Tensor& initial_h, const Tensor& sequence_lens,
                        const RecurrentOptions& options) {
  return recurrent("rnn", x, w, r, {b, initial_h, sequence_lens}, options);
}

}  // namespace nef
