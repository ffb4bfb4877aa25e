#include "backends/cpu/cpu_backend.h"

#include <atomic>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
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
    return t;
  }();
  return table;
}

namespace {

std::atomic<int> g_threads{0};  // 0: all cores (set from any thread)

class CpuKernel final : public Kernel {
 public:
  CpuKernel(KernelFn fn, std::string name) : fn_(fn), name_(std::move(name)) {}
  void run(const KernelArgs& args) const override { fn_(args); }
  std::string name() const override { return name_; }

 private:
  KernelFn fn_;
  std::string name_;
};

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  bool supports(const ir::Node& node, const ir::Graph& graph) const override {
    if (node.is("input") || node.is("constant")) return true;
    const KernelEntry* e = kernel_table().find(node.op->name);
    return e && (!e->supports || e->supports(node, graph));
  }

  std::shared_ptr<const Kernel> compile(const ir::Node& node,
                                        const ir::Graph& graph) const override {
    const KernelEntry* e = kernel_table().find(node.op->name);
    if (!e || (e->supports && !e->supports(node, graph)))
      throw CompileError(str("[", node.op->name, "] no CPU kernel for ",
                             ir::types_str(graph.input_types(node))));
    if (e->make) return e->make(node, graph);
    return std::make_shared<CpuKernel>(
        e->fn, str("cpu.", node.op->name, ".", dtype_name(node.type.dtype)));
  }

  Array allocate(const Shape& shape, DType dtype) const override {
    return Array::empty(shape, dtype);
  }
};

}  // namespace

int num_threads() {
#ifdef _OPENMP
  int n = g_threads.load(std::memory_order_relaxed);
  return n > 0 ? n : omp_get_num_procs();
#else
  return 1;
#endif
}

void set_num_threads(int n) { g_threads = n < 0 ? 0 : n; }

std::shared_ptr<Backend> make_cpu_backend() { return std::make_shared<CpuBackend>(); }

}  // namespace nef::backend::cpu
