// The one walk of a lazy DAG that both keys it for the plan cache and builds its ir::Graph
// (graph_builder.cpp). Internal to api/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/lazy.h"

namespace nef::detail {

enum WalkKind : uint8_t { kOp = 0, kBound = 1, kLiteral = 2, kPlaceholder = 3 };

// The reachable DAG in post-order (inputs in order, so the order is deterministic; it is the
// graph's node order), how each node enters the graph, the wiring, and its exact canonical form
// in three flat arrays that are compared with memcmp on a cache hit:
//   tokens: per node, its kind | a has-hint flag | (op nodes) the OpDef address, then (op nodes)
//           the identity of its interned attributes;
//   inputs/in_begin: input positions of op nodes;
//   data:   what leaves and hints add: leaf types (dtype, weak, rank, dims), literal values (by
//           value up to 64 bytes, else by storage identity), the device a bound value lives on
//           when not the host, and device hints (length-prefixed bytes).
// Addresses stand for themselves exactly because a cached signature holds the interned
// attributes alive (OpDefs live forever), so no other body can take their address meanwhile.
// Open-addressing map LazyNode* -> position in the walk: no allocation per node.
class NodeIndex {
 public:
  void reset(size_t expect);          // empty, room for `expect` entries
  int find(const LazyNode* p) const;  // -1 if absent
  void insert(const LazyNode* p, int v);
  size_t size() const { return size_; }

 private:
  static size_t slot(const LazyNode* p);
  std::vector<std::pair<const LazyNode*, int>> slots_;
  size_t size_ = 0;
};

struct Walk {
  std::vector<LazyNode*> order;
  std::vector<uint8_t> kind;
  std::vector<uint64_t> tokens;
  std::vector<int> in_begin;  // order.size() + 1 offsets into `inputs`
  std::vector<int> inputs;    // positions in `order`
  std::vector<uint64_t> data;
  std::vector<int> outputs;   // position of each target
  size_t bound = 0;           // nodes of kind kBound
  uint64_t hash[2] = {0, 0};  // of all of the above

  // Working state, kept so that a reused Walk allocates nothing.
  struct Frame {
    LazyNode* node;
    size_t next;
    bool shared;  // entered in the index when finished
  };
  std::vector<Frame> stack;
  std::vector<int> done;
  NodeIndex index;
};

// Walks the DAG of `targets` into `w` (its previous contents are replaced, its capacity kept).
// Targets must be held by the caller (Tensor handles), as evaluate's and build's are.
void walk(const std::vector<LazyNode*>& targets, BuildMode mode, Walk& w);

// A walk's canonical form, kept with the cached plan (with the attributes it names, alive).
struct Signature {
  std::string devices;  // compiler::device_key() it was compiled for
  std::vector<uint64_t> tokens, data;
  std::vector<int> in_begin, inputs, outputs;
  std::vector<ir::Attrs> attrs;  // keeps the interned bodies named in `tokens` alive
};
std::shared_ptr<const Signature> make_signature(const Walk& w, std::string devices);
// Exact: equal only when the walk is of the same graph (ops, attributes, leaf types and
// literal values, hints, residence, wiring including sharing, outputs) on the same devices.
bool matches(const Signature& s, const Walk& w, const std::string& devices);

}  // namespace nef::detail
