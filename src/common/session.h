// A session: the counters (nef.stats()) and the configuration (threads, devices) that a run
// reads and updates. Every thread works in the default session unless a SessionScope selects
// another, so a daemon can give each client its own stats and settings while caches (plans,
// kernels, calibration) stay shared and bounded process-wide.
//
// Thread-safety: counters are atomic; configuration setters lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace nef {

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
  std::atomic<int64_t> embedded_plans_used{0};     // loads that used a .nef's embedded plan
  std::atomic<int64_t> transfers{0};               // copy steps executed between devices
  std::atomic<int64_t> bytes_transferred{0};       // bytes those copies moved (0 when mapped)
  std::atomic<int64_t> device_fallbacks{0};        // failure-ladder reroutes to another device
  std::atomic<int64_t> cache_evictions{0};         // cache entries dropped under memory pressure
  std::atomic<int64_t> gemm_prepacked{0};          // GEMMs that read a plan's prepacked constant B
  std::atomic<int64_t> gemm_prepack_fallbacks{0};  // prepacked B not applicable: packed per run

  std::map<std::string, int64_t> snapshot() const;
  void reset();
};

class Session {
 public:
  Stats& stats() { return stats_; }
  const Stats& stats() const { return stats_; }

  // Threads the CPU backend may use; 0 means one per core.
  int threads() const { return threads_.load(std::memory_order_relaxed); }
  void set_threads(int n) { threads_.store(n < 0 ? 0 : n, std::memory_order_relaxed); }

  // Device instance ids the planner may use (already resolved by the backend registry), or
  // nullopt to defer to NEF_DEVICES / all devices.
  std::optional<std::vector<std::string>> devices() const;
  void set_devices(std::optional<std::vector<std::string>> names);

 private:
  Stats stats_;
  std::atomic<int> threads_{0};
  mutable std::mutex mu_;
  std::optional<std::vector<std::string>> devices_;
};

// The process's default session.
Session& default_session();
// The calling thread's session: the innermost SessionScope's, else the default.
Session& current_session();
inline Stats& counters() { return current_session().stats(); }

// Makes `s` the calling thread's session until the scope ends (scopes nest).
class SessionScope {
 public:
  explicit SessionScope(Session& s);
  ~SessionScope();
  SessionScope(const SessionScope&) = delete;
  SessionScope& operator=(const SessionScope&) = delete;

 private:
  Session* previous_;
};

}  // namespace nef
