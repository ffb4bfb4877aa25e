// Reductions on OpenCL: sum, mean, prod, max, min over any set of axes and argmax, argmin over
// one axis or all (keepdims either way), float32 and float64 inputs of any strides, with the CPU
// kernels' semantics (reduction.cpp): sums and products accumulate in double (so float32 needs an
// fp64 device), mean divides by the reduced count (an empty extent gives NaN), max/min keep
// NaN, argmax/argmin report the first occurrence (the first NaN when there is one) as the
// row-major position among the reduced dims.
//
// Explicit vectors (what CPU devices such as PoCL turn into SIMD), picked from the layout:
// - along the reduction: an item per output walks the reduced elements, the innermost reduced dim
//   (when contiguous) a vector at a time, one accumulator per lane, lanes folded at the end;
// - across outputs: when the innermost kept dim is contiguous instead (e.g. a sum over axis 0),
//   an item computes a vector of neighbouring outputs;
// - few outputs over a long contiguous extent: a work group per output, its items taking
//   contiguous chunks, combined in local memory;
// - anything else: an item per output, element by element.
// Index ties go to the earlier position whenever partial results combine, so argmax/argmin give
// the sequential answer.
#include <algorithm>
#include <functional>

#include "backends/cstyle/render.h"
#include "backends/opencl/kernel_source.h"
#include "backends/opencl/kernels.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

enum class Kind { Sum, Mean, Prod, Max, Min, ArgMax, ArgMin };

constexpr int64_t kGroupOutputs = 16;    // fewer outputs than this...
constexpr int64_t kGroupExtent = 16384;  // ... each over at least this many elements: groups

Kind kind_of(const ir::Node& n) {
  const std::string& o = n.op->name;
  if (o == "sum") return Kind::Sum;
  if (o == "mean") return Kind::Mean;
  if (o == "prod") return Kind::Prod;
  if (o == "max") return Kind::Max;
  if (o == "min") return Kind::Min;
  if (o == "argmax") return Kind::ArgMax;
  return Kind::ArgMin;
}

bool is_arg(Kind k) { return k == Kind::ArgMax || k == Kind::ArgMin; }
bool accumulates(Kind k) { return k == Kind::Sum || k == Kind::Mean || k == Kind::Prod; }

bool supports(const ir::Node& n, const ir::Graph& g, const DeviceInfo& d) {
  std::vector<ir::TensorType> in = g.input_types(n);
  if (in.size() != 1) return false;
  const DType t = in[0].dtype;
  if ((t != DType::Float32 && t != DType::Float64) || !storable(t, d)) return false;
  const Kind k = kind_of(n);
  if (accumulates(k) && !d.fp64) return false;  // the CPU accumulates in double
  return is_arg(k) ? n.type.dtype == DType::Int64 : n.type.dtype == t;
}

// Dims after dropping size-1 dims and merging neighbours that are contiguous in memory.
struct Dims {
  Shape shape;
  Strides strides;
};
Dims merged(const Shape& shape, const Strides& strides) {
  Dims m;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!m.shape.empty() && m.strides.back() == strides[i] * shape[i]) {
      m.shape.back() *= shape[i];
      m.strides.back() = strides[i];
      continue;
    }
    m.shape.push_back(shape[i]);
    m.strides.push_back(strides[i]);
  }
  return m;
}

class ReductionKernel final : public OpenclKernel {
 public:
  ReductionKernel(OpenclDevice& dev, const ir::Node& n, std::vector<ir::TensorType> in)
      : OpenclKernel(dev, n, in, str("opencl.", n.op->name, ".", dtype_name(in[0].dtype))),
        kind_(kind_of(n)) {
    const int rank = int(in_[0].shape.size());
    reduced_.assign(rank, false);
    if (is_arg(kind_)) {
      if (std::optional<int64_t> a = node_.attrs.opt_int("axis"))
        reduced_[normalize_axis(*a, rank, n.op->name.c_str())] = true;
      else std::fill(reduced_.begin(), reduced_.end(), true);
    } else if (const std::vector<int64_t>* axes = node_.attrs.opt_ints("axes")) {
      for (int64_t a : *axes) reduced_[normalize_axis(a, rank, n.op->name.c_str())] = true;
    } else {
      std::fill(reduced_.begin(), reduced_.end(), true);
    }
    for (int d = 0; d < rank; ++d)
      (reduced_[d] ? red_shape_ : kept_shape_).push_back(in_[0].shape[d]);
    extent_ = numel(red_shape_);
    outputs_ = numel(kept_shape_);
  }

 protected:
  Launch render(const std::vector<Strides>& strides) const override {
    Strides kept_st, red_st;
    for (size_t d = 0; d < reduced_.size(); ++d)
      (reduced_[d] ? red_st : kept_st).push_back(strides[0][d]);
    const Dims kept = merged(kept_shape_, kept_st), red = merged(red_shape_, red_st);
    const int wmax = source::max_width(in_[0].dtype);
    Plan p;
    p.kept = kept;
    p.red = red;
    if (outputs_ < kGroupOutputs && extent_ >= kGroupExtent && red.shape.size() == 1) {
      p.mode = Mode::Group;
      p.L = source::pow2_at_most(extent_ / 4096, 64);
      p.w = red.strides[0] == 1 ? wmax : 1;
    } else if (!red.shape.empty() && red.strides.back() == 1 && red.shape.back() >= 2) {
      p.mode = Mode::AlongReduction;
      p.w = int(source::pow2_at_most(red.shape.back(), wmax));
    } else if (!kept.shape.empty() && kept.strides.back() == 1 && kept.shape.back() >= 2 &&
               !red.shape.empty()) {
      p.mode = Mode::AcrossOutputs;
      p.w = int(source::pow2_at_most(kept.shape.back(), wmax));
      while (kept.shape.back() % p.w != 0) p.w /= 2;  // a vector never crosses a row of outputs
      if (p.w == 1) p.mode = Mode::Scalar;
    }
    Launch l;
    l.entry = "nef_reduce";
    l.source = source(p);
    if (p.mode == Mode::Group && dev_.kernel(l.source, l.entry).max_work_group < size_t(p.L)) {
      p.mode = Mode::Scalar;
      p.w = 1;
      l.source = source(p);
    }
    switch (p.mode) {
      case Mode::Group:
        l.global = size_t(outputs_ * p.L);
        l.local = size_t(p.L);
        return l;
      case Mode::AcrossOutputs:
        l.global = size_t(outputs_ / p.w);
        break;
      default:
        l.global = size_t(outputs_);
        break;
    }
    l.local = source::local_size(int64_t(l.global), dev_.info());
    return l;
  }

 private:
  enum class Mode { Scalar, AlongReduction, AcrossOutputs, Group };
  struct Plan {
    Mode mode = Mode::Scalar;
    Dims kept, red;
    int w = 1;      // vector width
    int64_t L = 1;  // work-group size (group mode)
  };

  std::string source(const Plan& p) const {
    const DType t = in_[0].dtype;
    const std::string T = source::ctype(t);
    const std::string O = source::ctype(node_.type.dtype);
    const bool arg = is_arg(kind_);
    const bool acc_double = accumulates(kind_);
    const DType at = acc_double ? DType::Float64 : t;
    const std::string A = source::ctype(at);
    const int W = p.w;
    const std::string VA = source::vtype(at, W), VI = source::vtype(DType::Int64, W);
    const bool greater = kind_ == Kind::Max || kind_ == Kind::ArgMax;
    const char* cmp = greater ? "isgreater" : "isless";
    const char* op = greater ? ">" : "<";
    std::string init = kind_ == Kind::Prod  ? "1"
                       : accumulates(kind_) ? "0"
                       : greater            ? "-INFINITY"
                                            : "INFINITY";

    // Sequential update of one accumulator (scalar: acc/ai; vector: accv/aiv) with value v at
    // flat reduced position(s) r.
    auto update = [&](int w, const std::string& v, const std::string& r) {
      const std::string a = w == 1 ? "acc" : "accv", i = w == 1 ? "ai" : "aiv";
      if (kind_ == Kind::Sum || kind_ == Kind::Mean || kind_ == Kind::Prod) {
        std::string e = w == 1 ? str("(double)(", v, ")")
                               : (t == DType::Float64 ? v : str("convert_", VA, "(", v, ")"));
        return str(a, kind_ == Kind::Prod ? " *= " : " += ", e, ";");
      }
      if (w == 1) {
        std::string better =
            str("(", v, " ", op, " ", a, " || (", v, " != ", v, " && ", a, " == ", a, "))");
        return arg ? str("if (ai < 0 || ", better, ") { acc = ", v, "; ai = ", r, "; }")
                   : str("if ", better, " ", a, " = ", v, ";");
      }
      std::string s =
          str("{ const ", VA, " v_ = ", v, "; const ",
              source::vtype(t == DType::Float64 ? DType::Int64 : DType::Int32, W), " b_ = ", cmp,
              "(v_, accv) | (isnan(v_) & ~isnan(accv)); accv = select(accv, v_, b_);");
      if (arg) s += str(" aiv = select(aiv, ", r, ", convert_", VI, "(b_));");
      return s + " }";
    };

    std::string s = cstyle::kOpenCL.preamble;
    if (acc_double && W > 1) s += source::hsum_helpers(at, W);
    s += str("#define R_ ", extent_, "L\n");
    s += cstyle::kOpenCL.kernel;
    if (p.mode == Mode::Group) s += str(" __attribute__((reqd_work_group_size(", p.L, ", 1, 1)))");
    s += str(" nef_reduce(", source::params(node_.type.dtype, {t}), ") {\n");
    const std::string lanes = [&] {
      std::string e = str("(", VI, ")(");
      for (int l = 0; l < W; ++l) e += str(l ? ", " : "", l);
      return e + ")";
    }();

    // Scalar accumulators always; vector ones when the item walks vectors.
    auto declare = [&] {
      std::string d = str("  ", A, " acc = ", init, ";\n");
      if (arg) d += "  long ai = -1;\n";
      if (W > 1) {
        d += str("  ", VA, " accv = ", init, ";\n");
        if (arg) d += str("  ", VI, " aiv = -1;\n");
      }
      return d;
    };
    // (a, ia) absorbs (b, ib): the better value, an equal one at an earlier position.
    auto absorb = [&](const std::string& a, const std::string& ia, const std::string& b,
                      const std::string& ib) {
      if (!arg) {
        if (accumulates(kind_)) return str(a, kind_ == Kind::Prod ? " *= " : " += ", b, ";");
        return str("if ((", b, " ", op, " ", a, ") || (", b, " != ", b, " && ", a, " == ", a, ")) ",
                   a, " = ", b, ";");
      }
      return str("if (", ib, " >= 0 && (", ia, " < 0 || (", b, " != ", b, " ? (", a, " == ", a,
                 " || ", ib, " < ", ia, ") : (", a, " == ", a, " && (", b, " ", op, " ", a, " || (",
                 b, " == ", a, " && ", ib, " < ", ia, ")))))) { ", a, " = ", b, "; ", ia, " = ", ib,
                 "; }");
    };
    // Folds the vector accumulator's lanes into the scalar one.
    auto fold = [&] {
      if (W == 1) return std::string();
      if (acc_double && kind_ != Kind::Prod) return str("  acc += nef_hsum", W, "(accv);\n");
      std::string f =
          str("  {\n    ", A, " v[", W, "];\n    ", source::vstore("accv", "v", W), ";\n");
      if (arg) f += str("    long iv[", W, "];\n    ", source::vstore("aiv", "iv", W), ";\n");
      f += str("    for (int l = 0; l < ", W, "; ++l) ",
               absorb("acc", "ai", "v[l]", arg ? "iv[l]" : ""), "\n  }\n");
      return f;
    };
    auto result = [&](const std::string& a, const std::string& i) {
      if (arg) return str(i, " < 0 ? 0 : ", i);
      if (kind_ == Kind::Mean) return str("(", O, ")(", a, " / (double)", extent_, ")");
      return str("(", O, ")", a);
    };

    const Dims& kept = p.kept;
    const Dims& red = p.red;
    if (p.mode == Mode::Group) {
      const int64_t sr = red.strides[0];
      const int64_t chunk = ((extent_ + p.L - 1) / p.L + W - 1) / W * W;
      s += "  const long o = get_group_id(0);\n  const int t = get_local_id(0);\n";
      s += str("  __local ", A, " red_v[", p.L, "];\n");
      if (arg) s += str("  __local long red_i[", p.L, "];\n");
      s += source::offsets("o", kept.shape, {{"io", kept.strides}});
      s += str("  __global const ", T, "* x = in0 + off0 + io;\n");
      s += declare();
      s += str("  const long jb = min(R_, t * ", chunk, "L), je = min(R_, jb + ", chunk, "L);\n");
      if (W > 1)
        s += str("  for (long j = jb; j + ", W, " <= je; j += ", W, ") ",
                 update(W, source::vload("x + j", 1, W, t), str("(", lanes, " + j)")), "\n",
                 "  for (long j = jb + (je - jb) / ", W, " * ", W, "; j < je; ++j) ");
      else s += "  for (long j = jb; j < je; ++j) ";
      s += update(1, str("x[j * ", sr, "L]"), "j") + "\n";
      s += fold();
      s += "  red_v[t] = acc;\n";
      if (arg) s += "  red_i[t] = ai;\n";
      s += "  barrier(CLK_LOCAL_MEM_FENCE);\n";
      // Tree over the items; the lower half holds earlier positions.
      s += str("  for (int h = ", p.L, " / 2; h > 0; h >>= 1) {\n    if (t < h) {\n");
      s += str("      ", A, " a = red_v[t];\n");
      if (arg) s += "      long ia = red_i[t];\n";
      s += str("      ", absorb("a", "ia", "red_v[t + h]", arg ? "red_i[t + h]" : ""), "\n");
      s += "      red_v[t] = a;\n";
      if (arg) s += "      red_i[t] = ia;\n";
      s += "    }\n    barrier(CLK_LOCAL_MEM_FENCE);\n  }\n";
      s += str("  if (t == 0) out[out_off + o] = ", result("red_v[0]", "red_i[0]"), ";\n}\n");
      return s;
    }

    // The reduced elements: outer reduced dims (decomposed) x the innermost one.
    const bool along = p.mode == Mode::AlongReduction;
    Shape outer_shape;
    Strides outer_st;
    int64_t inner = 1, inner_st = 0;
    if (!red.shape.empty()) {
      outer_shape.assign(red.shape.begin(), red.shape.end() - 1);
      outer_st.assign(red.strides.begin(), red.strides.end() - 1);
      inner = red.shape.back();
      inner_st = red.strides.back();
    }
    const int64_t outer = numel(outer_shape);
    if (p.mode == Mode::AcrossOutputs) {
      s += str("  const long o = get_global_id(0) * ", W, "L;\n  if (o >= n) return;\n");
    } else {
      s += "  const long o = get_global_id(0);\n  if (o >= n) return;\n";
    }
    s += source::offsets("o", kept.shape, {{"io", kept.strides}});
    s += str("  __global const ", T, "* x = in0 + off0 + io;\n");
    s += declare();
    s += str("  for (long q = 0; q < ", outer, "L; ++q) {\n");
    s += source::offsets("q", outer_shape, {{"qo", outer_st}}, "    ");
    s += "    __global const " + T + "* xq = x + qo;\n";
    const std::string pos = str("q * ", inner, "L + j");
    if (along && W > 1) {
      s += str("    for (long j = 0; j + ", W, " <= ", inner, "L; j += ", W, ") ",
               update(W, source::vload("xq + j", 1, W, t), str("(", lanes, " + ", pos, ")")), "\n");
      s += str("    for (long j = ", inner / W * W, "L; j < ", inner, "L; ++j) ",
               update(1, "xq[j]", pos), "\n");
    } else if (p.mode == Mode::AcrossOutputs) {
      s += str("    for (long j = 0; j < ", inner, "L; ++j) ",
               update(W, source::vload(str("xq + j * ", inner_st, "L"), 1, W, t),
                      str("(", VI, ")(", pos, ")")),
               "\n");
    } else {
      s += str("    for (long j = 0; j < ", inner, "L; ++j) ",
               update(1, str("xq[j * ", inner_st, "L]"), pos), "\n");
    }
    s += "  }\n";
    if (p.mode == Mode::AcrossOutputs) {
      // Lane l is output o + l.
      if (arg) {
        s += str("  ",
                 source::vstore(str("select(aiv, (", VI, ")0, aiv < 0)"), "out + out_off + o", W),
                 ";\n}\n");
      } else if (kind_ == Kind::Mean) {
        s += str("  ",
                 source::vstore(str("convert_", source::vtype(node_.type.dtype, W),
                                    "(accv / (double)", extent_, ")"),
                                "out + out_off + o", W),
                 ";\n}\n");
      } else if (acc_double && t != DType::Float64) {
        s += str("  ",
                 source::vstore(str("convert_", source::vtype(node_.type.dtype, W), "(accv)"),
                                "out + out_off + o", W),
                 ";\n}\n");
      } else {
        s += str("  ", source::vstore("accv", "out + out_off + o", W), ";\n}\n");
      }
      return s;
    }
    s += fold();
    s += str("  out[out_off + o] = ", result("acc", "ai"), ";\n}\n");
    return s;
  }

  Kind kind_;
  std::vector<bool> reduced_;
  Shape kept_shape_, red_shape_;
  int64_t extent_ = 1, outputs_ = 1;
};

std::shared_ptr<OpenclKernel> make(OpenclDevice& dev, const ir::Node& n, const ir::Graph& g) {
  return std::make_shared<ReductionKernel>(dev, n, g.input_types(n));
}

}  // namespace

const Family kReductionFamily = {supports, make};

}  // namespace nef::backend::opencl
