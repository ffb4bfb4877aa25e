// CPU kernels of the indexing family: gather_elements, gather_nd, scatter_elements, scatter_nd.
// Indices are read and checked first, serially (an index out of range is a ValidationError
// naming the op, the index and the extent; nothing is written before every index is known to be
// valid). Gathers then copy in parallel by element size; scatters copy data into the output and
// apply the updates in index order (so repeated indices resolve as ONNX's reference does: the
// last write wins for "none", the reductions accumulate).
#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/strided_iter.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

constexpr int64_t kGrain = 1 << 14;

// Every index of `ind` (any strides, int32/int64) in row-major order, negative ones wrapped by
// extent(position) and checked against it.
template <typename Extent>
std::vector<int64_t> read_indices(const Array& ind, const char* op, Extent extent) {
  std::vector<int64_t> out(size_t(ind.numel()));
  if (ind.numel() == 0) return out;
  StridedIter<1> it(ind.shape, {ind.strides});
  int64_t k = 0;
  auto put = [&](int64_t v) {
    const int64_t n = extent(k);
    const int64_t w = v < 0 ? v + n : v;
    if (w < 0 || w >= n)
      throw ValidationError(str("[", op, "] index ", v, " out of range for an axis of size ", n,
                                " (indices ", shape_str(ind.shape), ")"));
    out[size_t(k++)] = w;
  };
  it.for_each_row(0, ind.numel(), [&](const int64_t* off, int64_t len) {
    const int64_t s = it.inner_stride(0);
    if (ind.dtype == DType::Int64) {
      const int64_t* p = static_cast<const int64_t*>(ind.data()) + off[0];
      for (int64_t i = 0; i < len; ++i) put(p[i * s]);
    } else {
      NEF_CHECK(ind.dtype == DType::Int32, "[", op, "] index dtype");
      const int32_t* p = static_cast<const int32_t*>(ind.data()) + off[0];
      for (int64_t i = 0; i < len; ++i) put(p[i * s]);
    }
  });
  return out;
}

// Calls fn.template operator()<W>() with an unsigned word type of the dtype's size: copies
// move elements as words, whatever their type.
template <typename Fn>
void dispatch_word(DType t, Fn&& fn) {
  switch (dtype_size(t)) {
    case 1:
      return fn.template operator()<uint8_t>();
    case 2:
      return fn.template operator()<uint16_t>();
    case 4:
      return fn.template operator()<uint32_t>();
    default:
      return fn.template operator()<uint64_t>();
  }
}

// Offset of the element with row-major linear position `pos` in `shape`, by `strides`,
// skipping dim `skip` (its coordinate is returned through `skipped`).
int64_t offset_of(int64_t pos, const Shape& shape, const Strides& strides, int skip,
                  int64_t& skipped) {
  int64_t off = 0;
  for (int d = int(shape.size()) - 1; d >= 0; --d) {
    const int64_t c = pos % shape[size_t(d)];
    pos /= shape[size_t(d)];
    if (d == skip) skipped = c;
    else off += c * strides[size_t(d)];
  }
  return off;
}

// ---- gather_elements ------------------------------------------------------------------------

void k_gather_elements(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  const Array& ind = a.inputs[1];
  Array& out = a.out;
  const int axis = int(a.attrs.get_int("axis"));
  const int64_t n = x.shape[size_t(axis)];
  std::vector<int64_t> idx = read_indices(ind, "gather_elements", [n](int64_t) { return n; });
  const int64_t total = out.numel();
  if (total == 0) return;
  const Shape& s = out.shape;
  const int last = int(s.size()) - 1;
  const int64_t row = s[size_t(last)], rows = total / row;
  dispatch_word(x.dtype, [&]<typename W>() {
    const W* xp = static_cast<const W*>(x.data());
    W* op = static_cast<W*>(out.data());
    const int64_t xs_axis = x.strides[size_t(axis)], xs_last = x.strides[size_t(last)];
    parallel_for(rows, std::max<int64_t>(1, kGrain / row), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        // The row's offset in x from its coordinates (the last dim and the axis excluded).
        int64_t base = 0, pos = r;
        for (int d = last - 1; d >= 0; --d) {
          const int64_t c = pos % s[size_t(d)];
          pos /= s[size_t(d)];
          if (d != axis) base += c * x.strides[size_t(d)];
        }
        const int64_t* ir = idx.data() + r * row;
        W* o = op + r * row;
        if (axis == last) {
          for (int64_t j = 0; j < row; ++j) o[j] = xp[base + ir[j] * xs_axis];
        } else {
          for (int64_t j = 0; j < row; ++j) o[j] = xp[base + j * xs_last + ir[j] * xs_axis];
        }
      }
    });
  });
}

// ---- scatter reductions ---------------------------------------------------------------------

enum class Reduce { None, Add, Mul, Max, Min };

Reduce reduction_of(const ir::Attrs& attrs) {
  const std::string& r = attrs.get_string("reduction");
  return r == "add"   ? Reduce::Add
         : r == "mul" ? Reduce::Mul
         : r == "max" ? Reduce::Max
         : r == "min" ? Reduce::Min
                      : Reduce::None;
}

// dst op= src for one element of storage type T (ints wrap, half types through float; max/min
// keep a NaN from either side, as numpy's maximum does).
template <typename T>
void apply_reduce(Reduce r, T& dst, T src) {
  using C = compute_t<T>;
  if constexpr (std::is_same_v<T, bool>) {
    if (r == Reduce::Max) dst = dst || src;
    else if (r == Reduce::Min) dst = dst && src;
    else dst = src;
  } else {
    C a = load_as(dst), b = load_as(src);
    C v;
    switch (r) {
      case Reduce::Add:
        if constexpr (std::is_integral_v<C>) v = C(wrap_t<C>(a) + wrap_t<C>(b));
        else v = a + b;
        break;
      case Reduce::Mul:
        if constexpr (std::is_integral_v<C>) v = C(wrap_t<C>(a) * wrap_t<C>(b));
        else v = a * b;
        break;
      case Reduce::Max:
        v = (a > b || a != a) ? a : b;
        break;
      case Reduce::Min:
        v = (a < b || a != a) ? a : b;
        break;
      default:
        v = b;
        break;
    }
    dst = store_as<T>(v);
  }
}

// ---- scatter_elements -----------------------------------------------------------------------

void k_scatter_elements(const KernelArgs& a) {
  const Array& data = a.inputs[0];
  const Array& ind = a.inputs[1];
  Array& out = a.out;
  const int axis = int(a.attrs.get_int("axis"));
  const Reduce red = reduction_of(a.attrs);
  const int64_t n = data.shape[size_t(axis)];
  std::vector<int64_t> idx = read_indices(ind, "scatter_elements", [n](int64_t) { return n; });
  copy_strided(data, out);
  if (idx.empty()) return;
  const Array upd = a.inputs[2].contiguous();
  const Strides os = contiguous_strides(out.shape);
  const Shape& is = ind.shape;
  dispatch_dtype(out.dtype, [&]<typename T>() {
    T* o = static_cast<T*>(out.data());
    const T* u = static_cast<const T*>(upd.data());
    for (int64_t p = 0; p < int64_t(idx.size()); ++p) {
      int64_t coord = 0;
      const int64_t off = offset_of(p, is, os, axis, coord) + idx[size_t(p)] * os[size_t(axis)];
      apply_reduce<T>(red, o[off], u[p]);
    }
  });
}

// ---- gather_nd / scatter_nd -----------------------------------------------------------------

// Element offsets (by `strides`) of the slices that indices (..., k) address after batch_dims b
// of a tensor of `shape`: one per index tuple, in row-major order of the tuples.
std::vector<int64_t> nd_offsets(const Array& ind, const Shape& shape, const Strides& strides,
                                int64_t b, const char* op) {
  const int64_t k = ind.shape.back();
  std::vector<int64_t> idx =
      read_indices(ind, op, [&](int64_t pos) { return shape[size_t(b + pos % k)]; });
  const int64_t tuples = k == 0 ? 0 : int64_t(idx.size()) / k;
  // Tuples per batch position, and each batch position's offset.
  int64_t per_batch = 1;
  for (size_t d = size_t(b); d + 1 < ind.shape.size(); ++d) per_batch *= ind.shape[d];
  std::vector<int64_t> offs(static_cast<size_t>(tuples));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = 0, bpos = per_batch == 0 ? 0 : t / per_batch;
    for (int64_t d = b - 1; d >= 0; --d) {
      off += (bpos % shape[size_t(d)]) * strides[size_t(d)];
      bpos /= shape[size_t(d)];
    }
    for (int64_t j = 0; j < k; ++j) off += idx[size_t(t * k + j)] * strides[size_t(b + j)];
    offs[size_t(t)] = off;
  }
  return offs;
}

void k_gather_nd(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  const Array& ind = a.inputs[1];
  Array& out = a.out;
  const int64_t b = a.attrs.get_int("batch_dims"), k = ind.shape.back();
  std::vector<int64_t> offs = nd_offsets(ind, x.shape, x.strides, b, "gather_nd");
  if (out.numel() == 0) return;
  const Shape slice(x.shape.begin() + b + k, x.shape.end());
  const Strides slice_strides(x.strides.begin() + b + k, x.strides.end());
  const int64_t len = numel(slice);
  StridedIter<2> it(slice, {contiguous_strides(slice), slice_strides});
  dispatch_word(x.dtype, [&]<typename W>() {
    const W* xp = static_cast<const W*>(x.data());
    W* op = static_cast<W*>(out.data());
    parallel_for(int64_t(offs.size()), std::max<int64_t>(1, kGrain / std::max<int64_t>(len, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t t = lo; t < hi; ++t) {
                     const W* src = xp + offs[size_t(t)];
                     W* dst = op + t * len;
                     it.for_each_row(0, len, [&](const int64_t* off, int64_t n) {
                       const int64_t ds = it.inner_stride(0), ss = it.inner_stride(1);
                       for (int64_t i = 0; i < n; ++i) dst[off[0] + i * ds] = src[off[1] + i * ss];
                     });
                   }
                 });
  });
}

void k_scatter_nd(const KernelArgs& a) {
  const Array& data = a.inputs[0];
  const Array& ind = a.inputs[1];
  Array& out = a.out;
  const Reduce red = reduction_of(a.attrs);
  const int64_t k = ind.shape.back();
  const Strides os = contiguous_strides(out.shape);
  std::vector<int64_t> offs = nd_offsets(ind, out.shape, os, 0, "scatter_nd");
  copy_strided(data, out);
  if (offs.empty()) return;
  const Array upd = a.inputs[2].contiguous();
  // The slice under each tuple is contiguous in the output: dims k.. of a row-major tensor.
  const int64_t len = numel(Shape(out.shape.begin() + k, out.shape.end()));
  dispatch_dtype(out.dtype, [&]<typename T>() {
    T* o = static_cast<T*>(out.data());
    const T* u = static_cast<const T*>(upd.data());
    for (size_t t = 0; t < offs.size(); ++t) {
      T* dst = o + offs[t];
      const T* src = u + int64_t(t) * len;
      if (red == Reduce::None) {
        std::memcpy(static_cast<void*>(dst), src, size_t(len) * sizeof(T));
      } else {
        for (int64_t i = 0; i < len; ++i) apply_reduce<T>(red, dst[i], src[i]);
      }
    }
  });
}

}  // namespace

void register_indexing_kernels(KernelTable& t) {
  t.add("gather_elements", k_gather_elements);
  t.add("gather_nd", k_gather_nd);
  t.add("scatter_elements", k_scatter_elements);
  t.add("scatter_nd", k_scatter_nd);
}

}  // namespace nef::backend::cpu
