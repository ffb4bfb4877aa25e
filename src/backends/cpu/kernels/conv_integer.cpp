// conv_integer.h: word phase planes, the packed weight words and the implicit integer GEMM over
// them; the portable tile (int16 pairs).
#include "backends/cpu/kernels/conv_integer.h"

#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cpu/kernels/vmath.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

// Portable tile: 4 channels x 16 positions of int16 pairs (a loop the compiler vectorizes).
constexpr int kGenMR = 4, kGenNR = 16;
void generic_tile(int64_t kc, const int32_t* a, const int32_t* b, const int64_t* offs, int32_t* c,
                  bool zero) {
  int32_t acc[kGenMR][kGenNR] = {};
  if (!zero) std::memcpy(acc, c, sizeof acc);
  for (int64_t k = 0; k < kc; ++k) {
    const int32_t* bk = b + offs[k];
    int32_t lo[kGenNR], hi[kGenNR];
    for (int j = 0; j < kGenNR; ++j) {
      const uint32_t v = uint32_t(bk[j]);
      lo[j] = int16_t(uint16_t(v & 0xffff));
      hi[j] = int16_t(uint16_t(v >> 16));
    }
    for (int i = 0; i < kGenMR; ++i) {
      const uint32_t w = uint32_t(a[k * kGenMR + i]);
      const int32_t wl = int16_t(uint16_t(w & 0xffff)), wh = int16_t(uint16_t(w >> 16));
      for (int j = 0; j < kGenNR; ++j) acc[i][j] += wl * lo[j] + wh * hi[j];
    }
  }
  std::memcpy(c, acc, sizeof acc);
}

#define NEF_DW_VBYTES 16
#include "backends/cpu/kernels/conv_integer_rows-inl.h"
#undef NEF_DW_VBYTES

// Element i of a zero point (a scalar or 1-D of an 8-bit dtype); 0 when absent.
int32_t zp_at(const Array* z, int64_t i) {
  if (!z) return 0;
  const int64_t off = numel(z->shape) == 1 ? 0 : i * z->strides.back();
  return z->dtype == DType::Int8 ? int32_t(static_cast<const int8_t*>(z->data())[off])
                                 : int32_t(static_cast<const uint8_t*>(z->data())[off]);
}

int32_t load8(const void* base, DType t, int64_t off) {
  return t == DType::Int8 ? int32_t(static_cast<const int8_t*>(base)[off])
                          : int32_t(static_cast<const uint8_t*>(base)[off]);
}

// A conv operand's element strides as (N/M, C, H, W): 1-D has no height (stride 0).
void strides4(const Array& a, int64_t s[4]) {
  s[0] = a.strides[0], s[1] = a.strides[1];
  if (a.rank() == 4) s[2] = a.strides[2], s[3] = a.strides[3];
  else s[2] = 0, s[3] = a.strides[2];
}

// The packed weight words: per group, mslv tiles of [Kw][mr] words (zero rows past Mg), then
// (byte format) one tile whose row 0 is all ones over the real channels (window sums of x').
struct PackedConvIntW final : Prepared {
  const ConvIntIsa* isa = nullptr;
  const void* src = nullptr;
  int64_t s[4] = {};
  DType dtype = DType::Int8;
  const void* zsrc = nullptr;  // int16 format: the zero point it subtracted (null: none)
  hwy::AlignedFreeUniquePtr<int32_t[]> a;
  std::vector<int32_t> wsum;  // byte format: sum of w' per output channel
  bool replaces(size_t input) const override { return input == 1; }
};

}  // namespace

ConvIntImplicit::ConvIntImplicit(const ConvIntGeom& g, const char* isa_name) : g_(g) {
  const std::string want = isa_name;
  isa_ = &conv_int_generic();
  if (want == "avx512vnni" && conv_int_avx512()) isa_ = conv_int_avx512();
  else if (want == "avx2vnni" && conv_int_avx2vnni()) isa_ = conv_int_avx2vnni();
  else if (want == "avx2" && conv_int_avx2()) isa_ = conv_int_avx2();
  Cg_ = g.C / g.G;
  Mg_ = g.M / g.G;
  taps_ = g.kh * g.kw;
  cw_ = ceil_div(Cg_, isa_->per_word);
  kw_words_ = cw_ * taps_;
  const int64_t Hp = (g.Ho - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const int64_t Wp = (g.Wo - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  Hp_ = Hp, Wp_ = Wp;
  depthwise_ = Cg_ == 1;
  Hq_ = ceil_div(Hp, g.sh);
  Wq_ = ceil_div(Wp, g.sw);
  plane_ = Hq_ * Wq_;
  chan_ = g.sh * g.sw * plane_;
  Q_ = g.Ho * Wq_;
  S_ = ceil_div(Q_, isa_->nr);
  mslv_ = ceil_div(Mg_, isa_->mr);
  // K blocks of at most 128 words: a sliver's block of the planes (128 x nr words) stays in L1
  // across the channel tiles.
  const int64_t nkb = std::max<int64_t>(1, ceil_div(kw_words_, 128));
  kc_ = std::max<int64_t>(1, ceil_div(kw_words_, nkb));
  // The last sliver reads up to S * nr - 1 past a tap's offset (the largest is below cw * chan).
  planes_ = g.G * cw_ * chan_ + S_ * isa_->nr + 64;
  packed_ = (g.G * mslv_ + 1) * kw_words_ * isa_->mr;
}

bool ConvIntImplicit::applies() const {
  if (depthwise_) return Hp_ * Wp_ <= (int64_t{1} << 24);     // a thread's plane: 64 MB
  return Cg_ > 0 && planes_ + packed_ <= (int64_t{1} << 24);  // 64 MB
}

int64_t ConvIntImplicit::workspace_bytes(bool dynamic) const {
  const int64_t codes = dynamic ? workspace_piece(g_.C * g_.H * g_.W, DType::UInt8) : 0;
  if (depthwise_) return codes;  // the planes are per thread (core_depthwise)
  return codes + workspace_piece(planes_, DType::Int32) + workspace_piece(packed_, DType::Int32) +
         workspace_piece(g_.M, DType::Int32);
}

namespace {

// Packs w (strides s) into a (packed words, see PackedConvIntW) and wsum (byte format).
void pack_words(const ConvIntGeom& g, const ConvIntIsa& isa, int64_t Cg, int64_t Mg, int64_t cw,
                int64_t mslv, const Array& w, const int64_t s[4], const Array* zw, int32_t* a,
                int32_t* wsum) {
  const int64_t taps = g.kh * g.kw, Kw = cw * taps, MR = isa.mr;
  const bool bytes = isa.per_word == 4;
  const uint32_t flip = w.dtype == DType::UInt8 ? 0x80 : 0;  // w' = w - 128 for uint8 w
  parallel_for(g.G * mslv, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, Kw * MR)),
               [&](int64_t i0, int64_t i1) {
                 for (int64_t i = i0; i < i1; ++i) {
                   const int64_t grp = i / mslv, ms = i % mslv;
                   int32_t* dst = a + i * Kw * MR;
                   for (int64_t r = 0; r < MR; ++r) {
                     const int64_t ml = ms * MR + r, m = grp * Mg + ml;
                     const int32_t z = ml < Mg && !bytes ? zp_at(zw, m) : 0;
                     int32_t sum = 0;
                     for (int64_t c = 0; c < cw; ++c)
                       for (int64_t t = 0; t < taps; ++t) {
                         uint32_t word = 0;
                         for (int e = 0; e < isa.per_word && ml < Mg; ++e) {
                           const int64_t ch = c * isa.per_word + e;
                           if (ch >= Cg) break;
                           const int32_t v =
                               load8(w.data(), w.dtype,
                                     m * s[0] + ch * s[1] + (t / g.kw) * s[2] + (t % g.kw) * s[3]);
                           if (bytes) {
                             const uint32_t b = (uint32_t(uint8_t(v)) ^ flip) & 0xff;
                             sum += int8_t(uint8_t(b));
                             word |= b << (8 * e);
                           } else {
                             word |= uint32_t(uint16_t(int16_t(v - z))) << (16 * e);
                           }
                         }
                         dst[(c * taps + t) * MR + r] = int32_t(word);
                       }
                     if (bytes && ml < Mg) wsum[m] = sum;
                   }
                 }
               });
  if (!bytes) return;
  // The ones tile: row 0 sums x' over the window (the real channels only).
  int32_t* ones = a + g.G * mslv * Kw * MR;
  std::fill(ones, ones + Kw * MR, 0);
  for (int64_t c = 0; c < cw; ++c) {
    uint32_t word = 0;
    for (int e = 0; e < 4 && c * 4 + e < Cg; ++e) word |= uint32_t(1) << (8 * e);
    for (int64_t t = 0; t < taps; ++t) ones[(c * taps + t) * MR] = int32_t(word);
  }
}

// d[j] = the word of channels src + e * sc at element j * step, for j < n (all per_word
// channels real); inlined per call so that a constant unit step vectorizes.
template <typename T, bool kBytes>
inline __attribute__((always_inline)) void whole_words(const T* src, int64_t sc, int64_t step,
                                                       int64_t n, int32_t zx, uint32_t flip,
                                                       uint32_t* d) {
  if constexpr (kBytes) {
    const T *s0 = src, *s1 = src + sc, *s2 = src + 2 * sc, *s3 = src + 3 * sc;
    const uint32_t f4 = flip * 0x01010101u;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t i = j * step;
      d[j] = (uint32_t(uint8_t(s0[i])) | uint32_t(uint8_t(s1[i])) << 8 |
              uint32_t(uint8_t(s2[i])) << 16 | uint32_t(uint8_t(s3[i])) << 24) ^
             f4;
    }
  } else {
    const T *s0 = src, *s1 = src + sc;
    for (int64_t j = 0; j < n; ++j) {
      const int64_t i = j * step;
      d[j] = uint32_t(uint16_t(int16_t(int32_t(s0[i]) - zx))) |
             uint32_t(uint16_t(int16_t(int32_t(s1[i]) - zx))) << 16;
    }
  }
}

// The word planes of one word of channels (nch real ones at x, channel stride sc): value(x) per
// element, `pad` where the padded input lies outside the image.
template <typename T, bool kBytes>
void fill_word(const ConvIntGeom& g, int64_t Hq, int64_t Wq, int64_t plane, const T* x, int64_t sc,
               int64_t sy, int64_t sx, int nch, int32_t zx, uint32_t flip, uint32_t* dst) {
  uint32_t pad = 0;
  if (kBytes)
    for (int e = 0; e < nch; ++e) pad |= ((uint32_t(uint8_t(zx)) ^ flip) & 0xff) << (8 * e);
  for (int64_t py = 0; py < g.sh; ++py)
    for (int64_t px = 0; px < g.sw; ++px) {
      uint32_t* pl = dst + (py * g.sw + px) * plane;
      // Plane column j holds input column j * sw + px - pl: [lo, hi) lie inside the image.
      const int64_t lo = std::min(Wq, ceil_div(g.pl - px, g.sw));
      const int64_t hi = std::clamp(ceil_div(g.W + g.pl - px, g.sw), lo, Wq);
      for (int64_t r = 0; r < Hq; ++r) {
        uint32_t* row = pl + r * Wq;
        const int64_t iy = r * g.sh + py - g.pt;
        if (iy < 0 || iy >= g.H) {
          std::fill(row, row + Wq, pad);
          continue;
        }
        std::fill(row, row + lo, pad);
        std::fill(row + hi, row + Wq, pad);
        const T* src = x + iy * sy + (lo * g.sw + px - g.pl) * sx;
        const int64_t step = g.sw * sx;
        if (nch == (kBytes ? 4 : 2)) {  // whole words: one pass (unit steps vectorize)
          step == 1 ? whole_words<T, kBytes>(src, sc, 1, hi - lo, zx, flip, row + lo)
                    : whole_words<T, kBytes>(src, sc, step, hi - lo, zx, flip, row + lo);
          continue;
        }
        for (int64_t j = 0; j < hi - lo; ++j) row[lo + j] = 0;
        for (int e = 0; e < nch; ++e) {
          const T* se = src + e * sc;
          uint32_t* d = row + lo;
          if constexpr (kBytes) {
            const int sh = 8 * e;
            for (int64_t j = 0; j < hi - lo; ++j)
              d[j] |= ((uint32_t(uint8_t(se[j * step])) ^ flip) & 0xff) << sh;
          } else {
            const int sh = 16 * e;
            for (int64_t j = 0; j < hi - lo; ++j)
              d[j] |= uint32_t(uint16_t(int16_t(int32_t(se[j * step]) - zx))) << sh;
          }
        }
      }
    }
}

constexpr int64_t kPanelSlivers = 8;

void generic_range(const float* x, int64_t n, float& lo, float& hi, bool& finite);
void generic_quantize(const float* x, int64_t n, float s, float z, uint8_t* d);

// Widens [lo, hi] to row[j * step], j < n; finite turns false at a NaN or an infinity. Inlined per
// call so that a constant unit step vectorizes.
inline __attribute__((always_inline)) void row_range(const float* row, int64_t step, int64_t n,
                                                     float& lo, float& hi, bool& finite) {
  float rlo = lo, rhi = hi, acc = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float v = row[j * step];
    rlo = std::min(rlo, v);
    rhi = std::max(rhi, v);
    acc += v * 0.0f;  // NaN for NaN or an infinity, else 0
  }
  lo = rlo, hi = rhi;
  finite = finite && acc == 0.0f;
}

// d[j] = clamp(round_half_even(row[j * step] / s) + z, 0, 255). |x / s| <= 255 for x in the
// range s was made from, so adding and subtracting 1.5 * 2^23 rounds to the nearest even integer
// (the default rounding mode; libm's nearbyint is a call per element without SSE4.1).
inline __attribute__((always_inline)) void quantize_row(const float* row, int64_t step, int64_t n,
                                                        float s, float z, uint8_t* d) {
  constexpr float kMagic = 12582912.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float q = ((row[j * step] / s + kMagic) - kMagic) + z;
    d[j] = uint8_t(int32_t(std::clamp(q, 0.0f, 255.0f)));
  }
}

}  // namespace

std::shared_ptr<const Prepared> ConvIntImplicit::pack(const Array& w, const Array* zw) const {
  if (depthwise_) return nullptr;
  const bool bytes = isa_->per_word == 4;
  auto pk = std::make_shared<PackedConvIntW>();
  pk->isa = isa_;
  pk->src = w.data();
  strides4(w, pk->s);
  pk->dtype = w.dtype;
  pk->zsrc = zw ? zw->data() : nullptr;
  pk->a = hwy::AllocateAligned<int32_t>(size_t(packed_));
  NEF_CHECK(pk->a, "[conv_integer] prepacking the weights: out of memory");
  if (bytes) pk->wsum.assign(size_t(g_.M), 0);
  pack_words(g_, *isa_, Cg_, Mg_, cw_, mslv_, w, pk->s, zw, pk->a.get(),
             bytes ? pk->wsum.data() : nullptr);
  return pk;
}

bool ConvIntImplicit::run(const Array& x, const Array& w, const Array* zx, const Array* zw,
                          int32_t* out, const Array& workspace, const Prepared* prepared) const {
  WorkspaceCarver ws(workspace);
  int64_t xst[4];
  strides4(x, xst);
  const Image image = [&](int64_t n) { return static_cast<const char*>(x.data()) + n * xst[0]; };
  return core(x.dtype, xst, zp_at(zx, 0), image, w, zw, {out, nullptr, nullptr, nullptr, kNone}, ws,
              prepared);
}

bool ConvIntImplicit::run_dynamic(const Array& x, const Array& w, const Array& w_scale,
                                  const Array* bias, Activation activation, float* out,
                                  const Array& workspace, const Prepared* prepared) const {
  const int64_t P = g_.Ho * g_.Wo, total = g_.N * g_.M * P;
  int64_t xst[4];
  strides4(x, xst);
  const float* xp = x.data_as<float>();
  // The tensor's range (one pass, channels in parallel; NaN or an infinity makes every output
  // NaN). min / max are exact, so the merge order does not matter.
  float lo = 0.0f, hi = 0.0f;
  bool finite = true;
  std::mutex merge;
  // A channel whose rows lie end to end is one run for both passes (rows of 20 floats spent
  // more on each call's tails and reductions than on the values: 0.7 ns per value).
  const int64_t rows = xst[3] == 1 && xst[2] == g_.W ? g_.H : 1;
  parallel_for(g_.N * g_.C, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, g_.H * g_.W)),
               [&](int64_t i0, int64_t i1) {
                 float l = 0.0f, h = 0.0f;
                 bool f = true;
                 for (int64_t i = i0; i < i1; ++i)
                   for (int64_t y = 0; y < g_.H; y += rows) {
                     const float* row = xp + (i / g_.C) * xst[0] + (i % g_.C) * xst[1] + y * xst[2];
                     xst[3] == 1 ? isa_->range(row, rows * g_.W, l, h, f)
                                 : row_range(row, xst[3], g_.W, l, h, f);
                   }
                 std::lock_guard<std::mutex> lock(merge);
                 lo = std::min(lo, l), hi = std::max(hi, h), finite = finite && f;
               });
  if (!finite) {
    std::fill(out, out + total, std::numeric_limits<float>::quiet_NaN());
    return prepared != nullptr;
  }
  // DynamicQuantizeLinear in float32, as the ops it stands for would compute it.
  const float sx = std::max(hi - lo, FLT_MIN) / 255.0f;
  const float zf = std::nearbyint(-lo / sx);
  const int32_t z = int32_t(zf);
  std::vector<float> scale(size_t(g_.M)), shift(size_t(g_.M), 0.0f);
  for (int64_t m = 0; m < g_.M; ++m) {
    scale[size_t(m)] = sx * w_scale.data_as<float>()[m * w_scale.strides[0]];
    if (bias) shift[size_t(m)] = bias->data_as<float>()[m * bias->strides[0]];
  }
  WorkspaceCarver ws(workspace);
  uint8_t* codes = ws.take({g_.C * g_.H * g_.W}, DType::UInt8).data_as<uint8_t>();
  const int64_t qst[4] = {0, g_.H * g_.W, g_.W, 1};
  // One image's codes at a time, written just before its planes are filled from them.
  const Image image = [&](int64_t n) {
    parallel_for(g_.C, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g_.H * g_.W)),
                 [&](int64_t c0, int64_t c1) {
                   for (int64_t c = c0; c < c1; ++c)
                     for (int64_t y = 0; y < g_.H; y += rows) {
                       const float* row = xp + n * xst[0] + c * xst[1] + y * xst[2];
                       uint8_t* d = codes + (c * g_.H + y) * g_.W;
                       xst[3] == 1 ? isa_->quantize(row, rows * g_.W, sx, zf, d)
                                   : quantize_row(row, xst[3], g_.W, sx, zf, d);
                     }
                 });
    return reinterpret_cast<const char*>(codes);
  };
  return core(DType::UInt8, qst, z, image, w, nullptr,
              {nullptr, out, scale.data(), shift.data(), activation}, ws, prepared);
}

bool ConvIntImplicit::core(DType xdt, const int64_t xst[4], int32_t zx0, const Image& image,
                           const Array& w, const Array* zw, const Epilogue& ep, WorkspaceCarver& ws,
                           const Prepared* prepared) const {
  if (depthwise_) {
    core_depthwise(xdt, xst, zx0, image, w, zw, ep);
    return false;
  }
  const ConvIntIsa& isa = *isa_;
  const int64_t MR = isa.mr, NR = isa.nr, Kw = kw_words_, P = g_.Ho * g_.Wo;
  const bool bytes = isa.per_word == 4;
  int32_t* const out = ep.iout;
  uint32_t* const planes = ws.take({planes_}, DType::Int32).data_as<uint32_t>();
  int32_t* const a_ws = ws.take({packed_}, DType::Int32).data_as<int32_t>();
  int32_t* const wsum_ws = ws.take({g_.M}, DType::Int32).data_as<int32_t>();
  const int32_t *a = a_ws, *wsum = wsum_ws;
  int64_t wst[4];
  strides4(w, wst);
  const auto* pk = dynamic_cast<const PackedConvIntW*>(prepared);
  const bool use_packed = pk && pk->isa == isa_ && pk->src == w.data() &&
                          std::equal(wst, wst + 4, pk->s) && pk->dtype == w.dtype &&
                          (bytes || pk->zsrc == (zw ? zw->data() : nullptr));
  if (use_packed) {
    a = pk->a.get();
    if (bytes) wsum = pk->wsum.data();
  } else {
    pack_words(g_, isa, Cg_, Mg_, cw_, mslv_, w, wst, zw, a_ws, wsum_ws);
  }
  // Byte format corrections: out = S - bw[m] * ones[q] + cst[m] (mod 2^32).
  const uint32_t ax = uint32_t(xdt == DType::Int8 ? zx0 + 128 : zx0);
  std::vector<uint32_t> bw, cst;
  bool need_ones = false;
  if (bytes) {
    bw.resize(size_t(g_.M));
    cst.resize(size_t(g_.M));
    const uint32_t K = uint32_t(Cg_ * taps_);
    for (int64_t m = 0; m < g_.M; ++m) {
      const int32_t z = zp_at(zw, m);
      bw[size_t(m)] = uint32_t(w.dtype == DType::UInt8 ? z - 128 : z);
      cst[size_t(m)] = K * ax * bw[size_t(m)] - ax * uint32_t(wsum[m]);
      need_ones |= bw[size_t(m)] != 0;
    }
  }
  const int32_t* ones_a = a + g_.G * mslv_ * Kw * MR;
  std::vector<int64_t> offs(static_cast<size_t>(Kw));
  for (int64_t c = 0; c < cw_; ++c)
    for (int64_t t = 0; t < taps_; ++t) {
      const int64_t y = (t / g_.kw) * g_.dh, xo = (t % g_.kw) * g_.dw;
      offs[size_t(c * taps_ + t)] =
          c * chan_ + ((y % g_.sh) * g_.sw + xo % g_.sw) * plane_ + (y / g_.sh) * Wq_ + xo / g_.sw;
    }
  std::fill(planes + g_.G * cw_ * chan_, planes + planes_, 0u);
  const uint32_t flip = xdt == DType::Int8 ? 0x80 : 0;  // x' = x + 128 for int8 x
  const int64_t tsize = mslv_ * MR * NR;
  // Output positions (oy * Wo + ox) before padded-width position q: the valid ones.
  auto valid_before = [&](int64_t q) { return (q / Wq_) * g_.Wo + std::min(q % Wq_, g_.Wo); };
  const double sliver_work = 2.0 * double(mslv_ * MR) * double(Kw) * double(NR) + 1;
  const int64_t grain = std::max<int64_t>(1, int64_t(4e5 / sliver_work));
  for (int64_t n = 0; n < g_.N; ++n) {
    const char* xn = image(n);
    parallel_for(g_.G * cw_, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, chan_)),
                 [&](int64_t i0, int64_t i1) {
                   for (int64_t i = i0; i < i1; ++i) {
                     const int64_t grp = i / cw_, c = i % cw_;
                     const int nch = int(std::min<int64_t>(isa.per_word, Cg_ - c * isa.per_word));
                     const int64_t off = (grp * Cg_ + c * isa.per_word) * xst[1];
                     uint32_t* dst = planes + i * chan_;
                     if (xdt == DType::Int8) {
                       const int8_t* xp = reinterpret_cast<const int8_t*>(xn) + off;
                       bytes ? fill_word<int8_t, true>(g_, Hq_, Wq_, plane_, xp, xst[1], xst[2],
                                                       xst[3], nch, zx0, flip, dst)
                             : fill_word<int8_t, false>(g_, Hq_, Wq_, plane_, xp, xst[1], xst[2],
                                                        xst[3], nch, zx0, flip, dst);
                     } else {
                       const uint8_t* xp = reinterpret_cast<const uint8_t*>(xn) + off;
                       bytes ? fill_word<uint8_t, true>(g_, Hq_, Wq_, plane_, xp, xst[1], xst[2],
                                                        xst[3], nch, zx0, flip, dst)
                             : fill_word<uint8_t, false>(g_, Hq_, Wq_, plane_, xp, xst[1], xst[2],
                                                         xst[3], nch, zx0, flip, dst);
                     }
                   }
                 });
    parallel_for(g_.G * S_, grain, [&](int64_t i0, int64_t i1) {
      std::vector<int32_t> tiles(size_t(kPanelSlivers * tsize));
      std::vector<int32_t> onest(need_ones ? size_t(kPanelSlivers * MR * NR) : 0);
      std::vector<float> act;  // sigmoids of a chunk's run
      for (int64_t i = i0; i < i1;) {
        const int64_t grp = i / S_, s0 = i % S_;
        const int64_t s1 = std::min({S_, s0 + (i1 - i), s0 + kPanelSlivers});
        const int32_t* gbase = reinterpret_cast<const int32_t*>(planes) + grp * cw_ * chan_;
        const int32_t* ga = a + grp * mslv_ * Kw * MR;
        const int64_t gofs0 = (n * g_.M + grp * Mg_) * P;
        if (Kw == 0)  // no input channels: sums of nothing
          std::fill(tiles.begin(), tiles.begin() + (s1 - s0) * tsize, 0);
        // K blocks outermost: a block of packed weights stays in L2 across the slivers, each
        // sliver's plane block in L1 across the channel tiles.
        for (int64_t k0 = 0; k0 < Kw; k0 += kc_) {
          const int64_t kc = std::min(kc_, Kw - k0);
          for (int64_t s = s0; s < s1; ++s) {
            int32_t* t = tiles.data() + (s - s0) * tsize;
            for (int64_t ms = 0; ms < mslv_; ++ms)
              isa.tile(kc, ga + (ms * Kw + k0) * MR, gbase + s * NR, offs.data() + k0,
                       t + ms * MR * NR, k0 == 0);
            if (need_ones)
              isa.tile(kc, ones_a + k0 * MR, gbase + s * NR, offs.data() + k0,
                       onest.data() + (s - s0) * MR * NR, k0 == 0);
          }
        }
        // The valid columns into the output, one output-row run at a time.
        const int64_t gofs = (n * g_.M + grp * Mg_) * P;
        for (int64_t s = s0; s < s1; ++s) {
          int32_t* t = tiles.data() + (s - s0) * tsize;
          const int32_t* os = need_ones ? onest.data() + (s - s0) * MR * NR : nullptr;
          const int64_t q0 = s * NR, nq = std::min(NR, Q_ - q0);
          for (int64_t q = q0; q < q0 + nq;) {
            const int64_t oy = q / Wq_, ox = q % Wq_;
            const int64_t run = std::min(q0 + nq - q, Wq_ - ox);
            const int64_t len = std::clamp(g_.Wo - ox, int64_t{0}, run);
            for (int64_t m = 0; m < Mg_ && len > 0; ++m) {
              int32_t* src = t + m * NR + (q - q0);
              const int64_t mm = grp * Mg_ + m, at = gofs + m * P + oy * g_.Wo + ox;
              const uint32_t b = bytes ? bw[size_t(mm)] : 0, c = bytes ? cst[size_t(mm)] : 0;
              const int32_t* o = os ? os + (q - q0) : nullptr;
              if (ep.fout) {  // corrections and rescale in one vectorized pass
                isa.rescale(src, o, len, b, c, ep.scale[mm], ep.shift[mm], ep.act == kRelu,
                            ep.fout + at);
                continue;
              }
              if (bytes) {  // the corrections, in place in the tile
                if (o) {
                  for (int64_t j = 0; j < len; ++j)
                    src[j] = int32_t(uint32_t(src[j]) - b * uint32_t(o[j]) + c);
                } else {
                  for (int64_t j = 0; j < len; ++j) src[j] = int32_t(uint32_t(src[j]) + c);
                }
              }
              std::memcpy(out + at, src, size_t(len) * sizeof(int32_t));
            }
            q += run;
          }
        }
        if (ep.act == kSilu) {  // over the chunk's output run of each channel, vectorized
          const int64_t pa = valid_before(s0 * NR), pb = valid_before(std::min(s1 * NR, Q_));
          act.resize(size_t(std::max<int64_t>(pb - pa, 0)));
          for (int64_t m = 0; m < Mg_ && pb > pa; ++m) {
            float* y = ep.fout + gofs0 + m * P + pa;
            vmath::sigmoid(y, act.data(), size_t(pb - pa));
            for (int64_t j = 0; j < pb - pa; ++j) y[j] *= act[size_t(j)];
          }
        }
        i += s1 - s0;
      }
    });
  }
  return use_packed;
}

namespace {
// d[j] = s[j * step] - z for j < n (unit steps vectorize: the usual, contiguous rows).
template <typename T>
void widen_row(const T* s, int64_t step, int64_t n, int32_t z, int32_t* d) {
  if (step == 1)
    for (int64_t j = 0; j < n; ++j) d[j] = int32_t(s[j]) - z;
  else
    for (int64_t j = 0; j < n; ++j) d[j] = int32_t(s[j * step]) - z;
}
}  // namespace

void ConvIntImplicit::core_depthwise(DType xdt, const int64_t xst[4], int32_t zx0,
                                     const Image& image, const Array& w, const Array* zw,
                                     const Epilogue& ep) const {
  const int64_t taps = taps_, P = g_.Ho * g_.Wo, Mg = Mg_;
  if (P <= 0 || g_.N == 0) return;
  // The weights minus their zero points, per output channel and tap (few: read per run).
  int64_t wst[4];
  strides4(w, wst);
  std::vector<int32_t> tw(size_t(g_.M * taps));
  for (int64_t m = 0; m < g_.M; ++m) {
    const int32_t z = zp_at(zw, m);
    for (int64_t t = 0; t < taps; ++t)
      tw[size_t(m * taps + t)] =
          load8(w.data(), w.dtype, m * wst[0] + (t / g_.kw) * wst[2] + (t % g_.kw) * wst[3]) - z;
  }
  // Tap t of output row oy, column ox reads plane element (oy * sh) * Wp + toff[t] + ox * sw.
  std::vector<int64_t> toff(static_cast<size_t>(taps));
  for (int64_t t = 0; t < taps; ++t)
    toff[size_t(t)] = (t / g_.kw) * g_.dh * Wp_ + (t % g_.kw) * g_.dw;
  const int64_t plane = Hp_ * Wp_;
  const double work = double(plane) + double(Mg * P * std::max<int64_t>(taps, 1));
  const int64_t grain = std::max<int64_t>(1, int64_t(2e5 / work));
  for (int64_t n = 0; n < g_.N; ++n) {
    const char* xn = image(n);
    parallel_for(g_.C, grain, [&](int64_t c0, int64_t c1) {
      std::vector<int32_t> pl(static_cast<size_t>(plane)), acc(static_cast<size_t>(g_.Wo));
      std::vector<float> act;
      for (int64_t c = c0; c < c1; ++c) {
        // The padded plane of channel c: x - zx inside the image, 0 (the zero point) outside.
        const char* xc = xn + c * xst[1] * int64_t(dtype_size(xdt));
        for (int64_t r = 0; r < Hp_; ++r) {
          int32_t* row = pl.data() + r * Wp_;
          const int64_t iy = r - g_.pt;
          if (iy < 0 || iy >= g_.H) {
            std::fill(row, row + Wp_, 0);
            continue;
          }
          const int64_t lo = std::clamp<int64_t>(g_.pl, 0, Wp_);
          const int64_t hi = std::clamp<int64_t>(g_.pl + g_.W, lo, Wp_);
          std::fill(row, row + lo, 0);
          std::fill(row + hi, row + Wp_, 0);
          const int64_t base = iy * xst[2] + (lo - g_.pl) * xst[3];
          xdt == DType::Int8 ? widen_row(reinterpret_cast<const int8_t*>(xc) + base, xst[3],
                                         hi - lo, zx0, row + lo)
                             : widen_row(reinterpret_cast<const uint8_t*>(xc) + base, xst[3],
                                         hi - lo, zx0, row + lo);
        }
        for (int64_t ml = 0; ml < Mg; ++ml) {
          const int64_t m = c * Mg + ml;
          const int32_t* wt = tw.data() + m * taps;
          const int64_t at = (n * g_.M + m) * P;
          for (int64_t oy = 0; oy < g_.Ho; ++oy) {
            int32_t* dst = ep.iout ? ep.iout + at + oy * g_.Wo : acc.data();
            isa_->dw_row(pl.data() + oy * g_.sh * Wp_, g_.sw, g_.Wo, toff.data(), wt, taps, dst);
            if (ep.fout)
              isa_->rescale(dst, nullptr, g_.Wo, 0, 0, ep.scale[m], ep.shift[m], ep.act == kRelu,
                            ep.fout + at + oy * g_.Wo);
          }
          if (ep.fout && ep.act == kSilu) {  // the channel's whole output, vectorized
            float* y = ep.fout + at;
            act.resize(size_t(P));
            vmath::sigmoid(y, act.data(), size_t(P));
            for (int64_t j = 0; j < P; ++j) y[j] *= act[size_t(j)];
          }
        }
      }
    });
  }
}

namespace {
void generic_range(const float* x, int64_t n, float& lo, float& hi, bool& finite) {
  row_range(x, 1, n, lo, hi, finite);
}
void generic_quantize(const float* x, int64_t n, float s, float z, uint8_t* d) {
  quantize_row(x, 1, n, s, z, d);
}
}  // namespace

const ConvIntIsa& conv_int_generic() {
  static const ConvIntIsa isa{"generic",     kGenMR,           kGenNR, 2,      generic_tile,
                              generic_range, generic_quantize, dw_row, rescale};
  return isa;
}

}  // namespace nef::backend::cpu
