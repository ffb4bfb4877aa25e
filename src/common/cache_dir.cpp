#include "common/cache_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace nef {
namespace {

bool make_dirs(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

std::optional<std::string> cache_dir(const std::string& sub) {
  std::string root;
  if (const char* d = std::getenv("NEF_CACHE_DIR"); d && *d) root = d;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) root = std::string(x) + "/nef";
  else if (const char* h = std::getenv("HOME"); h && *h) root = std::string(h) + "/.cache/nef";
  else return std::nullopt;
  std::string dir = sub.empty() ? root : root + "/" + sub;
  if (!make_dirs(dir)) return std::nullopt;
  return dir;
}

bool write_file_atomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    done += size_t(w);
  }
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

std::optional<std::string> read_file(const std::string& path, size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  f.seekg(0, std::ios::end);
  std::streamoff size = f.tellg();
  if (size < 0 || uint64_t(size) > max_bytes) return std::nullopt;
  f.seekg(0);
  std::string s(size_t(size), '\0');
  if (size && !f.read(s.data(), size)) return std::nullopt;
  return s;
}

std::string hash_hex(const std::string& bytes) {
  // Two independent FNV-1a lanes, each finalized with a splitmix step.
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  for (unsigned char c : bytes) {
    a = (a ^ c) * 0x100000001b3ull;
    b = (b ^ c) * 0x00000100000001b3ull + 0x9e3779b97f4a7c15ull;
  }
  auto mix = [](uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  static const char* d = "0123456789abcdef";
  std::string out;
  for (uint64_t v : {mix(a ^ bytes.size()), mix(b ^ a)})
    for (int sh = 60; sh >= 0; sh -= 4) out += d[(v >> sh) & 15];
  return out;
}

}  // namespace nef
