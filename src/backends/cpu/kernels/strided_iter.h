// N-d strided iteration for CPU kernels: broadcasts operands to an iteration shape, collapses
// dims that are contiguous for every operand, and walks a flat element range as a sequence of
// inner rows (each row: one base offset per operand plus the row length). Kernels write their hot
// loop once per row with the row's inner strides, so contiguous and stride-0 rows get fast paths.
// Internal to the CPU backend; header-only.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "backends/cpu/parallel.h"
#include "nef/array.h"
#include "nef/error.h"
#include "nef/shape.h"

namespace nef::backend::cpu {

// Elements per parallel chunk for cheap elementwise work.
inline constexpr int64_t kElementwiseGrain = 32768;

// Iteration plan for N operands over one shape. Offsets and strides are in elements.
template <int N>
struct StridedIter {
  int ndim = 1;
  int64_t numel = 0;
  int64_t shape[kMaxRank] = {1};
  int64_t strides[N][kMaxRank] = {};

  // `operand_strides[k]` must already match `shape` (use broadcast_strides first).
  StridedIter(const Shape& s, const std::array<Strides, N>& operand_strides) {
    NEF_CHECK(s.size() <= size_t(kMaxRank), "rank ", s.size());
    numel = nef::numel(s);
    int nd = 0;
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] == 1) continue;  // size-1 dims carry no iteration; their strides are irrelevant
      if (nd > 0) {
        // Merge with the previous kept dim when every operand walks both as one run.
        bool merge = true;
        for (int k = 0; k < N; ++k)
          if (strides[k][nd - 1] != operand_strides[k][d] * s[d]) merge = false;
        if (merge) {
          shape[nd - 1] *= s[d];
          for (int k = 0; k < N; ++k) strides[k][nd - 1] = operand_strides[k][d];
          continue;
        }
      }
      shape[nd] = s[d];
      for (int k = 0; k < N; ++k) strides[k][nd] = operand_strides[k][d];
      ++nd;
    }
    if (nd == 0) {  // rank 0 or all size-1 dims: one element
      shape[0] = 1;
      for (int k = 0; k < N; ++k) strides[k][0] = 0;
      nd = 1;
    }
    ndim = nd;
  }

  int64_t inner_size() const { return shape[ndim - 1]; }
  int64_t inner_stride(int k) const { return strides[k][ndim - 1]; }

  // Calls fn(const int64_t* offsets /*N*/, int64_t len) for the rows (or row pieces) covering
  // flat elements [begin, end) in row-major order.
  template <typename Fn>
  void for_each_row(int64_t begin, int64_t end, Fn&& fn) const {
    if (begin >= end) return;
    int64_t idx[kMaxRank];
    int64_t off[N] = {};
    int64_t rem = begin;
    for (int d = ndim - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      for (int k = 0; k < N; ++k) off[k] += idx[d] * strides[k][d];
    }
    const int last = ndim - 1;
    int64_t pos = begin;
    while (pos < end) {
      int64_t len = std::min(shape[last] - idx[last], end - pos);
      fn(static_cast<const int64_t*>(off), len);
      pos += len;
      if (pos >= end) break;
      // Advance to the start of the next row, carrying into outer dims.
      for (int k = 0; k < N; ++k) off[k] -= idx[last] * strides[k][last];
      idx[last] = 0;
      for (int d = last - 1; d >= 0; --d) {
        ++idx[d];
        for (int k = 0; k < N; ++k) off[k] += strides[k][d];
        if (idx[d] < shape[d]) break;
        for (int k = 0; k < N; ++k) off[k] -= idx[d] * strides[k][d];
        idx[d] = 0;
      }
    }
  }

  // Splits the whole range across threads (chunks of at least `grain` elements) and calls
  // fn(offsets, len) for every row piece. fn must be safe to call concurrently.
  template <typename Fn>
  void parallel_rows(Fn&& fn, int64_t grain = kElementwiseGrain) const {
    parallel_for(numel, grain, [&](int64_t b, int64_t e) { for_each_row(b, e, fn); });
  }
};

// Plan for an output (operand 0, usually contiguous) and inputs broadcast to the output's shape.
template <int N>
StridedIter<N> make_elementwise_iter(const Array& out, const std::array<const Array*, N - 1>& ins) {
  std::array<Strides, N> st;
  st[0] = out.strides.size() == out.shape.size() ? out.strides : contiguous_strides(out.shape);
  for (int k = 1; k < N; ++k)
    st[k] = broadcast_strides(ins[k - 1]->shape, ins[k - 1]->strides, out.shape);
  return StridedIter<N>(out.shape, st);
}

// Element pointer of operand `a` at element offset `off` (typed; offset may be negative).
template <typename T>
inline T* elem_ptr(const Array& a, int64_t off) {
  return static_cast<T*>(a.data()) + off;
}

}  // namespace nef::backend::cpu
