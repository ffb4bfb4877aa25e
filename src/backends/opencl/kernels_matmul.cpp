// matmul and matmul_epilogue on OpenCL: numpy matmul (1-D operands, broadcast batch dims) of two
// float32 or two float64 operands with any strides, accumulated in the operands' type like the
// CPU's GEMM. matmul_epilogue applies its fused program (cstyle::render_program) to each output
// element as it is stored, with the extra operands broadcast to the output.
//
// Register blocking with explicit vectors, shapes and strides baked in: each work item computes
// one output tile in vector registers (on CPU devices such as PoCL an item's vectors become SIMD
// registers; loops over items are rarely vectorized, so this is what makes the kernel fast).
// Two tile forms, picked from the operands' layout:
// - rows (the common case, B's rows contiguous): up to kRowTiles register tiles of RM rows x NV
//   vectors of VW columns; per block of kKC k's, the item packs B's block into private memory
//   (contiguous: B's rows, often a power-of-two stride apart, would otherwise share a few cache
//   sets and evict each other) and every register tile runs RM x NV vector FMAs per k from it.
//   Rows past M repeat the last row (results dropped); a tile cut by N's edge runs a scalar dot
//   per element. Any layout of B works (non-contiguous rows are gathered while packing).
// - dots (A's rows and B's columns contiguous, e.g. x @ W.T): RM x RN outputs, each a vector of
//   partial dot products along k, summed across lanes at the end (a scalar tail for K % VW).
// Tile sizes shrink to the matrix (down to one scalar per item), so skinny products (a single
// row: decoding) still use whole vectors. A plain matmul stores whole vectors; an epilogue runs
// on vectors too (cstyle::render_program at the vector width), element by element at the edges.
#include <algorithm>
#include <functional>
#include <optional>

#include "backends/cstyle/render.h"
#include "backends/opencl/kernel_source.h"
#include "backends/opencl/kernels.h"
#include "ir/ops/fused_program.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

constexpr int64_t kRowTiles = 4;  // rows form: register tiles per item
constexpr int64_t kKC = 64;       // rows form: k's per packed block of B

// The matmul_epilogue program's input types: the matmul result, then the extra operands.
std::optional<ir::FusedProgram> epilogue_program(const ir::Node& n,
                                                 const std::vector<ir::TensorType>& in,
                                                 const DeviceInfo& d) {
  std::vector<ir::TensorType> p{n.type};
  p.insert(p.end(), in.begin() + 2, in.end());
  try {
    ir::FusedProgram prog = ir::parse_fused_program(n.attrs.get_string("program"), p, n.type.dtype);
    if (prog.compute == DType::Float64 && !d.fp64) return std::nullopt;
    for (const ir::FusedInstr& ins : prog.code)
      if (ins.dtype != prog.compute && ins.dtype != DType::Bool &&
          !(ins.dtype == DType::Float32 && prog.compute == DType::Float64))
        return std::nullopt;
    return prog;
  } catch (const Error&) {
    return std::nullopt;
  }
}

bool supports(const ir::Node& n, const ir::Graph& g, const DeviceInfo& d) {
  const DType t = n.type.dtype;
  if ((t != DType::Float32 && t != DType::Float64) || !storable(t, d)) return false;
  std::vector<ir::TensorType> in = g.input_types(n);
  if (in.size() < 2 || in[0].dtype != t || in[1].dtype != t) return false;
  if (in[0].shape.empty() || in[1].shape.empty()) return false;
  if (n.is("matmul")) return in.size() == 2;
  for (size_t k = 2; k < in.size(); ++k)
    if (!storable(in[k].dtype, d)) return false;
  return epilogue_program(n, in, d).has_value();
}

// Geometry of one product: out = batch x [M] x [N] (the 1-D operands' dims dropped).
struct Geometry {
  int64_t M = 1, N = 1, K = 0;
  Shape batch;
  bool a_mat = true, b_mat = true;  // ranks >= 2
};

Geometry geometry(const Shape& a, const Shape& b) {
  Geometry g;
  g.a_mat = a.size() >= 2;
  g.b_mat = b.size() >= 2;
  g.K = a.back();
  if (g.a_mat) g.M = a[a.size() - 2];
  if (g.b_mat) g.N = b.back();
  Shape ba(a.begin(), a.end() - std::min<size_t>(a.size(), 2));
  Shape bb(b.begin(), b.end() - std::min<size_t>(b.size(), 2));
  g.batch = broadcast_shapes(ba, bb, "matmul");
  return g;
}

// An operand's strides as [batch strides (broadcast)..., row stride, column stride].
struct OperandStrides {
  Strides batch;
  int64_t rs = 0, cs = 0;
};

OperandStrides a_strides(const Shape& s, const Strides& st, const Geometry& g) {
  OperandStrides o;
  const size_t r = s.size();
  if (r == 1) {
    o.cs = st[0];
  } else {
    o.rs = st[r - 2];
    o.cs = st[r - 1];
  }
  Shape bs(s.begin(), s.end() - std::min<size_t>(r, 2));
  Strides bst(st.begin(), st.end() - std::min<size_t>(r, 2));
  o.batch = broadcast_strides(bs, bst, g.batch);
  return o;
}

OperandStrides b_strides(const Shape& s, const Strides& st, const Geometry& g) {
  OperandStrides o;
  const size_t r = s.size();
  if (r == 1) {
    o.rs = st[0];
  } else {
    o.rs = st[r - 2];
    o.cs = st[r - 1];
  }
  Shape bs(s.begin(), s.end() - std::min<size_t>(r, 2));
  Strides bst(st.begin(), st.end() - std::min<size_t>(r, 2));
  o.batch = broadcast_strides(bs, bst, g.batch);
  return o;
}

class MatmulKernel final : public OpenclKernel {
 public:
  MatmulKernel(OpenclDevice& dev, const ir::Node& n, std::vector<ir::TensorType> in,
               std::optional<ir::FusedProgram> prog)
      : OpenclKernel(dev, n, in,
                     str("opencl.", n.op->name, ".", dtype_name(n.type.dtype),
                         prog ? str("[", prog->code.size(), " ops]") : std::string())),
        prog_(std::move(prog)),
        geo_(geometry(in[0].shape, in[1].shape)) {}

 protected:
  Launch render(const std::vector<Strides>& strides) const override {
    const Geometry& g = geo_;
    const OperandStrides sa = a_strides(in_[0].shape, strides[0], g);
    const OperandStrides sb = b_strides(in_[1].shape, strides[1], g);
    const Tile tile = pick_tile(sa, sb);
    Launch l;
    l.entry = "nef_matmul";
    l.source = source(strides, sa, sb, tile);
    l.global = size_t(numel(g.batch) * ceil_div(g.M, tile.rows()) * ceil_div(g.N, tile.cols()));
    l.local = source::local_size(int64_t(l.global), dev_.info());
    return l;
  }

 private:
  static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

  struct Tile {
    bool dots = false;  // the dot form; else the rows form
    int vw = 1;         // vector width (along N for rows, along K for dots)
    int64_t rm = 1;     // rows per register tile
    int64_t nv = 1;     // rows form: vectors per row; dots form: columns per tile
    int64_t rt = 1;     // rows form: register tiles per item (stacked rows sharing packed B)
    int64_t cols() const { return dots ? nv : nv * vw; }
    int64_t rows() const { return rm * rt; }
  };

  Tile pick_tile(const OperandStrides& sa, const OperandStrides& sb) const {
    const Geometry& g = geo_;
    const int wmax = source::max_width(node_.type.dtype);
    Tile t;
    const bool dots_ok = sa.cs == 1 && sb.rs == 1 && g.K >= 8;
    if (dots_ok && (sb.cs != 1 || g.N < 8)) {
      t.dots = true;
      t.vw = int(std::min<int64_t>(wmax, source::pow2_at_most(g.K, wmax)));
      t.rm = std::clamp<int64_t>(g.M, 1, 4);
      t.nv = std::clamp<int64_t>(g.N, 1, 4);
      return t;
    }
    t.vw = int(source::pow2_at_most(g.N, wmax));
    t.nv = g.N >= 2 * t.vw ? 2 : 1;
    t.rm = std::clamp<int64_t>(g.M, 1, 8);
    // Up to four register tiles per item reuse each packed block of B; fewer when that would
    // leave the device's compute units short of items.
    t.rt = std::clamp<int64_t>(ceil_div(g.M, t.rm), 1, kRowTiles);  // >= 1: M = 0 has no tiles
    const int64_t want = 8 * std::max(1, dev_.info().compute_units);
    while (t.rt > 1 && numel(g.batch) * ceil_div(g.M, t.rows()) * ceil_div(g.N, t.cols()) < want)
      t.rt /= 2;
    return t;
  }

  // The source for inputs with these strides: the store function (plain or with the epilogue),
  // then the kernel.
  std::string source(const std::vector<Strides>& strides, const OperandStrides& sa,
                     const OperandStrides& sb, const Tile& tile) const {
    const Geometry& g = geo_;
    const DType t = node_.type.dtype;
    const std::string T = source::ctype(t);
    std::vector<DType> in_types;
    for (const ir::TensorType& x : in_) in_types.push_back(x.dtype);

    std::string s = cstyle::kOpenCL.preamble;
    const bool vec_epilogue = prog_ && !tile.dots && tile.vw > 1;
    if (prog_)
      s += cstyle::math_helpers_overloaded(
          cstyle::kOpenCL, prog_->compute,
          vec_epilogue ? std::vector<int>{1, tile.vw} : std::vector<int>{1});
    s += str("#define M_ ", g.M, "L\n#define N_ ", g.N, "L\n#define K_ ", g.K, "L\n");
    s += str("#define RSA ", sa.rs, "L\n#define CSA ", sa.cs, "L\n#define RSB ", sb.rs,
             "L\n#define CSB ", sb.cs, "L\n");
    s += store_function(strides, 1);
    if (vec_epilogue) s += store_function(strides, tile.vw);
    std::string extra_args;
    for (size_t k = 2; k < in_.size(); ++k) extra_args += str(", in", k, ", off", k);
    auto store = [&](const std::string& i, const std::string& j, const std::string& v) {
      return str("nef_store(out, out_off", extra_args, ", (b * M_ + ", i, ") * N_ + ", j, ", b, ",
                 i, ", ", j, ", ", v, ")");
    };

    const int64_t tiles_m = ceil_div(g.M, tile.rows()), tiles_n = ceil_div(g.N, tile.cols());
    const std::string VT = source::vtype(t, tile.vw);
    if (tile.dots) s += source::hsum_helpers(t, tile.vw);
    s += str(cstyle::kOpenCL.kernel, " nef_matmul(", source::params(t, in_types), ") {\n");
    s += str("  const long g = get_global_id(0);\n  if (g >= ", numel(g.batch) * tiles_m * tiles_n,
             "L) return;\n");
    // Row tiles vary fastest: neighbouring items share B's column panel (the larger operand
    // per item) while it is in cache, and A streams through once per panel.
    s += str("  const long i0 = (g % ", tiles_m, "L) * ", tile.rows(), "L;\n");
    s += str("  const long j0 = ((g / ", tiles_m, "L) % ", tiles_n, "L) * ", tile.cols(), "L;\n");
    s += str("  const long b = g / ", tiles_n * tiles_m, "L;\n");
    s += source::offsets("b", g.batch, {{"ao", sa.batch}, {"bo", sb.batch}});
    s += str("  __global const ", T, "* A = in0 + off0 + ao;\n  __global const ", T,
             "* B = in1 + off1 + bo;\n");
    const bool full_m = g.M % tile.rows() == 0, full_n = g.N % tile.cols() == 0;
    if (!tile.dots) {
      s += rows_body(tile, sb, store, extra_args);
      s += "}\n";
      return s;
    }
    if (!(full_m && full_n))
      s += str("  if (i0 + ", tile.rm, "L <= M_ && j0 + ", tile.cols(), "L <= N_) {\n");
    else s += "  {\n";
    // Accumulators c<r>_<v>.
    for (int64_t r = 0; r < tile.rm; ++r)
      for (int64_t v = 0; v < tile.nv; ++v) s += str("    ", VT, " c", r, "_", v, " = 0;\n");
    {
      // Dots: vectors along k over A's rows and B's columns (both contiguous there).
      const int64_t kv = g.K / tile.vw * tile.vw;
      s += str("    for (long k = 0; k < ", kv, "L; k += ", tile.vw, ") {\n");
      for (int64_t r = 0; r < tile.rm; ++r)
        s += str("      const ", VT, " a", r, " = ",
                 source::vload(str("A + (i0 + ", r, "L) * RSA + k"), 1, tile.vw, t), ";\n");
      for (int64_t c = 0; c < tile.nv; ++c)
        s += str("      const ", VT, " b", c, " = ",
                 source::vload(str("B + (j0 + ", c, "L) * CSB + k"), 1, tile.vw, t), ";\n");
      for (int64_t r = 0; r < tile.rm; ++r)
        for (int64_t c = 0; c < tile.nv; ++c)
          s += str("      c", r, "_", c, " = fma(a", r, ", b", c, ", c", r, "_", c, ");\n");
      s += "    }\n";
      for (int64_t r = 0; r < tile.rm; ++r)
        for (int64_t c = 0; c < tile.nv; ++c)
          s += str("    ", T, " s", r, "_", c, " = nef_hsum", tile.vw, "(c", r, "_", c, ");\n");
      if (kv < g.K) {
        s += str("    for (long k = ", kv, "L; k < K_; ++k) {\n");
        for (int64_t r = 0; r < tile.rm; ++r)
          for (int64_t c = 0; c < tile.nv; ++c)
            s += str("      s", r, "_", c, " = fma(A[(i0 + ", r, "L) * RSA + k], B[(j0 + ", c,
                     "L) * CSB + k], s", r, "_", c, ");\n");
        s += "    }\n";
      }
      for (int64_t r = 0; r < tile.rm; ++r)
        for (int64_t c = 0; c < tile.nv; ++c)
          s += str("    ",
                   store(str("(i0 + ", r, "L)"), str("(j0 + ", c, "L)"), str("s", r, "_", c)),
                   ";\n");
    }
    s += "  }\n";
    if (!(full_m && full_n)) {
      // A tile cut by the matrix edge: a scalar dot per element.
      s += str("  else {\n    for (long i = i0; i < min(i0 + ", tile.rm, "L, M_); ++i)\n",
               "      for (long j = j0; j < min(j0 + ", tile.cols(), "L, N_); ++j) {\n");
      s += str("        ", T, " acc = 0;\n");
      s += "        for (long k = 0; k < K_; ++k) acc = fma(A[i * RSA + k * CSA], B[k * RSB + j * "
           "CSB], acc);\n";
      s += str("        ", store("i", "j", "acc"), ";\n      }\n  }\n");
    }
    s += "}\n";
    return s;
  }

  // The rows form for item (i0, j0): rt register tiles of rm rows x nv vectors of B's columns.
  // Per block of kKC k's, B's block (kKC x cols) is packed into private memory (contiguous, so
  // it stays in L1: B's own rows are often a power-of-two stride apart, which maps them onto a
  // few cache sets) and reused by every register tile. Rows past M repeat the last row (their
  // results are dropped); a tile cut by N's edge runs a scalar dot per element.
  std::string rows_body(const Tile& tile, const OperandStrides& sb,
                        const std::function<std::string(const std::string&, const std::string&,
                                                        const std::string&)>& store,
                        const std::string& extra_args) const {
    const Geometry& g = geo_;
    const DType t = node_.type.dtype;
    const std::string T = source::ctype(t), VT = source::vtype(t, tile.vw);
    const int64_t RM = tile.rm, NV = tile.nv;
    std::string s;
    const bool full_n = g.N % tile.cols() == 0;
    s += full_n ? "  {\n" : str("  if (j0 + ", tile.cols(), "L <= N_) {\n");
    s += str("    ", VT, " acc[", tile.rt, "][", RM, "][", NV, "];\n");
    s += str("    for (int t = 0; t < ", tile.rt, "; ++t)\n      for (int r = 0; r < ", RM,
             "; ++r)\n        for (int v = 0; v < ", NV, "; ++v) acc[t][r][v] = 0;\n");
    s += str("    ", VT, " bp[", kKC, "][", NV, "];\n");
    s += str("    for (long k0 = 0; k0 < K_; k0 += ", kKC, ") {\n");
    s += str("      const int kc = (int)min(", kKC, "L, K_ - k0);\n");
    s += "      for (int kk = 0; kk < kc; ++kk) {\n";
    s += "        __global const " + T + "* bk = B + (k0 + kk) * RSB + j0 * CSB;\n";
    for (int64_t v = 0; v < NV; ++v)
      s += str("        bp[kk][", v,
               "] = ", source::vload(str("bk + ", v * tile.vw * sb.cs, "L"), sb.cs, tile.vw, t),
               ";\n");
    s += "      }\n";
    s += str("      for (int t = 0; t < ", tile.rt, "; ++t) {\n");
    s += str("        const long it = i0 + t * ", RM, "L;\n");
    if (g.M % tile.rows() != 0) s += "        if (it >= M_) break;\n";
    for (int64_t r = 0; r < RM; ++r) {
      const std::string row =
          g.M % RM == 0 ? str("it + ", r, "L") : str("min(it + ", r, "L, M_ - 1)");
      s += str("        __global const ", T, "* a", r, " = A + (", row, ") * RSA + k0 * CSA;\n");
    }
    for (int64_t r = 0; r < RM; ++r)
      for (int64_t v = 0; v < NV; ++v)
        s += str("        ", VT, " c", r, "_", v, " = acc[t][", r, "][", v, "];\n");
    s += "        for (int kk = 0; kk < kc; ++kk) {\n";
    for (int64_t v = 0; v < NV; ++v)
      s += str("          const ", VT, " b", v, " = bp[kk][", v, "];\n");
    for (int64_t r = 0; r < RM; ++r) {
      s += str("          { const ", VT, " a = (", VT, ")(a", r, "[kk * CSA]);");
      for (int64_t v = 0; v < NV; ++v)
        s += str(" c", r, "_", v, " = fma(a, b", v, ", c", r, "_", v, ");");
      s += " }\n";
    }
    s += "        }\n";
    for (int64_t r = 0; r < RM; ++r)
      for (int64_t v = 0; v < NV; ++v)
        s += str("        acc[t][", r, "][", v, "] = c", r, "_", v, ";\n");
    s += "      }\n    }\n";
    // Stores: whole vectors straight into a plain matmul's output, through the epilogue otherwise.
    s += str("    for (int t = 0; t < ", tile.rt, "; ++t)\n      for (int r = 0; r < ", RM,
             "; ++r) {\n");
    s += str("        const long i = i0 + t * ", RM, "L + r;\n");
    if (g.M % tile.rows() != 0) s += "        if (i >= M_) break;\n";
    for (int64_t v = 0; v < NV; ++v) {
      const std::string j = str("j0 + ", v * tile.vw, "L");
      if (!prog_)
        s += str("        ",
                 source::vstore(str("acc[t][r][", v, "]"),
                                str("out + out_off + (b * M_ + i) * N_ + ", j), tile.vw),
                 ";\n");
      else
        s += str("        nef_store_v(out, out_off", extra_args, ", b, i, ", j, ", acc[t][r][", v,
                 "]);\n");
    }
    s += "      }\n  }\n";
    if (!full_n) {
      s += str("  else {\n    for (long i = i0; i < min(i0 + ", tile.rows(), "L, M_); ++i)\n",
               "      for (long j = j0; j < N_; ++j) {\n");
      s += str("        ", T, " acc = 0;\n");
      s += "        for (long k = 0; k < K_; ++k) acc = fma(A[i * RSA + k * CSA], B[k * RSB + j * "
           "CSB], acc);\n";
      s += str("        ", store("i", "j", "acc"), ";\n      }\n  }\n");
    }
    return s;
  }

  // w = 1: nef_store(out, out_off, extras..., o, b, i, j, acc) writes output element (b, i, j),
  // flat index o. w > 1: nef_store_v(out, out_off, extras..., b, i, j, acc) writes the w elements
  // (b, i, j..j+w) from a vector. With an epilogue, its program runs on acc and the extra operands
  // there (as vectors when w > 1).
  std::string store_function(const std::vector<Strides>& strides, int w) const {
    const Geometry& g = geo_;
    const DType t = node_.type.dtype;
    const std::string T = source::ctype(t), VT = source::vtype(t, w);
    std::string params;
    for (size_t k = 2; k < in_.size(); ++k)
      params += str(", __global const ", source::ctype(in_[k].dtype), "* in", k, ", long off", k);
    std::string s = w == 1 ? str("inline void nef_store(__global ", T, "* out, long out_off",
                                 params, ", long o, long b, long i, long j, ", T, " acc) {\n")
                           : str("inline void nef_store_v(__global ", T, "* out, long out_off",
                                 params, ", long b, long i, long j, ", VT, " acc) {\n");
    const std::string dst = w == 1 ? std::string("out + out_off + o")
                                   : std::string("out + out_off + (b * M_ + i) * N_ + j");
    if (!prog_) return s + "  " + source::vstore("acc", dst, w) + ";\n}\n";
    const DType c = prog_->compute;
    std::vector<source::Offset> eo;
    std::vector<int64_t> along_j;
    for (size_t k = 2; k < in_.size(); ++k) {
      Strides es = broadcast_strides(in_[k].shape, strides[k], node_.type.shape);
      eo.push_back({str("e", k), Strides(es.begin(), es.begin() + g.batch.size())});
      size_t d = g.batch.size();
      const int64_t s_m = g.a_mat ? es[d++] : 0;
      const int64_t s_n = g.b_mat ? es[d] : 0;
      along_j.push_back(s_n);
      s += str("  const long m", k, " = i * ", s_m, "L + j * ", s_n, "L;\n");
    }
    s += source::offsets("b", g.batch, eo);
    auto to_compute = [&](const std::string& e, DType from) {
      if (from == c) return e;
      if (w == 1) return cstyle::load_as_compute(e, from, c, cstyle::kOpenCL);
      return str("convert_", source::vtype(c, w), "(", e, ")");
    };
    std::vector<std::string> vals{to_compute("acc", t)};
    for (size_t k = 2; k < in_.size(); ++k) {
      const std::string v = str("v", k), p = str("in", k, " + off", k, " + e", k, " + m", k);
      const int64_t sj = along_j[k - 2];
      // A bool is stored as uchar: loaded as 0/1 numbers, like any other integer.
      const std::string ld = w > 1 && sj == 0
                                 ? str("((", source::vtype(in_[k].dtype, w), ")((", p, ")[0]))")
                                 : source::vload(p, sj, w, in_[k].dtype);
      s += str("  const ", source::vtype(c, w), " ", v, " = ", to_compute(ld, in_[k].dtype), ";\n");
      vals.push_back(v);
    }
    cstyle::RenderedBody body = cstyle::render_program(cstyle::kOpenCL, *prog_, vals, "ep", w);
    s += body.code;
    std::string result = body.result;
    if (t != c)
      result = w == 1 ? cstyle::store_from_compute(result, t, cstyle::kOpenCL)
                      : str("convert_", VT, "(", result, ")");
    s += str("  ", source::vstore(result, dst, w), ";\n}\n");
    return s;
  }

  std::optional<ir::FusedProgram> prog_;
  Geometry geo_;
};

std::shared_ptr<OpenclKernel> make(OpenclDevice& dev, const ir::Node& n, const ir::Graph& g) {
  std::vector<ir::TensorType> in = g.input_types(n);
  std::optional<ir::FusedProgram> prog;
  if (n.is("matmul_epilogue")) {
    prog = epilogue_program(n, in, dev.info());
    NEF_CHECK(prog.has_value(), "[opencl] matmul_epilogue program is not supported");
  }
  return std::make_shared<MatmulKernel>(dev, n, std::move(in), std::move(prog));
}

}  // namespace

const Family kMatmulFamily = {supports, make};

}  // namespace nef::backend::opencl
