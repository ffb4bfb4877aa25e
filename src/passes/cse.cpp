// Common-subexpression elimination: nodes with the same op, attributes, inputs (after merging),
// type and device hint compute the same value and are merged into the first one. Random ops
// are included (their output is a function of the seed attribute). Graph inputs never merge;
// constants merge when they view the same storage the same way, or are small (<= 64 bytes)
// and bytewise equal. Users and outputs are rewired; dce removes the dead copies.
#include <cstring>
#include <unordered_map>

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

// Cheap bucket key; candidates in a bucket are confirmed with full equality.
std::string bucket_key(const ir::Node& n) {
  std::string k = n.op->name;
  k += '(';
  for (int in : n.inputs) k += std::to_string(in) + ',';
  k += ')';
  k += shape_str(n.type.shape);
  k += dtype_name(n.type.dtype);
  if (n.constant && n.constant->nbytes() <= kCompareBytesMax) {
    Array c = n.constant->contiguous();
    k.append(static_cast<const char*>(c.data()), c.nbytes());
  }
  return k;
}

bool same_node(const ir::Node& a, const ir::Node& b) {
  if (a.op != b.op || a.inputs != b.inputs || !(a.type == b.type) || a.type.weak != b.type.weak ||
      a.device_hint != b.device_hint || !(a.attrs == b.attrs))
    return false;
  if (a.constant || b.constant)
    return a.constant && b.constant && same_constant(*a.constant, *b.constant);
  return true;
}

}  // namespace

void common_subexpression_elimination(ir::Graph& g, const PassContext& ctx) {
  std::vector<int> canon(g.nodes.size());
  std::unordered_map<std::string, std::vector<int>> buckets;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    canon[i] = static_cast<int>(i);
    // Inputs precede their users, so they already point to their representative.
    for (int& in : n.inputs) in = canon[in];
    if (n.is("input")) continue;
    std::vector<int>& bucket = buckets[bucket_key(n)];
    for (int j : bucket)
      if (same_node(g.nodes[j], n)) {
        canon[i] = j;
        break;
      }
    if (canon[i] == static_cast<int>(i)) bucket.push_back(static_cast<int>(i));
  }
  for (int& o : g.outputs) o = canon[o];
}

}  // namespace nef::passes
