#include "compiler/kernel_cache.h"

#include <charconv>
#include <list>
#include <mutex>
#include <unordered_map>

#include "common/session.h"

namespace nef::compiler {
namespace {

using KernelPtr = std::shared_ptr<const backend::Kernel>;
struct Cache {
  std::mutex mu;
  std::list<std::pair<std::string, KernelPtr>> lru;  // front = newest
  std::unordered_map<std::string, decltype(lru)::iterator> index;
};
Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: plans hold kernels until exit
  return *c;
}

// "(2,3)float32" appended in place: no temporary strings or type vectors per key.
void append_type(std::string& k, const ir::TensorType& t) {
  char buf[24];
  k += '(';
  for (int64_t d : t.shape) {
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    k.append(buf, r.ptr);
    k += ',';
  }
  k += ')';
  k += dtype_name(t.dtype);
}

}  // namespace

std::string kernel_key(const backend::Device& dev, const ir::Node& node, const ir::Graph& g) {
  std::string k;
  k.reserve(96);
  k += dev.id();
  k += '/';
  k += dev.config_key();
  k += '|';
  k += node.op->name;
  k += '|';
  if (!node.attrs.values().empty()) k += node.attrs.canonical();
  k += '|';
  for (int in : node.inputs) {
    append_type(k, g.nodes[in].type);
    k += ';';
  }
  k += "->";
  append_type(k, node.type);
  return k;
}

std::shared_ptr<const backend::Kernel> get_kernel(const backend::Device& dev, const ir::Node& node,
                                                  const ir::Graph& g, bool* miss) {
  std::string key = kernel_key(dev, node, g);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.index.find(key);
    if (it != c.index.end()) {
      c.lru.splice(c.lru.begin(), c.lru, it->second);
      counters().kernel_cache_hits++;
      if (miss) *miss = false;
      return it->second->second;
    }
  }
  KernelPtr kernel = dev.compile(node, g);
  counters().kernel_cache_misses++;
  if (miss) *miss = true;
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.index.count(key)) return kernel;  // compiled concurrently: either one serves
  c.lru.emplace_front(std::move(key), kernel);
  c.index[c.lru.front().first] = c.lru.begin();
  if (c.lru.size() > kKernelCacheCapacity) {
    c.index.erase(c.lru.back().first);
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
