// Transformer building blocks from opset 23: Attention (with KV cache inputs, grouped-query
// heads, causal and padding masks, softcap) and RMSNormalization. Attention is composed from
// NEF ops (matmul, softmax, where...) so every ONNX variant keeps its exact semantics; the
// optimizer fuses the pieces (softmax rows, elementwise chains, matmul epilogues).
#include <cmath>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

Tensor neg_inf(DType dt) { return scalar_like(-INFINITY, dt); }

// [B, S, H*D] -> [B, H, S, D]
Tensor split_heads(const NodeCtx& ctx, const Tensor& x, int64_t heads, const char* what) {
  const Shape& s = x.shape();
  if (heads <= 0 || s[2] % heads != 0)
    ctx.fail(str(what, " hidden size ", s[2], " is not a multiple of ", heads, " heads"));
  return transpose(reshape(x, {s[0], s[1], heads, s[2] / heads}), {0, 2, 1, 3});
}

// [B, Hk, L, D] -> [B, Hk*rep, L, D], each head repeated `rep` times in place (h0 h0 h1 h1).
Tensor repeat_heads(const Tensor& x, int64_t rep) {
  if (rep == 1) return x;
  const Shape& s = x.shape();
  Tensor e = broadcast_to(expand_dims(x, {2}), {s[0], s[1], rep, s[2], s[3]});
  return reshape(e, {s[0], s[1] * rep, s[2], s[3]});
}

std::vector<Tensor> attention(NodeCtx& ctx) {
  Tensor q = ctx.input(0), k = ctx.input(1), v = ctx.input(2);
  const DType dt = q.dtype();
  if (!is_floating(dt)) ctx.fail(str("Q must be a float tensor, got ", dtype_name(dt)));
  if (q.rank() != k.rank() || q.rank() != v.rank() || (q.rank() != 3 && q.rank() != 4))
    ctx.fail(str("Q, K, V must all be 3-D or all 4-D: ", shape_str(q.shape()), ", ",
                 shape_str(k.shape()), ", ", shape_str(v.shape())));
  const bool rank3 = q.rank() == 3;
  const bool causal = ctx.attr_int("is_causal", 0) != 0;
  const int64_t mode = ctx.attr_int("qk_matmul_output_mode", 0);
  const double softcap = ctx.attr_float("softcap", 0.0);
  std::optional<DType> softmax_dt;
  if (ctx.has_attr("softmax_precision")) {
    int64_t code = ctx.attr_int("softmax_precision");
    softmax_dt = dtype_from_onnx(int(code));
    if (!softmax_dt || !is_floating(*softmax_dt))
      ctx.unsupported(str("softmax_precision ", onnx_type_name(int(code))));
  }
  if (mode < 0 || mode > 3) ctx.fail(str("qk_matmul_output_mode ", mode, " is not 0..3"));
  int64_t q_heads = ctx.attr_int("q_num_heads", 0), kv_heads = ctx.attr_int("kv_num_heads", 0);
  if (rank3) {
    if (q_heads <= 0 || kv_heads <= 0)
      ctx.fail("3-D inputs need the q_num_heads and kv_num_heads attributes");
    q = split_heads(ctx, q, q_heads, "Q");
    k = split_heads(ctx, k, kv_heads, "K");
    v = split_heads(ctx, v, kv_heads, "V");
  }
  if (q_heads <= 0) q_heads = q.shape()[1];
  if (kv_heads <= 0) kv_heads = k.shape()[1];
  const int64_t head_size = q.shape()[3];
  const double scale = ctx.has_attr("scale") ? ctx.attr_float("scale")
                                             : 1.0 / std::sqrt(double(head_size));

  int64_t past_len = 0;
  for (size_t i : {size_t(4), size_t(5)})
    if (ctx.has_input(i) && ctx.input(i).rank() != 4)
      ctx.fail(str(i == 4 ? "past_key" : "past_value", " must be 4-D [B, H, L, D], got ",
                   shape_str(ctx.input(i).shape())));
  if (ctx.has_input(4)) {
    past_len = ctx.input(4).shape()[2];
    k = concat({ctx.input(4), k}, 2);  // concat checks the other dims (ShapeError)
  }
  if (ctx.has_input(5)) v = concat({ctx.input(5), v}, 2);
  const Tensor present_k = k, present_v = v;
  const int64_t lq = q.shape()[2], lk = k.shape()[2];

  // The additive bias: the mask (bool -> 0 / -inf; padded with "masked" up to lk), the
  // causal rule keep j <= i + past_len, and the padding of nonpad_kv_seqlen.
  Tensor bias;
  if (ctx.has_input(3)) {
    Tensor m = ctx.input(3);
    const bool is_bool = m.dtype() == DType::Bool;
    if (m.rank() == 0) ctx.fail("attn_mask must have at least 1 dimension");
    int64_t ml = m.shape().back();
    if (ml > lk) ctx.fail(str("attn_mask ", shape_str(m.shape()), " is longer than the ", lk, " keys"));
    if (ml < lk) {
      Shape pad_shape = m.shape();
      pad_shape.back() = lk - ml;
      m = concat({m, is_bool ? full(pad_shape, 0, DType::Bool) : full(pad_shape, -INFINITY, m.dtype())},
                 m.rank() - 1);
    }
    bias = is_bool ? where(m, scalar_like(0, dt), neg_inf(dt)) : m;
  }
  if (causal) {
    Tensor rows = reshape(arange(0, double(lq), 1, DType::Int64), {lq, 1});
    Tensor cols = reshape(arange(0, double(lk), 1, DType::Int64), {1, lk});
    Tensor keep = less_equal(cols, rows + scalar_like(double(past_len), DType::Int64));
    bias = where(keep, bias.defined() ? bias : scalar_like(0, dt), neg_inf(dt));
  }
  if (ctx.has_input(6)) {
    Tensor n = ctx.input(6);
    const int64_t batch = q.shape()[0];
    Tensor cols = reshape(arange(0, double(lk), 1, DType::Int64), {1, lk});
    Tensor keep = less(cols, reshape(cast(n, DType::Int64), {batch, 1}));
    Tensor pad = reshape(where(keep, scalar_like(0, dt), neg_inf(dt)), {batch, 1, 1, lk});
    bias = bias.defined() ? bias + pad : pad;
  }

  if (q_heads != kv_heads) {
    if (q_heads % kv_heads != 0)
      ctx.fail(str(q_heads, " query heads are not a multiple of ", kv_heads, " key/value heads"));
    k = repeat_heads(k, q_heads / kv_heads);
    v = repeat_heads(v, q_heads / kv_heads);
  }
  Tensor qk = matmul(q, transpose(k, {0, 1, 3, 2})) * scalar_like(scale, dt);
  if (softcap > 0) qk = tanh(qk / scalar_like(softcap, dt)) * scalar_like(softcap, dt);
  Tensor with_bias = bias.defined() ? qk + bias : qk;
  Tensor logits = softmax_dt ? cast(with_bias, *softmax_dt) : with_bias;
  Tensor p = softmax(logits, -1);
  Tensor y = cast(matmul(p, softmax_dt ? cast(v, *softmax_dt) : v), dt);
  if (rank3) {
    const Shape& s = y.shape();
    y = reshape(transpose(y, {0, 2, 1, 3}), {s[0], s[2], s[1] * s[3]});
  }
  // What the fourth output holds follows ONNX's reference: the (softcapped) scores for modes
  // 0 and 1, with the bias for 2, the probabilities for 3.
  Tensor qk_out = mode == 2 ? with_bias : mode == 3 ? cast(p, dt) : qk;
  return {y, present_k, present_v, qk_out};
}

std::vector<Tensor> rms_normalization(NodeCtx& ctx) {
  Tensor x = ctx.input(0), w = ctx.input(1);
  if (!is_floating(x.dtype())) ctx.fail(str("X must be a float tensor, got ", dtype_name(x.dtype())));
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis", -1), x.rank());
  const double eps = ctx.attr_float("epsilon", 1e-5);
  // stash_type 1 (float32) is how NEF computes half types anyway.
  if (ctx.attr_int("stash_type", 1) != 1) ctx.unsupported("stash_type other than 1 (float)");
  return {rmsnorm(x, w, eps, axis)};
}

}  // namespace

void register_transformer(ConverterTable& t) {
  t["Attention"] = {attention, {23, 24}, 23};
  t["RMSNormalization"] = {rms_normalization, {23}, 23};
}

}  // namespace nef::onnx_import
