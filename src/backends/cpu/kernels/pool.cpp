// CPU max_pool and avg_pool over x [N, C, *spatial] (1 to 3 spatial dims, read through its
// strides). Missing spatial dims are treated as leading size-1 dims so one 3-d loop serves all
// ranks. For every output position the window's in-bounds taps are computed once per dim (no
// per-tap bounds test); padding never wins a max and is counted by avg only with
// count_include_pad (cells past the padded extent, reachable with ceil_mode, never are).
// 1-D and 2-D max_pool windows of more than four taps run separably (max_plane_separable).
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

// Where max_pool runs separably: 1-D and 2-D windows (the leading dim is a size-1 placeholder)
// of more than a few taps.
bool separable_max(const PoolPlan& p) {
  const PoolDim& d0 = p.dim[0];
  return d0.in == 1 && d0.out == 1 && d0.k == 1 && p.dim[1].k * p.dim[2].k > 4;
}

// One plane of a 1-D/2-D max_pool, separably: the max over each window's columns for every
// input row, then the max over the window's rows of those: kh + kw compares per output instead
// of kh * kw (YOLOX's SPP pools 192 x 13 x 13 maps with 5x5, 9x9 and 13x13 windows: 2 ms at 13x13
// with the per-tap loop). Rows are copied with `lowest` on both sides, so every output reads all
// of its kw taps (a vectorizable loop). The caller routes planes holding a NaN elsewhere.
template <typename T, typename C>
void max_plane_separable(const T* base, T* dst, const PoolPlan& p, C lowest, std::vector<C>& row,
                         std::vector<C>& hmax) {
  const PoolDim &d1 = p.dim[1], &d2 = p.dim[2];
  const int64_t left = -d2.start[0];  // columns of padding before the first input column
  const int64_t width = (d2.out - 1) * d2.stride + (d2.k - 1) * d2.dil + 1;
  row.assign(size_t(std::max(width, left + d2.in)), lowest);
  hmax.resize(size_t(d1.in * d2.out));
  for (int64_t iy = 0; iy < d1.in; ++iy) {
    const T* src = base + iy * d1.x_stride;
    for (int64_t ix = 0; ix < d2.in; ++ix) {
      const int64_t j = left + ix;
      if (j >= 0 && j < width) row[size_t(j)] = C(load_as(src[ix * d2.x_stride]));
    }
    C* h = hmax.data() + iy * d2.out;
    std::fill(h, h + d2.out, lowest);
    for (int64_t c = 0; c < d2.k; ++c) {
      const C* r = row.data() + c * d2.dil;
      if (d2.stride == 1) {
        for (int64_t o = 0; o < d2.out; ++o) h[o] = r[o] > h[o] ? r[o] : h[o];
      } else {
        for (int64_t o = 0; o < d2.out; ++o) {
          const C v = r[o * d2.stride];
          h[o] = v > h[o] ? v : h[o];
        }
      }
    }
  }
  std::vector<C>& acc = row;  // the row buffer is free again
  acc.resize(size_t(std::max<int64_t>(int64_t(acc.size()), d2.out)));
  for (int64_t o1 = 0; o1 < d1.out; ++o1) {
    std::fill(acc.begin(), acc.begin() + d2.out, lowest);
    for (int64_t b = d1.t0[size_t(o1)]; b < d1.t1[size_t(o1)]; ++b) {
      const C* h = hmax.data() + (d1.start[size_t(o1)] + b * d1.dil) * d2.out;
      for (int64_t o = 0; o < d2.out; ++o)
        acc[size_t(o)] = h[o] > acc[size_t(o)] ? h[o] : acc[size_t(o)];
    }
    for (int64_t o = 0; o < d2.out; ++o) dst[o1 * d2.out + o] = store_as<T>(acc[size_t(o)]);
  }
}

// Whether the plane (rows x cols, strided) holds a NaN.
template <typename T>
bool plane_has_nan(const T* base, int64_t rows, int64_t rs, int64_t cols, int64_t cs) {
  using C = compute_t<T>;
  if constexpr (!std::is_floating_point_v<C>) {
    return false;
  } else {
    bool nan = false;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) nan |= std::isnan(C(load_as(base[r * rs + c * cs])));
    return nan;
  }
}

template <typename T, bool kMax, bool kIncludePad>
void pool_planes(const Array& x, Array& out, const PoolPlan& p) {
  using C = compute_t<T>;
  const T* in = x.data_as<T>();
  T* o = out.data_as<T>();
  const PoolDim &d0 = p.dim[0], &d1 = p.dim[1], &d2 = p.dim[2];
  const int64_t inner = d1.out * d2.out;
  const bool separable = kMax && separable_max(p);
  int64_t taps = separable ? d1.k + d2.k : d0.k * d1.k * d2.k;
  int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, inner * taps));
  const C lowest = std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity()
                                                        : std::numeric_limits<C>::lowest();
  parallel_for(p.planes * d0.out, grain, [&](int64_t u0, int64_t u1) {
    std::vector<C> row, hmax;
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t plane = u / d0.out, o0 = u % d0.out;
      if (separable) {
        const T* pb = in + (plane / p.channels) * p.n_stride + (plane % p.channels) * p.c_stride;
        if (!plane_has_nan(pb, d1.in, d1.x_stride, d2.in, d2.x_stride)) {
          max_plane_separable<T, C>(pb, o + u * inner, p, lowest, row, hmax);
          continue;
        }
      }
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
