#include "backends/cpu/cpu_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string_view>

#include "backends/concurrent.h"
#include "backends/cpu/cpu_queue.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/cpu_target.h"
#include "backends/cpu/kernels/igemm.h"
#include "backends/cpu/parallel.h"
#include "common/host_memory.h"
#include "common/session.h"
#include "devices/cpu_info.h"
#include "nef/error.h"

namespace nef::backend::cpu {

const KernelTable& kernel_table() {
  static const KernelTable table = [] {
    KernelTable t;
    register_source_kernels(t);
    register_elementwise_kernels(t);
    register_reduction_kernels(t);
    register_linalg_nn_kernels(t);
    register_layout_kernels(t);
    register_fused_kernels(t);
    register_pool_kernels(t);
    register_image_kernels(t);
    register_conv_kernels(t);
    register_indexing_kernels(t);
    register_sort_scan_kernels(t);
    register_quant_kernels(t);
    register_integer_kernels(t);
    register_recurrent_kernels(t);
    register_dynamic_kernels(t);
    return t;
  }();
  return table;
}

namespace {
thread_local int t_kernel_threads = 0;  // > 0 while a kernel runs on this thread
}  // namespace

KernelThreadsScope::KernelThreadsScope(int threads) : previous_(t_kernel_threads) {
  t_kernel_threads = threads;
}
KernelThreadsScope::~KernelThreadsScope() { t_kernel_threads = previous_; }

CpuKernel::CpuKernel() : threads_(num_threads()) {}

EventPtr CpuKernel::enqueue(const KernelArgs& args, Queue& queue, Waits waits) const {
  return static_cast<CpuQueue&>(queue).submit(
      [this, &args] {
        KernelThreadsScope pin(threads_);
        run(args);
      },
      waits);
}

void run_now(const CpuKernel& kernel, const std::vector<Array>& inputs, Array& out,
             const ir::Node& node) {
  Array workspace;
  if (int64_t ws = kernel.workspace_bytes(); ws > 0) workspace = Array::empty({ws}, DType::UInt8);
  KernelThreadsScope pin(kernel.threads());
  kernel.run(KernelArgs{inputs, out, node.attrs, node, workspace});
}

int num_threads() {
  if (t_kernel_threads > 0) return t_kernel_threads;
  int n = current_session().threads();
  return n > 0 ? n : default_threads();
}

namespace {

// A kernel-table function: elementwise ones are in-place safe (audited in elementwise_*.cpp and
// cast.cpp: operands of the output dtype are used as they are, element i is read before out[i]).
class TableKernel final : public CpuKernel {
 public:
  TableKernel(KernelFn fn, std::string name, bool inplace)
      : fn_(fn), name_(std::move(name)), inplace_(inplace) {}
  void run(const KernelArgs& args) const override { fn_(args); }
  std::string name() const override { return name_; }
  bool inplace_safe() const override { return inplace_; }

 private:
  KernelFn fn_;
  std::string name_;
  bool inplace_;
};

std::string best_simd(const devices::CpuFeatures& f) {
  if (f.amx) return "AMX, AVX-512";
  if (f.avx512f) return "AVX-512";
  if (f.avx2) return "AVX2";
  if (f.avx) return "AVX";
  if (f.sse4_2) return "SSE4.2";
  if (f.sve2) return "SVE2";
  if (f.sve) return "SVE";
  if (f.neon) return "NEON";
  return "scalar";
}

// NEF_CONCURRENT_STEPS=0 turns off running independent steps together (read once).
bool concurrent_steps_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("NEF_CONCURRENT_STEPS");
    return !(v && std::string_view(v) == "0");
  }();
  return on;
}

// One group of independent kernels: a pool region with one chunk per kernel. Each member's event
// completes with its own outcome and time, so profiles and failures name the right step.
void run_group(Session& session, const std::vector<ConcurrentLaunch>& launches) {
  const int64_t n = int64_t(launches.size());
  std::vector<std::exception_ptr> errors(launches.size());
  std::vector<double> seconds(launches.size(), -1);
  try {
    run_chunks(n, int(n), [&](int64_t c, int) {
      SessionScope scope(session);
      const auto& kernel = static_cast<const CpuKernel&>(*launches[c].kernel);
      const auto t0 = std::chrono::steady_clock::now();
      try {
        KernelThreadsScope pin(kernel.threads());
        kernel.run(*launches[c].args);
      } catch (...) {
        errors[c] = std::current_exception();
      }
      seconds[c] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  } catch (...) {  // the pool itself failed: whatever did not run carries its error
    for (auto& e : errors)
      if (!e) e = std::current_exception();
  }
  for (size_t c = 0; c < launches.size(); ++c) {
    launches[c].done->set_device_seconds(seconds[c]);
    launches[c].done->complete(errors[c]);
  }
}

class CpuDevice final : public Device, public ConcurrentKernels {
 public:
  CpuDevice() {
    devices::CpuInfo c = devices::detect_cpu();
    devices::MemoryInfo m = devices::detect_memory();
    info_.id = "cpu";
    info_.backend = "cpu";
    info_.kind = "cpu";
    info_.name = c.model;
    info_.vendor = c.vendor;
    info_.description = str(c.model, " (", c.physical_cores, " cores, ", c.logical_cores,
                            " threads, ", best_simd(c.features), ")");
    info_.compute_units = c.logical_cores;
    info_.memory_bytes = m.total_bytes;
    info_.max_alloc_bytes = m.total_bytes;
    info_.host_unified = true;
    info_.fp16 = info_.fp64 = true;
    // The kernels' instruction sets (kernels/cpu_target.h; NEF_CPU_TARGET lowers them).
    apply_cpu_target_to_highway();
    info_.extra.push_back({"vector_kernels", highway_target_name()});
    info_.extra.push_back({"int8_kernels", igemm_best().name});
  }

  const DeviceInfo& info() const override { return info_; }

  bool supports(const ir::Node& node, const ir::Graph& graph) const override {
    if (node.is("input") || node.is("constant") || node.op->has(ir::kView)) return true;
    const KernelEntry* e = kernel_table().find(node.op->name);
    return e && (!e->supports || e->supports(node, graph));
  }

  std::shared_ptr<const Kernel> compile(const ir::Node& node,
                                        const ir::Graph& graph) const override {
    const KernelEntry* e = kernel_table().find(node.op->name);
    if (!e || (e->supports && !e->supports(node, graph)))
      throw CompileError(
          str("[", node.op->name, "] no CPU kernel for ", ir::types_str(graph.input_types(node))));
    if (e->make) return e->make(node, graph);
    return std::make_shared<TableKernel>(
        e->fn, str("cpu.", node.op->name, ".", dtype_name(node.type.dtype)),
        node.op->has(ir::kElementwise));
  }

  std::shared_ptr<Storage> allocate(size_t nbytes) override { return Storage::allocate(nbytes); }

  QueuePtr acquire_queue() override {
    std::unique_ptr<CpuQueue> q;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!pool_.empty()) {
        q = std::move(pool_.back());
        pool_.pop_back();
      }
    }
    if (!q) q = std::make_unique<CpuQueue>();
    return QueuePtr(q.release(), [this](Queue* raw) {
      std::unique_ptr<CpuQueue> back(static_cast<CpuQueue*>(raw));
      back->synchronize();
      std::lock_guard<std::mutex> lock(mu_);
      if (pool_.size() < kPoolSize) pool_.push_back(std::move(back));
    });
  }

  EventPtr copy(const Array& src, const Array& dst, Queue& queue, Waits waits) override {
    NEF_CHECK(src.on_host() && dst.on_host(), "[copy] the CPU copies host memory only");
    return static_cast<CpuQueue&>(queue).submit([src, dst] { copy_strided(src, dst); }, waits);
  }

  // Host memory: the large blocks kept for reuse (common/host_memory.h).
  int64_t trim() override { return host_cache_trim(); }

  // Read by every evaluate (the plan-cache key): no ostringstream.
  std::string config_key() const override { return "t" + std::to_string(num_threads()); }

  // Independent steps run on the pool's threads, one kernel per thread, each kernel's own
  // parallel regions then running on its thread alone (nested regions are serial), with the
  // chunking of its compiled thread count: the same results as one after another.
  int max_concurrent_kernels() const override {
    return concurrent_steps_enabled() ? num_threads() : 1;
  }
  bool can_run_concurrently(const Kernel& kernel) const override {
    return dynamic_cast<const CpuKernel*>(&kernel) != nullptr;
  }
  void enqueue_concurrent(std::vector<ConcurrentLaunch> launches, Queue& queue,
                          Waits waits) override {
    Session* session = &current_session();
    EventPtr group = static_cast<CpuQueue&>(queue).submit(
        [session, launches] { run_group(*session, launches); }, waits);
    // A failed wait skips the work: every member carries that error.
    if (group->ready() && !group->failed()) return;
    group->on_complete([group, launches] {
      if (!group->failed()) return;
      std::exception_ptr err;
      try {
        group->wait();
      } catch (...) {
        err = std::current_exception();
      }
      for (const ConcurrentLaunch& l : launches)
        if (!l.done->ready()) l.done->complete(err);
    });
  }

 private:
  static constexpr size_t kPoolSize = 8;
  DeviceInfo info_;
  std::mutex mu_;
  std::vector<std::unique_ptr<CpuQueue>> pool_;
};

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  std::vector<DevicePtr> probe(std::string&) override { return {std::make_shared<CpuDevice>()}; }
};

}  // namespace

std::shared_ptr<Backend> make_cpu_backend() { return std::make_shared<CpuBackend>(); }

}  // namespace nef::backend::cpu
