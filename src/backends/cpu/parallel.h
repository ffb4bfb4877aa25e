// Intra-op parallelism for CPU kernels, on the backend's thread pool (thread_pool.h). Kernels
// call parallel_for with a grain size so that small work stays on one thread; the chunking
// depends only on the work size, the grain and the thread count, so results are deterministic
// for a given thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backends/cpu/thread_pool.h"

namespace nef::backend::cpu {

// Threads kernels may use: the session's setting (nef.config(threads=N)), else NEF_NUM_THREADS,
// else one per CPU this process may run on.
int num_threads();

// How many chunks parallel_for splits [0, n) into: at most num_threads(), each >= grain items.
inline int64_t parallel_chunks(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  return std::max<int64_t>(
      1, std::min<int64_t>(num_threads(), (n + grain - 1) / std::max<int64_t>(grain, 1)));
}

// Calls fn(begin, end) over disjoint chunks covering [0, n). Chunks hold at least `grain` items.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  const int64_t chunks = parallel_chunks(n, grain);
  if (chunks <= 1) {
    if (n > 0) fn(int64_t{0}, n);
    return;
  }
  run_chunks(chunks, int(chunks), [&](int64_t c) { fn(n * c / chunks, n * (c + 1) / chunks); });
}

// Like parallel_for, with each chunk's index c in [0, parallel_chunks(n, grain)): per-chunk
// scratch lives at slot c of a kernel's workspace.
template <typename Fn>
void parallel_for_chunks(int64_t n, int64_t grain, Fn&& fn) {
  const int64_t chunks = parallel_chunks(n, grain);
  if (chunks <= 1) {
    if (n > 0) fn(int64_t{0}, int64_t{0}, n);
    return;
  }
  run_chunks(chunks, int(chunks),
             [&](int64_t c) { fn(c, n * c / chunks, n * (c + 1) / chunks); });
}

}  // namespace nef::backend::cpu
