#include "backends/cpu/thread_pool.h"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

thread_local bool t_in_region = false;  // this thread is running a chunk

using Clock = std::chrono::steady_clock;
// How long an idle thread keeps yielding before it blocks: long enough to span the gap between
// one kernel's region and the next (a futex wake-up costs tens of microseconds), short enough to
// leave a busy machine alone. Yielding, not spinning: a descheduled peer gets the core at once.
constexpr auto kIdleYield = std::chrono::microseconds(1000);

struct Job {
  const std::function<void(int64_t, int)>* fn = nullptr;
  int64_t chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int32_t> done{0};  // 32-bit: wait/notify is a plain futex
  std::mutex error_mu;
  std::exception_ptr error;
};

class Pool {
 public:
  // Serial when the pool is taken: a second caller must not wait for the first one's work.
  void run(int64_t chunks, int threads, const std::function<void(int64_t, int)>& fn) {
    std::unique_lock<std::mutex> region(region_mu_, std::try_to_lock);
    if (!region.owns_lock() || t_in_region || threads <= 1 || chunks <= 1) {
      serial(chunks, fn);
      return;
    }
    grow(threads - 1);
    Job job;
    job.fn = &fn;
    job.chunks = chunks;
    const int helpers = std::min<int>(threads - 1, int(chunks - 1));
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      wanted_ = helpers;
      joined_ = 0;
      generation_.fetch_add(1, std::memory_order_release);
    }
    generation_.notify_all();
    work(job, 0);
    // Wait for the chunks others took; yield first (they are usually nearly done), then block.
    const auto waiting_since = Clock::now();
    for (int spin = 0; job.done.load(std::memory_order_acquire) < chunks; ++spin) {
      if (spin < 16 || Clock::now() - waiting_since < kIdleYield) std::this_thread::yield();
      else job.done.wait(job.done.load(std::memory_order_acquire), std::memory_order_acquire);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = nullptr;
      wanted_ = 0;
    }
    // Workers still inside this job hold a pointer to it: wait until they have left.
    while (active_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  static void serial(int64_t chunks, const std::function<void(int64_t, int)>& fn) {
    for (int64_t c = 0; c < chunks; ++c) fn(c, 0);
  }

  // Claims and runs chunks until none are left.
  static void work(Job& job, int slot) {
    bool was = t_in_region;
    t_in_region = true;
    for (;;) {
      int64_t c = job.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= job.chunks) break;
      try {
        (*job.fn)(c, slot);
      } catch (...) {
        std::lock_guard<std::mutex> lock(job.error_mu);
        if (!job.error) job.error = std::current_exception();
      }
      if (job.done.fetch_add(1, std::memory_order_acq_rel) + 1 == job.chunks)
        job.done.notify_all();
    }
    t_in_region = was;
  }

  void grow(int workers) {
    std::lock_guard<std::mutex> lock(mu_);
    while (int(threads_.size()) < workers) {
      threads_.emplace_back([this] { loop(); });
      threads_.back().detach();  // the pool lives as long as the process
    }
  }

  void loop() {
    uint32_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      // A new region, or sleep: a few yields for back-to-back kernels, then the futex.
      const auto idle_since = Clock::now();
      for (int spin = 0; generation_.load(std::memory_order_acquire) == seen; ++spin) {
        if (spin < 16 || Clock::now() - idle_since < kIdleYield) std::this_thread::yield();
        else generation_.wait(seen, std::memory_order_acquire);
      }
      seen = generation_.load(std::memory_order_acquire);
      Job* job = nullptr;
      int slot = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (job_ && wanted_ > 0) {
          slot = joined_ + 1;  // the caller is slot 0
          --wanted_;
          ++joined_;
          job = job_;
          active_.fetch_add(1, std::memory_order_acq_rel);
        }
      }
      if (!job) continue;
      work(*job, slot);
      active_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::mutex region_mu_;  // one parallel region at a time
  std::mutex mu_;         // job_, wanted_, threads_
  Job* job_ = nullptr;
  int wanted_ = 0;        // workers still to join the current region
  int joined_ = 0;        // workers that joined it (their slots are 1..joined_)
  std::atomic<uint32_t> generation_{0};  // 32-bit: a plain futex
  std::atomic<int> active_{0};
  std::vector<std::thread> threads_;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: detached workers use it until exit
  return *p;
}

int affinity_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? int(hc) : 1;
}

}  // namespace

void run_chunks(int64_t chunks, int threads, const std::function<void(int64_t, int)>& fn) {
  if (chunks <= 0) return;
  if (chunks > INT32_MAX) throw Error(ErrorCode::Generic, str("[thread pool] ", chunks, " chunks in one region"));
  pool().run(chunks, threads, fn);
}

int default_threads() {
  static const int cpus = affinity_cpus();
  const char* env = std::getenv("NEF_NUM_THREADS");
  if (!env || !*env) return cpus;
  char* end = nullptr;
  long v = std::strtol(env, &end, 10);
  if (*end != '\0' || v < 1 || v > 4096)
    throw ValidationError(str("[config] NEF_NUM_THREADS must be a positive integer (threads), got '",
                              env, "'"));
  return int(v);
}

}  // namespace nef::backend::cpu
