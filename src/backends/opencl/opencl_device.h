// One OpenCL device: its context, memory (a MemorySpace over cl_mem buffers, zero-copy mapping
// where the device shares host memory), pooled in-order queues with profiling, events that bridge
// to other devices' events, programs built through the on-disk cache, and the kernels of
// kernels.h. Thread-safe: allocation, queues, builds and launches may come from any thread.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/memory_limit.h"
#include "backends/opencl/cl_api.h"

namespace nef::backend::opencl {

class OpenclDevice;

// A kernel function built from one source, shared by every launch of that source (device cache).
struct ClKernel {
  cl_kernel kernel = nullptr;
  size_t max_work_group = 1;
  std::mutex mu;  // OpenCL kernel objects are not re-entrant: set arguments and enqueue under it
};

// An event of one OpenCL command. It keeps alive what the command reads or writes (host arrays,
// temporary buffers) and the foreign events it waited on, whose error it reports when it fails.
class OpenclEvent final : public Event {
 public:
  OpenclEvent(const Api& cl, cl_event ev, cl_context ctx, std::vector<EventPtr> deps,
              std::vector<std::shared_ptr<void>> keep);
  ~OpenclEvent() override;
  void wait() override;
  bool ready() const override;
  bool failed() const override;
  double device_seconds() const override;
  double completed_at() const override { return completed_at_->load(); }
  void on_complete(std::function<void()> fn) override;
  cl_event handle() const { return ev_; }
  cl_context context() const { return ctx_; }

 private:
  cl_int status() const;
  const Api& cl_;
  cl_event ev_;
  cl_context ctx_;
  std::vector<EventPtr> deps_;
  std::vector<std::shared_ptr<void>> keep_;
  // Set by a completion callback (shared: the callback may outlive the event).
  std::shared_ptr<std::atomic<double>> completed_at_ = std::make_shared<std::atomic<double>>(-1);
};

// A native wait list for `waits`: OpenCL events as they are, another device's pending events
// through user events completed by their callbacks. `failed` is set (and nothing should be
// enqueued) when a wait already failed.
struct WaitList {
  std::vector<cl_event> events;
  std::vector<cl_event> owned;  // user events made here: released with the list
  std::vector<EventPtr> deps;
  EventPtr failed;
  const Api* cl = nullptr;
  ~WaitList();
  cl_uint size() const { return cl_uint(events.size()); }
  const cl_event* data() const { return events.empty() ? nullptr : events.data(); }
};

class OpenclQueue final : public Queue {
 public:
  OpenclQueue(OpenclDevice& dev, cl_command_queue q) : dev_(dev), q_(q) {}
  ~OpenclQueue() override;
  void synchronize() override;
  cl_command_queue handle() const { return q_; }
  OpenclDevice& device() const { return dev_; }
  WaitList wait_list(Waits waits) const;
  // The event of an enqueued command (taking `ev`), holding `deps` and `keep`.
  EventPtr wrap(cl_event ev, const WaitList& waits, std::vector<std::shared_ptr<void>> keep) const;

 private:
  OpenclDevice& dev_;
  cl_command_queue q_;
};

class OpenclDevice final : public Device, public MemorySpace {
 public:
  // The device, or null with `why` (a device that cannot make a context or queue).
  static std::shared_ptr<OpenclDevice> make(const Api& cl, cl_platform_id platform,
                                            cl_device_id device, int index, std::string& why);
  ~OpenclDevice() override;

  // Device
  const DeviceInfo& info() const override { return info_; }
  bool supports(const ir::Node& node, const ir::Graph& graph) const override;
  std::shared_ptr<const Kernel> compile(const ir::Node& node,
                                        const ir::Graph& graph) const override;
  std::shared_ptr<Storage> allocate(size_t nbytes) override;
  QueuePtr acquire_queue() override;
  EventPtr copy(const Array& src, const Array& dst, Queue& queue, Waits waits) override;
  std::optional<Array> map_from_host(const Array& src) override;
  std::optional<std::pair<Array, EventPtr>> map_to_host(const Array& src, Queue& queue,
                                                        Waits waits) override;
  int64_t trim() override;
  // The memory limit shapes placement (budgets): plans made under another limit are not reused.
  std::string config_key() const override;

  // MemorySpace
  const std::string& name() const override { return info_.id; }
  void read(const Storage& s, size_t offset, void* dst, size_t n) const override;
  void write(const Storage& s, size_t offset, const void* src, size_t n) const override;
  void release(void* handle, size_t nbytes) const noexcept override;

  const Api& cl() const { return cl_; }
  cl_context context() const { return ctx_; }
  cl_device_id id_handle() const { return dev_; }
  // The kernel `entry` of the program built from `source` (memory cache, then the disk cache,
  // then the compiler). Throws CompileError with the build log.
  ClKernel& kernel(const std::string& source, const std::string& entry) const;
  // Size limits kernels consult.
  size_t max_work_group() const { return max_wg_; }
  size_t local_mem_bytes() const { return local_mem_; }
  // A temporary device buffer for `nbytes`, released when the returned storage is.
  std::shared_ptr<Storage> scratch(size_t nbytes);

 private:
  OpenclDevice(const Api& cl, cl_device_id dev, cl_context ctx, DeviceInfo info);
  const Api& cl_;
  cl_device_id dev_;
  cl_context ctx_;
  DeviceInfo info_;
  size_t max_wg_ = 1, local_mem_ = 0, base_align_ = 128;
  mutable MemoryBudget budget_;
  mutable std::mutex mu_;
  std::vector<cl_command_queue> pool_;
  cl_program build(const std::string& source) const;
  mutable std::map<std::string, cl_program> programs_;  // by source
  mutable std::map<std::pair<std::string, std::string>, std::unique_ptr<ClKernel>> kernels_;
  cl_command_queue misc_ = nullptr;  // blocking reads/writes and unmaps
  mutable std::mutex unbudgeted_mu_;
  mutable std::vector<void*> unbudgeted_;  // buffers over host memory (map_from_host)
};

// "pthread-skylake-avx512 (PoCL 3.1, OpenCL C 1.2, 2 CUs, 21.5 GiB)": the probe's description.
std::string describe(const DeviceInfo& info);

}  // namespace nef::backend::opencl
