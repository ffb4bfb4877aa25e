// Events shared by every backend: the completed singleton and host-completed events.
#include <chrono>

#include "backends/backend.h"

namespace nef::backend {
namespace {

class CompletedEvent final : public Event {
 public:
  void wait() override {}
  bool ready() const override { return true; }
  bool failed() const override { return false; }
  void on_complete(std::function<void()> fn) override { fn(); }
};

}  // namespace

double host_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const EventPtr& completed_event() {
  static const EventPtr e = std::make_shared<CompletedEvent>();
  return e;
}

void HostEvent::wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  if (error_) std::rethrow_exception(error_);
}

bool HostEvent::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

bool HostEvent::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_ && error_;
}

std::exception_ptr HostEvent::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void HostEvent::complete(std::exception_ptr error) {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    done_ = true;
    completed_at_ = host_seconds();
    error_ = std::move(error);
    callbacks.swap(callbacks_);
  }
  cv_.notify_all();
  for (auto& fn : callbacks) fn();
}

void HostEvent::on_complete(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!done_) {
      callbacks_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

}  // namespace nef::backend
