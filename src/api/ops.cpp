// The C++ op functions: each is one line over nef::op, which creates a lazy node through the
// registry (so shape and dtype errors surface here, at creation).
#include <cmath>
#include <limits>
#include <type_traits>
#include <unordered_set>

#include "api/lazy.h"
#include "common/dispatch.h"

namespace nef {

using detail::LazyNode;

namespace {
std::vector<int64_t> to_ints(const Shape& s) { return std::vector<int64_t>(s.begin(), s.end()); }

Tensor source(const std::string& op, ir::Attrs attrs) { return nef::op(op, {}, std::move(attrs)); }
}  // namespace

namespace {
// Whether the unmaterialized DAG under `inputs` reaches a placeholder (a value known only when
// a built graph runs).
bool reaches_placeholder(const std::vector<Tensor>& inputs) {
  std::vector<const LazyNode*> stack;
  for (const Tensor& t : inputs) stack.push_back(t.node().get());
  std::unordered_set<const LazyNode*> seen;
  while (!stack.empty()) {
    const LazyNode* n = stack.back();
    stack.pop_back();
    if (!n || n->value || !seen.insert(n).second) continue;
    if (n->inputs.empty() && n->op->name == "input") return true;
    for (const auto& in : n->inputs) stack.push_back(in.get());
  }
  return false;
}
}  // namespace

Tensor op(const std::string& name, const std::vector<Tensor>& inputs, ir::Attrs attrs) {
  std::vector<std::shared_ptr<LazyNode>> in;
  in.reserve(inputs.size());
  for (const Tensor& t : inputs) in.push_back(t.node());
  auto node = detail::make_node(name, in, attrs);
  // A value-shaped op over data is a segment boundary: its inputs run now and its extent is
  // computed, so the tensor has its true shape and later code plans against it. Over
  // placeholders it stays unresolved (-1) for the built graph's run (engine/segments.h).
  if (node->op->has(ir::kValueShaped) && node->attrs.get_int("extent") < 0 &&
      !reaches_placeholder(inputs)) {
    evaluate(inputs);
    Tensor e(detail::make_node(name + "_extent", in, attrs));
    attrs.set("extent", e.to_vector<int64_t>()[0]);
    node = detail::make_node(name, std::move(in), std::move(attrs));
  }
  return Tensor(node);
}

Tensor from_array(Array a) {
  if (!a.storage) throw ValidationError("[tensor] array has no storage");
  checked_numel(a.shape, "tensor");
  if (a.strides.size() != a.shape.size())
    throw ValidationError("[tensor] strides and shape differ in rank");
  ir::Attrs attrs;
  attrs.set("shape", to_ints(a.shape));
  attrs.set("dtype", std::string(dtype_name(a.dtype)));
  auto node = detail::make_node("input", {}, std::move(attrs));
  node->value = std::move(a);
  return Tensor(node);
}

template <typename T>
Tensor tensor(const std::vector<T>& values, const Shape& shape) {
  if (int64_t(values.size()) != checked_numel(shape, "tensor"))
    throw ShapeError(
        str("[tensor] ", values.size(), " values do not fill shape ", shape_str(shape)));
  DType dt = std::is_same_v<T, float>      ? DType::Float32
             : std::is_same_v<T, double>   ? DType::Float64
             : std::is_same_v<T, int32_t>  ? DType::Int32
             : std::is_same_v<T, int64_t>  ? DType::Int64
             : std::is_same_v<T, int8_t>   ? DType::Int8
             : std::is_same_v<T, int16_t>  ? DType::Int16
             : std::is_same_v<T, uint16_t> ? DType::UInt16
             : std::is_same_v<T, uint32_t> ? DType::UInt32
             : std::is_same_v<T, uint64_t> ? DType::UInt64
                                           : DType::UInt8;
  Array a = Array::empty(shape, dt);
  std::copy(values.begin(), values.end(), a.data_as<T>());
  return from_array(std::move(a));
}
template Tensor tensor<float>(const std::vector<float>&, const Shape&);
template Tensor tensor<double>(const std::vector<double>&, const Shape&);
template Tensor tensor<int32_t>(const std::vector<int32_t>&, const Shape&);
template Tensor tensor<int64_t>(const std::vector<int64_t>&, const Shape&);
template Tensor tensor<int8_t>(const std::vector<int8_t>&, const Shape&);
template Tensor tensor<uint8_t>(const std::vector<uint8_t>&, const Shape&);
template Tensor tensor<int16_t>(const std::vector<int16_t>&, const Shape&);
template Tensor tensor<uint16_t>(const std::vector<uint16_t>&, const Shape&);
template Tensor tensor<uint32_t>(const std::vector<uint32_t>&, const Shape&);
template Tensor tensor<uint64_t>(const std::vector<uint64_t>&, const Shape&);

namespace {
Tensor literal(double value, DType dtype, bool weak) {
  Array a = Array::empty({}, dtype);
  nef::dispatch_dtype(dtype, [&]<typename T>() {
    using C = nef::compute_t<T>;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Saturate (NaN -> 0) like cast: a double outside T's range has no defined conversion.
      constexpr double lo = double(std::numeric_limits<T>::min());
      constexpr double hi = double(std::numeric_limits<T>::max());
      *a.data_as<T>() = !(value == value) ? T(0)
                        : value >= hi     ? std::numeric_limits<T>::max()
                        : value <= lo     ? std::numeric_limits<T>::min()
                                          : static_cast<T>(value);
    } else {
      *a.data_as<T>() = nef::store_as<T>(static_cast<C>(value));
    }
  });
  ir::Attrs attrs;
  attrs.set("shape", std::vector<int64_t>{});
  attrs.set("dtype", std::string(dtype_name(dtype)));
  auto node = detail::make_node("constant", {}, std::move(attrs));
  node->value = std::move(a);
  node->literal = true;
  node->type.weak = weak;
  return Tensor(node);
}
}  // namespace

Tensor scalar(double value, DType dtype) { return literal(value, dtype, false); }
Tensor weak_scalar(double value, bool is_float) {
  return literal(value, is_float ? DType::Float64 : DType::Int64, true);
}

Tensor placeholder(const std::string& name, const Shape& shape, DType dtype) {
  ir::Attrs attrs;
  attrs.set("name", name);
  attrs.set("shape", to_ints(shape));
  attrs.set("dtype", std::string(dtype_name(dtype)));
  return source("input", std::move(attrs));
}

Tensor full(const Shape& shape, double value, DType dtype) {
  ir::Attrs a;
  a.set("shape", to_ints(shape));
  a.set("dtype", std::string(dtype_name(dtype)));
  a.set("value", value);
  return source("full", std::move(a));
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor arange(double start, double stop, double step, DType dtype) {
  ir::Attrs a;
  a.set("start", start);
  a.set("stop", stop);
  a.set("step", step);
  a.set("dtype", std::string(dtype_name(dtype)));
  return source("arange", std::move(a));
}

Tensor random_uniform(const Shape& shape, uint64_t seed, double low, double high, DType dtype) {
  ir::Attrs a;
  a.set("shape", to_ints(shape));
  a.set("dtype", std::string(dtype_name(dtype)));
  a.set("seed", static_cast<int64_t>(seed));
  a.set("low", low);
  a.set("high", high);
  return source("random_uniform", std::move(a));
}

Tensor random_normal(const Shape& shape, uint64_t seed, double mean, double std, DType dtype) {
  ir::Attrs a;
  a.set("shape", to_ints(shape));
  a.set("dtype", std::string(dtype_name(dtype)));
  a.set("seed", static_cast<int64_t>(seed));
  a.set("mean", mean);
  a.set("std", std);
  return source("random_normal", std::move(a));
}

#define NEF_UNARY_IMPL(fn) \
  Tensor fn(const Tensor& x) { return op(#fn, {x}); }
NEF_UNARY_IMPL(neg)
NEF_UNARY_IMPL(abs)
NEF_UNARY_IMPL(exp)
NEF_UNARY_IMPL(log)
NEF_UNARY_IMPL(sqrt)
NEF_UNARY_IMPL(rsqrt)
NEF_UNARY_IMPL(reciprocal)
NEF_UNARY_IMPL(tanh)
NEF_UNARY_IMPL(sigmoid)
NEF_UNARY_IMPL(relu)
NEF_UNARY_IMPL(silu)
NEF_UNARY_IMPL(erf)
NEF_UNARY_IMPL(sin)
NEF_UNARY_IMPL(cos)
NEF_UNARY_IMPL(tan)
NEF_UNARY_IMPL(asin)
NEF_UNARY_IMPL(acos)
NEF_UNARY_IMPL(atan)
NEF_UNARY_IMPL(sinh)
NEF_UNARY_IMPL(cosh)
NEF_UNARY_IMPL(asinh)
NEF_UNARY_IMPL(acosh)
NEF_UNARY_IMPL(atanh)
NEF_UNARY_IMPL(bitwise_not)
NEF_UNARY_IMPL(floor)
NEF_UNARY_IMPL(ceil)
NEF_UNARY_IMPL(round)
NEF_UNARY_IMPL(sign)
NEF_UNARY_IMPL(logical_not)
#undef NEF_UNARY_IMPL

Tensor gelu(const Tensor& x, const std::string& approximate) {
  ir::Attrs a;
  a.set("approximate", approximate);
  return op("gelu", {x}, std::move(a));
}

#define NEF_BINARY_IMPL(fn) \
  Tensor fn(const Tensor& a, const Tensor& b) { return op(#fn, {a, b}); }
NEF_BINARY_IMPL(add)
NEF_BINARY_IMPL(sub)
NEF_BINARY_IMPL(mul)
NEF_BINARY_IMPL(div)
NEF_BINARY_IMPL(pow)
NEF_BINARY_IMPL(maximum)
NEF_BINARY_IMPL(minimum)
NEF_BINARY_IMPL(mod)
NEF_BINARY_IMPL(equal)
NEF_BINARY_IMPL(not_equal)
NEF_BINARY_IMPL(less)
NEF_BINARY_IMPL(less_equal)
NEF_BINARY_IMPL(greater)
NEF_BINARY_IMPL(greater_equal)
NEF_BINARY_IMPL(logical_and)
NEF_BINARY_IMPL(logical_or)
NEF_BINARY_IMPL(bitwise_and)
NEF_BINARY_IMPL(bitwise_or)
NEF_BINARY_IMPL(bitwise_xor)
NEF_BINARY_IMPL(left_shift)
NEF_BINARY_IMPL(right_shift)
NEF_BINARY_IMPL(matmul)
#undef NEF_BINARY_IMPL

Tensor where(const Tensor& c, const Tensor& a, const Tensor& b) { return op("where", {c, a, b}); }
Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi) { return op("clip", {x, lo, hi}); }
Tensor cast(const Tensor& x, DType dtype) {
  ir::Attrs a;
  a.set("dtype", std::string(dtype_name(dtype)));
  return op("cast", {x}, std::move(a));
}

namespace {
Tensor reduce(const char* name, const Tensor& x, const Axes& axes, bool keepdims) {
  ir::Attrs a;
  if (axes) a.set("axes", *axes);
  a.set("keepdims", keepdims);
  return op(name, {x}, std::move(a));
}
Tensor arg_reduce(const char* name, const Tensor& x, std::optional<int64_t> axis, bool keepdims) {
  ir::Attrs a;
  if (axis) a.set("axis", *axis);
  a.set("keepdims", keepdims);
  return op(name, {x}, std::move(a));
}
}  // namespace

Tensor sum(const Tensor& x, Axes axes, bool k) { return reduce("sum", x, axes, k); }
Tensor mean(const Tensor& x, Axes axes, bool k) { return reduce("mean", x, axes, k); }
Tensor max(const Tensor& x, Axes axes, bool k) { return reduce("max", x, axes, k); }
Tensor min(const Tensor& x, Axes axes, bool k) { return reduce("min", x, axes, k); }
Tensor prod(const Tensor& x, Axes axes, bool k) { return reduce("prod", x, axes, k); }
Tensor argmax(const Tensor& x, std::optional<int64_t> axis, bool k) {
  return arg_reduce("argmax", x, axis, k);
}
Tensor argmin(const Tensor& x, std::optional<int64_t> axis, bool k) {
  return arg_reduce("argmin", x, axis, k);
}

Tensor softmax(const Tensor& x, int64_t axis) {
  ir::Attrs a;
  a.set("axis", axis);
  return op("softmax", {x}, std::move(a));
}
Tensor log_softmax(const Tensor& x, int64_t axis) {
  ir::Attrs a;
  a.set("axis", axis);
  return op("log_softmax", {x}, std::move(a));
}
Tensor layernorm(const Tensor& x, const Tensor& w, const Tensor& b, double eps, int64_t axis) {
  ir::Attrs a;
  a.set("eps", eps);
  a.set("axis", axis);
  if (!w.defined() && b.defined())
    throw ValidationError("[layernorm] a bias without a weight is not supported; pass ones");
  std::vector<Tensor> in{x};
  if (w.defined()) in.push_back(w);
  if (b.defined()) in.push_back(b);
  return op("layernorm", in, std::move(a));
}
Tensor rmsnorm(const Tensor& x, const Tensor& w, double eps, int64_t axis) {
  ir::Attrs a;
  a.set("eps", eps);
  a.set("axis", axis);
  std::vector<Tensor> in{x};
  if (w.defined()) in.push_back(w);
  return op("rmsnorm", in, std::move(a));
}
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                 std::optional<double> scale, bool causal) {
  ir::Attrs a;
  if (scale) a.set("scale", *scale);
  a.set("causal", causal);
  std::vector<Tensor> in{q, k, v};
  if (mask.defined()) in.push_back(mask);
  return op("attention", in, std::move(a));
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  ir::Attrs a;
  a.set("shape", to_ints(shape));
  return op("reshape", {x}, std::move(a));
}
Tensor transpose(const Tensor& x, std::vector<int64_t> perm) {
  ir::Attrs a;
  if (!perm.empty() || x.rank() == 0) a.set("perm", perm);
  return op("transpose", {x}, std::move(a));
}
Tensor slice(const Tensor& x, const std::vector<int64_t>& starts, const std::vector<int64_t>& stops,
             const std::vector<int64_t>& steps) {
  ir::Attrs a;
  a.set("starts", starts);
  a.set("stops", stops);
  a.set("steps", steps);
  return op("slice", {x}, std::move(a));
}
Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  ir::Attrs a;
  a.set("axis", axis);
  return op("concat", xs, std::move(a));
}
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  int ax = normalize_axis(axis, x.rank(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw ShapeError(str("[split] negative section size ", s));
    total += s;
  }
  if (total != x.shape()[ax])
    throw ShapeError(str("[split] sizes sum to ", total, " but axis ", ax, " of ",
                         shape_str(x.shape()), " has ", x.shape()[ax]));
  std::vector<Tensor> parts;
  int64_t at = 0;
  for (int64_t s : sizes) {
    std::vector<int64_t> starts(x.rank(), 0), stops(x.shape()), steps(x.rank(), 1);
    starts[ax] = at;
    stops[ax] = at + s;
    parts.push_back(slice(x, starts, stops, steps));
    at += s;
  }
  return parts;
}
Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  ir::Attrs a;
  a.set("shape", to_ints(shape));
  return op("broadcast_to", {x}, std::move(a));
}
Tensor expand_dims(const Tensor& x, const std::vector<int64_t>& axes) {
  ir::Attrs a;
  a.set("axes", axes);
  return op("expand_dims", {x}, std::move(a));
}
Tensor squeeze(const Tensor& x, std::optional<std::vector<int64_t>> axes) {
  ir::Attrs a;
  if (axes) a.set("axes", *axes);
  return op("squeeze", {x}, std::move(a));
}
Tensor gather(const Tensor& x, const Tensor& indices, int64_t axis) {
  ir::Attrs a;
  a.set("axis", axis);
  return op("gather", {x, indices}, std::move(a));
}

Tensor gather_elements(const Tensor& x, const Tensor& indices, int64_t axis) {
  ir::Attrs a;
  a.set("axis", axis);
  return op("gather_elements", {x, indices}, std::move(a));
}
Tensor gather_nd(const Tensor& x, const Tensor& indices, int64_t batch_dims) {
  ir::Attrs a;
  a.set("batch_dims", batch_dims);
  return op("gather_nd", {x, indices}, std::move(a));
}
Tensor scatter_elements(const Tensor& data, const Tensor& indices, const Tensor& updates,
                        int64_t axis, const std::string& reduction) {
  ir::Attrs a;
  a.set("axis", axis);
  a.set("reduction", reduction);
  return op("scatter_elements", {data, indices, updates}, std::move(a));
}
Tensor scatter_nd(const Tensor& data, const Tensor& indices, const Tensor& updates,
                  const std::string& reduction) {
  ir::Attrs a;
  a.set("reduction", reduction);
  return op("scatter_nd", {data, indices, updates}, std::move(a));
}
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t axis, bool largest) {
  ir::Attrs a;
  a.set("k", k);
  a.set("axis", axis);
  a.set("largest", largest);
  Tensor idx = op("topk", {x}, std::move(a));
  return {gather_elements(x, idx, axis), idx};
}
namespace {
Tensor scan(const char* name, const Tensor& x, int64_t axis, bool exclusive, bool reverse) {
  ir::Attrs a;
  a.set("axis", axis);
  a.set("exclusive", exclusive);
  a.set("reverse", reverse);
  return op(name, {x}, std::move(a));
}
}  // namespace
Tensor cumsum(const Tensor& x, int64_t axis, bool exclusive, bool reverse) {
  return scan("cumsum", x, axis, exclusive, reverse);
}
Tensor cumprod(const Tensor& x, int64_t axis, bool exclusive, bool reverse) {
  return scan("cumprod", x, axis, exclusive, reverse);
}

Tensor Tensor::reshape(const Shape& s) const { return nef::reshape(*this, s); }
Tensor Tensor::transpose(std::vector<int64_t> perm) const { return nef::transpose(*this, perm); }
Tensor Tensor::astype(DType d) const { return nef::cast(*this, d); }
Tensor Tensor::sum(std::optional<std::vector<int64_t>> axes, bool k) const {
  return nef::sum(*this, axes, k);
}
Tensor Tensor::mean(std::optional<std::vector<int64_t>> axes, bool k) const {
  return nef::mean(*this, axes, k);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, weak_scalar(b, true)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, weak_scalar(b, true)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, weak_scalar(b, true)); }
Tensor operator/(const Tensor& a, double b) { return div(a, weak_scalar(b, true)); }

}  // namespace nef
