// attention on OpenCL: out = softmax(scale * q k^T + mask) v per (batch..., query row), the
// registry op's contract as the CPU kernel computes it (attention.cpp): leading dims broadcast,
// any strides; a bool mask adds 0 / -inf, a float mask is added; causal is bottom-right aligned
// (query i sees keys j < i + Lk - Lq + 1); a row with no attended key is zeros, or NaN with
// empty_rows = "nan" (Lk = 0 stays zeros); a NaN or +inf score makes its row NaN.
//
// Online softmax in one pass over the keys: a running max m, the running sum l of exp(s - m) and
// the weighted sum of V rows, rescaled by exp(m_old - m_new) when the max grows; rows are
// normalized at the end. Explicit vectors (what CPU devices such as PoCL turn into SIMD), two
// forms:
// - lanes = query rows (Lq at least half a vector): an item takes VW consecutive rows of one
//   (batch, head) and walks blocks of kKeyBlock keys: a score vector per key from D broadcast
//   FMAs (q transposed once into per-dim vectors), a per-lane causal/valid mask, one rescale per
//   block when a lane's max grew, vector exps, then Dv broadcast FMAs per key into the
//   accumulators.
// - lanes = head dims (few query rows: decoding): an item takes up to two rows; per block of keys
//   the scores are dot products of vectors along D (summed across lanes), the block's softmax
//   update is one vector (one vector exp), and the V rows are added with vector FMAs along Dv.
// The query row and the accumulators live in private arrays, so head dims are bounded
// (kMaxHeadDim); larger heads stay on the CPU.
#include <algorithm>
#include <cmath>
#include <functional>

#include "backends/cstyle/render.h"
#include "backends/opencl/kernel_source.h"
#include "backends/opencl/kernels.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

constexpr int64_t kMaxHeadDim = 256;
constexpr int64_t kRowsPerItem = 2;  // lanes = head dims: query rows per item
constexpr int64_t kKeyBlock = 16;    // lanes = rows: keys per block

bool supports(const ir::Node& n, const ir::Graph& g, const DeviceInfo& d) {
  const DType t = n.type.dtype;
  if ((t != DType::Float32 && t != DType::Float64) || !storable(t, d)) return false;
  std::vector<ir::TensorType> in = g.input_types(n);
  if (in.size() < 3 || in.size() > 4) return false;
  for (int k = 0; k < 3; ++k)
    if (in[k].dtype != t || in[k].shape.size() < 2) return false;
  if (in.size() == 4) {
    DType m = in[3].dtype;
    if (m != DType::Bool && m != DType::Float32 && m != DType::Float64) return false;
    if (!storable(m, d)) return false;
  }
  const int64_t D = in[0].shape.back(), Dv = in[2].shape.back();
  return D <= kMaxHeadDim && Dv <= kMaxHeadDim;
}

class AttentionKernel final : public OpenclKernel {
 public:
  AttentionKernel(OpenclDevice& dev, const ir::Node& n, std::vector<ir::TensorType> in)
      : OpenclKernel(dev, n, in, str("opencl.attention.", dtype_name(n.type.dtype))) {}

 protected:
  Launch render(const std::vector<Strides>& strides) const override {
    const Shape& out = node_.type.shape;
    const Shape batch(out.begin(), out.end() - 2);
    const int64_t Lq = in_[0].shape[in_[0].shape.size() - 2];
    const int64_t D = in_[0].shape.back();
    const int64_t Lk = in_[1].shape[in_[1].shape.size() - 2];
    const int64_t Dv = in_[2].shape.back();
    const DType t = node_.type.dtype;
    const std::string T = source::ctype(t);
    const bool has_mask = in_.size() == 4;
    const bool causal = node_.attrs.get_bool("causal");
    const bool nan_empty = node_.attrs.get_string("empty_rows") == "nan";
    double scale = 1.0;
    if (node_.attrs.has("scale")) scale = node_.attrs.get_float("scale");
    else if (D > 0) scale = 1.0 / std::sqrt(double(D));

    // Each operand as [batch..., rows, cols] with broadcast strides.
    auto operand = [&](size_t k, int64_t rows, int64_t cols, const std::string& name) {
      Shape full = batch;
      full.push_back(rows);
      full.push_back(cols);
      Strides st = broadcast_strides(in_[k].shape, strides[k], full);
      source::Offset o{name, Strides(st.begin(), st.begin() + batch.size())};
      return std::make_tuple(o, st[batch.size()], st[batch.size() + 1]);
    };
    auto [oq, qrs, qcs] = operand(0, Lq, D, "qo");
    auto [ok, krs, kcs] = operand(1, Lk, D, "ko");
    auto [ov, vrs, vcs] = operand(2, Lk, Dv, "vo");
    std::vector<source::Offset> ops = {oq, ok, ov};
    int64_t mrs = 0, mcs = 0;
    if (has_mask) {
      auto [om, r, c] = operand(3, Lq, Lk, "mo");
      ops.push_back(om);
      mrs = r;
      mcs = c;
    }
    std::vector<DType> in_types;
    for (const ir::TensorType& x : in_) in_types.push_back(x.dtype);

    Geo geo{batch, Lq,  D,   Lk,  Dv,  t,   T,   has_mask, causal, nan_empty, scale,
            ops,   qrs, qcs, krs, kcs, vrs, vcs, mrs,      mcs,    in_types};
    Launch l;
    l.entry = "nef_attention";
    const int lanes = source::max_width(t);
    if (Lq >= lanes / 2) {
      const int64_t qb = (Lq + lanes - 1) / lanes;
      l.source = rows_source(geo, lanes, qb);
      l.global = size_t(numel(batch) * qb);
    } else {
      const int64_t rq = std::min<int64_t>(kRowsPerItem, std::max<int64_t>(Lq, 1));
      const int64_t qb = (Lq + rq - 1) / rq;
      l.source = dims_source(geo, rq, qb);
      l.global = size_t(numel(batch) * qb);
    }
    l.local = source::local_size(int64_t(l.global), dev_.info());
    return l;
  }

 private:
  // What both forms bake in.
  struct Geo {
    Shape batch;
    int64_t Lq, D, Lk, Dv;
    DType t;
    std::string T;
    bool has_mask, causal, nan_empty;
    double scale;
    std::vector<source::Offset> ops;  // batch offsets qo, ko, vo, [mo]
    int64_t qrs, qcs, krs, kcs, vrs, vcs, mrs, mcs;
    std::vector<DType> in_types;
  };

  // The fill of a row with no output (bad: a NaN or +inf score).
  static std::string empty_fill(const Geo& g, const std::string& bad) {
    if (g.nan_empty && g.Lk > 0) return "NAN";
    return str("(", bad, " ? (", g.T, ")NAN : (", g.T, ")0)");
  }

  // Lanes = head dims: rq rows per item.
  std::string dims_source(const Geo& geo, int64_t rq, int64_t qb) const {
    // References, not a structured binding: clang 14 (fuzz builds) cannot capture bindings.
    const auto& batch = geo.batch;
    const auto& Lq = geo.Lq;
    const auto& D = geo.D;
    const auto& Lk = geo.Lk;
    const auto& Dv = geo.Dv;
    const auto& t = geo.t;
    const auto& T = geo.T;
    const auto& has_mask = geo.has_mask;
    const auto& causal = geo.causal;
    const auto& scale = geo.scale;
    const auto& ops = geo.ops;
    const auto& qrs = geo.qrs;
    const auto& qcs = geo.qcs;
    const auto& krs = geo.krs;
    const auto& kcs = geo.kcs;
    const auto& vrs = geo.vrs;
    const auto& vcs = geo.vcs;
    const auto& mrs = geo.mrs;
    const auto& mcs = geo.mcs;
    const auto& in_types = geo.in_types;
    // Vectors along the head dims (widths dividing them), rq query rows per item sharing each
    // K and V row.
    auto width = [&](int64_t d) {
      int w = int(source::pow2_at_most(std::max<int64_t>(d, 1), source::max_width(t)));
      while (d % w != 0) w /= 2;
      return w;
    };
    const int W = width(D), WV = width(Dv);
    const int64_t NQ = D / W, NV = Dv / WV;
    const std::string VT = source::vtype(t, W), VV = source::vtype(t, WV);

    std::string s = cstyle::kOpenCL.preamble;
    s += source::hsum_helpers(t, source::max_width(t));
    s += str("#define LQ ", Lq, "L\n#define LK ", Lk, "L\n#define RQ ", rq, "\n#define NQ ", NQ,
             "\n#define NV ", NV, "\n");
    s += str(cstyle::kOpenCL.kernel, " nef_attention(", source::params(t, in_types), ") {\n");
    s += str("  const long g = get_global_id(0);\n  if (g >= ", numel(batch) * qb, "L) return;\n");
    s += str("  const long i0 = (g % ", qb, "L) * RQ, b = g / ", qb, "L;\n");
    s += source::offsets("b", batch, ops);
    s += str("  ", VT, " qv[RQ][NQ > 0 ? NQ : 1];\n  ", VV, " acc[RQ][NV];\n");
    s += str("  ", T, " m[RQ], l[RQ];\n  int bad[RQ];\n  long kend[RQ];\n  long kmax = 0;\n");
    s += "#pragma unroll\n  for (int r = 0; r < RQ; ++r) {\n";
    s += "    const long i = min(i0 + r, LQ - 1);  // rows past the end repeat the last one\n";
    s += str("    __global const ", T, "* q = in0 + off0 + qo + i * ", qrs, "L;\n");
    s += str("    for (int c = 0; c < NQ; ++c) qv[r][c] = ",
             source::vload(str("q + c * ", W * qcs, "L"), qcs, W, t), ";\n");
    s += "    for (int c = 0; c < NV; ++c) acc[r][c] = 0;\n";
    s += "    m[r] = -INFINITY;\n    l[r] = 0;\n    bad[r] = 0;\n";
    s += causal ? "    kend[r] = clamp(i + LK - LQ + 1, 0L, LK);\n" : "    kend[r] = LK;\n";
    s += "    kmax = max(kmax, kend[r]);\n  }\n";
    if (has_mask)
      s += str("  __global const ", source::ctype(in_[3].dtype), "* mk = in3 + off3 + mo;\n");
    // Blocks of KB keys: scores one by one (a vector dot product along D each), then the block's
    // softmax update as one vector (one vector exp per block), then the V rows.
    const int KB = source::max_width(t);
    const std::string SV = source::vtype(t, KB);
    s += str("  for (long j0 = 0; j0 < kmax; j0 += ", KB, ") {\n");
    s += str("    ", T, " sc[RQ][", KB, "];\n");
    s += str("    for (int jb = 0; jb < ", KB,
             "; ++jb) {\n      const long j = min(j0 + jb, LK - 1);\n");
    s += str("      __global const ", T, "* kr = in1 + off1 + ko + j * ", krs, "L;\n");
    s += str("      ", VT, " kv[NQ > 0 ? NQ : 1];\n");
    s += str("      for (int c = 0; c < NQ; ++c) kv[c] = ",
             source::vload(str("kr + c * ", W * kcs, "L"), kcs, W, t), ";\n");
    s += "#pragma unroll\n      for (int r = 0; r < RQ; ++r) {\n";
    if (NQ > 0) {
      s += str("        ", VT, " d = qv[r][0] * kv[0];\n");
      s += "        for (int c = 1; c < NQ; ++c) d = fma(qv[r][c], kv[c], d);\n";
      s += str("        ", T, " x = nef_hsum", W, "(d) * ", source::lit(scale, t));
    } else {
      s += str("        ", T, " x = (", T, ")0 * ", source::lit(scale, t));
    }
    if (has_mask) {
      std::string mv = str("mk[min(i0 + r, LQ - 1) * ", mrs, "L + j * ", mcs, "L]");
      if (in_[3].dtype == DType::Bool) s += str(" + (", mv, " ? (", T, ")0 : -INFINITY)");
      else s += str(" + ", cstyle::load_as_compute(mv, in_[3].dtype, t, cstyle::kOpenCL));
    }
    s += ";\n";
    s += "        sc[r][jb] = j0 + jb < kend[r] ? x : -INFINITY;\n      }\n    }\n";
    s += "#pragma unroll\n    for (int r = 0; r < RQ; ++r) {\n";
    s += str("      const ", SV, " x = ", source::vload("sc[r]", 1, KB, t), ";\n");
    // NaN or +inf: the row is NaN (the rest only has to finish); -inf: not attended.
    s += str("      bad[r] |= any(isnan(x) | isequal(x, (", SV, ")INFINITY));\n");
    s += str("      ", T, " bm = x.s0;\n");
    s += str("      for (int u = 1; u < ", KB, "; ++u) bm = fmax(bm, sc[r][u]);\n");
    s += str("      if (bm > m[r]) {\n        const ", T, " a = exp(m[r] - bm);\n");
    s += str("        l[r] *= a;\n        for (int c = 0; c < NV; ++c) acc[r][c] *= (", VV,
             ")(a);\n");
    s += "        m[r] = bm;\n      }\n";
    s += str("      if (m[r] == -INFINITY) continue;  // nothing attended yet\n");
    s += str("      const ", SV, " p = select(exp(x - m[r]), (", SV, ")0, isequal(x, (", SV,
             ")(-INFINITY)));\n");
    s += str("      l[r] += nef_hsum", KB, "(p);\n");
    s += str("      ", T, " pl[", KB, "];\n      ", source::vstore("p", "pl", KB), ";\n");
    s += str("      for (int jb = 0; jb < ", KB, "; ++jb) {\n        if (pl[jb] == 0) continue;\n");
    s += str("        __global const ", T, "* vr = in2 + off2 + vo + (j0 + jb) * ", vrs, "L;\n");
    s += str("        for (int c = 0; c < NV; ++c) acc[r][c] = fma(",
             source::vload(str("vr + c * ", WV * vcs, "L"), vcs, WV, t), ", (", VV,
             ")(pl[jb]), acc[r][c]);\n");
    s += "      }\n    }\n  }\n";
    s += "  for (int r = 0; r < RQ; ++r) {\n    const long i = i0 + r;\n    if (i >= LQ) break;\n";
    s += str("    __global ", T, "* y = out + out_off + (b * LQ + i) * ", Dv, "L;\n");
    s += "    if (bad[r] || !(l[r] > 0)) {\n";
    s += str("      const ", T, " f = ", empty_fill(geo, "bad[r]"), ";\n");
    s += str("      for (int d = 0; d < ", Dv, "; ++d) y[d] = f;\n      continue;\n    }\n");
    s += str("    const ", T, " inv = (", T, ")1 / l[r];\n");
    s += str("    for (int c = 0; c < NV; ++c) ",
             source::vstore("acc[r][c] * inv", str("y + c * ", WV), WV), ";\n");
    s += "  }\n}\n";

    return s;
  }

  // Lanes = query rows: VW rows per item, blocks of kKeyBlock keys.
  std::string rows_source(const Geo& geo, int lanes, int64_t qb) const {
    // References, not a structured binding: clang 14 (fuzz builds) cannot capture bindings.
    const auto& batch = geo.batch;
    const auto& Lq = geo.Lq;
    const auto& D = geo.D;
    const auto& Lk = geo.Lk;
    const auto& Dv = geo.Dv;
    const auto& t = geo.t;
    const auto& T = geo.T;
    const auto& has_mask = geo.has_mask;
    const auto& causal = geo.causal;
    const auto& scale = geo.scale;
    const auto& ops = geo.ops;
    const auto& qrs = geo.qrs;
    const auto& qcs = geo.qcs;
    const auto& krs = geo.krs;
    const auto& kcs = geo.kcs;
    const auto& vrs = geo.vrs;
    const auto& vcs = geo.vcs;
    const auto& mrs = geo.mrs;
    const auto& mcs = geo.mcs;
    const auto& in_types = geo.in_types;
    const std::string VT = source::vtype(t, lanes);
    const int64_t KB = kKeyBlock;
    // Per-lane expressions: row index of lane l (clamped: lanes past the end repeat the last row).
    auto lane_vec = [&](const std::function<std::string(int)>& f) {
      std::string e = str("(", VT, ")(");
      for (int l = 0; l < lanes; ++l) e += str(l ? ", " : "", f(l));
      return e + ")";
    };
    auto row = [&](int l) { return str("min(i0 + ", l, "L, LQ - 1)"); };
    std::string s = cstyle::kOpenCL.preamble;
    s += str("#define LQ ", Lq, "L\n#define LK ", Lk, "L\n#define D_ ", D, "\n#define DV ", Dv,
             "\n#define KB ", KB, "\n");
    s += str(cstyle::kOpenCL.kernel, " nef_attention(", source::params(t, in_types), ") {\n");
    s += str("  const long g = get_global_id(0);\n  if (g >= ", numel(batch) * qb, "L) return;\n");
    s += str("  const long i0 = (g % ", qb, "L) * ", lanes, "L, b = g / ", qb, "L;\n");
    s += source::offsets("b", batch, ops);
    s += str("  __global const ", T, "* Q = in0 + off0 + qo;\n");
    s += str("  __global const ", T, "* K = in1 + off1 + ko;\n");
    s += str("  __global const ", T, "* V = in2 + off2 + vo;\n");
    if (has_mask)
      s += str("  __global const ", source::ctype(in_[3].dtype), "* mk = in3 + off3 + mo;\n");
    // q transposed: one vector per head dim, lanes = rows.
    s += str("  ", VT, " qt[D_ > 0 ? D_ : 1];\n");
    s += str("  for (int d = 0; d < D_; ++d) qt[d] = ",
             lane_vec([&](int l) { return str("Q[", row(l), " * ", qrs, "L + d * ", qcs, "L]"); }),
             ";\n");
    s += str("  ", VT, " acc[DV > 0 ? DV : 1];\n  for (int d = 0; d < DV; ++d) acc[d] = 0;\n");
    s += str("  ", VT, " m = -INFINITY, l = 0, bad = 0;\n");
    // Keys a lane sees: j < kend (causal: bottom-right aligned), as a float vector (exact).
    if (causal) {
      s += str("  const ", VT, " kend = ", lane_vec([&](int l) {
                 return str("(", T, ")clamp(", row(l), " + LK - LQ + 1, 0L, LK)");
               }),
               ";\n");
      s += str("  const long kmax = clamp(min(i0 + ", lanes - 1,
               "L, LQ - 1) + LK - LQ + 1, 0L, LK);\n");
    } else {
      s += str("  const ", VT, " kend = (", VT, ")((", T, ")LK);\n  const long kmax = LK;\n");
    }
    s += "  for (long j0 = 0; j0 < kmax; j0 += KB) {\n";
    s += str("    ", VT, " sc[KB];\n");
    s += "#pragma unroll\n    for (int jb = 0; jb < KB; ++jb) sc[jb] = 0;\n";
    s += "    for (int d = 0; d < D_; ++d) {\n      const " + VT + " q = qt[d];\n";
    s += str("#pragma unroll\n      for (int jb = 0; jb < KB; ++jb) sc[jb] = fma(q, (", VT,
             ")(K[min(j0 + jb, LK - 1) * ", krs, "L + d * ", kcs, "L]), sc[jb]);\n    }\n");
    // Scale, mask, the lanes' key limits; the block max; NaN/+inf flags.
    s += str("    ", VT, " bm = -INFINITY;\n");
    s += "#pragma unroll\n    for (int jb = 0; jb < KB; ++jb) {\n      const long j = min(j0 + jb, "
         "LK - 1);\n";
    s += str("      ", VT, " x = sc[jb] * ", source::lit(scale, t));
    if (has_mask) {
      auto mval = [&](int l) {
        std::string mv = str("mk[", mrs == 0 ? std::string("0") : str(row(l), " * ", mrs),
                             "L + j * ", mcs, "L]");
        if (in_[3].dtype == DType::Bool) return str("(", mv, " ? (", T, ")0 : (", T, ")-INFINITY)");
        return cstyle::load_as_compute(mv, in_[3].dtype, t, cstyle::kOpenCL);
      };
      if (mrs == 0) s += str(" + (", VT, ")(", mval(0), ")");  // one mask row for every lane
      else s += str(" + ", lane_vec(mval));
    }
    s += ";\n";
    s += str("      x = select((", VT, ")(-INFINITY), x, isless((", VT, ")((", T,
             ")(j0 + jb)), kend));\n");
    s += str("      bad = select(bad, (", VT, ")1, isnan(x) | isequal(x, (", VT, ")INFINITY));\n");
    s += "      bm = fmax(bm, x);\n      sc[jb] = x;\n    }\n";
    // A grown max rescales what was accumulated (lanes still at -inf keep their zeros).
    s += str("    const ", VT, " mn = fmax(m, bm);\n");
    s += "    if (any(isgreater(mn, m))) {\n";
    s += str("      const ", VT, " a = select(exp(m - mn), (", VT, ")1, isequal(mn, (", VT,
             ")(-INFINITY)));\n");
    s += "      l *= a;\n      for (int d = 0; d < DV; ++d) acc[d] *= a;\n      m = mn;\n    }\n";
    s += str("    ", VT, " p[KB];\n");
    s += "#pragma unroll\n    for (int jb = 0; jb < KB; ++jb) {\n";
    s += str("      p[jb] = select(exp(sc[jb] - m), (", VT, ")0, isequal(sc[jb], (", VT,
             ")(-INFINITY)));\n");
    s += "      l += p[jb];\n    }\n";
    s += "    for (int d = 0; d < DV; ++d) {\n      " + VT + " a = acc[d];\n";
    s += str("#pragma unroll\n      for (int jb = 0; jb < KB; ++jb) a = fma(p[jb], (", VT,
             ")(V[min(j0 + jb, LK - 1) * ", vrs, "L + d * ", vcs, "L]), a);\n");
    s += "      acc[d] = a;\n    }\n  }\n";
    // Rows: acc / l, or the empty/NaN fill.
    s += str("  ", T, " lb[", lanes, "], ll[", lanes, "];\n");
    s += str("  ", source::vstore("bad", "lb", lanes), ";\n  ", source::vstore("l", "ll", lanes),
             ";\n");
    s += str("  const ", VT, " inv = (", T, ")1 / l;\n");
    s += str("  const int rows = (int)min((long)", lanes, ", LQ - i0);\n");
    s += "  __global " + T + "* y = out + out_off + (b * LQ + i0) * DV;\n";
    s += str("  for (int d = 0; d < DV; ++d) {\n    ", T, " v[", lanes, "];\n    ",
             source::vstore("acc[d] * inv", "v", lanes), ";\n");
    s += "    for (int r = 0; r < rows; ++r) y[r * DV + d] = v[r];\n  }\n";
    s += "  for (int r = 0; r < rows; ++r)\n    if (lb[r] != 0 || !(ll[r] > 0)) {\n";
    s += str("      const ", T, " f = ", empty_fill(geo, "lb[r] != 0"), ";\n");
    s += "      for (int d = 0; d < DV; ++d) y[r * DV + d] = f;\n    }\n}\n";
    return s;
  }
};

std::shared_ptr<OpenclKernel> make(OpenclDevice& dev, const ir::Node& n, const ir::Graph& g) {
  return std::make_shared<AttentionKernel>(dev, n, g.input_types(n));
}

}  // namespace

const Family kAttentionFamily = {supports, make};

}  // namespace nef::backend::opencl
