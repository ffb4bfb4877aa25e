// The vector loops behind conv_simd.h, written with GCC vector extensions; the including file
// defines NEF_CONV_VBYTES (vector bytes), NEF_CONV_MR and NEF_CONV_NV (vectors per tile row) and
// includes this inside its own namespace (each instruction set gets distinct symbols), after
// <cstdint>.
using vf = float __attribute__((vector_size(NEF_CONV_VBYTES)));
constexpr int kL = NEF_CONV_VBYTES / 4;  // lanes
constexpr int kMR = NEF_CONV_MR, kNV = NEF_CONV_NV, kNR = kNV * kL;

inline vf loadu(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void storeu(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
// All lanes x (x - 0 is exactly x, so this compiles to one broadcast; 0 + x would not: -0).
inline vf splat(float x) { return x - vf{}; }

void tile(int64_t kc, const float* __restrict a, const float* __restrict b,
          const int64_t* __restrict offs, float* __restrict c) {
  vf acc[kMR][kNV];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[i][v] = loadu(c + i * kNR + v * kL);
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + offs[k];
    vf bv[kNV];
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) bv[v] = loadu(bk + v * kL);
    const float* ak = a + k * kMR;
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const vf ai = splat(ak[i]);
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) acc[i][v] += ai * bv[v];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) storeu(c + i * kNR + v * kL, acc[i][v]);
}

// Four vectors at a time: independent accumulators hide the FMA latency of the tap chain.
constexpr int64_t kDwRound = 4 * kL;
void dw(const float* __restrict src, const int64_t* __restrict offs, const float* __restrict w,
        int64_t ntaps, float bias, float* __restrict dst, int64_t n) {
  for (int64_t q = 0; q < n; q += kDwRound) {
    vf acc[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[v] = splat(bias);
    for (int64_t t = 0; t < ntaps; ++t) {
      const float* s = src + offs[t] + q;
      const vf wt = splat(w[t]);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[v] += wt * loadu(s + v * kL);
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) storeu(dst + q + v * kL, acc[v]);
  }
}

void copy_rows(const float* __restrict src, int64_t lds, int64_t rows, int64_t n,
               float* __restrict dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * lds;
    float* d = dst + r * ldd;
    int64_t j = 0;
    for (; j + kL <= n; j += kL) storeu(d + j, loadu(s + j));
    for (; j < n; ++j) d[j] = s[j];
  }
}
