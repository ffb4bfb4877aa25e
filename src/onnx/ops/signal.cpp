// ONNX signal processing: the window functions (HannWindow, HammingWindow, BlackmanWindow),
// MelWeightMatrix, DFT and STFT. A window depends only on its length (a static scalar input; a
// length fed as a graph input specializes the graph on its value), so it is computed here in
// double, as onnx's reference writes the formulas, and becomes a constant of the output type;
// so is the mel filter bank.
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

// ---- DFT, STFT ----------------------------------------------------------------------------------
// A DFT of length n along one axis is a matmul with an [n_in, n_out] cos/sin matrix built here
// in double and applied in double (as onnx's reference computes, so that float32 results agree
// to float32 rounding, which near-zero bins of an inverse transform need): any length, run by
// NEF's matmul kernels. O(n^2) per signal, so lengths are bounded (an FFT kernel would lift the
// bound).

constexpr int64_t kMaxDftLength = 4096;  // its two [n, n] double matrices: 256 MiB

struct Complex {
  Tensor re, im;  // im undefined: a real signal
};

// ONNX's [..., 1] (real) or [..., 2] (real, imaginary) layout -> parts of rank r - 1.
Complex split_complex(const NodeCtx& ctx, const Tensor& x, const char* what) {
  const Shape& s = x.shape();
  if (x.rank() < 2 || (s.back() != 1 && s.back() != 2))
    ctx.fail(str(what, " must be [..., 1] (real) or [..., 2] (complex) with rank >= 2, got ",
                 shape_str(s)));
  if (!is_floating(x.dtype()))
    ctx.fail(str(what, " must be a float tensor, got ", dtype_name(x.dtype())));
  const int last = x.rank() - 1;
  if (s.back() == 1) return {squeeze(x, std::vector<int64_t>{last}), Tensor{}};
  std::vector<Tensor> parts = split(x, {1, 1}, last);
  return {squeeze(parts[0], std::vector<int64_t>{last}),
          squeeze(parts[1], std::vector<int64_t>{last})};
}

// x truncated or zero-padded to `n` along its last axis.
Tensor fit_length(const Tensor& x, int64_t n) {
  Shape s = x.shape();
  const int64_t have = s.back();
  if (have == n) return x;
  if (have > n) {
    std::vector<int64_t> starts(s.size(), 0), stops(s.begin(), s.end()), steps(s.size(), 1);
    stops.back() = n;
    return slice(x, starts, stops, steps);
  }
  s.back() = n - have;
  return concat({x, zeros(s, x.dtype())}, x.rank() - 1);
}

Tensor matrix(const std::vector<double>& v, int64_t rows, int64_t cols, DType dt) {
  Tensor m = nef::tensor<double>(v, {rows, cols});
  return dt == DType::Float64 ? m : cast(m, dt);
}

// The transform of (re, im) along the last axis; returns ONNX's [..., n_out, 1 or 2] layout.
// Forward: X[k] = sum_j x[j] e^{-2 pi i jk/n}, k < n (or n/2+1 onesided). Inverse: the same
// with +i and 1/n. Inverse onesided (irfft): bins 0..n/2 of a Hermitian spectrum -> n reals.
Tensor dft_last_axis(Complex x, int64_t n, bool inverse, bool onesided, DType dt) {
  const double pi = std::numbers::pi;
  auto angle = [&](int64_t j, int64_t k) {  // 2 pi jk/n, with jk reduced mod n for accuracy
    return 2 * pi * double((j * k) % n) / double(n);
  };
  if (inverse && onesided) {
    const int64_t bins = n / 2 + 1;
    std::vector<double> wr(size_t(bins * n)), wi(size_t(bins * n));
    for (int64_t k = 0; k < bins; ++k) {
      // Bins 1..ceil(n/2)-1 stand for their conjugate mirror too; DC and (even n) Nyquist
      // count once and their imaginary parts drop out, as in numpy's irfft.
      const double c = (k == 0 || 2 * k == n) ? 1.0 : 2.0;
      for (int64_t t = 0; t < n; ++t) {
        const double a = angle(k, t);
        wr[size_t(k * n + t)] = c * std::cos(a) / double(n);
        wi[size_t(k * n + t)] = (k == 0 || 2 * k == n) ? 0.0 : -c * std::sin(a) / double(n);
      }
    }
    Tensor y = matmul(fit_length(x.re, bins), matrix(wr, bins, n, dt));
    if (x.im.defined()) y = y + matmul(fit_length(x.im, bins), matrix(wi, bins, n, dt));
    return expand_dims(y, {y.rank()});
  }
  const int64_t out = onesided ? n / 2 + 1 : n;
  const double sign = inverse ? 1.0 : -1.0, scale = inverse ? 1.0 / double(n) : 1.0;
  std::vector<double> cr(size_t(n * out)), ci(size_t(n * out));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < out; ++k) {
      cr[size_t(j * out + k)] = std::cos(angle(j, k)) * scale;
      ci[size_t(j * out + k)] = sign * std::sin(angle(j, k)) * scale;
    }
  const Tensor mr = matrix(cr, n, out, dt), mi = matrix(ci, n, out, dt);
  Tensor re = fit_length(x.re, n);
  Tensor yr = matmul(re, mr), yi = matmul(re, mi);
  if (x.im.defined()) {
    Tensor im = fit_length(x.im, n);
    yr = yr - matmul(im, mi);
    yi = yi + matmul(im, mr);
  }
  const int64_t r = yr.rank();
  return concat({expand_dims(yr, {r}), expand_dims(yi, {r})}, r);
}

// One static integer input (a 0-d or one-element tensor), as STFT and DFT take lengths/axes.
int64_t static_scalar(const NodeCtx& ctx, size_t i, const char* what) {
  const std::vector<int64_t> v = ctx.static_ints(i);
  if (v.size() != 1 || ctx.input(i).rank() > 1)
    ctx.fail(str(what, " must be a scalar, got shape ", shape_str(ctx.input(i).shape())));
  return v[0];
}

Tensors dft(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const int64_t r = x.rank();
  if (r < 2) ctx.fail(str("input must have rank >= 2, got ", shape_str(x.shape())));
  // Revision 17: axis is an attribute (default 1); 20: an input (default -2).
  int64_t axis = ctx.version() >= 20 ? (ctx.has_input(2) ? static_scalar(ctx, 2, "axis") : -2)
                                     : ctx.attr_int("axis", 1);
  if (axis < -r || axis >= r - 1)
    ctx.fail(str("axis ", axis, " must be in [-", r, ", ", r - 2,
                 "] (not the last, complex dim) for ", shape_str(x.shape())));
  if (axis < 0) axis += r;
  if (axis == r - 1) ctx.fail("axis must not be the last (complex) dim");
  const bool inverse = ctx.attr_int("inverse", 0) != 0;
  const bool onesided = ctx.attr_int("onesided", 0) != 0;
  Complex c = split_complex(ctx, x, "input");
  const int64_t have = x.shape()[size_t(axis)];
  int64_t n = inverse && onesided ? 2 * (have - 1) : have;
  if (ctx.has_input(1)) n = static_scalar(ctx, 1, "dft_length");
  if (n < 1 || n > kMaxDftLength)
    ctx.fail(str("dft_length ", n, " must be in [1, ", kMaxDftLength, "]"));
  // The transformed axis goes last for the matmul, then back.
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < r - 1; ++d)
    if (d != axis) perm.push_back(d);
  perm.push_back(axis);
  std::vector<int64_t> back(size_t(r), 0);
  for (size_t i = 0; i < perm.size(); ++i) back[size_t(perm[i])] = int64_t(i);
  back[size_t(r - 1)] = r - 1;
  c.re = cast(transpose(c.re, perm), DType::Float64);
  if (c.im.defined()) c.im = cast(transpose(c.im, perm), DType::Float64);
  Tensor y = dft_last_axis(c, n, inverse, onesided, DType::Float64);
  return {cast(transpose(y, back), x.dtype())};
}

// STFT (17): signal [B, L, 1 or 2] -> [B, frames, bins, 2] with frames = 1 + (L - len) / step,
// each frame times the window, then its DFT (bins = len/2+1 when onesided).
Tensors stft(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (x.rank() != 3) ctx.fail(str("signal must be [B, L, 1 or 2], got ", shape_str(x.shape())));
  const int64_t L = x.shape()[1];
  const int64_t step = static_scalar(ctx, 1, "frame_step");
  if (step < 1) ctx.fail(str("frame_step must be >= 1, got ", step));
  Tensor window;
  if (ctx.has_input(2)) {
    window = ctx.input(2);
    if (window.rank() != 1) ctx.fail(str("window must be 1-D, got ", shape_str(window.shape())));
  }
  int64_t len = window.defined() ? window.shape()[0] : L;
  if (ctx.has_input(3)) {
    len = static_scalar(ctx, 3, "frame_length");
    if (window.defined() && window.shape()[0] != len)
      ctx.fail(
          str("window ", shape_str(window.shape()), " must have frame_length ", len, " values"));
  }
  if (len < 1 || len > L || len > kMaxDftLength)
    ctx.fail(str("frame_length ", len, " must be in [1, min(signal length ", L, ", ", kMaxDftLength,
                 ")]"));
  const bool onesided = ctx.attr_int("onesided", 1) != 0;
  const int64_t frames = 1 + (L - len) / step;
  std::vector<int64_t> idx(size_t(frames * len));
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t j = 0; j < len; ++j) idx[size_t(f * len + j)] = f * step + j;
  Complex c = split_complex(ctx, x, "signal");
  const Tensor gather_idx = nef::tensor<int64_t>(idx, {frames, len});
  auto frame = [&](const Tensor& part) {  // [B, L] -> [B, frames, len], windowed
    Tensor f = gather(part, gather_idx, 1);
    return window.defined() ? f * cast(window, part.dtype()) : f;
  };
  c.re = frame(cast(c.re, DType::Float64));
  if (c.im.defined()) c.im = frame(cast(c.im, DType::Float64));
  return {cast(dft_last_axis(c, len, false, onesided, DType::Float64), x.dtype())};
}

// Python's float floor division (a // b), which onnx's reference uses for the bin edges.
double py_floordiv(double a, double b) {
  const double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  double fl = std::floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return fl;
}

// MelWeightMatrix (17): [dft_length/2 + 1, num_mel_bins] triangular filters between mel-spaced
// edges, computed at import from its static inputs as onnx's reference does (bins of
// floor((dft_length + 1) * hz / sample_rate)).
Tensors mel_weight_matrix(NodeCtx& ctx) {
  const int64_t mels = static_scalar(ctx, 0, "num_mel_bins");
  const int64_t n = static_scalar(ctx, 1, "dft_length");
  const int64_t rate = static_scalar(ctx, 2, "sample_rate");
  auto edge = [&](size_t i, const char* what) {
    const std::vector<double> v = ctx.static_floats(i);
    if (v.size() != 1) ctx.fail(str(what, " must be a scalar"));
    return v[0];
  };
  const double lo = edge(3, "lower_edge_hertz"), hi = edge(4, "upper_edge_hertz");
  if (mels < 1 || mels > 65536 || n < 1 || n > (int64_t(1) << 24) || rate < 1)
    ctx.fail(str("num_mel_bins ", mels, ", dft_length ", n, " and sample_rate ", rate,
                 " must be positive (and at most 65536 bins, 2^24 samples)"));
  if (!(lo >= 0) || !(hi > lo) || !std::isfinite(hi))
    ctx.fail(str("need 0 <= lower_edge_hertz ", lo, " < upper_edge_hertz ", hi));
  const int code = int(ctx.attr_int("output_datatype", 1));
  std::optional<DType> dt = dtype_from_onnx(code);
  if (!dt) ctx.unsupported(str("output_datatype ", onnx_type_name(code)));
  if (*dt == DType::Bool) ctx.fail("output_datatype must be a numeric type, got BOOL");
  const int64_t bins = n / 2 + 1;
  const double lo_mel = 2595 * std::log10(1 + lo / 700), hi_mel = 2595 * std::log10(1 + hi / 700);
  const double step = (hi_mel - lo_mel) / double(mels + 2);
  std::vector<int64_t> edges(size_t(mels + 2));
  for (int64_t i = 0; i < mels + 2; ++i) {
    const double hz = 700 * (std::pow(10.0, (double(i) * step + lo_mel) / 2595) - 1);
    edges[size_t(i)] = int64_t(py_floordiv(double(n + 1) * hz, double(rate)));
  }
  if (bins * mels > (int64_t(1) << 26))
    ctx.fail(str("the [", bins, ", ", mels, "] mel weight matrix is larger than 2^26 values"));
  if (edges.back() >= bins)
    ctx.fail(str("upper_edge_hertz ", hi, " maps past the ", bins,
                 " spectrogram bins of dft_length ", n, " at sample_rate ", rate));
  std::vector<double> w(size_t(bins * mels), 0.0);
  for (int64_t i = 0; i < mels; ++i) {
    const int64_t l = edges[size_t(i)], c = edges[size_t(i + 1)], h = edges[size_t(i + 2)];
    if (c == l) w[size_t(c * mels + i)] = 1;
    else
      for (int64_t j = l; j <= c; ++j) w[size_t(j * mels + i)] = double(j - l) / double(c - l);
    for (int64_t j = c; j < h; ++j) w[size_t(j * mels + i)] = double(h - j) / double(h - c);
  }
  Tensor out = nef::tensor<double>(w, {bins, mels});
  return {*dt == DType::Float64 ? out : cast(out, *dt)};
}

}  // namespace

void register_signal(ConverterTable& t) {
  t["HannWindow"] = {window(Window::Hann), {17}, 17};
  t["HammingWindow"] = {window(Window::Hamming), {17}, 17};
  t["BlackmanWindow"] = {window(Window::Blackman), {17}, 17};
  t["DFT"] = {dft, {17, 20}, 17};
  t["STFT"] = {stft, {17}, 17};
  t["MelWeightMatrix"] = {mel_weight_matrix, {17}, 17};
}

}  // namespace nef::onnx_import
