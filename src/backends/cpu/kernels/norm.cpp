// CPU layernorm and rmsnorm: normalize over the trailing dims x.shape[axis:], one row at a time,
// rows in parallel. Statistics accumulate in double, vectorized (float32: one pass, and a second
// around the mean where the first would cancel; float64: two passes);
// weight and bias are broadcast to the row shape once and kept in the compute type. Large
// float32 outputs are streamed out row by row (vmath::stream_copy).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/vmath.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// A dense copy of `a` broadcast to `row_shape`, converted to C.
template <typename C>
std::vector<C> broadcast_row(const Array& a, const Shape& row_shape) {
  Array view = a;
  view.strides = broadcast_strides(a.shape, a.strides, row_shape);
  view.shape = row_shape;
  Array dense = view.contiguous();
  std::vector<C> v(dense.numel());
  dispatch_dtype(dense.dtype, [&]<typename T>() {
    const T* p = dense.data_as<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = C(load_as(p[i]));
  });
  return v;
}

// y = (x - mean) * rstd [* w] [+ b] over one row; separate loops so that each vectorizes.
template <typename C, typename O>
void normalize_row(const C* __restrict x, O* __restrict dst, int64_t n, C mean, C rstd,
                   const C* __restrict w, const C* __restrict b) {
  if constexpr (std::is_same_v<O, C>) {
    if (w && b) {
      for (int64_t j = 0; j < n; ++j) dst[j] = (x[j] - mean) * rstd * w[j] + b[j];
    } else if (w) {
      for (int64_t j = 0; j < n; ++j) dst[j] = (x[j] - mean) * rstd * w[j];
    } else {
      for (int64_t j = 0; j < n; ++j) dst[j] = (x[j] - mean) * rstd;
      if (b)
        for (int64_t j = 0; j < n; ++j) dst[j] += b[j];
    }
  } else {
    for (int64_t j = 0; j < n; ++j) {
      C y = (x[j] - mean) * rstd;
      if (w) y *= w[j];
      if (b) y += b[j];
      dst[j] = store_as<O>(y);
    }
  }
}

template <typename T, typename O, typename C, bool kRms>
void norm_rows(const Array& x, Array& out, int64_t rows, int64_t n, double eps,
               const std::vector<C>* w, const std::vector<C>* b) {
  const T* in = x.data_as<T>();
  O* o = out.data_as<O>();
  // Large float32 outputs: each row is normalized into a per-thread buffer and streamed out (no
  // read for ownership of the output).
  constexpr bool kF32Out = std::is_same_v<O, float> && std::is_same_v<C, float>;
  [[maybe_unused]] const bool stream =
      kF32Out && size_t(rows * n) * sizeof(O) >= vmath::kStreamBytes;
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<C> buf(std::is_same_v<T, C> ? 0 : n);
    for (int64_t r = r0; r < r1; ++r) {
      const T* src = in + r * n;
      const C* row;
      if constexpr (std::is_same_v<T, C>) {
        row = src;
      } else {
        for (int64_t j = 0; j < n; ++j) buf[j] = C(load_as(src[j]));
        row = buf.data();
      }
      // Statistics in double (vmath::sums; float squares are exact in double). Float32
      // layernorm takes the variance from the same pass while n mean^2 <= 1e7 var (the
      // cancellation in s2 - s1^2 / n then costs at most n 2^-53 (1 + mean^2 / var) <= 1.2e-9
      // relative); else, and for float64, a second pass around the mean with the first-order
      // correction, so large offsets do not cancel.
      double s1 = 0, s2 = 0, mean = 0;
      vmath::sums(row, size_t(n), 0.0, &s1, &s2);
      if constexpr (!kRms) {
        mean = s1 / double(n);
        const double var1 = s2 / double(n) - mean * mean;
        if (!std::is_same_v<C, float> || !(mean * mean * double(n) <= 1e7 * var1))
          vmath::sums(row, size_t(n), mean, &s1, &s2);
        s2 -= s1 * s1 / double(n);
      }
      const double var = std::max(s2 / double(n), 0.0);
      const C rstd = C(1.0 / std::sqrt(var + eps));
      const C* wp = w ? w->data() : nullptr;
      const C* bp = b ? b->data() : nullptr;
      if constexpr (kF32Out) {
        // Vectorized (vmath), straight to the output (streamed when large), fetching the next
        // row meanwhile so that its statistics pass reads from cache instead of memory.
        const T* next = r + 1 < r1 ? src + n : nullptr;
        for (int64_t j = 0; j < n; j += 1024) {
          const int64_t len = std::min<int64_t>(1024, n - j);
          if (next) vmath::prefetch(next + j, size_t(len) * sizeof(T));
          vmath::normalize(row + j, float(mean), rstd, wp ? wp + j : nullptr, bp ? bp + j : nullptr,
                           o + r * n + j, size_t(len), stream);
        }
        continue;
      }
      normalize_row<C, O>(row, o + r * n, n, C(mean), rstd, wp, bp);
    }
  });
}

template <bool kRms>
void norm_kernel(const KernelArgs& args) {
  Array& out = args.out;
  if (out.numel() == 0) return;
  const Array x = args.inputs[0].contiguous();
  int axis = x.rank() == 0 ? 0 : normalize_axis(args.attrs.get_int("axis"), x.rank(), "norm");
  Shape row_shape(x.shape.begin() + std::min<int>(axis, x.rank()), x.shape.end());
  const int64_t n = numel(row_shape);
  const int64_t rows = x.numel() / n;  // n > 0 since out is non-empty
  const double eps = args.attrs.get_float("eps");
  dispatch_dtype(out.dtype, [&]<typename O>() {
    if constexpr (std::is_floating_point_v<compute_t<O>>) {
      using C = std::conditional_t<std::is_same_v<O, double>, double, float>;
      std::vector<C> w, b;
      if (args.inputs.size() > 1) w = broadcast_row<C>(args.inputs[1], row_shape);
      if (args.inputs.size() > 2) b = broadcast_row<C>(args.inputs[2], row_shape);
      dispatch_dtype(x.dtype, [&]<typename T>() {
        norm_rows<T, O, C, kRms>(x, out, rows, n, eps, args.inputs.size() > 1 ? &w : nullptr,
                                 args.inputs.size() > 2 ? &b : nullptr);
      });
    } else {
      NEF_CHECK(false, "norm output must be floating");
    }
  });
}

}  // namespace

void register_norm_kernels(KernelTable& t) {
  t.add("layernorm", norm_kernel<false>);
  t.add("rmsnorm", norm_kernel<true>);
}

}  // namespace nef::backend::cpu
