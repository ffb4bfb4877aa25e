#include "nef/shape.h"

#include "nef/error.h"

namespace nef {

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  if (s.size() == 1) r += ",";
  return r + ")";
}

int64_t checked_numel(const Shape& s, const char* op) {
  if (s.size() > static_cast<size_t>(kMaxRank))
    throw ShapeError(str("[", op, "] rank ", s.size(), " exceeds the maximum ", kMaxRank));
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw ShapeError(str("[", op, "] negative dimension in ", shape_str(s)));
    if (d != 0 && n > kMaxElements / d)
      throw ShapeError(str("[", op, "] shape ", shape_str(s), " has too many elements"));
    n *= d;
  }
  // A zero dim makes the product 0 even if other dims are huge; still cap every dim.
  for (int64_t d : s)
    if (d > kMaxElements)
      throw ShapeError(str("[", op, "] dimension ", d, " too large in ", shape_str(s)));
  return n;
}

Strides contiguous_strides(const Shape& s) {
  Strides st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    // Saturate: only an empty array (a zero dim elsewhere) can get here with huge dims, and
    // its strides are never used to address memory.
    int64_t d = s[i] <= 1 ? 1 : s[i];
    acc = acc > kMaxElements / d ? kMaxElements : acc * d;
  }
  return st;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == db || db == 1) {
      out[i] = da;
    } else if (da == 1) {
      out[i] = db;
    } else {
      throw ShapeError(str("[", op, "] shapes ", shape_str(a), " and ", shape_str(b),
                           " cannot be broadcast together"));
    }
  }
  return out;
}

Strides broadcast_strides(const Shape& from, const Strides& from_strides, const Shape& to) {
  NEF_CHECK(from.size() <= to.size() && from.size() == from_strides.size());
  Strides st(to.size(), 0);
  size_t lead = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i) {
    NEF_CHECK(from[i] == to[lead + i] || from[i] == 1, "broadcast ", shape_str(from), " to ",
              shape_str(to));
    st[lead + i] = (from[i] == 1 && to[lead + i] != 1) ? 0 : from_strides[i];
  }
  return st;
}

int normalize_axis(int64_t axis, int rank, const char* op) {
  if (axis < -rank || axis >= rank)
    throw ShapeError(str("[", op, "] axis ", axis, " out of range for rank ", rank));
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

}  // namespace nef
