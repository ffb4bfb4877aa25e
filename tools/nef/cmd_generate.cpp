// `nef generate MODEL.gguf --prompt TEXT [--chat] ...`: streams the model's text to stdout as it
// is generated, then prints prompt and decode speed to stderr.
#include <cstdio>
#include <iostream>

#include "cli.h"
#include "llm/generate.h"

namespace nef::cli {

int cmd_generate(const GenerateCliOptions& o) {
  llm::LoadOptions load;
  load.context = o.context;
  auto model = llm::Model::load(o.model, load);
  llm::GenerateOptions g;
  g.max_tokens = o.max_tokens;
  g.sampling.temperature = o.temperature;
  g.sampling.top_k = o.top_k;
  g.sampling.top_p = o.top_p;
  g.sampling.min_p = o.min_p;
  g.sampling.repeat_penalty = o.repeat_penalty;
  g.sampling.seed = o.seed;
  g.stop = o.stop;
  llm::Generation gen = o.chat ? llm::Generation::chat(model, {{"user", o.prompt}}, g)
                               : llm::Generation(model, o.prompt, g);
  if (!o.chat) std::cout << o.prompt << std::flush;
  while (auto piece = gen.next()) std::cout << *piece << std::flush;
  std::cout << std::endl;
  const llm::GenerateStats& s = gen.stats();
  const int64_t decoded = s.generated_tokens > 0 ? s.generated_tokens - 1 : 0;
  std::fprintf(stderr,
               "[nef generate] %s: prompt %lld tokens in %.3f s (%.1f tokens/s, time to first "
               "token %.3f s); generated %lld tokens, %.1f tokens/s; stop: %s\n",
               model->config().name.c_str(), (long long)s.prompt_tokens, s.prompt_seconds,
               s.prompt_seconds > 0 ? double(s.prompt_tokens) / s.prompt_seconds : 0.0,
               s.prompt_seconds, (long long)s.generated_tokens,
               s.decode_seconds > 0 ? double(decoded) / s.decode_seconds : 0.0,
               s.stop_reason.c_str());
  return 0;
}

}  // namespace nef::cli
