// CPU resize with the ONNX Resize semantics of onnx.reference's op_resize (no antialias). Each
// axis gets a tap table built once in double (source coordinate, neighbours, weights), mirroring
// the reference's arithmetic so nearest-mode ties round the same way. nearest is a direct gather;
// linear and cubic run one separable pass per resized axis, in axis order like the reference,
// through compute-type buffers (float, or double for float64). Rows run in parallel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {

void register_pad_kernels(KernelTable& t);          // pad.cpp (same image family)
void register_grid_sample_kernels(KernelTable& t);  // grid_sample.cpp (same image family)
void register_roi_align_kernels(KernelTable& t);    // roi_align.cpp (same image family)

namespace {

// What one output position of an axis does: taps (clamped input indices and weights), or the
// extrapolation value (tf_crop_and_resize outside the input).
struct AxisTaps {
  int n = 1;  // taps per output position: 1 (nearest), 2 (linear), 4 (cubic)
  bool identity = false;
  std::vector<int64_t> idx;  // out * n
  std::vector<double> w;     // out * n
  std::vector<uint8_t> extrap;
};

struct ResizeParams {
  std::string mode, ctm, nearest_mode;
  double cubic_a = -0.75;
  bool exclude_outside = false;
};

// Python's math.isclose with its default rel_tol (the reference's identity-axis test).
bool isclose(double a, double b) {
  return a == b || std::abs(a - b) <= 1e-9 * std::max(std::abs(a), std::abs(b));
}

// Source coordinate of output index y, written in the reference's operation order.
double source_coord(const ResizeParams& p, double y, double scale, int64_t in, int64_t out,
                    double r0, double r1, bool& extrap) {
  const double iw = double(in), ow = scale * iw;
  extrap = false;
  if (p.ctm == "align_corners") return ow == 1 ? 0.0 : y * (iw - 1) / (ow - 1);
  if (p.ctm == "asymmetric") return y / scale;
  if (p.ctm == "tf_half_pixel_for_nn") return (y + 0.5) / scale;  // ONNX Resize-11 only
  if (p.ctm == "tf_crop_and_resize") {
    double x = ow == 1 ? (r1 - r0) * (iw - 1) / 2 : y * (r1 - r0) * (iw - 1) / (ow - 1);
    x = x + r0 * (iw - 1);
    extrap = x < 0 || x > iw - 1;
    return x;
  }
  if (p.ctm == "pytorch_half_pixel") return ow == 1 ? -0.5 : (y + 0.5) / scale - 0.5;
  if (p.ctm == "half_pixel_symmetric") {
    double adjustment = double(out) / ow;
    double offset = iw / 2 * (1 - adjustment);
    return offset + (y + 0.5) / scale - 0.5;
  }
  NEF_CHECK(p.ctm == "half_pixel", "[resize] coordinate mode ", p.ctm);
  return (y + 0.5) / scale - 0.5;
}

// Weights over the neighbours floor(x)-n/2+1 .. floor(x)+n/2 (or x-n/2 .. x+n/2-1 when x is an
// integer, so that ratio is in (0, 1]).
void coeffs(const ResizeParams& p, double ratio, double* c) {
  if (p.mode == "nearest") {
    bool hi;
    if (ratio == std::floor(ratio)) hi = true;
    else if (p.nearest_mode == "round_prefer_floor") hi = ratio > 0.5;
    else if (p.nearest_mode == "round_prefer_ceil") hi = ratio >= 0.5;
    else hi = p.nearest_mode == "ceil";
    c[0] = hi ? 0 : 1;
    c[1] = hi ? 1 : 0;
  } else if (p.mode == "linear") {
    c[0] = 1 - ratio;
    c[1] = ratio;
  } else {
    const double A = p.cubic_a, r = ratio, s = 1 - ratio;
    c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
    c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
    c[2] = ((A + 2) * s - (A + 3)) * s * s + 1;
    c[3] = ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A;
  }
}

AxisTaps make_taps(const ResizeParams& p, int64_t in, int64_t out, double scale, double r0,
                   double r1) {
  AxisTaps t;
  const int n = p.mode == "cubic" ? 4 : 2;  // reference kernel width (nearest picks one of 2)
  t.n = p.mode == "nearest" ? 1 : n;
  t.idx.resize(out * t.n);
  t.w.resize(out * t.n);
  t.extrap.resize(out);
  const int half = n / 2;
  for (int64_t y = 0; y < out; ++y) {
    bool ex;
    double x = source_coord(p, double(y), scale, in, out, r0, r1, ex);
    t.extrap[y] = ex;
    // Far outside the input every tap clamps to an edge anyway; bounding x keeps the integer
    // conversions below defined for absurd scales or rois (no fractional part is lost there).
    constexpr double kFar = 4503599627370496.0;  // 2^52
    x = std::isnan(x) ? 0.0 : std::clamp(x, -kFar, kFar);
    double xf = std::floor(x);
    double ratio = x == xf ? 1.0 : x - xf;
    double c[4];
    coeffs(p, ratio, c);
    // The n nearest indices, ties to the smaller one, found on x shifted by n/2 as the
    // reference does (so rounding at the shift matches it too).
    double xp = x + half, pf = std::floor(xp);
    int64_t start = int64_t(pf) - half + (xp - pf == 0 ? 0 : 1) - half;
    int64_t idx[4];
    double sum = 0;
    for (int k = 0; k < n; ++k) {
      idx[k] = start + k;
      if (p.exclude_outside && (idx[k] < 0 || idx[k] >= in)) c[k] = 0;
      sum += c[k];
      idx[k] = std::clamp<int64_t>(idx[k], 0, in - 1);
    }
    if (p.exclude_outside) {
      if (sum == 0) sum = 1;
      for (int k = 0; k < n; ++k) c[k] /= sum;
    }
    if (t.n == 1) {
      int k = c[1] != 0 || c[0] == 0 ? 1 : 0;  // the chosen neighbour (weight 0 if excluded)
      t.idx[y] = idx[k];
      t.w[y] = c[k];
    } else {
      for (int k = 0; k < n; ++k) {
        t.idx[y * n + k] = idx[k];
        t.w[y * n + k] = c[k];
      }
    }
  }
  return t;
}

// The extrapolation value as T: rounded to nearest-even and saturated for integers (the
// reference's saturate_cast), NaN -> 0.
template <typename T>
T cast_extrapolation(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    v = std::nearbyint(v);
    if (v <= double(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return store_as<T>(static_cast<compute_t<T>>(v));
  }
}

// nearest: out[o] = x[idx_0[o_0], ..., idx_r[o_r]]; then, axis by axis in order, an extrapolated
// position sets the extrapolation value and an excluded tap sets 0 (what the reference's
// per-axis passes do to a single gathered value).
template <typename T>
void resize_nearest(const Array& x, Array& out, const std::vector<AxisTaps>& taps, double ev) {
  const int rank = x.rank();
  const int last = rank - 1;
  const int64_t row = out.shape[last], rows = out.numel() / row;
  const T* src = x.data_as<T>();
  T* dst = out.data_as<T>();
  const T e = cast_extrapolation<T>(ev);
  const AxisTaps& in_t = taps[last];
  const int64_t in_stride = x.strides[last];
  // 0: keep the gathered value, 1: extrapolation value, 2: zero.
  auto effect = [](const AxisTaps& t, int64_t o) -> int {
    return t.extrap[o] ? 1 : t.w[o] == 0 ? 2 : 0;
  };
  bool plain_inner = true;  // the last axis only gathers: a tight copy loop
  for (int64_t j = 0; j < row; ++j) plain_inner = plain_inner && !effect(in_t, j);
  parallel_for(rows, std::max<int64_t>(1, 32768 / row), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t off = 0, rem = r;
      int outer_effect = 0;
      int64_t pos[kMaxRank];
      for (int d = last - 1; d >= 0; --d) {
        pos[d] = rem % out.shape[d];
        rem /= out.shape[d];
        off += taps[d].idx[pos[d]] * x.strides[d];
      }
      for (int d = 0; d < last; ++d)
        if (int f = effect(taps[d], pos[d])) outer_effect = f;
      T* o = dst + r * row;
      const T* s = src + off;
      if (plain_inner && outer_effect) {
        std::fill(o, o + row, outer_effect == 1 ? e : T{});
        continue;
      }
      if (plain_inner) {
        for (int64_t j = 0; j < row; ++j) o[j] = s[in_t.idx[j] * in_stride];
        continue;
      }
      for (int64_t j = 0; j < row; ++j) {
        int f = effect(in_t, j);
        if (!f) f = outer_effect;
        o[j] = f == 0 ? s[in_t.idx[j] * in_stride] : f == 1 ? e : T{};
      }
    }
  });
}

// One separable pass along `axis` of a contiguous [outer, in, inner] source into a contiguous
// [outer, out, inner] destination, computing in C.
template <typename S, typename D, typename C>
void resize_pass(const S* src, D* dst, int64_t outer, int64_t in, int64_t inner, const AxisTaps& t,
                 C ev) {
  const int64_t out = int64_t(t.extrap.size());
  const int n = t.n;
  std::vector<C> w(t.w.begin(), t.w.end());
  parallel_for(outer * out, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, inner * n)),
               [&](int64_t u0, int64_t u1) {
                 int64_t o = u0 / out,
                         j = u0 % out - 1;  // (row, output index) of u, advanced below
                 for (int64_t u = u0; u < u1; ++u) {
                   if (++j == out) {
                     j = 0;
                     ++o;
                   }
                   D* d = dst + u * inner;
                   if (t.extrap[j]) {
                     for (int64_t i = 0; i < inner; ++i) d[i] = store_as<D>(ev);
                     continue;
                   }
                   const S* base = src + o * in * inner;
                   const int64_t* idx = &t.idx[j * n];
                   const C* wj = &w[j * n];
                   if (inner == 1) {
                     C acc = 0;
                     for (int k = 0; k < n; ++k) acc += wj[k] * C(load_as(base[idx[k]]));
                     d[0] = store_as<D>(acc);
                     continue;
                   }
                   for (int64_t i = 0; i < inner; ++i) {
                     C acc = 0;
                     for (int k = 0; k < n; ++k)
                       acc += wj[k] * C(load_as(base[idx[k] * inner + i]));
                     d[i] = store_as<D>(acc);
                   }
                 }
               });
}

template <typename T>
void resize_separable(const Array& x, Array& out, const std::vector<AxisTaps>& taps, double ev) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  std::vector<int> axes;
  for (int d = 0; d < x.rank(); ++d)
    if (!taps[d].identity) axes.push_back(d);
  if (axes.empty()) {
    copy_strided(x, out);
    return;
  }
  Array xc = x.contiguous();
  Shape cur = x.shape;
  std::vector<C> a, b;  // ping-pong intermediates
  const C* prev = nullptr;
  for (size_t s = 0; s < axes.size(); ++s) {
    const int ax = axes[s];
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; ++d) outer *= cur[d];
    for (int d = ax + 1; d < int(cur.size()); ++d) inner *= cur[d];
    const int64_t in = cur[ax];
    cur[ax] = out.shape[ax];
    const bool first = s == 0, last = s + 1 == axes.size();
    std::vector<C>& next = (s % 2 == 0) ? a : b;
    if (!last) next.resize(numel(cur));
    const AxisTaps& t = taps[ax];
    const T* x0 = xc.data_as<T>();
    T* y = out.data_as<T>();
    if (first && last) resize_pass<T, T, C>(x0, y, outer, in, inner, t, C(ev));
    else if (first) resize_pass<T, C, C>(x0, next.data(), outer, in, inner, t, C(ev));
    else if (last) resize_pass<C, T, C>(prev, y, outer, in, inner, t, C(ev));
    else resize_pass<C, C, C>(prev, next.data(), outer, in, inner, t, C(ev));
    prev = next.data();
  }
}

void resize_kernel(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  Array& out = a.out;
  if (out.numel() == 0) return;
  const int rank = x.rank();
  ResizeParams p;
  p.mode = a.attrs.get_string("mode");
  p.ctm = a.attrs.get_string("coordinate_transformation_mode");
  p.nearest_mode = a.attrs.get_string("nearest_mode");
  p.cubic_a = a.attrs.get_float("cubic_coeff_a");
  p.exclude_outside = a.attrs.get_bool("exclude_outside");
  const double ev = a.attrs.get_float("extrapolation_value");
  const auto& roi = a.attrs.get_floats("roi");
  const auto* scales = a.attrs.has("scales") ? &a.attrs.get_floats("scales") : nullptr;
  std::vector<AxisTaps> taps;
  for (int d = 0; d < rank; ++d) {
    const int64_t in = x.shape[d], on = out.shape[d];
    const double scale = scales ? (*scales)[d] : double(on) / double(in);
    const double r0 = roi.empty() ? 0.0 : roi[d], r1 = roi.empty() ? 1.0 : roi[rank + d];
    const bool crop = p.ctm == "tf_crop_and_resize";
    if (isclose(scale, 1.0) && on == in && (!crop || (r0 == 0 && isclose(r1, 1.0)))) {
      AxisTaps t;
      t.identity = true;
      for (int64_t i = 0; i < on; ++i) {
        t.idx.push_back(i);
        t.w.push_back(1);
      }
      t.extrap.assign(on, 0);
      taps.push_back(std::move(t));
    } else {
      taps.push_back(make_taps(p, in, on, scale, r0, r1));
    }
  }
  dispatch_dtype(x.dtype, [&]<typename T>() {
    if (p.mode == "nearest") {
      resize_nearest<T>(x, out, taps, ev);
    } else if constexpr (std::is_floating_point_v<compute_t<T>>) {
      resize_separable<T>(x, out, taps, ev);
    } else {
      NEF_CHECK(false, "[resize] ", p.mode, " of a non-float input");
    }
  });
}

}  // namespace

void register_image_kernels(KernelTable& t) {
  register_pad_kernels(t);
  register_grid_sample_kernels(t);
  register_roi_align_kernels(t);
  t.add("resize", resize_kernel);
}

}  // namespace nef::backend::cpu
