// Intra-op parallelism for CPU kernels (OpenMP underneath). Kernels call parallel_for with a
// grain size so that small work stays on one thread.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nef::backend::cpu {

// Threads kernels may use: the session's setting (nef.config(threads=N)), default one per core.
int num_threads();

// Calls fn(begin, end) over disjoint chunks covering [0, n). Chunks hold at least `grain` items.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  int threads = num_threads();
  int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / std::max<int64_t>(grain, 1));
  if (chunks <= 1) {
    fn(int64_t{0}, n);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for num_threads(static_cast <int>(chunks)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    fn(b, e);
  }
#else
  fn(int64_t{0}, n);
#endif
}

// Like parallel_for, with each chunk's index c in [0, parallel_chunks(n, grain)): per-chunk
// scratch lives at slot c of a kernel's workspace.
inline int64_t parallel_chunks(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  return std::max<int64_t>(
      1, std::min<int64_t>(num_threads(), (n + grain - 1) / std::max<int64_t>(grain, 1)));
}
template <typename Fn>
void parallel_for_chunks(int64_t n, int64_t grain, Fn&& fn) {
  const int64_t chunks = parallel_chunks(n, grain);
  if (chunks <= 1) {
    if (n > 0) fn(int64_t{0}, int64_t{0}, n);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for num_threads(static_cast <int>(chunks)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) fn(c, n * c / chunks, n * (c + 1) / chunks);
#else
  fn(int64_t{0}, int64_t{0}, n);
#endif
}

}  // namespace nef::backend::cpu
