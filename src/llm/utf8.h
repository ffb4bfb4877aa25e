// UTF-8 helpers for the tokenizer: encoding code points, and turning arbitrary bytes (a token
// sequence cut anywhere, or bytes that were never text) into valid UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nef::llm {

// Appends the UTF-8 form of code point `cp` (at most 0x10FFFF; callers never pass surrogates).
void append_utf8(std::string& out, uint32_t cp);

// Reads one well-formed UTF-8 sequence at s[pos]: returns its length (1-4) and sets `cp`, or
// returns 0 when the bytes there are not a complete, well-formed sequence.
size_t read_utf8(std::string_view s, size_t pos, uint32_t& cp);

// Appends `in` to `out` as valid UTF-8: every ill-formed sequence becomes one U+FFFD per
// maximal subpart (the Unicode standard's recommended practice, which Python's
// bytes.decode("utf-8", "replace") follows). With `final` false, a tail that is the valid start
// of a sequence cut short is not consumed. Returns the number of bytes of `in` consumed.
size_t append_valid_utf8(std::string_view in, bool final, std::string& out);

// True when `s` is entirely well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

}  // namespace nef::llm
