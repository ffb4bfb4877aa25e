#include "common/host_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

namespace nef {
namespace {

constexpr size_t kLarge = size_t{1} << 20;  // blocks from here on are mmap'd and cached

// Four size classes per power of two (at most 25% slack), page-rounded.
size_t size_class(size_t nbytes) {
  size_t top = size_t{1} << (63 - __builtin_clzll(nbytes));
  size_t step = std::max<size_t>(top / 4, 4096);
  return (nbytes + step - 1) / step * step;
}

struct Block {
  void* p;
  size_t bytes;
  uint64_t stamp;  // when it was cached: the oldest go first
};

class Cache {
 public:
  Cache() {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    int64_t ram = pages > 0 && page > 0 ? int64_t(pages) * page : int64_t{8} << 30;
    limit_ = std::min<int64_t>(ram / 16, int64_t{2} << 30);
    // Off: "0", "off", "false", "no" (any case).
    if (const char* env = std::getenv("NEF_HOST_CACHE")) {
      std::string v(env);
      for (char& ch : v) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      if (v == "0" || v == "off" || v == "false" || v == "no") limit_ = 0;
    }
  }

  void* take(size_t bytes) noexcept {
    std::vector<Block> drop;
    void* hit = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!reserve(drop)) return nullptr;
      auto it = std::find_if(blocks_.begin(), blocks_.end(),
                             [&](const Block& b) { return b.bytes == bytes; });
      if (it != blocks_.end()) {
        hit = it->p;
        held_ -= int64_t(it->bytes);
        blocks_.erase(it);
      } else {
        // A miss grows the process: give back cached blocks of at least the same total first.
        size_t freed = 0;
        while (freed < bytes && !blocks_.empty()) freed += pop_oldest(drop);
      }
    }
    for (const Block& b : drop) munmap(b.p, b.bytes);
    return hit;
  }

  // Keeps `p` unless the cache is off or full (then the oldest blocks go).
  void give(void* p, size_t bytes) noexcept {
    std::vector<Block> drop;
    bool kept = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // No memory for the bookkeeping: unmap instead of caching.
      if (int64_t(bytes) <= limit_ && reserve(drop)) {
        try {
          blocks_.push_back({p, bytes, ++clock_});
          held_ += int64_t(bytes);
          kept = true;
          while (held_ > limit_) pop_oldest(drop);
        } catch (const std::bad_alloc&) {
        }
      }
    }
    if (!kept) munmap(p, bytes);
    for (const Block& b : drop) munmap(b.p, b.bytes);
  }

  int64_t trim() noexcept {
    std::vector<Block> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      drop.swap(blocks_);
      held_ = 0;
    }
    int64_t freed = 0;
    for (const Block& b : drop) {
      munmap(b.p, b.bytes);
      freed += int64_t(b.bytes);
    }
    return freed;
  }

  int64_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_;
  }
  int64_t limit() const { return limit_; }

 private:
  // Room in `drop` for every cached block, so that pop_oldest never allocates (and never loses
  // a block to a failed push_back).
  bool reserve(std::vector<Block>& drop) noexcept {
    try {
      drop.reserve(blocks_.size() + 1);
      return true;
    } catch (const std::bad_alloc&) {
      return false;
    }
  }

  // Moves the oldest block to `drop` (unmapped outside the lock; reserve()d); returns its size.
  size_t pop_oldest(std::vector<Block>& drop) noexcept {
    auto it = std::min_element(blocks_.begin(), blocks_.end(),
                               [](const Block& a, const Block& b) { return a.stamp < b.stamp; });
    Block b = *it;
    blocks_.erase(it);
    held_ -= int64_t(b.bytes);
    drop.push_back(b);
    return b.bytes;
  }

  std::mutex mu_;
  std::vector<Block> blocks_;
  int64_t held_ = 0;
  int64_t limit_ = 0;
  uint64_t clock_ = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: storages may be freed during exit
  return *c;
}

}  // namespace

void* host_alloc(size_t nbytes) {
  if (nbytes > (size_t{1} << 60)) return nullptr;  // no such memory; keeps the rounding exact
  if (nbytes < kLarge) return std::aligned_alloc(64, (nbytes + 63) / 64 * 64);
  const size_t bytes = size_class(nbytes);
  if (void* p = cache().take(bytes)) return p;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void host_free(void* p, size_t nbytes) noexcept {
  if (!p) return;
  if (nbytes < kLarge) {
    std::free(p);
    return;
  }
  cache().give(p, size_class(nbytes));
}

int64_t host_cache_trim() noexcept { return cache().trim(); }
int64_t host_cache_bytes() noexcept { return cache().held(); }
namespace {
struct FileMappings {
  std::mutex mu;
  std::vector<std::pair<uintptr_t, size_t>> ranges;  // (start, length), few: one per open file
};
FileMappings& file_mappings() {
  static auto* m = new FileMappings();  // never destroyed: mappings may outlive static teardown
  return *m;
}
}  // namespace

void host_note_file_mapping(const void* p, size_t nbytes) noexcept {
  FileMappings& m = file_mappings();
  std::lock_guard<std::mutex> lock(m.mu);
  try {
    m.ranges.emplace_back(uintptr_t(p), nbytes);
  } catch (...) {  // out of memory: the mapping is simply never paged out
  }
}

void host_forget_file_mapping(const void* p) noexcept {
  FileMappings& m = file_mappings();
  std::lock_guard<std::mutex> lock(m.mu);
  std::erase_if(m.ranges, [&](const auto& r) { return r.first == uintptr_t(p); });
}

bool host_in_file_mapping(const void* p, size_t nbytes) noexcept {
  FileMappings& m = file_mappings();
  std::lock_guard<std::mutex> lock(m.mu);
  const uintptr_t b = uintptr_t(p);
  for (const auto& [start, len] : m.ranges)
    if (b >= start && nbytes <= len && b - start <= len - nbytes) return true;
  return false;
}

void host_pageout(const void* p, size_t nbytes) noexcept {
  if (!host_in_file_mapping(p, nbytes)) return;
#ifdef MADV_PAGEOUT
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (uintptr_t(p) + page - 1) / page * page;
  const uintptr_t end = (uintptr_t(p) + nbytes) / page * page;
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_PAGEOUT);
#else
  (void)p;
  (void)nbytes;
#endif
}

int64_t host_cache_limit() noexcept { return cache().limit(); }

}  // namespace nef
