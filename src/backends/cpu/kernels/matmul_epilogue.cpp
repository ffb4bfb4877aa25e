// CPU kernel for matmul_epilogue: the float GEMM of matmul.cpp (gemm.h) with the node's fused
// program applied to each output tile right after the tile's last K block, while it is still in
// cache. The program runs through the fused_elementwise block interpreter (fused_exec.h): input 0
// is the matmul result, read in place from the output; the extra operands are loaded (broadcast,
// strided, converted) into block buffers; the result is written back over the tile.
#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/fused_exec.h"
#include "backends/cpu/kernels/gemm.h"
#include "backends/cpu/kernels/strided_iter.h"
#include "common/dispatch.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

using fused::kBlock;
using fused::kPad;

std::vector<ir::TensorType> program_input_types(const ir::Node& node,
                                                const std::vector<ir::TensorType>& in) {
  std::vector<ir::TensorType> p{node.type};
  p.insert(p.end(), in.begin() + 2, in.end());
  return p;
}

class MatmulEpilogueKernel final : public CpuKernel {
 public:
  MatmulEpilogueKernel(const ir::Node& node, const std::vector<ir::TensorType>& in_types)
      : out_dtype_(node.type.dtype) {
    if (in_types.size() < 2)
      throw ValidationError(
          str("[matmul_epilogue] expects at least 2 inputs, got ", in_types.size()));
    prog_ = ir::parse_fused_program(node.attrs.get_string("program"),
                                    program_input_types(node, in_types), out_dtype_);
    code_ = fused::lower_program(prog_, &num_slots_);
    name_ = str("cpu.matmul_epilogue.", dtype_name(out_dtype_), "[", prog_.code.size(), " ops]");
    workspace_ = matmul_scratch_bytes(in_types[0].shape, in_types[1].shape, out_dtype_);
    const Shape& as = in_types[0].shape;
    rows_ = as.size() >= 2 ? as[as.size() - 2] : 1;
  }

  std::string name() const override { return name_; }
  // The GEMM's packing panels.
  int64_t workspace_bytes() const override { return workspace_; }
  // A constant B is packed once per plan (gemm.h).
  std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const override {
    if (constants.size() < 2 || !constants[1]) return nullptr;
    return prepack_matmul_b(*constants[1], out_dtype_, rows_);
  }

  void run(const KernelArgs& args) const override {
    if (args.inputs.size() != size_t(prog_.num_inputs) + 1)
      throw ValidationError(str("[matmul_epilogue] expects ", prog_.num_inputs + 1, " inputs, got ",
                                args.inputs.size()));
    const Array& a = args.inputs[0];
    const Array& b = args.inputs[1];
    if (a.dtype != out_dtype_ || b.dtype != out_dtype_ || args.out.dtype != out_dtype_ ||
        (out_dtype_ != DType::Float32 && out_dtype_ != DType::Float64))
      throw TypeError(
          str("[matmul_epilogue] a and b must have the output dtype (float32 or "
              "float64), got ",
              dtype_name(a.dtype), " @ ", dtype_name(b.dtype), " -> ", dtype_name(args.out.dtype)));
    if (args.out.numel() == 0) return;
    if (prog_.compute == DType::Float64) run_typed<double>(args);
    else run_typed<float>(args);
  }

 private:
  // Per-call state shared by every tile: how each extra operand is read.
  struct Extra {
    const Array* arr;
    StridedIter<2> it;
    bool scalar;
    Strides bst;  // its strides broadcast to the output's shape
  };

  template <typename C>
  void run_typed(const KernelArgs& args) const {
    Array& out = args.out;
    const Strides out_strides = contiguous_strides(out.shape);
    std::vector<Extra> extras;
    for (size_t k = 2; k < args.inputs.size(); ++k) {
      const Array& x = args.inputs[k];
      Strides bst = broadcast_strides(x.shape, x.strides, out.shape);
      StridedIter<2> it(out.shape, std::array<Strides, 2>{out_strides, bst});
      bool scalar = it.ndim == 1 && it.inner_stride(1) == 0;
      extras.push_back({&x, it, scalar, std::move(bst)});
    }
    const int nin = prog_.num_inputs;  // the matmul result + extras
    const bool direct = out.dtype == dtype_of<C>();
    GemmTileHook hook = [&](int64_t offset, int64_t rows, int64_t cols, int64_t ld) {
      // Scratch per thread, kept across tiles and calls (the column groups hand over many
      // narrow tiles): register slots, one buffer per program input, the output block.
      const size_t bufs = size_t(num_slots_ + nin + 1);
      thread_local hwy::AlignedFreeUniquePtr<C[]> t_scratch;
      thread_local size_t t_scratch_bufs = 0;
      if (t_scratch_bufs < bufs) {
        t_scratch = hwy::AllocateAligned<C>(bufs * kBlock);
        NEF_CHECK(t_scratch, "[matmul_epilogue] out of memory for the tile buffers");
        t_scratch_bufs = bufs;
      }
      C* const scratch = t_scratch.get();
      thread_local std::vector<C*> t_ptrs;
      thread_local std::vector<const C*> t_in_ptr;
      t_ptrs.resize(size_t(num_slots_ + 1 + nin));
      t_in_ptr.resize(size_t(nin));
      C** const slots = t_ptrs.data();
      C** const in_buf = slots + num_slots_ + 1;
      const C** const in_ptr = t_in_ptr.data();
      for (int s = 0; s < num_slots_; ++s) slots[s] = scratch + size_t(s) * kBlock;
      for (int k = 0; k < nin; ++k) in_buf[k] = scratch + size_t(num_slots_ + k) * kBlock;
      C* out_buf = scratch + size_t(num_slots_ + nin) * kBlock;
      for (size_t e = 0; e < extras.size(); ++e)
        if (extras[e].scalar) fill_scalar<C>(*extras[e].arr, in_buf[e + 1], kBlock);
      // Whole rows are one contiguous range; a column slice of rows is one range per row.
      auto range = [&](int64_t begin, int64_t len) {
        for (int64_t pos = begin; pos < begin + len; pos += kBlock) {
          const int64_t n = std::min(kBlock, begin + len - pos);
          const int64_t padded = (n + kPad - 1) / kPad * kPad;
          const bool whole = n == padded;
          in_ptr[0] = load_result<C>(out, pos, n, padded, whole, in_buf[0]);
          for (size_t e = 0; e < extras.size(); ++e)
            in_ptr[e + 1] = extras[e].scalar ? in_buf[e + 1]
                                             : load_extra<C>(*extras[e].arr, extras[e].it, pos, n,
                                                             padded, in_buf[e + 1]);
          C* dst = direct && whole ? static_cast<C*>(out.data()) + pos : out_buf;
          fused::exec(code_.data(), code_.size(), in_ptr, slots, dst, size_t(padded));
          if (dst == out_buf) store_result<C>(out, out_buf, pos, n);
        }
      };
      // Rows [r0, r0 + nr) of a column slice gathered into one block (nr * cols <= kBlock), so
      // the program runs once per block rather than once per short row (32-column tiles). The
      // tile lies in one matrix of the output: each extra is read at its first element's offset
      // plus row and column steps (a bias row is loaded once and repeated).
      const int rank = out.rank();
      auto gathered = [&](int64_t r0, int64_t nr) {
        const int64_t n = nr * cols, padded = (n + kPad - 1) / kPad * kPad;
        const int64_t first = offset + r0 * ld;
        dispatch_dtype(out.dtype, [&]<typename O>() {
          if constexpr (std::is_floating_point_v<O>) {
            const O* o = static_cast<const O*>(out.data()) + first;
            C* const d = in_buf[0];
            for (int64_t r = 0; r < nr; ++r) std::copy(o + r * ld, o + r * ld + cols, d + r * cols);
          }
        });
        for (size_t e = 0; e < extras.size(); ++e) {
          if (extras[e].scalar) continue;
          const Strides& st = extras[e].bst;
          int64_t off = 0, rem = first;
          for (int d = rank - 1; d >= 0; --d) {
            off += rem % out.shape[d] * st[d];
            rem /= out.shape[d];
          }
          const int64_t rs = st[rank - 2], cs = st[rank - 1];
          C* buf = in_buf[e + 1];
          dispatch_dtype(extras[e].arr->dtype, [&]<typename T>() {
            const T* base = static_cast<const T*>(extras[e].arr->data()) + off;
            for (int64_t r = 0; r < nr; ++r) {
              C* dst = buf + r * cols;
              if (r > 0 && rs == 0) {
                std::copy(buf, buf + cols, dst);
                continue;
              }
              const T* row = base + r * rs;
              if (cs == 1) {
                for (int64_t j = 0; j < cols; ++j) dst[j] = static_cast<C>(load_as(row[j]));
              } else {
                for (int64_t j = 0; j < cols; ++j) dst[j] = static_cast<C>(load_as(row[j * cs]));
              }
            }
          });
        }
        for (int k = 0; k < nin; ++k) {
          if (k > 0 && extras[size_t(k - 1)].scalar) continue;
          std::fill(in_buf[k] + n, in_buf[k] + padded, C(0));
        }
        for (int k = 0; k < nin; ++k) in_ptr[k] = in_buf[k];
        fused::exec(code_.data(), code_.size(), in_ptr, slots, out_buf, size_t(padded));
        dispatch_dtype(out.dtype, [&]<typename O>() {
          if constexpr (std::is_floating_point_v<O>) {
            O* o = static_cast<O*>(out.data()) + first;
            for (int64_t r = 0; r < nr; ++r)
              std::copy(out_buf + r * cols, out_buf + (r + 1) * cols, o + r * ld);
          }
        });
      };
      if (cols == ld) {
        range(offset, rows * cols);
      } else if (rank >= 2 && cols * 2 <= kBlock) {
        const int64_t per = kBlock / cols;
        for (int64_t r = 0; r < rows; r += per) gathered(r, std::min(per, rows - r));
      } else {
        for (int64_t r = 0; r < rows; ++r) range(offset + r * ld, cols);
      }
    };
    matmul_float_with_hook(args.inputs[0], args.inputs[1], out, hook, args.workspace, true,
                           args.prepared);
  }

  template <typename C>
  static constexpr DType dtype_of() {
    return std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
  }

  template <typename C>
  static void fill_scalar(const Array& a, C* buf, int64_t n) {
    C v = dispatch_dtype(a.dtype, [&]<typename T>() -> C {
      return static_cast<C>(load_as(*static_cast<const T*>(a.data())));
    });
    std::fill(buf, buf + n, v);
  }

  // The matmul result [pos, pos + n) of `out` in the compute type (in place when it can be).
  template <typename C>
  static const C* load_result(const Array& out, int64_t pos, int64_t n, int64_t padded, bool whole,
                              C* buf) {
    if (whole && out.dtype == dtype_of<C>()) return static_cast<const C*>(out.data()) + pos;
    dispatch_dtype(out.dtype, [&]<typename T>() {
      const T* p = static_cast<const T*>(out.data()) + pos;
      for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<C>(load_as(p[i]));
    });
    for (int64_t i = n; i < padded; ++i) buf[i] = C(0);
    return buf;
  }

  // Extra operand elements for output elements [pos, pos + n), broadcast and converted.
  template <typename C>
  static const C* load_extra(const Array& a, const StridedIter<2>& it, int64_t pos, int64_t n,
                             int64_t padded, C* buf) {
    dispatch_dtype(a.dtype, [&]<typename T>() {
      const T* base = static_cast<const T*>(a.data());
      C* o = buf;
      const int64_t s = it.inner_stride(1);
      it.for_each_row(pos, pos + n, [&](const int64_t* off, int64_t len) {
        const T* p = base + off[1];
        if (s == 0) {
          C v = static_cast<C>(load_as(p[0]));
          for (int64_t i = 0; i < len; ++i) o[i] = v;
        } else if (s == 1) {
          for (int64_t i = 0; i < len; ++i) o[i] = static_cast<C>(load_as(p[i]));
        } else {
          for (int64_t i = 0; i < len; ++i) o[i] = static_cast<C>(load_as(p[i * s]));
        }
        o += len;
      });
    });
    for (int64_t i = n; i < padded; ++i) buf[i] = C(0);
    return buf;
  }

  template <typename C>
  static void store_result(const Array& out, const C* buf, int64_t pos, int64_t n) {
    dispatch_dtype(out.dtype, [&]<typename O>() {
      if constexpr (std::is_floating_point_v<O>) {
        O* o = static_cast<O*>(out.data()) + pos;
        for (int64_t i = 0; i < n; ++i) o[i] = static_cast<O>(buf[i]);
      }
    });
  }

  ir::FusedProgram prog_;
  DType out_dtype_;
  std::vector<fused::ExecInstr> code_;
  int num_slots_ = 0;
  std::string name_;
  int64_t workspace_ = 0;
  int64_t rows_ = 0;  // rows of A per matrix
};

}  // namespace

// The GEMM with a tile hook computes float32/float64 with both operands of the output dtype.
static bool supports_matmul_epilogue(const ir::Node& n, const ir::Graph& g) {
  DType t = n.type.dtype;
  if (t != DType::Float32 && t != DType::Float64) return false;
  return n.inputs.size() >= 2 && g.nodes[n.inputs[0]].type.dtype == t &&
         g.nodes[n.inputs[1]].type.dtype == t;
}

void register_matmul_epilogue_kernels(KernelTable& t) {
  t.add_prepared<MatmulEpilogueKernel>("matmul_epilogue", supports_matmul_epilogue);
}

}  // namespace nef::backend::cpu
