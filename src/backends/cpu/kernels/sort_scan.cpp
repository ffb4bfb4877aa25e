// CPU kernels for topk and cumsum/cumprod.
// topk: per row along the axis, a partial sort of the positions by value (NaN above every
// number; equal values in index order), rows in parallel.
// cumsum/cumprod: the input is copied into the output, which is then scanned in place as
// (outer, n, inner): each step adds (multiplies) the previous row of `inner` values, so the
// inner loop is contiguous and vectorizes; rounding happens at each step in the output's dtype,
// as numpy's cumsum does.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// ---- topk -------------------------------------------------------------------------------------

template <typename C>
bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return std::isnan(v);
  else return false;
}

void k_topk(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  Array& out = a.out;
  const int axis = int(a.attrs.get_int("axis"));
  const int64_t k = a.attrs.get_int("k");
  const bool largest = a.attrs.get_bool("largest");
  const int64_t n = x.shape[size_t(axis)];
  if (out.numel() == 0 || k == 0) return;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  const int64_t rows = outer * inner;
  int64_t* op = static_cast<int64_t*>(out.data());
  dispatch_dtype(x.dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      throw TypeError("[topk] not supported for bool");
    } else {
      using C = compute_t<T>;
      const T* xp = static_cast<const T*>(x.data());
      const int64_t xs = x.strides[size_t(axis)];
      parallel_for(rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)),
                   [&](int64_t b, int64_t e) {
                     std::vector<C> vals(static_cast<size_t>(n));
                     std::vector<int64_t> pos(static_cast<size_t>(n));
                     // a before b: the larger (smaller) value, NaN counting as the largest; ties by
                     // index.
                     auto before = [&](int64_t i, int64_t j) {
                       const C vi = vals[size_t(i)], vj = vals[size_t(j)];
                       const bool ni = is_nan(vi), nj = is_nan(vj);
                       if (ni || nj) {
                         if (ni && nj) return i < j;
                         return largest ? ni : nj;
                       }
                       if (vi != vj) return largest ? vi > vj : vi < vj;
                       return i < j;
                     };
                     for (int64_t r = b; r < e; ++r) {
                       const int64_t o = r / inner, i = r % inner;
                       // x's offset of (o, 0, i): o and i unravelled over the dims before/after the
                       // axis.
                       int64_t base = 0, rem = i;
                       for (size_t d = x.shape.size(); d-- > size_t(axis) + 1;) {
                         base += (rem % x.shape[d]) * x.strides[d];
                         rem /= x.shape[d];
                       }
                       rem = o;
                       for (int d = axis - 1; d >= 0; --d) {
                         base += (rem % x.shape[size_t(d)]) * x.strides[size_t(d)];
                         rem /= x.shape[size_t(d)];
                       }
                       for (int64_t t = 0; t < n; ++t) vals[size_t(t)] = load_as(xp[base + t * xs]);
                       std::iota(pos.begin(), pos.end(), int64_t{0});
                       if (k < n)
                         std::partial_sort(pos.begin(), pos.begin() + k, pos.end(), before);
                       else std::sort(pos.begin(), pos.end(), before);
                       int64_t* dst = op + o * k * inner + i;
                       for (int64_t t = 0; t < k; ++t) dst[t * inner] = pos[size_t(t)];
                     }
                   });
    }
  });
}

// ---- cumsum / cumprod -------------------------------------------------------------------------

template <bool kProd, typename T>
inline T combine(T prev, T cur) {
  using C = compute_t<T>;
  C a = load_as(prev), b = load_as(cur);
  if constexpr (std::is_integral_v<C>) {
    using U = wrap_t<C>;  // wraps, never overflows
    return T(kProd ? C(U(a) * U(b)) : C(U(a) + U(b)));
  } else {
    return store_as<T>(C(kProd ? a * b : a + b));
  }
}

template <bool kProd>
void k_scan(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  Array& out = a.out;
  const int axis = int(a.attrs.get_int("axis"));
  const bool exclusive = a.attrs.get_bool("exclusive"), reverse = a.attrs.get_bool("reverse");
  if (out.numel() == 0) return;
  copy_strided(x, out);
  const int64_t n = out.shape[size_t(axis)];
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= out.shape[size_t(d)];
  for (size_t d = size_t(axis) + 1; d < out.shape.size(); ++d) inner *= out.shape[d];
  // Work items: (outer index, block of inner positions).
  constexpr int64_t kBlock = 1024;
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
  dispatch_dtype(out.dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      throw TypeError("[cumsum] not supported for bool");
    } else {
      T* base = static_cast<T*>(out.data());
      const T identity = store_as<T>(compute_t<T>(kProd ? 1 : 0));
      parallel_for(outer * blocks, std::max<int64_t>(1, 16384 / std::max<int64_t>(n * kBlock, 1)),
                   [&](int64_t b, int64_t e) {
                     for (int64_t w = b; w < e; ++w) {
                       const int64_t o = w / blocks, i0 = (w % blocks) * kBlock;
                       const int64_t len = std::min(kBlock, inner - i0);
                       T* p = base + o * n * inner + i0;
                       // Rows in scan order: t-th step is row (reverse ? n-1-t : t).
                       auto row = [&](int64_t t) { return p + (reverse ? n - 1 - t : t) * inner; };
                       for (int64_t t = 1; t < n; ++t) {
                         T* cur = row(t);
                         const T* prev = row(t - 1);
                         for (int64_t i = 0; i < len; ++i) cur[i] = combine<kProd>(prev[i], cur[i]);
                       }
                       if (exclusive) {
                         for (int64_t t = n - 1; t >= 1; --t)
                           std::copy(row(t - 1), row(t - 1) + len, row(t));
                         std::fill(row(0), row(0) + len, identity);
                       }
                     }
                   });
    }
  });
}

}  // namespace

void register_sort_scan_kernels(KernelTable& t) {
  t.add("topk", k_topk);
  t.add("cumsum", k_scan<false>);
  t.add("cumprod", k_scan<true>);
}

}  // namespace nef::backend::cpu
