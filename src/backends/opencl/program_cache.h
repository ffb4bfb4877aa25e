// Compiled OpenCL programs on disk, so a process builds each kernel source once per machine:
// first builds take ~1 s on PoCL, a cached binary ~50-100 ms. Entries are keyed by a hash of
// (source, device, driver version, NEF version) and checked before use: the file must name the
// same key and its binary must match the hash stored with it, so a truncated, edited, foreign or
// stale file is ignored (and rebuilt). Only binaries NEF built from its own sources are stored;
// the cache directory must belong to the user and not be writable by others, else it is unused.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace nef::backend::opencl {

struct ProgramKey {
  std::string source;
  std::string device;  // name + driver version: what makes a binary valid
};

// The cached binary for `key`, or nullopt (absent, unusable, or caching off). A rejected file is
// reported with NEF_DEBUG=1.
std::optional<std::vector<unsigned char>> load_binary(const ProgramKey& key);
// Stores `binary` for `key` (best effort: failures only lose the cache).
void store_binary(const ProgramKey& key, const std::vector<unsigned char>& binary);
// The path an entry for `key` lives at ("" when caching is off): tests tamper with it.
std::string binary_path(const ProgramKey& key);

}  // namespace nef::backend::opencl
