#include "ir/views.h"

#include <vector>

#include "nef/error.h"

namespace nef::ir {
namespace {

// Strides for viewing x (shape/strides) as `to` without copying, or false when impossible.
// Groups old and new dims into runs with equal products; each run of old dims must be one
// evenly strided block (numpy's "attempt no-copy reshape").
bool reshape_strides(const Shape& from, const Strides& from_strides, const Shape& to,
                     Strides& out) {
  out.assign(to.size(), 1);
  if (numel(from) == 0) {
    out = contiguous_strides(to);
    return true;
  }
  std::vector<int64_t> od, os;  // old dims without the size-1 ones, which constrain nothing
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1) {
      od.push_back(from[i]);
      os.push_back(from_strides[i]);
    }
  const size_t on = od.size(), nn = to.size();
  size_t oi = 0, oj = 1, ni = 0, nj = 1;
  while (ni < nn && oi < on) {
    int64_t np = to[ni], op = od[oi];
    while (np != op) {
      if (np < op) {
        if (nj >= nn) return false;
        np *= to[nj++];
      } else {
        if (oj >= on) return false;
        op *= od[oj++];
      }
    }
    for (size_t k = oi; k + 1 < oj; ++k)
      if (os[k] != os[k + 1] * od[k + 1]) return false;
    out[nj - 1] = os[oj - 1];
    for (size_t k = nj - 1; k > ni; --k) out[k - 1] = out[k] * to[k];
    ni = nj++;
    oi = oj++;
  }
  // Whatever is left of the new shape are size-1 dims; any stride works for them.
  return true;
}

std::optional<Array> v_reshape(const Array& x, const Node& n) {
  const Shape& to = n.type.shape;
  Strides st;
  if (reshape_strides(x.shape, x.strides, to, st)) return view_of(x, x.offset, to, st);
  return std::nullopt;  // the caller copies x to a contiguous buffer first
}

std::optional<Array> v_transpose(const Array& x, const Node& n) {
  const auto& perm = n.attrs.get_ints("perm");
  NEF_CHECK(perm.size() == x.shape.size(), "[transpose] perm/rank mismatch");
  Shape s(perm.size());
  Strides st(perm.size());
  for (size_t d = 0; d < perm.size(); ++d) {
    s[d] = x.shape[perm[d]];
    st[d] = x.strides[perm[d]];
  }
  return view_of(x, x.offset, std::move(s), std::move(st));
}

std::optional<Array> v_slice(const Array& x, const Node& n) {
  const auto& starts = n.attrs.get_ints("starts");
  const auto& steps = n.attrs.get_ints("steps");
  const Shape& s = n.type.shape;
  NEF_CHECK(starts.size() == x.shape.size() && s.size() == x.shape.size(),
            "[slice] attrs/rank mismatch");
  int64_t off = x.offset;
  Strides st(s.size());
  bool empty = numel(s) == 0;
  for (size_t d = 0; d < s.size(); ++d) {
    // Inference clamped start into the dim whenever the slice is non-empty.
    if (!empty) {
      NEF_CHECK(starts[d] >= 0 && starts[d] < x.shape[d], "[slice] start out of range");
      off += starts[d] * x.strides[d];
    }
    st[d] = x.strides[d] * steps[d];
  }
  return view_of(x, off, s, std::move(st));
}

std::optional<Array> v_broadcast_to(const Array& x, const Node& n) {
  const Shape& to = n.type.shape;
  NEF_CHECK(to.size() >= x.shape.size(), "[broadcast_to] rank");
  size_t lead = to.size() - x.shape.size();
  Strides st(to.size(), 0);
  for (size_t d = 0; d < x.shape.size(); ++d)
    st[lead + d] = x.shape[d] == to[lead + d] ? x.strides[d] : 0;
  return view_of(x, x.offset, to, std::move(st));
}

std::optional<Array> v_expand_dims(const Array& x, const Node& n) {
  const auto& axes = n.attrs.get_ints("axes");  // sorted, non-negative (inference)
  const Shape& to = n.type.shape;
  Strides st(to.size());
  size_t src = 0, k = 0;
  for (size_t d = 0; d < to.size(); ++d) {
    if (k < axes.size() && axes[k] == int64_t(d)) {
      ++k;
      // A stride that keeps the array contiguous-looking for later reshape/is_contiguous.
      st[d] = src < x.strides.size() ? x.strides[src] * x.shape[src] : 1;
      continue;
    }
    NEF_CHECK(src < x.shape.size(), "[expand_dims] rank");
    st[d] = x.strides[src++];
  }
  return view_of(x, x.offset, to, std::move(st));
}

std::optional<Array> v_squeeze(const Array& x, const Node& n) {
  const auto& axes = n.attrs.get_ints("axes");  // sorted, non-negative (inference)
  Shape s;
  Strides st;
  size_t k = 0;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (k < axes.size() && axes[k] == int64_t(d)) {
      NEF_CHECK(x.shape[d] == 1, "[squeeze] dim not 1");
      ++k;
      continue;
    }
    s.push_back(x.shape[d]);
    st.push_back(x.strides[d]);
  }
  return view_of(x, x.offset, std::move(s), std::move(st));
}

}  // namespace

Array view_of(const Array& x, int64_t offset, Shape shape, Strides strides) {
  Array v;
  v.storage = x.storage;
  v.offset = offset;
  v.shape = std::move(shape);
  v.strides = std::move(strides);
  v.dtype = x.dtype;
  return v;
}

std::optional<Array> apply_view(const Node& node, const Array& input) {
  NEF_CHECK(node.op && node.op->has(kView), "[view] not a view op");
  const std::string& op = node.op->name;
  if (op == "reshape") return v_reshape(input, node);
  if (op == "transpose") return v_transpose(input, node);
  if (op == "slice") return v_slice(input, node);
  if (op == "broadcast_to") return v_broadcast_to(input, node);
  if (op == "expand_dims") return v_expand_dims(input, node);
  if (op == "squeeze") return v_squeeze(input, node);
  throw Error(ErrorCode::Generic, str("[", op, "] view op without a view function"));
}

}  // namespace nef::ir
