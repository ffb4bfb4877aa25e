// qmatmul's portable implementation: scalar integer dot products (any CPU).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/kernels/qmatmul.h"

namespace nef::backend::cpu {
namespace {

struct Dot {
  using W = const uint8_t*;
  using Acc = float;
  static W load(const uint8_t* codes) { return codes; }
  static Acc zero() { return 0.0f; }
  static Acc chunk(Acc acc, W w, const int8_t* q, float slo, float shi) {
    int32_t lo = 0, hi = 0;
    for (int j = 0; j < 16; ++j) lo += int32_t(w[j]) * q[j];
    for (int j = 16; j < 32; ++j) hi += int32_t(w[j]) * q[j];
    return acc + slo * float(lo) + shi * float(hi);
  }
  static float sum(Acc acc) { return acc; }
};

#include "backends/cpu/kernels/qmatmul-inl.h"

}  // namespace

const QGemmIsa& qgemm_generic() {
  static const QGemmIsa isa{"generic", quantize_row_impl, rows_impl, dequantize_row_impl};
  return isa;
}

}  // namespace nef::backend::cpu
