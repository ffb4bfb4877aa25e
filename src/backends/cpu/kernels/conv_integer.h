// Internal to the CPU backend: conv_integer's 1-D / 2-D convs without a column buffer (an
// implicit GEMM, the float conv_implicit's approach over integer words; qinteger.cpp routes here).
//
// The input is copied once per image into zero-padded phase planes (for stride s, s*s planes per
// channel word holding the padded input's rows iy = r*s + py and columns ix = j*s + px), so every
// kernel tap reads its plane at a constant offset from the output position, with unit stride.
// Output positions run over a padded-width domain q = oy * Wq + ox (ox >= Wo computed, dropped).
// A plane element is one 32-bit word holding several input channels at one position, and a
// packed weight is the matching word of those channels at one tap, so one instruction multiplies
// a word of weights by a vector of positions and sums within each word:
//  - bytes (vpdpbusd of AVX-512 VNNI or AVX-VNNI): 4 channels per word, x' = x (+128 for int8 x,
//  the byte with
//    its top bit flipped) as the unsigned operand, w' = w (-128 for uint8 w) as the signed one;
//    spatial padding is the shifted zero point ax, so (x' - ax) is 0 there, and
//      sum (x - zx)(w - zw) = S - bw * sum x' - ax * sum w' + K * ax * bw     (mod 2^32)
//    with ax = zx (+128 for int8 x), bw = zw (-128 for uint8 w); sum x' over a window (only
//    needed when some bw != 0) is one more tile whose weight row is all ones.
//  - int16 pairs (AVX2 vpmaddwd, portable code): 2 channels per word, x - zx and w - zw already
//    subtracted (padding 0), exact without corrections.
// Channels past a group's count (to fill the last word) are 0 in planes and weights.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "backends/backend.h"
#include "backends/cpu/workspace.h"
#include "nef/array.h"

namespace nef::backend::cpu {

// One register tile's loops for an instruction set: c[i * nr + j] = (zero ? 0 : c[i * nr + j]) +
// sum_{k < kc} a[k * mr + i] (.) b[offs[k] + j] for i < mr, j < nr, where (.) multiplies two
// words lane-wise and sums the lane products into int32 (4 byte products, or 2 int16 products).
struct ConvIntIsa {
  const char* name;
  int mr, nr;
  int per_word;  // channels per word: 4 (bytes, corrections as above) or 2 (int16 pairs)
  void (*tile)(int64_t kc, const int32_t* a, const int32_t* b, const int64_t* offs, int32_t* c,
               bool zero);
  // conv_dynamic_int8's passes over contiguous float runs: widens [lo, hi] to x[0..n) and clears
  // finite at a NaN or an infinity; d[j] = clamp(round_half_even(x[j] / s) + z, 0, 255).
  void (*range)(const float* x, int64_t n, float& lo, float& hi, bool& finite);
  void (*quantize)(const float* x, int64_t n, float s, float z, uint8_t* d);
  // Depthwise convs (one input channel per group): acc[j] = sum_t tw[t] * src[toff[t] + j * step]
  // for j < n, exact int32 (conv_integer_rows-inl.h).
  void (*dw_row)(const int32_t* src, int64_t step, int64_t n, const int64_t* toff,
                 const int32_t* tw, int64_t taps, int32_t* acc);
  // conv_dynamic_int8's rescale of n outputs: dst[j] = float(int32(src[j] - b * ones[j] + c)) *
  // sc + sh (ones null: 0), then a ReLU if relu; the same bits in every variant (no FMA).
  void (*rescale)(const int32_t* src, const int32_t* ones, int64_t n, uint32_t b, uint32_t c,
                  float sc, float sh, bool relu, float* dst);
};

const ConvIntIsa& conv_int_generic();
const ConvIntIsa* conv_int_avx2();      // nullptr when not compiled in
const ConvIntIsa* conv_int_avx2vnni();  // AVX2 + AVX-VNNI; nullptr when not compiled in
const ConvIntIsa* conv_int_avx512();    // AVX-512 VNNI; nullptr when not compiled in

// A conv_integer's geometry as a 2-D conv (1-D: height 1), channels first; pt/pl: top/left pads.
struct ConvIntGeom {
  int64_t N = 1, C = 1, M = 1, G = 1, H = 1, W = 1, Ho = 1, Wo = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0;
};

// The implicit conv for one geometry and the instruction set `isa_name` ("avx512vnni",
// "avx2vnni", "avx2", "generic": igemm_best()'s choice, so both integer kernels honour
// NEF_CPU_TARGET alike).
class ConvIntImplicit {
 public:
  ConvIntImplicit(const ConvIntGeom& g, const char* isa_name);
  // Whether this runs g: phase planes of bounded size. Depthwise convs (one input channel per
  // group) run a direct loop instead of the tiles, whose rows and channel words they would leave
  // mostly empty: each channel's zero-point-subtracted input as a padded int32 plane, every
  // output row a sum over the taps of shifted plane rows (dw_row).
  bool applies() const;
  const char* isa_name() const { return isa_->name; }
  int64_t workspace_bytes(bool dynamic = false) const;
  // Whether pack() subtracts the weight zero point (int16 words): it must then be a constant too.
  bool packs_zero_point() const { return isa_->per_word == 2; }
  // The weights w [M, C/G, kh, kw] (rank 3 or 4, any strides) packed once, with the weight zero
  // point zw ([M] or a scalar; null: none) where packs_zero_point(). The plan keeps it
  // (KernelArgs::prepared). Null for depthwise convs, which read their few weights per run.
  std::shared_ptr<const Prepared> pack(const Array& w, const Array* zw) const;
  // out (N, M, Ho, Wo, int32, contiguous) = conv_integer(x, w, zx, zw) with x, w strided views of
  // rank 3 or 4; zx / zw null when absent. `prepared`: pack()'s result, used when it was packed
  // from this w (and zw) for this instruction set; returns whether it was.
  bool run(const Array& x, const Array& w, const Array* zx, const Array* zw, int32_t* out,
           const Array& workspace, const Prepared* prepared) const;
  // conv_dynamic_int8 (ir/ops/quant.cpp): x float32 quantized per tensor at run time, w int8
  // (zero point 0), out (N, M, Ho, Wo, float32, contiguous) = float(acc) * (s_x * w_scale[m]) +
  // bias[m]; workspace_bytes(true) of scratch.
  // `activation` after the bias: kNone, kRelu, or kSilu (y * sigmoid(y), vmath's sigmoid).
  enum Activation { kNone, kRelu, kSilu };
  bool run_dynamic(const Array& x, const Array& w, const Array& w_scale, const Array* bias,
                   Activation activation, float* out, const Array& workspace,
                   const Prepared* prepared) const;

 private:
  // Image n's 8-bit values (element strides given to core), filled when asked for.
  using Image = std::function<const char*(int64_t n)>;
  struct Epilogue {
    int32_t* iout;  // int32 results, or
    float* fout;    // float(acc) * scale[m] + shift[m]
    const float *scale, *shift;
    Activation act;
  };
  bool core(DType xdt, const int64_t xst[4], int32_t zx0, const Image& image, const Array& w,
            const Array* zw, const Epilogue& ep, WorkspaceCarver& ws,
            const Prepared* prepared) const;
  void core_depthwise(DType xdt, const int64_t xst[4], int32_t zx0, const Image& image,
                      const Array& w, const Array* zw, const Epilogue& ep) const;

  ConvIntGeom g_;
  const ConvIntIsa* isa_;
  int64_t Cg_ = 0, Mg_ = 0, taps_ = 0, cw_ = 0, kw_words_ = 0;  // channel words, K in words
  int64_t Hq_ = 0, Wq_ = 0, plane_ = 0, chan_ = 0, Q_ = 0, S_ = 0, mslv_ = 0, kc_ = 0;
  int64_t planes_ = 0, packed_ = 0;  // words
  int64_t Hp_ = 0, Wp_ = 0;          // the padded input's extent that the outputs read
  bool depthwise_ = false;           // one input channel per group: core_depthwise
};

}  // namespace nef::backend::cpu
