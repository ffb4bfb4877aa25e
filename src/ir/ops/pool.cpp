// Pooling op family: max_pool and avg_pool over x [N, C, *spatial] (1 to 3 spatial dims), with
// ONNX MaxPool/AveragePool semantics (explicit pads, dilations, ceil_mode, count_include_pad).
// Inference fills strides/pads/dilations with their per-rank defaults so kernels and structural
// hashes see one spelling; re-running it is a no-op.
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

// Per-dim attribute values above this are rejected: keeps dil * (k - 1) and pads sums in int64.
constexpr int64_t kMaxPoolAttr = int64_t{1} << 31;

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Reads an ints attribute of `n` values in [lo, kMaxPoolAttr], or fills `fill` when absent.
std::vector<int64_t> pool_ints(const OpDef& op, Attrs& attrs, const char* name, size_t n,
                               int64_t lo, int64_t fill, const Shape& x) {
  std::vector<int64_t> v;
  if (const auto* given = attrs.opt_ints(name)) v = *given;
  else v.assign(n, fill);
  if (v.size() != n)
    throw ValidationError(str("[", op.name, "] ", name, " ", ints_str(v), " must have ", n,
                              " values for input ", shape_str(x)));
  for (int64_t e : v)
    if (e < lo || e > kMaxPoolAttr)
      throw ValidationError(str("[", op.name, "] ", name, " ", ints_str(v), " must be in [", lo,
                                ", 2^31] for input ", shape_str(x)));
  attrs.set(name, v);
  return v;
}

TensorType infer_pool(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const TensorType& x = in[0];
  const bool is_max = op.name == "max_pool";
  if (x.dtype == DType::Bool || (!is_max && !is_floating(x.dtype)))
    throw TypeError(str("[", op.name, "] unsupported dtype: ", types_str(in),
                        is_max ? " (floats and ints only)" : " (float types only)"));
  if (x.shape.size() < 3 || x.shape.size() > 5)
    throw ShapeError(str("[", op.name, "] input must be [N, C, *spatial] with 1 to 3 spatial ",
                         "dims, got ", shape_str(x.shape)));
  const size_t nsp = x.shape.size() - 2;
  auto kernel = pool_ints(op, attrs, "kernel", nsp, 1, 1, x.shape);
  auto strides = pool_ints(op, attrs, "strides", nsp, 1, 1, x.shape);
  auto pads = pool_ints(op, attrs, "pads", 2 * nsp, 0, 0, x.shape);
  auto dil = pool_ints(op, attrs, "dilations", nsp, 1, 1, x.shape);
  const bool ceil_mode = attrs.get_bool("ceil_mode");
  Shape out = {x.shape[0], x.shape[1]};
  for (size_t d = 0; d < nsp; ++d) {
    int64_t in_d = x.shape[d + 2], pb = pads[d], pe = pads[d + nsp];
    int64_t window = dil[d] * (kernel[d] - 1) + 1;
    int64_t span = in_d + pb + pe - window;  // start positions past the first one
    if (span < 0)
      throw ShapeError(str("[", op.name, "] window ", window, " (kernel ", ints_str(kernel),
                           ", dilations ", ints_str(dil), ") is larger than spatial dim ", d,
                           " of input ", shape_str(x.shape), " with pads ", ints_str(pads)));
    int64_t o = span / strides[d] + 1;
    if (ceil_mode) {
      if (span % strides[d] != 0) ++o;
      // The last window must start inside the input or the begin padding (ONNX and PyTorch
      // check this once, whether or not the division rounded up).
      if ((o - 1) * strides[d] >= in_d + pb) --o;
    }
    out.push_back(o);
  }
  return {out, x.dtype};
}

Cost cost_pool(const std::vector<TensorType>& in, const TensorType& out, const Attrs& attrs) {
  double taps = 1;
  for (int64_t k : attrs.get_ints("kernel")) taps *= double(k);
  double on = double(numel(out.shape));
  return {on * taps,
          double(numel(in[0].shape)) * dtype_size(in[0].dtype) + on * dtype_size(out.dtype)};
}

OpDef make_pool(const char* name) {
  OpDef d;
  d.name = name;
  d.min_inputs = d.max_inputs = 1;
  d.infer = infer_pool;
  d.cost = cost_pool;
  d.attrs = {{"kernel", AttrType::Ints, std::nullopt, true},
             {"strides", AttrType::Ints, std::nullopt, false},
             {"pads", AttrType::Ints, std::nullopt, false},
             {"dilations", AttrType::Ints, std::nullopt, false},
             {"ceil_mode", AttrType::Bool, AttrValue(false), false}};
  return d;
}

}  // namespace

void register_pool_ops(Registry& r) {
  r.add(make_pool("max_pool"));
  OpDef avg = make_pool("avg_pool");
  avg.attrs.push_back({"count_include_pad", AttrType::Bool, AttrValue(false), false});
  r.add(std::move(avg));
}

}  // namespace nef::ir
