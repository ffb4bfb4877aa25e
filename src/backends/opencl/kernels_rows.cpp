// Row kernels on OpenCL: softmax and log_softmax over any axis, layernorm and rmsnorm over the
// trailing dims x.shape[axis:] (weight and bias broadcast to that shape), with the CPU kernels'
// arithmetic (softmax.cpp, norm.cpp): values in the compute type (float, double for float64
// outputs), max-subtracted exponentials, row sums and norm statistics accumulated in double
// (float on a device without fp64), two-pass variance, separately rounded products and sums,
// the same NaN and inf propagation.
//
// One work item per row, walking it with explicit vectors where the row is contiguous (what CPU
// devices such as PoCL turn into SIMD; a strided or multi-dim row goes element by element). Few
// long rows: a work group per row instead, each item taking a contiguous chunk, partial maxima
// and sums combined in local memory.
#include <algorithm>
#include <functional>

#include "backends/cstyle/render.h"
#include "backends/opencl/kernel_source.h"
#include "backends/opencl/kernels.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

enum class Kind { Softmax, LogSoftmax, LayerNorm, RmsNorm };

constexpr int64_t kGroupRows = 16;    // fewer rows than this, each long: a group per row
constexpr int64_t kGroupMinN = 8192;  // ... when a row has at least this many elements

Kind kind_of(const ir::Node& n) {
  if (n.is("softmax")) return Kind::Softmax;
  if (n.is("log_softmax")) return Kind::LogSoftmax;
  if (n.is("layernorm")) return Kind::LayerNorm;
  return Kind::RmsNorm;
}

bool is_norm(Kind k) { return k == Kind::LayerNorm || k == Kind::RmsNorm; }

bool float_on(DType t, const DeviceInfo& d) {
  return (t == DType::Float32 || t == DType::Float64) && storable(t, d);
}

bool supports(const ir::Node& n, const ir::Graph& g, const DeviceInfo& d) {
  if (!float_on(n.type.dtype, d)) return false;
  for (const ir::TensorType& t : g.input_types(n))
    if (!float_on(t.dtype, d)) return false;
  return true;
}

class RowKernel final : public OpenclKernel {
 public:
  RowKernel(OpenclDevice& dev, const ir::Node& n, std::vector<ir::TensorType> in)
      : OpenclKernel(dev, n, in, str("opencl.", n.op->name, ".", dtype_name(n.type.dtype))),
        kind_(kind_of(n)) {
    const Shape& x = in_[0].shape;
    const int rank = int(x.size());
    axis_ = rank == 0 ? 0 : normalize_axis(node_.attrs.get_int("axis"), rank, n.op->name.c_str());
    if (is_norm(kind_)) {
      row_shape_ = Shape(x.begin() + std::min(axis_, rank), x.end());
      outer_shape_ = Shape(x.begin(), x.begin() + std::min(axis_, rank));
    } else if (rank > 0) {
      row_shape_ = {x[axis_]};
      for (int d = 0; d < rank; ++d)
        if (d != axis_) outer_shape_.push_back(x[d]);
    }
    n_ = numel(row_shape_);
    rows_ = n_ > 0 ? numel(x) / n_ : 0;
  }

 protected:
  Launch render(const std::vector<Strides>& strides) const override {
    const Shape& x = in_[0].shape;
    const int rank = int(x.size());
    const Strides out_st = contiguous_strides(x);
    // Row base offsets (over the outer dims) and element offsets (over the row dims) of x, y,
    // and the weight and bias (broadcast over the row).
    Layout lay;
    lay.row_ops = {{"io", {}}, {"oo", {}}};
    lay.elem_ops = {{"xj", {}}, {"yj", {}}};
    for (int d = 0; d < rank; ++d) {
      const bool in_row = is_norm(kind_) ? d >= axis_ : d == axis_;
      auto& ops = in_row ? lay.elem_ops : lay.row_ops;
      ops[0].strides.push_back(strides[0][d]);
      ops[1].strides.push_back(out_st[d]);
    }
    for (size_t k = 1; k < in_.size(); ++k)
      lay.elem_ops.push_back(
          {str("p", k), broadcast_strides(in_[k].shape, strides[k], row_shape_)});
    // A row that is one dim for every operand (after merging contiguous dims) is walked by a
    // single stride per operand; x and y contiguous along it: whole vectors.
    std::vector<Strides> est;
    for (const source::Offset& o : lay.elem_ops) est.push_back(o.strides);
    const source::Merged em = source::merge_dims(row_shape_, est);
    lay.linear = em.shape.size() <= 1;
    if (lay.linear)
      for (const Strides& s : em.strides) lay.step.push_back(s.empty() ? 0 : s[0]);
    lay.w = lay.linear && lay.step[0] == 1 && lay.step[1] == 1 ? source::max_width(node_.type.dtype)
                                                               : 1;
    // Rows along a strided axis whose neighbours are contiguous (softmax over axis 0, a
    // transposed x): an item takes a vector of neighbouring rows instead.
    if (lay.w == 1) {
      const source::Merged om =
          source::merge_dims(outer_shape_, {lay.row_ops[0].strides, lay.row_ops[1].strides});
      if (!om.shape.empty() && om.strides[0].back() == 1) {
        int w = int(source::pow2_at_most(om.shape.back(), source::max_width(node_.type.dtype)));
        while (om.shape.back() % w != 0) w /= 2;
        if (w > 1) {
          Launch l;
          l.entry = "nef_row";
          l.source = source_across(lay, w, om.strides[1].back());
          l.global = size_t(rows_ / w);
          l.local = source::local_size(int64_t(l.global), dev_.info());
          return l;
        }
      }
    }

    const bool group = rows_ < kGroupRows && n_ >= kGroupMinN;
    const int64_t L = group ? source::pow2_at_most(n_ / 2048, 64) : 1;
    Launch l;
    l.entry = "nef_row";
    l.source = source(lay, L);
    if (L > 1 && dev_.kernel(l.source, l.entry).max_work_group < size_t(L)) {
      l.source = source(lay, 1);
      l.global = size_t(rows_);
      l.local = source::local_size(int64_t(l.global), dev_.info());
      return l;
    }
    l.global = size_t(rows_ * L);
    l.local = L > 1 ? size_t(L) : source::local_size(int64_t(l.global), dev_.info());
    return l;
  }

 private:
  struct Layout {
    std::vector<source::Offset> row_ops, elem_ops;  // (x, y, [weight, bias]) offsets
    bool linear = true;
    std::vector<int64_t> step;  // linear rows: each operand's stride along the row
    int w = 1;                  // vector width
  };

  std::string source(const Layout& lay, int64_t L) const {
    const DType out = node_.type.dtype;
    const DType c = out;  // compute type: float, or double for float64 outputs
    const DType a = dev_.info().fp64 ? DType::Float64 : c;  // sums and statistics
    const std::string C = cstyle::compute_type(c), A = cstyle::compute_type(a);
    const int W = lay.w;
    std::vector<DType> in_types;
    for (const ir::TensorType& t : in_) in_types.push_back(t.dtype);

    // Expressions for element j (a vector of w elements from j): operand k's value in the
    // compute type, converted to type `to`; the store into y.
    auto conv = [&](const std::string& e, DType from, DType to, int w) {
      if (from == to) return e;
      return w == 1 ? str("((", source::ctype(to), ")(", e, "))")
                    : str("convert_", source::vtype(to, w), "(", e, ")");
    };
    auto operand = [&](size_t k, int w) {
      const std::string base = k == 0 ? std::string("x") : str("in", k, " + off", k);
      if (!lay.linear) {
        const std::string e =
            k == 0 ? std::string("x[xj]") : str("in", k, "[off", k, " + p", k, "]");
        return conv(e, in_[k].dtype, c, 1);
      }
      const int64_t s = lay.step[k == 0 ? 0 : k + 1];
      std::string e = s == 0 && w > 1
                          ? str("((", source::vtype(in_[k].dtype, w), ")((", base, ")[0]))")
                          : source::vload(str(base, " + j * ", s, "L"), s, w, in_[k].dtype);
      return conv(e, in_[k].dtype, c, w);
    };
    auto store = [&](const std::string& v, int w) {
      if (!lay.linear) return str("y[yj] = ", v, ";");
      return source::vstore(v, str("y + j * ", lay.step[1], "L"), w) + ";";
    };
    const std::string elem =
        lay.linear ? std::string() : source::offsets("j", row_shape_, lay.elem_ops, "    ");
    // A loop over the item's range [jb, je): whole vectors, then the tail element by element.
    auto loop = [&](const std::function<std::string(int)>& body) {
      std::string s;
      if (W > 1) {
        s += str("  for (long j = jb; j + ", W, " <= je; j += ", W, ") {\n", body(W), "  }\n");
        s += str("  for (long j = jb + (je - jb) / ", W, " * ", W, "; j < je; ++j) {\n", body(1),
                 "  }\n");
      } else {
        s += str("  for (long j = jb; j < je; ++j) {\n", elem, body(1), "  }\n");
      }
      return s;
    };
    auto vt = [&](DType t, int w) { return source::vtype(t, w); };

    std::string s = cstyle::kOpenCL.preamble;
    s += "#pragma OPENCL FP_CONTRACT OFF\n";  // the CPU rounds products and sums separately
    s += source::hsum_helpers(a, W);
    s += str("#define N_ ", n_, "L\n#define ROWS ", rows_, "L\n#define L_ ", L, "\n");
    s += cstyle::kOpenCL.kernel;
    if (L > 1) s += " __attribute__((reqd_work_group_size(L_, 1, 1)))";
    s += str(" nef_row(", source::params(out, in_types), ") {\n");
    if (L > 1) {
      s += str("  __local ", C, " red_c[L_];\n  __local ", A, " red_a[L_];\n");
      s += "  const long row = get_group_id(0);\n  const int t = get_local_id(0);\n";
      const int64_t chunk = (n_ + L - 1) / L + W - 1;
      s += str("  const long jb = min(N_, t * ", chunk / W * W,
               "L);\n  const long je = min(N_, jb + ", chunk / W * W, "L);\n");
    } else {
      s += "  const long row = get_global_id(0);\n  if (row >= ROWS) return;\n";
      s += "  const long jb = 0, je = N_;\n";
    }
    s += source::offsets("row", outer_shape_, lay.row_ops);
    s += str("  __global const ", source::ctype(in_[0].dtype), "* x = in0 + off0 + io;\n");
    s += str("  __global ", source::ctype(out), "* y = out + out_off + oo;\n");
    // Partials of the items of a group, combined in local memory.
    auto combine = [&](const std::string& var, const std::string& buf, const std::string& op) {
      if (L == 1) return std::string();
      return str("  ", buf, "[t] = ", var, ";\n  barrier(CLK_LOCAL_MEM_FENCE);\n",
                 "  for (int h = L_ / 2; h > 0; h >>= 1) {\n    if (t < h) {\n      const ",
                 buf == "red_c" ? C : A, " a = ", buf, "[t], b = ", buf, "[t + h];\n      ", buf,
                 "[t] = ", op, ";\n    }\n    barrier(CLK_LOCAL_MEM_FENCE);\n  }\n  ", var, " = ",
                 buf, "[0];\n  barrier(CLK_LOCAL_MEM_FENCE);\n");
    };
    // Sum of a vector accumulator's lanes into the scalar one.
    auto fold_sum = [&](const std::string& vec, const std::string& scalar) {
      return W > 1 ? str("  ", scalar, " += nef_hsum", W, "(", vec, ");\n") : std::string();
    };

    if (!is_norm(kind_)) {
      // The max keeps the first NaN (v > m || v != v), lane by lane, then across lanes.
      s += str("  ", C, " m = -INFINITY;\n");
      if (W > 1) s += str("  ", vt(c, W), " mv = -INFINITY;\n");
      s += loop([&](int w) {
        if (w == 1)
          return str("    const ", C, " v = ", operand(0, 1),
                     ";\n    m = (v > m || v != v) ? v : m;\n");
        return str("    const ", vt(c, w), " v = ", operand(0, w),
                   ";\n    mv = select(mv, v, isgreater(v, mv) | isnan(v));\n");
      });
      if (W > 1)
        s += str("  {\n    ", C, " lanes[", W, "];\n    ", source::vstore("mv", "lanes", W),
                 ";\n    for (int i = 0; i < ", W,
                 "; ++i) m = (lanes[i] > m || lanes[i] != lanes[i]) ? lanes[i] : m;\n  }\n");
      s += combine("m", "red_c", "(b > a || b != b) ? b : a");
      s += str("  ", A, " sum = 0;\n");
      if (W > 1) s += str("  ", vt(a, W), " sv = 0;\n");
      s += loop([&](int w) {
        return str("    ", w == 1 ? "sum" : "sv",
                   " += ", conv(str("exp(", operand(0, w), " - m)"), c, a, w), ";\n");
      });
      s += fold_sum("sv", "sum");
      s += combine("sum", "red_a", "a + b");
      if (kind_ == Kind::Softmax) {
        s += str("  const ", C, " inv = (", C, ")((", A, ")1 / sum);\n");
        s += loop([&](int w) {
          return str("    ", store(str("exp(", operand(0, w), " - m) * inv"), w), "\n");
        });
      } else {
        s += str("  const ", C, " shift = m + (", C, ")log(sum);\n");
        s += loop(
            [&](int w) { return str("    ", store(str(operand(0, w), " - shift"), w), "\n"); });
      }
    } else {
      const bool rms = kind_ == Kind::RmsNorm;
      const double eps = node_.attrs.get_float("eps");
      if (rms) {
        s += str("  const ", A, " mean = 0;\n");
      } else {
        s += str("  ", A, " sum = 0;\n");
        if (W > 1) s += str("  ", vt(a, W), " sv = 0;\n");
        s += loop([&](int w) {
          return str("    ", w == 1 ? "sum" : "sv", " += ", conv(operand(0, w), c, a, w), ";\n");
        });
        s += fold_sum("sv", "sum");
        s += combine("sum", "red_a", "a + b");
        s += str("  const ", A, " mean = sum / (", A, ")N_;\n");
      }
      s += str("  ", A, " ss = 0;\n");
      if (W > 1) s += str("  ", vt(a, W), " ssv = 0;\n");
      s += loop([&](int w) {
        return str("    const ", vt(a, w), " d = ", conv(operand(0, w), c, a, w), " - mean;\n    ",
                   w == 1 ? "ss" : "ssv", " += d * d;\n");
      });
      s += fold_sum("ssv", "ss");
      s += combine("ss", "red_a", "a + b");
      s += str("  const ", C, " rstd = (", C, ")((", A, ")1 / sqrt(ss / (", A, ")N_ + ",
               source::lit(eps, a), "));\n");
      s += str("  const ", C, " cm = (", C, ")mean;\n");
      s += loop([&](int w) {
        std::string b = str("    ", vt(c, w), " v = (", operand(0, w), " - cm) * rstd;\n");
        if (in_.size() > 1) b += str("    v = v * ", operand(1, w), ";\n");
        if (in_.size() > 2) b += str("    v = v + ", operand(2, w), ";\n");
        return b + str("    ", store("v", w), "\n");
      });
    }
    s += "}\n";
    return s;
  }

  // W neighbouring rows per item (row r's x at lane r - r0, contiguous across lanes), walked
  // element by element along the row with every statistic a vector of W rows' values.
  // `out_step`: the distance between neighbouring rows' outputs.
  std::string source_across(const Layout& lay, int W, int64_t out_step) const {
    const DType out = node_.type.dtype;
    const DType c = out;
    const DType a = dev_.info().fp64 ? DType::Float64 : c;
    const std::string VC = source::vtype(c, W), VA = source::vtype(a, W);
    const std::string A = cstyle::compute_type(a);
    std::vector<DType> in_types;
    for (const ir::TensorType& t : in_) in_types.push_back(t.dtype);
    auto conv = [&](const std::string& e, DType from, DType to, int w) {
      if (from == to) return e;
      return w == 1 ? str("((", source::ctype(to), ")(", e, "))")
                    : str("convert_", source::vtype(to, w), "(", e, ")");
    };
    const std::string xoff = lay.linear ? str("j * ", lay.step[0], "L") : std::string("xj");
    const std::string yoff = lay.linear ? str("j * ", lay.step[1], "L") : std::string("yj");
    const std::string X =
        conv(source::vload(str("x + ", xoff), 1, W, in_[0].dtype), in_[0].dtype, c, W);
    // The weight and bias are the same for every row: one element, broadcast.
    auto param = [&](size_t k) {
      const std::string off = lay.linear ? str("j * ", lay.step[k + 1], "L") : str("p", k);
      return str("((", VC, ")(", conv(str("in", k, "[off", k, " + ", off, "]"), in_[k].dtype, c, 1),
                 "))");
    };
    auto store = [&](const std::string& v) {
      if (out_step == 1) return source::vstore(v, str("y + ", yoff), W) + ";";
      return str("{ ", source::ctype(out), " v_[", W, "]; ", source::vstore(v, "v_", W),
                 "; for (int l = 0; l < ", W, "; ++l) y[", yoff, " + l * ", out_step,
                 "L] = v_[l]; }");
    };
    const std::string elem =
        lay.linear ? std::string() : source::offsets("j", row_shape_, lay.elem_ops, "    ");
    auto loop = [&](const std::string& body) {
      return str("  for (long j = 0; j < N_; ++j) {\n", elem, body, "  }\n");
    };
    std::string s = cstyle::kOpenCL.preamble;
    s += "#pragma OPENCL FP_CONTRACT OFF\n";
    s += str("#define N_ ", n_, "L\n");
    s += str(cstyle::kOpenCL.kernel, " nef_row(", source::params(out, in_types), ") {\n");
    s += str("  const long row = get_global_id(0) * ", W, "L;\n  if (row >= ", rows_,
             "L) return;\n");
    s += source::offsets("row", outer_shape_, lay.row_ops);
    s += str("  __global const ", source::ctype(in_[0].dtype), "* x = in0 + off0 + io;\n");
    s += str("  __global ", source::ctype(out), "* y = out + out_off + oo;\n");
    if (!is_norm(kind_)) {
      s += str("  ", VC, " m = -INFINITY;\n");
      s += loop(str("    const ", VC, " v = ", X,
                    ";\n    m = select(m, v, isgreater(v, m) | isnan(v));\n"));
      s += str("  ", VA, " sum = 0;\n");
      s += loop(str("    sum += ", conv(str("exp(", X, " - m)"), c, a, W), ";\n"));
      if (kind_ == Kind::Softmax) {
        s += str("  const ", VC, " inv = ", conv(str("(", VA, ")1 / sum"), a, c, W), ";\n");
        s += loop(str("    ", store(str("exp(", X, " - m) * inv")), "\n"));
      } else {
        s += str("  const ", VC, " shift = m + ", conv("log(sum)", a, c, W), ";\n");
        s += loop(str("    ", store(str(X, " - shift")), "\n"));
      }
    } else {
      const double eps = node_.attrs.get_float("eps");
      if (kind_ == Kind::RmsNorm) {
        s += str("  const ", VA, " mean = 0;\n");
      } else {
        s += str("  ", VA, " sum = 0;\n");
        s += loop(str("    sum += ", conv(X, c, a, W), ";\n"));
        s += str("  const ", VA, " mean = sum / (", A, ")N_;\n");
      }
      s += str("  ", VA, " ss = 0;\n");
      s += loop(str("    const ", VA, " d = ", conv(X, c, a, W), " - mean;\n    ss += d * d;\n"));
      s += str(
          "  const ", VC, " rstd = ",
          conv(str("(", VA, ")1 / sqrt(ss / (", A, ")N_ + ", source::lit(eps, a), ")"), a, c, W),
          ";\n");
      s += str("  const ", VC, " cm = ", conv("mean", a, c, W), ";\n");
      std::string b = str("    ", VC, " v = (", X, " - cm) * rstd;\n");
      if (in_.size() > 1) b += str("    v = v * ", param(1), ";\n");
      if (in_.size() > 2) b += str("    v = v + ", param(2), ";\n");
      s += loop(b + str("    ", store("v"), "\n"));
    }
    s += "}\n";
    return s;
  }

  Kind kind_;
  int axis_ = 0;
  Shape row_shape_, outer_shape_;
  int64_t n_ = 1, rows_ = 0;
};

std::shared_ptr<OpenclKernel> make(OpenclDevice& dev, const ir::Node& n, const ir::Graph& g) {
  return std::make_shared<RowKernel>(dev, n, g.input_types(n));
}

}  // namespace

const Family kRowFamily = {supports, make};

}  // namespace nef::backend::opencl
