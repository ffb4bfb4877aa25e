// Linear algebra and neural op family: matmul (numpy semantics), det, softmax, log_softmax,
// layernorm, rmsnorm and scaled dot-product attention. See docs/ops.md for the contract.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

// Row ops accept rank 0 as a single one-element row (axis 0 or -1), like torch.
int row_axis(const OpDef& op, const TensorType& x, Attrs& attrs) {
  const int rank = static_cast<int>(x.shape.size());
  int64_t axis = attrs.get_int("axis");
  int a;
  if (rank == 0 && (axis == 0 || axis == -1)) {
    a = 0;
  } else {
    if (axis < -rank || axis >= rank)
      throw ShapeError(str("[", op.name, "] axis ", axis, " out of range for rank ", rank,
                           " (input ", shape_str(x.shape), ")"));
    a = normalize_axis(axis, rank, op.name.c_str());
  }
  attrs.set("axis", int64_t(a));
  return a;
}

TensorType infer_matmul(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  const Shape& a = in[0].shape;
  const Shape& b = in[1].shape;
  if (in[0].dtype == DType::Bool || in[1].dtype == DType::Bool)
    throw TypeError(str("[matmul] bool operands are not supported: ", types_str(in)));
  if (a.empty() || b.empty())
    throw ShapeError(str("[matmul] operands must have at least 1 dimension: ", shape_str(a),
                         " @ ", shape_str(b)));
  int64_t ka = a.back();
  int64_t kb = b.size() == 1 ? b[0] : b[b.size() - 2];
  if (ka != kb)
    throw ShapeError(str("[matmul] inner dimensions differ: ", shape_str(a), " @ ", shape_str(b)));
  Shape batch_a(a.begin(), a.end() - std::min<size_t>(a.size(), 2));
  Shape batch_b(b.begin(), b.end() - std::min<size_t>(b.size(), 2));
  Shape out = broadcast_shapes(batch_a, batch_b, "matmul");
  if (a.size() >= 2) out.push_back(a[a.size() - 2]);
  if (b.size() >= 2) out.push_back(b.back());
  checked_numel(out, "matmul");
  return {out, promote_types(in[0].dtype, in[1].dtype)};
}

Cost cost_matmul(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const Shape& a = in[0].shape;
  double k = a.empty() ? 0 : double(a.back());
  // out numel = batch * M * N; each output element is a K-long dot product.
  double flops = 2.0 * double(numel(out.shape)) * k;
  double bytes = 0;
  for (const TensorType& t : in) bytes += double(numel(t.shape)) * dtype_size(t.dtype);
  bytes += double(numel(out.shape)) * dtype_size(out.dtype);
  return {flops, bytes};
}

TensorType infer_softmax(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  row_axis(op, in[0], attrs);
  return {in[0].shape, to_floating(in[0].dtype)};
}

// layernorm / rmsnorm normalize over x.shape[axis:]; optional weight and bias must broadcast
// to that trailing shape. Output dtype: to_floating of the promotion of all inputs.
TensorType infer_norm(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const TensorType& x = in[0];
  int a = row_axis(op, x, attrs);
  if (attrs.get_float("eps") < 0)
    throw ValidationError(str("[", op.name, "] eps must be >= 0, got ", attrs.get_float("eps")));
  Shape norm_shape(x.shape.begin() + std::min<size_t>(a, x.shape.size()), x.shape.end());
  DType t = to_floating(x.dtype);
  for (size_t i = 1; i < in.size(); ++i) {
    if (in[i].dtype == DType::Bool)
      throw TypeError(str("[", op.name, "] bool weight/bias not supported: ", types_str(in)));
    Shape b = broadcast_shapes(in[i].shape, norm_shape, op.name.c_str());
    if (b != norm_shape)
      throw ShapeError(str("[", op.name, "] ", i == 1 ? "weight " : "bias ",
                           shape_str(in[i].shape), " does not broadcast to normalized shape ",
                           shape_str(norm_shape), " of input ", shape_str(x.shape)));
    t = to_floating(promote_types(t, in[i].dtype));
  }
  return {x.shape, t};
}

TensorType infer_attention(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& q = in[0].shape;
  const Shape& k = in[1].shape;
  const Shape& v = in[2].shape;
  for (int i = 0; i < 3; ++i) {
    if (in[i].shape.size() < 2)
      throw ShapeError(str("[attention] q, k, v need rank >= 2: ", types_str(in)));
    if (in[i].dtype == DType::Bool)
      throw TypeError(str("[attention] bool q/k/v not supported: ", types_str(in)));
  }
  int64_t lq = q[q.size() - 2], d = q.back();
  int64_t lk = k[k.size() - 2], dk = k.back();
  int64_t lv = v[v.size() - 2], dv = v.back();
  if (d != dk)
    throw ShapeError(str("[attention] q and k head dims differ: ", shape_str(q), " vs ",
                         shape_str(k)));
  if (lk != lv)
    throw ShapeError(str("[attention] k and v lengths differ: ", shape_str(k), " vs ",
                         shape_str(v)));
  Shape batch = broadcast_shapes(Shape(q.begin(), q.end() - 2), Shape(k.begin(), k.end() - 2),
                                 "attention");
  batch = broadcast_shapes(batch, Shape(v.begin(), v.end() - 2), "attention");
  if (in.size() == 4) {
    const TensorType& m = in[3];
    if (m.dtype != DType::Bool && !is_floating(m.dtype))
      throw TypeError(str("[attention] mask must be bool or float: ", types_str(in)));
    Shape target = batch;
    target.push_back(lq);
    target.push_back(lk);
    if (m.shape.size() > target.size() ||
        broadcast_shapes(m.shape, target, "attention") != target)
      throw ShapeError(str("[attention] mask ", shape_str(m.shape), " does not broadcast to ",
                           shape_str(target)));
  }
  const std::string& empty = attrs.get_string("empty_rows");
  if (empty != "zero" && empty != "nan")
    throw ValidationError(str("[attention] empty_rows must be \"zero\" or \"nan\", got \"",
                              empty, "\""));
  if (attrs.has("scale") && !std::isfinite(attrs.get_float("scale")))
    throw ValidationError(str("[attention] scale must be finite, got ", attrs.get_float("scale")));
  Shape out = batch;
  out.push_back(lq);
  out.push_back(dv);
  checked_numel(out, "attention");
  DType t = promote_types(promote_types(in[0].dtype, in[1].dtype), in[2].dtype);
  return {out, to_floating(t)};
}

Cost cost_attention(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const Shape& q = in[0].shape;
  const Shape& k = in[1].shape;
  double lk = double(k[k.size() - 2]), d = double(q.back());
  double rows = double(numel(out.shape)) / std::max<double>(1.0, double(out.shape.back()));
  double flops = rows * lk * (2 * d + 2 * double(out.shape.back()) + 5);
  double bytes = 0;
  for (const TensorType& t : in) bytes += double(numel(t.shape)) * dtype_size(t.dtype);
  bytes += double(numel(out.shape)) * dtype_size(out.dtype);
  return {flops, bytes};
}

// det: x [..., M, M] (float) -> [...], the determinant of each matrix.
TensorType infer_det(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  const Shape& x = in[0].shape;
  if (!is_floating(in[0].dtype))
    throw TypeError(str("[det] needs a float input: ", types_str(in)));
  if (x.size() < 2 || x[x.size() - 1] != x[x.size() - 2])
    throw ShapeError(str("[det] needs square matrices [..., M, M]: ", types_str(in)));
  return {Shape(x.begin(), x.end() - 2), in[0].dtype};
}

// M^3 / 3 multiply-adds per matrix (LU), the matrix read once.
Cost cost_det(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const double m = in[0].shape.empty() ? 0 : double(in[0].shape.back());
  const double mats = double(numel(out.shape));
  const double es = double(dtype_size(in[0].dtype));
  return {mats * m * m * m * 2 / 3, mats * (m * m + 1) * es};
}

OpDef make(const char* name, int min_in, int max_in, InferFn infer, double flops) {
  OpDef d;
  d.name = name;
  d.min_inputs = min_in;
  d.max_inputs = max_in;
  d.infer = infer;
  d.flops_per_element = flops;
  return d;
}

}  // namespace

void register_linalg_nn_ops(Registry& r) {
  OpDef mm = make("matmul", 2, 2, infer_matmul, 0);
  mm.cost = cost_matmul;
  r.add(std::move(mm));

  OpDef det = make("det", 1, 1, infer_det, 0);
  det.cost = cost_det;
  r.add(std::move(det));

  for (const char* n : {"softmax", "log_softmax"}) {
    OpDef d = make(n, 1, 1, infer_softmax, 15);
    d.attrs.push_back({"axis", AttrType::Int, AttrValue(int64_t(-1)), false});
    r.add(std::move(d));
  }
  OpDef ln = make("layernorm", 1, 3, infer_norm, 8);
  ln.attrs.push_back({"axis", AttrType::Int, AttrValue(int64_t(-1)), false});
  ln.attrs.push_back({"eps", AttrType::Float, AttrValue(1e-5), false});
  r.add(std::move(ln));
  OpDef rms = make("rmsnorm", 1, 2, infer_norm, 5);
  rms.attrs.push_back({"axis", AttrType::Int, AttrValue(int64_t(-1)), false});
  rms.attrs.push_back({"eps", AttrType::Float, AttrValue(1e-6), false});
  r.add(std::move(rms));

  OpDef att = make("attention", 3, 4, infer_attention, 0);
  att.attrs.push_back({"scale", AttrType::Float, std::nullopt, false});
  att.attrs.push_back({"causal", AttrType::Bool, AttrValue(false), false});
  // "nan": a row with keys but none attended is NaN, as softmax of all -inf scores (patterns).
  att.attrs.push_back({"empty_rows", AttrType::String, AttrValue(std::string("zero")), false});
  att.cost = cost_attention;
  r.add(std::move(att));
}

}  // namespace nef::ir
