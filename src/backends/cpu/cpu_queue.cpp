#include "backends/cpu/cpu_queue.h"

#include <chrono>

#include "common/session.h"

namespace nef::backend::cpu {

CpuQueue::~CpuQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

std::exception_ptr CpuQueue::run_task(const std::function<void()>& work, Waits waits,
                                      double* seconds) {
  for (const EventPtr& w : waits) {
    try {
      w->wait();
    } catch (...) {
      return std::current_exception();  // a failed input: this work must not run
    }
  }
  // Timed only for deferred work (its event reports it); inline work is timed by the run.
  const auto t0 =
      seconds ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  std::exception_ptr err;
  try {
    work();
  } catch (...) {
    err = std::current_exception();
  }
  if (seconds)
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return err;
}

EventPtr CpuQueue::submit(std::function<void()> work, Waits waits) {
  bool inline_ok;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inline_ok = tasks_.empty() && !busy_;
  }
  for (size_t i = 0; inline_ok && i < waits.size(); ++i) inline_ok = waits[i]->ready();
  if (inline_ok) {
    std::exception_ptr err = run_task(work, waits, nullptr);
    if (!err) return completed_event();
    auto failed = std::make_shared<HostEvent>();
    failed->complete(err);
    return failed;
  }
  // Deferred: the worker runs it in this thread's session (stats, thread count).
  Session* session = &current_session();
  Task t;
  t.work = [session, w = std::move(work)] {
    SessionScope scope(*session);
    w();
  };
  t.waits.assign(waits.begin(), waits.end());
  t.done = std::make_shared<HostEvent>();
  EventPtr done = t.done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(t));
    if (!worker_.joinable()) worker_ = std::thread([this] { worker_loop(); });
  }
  cv_.notify_one();
  return done;
}

void CpuQueue::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stop requested and drained
    Task t = std::move(tasks_.front());
    tasks_.pop_front();
    busy_ = true;
    lock.unlock();
    double seconds = -1;
    std::exception_ptr err = run_task(t.work, t.waits, &seconds);
    t.done->set_device_seconds(seconds);
    t.done->complete(err);
    lock.lock();
    busy_ = false;
    if (tasks_.empty()) idle_cv_.notify_all();
  }
}

void CpuQueue::synchronize() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return tasks_.empty() && !busy_; });
}

}  // namespace nef::backend::cpu
