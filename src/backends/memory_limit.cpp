#include "backends/memory_limit.h"

#include <cctype>
#include <cstdlib>
#include <sstream>

#include "nef/error.h"

namespace nef::backend {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

int64_t parse_size(const std::string& text, const std::string& entry) {
  std::string t = trim(text);
  size_t pos = 0;
  double v = -1;
  try {
    v = std::stod(t, &pos);
  } catch (const std::exception&) {
  }
  std::string unit = trim(t.substr(std::min(pos, t.size())));
  double mul = 1;
  if (unit == "K" || unit == "k" || unit == "KB" || unit == "KiB") mul = 1024.0;
  else if (unit == "M" || unit == "m" || unit == "MB" || unit == "MiB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "g" || unit == "GB" || unit == "GiB") mul = 1024.0 * 1024 * 1024;
  else if (!unit.empty() && unit != "B") v = -1;
  if (!(v >= 0) || v * mul > 9.0e18)
    throw ValidationError(str("[devices] NEF_DEVICE_MEMORY_LIMIT: bad size in '", entry,
                              "' (examples: 64M, opencl:0=512M, opencl=1G)"));
  return int64_t(v * mul);
}

}  // namespace

int64_t memory_limit(const std::string& id, const std::string& backend) {
  const char* env = std::getenv("NEF_DEVICE_MEMORY_LIMIT");
  if (!env || !*env) return -1;
  int64_t best = -1;
  int rank = 0;  // 3 = id, 2 = backend, 1 = bare size (non-host devices only)
  std::stringstream ss(env);
  std::string entry;
  while (std::getline(ss, entry, ',')) {
    if (trim(entry).empty()) continue;
    size_t eq = entry.find('=');
    if (eq == std::string::npos) {
      int64_t v = parse_size(entry, entry);
      if (backend != "cpu" && rank < 1) best = v, rank = 1;
      continue;
    }
    std::string who = trim(entry.substr(0, eq));
    int64_t v = parse_size(entry.substr(eq + 1), entry);
    if (who == id && rank < 3) best = v, rank = 3;
    else if (who == backend && rank < 2) best = v, rank = 2;
  }
  return best;
}

void MemoryBudget::reserve(int64_t bytes) {
  int64_t limit = memory_limit(id_, backend_);
  int64_t now = used_.fetch_add(bytes) + bytes;
  if (limit >= 0 && now > limit) {
    used_.fetch_sub(bytes);
    throw OutOfMemoryError(str("[allocate] ", bytes, " bytes on ", id_,
                               " would exceed its limit of ", limit, " bytes (", now - bytes,
                               " in use; NEF_DEVICE_MEMORY_LIMIT)"));
  }
}

int64_t MemoryBudget::left() const {
  int64_t limit = memory_limit(id_, backend_);
  return limit < 0 ? -1 : std::max<int64_t>(0, limit - used_.load());
}

}  // namespace nef::backend
