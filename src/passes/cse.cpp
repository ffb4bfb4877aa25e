// Common-subexpression elimination: nodes with the same op, attributes, inputs (after merging),
// type and device hint compute the same value and are merged into the first one. Random ops
// are included (their output is a function of the seed attribute). Graph inputs never merge;
// constants merge when they view the same storage the same way, or are small (<= 64 bytes)
// and bytewise equal. Users and outputs are rewired; dce removes the dead copies.
//
// One pass in node order over an open-addressing table of node hashes (no key strings):
// candidates with equal hashes are confirmed with full equality.
#include <cstring>

#include "passes/pass.h"

namespace nef::passes {
namespace {

constexpr size_t kCompareBytesMax = 64;

bool same_constant(const Array& a, const Array& b) {
  if (a.dtype != b.dtype || a.shape != b.shape) return false;
  if (a.storage == b.storage && a.offset == b.offset && a.strides == b.strides) return true;
  if (a.nbytes() > kCompareBytesMax) return false;
  Array x = a.contiguous(), y = b.contiguous();
  return a.nbytes() == 0 || std::memcmp(x.data(), y.data(), a.nbytes()) == 0;
}

bool same_node(const ir::Node& a, const ir::Node& b) {
  if (a.op != b.op || a.inputs != b.inputs || !(a.type == b.type) || a.type.weak != b.type.weak ||
      a.device_hint != b.device_hint || !(a.attrs == b.attrs))
    return false;
  if (a.constant || b.constant)
    return a.constant && b.constant && same_constant(*a.constant, *b.constant);
  return true;
}

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

// Equal for nodes same_node may call equal: small constants by bytes, larger ones by view.
uint64_t node_hash(const ir::Node& n) {
  uint64_t h = mix(reinterpret_cast<uintptr_t>(n.op), n.attrs.hash());
  for (int in : n.inputs) h = mix(h, uint64_t(in));
  h = mix(h, uint64_t(n.type.dtype) | (uint64_t(n.type.weak) << 8));
  for (int64_t d : n.type.shape) h = mix(h, uint64_t(d));
  if (n.constant) {
    const Array& c = *n.constant;
    if (c.nbytes() <= kCompareBytesMax) {
      Array x = c.contiguous();
      uint64_t w[kCompareBytesMax / 8] = {};
      if (c.nbytes()) std::memcpy(w, x.data(), c.nbytes());
      for (size_t k = 0; k < (c.nbytes() + 7) / 8; ++k) h = mix(h, w[k]);
    } else {
      h = mix(h, reinterpret_cast<uintptr_t>(c.storage.get()) ^ uint64_t(c.offset));
    }
  }
  return h ^ (h >> 29);
}

}  // namespace

void common_subexpression_elimination(ir::Graph& g, const PassContext& ctx) {
  const size_t n = g.nodes.size();
  std::vector<int> canon(n);
  std::vector<uint64_t> hash(n);
  size_t cap = 64;
  while (cap < 2 * n) cap *= 2;
  std::vector<int> table(cap, -1);  // representatives by hash, linear probing
  for (size_t i = 0; i < n; ++i) {
    ir::Node& node = g.nodes[i];
    canon[i] = static_cast<int>(i);
    // Inputs precede their users, so they already point to their representative.
    for (int& in : node.inputs) in = canon[in];
    if (node.is("input")) continue;
    hash[i] = node_hash(node);
    for (size_t s = hash[i] & (cap - 1);; s = (s + 1) & (cap - 1)) {
      const int j = table[s];
      if (j < 0) {
        table[s] = static_cast<int>(i);
        break;
      }
      if (hash[j] == hash[i] && same_node(g.nodes[j], node)) {
        canon[i] = j;
        break;
      }
    }
  }
  for (int& o : g.outputs) o = canon[o];
}

}  // namespace nef::passes
