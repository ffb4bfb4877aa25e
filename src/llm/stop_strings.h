// Stop strings: ending generation when the generated text contains one of a set of strings
// (a turn marker written as plain text, "\nUser:", ...). Text arrives piece by piece; a tail
// that may be the start of a stop string is held back until it is decided, so nothing of a
// stop string is ever emitted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nef::llm {

class StopStrings {
 public:
  // ValidationError for an empty stop string. No stop strings: push() passes text through.
  explicit StopStrings(std::vector<std::string> stops);

  struct Result {
    std::string text;      // safe to emit
    bool stopped = false;  // a stop string ended the text; `text` is what preceded it
  };
  // Adds generated text. Once stopped, every later push returns nothing.
  Result push(std::string_view text);
  // The text held back because it might have begun a stop string (the stream ended).
  std::string flush();

  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string found, or ""

 private:
  std::vector<std::string> stops_;
  std::string held_, matched_;
  bool stopped_ = false;
};

}  // namespace nef::llm
