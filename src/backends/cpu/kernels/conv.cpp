// CPU conv and conv_transpose (ONNX semantics, channels-first, 1 to 3 spatial dims; 1-D and 2-D
// run as 3-D with leading extent-1 dims).
// conv: float32 1-D/2-D convs run conv_implicit.h's kernels (no column buffer: an implicit GEMM
// over zero-padded phase planes of the input, a direct depthwise loop, and for 1x1 stride-1
// convs register tiles over the input as it lies, written into the output in place), except
// batches of tiny images (the wide GEMM) and 1x1 convs of under 64 positions. The rest: im2col
// into a column buffer of bounded size (chunked over images, then over output positions), then
// the blocked GEMM of matmul.cpp with the weight as A, one matrix per (image, group); the bias
// is added on each finished tile while it is in cache. 1x1 convs skip im2col.
// Few output channels per group (depthwise, or up to 4 in a conv that is not a 1x1 stride-1 one:
// those run conv_pointwise with a zero-padded channel tile) would make the GEMM mostly padding:
// a direct loop, vectorized along the output row, runs those instead; float32 convs with unit
// width stride and 8 to 32 channels per group that conv_implicit does not take run conv_rows, a
// register-tiled direct conv over padded rows.
// conv_transpose: GEMM weight^T @ x into columns, then col2im scatter-adds them into the output.
// Half types compute in float32 and round once on store. conv_epilogue (float32/float64) runs
// its fused program on each finished output row segment right after the bias (GEMM paths), on
// each finished panel (conv_implicit), or over the output in blocks after the direct loops.
#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/conv_implicit.h"
#include "backends/cpu/kernels/fused_exec.h"
#include "backends/cpu/kernels/gemm.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "common/dispatch.h"
#include "common/simd.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// Elements of one column buffer (16 MB of float32): large images are chunked to stay below it.
constexpr int64_t kColBudget = int64_t{1} << 22;
// At most this many output channels per group run the direct loop instead of im2col + GEMM.
constexpr int64_t kDirectMaxChannels = 4;
// Below this many output positions per image, a batch's images share one GEMM (GemmLayout).
constexpr int64_t kWidePositions = 64;

// Geometry padded to 3 spatial dims. im2col maps column position q and kernel tap k to image
// index q*s - pb + k*d: the image is x for conv and the output for conv_transpose; the column
// positions are the output for conv and x for conv_transpose.
struct Geom {
  int64_t N = 0, C = 0, M = 0, G = 1, Cg = 0, Mg = 0;  // C: x channels, M: output channels
  int64_t im[3] = {1, 1, 1}, cp[3] = {1, 1, 1}, k[3] = {1, 1, 1};
  int64_t s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
  int64_t im_size = 1, cp_size = 1, k_size = 1;
};

Geom make_geom(const Shape& xs, const Shape& ws, const Shape& os, const ir::Attrs& attrs,
               bool transpose) {
  Geom g;
  const int nsp = int(xs.size()) - 2, lead = 3 - nsp;
  g.N = xs[0];
  g.C = xs[1];
  g.M = os[1];
  g.G = attrs.get_int("groups");
  g.Cg = g.C / g.G;
  g.Mg = g.M / g.G;
  const auto& strides = attrs.get_ints("strides");
  const auto& pads = attrs.get_ints("pads");
  const auto& dilations = attrs.get_ints("dilations");
  for (int i = 0; i < nsp; ++i) {
    const int j = lead + i;
    g.k[j] = ws[2 + i];
    g.s[j] = strides[i];
    g.d[j] = dilations[i];
    g.pb[j] = pads[i];
    g.im[j] = (transpose ? os : xs)[2 + i];
    g.cp[j] = (transpose ? xs : os)[2 + i];
  }
  for (int j = 0; j < 3; ++j) {
    g.im_size *= g.im[j];
    g.cp_size *= g.cp[j];
    g.k_size *= g.k[j];
  }
  return g;
}

// One kernel tap: image index offset per dim (k*d - pb) and the column positions [lo, hi) per
// dim whose image index q*s + off falls inside the image.
struct Tap {
  int64_t off[3], lo[3], hi[3];
};

std::vector<Tap> make_taps(const Geom& g) {
  std::vector<Tap> taps(g.k_size);
  for (int64_t t = 0; t < g.k_size; ++t) {
    const int64_t kk[3] = {t / (g.k[1] * g.k[2]), (t / g.k[2]) % g.k[1], t % g.k[2]};
    Tap& tp = taps[t];
    for (int j = 0; j < 3; ++j) {
      const int64_t off = kk[j] * g.d[j] - g.pb[j];
      int64_t lo = off >= 0 ? 0 : (-off + g.s[j] - 1) / g.s[j];
      int64_t hi = g.im[j] - 1 - off < 0 ? 0 : (g.im[j] - 1 - off) / g.s[j] + 1;
      lo = std::min(lo, g.cp[j]);
      tp.off[j] = off;
      tp.lo[j] = lo;
      tp.hi[j] = std::clamp(hi, lo, g.cp[j]);
    }
  }
  return taps;
}

// Walks column positions [p0, p1) row by row (a row = the last spatial dim). For each run it
// calls run(n, a, b, base, dst_off): positions [0, n) of the run, of which [a, b) are inside the
// image; image element of position q is base + q*s[2] (base < 0 when the row is outside).
template <typename Fn>
void for_each_run(const Geom& g, const Tap& tp, int64_t p0, int64_t p1, Fn&& run) {
  const int64_t W = g.cp[2], HW = g.cp[1] * g.cp[2];
  int64_t p = p0;
  while (p < p1) {
    const int64_t oz = p / HW, oy = (p / W) % g.cp[1], ox = p % W;
    const int64_t n = std::min(p1 - p, W - ox);
    const bool inside = oz >= tp.lo[0] && oz < tp.hi[0] && oy >= tp.lo[1] && oy < tp.hi[1];
    if (!inside) {
      run(n, n, n, int64_t(-1), p - p0);
    } else {
      const int64_t iz = oz * g.s[0] + tp.off[0], iy = oy * g.s[1] + tp.off[1];
      const int64_t a = std::clamp(tp.lo[2], ox, ox + n), b = std::clamp(tp.hi[2], a, ox + n);
      // base: image index of position q = ox + i is base + i*s
      const int64_t base = (iz * g.im[1] + iy) * g.im[2] + ox * g.s[2] + tp.off[2];
      run(n, a - ox, b - ox, base, p - p0);
    }
    p += n;
  }
}

// Column row for one image plane and one tap: dst[q - p0] = plane[image index of q] or 0.
template <typename S, typename C>
void im2col_row(const Geom& g, const Tap& tp, const S* plane, int64_t p0, int64_t p1, C* dst) {
  const int64_t s = g.s[2];
  for_each_run(g, tp, p0, p1, [&](int64_t n, int64_t a, int64_t b, int64_t base, int64_t o) {
    C* d = dst + o;
    std::fill(d, d + a, C(0));
    if (s == 1) {
      const S* src = plane + (base + a);
      for (int64_t i = 0; i < b - a; ++i) d[a + i] = C(load_as(src[i]));
    } else {
      for (int64_t i = a; i < b; ++i) d[i] = C(load_as(plane[base + i * s]));
    }
    std::fill(d + b, d + n, C(0));
  });
}

// The transpose: plane[image index of q] += src[q - p0] for positions inside the image.
template <typename C>
void col2im_row(const Geom& g, const Tap& tp, const C* src, int64_t p0, int64_t p1, C* plane) {
  const int64_t s = g.s[2];
  for_each_run(g, tp, p0, p1, [&](int64_t, int64_t a, int64_t b, int64_t base, int64_t o) {
    const C* c = src + o;
    if (s == 1) {
      C* dst = plane + (base + a);
      for (int64_t i = 0; i < b - a; ++i) dst[i] += c[a + i];
    } else {
      for (int64_t i = a; i < b; ++i) plane[base + i * s] += c[i];
    }
  });
}

// A contiguous copy of `a` in the compute type C (float32 or float64).
template <typename C>
Array as_compute(const Array& a) {
  const DType ct = std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
  Array src = a.contiguous();
  if (a.dtype == ct) return src;
  Array dst = Array::empty(a.shape, ct);
  const int64_t n = a.numel();
  dispatch_dtype(a.dtype, [&]<typename S>() {
    const S* p = src.data_as<S>();
    C* q = dst.data_as<C>();
    for (int64_t i = 0; i < n; ++i) q[i] = C(load_as(p[i]));
  });
  return dst;
}

template <typename C>
std::vector<C> bias_values(const KernelArgs& args, int64_t m) {
  std::vector<C> b(m, C(0));
  if (args.inputs.size() < 3) return b;
  Array c = as_compute<C>(args.inputs[2]);
  std::copy(c.data_as<C>(), c.data_as<C>() + m, b.begin());
  return b;
}

// A view of `base` (any contiguous buffer) at element `offset` with the given shape/strides.
Array view(const Array& base, int64_t offset, Shape shape, Strides strides) {
  Array v = base;
  v.offset = base.offset + offset;
  v.shape = std::move(shape);
  v.strides = std::move(strides);
  return v;
}

// Images per chunk and positions per chunk, so that the scratch buffers stay within the budget:
// `whole` elements per column position when whole images fit, `chunked` when positions are
// chunked (then an output scratch is needed too).
void chunking(const Geom& g, int64_t positions, int64_t whole, int64_t chunked, int64_t& nimg,
              int64_t& pc) {
  const int64_t per_image = std::max<int64_t>(1, whole * positions);
  if (per_image <= kColBudget) {
    nimg = std::clamp<int64_t>(kColBudget / per_image, 1, std::max<int64_t>(g.N, 1));
    pc = positions;
  } else {
    // Multiples of 64 positions keep the GEMM's column slivers full.
    nimg = 1;
    pc = std::max<int64_t>(64, kColBudget / std::max<int64_t>(1, chunked) / 64 * 64);
    pc = std::min(pc, positions);
  }
}

// conv_epilogue's program over finished output values, in place: input 0 is the conv result,
// inputs 1.. single values (read once per run). A Scratch holds one caller's block buffers.
class RowEpilogue {
 public:
  RowEpilogue(const ir::FusedProgram& prog) : nin_(prog.num_inputs) {
    code_ = fused::lower_program(prog, &num_slots_);
  }

  template <typename C>
  class Scratch {
   public:
    Scratch(const RowEpilogue& e, const std::vector<C>& scalars)
        : e_(e),
          mem_(hwy::AllocateAligned<C>(size_t(e.num_slots_ + e.nin_ + 1) * fused::kBlock)),
          slots_(size_t(e.num_slots_) + 1),
          in_(size_t(e.nin_)) {
      for (int s = 0; s < e.num_slots_; ++s) slots_[size_t(s)] = buf(s);
      for (int k = 1; k < e.nin_; ++k) {
        std::fill(buf(e.num_slots_ + k), buf(e.num_slots_ + k) + fused::kBlock,
                  scalars[size_t(k - 1)]);
        in_[size_t(k)] = buf(e.num_slots_ + k);
      }
    }
    // data[0, n) = program(data[0, n)).
    void apply(C* data, int64_t n) {
      for (int64_t pos = 0; pos < n; pos += fused::kBlock) {
        const int64_t len = std::min(fused::kBlock, n - pos);
        const int64_t padded = (len + fused::kPad - 1) / fused::kPad * fused::kPad;
        C* p = data + pos;
        if (len == padded) {
          in_[0] = p;
          fused::exec(e_.code_.data(), e_.code_.size(), in_.data(), slots_.data(), p, size_t(len));
          continue;
        }
        C* tail = buf(e_.num_slots_);  // input 0's block: the tail, zero padded
        std::copy(p, p + len, tail);
        std::fill(tail + len, tail + padded, C(0));
        in_[0] = tail;
        C* res = buf(e_.num_slots_ + e_.nin_);
        fused::exec(e_.code_.data(), e_.code_.size(), in_.data(), slots_.data(), res,
                    size_t(padded));
        std::copy(res, res + len, p);
      }
    }

   private:
    C* buf(int i) { return mem_.get() + size_t(i) * fused::kBlock; }
    const RowEpilogue& e_;
    hwy::AlignedFreeUniquePtr<C[]> mem_;
    std::vector<C*> slots_;
    std::vector<const C*> in_;
  };

  // The extra operands' values (inputs 3.. of the node), converted.
  template <typename C>
  std::vector<C> scalars(const KernelArgs& args) const {
    std::vector<C> v;
    for (size_t k = 3; k < args.inputs.size(); ++k) {
      const Array& a = args.inputs[k];
      v.push_back(dispatch_dtype(a.dtype, [&]<typename T>() -> C {
        return static_cast<C>(load_as(*static_cast<const T*>(a.data())));
      }));
    }
    return v;
  }

 private:
  int nin_ = 1, num_slots_ = 0;
  std::vector<fused::ExecInstr> code_;
};

// The epilogue over a whole output (after the direct loops), in blocks of rows per thread.
template <typename C>
void apply_epilogue(const RowEpilogue& e, const std::vector<C>& scalars, C* data, int64_t n) {
  parallel_for(n, 65536, [&](int64_t i0, int64_t i1) {
    RowEpilogue::Scratch<C> s(e, scalars);
    s.apply(data + i0, i1 - i0);
  });
}

// The 2-D view of g for conv_implicit.h (a 1-D conv has height 1), when g is 2-D.
std::optional<Conv2d> conv2d_of(const Geom& g) {
  if (g.k[0] != 1 || g.im[0] != 1 || g.cp[0] != 1) return std::nullopt;
  Conv2d c;
  c.N = g.N, c.C = g.C, c.M = g.M, c.G = g.G, c.H = g.im[1], c.W = g.im[2];
  c.Ho = g.cp[1], c.Wo = g.cp[2], c.kh = g.k[1], c.kw = g.k[2];
  c.sh = g.s[1], c.sw = g.s[2], c.dh = g.d[1], c.dw = g.d[2], c.pt = g.pb[1], c.pl = g.pb[2];
  return c;
}

// Which float32 conv_implicit.h kernel runs g: 0 none, 1 conv_depthwise, 2 conv_implicit, 3
// conv_pointwise. Batches
// of tiny images stay on the wide GEMM (one nr-position tile per image would be mostly padding).
int implicit_choice(const Geom& g) {
  const std::optional<Conv2d> c = conv2d_of(g);
  if (!c) return 0;
  if (use_conv_depthwise(*c)) return 1;
  if (g.G == 1 && g.N > 1 && g.cp_size < kWidePositions) return 0;
  // 1x1 convs of any channel count: a register tile with its channels zero padded still beats
  // the direct loop's pass over the input per output channel (YOLOX's heads, 96 -> 4 channels
  // at 52 x 52: 0.19 -> 0.05 ms).
  if (use_conv_pointwise(*c, 0)) return 3;
  return use_conv_implicit(*c, kDirectMaxChannels) ? 2 : 0;
}

// A plan's constant weight packed once for conv_implicit (Kernel::prepare), with the address it
// was packed from: a run whose weight is another array packs per call as without it.
struct ConvPrepared final : backend::Prepared {
  const void* src = nullptr;
  ConvPackedWeights w;
};

// conv_epilogue's program as conv_implicit.h's finisher.
class EpilogueFinisher final : public OutputFinisher {
 public:
  EpilogueFinisher(const RowEpilogue& e, const std::vector<float>& scalars) : s_(e, scalars) {}
  void apply(float* data, int64_t n) override { s_.apply(data, n); }

 private:
  RowEpilogue::Scratch<float> s_;
};

// ---- conv -----------------------------------------------------------------------------------

// dst[i] += w * src[i]: the direct loop's inner row, compiled per ISA.
template <typename T, typename C>
NEF_SIMD_CLONES void axpy_row(C* __restrict dst, const T* __restrict src, int64_t n, C w) {
  for (int64_t i = 0; i < n; ++i) dst[i] += w * C(load_as(src[i]));
}

// out[n, m, q] = bias[m] + sum over c, taps of w[m, c, tap] * x[n, group(m)*Cg + c, image(q, tap)].
// Items are (image, output channel, block of output rows); taps run over a row at a time.
template <typename T, typename C>
void conv_direct(const Geom& g, const T* X, const C* W, const std::vector<C>& bias, T* O) {
  const std::vector<Tap> taps = make_taps(g);
  const int64_t rows = g.cp[0] * g.cp[1], width = g.cp[2];
  const int64_t block = std::clamp<int64_t>(4096 / std::max<int64_t>(1, width), 1, rows);
  const int64_t nblocks = (rows + block - 1) / block;
  const int64_t items = g.N * g.M * nblocks;
  const double work = double(g.Cg) * double(g.k_size) * double(block * width) + 1;
  const int64_t grain = std::max<int64_t>(1, int64_t(65536 / work));
  parallel_for(items, grain, [&](int64_t i0, int64_t i1) {
    std::vector<C> acc(block * width);
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t n = it / (g.M * nblocks), m = (it / nblocks) % g.M, blk = it % nblocks;
      const int64_t r0 = blk * block, r1 = std::min(rows, r0 + block);
      const int64_t p0 = r0 * width, p1 = r1 * width;
      std::fill(acc.begin(), acc.begin() + (p1 - p0), bias[m]);
      const int64_t grp = m / g.Mg;
      for (int64_t c = 0; c < g.Cg; ++c) {
        const T* plane = X + (n * g.C + grp * g.Cg + c) * g.im_size;
        const C* wm = W + (m * g.Cg + c) * g.k_size;
        for (int64_t t = 0; t < g.k_size; ++t) {
          const C wv = wm[t];
          const int64_t s = g.s[2];
          for_each_run(g, taps[t], p0, p1,
                       [&](int64_t, int64_t a, int64_t b, int64_t base, int64_t o) {
                         if (s == 1) {
                           axpy_row(acc.data() + o + a, plane + (base + a), b - a, wv);
                         } else {
                           C* dst = acc.data() + o;
                           for (int64_t i = a; i < b; ++i)
                             dst[i] += wv * C(load_as(plane[base + i * s]));
                         }
                       });
        }
      }
      T* dst = O + (n * g.M + m) * g.cp_size + p0;
      for (int64_t i = 0; i < p1 - p0; ++i) dst[i] = store_as<T>(acc[i]);
    }
  });
}

// ---- row-blocked direct conv (float32, unit width stride) ---------------------------------------
// An implicit GEMM without the column buffer: for one output row, the input rows each tap reads
// are copied once into zero-padded row buffers, and a register tile of MB output channels x kVW
// output columns accumulates over k = (channel, tap) with one weight broadcast and one input
// vector per k, so the input row segment is loaded once for MB channels. Small channel counts
// (a 16-channel 3x3 conv, depthwise) waste most of a GEMM tile and stream im2col columns twice
// through memory; here everything stays in L1.
constexpr int kVW = 32;  // output columns per register tile (2 AVX-512 vectors)

template <int MB>
[[gnu::always_inline]] inline void row_tile(int64_t K, const float* __restrict w,
                                            const float* const* __restrict rows, int64_t j,
                                            const float* __restrict bias, float* __restrict out,
                                            int64_t ldo, int64_t mb, int64_t nv) {
  float acc[MB][kVW];
#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i)
    for (int v = 0; v < kVW; ++v) acc[i][v] = bias[i];
  for (int64_t k = 0; k < K; ++k) {
    const float* x = rows[k] + j;
    const float* wk = w + k * MB;
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i) {
      const float wi = wk[i];
      for (int v = 0; v < kVW; ++v) acc[i][v] += wi * x[v];
    }
  }
  if (mb == MB && nv == kVW) {
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i)
      for (int v = 0; v < kVW; ++v) out[i * ldo + j + v] = acc[i][v];
  } else {
    alignas(64) float tile[MB * kVW];
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i)
      for (int v = 0; v < kVW; ++v) tile[i * kVW + v] = acc[i][v];
    for (int64_t i = 0; i < mb; ++i)
      for (int64_t v = 0; v < nv; ++v) out[i * ldo + j + v] = tile[i * kVW + v];
  }
}

// One output row of MB (or fewer: mb) channels, all column tiles. Compiled per ISA.
template <int MB>
NEF_SIMD_CLONES void conv_row(int64_t K, const float* w, const float* const* rows, int64_t width,
                              const float* bias, float* out, int64_t ldo, int64_t mb) {
  for (int64_t j = 0; j < width; j += kVW)
    row_tile<MB>(K, w, rows, j, bias, out, ldo, mb, std::min<int64_t>(kVW, width - j));
}

// Whether conv_rows runs this conv: float32, 1-D/2-D, unit width stride, few enough input taps
// per output row that its row buffers stay small, and 8 to 32 output channels per group (beyond
// 32 the GEMM's bigger tiles win; below 8 the tile would mostly compute padding, and the axpy
// loop of conv_direct runs depthwise convs: 1.1 ms against 3.5 ms at 96 x 80 x 80).
bool use_conv_rows(const Geom& g) {
  if (g.k[0] != 1 || g.im[0] != 1 || g.s[2] != 1) return false;
  const int64_t padded = g.cp[2] + (g.k[2] - 1) * g.d[2] + kVW;
  return g.Mg >= 8 && g.Mg <= 32 && g.Cg * g.k[1] * padded <= (int64_t{1} << 16);
}

void conv_rows(const Geom& g, const float* X, const float* W, const std::vector<float>& bias,
               float* O) {
  constexpr int MB = 8;
  const int64_t kh = g.k[1], kw = g.k[2], width = g.cp[2], height = g.cp[1];
  const int64_t K = g.Cg * kh * kw;
  const int64_t padded = width + (kw - 1) * g.d[2] + kVW;
  const int64_t mblocks = (g.Mg + MB - 1) / MB;
  // Weights packed per (group, channel block): k-major, MB channels per k, zeros past Mg.
  std::vector<float> wp(size_t(g.G * mblocks * K * MB), 0.0f);
  std::vector<float> bp(size_t(g.G * mblocks * MB), 0.0f);
  for (int64_t grp = 0; grp < g.G; ++grp)
    for (int64_t mbk = 0; mbk < mblocks; ++mbk)
      for (int64_t i = 0; i < MB && mbk * MB + i < g.Mg; ++i) {
        const int64_t m = grp * g.Mg + mbk * MB + i;
        float* dst = wp.data() + (grp * mblocks + mbk) * K * MB;
        for (int64_t k = 0; k < K; ++k) dst[k * MB + i] = W[m * K + k];
        bp[size_t((grp * mblocks + mbk) * MB + i)] = bias[size_t(m)];
      }
  const int64_t items = g.N * g.G * height;
  const double work = 2.0 * double(K) * double(g.Mg) * double(width) + 1;
  const int64_t grain = std::max<int64_t>(1, int64_t(2e5 / work));
  parallel_for(items, grain, [&](int64_t i0, int64_t i1) {
    // Row buffers: (channel, kernel row) -> the input row, zero-padded; one zero row for rows
    // outside the image. Pointers per k = (channel, kernel row, kernel column).
    std::vector<float> buf(size_t(g.Cg * kh * padded + padded), 0.0f);
    const float* zero = buf.data() + g.Cg * kh * padded;
    std::vector<const float*> rows(static_cast<size_t>(K));
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t n = it / (g.G * height), grp = (it / height) % g.G, oy = it % height;
      for (int64_t c = 0; c < g.Cg; ++c) {
        const float* plane = X + (n * g.C + grp * g.Cg + c) * g.im_size;
        for (int64_t ky = 0; ky < kh; ++ky) {
          const int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
          float* row = buf.data() + (c * kh + ky) * padded;
          const float* src = zero;
          if (iy >= 0 && iy < g.im[1]) {
            // Padded index q holds input column q - pb; columns outside the image are zero.
            const float* in = plane + iy * g.im[2];
            for (int64_t q = 0; q < padded; ++q) {
              const int64_t ix = q - g.pb[2];
              row[q] = ix >= 0 && ix < g.im[2] ? in[ix] : 0.0f;
            }
            src = row;
          }
          for (int64_t kx = 0; kx < kw; ++kx)
            rows[size_t((c * kh + ky) * kw + kx)] = src + kx * g.d[2];
        }
      }
      for (int64_t mbk = 0; mbk < mblocks; ++mbk) {
        const int64_t m0 = grp * g.Mg + mbk * MB, mb = std::min<int64_t>(MB, g.Mg - mbk * MB);
        const float* w = wp.data() + (grp * mblocks + mbk) * K * MB;
        const float* b = bp.data() + (grp * mblocks + mbk) * MB;
        float* out = O + (n * g.M + m0) * g.cp_size + oy * width;
        conv_row<MB>(K, w, rows.data(), width, b, out, g.cp_size, mb);
      }
    }
  });
}

// im2col + GEMM: for each (image, group), out[Mg, P] = w_group[Mg, K] @ col[K, P] with
// K = Cg * taps. Each GEMM call takes a chunk of images (batched, all groups) and positions.
// How conv_gemm chunks its work, and the scratch that needs (elements of C): the kernel's
// workspace is sized from this at compile time and carved the same way at run time.
struct GemmLayout {
  int64_t nimg = 0, pc = 0;
  // wide: few positions per image (a batch of short 1-D signals, late CNN stages): the images
  // of a chunk are columns of one GEMM, col [K, nimg * P], rather than nimg GEMMs of P columns
  // (Silero VAD's 62 x 4-position convs: N = 4 wastes most of every GEMM tile).
  bool pointwise = false, direct_out = false, wide = false;
  int64_t col = 0, scratch = 0;  // elements of C
  int64_t gemm = 0;              // bytes: the GEMM's packing panels
  // rsplit > 1: a pointwise conv's output rows split into rsplit parts, one single-threaded GEMM
  // each (own packed input, gemm_slot bytes of scratch per thread): the threaded GEMM's
  // per-panel handoffs cost more than packing the input twice (32 -> 192 channels at 80 x 80).
  int64_t rsplit = 1, gemm_slot = 0;
};

template <typename T, typename C>
GemmLayout conv_gemm_layout(const Geom& g) {
  const int64_t K = g.Cg * g.k_size, P = g.cp_size;
  GemmLayout l;
  l.pointwise = std::is_same_v<T, C>;
  for (int j = 0; j < 3; ++j)
    l.pointwise = l.pointwise && g.k[j] == 1 && g.s[j] == 1 && g.pb[j] == 0 && g.im[j] == g.cp[j];
  l.nimg = g.N;
  l.pc = P;
  l.wide = g.G == 1 && g.N > 1 && P < kWidePositions;
  if (l.wide) {
    chunking(g, P, K, K, l.nimg, l.pc);
    l.pc = P;  // whole images: P * K is far below the budget
    l.pointwise = false;
    l.col = l.nimg * K * P;
    l.scratch = l.nimg * g.M * P;
    const DType ct = std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
    l.gemm = matmul_scratch_bytes({g.M, K}, {K, l.nimg * P}, ct);
    return l;
  }
  // Half types need an output scratch (in C) even when whole images fit.
  if (!l.pointwise)
    chunking(g, P, std::is_same_v<T, C> ? g.G * K : std::max(g.G * K, g.M), std::max(g.G * K, g.M),
             l.nimg, l.pc);
  l.direct_out = std::is_same_v<T, C> && l.pc == P;
  l.col = l.pointwise ? 0 : l.nimg * g.G * K * l.pc;
  l.scratch = l.direct_out ? 0 : l.nimg * g.M * l.pc;
  const DType ct = std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
  if (l.pointwise && l.direct_out && num_threads() > 1 && g.Mg >= 16) {
    l.rsplit = std::min<int64_t>(num_threads(), g.Mg / 8);
    const int64_t rows = (g.Mg + l.rsplit - 1) / l.rsplit;
    l.gemm_slot = matmul_scratch_bytes({rows, K}, {K, P}, ct, false);
    l.gemm = num_threads() * l.gemm_slot;
    return l;
  }
  l.gemm = matmul_scratch_bytes({l.nimg, g.G, g.Mg, K}, {l.nimg, g.G, K, l.pc}, ct);
  return l;
}

// The wide layout: col[(c, tap), (image, position)] for a chunk of images, one GEMM
// out[M, nimg * P] = w[M, K] @ col, then each tile scattered to its images with the bias.
template <typename T, typename C>
void conv_gemm_wide(const Geom& g, const GemmLayout& l, const Array& x, const Array& wc,
                    const std::vector<C>& bias, Array& out, const Array& workspace,
                    const RowEpilogue* epi, const std::vector<C>& scalars) {
  const int64_t K = g.Cg * g.k_size, P = g.cp_size;
  const DType ct = wc.dtype;
  WorkspaceCarver ws(workspace);
  Array col = ws.take({l.col}, ct), scratch = ws.take({l.scratch}, ct);
  const Array gemm_scratch = ws.take({l.gemm}, DType::UInt8);
  const std::vector<Tap> taps = make_taps(g);
  const T* X = x.data_as<T>();
  T* O = out.data_as<T>();
  for (int64_t n0 = 0; n0 < g.N; n0 += l.nimg) {
    const int64_t ni = std::min(l.nimg, g.N - n0), width = ni * P;
    C* cb = col.data_as<C>();
    const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, P * g.k_size));
    parallel_for(ni * g.C, grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {  // one (image, channel) plane: k_size column rows
        const int64_t img = i / g.C, c = i % g.C;
        const T* plane = X + ((n0 + img) * g.C + c) * g.im_size;
        for (int64_t t = 0; t < g.k_size; ++t)
          im2col_row(g, taps[size_t(t)], plane, 0, P, cb + (c * g.k_size + t) * width + img * P);
      }
    });
    Array b = view(col, 0, {K, width}, {width, 1});
    Array o = view(scratch, 0, {g.M, width}, {width, 1});
    C* const src_base = o.data_as<C>();
    GemmTileHook hook = [&](int64_t off, int64_t rows, int64_t cols, int64_t ld) {
      const int64_t r0 = off / width, c0 = off % width;
      std::optional<RowEpilogue::Scratch<C>> es;
      if (epi) es.emplace(*epi, scalars);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t m = r0 + r;
        const C bm = bias[size_t(m)];
        C* src = src_base + off + r * ld;  // the GEMM's scratch: finished in place, then scattered
        for (int64_t j = 0; j < cols; ++j) src[j] += bm;
        if (es) es->apply(src, cols);
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t q = c0 + j, img = q / P, pos = q % P;
          O[((n0 + img) * g.M + m) * P + pos] = store_as<T>(src[j]);
        }
      }
    };
    matmul_float_with_hook(view(wc, 0, {g.M, K}, {K, 1}), b, o, hook, gemm_scratch);
  }
}

// The rsplit layout: each (image, group, row part) a single-threaded GEMM straight into the
// output rows, the bias and epilogue on each finished tile.
template <typename T, typename C>
void conv_pointwise_split(const Geom& g, const GemmLayout& l, const Array& x, const Array& wc,
                          const std::vector<C>& bias, Array& out, const Array& workspace,
                          const RowEpilogue* epi, const std::vector<C>& scalars) {
  const int64_t K = g.Cg, P = g.cp_size, rows = (g.Mg + l.rsplit - 1) / l.rsplit;
  WorkspaceCarver ws(workspace);
  const Array gemm_scratch = ws.take({l.gemm}, DType::UInt8);
  C* const O = out.data_as<C>();
  parallel_for_slots(g.N * g.G * l.rsplit, 1, [&](int64_t slot, int64_t i0, int64_t i1) {
    Array scratch = view(gemm_scratch, slot * l.gemm_slot, {l.gemm_slot}, {1});
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / (g.G * l.rsplit), grp = (i / l.rsplit) % g.G, part = i % l.rsplit;
      const int64_t r0 = part * rows, r1 = std::min(g.Mg, r0 + rows);
      if (r1 <= r0) continue;
      const int64_t m0 = grp * g.Mg + r0;
      Array a = view(wc, m0 * K, {r1 - r0, K}, {K, 1});
      Array b = view(x, (n * g.C + grp * g.Cg) * P, {K, P}, {P, 1});
      Array o = view(out, (n * g.M + m0) * P, {r1 - r0, P}, {P, 1});
      std::optional<RowEpilogue::Scratch<C>> es;
      if (epi) es.emplace(*epi, scalars);
      GemmTileHook hook = [&](int64_t off, int64_t nr, int64_t cols, int64_t ld) {
        for (int64_t r = 0; r < nr; ++r) {
          C* dst = O + (n * g.M + m0) * P + off + r * ld;
          const C bm = bias[size_t(m0 + off / P + r)];
          for (int64_t j = 0; j < cols; ++j) dst[j] += bm;
          if (es) es->apply(dst, cols);
        }
      };
      matmul_float_with_hook(a, b, o, hook, scratch, false);
    }
  });
}

template <typename T, typename C>
void conv_gemm(const Geom& g, const Array& x, const Array& wc, const std::vector<C>& bias,
               bool has_bias, Array& out, const Array& workspace, const RowEpilogue* epi,
               const std::vector<C>& scalars) {
  const int64_t K = g.Cg * g.k_size, P = g.cp_size;
  const GemmLayout l = conv_gemm_layout<T, C>(g);
  if (l.wide) return conv_gemm_wide<T, C>(g, l, x, wc, bias, out, workspace, epi, scalars);
  if (l.rsplit > 1)
    return conv_pointwise_split<T, C>(g, l, x, wc, bias, out, workspace, epi, scalars);
  const int64_t nimg = l.nimg, pc = l.pc;
  const bool pointwise = l.pointwise, direct_out = l.direct_out;
  const std::vector<Tap> taps = pointwise ? std::vector<Tap>{} : make_taps(g);
  const DType ct = wc.dtype;
  WorkspaceCarver ws(workspace);
  Array col = ws.take({l.col}, ct), scratch = ws.take({l.scratch}, ct);
  const Array gemm_scratch = ws.take({l.gemm}, DType::UInt8);
  const T* X = x.data_as<T>();
  T* O = out.data_as<T>();
  for (int64_t n0 = 0; n0 < g.N; n0 += nimg) {
    const int64_t ni = std::min(nimg, g.N - n0);
    for (int64_t p0 = 0; p0 < P; p0 += pc) {
      const int64_t np = std::min(pc, P - p0);
      Array b;
      if (pointwise) {
        b = view(x, n0 * g.C * P, {ni, g.G, g.Cg, P}, {g.C * P, g.Cg * P, P, 1});
      } else {
        // Column rows are (image, channel, tap) in order: row r reads channel plane r / taps.
        C* cb = col.data_as<C>();
        const int64_t col_rows = ni * g.C * g.k_size;
        const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, np));
        parallel_for(col_rows, grain, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t plane = (n0 * g.C + r / g.k_size) * g.im_size;
            im2col_row(g, taps[r % g.k_size], X + plane, p0, p0 + np, cb + r * np);
          }
        });
        b = view(col, 0, {ni, g.G, K, np}, contiguous_strides({ni, g.G, K, np}));
      }
      Array a = view(wc, 0, {ni, g.G, g.Mg, K}, {0, g.Mg * K, K, 1});
      Array o =
          direct_out
              ? view(out, n0 * g.M * P, {ni, g.G, g.Mg, P}, contiguous_strides({ni, g.G, g.Mg, P}))
              : view(scratch, 0, {ni, g.G, g.Mg, np}, contiguous_strides({ni, g.G, g.Mg, np}));
      const C* src_base = o.data_as<C>();
      GemmTileHook hook = [&](int64_t off, int64_t rows, int64_t cols, int64_t ld) {
        // Without a bias the GEMM wrote the final values (an epilogue always has a bias).
        if (direct_out && !has_bias) return;
        const int64_t mat = g.Mg * np, bi = off / mat, r0 = (off % mat) / np, c0 = off % np;
        const int64_t img = bi / g.G, grp = bi % g.G;
        std::optional<RowEpilogue::Scratch<C>> es;
        if (epi) es.emplace(*epi, scalars);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t m = grp * g.Mg + r0 + r;
          const C bm = bias[m];
          T* dst = O + ((n0 + img) * g.M + m) * P + p0 + c0;
          const C* src = src_base + off + r * ld;
          for (int64_t j = 0; j < cols; ++j) dst[j] = store_as<T>(src[j] + bm);
          if constexpr (std::is_same_v<T, C>) {
            if (es) es->apply(dst, cols);
          }
        }
      };
      matmul_float_with_hook(a, b, o, hook, gemm_scratch);
    }
  }
}

// conv, or conv_epilogue with `epi` (float32/float64 only: the inputs past the bias are the
// epilogue's single values).
void conv_kernel(const KernelArgs& args, const RowEpilogue* epi) {
  const auto* prep = dynamic_cast<const ConvPrepared*>(args.prepared);
  Array& out = args.out;
  if (out.numel() == 0) return;
  const Array x = args.inputs[0].contiguous();
  const Geom g = make_geom(x.shape, args.inputs[1].shape, out.shape, args.attrs, false);
  dispatch_dtype(out.dtype, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      using C = compute_t<T>;
      const Array wc = as_compute<C>(args.inputs[1]);
      const std::vector<C> bias = bias_values<C>(args, g.M);
      const std::vector<C> scalars = epi ? epi->scalars<C>(args) : std::vector<C>{};
      // The direct loops write final conv values; the epilogue then runs over the output.
      auto finish = [&] {
        if constexpr (std::is_same_v<T, C>) {
          if (epi) apply_epilogue(*epi, scalars, out.data_as<C>(), out.numel());
        }
      };
      if constexpr (std::is_same_v<T, float>) {
        if (const int choice = implicit_choice(g)) {
          const Conv2d c = *conv2d_of(g);
          FinisherFactory fin;
          if (epi) fin = [&] { return std::make_unique<EpilogueFinisher>(*epi, scalars); };
          const float* b = bias.data();
          const ConvPackedWeights* pw = prep && prep->src == wc.data() ? &prep->w : nullptr;
          if (choice == 1)
            conv_depthwise(c, x.data_as<float>(), wc.data_as<float>(), b, out.data_as<float>(),
                           fin);
          else if (choice == 3)
            conv_pointwise(c, x.data_as<float>(), wc.data_as<float>(), b, out.data_as<float>(), fin,
                           pw);
          else
            conv_implicit(c, x.data_as<float>(), wc.data_as<float>(), b, out.data_as<float>(),
                          args.workspace, fin, pw);
          return;
        }
        if (use_conv_rows(g)) {
          conv_rows(g, x.data_as<float>(), wc.data_as<float>(), bias, out.data_as<float>());
          return finish();
        }
      }
      if (g.Mg <= kDirectMaxChannels) {
        conv_direct<T, C>(g, x.data_as<T>(), wc.data_as<C>(), bias, out.data_as<T>());
        finish();
      } else {
        conv_gemm<T, C>(g, x, wc, bias, args.inputs.size() > 2, out, args.workspace, epi, scalars);
      }
    } else {
      throw TypeError(str("[conv] unsupported dtype ", dtype_name(out.dtype)));
    }
  });
}

// ---- conv_transpose -------------------------------------------------------------------------

// For each (image, group): col[(m, tap), q] = sum_c w[group*Cg + c, m, tap] * x[n, c, q], a GEMM
// with A = the weight group transposed (a strided view, no copy); then col2im adds col into the
// output planes, one output channel per parallel item (no two items write the same plane).
struct TransposeLayout {
  int64_t nimg = 1, pc = 0;
  int64_t col = 0, xbuf = 0, acc = 0;  // elements of C
  int64_t gemm = 0;                    // bytes: the GEMM's packing panels
};

template <typename T, typename C>
TransposeLayout conv_transpose_layout(const Geom& g) {
  const int64_t R = g.Mg * g.k_size, Pin = g.cp_size, Pout = g.im_size;
  TransposeLayout l;
  l.pc = Pin;
  const int64_t per_position = std::is_same_v<T, C> ? g.G * R : std::max(g.G * R, g.C);
  chunking(g, Pin, per_position, per_position, l.nimg, l.pc);
  l.col = l.nimg * g.G * R * l.pc;
  // Half types: x chunks converted to C, and an accumulator in C rounded once at the end.
  if (!std::is_same_v<T, C>) {
    l.xbuf = l.nimg * g.C * l.pc;
    l.acc = l.nimg * g.M * Pout;
  }
  const DType ct = std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
  l.gemm = matmul_scratch_bytes({l.nimg, g.G, R, g.Cg}, {l.nimg, g.G, g.Cg, l.pc}, ct);
  return l;
}

template <typename T, typename C>
void conv_transpose_gemm(const Geom& g, const Array& x, const Array& wc, const std::vector<C>& bias,
                         Array& out, const Array& workspace) {
  const int64_t R = g.Mg * g.k_size, Pin = g.cp_size, Pout = g.im_size;
  const TransposeLayout l = conv_transpose_layout<T, C>(g);
  const int64_t nimg = l.nimg, pc = l.pc;
  const std::vector<Tap> taps = make_taps(g);
  const DType ct = wc.dtype;
  constexpr bool same = std::is_same_v<T, C>;
  WorkspaceCarver ws(workspace);
  Array col = ws.take({l.col}, ct);
  Array xbuf = ws.take({l.xbuf}, ct), acc_buf = ws.take({l.acc}, ct);
  const Array gemm_scratch = ws.take({l.gemm}, DType::UInt8);
  const T* X = x.data_as<T>();
  T* O = out.data_as<T>();
  const GemmTileHook no_hook = [](int64_t, int64_t, int64_t, int64_t) {};
  for (int64_t n0 = 0; n0 < g.N; n0 += nimg) {
    const int64_t ni = std::min(nimg, g.N - n0);
    C* acc;
    if constexpr (same) acc = O + n0 * g.M * Pout;
    else acc = acc_buf.data_as<C>();
    const int64_t plane_grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, Pout));
    parallel_for(ni * g.M, plane_grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        std::fill(acc + i * Pout, acc + (i + 1) * Pout, bias[i % g.M]);
    });
    for (int64_t p0 = 0; p0 < Pin; p0 += pc) {
      const int64_t np = std::min(pc, Pin - p0);
      Array b;
      if constexpr (same) {
        b = view(x, n0 * g.C * Pin + p0, {ni, g.G, g.Cg, np}, {g.C * Pin, g.Cg * Pin, Pin, 1});
      } else {
        C* xb = xbuf.data_as<C>();
        parallel_for(ni * g.C, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, np)),
                     [&](int64_t r0, int64_t r1) {
                       for (int64_t r = r0; r < r1; ++r) {
                         const T* src = X + (n0 * g.C + r) * Pin + p0;
                         for (int64_t i = 0; i < np; ++i) xb[r * np + i] = C(load_as(src[i]));
                       }
                     });
        b = view(xbuf, 0, {ni, g.G, g.Cg, np}, contiguous_strides({ni, g.G, g.Cg, np}));
      }
      Array a = view(wc, 0, {ni, g.G, R, g.Cg}, {0, g.Cg * R, 1, R});
      Array o = view(col, 0, {ni, g.G, R, np}, contiguous_strides({ni, g.G, R, np}));
      matmul_float_with_hook(a, b, o, no_hook, gemm_scratch);
      const C* cb = col.data_as<C>();
      const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.k_size * np));
      parallel_for(ni * g.M, grain, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          // Item i = (image, output channel); its rows in col are (image, group, m, taps).
          const int64_t img = i / g.M, m = i % g.M, grp = m / g.Mg, mg = m % g.Mg;
          const C* rows = cb + ((img * g.G + grp) * R + mg * g.k_size) * np;
          for (int64_t t = 0; t < g.k_size; ++t)
            col2im_row(g, taps[t], rows + t * np, p0, p0 + np, acc + i * Pout);
        }
      });
    }
    if constexpr (!same) {
      T* dst = O + n0 * g.M * Pout;
      const int64_t total = ni * g.M * Pout;
      parallel_for(total, 65536, [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; ++e) dst[e] = store_as<T>(acc[e]);
      });
    }
  }
}

void conv_transpose_kernel(const KernelArgs& args) {
  Array& out = args.out;
  if (out.numel() == 0) return;
  const Array x = args.inputs[0].contiguous();
  const Geom g = make_geom(x.shape, args.inputs[1].shape, out.shape, args.attrs, true);
  dispatch_dtype(out.dtype, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      using C = compute_t<T>;
      const Array wc = as_compute<C>(args.inputs[1]);
      conv_transpose_gemm<T, C>(g, x, wc, bias_values<C>(args, g.M), out, args.workspace);
    } else {
      throw TypeError(str("[conv_transpose] unsupported dtype ", dtype_name(out.dtype)));
    }
  });
}

// conv and conv_transpose, prepared per node: the geometry, hence the workspace, is known at
// compile time from the shapes.
class ConvKernel final : public CpuKernel {
 public:
  ConvKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : transpose_(node.is("conv_transpose")),
        name_(str("cpu.", node.op->name, ".", dtype_name(node.type.dtype))) {
    if (node.is("conv_epilogue")) {
      std::vector<ir::TensorType> prog_in{node.type};
      prog_in.insert(prog_in.end(), in.begin() + std::min<size_t>(3, in.size()), in.end());
      const ir::FusedProgram prog =
          ir::parse_fused_program(node.attrs.get_string("program"), prog_in, node.type.dtype);
      epilogue_.emplace(prog);
      name_ = str(name_, "[", prog.code.size(), " ops]");
    }
    if (in.size() < 2 || numel(node.type.shape) == 0) return;
    const Geom g = make_geom(in[0].shape, in[1].shape, node.type.shape, node.attrs, transpose_);
    dispatch_dtype(node.type.dtype, [&]<typename T>() {
      if constexpr (std::is_floating_point_v<compute_t<T>>) {
        using C = compute_t<T>;
        const DType ct = std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
        if (transpose_) {
          TransposeLayout l = conv_transpose_layout<T, C>(g);
          workspace_ = workspace_piece(l.col, ct) + workspace_piece(l.xbuf, ct) +
                       workspace_piece(l.acc, ct) + l.gemm;
        } else if (std::is_same_v<T, float> && implicit_choice(g)) {
          // conv_depthwise: per-thread plane buffers; conv_pointwise: per-thread tiles.
          const int choice = implicit_choice(g);
          workspace_ = choice == 2 ? conv_implicit_workspace_bytes(*conv2d_of(g)) : 0;
          if (choice >= 2) implicit_ = conv2d_of(g);
        } else if (std::is_same_v<T, float> && use_conv_rows(g)) {
          workspace_ = 0;  // conv_rows: per-thread row buffers (a few hundred KB at most)
        } else if (g.Mg > kDirectMaxChannels) {
          GemmLayout l = conv_gemm_layout<T, C>(g);
          workspace_ = workspace_piece(l.col, ct) + workspace_piece(l.scratch, ct) + l.gemm;
        }
      }
    });
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }
  // A constant float32 weight of a conv that conv_implicit runs is packed once per plan.
  std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const override {
    if (!implicit_ || constants.size() < 2 || !constants[1]) return nullptr;
    const Array& w = *constants[1];
    const Conv2d& c = *implicit_;
    if (w.dtype != DType::Float32 || !w.on_host() || !w.is_contiguous() ||
        w.numel() != c.M * (c.C / c.G) * c.kh * c.kw)
      return nullptr;
    auto p = std::make_shared<ConvPrepared>();
    p->src = w.data();
    p->w = conv_implicit_pack(c, w.data_as<float>());
    return p;
  }
  void run(const KernelArgs& args) const override {
    transpose_ ? conv_transpose_kernel(args) : conv_kernel(args, epilogue_ ? &*epilogue_ : nullptr);
  }

 private:
  bool transpose_;
  std::optional<RowEpilogue> epilogue_;  // conv_epilogue's program
  std::optional<Conv2d> implicit_;  // the geometry, when conv_implicit or conv_pointwise runs it
  std::string name_;
  int64_t workspace_ = 0;
};

}  // namespace

// The epilogue runs in the compute type on float32/float64 outputs (no half-type stores).
bool supports_conv_epilogue(const ir::Node& n, const ir::Graph& g) {
  const DType t = n.type.dtype;
  if (t != DType::Float32 && t != DType::Float64) return false;
  for (size_t k = 0; k < 3 && k < n.inputs.size(); ++k)
    if (g.nodes[n.inputs[k]].type.dtype != t) return false;
  return n.inputs.size() >= 3;
}

void register_deform_conv_kernels(KernelTable& t);  // deform_conv.cpp (deform_im2col)

void register_conv_kernels(KernelTable& t) {
  t.add_prepared<ConvKernel>("conv");
  t.add_prepared<ConvKernel>("conv_transpose");
  t.add_prepared<ConvKernel>("conv_epilogue", supports_conv_epilogue);
  register_deform_conv_kernels(t);
}

}  // namespace nef::backend::cpu
