// Diagnostics on stderr: debug lines only with NEF_DEBUG=1 (device probes, fallbacks, cache
// rejections), warnings always, each once per distinct message when asked.
#pragma once

#include <string>

namespace nef {

bool debug_enabled();
void debug_log(const std::string& msg);  // "nef: debug: msg" when NEF_DEBUG=1
void warn(const std::string& msg);       // "nef: warning: msg"
void warn_once(const std::string& msg);  // the same text is printed once per process

}  // namespace nef
