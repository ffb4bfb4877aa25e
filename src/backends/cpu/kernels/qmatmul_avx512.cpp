// qmatmul on AVX-512 VNNI (this file is compiled with -mavx512f -mavx512vl -mavx512bw
// -mavx512vnni -mfma): one vpdpbusd per 32 codes x 32 activations; lanes 0-3 hold the first 16
// elements, lanes 4-7 the last 16, so the two scales go in one vector.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels/qmatmul.h"
#include "nef/error.h"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__FMA__)
namespace nef::backend::cpu {
namespace {

struct Dot {
  using W = __m256i;
  using Acc = __m256;
  static W load(const uint8_t* codes) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
  }
  static W nibbles(const uint8_t* qs, uint8_t*) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i mask = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), mask), _mm_and_si128(v, mask));
  }
  static W bytes(const uint8_t* qs, uint8_t*) {  // q + 128
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)),
                            _mm256_set1_epi8(char(0x80)));
  }
  static float half(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
  }
  static Acc chunk1(Acc acc, W w, const int8_t* q, float s) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s), acc);
  }
  static Acc zero() { return _mm256_setzero_ps(); }
  static Acc add(Acc a, Acc b) { return _mm256_add_ps(a, b); }
  static Acc chunk(Acc acc, W w, const int8_t* q, float slo, float shi) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x);
    const __m256 s = _mm256_set_m128(_mm_set1_ps(shi), _mm_set1_ps(slo));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc);
  }
  static float sum(Acc acc) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

#include "backends/cpu/kernels/qmatmul-inl.h"

// The decoding product (one activation row) in 512-bit vectors: two blocks per vpdpbusd, their
// codes unpacked from both nibble halves at once; the blocks' scales and offsets of 16 blocks
// are gathered and converted together, so that per block pair only the dot product, its
// conversion and one FMA remain (memory, not arithmetic, then bounds it).
template <quant::Format F>
struct Gemv {
  static constexpr int64_t kBytes = F == quant::Format::Q4_0   ? 18
                                    : F == quant::Format::Q4_1 ? 20
                                                               : 34;
  static constexpr int64_t kQs = F == quant::Format::Q4_1 ? 4 : 2;
  static constexpr bool kNibbles = F != quant::Format::Q8_0;
  static constexpr int64_t kAhead = 4096;  // bytes of weights prefetched ahead of the row

  // Codes of blocks b and b + 1 (at p and p + kBytes) as [b 0-15 | b 16-31 | b+1 0-15 | b+1 16-31].
  static __m512i pair(const uint8_t* p) {
    if constexpr (kNibbles) {
      __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      v = _mm512_mask_broadcast_i32x4(
          v, 0xff00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kBytes)));
      return _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)),
                              _mm512_set1_epi8(0x0f));
    } else {
      const __m512i v = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kBytes)), 1);
      return _mm512_xor_si512(v, _mm512_set1_epi8(char(0x80)));  // q + 128
    }
  }
  static __m256i single(const uint8_t* p) {
    if constexpr (kNibbles) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i m = _mm_set1_epi8(0x0f);
      return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    } else {
      return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                              _mm256_set1_epi8(char(0x80)));
    }
  }

  // d of each of `cnt` <= 16 blocks at blk (and Q4_1's offset m), zero past cnt. Loaded as
  // vectors and permuted together: a gather costs as much as the blocks' products. Q4_1's
  // 20-byte blocks are 5 dwords (the d|m dwords of 16 blocks lie in 5 vectors); the others'
  // block starts, in 16-bit words, fall in 64-word windows of two vectors each.
  static constexpr int kWords = int(kBytes / 2);
  static constexpr int kWindows = kWords * 15 / 64 + 1;
  struct WordTables {
    uint16_t idx[kWindows][32];  // per window: lane b takes word kWords * b - 64 * window
    uint32_t lanes[kWindows];    // the lanes (blocks) whose d lies in the window
  };
  static constexpr WordTables word_tables() {
    WordTables t{};
    for (int b = 0; b < 16; ++b) {
      const int w = kWords * b, i = w / 64;
      t.idx[i][b] = uint16_t(w - 64 * i);
      t.lanes[i] |= 1u << b;
    }
    return t;
  }
  static __mmask32 first_words(int n) {
    return n >= 32 ? __mmask32(0xffffffffu) : n <= 0 ? __mmask32(0) : __mmask32((1u << n) - 1);
  }

  static void scales(const uint8_t* blk, int cnt, __m512& d, __m512& off) {
    if constexpr (F == quant::Format::Q4_1) {
      __m512i v[5];
      for (int i = 0; i < 5; ++i)
        v[i] = _mm512_maskz_loadu_epi32(__mmask16(first_words(5 * cnt - 16 * i)), blk + 64 * i);
      const __m512i r = _mm512_permutex2var_epi32(
          v[0], _mm512_setr_epi32(0, 5, 10, 15, 20, 25, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0), v[1]);
      const __m512i t = _mm512_permutex2var_epi32(
          v[2], _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 3, 8, 13, 18, 23, 28, 0, 0, 0), v[3]);
      const __m512i u = _mm512_permutexvar_epi32(
          _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 6, 11), v[4]);
      const __m512i dm = _mm512_maskz_mov_epi32(
          __mmask16((1u << cnt) - 1),
          _mm512_mask_blend_epi32(0xe000, _mm512_mask_blend_epi32(0x1f80, r, t), u));
      d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
      off = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)));
    } else {
      static constexpr WordTables kT = word_tables();
      const int words = cnt * kWords;
      __m512i r = _mm512_setzero_si512();
      for (int i = 0; i < kWindows; ++i) {
        const __m512i lo = _mm512_maskz_loadu_epi16(first_words(words - 64 * i), blk + 128 * i);
        const __m512i hi =
            _mm512_maskz_loadu_epi16(first_words(words - 64 * i - 32), blk + 128 * i + 64);
        const __m512i p = _mm512_permutex2var_epi16(lo, _mm512_loadu_si512(kT.idx[i]), hi);
        r = _mm512_mask_blend_epi16(__mmask32(kT.lanes[i]), r, p);
      }
      d = _mm512_cvtph_ps(_mm512_castsi512_si256(r));
      off = _mm512_mul_ps(d, _mm512_set1_ps(F == quant::Format::Q4_0 ? -8.0f : -128.0f));
    }
  }

  // a in lanes 0-7, b in lanes 8-15 (the scales of a block pair's products).
  static __m512 two(float a, float b) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(a)),
                                               _mm256_castps_pd(_mm256_set1_ps(b)), 1));
  }

  // One group of cnt <= 16 blocks at blk (a literal 16 for whole groups: unrolled).
  __attribute__((always_inline)) static inline void group(const uint8_t* blk, const int8_t* xq,
                                                          const float* xd, const float* xs, int cnt,
                                                          __m512& acc0, __m512& acc1, __m256& acct,
                                                          __m512& bacc) {
    alignas(64) float sc[16];
    __m512 d, off;
    scales(blk, cnt, d, off);
    _mm512_store_ps(sc, _mm512_mul_ps(d, _mm512_loadu_ps(xd)));
    bacc = _mm512_fmadd_ps(off, _mm512_loadu_ps(xs), bacc);
    int j = 0;
    for (; j + 4 <= cnt; j += 4) {
      const __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), pair(blk + j * kBytes + kQs),
                                             _mm512_loadu_si512(xq + 32 * j));
      const __m512i p1 =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), pair(blk + (j + 2) * kBytes + kQs),
                              _mm512_loadu_si512(xq + 32 * (j + 2)));
      acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), two(sc[j], sc[j + 1]), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), two(sc[j + 2], sc[j + 3]), acc1);
    }
    if (j + 2 <= cnt) {
      const __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), pair(blk + j * kBytes + kQs),
                                             _mm512_loadu_si512(xq + 32 * j));
      acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), two(sc[j], sc[j + 1]), acc0);
      j += 2;
    }
    if (j < cnt) {
      const __m256i p =
          _mm256_dpbusd_epi32(_mm256_setzero_si256(), single(blk + j * kBytes + kQs),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * j)));
      acct = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(sc[j]), acct);
    }
  }

  static void rows(const QGemvArgs& a, int64_t n0, int64_t n1) {
    const int64_t nb = a.K / 32, whole = nb / 16 * 16;
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t* row = a.w + n * a.row_bytes;
      // The rows stream from L3 or DRAM: the hardware prefetcher alone leaves the products
      // waiting (prefetching 4 KiB ahead measured 1.3-1.5x faster on SmolLM2's shapes).
      for (int64_t o = 0; o < a.row_bytes; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(row + kAhead + o), _MM_HINT_T0);
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), bacc = _mm512_setzero_ps();
      __m256 acct = _mm256_setzero_ps();
      for (int64_t g = 0; g < whole; g += 16)
        group(row + g * kBytes, a.q + 32 * g, a.d + g, a.s + g, 16, acc0, acc1, acct, bacc);
      if (whole < nb)
        group(row + whole * kBytes, a.q + 32 * whole, a.d + whole, a.s + whole, int(nb - whole),
              acc0, acc1, acct, bacc);
      const __m512 all = _mm512_add_ps(_mm512_add_ps(acc0, acc1), bacc);
      a.out[n] = _mm512_reduce_add_ps(_mm512_add_ps(all, _mm512_zextps256_ps512(acct)));
    }
  }
};

void gemv_impl(const QGemvArgs& a, int64_t n0, int64_t n1) {
  switch (a.format) {
    case quant::Format::Q4_0:
      return Gemv<quant::Format::Q4_0>::rows(a, n0, n1);
    case quant::Format::Q4_1:
      return Gemv<quant::Format::Q4_1>::rows(a, n0, n1);
    case quant::Format::Q8_0:
      return Gemv<quant::Format::Q8_0>::rows(a, n0, n1);
    default:
      NEF_CHECK(false, "qmatmul gemv takes 32-element formats");
  }
}

}  // namespace

const QGemmIsa* qgemm_avx512() {
  static const QGemmIsa isa{"avx512vnni", quantize_row_impl, rows_impl, dequantize_row_impl,
                            gemv_impl};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const QGemmIsa* qgemm_avx512() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
