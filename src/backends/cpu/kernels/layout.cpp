// CPU kernels of the layout family. View ops (reshape, transpose, slice, broadcast_to,
// expand_dims, squeeze) have none: they are metadata, computed for every device by ir/views.h.
// concat and gather copy into the preallocated contiguous output, by memcpy of contiguous rows
// where the layouts allow it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/strided_iter.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "common/simd.h"
#include "ir/views.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// Bytes per parallel chunk for copies: small enough to spread, large enough to amortize.
constexpr int64_t kCopyGrainBytes = int64_t{1} << 16;

// d[i] = s[2 * i]: rows of a stride-2 slice (YOLOX's Focus concatenates four of them: the
// generic strided loop does not vectorize, a constant stride does).
template <typename W>
NEF_SIMD_CLONES void copy_every_other(W* __restrict d, const W* __restrict s, int64_t len) {
  for (int64_t i = 0; i < len; ++i) d[i] = s[2 * i];
}

// Copies src (any strides) into dst (a strided view of the output) with dtype conversion.
template <typename I, typename O>
void convert_rows(const Array& src, const Array& dst) {
  StridedIter<2> it(src.shape, {dst.strides, src.strides});
  const I* sp = static_cast<const I*>(src.data());
  O* dp = static_cast<O*>(dst.data());
  int64_t grain = std::max<int64_t>(1, kCopyGrainBytes / int64_t(sizeof(O)));
  it.parallel_rows(
      [&](const int64_t* off, int64_t len) {
        O* d = dp + off[0];
        const I* s = sp + off[1];
        int64_t ds = it.inner_stride(0), ss = it.inner_stride(1);
        if constexpr (std::is_same_v<I, O>) {
          if (ds == 1 && ss == 1) {
            std::memcpy(d, s, size_t(len) * sizeof(O));
            return;
          }
          if constexpr (sizeof(O) == 4 && std::is_trivially_copyable_v<O>) {
            if (ds == 1 && ss == 2) {
              copy_every_other(reinterpret_cast<uint32_t*>(d), reinterpret_cast<const uint32_t*>(s),
                               len);
              return;
            }
          }
          for (int64_t i = 0; i < len; ++i) d[i * ds] = s[i * ss];
        } else {
          for (int64_t i = 0; i < len; ++i)
            d[i * ds] = store_as<O>(static_cast<compute_t<O>>(load_as(s[i * ss])));
        }
      },
      grain);
}

void k_concat(const KernelArgs& a) {
  Array& out = a.out;
  int axis = int(a.attrs.get_int("axis"));
  NEF_CHECK(out.is_contiguous() && axis >= 0 && axis < out.rank(), "[concat] output");
  Strides ost = contiguous_strides(out.shape);
  int64_t pos = 0;
  for (const Array& x : a.inputs) {
    NEF_CHECK(x.rank() == out.rank(), "[concat] input rank");
    // The input's destination: the output block at `pos` along axis, same strides as out.
    Array dst = ir::view_of(out, out.offset + pos * ost[axis], x.shape, ost);
    pos += x.shape[axis];
    if (x.numel() == 0) continue;
    if (is_storage_only(x.dtype)) {  // float8: bytes (inference made every input out's dtype)
      copy_strided(x, dst);
      continue;
    }
    dispatch_dtype(x.dtype, [&]<typename I>() {
      dispatch_dtype(out.dtype, [&]<typename O>() { convert_rows<I, O>(x, dst); });
    });
  }
  NEF_CHECK(pos == out.shape[axis], "[concat] output extent");
}

// Same-dtype element copy for a strided row (element size picks the word type).
template <typename W>
void copy_row(W* d, int64_t ds, const W* s, int64_t ss, int64_t len) {
  for (int64_t i = 0; i < len; ++i) d[i * ds] = s[i * ss];
}

void k_gather(const KernelArgs& a) {
  const Array& x = a.inputs[0];
  const Array& ind = a.inputs[1];
  Array& out = a.out;
  const int axis = int(a.attrs.get_int("axis"));
  NEF_CHECK(axis >= 0 && axis < x.rank() && out.is_contiguous(), "[gather] axis/output");
  const int64_t dim = x.shape[axis];
  const int64_t n_idx = ind.numel();

  // Read and check every index first, serially: nothing may throw inside a parallel region,
  // and nothing is written before all indices are known to be valid.
  std::vector<int64_t> idx(static_cast<size_t>(n_idx));
  {
    StridedIter<1> it(ind.shape, {ind.strides});
    int64_t k = 0;
    auto check = [&](int64_t v) {
      int64_t w = v < 0 ? v + dim : v;
      if (w < 0 || w >= dim)
        throw ValidationError(
            str("[gather] index ", v, " out of range for axis ", axis, " with size ", dim));
      idx[size_t(k++)] = w;
    };
    it.for_each_row(0, n_idx, [&](const int64_t* off, int64_t len) {
      int64_t s = it.inner_stride(0);
      if (ind.dtype == DType::Int64) {
        const int64_t* p = static_cast<const int64_t*>(ind.data()) + off[0];
        for (int64_t i = 0; i < len; ++i) check(p[i * s]);
      } else {
        NEF_CHECK(ind.dtype == DType::Int32, "[gather] index dtype");
        const int32_t* p = static_cast<const int32_t*>(ind.data()) + off[0];
        for (int64_t i = 0; i < len; ++i) check(p[i * s]);
      }
    });
  }
  if (out.numel() == 0) return;

  // Output rows are (outer position o, index j); each row is one inner block of x.
  Shape outer_shape(x.shape.begin(), x.shape.begin() + axis);
  Shape inner_shape(x.shape.begin() + axis + 1, x.shape.end());
  Strides outer_strides(x.strides.begin(), x.strides.begin() + axis);
  Strides inner_strides(x.strides.begin() + axis + 1, x.strides.end());
  const int64_t outer = numel(outer_shape), inner = numel(inner_shape);
  const int64_t esize = int64_t(dtype_size(x.dtype));
  StridedIter<2> inner_it(inner_shape, {contiguous_strides(inner_shape), inner_strides});
  const bool inner_dense = inner <= 1 || (inner_it.ndim == 1 && inner_it.inner_stride(0) == 1 &&
                                          inner_it.inner_stride(1) == 1);
  const char* xb = static_cast<const char*>(x.data());
  char* ob = static_cast<char*>(out.data());
  const int64_t xstride_axis = x.strides[axis];

  auto run_rows = [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t o = r / n_idx, j = r % n_idx;
      int64_t base = idx[size_t(j)] * xstride_axis;  // element offset of x's block
      for (int d = axis - 1; d >= 0; --d) {
        base += (o % outer_shape[d]) * outer_strides[d];
        o /= outer_shape[d];
      }
      char* dst = ob + r * inner * esize;
      const char* src = xb + base * esize;
      if (inner_dense) {
        std::memcpy(dst, src, size_t(inner * esize));
        continue;
      }
      inner_it.for_each_row(0, inner, [&](const int64_t* off, int64_t len) {
        int64_t ds = inner_it.inner_stride(0), ss = inner_it.inner_stride(1);
        switch (esize) {
          case 1:
            copy_row(reinterpret_cast<uint8_t*>(dst) + off[0], ds,
                     reinterpret_cast<const uint8_t*>(src) + off[1], ss, len);
            break;
          case 2:
            copy_row(reinterpret_cast<uint16_t*>(dst) + off[0], ds,
                     reinterpret_cast<const uint16_t*>(src) + off[1], ss, len);
            break;
          case 4:
            copy_row(reinterpret_cast<uint32_t*>(dst) + off[0], ds,
                     reinterpret_cast<const uint32_t*>(src) + off[1], ss, len);
            break;
          default:
            copy_row(reinterpret_cast<uint64_t*>(dst) + off[0], ds,
                     reinterpret_cast<const uint64_t*>(src) + off[1], ss, len);
            break;
        }
      });
    }
  };
  const int64_t rows = outer * n_idx;
  parallel_for(rows, std::max<int64_t>(1, kCopyGrainBytes / std::max<int64_t>(1, inner * esize)),
               run_rows);
}

}  // namespace

void register_layout_kernels(KernelTable& t) {
  t.add("concat", k_concat);
  t.add("gather", k_gather);
}

}  // namespace nef::backend::cpu
