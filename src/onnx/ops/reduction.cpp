// ONNX reductions (ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp) and
// ArgMax/ArgMin, from opset 1. Axes come from the `axes` attribute before opset 18 and from an
// optional second input from 18 on (ReduceSum from 13). The result keeps the input's dtype (NEF widens
// integer sums to int64 and means to float: cast back), and an empty reduced extent gives the
// reduction's identity, as ONNX's reference does (max of nothing = -inf or the integer minimum).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

using Tensors = std::vector<Tensor>;
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Reduce {
  std::vector<int64_t> axes;  // sorted, unique, non-negative; empty = reduce nothing
  bool keepdims = true;
  Shape out_shape;
  bool empty_extent = false;  // some reduced axis has size 0
};

// Reads axes/keepdims/noop_with_empty_axes in the form the node's opset uses.
Reduce read_reduce(const NodeCtx& ctx, const Tensor& x, bool axes_as_input) {
  std::vector<int64_t> given;
  bool noop = false;
  if (axes_as_input) {
    if (ctx.num_inputs() > 2) ctx.fail(str("expects 1 or 2 inputs, got ", ctx.num_inputs()));
    if (ctx.has_input(1)) given = ctx.static_ints(1);
    noop = ctx.attr_int("noop_with_empty_axes", 0) != 0;
  } else {
    if (ctx.num_inputs() != 1)
      ctx.fail(str("expects 1 input while axes is an attribute (before opset ",
                   ctx.op_type() == "ReduceSum" ? 13 : 18, "), got ", ctx.num_inputs()));
    if (ctx.has_attr("axes")) given = ctx.attr_ints("axes");
  }
  Reduce r;
  r.keepdims = ctx.attr_int("keepdims", 1) != 0;
  const int64_t rank = x.rank();
  if (given.empty()) {
    if (!noop)
      for (int64_t d = 0; d < rank; ++d) r.axes.push_back(d);
  } else if (rank > 0) {  // a 0-d input has nothing to reduce (axis 0 / -1 name it anyway)
    for (int64_t a : given) r.axes.push_back(norm_axis(ctx, a, rank));
    std::sort(r.axes.begin(), r.axes.end());
    if (std::adjacent_find(r.axes.begin(), r.axes.end()) != r.axes.end())
      ctx.fail(str("duplicate axis in axes for input ", shape_str(x.shape())));
  }
  for (int64_t d = 0; d < rank; ++d) {
    bool reduced = std::binary_search(r.axes.begin(), r.axes.end(), d);
    if (reduced && x.shape()[d] == 0) r.empty_extent = true;
    if (!reduced) r.out_shape.push_back(x.shape()[d]);
    else if (r.keepdims) r.out_shape.push_back(1);
  }
  return r;
}

bool axes_as_input(const NodeCtx& ctx) {
  return ctx.op_type() == "ReduceSum" ? ctx.version() >= 13 : ctx.version() >= 18;
}

Tensor cast_to(const Tensor& x, DType t) { return x.dtype() == t ? x : nef::cast(x, t); }

Tensor input_numeric(const NodeCtx& ctx, bool allow_bool) {
  Tensor x = ctx.input(0);
  if (x.dtype() == DType::Bool && !allow_bool)
    ctx.fail(str("input must be a numeric tensor, got bool ", shape_str(x.shape())));
  return x;
}

Tensor sum_of(const Tensor& x, const Reduce& r) { return nef::sum(x, r.axes, r.keepdims); }

// The sum family: `pre` maps elements, NEF's sum (0 over an empty extent) reduces, `post` maps
// the sums; the result is cast back to the input's dtype.
template <typename Pre, typename Post>
Converter sum_family(Pre pre, Post post) {
  return [pre, post](NodeCtx& ctx) -> Tensors {
    Tensor x = input_numeric(ctx, false);
    Reduce r = read_reduce(ctx, x, axes_as_input(ctx));
    return {cast_to(post(sum_of(pre(x), r)), x.dtype())};
  };
}

Tensor same(const Tensor& x) { return x; }
Tensor square(const Tensor& x) { return nef::mul(x, x); }

// Integer means go through float64 so that large sums stay exact before truncating back.
Tensors reduce_mean(NodeCtx& ctx) {
  Tensor x = input_numeric(ctx, false);
  Reduce r = read_reduce(ctx, x, axes_as_input(ctx));
  Tensor xf = is_floating(x.dtype()) ? x : nef::cast(x, DType::Float64);
  return {cast_to(nef::mean(xf, r.axes, r.keepdims), x.dtype())};
}

Tensors reduce_prod(NodeCtx& ctx) {
  Tensor x = input_numeric(ctx, false);
  Reduce r = read_reduce(ctx, x, axes_as_input(ctx));
  return {cast_to(nef::prod(x, r.axes, r.keepdims), x.dtype())};
}

// Max/Min: NEF rejects an empty extent (no identity), ONNX fills with the identity.
Converter reduce_extreme(bool is_max) {
  return [is_max](NodeCtx& ctx) -> Tensors {
    Tensor x = input_numeric(ctx, true);  // bool from opset 20
    Reduce r = read_reduce(ctx, x, axes_as_input(ctx));
    if (r.empty_extent) {
      DType t = x.dtype();
      double v = t == DType::Bool ? (is_max ? 0 : 1)
                 : is_max         ? -kInf  // saturates to the integer minimum
                                  : kInf;
      return {nef::full(r.out_shape, v, t)};
    }
    return {is_max ? nef::max(x, r.axes, r.keepdims) : nef::min(x, r.axes, r.keepdims)};
  };
}

// log(sum(exp(x))) shifted by the largest finite element m (0 where there is none, so that
// all -inf gives -inf and any +inf gives +inf; a NaN propagates through the max).
Tensors reduce_log_sum_exp(NodeCtx& ctx) {
  Tensor x = input_numeric(ctx, false);
  Reduce r = read_reduce(ctx, x, axes_as_input(ctx));
  if (r.empty_extent) return {nef::full(r.out_shape, -kInf, x.dtype())};
  Tensor xf = is_floating(x.dtype()) ? x : nef::cast(x, kDefaultFloat);
  Tensor inf = scalar_like(kInf, xf.dtype()), zero = scalar_like(0, xf.dtype());
  Tensor finite = nef::where(nef::equal(nef::abs(xf), inf), nef::neg(inf), xf);
  Tensor m = nef::max(finite, r.axes, true);
  m = nef::where(nef::equal(m, nef::neg(inf)), zero, m);
  Tensor s = nef::sum(nef::exp(nef::sub(xf, m)), r.axes, true);
  Tensor y = nef::add(nef::log(s), m);
  if (!r.keepdims && !r.axes.empty()) y = nef::squeeze(y, r.axes);
  return {cast_to(y, x.dtype())};
}

// ArgMax/ArgMin: NEF returns the first extreme; select_last_index reverses the axis (a view)
// and maps the index back: last = n - 1 - first_in_reversed.
Converter arg_reduce(bool is_max) {
  return [is_max](NodeCtx& ctx) -> Tensors {
    Tensor x = input_numeric(ctx, false);
    const int64_t rank = x.rank();
    int64_t axis = norm_axis(ctx, ctx.attr_int("axis", 0), rank);
    bool keepdims = ctx.attr_int("keepdims", 1) != 0;
    bool last = ctx.version() >= 12 && ctx.attr_int("select_last_index", 0) != 0;
    if (rank == 0) ctx.fail("input must have rank >= 1");
    const int64_t n = x.shape()[axis];
    if (n == 0)
      throw ShapeError(str(ctx.where(), ": zero-size axis ", axis, " in input ",
                           shape_str(x.shape())));
    auto arg = [&](const Tensor& t) {
      return is_max ? nef::argmax(t, axis, keepdims) : nef::argmin(t, axis, keepdims);
    };
    if (!last) return {arg(x)};
    std::vector<int64_t> starts(rank, 0), stops(x.shape().begin(), x.shape().end()),
        steps(rank, 1);
    starts[axis] = n - 1, stops[axis] = -1, steps[axis] = -1;  // stop -1: before index 0
    Tensor idx = arg(nef::slice(x, starts, stops, steps));
    return {nef::sub(scalar_like(double(n - 1), DType::Int64), idx)};
  };
}

}  // namespace

void register_reduction(ConverterTable& t) {
  // Revision 1 takes non-negative axes, 11 negative ones too (a superset); axes move from the
  // attribute to an input at 13 (ReduceSum) and 18 (the others); 12 and 20 add dtypes.
  const std::vector<int> v = {1, 11, 13, 18};
  t["ReduceSum"] = {sum_family(same, same), {1, 11, 13}, 1};
  t["ReduceSumSquare"] = {sum_family(square, same), v, 1};
  t["ReduceL1"] = {sum_family([](const Tensor& x) { return nef::abs(x); }, same), v, 1};
  t["ReduceL2"] = {sum_family(square, [](const Tensor& s) { return nef::sqrt(s); }), v, 1};
  t["ReduceLogSum"] = {sum_family(same, [](const Tensor& s) { return nef::log(s); }), v, 1};
  t["ReduceLogSumExp"] = {reduce_log_sum_exp, v, 1};
  t["ReduceMean"] = {reduce_mean, v, 1};
  t["ReduceProd"] = {reduce_prod, v, 1};
  t["ReduceMax"] = {reduce_extreme(true), {1, 11, 12, 13, 18, 20}, 1};
  t["ReduceMin"] = {reduce_extreme(false), {1, 11, 12, 13, 18, 20}, 1};
  // select_last_index from 12.
  t["ArgMax"] = {arg_reduce(true), {1, 11, 12, 13}, 1};
  t["ArgMin"] = {arg_reduce(false), {1, 11, 12, 13}, 1};
}

}  // namespace nef::onnx_import
