// Shared pieces of the .nef and .npy readers/writers: the preamble layout, the loader's limits,
// little-endian helpers and a UTF-8 / nesting pre-scan. Internal to src/format.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nef/attrs.h"

namespace nef::format::detail {

static_assert(std::endian::native == std::endian::little,
              "the .nef and .npy code assumes a little-endian host");

// Preamble: magic "NEF\x01", u32 format version, u64 header length, u64 data offset, u64 data
// size (all little-endian). The JSON header follows at byte 32.
inline constexpr uint8_t kNefMagic[4] = {'N', 'E', 'F', 0x01};
inline constexpr uint32_t kNefFileVersion = 1;
inline constexpr size_t kPreambleSize = 32;
inline constexpr size_t kAlign = 64;

// Loader limits: anything beyond is rejected before it can cost memory or time.
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{64} << 20;
inline constexpr size_t kMaxNodes = 1000000;
inline constexpr size_t kMaxString = 4096;
inline constexpr size_t kMaxList = 1000000;
inline constexpr int kMaxJsonDepth = 64;

inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t load_le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void store_le64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline void store_le32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Offset of the first byte that breaks UTF-8 (overlongs, surrogates and > U+10FFFF included),
// or SIZE_MAX if the whole buffer is valid.
size_t find_invalid_utf8(const uint8_t* p, size_t n);

// Offset where JSON bracket nesting (outside strings) first exceeds max_depth, or SIZE_MAX.
// nlohmann parses iteratively, but recursive dumps/destructors of deep values could still
// exhaust the stack, so depth is bounded up front.
size_t find_deep_nesting(const uint8_t* p, size_t n, int max_depth);

// One typed attribute as the file stores it: {"type": "floats", "value": [1.5, "nan"]}.
// Exact round trip: doubles print in shortest round-trip form, non-finite ones as strings.
nlohmann::json encode_attr_json(const ir::AttrValue& v);
// Inverse; throws FormatError naming `path` on any deviation.
ir::AttrValue decode_attr_json(const nlohmann::json& v, const std::string& path);

// Quoted, truncated form of untrusted text for error messages.
std::string quote(const std::string& s);

}  // namespace nef::format::detail
