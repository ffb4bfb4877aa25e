// CPU kernels for lstm, gru and rnn (ir/ops/recurrent.h, docs/ops.md). Per direction: the input
// projection of every step at once, X W^T, with the blocked GEMM of matmul.cpp (gemm.h; the
// biases are added by its tile hook while each tile is in cache), then the steps in order: the
// recurrent product H_{t-1} R^T and the gate math on runs of hidden units with vmath's
// vectorized tanh and sigmoid. For the product, R is packed into panels of 64
// bytes of hidden units x every k x the gates (once per plan for a constant R, with W^T for the
// projection: Kernel::prepare; else once per run): a register-blocked kernel then needs no
// reductions and reads each panel once for up to four batch rows. Runs of a few steps with
// few rows (a streaming chunk) skip the packing, which would cost more than the steps, and
// take dot products over R's rows as stored (vmath::dot_rows). Work items are (a block of
// batch rows, a block of hidden units), split over threads when a step is big enough; a
// bidirectional layer otherwise runs its two directions side by side. Rows past their
// sequence length are skipped (their Y rows are zero; Y_h / Y_c hold the state after their
// last step, zeros for a zero length). float16/bfloat16 inputs are converted to float32 into
// the workspace.
#include "ir/ops/recurrent.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/gemm.h"
#include "backends/cpu/kernels/vmath.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

using ir::RnnActivation;

constexpr int64_t kUnitBlock = 16;       // hidden units per work item (a multiple of kPanel)
constexpr int64_t kRowBlock = 8;         // batch rows per work item
constexpr int64_t kPackSteps = 8;        // from this many steps (or kRowBlock rows), pack R
constexpr int64_t kDotRows = 8;          // projections of up to this many rows skip the GEMM
constexpr double kChunkFlops = 1 << 17;  // a step's work per thread before it is split

// Hidden units per packed panel: 64 bytes (one AVX-512 vector, two AVX2 ones).
template <typename C>
constexpr int64_t kPanel = 64 / int64_t(sizeof(C));

// The shapes of one node and the choices that follow from them (and the thread count), made
// alike when the workspace is sized and when the kernel runs.
struct Geometry {
  std::string op;
  int64_t S = 0, B = 0, I = 0, H = 0, D = 1, G = 1, GH = 0;
  bool lstm = false, gru = false, peepholes = false, has_lens = false;
  bool half = false;         // float16/bfloat16 storage: inputs converted to the compute type
  bool lbr = false;          // gru linear_before_reset
  bool pack = false;         // R packed into panels (else dot products over its rows)
  DType c = DType::Float32;  // compute type
};

Geometry geometry(const std::string& op, const std::vector<ir::TensorType>& in, DType t,
                  const ir::Attrs& attrs) {
  Geometry g;
  g.op = op;
  const ir::RnnCell cell = ir::rnn_cell(op);
  g.lstm = op == "lstm";
  g.gru = op == "gru";
  g.S = in[0].shape[0], g.B = in[0].shape[1], g.I = in[0].shape[2];
  g.D = in[1].shape[0], g.H = in[2].shape[2], g.G = cell.gates, g.GH = g.G * g.H;
  const size_t n_float = g.lstm ? 6 : 5;
  g.has_lens = in.size() > n_float;
  g.peepholes = g.lstm && in.size() > n_float + 1;
  g.half = t != DType::Float32 && t != DType::Float64;
  g.c = t == DType::Float64 ? DType::Float64 : DType::Float32;
  g.lbr = g.gru && attrs.has("linear_before_reset") && attrs.get_bool("linear_before_reset");
  // Strided R rows are packed whatever the length (the kernel checks the strides).
  g.pack = g.S >= kPackSteps || g.B >= kRowBlock;
  return g;
}

// The recurrent products of a step: GRU without linear_before_reset multiplies r (.) H_{t-1}
// by Rh, so it needs z and r first (two groups); every other cell is one product over all
// gates. A group's results are a [B, ng*H] matrix at `off` elements into the step buffer.
struct Group {
  int64_t g0, ng, off;
};
std::vector<Group> groups(const Geometry& g) {
  if (g.gru && !g.lbr) return {{0, 2, 0}, {2, 1, g.B * 2 * g.H}};
  return {{0, g.G, 0}};
}

// Bytes of GEMM scratch for the projection: all steps at once, or one step's rows when X
// cannot be seen as one matrix.
int64_t gemm_bytes(const Geometry& g) {
  return std::max(matmul_scratch_bytes({g.S * g.B, g.I}, {g.I, g.GH}, g.c, true),
                  matmul_scratch_bytes({g.B, g.I}, {g.I, g.GH}, g.c, true));
}

// Elements of one direction's packed panels: every unit block of every gate, k-major.
int64_t panel_elems(const Geometry& g) {
  const int64_t jb = g.c == DType::Float64 ? kPanel<double> : kPanel<float>;
  return (g.H + jb - 1) / jb * jb * g.H * g.G;
}

// Workspace pieces in carving order.
int64_t workspace_size(const Geometry& g) {
  const DType c = g.c;
  int64_t w = 0;
  w += workspace_piece(g.D * g.S * g.B * g.GH, c);  // xg: projections + biases
  w += workspace_piece(g.D * g.B * g.GH, c);        // sp: one step's recurrent products
  w += workspace_piece(g.D * 2 * g.B * g.H, c);     // h, double-buffered
  w += workspace_piece(g.D * g.B * g.H, c);         // c (lstm) / r (.) h (gru)
  w += workspace_piece(g.D * 2 * g.GH, c);          // combined biases, then Rb
  w += workspace_piece(g.D * 3 * g.H, c);           // peepholes
  w += workspace_piece(g.B, DType::Int64);          // sequence lengths
  w += workspace_piece(g.D * g.B, DType::Int64);    // active rows per direction
  w += workspace_piece(g.D * panel_elems(g), c);    // packed R (all R may need packing)
  if (g.half) {
    w += workspace_piece(g.S * g.B * g.I, c);   // x
    w += workspace_piece(g.D * g.GH * g.I, c);  // w
    w += workspace_piece(g.D * g.GH * g.H, c);  // r
  }
  w += gemm_bytes(g);
  return w;
}

// Element (i, j, k) of a rank-3 (or lower, with trailing indices 0) array, in the compute type.
template <typename C, typename T>
C at(const Array& a, int64_t i, int64_t j = 0, int64_t k = 0) {
  const T* p = static_cast<const T*>(a.data());
  int64_t off = 0;
  const int64_t idx[3] = {i, j, k};
  for (int d = 0; d < a.rank(); ++d) off += idx[d] * a.strides[size_t(d)];
  return C(load_as(p[off]));
}

// The last dim of `a` at leading indices `lead` (one per other dim) into dst, compute type.
template <typename C, typename T>
void load_row(const Array& a, std::initializer_list<int64_t> lead, C* dst) {
  const T* p = static_cast<const T*>(a.data());
  size_t d = 0;
  for (int64_t v : lead) p += v * a.strides[d++];
  const int64_t st = a.strides.back(), n = a.shape.back();
  for (int64_t k = 0; k < n; ++k) dst[k] = C(load_as(p[k * st]));
}

template <typename C>
void clip_values(C* x, int64_t n, C clip) {
  if (clip <= C(0)) return;
  for (int64_t j = 0; j < n; ++j) x[j] = x[j] < -clip ? -clip : (x[j] > clip ? clip : x[j]);
}

// f(x) in place (ONNX's definitions; NaN propagates).
template <typename C>
void activate(RnnActivation a, C alpha, C beta, C* x, int64_t n) {
  switch (a) {
    case RnnActivation::Tanh:
      vmath::tanh(x, x, size_t(n));
      return;
    case RnnActivation::Sigmoid:
      vmath::sigmoid(x, x, size_t(n));
      return;
    case RnnActivation::Relu:
      for (int64_t j = 0; j < n; ++j) x[j] = x[j] < C(0) ? C(0) : x[j];
      return;
    case RnnActivation::Affine:
      for (int64_t j = 0; j < n; ++j) x[j] = alpha * x[j] + beta;
      return;
    case RnnActivation::LeakyRelu:
      for (int64_t j = 0; j < n; ++j) x[j] = x[j] < C(0) ? alpha * x[j] : x[j];
      return;
    case RnnActivation::ThresholdedRelu:
      for (int64_t j = 0; j < n; ++j) x[j] = x[j] < alpha ? C(0) : x[j];
      return;
    case RnnActivation::ScaledTanh:
      for (int64_t j = 0; j < n; ++j) x[j] *= beta;
      vmath::tanh(x, x, size_t(n));
      for (int64_t j = 0; j < n; ++j) x[j] *= alpha;
      return;
    case RnnActivation::HardSigmoid:
      for (int64_t j = 0; j < n; ++j) {
        const C v = alpha * x[j] + beta;
        x[j] = v < C(0) ? C(0) : (v > C(1) ? C(1) : v);
      }
      return;
    case RnnActivation::Elu:
      for (int64_t j = 0; j < n; ++j) x[j] = x[j] < C(0) ? alpha * std::expm1(x[j]) : x[j];
      return;
    case RnnActivation::Softsign:
      for (int64_t j = 0; j < n; ++j) x[j] = x[j] / (C(1) + std::abs(x[j]));
      return;
    case RnnActivation::Softplus:  // log(1 + e^x) without overflow
      for (int64_t j = 0; j < n; ++j)
        x[j] = x[j] > C(0) ? x[j] + std::log1p(std::exp(-x[j])) : std::log1p(std::exp(x[j]));
      return;
  }
}

Array view2d(const Array& base, int64_t off, int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  Array v = base;
  v.offset += off;
  v.shape = {rows, cols};
  v.strides = {rs, cs};
  return v;
}

// Direction d's R (rows [gate * H + unit], columns k, strides rs / ks) packed into `dst`
// (panel_elems(g) elements): per group, per unit block of kPanel units, [k][gate][unit] (units
// past H are zeros).
template <typename C>
void pack_r(const Geometry& g, const std::vector<Group>& groups, const C* r, int64_t rs, int64_t ks,
            C* dst) {
  constexpr int64_t JB = kPanel<C>;
  const int64_t blocks = (g.H + JB - 1) / JB, padded = blocks * JB;
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, g.H * g.G * JB));
  parallel_for(blocks, grain, [&](int64_t ub0, int64_t ub1) {
    for (const Group& gr : groups) {
      C* base = dst + padded * g.H * gr.g0;
      for (int64_t ub = ub0; ub < ub1; ++ub) {
        const int64_t nj = std::min(JB, g.H - ub * JB);
        for (int64_t gi = 0; gi < gr.ng; ++gi) {
          // kPanel rows of R read side by side (sequential streams), each panel row written
          // whole.
          const C* rows = r + ((gr.g0 + gi) * g.H + ub * JB) * rs;
          C* out = base + ub * g.H * gr.ng * JB + gi * JB;
          for (int64_t k = 0; k < g.H; ++k) {
            C* o = out + k * gr.ng * JB;
            const C* col = rows + k * ks;
            for (int64_t j = 0; j < nj; ++j) o[j] = col[j * rs];
            for (int64_t j = nj; j < JB; ++j) o[j] = C(0);
          }
        }
      }
    }
  });
}

// W[d]^T (the projection's B) as a [I, G*H] view of W (any strides).
Array w_transposed(const Array& w, int64_t d, const Geometry& g) {
  Array v = w;
  v.offset += d * w.strides[0];
  v.shape = {g.I, g.GH};
  v.strides = {w.strides[2], w.strides[1]};
  return v;
}

// A plan's constant W and R prepared once (Kernel::prepare): W[d]^T packed for the projection
// GEMM and R[d] packed into panels, so that runs pack neither (ddddocr's BiLSTM, 512 units over
// 38 steps: the two 4 MB R copies and the two W^T packs were about a third of a run). Each is
// used only by a run whose W / R is the very array it was made from (data and strides).
struct RecurrentPrepared final : backend::Prepared {
  std::vector<std::shared_ptr<const backend::Prepared>> w;  // per direction (may be null)
  const void* r_src = nullptr;
  Strides r_strides;
  std::vector<double> panels;  // D * panel_elems(g) compute-type values (doubles: aligned)
};

// One node's run in storage type T (compute type C).// One node's run in storage type T (compute
// type C).
template <typename T>
class Run {
  using C = compute_t<T>;

 public:
  Run(const KernelArgs& args, const Geometry& g)
      : args_(args),
        g_(g),
        ra_(ir::read_rnn_attrs(g.op, args.attrs)),
        groups_(groups(g)),
        acts_per_dir_(size_t(ir::rnn_cell(g.op).activations)) {}

  void run() {
    const Geometry& g = g_;
    WorkspaceCarver ws(args_.workspace);
    xg_ = ws.take({g.D * g.S * g.B * g.GH}, g.c);
    sp_ = ws.take({g.D * g.B * g.GH}, g.c);
    hb_ = ws.take({g.D * 2 * g.B * g.H}, g.c);
    cb_ = ws.take({g.D * g.B * g.H}, g.c);
    bias_ = ws.take({g.D * 2 * g.GH}, g.c);
    peep_ = ws.take({g.D * 3 * g.H}, g.c);
    lens_ = ws.take({g.B}, DType::Int64);
    active_ = ws.take({g.D * g.B}, DType::Int64);
    panels_ = ws.take({g.D * panel_elems(g)}, g.c);
    x_ = args_.inputs[0];
    w_ = args_.inputs[1];
    r_ = args_.inputs[2];
    if (g.half) {
      x_ = convert(x_, ws);
      w_ = convert(w_, ws);
      r_ = convert(r_, ws);
    }
    scratch_ = ws.take({gemm_bytes(g)}, DType::UInt8);
    // The plan's packed R, when made from this very R (a half-type R was converted above).
    const auto* prep = dynamic_cast<const RecurrentPrepared*>(args_.prepared);
    if (prep && !g.half && !prep->panels.empty() && prep->r_src == r_.data() &&
        prep->r_strides == r_.strides)
      prep_panels_ = reinterpret_cast<const C*>(prep->panels.data());
    if (prep && !g.half) prep_w_ = prep;
    read_lens();
    read_small_inputs();
    T* out = args_.out.template data_as<T>();
    std::fill(out, out + args_.out.numel(), store_as<T>(C(0)));
    for (int64_t d = 0; d < g.D; ++d) project(d);
    // Dot products read R's rows as stored: they need unit-stride rows.
    pack_ = g.pack || (g.H > 1 && r_.strides[2] != 1);
    const double step_flops = 2.0 * double(g.B) * double(g.GH) * double(g.H);
    const bool side_by_side = g.D == 2 && num_threads() >= 2 &&
                              std::min<double>(num_threads(), step_flops / kChunkFlops) <= 2;
    if (side_by_side) {
      parallel_for(2, 1, [&](int64_t d0, int64_t d1) {
        for (int64_t d = d0; d < d1; ++d) steps(d);
      });
    } else {
      for (int64_t d = 0; d < g.D; ++d) steps(d);
    }
  }

 private:
  // A float16/bfloat16 input as a contiguous compute-type copy in the workspace.
  Array convert(const Array& a, WorkspaceCarver& ws) {
    Array dst = ws.take(a.shape, g_.c);
    C* o = dst.template data_as<C>();
    int64_t n = 0;
    for (int64_t i = 0; i < a.shape[0]; ++i)
      for (int64_t j = 0; j < a.shape[1]; ++j)
        for (int64_t k = 0; k < a.shape[2]; ++k) o[n++] = at<C, T>(a, i, j, k);
    return dst;
  }

  void read_lens() {
    const Geometry& g = g_;
    int64_t* lens = lens_.template data_as<int64_t>();
    for (int64_t b = 0; b < g.B; ++b) {
      int64_t v = g.S;
      if (g.has_lens) {
        const Array& l = args_.inputs[g.lstm ? 6 : 5];
        v = l.dtype == DType::Int32 ? int64_t(at<int64_t, int32_t>(l, b))
                                    : at<int64_t, int64_t>(l, b);
        if (v < 0 || v > g.S)
          throw ValidationError(str("[", g.op, "] sequence_lens[", b, "] = ", v, " is outside [0, ",
                                    g.S, "] (x has ", g.S, " steps)"));
      }
      lens[b] = v;
    }
  }

  // Biases (Wb + Rb per gate; gru's Rbh apart with linear_before_reset), peepholes and the
  // initial states in the compute type.
  void read_small_inputs() {
    const Geometry& g = g_;
    const Array& b = args_.inputs[3];
    for (int64_t d = 0; d < g.D; ++d) {
      C* bd = bias_.template data_as<C>() + d * 2 * g.GH;  // [Wb + Rb (but Rbh), Rb]
      load_row<C, T>(b, {d}, bd);
      for (int64_t j = 0; j < g.GH; ++j)
        if (!(g.lbr && j >= 2 * g.H)) bd[j] += bd[g.GH + j];
      if (g.peepholes)
        load_row<C, T>(args_.inputs[7], {d}, peep_.template data_as<C>() + d * 3 * g.H);
      for (int64_t r = 0; r < g.B; ++r) {
        load_row<C, T>(args_.inputs[4], {d, r}, hbuf(d, 0) + r * g.H);
        if (g.lstm) load_row<C, T>(args_.inputs[5], {d, r}, cbuf(d) + r * g.H);
      }
    }
  }

  C* hbuf(int64_t d, int which) const {
    return hb_.template data_as<C>() + (d * 2 + which) * g_.B * g_.H;
  }
  C* cbuf(int64_t d) const { return cb_.template data_as<C>() + d * g_.B * g_.H; }
  C* spbuf(int64_t d) const { return sp_.template data_as<C>() + d * g_.B * g_.GH; }
  // Per direction: the combined biases [G*H], then Rb (gru's Rbh at 2H).
  const C* biasd(int64_t d) const { return bias_.template data_as<C>() + d * 2 * g_.GH; }

  // xg rows: X seen as one matrix in the order its memory allows ((t, b) when x is [S, B, I]
  // in memory, (b, t) when it is a transposed [B, S, I]).
  int64_t xrow(int64_t t, int64_t b) const { return bt_order_ ? b * g_.S + t : t * g_.B + b; }

  // xg[d] = X W[d]^T + biases, as one GEMM when X's [S, B] dims merge, else one per step.
  void project(int64_t d) {
    const Geometry& g = g_;
    if (g.S * g.B == 0) return;
    Array out;
    out.storage = xg_.storage;
    out.dtype = g.c;
    const int64_t base = xg_.offset + d * g.S * g.B * g.GH;
    const Array wt = w_transposed(w_, d, g);
    const C* bd = biasd(d);
    auto gemm_rows = [&](const Array& a, int64_t row0, int64_t rows) {
      out.offset = base + row0 * g.GH;
      out.shape = {rows, g.GH};
      out.strides = {g.GH, 1};
      C* o = out.template data_as<C>();
      const GemmTileHook hook = [&](int64_t off, int64_t nr, int64_t nc, int64_t ld) {
        const int64_t col0 = off % g.GH;
        for (int64_t i = 0; i < nr; ++i) {
          C* row = o + off + i * ld;
          for (int64_t j = 0; j < nc; ++j) row[j] += bd[col0 + j];
        }
      };
      // The plan's packed W[d]^T, when it has one (the GEMM checks that it was made from wt).
      const backend::Prepared* pw =
          prep_w_ && size_t(d) < prep_w_->w.size() ? prep_w_->w[size_t(d)].get() : nullptr;
      matmul_float_with_hook(a, wt, out, hook, scratch_, true, pw);
    };
    const Strides& xs = x_.strides;
    if (g.S * g.B <= kDotRows && w_.strides[2] == 1 && xs[2] == 1) {
      // A few rows: dot products over W's rows as stored (the GEMM would pack all of W).
      bt_order_ = false;
      C* o = xg_.template data_as<C>() + d * g.S * g.B * g.GH;
      const C* wd = w_.template data_as<C>() + d * w_.strides[0];
      const C* xd = x_.template data_as<C>();
      const int64_t rows = g.S * g.B;
      for (int64_t i = 0; i < rows; i += 2) {
        const bool two = i + 1 < rows;
        const C* x0 = xd + (i / g.B) * xs[0] + (i % g.B) * xs[1];
        const C* x1 = two ? xd + ((i + 1) / g.B) * xs[0] + ((i + 1) % g.B) * xs[1] : nullptr;
        vmath::dot_rows(wd, size_t(w_.strides[1]), size_t(g.GH), size_t(g.I), x0, x1, o + i * g.GH,
                        two ? o + (i + 1) * g.GH : nullptr);
      }
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < g.GH; ++j) o[i * g.GH + j] += bd[j];
    } else if (g.B == 1 || g.S == 1 || xs[0] == g.B * xs[1]) {
      bt_order_ = false;
      const int64_t rs = g.B == 1 ? xs[0] : xs[1];
      gemm_rows(view2d(x_, 0, g.S * g.B, g.I, rs, xs[2]), 0, g.S * g.B);
    } else if (xs[1] == g.S * xs[0]) {
      bt_order_ = true;
      gemm_rows(view2d(x_, 0, g.S * g.B, g.I, xs[0], xs[2]), 0, g.S * g.B);
    } else {
      bt_order_ = false;
      for (int64_t t = 0; t < g.S; ++t)
        gemm_rows(view2d(x_, t * xs[0], g.B, g.I, xs[1], xs[2]), t * g.B, g.B);
    }
  }

  // R[d] rows [g0*H, (g0+ng)*H) as a C pointer with row stride (dot path only).
  const C* rrows(int64_t d, int64_t row0) const {
    return r_.template data_as<C>() + d * r_.strides[0] + row0 * r_.strides[1];
  }

  struct StepCtx {
    int64_t d, s;
    const int64_t* rows;  // active batch rows
    int64_t n;            // how many
    const C* hp;          // H_{t-1} [B, H]
    C* hn;                // H_t
  };

  // R[d]'s rows of each group into this run's panels (pack_r), unless the plan packed them.
  void pack(int64_t d) {
    if (prep_panels_) return;
    pack_r<C>(g_, groups_, r_.template data_as<C>() + d * r_.strides[0], r_.strides[1],
              r_.strides[2], panels_.template data_as<C>() + d * panel_elems(g_));
  }

  C* panel(int64_t d, const Group& gr) const {
    constexpr int64_t JB = kPanel<C>;
    const int64_t padded = (g_.H + JB - 1) / JB * JB;
    const C* base = prep_panels_ ? prep_panels_ : panels_.template data_as<C>();
    return const_cast<C*>(base) + d * panel_elems(g_) + padded * g_.H * gr.g0;
  }

  void steps(int64_t d) {
    const Geometry& g = g_;
    if (pack_) pack(d);
    const int64_t* lens = lens_.template data_as<int64_t>();
    int64_t* rows = active_.template data_as<int64_t>() + d * g.B;
    int64_t max_len = 0;
    for (int64_t b = 0; b < g.B; ++b) max_len = std::max(max_len, lens[b]);
    const int64_t ublocks = (g.H + kUnitBlock - 1) / kUnitBlock;
    int which = 0;
    for (int64_t s = 0; s < max_len; ++s) {
      int64_t n = 0;
      for (int64_t b = 0; b < g.B; ++b)
        if (s < lens[b]) rows[n++] = b;
      StepCtx st{d, s, rows, n, hbuf(d, which), hbuf(d, 1 - which)};
      const int64_t rblocks = (n + kRowBlock - 1) / kRowBlock;
      for (size_t k = 0; k < groups_.size(); ++k) {
        const Group& gr = groups_[k];
        const bool last = k + 1 == groups_.size();
        const C* x = (g.gru && !g.lbr && k == 1) ? cbuf(d) : st.hp;  // r (.) h for Rh
        // Items (row block, unit block), row-block major: a chunk is contiguous unit runs.
        const double per_item =
            2.0 * double(std::min(n, kRowBlock)) * double(gr.ng * kUnitBlock) * double(g.H);
        const int64_t grain = std::max<int64_t>(1, int64_t(kChunkFlops / std::max(per_item, 1.0)));
        parallel_for(rblocks * ublocks, grain, [&](int64_t w0, int64_t w1) {
          for (int64_t w = w0; w < w1;) {
            const int64_t rb = w / ublocks, ub0 = w % ublocks;
            const int64_t ub1 = std::min(ublocks, ub0 + (w1 - w));
            const int64_t u0 = ub0 * kUnitBlock, u1 = std::min(g.H, ub1 * kUnitBlock);
            const int64_t i0 = rb * kRowBlock, i1 = std::min(n, i0 + kRowBlock);
            products(st, gr, x, i0, i1, u0, u1);
            for (int64_t i = i0; i < i1; ++i) gates(st, rows[i], k, last, u0, u1);
            w += ub1 - ub0;
          }
        });
      }
      which = 1 - which;
    }
  }

  // Time step of row b at step s: reversed directions walk each sequence from its own end.
  int64_t time_of(int64_t d, int64_t s, int64_t b) const {
    const bool rev = ra_.reverse || d == 1;
    return rev ? lens_.template data_as<int64_t>()[b] - 1 - s : s;
  }

  C* gate_ptr(int64_t d, const Group& gr, int64_t b, int64_t gate) const {
    return spbuf(d) + gr.off + b * gr.ng * g_.H + (gate - gr.g0) * g_.H;
  }

  // The group's products for active rows [i0, i1) and units [u0, u1) (a multiple of
  // kUnitBlock from u0), from x [B, H].
  void products(const StepCtx& st, const Group& gr, const C* x, int64_t i0, int64_t i1, int64_t u0,
                int64_t u1) {
    const Geometry& g = g_;
    const int64_t H = g.H;
    if (!pack_) {
      const int64_t rs = r_.strides[1];
      for (int64_t i = i0; i < i1; i += 2) {
        const int64_t b0 = st.rows[i], b1 = i + 1 < i1 ? st.rows[i + 1] : -1;
        for (int64_t gate = gr.g0; gate < gr.g0 + gr.ng; ++gate)
          vmath::dot_rows(rrows(st.d, gate * H + u0), size_t(rs), size_t(u1 - u0), size_t(H),
                          x + b0 * H, b1 >= 0 ? x + b1 * H : nullptr,
                          gate_ptr(st.d, gr, b0, gate) + u0,
                          b1 >= 0 ? gate_ptr(st.d, gr, b1, gate) + u0 : nullptr);
      }
      return;
    }
    constexpr int64_t JB = kPanel<C>;
    const C* xs[kRowBlock];
    C* ys[kRowBlock];
    const int64_t nr = i1 - i0;
    for (int64_t j0 = u0; j0 < u1; j0 += JB) {
      for (int64_t i = 0; i < nr; ++i) {
        xs[i] = x + st.rows[i0 + i] * H;
        ys[i] = gate_ptr(st.d, gr, st.rows[i0 + i], gr.g0) + j0;
      }
      const C* p = panel(st.d, gr) + j0 / JB * H * gr.ng * JB;
      const int64_t nj = std::min(JB, u1 - j0);
      vmath::panel_product(p, size_t(H), size_t(gr.ng), xs, ys, size_t(nr), size_t(H), size_t(nj));
    }
  }

  // The gate math of row b for units [u0, u1) after product group k (`last`: the group that
  // completes H_t).
  void gates(const StepCtx& st, int64_t b, size_t k, bool last, int64_t u0, int64_t u1) {
    const Geometry& g = g_;
    const int64_t d = st.d, H = g.H, n = u1 - u0;
    if (n <= 0) return;
    const int64_t t = time_of(d, st.s, b);
    const C* xr = xg_.template data_as<C>() + (d * g.S * g.B + xrow(t, b)) * g.GH;
    const C clip = C(ra_.clip);
    const size_t a0 = size_t(d) * acts_per_dir_;
    auto act = [&](size_t slot, C* v) {
      activate(ra_.acts[a0 + slot], C(ra_.alpha[a0 + slot]), C(ra_.beta[a0 + slot]), v, n);
    };
    const C* hp = st.hp + b * H + u0;
    C* hn = st.hn + b * H + u0;
    const Group& gr = groups_[k];
    auto pre = [&](int64_t gate) { return gate_ptr(d, gr, b, gate) + u0; };
    auto add_x = [&](C* p, int64_t gate) {
      const C* xv = xr + gate * H + u0;
      for (int64_t j = 0; j < n; ++j) p[j] += xv[j];
    };
    if (g.lstm) {
      C *pi = pre(0), *po = pre(1), *pf = pre(2), *pc = pre(3);
      C* c = cbuf(d) + b * H + u0;
      const C* P = peep_.template data_as<C>() + d * 3 * H;
      add_x(pi, 0), add_x(po, 1), add_x(pf, 2), add_x(pc, 3);
      if (g.peepholes)
        for (int64_t j = 0; j < n; ++j)
          pi[j] += P[u0 + j] * c[j], pf[j] += P[2 * H + u0 + j] * c[j];
      clip_values(pi, n, clip);
      act(0, pi);
      if (ra_.input_forget) {
        for (int64_t j = 0; j < n; ++j) pf[j] = C(1) - pi[j];
      } else {
        clip_values(pf, n, clip);
        act(0, pf);
      }
      clip_values(pc, n, clip);
      act(1, pc);
      for (int64_t j = 0; j < n; ++j) c[j] = pf[j] * c[j] + pi[j] * pc[j];
      if (g.peepholes)
        for (int64_t j = 0; j < n; ++j) po[j] += P[H + u0 + j] * c[j];
      clip_values(po, n, clip);
      act(0, po);
      std::copy(c, c + n, hn);
      act(2, hn);
      for (int64_t j = 0; j < n; ++j) hn[j] *= po[j];
    } else if (g.gru) {
      if (k == 0) {  // z and r
        C *pz = pre(0), *pr = pre(1);
        add_x(pz, 0), add_x(pr, 1);
        clip_values(pz, n, clip);
        act(0, pz);
        clip_values(pr, n, clip);
        act(0, pr);
        if (!last) {  // r (.) H_{t-1} for the Rh product
          C* rh = cbuf(d) + b * H + u0;
          for (int64_t j = 0; j < n; ++j) rh[j] = pr[j] * hp[j];
          return;
        }
      }
      const Group& zr = groups_[0];
      const C* pz = gate_ptr(d, zr, b, 0) + u0;
      C* ph = pre(2);
      const C* xh = xr + 2 * H + u0;
      if (g.lbr) {
        const C* pr = gate_ptr(d, zr, b, 1) + u0;
        const C* rbh = biasd(d) + g.GH + 2 * H + u0;
        for (int64_t j = 0; j < n; ++j) ph[j] = xh[j] + pr[j] * (ph[j] + rbh[j]);
      } else {
        for (int64_t j = 0; j < n; ++j) ph[j] += xh[j];
      }
      clip_values(ph, n, clip);
      act(1, ph);
      for (int64_t j = 0; j < n; ++j) hn[j] = (C(1) - pz[j]) * ph[j] + pz[j] * hp[j];
    } else {
      C* p = pre(0);
      add_x(p, 0);
      clip_values(p, n, clip);
      act(0, p);
      std::copy(p, p + n, hn);
    }
    if (last) write_outputs(st, b, t, u0, n);
  }

  // Y at (t, d, b), and Y_h / Y_c when this was the row's last step.
  void write_outputs(const StepCtx& st, int64_t b, int64_t t, int64_t u0, int64_t n) {
    const Geometry& g = g_;
    const int64_t d = st.d;
    T* out = args_.out.template data_as<T>();
    const C* h = st.hn + b * g.H + u0;
    auto put = [&](int64_t row, const C* v) {
      T* o = out + ((row * g.D + d) * g.B + b) * g.H + u0;
      for (int64_t j = 0; j < n; ++j) o[j] = store_as<T>(v[j]);
    };
    put(t, h);
    if (st.s + 1 == lens_.template data_as<int64_t>()[b]) {
      put(g.S, h);
      if (g.lstm) put(g.S + 1, cbuf(d) + b * g.H + u0);
    }
  }

  const KernelArgs& args_;
  const Geometry& g_;
  const ir::RnnAttrs ra_;
  const std::vector<Group> groups_;
  const size_t acts_per_dir_;
  Array xg_, sp_, hb_, cb_, bias_, peep_, lens_, active_, panels_, scratch_;
  Array x_, w_, r_;
  bool bt_order_ = false;
  bool pack_ = true;
  const C* prep_panels_ = nullptr;             // the plan's packed R (RecurrentPrepared)
  const RecurrentPrepared* prep_w_ = nullptr;  // the plan's packed W^T per direction
};

class RecurrentKernel final : public CpuKernel {
 public:
  RecurrentKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : name_(str("cpu.", node.op->name, ".", dtype_name(node.type.dtype))),
        g_(geometry(node.op->name, in, node.type.dtype, node.attrs)) {
    workspace_ = workspace_size(g_);
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }
  // A constant float32/float64 W and R prepared once per plan (RecurrentPrepared).
  std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const override {
    const Geometry& g = g_;
    if (g.half || constants.size() < 3 || g.S * g.B == 0) return nullptr;
    auto p = std::make_shared<RecurrentPrepared>();
    bool any = false;
    const Array* w = constants[1];
    // The projection runs the GEMM with S * B rows (the dot-product path takes fewer).
    if (w && w->on_host() && w->dtype == g.c && w->rank() == 3 && g.S * g.B > kDotRows) {
      for (int64_t d = 0; d < g.D; ++d) {
        p->w.push_back(prepack_matmul_b(w_transposed(*w, d, g), g.c, g.S * g.B));
        any = any || p->w.back();
      }
    }
    const Array* r = constants[2];
    if (r && r->on_host() && r->dtype == g.c && r->rank() == 3 && g.pack && r->numel() > 0) {
      const int64_t elems = g.D * panel_elems(g);
      const size_t bytes = size_t(elems) * size_t(dtype_size(g.c));
      p->panels.resize((bytes + sizeof(double) - 1) / sizeof(double));
      p->r_src = r->data();
      p->r_strides = r->strides;
      const std::vector<Group> grs = groups(g);
      for (int64_t d = 0; d < g.D; ++d) {
        if (g.c == DType::Float64) {
          pack_r<double>(g, grs, r->data_as<double>() + d * r->strides[0], r->strides[1],
                         r->strides[2], p->panels.data() + d * panel_elems(g));
        } else {
          float* dst = reinterpret_cast<float*>(p->panels.data()) + d * panel_elems(g);
          pack_r<float>(g, grs, r->data_as<float>() + d * r->strides[0], r->strides[1],
                        r->strides[2], dst);
        }
      }
      any = true;
    }
    return any ? p : nullptr;
  }
  void run(const KernelArgs& args) const override {
    if (args.out.numel() == 0) return;
    dispatch_dtype(args.out.dtype, [&]<typename T>() {
      if constexpr (std::is_floating_point_v<compute_t<T>>) Run<T>(args, g_).run();
      else NEF_CHECK(false, "[", g_.op, "] output must be floating");
    });
  }

 private:
  std::string name_;
  Geometry g_;
  int64_t workspace_ = 0;
};

}  // namespace

void register_recurrent_kernels(KernelTable& t) {
  t.add_prepared<RecurrentKernel>("lstm");
  t.add_prepared<RecurrentKernel>("gru");
  t.add_prepared<RecurrentKernel>("rnn");
}

}  // namespace nef::backend::cpu
