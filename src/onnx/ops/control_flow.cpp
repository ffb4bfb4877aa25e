// ONNX control flow: If, Loop, Scan. Subgraphs are converted with NodeCtx::run_graph (outer
// values visible by name, checked at parse like the main graph). What decides the control flow
// must be known at import: an If condition folds to its branch, a Loop's trip count and
// condition and a Scan's sequence length unroll the body (at most kMaxIterations times, and the
// importer bounds the nodes a model converts to). A condition or trip count computed from graph
// inputs makes the graph specialize on those inputs' values (NeedsValues, from_onnx.cpp), as
// for any value that shapes the graph; a large such input is an UnsupportedError.
#include <cstdint>
#include <string>
#include <vector>

#include "onnx/converter.h"
#include "onnx/importer.h"
#include "onnx/onnx-ml.pb.h"

namespace nef::onnx_import {
namespace {

using Tensors = std::vector<Tensor>;

// Iterations one Loop/Scan may unroll to.
constexpr int64_t kMaxIterations = 16384;

bool truth(const NodeCtx& ctx, const Tensor& t, const char* what) {
  if (t.numel() != 1) ctx.fail(str(what, " must hold one element, got ", shape_str(t.shape())));
  Tensor v = from_array(ctx.static_value(t, what));
  return v.item() != 0;
}

// x[..., i, ...] along `axis` (the axis dropped).
Tensor take_index(const Tensor& x, int64_t axis, int64_t i) {
  std::vector<int64_t> starts(x.shape().size(), 0), stops(x.shape().begin(), x.shape().end()),
      steps(x.shape().size(), 1);
  starts[size_t(axis)] = i;
  stops[size_t(axis)] = i + 1;
  return nef::squeeze(nef::slice(x, starts, stops, steps), std::vector<int64_t>{axis});
}

// Stacks per-iteration values along a new `axis`.
Tensor stack(const NodeCtx& ctx, const Tensors& xs, int64_t axis, const char* what) {
  if (xs.empty())
    ctx.unsupported(str(what, " of a loop that runs no iteration (its shape is unknown)"));
  Tensors e;
  for (const Tensor& x : xs) e.push_back(nef::expand_dims(x, {axis}));
  return e.size() == 1 ? e[0] : nef::concat(e, axis);
}

// Both branches converted and chosen between at run time (cond_select per output), when both
// convert and agree in types; nothing otherwise.
Tensors run_time_if(NodeCtx& ctx, const Tensor& c, const ::onnx::GraphProto& then_g,
                    const ::onnx::GraphProto& else_g) {
  Tensors a, b;
  try {
    a = ctx.run_graph(then_g, {});
    b = ctx.run_graph(else_g, {});
  } catch (const NeedsValues&) {
    return {};
  } catch (const Error&) {
    return {};
  }
  if (a.size() != b.size() || a.size() != ctx.num_outputs()) return {};
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() || a[i].dtype() != b[i].dtype()) return {};
  Tensors out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(nef::op("cond_select", {c, a[i], b[i]}));
  return out;
}

// If: the branch an import-time condition selects. A condition known only at run time selects
// at run time when both branches convert to the same types (the segment runner then computes
// only the branch taken); otherwise the graph specializes on the condition's inputs.
Tensors if_op(NodeCtx& ctx) {
  const ::onnx::GraphProto& then_g = ctx.attr_graph("then_branch");
  const ::onnx::GraphProto& else_g = ctx.attr_graph("else_branch");
  Tensor c = ctx.input(0);
  if (c.numel() != 1)
    ctx.fail(str("the condition must hold one element, got ", shape_str(c.shape())));
  if (!ctx.is_static(c)) {
    Tensors out = run_time_if(ctx, c, then_g, else_g);
    if (!out.empty()) return out;
  }
  const bool cond = truth(ctx, c, "the condition");
  Tensors outs = ctx.run_graph(cond ? then_g : else_g, {});
  if (outs.size() != ctx.num_outputs())
    ctx.fail(str("the ", cond ? "then" : "else", " branch has ", outs.size(),
                 " outputs, the node lists ", ctx.num_outputs()));
  return outs;
}

// Loop: body(iteration, cond, carried...) -> (cond, carried..., scan outputs...), unrolled.
Tensors loop(NodeCtx& ctx) {
  const ::onnx::GraphProto& body = ctx.attr_graph("body");
  int64_t trip = -1;
  if (ctx.has_input(0)) {
    std::vector<int64_t> v = ctx.static_ints(0);
    if (v.size() != 1) ctx.fail(str("the trip count must hold one value, got ", v.size()));
    trip = v[0];
    if (trip > kMaxIterations)
      ctx.unsupported(str("trip count ", trip, " exceeds the ", kMaxIterations,
                          " iterations NEF unrolls at import"));
  }
  const bool has_cond = ctx.has_input(1);
  bool cond = has_cond ? truth(ctx, ctx.input(1), "the initial condition") : true;
  if (trip < 0 && !has_cond) ctx.unsupported("a Loop with neither a trip count nor a condition");
  Tensors carried;
  for (size_t i = 2; i < ctx.num_inputs(); ++i) carried.push_back(ctx.input(i));
  const size_t n = carried.size();
  if (body.input_size() != int(n + 2) || body.output_size() < int(n + 1))
    ctx.fail(str("the body has ", body.input_size(), " inputs and ", body.output_size(),
                 " outputs; a Loop with ", n, " carried values needs ", n + 2, " and at least ",
                 n + 1));
  const size_t k = size_t(body.output_size()) - 1 - n;
  std::vector<Tensors> scans(k);
  for (int64_t i = 0; (trip < 0 || i < trip) && cond; ++i) {
    if (i >= kMaxIterations)
      ctx.unsupported(
          str("the loop runs more than the ", kMaxIterations, " iterations NEF unrolls at import"));
    Tensors in{scalar_like(double(i), DType::Int64), scalar_like(cond ? 1 : 0, DType::Bool)};
    in.insert(in.end(), carried.begin(), carried.end());
    Tensors outs = ctx.run_graph(body, in);
    // Without a condition input the body's condition output is ignored (a for loop).
    if (has_cond) cond = truth(ctx, outs[0], "the body's condition output");
    carried.assign(outs.begin() + 1, outs.begin() + 1 + long(n));
    for (size_t j = 0; j < k; ++j) scans[j].push_back(outs[1 + n + j]);
  }
  Tensors result = carried;
  for (size_t j = 0; j < k; ++j) result.push_back(stack(ctx, scans[j], 0, "a scan output"));
  return result;
}

// Scan over the sequence axis of each scan input (directions reverse it); states carried.
Tensors scan_core(NodeCtx& ctx, const ::onnx::GraphProto& body, Tensors states, const Tensors& xs,
                  const std::vector<int64_t>& in_axes, const std::vector<int64_t>& in_dirs,
                  const std::vector<int64_t>& out_axes, const std::vector<int64_t>& out_dirs) {
  const size_t n = states.size();
  if (body.input_size() != int(n + xs.size()) || body.output_size() < int(n))
    ctx.fail(str("the body has ", body.input_size(), " inputs and ", body.output_size(),
                 " outputs for ", n, " states and ", xs.size(), " scan inputs"));
  const size_t k = size_t(body.output_size()) - n;
  if (out_axes.size() != k || out_dirs.size() != k)
    ctx.fail(str("scan_output_axes/directions need ", k, " values"));
  int64_t len = -1;
  std::vector<int64_t> axes;
  for (size_t j = 0; j < xs.size(); ++j) {
    const int64_t a = norm_axis(ctx, in_axes[j], xs[j].rank());
    axes.push_back(a);
    const int64_t l = xs[j].shape()[size_t(a)];
    if (len >= 0 && l != len) ctx.fail(str("scan inputs have sequence lengths ", len, " and ", l));
    len = l;
  }
  if (len > kMaxIterations)
    ctx.unsupported(str("sequence length ", len, " exceeds the ", kMaxIterations,
                        " iterations NEF unrolls at import"));
  std::vector<Tensors> scans(k);
  for (int64_t t = 0; t < len; ++t) {
    Tensors in = states;
    for (size_t j = 0; j < xs.size(); ++j)
      in.push_back(take_index(xs[j], axes[j], in_dirs[j] ? len - 1 - t : t));
    Tensors outs = ctx.run_graph(body, in);
    states.assign(outs.begin(), outs.begin() + long(n));
    for (size_t j = 0; j < k; ++j) scans[j].push_back(outs[n + j]);
  }
  Tensors result = states;
  for (size_t j = 0; j < k; ++j) {
    if (out_dirs[j]) std::reverse(scans[j].begin(), scans[j].end());
    const int64_t rank = scans[j].empty() ? 0 : scans[j][0].rank();
    result.push_back(stack(ctx, scans[j], norm_axis(ctx, out_axes[j], rank + 1), "a scan output"));
  }
  return result;
}

Tensors scan(NodeCtx& ctx) {
  const ::onnx::GraphProto& body = ctx.attr_graph("body");
  const int64_t m = ctx.attr_int("num_scan_inputs");
  const bool batched = ctx.version() < 9;  // opset 8: a batch axis 0 and sequence_lens
  const size_t first = batched ? 1 : 0;
  if (m < 1 || ctx.num_inputs() < first + size_t(m))
    ctx.fail(str("num_scan_inputs = ", m, " with ", ctx.num_inputs(), " inputs"));
  const size_t n = ctx.num_inputs() - first - size_t(m);
  Tensors states, xs;
  for (size_t i = 0; i < n; ++i) states.push_back(ctx.input(first + i));
  for (size_t i = 0; i < size_t(m); ++i) xs.push_back(ctx.input(first + n + i));
  const size_t k = size_t(std::max(0, body.output_size() - int(n)));
  auto ints = [&](const char* name, size_t count) {
    std::vector<int64_t> v = ctx.attr_ints(name, std::vector<int64_t>(count, 0));
    if (v.size() != count) ctx.fail(str(name, " needs ", count, " values, got ", v.size()));
    return v;
  };
  if (!batched)
    return scan_core(ctx, body, states, xs, ints("scan_input_axes", size_t(m)),
                     ints("scan_input_directions", size_t(m)), ints("scan_output_axes", k),
                     ints("scan_output_directions", k));
  // Opset 8: each batch row scanned on its own (sequence axis 1), results stacked on axis 0.
  const std::vector<int64_t> dirs = ints("directions", size_t(m));
  int64_t batch = -1;
  for (const Tensor& t : states) {
    if (t.rank() < 1) ctx.fail("states need a batch axis");
    batch = t.shape()[0];
  }
  for (const Tensor& t : xs) {
    if (t.rank() < 2) ctx.fail("scan inputs need batch and sequence axes");
    if (batch >= 0 && t.shape()[0] != batch) ctx.fail("inputs disagree on the batch size");
    batch = t.shape()[0];
  }
  if (ctx.has_input(0)) {
    std::vector<int64_t> lens = ctx.static_ints(0);
    for (int64_t l : lens)
      if (l != xs[0].shape()[1]) ctx.unsupported("sequence_lens shorter than the sequence axis");
  }
  std::vector<Tensors> rows(n + k);
  for (int64_t b = 0; b < batch; ++b) {
    Tensors s, x;
    for (const Tensor& t : states) s.push_back(take_index(t, 0, b));
    for (const Tensor& t : xs) x.push_back(take_index(t, 0, b));
    Tensors r = scan_core(ctx, body, s, x, std::vector<int64_t>(size_t(m), 0), dirs,
                          std::vector<int64_t>(k, 0), std::vector<int64_t>(k, 0));
    for (size_t j = 0; j < r.size(); ++j) rows[j].push_back(r[j]);
  }
  Tensors result;
  for (auto& r : rows) result.push_back(stack(ctx, r, 0, "a Scan output"));
  return result;
}

}  // namespace

void register_control_flow(ConverterTable& t) {
  // Revisions (converter.h); the last number is the oldest one converted.
  t["If"] = {if_op, {1, 11, 13, 16, 19, 21, 23, 24, 25}, 1};
  t["Loop"] = {loop, {1, 11, 13, 16, 19, 21, 23, 24, 25}, 1};
  t["Scan"] = {scan, {8, 9, 11, 16, 19, 21, 23, 24, 25}, 8};
}

}  // namespace nef::onnx_import
