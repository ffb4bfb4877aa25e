// Typed op attributes (public: the C++ API passes them to nef::op). Each op's registry entry declares its attributes (name, type, default);
// Attrs holds the values of one node, validated against that schema.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace nef::ir {

enum class AttrType : uint8_t { Int, Float, Bool, String, Ints, Floats };
const char* attr_type_name(AttrType t);

using AttrValue =
    std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>>;
AttrType attr_type_of(const AttrValue& v);

class Attrs {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  void set(const std::string& name, AttrValue v) { values_[name] = std::move(v); }
  void erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, AttrValue>& values() const { return values_; }

  // Getters throw ValidationError if absent or of another type (the registry validated types
  // and filled defaults at node creation, so kernels may rely on them).
  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  const std::vector<int64_t>& get_ints(const std::string& name) const;
  const std::vector<double>& get_floats(const std::string& name) const;

  std::optional<int64_t> opt_int(const std::string& name) const;
  const std::vector<int64_t>* opt_ints(const std::string& name) const;

  // Canonical text, stable across runs: used in kernel cache keys and structural hashes.
  std::string canonical() const;

  bool operator==(const Attrs& o) const { return values_ == o.values_; }

 private:
  std::map<std::string, AttrValue> values_;
};

}  // namespace nef::ir
