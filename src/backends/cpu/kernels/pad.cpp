// CPU pad: every mode reduces to one index map per axis (output index -> input index, or -1 for
// the constant), built once; the copy then walks output rows of the last axis in parallel.
// Negative pads crop before the positive pads extend (inference checked reflect's limits), so
// the maps read only kept input cells.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
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

enum class PadMode { Constant, Reflect, Edge, Wrap };

PadMode parse_mode(const std::string& m) {
  if (m == "reflect") return PadMode::Reflect;
  if (m == "edge") return PadMode::Edge;
  if (m == "wrap") return PadMode::Wrap;
  NEF_CHECK(m == "constant", "[pad] mode ", m);
  return PadMode::Constant;
}

// The pad value as T: numpy astype rules without UB (NaN -> 0, ints saturate), like `full`.
template <typename T>
T pad_value(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    if (v <= double(std::numeric_limits<T>::min())) return std::numeric_limits<T>::min();
    if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return store_as<T>(static_cast<compute_t<T>>(v));
  }
}

std::vector<int64_t> axis_map(int64_t in, int64_t pb, int64_t pe, PadMode mode) {
  const int64_t crop_b = std::max<int64_t>(-pb, 0), crop_e = std::max<int64_t>(-pe, 0);
  const int64_t kept = in - crop_b - crop_e, lead = std::max<int64_t>(pb, 0);
  std::vector<int64_t> map(in + pb + pe);
  for (int64_t o = 0; o < int64_t(map.size()); ++o) {
    int64_t q = o - lead;  // position in the cropped axis
    if (q < 0 || q >= kept) {
      switch (mode) {
        case PadMode::Constant:
          map[o] = -1;
          continue;
        case PadMode::Edge:
          q = std::clamp<int64_t>(q, 0, kept - 1);
          break;
        case PadMode::Wrap:
          q = ((q % kept) + kept) % kept;
          break;
        case PadMode::Reflect: {
          int64_t period = 2 * (kept - 1);
          if (period == 0) {
            q = 0;
          } else {
            q = ((q % period) + period) % period;
            if (q >= kept) q = period - q;
          }
          break;
        }
      }
    }
    map[o] = crop_b + q;
  }
  return map;
}

void pad_kernel(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  Array& out = a.out;
  const int64_t n = out.numel();
  if (n == 0) return;
  const auto& pads = a.attrs.get_ints("pads");
  const PadMode mode = parse_mode(a.attrs.get_string("mode"));
  const int rank = x.rank();
  NEF_CHECK(int(pads.size()) == 2 * rank, "[pad] pads/rank mismatch");
  // Rank 0 behaves as one axis of size 1 with no padding.
  std::vector<std::vector<int64_t>> maps;
  std::vector<int64_t> xst;
  for (int d = 0; d < rank; ++d) {
    maps.push_back(axis_map(x.shape[d], pads[d], pads[rank + d], mode));
    NEF_CHECK(int64_t(maps.back().size()) == out.shape[d], "[pad] output dim ", d);
    xst.push_back(x.strides[d]);
  }
  if (rank == 0) {
    maps.push_back({0});
    xst.push_back(0);
  }
  const int last = int(maps.size()) - 1;
  const int64_t row = int64_t(maps[last].size()), rows = n / row;
  const std::vector<int64_t>& inner = maps[last];
  const int64_t inner_stride = xst[last];
  const double value = a.attrs.get_float("value");
  dispatch_dtype(x.dtype, [&]<typename T>() {
    const T* src = x.data_as<T>();
    T* dst = out.data_as<T>();
    const T v = pad_value<T>(value);
    parallel_for(rows, std::max<int64_t>(1, 65536 / row), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* o = dst + r * row;
        int64_t off = 0, rem = r;
        bool constant_row = false;
        for (int d = last - 1; d >= 0; --d) {
          int64_t m = maps[d][rem % int64_t(maps[d].size())];
          rem /= int64_t(maps[d].size());
          if (m < 0) constant_row = true;
          else off += m * xst[d];
        }
        if (constant_row) {
          std::fill(o, o + row, v);
          continue;
        }
        const T* s = src + off;
        for (int64_t j = 0; j < row; ++j) {
          int64_t m = inner[j];
          o[j] = m < 0 ? v : s[m * inner_stride];
        }
      }
    });
  });
}

}  // namespace

void register_pad_kernels(KernelTable& t) { t.add("pad", pad_kernel); }

}  // namespace nef::backend::cpu
