// Process-wide counters exposed as nef.stats(). Cache hit rates are a user-visible feature.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>

namespace nef::runtime {

struct Stats {
  std::atomic<int64_t> graphs_executed{0};
  std::atomic<int64_t> nodes_executed{0};
  std::atomic<int64_t> kernel_cache_hits{0};
  std::atomic<int64_t> kernel_cache_misses{0};
  std::atomic<int64_t> plan_cache_hits{0};
  std::atomic<int64_t> plan_cache_misses{0};
  std::atomic<int64_t> nodes_folded{0};
  std::atomic<int64_t> nodes_eliminated{0};
  std::atomic<int64_t> bytes_allocated{0};
  std::atomic<int64_t> embedded_plans_used{0};  // loads that used a .nef's embedded plan
};

Stats& stats();
std::map<std::string, int64_t> stats_snapshot();
void reset_stats();

}  // namespace nef::runtime
