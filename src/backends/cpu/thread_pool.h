// The CPU backend's one thread pool (no OpenMP). A parallel region hands chunks to the calling
// thread and to sleeping workers; workers that run out of work yield briefly, then block in the
// kernel (futex), so a machine busy with other processes never sees NEF threads spinning at a
// barrier. A region started while the pool is busy (a second thread's run, or a region nested
// in a chunk) runs on its caller alone: the pool never oversubscribes the cores.
//
// Thread-safety: run() may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>

namespace nef::backend::cpu {

// Runs fn(c, slot) for every chunk c in [0, chunks) using up to `threads` threads (the caller is
// one) and returns when all are done. `slot` in [0, threads) is the running thread's index in
// this region (the caller's is 0): chunks running at the same time have different slots. Chunks
// are claimed in order by whichever thread is free; which one runs a chunk must not change what
// it computes, so results depend only on the chunking. An exception thrown by fn is rethrown
// here once the chunks already running have finished; chunks not started by then are skipped.
void run_chunks(int64_t chunks, int threads, const std::function<void(int64_t, int)>& fn);

// Threads the host has for NEF: NEF_NUM_THREADS when set (1 to 4096; anything else is a
// ValidationError on every call), else the CPUs this process may run on (its affinity mask).
// Read once per process.
int default_threads();
// NEF_NUM_THREADS's value as a thread count (throws ValidationError).
int parse_num_threads(const char* value);

}  // namespace nef::backend::cpu
