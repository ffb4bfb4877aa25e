#include "runtime/arena_pool.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace nef::runtime {
namespace {

struct Pool {
  std::mutex mu;
  // Devices live for the whole process, so their addresses are stable keys.
  std::map<const backend::Device*, std::vector<std::shared_ptr<Storage>>> idle;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: runs may end during static destruction
  return *p;
}

}  // namespace

std::shared_ptr<Storage> take_arena(const backend::Device& dev, size_t nbytes) {
  std::vector<std::shared_ptr<Storage>> dropped;  // freed outside the lock
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  auto it = p.idle.find(&dev);
  if (it == p.idle.end()) return nullptr;
  auto& list = it->second;
  auto best = list.end();
  for (auto a = list.begin(); a != list.end(); ++a)
    if ((*a)->nbytes() >= nbytes && (best == list.end() || (*a)->nbytes() < (*best)->nbytes()))
      best = a;
  if (best == list.end()) {
    // The caller allocates a larger arena, which will serve the plans of these smaller ones
    // once it is idle: dropping them keeps a sequence of growing plans at its largest arena.
    for (auto& a : list) dropped.push_back(std::move(a));
    list.clear();
    return nullptr;
  }
  std::shared_ptr<Storage> out = std::move(*best);
  list.erase(best);
  return out;
}

void give_back_arena(const backend::Device& dev, std::shared_ptr<Storage> arena) {
  if (!arena) return;
  std::shared_ptr<Storage> dropped;  // freed outside the lock
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  auto& list = p.idle[&dev];
  list.push_back(std::move(arena));
  if (static_cast<int>(list.size()) > kMaxIdlePerDevice) {
    auto smallest = std::min_element(list.begin(), list.end(), [](const auto& a, const auto& b) {
      return a->nbytes() < b->nbytes();
    });
    dropped = std::move(*smallest);
    list.erase(smallest);
  }
}

int64_t evict_idle_arenas() {
  std::vector<std::shared_ptr<Storage>> dropped;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    for (auto& [dev, list] : p.idle)
      for (auto& a : list) dropped.push_back(std::move(a));
    p.idle.clear();
  }
  int64_t freed = 0;
  for (const auto& a : dropped) freed += int64_t(a->nbytes());
  return freed;
}

int64_t idle_arena_bytes() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  int64_t n = 0;
  for (const auto& [dev, list] : p.idle)
    for (const auto& a : list) n += int64_t(a->nbytes());
  return n;
}

}  // namespace nef::runtime
