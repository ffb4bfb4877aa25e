// ONNX window functions: HannWindow, HammingWindow, BlackmanWindow. The window depends only on
// its length (a static scalar input; a length fed as a graph input specializes the graph on its
// value), so it is computed here in double, as onnx's reference writes the formulas, and becomes
// a constant of the output type.
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

using Tensors = std::vector<Tensor>;

enum class Window { Hann, Hamming, Blackman };

Converter window(Window kind) {
  return [kind](NodeCtx& ctx) -> Tensors {
    const std::vector<int64_t> sv = ctx.static_ints(0);
    if (sv.size() != 1 || ctx.input(0).rank() != 0)
      ctx.fail(str("size must be a scalar, got shape ", shape_str(ctx.input(0).shape())));
    const int64_t n = sv[0];
    if (n < 0 || n > kMaxElements) ctx.fail(str("size must be in [0, 2^48], got ", n));
    const int code = int(ctx.attr_int("output_datatype", 1));
    std::optional<DType> dt = dtype_from_onnx(code);
    if (!dt) ctx.unsupported(str("output_datatype ", onnx_type_name(code)));
    if (*dt == DType::Bool) ctx.fail("output_datatype must be a numeric type, got BOOL");
    // periodic: the window of length n + 1 without its last value (denominator n), else n - 1
    // (a symmetric window of length 1 divides 0 by 0 and gives NaN, as the reference does).
    const double den = ctx.attr_int("periodic", 1) != 0 ? double(n) : double(n - 1);
    const double pi = std::numbers::pi;
    std::vector<double> w(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const double t = double(i);
      switch (kind) {
        case Window::Hann: {
          const double s = std::sin(t * pi / den);
          w[size_t(i)] = s * s;
          break;
        }
        case Window::Hamming: {
          const double alpha = 25.0 / 46.0;
          w[size_t(i)] = alpha - std::cos(t * pi * 2 / den) * (1 - alpha);
          break;
        }
        case Window::Blackman:
          w[size_t(i)] =
              std::cos(t * (pi * 2) / den) * -0.5 + std::cos(t * (pi * 4) / den) * 0.08 + 0.42;
          break;
      }
    }
    Tensor out = nef::tensor<double>(w, {n});
    return {*dt == DType::Float64 ? out : nef::cast(out, *dt)};
  };
}

}  // namespace

void register_signal(ConverterTable& t) {
  t["HannWindow"] = {window(Window::Hann), {17}, 17};
  t["HammingWindow"] = {window(Window::Hamming), {17}, 17};
  t["BlackmanWindow"] = {window(Window::Blackman), {17}, 17};
}

}  // namespace nef::onnx_import
