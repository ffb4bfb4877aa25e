// The CPU backend's thread pool (backends/cpu/thread_pool.h) and the parallel_for helpers on it:
// every chunk runs exactly once, exceptions reach the caller, nested and concurrent regions run
// on their caller without deadlock, results depend only on the chunking, and NEF_NUM_THREADS is
// read and validated.
#include <atomic>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backends/cpu/parallel.h"
#include "backends/cpu/thread_pool.h"
#include "common/session.h"
#include "nef/error.h"

namespace nef::test {
namespace {

using backend::cpu::default_threads;
using backend::cpu::parallel_chunk_count;
using backend::cpu::parallel_for;
using backend::cpu::parallel_for_slots;
using backend::cpu::parallel_slots;
using backend::cpu::run_chunks;

TEST(ThreadPool, EveryChunkRunsOnce) {
  for (int threads : {1, 2, 3, 8}) {
    for (int64_t chunks : {0, 1, 2, 5, 97}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks + 1));
      std::vector<std::atomic<int>> busy(static_cast<size_t>(threads));
      run_chunks(chunks, threads, [&](int64_t c, int slot) {
        ASSERT_GE(slot, 0);
        ASSERT_LT(slot, threads);
        // No two chunks running at the same time share a slot.
        EXPECT_EQ(busy[size_t(slot)].fetch_add(1), 0);
        hits[size_t(c)].fetch_add(1);
        busy[size_t(slot)].fetch_sub(1);
      });
      for (int64_t c = 0; c < chunks; ++c)
        EXPECT_EQ(hits[size_t(c)].load(), 1) << "threads " << threads << " chunk " << c;
    }
  }
}

TEST(ThreadPool, ManyRegionsBackToBack) {
  // Regions closer together than a worker's idle period, and some after it has gone to sleep.
  std::atomic<int64_t> total{0};
  for (int r = 0; r < 2000; ++r) {
    run_chunks(4, 2, [&](int64_t c, int) { total.fetch_add(c + 1); });
    if (r % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  EXPECT_EQ(total.load(), 2000 * 10);
}

TEST(ThreadPool, ExceptionReachesCaller) {
  for (int threads : {1, 2, 4}) {
    std::atomic<int> ran{0};
    EXPECT_THROW(run_chunks(64, threads,
                            [&](int64_t c, int) {
                              ran.fetch_add(1);
                              if (c == 7) throw ShapeError("[test] chunk 7");
                            }),
                 ShapeError);
    // Chunks 0..7 ran; the rest may have been skipped once chunk 7 failed.
    EXPECT_GE(ran.load(), 8);
    EXPECT_LE(ran.load(), 64);
  }
  // The pool still works afterwards.
  std::atomic<int> after{0};
  run_chunks(8, 2, [&](int64_t, int) { after.fetch_add(1); });
  EXPECT_EQ(after.load(), 8);
}

TEST(ThreadPool, NestedRegionRunsOnItsCaller) {
  std::atomic<int> inner{0};
  run_chunks(4, 2, [&](int64_t, int) {
    const auto self = std::this_thread::get_id();
    run_chunks(6, 2, [&](int64_t, int slot) {
      EXPECT_EQ(slot, 0);
      EXPECT_EQ(std::this_thread::get_id(), self);
      inner.fetch_add(1);
    });
  });
  EXPECT_EQ(inner.load(), 24);
}

TEST(ThreadPool, ConcurrentCallersDoNotDeadlock) {
  std::vector<std::thread> callers;
  std::atomic<int64_t> sum{0};
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&] {
      for (int r = 0; r < 300; ++r) run_chunks(3, 2, [&](int64_t c, int) { sum.fetch_add(c); });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(sum.load(), 4 * 300 * 3);
}

TEST(ParallelFor, CoversTheRangeInDisjointChunks) {
  current_session().set_threads(3);
  for (int64_t n : {0, 1, 2, 3, 10, 1001}) {
    for (int64_t grain : {1, 7, 5000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallel_for(n, grain, [&](int64_t b, int64_t e) {
        EXPECT_LE(b, e);
        for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << n << " " << grain;
      // Slots stay below parallel_slots (they index per-thread workspace); chunks follow
      // parallel_chunk_count's even split, at least `grain` items each when there are several.
      const int64_t slots = parallel_slots(n, grain), chunks = parallel_chunk_count(n, grain);
      EXPECT_LE(slots, 3);
      EXPECT_LE(chunks, slots * backend::cpu::kChunksPerThread);
      std::atomic<int64_t> covered{0};
      parallel_for_slots(n, grain, [&](int64_t slot, int64_t b, int64_t e) {
        EXPECT_GE(slot, 0);
        EXPECT_LT(slot, slots);
        if (chunks > 1) EXPECT_GE(e - b, std::min<int64_t>(grain, n / chunks));
        covered.fetch_add(e - b);
      });
      EXPECT_EQ(covered.load(), n);
    }
  }
  current_session().set_threads(0);
}

TEST(ParallelFor, ResultsDependOnlyOnTheChunking) {
  // Per-chunk float partial sums combined in chunk order: identical on every run.
  std::vector<float> x(100003);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 1.0f / float(i + 1);
  current_session().set_threads(2);
  // Per-chunk float partial sums (a chunk is identified by where it begins), combined in order.
  auto reduce = [&] {
    const int64_t n = int64_t(x.size()), chunks = parallel_chunk_count(n, 1000);
    std::vector<float> part(size_t(chunks), 0.0f);
    parallel_for(n, 1000, [&](int64_t b, int64_t e) {
      float acc = 0.0f;
      for (int64_t i = b; i < e; ++i) acc += x[size_t(i)];
      part[size_t((b * chunks + n - 1) / n)] = acc;  // c = ceil(b * chunks / n) for b = n*c/chunks
    });
    return std::accumulate(part.begin(), part.end(), 0.0f);
  };
  const float first = reduce();
  for (int r = 0; r < 50; ++r) ASSERT_EQ(reduce(), first);
  current_session().set_threads(0);
}

TEST(DefaultThreads, ParsesAndValidates) {
  using backend::cpu::parse_num_threads;
  EXPECT_EQ(parse_num_threads("3"), 3);
  EXPECT_EQ(parse_num_threads("4096"), 4096);
  for (const char* bad : {"", "0", "-2", "two", "2x", "4097", "99999999999999999999"}) {
    try {
      parse_num_threads(bad);
      ADD_FAILURE() << "accepted NEF_NUM_THREADS=" << bad;
    } catch (const ValidationError& e) {
      EXPECT_NE(std::string(e.what()).find("NEF_NUM_THREADS"), std::string::npos);
    }
  }
  EXPECT_GE(default_threads(), 1);
  current_session().set_threads(1);  // nef.config(threads=1) wins over the environment
  EXPECT_EQ(backend::cpu::num_threads(), 1);
  current_session().set_threads(0);
}

}  // namespace
}  // namespace nef::test
