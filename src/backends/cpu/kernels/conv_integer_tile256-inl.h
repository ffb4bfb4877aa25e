// conv_integer.h's 256-bit tile, included inside an anonymous namespace by
// conv_integer_avx2.cpp and conv_integer_avx2vnni.cpp (each compiled with its own target flags,
// after <immintrin.h> and conv_integer.h): 4 output channels x 24 positions of int32
// accumulators (12 of the 16 registers); per k, three vectors of plane words against a broadcast
// weight word, `dot(acc, plane, weight)` multiply-accumulating each (vpmaddwd + add on AVX2,
// vpdpbusd with AVX-VNNI: the one thing the instruction sets change).

constexpr int kMR = 4, kNV = 3, kNR = 8 * kNV;

inline __m256i load256(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

template <class Dot>
void tile256(int64_t kc, const int32_t* a, const int32_t* b, const int64_t* offs, int32_t* c,
             bool zero, Dot dot) {
  __m256i acc[kMR][kNV];
#pragma GCC unroll 4
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v)
      acc[i][v] = zero ? _mm256_setzero_si256() : load256(c + i * kNR + v * 8);
  for (int64_t k = 0; k < kc; ++k) {
    const int32_t* bk = b + offs[k];
    __m256i bv[kNV];
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v) bv[v] = load256(bk + v * 8);
#pragma GCC unroll 4
    for (int i = 0; i < kMR; ++i) {
      const __m256i w = _mm256_set1_epi32(a[k * kMR + i]);
#pragma GCC unroll 3
      for (int v = 0; v < kNV; ++v) acc[i][v] = dot(acc[i][v], bv[v], w);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * kNR + v * 8), acc[i][v]);
}
