// CPU kernels are plain functions registered by op name. Each family file under kernels/
// exports one register_* function; cpu_backend.cpp calls them all once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/cpu/cpu_kernel.h"
#include "backends/cpu/parallel.h"

namespace nef::backend::cpu {

using KernelFn = void (*)(const KernelArgs& args);

using KernelFactory = std::shared_ptr<const CpuKernel> (*)(const ir::Node& node,
                                                           const ir::Graph& graph);

struct KernelEntry {
  KernelFn fn = nullptr;
  // Optional capability filter (dtype combinations...); null means every valid node.
  bool (*supports)(const ir::Node& node, const ir::Graph& graph) = nullptr;
  // Optional: builds a kernel that prepares per-node work once at compile time (fused programs
  // parsed once, not per run); compile() uses it when set. `fn` must still run a node unprepared.
  KernelFactory make = nullptr;
};

class KernelTable {
 public:
  void add(std::string_view op, KernelFn fn,
           bool (*supports)(const ir::Node&, const ir::Graph&) = nullptr) {
    table_[std::string(op)] = KernelEntry{fn, supports};
  }
  void add_factory(std::string_view op, KernelFn fn, KernelFactory make,
                   bool (*supports)(const ir::Node&, const ir::Graph&) = nullptr) {
    table_[std::string(op)] = KernelEntry{fn, supports, make};
  }
  // A CpuKernel class K prepared once per node (K(const ir::Node&, std::vector<ir::TensorType>)):
  // the factory builds it at compile time (sizing its workspace); the plain entry (direct table
  // calls in tests) prepares it per call and gives it a fresh workspace.
  template <typename K>
  void add_prepared(std::string_view op,
                    bool (*supports)(const ir::Node&, const ir::Graph&) = nullptr) {
    add_factory(
        op,
        [](const KernelArgs& args) {
          std::vector<ir::TensorType> types;
          for (const Array& a : args.inputs) types.push_back({a.shape, a.dtype});
          K k(args.node, types);
          if (k.workspace_bytes() > args.workspace.numel()) {
            run_now(k, args.inputs, args.out, args.node);
            return;
          }
          KernelThreadsScope pin(k.threads());
          k.run(args);
        },
        [](const ir::Node& node, const ir::Graph& graph) -> std::shared_ptr<const CpuKernel> {
          return std::make_shared<K>(node, graph.input_types(node));
        },
        supports);
  }
  const KernelEntry* find(std::string_view op) const {
    auto it = table_.find(op);  // no key string built: the planner asks for every node
    return it == table_.end() ? nullptr : &it->second;
  }

 private:
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, KernelEntry, NameHash, std::equal_to<>> table_;
};

void register_source_kernels(KernelTable& t);
void register_elementwise_kernels(KernelTable& t);
void register_reduction_kernels(KernelTable& t);
void register_linalg_nn_kernels(KernelTable& t);
void register_layout_kernels(KernelTable& t);
void register_fused_kernels(KernelTable& t);      // fused_elementwise
void register_pool_kernels(KernelTable& t);       // max_pool, avg_pool
void register_image_kernels(KernelTable& t);      // pad, resize
void register_quant_kernels(KernelTable& t);      // qmatmul, qgather
void register_integer_kernels(KernelTable& t);    // matmul_integer, conv_integer,
                                                  // matmul_dynamic_int8, conv_dynamic_int8
void register_conv_kernels(KernelTable& t);       // conv, conv_transpose
void register_indexing_kernels(KernelTable& t);   // gather_elements, gather_nd, scatter_*
void register_sort_scan_kernels(KernelTable& t);  // topk, cumsum, cumprod
void register_recurrent_kernels(KernelTable& t);  // lstm, gru, rnn
void register_dynamic_kernels(KernelTable& t);    // nonzero, unique, non_max_suppression, topk_k

const KernelTable& kernel_table();

}  // namespace nef::backend::cpu
