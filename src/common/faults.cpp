#include "common/faults.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <vector>

#include "nef/error.h"

namespace nef::faults {
namespace {

struct Fault {
  std::string kind, device, op;
  int times = 1;
};

std::mutex mu;
std::vector<Fault> armed;
std::atomic<bool> any{false};
std::once_flag env_once;

std::vector<Fault> parse(const std::string& spec) {
  std::vector<Fault> out;
  std::stringstream ss(spec);
  std::string entry;
  while (std::getline(ss, entry, ';')) {
    if (entry.find_first_not_of(" \t") == std::string::npos) continue;
    std::vector<std::string> parts;
    std::stringstream es(entry);
    std::string p;
    while (std::getline(es, p, ':')) parts.push_back(p);
    // A device id contains a ':' itself ("opencl:0"): rejoin when the next part is an index.
    if (parts.size() >= 3 && !parts[2].empty() &&
        parts[2].find_first_not_of("0123456789") == std::string::npos) {
      parts[1] += ":" + parts[2];
      parts.erase(parts.begin() + 2);
    }
    if (parts.size() < 2 || parts.size() > 4 ||
        (parts[0] != "oom" && parts[0] != "compile" && parts[0] != "run") || parts[1].empty())
      throw ValidationError(str("[faults] bad entry '", entry,
                                "': expected oom|compile|run:<device>[:<op>[:<times>]]"));
    Fault f{parts[0], parts[1], parts.size() > 2 ? parts[2] : "*", 1};
    if (parts.size() > 3) {
      try {
        f.times = std::stoi(parts[3]);
      } catch (const std::exception&) {
        f.times = -1;
      }
      if (f.times < 1) throw ValidationError(str("[faults] bad count in '", entry, "'"));
    }
    out.push_back(f);
  }
  return out;
}

void load_env() {
  std::call_once(env_once, [] {
    const char* env = std::getenv("NEF_FAULTS");
    if (!env || !*env) return;
    std::lock_guard<std::mutex> lock(mu);
    armed = parse(env);
    any.store(!armed.empty());
  });
}

bool device_matches(const std::string& want, std::string_view device) {
  if (want == device) return true;
  return device.size() > want.size() && device.substr(0, want.size()) == want &&
         device[want.size()] == ':';
}

}  // namespace

void set(const std::string& spec) {
  load_env();
  std::vector<Fault> f = parse(spec);
  std::lock_guard<std::mutex> lock(mu);
  armed = std::move(f);
  any.store(!armed.empty());
}

bool fire(std::string_view kind, std::string_view device, std::string_view op) {
  load_env();
  if (!any.load(std::memory_order_relaxed)) return false;
  std::lock_guard<std::mutex> lock(mu);
  for (size_t i = 0; i < armed.size(); ++i) {
    Fault& f = armed[i];
    if (f.kind != kind || !device_matches(f.device, device) || (f.op != "*" && f.op != op))
      continue;
    if (--f.times == 0) armed.erase(armed.begin() + long(i));
    any.store(!armed.empty());
    return true;
  }
  return false;
}

}  // namespace nef::faults
