#include "nef/attrs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "nef/error.h"

namespace nef::ir {

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int:
      return "int";
    case AttrType::Float:
      return "float";
    case AttrType::Bool:
      return "bool";
    case AttrType::String:
      return "string";
    case AttrType::Ints:
      return "ints";
    case AttrType::Floats:
      return "floats";
  }
  return "?";
}

AttrType attr_type_of(const AttrValue& v) { return static_cast<AttrType>(v.index()); }

namespace {

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t hash_bytes(uint64_t h, const void* p, size_t n) {
  const auto* c = static_cast<const unsigned char*>(p);
  h = mix64(h ^ n);
  for (; n >= 8; n -= 8, c += 8) {
    uint64_t w;
    std::memcpy(&w, c, 8);
    h = mix64(h ^ w);
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, c, n);
    h = mix64(h ^ w);
  }
  return h;
}

uint64_t bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, 8);
  return b;
}

// One entry's hash; the list's hash is the sum over its entries (so a write updates it in O(1)).
uint64_t entry_hash(std::string_view name, const AttrValue& v) {
  uint64_t h = hash_bytes(0x6a09e667f3bcc909ull + v.index(), name.data(), name.size());
  return std::visit(
      [&](const auto& x) -> uint64_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) return mix64(h ^ uint64_t(x));
        else if constexpr (std::is_same_v<T, double>) return mix64(h ^ bits(x));
        else if constexpr (std::is_same_v<T, bool>) return mix64(h ^ uint64_t(x));
        else if constexpr (std::is_same_v<T, std::string>) return hash_bytes(h, x.data(), x.size());
        else return hash_bytes(h, x.data(), x.size() * sizeof(x[0]));
      },
      v);
}

bool same_value(const AttrValue& a, const AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (const double* x = std::get_if<double>(&a)) return bits(*x) == bits(std::get<double>(b));
  if (const auto* x = std::get_if<std::vector<double>>(&a)) {
    const auto& y = std::get<std::vector<double>>(b);
    return x->size() == y.size() &&
           (x->empty() || std::memcmp(x->data(), y.data(), x->size() * sizeof(double)) == 0);
  }
  return a == b;
}

template <typename T>
const T& get_typed(const Attrs& a, std::string_view name, AttrType want) {
  const AttrValue* v = a.find(name);
  if (!v) throw ValidationError(str("missing attribute '", name, "'"));
  if (const T* p = std::get_if<T>(v)) return *p;
  throw ValidationError(str("attribute '", name, "' is ", attr_type_name(attr_type_of(*v)),
                            ", expected ", attr_type_name(want)));
}

// Exact, round-trippable text for doubles (hex float keeps every bit).
void append_float(std::string& s, double d) {
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%a", d);
  s.append(buf, size_t(n));
}

const std::vector<Attrs::Entry>& no_entries() {
  static const std::vector<Attrs::Entry>* e = new std::vector<Attrs::Entry>();
  return *e;
}

}  // namespace

Attrs::Attrs(std::vector<Entry> entries) {
  if (entries.empty()) return;
  // Insertion sort, stable: a handful of entries (std::stable_sort would allocate a buffer).
  for (size_t i = 1; i < entries.size(); ++i)
    for (size_t j = i; j > 0 && entries[j].first < entries[j - 1].first; --j)
      std::swap(entries[j], entries[j - 1]);
  body_ = std::make_shared<Body>();
  Body& b = *body_;
  b.entries.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    // Of equal names the last given wins (stable sort), as with repeated set() calls.
    if (i + 1 < entries.size() && entries[i + 1].first == entries[i].first) continue;
    b.hash += entry_hash(entries[i].first, entries[i].second);
    b.entries.push_back(std::move(entries[i]));
  }
}

const AttrValue* Attrs::find(std::string_view name) const {
  if (!body_) return nullptr;
  for (const Entry& e : body_->entries)  // a handful of entries: a scan beats a search
    if (e.first == name) return &e.second;
  return nullptr;
}

const std::vector<Attrs::Entry>& Attrs::values() const {
  return body_ ? body_->entries : no_entries();
}

Attrs::Body& Attrs::writable() {
  if (!body_) body_ = std::make_shared<Body>();
  else if (body_.use_count() > 1) body_ = std::make_shared<Body>(*body_);  // copy on write
  return *body_;
}

void Attrs::set(std::string_view name, AttrValue v) {
  Body& b = writable();
  auto it = std::lower_bound(b.entries.begin(), b.entries.end(), name,
                             [](const Entry& e, std::string_view n) { return e.first < n; });
  if (it != b.entries.end() && it->first == name) {
    b.hash -= entry_hash(name, it->second);
    it->second = std::move(v);
  } else {
    it = b.entries.insert(it, Entry{std::string(name), std::move(v)});
  }
  b.hash += entry_hash(name, it->second);
}

void Attrs::erase(std::string_view name) {
  if (!has(name)) return;
  Body& b = writable();
  for (auto it = b.entries.begin(); it != b.entries.end(); ++it)
    if (it->first == name) {
      b.hash -= entry_hash(name, it->second);
      b.entries.erase(it);
      return;
    }
}

namespace {
// Interned bodies by hash. Entries are weak: a body dies with its last Attrs, and dead entries
// are swept when the table has doubled since the last sweep.
struct InternTable {
  std::mutex mu;
  std::unordered_multimap<uint64_t, std::weak_ptr<const void>> bodies;
  size_t sweep_at = 1024;
};
InternTable& intern_table() {
  static InternTable* t = new InternTable();  // never destroyed: nodes may outlive statics
  return *t;
}
}  // namespace

Attrs Attrs::interned() const {
  if (empty()) return {};
  InternTable& t = intern_table();
  std::lock_guard<std::mutex> lock(t.mu);
  auto [first, last] = t.bodies.equal_range(hash());
  for (auto it = first; it != last; ++it) {
    std::shared_ptr<const void> alive = it->second.lock();
    if (!alive) continue;
    Attrs other;
    other.body_ = std::const_pointer_cast<Body>(std::static_pointer_cast<const Body>(alive));
    if (other == *this) return other;
  }
  t.bodies.emplace(hash(), std::static_pointer_cast<const void>(body_));
  if (t.bodies.size() >= t.sweep_at) {
    std::erase_if(t.bodies, [](const auto& e) { return e.second.expired(); });
    t.sweep_at = std::max<size_t>(1024, 2 * t.bodies.size());
  }
  return *this;
}

bool Attrs::operator==(const Attrs& o) const {
  if (body_ == o.body_) return true;
  if (hash() != o.hash()) return false;
  const std::vector<Entry>&x = values(), &y = o.values();
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].first != y[i].first || !same_value(x[i].second, y[i].second)) return false;
  return true;
}

int64_t Attrs::get_int(std::string_view n) const {
  return get_typed<int64_t>(*this, n, AttrType::Int);
}
double Attrs::get_float(std::string_view n) const {
  // An integer given where a float is expected is accepted (2 means 2.0).
  if (const AttrValue* v = find(n))
    if (const int64_t* p = std::get_if<int64_t>(v)) return double(*p);
  return get_typed<double>(*this, n, AttrType::Float);
}
bool Attrs::get_bool(std::string_view n) const { return get_typed<bool>(*this, n, AttrType::Bool); }
const std::string& Attrs::get_string(std::string_view n) const {
  return get_typed<std::string>(*this, n, AttrType::String);
}
const std::vector<int64_t>& Attrs::get_ints(std::string_view n) const {
  return get_typed<std::vector<int64_t>>(*this, n, AttrType::Ints);
}
const std::vector<double>& Attrs::get_floats(std::string_view n) const {
  return get_typed<std::vector<double>>(*this, n, AttrType::Floats);
}
std::optional<int64_t> Attrs::opt_int(std::string_view n) const {
  if (!has(n)) return std::nullopt;
  return get_int(n);
}
const std::vector<int64_t>* Attrs::opt_ints(std::string_view n) const {
  if (!has(n)) return nullptr;
  return &get_ints(n);
}

std::string Attrs::canonical() const {
  std::string s;
  for (const auto& [k, v] : values()) {
    if (!s.empty()) s += ',';
    s += k;
    s += '=';
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, int64_t>) s += std::to_string(x);
          else if constexpr (std::is_same_v<T, double>) append_float(s, x);
          else if constexpr (std::is_same_v<T, bool>) s += x ? "true" : "false";
          else if constexpr (std::is_same_v<T, std::string>) {
            // Escaped so that untrusted strings cannot forge structure in keys and dumps.
            s += '"';
            for (char c : x) {
              if (c == '"' || c == '\\') s += '\\';
              s += c;
            }
            s += '"';
          } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
            s += '[';
            for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + std::to_string(x[i]);
            s += ']';
          } else {
            s += "f[";
            for (size_t i = 0; i < x.size(); ++i) {
              if (i) s += ',';
              append_float(s, x[i]);
            }
            s += ']';
          }
        },
        v);
  }
  return s;
}

}  // namespace nef::ir
