// Entry point of the elementwise kernel family; each concept registers from its own file.
#include "backends/cpu/kernels/elementwise.h"

namespace nef::backend::cpu {

void register_elementwise_kernels(KernelTable& t) {
  register_unary_kernels(t);
  register_binary_kernels(t);
  register_select_kernels(t);
  register_cast_kernels(t);
}

}  // namespace nef::backend::cpu
