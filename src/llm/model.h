// Language models from GGUF files as NEF graphs: the Llama family (llama, mistral
// architectures: RMSNorm, RoPE, grouped-query attention, SwiGLU, tied or separate output).
//
// A Model owns the mapped file (weights stay in the mapping: quantized matrices run through
// qmatmul as they lie in the file) and the tokenizer. A Session is one sequence: its key/value
// cache lives in two persistent host arrays [layers, kv_heads, context, head_dim] that the step
// graph reads (cached_attention) and the session updates in place after each step with the new
// rows the graph returns. The step graph takes tokens, positions and the start position as
// inputs, so one captured graph per chunk length is compiled once and replayed for every
// position: decoding runs one plan, with zero kernel compiles after the first token. Prompt
// chunks are padded to a few bucket lengths (the logits row is an input too), so prompts of any
// length reuse the plans compiled at load.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "llm/tokenizer.h"
#include "nef/tensor.h"

namespace nef::llm {

struct ModelConfig {
  std::string arch;  // general.architecture
  std::string name;  // general.name, or the file name
  int64_t n_layer = 0, n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t n_vocab = 0, n_ctx_train = 0, rope_dims = 0;
  double rope_base = 10000.0, rms_eps = 1e-5;
  std::string rope_mode;      // rope op mode: "interleaved" for GGUF Llama (its q/k are permuted)
  std::string chat_template;  // tokenizer.chat_template ("" when absent)
};

struct LoadOptions {
  int64_t context = 0;          // KV-cache capacity in tokens; 0: min(trained context, 4096)
  int64_t prefill_chunk = 128;  // prompt tokens per step graph run, at most
  // Where the step graphs run (backend::DeviceScope names). The CPU by default: its backend
  // alone has the quantized-matmul and cached-attention kernels, and naming only it leaves the
  // other backends' drivers unloaded (PoCL's LLVM alone is 64 MB of resident memory).
  std::vector<std::string> devices = {"cpu"};
  // The KV cache's element type: Float16 (as llama.cpp keeps it: half the memory and bandwidth;
  // keys and values are rounded to it before attention, the new rows too) or Float32.
  DType kv_type = DType::Float16;
};

class Model {
 public:
  // Reads and checks the file (FormatError for a malformed one; UnsupportedError naming the
  // architecture, tensor type or tokenizer model NEF cannot run; ValidationError for a missing
  // tensor or one with another shape than the metadata implies).
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& opts = {});

  const ModelConfig& config() const { return cfg_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const format::GgufFile& file() const { return *file_; }
  int64_t context() const { return context_; }
  int64_t prefill_chunk() const { return chunk_; }
  const std::vector<std::string>& devices() const { return devices_; }
  DType kv_type() const { return kv_type_; }

  // The step graph for chunks of T tokens (built and captured on first use, then shared):
  // inputs tokens int32 [T], pos int32 [T], start int64 [], last int32 [] (the row whose logits
  // are wanted), k_cache / v_cache kv_type [layers, kv_heads, context, head_dim]; outputs
  // logits float32 [1, vocab] and, per layer l, k_new.l / v_new.l kv_type [kv_heads, T,
  // head_dim] (possibly strided views).
  const LoadedGraph& step_graph(int64_t T) const;
  // The chunk length that runs n (<= prefill_chunk) tokens: the smallest bucket (1, 16, 32,
  // 64, ... doubling, prefill_chunk) that holds them; the rows past n are padding.
  int64_t bucket(int64_t n) const;

 private:
  Model() = default;
  struct Weight {
    Tensor t;
    std::string format;  // quantized format name, "" for a float matrix
  };
  Weight weight(const std::string& name, const Shape& expect) const;
  Tensor linear(const Tensor& x, const Weight& w) const;
  LoadedGraph build_step(int64_t T) const;

  std::optional<format::GgufFile> file_;  // set by load()
  ModelConfig cfg_;
  std::unique_ptr<Tokenizer> tokenizer_;
  int64_t context_ = 0, chunk_ = 0;
  std::vector<std::string> devices_;
  DType kv_type_ = DType::Float16;
  mutable std::mutex mu_;
  mutable std::map<int64_t, LoadedGraph> steps_;
};

// One sequence over a Model: the KV cache and the position. Not thread-safe (one sequence is
// one stream of steps); several sessions may share a model from different threads.
class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  const Model& model() const { return *model_; }
  int64_t position() const { return pos_; }
  // Runs `tokens` at positions [position(), position() + n) in chunks of the model's
  // prefill_chunk, appends their keys and values to the cache and returns the logits after the
  // last token ([vocab] float32). ValidationError when the cache cannot hold them (naming the
  // context) or a token id is out of range.
  std::vector<float> eval(std::span<const int32_t> tokens);
  // Forgets everything from position `pos` on (0: a fresh sequence).
  void truncate(int64_t pos = 0);

 private:
  std::shared_ptr<const Model> model_;
  Array k_cache_, v_cache_;
  int64_t pos_ = 0;
};

}  // namespace nef::llm
