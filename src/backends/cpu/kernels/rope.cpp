// CPU rope: rotary position embedding over x [..., T, D] at run-time positions pos [T]. The
// cos/sin of every (t, pair) are computed once per run in double (angles reach 1e4 radians at
// long contexts, where float angles lose ~1e-3) into the workspace, then applied to every row of
// every head. Inputs strided; float16/bfloat16 compute in float32.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// Workspace: cos and sin tables, [T, dims / 2] each, in C (double for float64 x, else float).
int64_t table_bytes(int64_t T, int64_t dims, DType x) {
  const DType c = x == DType::Float64 ? DType::Float64 : DType::Float32;
  return 2 * workspace_piece(T * (dims / 2), c);
}

template <typename X>
void rope_typed(const KernelArgs& args) {
  using C = std::conditional_t<std::is_same_v<X, double>, double, float>;
  constexpr DType kC = std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
  const Array& x = args.inputs[0];
  const Array& pos = args.inputs[1];
  Array& out = args.out;
  const int r = x.rank();
  const int64_t T = x.shape[r - 2], D = x.shape[r - 1];
  const int64_t dims = args.attrs.get_int("dims"), half = dims / 2;
  const bool interleaved = args.attrs.get_string("mode") == "interleaved";
  const double base = args.attrs.get_float("base"), pscale = args.attrs.get_float("pos_scale");

  WorkspaceCarver ws(args.workspace);
  C* cs = ws.take({T * half}, kC).data_as<C>();
  C* sn = ws.take({T * half}, kC).data_as<C>();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t p = pos.dtype == DType::Int32
                          ? int64_t(static_cast<const int32_t*>(pos.data())[t * pos.strides[0]])
                          : static_cast<const int64_t*>(pos.data())[t * pos.strides[0]];
    for (int64_t i = 0; i < half; ++i) {
      const double ang = double(p) * pscale * std::pow(base, -2.0 * double(i) / double(dims));
      cs[t * half + i] = C(std::cos(ang));
      sn[t * half + i] = C(std::sin(ang));
    }
  }

  // Rows: every (leading index, t); the leading dims' strides are walked per row.
  const int64_t rows = x.numel() / std::max<int64_t>(D, 1);
  const X* xd = static_cast<const X*>(x.data());
  X* od = out.data_as<X>();
  const int64_t xs_t = x.strides[r - 2], xs_d = x.strides[r - 1];
  parallel_for(
      rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)), [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          const int64_t t = row % T;
          int64_t rem = row / T, off = t * xs_t;
          for (int d = r - 3; d >= 0; --d) {
            off += (rem % x.shape[d]) * x.strides[d];
            rem /= x.shape[d];
          }
          const X* src = xd + off;
          X* dst = od + row * D;
          const C* c = cs + t * half;
          const C* s = sn + t * half;
          for (int64_t i = 0; i < half; ++i) {
            const int64_t i0 = interleaved ? 2 * i : i, i1 = interleaved ? 2 * i + 1 : i + half;
            const C a = C(load_as(src[i0 * xs_d])), bb = C(load_as(src[i1 * xs_d]));
            dst[i0] = store_as<X>(C(a * c[i] - bb * s[i]));
            dst[i1] = store_as<X>(C(a * s[i] + bb * c[i]));
          }
          for (int64_t d = dims; d < D; ++d) dst[d] = src[d * xs_d];
        }
      });
}

void rope_kernel(const KernelArgs& args) {
  if (args.out.numel() == 0) return;
  dispatch_dtype(args.out.dtype, [&]<typename X>() {
    if constexpr (std::is_floating_point_v<compute_t<X>>) rope_typed<X>(args);
    else NEF_CHECK(false, "rope needs a float x");
  });
}

class RopeKernel final : public CpuKernel {
 public:
  RopeKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : name_(str("cpu.rope.", dtype_name(node.type.dtype))) {
    const Shape& x = in[0].shape;
    if (x.size() < 2) return;
    workspace_ = table_bytes(x[x.size() - 2], node.attrs.get_int("dims"), node.type.dtype);
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }
  void run(const KernelArgs& args) const override { rope_kernel(args); }

 private:
  std::string name_;
  int64_t workspace_ = 0;
};

}  // namespace

void register_rope_kernels(KernelTable& t) { t.add_prepared<RopeKernel>("rope"); }

}  // namespace nef::backend::cpu
