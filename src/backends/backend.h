// The contract every backend implements (cpu/, opencl/, later cuda/): a Backend probes its API
// and yields Devices; a Device is capabilities + supports() + memory (allocate, copy) + queues +
// a kernel compiler. The planner reads capabilities and measured profiles; the compiler asks
// supports()/compile(); the runtime allocates, enqueues kernels and copies with events. Nothing
// above this layer names a backend: adding one touches only its folder and the registry.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "nef/array.h"

namespace nef::backend {

class Device;

// ---- Events and queues -------------------------------------------------------------------------

// Completion of submitted work. Work that failed completes its event with the error; work whose
// waits failed never runs and carries the first failed wait's error.
class Event {
 public:
  virtual ~Event() = default;
  // Blocks until complete; rethrows the work's error.
  virtual void wait() = 0;
  // Non-blocking: complete (successfully or not).
  virtual bool ready() const = 0;
  // Complete with an error (non-blocking; false while pending).
  virtual bool failed() const = 0;
  // Seconds of the work on the device, when the device measured it (profiling); else < 0.
  virtual double device_seconds() const { return -1; }
  // When the work completed, in host steady-clock seconds (host_seconds()); < 0 when unknown.
  // With device_seconds() it places the work on the host's timeline (profiles, overlap).
  virtual double completed_at() const { return -1; }
  // Runs `fn` once complete (at once, on this thread, when it already is; else on whichever
  // thread completes it): how a device waits for another device's event without blocking.
  virtual void on_complete(std::function<void()> fn) = 0;
};
using EventPtr = std::shared_ptr<Event>;
using Waits = std::span<const EventPtr>;

// An event that is already complete (one shared instance): work that ran inline.
const EventPtr& completed_event();

// The host's steady clock in seconds: the timeline events and profiles share.
double host_seconds();

// An event completed from the host: by CPU work, or by a callback of a device API.
class HostEvent final : public Event {
 public:
  void wait() override;
  bool ready() const override;
  bool failed() const override;
  // Completes the event (once); an empty `error` means success. Wakes waiters, runs callbacks.
  void complete(std::exception_ptr error = nullptr);
  void on_complete(std::function<void()> fn) override;
  std::exception_ptr error() const;
  // Records the work's duration (the CPU queue measures its deferred tasks).
  void set_device_seconds(double s) { seconds_ = s; }
  double device_seconds() const override { return seconds_; }
  double completed_at() const override { return completed_at_; }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<double> seconds_{-1}, completed_at_{-1};
  std::exception_ptr error_;
  std::vector<std::function<void()>> callbacks_;
};

// An in-order stream of work on one device, owned by one run at a time (Device::acquire_queue).
// Concrete queues (the CPU's, an OpenCL command queue) add their submission entry points; the
// runtime only synchronizes through this interface.
class Queue {
 public:
  virtual ~Queue() = default;
  // Blocks until all work submitted so far completed. Never throws: errors live in events.
  virtual void synchronize() = 0;
};

// Returns a queue to its device's pool when the run releases it.
using QueuePtr = std::unique_ptr<Queue, std::function<void(Queue*)>>;

// ---- Kernels -----------------------------------------------------------------------------------

// What a kernel derives once per plan from the plan's constant inputs (a GEMM's weights packed
// into its panel layout). The plan owns it, never the kernel: kernels are shared by plans with
// other constants (the kernel cache keys types, not values).
struct Prepared {
  virtual ~Prepared() = default;
  // True when runs no longer read input `input`'s data (it is held here in another form), except
  // a run where this does not apply (then the kernel reads the input as without it).
  virtual bool replaces(size_t input) const {
    (void)input;
    return false;
  }
};

// What a kernel receives. Inputs may be arbitrary strided views (stride 0 = broadcast, negative
// = reversed) on the kernel's device; `out` arrives allocated and contiguous on the device.
struct KernelArgs {
  const std::vector<Array>& inputs;
  Array& out;
  const ir::Attrs& attrs;
  const ir::Node& node;
  // workspace_bytes() bytes of scratch on the device (a UInt8 array), planned by the memory
  // planner; empty when the kernel asks for none.
  const Array& workspace;
  // What prepare() returned for this plan's step, or null. The kernel checks that it still
  // applies (the same input data, the layout it runs now) and does without it otherwise.
  const Prepared* prepared = nullptr;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Human-readable kernel name for plans and profiles ("cpu.binary.add.f32").
  virtual std::string name() const = 0;
  // Scratch the kernel needs per launch on its device. The memory planner owns it (a kernel never
  // allocates), so it is known before any run.
  virtual int64_t workspace_bytes() const { return 0; }
  // Whether `out` may be exactly one of the inputs (same buffer, same strides): element i of
  // every input is read before out[i] is written, and no operand is converted through `out`.
  virtual bool inplace_safe() const { return false; }
  // Called once when a plan is built (compiled or loaded from a .nef), with the plan's constant
  // host inputs (constants[i] is input i's value, or null when input i is not a constant). An
  // input that is a view of a host constant (x @ W.T) comes as that view: the very offset,
  // shape and strides the runs will hand in, so a kernel recognizes it by data and strides (or
  // declines what it cannot pack, e.g. a non-contiguous view). What it returns is kept with the
  // plan's step and handed to every run as KernelArgs::prepared.
  virtual std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const {
    (void)constants;
    return nullptr;
  }
  // Enqueues the kernel on `queue` (from this kernel's device) after `waits`. Everything `args`
  // refers to stays alive and unchanged until the returned event completes.
  virtual EventPtr enqueue(const KernelArgs& args, Queue& queue, Waits waits) const = 0;
};

// ---- Devices -----------------------------------------------------------------------------------

// Facts about a device, from its probe: what `nef devices` shows and the planner reads.
struct DeviceInfo {
  std::string id;           // instance id: "cpu", "opencl:0", "cuda:1"
  std::string backend;      // "cpu", "opencl", "cuda"
  std::string kind;         // "cpu" | "gpu" | "accelerator"
  int index = 0;            // ordinal among its backend's devices
  std::string name;         // hardware name
  std::string description;  // one line for reports
  std::string vendor;
  std::string driver_version;
  std::string api_version;  // "OpenCL C 1.2", ...
  int compute_units = 0;
  int64_t memory_bytes = 0;     // device memory (host RAM for the CPU)
  int64_t max_alloc_bytes = 0;  // largest single allocation
  bool host_unified = false;    // shares physical memory with the host: transfers can map
  bool fp16 = false, fp64 = false;
  // Backend-specific facts for reports (platform, extensions...).
  std::vector<std::pair<std::string, std::string>> extra;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual const DeviceInfo& info() const = 0;
  const std::string& id() const { return info().id; }
  bool is_host() const { return info().backend == "cpu"; }

  // Whether this device can run the node (op, dtypes, shapes, attributes). Input and constant
  // nodes are data, which every device can hold.
  virtual bool supports(const ir::Node& node, const ir::Graph& graph) const = 0;
  // Builds an executable kernel for a supported node; throws CompileError. The compiler caches
  // the result per (device, op, attributes, types).
  virtual std::shared_ptr<const Kernel> compile(const ir::Node& node,
                                                const ir::Graph& graph) const = 0;

  // `nbytes` of device memory (host memory for the CPU); throws OutOfMemoryError naming the
  // device, also when NEF_DEVICE_MEMORY_LIMIT would be exceeded.
  virtual std::shared_ptr<Storage> allocate(size_t nbytes) = 0;
  // A queue for one run (pooled; returned when the QueuePtr is destroyed).
  virtual QueuePtr acquire_queue() = 0;
  // Copies src into dst (same shape and dtype, dst contiguous) on `queue` after `waits`. Each
  // side is on this device or on the host.
  virtual EventPtr copy(const Array& src, const Array& dst, Queue& queue, Waits waits) = 0;
  // Zero-copy transfers for devices that share memory with the host (DeviceInfo::host_unified).
  // map_from_host: a device array over host array `src`'s memory (which must stay unchanged while
  // the device reads it). map_to_host: a host array over device array `src`, usable once the
  // returned event completes (after `waits`); the mapping ends when the array is released. Both
  // return nullopt when the device cannot map (the runtime then allocates and copies).
  virtual std::optional<Array> map_from_host(const Array& src) { return std::nullopt; }
  virtual std::optional<std::pair<Array, EventPtr>> map_to_host(const Array& src, Queue& queue,
                                                                Waits waits) {
    return std::nullopt;
  }
  // Frees what the device caches and can rebuild (pools, compiled programs): the first rung of
  // the out-of-memory ladder. Returns the bytes released.
  virtual int64_t trim() { return 0; }
  // Settings that change what compile() produces (the CPU's thread count sizes workspaces):
  // part of kernel- and plan-cache keys.
  virtual std::string config_key() const { return ""; }
};
using DevicePtr = std::shared_ptr<Device>;

// A device API driver (one per backend folder).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu", "opencl"
  // The devices found. Never throws: a failed probe returns none and sets `problem` (why), which
  // `nef devices` reports and NEF_DEBUG=1 logs.
  virtual std::vector<DevicePtr> probe(std::string& problem) = 0;
  // A cheap identity of what probe() would find (the installed drivers and device nodes), taken
  // without loading any driver; nullopt when the backend cannot tell without probing. Equal
  // fingerprints let the registry trust an earlier process's probe (cached on disk) for what
  // "auto" enables, and skip loading drivers whose devices it would not use.
  virtual std::optional<std::string> fingerprint() const { return std::nullopt; }
};

}  // namespace nef::backend
