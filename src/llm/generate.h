// Text generation over a Session: sampling (greedy, temperature, top-k, top-p, min-p,
// repetition penalty, seeded), stop tokens and stop strings, and a pull-style stream of text
// pieces (one per generated token, as it is produced: the Python iterator, the CLI and the C
// API's callback all drive it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "llm/chat_template.h"
#include "llm/model.h"
#include "llm/stop_strings.h"

namespace nef::llm {

struct SamplingParams {
  double temperature = 0.0;     // <= 0: greedy (argmax)
  int64_t top_k = 40;           // keep the k most likely (0: all)
  double top_p = 0.95;          // keep the smallest set with this much probability (1: all)
  double min_p = 0.05;          // drop tokens below min_p * the top probability (0: none)
  double repeat_penalty = 1.0;  // > 1 discourages tokens of the last repeat_last_n (1: off)
  int64_t repeat_last_n = 64;
  uint64_t seed = 0;
};

// Picks the next token from logits. Deterministic for a given seed and history.
class Sampler {
 public:
  // ValidationError for parameters out of range (temperature, top_p, min_p not finite or
  // outside their ranges, negative top_k, repeat_penalty <= 0).
  explicit Sampler(const SamplingParams& p);
  int32_t sample(std::vector<float> logits, const std::vector<int32_t>& history);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

struct GenerateOptions {
  int64_t max_tokens = 256;
  SamplingParams sampling;
  std::vector<std::string> stop;  // stop strings (never emitted)
  bool ignore_eos = false;        // keep going past end-of-generation tokens
};

struct GenerateStats {
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prompt_seconds = 0;  // prefill, to the first token's logits (time to first token)
  double decode_seconds = 0;  // the generated tokens after the first
  std::string stop_reason;    // "eos", "stop_string", "max_tokens", "context"
};

// One generation: evaluates the prompt on the first next(), then one token per next().
class Generation {
 public:
  // `prompt` is raw text (special tokens written in it are parsed).
  Generation(std::shared_ptr<const Model> model, const std::string& prompt,
             const GenerateOptions& opts);
  // The prompt of a conversation, rendered with the model's chat template (UnsupportedError
  // when the model has none NEF renders), with the template's end-of-turn as a stop string.
  static Generation chat(std::shared_ptr<const Model> model,
                         const std::vector<ChatMessage>& messages, GenerateOptions opts);
  // The text of the next generated token (possibly "" while a UTF-8 character or a possible
  // stop string is incomplete); nullopt when generation has ended (see stats().stop_reason).
  std::optional<std::string> next();
  const GenerateStats& stats() const { return stats_; }
  const std::vector<int32_t>& prompt_tokens() const { return prompt_; }
  const std::vector<int32_t>& tokens() const { return generated_; }  // generated ids

 private:
  std::string finish(const char* reason);

  std::shared_ptr<const Model> model_;
  Session session_;
  GenerateOptions opts_;
  Sampler sampler_;
  StreamDecoder decoder_;
  StopStrings stops_;
  std::vector<int32_t> prompt_, generated_;
  std::vector<float> logits_;
  GenerateStats stats_;
  bool started_ = false, done_ = false;
};

}  // namespace nef::llm
