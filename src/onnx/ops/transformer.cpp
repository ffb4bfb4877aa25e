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
  const double scale =
      ctx.has_attr("scale") ? ctx.attr_float("scale") : 1.0 / std::sqrt(double(head_size));

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
    if (ml > lk)
      ctx.fail(str("attn_mask ", shape_str(m.shape()), " is longer than the ", lk, " keys"));
    if (ml < lk) {
      Shape pad_shape = m.shape();
      pad_shape.back() = lk - ml;
      m = concat(
          {m, is_bool ? full(pad_shape, 0, DType::Bool) : full(pad_shape, -INFINITY, m.dtype())},
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
  if (!is_floating(x.dtype()))
    ctx.fail(str("X must be a float tensor, got ", dtype_name(x.dtype())));
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis", -1), x.rank());
  const double eps = ctx.attr_float("epsilon", 1e-5);
  // stash_type 1 (float32) is how NEF computes half types anyway.
  if (ctx.attr_int("stash_type", 1) != 1) ctx.unsupported("stash_type other than 1 (float)");
  return {rmsnorm(x, w, eps, axis)};
}

// RotaryEmbedding (23): X [B, H, S, D] or [B, S, H*D] (num_heads), cos/sin caches [P, r/2]
// gathered at position_ids [B, S], or given per token as [B, S, r/2]. The first r channels of
// every head rotate (pairs (i, i + r/2), or (2i, 2i+1) when interleaved); the rest pass. NEF's
// `rope` op computes its angles from a base; ONNX hands over the tables, so this is the same
// rotation composed from elementwise ops on the given tables.
std::vector<Tensor> rotary_embedding(NodeCtx& ctx) {
  Tensor x = ctx.input(0), cos_t = ctx.input(1), sin_t = ctx.input(2);
  const DType dt = x.dtype();
  if (!is_floating(dt)) ctx.fail(str("X must be a float tensor, got ", dtype_name(dt)));
  if (x.rank() != 3 && x.rank() != 4)
    ctx.fail(str("X must be 3-D [B, S, H*D] or 4-D [B, H, S, D], got ", shape_str(x.shape())));
  if (cos_t.dtype() != dt || sin_t.dtype() != dt)
    ctx.fail(str("cos_cache and sin_cache must have X's dtype ", dtype_name(dt)));
  const Shape xs = x.shape();
  const int64_t B = xs[0], S = x.rank() == 4 ? xs[2] : xs[1];
  const bool interleaved = ctx.attr_int("interleaved", 0) != 0;
  const int64_t num_heads = ctx.attr_int("num_heads", 0);
  if (x.rank() == 3) {
    if (num_heads <= 0 || xs[2] % num_heads != 0)
      ctx.fail(str("3-D X ", shape_str(xs), " needs num_heads > 0 dividing its last dim, got ",
                   num_heads));
    x = reshape(x, {B, S, num_heads, xs[2] / num_heads});  // [B, S, H, D]
  } else if (num_heads != 0 && num_heads != xs[1]) {
    ctx.fail(str("num_heads ", num_heads, " differs from X ", shape_str(xs)));
  }
  const int64_t D = x.shape()[3];
  int64_t rot = ctx.attr_int("rotary_embedding_dim", 0);
  if (rot == 0) rot = D;
  if (rot < 0 || rot > D || rot % 2 != 0)
    ctx.fail(str("rotary_embedding_dim ", rot, " must be even and in [0, head size ", D, "]"));
  const int64_t half = rot / 2;
  if (ctx.has_input(3)) {
    Tensor pos = ctx.input(3);
    if (pos.dtype() != DType::Int64 || pos.shape() != Shape{B, S})
      ctx.fail(str("position_ids must be int64 [B, S] = [", B, ", ", S, "], got ",
                   dtype_name(pos.dtype()), " ", shape_str(pos.shape())));
    for (const Tensor* c : {&cos_t, &sin_t})
      if (c->rank() != 2 || c->shape()[1] != half)
        ctx.fail(str("with position_ids the caches must be [max_position, ", half, "], got ",
                     shape_str(c->shape())));
    // Positions past the cache fail in gather at run time (a structured IndexError).
    cos_t = gather(cos_t, pos, 0);
    sin_t = gather(sin_t, pos, 0);
  } else {
    for (const Tensor* c : {&cos_t, &sin_t})
      if (c->shape() != Shape{B, S, half})
        ctx.fail(str("without position_ids the caches must be [B, S, r/2] = [", B, ", ", S, ", ",
                     half, "], got ", shape_str(c->shape())));
  }
  // [B, S, r/2] -> broadcastable against x's [B, H, S, .] (4-D) or [B, S, H, .] (3-D)
  const int64_t head_axis = xs.size() == 4 ? 1 : 2;
  cos_t = expand_dims(cos_t, {head_axis});
  sin_t = expand_dims(sin_t, {head_axis});
  const Shape xr = x.shape();
  auto part = [&](int64_t start, int64_t stop, int64_t step) {
    return slice(x, {0, 0, 0, start}, {xr[0], xr[1], xr[2], stop}, {1, 1, 1, step});
  };
  Tensor x1 = interleaved ? part(0, rot, 2) : part(0, half, 1);
  Tensor x2 = interleaved ? part(1, rot, 2) : part(half, rot, 1);
  Tensor real = cos_t * x1 - sin_t * x2;
  Tensor imag = sin_t * x1 + cos_t * x2;
  Tensor rotated = interleaved
                       ? reshape(concat({expand_dims(real, {4}), expand_dims(imag, {4})}, 4),
                                 {xr[0], xr[1], xr[2], rot})
                       : concat({real, imag}, 3);
  Tensor y = rot == D ? rotated : concat({rotated, part(rot, D, 1)}, 3);
  return {xs.size() == 3 ? reshape(y, xs) : y};
}

// CausalConvWithState (27): a depthwise causal conv1d over input [B, C, L] with weight
// [C, 1, K], continuing from past_state [B, C, K-1] (zeros when absent), optional bias [C] and
// SiLU. present_state is the last K-1 steps of past_state ++ input, the next call's past.
std::vector<Tensor> causal_conv_with_state(NodeCtx& ctx) {
  Tensor x = ctx.input(0), w = ctx.input(1);
  if (!is_floating(x.dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(x.dtype())));
  if (x.rank() != 3) ctx.fail(str("input must be [B, C, L], got ", shape_str(x.shape())));
  const int64_t B = x.shape()[0], C = x.shape()[1], L = x.shape()[2];
  if (w.rank() != 3 || w.shape()[0] != C || w.shape()[1] != 1 || w.shape()[2] < 1)
    ctx.fail(str("weight must be [C, 1, K] = [", C, ", 1, K >= 1] for input ", shape_str(x.shape()),
                 ", got ", shape_str(w.shape())));
  const int64_t K = w.shape()[2];
  const std::string act = ctx.attr_string("activation", "none");
  if (act != "none" && act != "silu" && act != "swish")
    ctx.fail(str("activation must be none, silu or swish, got '", act, "'"));
  Tensor past = zeros({B, C, K - 1}, x.dtype());
  if (ctx.has_input(3)) {
    past = ctx.input(3);
    if (past.shape() != Shape{B, C, K - 1})
      ctx.fail(str("past_state must be [B, C, K-1] = [", B, ", ", C, ", ", K - 1, "], got ",
                   shape_str(past.shape())));
  }
  Tensor padded = concat({past, x}, 2);
  std::vector<Tensor> in = {padded, w};
  if (ctx.has_input(2)) {
    if (ctx.input(2).shape() != Shape{C})
      ctx.fail(str("bias must be [C] = [", C, "], got ", shape_str(ctx.input(2).shape())));
    in.push_back(ctx.input(2));
  }
  ir::Attrs a;
  a.set("strides", std::vector<int64_t>{1});
  a.set("pads", std::vector<int64_t>{0, 0});
  a.set("dilations", std::vector<int64_t>{1});
  a.set("groups", C);
  Tensor y = nef::op("conv", in, a);
  if (act != "none") y = silu(y);
  Tensor present = slice(padded, {0, 0, L}, {B, C, L + K - 1}, {1, 1, 1});
  return {y, present};
}

// LinearAttention (27): query [B, T, Hq*dk], key [B, T, Hkv*dk], value [B, T, Hkv*dv],
// past_state [B, Hkv, dk, dv], decay [B, T, Hkv or Hkv*dk] (gated rules), beta [B, T, Hkv or 1]
// (delta rules) -> output [B, T, Hq*dv], present_state. One NEF linear_attention node runs the
// recurrence; its packed output is sliced here. Mixed dtypes (a float32 state with float16
// activations) compute in the wider one.
std::vector<Tensor> linear_attention(NodeCtx& ctx) {
  Tensor q = ctx.input(0), k = ctx.input(1), v = ctx.input(2);
  const std::string rule = ctx.attr_string("update_rule", "gated_delta");
  ctx.attr_int("chunk_size", 64);  // a tuning hint for chunked kernels: no effect on results
  if (rule != "linear" && rule != "gated" && rule != "delta" && rule != "gated_delta")
    ctx.fail(str("update_rule must be linear, gated, delta or gated_delta, got '", rule, "'"));
  const bool gated = rule == "gated" || rule == "gated_delta";
  const bool delta = rule == "delta" || rule == "gated_delta";
  if (gated != ctx.has_input(4))
    ctx.fail(str("update_rule ", rule, gated ? " needs" : " takes no", " decay input"));
  if (delta != ctx.has_input(5))
    ctx.fail(str("update_rule ", rule, delta ? " needs" : " takes no", " beta input"));
  const int64_t hq = ctx.attr_int("q_num_heads"), hkv = ctx.attr_int("kv_num_heads");
  if (hq <= 0 || hkv <= 0 || hq % hkv != 0)
    ctx.fail(str("q_num_heads ", hq, " must be a positive multiple of kv_num_heads ", hkv));
  const DType qdt = q.dtype();
  for (const Tensor* t : {&q, &k, &v})
    if (t->rank() != 3 || !is_floating(t->dtype()) || t->dtype() != qdt)
      ctx.fail(str("query, key, value must be 3-D [B, T, H*D] of one float dtype, got ",
                   shape_str(q.shape()), ", ", shape_str(k.shape()), ", ", shape_str(v.shape())));
  const int64_t B = q.shape()[0], T = q.shape()[1];
  if (q.shape()[2] % hq != 0 || k.shape()[2] % hkv != 0 || v.shape()[2] % hkv != 0)
    ctx.fail(str("query ", shape_str(q.shape()), " / key ", shape_str(k.shape()), " / value ",
                 shape_str(v.shape()), " last dims must divide by their ", hq, " / ", hkv,
                 " heads"));
  const int64_t dk = q.shape()[2] / hq, dv = v.shape()[2] / hkv;
  if (k.shape() != Shape{B, T, hkv * dk} || v.shape()[0] != B || v.shape()[1] != T)
    ctx.fail(str("key must be [B, T, Hkv*dk] = [", B, ", ", T, ", ", hkv * dk,
                 "] and value [B, T, .]"
                 ", got ",
                 shape_str(k.shape()), ", ", shape_str(v.shape())));
  DType work = qdt, state_dt = qdt;
  Tensor state;
  if (ctx.has_input(3)) {
    state = ctx.input(3);
    if (state.shape() != Shape{B, hkv, dk, dv} || !is_floating(state.dtype()))
      ctx.fail(str("past_state must be float [B, Hkv, dk, dv] = [", B, ", ", hkv, ", ", dk, ", ",
                   dv, "], got ", shape_str(state.shape())));
    state_dt = state.dtype();
    work = promote_types(qdt, state_dt);
  }
  auto heads = [&](const Tensor& x, int64_t h) {  // [B, T, h*d] -> [B, h, T, d]
    const Shape& s = x.shape();
    return transpose(reshape(cast(x, work), {B, T, h, s[2] / h}), {0, 2, 1, 3});
  };
  std::vector<Tensor> in = {heads(q, hq), heads(k, hkv), heads(v, hkv),
                            state.defined() ? cast(state, work) : zeros({B, hkv, dk, dv}, work)};
  if (gated) {
    Tensor g = ctx.input(4);
    const int64_t last = g.rank() == 3 ? g.shape()[2] : -1;
    if (g.rank() != 3 || g.shape()[0] != B || g.shape()[1] != T ||
        (last != hkv && last != hkv * dk) || g.dtype() != qdt)
      ctx.fail(str("decay must be [B, T, Hkv] or [B, T, Hkv*dk] of query's dtype, got ",
                   shape_str(g.shape())));
    in.push_back(last == hkv ? transpose(reshape(cast(g, work), {B, T, hkv, 1}), {0, 2, 1, 3})
                             : heads(g, hkv));
  }
  if (delta) {
    Tensor bt = ctx.input(5);
    const int64_t last = bt.rank() == 3 ? bt.shape()[2] : -1;
    if (bt.rank() != 3 || bt.shape()[0] != B || bt.shape()[1] != T || (last != hkv && last != 1) ||
        bt.dtype() != qdt)
      ctx.fail(str("beta must be [B, T, Hkv] or [B, T, 1] of query's dtype, got ",
                   shape_str(bt.shape())));
    Tensor b4 = transpose(reshape(cast(bt, work), {B, T, last, 1}), {0, 2, 1, 3});
    in.push_back(broadcast_to(b4, {B, hkv, T, 1}));
  }
  ir::Attrs a;
  a.set("update_rule", rule);
  const double scale = ctx.attr_float("scale", 0.0);
  if (scale != 0.0) a.set("scale", scale);
  Tensor packed = nef::op("linear_attention", in, a);  // [B, Hkv, G*T + dk, dv]
  const int64_t G = hq / hkv;
  Tensor o = slice(packed, {0, 0, 0, 0}, {B, hkv, G * T, dv}, {1, 1, 1, 1});
  o = reshape(transpose(reshape(o, {B, hq, T, dv}), {0, 2, 1, 3}), {B, T, hq * dv});
  Tensor present = slice(packed, {0, 0, G * T, 0}, {B, hkv, G * T + dk, dv}, {1, 1, 1, 1});
  return {cast(o, qdt), cast(present, state_dt)};
}

}  // namespace

void register_transformer(ConverterTable& t) {
  t["Attention"] = {attention, {23, 24}, 23};
  t["RMSNormalization"] = {rms_normalization, {23}, 23};
  t["RotaryEmbedding"] = {rotary_embedding, {23}, 23};
  t["CausalConvWithState"] = {causal_conv_with_state, {27}, 27};
  t["LinearAttention"] = {linear_attention, {27}, 27};
}

}  // namespace nef::onnx_import
