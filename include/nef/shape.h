// Shapes and strides (in elements), numpy broadcasting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nef {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

// Ranks above this are rejected everywhere (API, loader): keeps stack buffers and loops bounded.
inline constexpr int kMaxRank = 16;
// Element counts above this are rejected (no shape product may overflow int64 arithmetic).
inline constexpr int64_t kMaxElements = int64_t{1} << 48;

std::string shape_str(const Shape& s);  // "(2, 3)"

// Product of dims; throws ShapeError on negative dims or if the product exceeds kMaxElements.
int64_t checked_numel(const Shape& s, const char* op = "shape");
inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Strides contiguous_strides(const Shape& s);

// numpy broadcast of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Strides that read `from` (with its strides) as if broadcast to `to` (stride 0 on broadcast dims).
Strides broadcast_strides(const Shape& from, const Strides& from_strides, const Shape& to);

// Normalizes a possibly negative axis; throws ShapeError "[op] axis A out of range for rank R".
int normalize_axis(int64_t axis, int rank, const char* op);

}  // namespace nef
