// The vector loops behind conv_simd.h, written with GCC vector extensions; the including file
// defines NEF_CONV_VBYTES (vector bytes), NEF_CONV_MR and NEF_CONV_NV (vectors per tile row) and
// includes this inside its own namespace (each instruction set gets distinct symbols), after
// <cstdint> and <utility> (conv_simd.h includes them).
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

// a(i, k) at a[k * kMR + i] (packed) or, kRows, at a[i * lda + k] (the weight rows as they lie).
template <bool kPrefetch, bool kRows>
void tile_loop(int64_t kc, const float* __restrict a, int64_t lda, const float* __restrict b,
               const int64_t* __restrict offs, float* __restrict c) {
  vf acc[kMR][kNV];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[i][v] = loadu(c + i * kNR + v * kL);
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + offs[k];
    if constexpr (kPrefetch) {
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) __builtin_prefetch(bk + kNR + v * kL);
    }
    vf bv[kNV];
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) bv[v] = loadu(bk + v * kL);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const vf ai = splat(kRows ? a[i * lda + k] : a[k * kMR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) acc[i][v] += ai * bv[v];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) storeu(c + i * kNR + v * kL, acc[i][v]);
}

void tile(int64_t kc, const float* a, int64_t lda, const float* b, const int64_t* offs, float* c,
          bool prefetch) {
  if (lda == 0) {
    if (prefetch) tile_loop<true, false>(kc, a, 0, b, offs, c);
    else tile_loop<false, false>(kc, a, 0, b, offs, c);
  } else {
    if (prefetch) tile_loop<true, true>(kc, a, lda, b, offs, c);
    else tile_loop<false, true>(kc, a, lda, b, offs, c);
  }
}

// A 1x1 conv's tile of kNVr vectors per row: b's rows lie ldb apart (input channels of the
// image as it lies), c is the output itself (or a scratch tile); the bias starts the
// accumulators on the first K block.
template <bool kPrefetch, int kNVr>
void rows_loop(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,
               const float* __restrict bias, float* __restrict c, int64_t ldc) {
  vf acc[kMR][kNVr];
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNVr; ++v) acc[i][v] = bias ? splat(bias[i]) : loadu(c + i * ldc + v * kL);
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    if constexpr (kPrefetch) {
#pragma GCC unroll 4
      for (int v = 0; v < kNVr; ++v) __builtin_prefetch(bk + kNR + v * kL);
    }
    vf bv[kNVr];
#pragma GCC unroll 4
    for (int v = 0; v < kNVr; ++v) bv[v] = loadu(bk + v * kL);
#pragma GCC unroll 16
    for (int i = 0; i < kMR; ++i) {
      const vf ai = splat(a[k * kMR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < kNVr; ++v) acc[i][v] += ai * bv[v];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNVr; ++v) storeu(c + i * ldc + v * kL, acc[i][v]);
}

template <int kNVr>
void rows_nv(int64_t kc, const float* a, const float* b, int64_t ldb, const float* bias, float* c,
             int64_t ldc, bool prefetch) {
  if (prefetch) rows_loop<true, kNVr>(kc, a, b, ldb, bias, c, ldc);
  else rows_loop<false, kNVr>(kc, a, b, ldb, bias, c, ldc);
}

// nv vectors per row: the whole tile, or a last sliver of fewer columns (1 of 3 at 20 x 20).
void tile_rows(int64_t kc, const float* a, const float* b, int64_t ldb, const float* bias, float* c,
               int64_t ldc, int nv, bool prefetch) {
  static_assert(kNV == 3, "tile_rows' narrower variants assume three vectors a row");
  if (nv == 1) rows_nv<1>(kc, a, b, ldb, bias, c, ldc, prefetch);
  else if (nv == 2) rows_nv<2>(kc, a, b, ldb, bias, c, ldc, prefetch);
  else rows_nv<kNV>(kc, a, b, ldb, bias, c, ldc, prefetch);
}

// Four vectors at a time: independent accumulators hide the FMA latency of the tap chain; then
// single vectors, then a partial one computed whole (the source has slack) and stored in part.
void dw(const float* __restrict src, int64_t lds, const int64_t* __restrict offs,
        const float* __restrict w, int64_t ntaps, float bias, float* __restrict dst, int64_t ldd,
        int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * lds;
    float* d = dst + r * ldd;
    int64_t j = 0;
    for (; j + 4 * kL <= n; j += 4 * kL) {
      vf acc[4];
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[v] = splat(bias);
      for (int64_t t = 0; t < ntaps; ++t) {
        const float* st = s + offs[t] + j;
        const vf wt = splat(w[t]);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) acc[v] += wt * loadu(st + v * kL);
      }
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) storeu(d + j + v * kL, acc[v]);
    }
    for (; j < n; j += kL) {
      vf acc = splat(bias);
      for (int64_t t = 0; t < ntaps; ++t) acc += splat(w[t]) * loadu(s + offs[t] + j);
      if (j + kL <= n) {
        storeu(d + j, acc);
      } else {
        float part[kL];
        storeu(part, acc);
        for (int64_t v = 0; v < n - j; ++v) d[j + v] = part[v];
      }
    }
  }
}

// Vector moves in line: GCC would otherwise turn the loop into one memcpy call per row.
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
void copy_rows(
    const float* __restrict src, int64_t lds, int64_t rows, int64_t n, float* __restrict dst,
    int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = src + r * lds;
    float* d = dst + r * ldd;
    int64_t j = 0;
    for (; j + kL <= n; j += kL) storeu(d + j, loadu(s + j));
    if (j < n && n >= kL) {  // the last vector overlapping the one before, not a scalar tail
      storeu(d + n - kL, loadu(s + n - kL));
      continue;
    }
    for (; j < n; ++j) d[j] = s[j];
  }
}

// The even (kOdd 0) or odd (kOdd 1) elements of the two vectors a:b. __builtin_shufflevector
// (GCC 12+ and clang) with constant lanes: GCC's __builtin_shuffle does not build with clang.
template <int kOdd, std::size_t... I>
inline vf pick_pairs(vf a, vf b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, (2 * int(I) + kOdd)...);
}

// Lanes 1.. of a followed by the first lane of b.
template <int kN, std::size_t... I>
inline vf shift_out(vf a, vf b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, (1 + int(I))...);
}

// The last lane of a followed by the first kL - 1 lanes of b.
template <int kN, std::size_t... I>
inline vf shift_in(vf a, vf b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, (kN - 1 + int(I))...);
}

// Whole vectors, the last one overlapping the one before (rows are short: 40 pairs at 80
// columns left 8 to a scalar tail, a third of the row's time).
void split_pairs(const float* __restrict src, int64_t n, float* __restrict even,
                 float* __restrict odd) {
  auto one = [&](int64_t j) {
    const vf a = loadu(src + 2 * j), b = loadu(src + 2 * j + kL);
    storeu(even + j, pick_pairs<0>(a, b, std::make_index_sequence<kL>()));
    storeu(odd + j, pick_pairs<1>(a, b, std::make_index_sequence<kL>()));
  };
  if (n < kL) {
    for (int64_t j = 0; j < n; ++j) {
      even[j] = src[2 * j];
      odd[j] = src[2 * j + 1];
    }
    return;
  }
  int64_t j = 0;
  for (; j + kL <= n; j += kL) one(j);
  if (j < n) one(n - kL);
}

// One output row of a depthwise conv with a 3-wide kernel, width stride 2, left pad 1 and no
// width dilation, read straight from the input rows: dst[j] = bias + sum_r sum_kx w[r * 3 + kx]
// * rows[r][2j - 1 + kx], columns outside [0, W) read as zeros, rows[r] == nullptr a padding
// row. Each block of kL outputs splits 2 kL input columns into even and odd lanes in registers
// and shifts the odd ones by a lane for the left tap, whose first lane is the column before the
// block; so no phase planes are written and read back (they were half of a 144-channel 80x80
// conv). The last block overlaps the one before where the row holds it whole; otherwise (odd
// widths, rows under a vector) it reads a zero-padded copy.
inline vf dw_s2k3_block(const float* const* rows, int64_t nrows, const float* __restrict w,
                        int64_t W, float bias, int64_t j, bool whole) {
  vf acc = splat(bias);
  float tail[2 * kL];
  for (int64_t r = 0; r < nrows; ++r) {
    const float* in = rows[r];
    if (in == nullptr) continue;
    const float* src = in + 2 * j;
    const float before = j > 0 && 2 * j <= W ? src[-1] : 0.0f;  // past W: the right pad
    if (!whole) {  // copy what is left, zeros past W (the right pad)
      const int64_t left_cols = W - 2 * j;
      const int64_t have = left_cols < 0 ? 0 : (left_cols > 2 * kL ? 2 * kL : left_cols);
      __builtin_memset(tail, 0, sizeof tail);
      __builtin_memcpy(tail, src, static_cast<std::size_t>(have) * sizeof(float));
      src = tail;
    }
    const vf a = loadu(src), b = loadu(src + kL);
    const vf ev = pick_pairs<0>(a, b, std::make_index_sequence<kL>());
    const vf od = pick_pairs<1>(a, b, std::make_index_sequence<kL>());
    const vf left = shift_in<kL>(splat(before), od, std::make_index_sequence<kL>());
    acc += splat(w[r * 3]) * left + splat(w[r * 3 + 1]) * ev + splat(w[r * 3 + 2]) * od;
  }
  return acc;
}

void dw_s2k3(const float* const* rows, int64_t nrows, const float* __restrict w, int64_t W,
             float bias, float* __restrict dst, int64_t n) {
  int64_t j = 0;
  for (; j + kL <= n && 2 * j + 2 * kL <= W; j += kL)
    storeu(dst + j, dw_s2k3_block(rows, nrows, w, W, bias, j, true));
  if (j == n) return;
  if (n >= kL && 2 * n <= W) {  // the last kL outputs, overlapping the block before
    storeu(dst + n - kL, dw_s2k3_block(rows, nrows, w, W, bias, n - kL, true));
    return;
  }
  for (; j < n; j += kL) {
    const vf acc = dw_s2k3_block(rows, nrows, w, W, bias, j, false);
    float part[kL];
    storeu(part, acc);
    for (int64_t v = 0; v < n - j && v < kL; ++v) dst[j + v] = part[v];
  }
}

// One output row of a depthwise conv with a 3-wide kernel, width stride 1, pads 1 and 1 (W
// outputs) and no width dilation, read straight from the input rows: dst[j] = bias + sum_r
// sum_kx w[r * 3 + kx] * rows[r][j - 1 + kx], columns -1 and W zeros, rows[r] == nullptr a zero
// row. A block's left and right taps are the row's vectors one column off, or at the row's ends
// its own vector shifted by a lane with a zero; the last block overlaps the one before. No plane
// copy: its per-row memcpy calls were a fifth of a 96-channel 80x80 conv.
inline vf dw_s1k3_block(const float* const* rows, int64_t nrows, const float* __restrict w,
                        int64_t W, float bias, int64_t j) {
  vf acc = splat(bias);
  for (int64_t r = 0; r < nrows; ++r) {
    const float* in = rows[r];
    if (in == nullptr) continue;
    const vf c = loadu(in + j);
    const vf left =
        j > 0 ? loadu(in + j - 1) : shift_in<kL>(vf{}, c, std::make_index_sequence<kL>());
    const vf right =
        j + kL < W ? loadu(in + j + 1) : shift_out<kL>(c, vf{}, std::make_index_sequence<kL>());
    acc += splat(w[r * 3]) * left + splat(w[r * 3 + 1]) * c + splat(w[r * 3 + 2]) * right;
  }
  return acc;
}

void dw_s1k3(const float* const* rows, int64_t nrows, const float* __restrict w, int64_t W,
             float bias, float* __restrict dst) {
  if (W < kL) {  // a row under a vector: through a zero-padded copy of each row
    float buf[8][kL + 2];
    const float* padded[8];
    for (int64_t r = 0; r < nrows; ++r) {
      padded[r] = nullptr;
      if (rows[r] == nullptr) continue;
      for (int i = 0; i < kL + 2; ++i) buf[r][i] = i >= 1 && i <= W ? rows[r][i - 1] : 0.0f;
      padded[r] = buf[r] + 1;
    }
    const vf acc = dw_s1k3_block(padded, nrows, w, kL + 1, bias, 0);
    float part[kL];
    storeu(part, acc);
    for (int64_t v = 0; v < W; ++v) dst[v] = part[v];
    return;
  }
  if (nrows == 3 && rows[0] && rows[1] && rows[2] && W >= 2 * kL) {
    // An interior row of a 3x3 kernel: the weights' splats hoisted out of the blocks, the rows
    // unrolled into three independent sums (the ends through the general block).
    vf wv[9];
#pragma GCC unroll 9
    for (int i = 0; i < 9; ++i) wv[i] = splat(w[i]);
    const float *r0 = rows[0], *r1 = rows[1], *r2 = rows[2];
    storeu(dst, dw_s1k3_block(rows, 3, w, W, bias, 0));
    for (int64_t j = kL; j + kL < W; j += kL) {
      const vf s0 = splat(bias) + wv[0] * loadu(r0 + j - 1) + wv[1] * loadu(r0 + j) +
                    wv[2] * loadu(r0 + j + 1);
      const vf s1 = wv[3] * loadu(r1 + j - 1) + wv[4] * loadu(r1 + j) + wv[5] * loadu(r1 + j + 1);
      const vf s2 = wv[6] * loadu(r2 + j - 1) + wv[7] * loadu(r2 + j) + wv[8] * loadu(r2 + j + 1);
      storeu(dst + j, s0 + s1 + s2);
    }
    storeu(dst + W - kL, dw_s1k3_block(rows, 3, w, W, bias, W - kL));
    return;
  }
  int64_t j = 0;
  for (; j + kL <= W; j += kL) storeu(dst + j, dw_s1k3_block(rows, nrows, w, W, bias, j));
  if (j < W) storeu(dst + W - kL, dw_s1k3_block(rows, nrows, w, W, bias, W - kL));
}
