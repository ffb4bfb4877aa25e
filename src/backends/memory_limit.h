// Per-device memory budgets: NEF_DEVICE_MEMORY_LIMIT caps what NEF allocates on a device, to share
// a GPU with other programs and to exercise the out-of-memory ladder. Entries are
// ','-separated "<device>=<size>" ("opencl:0=64M", a backend "opencl=1G") or a bare "<size>" for
// every non-host device; sizes take K/M/G suffixes (powers of 1024). The most specific entry wins.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace nef::backend {

// Bytes allowed on device `id` of `backend`, or -1 for no limit. ValidationError on a malformed
// NEF_DEVICE_MEMORY_LIMIT (read on every call).
int64_t memory_limit(const std::string& id, const std::string& backend);

// What one device has allocated against its limit. Thread-safe.
class MemoryBudget {
 public:
  MemoryBudget(std::string id, std::string backend)
      : id_(std::move(id)), backend_(std::move(backend)) {}
  // Accounts `bytes` or throws OutOfMemoryError naming the device, the request and the limit.
  void reserve(int64_t bytes);
  void release(int64_t bytes) { used_.fetch_sub(bytes); }
  int64_t used() const { return used_.load(); }
  // Bytes left under the limit (-1: no limit).
  int64_t left() const;

 private:
  std::string id_, backend_;
  std::atomic<int64_t> used_{0};
};

}  // namespace nef::backend
