// conv_implicit.h: phase planes, the implicit GEMM and the depthwise conv over them.
#include "backends/cpu/kernels/conv_implicit.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/cpu/kernels/conv_simd.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

// Phase planes of one channel: sh*sw planes of `rows` x Wq (Hq rows hold the padded input, and
// one more when rows share their pads); `direct`: a 1x1 stride-1 unpadded conv reads the input
// itself (its planes would be a copy).
struct Phases {
  int64_t Hq = 0, Wq = 0, rows = 0, plane = 0, chan = 0;
  bool direct = false;
};

Phases phases(const Conv2d& g) {
  Phases p;
  const int64_t Hp = (g.Ho - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const int64_t Wp = (g.Wo - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  p.Hq = ceil_div(Hp, g.sh);
  p.Wq = ceil_div(Wp, g.sw);
  p.direct = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
             p.Hq == g.H && p.Wq == g.W;
  p.rows = p.Hq;
  // Unit width stride with a right pad pr <= pl: a row's right pad is read from the next row's
  // left pad (zeros), so a row is pl + W wide (a 3x3 conv at 40 columns computes 41 per output
  // row instead of 42); an extra row gives the last one its right pad.
  const int64_t pr = Wp - g.pl - g.W;
  if (!p.direct && g.sw == 1 && pr > 0 && pr <= g.pl && g.pl + g.W >= g.Wo) {
    p.Wq = g.pl + g.W;
    p.rows = p.Hq + 1;
  }
  p.plane = p.rows * p.Wq;
  p.chan = g.sh * g.sw * p.plane;
  return p;
}

// Offset of tap (ky, kx) in a channel's phase planes, relative to output position q.
int64_t tap_offset(const Conv2d& g, const Phases& p, int64_t ky, int64_t kx) {
  const int64_t y = ky * g.dh, x = kx * g.dw;
  return ((y % g.sh) * g.sw + x % g.sw) * p.plane + (y / g.sh) * p.Wq + x / g.sw;
}

// Plane column j of phase px holds input column j*sw + px - pl: [lo, hi) are inside the image.
void phase_cols(const Conv2d& g, const Phases& p, int64_t px, int64_t& lo, int64_t& hi) {
  lo = std::min(p.Wq, ceil_div(g.pl - px, g.sw));
  hi = std::clamp(ceil_div(g.W + g.pl - px, g.sw), lo, p.Wq);
}

// Zeros a run of a row: a row's pads are a column or two, where a memset call per run cost more
// than the run (a tenth of a stride-2 depthwise conv).
inline void zero_run(float* p, int64_t n) {
  if (n > 4) {
    std::memset(p, 0, size_t(n) * sizeof(float));
    return;
  }
  if (n > 0) p[0] = 0.0f;
  if (n > 1) p[1] = 0.0f;
  if (n > 2) p[2] = 0.0f;
  if (n > 3) p[3] = 0.0f;
}

// Width stride 2: the column ranges of the two phases, the same for every row: [lo, hi) inside
// the image per phase, [a, b) where both are (the input pairs (2j - pl, 2j + 1 - pl)).
struct PairCols {
  int64_t lo0 = 0, hi0 = 0, lo1 = 0, hi1 = 0, a = 0, b = 0;
};
PairCols pair_cols(const Conv2d& g, const Phases& p) {
  PairCols c;
  phase_cols(g, p, 0, c.lo0, c.hi0);
  phase_cols(g, p, 1, c.lo1, c.hi1);
  c.a = std::max(c.lo0, c.lo1);
  c.b = std::max(c.a, std::min(c.hi0, c.hi1));
  return c;
}

// Width stride 2: both column phases of one input row in one pass (the row is read once:
// at 32 x 160 x 160 the input does not stay in L2, and two passes read it twice).
void fill_row_pair(const Conv2d& g, const Phases& p, const PairCols& c, const ConvSimdIsa& isa,
                   const float* in, float* r0, float* r1) {
  zero_run(r0, c.lo0);
  zero_run(r0 + c.hi0, p.Wq - c.hi0);
  zero_run(r1, c.lo1);
  zero_run(r1 + c.hi1, p.Wq - c.hi1);
  if (c.b > c.a) isa.split_pairs(in + 2 * c.a - g.pl, c.b - c.a, r0 + c.a, r1 + c.a);
  // The ends only one phase has (at most a column or two).
  for (int64_t j = c.lo0; j < std::min(c.a, c.hi0); ++j) r0[j] = in[2 * j - g.pl];
  for (int64_t j = std::max(c.b, c.lo0); j < c.hi0; ++j) r0[j] = in[2 * j - g.pl];
  for (int64_t j = c.lo1; j < std::min(c.a, c.hi1); ++j) r1[j] = in[2 * j + 1 - g.pl];
  for (int64_t j = std::max(c.b, c.lo1); j < c.hi1; ++j) r1[j] = in[2 * j + 1 - g.pl];
}

// Rows [r0, r0 + nrows) of the phase planes of one input channel (H x W) into dst, planes
// `stride` elements apart (rows past the padded input are zeros).
void fill_phases(const Conv2d& g, const Phases& p, const float* in, float* dst, int64_t r0,
                 int64_t nrows, int64_t stride) {
  const ConvSimdIsa& isa = conv_simd_best();
  const PairCols pc = g.sw == 2 ? pair_cols(g, p) : PairCols{};
  if (g.sw == 2) {
    // Input rows in order (row r of each height phase in turn), the next ones prefetched: a
    // pass per height phase read every other row, and the input (3.3 MB at 32 x 160 x 160) is
    // read from L3 once per call; its loads were most of the fill's time.
    const int64_t line = 16;
    for (int64_t r = r0; r < r0 + nrows; ++r) {
      for (int64_t py = 0; py < g.sh; ++py) {
        float* p0 = dst + (py * 2) * stride + (r - r0) * p.Wq;
        float* p1 = p0 + stride;
        const int64_t iy = r * g.sh + py - g.pt;
        if (iy < 0 || iy >= g.H) {
          std::fill(p0, p0 + p.Wq, 0.0f);
          std::fill(p1, p1 + p.Wq, 0.0f);
          continue;
        }
        if (iy + g.sh < g.H)
          for (int64_t j = 0; j < g.W; j += line) __builtin_prefetch(in + (iy + g.sh) * g.W + j);
        fill_row_pair(g, p, pc, isa, in + iy * g.W, p0, p1);
      }
    }
    return;
  }
  for (int64_t py = 0; py < g.sh; ++py) {
    for (int64_t px = 0; px < g.sw; ++px) {
      float* plane = dst + (py * g.sw + px) * stride;
      int64_t lo, hi;
      phase_cols(g, p, px, lo, hi);
      for (int64_t r = r0; r < r0 + nrows; ++r) {
        float* row = plane + (r - r0) * p.Wq;
        const int64_t iy = r * g.sh + py - g.pt;
        if (iy < 0 || iy >= g.H) {
          std::fill(row, row + p.Wq, 0.0f);
          continue;
        }
        const float* src = in + iy * g.W + (lo * g.sw + px - g.pl);
        zero_run(row, lo);
        if (g.sw == 1) {
          std::memcpy(row + lo, src, size_t(hi - lo) * sizeof(float));
        } else {
          for (int64_t j = 0; j < hi - lo; ++j) row[lo + j] = src[j * g.sw];
        }
        zero_run(row + hi, p.Wq - hi);
      }
    }
  }
}

// Output positions (oy * Wo + ox) before padded-width position q: the valid ones (ox < Wo).
int64_t valid_before(const Conv2d& g, const Phases& p, int64_t q) {
  return (q / p.Wq) * g.Wo + std::min(q % p.Wq, g.Wo);
}

// The implicit GEMM's sizes: K = (channel, tap) per group, the tile counts, the K blocks.
struct Plan {
  Phases ph;
  int64_t Cg = 0, Mg = 0, K = 0, P = 0, mslv = 0, Mpad = 0, kc = 0;
  int64_t full = 0;    // channel tiles read from the weight rows in place
  int64_t packed = 0;  // floats: the packed ragged tiles
  // Bands of `band` output rows (nbands per image and group): a parallel item fills the
  // `lrows` phase-plane rows its band reads (lplane per plane, lchan per channel) into its own
  // slot of `planes` floats, then runs the band's sb slivers.
  // Few rows (a 1-D conv, one image): each band's slivers are split into `parts` items, each
  // filling the band's planes itself.
  int64_t band = 0, nbands = 0, sb = 0, lrows = 0, lplane = 0, lchan = 0, planes = 0, slots = 0;
  int64_t parts = 1;
  int mr = 0, nr = 0;
};

// Columns of one K block (the tile reloads its accumulators once per block). Up to 1024 columns
// make one block, so each sliver is finished while its tile is in L1: on a Zen 5 core (1 MB L2)
// 3-5% faster than 256 at 96 channels x 26 x 26, 192 x 13 x 13 and 192 -> 384 stride 2 (thread
// CPU time, 1 thread), the same at 12 -> 24 x 208 x 208 and 48 -> 96 stride 2 (96 to 256 had
// measured within 3% of each other at 128 channels x 40 x 40 on an Intel core).
constexpr int64_t kMaxKc = 1024;
// conv_pointwise's K block: a sliver's input block (kc rows of nr floats) stays in L1 across the
// channel tiles.
constexpr int64_t kPointwiseKc = 128;
// Packed weights (floats) up to which all channel tiles are packed.
constexpr int64_t kPackAll = 32768;
// Slivers (nr positions each) whose output rows a thread finishes before the epilogue runs.
constexpr int64_t kPanelSlivers = 8;
// Phase-plane floats per band (a parallel item), and bands per thread when rows allow.
constexpr int64_t kBandFloats = 196608;
constexpr int64_t kBandsPerThread = 2;
// Parallel items per thread, bands split into parts of their slivers where bands are fewer
// (and output channels x taps at least 256): a thread that starts late (woken from its futex,
// or sharing its core) then holds up a quarter of its share instead of a half (128 channels at
// 40 x 40, 2 threads: 4 bands).
constexpr int64_t kItemsPerThread = 4;

Plan make_plan(const Conv2d& g) {
  const ConvSimdIsa& isa = conv_simd_best();
  Plan l;
  l.mr = isa.mr;
  l.nr = isa.nr;
  l.ph = phases(g);
  l.Cg = g.C / g.G;
  l.Mg = g.M / g.G;
  l.K = l.Cg * g.kh * g.kw;
  l.P = g.Ho * g.Wo;
  l.mslv = ceil_div(l.Mg, l.mr);
  l.Mpad = l.mslv * l.mr;
  const int64_t nkb = std::max<int64_t>(1, ceil_div(l.K, kMaxKc));
  l.kc = ceil_div(l.K, nkb);
  // Whole mr-channel tiles read the weight rows as they lie (no packing pass: at 192 channels
  // x 1728 it cost a fifth of a 13 x 13 conv); a ragged last tile per group is packed with zeros.
  // Small weights are all packed (one k-major stream; 16 x 144 at 160 x 160: 4% faster).
  l.full = l.Mpad * l.K <= kPackAll ? 0 : l.Mg / l.mr;
  l.packed = g.G * (l.mslv - l.full) * l.K * l.mr;
  // Bands of about kBandFloats of planes each (in L2 while its slivers read them: filled and
  // read by the same thread, with no pass over all planes first); at 2+ threads, at least
  // kBandsPerThread items per thread (bands, or parts of one band's slivers).
  const Phases& ph = l.ph;
  const int64_t halo = ceil_div((g.kh - 1) * g.dh, g.sh) + 1 + ceil_div(l.nr, ph.Wq);
  const int64_t row_floats = l.Cg * g.sh * g.sw * ph.Wq;
  int64_t most =
      std::clamp<int64_t>(kBandFloats / std::max<int64_t>(1, row_floats) - halo, 1, g.Ho);
  const int64_t threads = num_threads();
  const int64_t want = threads > 1 ? ceil_div(kBandsPerThread * threads, g.N * g.G) : 1;
  if (want > 1) most = std::min(most, std::max<int64_t>(1, ceil_div(g.Ho, want)));
  // Of the band heights up to `most`, the one that computes the fewest positions per valid one
  // (a band's last sliver is partial) times the threads' imbalance (items / threads rounded up).
  double best = 0;
  for (int64_t b = std::max<int64_t>(1, most / 2); b <= most; ++b) {
    const int64_t items = g.N * g.G * ceil_div(g.Ho, b);
    const double waste = double(ceil_div(b * ph.Wq, l.nr) * l.nr) / double(b * ph.Wq);
    const double cost = waste * double(ceil_div(items, threads) * threads) / double(items);
    if (l.band == 0 || cost <= best) best = cost, l.band = b;
  }
  l.nbands = ceil_div(g.Ho, l.band);
  l.sb = ceil_div(l.band * ph.Wq, l.nr);
  if (threads > 1) {
    // Each part fills its band's planes again: worth it where the band's compute dwarfs that.
    const int64_t per = l.Mpad * g.kh * g.kw >= 256 ? kItemsPerThread : kBandsPerThread;
    l.parts = std::clamp<int64_t>(per * threads / (g.N * g.G * l.nbands), 1, l.sb);
  }
  // A band's last sliver reads up to sb * nr - 1 past a tap's offset within its plane.
  l.lrows =
      ceil_div(((g.kh - 1) * g.dh / g.sh) * ph.Wq + (g.kw - 1) * g.dw / g.sw + l.sb * l.nr, ph.Wq);
  l.lplane = l.lrows * ph.Wq;
  l.lchan = g.sh * g.sw * l.lplane;
  l.slots = parallel_slots(g.N * g.G * l.nbands * l.parts, 1);
  l.planes = l.Cg * l.lchan + 64;
  return l;
}

}  // namespace

bool use_conv_depthwise(const Conv2d& g) { return g.G == g.C && g.M == g.C; }

bool use_conv_implicit(const Conv2d& g, int64_t min_mg) {
  if (g.M / g.G <= min_mg) return false;
  const Plan l = make_plan(g);
  // A 1x1 stride-1 conv is already a GEMM on the input as it lies: the packed GEMM with its
  // tiles written in place is faster there (1.0 ms against 2.6 ms at 32 -> 192 x 80 x 80).
  if (l.ph.direct) return false;
  return l.slots * l.planes + l.packed <= (int64_t{1} << 24);  // 64 MB
}

int64_t conv_implicit_workspace_bytes(const Conv2d& g) {
  const Plan l = make_plan(g);
  return workspace_piece(l.packed, DType::Float32) +
         l.slots * workspace_piece(l.planes, DType::Float32);
}

namespace {

// Channel tiles [full, mslv) of every group into dst: k-major, mr channels per k, zeros past Mg.
void pack_tiles(const Conv2d& g, const Plan& l, int64_t full, const float* w, float* dst) {
  const int64_t npk = l.mslv - full, K = l.K, MR = l.mr;
  parallel_for(g.G * npk, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, K * MR)),
               [&](int64_t i0, int64_t i1) {
                 for (int64_t i = i0; i < i1; ++i) {
                   const int64_t grp = i / npk, ms = full + i % npk;
                   float* d = dst + i * K * MR;
                   for (int64_t r = 0; r < MR; ++r) {
                     const int64_t m = ms * MR + r;
                     const float* src = w + (grp * l.Mg + m) * K;
                     for (int64_t k = 0; k < K; ++k) d[k * MR + r] = m < l.Mg ? src[k] : 0.0f;
                   }
                 }
               });
}

}  // namespace

ConvPackedWeights conv_implicit_pack(const Conv2d& g, const float* w) {
  const Plan l = make_plan(g);
  ConvPackedWeights p;
  p.mr = l.mr;
  p.data.resize(static_cast<size_t>(g.G * l.mslv * l.K * l.mr));
  pack_tiles(g, l, 0, w, p.data.data());
  return p;
}

void conv_implicit(const Conv2d& g, const float* x, const float* w, const float* bias, float* out,
                   const Array& workspace, const FinisherFactory& finisher,
                   const ConvPackedWeights* packed) {
  const ConvSimdIsa& isa = conv_simd_best();
  Plan l = make_plan(g);
  const int64_t MR = l.mr, NR = l.nr, K = l.K, taps = g.kh * g.kw;
  const Phases& ph = l.ph;
  NEF_CHECK(!ph.direct, "conv_implicit: 1x1 stride-1 unpadded convs run the GEMM");
  WorkspaceCarver ws(workspace);
  float* const ap_ws = ws.take({l.packed}, DType::Float32).data_as<float>();
  const float* ap = ap_ws;
  float* const planes =
      ws.take({l.slots * (workspace_piece(l.planes, DType::Float32) / 4)}, DType::Float32)
          .data_as<float>();
  // Every channel tile packed once per plan (no packing pass, one parallel region less per
  // run), or the ragged ones (from l.full on) packed here.
  if (packed && packed->mr == l.mr && int64_t(packed->data.size()) == g.G * l.mslv * K * MR) {
    l.full = 0;
    ap = packed->data.data();
  } else {
    pack_tiles(g, l, l.full, w, ap_ws);
  }
  const int64_t npk = l.mslv - l.full;
  std::vector<int64_t> offs(static_cast<size_t>(K));
  for (int64_t c = 0; c < l.Cg; ++c)
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t y = (t / g.kw) * g.dh, xo = (t % g.kw) * g.dw;
      offs[size_t(c * taps + t)] =
          c * l.lchan + ((y % g.sh) * g.sw + xo % g.sw) * l.lplane + (y / g.sh) * ph.Wq + xo / g.sw;
    }
  const int64_t slot_floats = workspace_piece(l.planes, DType::Float32) / 4;
  const int64_t items = g.N * g.G * l.nbands * l.parts;
  parallel_for_slots(items, 1, [&](int64_t slot, int64_t i0, int64_t i1) {
    // One tile per sliver of the panel: the K blocks run outermost, so that a block of packed
    // weights (Mpad x kc) stays in L2 across the panel's slivers and each sliver's input block
    // in L1 across the channel tiles (192 -> 384 channels at 26 x 26 stride 2: the weights,
    // 2.6 MB, were read once per sliver).
    const int64_t tsize = l.Mpad * NR;
    // Not zeroed: each sliver's tile starts from the bias (fill) before its first K block.
    std::unique_ptr<float[]> tiles(new float[size_t(kPanelSlivers * tsize)]);
    std::unique_ptr<OutputFinisher> fin = finisher ? finisher() : nullptr;
    float* const local = planes + slot * slot_floats;
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t part = it % l.parts, band_item = it / l.parts;
      const int64_t n = band_item / (g.G * l.nbands), grp = (band_item / l.nbands) % g.G;
      const int64_t oy0 = (band_item % l.nbands) * l.band, rows = std::min(l.band, g.Ho - oy0);
      const int64_t Qb = rows * ph.Wq, Sb = ceil_div(Qb, NR);
      const int64_t sa = Sb * part / l.parts, se = Sb * (part + 1) / l.parts;
      if (se <= sa) continue;
      const float* xg = x + (n * g.C + grp * l.Cg) * g.H * g.W;
      for (int64_t c = 0; c < l.Cg; ++c)
        fill_phases(g, ph, xg + c * g.H * g.W, local + c * l.lchan, oy0, l.lrows, l.lplane);
      float* gout = out + (n * g.M + grp * l.Mg) * l.P + oy0 * g.Wo;
      for (int64_t s0 = sa; s0 < se; s0 += kPanelSlivers) {
        const int64_t s1 = std::min(se, s0 + kPanelSlivers);
        // Sliver s accumulates in tile slot t (one slot per sliver, or slot 0 for each in turn).
        auto fill = [&](int64_t t) {
          for (int64_t m = 0; m < l.Mpad; ++m) {
            float* row = tiles.get() + t * tsize + m * NR;
            std::fill(row, row + NR, m < l.Mg && bias ? bias[grp * l.Mg + m] : 0.0f);
          }
        };
        auto block = [&](int64_t s, int64_t t, int64_t k0) {
          const int64_t kc = std::min(l.kc, K - k0);
          const float* wk = w + grp * l.Mg * K + k0;
          for (int64_t ms = 0; ms < l.mslv; ++ms) {
            const bool wrows = ms < l.full;
            const float* a =
                wrows ? wk + ms * MR * K : ap + ((grp * npk + ms - l.full) * K + k0) * MR;
            isa.tile(kc, a, wrows ? K : 0, local + s * NR, offs.data() + k0,
                     tiles.get() + t * tsize + ms * MR * NR, ms == 0 && s + 1 < s1);
          }
        };
        // Scatter the valid columns, one output-row run at a time.
        auto scatter = [&](int64_t s, int64_t t) {
          const int64_t q0 = s * NR, nq = std::min(NR, Qb - q0);
          const float* tile = tiles.get() + t * tsize;
          for (int64_t q = q0; q < q0 + nq;) {
            const int64_t oy = q / ph.Wq, ox = q % ph.Wq;
            const int64_t run = std::min(q0 + nq - q, ph.Wq - ox);
            const int64_t len = std::clamp(g.Wo - ox, int64_t{0}, run);
            if (len > 0) isa.copy_rows(tile + (q - q0), NR, l.Mg, len, gout + oy * g.Wo + ox, l.P);
            q += run;
          }
        };
        if (K <= l.kc) {  // one K block: each sliver finished while its tile is in L1
          for (int64_t s = s0; s < s1; ++s) {
            fill(0);
            block(s, 0, 0);
            scatter(s, 0);
          }
        } else {
          for (int64_t s = s0; s < s1; ++s) fill(s - s0);
          for (int64_t k0 = 0; k0 < K; k0 += l.kc)
            for (int64_t s = s0; s < s1; ++s) block(s, s - s0, k0);
          for (int64_t s = s0; s < s1; ++s) scatter(s, s - s0);
        }
        if (fin) {
          const int64_t pa = valid_before(g, ph, s0 * NR);
          const int64_t pb = valid_before(g, ph, std::min(s1 * NR, Qb));
          if (pb > pa)
            for (int64_t m = 0; m < l.Mg; ++m) fin->apply(gout + m * l.P + pa, pb - pa);
        }
      }
    }
  });
}

bool use_conv_pointwise(const Conv2d& g, int64_t min_mg) {
  // No input channels: no K block would start the tiles from the bias (the GEMM path runs it).
  if (g.M / g.G <= min_mg || g.C == 0 || !phases(g).direct) return false;
  return g.Ho * g.Wo >= 64;  // below: the GEMM's wide tiles (a last sliver is vectors wide)
}

void conv_pointwise(const Conv2d& g, const float* x, const float* w, const float* bias, float* out,
                    const FinisherFactory& finisher, const ConvPackedWeights* packed) {
  const ConvSimdIsa& isa = conv_simd_best();
  const int64_t MR = isa.mr, NR = isa.nr, VL = isa.vl, K = g.C / g.G, Mg = g.M / g.G;
  const int64_t P = g.Ho * g.Wo, mslv = ceil_div(Mg, MR), Mpad = mslv * MR;
  std::vector<float> own;
  const float* ap = nullptr;
  if (packed && packed->mr == MR && int64_t(packed->data.size()) == g.G * mslv * K * MR) {
    ap = packed->data.data();
  } else {
    own = conv_implicit_pack(g, w).data;
    ap = own.data();
  }
  // The bias per channel tile, zeros past each group's channels (the tile starts from it).
  std::vector<float> bpad(static_cast<size_t>(g.G * Mpad), 0.0f);
  for (int64_t grp = 0; grp < g.G; ++grp)
    for (int64_t m = 0; m < Mg; ++m) bpad[size_t(grp * Mpad + m)] = bias ? bias[grp * Mg + m] : 0;
  const int64_t nkb = std::max<int64_t>(1, ceil_div(K, kPointwiseKc)), kc = ceil_div(K, nkb);
  // Panels of up to kPanelSlivers slivers, evened out; with few panels per thread, the channel
  // tiles split too (256 channels at 20 x 20: 9 slivers), so that each thread gets its share.
  const int64_t S = ceil_div(P, NR);
  int64_t nsp = ceil_div(S, kPanelSlivers);
  const int64_t panel = ceil_div(S, nsp);
  nsp = ceil_div(S, panel);
  const int64_t threads = num_threads();
  const int64_t mparts =
      threads > 1 ? std::clamp<int64_t>(ceil_div(2 * threads, g.N * g.G * nsp), 1, mslv) : 1;
  parallel_for(g.N * g.G * nsp * mparts, 1, [&](int64_t i0, int64_t i1) {
    // The last sliver's input columns, zero padded, and tiles that are not whole output tiles
    // (past P, or a group's ragged last channels).
    std::unique_ptr<float[]> bbuf(new float[size_t(K * NR)]);
    std::unique_ptr<float[]> tbuf(new float[size_t(Mpad * NR)]);
    std::unique_ptr<OutputFinisher> fin = finisher ? finisher() : nullptr;
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t mp = it % mparts, sp = (it / mparts) % nsp, ng = it / (mparts * nsp);
      const int64_t n = ng / g.G, grp = ng % g.G;
      const int64_t ms0 = mslv * mp / mparts, ms1 = mslv * (mp + 1) / mparts;
      const int64_t s0 = sp * panel, s1 = std::min(S, s0 + panel);
      if (ms1 <= ms0 || s1 <= s0) continue;
      const float* xg = x + (n * g.C + grp * K) * P;
      float* og = out + (n * g.M + grp * Mg) * P;
      const float* ag = ap + grp * mslv * K * MR;
      for (int64_t s = s0; s < s1; ++s) {
        // A short last sliver: the vectors that cover it (nv of them); read in place when it
        // is whole vectors, else from a zero-padded copy.
        const int64_t q0 = s * NR, nq = std::min(NR, P - q0), nv = ceil_div(nq, VL);
        const bool exact = nq == nv * VL;
        const float* b = xg + q0;
        int64_t ldb = P;
        if (!exact) {
          for (int64_t k = 0; k < K; ++k) {
            float* row = bbuf.get() + k * NR;
            std::memcpy(row, xg + k * P + q0, size_t(nq) * sizeof(float));
            std::fill(row + nq, row + nv * VL, 0.0f);
          }
          b = bbuf.get();
          ldb = NR;
        }
        for (int64_t k0 = 0; k0 < K; k0 += kc) {
          const int64_t kn = std::min(kc, K - k0);
          for (int64_t ms = ms0; ms < ms1; ++ms) {
            const bool whole = exact && (ms + 1) * MR <= Mg;
            float* c = whole ? og + ms * MR * P + q0 : tbuf.get() + ms * MR * NR;
            isa.tile_rows(kn, ag + (ms * K + k0) * MR, b + k0 * ldb, ldb,
                          k0 == 0 ? bpad.data() + grp * Mpad + ms * MR : nullptr, c, whole ? P : NR,
                          int(nv), ms == ms0 && s + 1 < s1);
          }
        }
        for (int64_t ms = ms0; ms < ms1; ++ms)
          if (!exact || (ms + 1) * MR > Mg)
            isa.copy_rows(tbuf.get() + ms * MR * NR, NR, std::min(MR, Mg - ms * MR), nq,
                          og + ms * MR * P + q0, P);
      }
      if (fin) {
        const int64_t qa = s0 * NR, qb = std::min(s1 * NR, P);
        for (int64_t m = ms0 * MR; m < std::min(Mg, ms1 * MR); ++m)
          fin->apply(og + m * P + qa, qb - qa);
      }
    }
  });
}

void conv_depthwise(const Conv2d& g, const float* x, const float* w, const float* bias, float* out,
                    const FinisherFactory& finisher) {
  const ConvSimdIsa& isa = conv_simd_best();
  const int64_t taps = g.kh * g.kw, P = g.Ho * g.Wo;
  const bool s1k3 = g.kw == 3 && g.sw == 1 && g.dw == 1 && g.pl == 1 && g.Wo == g.W;
  const bool s2k3 = g.kw == 3 && g.sw == 2 && g.dw == 1 && g.pl == 1;
  if ((s1k3 || s2k3) && g.kh <= 8) {
    // MobileNet's depthwise convs (3 wide, pad 1, stride 1 or 2): output rows straight from the
    // input rows (dw_s1k3, dw_s2k3), no phase planes: filling them read and wrote as much
    // memory as the conv itself.
    const double work = 2.0 * double(taps) * double(P) + double(g.H * g.W) + 1;
    const int64_t grain = std::max<int64_t>(1, int64_t(65536 / work));
    parallel_for(g.N * g.C, grain, [&](int64_t i0, int64_t i1) {
      std::unique_ptr<OutputFinisher> fin = finisher ? finisher() : nullptr;
      const float* rows[8];
      for (int64_t it = i0; it < i1; ++it) {
        const int64_t c = it % g.C;
        const float* xin = x + it * g.H * g.W;
        float* dst = out + it * P;
        for (int64_t oy = 0; oy < g.Ho; ++oy) {
          for (int64_t r = 0; r < g.kh; ++r) {
            const int64_t iy = oy * g.sh - g.pt + r * g.dh;
            rows[r] = iy >= 0 && iy < g.H ? xin + iy * g.W : nullptr;
          }
          const float b = bias ? bias[c] : 0.0f;
          if (s1k3) isa.dw_s1k3(rows, g.kh, w + c * taps, g.W, b, dst + oy * g.Wo);
          else isa.dw_s2k3(rows, g.kh, w + c * taps, g.W, b, dst + oy * g.Wo, g.Wo);
        }
        if (fin) fin->apply(dst, P);
      }
    });
    return;
  }
  const Phases ph = phases(g);
  std::vector<int64_t> offs(static_cast<size_t>(taps));
  int64_t reach = ph.chan;  // the plane buffer, with slack for the last row's vector overrun
  for (int64_t t = 0; t < taps; ++t) {
    offs[size_t(t)] = tap_offset(g, ph, t / g.kw, t % g.kw);
    reach = std::max(reach, offs[size_t(t)] + (g.Ho - 1) * ph.Wq + g.Wo + 64);
  }
  const double work = 2.0 * double(taps) * double(P) + double(ph.chan) + 1;
  const int64_t grain = std::max<int64_t>(1, int64_t(65536 / work));
  parallel_for(g.N * g.C, grain, [&](int64_t i0, int64_t i1) {
    std::vector<float> buf(static_cast<size_t>(reach), 0.0f);
    std::unique_ptr<OutputFinisher> fin = finisher ? finisher() : nullptr;
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t c = it % g.C;
      // A 1x1 depthwise conv's plane is the input itself, copied all the same for the slack.
      if (ph.direct) std::memcpy(buf.data(), x + it * g.H * g.W, size_t(g.H * g.W) * sizeof(float));
      else fill_phases(g, ph, x + it * g.H * g.W, buf.data(), 0, ph.rows, ph.plane);
      float* dst = out + it * P;
      isa.dw(buf.data(), ph.Wq, offs.data(), w + c * taps, taps, bias ? bias[c] : 0.0f, dst, g.Wo,
             g.Ho, g.Wo);
      if (fin) fin->apply(dst, P);
    }
  });
}

}  // namespace nef::backend::cpu
