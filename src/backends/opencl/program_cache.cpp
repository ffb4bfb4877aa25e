#include "backends/opencl/program_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/cache_dir.h"
#include "common/log.h"
#include "devices/cpu_info.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

constexpr const char* kMagic = "NEF-OPENCL-BINARY-1";
constexpr size_t kMaxEntryBytes = size_t(256) << 20;

std::string key_text(const ProgramKey& k) {
  return str(kMagic, "|nef ", devices::library_version(), "|", k.device, "|", hash_hex(k.source),
             "|", k.source.size());
}

// The cache directory, when it is safe to trust: ours, and not writable by group or others.
std::optional<std::string> safe_dir() {
  std::optional<std::string> dir = cache_dir("opencl");
  if (!dir) return std::nullopt;
  struct stat st;
  if (::stat(dir->c_str(), &st) != 0 || st.st_uid != ::getuid() || (st.st_mode & 022)) {
    debug_log(str("opencl program cache ", *dir, " not used: not owned by this user or writable ",
                  "by others"));
    return std::nullopt;
  }
  return dir;
}

}  // namespace

std::string binary_path(const ProgramKey& key) {
  std::optional<std::string> dir = safe_dir();
  return dir ? *dir + "/" + hash_hex(key_text(key)) + ".bin" : std::string();
}

std::optional<std::vector<unsigned char>> load_binary(const ProgramKey& key) {
  std::string path = binary_path(key);
  if (path.empty()) return std::nullopt;
  std::optional<std::string> file = read_file(path, kMaxEntryBytes);
  if (!file) return std::nullopt;
  // Layout: key text '\n' hash of the binary '\n' binary.
  const std::string want = key_text(key);
  size_t nl1 = file->find('\n');
  size_t nl2 = nl1 == std::string::npos ? nl1 : file->find('\n', nl1 + 1);
  if (nl2 == std::string::npos || file->compare(0, nl1, want) != 0) {
    debug_log(str("opencl program cache: ", path, " is not an entry for this program; rebuilding"));
    return std::nullopt;
  }
  std::string digest = file->substr(nl1 + 1, nl2 - nl1 - 1);
  std::string binary = file->substr(nl2 + 1);
  if (binary.empty() || hash_hex(binary) != digest) {
    debug_log(str("opencl program cache: ", path, " is damaged (hash mismatch); rebuilding"));
    return std::nullopt;
  }
  return std::vector<unsigned char>(binary.begin(), binary.end());
}

void store_binary(const ProgramKey& key, const std::vector<unsigned char>& binary) {
  std::string path = binary_path(key);
  if (path.empty() || binary.empty()) return;
  std::string b(binary.begin(), binary.end());
  if (!write_file_atomic(path, key_text(key) + "\n" + hash_hex(b) + "\n" + b))
    debug_log(str("opencl program cache: cannot write ", path));
}

}  // namespace nef::backend::opencl
