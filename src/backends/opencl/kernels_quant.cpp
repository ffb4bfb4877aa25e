// matmul_dynamic_int8 on OpenCL (ir/ops/quant.cpp; the CPU kernel is qinteger.cpp's): each row of
// x quantized to uint8 codes over its range widened to hold 0, the exact integer product of
// (codes - z) with the int8 weights, then float(acc) * s * w_scale (+ bias) and the activation in
// the CPU's order of float operations, so that both give the same bits (the exact GELU's erf
// aside, which each device computes its own way).
//
// A work group per (row, block of L x 16 columns): its items share the row's quantization (the
// range reduced in local memory, then each item codes a slice of the row into local memory),
// then each item accumulates 16 columns as int32 vectors over K. The divisions of the
// quantization run in double and are rounded once to float: exactly the float quotient the CPU
// computes (a double carries more than twice float's precision), on any device with fp64,
// whatever the accuracy of its float division. Devices without fp64 leave the op to the CPU.
#include <algorithm>

#include "backends/cstyle/render.h"
#include "backends/opencl/kernel_source.h"
#include "backends/opencl/kernels.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

constexpr int kCols = 16;  // columns per work item: one int16 / float16 vector
// The row's codes live in local memory (OpenCL 1.2 guarantees 32 KiB of it).
constexpr int64_t kMaxK = 16384;

bool supports(const ir::Node& n, const ir::Graph& g, const DeviceInfo& d) {
  if (!d.fp64) return false;
  const std::vector<ir::TensorType> in = g.input_types(n);
  if (in.size() < 3 || in[0].dtype != DType::Float32 || in[1].dtype != DType::Int8 ||
      in[2].dtype != DType::Float32 || (in.size() > 3 && in[3].dtype != DType::Float32))
    return false;
  return in[1].shape.size() == 2 && in[1].shape[0] <= kMaxK;
}

class QuantMatmulKernel final : public OpenclKernel {
 public:
  QuantMatmulKernel(OpenclDevice& dev, const ir::Node& n, std::vector<ir::TensorType> in)
      : OpenclKernel(dev, n, in, "opencl.matmul_dynamic_int8") {
    const Shape& x = in_[0].shape;
    K_ = x.back();
    N_ = in_[1].shape[1];
    outer_ = Shape(x.begin(), x.end() - 1);
    rows_ = numel(outer_);
    const std::string& act = node_.attrs.get_string("activation");
    relu_ = act == "relu";
    gelu_ = act == "gelu";
  }

 protected:
  Launch render(const std::vector<Strides>& strides) const override {
    const int64_t items = std::max<int64_t>(1, (N_ + kCols - 1) / kCols);
    int64_t L = source::pow2_at_most(items, 16);
    Launch l;
    l.entry = "nef_qmm";
    l.source = source(strides, L);
    if (L > 1 && dev_.kernel(l.source, l.entry).max_work_group < size_t(L)) {
      L = 1;
      l.source = source(strides, L);
    }
    const int64_t blocks = (items + L - 1) / L;  // column blocks per row
    l.global = size_t(rows_ * blocks * L);
    l.local = size_t(L);
    return l;
  }

 private:
  std::string source(const std::vector<Strides>& strides, int64_t L) const {
    const bool bias = in_.size() > 3;
    const Strides& xs = strides[0];
    const int64_t XS = xs.back(), WK = strides[1][0], WN = strides[1][1], SS = strides[2][0];
    const int64_t BS = bias ? strides[3][0] : 0;
    const int64_t items = std::max<int64_t>(1, (N_ + kCols - 1) / kCols);
    const int64_t blocks = (items + L - 1) / L;
    const int64_t chunk = (K_ + L - 1) / L;

    std::vector<DType> in_types;
    for (const ir::TensorType& t : in_) in_types.push_back(t.dtype);
    std::string s = cstyle::kOpenCL.preamble;
    s += "#pragma OPENCL FP_CONTRACT OFF\n";  // the CPU rounds each product separately
    if (gelu_) s += cstyle::math_helpers_overloaded(cstyle::kOpenCL, DType::Float32, {1, kCols});
    s += str("#define K_ ", K_, "L\n#define N_ ", N_, "L\n#define L_ ", L, "\n");
    s += str(cstyle::kOpenCL.kernel, " __attribute__((reqd_work_group_size(L_, 1, 1))) nef_qmm(",
             source::params(DType::Float32, in_types), ") {\n");
    s += str("  const long g = get_group_id(0);\n  const long row = g / ", blocks,
             "L;\n  const int t = get_local_id(0);\n");
    s += str("  const long n0 = ((g % ", blocks, "L) * L_ + t) * ", kCols, "L;\n");
    s += str("  __global float* y = out + out_off + row * N_;\n");

    // The tail of one output (vector or scalar v): * w_scale (+ bias), then the activation.
    auto finish = [&](const std::string& v, const std::string& col, int w) {
      const std::string VT = source::vtype(DType::Float32, w);
      std::string b = str(
          "    ", v, " = ", v, " * ",
          source::vload(str("in2 + off2 + ", col, " * ", SS, "L"), SS, w, DType::Float32), ";\n");
      if (bias)
        b += str("    ", v, " = ", v, " + ",
                 source::vload(str("in3 + off3 + ", col, " * ", BS, "L"), BS, w, DType::Float32),
                 ";\n");
      // relu as the CPU's: 0 where v < 0 (NaN and -0 stay).
      if (relu_) b += str("    ", v, " = select(", v, ", (", VT, ")0.0f, ", v, " < 0.0f);\n");
      if (gelu_) b += str("    ", v, " = nef_gelu(", v, ");\n");
      return b;
    };

    if (K_ == 0) {  // an empty product: the bias alone, through the activation (as the CPU)
      s += "  if (n0 >= N_) return;\n";
      s += "  for (long j = n0; j < min(N_, n0 + 16L); ++j) {\n    float v = 0.0f;\n";
      if (bias) s += str("    v = in3[off3 + j * ", BS, "L];\n");
      if (relu_) s += "    v = v < 0.0f ? 0.0f : v;\n";
      if (gelu_) s += "    v = nef_gelu(v);\n";
      s += "    y[j] = v;\n  }\n}\n";
      return s;
    }

    // 1. The row's range, each item over its slice, combined in local memory.
    s += "  __local uchar codes[K_];\n  __local float red_hi[L_], red_lo[L_];\n"
         "  __local int red_bad[L_];\n";
    s += source::offsets("row", outer_, {{"xo", Strides(xs.begin(), xs.end() - 1)}});
    s += "  __global const float* x = in0 + off0 + xo;\n";
    s += str("  const long kb = min(K_, (long)t * ", chunk, "L), ke = min(K_, kb + ", chunk,
             "L);\n");
    s += "  float hi = 0.0f, lo = 0.0f;\n  int bad = 0;\n";
    s += str("  for (long k = kb; k < ke; ++k) {\n    const float v = x[k * ", XS,
             "L];\n    bad |= isnan(v) | isinf(v);\n    hi = fmax(hi, v);\n    lo = fmin(lo, v);\n"
             "  }\n");
    s += "  red_hi[t] = hi; red_lo[t] = lo; red_bad[t] = bad;\n";
    s += "  barrier(CLK_LOCAL_MEM_FENCE);\n";
    s += "  for (int i = 0; i < L_; ++i) {\n    hi = fmax(hi, red_hi[i]);\n"
         "    lo = fmin(lo, red_lo[i]);\n    bad |= red_bad[i];\n  }\n";
    // s = max(hi - lo, FLT_MIN) / 255, z = round(-lo / s): the CPU's float quotients.
    s += "  float sc = (float)((double)fmax(hi - lo, FLT_MIN) / 255.0);\n";
    s += "  const float z = bad ? 0.0f : rint((float)((double)(-lo) / (double)sc));\n";
    s += "  if (bad) sc = NAN;\n";
    // 2. This item's slice of codes: clamp(round(x / s) + z, 0, 255).
    s +=
        str("  if (!bad)\n    for (long k = kb; k < ke; ++k) {\n"
            "      const float c = rint((float)((double)x[k * ",
            XS,
            "L] / (double)sc)) + z;\n"
            "      codes[k] = (uchar)fmin(fmax(c, 0.0f), 255.0f);\n    }\n");
    s += "  barrier(CLK_LOCAL_MEM_FENCE);\n  if (n0 >= N_) return;\n  const int zi = (int)z;\n";
    // 3. 16 columns: the exact int32 sums of (code - z) * w, then float(acc) * s * w_scale.
    s += "  if (n0 + 16L <= N_) {\n    int16 acc = (int16)0;\n";
    s += str(
        "    if (!bad)\n      for (long k = 0; k < K_; ++k)\n"
        "        acc += ((int)codes[k] - zi) * convert_int16(",
        source::vload(str("in1 + off1 + k * ", WK, "L + n0 * ", WN, "L"), WN, kCols, DType::Int8),
        ");\n");
    s += "    float16 v = convert_float16(acc) * sc;\n";
    s += finish("v", "n0", kCols);
    s += "    vstore16(v, 0, y + n0);\n  } else {\n";
    s += "    for (long j = n0; j < N_; ++j) {\n      int acc = 0;\n";
    s +=
        str("      if (!bad)\n        for (long k = 0; k < K_; ++k)\n"
            "          acc += ((int)codes[k] - zi) * (int)in1[off1 + k * ",
            WK, "L + j * ", WN, "L];\n");
    s += "      float v = (float)acc * sc;\n";
    s += finish("v", "j", 1);
    s += "      y[j] = v;\n    }\n  }\n}\n";
    return s;
  }

  int64_t K_ = 0, N_ = 0, rows_ = 0;
  Shape outer_;
  bool relu_ = false, gelu_ = false;
};

std::shared_ptr<OpenclKernel> make(OpenclDevice& dev, const ir::Node& n, const ir::Graph& g) {
  return std::make_shared<QuantMatmulKernel>(dev, n, g.input_types(n));
}

}  // namespace

const Family kQuantFamily = {supports, make};

}  // namespace nef::backend::opencl
