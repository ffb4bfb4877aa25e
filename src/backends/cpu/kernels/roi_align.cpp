// CPU roi_align with ONNX RoiAlign's semantics as onnx.reference's op_roi_align: per region a
// bin grid of (sampling_ratio or ceil(roi size / bins)) samples per axis, each a bilinear tap
// set clamped into x (samples more than one pixel outside read 0); avg divides the sum of the
// bilinear values by the sample count, max takes the largest of the four weighted corners over
// all samples (ONNX's definition, not the max of the interpolated values). Coordinates and sums
// in double. Rows (region, output row) run in parallel; the taps are recomputed per channel,
// which keeps the kernel free of a workspace whose size would depend on the regions' values.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

struct Tap {
  int64_t p[4];  // offsets (y * sy + x * sx) into one channel
  double w[4];
  bool inside;
};

// The reference's bilinear precalculation for one sample at (y, x).
Tap make_tap(double y, double x, int64_t H, int64_t W, int64_t sy, int64_t sx) {
  Tap t{};
  if (y < -1.0 || y > double(H) || x < -1.0 || x > double(W)) return t;  // all zero
  t.inside = true;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  int64_t y0 = int64_t(y), x0 = int64_t(x), y1, x1;
  if (y0 >= H - 1) {
    y1 = y0 = H - 1;
    y = double(y0);
  } else {
    y1 = y0 + 1;
  }
  if (x0 >= W - 1) {
    x1 = x0 = W - 1;
    x = double(x0);
  } else {
    x1 = x0 + 1;
  }
  const double ly = y - double(y0), lx = x - double(x0), hy = 1 - ly, hx = 1 - lx;
  t.p[0] = y0 * sy + x0 * sx;
  t.p[1] = y0 * sy + x1 * sx;
  t.p[2] = y1 * sy + x0 * sx;
  t.p[3] = y1 * sy + x1 * sx;
  t.w[0] = hy * hx;
  t.w[1] = hy * lx;
  t.w[2] = ly * hx;
  t.w[3] = ly * lx;
  return t;
}

// Regions beyond these bounds are refused (before any work) rather than run for hours.
constexpr double kMaxCoordinate = double(int64_t(1) << 24);
constexpr double kMaxSamples = double(int64_t(1) << 20);  // per bin

template <typename X>
void roi_align_typed(const KernelArgs& args) {
  const Array &x = args.inputs[0], &rois = args.inputs[1], &bidx = args.inputs[2];
  Array& out = args.out;
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t R = out.shape[0], OH = out.shape[2], OW = out.shape[3];
  const bool avg = args.attrs.get_string("mode") == "avg";
  const bool half_pixel = args.attrs.get_string("coordinate_transformation_mode") == "half_pixel";
  const int64_t ratio = args.attrs.get_int("sampling_ratio");
  const double scale = args.attrs.get_float("spatial_scale");
  const X* xd = static_cast<const X*>(x.data());
  const X* rd = static_cast<const X*>(rois.data());
  X* od = out.data_as<X>();
  auto batch_of = [&](int64_t r) {
    const int64_t off = r * bidx.strides[0];
    return bidx.dtype == DType::Int32 ? int64_t(static_cast<const int32_t*>(bidx.data())[off])
                                      : static_cast<const int64_t*>(bidx.data())[off];
  };
  // Checked before any work: hostile regions (a NaN corner, or one so large that its adaptive
  // sample grid would take forever) fail instead of hanging or overflowing.
  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = batch_of(r);
    if (b < 0 || b >= N)
      throw ValidationError(str("[roi_align] batch index ", b, " of region ", r,
                                " is out of range for x with ", N, " images"));
    double c[4];
    for (int i = 0; i < 4; ++i) {
      c[i] = double(load_as(rd[r * rois.strides[0] + i * rois.strides[1]])) * scale;
      if (!(std::abs(c[i]) <= kMaxCoordinate))
        throw ValidationError(str("[roi_align] region ", r, " has coordinate ", c[i],
                                  " (after spatial_scale): not finite or beyond 2^24"));
    }
    const double gh = ratio > 0 ? double(ratio) : std::ceil((c[3] - c[1]) / double(OH));
    const double gw = ratio > 0 ? double(ratio) : std::ceil((c[2] - c[0]) / double(OW));
    if (gh * gw > kMaxSamples)
      throw ValidationError(str("[roi_align] region ", r, " needs ", gh, " x ", gw,
                                " samples per bin, more than 2^20"));
  }
  if (H == 0 || W == 0) {  // nothing to sample: every bin is empty
    std::fill(od, od + out.numel(), store_as<X>(compute_t<X>(0)));
    return;
  }
  parallel_for(R * OH, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      const int64_t r = row / OH, ph = row % OH;
      const X* roi = rd + r * rois.strides[0];
      auto coord = [&](int i) { return double(load_as(roi[i * rois.strides[1]])) * scale; };
      const double off = half_pixel ? 0.5 : 0.0;
      const double x0 = coord(0) - off, y0 = coord(1) - off, x1 = coord(2) - off,
                   y1 = coord(3) - off;
      double rw = x1 - x0, rh = y1 - y0;
      if (!half_pixel) {
        rw = std::max(rw, 1.0);
        rh = std::max(rh, 1.0);
      }
      const double bh = rh / double(OH), bw = rw / double(OW);
      const int64_t gh = ratio > 0 ? ratio : int64_t(std::ceil(rh / double(OH)));
      const int64_t gw = ratio > 0 ? ratio : int64_t(std::ceil(rw / double(OW)));
      const double count = double(std::max<int64_t>(gh * gw, 1));
      const X* img = xd + batch_of(r) * x.strides[0];
      for (int64_t pw = 0; pw < OW; ++pw) {
        X* dst = od + ((r * C) * OH + ph) * OW + pw;  // channel c at dst + c * OH * OW
        for (int64_t c = 0; c < C; ++c) dst[c * OH * OW] = store_as<X>(compute_t<X>(0));
        if (gh <= 0 || gw <= 0) continue;
        for (int64_t c = 0; c < C; ++c) {
          const X* ch = img + c * x.strides[1];
          double acc = avg ? 0.0 : -std::numeric_limits<double>::infinity();
          for (int64_t iy = 0; iy < gh; ++iy) {
            const double yy = y0 + double(ph) * bh + (double(iy) + 0.5) * bh / double(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              const double xx = x0 + double(pw) * bw + (double(ix) + 0.5) * bw / double(gw);
              const Tap t = make_tap(yy, xx, H, W, x.strides[2], x.strides[3]);
              double v[4];
              for (int k = 0; k < 4; ++k) v[k] = t.w[k] * double(load_as(ch[t.p[k]]));
              if (avg) acc += v[0] + v[1] + v[2] + v[3];
              else acc = std::max({acc, v[0], v[1], v[2], v[3]});
            }
          }
          dst[c * OH * OW] = store_as<X>(compute_t<X>(avg ? acc / count : acc));
        }
      }
    }
  });
}

void roi_align_kernel(const KernelArgs& args) {
  if (args.out.numel() == 0) return;
  dispatch_dtype(args.out.dtype, [&]<typename X>() {
    if constexpr (std::is_floating_point_v<compute_t<X>>) roi_align_typed<X>(args);
    else NEF_CHECK(false, "roi_align needs a float x");
  });
}

}  // namespace

void register_roi_align_kernels(KernelTable& t) { t.add("roi_align", roi_align_kernel); }

}  // namespace nef::backend::cpu
