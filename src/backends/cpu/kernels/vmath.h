// Internal to the CPU backend: vectorized math over arrays, dispatched at run time to the best
// SIMD target (Highway: AVX-512, AVX2, SSE4, scalar). The per-target code is in vmath-inl.h
// (shared with the fused_elementwise interpreter); these are the plain-C++ entry points.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nef::backend::cpu::vmath {

// y[i] = erf(x[i]) in float32, within 1.2 ulp of the exact value (1.5 on pre-AVX2 machines);
// NaN propagates, +-inf -> +-1, -0 -> -0.
// y may equal x.
void erf(const float* x, float* y, size_t n);
// y[i] = 0.5 * x * (1 + erf(x / sqrt(2))) (exact GELU) with the erf above. y may equal x.
void gelu_erf(const float* x, float* y, size_t n);

// dst[i] = src[i] for i < n with non-temporal (streaming) stores where the target has them, then
// a store fence: for large outputs that are not read back soon (no read-for-ownership, no cache
// pollution). Any n and alignment (a misaligned head and a ragged tail are stored normally).
void stream_copy(const float* src, float* dst, size_t n);
// The same with dst[i] = src[i] * scale (float32 products, as a scaling loop rounds them).
void stream_scale(const float* src, float scale, float* dst, size_t n);
// A hint to bring [p, p + bytes) into the cache (no fault for any address): row kernels fetch
// the next row while they compute on this one, since the hardware prefetcher runs only a few
// lines ahead and stops at page ends, so a row's first pass otherwise waits on memory.
inline void prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i, 0, 3);
}
// Outputs from this many bytes on are written with stream_copy by the row and fused kernels.
inline constexpr size_t kStreamBytes = size_t{32} << 20;

// Layernorm's last step: y[i] = ((x[i] - mean) * rstd) [* w[i]] [+ b[i]] (w, b may be null),
// each product and sum rounded on its own, as the scalar loop; with streaming stores (and a store
// fence) when `stream`. y may equal x (not w or b).
void normalize(const float* x, float mean, float rstd, const float* w, const float* b, float* y,
               size_t n, bool stream);

// y[i] = the IEEE half-precision value of the bits x[i], exactly (subnormals, inf, NaN kept).
void half_to_float(const uint16_t* x, float* y, size_t n);

// Row pieces of a softmax, for attention (no alignment needed):
// s[j] = s[j] * scale + (add ? add[j] : 0) for j < valid, s[j] = -inf for valid <= j < n (add
// is read below valid only); returns the max of the new s (NaN if any is NaN, -inf if none).
float scale_add_max(float* s, size_t n, size_t valid, float scale, const float* add);
double scale_add_max(double* s, size_t n, size_t valid, double scale, const double* add);
// s[j] = exp(s[j] - m) for a finite m >= every s[j]; returns the sum of the new s.
float exp_shift_sum(float* s, size_t n, float m);
// s[j] = exp(x[j] - m) from a separate input x (same values and sum as the in-place form).
float exp_shift_sum(const float* x, float* s, size_t n, float m);
double exp_shift_sum(double* s, size_t n, double m);

// The max (max = true) or the min of x[0, n) (-inf / +inf when n = 0); *nan says whether any
// x[i] is NaN, in which case the returned value is unspecified (callers look for the NaN).
float extreme(const float* x, size_t n, bool max, bool* nan);
double extreme(const double* x, size_t n, bool max, bool* nan);

// One row of matmul_dynamic_int8's activations: q[i] = clamp(round(x[i] / s) + z, 0, 255)
// (round half to even, float32 arithmetic) for a scale s > 0 and a zero point z in [0, 255];
// returns the sum of the codes. x[i] must be finite.
int32_t quantize_u8(const float* x, size_t n, float s, float z, uint8_t* q);

// The other end of matmul_dynamic_int8: y[i] = float(acc[i]) * s * ws[i] (+ bias[i] when bias
// is not null), then max(., 0) as relu does when `relu` (NaN and -0 stay), in that order of
// float32 operations. y may be the same memory as acc (converted in place).
void scale_int32(const int32_t* acc, size_t n, float s, const float* ws, const float* bias,
                 bool relu, float* y);

// Row statistics in double: *s1 = sum(x[i] - c), *s2 = sum((x[i] - c)^2), vectorized, two
// chains per sum (the order of the additions depends only on n and the SIMD target, and FMA
// targets round the squares differently from SSE4).
void sums(const float* x, size_t n, double c, double* s1, double* s2);
void sums(const double* x, size_t n, double c, double* s1, double* s2);

// Activations, in place or not (y may equal x); NaN propagates. float32: exp within 1.01 ulp
// and tanh within 2.0 ulp over the whole float range (ExpF32 / TanhF32 of vmath-inl.h), float64
// tanh within 4 ulp (Highway's); sigmoid = 1 / (1 + exp(-x)) within a few ulp (0 below the point
// where exp(-x) overflows).
void exp(const float* x, float* y, size_t n);
void tanh(const float* x, float* y, size_t n);
void tanh(const double* x, double* y, size_t n);
void sigmoid(const float* x, float* y, size_t n);
void sigmoid(const double* x, double* y, size_t n);
// float32 log (Highway's, within 4 ulp as it documents; x <= 0, inf and NaN through std::log), silu
// = x / (1 + exp(-x)) and the tanh-approximated GELU with the exp and tanh above: what the unfused
// kernels compute, vectorized.
void log(const float* x, float* y, size_t n);
void silu(const float* x, float* y, size_t n);
void gelu_tanh(const float* x, float* y, size_t n);

// Matrix-vector products over rows of a (row i at a + i * lda, n contiguous elements):
// y0[i] = dot(row i, x0) for i < rows, and y1[i] = dot(row i, x1) too when x1 is not null (two
// vectors share each row's loads: two batch rows of a recurrent step). Vector partial sums,
// reduced per row; the order of the additions depends only on n and the SIMD target.
void dot_rows(const float* a, size_t lda, size_t rows, size_t n, const float* x0, const float* x1,
              float* y0, float* y1);
void dot_rows(const double* a, size_t lda, size_t rows, size_t n, const double* x0,
              const double* x1, double* y0, double* y1);

// The same with rows of IEEE half-precision values (bits; a float16 KV cache), converted as
// they are loaded: y[i] = dot(row i, x) for i < rows.
void dot_rows_half(const uint16_t* a, size_t lda, size_t rows, size_t n, const float* x, float* y);
// y[d] = sum_j p[j] * v[j][d] for d < n over rows j < rows of half-precision values (row j at
// v + j * ldv), skipping rows with p[j] = 0 (their values, even NaN, are not read).
void weighted_rows_half(const float* p, const uint16_t* v, size_t ldv, size_t rows, size_t n,
                        float* y);

// Products with a packed panel (the recurrent kernels' R, packed once per run): panel holds
// k rows of `gates` x P values, P = 64 / sizeof(T) (16 floats, 8 doubles), row-major. For each
// of `rows` vectors x[r] (k elements): y[r][g * ys + j] = sum_i x[r][i] * panel[i][g][j] for
// gates 1..4 and j < nj <= P. Register tiles of several rows x gates x P, no reductions.
void panel_product(const float* panel, size_t k, size_t gates, const float* const* x,
                   float* const* y, size_t rows, size_t ys, size_t nj);
void panel_product(const double* panel, size_t k, size_t gates, const double* const* x,
                   double* const* y, size_t rows, size_t ys, size_t nj);

}  // namespace nef::backend::cpu::vmath
