// CPU softmax and log_softmax over one axis of a strided input, one row at a time (the axis is
// walked through its stride, so any axis works without a transpose copy). Rows run in parallel.
// Max-subtracted for stability; exponentials in the compute type (float, or double for float64
// outputs), vectorized (vmath), the row sum in double; rows with NaN or +-inf take a scalar path.
// Large float32 outputs are streamed out row by row (vmath::stream_copy).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

// Rows of `x` along `axis`: the other dims in row-major order, with input and output strides.
struct RowPlan {
  int outer_nd = 0;
  int64_t shape[kMaxRank] = {};
  int64_t in_st[kMaxRank] = {};
  int64_t out_st[kMaxRank] = {};
  int64_t rows = 1, n = 1, in_step = 0, out_step = 0;

  void offsets(int64_t r, int64_t& io, int64_t& oo) const {
    io = 0, oo = 0;
    for (int d = outer_nd - 1; d >= 0; --d) {
      int64_t i = r % shape[d];
      r /= shape[d];
      io += i * in_st[d];
      oo += i * out_st[d];
    }
  }
};

RowPlan make_row_plan(const Array& x, int axis) {
  RowPlan p;
  Strides ost = contiguous_strides(x.shape);
  for (int d = 0; d < x.rank(); ++d) {
    if (d == axis) continue;
    p.shape[p.outer_nd] = x.shape[d];
    p.in_st[p.outer_nd] = x.strides[d];
    p.out_st[p.outer_nd] = ost[d];
    p.rows *= x.shape[d];
    ++p.outer_nd;
  }
  if (x.rank() > 0) {
    p.n = x.shape[axis];
    p.in_step = x.strides[axis];
    p.out_step = ost[axis];
  }
  return p;
}

// One row in place, scalar: rows holding NaN or +-inf (whatever numpy's formula gives them).
template <typename C, bool kLog>
void softmax_row_scalar(C* row, int64_t n) {
  C m = -std::numeric_limits<C>::infinity();
  for (int64_t j = 0; j < n; ++j) m = (row[j] > m || row[j] != row[j]) ? row[j] : m;
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += double(std::exp(row[j] - m));
  if constexpr (kLog) {
    C shift = m + C(std::log(sum));
    for (int64_t j = 0; j < n; ++j) row[j] = C(row[j] - shift);
  } else {
    C inv = C(1.0 / sum);
    for (int64_t j = 0; j < n; ++j) row[j] = C(std::exp(row[j] - m) * inv);
  }
}

// s[j] = exp(s[j] - m), returning the sum in double: vmath sums 1024 values at a time in
// vector lanes, the blocks add up in double, so long rows (a 128K-token vocabulary) keep the
// accuracy of a double sum.
template <typename C>
double exp_sum(C* s, int64_t n, C m) {
  double sum = 0;
  for (int64_t j = 0; j < n; j += 1024)
    sum += double(vmath::exp_shift_sum(s + j, size_t(std::min<int64_t>(1024, n - j)), m));
  return sum;
}

// Each row: gathered into the compute type (or worked on in the output when both sides are the
// compute type and contiguous), then vectorized max, exp-and-sum and scale (vmath), so a row
// is read from memory once and written once.
template <typename T, typename O, bool kLog>
void softmax_rows(const Array& x, Array& out, const RowPlan& p) {
  using C = std::conditional_t<std::is_same_v<O, double>, double, float>;
  const T* in = static_cast<const T*>(x.data());
  O* o = out.data_as<O>();
  constexpr bool kSameType = std::is_same_v<T, C> && std::is_same_v<O, C>;
  const bool direct = kSameType && p.in_step == 1 && p.out_step == 1;
  // Large float32 outputs: each row is worked on in a per-thread buffer (L1 / L2) and streamed
  // out (no read for ownership of the output, no eviction of the rows still to come).
  const bool stream =
      std::is_same_v<O, float> && direct && size_t(out.numel()) * sizeof(O) >= vmath::kStreamBytes;
  int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, p.n));
  parallel_for(p.rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<C> buf(direct && !stream ? 0 : p.n), tmp(kLog ? p.n : 0);
    for (int64_t r = r0; r < r1; ++r) {
      int64_t io, oo;
      p.offsets(r, io, oo);
      const T* src = in + io;
      O* dst = o + oo;
      C* row = buf.data();
      if constexpr (!kLog && kSameType && std::is_same_v<O, float>) {
        // Streamed softmax in three passes: the max over the input (read from memory once),
        // exp into the buffer, the scaling streamed out. Same values as the passes below.
        bool nan = false;
        const float m = stream ? vmath::extreme(src, size_t(p.n), true, &nan) : 0.0f;
        if (stream && !nan && std::isfinite(m)) {
          // The next row is fetched piece by piece while this one's exponentials are computed,
          // so that its max pass reads from cache instead of waiting on memory.
          const T* next = nullptr;
          if (r + 1 < r1) {
            int64_t nio, noo;
            p.offsets(r + 1, nio, noo);
            next = in + nio;
          }
          double sum = 0;
          for (int64_t j = 0; j < p.n; j += 1024) {
            const int64_t len = std::min<int64_t>(1024, p.n - j);
            if (next) vmath::prefetch(next + j, size_t(len) * sizeof(T));
            sum += double(vmath::exp_shift_sum(src + j, row + j, size_t(len), m));
          }
          vmath::stream_scale(row, float(1.0 / sum), dst, size_t(p.n));
          continue;
        }
      }
      if constexpr (kSameType) {
        if (direct) {
          if (!stream) row = reinterpret_cast<C*>(dst);
          if (static_cast<const void*>(src) != static_cast<const void*>(row))
            std::memmove(row, src, size_t(p.n) * sizeof(C));
        }
      }
      if (!direct)
        for (int64_t j = 0; j < p.n; ++j) row[j] = C(load_as(src[j * p.in_step]));
      const C m = vmath::scale_add_max(row, size_t(p.n), size_t(p.n), C(1), nullptr);
      if (!std::isfinite(m)) {
        softmax_row_scalar<C, kLog>(row, p.n);
      } else if constexpr (kLog) {
        std::copy(row, row + p.n, tmp.data());
        const C shift = m + C(std::log(exp_sum(tmp.data(), p.n, m)));
        for (int64_t j = 0; j < p.n; ++j) row[j] -= shift;
      } else {
        const C inv = C(1.0 / exp_sum(row, p.n, m));
        for (int64_t j = 0; j < p.n; ++j) row[j] *= inv;
      }
      if constexpr (std::is_same_v<O, float> && kSameType) {
        if (stream) vmath::stream_copy(row, reinterpret_cast<float*>(dst), size_t(p.n));
      }
      if (!direct)
        for (int64_t j = 0; j < p.n; ++j) dst[j * p.out_step] = store_as<O>(row[j]);
    }
  });
}

template <bool kLog>
void softmax_kernel(const KernelArgs& args) {
  const Array& x = args.inputs[0];
  Array& out = args.out;
  if (out.numel() == 0) return;
  int axis = x.rank() == 0 ? 0 : normalize_axis(args.attrs.get_int("axis"), x.rank(), "softmax");
  RowPlan p = make_row_plan(x, axis);
  dispatch_dtype(x.dtype, [&]<typename T>() {
    dispatch_dtype(out.dtype, [&]<typename O>() {
      if constexpr (std::is_floating_point_v<compute_t<O>>) softmax_rows<T, O, kLog>(x, out, p);
      else NEF_CHECK(false, "softmax output must be floating");
    });
  });
}

}  // namespace

void register_softmax_kernels(KernelTable& t) {
  t.add("softmax", softmax_kernel<false>);
  t.add("log_softmax", softmax_kernel<true>);
}

}  // namespace nef::backend::cpu
