// Intra-op parallelism for CPU kernels, on the backend's thread pool (thread_pool.h). Kernels
// call parallel_for with a grain size so that small work stays on one thread; the chunking
// depends only on the work size, the grain and the thread count, so results are deterministic
// for a given thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backends/cpu/thread_pool.h"

namespace nef::backend::cpu {

// Threads kernels may use: while a kernel runs, the count it was compiled for (its workspace
// holds that many per-thread slots, and the kernel cache keys on it); elsewhere the session's
// setting (nef.config(threads=N)), else NEF_NUM_THREADS, else one per CPU this process may use.
int num_threads();

// Pins num_threads() on this thread to `threads` for a kernel's run (see CpuKernel).
class KernelThreadsScope {
 public:
  explicit KernelThreadsScope(int threads);
  ~KernelThreadsScope();
  KernelThreadsScope(const KernelThreadsScope&) = delete;
  KernelThreadsScope& operator=(const KernelThreadsScope&) = delete;

 private:
  int previous_;
};

// How many threads (slots) a parallel_for over [0, n) uses: at most num_threads(), and no more
// than there are grain-sized pieces. Per-thread scratch is sized by this.
inline int64_t parallel_slots(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  return std::max<int64_t>(
      1, std::min<int64_t>(num_threads(), (n + grain - 1) / std::max<int64_t>(grain, 1)));
}

// How many chunks [0, n) is cut into: up to kChunksPerThread per slot, so that a thread the OS
// has descheduled holds up at most a small piece while the others take the rest. Depends only
// on n, grain and the thread count, so results are deterministic for a given thread count.
inline constexpr int64_t kChunksPerThread = 4;
inline int64_t parallel_chunk_count(int64_t n, int64_t grain) {
  const int64_t slots = parallel_slots(n, grain);
  if (slots <= 1) return slots;
  return std::min<int64_t>(slots * kChunksPerThread, (n + grain - 1) / std::max<int64_t>(grain, 1));
}

// Calls fn(slot, begin, end) over disjoint chunks covering [0, n) (n / parallel_chunk_count
// items each, give or take one: about `grain` or more), in parallel; `slot` in [0,
// parallel_slots(n, grain)) is the running thread's: no two chunks running at the same time share
// one, so per-thread scratch lives at slot `slot` of a kernel's workspace. Which slot runs a chunk
// varies; what a chunk computes must not.
template <typename Fn>
void parallel_for_slots(int64_t n, int64_t grain, Fn&& fn) {
  const int64_t slots = parallel_slots(n, grain);
  if (slots <= 1) {
    if (n > 0) fn(int64_t{0}, int64_t{0}, n);
    return;
  }
  const int64_t chunks = parallel_chunk_count(n, grain);
  run_chunks(chunks, int(slots),
             [&](int64_t c, int slot) { fn(int64_t(slot), n * c / chunks, n * (c + 1) / chunks); });
}

// parallel_for_slots without the slot.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  parallel_for_slots(n, grain, [&](int64_t, int64_t b, int64_t e) { fn(b, e); });
}

}  // namespace nef::backend::cpu
