// Sampling and the generation loop.
#include "llm/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "nef/error.h"

namespace nef::llm {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {
  auto bad = [](const char* what, double v) {
    throw ValidationError(str("[generate] ", what, " = ", v, " is out of range"));
  };
  if (!std::isfinite(p.temperature)) bad("temperature", p.temperature);
  if (p.top_k < 0) bad("top_k", double(p.top_k));
  if (!(p.top_p > 0 && p.top_p <= 1)) bad("top_p (0 < top_p <= 1)", p.top_p);
  if (!(p.min_p >= 0 && p.min_p <= 1)) bad("min_p (0 <= min_p <= 1)", p.min_p);
  if (!(p.repeat_penalty > 0) || !std::isfinite(p.repeat_penalty))
    bad("repeat_penalty (> 0)", p.repeat_penalty);
  if (p.repeat_last_n < 0) bad("repeat_last_n", double(p.repeat_last_n));
}

int32_t Sampler::sample(std::vector<float> logits, const std::vector<int32_t>& history) {
  const int32_t n = int32_t(logits.size());
  if (n == 0) throw ValidationError("[generate] no logits to sample from");
  // Repetition penalty over the recent window (as llama.cpp: divide positive logits, multiply
  // negative ones), each token once.
  if (p_.repeat_penalty != 1.0 && p_.repeat_last_n > 0) {
    std::vector<bool> seen(size_t(n), false);
    const size_t from =
        history.size() > size_t(p_.repeat_last_n) ? history.size() - size_t(p_.repeat_last_n) : 0;
    for (size_t i = from; i < history.size(); ++i) {
      const int32_t t = history[i];
      if (t < 0 || t >= n || seen[size_t(t)]) continue;
      seen[size_t(t)] = true;
      float& l = logits[size_t(t)];
      l = l > 0 ? float(l / p_.repeat_penalty) : float(l * p_.repeat_penalty);
    }
  }
  if (p_.temperature <= 0)  // greedy: the first of the largest
    return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());

  // Candidates sorted by logit (top-k first, so sorting stays cheap).
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = p_.top_k > 0 ? std::min<int64_t>(p_.top_k, n) : n;
  auto by_logit = [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] ||
           (logits[size_t(a)] == logits[size_t(b)] && a < b);
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_logit);
  idx.resize(size_t(k));
  std::vector<double> prob(idx.size());
  const double top = logits[size_t(idx[0])];
  double total = 0;
  for (size_t i = 0; i < idx.size(); ++i) {
    prob[i] = std::exp((double(logits[size_t(idx[i])]) - top) / p_.temperature);
    total += prob[i];
  }
  size_t keep = idx.size();
  if (p_.top_p < 1) {
    double cum = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
      cum += prob[i] / total;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0) {
    const double cut = p_.min_p * prob[0];
    size_t i = 1;
    while (i < keep && prob[i] >= cut) ++i;
    keep = i;
  }
  double kept = 0;
  for (size_t i = 0; i < keep; ++i) kept += prob[i];
  const double u = std::uniform_real_distribution<double>(0.0, kept)(rng_);
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += prob[i];
    if (u < cum) return idx[i];
  }
  return idx[keep - 1];
}

Generation::Generation(std::shared_ptr<const Model> model, const std::string& prompt,
                       const GenerateOptions& opts)
    : model_(model),
      session_(model),
      opts_(opts),
      sampler_(opts.sampling),
      decoder_(model->tokenizer(), /*skip_special=*/true),
      stops_(opts.stop) {
  if (opts.max_tokens < 0)
    throw ValidationError(str("[generate] max_tokens = ", opts.max_tokens, " is negative"));
  prompt_ = model_->tokenizer().encode(prompt, /*parse_special=*/true, /*add_special=*/true);
  if (prompt_.empty()) throw ValidationError("[generate] the prompt encodes to no tokens");
  if (int64_t(prompt_.size()) >= model_->context())
    throw ValidationError(str("[generate] the prompt's ", prompt_.size(),
                              " tokens fill the context of ", model_->context()));
}

Generation Generation::chat(std::shared_ptr<const Model> model,
                            const std::vector<ChatMessage>& messages, GenerateOptions opts) {
  const std::string& src = model->config().chat_template;
  if (src.empty())
    throw UnsupportedError(str("[generate] ", model->config().name, " has no chat template"));
  ChatTemplate tpl(src);
  if (!tpl.end_of_turn().empty()) opts.stop.push_back(tpl.end_of_turn());
  return Generation(std::move(model), tpl.apply(messages, true), opts);
}

std::string Generation::finish(const char* reason) {
  done_ = true;
  stats_.stop_reason = reason;
  if (stops_.stopped()) return "";
  std::string rest = stops_.push(decoder_.flush()).text;
  if (!stops_.stopped()) rest += stops_.flush();
  return rest;
}

std::optional<std::string> Generation::next() {
  if (done_) return std::nullopt;
  const auto t0 = std::chrono::steady_clock::now();
  if (!started_) {
    started_ = true;
    stats_.prompt_tokens = int64_t(prompt_.size());
    logits_ = session_.eval(prompt_);
    stats_.prompt_seconds = seconds_since(t0);
  } else {
    const char* reason = int64_t(generated_.size()) >= opts_.max_tokens ? "max_tokens"
                         : session_.position() >= model_->context()     ? "context"
                                                                        : nullptr;
    if (reason) {
      std::string rest = finish(reason);
      return rest.empty() ? std::nullopt : std::optional<std::string>(rest);
    }
    logits_ = session_.eval(std::span<const int32_t>(&generated_.back(), 1));
    stats_.decode_seconds += seconds_since(t0);
  }
  if (opts_.max_tokens == 0) {
    std::string rest = finish("max_tokens");
    return rest.empty() ? std::nullopt : std::optional<std::string>(rest);
  }
  std::vector<int32_t> history = prompt_;
  history.insert(history.end(), generated_.begin(), generated_.end());
  const int32_t tok = sampler_.sample(std::move(logits_), history);
  generated_.push_back(tok);
  stats_.generated_tokens = int64_t(generated_.size());
  if (!opts_.ignore_eos && model_->tokenizer().is_eog(tok)) {
    std::string rest = finish("eos");
    return rest.empty() ? std::nullopt : std::optional<std::string>(rest);
  }
  StopStrings::Result r = stops_.push(decoder_.push(tok));
  if (r.stopped) {
    done_ = true;
    stats_.stop_reason = "stop_string";
    return r.text.empty() ? std::nullopt : std::optional<std::string>(r.text);
  }
  return r.text;
}

}  // namespace nef::llm
