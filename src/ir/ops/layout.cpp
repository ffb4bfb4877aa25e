// Layout ops: reshape, transpose, slice, broadcast_to, expand_dims, squeeze (views), concat and
// gather (copies). Inference canonicalizes attributes (axes non-negative and sorted, -1 resolved,
// perm and squeeze axes filled in, slice bounds clamped) so that re-running it is a no-op.
//
// Error classes: a malformed attribute value (two -1s, step 0, repeated axis, not a permutation)
// is a ValidationError; an axis out of range or shapes that do not fit together is a ShapeError.
#include <algorithm>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  if (v.size() == 1) s += ",";
  return s + ")";
}

void check_rank(const OpDef& op, size_t rank, const std::vector<TensorType>& in) {
  if (rank > size_t(kMaxRank))
    throw ShapeError(str("[", op.name, "] result rank ", rank, " exceeds the maximum ", kMaxRank,
                         " for input ", types_str(in)));
}

// Normalizes `axes` against `rank`; rejects repeats. Returns them sorted.
std::vector<int64_t> unique_axes(const OpDef& op, const std::vector<int64_t>& axes, int rank) {
  std::vector<int64_t> out;
  for (int64_t a : axes) out.push_back(normalize_axis(a, rank, op.name.c_str()));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    throw ValidationError(str("[", op.name, "] repeated axis in ", ints_str(axes)));
  return out;
}

// --- reshape ------------------------------------------------------------------------------
TensorType infer_reshape(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  std::vector<int64_t> req = attrs.get_ints("shape");
  check_rank(op, req.size(), in);
  int infer_at = -1;
  int64_t known = 1;
  bool overflow = false;
  for (size_t i = 0; i < req.size(); ++i) {
    if (req[i] == -1) {
      if (infer_at >= 0)
        throw ValidationError(str("[reshape] only one dimension can be -1, got ", ints_str(req)));
      infer_at = int(i);
    } else if (req[i] < 0) {
      throw ValidationError(str("[reshape] invalid dimension ", req[i], " in ", ints_str(req)));
    } else {
      // Stop multiplying once past kMaxElements so the product never overflows int64.
      if (req[i] > 0 && known > kMaxElements / req[i]) overflow = true;
      else known *= req[i];
    }
  }
  int64_t n = numel(x);
  auto fail = [&] {
    throw ShapeError(str("[reshape] cannot reshape ", shape_str(x), " into ", ints_str(req)));
  };
  if (overflow) fail();
  if (infer_at >= 0) {
    // numpy refuses to guess a -1 next to a zero-size dim (any value would fit).
    if (known == 0 || n % known != 0) fail();
    req[infer_at] = n / known;
  } else if (known != n) {
    fail();
  }
  attrs.set("shape", req);
  return {Shape(req.begin(), req.end()), in[0].dtype};
}

// --- transpose ----------------------------------------------------------------------------
TensorType infer_transpose(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  int rank = int(x.size());
  std::vector<int64_t> perm;
  if (const auto* p = attrs.opt_ints("perm")) {
    if (int(p->size()) != rank)
      throw ValidationError(str("[transpose] perm ", ints_str(*p), " is not a permutation of the ",
                                rank, " axes of ", shape_str(x)));
    for (int64_t a : *p) perm.push_back(normalize_axis(a, rank, "transpose"));
    std::vector<bool> seen(rank, false);
    for (int64_t a : perm) {
      if (seen[a])
        throw ValidationError(
            str("[transpose] perm ", ints_str(*p), " repeats axis ", a, " for ", shape_str(x)));
      seen[a] = true;
    }
  } else {
    for (int d = rank - 1; d >= 0; --d) perm.push_back(d);
  }
  Shape out(rank);
  for (int d = 0; d < rank; ++d) out[d] = x[perm[d]];
  attrs.set("perm", perm);
  return {out, in[0].dtype};
}

// --- slice --------------------------------------------------------------------------------
// Bounds follow Python's slice.indices(len): the frontend passes them already normalized, and
// raw Python-style negatives also work, except that stop == -1 with a negative step means
// "before index 0" (what slice.indices produces), not "the last element".
struct SliceDim {
  int64_t start, stop, step, len;
};

SliceDim normalize_slice(int64_t start, int64_t stop, int64_t step, int64_t n) {
  auto clamp = [](int64_t v, int64_t lo, int64_t hi) { return std::min(std::max(v, lo), hi); };
  SliceDim s{start, stop, step, 0};
  if (step > 0) {
    if (s.start < 0) s.start += n;
    if (s.stop < 0) s.stop += n;
    s.start = clamp(s.start, 0, n);
    s.stop = clamp(s.stop, 0, n);
    s.len = s.stop > s.start ? (s.stop - s.start - 1) / step + 1 : 0;
  } else {
    if (s.start < 0) s.start += n;
    if (s.stop < -1) s.stop += n;
    s.start = clamp(s.start, -1, n - 1);
    s.stop = clamp(s.stop, -1, n - 1);
    // -(step) cannot overflow: step == INT64_MIN would need (start - stop) >= 2^63 to matter,
    // and start - stop <= n <= kMaxElements, so the quotient is 0 either way.
    s.len =
        s.start > s.stop ? (s.start - s.stop - 1) / (step == INT64_MIN ? INT64_MAX : -step) + 1 : 0;
  }
  return s;
}

TensorType infer_slice(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  size_t rank = x.size();
  std::vector<int64_t> starts = attrs.get_ints("starts");
  std::vector<int64_t> stops = attrs.get_ints("stops");
  std::vector<int64_t> steps = attrs.get_ints("steps");
  if (starts.size() != rank || stops.size() != rank || steps.size() != rank)
    throw ValidationError(str("[slice] starts/stops/steps need one value per dim of ", shape_str(x),
                              ", got ", starts.size(), "/", stops.size(), "/", steps.size()));
  Shape out(rank);
  for (size_t d = 0; d < rank; ++d) {
    if (steps[d] == 0)
      throw ValidationError(str("[slice] step cannot be zero (dim ", d, " of ", shape_str(x), ")"));
    SliceDim s = normalize_slice(starts[d], stops[d], steps[d], x[d]);
    starts[d] = s.start;
    stops[d] = s.stop;
    out[d] = s.len;
  }
  attrs.set("starts", starts);
  attrs.set("stops", stops);
  return {out, in[0].dtype};
}

// --- broadcast_to -------------------------------------------------------------------------
TensorType infer_broadcast_to(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  const auto& req = attrs.get_ints("shape");
  check_rank(op, req.size(), in);
  for (int64_t d : req)
    if (d < 0)
      throw ValidationError(str("[broadcast_to] invalid dimension ", d, " in ", ints_str(req)));
  Shape target(req.begin(), req.end());
  bool ok = x.size() <= target.size();
  for (size_t i = 0; ok && i < x.size(); ++i) {
    int64_t xd = x[x.size() - 1 - i], td = target[target.size() - 1 - i];
    if (xd != td && xd != 1) ok = false;
  }
  if (!ok)
    throw ShapeError(
        str("[broadcast_to] cannot broadcast ", shape_str(x), " to ", shape_str(target)));
  return {target, in[0].dtype};
}

// --- expand_dims --------------------------------------------------------------------------
TensorType infer_expand_dims(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  const auto& req = attrs.get_ints("axes");
  size_t out_rank = x.size() + req.size();
  check_rank(op, out_rank, in);
  std::vector<int64_t> axes = unique_axes(op, req, int(out_rank));
  Shape out(out_rank, 1);
  size_t src = 0, k = 0;
  for (size_t d = 0; d < out_rank; ++d) {
    if (k < axes.size() && axes[k] == int64_t(d)) {
      ++k;
      continue;
    }
    out[d] = x[src++];
  }
  attrs.set("axes", axes);
  return {out, in[0].dtype};
}

// --- squeeze ------------------------------------------------------------------------------
TensorType infer_squeeze(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  int rank = int(x.size());
  std::vector<int64_t> axes;
  if (const auto* req = attrs.opt_ints("axes")) {
    axes = unique_axes(op, *req, rank);
    for (int64_t a : axes)
      if (x[a] != 1)
        throw ShapeError(
            str("[squeeze] cannot squeeze axis ", a, " of size ", x[a], " in ", shape_str(x)));
  } else {
    for (int d = 0; d < rank; ++d)
      if (x[d] == 1) axes.push_back(d);
  }
  Shape out;
  for (int d = 0, k = 0; d < rank; ++d) {
    if (k < int(axes.size()) && axes[k] == d) {
      ++k;
      continue;
    }
    out.push_back(x[d]);
  }
  attrs.set("axes", axes);
  return {out, in[0].dtype};
}

// --- concat -------------------------------------------------------------------------------
TensorType infer_concat(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& first = in[0].shape;
  int rank = int(first.size());
  if (rank == 0)
    throw ShapeError(
        str("[concat] zero-dimensional inputs cannot be concatenated: ", types_str(in)));
  int axis = normalize_axis(attrs.get_int("axis"), rank, "concat");
  Shape out = first;
  DType dt = in[0].dtype;
  for (size_t i = 1; i < in.size(); ++i) {
    const Shape& s = in[i].shape;
    bool ok = int(s.size()) == rank;
    for (int d = 0; ok && d < rank; ++d)
      if (d != axis && s[d] != first[d]) ok = false;
    if (!ok)
      throw ShapeError(
          str("[concat] all inputs must match except on axis ", axis, ": ", types_str(in)));
    out[axis] += s[axis];
    if (out[axis] > kMaxElements)
      throw ShapeError(str("[concat] result too large: ", types_str(in)));
    // Equal dtypes need no promotion (and the storage-only float8 types have none).
    if (in[i].dtype != dt) dt = promote_types(dt, in[i].dtype);
  }
  attrs.set("axis", int64_t{axis});
  return {out, dt};
}

// --- gather -------------------------------------------------------------------------------
TensorType infer_gather(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  const Shape& idx = in[1].shape;
  if (in[1].dtype != DType::Int32 && in[1].dtype != DType::Int64)
    throw TypeError(str("[gather] indices must be int32 or int64, got ", types_str(in)));
  if (x.empty())
    throw ShapeError(str("[gather] cannot gather from a zero-dimensional input: ", types_str(in)));
  int axis = normalize_axis(attrs.get_int("axis"), int(x.size()), "gather");
  Shape out(x.begin(), x.begin() + axis);
  out.insert(out.end(), idx.begin(), idx.end());
  out.insert(out.end(), x.begin() + axis + 1, x.end());
  check_rank(op, out.size(), in);
  attrs.set("axis", int64_t{axis});
  return {out, in[0].dtype};
}

// Views move no data; only a reshape of a non-viewable input copies, which this does not see.
Cost view_cost(const std::vector<TensorType>&, const TensorType&, const Attrs&) { return {}; }

}  // namespace

// A gather touches the rows it picks, not the whole table (an embedding lookup reads a few rows
// of a large matrix): bytes = the output read and written, plus the indices.
Cost gather_cost(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  double o = double(numel(out.shape)) * double(dtype_size(out.dtype));
  double idx = in.size() > 1 ? double(numel(in[1].shape)) * double(dtype_size(in[1].dtype)) : 0;
  return {0, 2 * o + idx};
}

TensorType infer_copy(const OpDef&, const std::vector<TensorType>& in, Attrs&) {
  return {in[0].shape, in[0].dtype};
}

Cost copy_cost(const std::vector<TensorType>& in, const TensorType&, const Attrs&) {
  return {0, 2.0 * double(numel(in[0].shape)) * double(dtype_size(in[0].dtype))};
}

void register_layout_ops(Registry& r) {
  const uint32_t view = kView;
  // A transfer between devices: the planner inserts one wherever a value crosses a device
  // boundary; its node's device is the destination, its input's the source. Identity otherwise.
  r.add({.name = "copy",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {},
         .infer = infer_copy,
         .traits = kNoFold,
         .cost = copy_cost});
  r.add({.name = "reshape",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"shape", AttrType::Ints, std::nullopt, true}},
         .infer = infer_reshape,
         .traits = view,
         .cost = view_cost});
  r.add({.name = "transpose",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"perm", AttrType::Ints, std::nullopt, false}},
         .infer = infer_transpose,
         .traits = view,
         .cost = view_cost});
  r.add({.name = "slice",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"starts", AttrType::Ints, std::nullopt, true},
                   {"stops", AttrType::Ints, std::nullopt, true},
                   {"steps", AttrType::Ints, std::nullopt, true}},
         .infer = infer_slice,
         .traits = view,
         .cost = view_cost});
  r.add({.name = "broadcast_to",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"shape", AttrType::Ints, std::nullopt, true}},
         .infer = infer_broadcast_to,
         .traits = view,
         .cost = view_cost});
  r.add({.name = "expand_dims",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"axes", AttrType::Ints, std::nullopt, true}},
         .infer = infer_expand_dims,
         .traits = view,
         .cost = view_cost});
  r.add({.name = "squeeze",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"axes", AttrType::Ints, std::nullopt, false}},
         .infer = infer_squeeze,
         .traits = view,
         .cost = view_cost});
  r.add({.name = "concat",
         .min_inputs = 1,
         .max_inputs = -1,
         .attrs = {{"axis", AttrType::Int, int64_t{0}}},
         .infer = infer_concat,
         .traits = 0});
  r.add({.name = "gather",
         .min_inputs = 2,
         .max_inputs = 2,
         .attrs = {{"axis", AttrType::Int, int64_t{0}}},
         .infer = infer_gather,
         .traits = 0,
         .cost = gather_cost});
}

}  // namespace nef::ir
