#include "llm/stop_strings.h"

#include <algorithm>

#include "nef/error.h"

namespace nef::llm {

StopStrings::StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {
  for (size_t i = 0; i < stops_.size(); ++i)
    if (stops_[i].empty())
      throw ValidationError(str("[stop strings] stop string ", i, " is empty"));
}

StopStrings::Result StopStrings::push(std::string_view text) {
  Result r;
  if (stopped_) return r;
  held_.append(text);
  // The earliest stop string in the text (the longest where two start at the same place).
  size_t best = std::string::npos;
  for (const std::string& s : stops_) {
    size_t at = held_.find(s);
    if (at == std::string::npos) continue;
    if (at < best || (at == best && s.size() > matched_.size())) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    r.text = held_.substr(0, best);
    r.stopped = stopped_ = true;
    held_.clear();
    return r;
  }
  // Hold back the longest tail that is a proper prefix of a stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    for (size_t n = std::min(s.size() - 1, held_.size()); n > hold; --n) {
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  r.text = held_.substr(0, held_.size() - hold);
  held_.erase(0, held_.size() - hold);
  return r;
}

std::string StopStrings::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

}  // namespace nef::llm
