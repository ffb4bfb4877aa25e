// CPU linear_attention: the recurrence of linear-attention layers (docs/ops.md). Each (batch,
// key/value head) pair owns a [dk, dv] state and runs its T steps in order; pairs run in
// parallel. The state and the step's rows live in the workspace in the compute type (float for
// float32 and the half types, double for float64), so strided inputs are read once per step.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

struct Dims {
  int64_t B, Hq, Hkv, G, T, dk, dv;
};

Dims dims_of(const Shape& q, const Shape& v, int64_t hkv) {
  return {q[0], q[1], hkv, q[1] / std::max<int64_t>(hkv, 1), q[2], q[3], v[3]};
}

// Per pair: state dk*dv, key dk, query dk, value/update dv, and one scratch row that holds the
// decay (dk or 1 values), then the retrieved row or the output accumulator (dv).
int64_t pair_elems(const Dims& d) {
  return d.dk * d.dv + 2 * d.dk + d.dv + std::max<int64_t>(d.dk, d.dv);
}

DType compute_dtype(DType x) { return x == DType::Float64 ? DType::Float64 : DType::Float32; }

// x[b, h, t, :] of a 4-D strided array -> dst[0..n), in the compute type.
template <typename X, typename C>
void load_row(const Array& x, int64_t b, int64_t h, int64_t t, int64_t n, C* dst) {
  const X* p =
      static_cast<const X*>(x.data()) + b * x.strides[0] + h * x.strides[1] + t * x.strides[2];
  const int64_t s = x.strides[3];
  for (int64_t i = 0; i < n; ++i) dst[i] = C(load_as(p[i * s]));
}

template <typename X>
void linear_attention_typed(const KernelArgs& args) {
  using C = std::conditional_t<std::is_same_v<X, double>, double, float>;
  const Array &q = args.inputs[0], &k = args.inputs[1], &v = args.inputs[2], &st = args.inputs[3];
  const std::string& rule = args.attrs.get_string("update_rule");
  const bool gated = rule == "gated" || rule == "gated_delta";
  const bool delta = rule == "delta" || rule == "gated_delta";
  const Array* decay = gated ? &args.inputs[4] : nullptr;
  const Array* beta = delta ? &args.inputs[args.inputs.size() - 1] : nullptr;
  const Dims d = dims_of(q.shape, v.shape, k.shape[1]);
  const C scale = args.attrs.has("scale") ? C(args.attrs.get_float("scale"))
                                          : C(1.0 / std::sqrt(double(std::max<int64_t>(d.dk, 1))));
  const int64_t decay_n = decay ? decay->shape[3] : 0;
  const int64_t rows = d.G * d.T + d.dk;  // per pair in the output
  Array& out = args.out;
  X* od = out.data_as<X>();
  const int64_t per = pair_elems(d);
  WorkspaceCarver carver(args.workspace);
  C* ws = carver.take({d.B * d.Hkv * per}, compute_dtype(out.dtype)).template data_as<C>();

  parallel_for(d.B * d.Hkv, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t pair = lo; pair < hi; ++pair) {
      const int64_t b = pair / d.Hkv, h = pair % d.Hkv;
      C* S = ws + pair * per;
      C* kr = S + d.dk * d.dv;
      C* qr = kr + d.dk;
      C* u = qr + d.dk;
      C* gr = u + d.dv;  // the decay row (dk or 1 values), then the retrieved row
      for (int64_t i = 0; i < d.dk; ++i) load_row<X, C>(st, b, h, i, d.dv, S + i * d.dv);
      X* o = od + pair * rows * d.dv;
      for (int64_t t = 0; t < d.T; ++t) {
        load_row<X, C>(k, b, h, t, d.dk, kr);
        load_row<X, C>(v, b, h, t, d.dv, u);
        if (gated) {
          load_row<X, C>(*decay, b, h, t, decay_n, gr);
          for (int64_t i = 0; i < d.dk; ++i) {
            const C f = std::exp(gr[decay_n == 1 ? 0 : i]);
            C* s = S + i * d.dv;
            for (int64_t m = 0; m < d.dv; ++m) s[m] *= f;
          }
        }
        if (delta) {
          C bt;
          load_row<X, C>(*beta, b, h, t, 1, &bt);
          C* ret = gr;  // gr is free again: the decay is applied
          std::fill(ret, ret + d.dv, C(0));
          for (int64_t i = 0; i < d.dk; ++i) {
            const C* s = S + i * d.dv;
            const C ki = kr[i];
            for (int64_t m = 0; m < d.dv; ++m) ret[m] += s[m] * ki;
          }
          for (int64_t m = 0; m < d.dv; ++m) u[m] = bt * (u[m] - ret[m]);
        }
        for (int64_t i = 0; i < d.dk; ++i) {
          C* s = S + i * d.dv;
          const C ki = kr[i];
          for (int64_t m = 0; m < d.dv; ++m) s[m] += ki * u[m];
        }
        for (int64_t g = 0; g < d.G; ++g) {
          load_row<X, C>(q, b, h * d.G + g, t, d.dk, qr);
          C* acc = gr;  // reused as the output accumulator
          std::fill(acc, acc + d.dv, C(0));
          for (int64_t i = 0; i < d.dk; ++i) {
            const C* s = S + i * d.dv;
            const C qi = qr[i];
            for (int64_t m = 0; m < d.dv; ++m) acc[m] += qi * s[m];
          }
          X* dst = o + (g * d.T + t) * d.dv;
          for (int64_t m = 0; m < d.dv; ++m) dst[m] = store_as<X>(C(acc[m] * scale));
        }
      }
      X* sdst = o + d.G * d.T * d.dv;
      for (int64_t i = 0; i < d.dk * d.dv; ++i) sdst[i] = store_as<X>(S[i]);
    }
  });
}

void linear_attention_kernel(const KernelArgs& args) {
  if (args.out.numel() == 0) return;
  dispatch_dtype(args.out.dtype, [&]<typename X>() {
    if constexpr (std::is_floating_point_v<compute_t<X>>) linear_attention_typed<X>(args);
    else NEF_CHECK(false, "linear_attention needs float inputs");
  });
}

class LinearAttentionKernel final : public CpuKernel {
 public:
  LinearAttentionKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : name_(str("cpu.linear_attention.", dtype_name(node.type.dtype))) {
    if (in.size() < 4 || in[0].shape.size() != 4) return;
    const Dims d = dims_of(in[0].shape, in[2].shape, in[1].shape[1]);
    workspace_ = workspace_piece(d.B * d.Hkv * pair_elems(d), compute_dtype(node.type.dtype));
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }
  void run(const KernelArgs& args) const override { linear_attention_kernel(args); }

 private:
  std::string name_;
  int64_t workspace_ = 0;
};

}  // namespace

void register_linear_attention_kernels(KernelTable& t) {
  t.add_prepared<LinearAttentionKernel>("linear_attention");
}

}  // namespace nef::backend::cpu
