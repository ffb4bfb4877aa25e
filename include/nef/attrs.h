// Typed op attributes (public: the C++ API passes them to nef::op). Each op's registry entry
// declares its attributes (name, type, default); Attrs holds the values of one node, validated
// against that schema.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace nef::ir {

enum class AttrType : uint8_t { Int, Float, Bool, String, Ints, Floats };
const char* attr_type_name(AttrType t);

using AttrValue =
    std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>>;
AttrType attr_type_of(const AttrValue& v);

// A flat list of (name, value) sorted by name, shared copy-on-write: copying an Attrs (graph
// building, passes, plans) only bumps a reference count, and a write to a shared list copies it
// first. A 64-bit hash of the contents is kept up to date by every write, so equality and the
// planner's cache keys need no text. Thread-safety: like a std::string value (concurrent reads
// of one Attrs, or of copies, are safe; a write needs exclusive access to that one Attrs).
class Attrs {
 public:
  using Entry = std::pair<std::string, AttrValue>;

  Attrs() = default;
  // All entries at once (any order; a name given twice keeps its last value): one allocation
  // for the list instead of one growth per set().
  explicit Attrs(std::vector<Entry> entries);

  bool empty() const { return !body_ || body_->entries.empty(); }
  bool has(std::string_view name) const { return find(name) != nullptr; }
  // The value of `name`, or nullptr when absent.
  const AttrValue* find(std::string_view name) const;
  void set(std::string_view name, AttrValue v);
  void erase(std::string_view name);
  // Every entry, sorted by name.
  const std::vector<Entry>& values() const;

  // Getters throw ValidationError if absent or of another type (the registry validated types
  // and filled defaults at node creation, so kernels may rely on them).
  int64_t get_int(std::string_view name) const;
  double get_float(std::string_view name) const;
  bool get_bool(std::string_view name) const;
  const std::string& get_string(std::string_view name) const;
  const std::vector<int64_t>& get_ints(std::string_view name) const;
  const std::vector<double>& get_floats(std::string_view name) const;

  std::optional<int64_t> opt_int(std::string_view name) const;
  const std::vector<int64_t>* opt_ints(std::string_view name) const;

  // Canonical text, stable across runs and exact (floats in hex): files, dumps, inspection.
  std::string canonical() const;
  // Hash of the contents (0 when empty); equal Attrs have equal hashes. Not stable across
  // processes (in-memory cache keys only).
  uint64_t hash() const { return body_ ? body_->hash : 0; }

  // An Attrs equal to this one whose body is shared with every other interned Attrs of equal
  // contents alive at the same time (a process-wide table of weak references), so that
  // identity() compares interned attributes exactly, in O(1), for as long as both are held.
  Attrs interned() const;
  // The shared body (nullptr when empty): equal identities mean equal contents.
  const void* identity() const { return empty() ? nullptr : body_.get(); }

  // Same names, types and values; floats compare bitwise (a NaN equals the same NaN, -0.0 is
  // not 0.0), so equal Attrs have equal canonical text.
  bool operator==(const Attrs& o) const;

 private:
  struct Body {
    std::vector<Entry> entries;
    uint64_t hash = 0;  // sum of the entries' hashes (order-free, updated per write)
  };
  Body& writable();
  std::shared_ptr<Body> body_;
};

}  // namespace nef::ir
