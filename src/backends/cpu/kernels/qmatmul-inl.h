// The quantized GEMM algorithm of qmatmul.h, included once per instruction set inside an
// anonymous namespace by qmatmul_{avx512,avx2,generic}.cpp (each compiled with its own target
// flags) after that file defines `struct Dot`:
//   W load(const uint8_t* codes32)                  32 unpacked codes
//   W nibbles(const uint8_t* qs16, uint8_t* tmp32)  codes of a 4-bit block (low nibbles are
//                                                   elements 0-15, high nibbles 16-31)
//   W bytes(const uint8_t* qs32, uint8_t* tmp32)    codes of an 8-bit block: q + 128
//   Acc zero(); Acc add(Acc, Acc); float sum(Acc); float half(const uint8_t* p) (a half at p)
//   Acc chunk(Acc, W, const int8_t* q32, float scale_lo16, float scale_hi16) adding
//     scale_lo * sum_{j<16} code_j q_j + scale_hi * sum_{j>=16} code_j q_j
//   Acc chunk1(Acc, W, const int8_t* q32, float scale)  (one scale for all 32)
// No includes here: the including file provides <algorithm>, <cmath>, <cstring>, qmatmul.h.

using quant::Format;

inline float f16(const uint8_t* p) { return Dot::half(p); }

// Unpacked row: codes[K], then per 32-element chunk {a_lo, a_hi, b_lo, b_hi}: element j of the
// chunk is a * codes[j] + b with the lo (j < 16) or hi pair.
struct Unpacked {
  uint8_t* codes;
  float* coef;
};

inline Unpacked unpacked_view(uint8_t* scratch, int64_t K) {
  return {scratch, reinterpret_cast<float*>(scratch + (K + 63) / 64 * 64)};
}

inline void set_coef(float* c, float a_lo, float a_hi, float b_lo, float b_hi) {
  c[0] = a_lo, c[1] = a_hi, c[2] = b_lo, c[3] = b_hi;
}

void unpack_row(Format f, const uint8_t* w, int64_t K, Unpacked u) {
  uint8_t* codes = u.codes;
  float* coef = u.coef;
  switch (f) {
    case Format::Q4_0:
    case Format::Q4_1: {
      const int64_t bb = f == Format::Q4_0 ? 18 : 20, qo = f == Format::Q4_0 ? 2 : 4;
      for (int64_t b = 0; b < K / 32; ++b, w += bb, codes += 32, coef += 4) {
        const uint8_t* qs = w + qo;
        for (int j = 0; j < 16; ++j) {
          codes[j] = qs[j] & 0x0f;
          codes[j + 16] = qs[j] >> 4;
        }
        const float d = f16(w), m = f == Format::Q4_0 ? -8.0f * d : f16(w + 2);
        set_coef(coef, d, d, m, m);
      }
      return;
    }
    case Format::Q8_0:
      for (int64_t b = 0; b < K / 32; ++b, w += 34, codes += 32, coef += 4) {
        const uint8_t* qs = w + 2;
        for (int j = 0; j < 32; ++j) codes[j] = uint8_t(qs[j] ^ 0x80);  // q + 128
        const float d = f16(w);
        set_coef(coef, d, d, -128.0f * d, -128.0f * d);
      }
      return;
    case Format::Q4_K:
    case Format::Q5_K: {
      const bool five = f == Format::Q5_K;
      const int64_t bb = five ? 176 : 144;
      for (int64_t b = 0; b < K / 256; ++b, w += bb) {
        const float d = f16(w), dmin = f16(w + 2);
        const uint8_t* scales = w + 4;
        const uint8_t* qh = five ? w + 16 : nullptr;
        const uint8_t* qs = five ? w + 48 : w + 16;
        for (int s = 0; s < 8; ++s, codes += 32, coef += 4) {
          uint8_t sc, m;
          quant::scale_min_k4(s, scales, &sc, &m);
          const uint8_t* q = qs + 32 * (s / 2);
          const int shift = 4 * (s % 2);
          for (int l = 0; l < 32; ++l) codes[l] = (q[l] >> shift) & 0x0f;
          if (five)
            for (int l = 0; l < 32; ++l) codes[l] |= uint8_t(((qh[l] >> s) & 1) << 4);
          const float a = d * float(sc), bo = -dmin * float(m);
          set_coef(coef, a, a, bo, bo);
        }
      }
      return;
    }
    case Format::Q6_K:
      for (int64_t b = 0; b < K / 256; ++b, w += 210) {
        const uint8_t* ql = w;
        const uint8_t* qh = w + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
        const float d = f16(w + 208);
        for (int h = 0; h < 2; ++h)
          for (int r = 0; r < 128; ++r) {
            const int lo = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0f;
            const int hi = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
            codes[128 * h + r] = uint8_t(lo | (hi << 4));
          }
        for (int c = 0; c < 8; ++c, coef += 4) {
          const float alo = d * float(sc[2 * c]), ahi = d * float(sc[2 * c + 1]);
          set_coef(coef, alo, ahi, -32.0f * alo, -32.0f * ahi);
        }
        codes += 256;
      }
      return;
  }
}

// As ggml's Q8_0/Q8_1 rows (which its dot products take): q = x / d rounded half to even (its
// SIMD rounding), d = max|x| / 127 kept as a half; the sums exact in float. A chunk with a NaN
// or infinity gives NaN scales, so the outputs it reaches are NaN (no undefined conversion).
[[maybe_unused]] void quantize_row_impl(const float* x, int64_t K, QChunk* dst) {
  for (int64_t c = 0; c < K / 32; ++c, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    QChunk& q = dst[c];
    bool finite = std::isfinite(amax);
    for (int j = 0; j < 32; ++j) finite = finite && !std::isnan(x[j]);
    if (!finite) {
      std::memset(q.q, 0, sizeof q.q);
      q.d = q.sl = q.sh = q.s = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    int slo = 0, shi = 0;
    for (int j = 0; j < 32; ++j) q.q[j] = int8_t(std::nearbyint(x[j] * id));
    for (int j = 0; j < 16; ++j) slo += q.q[j], shi += q.q[j + 16];
    q.d = to_float(to_float16(d));
    q.sl = q.d * float(slo);
    q.sh = q.d * float(shi);
    q.s = q.d * float(slo + shi);
  }
}

// Activation rows per pass over an unpacked weight row: each chunk's codes are loaded once and
// used for kRowTile rows.
constexpr int kRowTile = 4;

// The 32-element formats straight from their blocks (no unpacked row): the decoding path,
// where each weight byte is used once per activation row. RT activation rows per pass over a
// weight row, with their accumulators in registers; one row alternates two accumulators so that
// consecutive blocks do not wait on each other's FMA.
template <Format F>
struct Blocks32 {
  static constexpr int64_t kBytes = F == Format::Q4_0 ? 18 : F == Format::Q4_1 ? 20 : 34;
  static constexpr int64_t kQs = F == Format::Q4_1 ? 4 : 2;
  static float offset(const uint8_t* blk, float d) {
    return F == Format::Q4_1 ? f16(blk + 2) : F == Format::Q4_0 ? -8.0f * d : -128.0f * d;
  }
  static typename Dot::W codes(const uint8_t* blk, uint8_t* tmp) {
    return F == Format::Q8_0 ? Dot::bytes(blk + kQs, tmp) : Dot::nibbles(blk + kQs, tmp);
  }

  template <int RT>
  static void tile(const uint8_t* row, int64_t nb, const QChunk* xr, float* out, int64_t ldo) {
    alignas(32) uint8_t tmp[32];
    typename Dot::Acc acc[RT], acc2 = Dot::zero();
    float bsum[RT];
    for (int r = 0; r < RT; ++r) acc[r] = Dot::zero(), bsum[r] = 0;
    int64_t b = 0;
    if constexpr (RT == 1) {
      for (; b + 2 <= nb; b += 2) {
        const uint8_t* b0 = row + b * kBytes;
        const uint8_t* b1 = b0 + kBytes;
        const float d0 = f16(b0), d1 = f16(b1);
        const QChunk& x0 = xr[b];
        const QChunk& x1 = xr[b + 1];
        acc[0] = Dot::chunk1(acc[0], codes(b0, tmp), x0.q, d0 * x0.d);
        acc2 = Dot::chunk1(acc2, codes(b1, tmp), x1.q, d1 * x1.d);
        bsum[0] += offset(b0, d0) * x0.s + offset(b1, d1) * x1.s;
      }
    }
    for (; b < nb; ++b) {
      const uint8_t* blk = row + b * kBytes;
      const float d = f16(blk), off = offset(blk, d);
      const auto wv = codes(blk, tmp);
      for (int r = 0; r < RT; ++r) {
        const QChunk& xc = xr[r * nb + b];
        acc[r] = Dot::chunk1(acc[r], wv, xc.q, d * xc.d);
        bsum[r] += off * xc.s;
      }
    }
    if constexpr (RT == 1) acc[0] = Dot::add(acc[0], acc2);
    for (int r = 0; r < RT; ++r) out[r * ldo] = Dot::sum(acc[r]) + bsum[r];
  }

  static void rows(const QGemmArgs& a, int64_t n0, int64_t n1) {
    const int64_t nb = a.K / 32;
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t* row = a.w + n * a.row_bytes;
      int64_t m = 0;
      for (; m + kRowTile <= a.M; m += kRowTile)
        tile<kRowTile>(row, nb, a.x + m * nb, a.out + m * a.ldo + n, a.ldo);
      const QChunk* xr = a.x + m * nb;
      float* o = a.out + m * a.ldo + n;
      switch (a.M - m) {
        case 3:
          tile<3>(row, nb, xr, o, a.ldo);
          break;
        case 2:
          tile<2>(row, nb, xr, o, a.ldo);
          break;
        case 1:
          tile<1>(row, nb, xr, o, a.ldo);
          break;
        default:
          break;
      }
    }
  }
};

void rows_impl(const QGemmArgs& a, int64_t n0, int64_t n1, uint8_t* scratch) {
  switch (a.format) {
    case Format::Q4_0:
      return Blocks32<Format::Q4_0>::rows(a, n0, n1);
    case Format::Q4_1:
      return Blocks32<Format::Q4_1>::rows(a, n0, n1);
    case Format::Q8_0:
      return Blocks32<Format::Q8_0>::rows(a, n0, n1);
    default:
      break;
  }
  const int64_t chunks = a.K / 32;
  const Unpacked u = unpacked_view(scratch, a.K);
  for (int64_t n = n0; n < n1; ++n) {
    unpack_row(a.format, a.w + n * a.row_bytes, a.K, u);
    int64_t m = 0;
    for (; m + kRowTile <= a.M; m += kRowTile) {
      typename Dot::Acc acc[kRowTile];
      float bsum[kRowTile];
      for (int r = 0; r < kRowTile; ++r) acc[r] = Dot::zero(), bsum[r] = 0;
      const QChunk* xr = a.x + m * chunks;
      for (int64_t c = 0; c < chunks; ++c) {
        const auto wv = Dot::load(u.codes + 32 * c);
        const float* cf = u.coef + 4 * c;
        for (int r = 0; r < kRowTile; ++r) {
          const QChunk& xc = xr[r * chunks + c];
          acc[r] = Dot::chunk(acc[r], wv, xc.q, cf[0] * xc.d, cf[1] * xc.d);
          bsum[r] += cf[2] * xc.sl + cf[3] * xc.sh;
        }
      }
      for (int r = 0; r < kRowTile; ++r) a.out[(m + r) * a.ldo + n] = Dot::sum(acc[r]) + bsum[r];
    }
    for (; m < a.M; ++m) {
      typename Dot::Acc acc = Dot::zero();
      float bsum = 0;
      const QChunk* xr = a.x + m * chunks;
      for (int64_t c = 0; c < chunks; ++c) {
        const float* cf = u.coef + 4 * c;
        const QChunk& xc = xr[c];
        acc = Dot::chunk(acc, Dot::load(u.codes + 32 * c), xc.q, cf[0] * xc.d, cf[1] * xc.d);
        bsum += cf[2] * xc.sl + cf[3] * xc.sh;
      }
      a.out[m * a.ldo + n] = Dot::sum(acc) + bsum;
    }
  }
}

void dequantize_row_impl(Format f, const uint8_t* w, int64_t K, float* dst, uint8_t* scratch) {
  const Unpacked u = unpacked_view(scratch, K);
  unpack_row(f, w, K, u);
  for (int64_t c = 0; c < K / 32; ++c) {
    const float* cf = u.coef + 4 * c;
    const uint8_t* cd = u.codes + 32 * c;
    for (int j = 0; j < 16; ++j) dst[32 * c + j] = cf[0] * float(cd[j]) + cf[2];
    for (int j = 16; j < 32; ++j) dst[32 * c + j] = cf[1] * float(cd[j]) + cf[3];
  }
}
