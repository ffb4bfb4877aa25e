// conv_integer.h's row loops (the depthwise row, the float rescale), included once per
// instruction set inside an anonymous namespace by conv_integer{,_avx2,_avx512}.cpp (each
// compiled with its own target flags and defining NEF_DW_VBYTES, its vector width in bytes: 16,
// 32 or 64). No includes: the including file provides <cstdint>.

// The depthwise row: acc[j] = sum_t tw[t] * src[toff[t] + j * step] for j < n: one output row of
// one channel over its zero-point-subtracted int32 plane. Unsigned arithmetic wraps as ONNX's int32
// result does (it cannot for |values| <= 255 and fewer than 33000 taps). GCC vector extensions at
// the including file's width.
typedef uint32_t DwVec __attribute__((vector_size(NEF_DW_VBYTES)));
constexpr int kDwLanes = NEF_DW_VBYTES / 4;

inline __attribute__((always_inline)) DwVec dw_load(const uint32_t* p) {
  DwVec v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

[[maybe_unused]] void dw_row(const int32_t* src, int64_t step, int64_t n, const int64_t* toff,
                             const int32_t* tw, int64_t taps, int32_t* acc) {
  uint32_t* a = reinterpret_cast<uint32_t*>(acc);
  const uint32_t* s = reinterpret_cast<const uint32_t*>(src);
  int64_t j0 = 0;
  if (step == 1) {
    // Four vectors of outputs at a time, their sums in registers across all taps (a pass over
    // the row per tap reloads and stores them per tap instead).
    for (; j0 + 4 * kDwLanes <= n; j0 += 4 * kDwLanes) {
      DwVec b0 = {}, b1 = {}, b2 = {}, b3 = {};
      for (int64_t t = 0; t < taps; ++t) {
        const DwVec w = DwVec{} + uint32_t(tw[t]);
        const uint32_t* st = s + toff[t] + j0;
        b0 += w * dw_load(st);
        b1 += w * dw_load(st + kDwLanes);
        b2 += w * dw_load(st + 2 * kDwLanes);
        b3 += w * dw_load(st + 3 * kDwLanes);
      }
      __builtin_memcpy(a + j0, &b0, sizeof b0);
      __builtin_memcpy(a + j0 + kDwLanes, &b1, sizeof b1);
      __builtin_memcpy(a + j0 + 2 * kDwLanes, &b2, sizeof b2);
      __builtin_memcpy(a + j0 + 3 * kDwLanes, &b3, sizeof b3);
    }
    for (; j0 + kDwLanes <= n; j0 += kDwLanes) {
      DwVec b = {};
      for (int64_t t = 0; t < taps; ++t)
        b += (DwVec{} + uint32_t(tw[t])) * dw_load(s + toff[t] + j0);
      __builtin_memcpy(a + j0, &b, sizeof b);
    }
  }
  for (int64_t j = j0; j < n; ++j) {
    uint32_t b = 0;
    for (int64_t t = 0; t < taps; ++t) b += uint32_t(tw[t]) * s[toff[t] + j * step];
    a[j] = b;
  }
}

// dst[j] = float(int32(src[j] - b * ones[j] + c)) * sc + sh (ones null: 0), then max(0, .) if
// relu: conv_dynamic_int8's rescale of a finished run of outputs. No fused multiply-add, so that
// every variant gives the bits of the portable one.
[[maybe_unused]] __attribute__((optimize("fp-contract=off"))) void rescale(
    const int32_t* src, const int32_t* ones, int64_t n, uint32_t b, uint32_t c, float sc, float sh,
    bool relu, float* dst) {
  if (ones)
    for (int64_t j = 0; j < n; ++j)
      dst[j] = float(int32_t(uint32_t(src[j]) - b * uint32_t(ones[j]) + c)) * sc + sh;
  else
    for (int64_t j = 0; j < n; ++j) dst[j] = float(int32_t(uint32_t(src[j]) + c)) * sc + sh;
  if (relu)
    for (int64_t j = 0; j < n; ++j) dst[j] = dst[j] > 0.0f ? dst[j] : 0.0f;
}
