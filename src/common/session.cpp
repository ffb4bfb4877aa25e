#include "common/session.h"

namespace nef {
namespace {
thread_local Session* t_session = nullptr;
}

std::map<std::string, int64_t> Stats::snapshot() const {
  return {{"graphs_executed", graphs_executed.load()},
          {"nodes_executed", nodes_executed.load()},
          {"kernel_cache_hits", kernel_cache_hits.load()},
          {"kernel_cache_misses", kernel_cache_misses.load()},
          {"plan_cache_hits", plan_cache_hits.load()},
          {"plan_cache_misses", plan_cache_misses.load()},
          {"nodes_folded", nodes_folded.load()},
          {"nodes_eliminated", nodes_eliminated.load()},
          {"bytes_allocated", bytes_allocated.load()},
          {"embedded_plans_used", embedded_plans_used.load()},
          {"transfers", transfers.load()},
          {"bytes_transferred", bytes_transferred.load()},
          {"device_fallbacks", device_fallbacks.load()},
          {"cache_evictions", cache_evictions.load()},
          {"gemm_prepacked", gemm_prepacked.load()},
          {"gemm_prepack_fallbacks", gemm_prepack_fallbacks.load()}};
}

void Stats::reset() {
  for (auto* c : {&graphs_executed, &nodes_executed, &kernel_cache_hits, &kernel_cache_misses,
                  &plan_cache_hits, &plan_cache_misses, &nodes_folded, &nodes_eliminated,
                  &bytes_allocated, &embedded_plans_used, &transfers, &bytes_transferred,
                  &device_fallbacks, &cache_evictions, &gemm_prepacked, &gemm_prepack_fallbacks})
    c->store(0);
}

std::optional<std::vector<std::string>> Session::devices() const {
  std::lock_guard<std::mutex> lock(mu_);
  return devices_;
}

void Session::set_devices(std::optional<std::vector<std::string>> names) {
  std::lock_guard<std::mutex> lock(mu_);
  devices_ = std::move(names);
}

Session& default_session() {
  static Session* s = new Session();  // never destroyed: used by threads until exit
  return *s;
}

Session& current_session() { return t_session ? *t_session : default_session(); }

SessionScope::SessionScope(Session& s) : previous_(t_session) { t_session = &s; }
SessionScope::~SessionScope() { t_session = previous_; }

}  // namespace nef
