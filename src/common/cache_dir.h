// Where NEF keeps files between processes (calibration profiles, compiled device programs):
// $NEF_CACHE_DIR, else $XDG_CACHE_HOME/nef, else $HOME/.cache/nef. Everything read back from it
// is untrusted: readers check what they read (hashes, parsing) and rebuild on any mismatch.
#pragma once

#include <optional>
#include <string>

namespace nef {

// The directory `sub` under the cache root, created when missing (mode 0700); nullopt when no
// root can be found or created (caching is then skipped, never an error).
std::optional<std::string> cache_dir(const std::string& sub);

// Writes `bytes` to `path` atomically (a temporary file renamed over it); false on any failure.
bool write_file_atomic(const std::string& path, const std::string& bytes);
// The whole file, or nullopt when it cannot be read or exceeds `max_bytes`.
std::optional<std::string> read_file(const std::string& path, size_t max_bytes);

// 128-bit hash (hex) of `bytes`: not cryptographic; names and checks cache entries.
std::string hash_hex(const std::string& bytes);

}  // namespace nef
