#include "api/lazy_walk.h"

#include <algorithm>
#include <cstring>

#include "nef/error.h"

namespace nef::detail {
namespace {

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// 128-bit hash of an array of words: four independent lanes (no long dependency chain), each
// step a bijection of the lane state, mixed together at the end. Only a filter: every hit is
// verified exactly, so its quality matters for speed, not for correctness.
struct WordHash {
  uint64_t s[4] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull,
                   0x082efa98ec4e6c89ull};
  uint64_t count = 0;
  void add(const uint64_t* p, size_t n) {
    static constexpr uint64_t k[4] = {0x9fb21c651e98df25ull, 0xc2b2ae3d27d4eb4full,
                                      0x165667b19e3779f9ull, 0xd6e8feb86659fd93ull};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
      for (int l = 0; l < 4; ++l) s[l] = rotl((s[l] ^ p[i + l]) * k[l], 31);
    for (; i < n; ++i) s[i & 3] = rotl((s[i & 3] ^ p[i]) * k[i & 3], 29);
    // Lengths too: arrays of different sizes concatenated must not collide trivially.
    s[0] ^= n;
    s[2] += n * 0x9e3779b97f4a7c15ull;
    count += n;
  }
  // 32-bit ints, two to a word (copied through a small buffer: the array is 4-byte aligned).
  void add_ints(const std::vector<int>& v) {
    static constexpr size_t kChunk = 256;
    uint64_t buf[kChunk];
    const size_t words = v.size() / 2;
    for (size_t at = 0; at < words; at += kChunk) {
      size_t m = std::min(kChunk, words - at);
      std::memcpy(buf, v.data() + 2 * at, m * 8);
      add(buf, m);
    }
    if (v.size() % 2) {
      uint64_t last = uint32_t(v.back());
      add(&last, 1);
    }
  }
  void finish(uint64_t out[2]) const {
    out[0] = mix64(s[0] + rotl(s[1], 17) + rotl(s[2], 31) + rotl(s[3], 47) + count);
    out[1] =
        mix64(s[0] ^ (s[1] * 0x9e3779b97f4a7c15ull) ^ rotl(s[2], 13) ^ rotl(s[3], 29) ^ ~count);
  }
};

// Bytes as a length word and zero-padded words.
void append_bytes(WordBuf& d, const void* p, size_t n) {
  const size_t words = (n + 7) / 8;
  uint64_t* q = d.grow(1 + words);
  q[0] = n;
  if (words) {
    q[words] = 0;  // the last word's padding
    std::memcpy(q + 1, p, n);
  }
}

void append_type(WordBuf& d, const ir::TensorType& t) {
  const size_t r = t.shape.size();
  uint64_t* q = d.grow(1 + r);
  q[0] = uint64_t(t.dtype) | (uint64_t(t.weak) << 8) | (uint64_t(r) << 16);
  for (size_t i = 0; i < r; ++i) q[1 + i] = uint64_t(t.shape[i]);
}

// Constants up to this size are keyed by value, larger ones by storage identity (as the
// compiler's structural key does): scalar literals recreated on every call must hit the cache.
constexpr size_t kKeyByValueBytes = 64;

void append_literal(WordBuf& d, const Array& a) {
  if (a.nbytes() <= kKeyByValueBytes) {
    if (a.nbytes() == 0) return;  // the type says it all (storage may be null)
    if (a.is_contiguous()) {      // the usual scalar: no copy
      append_bytes(d, a.data(), a.nbytes());
      return;
    }
    Array c = a.contiguous();
    append_bytes(d, c.data(), c.nbytes());
  } else {
    uint64_t* q = d.grow(2 + a.strides.size());
    q[0] = a.storage->id();  // process-unique, never reused
    q[1] = uint64_t(a.offset);
    for (size_t i = 0; i < a.strides.size(); ++i) q[2 + i] = uint64_t(a.strides[i]);
  }
}

constexpr uint64_t kHintFlag = 4;
static_assert(alignof(ir::OpDef) >= 8, "op addresses leave the low 3 bits to the token");

}  // namespace

void NodeIndex::reset(size_t expect) {
  size_t cap = 16;
  while (cap < expect * 2) cap *= 2;
  slots_.assign(cap, {nullptr, -1});
  size_ = 0;
}

int NodeIndex::find(const LazyNode* p) const {
  size_t m = slots_.size() - 1;
  for (size_t i = slot(p) & m;; i = (i + 1) & m) {
    if (slots_[i].first == p) return slots_[i].second;
    if (!slots_[i].first) return -1;
  }
}

void NodeIndex::insert(const LazyNode* p, int v) {
  if ((size_ + 1) * 2 > slots_.size()) {
    std::vector<std::pair<const LazyNode*, int>> old(slots_.size() * 2, {nullptr, -1});
    old.swap(slots_);
    size_ = 0;
    for (const auto& [q, u] : old)
      if (q) insert(q, u);
  }
  size_t m = slots_.size() - 1;
  size_t i = slot(p) & m;
  while (slots_[i].first) i = (i + 1) & m;
  slots_[i] = {p, v};
  ++size_;
}

size_t NodeIndex::slot(const LazyNode* p) { return size_t(mix64(reinterpret_cast<uintptr_t>(p))); }

void walk(const std::vector<LazyNode*>& targets, BuildMode mode, Walk& w, bool full) {
  // The buffers keep their capacity from the last walk in `w`: a repeated evaluate allocates
  // nothing here.
  w.index.reset(w.index.size());
  w.key.clear();
  w.outputs.clear();
  w.bound_values.clear();
  w.order.clear();
  w.kind.clear();
  w.in_begin.clear();
  w.inputs.clear();
  if (full) w.in_begin.push_back(0);
  NodeIndex& index = w.index;
  WordBuf& key = w.key;
  // Iterative post-order DFS (deep chains must not overflow the stack), inputs in order. A
  // finished node's position goes to `done`, where its user collects the positions of its
  // inputs when it finishes. Only nodes that can be reached twice go through the index: in a
  // single-target walk a node with at most one user (LazyNode::users) is reached once, which is
  // most of a DAG. With several targets a target may also be another's input: all are indexed.
  std::vector<Walk::Frame>& stack = w.stack;
  std::vector<int>& done = w.done;
  stack.clear();
  done.clear();
  const bool all_shared = targets.size() > 1;
  int count = 0;  // nodes finished: the next one's position
  static const ir::OpDef* const input_op = &ir::get_op("input");
  for (size_t ti = 0; ti < targets.size(); ++ti) {
    LazyNode* t = targets[ti];
    if (int p = index.find(t); p >= 0) {
      w.outputs.push_back(p);
      continue;
    }
    stack.push_back({t, 0, true});
    while (!stack.empty()) {
      Walk::Frame& f = stack.back();
      LazyNode* n = f.node;
      const uint32_t n_in = n->n_in;
      // A node with inputs is not materialized (materializing drops them): only nodes
      // without inputs need `value`, which sits further into the node.
      const bool leaf = n_in == 0 && (n->value.has_value() || n->op == input_op);
      if (!leaf && f.next < n_in) {
        LazyNode* const* in = n_in <= LazyNode::kInline ? n->in_fast : nullptr;
        if (f.next == 0) {
          // The DAG is scattered in memory: fetch all the inputs' lines now (one line each:
          // LazyNode's first), so that their misses overlap instead of coming one per level of
          // the descent; then leaves' `value` (its end: the engaged flag) and `type`, and the
          // inputs' own inputs.
          for (uint32_t i = 0; i < n_in; ++i) __builtin_prefetch(in ? in[i] : n->inputs[i].get());
          for (uint32_t i = 0; i < n_in; ++i) {
            const LazyNode* c = in ? in[i] : n->inputs[i].get();
            const uint32_t cn = c->n_in;
            if (cn == 0) {
              const char* type = reinterpret_cast<const char*>(&c->type);  // no load: an address
              __builtin_prefetch(type - 8);
              __builtin_prefetch(type);
            } else if (cn <= LazyNode::kInline) {
              // A level further: the grandchildren's lines are in flight when the descent
              // reaches them, so that each level does not wait a full miss.
              for (uint32_t j = 0; j < cn; ++j) __builtin_prefetch(c->in_fast[j]);
            }
          }
        }
        LazyNode* child = in ? in[f.next] : n->inputs[f.next].get();
        ++f.next;
        const bool shared = all_shared || child->users.load(std::memory_order_relaxed) > 1;
        if (int p = shared ? index.find(child) : -1; p >= 0) done.push_back(p);
        else stack.push_back({child, 0, shared});
        continue;
      }
      const bool shared = f.shared;
      stack.pop_back();
      WalkKind k;
      if (!leaf) k = kOp;
      else if (n->value && (n->literal || mode == BuildMode::Serialize)) k = kLiteral;
      else if (n->value) k = kBound;
      else k = kPlaceholder;
      const bool hinted = n->hinted;
      const uint64_t token = k | (hinted ? kHintFlag : 0);
      switch (k) {
        case kOp: {
          // token, attributes, then [count, in0], [in1, in2], ... (32-bit halves)
          const size_t m = n_in;
          const int* src = done.data() + done.size() - m;
          uint64_t* q = key.grow(2 + (m + 2) / 2);
          q[0] = token | reinterpret_cast<uintptr_t>(n->op);
          q[1] = reinterpret_cast<uintptr_t>(n->attrs_id);
          q[2] = m | (m ? uint64_t(uint32_t(src[0])) << 32 : 0);
          for (size_t i = 1, j = 3; i < m; i += 2, ++j)
            q[j] = uint32_t(src[i]) | (i + 1 < m ? uint64_t(uint32_t(src[i + 1])) << 32 : 0);
          if (full) w.inputs.insert(w.inputs.end(), src, src + m);
          done.resize(done.size() - m);
          break;
        }
        case kLiteral:
          // Constants are host data (a plan uploads them to the devices that read them).
          if (!n->value->on_host()) n->value = to_host(*n->value);
          key.push(token);
          append_type(key, n->type);
          append_literal(key, *n->value);
          break;
        case kBound:
          key.push(token);
          append_type(key, n->type);
          if (!n->value->on_host()) {  // where the value lives shapes the plan
            const std::string& d = n->value->device();
            append_bytes(key, d.data(), d.size());
          } else {
            key.push(~uint64_t(0));
          }
          w.bound_values.push_back(&*n->value);
          break;
        case kPlaceholder:
          key.push(token);
          append_type(key, n->type);
          break;
      }
      if (hinted) append_bytes(key, n->device_hint.data(), n->device_hint.size());
      const int pos = count++;
      if (shared) index.insert(n, pos);
      if (full) {
        w.order.push_back(n);
        w.kind.push_back(k);
        w.in_begin.push_back(int(w.inputs.size()));
      }
      if (stack.empty()) w.outputs.push_back(pos);  // target ti itself
      else done.push_back(pos);
    }
  }
  WordHash h;
  h.add(key.data(), key.size());
  h.add_ints(w.outputs);
  h.finish(w.hash);
}

std::shared_ptr<const Signature> make_signature(const Walk& w, std::string devices) {
  auto s = std::make_shared<Signature>();
  s->devices = std::move(devices);
  s->key = w.key.to_vector();
  s->outputs = w.outputs;
  for (size_t i = 0; i < w.order.size(); ++i)
    if (w.kind[i] == kOp && w.order[i]->attrs_id) s->attrs.push_back(w.order[i]->attrs);
  return s;
}

bool matches(const Signature& s, const Walk& w, const std::string& devices) {
  return s.key.size() == w.key.size() &&
         std::memcmp(s.key.data(), w.key.data(), w.key.size() * sizeof(uint64_t)) == 0 &&
         s.outputs == w.outputs && s.devices == devices;
}

}  // namespace nef::detail
