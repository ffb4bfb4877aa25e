#include "llm/utf8.h"

namespace nef::llm {

namespace {

constexpr const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Length of the sequence a lead byte starts (0: never a lead byte) and the range its second
// byte must fall in; the narrower second-byte ranges exclude overlong forms, surrogates and
// code points past U+10FFFF (Unicode Table 3-7).
struct Lead {
  int length;
  uint8_t lo, hi;
};

Lead lead_of(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes of a sequence starting at s[pos] are well-formed so far (1..length), and
// whether the whole sequence is there.
struct Scan {
  size_t valid;
  bool complete;
  int length;
};

Scan scan(std::string_view s, size_t pos) {
  Lead l = lead_of(uint8_t(s[pos]));
  if (l.length <= 1) return {1, l.length == 1, l.length};
  size_t n = 1;
  for (; n < size_t(l.length); ++n) {
    if (pos + n >= s.size()) return {n, false, l.length};
    uint8_t c = uint8_t(s[pos + n]);
    uint8_t lo = n == 1 ? l.lo : 0x80, hi = n == 1 ? l.hi : 0xBF;
    if (c < lo || c > hi) return {n, false, l.length};
  }
  return {n, true, l.length};
}

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

size_t read_utf8(std::string_view s, size_t pos, uint32_t& cp) {
  Scan sc = scan(s, pos);
  if (!sc.complete) return 0;
  auto b = [&](size_t i) { return uint32_t(uint8_t(s[pos + i])); };
  switch (sc.length) {
    case 1:
      cp = b(0);
      break;
    case 2:
      cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
      break;
    case 3:
      cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
      break;
    default:
      cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
  return size_t(sc.length);
}

size_t append_valid_utf8(std::string_view in, bool final, std::string& out) {
  size_t pos = 0;
  while (pos < in.size()) {
    // Runs of ASCII are the common case: copy them in one go.
    size_t ascii = pos;
    while (ascii < in.size() && uint8_t(in[ascii]) < 0x80) ++ascii;
    if (ascii > pos) {
      out.append(in.substr(pos, ascii - pos));
      pos = ascii;
      continue;
    }
    Scan sc = scan(in, pos);
    if (sc.complete) {
      out.append(in.substr(pos, sc.valid));
      pos += sc.valid;
    } else if (!final && pos + sc.valid == in.size() && sc.length > 1) {
      break;  // a sequence that the next bytes may still complete
    } else {
      out += kReplacement;
      pos += sc.valid;
    }
  }
  return pos;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    Scan sc = scan(s, pos);
    if (!sc.complete) return false;
    pos += sc.valid;
  }
  return true;
}

}  // namespace nef::llm
