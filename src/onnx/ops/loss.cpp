// ONNX loss converters: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (the latter is
// the former over log_softmax along the class axis). Both are compositions: the class of each
// position picked with gather_elements along axis 1, ignored positions (target ==
// ignore_index) masked to 0 with weight 0, per-class weights gathered by target, and the
// reduction none / sum / mean (the weighted mean: sum of weighted losses over the sum of the
// weights used, as ONNX defines it whenever weights or ignore_index are given).
#include <string>
#include <vector>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

using Tensors = std::vector<Tensor>;

// The loss of input `logp` [N, C, d1..dk] (log-probabilities) against `target` [N, d1..dk].
Tensor nll(NodeCtx& ctx, const Tensor& logp, size_t target_i, size_t weight_i) {
  Tensor target = ctx.input(target_i);
  if (logp.rank() < 2)
    ctx.fail(str("input must be [N, C, ...] (rank >= 2), got ", shape_str(logp.shape())));
  if (!is_floating(logp.dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(logp.dtype())));
  if (target.dtype() != DType::Int32 && target.dtype() != DType::Int64)
    ctx.fail(str("target must be int32 or int64, got ", dtype_name(target.dtype())));
  Shape want = {logp.shape()[0]};
  want.insert(want.end(), logp.shape().begin() + 2, logp.shape().end());
  if (target.shape() != want)
    ctx.fail(str("target ", shape_str(target.shape()), " must be ", shape_str(want), " for input ",
                 shape_str(logp.shape())));
  const std::string reduction = ctx.attr_string("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean")
    ctx.fail(str("reduction must be none, sum or mean, got \"", reduction, "\""));
  const DType dt = logp.dtype(), it = target.dtype();
  const bool has_ignore = ctx.has_attr("ignore_index");
  const int64_t ignore = has_ignore ? ctx.attr_int("ignore_index") : 0;
  // Ignored positions read class 0 (their target may be any value) and are then masked out.
  Tensor keep = has_ignore ? nef::not_equal(target, nef::scalar(double(ignore), it)) : Tensor();
  Tensor cls = has_ignore ? nef::where(keep, target, nef::scalar(0, it)) : target;
  Tensor picked = nef::squeeze(nef::gather_elements(logp, nef::expand_dims(cls, {1}), 1),
                               std::vector<int64_t>{1});
  Tensor zero = nef::scalar(0, dt);
  Tensor loss = nef::neg(picked);
  if (has_ignore) loss = nef::where(keep, loss, zero);
  Tensor w;  // the weight of each position, when weights or ignore_index are given
  if (ctx.has_input(weight_i)) {
    Tensor weight = ctx.input(weight_i);
    if (weight.rank() != 1 || weight.shape()[0] != logp.shape()[1] || weight.dtype() != dt)
      ctx.fail(str("weight ", shape_str(weight.shape()), " ", dtype_name(weight.dtype()),
                   " must be (C,) = (", logp.shape()[1], ",) of the input's type"));
    w = nef::gather(weight, cls, 0);
    if (has_ignore) w = nef::where(keep, w, zero);
    loss = nef::mul(loss, w);
  } else if (has_ignore) {
    w = nef::cast(keep, dt);
  }
  if (reduction == "none") return loss;
  if (reduction == "sum") return nef::sum(loss);
  return w.defined() ? nef::div(nef::sum(loss), nef::sum(w)) : nef::mean(loss);
}

Tensors nll_loss(NodeCtx& ctx) { return {nll(ctx, ctx.input(0), 1, 2)}; }

// The second output, when asked for, is the log-probabilities.
Tensors softmax_cross_entropy(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (x.rank() < 2)
    ctx.fail(str("scores must be [N, C, ...] (rank >= 2), got ", shape_str(x.shape())));
  if (!is_floating(x.dtype()))
    ctx.fail(str("scores must be a float tensor, got ", dtype_name(x.dtype())));
  Tensor logp = nef::log_softmax(x, 1);
  return {nll(ctx, logp, 1, 2), logp};
}

}  // namespace

void register_loss(ConverterTable& t) {
  // Revisions (converter.h): the later ones only widened the types.
  t["NegativeLogLikelihoodLoss"] = {nll_loss, {12, 13, 22}, 12};
  t["SoftmaxCrossEntropyLoss"] = {softmax_cross_entropy, {12, 13}, 12};
}

}  // namespace nef::onnx_import
