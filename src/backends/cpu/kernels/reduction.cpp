// CPU reductions: sum, prod, mean, max, min, argmax, argmin over any set of axes of a strided
// input. The input is walked once in logical row-major order (dims coalesced where memory
// allows) while an accumulator per output element is updated: a reduced innermost dim is a tight
// scalar reduction, a kept innermost dim is a vectorizable "acc[j] op= x[j]" loop. Sums of floats
// accumulate in double (lane-blocked, so that it vectorizes); integer sums in 64-bit wrapping.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/vmath.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "common/simd.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

constexpr int64_t kReduceGrain = 32768;  // input elements per parallel chunk

// Input dims after dropping size-1 dims and merging runs that are contiguous in memory. Per dim:
// input stride, output stride (0 on reduced dims) and the stride of the position among the
// reduced dims (row-major over the reduced dims: the "flat" index argmax reports).
struct RedPlan {
  int nd = 1;
  int64_t shape[kMaxRank] = {1};
  int64_t in_st[kMaxRank] = {0};
  int64_t out_st[kMaxRank] = {0};
  int64_t red_st[kMaxRank] = {0};
  bool red[kMaxRank] = {false};
};

RedPlan make_plan(const Array& x, const std::vector<bool>& reduced) {
  const int r = x.rank();
  NEF_CHECK(r <= kMaxRank, "rank ", r);
  int64_t ost[kMaxRank], rst[kMaxRank];
  int64_t o = 1, q = 1;
  for (int d = r - 1; d >= 0; --d) {
    ost[d] = reduced[d] ? 0 : o;
    rst[d] = reduced[d] ? q : 0;
    if (reduced[d]) q *= x.shape[d];
    else o *= x.shape[d];
  }
  RedPlan p;
  int nd = 0;
  for (int d = 0; d < r; ++d) {
    if (x.shape[d] == 1) continue;
    if (nd > 0 && p.red[nd - 1] == reduced[d] && p.in_st[nd - 1] == x.strides[d] * x.shape[d]) {
      p.shape[nd - 1] *= x.shape[d];
      p.in_st[nd - 1] = x.strides[d];
      p.out_st[nd - 1] = ost[d];
      p.red_st[nd - 1] = rst[d];
      continue;
    }
    p.shape[nd] = x.shape[d];
    p.in_st[nd] = x.strides[d];
    p.out_st[nd] = ost[d];
    p.red_st[nd] = rst[d];
    p.red[nd] = reduced[d];
    ++nd;
  }
  if (nd == 0) {  // a single element
    p.shape[0] = 1, p.in_st[0] = p.out_st[0] = p.red_st[0] = 0, p.red[0] = false;
    nd = 1;
  }
  p.nd = nd;
  return p;
}

// Calls fn(in_off, out_off, red_off, inner_len) for every innermost row with dim 0 in [b, e).
template <typename Fn>
void walk(const RedPlan& p, int64_t b, int64_t e, Fn&& fn) {
  const int last = p.nd - 1;
  if (last == 0) {
    fn(b * p.in_st[0], b * p.out_st[0], b * p.red_st[0], e - b);
    return;
  }
  int64_t idx[kMaxRank] = {0};
  idx[0] = b;
  int64_t io = b * p.in_st[0], oo = b * p.out_st[0], ro = b * p.red_st[0];
  while (true) {
    fn(io, oo, ro, p.shape[last]);
    int d = last - 1;
    for (; d >= 0; --d) {
      ++idx[d];
      io += p.in_st[d], oo += p.out_st[d], ro += p.red_st[d];
      if (idx[d] < (d == 0 ? e : p.shape[d])) break;
      if (d == 0) return;
      io -= idx[d] * p.in_st[d], oo -= idx[d] * p.out_st[d], ro -= idx[d] * p.red_st[d];
      idx[d] = 0;
    }
  }
}

template <typename C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return v != v;
  else return false;
}

// Accumulator type of sum/prod/mean: double for floats, wrapping 64-bit for integers and bool.
template <typename T>
using sum_acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, uint64_t>;

template <typename T, typename A>
inline A widen(T v) {
  if constexpr (std::is_same_v<A, double>) return double(load_as(v));
  else return A(int64_t(v));
}

// sum (and mean, which divides afterwards). Lane-blocked so GCC vectorizes without reassociating.
template <typename T, typename A>
struct SumOp {
  using Acc = A;
  static Acc init() { return A(0); }
  NEF_SIMD_CLONES static void reduce(const T* p, int64_t s, int64_t n, int64_t, int64_t, Acc& acc) {
    constexpr int L = 16;
    A lanes[L] = {};
    int64_t j = 0;
    if (s == 1) {
      for (; j + L <= n; j += L)
        for (int l = 0; l < L; ++l) lanes[l] += widen<T, A>(p[j + l]);
    } else {
      for (; j + L <= n; j += L)
        for (int l = 0; l < L; ++l) lanes[l] += widen<T, A>(p[(j + l) * s]);
    }
    A tail = 0;
    for (; j < n; ++j) tail += widen<T, A>(p[j * s]);
    for (int w = L / 2; w >= 1; w /= 2)  // pairwise fold of the lanes
      for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w];
    acc += lanes[0] + tail;
  }
  NEF_SIMD_CLONES static void map(const T* p, int64_t s, int64_t n, int64_t, Acc* acc) {
    if (s == 1)
      for (int64_t j = 0; j < n; ++j) acc[j] += widen<T, A>(p[j]);
    else
      for (int64_t j = 0; j < n; ++j) acc[j] += widen<T, A>(p[j * s]);
  }
  static void combine(Acc& a, const Acc& b) { a += b; }
};

template <typename T, typename A>
struct ProdOp {
  using Acc = A;
  static Acc init() { return A(1); }
  static void reduce(const T* p, int64_t s, int64_t n, int64_t, int64_t, Acc& acc) {
    for (int64_t j = 0; j < n; ++j) acc *= widen<T, A>(p[j * s]);
  }
  static void map(const T* p, int64_t s, int64_t n, int64_t, Acc* acc) {
    for (int64_t j = 0; j < n; ++j) acc[j] *= widen<T, A>(p[j * s]);
  }
  static void combine(Acc& a, const Acc& b) { a *= b; }
};

// max / min keep the first NaN they meet (numpy propagates NaN).
template <typename T, bool kMax>
struct ExtremeOp {
  using C = compute_t<T>;
  using Acc = std::conditional_t<std::is_same_v<C, bool>, uint8_t, C>;  // no vector<bool>
  static Acc init() {
    if constexpr (std::is_same_v<C, bool>) return kMax ? 0 : 1;
    else if constexpr (std::is_floating_point_v<C>)
      return kMax ? -std::numeric_limits<C>::infinity() : std::numeric_limits<C>::infinity();
    else return kMax ? std::numeric_limits<C>::lowest() : std::numeric_limits<C>::max();
  }
  static bool better(C x, C acc) {
    return (kMax ? x > acc : x < acc) || (is_nan(x) && !is_nan(acc));
  }
  static void reduce(const T* p, int64_t s, int64_t n, int64_t, int64_t, Acc& acc) {
    int64_t j = 0;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      // Contiguous floats: vectorized (vmath); a row holding a NaN is rescanned for its first
      // NaN, the value numpy's rule keeps.
      if (s == 1 && n >= 16) {
        bool nan = false;
        const C e = vmath::extreme(p, size_t(n), kMax, &nan);
        if (nan) {
          for (; j < n; ++j)
            if (is_nan(p[j])) break;
          if (!is_nan(acc)) acc = p[j];
          return;
        }
        if (better(e, acc)) acc = e;
        return;
      }
    }
    for (; j < n; ++j) {
      C x = load_as(p[j * s]);
      if (better(x, acc)) acc = x;
    }
  }
  NEF_SIMD_CLONES static void map(const T* p, int64_t s, int64_t n, int64_t, Acc* acc) {
    if (s == 1) {
      for (int64_t j = 0; j < n; ++j) {  // branch-free: vectorizes as compares and blends
        const C x = load_as(p[j]);
        const C a = acc[j];
        acc[j] = better(x, a) ? x : a;
      }
      return;
    }
    for (int64_t j = 0; j < n; ++j) {
      C x = load_as(p[j * s]);
      if (better(x, acc[j])) acc[j] = x;
    }
  }
  static void combine(Acc& a, const Acc& b) {
    if (better(b, a)) a = b;
  }
};

// argmax / argmin: value plus position among the reduced dims; the first occurrence wins.
template <typename T, bool kMax>
struct ArgOp {
  using C = compute_t<T>;
  struct Acc {
    C v;
    int64_t i;
  };
  static Acc init() { return {C{}, -1}; }
  static bool better(C x, int64_t xi, const Acc& a) {
    if (a.i < 0) return true;
    return (kMax ? x > a.v : x < a.v) || (is_nan(x) && !is_nan(a.v));
  }
  static void reduce(const T* p, int64_t s, int64_t n, int64_t r0, int64_t rs, Acc& acc) {
    for (int64_t j = 0; j < n; ++j) {
      C x = load_as(p[j * s]);
      if (better(x, r0 + j * rs, acc)) acc = {x, r0 + j * rs};
    }
  }
  static void map(const T* p, int64_t s, int64_t n, int64_t r0, Acc* acc) {
    for (int64_t j = 0; j < n; ++j) {
      C x = load_as(p[j * s]);
      if (better(x, r0, acc[j])) acc[j] = {x, r0};
    }
  }
  static void combine(Acc& a, const Acc& b) {  // b covers later positions than a
    if (b.i >= 0 && better(b.v, b.i, a)) a = b;
  }
};

// Runs Op over x into acc (size out_n, pre-filled with Op::init()).
template <typename T, typename Op>
void run_reduce(const Array& x, const std::vector<bool>& reduced,
                std::vector<typename Op::Acc>& acc) {
  using Acc = typename Op::Acc;
  const int64_t total = x.numel();
  if (total == 0 || acc.empty()) return;
  const RedPlan p = make_plan(x, reduced);
  const T* base = static_cast<const T*>(x.data());
  const int last = p.nd - 1;
  const bool inner_red = p.red[last];
  auto row = [&](Acc* out, int64_t io, int64_t oo, int64_t ro, int64_t n) {
    if (inner_red) Op::reduce(base + io, p.in_st[last], n, ro, p.red_st[last], out[oo]);
    else Op::map(base + io, p.in_st[last], n, ro, out + oo);
  };
  const int threads = num_threads();
  if (threads <= 1 || total < 2 * kReduceGrain || p.shape[0] < 2) {
    walk(p, 0, p.shape[0],
         [&](int64_t io, int64_t oo, int64_t ro, int64_t n) { row(acc.data(), io, oo, ro, n); });
    return;
  }
  const int64_t per_d0 = total / p.shape[0];
  if (!p.red[0]) {  // chunks of dim 0 write disjoint outputs
    parallel_for(p.shape[0], std::max<int64_t>(1, kReduceGrain / per_d0),
                 [&](int64_t b, int64_t e) {
                   walk(p, b, e, [&](int64_t io, int64_t oo, int64_t ro, int64_t n) {
                     row(acc.data(), io, oo, ro, n);
                   });
                 });
    return;
  }
  // Dim 0 is reduced: each chunk gets private accumulators, combined in chunk order (keeps
  // argmax's first-occurrence rule and makes results independent of scheduling).
  const int64_t out_n = int64_t(acc.size());
  int64_t chunks = std::min<int64_t>({threads, p.shape[0], total / kReduceGrain});
  if (out_n * chunks > total / 2) chunks = 1;  // private copies would cost more than they save
  std::vector<std::vector<Acc>> priv(chunks, std::vector<Acc>(out_n, Op::init()));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      int64_t b = p.shape[0] * c / chunks, e = p.shape[0] * (c + 1) / chunks;
      walk(p, b, e, [&](int64_t io, int64_t oo, int64_t ro, int64_t n) {
        row(priv[c].data(), io, oo, ro, n);
      });
    }
  });
  for (int64_t c = 0; c < chunks; ++c)
    for (int64_t i = 0; i < out_n; ++i) Op::combine(acc[i], priv[c][i]);
}

std::vector<bool> reduced_dims(const Array& x, const ir::Attrs& attrs, bool single_axis) {
  std::vector<bool> red(x.rank(), false);
  if (single_axis) {
    if (auto a = attrs.opt_int("axis")) {
      red[normalize_axis(*a, x.rank(), "argmax")] = true;
      return red;
    }
  } else if (const auto* axes = attrs.opt_ints("axes")) {
    for (int64_t a : *axes) red[normalize_axis(a, x.rank(), "reduce")] = true;
    return red;
  }
  std::fill(red.begin(), red.end(), true);
  return red;
}

// Writes accumulators to the output dtype; `scale` divides sums for mean.
template <typename A>
void store_values(const std::vector<A>& acc, Array& out, double divisor) {
  dispatch_dtype(out.dtype, [&]<typename O>() {
    O* o = out.data_as<O>();
    for (size_t i = 0; i < acc.size(); ++i) {
      if constexpr (std::is_same_v<A, uint64_t>) {
        o[i] = store_as<O>(static_cast<compute_t<O>>(int64_t(acc[i])));
      } else if constexpr (std::is_same_v<O, bool>) {
        o[i] = acc[i] != A(0);
      } else {
        double v = double(acc[i]);
        if (divisor != 1.0) v /= divisor;
        o[i] = store_as<O>(compute_t<O>(v));
      }
    }
  });
}

enum class Kind { Sum, Prod, Mean, Max, Min, ArgMax, ArgMin };

template <Kind K>
void reduce_kernel(const KernelArgs& args) {
  const Array& x = args.inputs[0];
  Array& out = args.out;
  const int64_t out_n = out.numel();
  if (out_n == 0) return;
  const bool single = K == Kind::ArgMax || K == Kind::ArgMin;
  std::vector<bool> red = reduced_dims(x, args.attrs, single);
  dispatch_dtype(x.dtype, [&]<typename T>() {
    if constexpr (K == Kind::Sum || K == Kind::Prod || K == Kind::Mean) {
      using A = std::conditional_t<K == Kind::Mean, double, sum_acc_t<T>>;
      using Op = std::conditional_t<K == Kind::Prod, ProdOp<T, A>, SumOp<T, A>>;
      std::vector<A> acc(out_n, Op::init());
      run_reduce<T, Op>(x, red, acc);
      // mean of an empty extent is 0/0 = NaN, as numpy.
      double count = double(x.numel()) / double(out_n);
      store_values(acc, out, K == Kind::Mean ? count : 1.0);
    } else if constexpr (K == Kind::Max || K == Kind::Min) {
      using C = compute_t<T>;
      using Op = ExtremeOp<T, K == Kind::Max>;
      NEF_CHECK(x.numel() > 0, "max/min of empty input");
      std::vector<typename Op::Acc> acc(out_n, Op::init());
      run_reduce<T, Op>(x, red, acc);
      T* o = out.data_as<T>();
      for (int64_t i = 0; i < out_n; ++i) o[i] = store_as<T>(C(acc[i]));
    } else {
      using Op = ArgOp<T, K == Kind::ArgMax>;
      NEF_CHECK(x.numel() > 0, "argmax/argmin of empty input");
      std::vector<typename Op::Acc> acc(out_n, Op::init());
      run_reduce<T, Op>(x, red, acc);
      int64_t* o = out.data_as<int64_t>();
      for (int64_t i = 0; i < out_n; ++i) o[i] = acc[i].i < 0 ? 0 : acc[i].i;
    }
  });
}

}  // namespace

void register_reduction_kernels(KernelTable& t) {
  t.add("sum", reduce_kernel<Kind::Sum>);
  t.add("prod", reduce_kernel<Kind::Prod>);
  t.add("mean", reduce_kernel<Kind::Mean>);
  t.add("max", reduce_kernel<Kind::Max>);
  t.add("min", reduce_kernel<Kind::Min>);
  t.add("argmax", reduce_kernel<Kind::ArgMax>);
  t.add("argmin", reduce_kernel<Kind::ArgMin>);
}

}  // namespace nef::backend::cpu
