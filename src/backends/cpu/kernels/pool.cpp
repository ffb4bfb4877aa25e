// CPU max_pool and avg_pool over x [N, C, *spatial] (1 to 3 spatial dims, read through its
// strides). Missing spatial dims are treated as leading size-1 dims so one 3-d loop serves all
// ranks. For every output position the window's in-bounds taps are computed once per dim (no
// per-tap bounds test); padding never wins a max and is counted by avg only with
// count_include_pad (cells past the padded extent, reachable with ceil_mode, never are).
// Work is split over (N*C plane, first output spatial index) pairs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

constexpr int kDims = 3;

template <typename C>
bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return std::isnan(v);
  else return false;
}

// One spatial dim: per output index, the first input position and the in-bounds tap range.
struct PoolDim {
  int64_t in = 1, out = 1, k = 1, stride = 1, dil = 1, x_stride = 0;
  std::vector<int64_t> start, t0, t1, padded_taps;  // padded_taps: taps inside the padded input
};

struct PoolPlan {
  int64_t planes = 0, channels = 1, n_stride = 0, c_stride = 0;
  PoolDim dim[kDims];
};

PoolPlan make_plan(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  const Shape& out = a.node.type.shape;
  const int nsp = x.rank() - 2;
  NEF_CHECK(nsp >= 1 && nsp <= kDims && int(out.size()) == x.rank(), "pool rank");
  const auto& kernel = a.attrs.get_ints("kernel");
  const auto& strides = a.attrs.get_ints("strides");
  const auto& pads = a.attrs.get_ints("pads");
  const auto& dil = a.attrs.get_ints("dilations");
  PoolPlan p;
  p.planes = x.shape[0] * x.shape[1];
  p.channels = x.shape[1];
  p.n_stride = x.strides[0];
  p.c_stride = x.strides[1];
  for (int i = 0; i < nsp; ++i) {
    PoolDim& d = p.dim[kDims - nsp + i];
    d.in = x.shape[2 + i];
    d.out = out[2 + i];
    d.k = kernel[i];
    d.stride = strides[i];
    d.dil = dil[i];
    d.x_stride = x.strides[2 + i];
    const int64_t pb = pads[i], pe = pads[nsp + i];
    for (int64_t o = 0; o < d.out; ++o) {
      int64_t s = o * d.stride - pb;
      // Tap t reads position s + t*dil; keep those in [0, in), and in [-pb, in+pe) for counting.
      int64_t t0 = s < 0 ? (-s + d.dil - 1) / d.dil : 0;
      int64_t t1 = d.in > s ? std::min(d.k, (d.in - s + d.dil - 1) / d.dil) : 0;
      int64_t tp = d.in + pe > s ? std::min(d.k, (d.in + pe - s + d.dil - 1) / d.dil) : 0;
      d.start.push_back(s);
      d.t0.push_back(t0);
      d.t1.push_back(std::max(t0, t1));
      d.padded_taps.push_back(tp);
    }
  }
  for (int i = 0; i < kDims - nsp; ++i) {  // leading size-1 dims: one tap at position 0
    PoolDim& d = p.dim[i];
    d.start = {0};
    d.t0 = {0};
    d.t1 = {1};
    d.padded_taps = {1};
  }
  return p;
}

template <typename T, bool kMax, bool kIncludePad>
void pool_planes(const Array& x, Array& out, const PoolPlan& p) {
  using C = compute_t<T>;
  const T* in = x.data_as<T>();
  T* o = out.data_as<T>();
  const PoolDim &d0 = p.dim[0], &d1 = p.dim[1], &d2 = p.dim[2];
  const int64_t inner = d1.out * d2.out;
  int64_t taps = d0.k * d1.k * d2.k;
  int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, inner * taps));
  parallel_for(p.planes * d0.out, grain, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t plane = u / d0.out, o0 = u % d0.out;
      const T* base = in + (plane / p.channels) * p.n_stride + (plane % p.channels) * p.c_stride;
      T* dst = o + u * inner;
      for (int64_t o1 = 0; o1 < d1.out; ++o1) {
        for (int64_t o2 = 0; o2 < d2.out; ++o2) {
          if constexpr (kMax) {
            C acc = std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity()
                                                         : std::numeric_limits<C>::lowest();
            bool nan = false;  // kept apart so the max itself stays a plain (vectorizable) max
            for (int64_t a = d0.t0[o0]; a < d0.t1[o0]; ++a) {
              const T* r0 = base + (d0.start[o0] + a * d0.dil) * d0.x_stride;
              for (int64_t b = d1.t0[o1]; b < d1.t1[o1]; ++b) {
                const T* r1 = r0 + (d1.start[o1] + b * d1.dil) * d1.x_stride;
                for (int64_t c = d2.t0[o2]; c < d2.t1[o2]; ++c) {
                  C v = C(load_as(r1[(d2.start[o2] + c * d2.dil) * d2.x_stride]));
                  nan |= is_nan(v);
                  acc = v > acc ? v : acc;
                }
              }
            }
            if constexpr (std::numeric_limits<C>::has_quiet_NaN)
              if (nan) acc = std::numeric_limits<C>::quiet_NaN();
            dst[o1 * d2.out + o2] = store_as<T>(acc);
          } else {
            double sum = 0;
            for (int64_t a = d0.t0[o0]; a < d0.t1[o0]; ++a) {
              const T* r0 = base + (d0.start[o0] + a * d0.dil) * d0.x_stride;
              for (int64_t b = d1.t0[o1]; b < d1.t1[o1]; ++b) {
                const T* r1 = r0 + (d1.start[o1] + b * d1.dil) * d1.x_stride;
                for (int64_t c = d2.t0[o2]; c < d2.t1[o2]; ++c)
                  sum += double(load_as(r1[(d2.start[o2] + c * d2.dil) * d2.x_stride]));
              }
            }
            int64_t count =
                kIncludePad
                    ? d0.padded_taps[o0] * d1.padded_taps[o1] * d2.padded_taps[o2]
                    : (d0.t1[o0] - d0.t0[o0]) * (d1.t1[o1] - d1.t0[o1]) * (d2.t1[o2] - d2.t0[o2]);
            // A window with nothing to count (all padding) averages to NaN (0 / 0).
            dst[o1 * d2.out + o2] = store_as<T>(C(sum / double(count)));
          }
        }
      }
    }
  });
}

template <bool kMax>
void pool_kernel(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  if (a.out.numel() == 0) return;
  PoolPlan p = make_plan(a);
  const bool include_pad = !kMax && a.attrs.get_bool("count_include_pad");
  dispatch_dtype(x.dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      NEF_CHECK(false, "pool of bool");
    } else if constexpr (kMax) {
      pool_planes<T, true, false>(x, a.out, p);
    } else if constexpr (std::is_floating_point_v<compute_t<T>>) {
      if (include_pad) pool_planes<T, false, true>(x, a.out, p);
      else pool_planes<T, false, false>(x, a.out, p);
    } else {
      NEF_CHECK(false, "avg_pool of integers");
    }
  });
}

}  // namespace

void register_pool_kernels(KernelTable& t) {
  t.add("max_pool", pool_kernel<true>);
  t.add("avg_pool", pool_kernel<false>);
}

}  // namespace nef::backend::cpu
