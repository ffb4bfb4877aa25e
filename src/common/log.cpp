#include "common/log.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>

namespace nef {

bool debug_enabled() {
  const char* v = std::getenv("NEF_DEBUG");
  return v && *v && std::string(v) != "0";
}

void debug_log(const std::string& msg) {
  if (debug_enabled()) std::fprintf(stderr, "nef: debug: %s\n", msg.c_str());
}

void warn(const std::string& msg) { std::fprintf(stderr, "nef: warning: %s\n", msg.c_str()); }

void warn_once(const std::string& msg) {
  static std::mutex mu;
  static std::set<std::string> seen;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!seen.insert(msg).second) return;
  }
  warn(msg);
}

}  // namespace nef
