// GPT-2's byte-level alphabet: every byte 0-255 stands for one printable code point, so that
// a vocabulary of strings covers all byte sequences. Printable Latin-1 bytes stand for
// themselves; the rest (controls, space, DEL, NBSP, soft hyphen) map to U+0100 and up, in
// byte order (space -> U+0120 'Ġ', newline -> U+010A 'Ċ').
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nef::llm {

// The code point that stands for byte `b`.
uint32_t byte_to_code_point(uint8_t b);

// The byte that code point `cp` stands for, or -1 when `cp` is not in the alphabet.
int code_point_to_byte(uint32_t cp);

// Bytes -> the alphabet's text (UTF-8), as vocabulary entries spell them.
std::string bytes_to_byte_level(std::string_view bytes);

// A vocabulary entry -> the bytes it stands for. Code points outside the alphabet (text of
// added tokens written as plain text) are kept as their own UTF-8, as are bytes that are not
// UTF-8.
std::string byte_level_to_bytes(std::string_view text);

}  // namespace nef::llm
