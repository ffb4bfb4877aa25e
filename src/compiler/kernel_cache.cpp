#include "compiler/kernel_cache.h"

#include <charconv>
#include <mutex>
#include <unordered_map>

#include "runtime/stats.h"

namespace nef::compiler {
namespace {
std::mutex mu;
std::unordered_map<std::string, std::shared_ptr<const backend::Kernel>>& cache() {
  static std::unordered_map<std::string, std::shared_ptr<const backend::Kernel>> c;
  return c;
}
}  // namespace

namespace {
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

std::string kernel_key(const backend::Backend& be, const ir::Node& node, const ir::Graph& g) {
  std::string k;
  k.reserve(96);
  k += be.name();
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

std::shared_ptr<const backend::Kernel> get_kernel(const backend::Backend& be, const ir::Node& node,
                                                  const ir::Graph& g, bool* miss) {
  std::string key = kernel_key(be, node, g);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache().find(key);
    if (it != cache().end()) {
      runtime::stats().kernel_cache_hits++;
      if (miss) *miss = false;
      return it->second;
    }
  }
  auto kernel = be.compile(node, g);
  runtime::stats().kernel_cache_misses++;
  if (miss) *miss = true;
  std::lock_guard<std::mutex> lock(mu);
  cache().emplace(std::move(key), kernel);
  return kernel;
}

void clear_kernel_cache() {
  std::lock_guard<std::mutex> lock(mu);
  cache().clear();
}

size_t kernel_cache_entries() {
  std::lock_guard<std::mutex> lock(mu);
  return cache().size();
}

}  // namespace nef::compiler
