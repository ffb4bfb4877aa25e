// Internal to the CPU backend: the exact integer GEMM behind matmul_integer and conv_integer
// (ONNX MatMulInteger / ConvInteger and, through them, QLinearMatMul / QLinearConv).
//
// Two operand formats. Where the CPU has byte products (AVX-512 VNNI, or AVX-VNNI's 256-bit
// form), the operands stay bytes
// and zero points are applied as corrections of the sums (below: igemm_kq, tile_q8). Elsewhere
// (AVX2, portable) both are packed with their zero points already subtracted, as int16 (an
// 8-bit value minus an 8-bit zero point lies in [-255, 255]), K padded to even with zeros:
//   A rows:    int16 [rows][Kp]                         (a[m, k] - a_zp)
//   B panels:  int16 [panels][Kp / 2][kIgemmNR][2]       (b[k, n] - b_zp; columns past N are 0)
// and pairs of int16 are multiplied into int32 lanes (vpmaddwd; the AVX-512 variant's pair tile,
// vpdpwssd, is kept for the tests' cross-check): each product is at most 255^2, so the int32
// sums are exact (they wrap only where ONNX's int32 result itself overflows, K > 33000 or so).
#pragma once

#include <cstdint>

namespace nef::backend::cpu {

inline constexpr int kIgemmNR = 16;  // columns per B panel
inline constexpr int kIgemmMR = 6;   // rows per micro-tile (at most)

// Runs f.template operator()<MR>() with MR = mr (1 to kIgemmMR): the ISA files' tiles take their
// row count as a constant, so the accumulators stay in registers.
static_assert(kIgemmMR == 6, "with_tile_rows covers 1 to 6 rows");
template <typename F>
void with_tile_rows(int mr, F&& f) {
  switch (mr) {
    case 6:
      return f.template operator()<6>();
    case 5:
      return f.template operator()<5>();
    case 4:
      return f.template operator()<4>();
    case 3:
      return f.template operator()<3>();
    case 2:
      return f.template operator()<2>();
    default:
      return f.template operator()<1>();
  }
}

// K rounded up to the pair size.
inline int64_t igemm_kp(int64_t K) { return (K + 1) / 2 * 2; }
inline int64_t igemm_panels(int64_t N) { return (N + kIgemmNR - 1) / kIgemmNR; }
// int16 elements of one packed B panel.
inline int64_t igemm_panel_elems(int64_t K) { return igemm_kp(K) * kIgemmNR; }

// Byte products where the CPU has them (vpdpbusd of AVX-512 VNNI or AVX-VNNI: unsigned x signed
// bytes, four per int32 lane, twice the pairs' rate): A rows uint8 [rows][Kq], B panels int8
// [Kq / 4][kIgemmNR][4], Kq = K rounded up to 4, zero padded. A byte cannot hold a value minus a
// zero point, so the operands are stored shifted, A' = a (+128 for int8 a) and B' = b (-128 for
// uint8 b), and the driver corrects the raw sums S = sum A' B':
//   sum (a - za)(b - zb) = S - beta * rowsum(A') - alpha * colsum(B') + K * alpha * beta,
// alpha = za (+128 for int8 a), beta = zb (-128 for uint8 b); exact modulo 2^32, as int32 is.
inline int64_t igemm_kq(int64_t K) { return (K + 3) / 4 * 4; }
inline int64_t igemm_panel_bytes_q8(int64_t K) { return igemm_kq(K) * kIgemmNR; }

struct IgemmIsa {
  const char* name;
  // c[r * ldc + j] = sum_k a[r * lda + k] * panel[k][j] for r < mr (<= kIgemmMR), j < nc
  // (<= kIgemmNR); kp is even, a and the panel packed as above.
  void (*tile)(const int16_t* a, int64_t lda, int mr, const int16_t* panel, int64_t kp, int32_t* c,
               int64_t ldc, int nc);
  // The same over byte operands (S above; kq a multiple of 4); nullptr without byte products.
  void (*tile_q8)(const uint8_t* a, int64_t lda, int mr, const int8_t* panel, int64_t kq,
                  int32_t* c, int64_t ldc, int nc) = nullptr;
  // tile_q8 over two adjacent panels at once (columns [0, 16) from `panel`, [16, 16 + nc2) from
  // panel + igemm_panel_bytes_q8(K), nc2 <= kIgemmNR): twice the accumulators, so the byte
  // products' latency is hidden; nullptr where the ISA has no such tile.
  void (*tile_q8_pair)(const uint8_t* a, int64_t lda, int mr, const int8_t* panel, int64_t kq,
                       int32_t* c, int64_t ldc, int nc2) = nullptr;
};

const IgemmIsa& igemm_generic();
const IgemmIsa* igemm_avx2();      // nullptr when not compiled in
const IgemmIsa* igemm_avx2vnni();  // AVX2 + AVX-VNNI (256-bit); nullptr when not compiled in
const IgemmIsa* igemm_avx512();    // AVX-512 VNNI; nullptr when not compiled in
// The variant of int8_cpu_target() (cpu_target.h: the best the CPU runs, NEF_CPU_TARGET a
// ceiling), chosen once.
const IgemmIsa& igemm_best();

}  // namespace nef::backend::cpu
