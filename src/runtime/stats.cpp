#include "runtime/stats.h"

namespace nef::runtime {

Stats& stats() {
  static Stats s;
  return s;
}

std::map<std::string, int64_t> stats_snapshot() {
  Stats& s = stats();
  return {{"graphs_executed", s.graphs_executed.load()},
          {"nodes_executed", s.nodes_executed.load()},
          {"kernel_cache_hits", s.kernel_cache_hits.load()},
          {"kernel_cache_misses", s.kernel_cache_misses.load()},
          {"plan_cache_hits", s.plan_cache_hits.load()},
          {"plan_cache_misses", s.plan_cache_misses.load()},
          {"nodes_folded", s.nodes_folded.load()},
          {"nodes_eliminated", s.nodes_eliminated.load()},
          {"bytes_allocated", s.bytes_allocated.load()},
          {"embedded_plans_used", s.embedded_plans_used.load()}};
}

void reset_stats() {
  Stats& s = stats();
  for (auto* c : {&s.graphs_executed, &s.nodes_executed, &s.kernel_cache_hits,
                  &s.kernel_cache_misses, &s.plan_cache_hits, &s.plan_cache_misses,
                  &s.nodes_folded, &s.nodes_eliminated, &s.bytes_allocated, &s.embedded_plans_used})
    c->store(0);
}

}  // namespace nef::runtime
