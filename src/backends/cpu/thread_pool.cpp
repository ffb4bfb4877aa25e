#include "backends/cpu/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
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

// One parallel region. Shared with the workers that joined it: a worker that wakes late still
// holds the job after the caller has returned, and only looks at `next` (it finds nothing left
// to claim, so it never calls fn, whose owner may be gone by then).
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
    if (t_in_region || threads <= 1 || chunks <= 1) {  // nested, or nothing to share
      serial(chunks, fn);
      return;
    }
    std::unique_lock<std::mutex> region(region_mu_, std::try_to_lock);
    if (!region.owns_lock()) {
      serial(chunks, fn);
      return;
    }
    const int workers = grow(threads - 1);
    if (workers == 0) {
      region.unlock();
      serial(chunks, fn);
      return;
    }
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->chunks = chunks;
    const int helpers = std::min<int>(workers, int(chunks - 1));
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = job;
      wanted_ = helpers;
      joined_ = 0;
      generation_.fetch_add(1, std::memory_order_release);
    }
    generation_.notify_all();
    work(*job, 0);
    // Wait for the chunks others took; yield first (they are usually nearly done), then block.
    const auto waiting_since = Clock::now();
    for (int spin = 0; job->done.load(std::memory_order_acquire) < chunks; ++spin) {
      if (spin < 16 || Clock::now() - waiting_since < kIdleYield) std::this_thread::yield();
      else job->done.wait(job->done.load(std::memory_order_acquire), std::memory_order_acquire);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_.reset();
      wanted_ = 0;
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  static void serial(int64_t chunks, const std::function<void(int64_t, int)>& fn) {
    for (int64_t c = 0; c < chunks; ++c) fn(c, 0);
  }

  // Claims and runs chunks until none are left. After a failure the remaining chunks are not
  // started (they are counted as done so that the caller stops waiting).
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
        // Claim what is left: skipped chunks count as finished.
        const int64_t rest = job.next.exchange(job.chunks, std::memory_order_relaxed);
        if (rest < job.chunks)
          job.done.fetch_add(int32_t(job.chunks - rest), std::memory_order_acq_rel);
      }
      if (job.done.fetch_add(1, std::memory_order_acq_rel) + 1 == job.chunks) job.done.notify_all();
    }
    t_in_region = was;
  }

  // Starts workers up to `wanted`; returns how many exist (fewer when the system refuses
  // threads: the region then runs with those).
  int grow(int wanted) {
    std::lock_guard<std::mutex> lock(mu_);
    while (int(threads_) < wanted) {
      try {
        std::thread([this] { loop(); }).detach();  // the pool lives as long as the process
      } catch (const std::system_error&) {
        break;
      }
      ++threads_;
    }
    return std::min(int(threads_), wanted);
  }

  void loop() {
    uint32_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      // A new region, or sleep: yield for back-to-back kernels, then the futex.
      const auto idle_since = Clock::now();
      for (int spin = 0; generation_.load(std::memory_order_acquire) == seen; ++spin) {
        if (spin < 16 || Clock::now() - idle_since < kIdleYield) std::this_thread::yield();
        else generation_.wait(seen, std::memory_order_acquire);
      }
      seen = generation_.load(std::memory_order_acquire);
      std::shared_ptr<Job> job;
      int slot = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (job_ && wanted_ > 0) {
          slot = joined_ + 1;  // the caller is slot 0
          --wanted_;
          ++joined_;
          job = job_;
        }
      }
      if (job) work(*job, slot);
    }
  }

  std::mutex region_mu_;  // one parallel region at a time
  std::mutex mu_;         // job_, wanted_, joined_, threads_
  std::shared_ptr<Job> job_;
  int wanted_ = 0;                       // workers still to join the current region
  int joined_ = 0;                       // workers that joined it (their slots are 1..joined_)
  std::atomic<uint32_t> generation_{0};  // 32-bit: a plain futex
  size_t threads_ = 0;                   // workers started
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
  if (chunks > INT32_MAX)
    throw Error(ErrorCode::Generic, str("[thread pool] ", chunks, " chunks in one region"));
  pool().run(chunks, threads, fn);
}

int parse_num_threads(const char* value) {
  char* end = nullptr;
  long v = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || v < 1 || v > 4096)
    throw ValidationError(
        str("[config] NEF_NUM_THREADS must be an integer from 1 to 4096, got '", value, "'"));
  return int(v);
}

int default_threads() {
  // Read once: the environment is not re-read per kernel (setenv from another thread would
  // race with getenv), and a bad value fails every call the same way.
  struct Setting {
    int threads = 0;
    std::string error;
  };
  static const Setting setting = [] {
    Setting s;
    const char* env = std::getenv("NEF_NUM_THREADS");
    if (!env || !*env) {
      s.threads = affinity_cpus();
      return s;
    }
    try {
      s.threads = parse_num_threads(env);
    } catch (const ValidationError& e) {
      s.error = e.what();
    }
    return s;
  }();
  if (!setting.error.empty()) throw ValidationError(setting.error);
  return setting.threads;
}

}  // namespace nef::backend::cpu
