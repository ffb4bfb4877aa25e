// The recurrent ops' shared vocabulary (lstm, gru, rnn; registered in recurrent.cpp): the cells,
// the direction names and the activation functions with their alpha/beta defaults, read by the
// registry's inference, the backends' kernels and the ONNX converter alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nef/attrs.h"

namespace nef::ir {

// The activation functions ONNX's recurrent layers name (lower-case here, as the canonical
// `activations` attribute stores them): relu, tanh, sigmoid, affine (alpha*x + beta),
// leakyrelu, thresholdedrelu (x if x > alpha else 0), scaledtanh (alpha*tanh(beta*x)),
// hardsigmoid (clamp(alpha*x + beta, 0, 1)), elu, softsign, softplus.
enum class RnnActivation : uint8_t {
  Relu,
  Tanh,
  Sigmoid,
  Affine,
  LeakyRelu,
  ThresholdedRelu,
  ScaledTanh,
  HardSigmoid,
  Elu,
  Softsign,
  Softplus
};

// Case-insensitive; nullopt for an unknown name.
std::optional<RnnActivation> rnn_activation(std::string_view name);
const char* rnn_activation_name(RnnActivation a);
// Whether the function reads alpha / beta, and their defaults (those of the ONNX operator of
// the same name: LeakyRelu 0.01, ThresholdedRelu 1, Elu 1, HardSigmoid 0.2 / 0.5, Affine 1 / 0,
// ScaledTanh 1 / 1).
bool rnn_activation_uses_alpha(RnnActivation a);
bool rnn_activation_uses_beta(RnnActivation a);
double rnn_activation_default_alpha(RnnActivation a);
double rnn_activation_default_beta(RnnActivation a);

// One cell kind: gates per hidden unit (W is [dirs, gates*H, I]) and the activations each
// direction takes (LSTM f, g, h; GRU f, g; RNN f).
struct RnnCell {
  int gates;
  int activations;
  int states;  // extra outputs after Y: Y_h (and Y_c for LSTM)
};
RnnCell rnn_cell(std::string_view op);  // "lstm", "gru", "rnn"

// 1 for "forward" and "reverse", 2 for "bidirectional"; nullopt otherwise.
std::optional<int> rnn_directions(std::string_view direction);

// The canonical attributes of a recurrent node, read back by kernels (inference has already
// validated and expanded them: one activation, alpha and beta per direction and cell slot).
struct RnnAttrs {
  int directions = 1;
  bool reverse = false;  // direction "reverse" (bidirectional runs direction 1 in reverse)
  std::vector<RnnActivation> acts;   // directions * cell.activations
  std::vector<double> alpha, beta;   // same length
  double clip = 0;                   // 0: none
  bool input_forget = false;         // lstm
  bool linear_before_reset = false;  // gru
};
RnnAttrs read_rnn_attrs(std::string_view op, const Attrs& attrs);

}  // namespace nef::ir
