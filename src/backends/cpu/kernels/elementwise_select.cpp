// Three-input elementwise kernels: where(cond, a, b) and clip(x, lo, hi). Value operands are
// converted to the output dtype (cond to bool) first, so each op has one loop per dtype.
#include <type_traits>

#include "backends/cpu/kernels/elementwise.h"
#include "backends/cpu/kernels/strided_iter.h"
#include "common/dispatch.h"
#include "common/simd.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// Fast paths: all contiguous, and the frequent where(mask, x, scalar) / where(mask, scalar, x).
template <typename T>
NEF_SIMD_CLONES void where_row(const bool* c, int64_t sc, const T* a, int64_t sa, const T* b,
                               int64_t sb, T* o, int64_t so, int64_t n) {
  if (so == 1 && sc == 1) {
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : b[i];
      return;
    }
    if (sa == 1 && sb == 0) {
      T bv = b[0];
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : bv;
      return;
    }
    if (sa == 0 && sb == 1) {
      T av = a[0];
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? av : b[i];
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i) o[i * so] = c[i * sc] ? a[i * sa] : b[i * sb];
}

// numpy clip = minimum(maximum(x, lo), hi), with NaN propagation from any operand.
template <typename C>
inline C clip_one(C x, C lo, C hi) {
  C m = (x > lo || x != x) ? x : lo;
  return (m < hi || m != m) ? m : hi;
}

template <typename T>
NEF_SIMD_CLONES void clip_row(const T* x, int64_t sx, const T* lo, int64_t sl, const T* hi,
                              int64_t sh, T* o, int64_t so, int64_t n) {
  if (so == 1 && sx == 1) {
    if (sl == 0 && sh == 0) {
      auto l = load_as(lo[0]), h = load_as(hi[0]);
      for (int64_t i = 0; i < n; ++i) o[i] = store_as<T>(clip_one(load_as(x[i]), l, h));
      return;
    }
    if (sl == 1 && sh == 1) {
      for (int64_t i = 0; i < n; ++i)
        o[i] = store_as<T>(clip_one(load_as(x[i]), load_as(lo[i]), load_as(hi[i])));
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i)
    o[i * so] = store_as<T>(clip_one(load_as(x[i * sx]), load_as(lo[i * sl]), load_as(hi[i * sh])));
}

void where_kernel(const KernelArgs& args) {
  const Array& out = args.out;
  if (out.numel() == 0) return;
  Array c_cast;
  const Array& c = cast_array(args.inputs[0], DType::Bool, c_cast);
  Array a_cast;
  const Array& a = cast_array(args.inputs[1], out.dtype, a_cast);
  Array b_cast;
  const Array& b = cast_array(args.inputs[2], out.dtype, b_cast);
  auto it = make_elementwise_iter<4>(out, {&c, &a, &b});
  dispatch_dtype(out.dtype, [&]<typename T>() {
    it.parallel_rows([&](const int64_t* off, int64_t n) {
      where_row<T>(elem_ptr<const bool>(c, off[1]), it.inner_stride(1),
                   elem_ptr<const T>(a, off[2]), it.inner_stride(2), elem_ptr<const T>(b, off[3]),
                   it.inner_stride(3), elem_ptr<T>(out, off[0]), it.inner_stride(0), n);
    });
  });
}

void clip_kernel(const KernelArgs& args) {
  const Array& out = args.out;
  if (out.numel() == 0) return;
  Array x_cast;
  const Array& x = cast_array(args.inputs[0], out.dtype, x_cast);
  Array lo_cast;
  const Array& lo = cast_array(args.inputs[1], out.dtype, lo_cast);
  Array hi_cast;
  const Array& hi = cast_array(args.inputs[2], out.dtype, hi_cast);
  auto it = make_elementwise_iter<4>(out, {&x, &lo, &hi});
  dispatch_dtype(out.dtype, [&]<typename T>() {
    it.parallel_rows([&](const int64_t* off, int64_t n) {
      clip_row<T>(elem_ptr<const T>(x, off[1]), it.inner_stride(1), elem_ptr<const T>(lo, off[2]),
                  it.inner_stride(2), elem_ptr<const T>(hi, off[3]), it.inner_stride(3),
                  elem_ptr<T>(out, off[0]), it.inner_stride(0), n);
    });
  });
}

}  // namespace

void register_select_kernels(KernelTable& t) {
  t.add("where", where_kernel);
  t.add("clip", clip_kernel);
}

}  // namespace nef::backend::cpu
