// The shared arena pool (runtime/arena_pool.h): best fit, smaller idle arenas dropped when a run
// needs a larger one, a cap per device, eviction; and plans of different sizes run one after
// another keep one arena between them.
#include "runtime/arena_pool.h"

#include <gtest/gtest.h>

#include "backends/registry.h"
#include "nef/tensor.h"

namespace nef {
namespace {

using runtime::evict_idle_arenas;
using runtime::give_back_arena;
using runtime::idle_arena_bytes;
using runtime::take_arena;

TEST(ArenaPool, BestFitDropSmallerAndCap) {
  evict_idle_arenas();
  backend::Device& dev = *backend::host_device();
  auto a100 = dev.allocate(100), a300 = dev.allocate(300), a200 = dev.allocate(200);
  Storage* p200 = a200.get();
  give_back_arena(dev, a100);
  give_back_arena(dev, a300);
  give_back_arena(dev, std::move(a200));
  EXPECT_EQ(idle_arena_bytes(), 600);
  auto got = take_arena(dev, 150);  // the smallest that fits
  EXPECT_EQ(got.get(), p200);
  EXPECT_EQ(idle_arena_bytes(), 400);
  give_back_arena(dev, std::move(got));
  // Nothing fits 1000: the caller allocates, and the smaller idle ones are dropped.
  EXPECT_EQ(take_arena(dev, 1000), nullptr);
  EXPECT_EQ(idle_arena_bytes(), 0);
  for (int i = 0; i < runtime::kMaxIdlePerDevice + 2; ++i)
    give_back_arena(dev, dev.allocate(size_t(64 * (i + 1))));
  int64_t kept = 0;  // the largest kMaxIdlePerDevice
  for (int i = 2; i < runtime::kMaxIdlePerDevice + 2; ++i) kept += 64 * (i + 1);
  EXPECT_EQ(idle_arena_bytes(), kept);
  EXPECT_EQ(evict_idle_arenas(), kept);
  EXPECT_EQ(idle_arena_bytes(), 0);
  give_back_arena(dev, nullptr);  // a run that never allocated its arena
  EXPECT_EQ(idle_arena_bytes(), 0);
}

TEST(ArenaPool, PlansOfGrowingSizeShareOneArena) {
  // Chains with intermediates in the arena (softmax does not fuse with what follows it).
  auto run = [](int64_t n) {
    Tensor y = placeholder("x", {n}, DType::Float32);
    for (int i = 0; i < 3; ++i) y = softmax(y * 2.0 + 1.0);
    Array x = Array::empty({n}, DType::Float32);
    for (int64_t i = 0; i < n; ++i) x.data_as<float>()[i] = float(i % 17) * 0.1f;
    LoadedGraph::from_tensors({{"y", y}}).run({{"x", x}});
  };
  evict_idle_arenas();
  int64_t last = 0;
  for (int64_t n : {1000, 20000, 300000}) {
    run(n);
    const int64_t idle = idle_arena_bytes();
    EXPECT_GT(idle, last) << n;  // the larger arena replaced the smaller one
    EXPECT_GE(idle, 2 * n * 4) << n;
    last = idle;
  }
  // The small plans again: served by the large arena, nothing but outputs allocated.
  run(1000);  // warm
  const int64_t before = stats()["bytes_allocated"];
  run(1000);
  run(20000);
  EXPECT_LE(stats()["bytes_allocated"] - before, (1000 + 20000) * 4 * 2);
  EXPECT_EQ(idle_arena_bytes(), last);
}

}  // namespace
}  // namespace nef
