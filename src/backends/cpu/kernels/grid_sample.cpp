// CPU grid_sample with ONNX GridSample's semantics as onnx.reference's op_grid_sample (PyTorch's
// grid_sampler): per output position the grid's normalized coordinates (last one first: the
// grid's first component indexes x's last spatial dim) are mapped to input coordinates in the
// grid's compute type (float for float32 and the half types, as the reference's float32 array),
// rounded half to even for nearest, moved into range by the padding mode, and turned into taps
// per spatial dim (1 nearest, 2 linear, 4 cubic with Keys' a = -0.75); a tap outside the input
// reads 0 (zeros), the clamped index (border) or the reflected one (reflection). The output is
// the tensor product of the per-dim taps, summed in double. Positions run in parallel; the taps
// are computed once per position and reused for every channel.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

enum class Mode { Nearest, Linear, Cubic };
enum class Padding { Zeros, Border, Reflection };

// Reflects x by the borders until it lies in [lo, hi] (the reference's _gs_reflect, in double).
double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;  // a 1-long dim with align_corners: the only position
  if (x < lo) {
    const double dx = lo - x;
    const auto n = static_cast<int64_t>(dx / range);
    const double r = dx - double(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const auto n = static_cast<int64_t>(dx / range);
    const double r = dx - double(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

template <typename C>
void cubic_coeffs(C t, C* w) {
  const C a = C(-0.75);
  t = std::abs(t);
  w[0] = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a;
  w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
  w[2] = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1;
  w[3] = ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a;
}

struct Params {
  Mode mode = Mode::Linear;
  Padding padding = Padding::Zeros;
  bool align = false;
};

template <typename T>
void grid_sample(const Array& x, const Array& grid, Array& out, const Params& p) {
  using C = compute_t<T>;
  const int r = x.rank() - 2;
  const int64_t batch = x.shape[0], channels = x.shape[1];
  int64_t positions = 1;  // output spatial positions per batch item
  for (size_t d = 1; d + 1 < grid.shape.size(); ++d) positions *= grid.shape[d];
  const int ntaps = p.mode == Mode::Nearest ? 1 : p.mode == Mode::Linear ? 2 : 4;
  int64_t combos = 1;
  for (int d = 0; d < r; ++d) combos *= ntaps;
  const T* xp = x.data_as<T>();
  const T* gp = grid.data_as<T>();
  T* op = out.data_as<T>();
  const int grid_rank = int(grid.shape.size());

  parallel_for(
      batch * positions, std::max<int64_t>(1, 4096 / std::max<int64_t>(channels, 1)),
      [&](int64_t b, int64_t e) {
        // Per spatial dim: ntaps input indices (-1 reads 0) and weights.
        std::vector<int64_t> idx(size_t(r) * ntaps);
        std::vector<double> w(size_t(r) * ntaps);
        for (int64_t item = b; item < e; ++item) {
          const int64_t n = item / positions, q = item % positions;
          // The grid element offset of (n, position q, component 0).
          int64_t rem = q, goff = n * grid.strides[0];
          for (int d = grid_rank - 2; d >= 1; --d) {
            goff += (rem % grid.shape[size_t(d)]) * grid.strides[size_t(d)];
            rem /= grid.shape[size_t(d)];
          }
          for (int d = 0; d < r; ++d) {
            const int64_t len = x.shape[size_t(2 + d)];
            // Spatial dim d is the grid's component r - 1 - d.
            const C g =
                load_as(gp[goff + int64_t(r - 1 - d) * grid.strides[size_t(grid_rank - 1)]]);
            C c = p.align ? (g + C(1)) / C(2) * C(len - 1) : ((g + C(1)) * C(len) - C(1)) / C(2);
            if (p.mode == Mode::Nearest) c = std::nearbyint(c);
            const double lo = p.align ? 0.0 : -0.5,
                         hi = p.align ? double(len - 1) : double(len) - 0.5;
            if (double(c) < lo || double(c) > hi) {
              if (p.padding == Padding::Border) c = std::clamp(c, C(0), C(len - 1));
              else if (p.padding == Padding::Reflection) c = C(reflect(double(c), lo, hi));
            }
            // A tap's input index under the padding mode (-1: reads 0).
            auto fetch = [&](int64_t i) -> int64_t {
              if (i >= 0 && i < len) return i;
              if (p.padding == Padding::Zeros) return -1;
              if (p.padding == Padding::Border) return std::clamp<int64_t>(i, 0, len - 1);
              return std::clamp<int64_t>(static_cast<int64_t>(reflect(double(i), lo, hi)), 0,
                                         len - 1);
            };
            int64_t* id = &idx[size_t(d) * ntaps];
            double* wd = &w[size_t(d) * ntaps];
            if (std::isnan(double(c))) {  // a NaN coordinate reads nothing
              for (int k = 0; k < ntaps; ++k) id[k] = -1, wd[k] = 0;
              continue;
            }
            if (p.mode == Mode::Nearest) {
              id[0] = fetch(static_cast<int64_t>(c));
              wd[0] = 1;
            } else {
              const C f = std::floor(c);
              const C t = c - f;
              const auto i0 = static_cast<int64_t>(f);
              if (p.mode == Mode::Linear) {
                id[0] = fetch(i0), wd[0] = double(C(1) - t);
                id[1] = fetch(i0 + 1), wd[1] = double(t);
              } else {
                C cw[4];
                cubic_coeffs(t, cw);
                for (int k = 0; k < 4; ++k) id[k] = fetch(i0 - 1 + k), wd[k] = double(cw[k]);
              }
            }
          }
          for (int64_t ch = 0; ch < channels; ++ch) {
            const int64_t base = n * x.strides[0] + ch * x.strides[1];
            double acc = 0;
            for (int64_t combo = 0; combo < combos; ++combo) {
              int64_t cr = combo, off = base;
              double wt = 1;
              bool zero = false;
              for (int d = r - 1; d >= 0; --d) {
                const int k = int(cr % ntaps);
                cr /= ntaps;
                const int64_t i = idx[size_t(d) * ntaps + k];
                if (i < 0) {
                  zero = true;
                  break;
                }
                off += i * x.strides[size_t(2 + d)];
                wt *= w[size_t(d) * ntaps + k];
              }
              if (!zero && wt != 0) acc += wt * double(load_as(xp[off]));
            }
            op[(n * channels + ch) * positions + q] = store_as<T>(C(acc));
          }
        }
      });
}

void grid_sample_kernel(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  const Array& grid = a.inputs[1];
  Array& out = a.out;
  if (out.numel() == 0) return;
  Params p;
  const std::string& mode = a.attrs.get_string("mode");
  p.mode = mode == "nearest" ? Mode::Nearest : mode == "linear" ? Mode::Linear : Mode::Cubic;
  const std::string& pad = a.attrs.get_string("padding_mode");
  p.padding = pad == "zeros"    ? Padding::Zeros
              : pad == "border" ? Padding::Border
                                : Padding::Reflection;
  p.align = a.attrs.get_bool("align_corners");
  NEF_CHECK(x.rank() >= 3 && grid.rank() == x.rank() && grid.dtype == x.dtype,
            "[grid_sample] unexpected operands");
  dispatch_dtype(x.dtype, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      grid_sample<T>(x, grid, out, p);
    } else {
      throw TypeError(str("[grid_sample] x must be a float tensor, got ", dtype_name(x.dtype)));
    }
  });
}

}  // namespace

void register_grid_sample_kernels(KernelTable& t) { t.add("grid_sample", grid_sample_kernel); }

}  // namespace nef::backend::cpu
