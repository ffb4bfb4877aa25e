// The one walk of a lazy DAG that both keys it for the plan cache and builds its ir::Graph
// (graph_builder.cpp). Internal to api/.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api/lazy.h"

namespace nef::detail {

enum WalkKind : uint8_t { kOp = 0, kBound = 1, kLiteral = 2, kPlaceholder = 3 };

// The reachable DAG in post-order (inputs in order, so the order is deterministic; it is the
// graph's node order) and its exact canonical form: one stream of 64-bit words, `key`, compared
// with memcmp on a cache hit (with `outputs`). Per node, in walk order:
//   a token: its kind | a has-hint flag | (op nodes) the OpDef address;
//   op nodes: the identity of its interned attributes, then its input count and its inputs'
//     positions in the walk as 32-bit halves ([count, in0], [in1, in2], ...);
//   leaves: the type (dtype, weak, rank; dims), then literal values (by value up to 64 bytes,
//     else by storage identity) or, for bound values, the device they live on when not the host
//     (length-prefixed bytes) or ~0 on the host;
//   hinted nodes: the device hint (length-prefixed bytes).
// Each part's length follows from what precedes it, so equal streams are equal graphs.
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

// A growable array of words with an unchecked append after one capacity check (the walk
// writes a few words per node; std::vector would check each push_back).
class WordBuf {
 public:
  void clear() { size_ = 0; }
  // Room for n more words; returns where they go (size() grows by n).
  uint64_t* grow(size_t n) {
    if (size_ + n > words_.size()) words_.resize(std::max(words_.size() * 2, size_ + n + 64));
    uint64_t* p = words_.data() + size_;
    size_ += n;
    return p;
  }
  void push(uint64_t w) { *grow(1) = w; }
  const uint64_t* data() const { return words_.data(); }
  size_t size() const { return size_; }
  std::vector<uint64_t> to_vector() const { return {words_.begin(), words_.begin() + long(size_)}; }

 private:
  std::vector<uint64_t> words_;
  size_t size_ = 0;
};

struct Walk {
  WordBuf key;               // the canonical form (above)
  std::vector<int> outputs;  // position of each target
  // The bound nodes' values in walk order: the plan's binding slots.
  std::vector<const Array*> bound_values;
  uint64_t hash[2] = {0, 0};  // of key and outputs
  // Full walks only (what build_from_walk reads; a keying walk leaves them empty):
  std::vector<LazyNode*> order;
  std::vector<uint8_t> kind;
  std::vector<int> in_begin;  // order.size() + 1 offsets into `inputs`
  std::vector<int> inputs;    // positions in `order`

  // Working state, kept so that a reused Walk allocates nothing.
  struct Frame {
    LazyNode* node;
    uint32_t next;
    bool shared;  // entered in the index when finished
  };
  std::vector<Frame> stack;
  std::vector<int> done;
  NodeIndex index;
};

// Walks the DAG of `targets` into `w` (its previous contents are replaced, its capacity kept).
// Targets must be held by the caller (Tensor handles), as evaluate's and build's are.
// A keying walk (full = false) computes the key, outputs, bound values and hash only: what a
// plan-cache hit needs.
void walk(const std::vector<LazyNode*>& targets, BuildMode mode, Walk& w, bool full = true);

// A walk's canonical form, kept with the cached plan (with the attributes it names, alive).
struct Signature {
  std::string devices;  // compiler::device_key() it was compiled for
  std::vector<uint64_t> key;
  std::vector<int> outputs;
  std::vector<ir::Attrs> attrs;  // keeps the interned bodies named in `key` alive
};
// From a full walk (it reads the nodes' attributes through `order`).
std::shared_ptr<const Signature> make_signature(const Walk& w, std::string devices);
// Exact: equal only when the walk is of the same graph (ops, attributes, leaf types and
// literal values, hints, residence, wiring including sharing, outputs) on the same devices.
bool matches(const Signature& s, const Walk& w, const std::string& devices);

}  // namespace nef::detail
