// Llama-family GGUF models as NEF step graphs, and sessions that run them over a KV cache.
#include "llm/model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "nef/error.h"

namespace nef::llm {
namespace {

int32_t optional_id(const format::GgufFile& f, const char* key) {
  if (!f.has(key)) return -1;
  const uint32_t v = f.get_u32(key);
  return v > uint32_t(INT32_MAX) ? -1 : int32_t(v);
}

std::unique_ptr<Tokenizer> load_tokenizer(const format::GgufFile& f) {
  TokenizerData d;
  d.model = f.get_string("tokenizer.ggml.model");
  if (f.has("tokenizer.ggml.pre")) d.pre = f.get_string("tokenizer.ggml.pre");
  d.tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (f.has("tokenizer.ggml.merges")) d.merges = f.get_string_array("tokenizer.ggml.merges");
  if (f.has("tokenizer.ggml.token_type"))
    for (int64_t t : f.get_int_array("tokenizer.ggml.token_type"))
      d.token_types.push_back(int32_t(t));
  d.bos_id = optional_id(f, "tokenizer.ggml.bos_token_id");
  d.eos_id = optional_id(f, "tokenizer.ggml.eos_token_id");
  d.unk_id = optional_id(f, "tokenizer.ggml.unknown_token_id");
  d.pad_id = optional_id(f, "tokenizer.ggml.padding_token_id");
  d.eot_id = optional_id(f, "tokenizer.ggml.eot_token_id");
  if (f.has("tokenizer.ggml.add_bos_token")) d.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  if (f.has("tokenizer.ggml.add_eos_token")) d.add_eos = f.get_bool("tokenizer.ggml.add_eos_token");
  return std::make_unique<Tokenizer>(std::move(d));
}

ModelConfig read_config(const format::GgufFile& f, const std::string& path) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture");
  if (c.arch != "llama" && c.arch != "mistral")
    throw UnsupportedError(
        str("[llm] architecture '", c.arch, "' of ", path, " is not supported (llama, mistral)"));
  c.name = f.has("general.name") ? f.get_string("general.name")
                                 : std::filesystem::path(path).filename().string();
  const std::string a = c.arch + ".";
  c.n_layer = f.get_i64(a + "block_count");
  c.n_embd = f.get_i64(a + "embedding_length");
  c.n_ff = f.get_i64(a + "feed_forward_length");
  c.n_head = f.get_i64(a + "attention.head_count");
  c.n_head_kv =
      f.has(a + "attention.head_count_kv") ? f.get_i64(a + "attention.head_count_kv") : c.n_head;
  c.n_ctx_train = f.has(a + "context_length") ? f.get_i64(a + "context_length") : 2048;
  c.rope_base = f.has(a + "rope.freq_base") ? f.get_f64(a + "rope.freq_base") : 10000.0;
  c.rms_eps = f.get_f64(a + "attention.layer_norm_rms_epsilon");
  auto positive = [&](int64_t v, const char* what) {
    if (v <= 0 || v > (int64_t(1) << 24))
      throw FormatError(str("[llm] ", path, ": ", a, what, " = ", v, " is out of range"));
  };
  positive(c.n_layer, "block_count");
  positive(c.n_embd, "embedding_length");
  positive(c.n_ff, "feed_forward_length");
  positive(c.n_head, "attention.head_count");
  positive(c.n_head_kv, "attention.head_count_kv");
  positive(c.n_ctx_train, "context_length");
  if (c.n_embd % c.n_head != 0 || c.n_head % c.n_head_kv != 0)
    throw FormatError(str("[llm] ", path, ": ", c.n_head, " heads (", c.n_head_kv,
                          " kv heads) do not divide the width ", c.n_embd));
  c.head_dim = c.n_embd / c.n_head;
  c.rope_dims =
      f.has(a + "rope.dimension_count") ? f.get_i64(a + "rope.dimension_count") : c.head_dim;
  if (c.rope_dims <= 0 || c.rope_dims > c.head_dim || c.rope_dims % 2)
    throw FormatError(str("[llm] ", path, ": rope.dimension_count ", c.rope_dims,
                          " does not fit the head dim ", c.head_dim));
  if (!(c.rope_base > 0) || !(c.rms_eps >= 0))
    throw FormatError(str("[llm] ", path, ": rope base ", c.rope_base, " / rms eps ", c.rms_eps,
                          " out of range"));
  // llama.cpp's converter permutes Llama's q and k weights so that RoPE rotates adjacent pairs.
  c.rope_mode = "interleaved";
  if (f.has("tokenizer.chat_template")) c.chat_template = f.get_string("tokenizer.chat_template");
  return c;
}

ir::Attrs attrs_of(std::initializer_list<std::pair<const char*, ir::AttrValue>> kv) {
  ir::Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& opts) {
  std::shared_ptr<Model> m(new Model());
  m->file_.emplace(format::GgufFile::open(path));
  m->cfg_ = read_config(*m->file_, path);
  m->tokenizer_ = load_tokenizer(*m->file_);
  m->cfg_.n_vocab = m->tokenizer_->vocab_size();
  if (opts.context < 0 || opts.prefill_chunk <= 0)
    throw ValidationError(str("[llm] context (", opts.context, ") must be >= 0 and prefill_chunk (",
                              opts.prefill_chunk, ") > 0"));
  m->context_ = opts.context ? opts.context : std::min<int64_t>(m->cfg_.n_ctx_train, 4096);
  m->chunk_ = opts.prefill_chunk;
  m->devices_ = opts.devices;
  if (opts.kv_type != DType::Float16 && opts.kv_type != DType::Float32)
    throw ValidationError(
        str("[llm] kv_type must be float16 or float32, not ", dtype_name(opts.kv_type)));
  m->kv_type_ = opts.kv_type;
  PlacementScope where(m->devices_);
  // Every weight the graph uses checked now (shape and type), and the plans of decoding and of
  // short prompts compiled now rather than at the first token.
  m->step_graph(1).compile();
  m->step_graph(m->bucket(2)).compile();
  return m;
}

Model::Weight Model::weight(const std::string& name, const Shape& expect) const {
  const format::GgufTensorInfo& info = file_->tensor_info(name);
  if (info.shape != expect)
    throw ValidationError(str("[llm] tensor '", name, "' is ", shape_str(info.shape),
                              ", the model's ", "metadata implies ", shape_str(expect)));
  Weight w;
  w.t = from_array(file_->tensor(name));  // zero copy (UnsupportedError for unread types)
  if (info.quant) w.format = quant::info(*info.quant).name;
  return w;
}

Tensor Model::linear(const Tensor& x, const Weight& w) const {
  if (!w.format.empty()) return op("qmatmul", {x, w.t}, attrs_of({{"format", w.format}}));
  return matmul(x, transpose(cast(w.t, DType::Float32)));
}

int64_t Model::bucket(int64_t n) const {
  if (n <= 1) return std::min<int64_t>(1, chunk_);
  for (int64_t b = 16; b < chunk_; b *= 2)  // padding wastes at most half a chunk
    if (n <= b) return b;
  return chunk_;
}

const LoadedGraph& Model::step_graph(int64_t T) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = steps_.find(T);
  if (it == steps_.end()) it = steps_.emplace(T, build_step(T)).first;
  return it->second;
}

LoadedGraph Model::build_step(int64_t T) const {
  const ModelConfig& c = cfg_;
  const int64_t E = c.n_embd, H = c.n_head, Hkv = c.n_head_kv, D = c.head_dim, G = H / Hkv;
  const int64_t L = c.n_layer, C = context_, V = c.n_vocab;
  Tensor tokens = placeholder("tokens", {T}, DType::Int32);
  Tensor pos = placeholder("pos", {T}, DType::Int32);
  Tensor start = placeholder("start", {}, DType::Int64);
  Tensor last_row = placeholder("last", {}, DType::Int32);
  Tensor k_cache = placeholder("k_cache", {L, Hkv, C, D}, kv_type_);
  Tensor v_cache = placeholder("v_cache", {L, Hkv, C, D}, kv_type_);

  const Weight embd = weight("token_embd.weight", {V, E});
  Tensor x = embd.format.empty()
                 ? cast(gather(embd.t, tokens, 0), DType::Float32)
                 : op("qgather", {embd.t, tokens}, attrs_of({{"format", embd.format}}));
  const ir::Attrs rope_attrs =
      attrs_of({{"base", c.rope_base}, {"dims", c.rope_dims}, {"mode", c.rope_mode}});
  auto heads = [&](const Tensor& t, int64_t n) {  // [T, n * D] -> [n, T, D]
    return transpose(reshape(t, {T, n, D}), {1, 0, 2});
  };
  std::vector<Tensor> k_new, v_new;
  for (int64_t l = 0; l < L; ++l) {
    const std::string b = str("blk.", l, ".");
    const Tensor attn_norm = from_array(file_->tensor(b + "attn_norm.weight"));
    const Weight wq = weight(b + "attn_q.weight", {H * D, E});
    const Weight wk = weight(b + "attn_k.weight", {Hkv * D, E});
    const Weight wv = weight(b + "attn_v.weight", {Hkv * D, E});
    const Weight wo = weight(b + "attn_output.weight", {E, H * D});
    Tensor h = rmsnorm(x, attn_norm, c.rms_eps);
    Tensor q = op("rope", {heads(linear(h, wq), H), pos}, rope_attrs);    // [H, T, D]
    Tensor k = op("rope", {heads(linear(h, wk), Hkv), pos}, rope_attrs);  // [Hkv, T, D]
    Tensor v = heads(linear(h, wv), Hkv);
    if (kv_type_ != DType::Float32) {  // attended as the cache will hold them
      k = cast(k, kv_type_);
      v = cast(v, kv_type_);
    }
    k_new.push_back(k);
    v_new.push_back(v);
    auto cache = [&](const Tensor& cc) {  // layer l of a cache as [Hkv, 1, C, D]
      return reshape(slice(cc, {l, 0, 0, 0}, {l + 1, Hkv, C, D}, {1, 1, 1, 1}), {Hkv, 1, C, D});
    };
    const std::vector<Tensor> att_in{
        reshape(q, {Hkv, G, T, D}), cache(k_cache), cache(v_cache), reshape(k, {Hkv, 1, T, D}),
        reshape(v, {Hkv, 1, T, D}), start};
    Tensor att = op("cached_attention", att_in);
    att = reshape(transpose(reshape(att, {H, T, D}), {1, 0, 2}), {T, H * D});
    x = x + linear(att, wo);

    const Tensor ffn_norm = from_array(file_->tensor(b + "ffn_norm.weight"));
    h = rmsnorm(x, ffn_norm, c.rms_eps);
    const Tensor gate = linear(h, weight(b + "ffn_gate.weight", {c.n_ff, E}));
    const Tensor up = linear(h, weight(b + "ffn_up.weight", {c.n_ff, E}));
    x = x + linear(silu(gate) * up, weight(b + "ffn_down.weight", {E, c.n_ff}));
  }
  Tensor last = reshape(gather(x, last_row, 0), {1, E});
  last = rmsnorm(last, from_array(file_->tensor("output_norm.weight")), c.rms_eps);
  const Weight out = file_->find_tensor("output.weight") ? weight("output.weight", {V, E}) : embd;
  Tensor logits = linear(last, out);
  // Each layer's new rows are an output of their own: stacked into one, all of them would stay
  // alive in the arena until the last layer (24 MB for a 512-token chunk of SmolLM2).
  std::vector<std::pair<std::string, Tensor>> outs{{"logits", logits}};
  for (int64_t l = 0; l < L; ++l) {
    outs.emplace_back(str("k_new.", l), k_new[size_t(l)]);
    outs.emplace_back(str("v_new.", l), v_new[size_t(l)]);
  }
  return LoadedGraph::from_tensors(outs);
}

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)) {
  const ModelConfig& c = model_->config();
  const Shape s{c.n_layer, c.n_head_kv, model_->context(), c.head_dim};
  k_cache_ = Array::empty(s, model_->kv_type());
  v_cache_ = Array::empty(s, model_->kv_type());
}

void Session::truncate(int64_t pos) {
  if (pos < 0 || pos > pos_)
    throw ValidationError(str("[llm] truncate to ", pos, ": the sequence has ", pos_, " tokens"));
  pos_ = pos;
}

std::vector<float> Session::eval(std::span<const int32_t> tokens) {
  const ModelConfig& c = model_->config();
  const int64_t n = int64_t(tokens.size());
  if (n == 0) throw ValidationError("[llm] eval of no tokens");
  if (pos_ + n > model_->context())
    throw ValidationError(str("[llm] ", pos_ + n, " tokens do not fit the context of ",
                              model_->context(), " (Model::load's context option)"));
  for (int32_t t : tokens)
    if (t < 0 || t >= c.n_vocab)
      throw ValidationError(str("[llm] token id ", t, " is outside the vocabulary of ", c.n_vocab));
  std::vector<float> logits;
  PlacementScope where(model_->devices());
  const int64_t chunk = model_->prefill_chunk();
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t T = std::min(chunk, n - i0), TB = model_->bucket(T);
    Array tok = Array::empty({TB}, DType::Int32), pos = Array::empty({TB}, DType::Int32);
    Array start = Array::empty({}, DType::Int64), last = Array::empty({}, DType::Int32);
    for (int64_t t = 0; t < TB; ++t) {  // padding rows: token 0, later positions
      tok.data_as<int32_t>()[t] = t < T ? tokens[size_t(i0 + t)] : 0;
      pos.data_as<int32_t>()[t] = int32_t(pos_ + t);
    }
    *start.data_as<int64_t>() = pos_;
    *last.data_as<int32_t>() = int32_t(T - 1);
    auto out = model_->step_graph(TB).run({{"tokens", tok},
                                           {"pos", pos},
                                           {"start", start},
                                           {"last", last},
                                           {"k_cache", k_cache_},
                                           {"v_cache", v_cache_}});
    // Each layer's new rows into the cache, in place: [Hkv, T, D] (maybe strided) -> rows
    // [pos, pos + T) of layer l of [L, Hkv, C, D]; the padding rows are left out.
    const int64_t D = c.head_dim, C = model_->context(), Hkv = c.n_head_kv;
    const int64_t es = int64_t(dtype_size(model_->kv_type()));
    for (int64_t l = 0; l < c.n_layer; ++l)
      for (auto [name, cache] : {std::pair{"k_new.", &k_cache_}, std::pair{"v_new.", &v_cache_}}) {
        const Array& a = out.at(str(name, l));
        NEF_CHECK(a.dtype == cache->dtype, "[llm] ", name, l, " has the cache's type");
        const char* src = static_cast<const char*>(a.data());
        char* dst = static_cast<char*>(cache->data()) + l * Hkv * C * D * es;
        for (int64_t h = 0; h < Hkv; ++h)
          for (int64_t t = 0; t < T; ++t) {
            const char* s = src + (h * a.strides[0] + t * a.strides[1]) * es;
            char* d = dst + (h * C + pos_ + t) * D * es;
            if (a.strides[2] == 1) std::memcpy(d, s, size_t(D * es));
            else
              for (int64_t i = 0; i < D; ++i)
                std::memcpy(d + i * es, s + i * a.strides[2] * es, size_t(es));
          }
      }
    pos_ += T;
    if (i0 + T == n) {
      const Array lg = out.at("logits").contiguous();
      logits.assign(lg.data_as<float>(), lg.data_as<float>() + c.n_vocab);
    }
  }
  return logits;
}

}  // namespace nef::llm
