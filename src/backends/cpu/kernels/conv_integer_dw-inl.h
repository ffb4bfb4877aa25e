// conv_integer.h's depthwise row, included once per instruction set inside an anonymous namespace
// by conv_integer{,_avx2,_avx2vnni,_avx512}.cpp (each compiled with its own target flags, so the
// same loops vectorize to each one's width). No includes: the including file provides <cstdint>.
//
// acc[j] = sum_t tw[t] * src[toff[t] + j * step] for j < n: one output row of one channel over
// its zero-point-subtracted int32 plane. Unsigned arithmetic wraps as ONNX's int32 result does
// (it cannot for |values| <= 255 and fewer than 33000 taps).
inline __attribute__((always_inline)) void dw_row_impl(const int32_t* src, int64_t step, int64_t n,
                                                       const int64_t* toff, const int32_t* tw,
                                                       int64_t taps, int32_t* acc) {
  uint32_t* a = reinterpret_cast<uint32_t*>(acc);
  for (int64_t j = 0; j < n; ++j) a[j] = 0;
  for (int64_t t = 0; t < taps; ++t) {
    const uint32_t w = uint32_t(tw[t]);
    const uint32_t* s = reinterpret_cast<const uint32_t*>(src + toff[t]);
    if (step == 1)  // the usual stride: unit steps vectorize
      for (int64_t j = 0; j < n; ++j) a[j] += w * s[j];
    else
      for (int64_t j = 0; j < n; ++j) a[j] += w * s[j * step];
  }
}

[[maybe_unused]] void dw_row(const int32_t* src, int64_t step, int64_t n, const int64_t* toff,
                             const int32_t* tw, int64_t taps, int32_t* acc) {
  dw_row_impl(src, step, n, toff, tw, taps, acc);
}
