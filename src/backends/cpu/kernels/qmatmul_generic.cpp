// qmatmul's portable implementation: scalar integer dot products (any CPU).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels/qmatmul.h"

namespace nef::backend::cpu {
namespace {

struct Dot {
  using W = const uint8_t*;
  using Acc = float;
  static W load(const uint8_t* codes) { return codes; }
  static W nibbles(const uint8_t* qs, uint8_t* tmp) {
    for (int j = 0; j < 16; ++j) tmp[j] = qs[j] & 0x0f, tmp[j + 16] = qs[j] >> 4;
    return tmp;
  }
  static W bytes(const uint8_t* qs, uint8_t* tmp) {
    for (int j = 0; j < 32; ++j) tmp[j] = uint8_t(qs[j] ^ 0x80);
    return tmp;
  }
  static float half(const uint8_t* p) {
    float16_t h;
    std::memcpy(&h, p, sizeof h);
    return to_float(h);
  }
  static Acc chunk1(Acc acc, W w, const int8_t* q, float s) { return chunk(acc, w, q, s, s); }
  static Acc zero() { return 0.0f; }
  static Acc add(Acc a, Acc b) { return a + b; }
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
