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
// codes unpacked from both nibble halves at once; the scales and offsets of 16 blocks are
// loaded and converted together, so that per block pair only the dot product, its conversion
// and one FMA remain (memory, not arithmetic, then bounds it).
template <quant::Format F>
struct Gemv {
  static constexpr int64_t kBytes = F == quant::Format::Q4_0   ? 18
                                    : F == quant::Format::Q4_1 ? 20
                                                               : 34;
  static constexpr int64_t kQs = F == quant::Format::Q4_1 ? 4 : 2;
  static constexpr bool kNibbles = F != quant::Format::Q8_0;
  static constexpr int64_t kAhead = 4096;  // bytes of weights prefetched ahead of the row

  // Codes of blocks b and b + 1 (at p and p + kBytes) as [b 0-15 | b 16-31 | b+1 0-15 | b+1 16-31].
  // The high nibbles are left in place (16 times the code: no shift on the port the products
  // use); the lanes that hold them are scaled by 1/16 once per row (kHighNibbles), exactly.
  static __m512i pair(const uint8_t* p) {
    if constexpr (kNibbles) {
      __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      v = _mm512_mask_broadcast_i32x4(
          v, 0xff00, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + kBytes)));
      return _mm512_and_si512(
          v,
          _mm512_setr_epi64(0x0f0f0f0f0f0f0f0f, 0x0f0f0f0f0f0f0f0f, int64_t(0xf0f0f0f0f0f0f0f0ull),
                            int64_t(0xf0f0f0f0f0f0f0f0ull), 0x0f0f0f0f0f0f0f0f, 0x0f0f0f0f0f0f0f0f,
                            int64_t(0xf0f0f0f0f0f0f0f0ull), int64_t(0xf0f0f0f0f0f0f0f0ull)));
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

  static float half(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
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
    if (cnt > 4) {
      __m512 d, off;
      scales(blk, cnt, d, off);
      _mm512_store_ps(sc, _mm512_mul_ps(d, _mm512_loadu_ps(xd)));
      bacc = _mm512_fmadd_ps(off, _mm512_loadu_ps(xs), bacc);
    } else {  // a row's few last blocks (576 = 16 + 2 blocks): one by one is cheaper
      float b = 0;
      for (int j = 0; j < cnt; ++j) {
        const uint8_t* h = blk + j * kBytes;
        const float d = half(h);
        sc[j] = d * xd[j];
        b += (F == quant::Format::Q4_1   ? half(h + 2)
              : F == quant::Format::Q4_0 ? -8.0f * d
                                         : -128.0f * d) *
             xs[j];
      }
      bacc = _mm512_add_ps(bacc, _mm512_castps128_ps512(_mm_set_ss(b)));
    }
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
      __m512 prod = _mm512_add_ps(acc0, acc1);
      if constexpr (kNibbles)  // lanes 4-7 and 12-15 summed 16 x the high-nibble codes
        prod = _mm512_mul_ps(prod, _mm512_setr_ps(1, 1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f, 1,
                                                  1, 1, 1, 0.0625f, 0.0625f, 0.0625f, 0.0625f));
      const __m512 all = _mm512_add_ps(prod, bacc);
      a.out[n] = _mm512_reduce_add_ps(_mm512_add_ps(all, _mm512_zextps256_ps512(acct)));
    }
  }
};

// quantize_row_impl (qmatmul-inl.h) in vectors, with the same results: the same float products
// x * (1 / d) rounded half to even (the default rounding mode, as nearbyint), the half scale
// rounded to nearest even by F16C as by to_float16, NaN scales for a chunk with a NaN or inf.
void quantize_row_avx512(const float* x, int64_t K, QChunk* dst) {
  const __m512 inf = _mm512_set1_ps(std::numeric_limits<float>::infinity());
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  for (int64_t c = 0; c < K / 32; ++c, x += 32) {
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    const __m512 a0 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x0), abs_mask));
    const __m512 a1 = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x1), abs_mask));
    QChunk& q = dst[c];
    // |x| < inf is false for NaN and inf alike.
    if ((_mm512_cmp_ps_mask(a0, inf, _CMP_LT_OQ) & _mm512_cmp_ps_mask(a1, inf, _CMP_LT_OQ)) !=
        0xffff) {
      std::memset(q.q, 0, sizeof q.q);
      q.d = q.sl = q.sh = q.s = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vid));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q.q), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q.q + 16), _mm512_cvtepi32_epi8(q1));
    const int slo = _mm512_reduce_add_epi32(q0), shi = _mm512_reduce_add_epi32(q1);
    q.d = _cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT));
    q.sl = q.d * float(slo);
    q.sh = q.d * float(shi);
    q.s = q.d * float(slo + shi);
  }
}

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
  static const QGemmIsa isa{"avx512vnni", quantize_row_avx512, rows_impl, dequantize_row_impl,
                            gemv_impl};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const QGemmIsa* qgemm_avx512() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
