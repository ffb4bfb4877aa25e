#include "compiler/kernel_cache.h"

#include <list>
#include <mutex>
#include <unordered_map>

#include "common/session.h"

namespace nef::compiler {
namespace {

using KernelPtr = std::shared_ptr<const backend::Kernel>;

// What a compiled kernel depends on, stored with it and compared field by field on a lookup
// (no key text is built: a hit allocates nothing).
struct Key {
  std::string device;  // id
  std::string config;  // Device::config_key()
  const ir::OpDef* op;
  ir::Attrs attrs;
  std::vector<ir::TensorType> inputs;
  ir::TensorType out;
};

bool same_type(const ir::TensorType& a, const ir::TensorType& b) {
  return a.dtype == b.dtype && a.shape == b.shape;
}

bool matches(const Key& k, const DeviceKey& dev, const ir::Node& node, const ir::Graph& g) {
  if (k.op != node.op || k.inputs.size() != node.inputs.size() || !same_type(k.out, node.type) ||
      k.device != dev.id || k.config != dev.config || !(k.attrs == node.attrs))
    return false;
  for (size_t i = 0; i < k.inputs.size(); ++i)
    if (!same_type(k.inputs[i], g.nodes[node.inputs[i]].type)) return false;
  return true;
}

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}
uint64_t mix_type(uint64_t h, const ir::TensorType& t) {
  h = mix(h, uint64_t(t.dtype) | (uint64_t(t.shape.size()) << 8));
  for (int64_t d : t.shape) h = mix(h, uint64_t(d));
  return h;
}

uint64_t key_hash(const DeviceKey& dev, const ir::Node& node, const ir::Graph& g) {
  uint64_t h = mix(dev.hash, reinterpret_cast<uintptr_t>(node.op));
  h = mix(h, node.attrs.hash());
  for (int in : node.inputs) h = mix_type(h, g.nodes[in].type);
  return mix_type(h, node.type);
}

struct Entry {
  uint64_t hash;
  Key key;
  KernelPtr kernel;
};
struct Cache {
  std::mutex mu;
  std::list<Entry> lru;  // front = newest
  std::unordered_multimap<uint64_t, decltype(lru)::iterator> index;
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: plans hold kernels until exit
  return *c;
}

// The entry for (dev, node) in index, or end.
decltype(Cache::index)::iterator find(Cache& c, uint64_t h, const DeviceKey& dev,
                                      const ir::Node& node, const ir::Graph& g) {
  auto [first, last] = c.index.equal_range(h);
  for (auto it = first; it != last; ++it)
    if (matches(it->second->key, dev, node, g)) return it;
  return c.index.end();
}

}  // namespace

DeviceKey device_key_of(const backend::Device& dev) {
  DeviceKey k{dev.id(), dev.config_key(), 0};
  k.hash = std::hash<std::string>()(k.id) * 31 + std::hash<std::string>()(k.config);
  return k;
}

std::shared_ptr<const backend::Kernel> get_kernel(const backend::Device& dev, const DeviceKey& dk,
                                                  const ir::Node& node, const ir::Graph& g,
                                                  bool* miss) {
  const uint64_t h = key_hash(dk, node, g);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = find(c, h, dk, node, g);
    if (it != c.index.end()) {
      c.lru.splice(c.lru.begin(), c.lru, it->second);
      counters().kernel_cache_hits++;
      if (miss) *miss = false;
      return it->second->kernel;
    }
  }
  KernelPtr kernel = dev.compile(node, g);
  counters().kernel_cache_misses++;
  if (miss) *miss = true;
  std::lock_guard<std::mutex> lock(c.mu);
  if (find(c, h, dk, node, g) != c.index.end()) return kernel;  // compiled concurrently
  c.lru.push_front(
      {h, Key{dk.id, dk.config, node.op, node.attrs, g.input_types(node), node.type}, kernel});
  c.index.emplace(h, c.lru.begin());
  if (c.lru.size() > kKernelCacheCapacity) {
    auto [first, last] = c.index.equal_range(c.lru.back().hash);
    for (auto it = first; it != last; ++it)
      if (it->second == std::prev(c.lru.end())) {
        c.index.erase(it);
        break;
      }
    c.lru.pop_back();
  }
  return kernel;
}

void clear_kernel_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.lru.clear();
  c.index.clear();
}

size_t kernel_cache_entries() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.lru.size();
}

}  // namespace nef::compiler
