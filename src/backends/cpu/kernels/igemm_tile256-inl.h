// The integer GEMM's 256-bit micro-tile, included inside an anonymous namespace by
// igemm_avx2.cpp and igemm_avx2vnni.cpp (each compiled with its own target flags, after
// <immintrin.h>, <cstring> and igemm.h): up to 6 rows x 16 columns of int32 accumulators, two
// vectors per row. Per step of kStep k values a panel row is two vectors and each row's A word
// (kStep values of TA, 4 bytes) is broadcast; `dot(acc, a_word, b)` multiply-accumulates it
// (vpmaddwd + add, vpdpwssd, vpdpbusd: the one thing the instruction sets change).

template <int MR>
void store_rows256(__m256i (&acc)[MR][2], int32_t* c, int64_t ldc, int nc) {
  for (int r = 0; r < MR; ++r) {
    int32_t* cr = c + r * ldc;
    if (nc == kIgemmNR) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(cr), acc[r][0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(cr + 8), acc[r][1]);
    } else {
      alignas(32) int32_t buf[kIgemmNR];
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf), acc[r][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf + 8), acc[r][1]);
      std::memcpy(cr, buf, size_t(nc) * 4);
    }
  }
}

template <int MR, int kStep, class TA, class TB, class Dot>
void tile256_rows(const TA* a, int64_t lda, const TB* panel, int64_t kn, int32_t* c, int64_t ldc,
                  int nc, Dot dot) {
  static_assert(kStep * sizeof(TA) == 4, "an A word is 4 bytes");
  constexpr int64_t kHalf = 32 / sizeof(TB);  // a panel row's second vector, in elements
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t k = 0; k < kn; k += kStep) {
    const TB* p = panel + k * kIgemmNR;
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kHalf));
    for (int r = 0; r < MR; ++r) {
      int32_t word;
      std::memcpy(&word, a + r * lda + k, 4);
      const __m256i x = _mm256_set1_epi32(word);
      acc[r][0] = dot(acc[r][0], x, b0);
      acc[r][1] = dot(acc[r][1], x, b1);
    }
  }
  store_rows256<MR>(acc, c, ldc, nc);
}
