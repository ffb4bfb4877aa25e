// CPU kernels of the source ops that compute their value: full, arange, random_uniform,
// random_normal (input and constant are bound by the runtime and have no kernel).
// Random ops are counter-based: element i is a hash of (seed, i), so the result does not depend
// on the thread count or on how the work is split, and any element can be recomputed alone.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

constexpr int64_t kSourceGrain = 16384;

// double -> T as numpy's astype would, but without UB: NaN -> 0 and saturation for integers.
template <typename T>
T cast_double(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    constexpr double lo = double(std::numeric_limits<T>::min());
    constexpr double hi = double(std::numeric_limits<T>::max());
    if (v <= lo) return std::numeric_limits<T>::min();
    if (v >= hi) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return store_as<T>(static_cast<compute_t<T>>(v));
  }
}

void k_full(const KernelArgs& a) {
  const double value = a.attrs.get_float("value");
  const int64_t n = a.out.numel();
  dispatch_dtype(a.out.dtype, [&]<typename T>() {
    const T v = cast_double<T>(value);
    T* p = a.out.data_as<T>();
    parallel_for(n, kSourceGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = v;
    });
  });
}

void k_arange(const KernelArgs& a) {
  const double start = a.attrs.get_float("start");
  const double step = a.attrs.get_float("step");
  const int64_t n = a.out.numel();
  dispatch_dtype(a.out.dtype, [&]<typename T>() {
    T* p = a.out.data_as<T>();
    parallel_for(n, kSourceGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = cast_double<T>(start + double(i) * step);
    });
  });
}

// --- counter-based random numbers ---------------------------------------------------------
// splitmix64's finalizer: a bijective 64-bit mix with full avalanche.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct CounterRng {
  uint64_t k1, k2;
  explicit CounterRng(int64_t seed)
      : k1(mix64(uint64_t(seed) ^ 0x243f6a8885a308d3ULL)),
        k2(mix64(uint64_t(seed) + 0x13198a2e03707344ULL)) {}
  // Two mixing rounds keyed by the seed, so that streams of nearby seeds are unrelated.
  uint64_t bits(uint64_t ctr) const { return mix64(mix64(ctr * 0x9e3779b97f4a7c15ULL + k1) ^ k2); }
  // 53 random bits as a double in [0, 1).
  double uniform(uint64_t ctr) const { return double(bits(ctr) >> 11) * 0x1.0p-53; }
  // A double in (0, 1], safe for log().
  double uniform_pos(uint64_t ctr) const { return double((bits(ctr) >> 11) + 1) * 0x1.0p-53; }
};

// The next representable value below t (toward -inf) for any float storage type.
template <typename T>
T step_down(T t) {
  if constexpr (std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>) {
    uint16_t b = t.bits;
    if ((b & 0x7fffu) == 0) return T{uint16_t(0x8001u)};  // +-0 -> smallest negative
    return T{uint16_t((b & 0x8000u) ? b + 1 : b - 1)};    // sign-magnitude encoding
  } else {
    return std::nextafter(t, -std::numeric_limits<T>::infinity());
  }
}

template <typename T>
constexpr bool is_float_storage_v =
    std::is_floating_point_v<T> || std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>;

void k_random_uniform(const KernelArgs& a) {
  const CounterRng rng(a.attrs.get_int("seed"));
  const double low = a.attrs.get_float("low"), high = a.attrs.get_float("high");
  const int64_t n = a.out.numel();
  dispatch_dtype(a.out.dtype, [&]<typename T>() {
    if constexpr (!is_float_storage_v<T>) {
      throw TypeError(
          str("[random_uniform] dtype must be a float type, got ", dtype_name(a.out.dtype)));
    } else {
      // Rounding low + (high-low)*u to T can land on high; keep results in [low, high).
      const bool clamp = high > low && std::isfinite(high) && std::isfinite(low);
      T below = cast_double<T>(high);
      for (int k = 0; clamp && k < 8 && double(load_as(below)) >= high; ++k)
        below = step_down(below);
      T* p = a.out.data_as<T>();
      parallel_for(n, kSourceGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          T v = cast_double<T>(low + (high - low) * rng.uniform(uint64_t(i)));
          if (clamp && double(load_as(v)) >= high) v = below;
          p[i] = v;
        }
      });
    }
  });
}

void k_random_normal(const KernelArgs& a) {
  const CounterRng rng(a.attrs.get_int("seed"));
  const double mean = a.attrs.get_float("mean"), sd = a.attrs.get_float("std");
  const int64_t n = a.out.numel();
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  dispatch_dtype(a.out.dtype, [&]<typename T>() {
    if constexpr (!is_float_storage_v<T>) {
      throw TypeError(
          str("[random_normal] dtype must be a float type, got ", dtype_name(a.out.dtype)));
    } else {
      T* p = a.out.data_as<T>();
      parallel_for(n, kSourceGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          // Box-Muller on the two uniforms of counter i (cos branch only, so element i
          // depends on nothing but (seed, i)).
          uint64_t c = uint64_t(i) * 2;
          double r = std::sqrt(-2.0 * std::log(rng.uniform_pos(c)));
          double z = r * std::cos(kTwoPi * rng.uniform(c + 1));
          p[i] = cast_double<T>(mean + sd * z);
        }
      });
    }
  });
}

}  // namespace

void register_source_kernels(KernelTable& t) {
  t.add("full", k_full);
  t.add("arange", k_arange);
  t.add("random_uniform", k_random_uniform);
  t.add("random_normal", k_random_normal);
}

}  // namespace nef::backend::cpu
