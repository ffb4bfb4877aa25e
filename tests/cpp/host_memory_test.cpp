// The host block cache (common/host_memory.h): large blocks are reused by size class, memory is
// aligned and writable, a miss gives back cached blocks first, the cache respects its limit,
// trim empties it, and Storage goes through it.
#include "common/host_memory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "format/mmap_file.h"
#include "nef/array.h"

namespace nef::test {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

TEST(HostMemory, SmallAndLargeBlocksAreAlignedAndWritable) {
  host_cache_trim();
  for (size_t n : {size_t{1}, size_t{63}, size_t{4096}, kMiB - 1, kMiB, 3 * kMiB + 17}) {
    auto* p = static_cast<unsigned char*>(host_alloc(n));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << n;
    std::memset(p, 0xab, n);
    EXPECT_EQ(p[n - 1], 0xab);
    host_free(p, n);
  }
}

TEST(HostMemory, LargeBlocksAreReusedBySizeClass) {
  if (host_cache_limit() < int64_t(16 * kMiB)) GTEST_SKIP() << "host cache off or tiny";
  host_cache_trim();
  void* a = host_alloc(5 * kMiB);
  host_free(a, 5 * kMiB);
  EXPECT_EQ(host_cache_bytes(), int64_t(5 * kMiB));
  // Same size class (5 MiB rounds to 5 MiB; 5 MiB - 100 bytes to the same class): same block.
  void* b = host_alloc(5 * kMiB - 100);
  EXPECT_EQ(b, a);
  EXPECT_EQ(host_cache_bytes(), 0);
  host_free(b, 5 * kMiB - 100);
  // A miss (another class) gives the cached block back before mapping a new one.
  void* c = host_alloc(9 * kMiB);
  EXPECT_EQ(host_cache_bytes(), 0);
  host_free(c, 9 * kMiB);
  EXPECT_GT(host_cache_bytes(), 0);
  EXPECT_GE(host_cache_trim(), int64_t(9 * kMiB));
  EXPECT_EQ(host_cache_bytes(), 0);
}

TEST(HostMemory, CacheStaysWithinItsLimit) {
  host_cache_trim();
  const int64_t limit = host_cache_limit();
  const size_t block = 64 * kMiB;
  std::vector<void*> live;
  for (int i = 0; i < 4; ++i) live.push_back(host_alloc(block));
  for (void* p : live) host_free(p, block);
  EXPECT_LE(host_cache_bytes(), limit);
  EXPECT_LE(host_cache_bytes(), int64_t(4 * block));
  host_cache_trim();
}

TEST(HostMemory, StorageReusesFreedOutputs) {
  if (host_cache_limit() < int64_t(64 * kMiB)) GTEST_SKIP() << "host cache off or tiny";
  host_cache_trim();
  const void* first = nullptr;
  {
    Array a = Array::empty({int64_t(8 * kMiB / 4)}, DType::Float32);
    first = a.storage->data();
    static_cast<float*>(a.storage->data())[0] = 1.0f;
  }
  Array b = Array::empty({int64_t(8 * kMiB / 4)}, DType::Float32);
  EXPECT_EQ(b.storage->data(), first);
  Array empty = Array::empty({0}, DType::Float32);  // zero bytes: still a valid pointer
  EXPECT_NE(empty.storage->data(), nullptr);
}

// host_pageout acts on NEF's own file mappings only: pages of a mapped file are handed back and
// read again unchanged; a caller's heap array is never a file mapping (its pages would go to
// swap), and a mapping is forgotten once unmapped.
TEST(HostMemory, PageoutOnlyTouchesNotedFileMappings) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("nef_pageout_" + std::to_string(::getpid())))
          .string();
  std::vector<unsigned char> bytes(3 * kMiB + 123);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i * 131 + 7);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  const uint8_t* data = nullptr;
  {
    auto m = format::MappedFile::open(path);
    data = m->data();
    EXPECT_TRUE(host_in_file_mapping(data, m->size()));
    EXPECT_TRUE(host_in_file_mapping(data + 4096, 100));
    EXPECT_FALSE(host_in_file_mapping(data + 4096, m->size()));  // runs past the end
    host_pageout(data, m->size());
    EXPECT_EQ(std::memcmp(data, bytes.data(), bytes.size()), 0);  // read back from the file
  }
  EXPECT_FALSE(host_in_file_mapping(data, 1));  // unmapped: forgotten
  std::vector<unsigned char> heap(bytes);
  EXPECT_FALSE(host_in_file_mapping(heap.data(), heap.size()));
  host_pageout(heap.data(), heap.size());  // a no-op
  EXPECT_EQ(heap, bytes);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace nef::test
