// CPU deform_im2col (docs/ops.md): the columns of ONNX DeformConv. Each (image, offset group,
// kernel tap, output row) runs as one task: per output position the sampling point and its four
// bilinear taps are computed once (in double: the offsets move points by fractions of a pixel)
// and applied to every channel of the offset group. Taps outside x read 0, as grid_sample with
// zero padding and align_corners does in onnx's reference. Inputs may be strided.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

template <typename X>
void deform_im2col_typed(const KernelArgs& args) {
  using C = compute_t<X>;
  const Array &x = args.inputs[0], &off = args.inputs[1];
  const Array* mask = args.inputs.size() == 3 ? &args.inputs[2] : nullptr;
  const auto& k = args.attrs.get_ints("kernel_shape");
  const auto& st = args.attrs.get_ints("strides");
  const auto& pads = args.attrs.get_ints("pads");
  const auto& dil = args.attrs.get_ints("dilations");
  const int64_t G = args.attrs.get_int("offset_group");
  const int64_t N = x.shape[0], Cin = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t kh = k[0], kw = k[1], oh = off.shape[2], ow = off.shape[3];
  const int64_t cpg = Cin / G, L = oh * ow;
  const X* xd = static_cast<const X*>(x.data());
  const X* od = static_cast<const X*>(off.data());
  const X* md = mask ? static_cast<const X*>(mask->data()) : nullptr;
  X* out = args.out.data_as<X>();
  auto at = [](const Array& a, const X* d, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return double(
        load_as(d[i0 * a.strides[0] + i1 * a.strides[1] + i2 * a.strides[2] + i3 * a.strides[3]]));
  };
  const int64_t tasks = N * G * kh * kw * oh;
  parallel_for(tasks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t task = lo; task < hi; ++task) {
      int64_t rem = task;
      const int64_t y = rem % oh;
      rem /= oh;
      const int64_t j = rem % kw;
      rem /= kw;
      const int64_t i = rem % kh;
      rem /= kh;
      const int64_t g = rem % G, n = rem / G;
      const int64_t tap = (g * kh + i) * kw + j;
      for (int64_t xo = 0; xo < ow; ++xo) {
        const double py = double(y * st[0] - pads[0] + i * dil[0]) + at(off, od, n, 2 * tap, y, xo);
        const double px =
            double(xo * st[1] - pads[1] + j * dil[1]) + at(off, od, n, 2 * tap + 1, y, xo);
        const double m = md ? at(*mask, md, n, tap, y, xo) : 1.0;
        const double fy = std::floor(py), fx = std::floor(px);
        const double ly = py - fy, lx = px - fx;
        int64_t pos[4];
        double w[4];
        int taps = 0;
        // Points far outside x read 0 (and keep the int64 conversion defined).
        if (std::abs(py) < 1e15 && std::abs(px) < 1e15) {
          const int64_t y0 = int64_t(fy), x0 = int64_t(fx);
          const int64_t ys[2] = {y0, y0 + 1}, xs[2] = {x0, x0 + 1};
          const double wy[2] = {1 - ly, ly}, wx[2] = {1 - lx, lx};
          for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b)
              if (ys[a] >= 0 && ys[a] < H && xs[b] >= 0 && xs[b] < W) {
                pos[taps] = ys[a] * x.strides[2] + xs[b] * x.strides[3];
                w[taps++] = wy[a] * wx[b] * m;
              }
        }
        for (int64_t c = g * cpg; c < (g + 1) * cpg; ++c) {
          const X* ch = xd + n * x.strides[0] + c * x.strides[1];
          C v = 0;
          for (int t = 0; t < taps; ++t) v += C(w[t]) * C(load_as(ch[pos[t]]));
          out[(n * Cin * kh * kw + (c * kh + i) * kw + j) * L + y * ow + xo] = store_as<X>(v);
        }
      }
    }
  });
}

void deform_im2col_kernel(const KernelArgs& args) {
  if (args.out.numel() == 0) return;
  dispatch_dtype(args.out.dtype, [&]<typename X>() {
    if constexpr (std::is_floating_point_v<compute_t<X>>) deform_im2col_typed<X>(args);
    else NEF_CHECK(false, "deform_im2col needs float inputs");
  });
}

}  // namespace

void register_deform_conv_kernels(KernelTable& t) { t.add("deform_im2col", deform_im2col_kernel); }

}  // namespace nef::backend::cpu
