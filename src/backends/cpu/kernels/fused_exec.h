// Internal to the CPU backend: the block interpreter of fused programs (fused_elementwise.cpp),
// shared with kernels that run a fused program as an epilogue (matmul_epilogue.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ir/ops/fused_program.h"

namespace nef::backend::cpu::fused {

enum Rounding : uint8_t { kRoundNone, kRoundF32, kRoundF16, kRoundBF16 };

// One instruction with operands resolved to block buffers: src >= 0 a register slot, src < 0
// input -1 - src; dst >= 0 a slot, -1 the block's output pointer.
struct ExecInstr {
  ir::FusedOp op;
  Rounding round;
  bool to_bool;  // cast to bool
  int16_t dst;
  int16_t src[3];
};

// Elements per block: a multiple of 16 so every full block is a whole number of vectors.
inline constexpr int64_t kBlock = 1024;
inline constexpr int64_t kPad = 16;

// Register allocation for a parsed program: each result takes a free slot (operands dying at it
// are freed first), the last instruction writes to the output pointer. Sets *num_slots.
std::vector<ExecInstr> lower_program(const ir::FusedProgram& p, int* num_slots);

// Lines to bring into the cache while a block computes (the next block's inputs): `count`
// ranges of `bytes` each. The interpreter's loops issue one prefetch per vector, so the
// memory reads overlap the block's arithmetic instead of stalling its first instructions.
struct Prefetch {
  const char* const* ranges = nullptr;
  int count = 0;
  size_t bytes = 0;
};

// Runs `code` over n elements (a multiple of kPad) of block buffers in the compute type:
// inputs[k] is input k, slots[s] register slot s (each n long), out the result. An instruction
// reads element i before it stores element i, so out may be one of the inputs.
void exec(const ExecInstr* code, size_t ninstr, const float* const* inputs, float* const* slots,
          float* out, size_t n, const Prefetch* prefetch = nullptr);
void exec(const ExecInstr* code, size_t ninstr, const double* const* inputs, double* const* slots,
          double* out, size_t n, const Prefetch* prefetch = nullptr);

}  // namespace nef::backend::cpu::fused
