// A CPU kernel's scratch comes from its workspace (KernelArgs::workspace), sized by the kernel's
// workspace_bytes() at compile time and placed in the arena by the memory planner: kernels do not
// allocate. The carver hands out 64-byte aligned pieces in the order the size counted them.
#pragma once

#include <cstdint>

#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {

// Bytes `n` elements of `t` take in a workspace (rounded up to 64).
inline int64_t workspace_piece(int64_t n, DType t) {
  return (n * int64_t(dtype_size(t)) + 63) / 64 * 64;
}

class WorkspaceCarver {
 public:
  explicit WorkspaceCarver(const Array& ws) : ws_(ws) {}
  // A contiguous array of `shape` and `t` from the next unused bytes.
  Array take(const Shape& shape, DType t) {
    int64_t bytes = workspace_piece(numel(shape), t);
    NEF_CHECK(used_ + bytes <= ws_.numel(), "[workspace] ", used_ + bytes,
              " bytes needed, the kernel declared ", ws_.numel());
    Array a;
    a.storage = ws_.storage;
    a.dtype = t;
    // The workspace starts 64-byte aligned in the arena; pieces keep that alignment.
    a.offset = (ws_.offset + used_) / int64_t(dtype_size(t));
    a.shape = shape;
    a.strides = contiguous_strides(shape);
    used_ += bytes;
    return a;
  }

 private:
  const Array& ws_;
  int64_t used_ = 0;
};

}  // namespace nef::backend::cpu
