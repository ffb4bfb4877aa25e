#include "nef/attrs.h"

#include <cmath>
#include <cstdio>

#include "nef/error.h"

namespace nef::ir {

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int: return "int";
    case AttrType::Float: return "float";
    case AttrType::Bool: return "bool";
    case AttrType::String: return "string";
    case AttrType::Ints: return "ints";
    case AttrType::Floats: return "floats";
  }
  return "?";
}

AttrType attr_type_of(const AttrValue& v) { return static_cast<AttrType>(v.index()); }

namespace {
template <typename T>
const T& get_typed(const std::map<std::string, AttrValue>& m, const std::string& name,
                   AttrType want) {
  auto it = m.find(name);
  if (it == m.end()) throw ValidationError(str("missing attribute '", name, "'"));
  if (const T* p = std::get_if<T>(&it->second)) return *p;
  throw ValidationError(str("attribute '", name, "' is ", attr_type_name(attr_type_of(it->second)),
                            ", expected ", attr_type_name(want)));
}

// Exact, round-trippable text for doubles (hex float keeps every bit).
std::string float_text(double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", d);
  return buf;
}
}  // namespace

int64_t Attrs::get_int(const std::string& n) const {
  return get_typed<int64_t>(values_, n, AttrType::Int);
}
double Attrs::get_float(const std::string& n) const {
  auto it = values_.find(n);
  // An integer given where a float is expected is accepted (2 means 2.0).
  if (it != values_.end())
    if (const int64_t* p = std::get_if<int64_t>(&it->second)) return double(*p);
  return get_typed<double>(values_, n, AttrType::Float);
}
bool Attrs::get_bool(const std::string& n) const {
  return get_typed<bool>(values_, n, AttrType::Bool);
}
const std::string& Attrs::get_string(const std::string& n) const {
  return get_typed<std::string>(values_, n, AttrType::String);
}
const std::vector<int64_t>& Attrs::get_ints(const std::string& n) const {
  return get_typed<std::vector<int64_t>>(values_, n, AttrType::Ints);
}
const std::vector<double>& Attrs::get_floats(const std::string& n) const {
  return get_typed<std::vector<double>>(values_, n, AttrType::Floats);
}
std::optional<int64_t> Attrs::opt_int(const std::string& n) const {
  if (!has(n)) return std::nullopt;
  return get_int(n);
}
const std::vector<int64_t>* Attrs::opt_ints(const std::string& n) const {
  if (!has(n)) return nullptr;
  return &get_ints(n);
}

std::string Attrs::canonical() const {
  std::string s;
  for (const auto& [k, v] : values_) {
    if (!s.empty()) s += ',';
    s += k;
    s += '=';
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, int64_t>) s += std::to_string(x);
          else if constexpr (std::is_same_v<T, double>) s += float_text(x);
          else if constexpr (std::is_same_v<T, bool>) s += x ? "true" : "false";
          else if constexpr (std::is_same_v<T, std::string>) {
            // Escaped so that untrusted strings cannot forge structure in cache keys.
            s += '"';
            for (char c : x) {
              if (c == '"' || c == '\\') s += '\\';
              s += c;
            }
            s += '"';
          }
          else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            s += '[';
            for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + std::to_string(x[i]);
            s += ']';
          } else {
            s += "f[";
            for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + float_text(x[i]);
            s += ']';
          }
        },
        v);
  }
  return s;
}

}  // namespace nef::ir
