// CPU det: the determinant of each [M, M] matrix of x [..., M, M], by LU decomposition with
// partial pivoting in double (the product of the pivots, its sign flipped per row swap), as
// numpy.linalg.det does through LAPACK's getrf. A singular matrix gives 0 (an exact zero pivot
// ends the elimination); NaN and inf propagate through the arithmetic. Matrices run in parallel;
// strided inputs are read in place.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// The determinant of the m x m matrix in `a` (row-major, overwritten).
double lu_det(std::vector<double>& a, int64_t m) {
  double det = 1;
  for (int64_t k = 0; k < m; ++k) {
    int64_t piv = k;
    double best = std::abs(a[size_t(k * m + k)]);
    for (int64_t i = k + 1; i < m; ++i) {
      const double v = std::abs(a[size_t(i * m + k)]);
      if (v > best || std::isnan(v)) piv = i, best = v;
      if (std::isnan(v)) break;
    }
    if (piv != k) {
      for (int64_t j = 0; j < m; ++j) std::swap(a[size_t(k * m + j)], a[size_t(piv * m + j)]);
      det = -det;
    }
    const double p = a[size_t(k * m + k)];
    det *= p;
    if (p == 0) return det;  // singular (keeps the sign of zero)
    for (int64_t i = k + 1; i < m; ++i) {
      const double f = a[size_t(i * m + k)] / p;
      if (f == 0) continue;
      for (int64_t j = k + 1; j < m; ++j) a[size_t(i * m + j)] -= f * a[size_t(k * m + j)];
    }
  }
  return det;
}

void det_kernel(const KernelArgs& args) {
  const Array& x = args.inputs[0];
  Array& out = args.out;
  const int rank = x.rank();
  const int64_t m = x.shape[size_t(rank - 1)];
  const int64_t mats = out.numel();
  if (mats == 0) return;
  const int64_t rs = x.strides[size_t(rank - 2)], cs = x.strides[size_t(rank - 1)];
  dispatch_dtype(x.dtype, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      const T* xp = x.data_as<T>();
      T* op = out.data_as<T>();
      parallel_for(mats, std::max<int64_t>(1, 4096 / std::max<int64_t>(m * m * m, 1)),
                   [&](int64_t b, int64_t e) {
                     std::vector<double> a(size_t(m * m));
                     for (int64_t q = b; q < e; ++q) {
                       int64_t rem = q, off = 0;
                       for (int d = rank - 3; d >= 0; --d) {
                         off += (rem % x.shape[size_t(d)]) * x.strides[size_t(d)];
                         rem /= x.shape[size_t(d)];
                       }
                       for (int64_t i = 0; i < m; ++i)
                         for (int64_t j = 0; j < m; ++j)
                           a[size_t(i * m + j)] = double(load_as(xp[off + i * rs + j * cs]));
                       op[q] = store_as<T>(compute_t<T>(lu_det(a, m)));
                     }
                   });
    } else {
      throw TypeError(str("[det] needs a float input, got ", dtype_name(x.dtype)));
    }
  });
}

}  // namespace

void register_det_kernels(KernelTable& t) { t.add("det", det_kernel); }

}  // namespace nef::backend::cpu
