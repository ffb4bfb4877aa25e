#include <cstdio>
#include <cstdlib>

#include "passes/pass.h"

namespace nef::passes {

const std::vector<PassInfo>& pipeline() {
  static const std::vector<PassInfo> passes = {
      {"dce", dead_node_elimination},
      {"simplify", simplify},
      {"patterns", recognize_patterns},
      {"cse", common_subexpression_elimination},
      {"constant_folding", constant_folding},
      {"fold_matmul_scale", fold_matmul_scale},  // after folding made W and s constants
      {"fold_conv_scale", fold_conv_scale},      // conv -> batch norm (same conditions)
      {"dce", dead_node_elimination},
  };
  return passes;
}

const std::vector<PassInfo>& device_pipeline() {
  static const std::vector<PassInfo> passes = {
      {"fuse_epilogue", fuse_epilogue},  // before fuse_elementwise takes the chain
      {"fuse_elementwise", fuse_elementwise},
      {"dce", dead_node_elimination},
  };
  return passes;
}

void run_passes(const std::vector<PassInfo>& list, ir::Graph& g, const PassContext& ctx,
                std::vector<std::pair<std::string, std::string>>* dumps) {
  static const bool dump_env = [] {
    const char* v = std::getenv("NEF_DUMP_PASSES");
    return v && *v && std::string(v) != "0";
  }();
  for (const PassInfo& p : list) {
    p.run(g, ctx);
    if (dump_env || dumps) {
      std::string text = ir::to_text(g);
      if (dump_env) std::fprintf(stderr, "--- after %s ---\n%s", p.name, text.c_str());
      if (dumps) dumps->emplace_back(p.name, std::move(text));
    }
  }
}

}  // namespace nef::passes
