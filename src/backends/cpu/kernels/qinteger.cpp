// CPU kernels of the integer-quantized ops: matmul_integer (a batched GEMM) and conv_integer
// (im2col written straight into the GEMM's packed B panels), both through the exact integer
// GEMM of igemm.h: byte operands with zero-point corrections where the CPU has byte products,
// else int16 pairs. The instruction set is chosen once (cpu_target.h): AVX-512 VNNI, else AVX2
// with AVX-VNNI, else AVX2, else portable code; NEF_CPU_TARGET=avx2vnni, avx2 or generic forces
// a lower one (tests cover every variant that way).
// A plan's constant 2-D B of matmul_integer is packed once (Kernel::prepare), not per run.
#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/conv_integer.h"
#include "backends/cpu/kernels/cpu_target.h"
#include "backends/cpu/kernels/gemm.h"
#include "backends/cpu/kernels/igemm.h"
#include "backends/cpu/kernels/vmath.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "common/log.h"
#include "common/session.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// The variant of int8_cpu_target(), or the next one down compiled in.
const IgemmIsa& choose() {
  return pick_int8_variant(igemm_avx512(), igemm_avx2vnni(), igemm_avx2(), igemm_generic());
}

// Reads element i of a 1-D (or single-value) zero point of an 8-bit dtype; 0 when absent.
struct ZeroPoint {
  const void* p = nullptr;
  DType dtype = DType::UInt8;
  int64_t stride = 0;  // 0 for a single value: every i reads it
  ZeroPoint() = default;
  explicit ZeroPoint(const Array& z)
      : p(z.data()), dtype(z.dtype), stride(numel(z.shape) == 1 ? 0 : z.strides.back()) {}
  int32_t operator()(int64_t i) const {
    if (!p) return 0;
    return dtype == DType::Int8 ? int32_t(static_cast<const int8_t*>(p)[i * stride])
                                : int32_t(static_cast<const uint8_t*>(p)[i * stride]);
  }
};

// An 8-bit operand element as int32.
inline int32_t load8(const void* base, DType t, int64_t off) {
  return t == DType::Int8 ? int32_t(static_cast<const int8_t*>(base)[off])
                          : int32_t(static_cast<const uint8_t*>(base)[off]);
}

// Packs A rows [r0, r1): dst[r * kp + k] = a(r, k) - zp(r); row r's elements start at
// row_off(r) with stride ks; the pad column (odd K) is zero.
template <typename RowOff, typename RowZp>
void pack_a(const void* base, DType t, int64_t ks, int64_t K, int64_t kp, int64_t r0, int64_t r1,
            RowOff row_off, RowZp zp, int16_t* dst) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t off = row_off(r);
    const int32_t z = zp(r);
    int16_t* d = dst + r * kp;
    if (t == DType::Int8) {
      const int8_t* s = static_cast<const int8_t*>(base) + off;
      for (int64_t k = 0; k < K; ++k) d[k] = int16_t(int32_t(s[k * ks]) - z);
    } else {
      const uint8_t* s = static_cast<const uint8_t*>(base) + off;
      for (int64_t k = 0; k < K; ++k) d[k] = int16_t(int32_t(s[k * ks]) - z);
    }
    if (kp != K) d[K] = 0;
  }
}

// One full panel p of a row-major [K, N] operand of type T: rows k and k + 1 interleaved per
// column (a loop the compiler vectorizes; weights are packed on every run).
template <typename T>
void pack_b_full(const void* base, int64_t sk, int64_t K, int64_t p, const int32_t* z, int16_t* d) {
  const T* b = static_cast<const T*>(base) + p * kIgemmNR;
  int16_t zz[kIgemmNR];
  for (int j = 0; j < kIgemmNR; ++j) zz[j] = int16_t(z[j]);
  int64_t k = 0;
  for (; k + 1 < K; k += 2, d += 2 * kIgemmNR) {
    const T* r0 = b + k * sk;
    const T* r1 = r0 + sk;
    for (int j = 0; j < kIgemmNR; ++j) {
      d[2 * j] = int16_t(int16_t(r0[j]) - zz[j]);
      d[2 * j + 1] = int16_t(int16_t(r1[j]) - zz[j]);
    }
  }
  if (k < K) {  // odd K: the last row with a zero partner
    const T* r0 = b + k * sk;
    for (int j = 0; j < kIgemmNR; ++j) {
      d[2 * j] = int16_t(int16_t(r0[j]) - zz[j]);
      d[2 * j + 1] = 0;
    }
  }
}

// Packs B panels [p0, p1) of a [K, N] operand at `base` (element strides sk, sn) with
// per-column zero points into the panel layout of igemm.h.
void pack_b(const void* base, DType t, int64_t sk, int64_t sn, int64_t K, int64_t N, int64_t p0,
            int64_t p1, const ZeroPoint& zp, int16_t* dst) {
  const int64_t kp = igemm_kp(K);
  for (int64_t p = p0; p < p1; ++p) {
    int16_t* d = dst + p * igemm_panel_elems(K);
    const int nc = int(std::min<int64_t>(kIgemmNR, N - p * kIgemmNR));
    int32_t z[kIgemmNR];
    for (int j = 0; j < nc; ++j) z[j] = zp(p * kIgemmNR + j);
    if (nc == kIgemmNR && sn == 1) {  // full panel of a row-major b: the vectorizable path
      t == DType::Int8 ? pack_b_full<int8_t>(base, sk, K, p, z, d)
                       : pack_b_full<uint8_t>(base, sk, K, p, z, d);
      continue;
    }
    // Row by row (contiguous reads of a row-major b), each value to its pair slot.
    for (int64_t k = 0; k < kp; ++k) {
      int16_t* dk = d + (k / 2) * 2 * kIgemmNR + (k & 1);
      const int64_t row = k * sk + p * kIgemmNR * sn;
      for (int j = 0; j < kIgemmNR; ++j)
        dk[2 * j] = k < K && j < nc ? int16_t(load8(base, t, row + j * sn) - z[j]) : int16_t(0);
    }
  }
}

// C [rows, N] (row stride ldc) = packed A rows x packed B panels, in parallel over blocks of
// rows x panels (panel-major, so consecutive blocks reuse a panel from cache).
void gemm_packed(const IgemmIsa& isa, const int16_t* ap, int64_t rows, const int16_t* bp, int64_t K,
                 int64_t N, int32_t* c, int64_t ldc) {
  constexpr int64_t kBlockRows = kIgemmMR * 8;
  const int64_t kp = igemm_kp(K), panels = igemm_panels(N);
  const int64_t rblocks = (rows + kBlockRows - 1) / kBlockRows;
  const int64_t work = kBlockRows * kIgemmNR * std::max<int64_t>(kp, 1);
  parallel_for(rblocks * panels, std::max<int64_t>(1, (int64_t(1) << 18) / work),
               [&](int64_t b, int64_t e) {
                 for (int64_t task = b; task < e; ++task) {
                   const int64_t p = task / rblocks, rb = task % rblocks;
                   const int nc = int(std::min<int64_t>(kIgemmNR, N - p * kIgemmNR));
                   const int16_t* panel = bp + p * igemm_panel_elems(K);
                   const int64_t r1 = std::min(rows, (rb + 1) * kBlockRows);
                   for (int64_t r = rb * kBlockRows; r < r1; r += kIgemmMR) {
                     const int mr = int(std::min<int64_t>(kIgemmMR, r1 - r));
                     isa.tile(ap + r * kp, kp, mr, panel, kp, c + r * ldc + p * kIgemmNR, ldc, nc);
                   }
                 }
               });
}

// ---- byte operands (igemm.h: A' = a (+128 for int8), B' = b (-128 for uint8)) -------------

inline uint8_t shift_a(int32_t v, DType t) { return uint8_t(t == DType::Int8 ? v + 128 : v); }
inline int8_t shift_b(int32_t v, DType t) { return int8_t(t == DType::UInt8 ? v - 128 : v); }
// alpha = za (+128 for int8 a), beta = zb (-128 for uint8 b).
inline int32_t alpha_of(int32_t za, DType t) { return t == DType::Int8 ? za + 128 : za; }
inline int32_t beta_of(int32_t zb, DType t) { return t == DType::UInt8 ? zb - 128 : zb; }

// A' rows [r0, r1) (row r at row_off(r), element stride ks) and their sums.
template <typename RowOff>
void pack_a_q8(const void* base, DType t, int64_t ks, int64_t K, int64_t r0, int64_t r1,
               RowOff row_off, uint8_t* dst, int32_t* rowsum) {
  const int64_t kq = igemm_kq(K);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t off = row_off(r);
    uint8_t* d = dst + r * kq;
    int32_t sum = 0;
    for (int64_t k = 0; k < K; ++k) {
      d[k] = shift_a(load8(base, t, off + k * ks), t);
      sum += d[k];
    }
    for (int64_t k = K; k < kq; ++k) d[k] = 0;
    rowsum[r] = sum;
  }
}

// One full panel p of a row-major [K, N] operand of type T as B' quads, with column sums.
template <typename T>
void pack_b_q8_full(const void* base, int64_t sk, int64_t K, int64_t p, int8_t* d,
                    int32_t* colsum) {
  const T* b = static_cast<const T*>(base) + p * kIgemmNR;
  // uint8 -> B' = b - 128 is the byte with its top bit flipped; int8 stays.
  const uint8_t flip = std::is_same_v<T, uint8_t> ? 0x80 : 0;
  int32_t sum[kIgemmNR] = {};
  for (int64_t k0 = 0; k0 < K; k0 += 4, d += 4 * kIgemmNR) {
    for (int i = 0; i < 4; ++i) {
      if (k0 + i >= K) {
        for (int j = 0; j < kIgemmNR; ++j) d[4 * j + i] = 0;
        continue;
      }
      const T* r = b + (k0 + i) * sk;
      for (int j = 0; j < kIgemmNR; ++j) {
        const int8_t v = int8_t(uint8_t(r[j]) ^ flip);
        d[4 * j + i] = v;
        sum[j] += v;
      }
    }
  }
  for (int j = 0; j < kIgemmNR; ++j) colsum[p * kIgemmNR + j] = sum[j];
}

// B' panels [p0, p1) of a [K, N] operand (element strides sk, sn) and its column sums
// (colsum[n] for n < panels * kIgemmNR; 0 past N).
void pack_b_q8(const void* base, DType t, int64_t sk, int64_t sn, int64_t K, int64_t N, int64_t p0,
               int64_t p1, int8_t* dst, int32_t* colsum) {
  const int64_t kq = igemm_kq(K);
  for (int64_t p = p0; p < p1; ++p) {
    int8_t* d = dst + p * igemm_panel_bytes_q8(K);
    const int nc = int(std::min<int64_t>(kIgemmNR, N - p * kIgemmNR));
    if (nc == kIgemmNR && sn == 1) {  // full panel of a row-major b
      t == DType::Int8 ? pack_b_q8_full<int8_t>(base, sk, K, p, d, colsum)
                       : pack_b_q8_full<uint8_t>(base, sk, K, p, d, colsum);
      continue;
    }
    int32_t sum[kIgemmNR] = {};
    for (int64_t k = 0; k < kq; ++k) {
      int8_t* dk = d + (k / 4) * 4 * kIgemmNR + (k & 3);
      const int64_t row = k * sk + p * kIgemmNR * sn;
      for (int j = 0; j < kIgemmNR; ++j) {
        const int8_t v = k < K && j < nc ? shift_b(load8(base, t, row + j * sn), t) : int8_t(0);
        dk[4 * j] = v;
        sum[j] += v;
      }
    }
    for (int j = 0; j < kIgemmNR; ++j) colsum[p * kIgemmNR + j] = sum[j];
  }
}

// C [rows, N] from byte operands with the corrections of igemm.h; alpha(r) and beta(n) per row
// and column. Blocks as gemm_packed.
template <typename Alpha, typename Beta>
void gemm_q8(const IgemmIsa& isa, const uint8_t* ap, const int32_t* rowsum, int64_t rows,
             const int8_t* bp, const int32_t* colsum, int64_t K, int64_t N, int32_t* c, int64_t ldc,
             Alpha alpha, Beta beta) {
  constexpr int64_t kBlockRows = kIgemmMR * 8;
  const int64_t kq = igemm_kq(K), panels = igemm_panels(N);
  // Panels go in pairs where the ISA has a two-panel tile.
  const int64_t step = isa.tile_q8_pair ? 2 : 1, groups = (panels + step - 1) / step;
  const int64_t rblocks = (rows + kBlockRows - 1) / kBlockRows;
  const int64_t work = kBlockRows * step * kIgemmNR * std::max<int64_t>(kq, 1);
  parallel_for(
      rblocks * groups, std::max<int64_t>(1, (int64_t(1) << 19) / work), [&](int64_t b, int64_t e) {
        for (int64_t task = b; task < e; ++task) {
          const int64_t p = task / rblocks * step, rb = task % rblocks;
          const bool pair = step == 2 && p + 1 < panels;
          const int64_t n0 = p * kIgemmNR;
          const int nc = int(std::min<int64_t>((pair ? 2 : 1) * kIgemmNR, N - n0));
          const int8_t* panel = bp + p * igemm_panel_bytes_q8(K);
          const int64_t r1 = std::min(rows, (rb + 1) * kBlockRows);
          for (int64_t r = rb * kBlockRows; r < r1; r += kIgemmMR) {
            const int mr = int(std::min<int64_t>(kIgemmMR, r1 - r));
            int32_t* ct = c + r * ldc + n0;
            if (pair) isa.tile_q8_pair(ap + r * kq, kq, mr, panel, kq, ct, ldc, nc - int(kIgemmNR));
            else isa.tile_q8(ap + r * kq, kq, mr, panel, kq, ct, ldc, nc);
            // Unsigned arithmetic: wraps exactly as the int32 result does.
            for (int i = 0; i < mr; ++i) {
              const uint32_t al = uint32_t(alpha(r + i)), ra = uint32_t(rowsum[r + i]);
              for (int j = 0; j < nc; ++j) {
                const int64_t n = n0 + j;
                const uint32_t be = uint32_t(beta(n)), cb = uint32_t(colsum[n]);
                ct[i * ldc + j] =
                    int32_t(uint32_t(ct[i * ldc + j]) - be * ra - al * cb + uint32_t(K) * al * be);
              }
            }
          }
        }
      });
}

// n int16 from the workspace (NEF has no int16 dtype: bytes).
int16_t* take_int16(WorkspaceCarver& ws, int64_t n) {
  return reinterpret_cast<int16_t*>(ws.take({2 * n}, DType::UInt8).data());
}

int64_t pack_grain(int64_t K) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(K, 1)); }

// Element offset of batch index `bi` (over the output's batch dims `ob`) in x, whose batch
// dims (all but the last two) broadcast against ob.
int64_t batch_offset(const Array& x, const Shape& ob, int64_t bi) {
  const int xb = x.rank() - 2;
  int64_t off = 0;
  for (int d = int(ob.size()) - 1; d >= 0; --d) {
    const int64_t i = bi % ob[size_t(d)];
    bi /= ob[size_t(d)];
    const int xd = d - (int(ob.size()) - xb);
    if (xd >= 0 && x.shape[size_t(xd)] != 1) off += i * x.strides[size_t(xd)];
  }
  return off;
}

// matmul_integer's constant B packed once per plan, in the format of the ISA it was packed for:
// byte panels and column sums (zero point applied per run), or int16 panels with B's zero point
// subtracted (which then was a constant too). The source is checked on every use.
struct PackedIntB final : Prepared {
  const IgemmIsa* isa = nullptr;
  const void* src = nullptr;  // b's data and strides
  int64_t sk = 0, sn = 0;
  const void* zsrc = nullptr;  // int16 format: the zero point's data (null: none)
  hwy::AlignedFreeUniquePtr<int8_t[]> bq;
  hwy::AlignedFreeUniquePtr<int32_t[]> colsum;
  hwy::AlignedFreeUniquePtr<int16_t[]> bp;
  bool replaces(size_t input) const override { return input == 1; }
};

class MatmulIntegerKernel final : public CpuKernel {
 public:
  MatmulIntegerKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : isa_(igemm_best()) {
    name_ = str("cpu.matmul_integer.", isa_.name);
    const Shape& a = in[0].shape;
    const Shape& b = in[1].shape;
    M_ = a[a.size() - 2];
    K_ = a.back();
    N_ = b.back();
    const Shape& o = node.type.shape;
    out_batch_.assign(o.begin(), o.end() - 2);
    // b without batch dims: a's batch dims fold into its rows, one GEMM.
    shared_b_ = b.size() == 2;
    rows_ = shared_b_ ? numel(a) / std::max<int64_t>(K_, 1) : M_;
    if (K_ == 0) rows_ = shared_b_ ? numel(o) / std::max<int64_t>(N_, 1) : M_;
    if (isa_.tile_q8)
      workspace_ = workspace_piece(rows_ * igemm_kq(K_), DType::UInt8) +
                   workspace_piece(rows_, DType::Int32) +
                   workspace_piece(igemm_panels(N_) * igemm_panel_bytes_q8(K_), DType::UInt8) +
                   workspace_piece(igemm_panels(N_) * kIgemmNR, DType::Int32);
    else
      workspace_ = workspace_piece(2 * (rows_ * igemm_kp(K_)), DType::UInt8) +
                   workspace_piece(2 * (igemm_panels(N_) * igemm_panel_elems(K_)), DType::UInt8);
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }

  // A constant 2-D B (and, for the int16 format, a constant or absent zero point of B) packed once
  // when the rows are few enough for the per-run packing to matter (gemm.h kPrepackMaxRows).
  std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const override {
    if (!shared_b_ || K_ == 0 || N_ == 0 || rows_ > kPrepackMaxRows || constants.size() < 2 ||
        !constants[1])
      return nullptr;
    const bool q8 = isa_.tile_q8 != nullptr;
    const bool has_zp = constants.size() == 4;
    if (!q8 && has_zp && !constants[3]) return nullptr;
    const Array& b = *constants[1];
    auto pk = std::make_shared<PackedIntB>();
    pk->isa = &isa_;
    pk->src = b.data();
    pk->sk = b.strides[0], pk->sn = b.strides[1];
    const int64_t panels = igemm_panels(N_);
    if (q8) {
      pk->bq = hwy::AllocateAligned<int8_t>(size_t(panels * igemm_panel_bytes_q8(K_)));
      pk->colsum = hwy::AllocateAligned<int32_t>(size_t(panels * kIgemmNR));
      NEF_CHECK(pk->bq && pk->colsum, "[matmul_integer] prepacking B: out of memory");
      parallel_for(panels, pack_grain(K_ * kIgemmNR), [&](int64_t p0, int64_t p1) {
        pack_b_q8(b.data(), b.dtype, pk->sk, pk->sn, K_, N_, p0, p1, pk->bq.get(),
                  pk->colsum.get());
      });
    } else {
      ZeroPoint zb;
      if (has_zp) zb = ZeroPoint(*constants[3]), pk->zsrc = constants[3]->data();
      pk->bp = hwy::AllocateAligned<int16_t>(size_t(panels * igemm_panel_elems(K_)));
      NEF_CHECK(pk->bp, "[matmul_integer] prepacking B: out of memory");
      parallel_for(panels, pack_grain(K_ * kIgemmNR), [&](int64_t p0, int64_t p1) {
        pack_b(b.data(), b.dtype, pk->sk, pk->sn, K_, N_, p0, p1, zb, pk->bp.get());
      });
    }
    return pk;
  }

  void run(const KernelArgs& args) const override {
    int32_t* out = args.out.data_as<int32_t>();
    const int64_t total = numel(args.out.shape);
    if (total == 0) return;
    if (K_ == 0) return std::fill(out, out + total, 0);
    const Array& a = args.inputs[0];
    const Array& b = args.inputs[1];
    ZeroPoint za, zb;
    if (args.inputs.size() == 4) za = ZeroPoint(args.inputs[2]), zb = ZeroPoint(args.inputs[3]);
    WorkspaceCarver ws(args.workspace);
    const int64_t kp = igemm_kp(K_), kq = igemm_kq(K_), panels = igemm_panels(N_);
    const bool q8 = isa_.tile_q8 != nullptr;
    int16_t *ap = nullptr, *bp = nullptr;
    uint8_t* aq = nullptr;
    int8_t* bq = nullptr;
    int32_t *rowsum = nullptr, *colsum = nullptr;
    if (q8) {
      aq = static_cast<uint8_t*>(ws.take({rows_ * kq}, DType::UInt8).data());
      rowsum = ws.take({rows_}, DType::Int32).data_as<int32_t>();
      bq = static_cast<int8_t*>(ws.take({panels * igemm_panel_bytes_q8(K_)}, DType::UInt8).data());
      colsum = ws.take({panels * kIgemmNR}, DType::Int32).data_as<int32_t>();
    } else {
      ap = take_int16(ws, rows_ * kp);
      bp = take_int16(ws, panels * igemm_panel_elems(K_));
    }
    const int64_t ak = a.strides.back(), am = a.strides[size_t(a.rank() - 2)];
    const int64_t bk = b.strides[size_t(b.rank() - 2)], bn = b.strides.back();
    const int64_t nbatch = shared_b_ ? 1 : numel(out_batch_);
    // The plan's packed B when it was packed from this very b (and zero point) for this ISA.
    const auto* pk = dynamic_cast<const PackedIntB*>(args.prepared);
    if (pk) {
      const void* zsrc = args.inputs.size() == 4 ? args.inputs[3].data() : nullptr;
      if (pk->isa == &isa_ && pk->src == b.data() && pk->sk == bk && pk->sn == bn &&
          (q8 ? bool(pk->bq) : pk->bp && pk->zsrc == zsrc)) {
        counters().gemm_prepacked++;
      } else {
        counters().gemm_prepack_fallbacks++;
        pk = nullptr;
      }
    }
    for (int64_t bi = 0; bi < nbatch; ++bi) {
      const int64_t aoff = shared_b_ ? 0 : batch_offset(a, out_batch_, bi);
      const int64_t boff = shared_b_ ? 0 : batch_offset(b, out_batch_, bi);
      const char* abase = static_cast<const char*>(a.data()) + aoff * int64_t(dtype_size(a.dtype));
      const char* bbase = static_cast<const char*>(b.data()) + boff * int64_t(dtype_size(b.dtype));
      // Row r of the GEMM is matrix row r % M (with shared b, a's batch dims folded into rows).
      auto row_off = [&](int64_t r) {
        int64_t off = (r % M_) * am, rest = r / M_;
        for (int d = a.rank() - 3; d >= 0 && rest > 0; --d) {
          off += (rest % a.shape[size_t(d)]) * a.strides[size_t(d)];
          rest /= a.shape[size_t(d)];
        }
        return off;
      };
      auto row_zp = [&](int64_t r) { return za(r % M_); };
      int32_t* c = out + bi * M_ * N_;
      if (q8) {
        parallel_for(rows_, pack_grain(K_), [&](int64_t r0, int64_t r1) {
          pack_a_q8(abase, a.dtype, ak, K_, r0, r1, row_off, aq, rowsum);
        });
        if (!pk)
          parallel_for(panels, pack_grain(K_ * kIgemmNR), [&](int64_t p0, int64_t p1) {
            pack_b_q8(bbase, b.dtype, bk, bn, K_, N_, p0, p1, bq, colsum);
          });
        gemm_q8(
            isa_, aq, rowsum, rows_, pk ? pk->bq.get() : bq, pk ? pk->colsum.get() : colsum, K_, N_,
            c, N_, [&](int64_t r) { return alpha_of(row_zp(r), a.dtype); },
            [&](int64_t n) { return beta_of(zb(n), b.dtype); });
        continue;
      }
      parallel_for(rows_, pack_grain(K_), [&](int64_t r0, int64_t r1) {
        pack_a(abase, a.dtype, ak, K_, kp, r0, r1, row_off, row_zp, ap);
      });
      if (!pk)
        parallel_for(panels, pack_grain(K_ * kIgemmNR), [&](int64_t p0, int64_t p1) {
          pack_b(bbase, b.dtype, bk, bn, K_, N_, p0, p1, zb, bp);
        });
      gemm_packed(isa_, ap, rows_, pk ? pk->bp.get() : bp, K_, N_, c, N_);
    }
  }

 private:
  const IgemmIsa& isa_;
  std::string name_;
  Shape out_batch_;
  bool shared_b_ = false;
  int64_t M_ = 0, K_ = 0, N_ = 0, rows_ = 0, workspace_ = 0;
};

// matmul_dynamic_int8 (ir/ops/quant.cpp): each row of x quantized to uint8 codes straight into the
// integer GEMM's A layout (vmath::quantize_u8), the constant int8 w packed once per plan as
// matmul_integer's B, the exact int32 product written into the output and then turned into
// float32 there with the row's and the column's scales (and the bias).
class MatmulDynamicInt8Kernel final : public CpuKernel {
 public:
  MatmulDynamicInt8Kernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : isa_(igemm_best()) {
    name_ = str("cpu.matmul_dynamic_int8.", isa_.name);
    const std::string& act = node.attrs.get_string("activation");
    relu_ = act == "relu", gelu_ = act == "gelu";
    K_ = in[0].shape.back();
    N_ = in[1].shape[1];
    rows_ = numel(node.type.shape) / std::max<int64_t>(N_, 1);
    const int64_t panels = igemm_panels(N_);
    // Codes, row sums, row scales and zero points, the scales and bias made contiguous.
    workspace_ = workspace_piece(rows_ * igemm_kq(K_), DType::UInt8) +
                 workspace_piece(rows_, DType::Int32) + workspace_piece(rows_, DType::Float32) +
                 workspace_piece(rows_, DType::Int32) + workspace_piece(2 * N_, DType::Float32);
    if (isa_.tile_q8)
      workspace_ += workspace_piece(panels * igemm_panel_bytes_q8(K_), DType::UInt8) +
                    workspace_piece(panels * kIgemmNR, DType::Int32);
    else
      workspace_ += workspace_piece(2 * (rows_ * igemm_kp(K_)), DType::UInt8) +
                    workspace_piece(2 * (panels * igemm_panel_elems(K_)), DType::UInt8);
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }

  // The constant w packed once, in the format of the kernel's ISA (no zero point).
  std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const override {
    if (K_ == 0 || N_ == 0 || constants.size() < 2 || !constants[1]) return nullptr;
    const Array& w = *constants[1];
    auto pk = std::make_shared<PackedIntB>();
    pk->isa = &isa_;
    pk->src = w.data();
    pk->sk = w.strides[0], pk->sn = w.strides[1];
    const int64_t panels = igemm_panels(N_);
    if (isa_.tile_q8) {
      pk->bq = hwy::AllocateAligned<int8_t>(size_t(panels * igemm_panel_bytes_q8(K_)));
      pk->colsum = hwy::AllocateAligned<int32_t>(size_t(panels * kIgemmNR));
      NEF_CHECK(pk->bq && pk->colsum, "[matmul_dynamic_int8] prepacking w: out of memory");
      parallel_for(panels, pack_grain(K_ * kIgemmNR), [&](int64_t p0, int64_t p1) {
        pack_b_q8(w.data(), w.dtype, pk->sk, pk->sn, K_, N_, p0, p1, pk->bq.get(),
                  pk->colsum.get());
      });
    } else {
      pk->bp = hwy::AllocateAligned<int16_t>(size_t(panels * igemm_panel_elems(K_)));
      NEF_CHECK(pk->bp, "[matmul_dynamic_int8] prepacking w: out of memory");
      parallel_for(panels, pack_grain(K_ * kIgemmNR), [&](int64_t p0, int64_t p1) {
        pack_b(w.data(), w.dtype, pk->sk, pk->sn, K_, N_, p0, p1, ZeroPoint(), pk->bp.get());
      });
    }
    return pk;
  }

  void run(const KernelArgs& args) const override {
    float* out = args.out.data_as<float>();
    if (rows_ == 0 || N_ == 0) return;
    const Array& x = args.inputs[0];
    const Array& w = args.inputs[1];
    const bool bias = args.inputs.size() == 4;
    WorkspaceCarver ws(args.workspace);
    const int64_t kq = igemm_kq(K_), kp = igemm_kp(K_), panels = igemm_panels(N_);
    auto* aq = static_cast<uint8_t*>(ws.take({rows_ * kq}, DType::UInt8).data());
    auto* rowsum = ws.take({rows_}, DType::Int32).data_as<int32_t>();
    auto* scale = ws.take({rows_}, DType::Float32).data_as<float>();
    auto* zp = ws.take({rows_}, DType::Int32).data_as<int32_t>();
    float* cs = ws.take({2 * N_}, DType::Float32).data_as<float>();  // w_scale, then bias
    for (int64_t n = 0; n < N_; ++n) {
      cs[n] = args.inputs[2].data_as<float>()[n * args.inputs[2].strides[0]];
      cs[N_ + n] = bias ? args.inputs[3].data_as<float>()[n * args.inputs[3].strides[0]] : 0.0f;
    }
    if (K_ == 0) {  // an empty product: the bias alone (through the activation)
      for (int64_t r = 0; r < rows_; ++r) {
        float* y = out + r * N_;
        for (int64_t n = 0; n < N_; ++n) y[n] = relu_ && cs[N_ + n] < 0.0f ? 0.0f : cs[N_ + n];
        if (gelu_) vmath::gelu_erf(y, y, size_t(N_));
      }
      return;
    }
    quantize_rows(x, aq, rowsum, scale, zp);
    const auto* pk = dynamic_cast<const PackedIntB*>(args.prepared);
    if (pk) {
      const bool q8 = isa_.tile_q8 != nullptr;
      if (pk->isa == &isa_ && pk->src == w.data() && pk->sk == w.strides[0] &&
          pk->sn == w.strides[1] && (q8 ? bool(pk->bq) : bool(pk->bp))) {
        counters().gemm_prepacked++;
      } else {
        counters().gemm_prepack_fallbacks++;
        pk = nullptr;
      }
    }
    // The int32 product goes into the output's own memory, then becomes float32 in place.
    auto* acc = reinterpret_cast<int32_t*>(out);
    if (isa_.tile_q8) {
      auto* bq =
          static_cast<int8_t*>(ws.take({panels * igemm_panel_bytes_q8(K_)}, DType::UInt8).data());
      auto* colsum = ws.take({panels * kIgemmNR}, DType::Int32).data_as<int32_t>();
      if (!pk)
        parallel_for(panels, pack_grain(K_ * kIgemmNR), [&](int64_t p0, int64_t p1) {
          pack_b_q8(w.data(), w.dtype, w.strides[0], w.strides[1], K_, N_, p0, p1, bq, colsum);
        });
      gemm_q8(
          isa_, aq, rowsum, rows_, pk ? pk->bq.get() : bq, pk ? pk->colsum.get() : colsum, K_, N_,
          acc, N_, [&](int64_t r) { return zp[r]; }, [](int64_t) { return int32_t(0); });
    } else {
      int16_t* ap = take_int16(ws, rows_ * kp);
      int16_t* bp = take_int16(ws, panels * igemm_panel_elems(K_));
      parallel_for(rows_, pack_grain(K_), [&](int64_t r0, int64_t r1) {
        pack_a(
            aq, DType::UInt8, 1, K_, kp, r0, r1, [&](int64_t r) { return r * kq; },
            [&](int64_t r) { return zp[r]; }, ap);
      });
      if (!pk)
        parallel_for(panels, pack_grain(K_ * kIgemmNR), [&](int64_t p0, int64_t p1) {
          pack_b(w.data(), w.dtype, w.strides[0], w.strides[1], K_, N_, p0, p1, ZeroPoint(), bp);
        });
      gemm_packed(isa_, ap, rows_, pk ? pk->bp.get() : bp, K_, N_, acc, N_);
    }
    // y = (float(acc) * s_row) * w_scale (+ bias), then the activation: the order of the float
    // ops of the unfused form (cast, mul, mul, add, relu / gelu), so both give the same bits.
    parallel_for(rows_, std::max<int64_t>(1, 8192 / N_), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        float* y = out + r * N_;
        vmath::scale_int32(acc + r * N_, size_t(N_), scale[r], cs, bias ? cs + N_ : nullptr, relu_,
                           y);
        if (gelu_) vmath::gelu_erf(y, y, size_t(N_));
      }
    });
  }

 private:
  // Codes of every row of x (rows of K elements, any strides) at aq + r * kq, zero padded, with
  // each row's code sum, scale and zero point. A row with NaN or an infinity gets codes 0 and a
  // NaN scale: its outputs are NaN.
  void quantize_rows(const Array& x, uint8_t* aq, int32_t* rowsum, float* scale,
                     int32_t* zp) const {
    const int64_t kq = igemm_kq(K_), ks = x.strides.back();
    const int rank = x.rank();
    parallel_for(rows_, pack_grain(K_), [&](int64_t r0, int64_t r1) {
      std::vector<float> copy(ks == 1 ? 0 : size_t(K_));
      for (int64_t r = r0; r < r1; ++r) {
        int64_t off = 0, rest = r;
        for (int d = rank - 2; d >= 0 && rest > 0; --d) {
          off += (rest % x.shape[size_t(d)]) * x.strides[size_t(d)];
          rest /= x.shape[size_t(d)];
        }
        const float* row = x.data_as<float>() + off;
        if (ks != 1) {
          for (int64_t k = 0; k < K_; ++k) copy[size_t(k)] = row[k * ks];
          row = copy.data();
        }
        uint8_t* q = aq + r * kq;
        std::fill(q + K_, q + kq, uint8_t(0));
        bool nan_hi = false, nan_lo = false;
        const float hi = std::max(vmath::extreme(row, size_t(K_), true, &nan_hi), 0.0f);
        const float lo = std::min(vmath::extreme(row, size_t(K_), false, &nan_lo), 0.0f);
        if (nan_hi || nan_lo || !std::isfinite(hi) || !std::isfinite(lo)) {
          std::fill(q, q + K_, uint8_t(0));
          rowsum[r] = 0, zp[r] = 0, scale[r] = std::numeric_limits<float>::quiet_NaN();
          continue;
        }
        const float s = std::max(hi - lo, std::numeric_limits<float>::min()) / 255.0f;
        const float z = std::nearbyint(-lo / s);
        scale[r] = s, zp[r] = int32_t(z);
        rowsum[r] = vmath::quantize_u8(row, size_t(K_), s, z, q);
      }
    });
  }

  const IgemmIsa& isa_;
  std::string name_;
  bool relu_ = false, gelu_ = false;
  int64_t K_ = 0, N_ = 0, rows_ = 0, workspace_ = 0;
};

// conv_integer: per image and group, out[m, p] = sum_k (w[m, k] - w_zp[m]) (col[k, p] - x_zp)
// with k over (channel, kernel offsets) and p over output positions. The weights are packed
// once per run as A; the im2col columns are written, a tile of positions at a time, straight
// into B panels (padding reads as the zero point, i.e. 0 after the subtraction). 1-D and 2-D
// convs with several output channels per group run ConvIntImplicit instead (conv_integer.h: no
// column buffer, 1.6 to 2.2 times faster than this path at 32-128 channels).
class ConvIntegerKernel final : public CpuKernel {
 public:
  ConvIntegerKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : isa_(igemm_best()) {
    name_ = str("cpu.conv_integer.", isa_.name);
    const Shape& x = in[0].shape;
    const Shape& w = in[1].shape;
    const Shape& o = node.type.shape;
    const size_t sp = x.size() - 2, lead = 3 - sp;
    const auto& st = node.attrs.get_ints("strides");
    const auto& pd = node.attrs.get_ints("pads");
    const auto& dl = node.attrs.get_ints("dilations");
    for (size_t i = 0; i < sp; ++i) {
      in_[lead + i] = x[2 + i], k_[lead + i] = w[2 + i], out_[lead + i] = o[2 + i];
      stride_[lead + i] = st[i], pad_[lead + i] = pd[i], dil_[lead + i] = dl[i];
    }
    groups_ = node.attrs.get_int("groups");
    N_ = x[0], C_ = x[1], M_ = w[0];
    Cg_ = C_ / groups_, Mg_ = M_ / groups_;
    Kc_ = Cg_ * k_[0] * k_[1] * k_[2];
    P_ = out_[0] * out_[1] * out_[2];
    const int64_t kp = igemm_kp(Kc_);
    // A tile of positions whose panels take about 1 MiB (the GEMM streams them from L2).
    const int64_t want = std::max<int64_t>(kIgemmNR, (int64_t(1) << 19) / std::max<int64_t>(kp, 1));
    tile_ = std::min(want / kIgemmNR * kIgemmNR, igemm_panels(P_) * kIgemmNR);
    // 1-D and 2-D convs without a column buffer (conv_integer.h) where that applies.
    if (sp <= 2) {
      ConvIntGeom cg;
      cg.N = N_, cg.C = C_, cg.M = M_, cg.G = groups_;
      cg.H = in_[1], cg.W = in_[2], cg.Ho = out_[1], cg.Wo = out_[2];
      cg.kh = k_[1], cg.kw = k_[2], cg.sh = stride_[1], cg.sw = stride_[2];
      cg.dh = dil_[1], cg.dw = dil_[2], cg.pt = pad_[1], cg.pl = pad_[2];
      auto im = std::make_unique<ConvIntImplicit>(cg, isa_.name);
      if (im->applies()) {
        name_ = str("cpu.conv_integer.implicit.", im->isa_name());
        workspace_ = im->workspace_bytes();
        implicit_ = std::move(im);
        return;
      }
    }
    if (isa_.tile_q8)
      workspace_ = workspace_piece(M_ * igemm_kq(Kc_), DType::UInt8) +
                   workspace_piece(M_, DType::Int32) +
                   workspace_piece(igemm_panels(tile_) * igemm_panel_bytes_q8(Kc_), DType::UInt8) +
                   workspace_piece(igemm_panels(tile_) * kIgemmNR, DType::Int32);
    else
      workspace_ =
          workspace_piece(2 * (M_ * kp), DType::UInt8) +
          workspace_piece(2 * (igemm_panels(tile_) * igemm_panel_elems(Kc_)), DType::UInt8);
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }

  // The implicit conv's weight words packed once per plan (with a constant weight zero point
  // where its format subtracts it).
  std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const override {
    if (!implicit_ || Kc_ == 0 || constants.size() < 2 || !constants[1]) return nullptr;
    const Array* zw = constants.size() == 4 ? constants[3] : nullptr;
    if (constants.size() == 4 && !zw && implicit_->packs_zero_point()) return nullptr;
    return implicit_->pack(*constants[1], zw);
  }

  void run(const KernelArgs& args) const override {
    int32_t* out = args.out.data_as<int32_t>();
    const int64_t total = numel(args.out.shape);
    if (total == 0) return;
    if (Kc_ == 0) return std::fill(out, out + total, 0);
    const Array& x = args.inputs[0];
    const Array& w = args.inputs[1];
    if (implicit_) {
      const bool zp = args.inputs.size() == 4;
      const bool used =
          implicit_->run(x, w, zp ? &args.inputs[2] : nullptr, zp ? &args.inputs[3] : nullptr, out,
                         args.workspace, args.prepared);
      if (args.prepared) ++(used ? counters().gemm_prepacked : counters().gemm_prepack_fallbacks);
      return;
    }
    ZeroPoint zx, zw;
    if (args.inputs.size() == 4) zx = ZeroPoint(args.inputs[2]), zw = ZeroPoint(args.inputs[3]);
    WorkspaceCarver ws(args.workspace);
    const int64_t kp = igemm_kp(Kc_), kq = igemm_kq(Kc_);
    const bool q8 = isa_.tile_q8 != nullptr;
    int16_t *ap = nullptr, *bp = nullptr;
    uint8_t* aq = nullptr;
    int8_t* bq = nullptr;
    int32_t *rowsum = nullptr, *colsum = nullptr;
    if (q8) {
      aq = static_cast<uint8_t*>(ws.take({M_ * kq}, DType::UInt8).data());
      rowsum = ws.take({M_}, DType::Int32).data_as<int32_t>();
      bq = static_cast<int8_t*>(
          ws.take({igemm_panels(tile_) * igemm_panel_bytes_q8(Kc_)}, DType::UInt8).data());
      colsum = ws.take({igemm_panels(tile_) * kIgemmNR}, DType::Int32).data_as<int32_t>();
    } else {
      ap = take_int16(ws, M_ * kp);
      bp = take_int16(ws, igemm_panels(tile_) * igemm_panel_elems(Kc_));
    }
    // Strides over the normalized (N, C, D, H, W) view; missing spatial dims have extent 1.
    int64_t xs[5] = {x.strides[0], x.strides[1], 0, 0, 0},
            wsd[5] = {w.strides[0], w.strides[1], 0, 0, 0};
    const int sp = x.rank() - 2;
    for (int i = 0; i < sp; ++i) xs[2 + 3 - sp + i] = x.strides[size_t(2 + i)];
    for (int i = 0; i < sp; ++i) wsd[2 + 3 - sp + i] = w.strides[size_t(2 + i)];

    // The weights as A rows: (channel, kernel offsets) in order, w - w_zp or shifted bytes.
    parallel_for(M_, pack_grain(Kc_), [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; ++m) {
        const int32_t z = zw(m);
        int64_t k = 0;
        int32_t sum = 0;
        for (int64_t c = 0; c < Cg_; ++c)
          for (int64_t a = 0; a < k_[0]; ++a)
            for (int64_t b = 0; b < k_[1]; ++b)
              for (int64_t e = 0; e < k_[2]; ++e, ++k) {
                const int32_t v =
                    load8(w.data(), w.dtype,
                          m * wsd[0] + c * wsd[1] + a * wsd[2] + b * wsd[3] + e * wsd[4]);
                if (q8) {
                  aq[m * kq + k] = shift_a(v, w.dtype);
                  sum += aq[m * kq + k];
                } else {
                  ap[m * kp + k] = int16_t(v - z);
                }
              }
        if (q8) {
          for (; k < kq; ++k) aq[m * kq + k] = 0;
          rowsum[m] = sum;
        } else if (kp != Kc_) {
          ap[m * kp + Kc_] = 0;
        }
      }
    });
    const int32_t xz = zx(0);
    for (int64_t n = 0; n < N_; ++n)
      for (int64_t g = 0; g < groups_; ++g) {
        const char* xg = static_cast<const char*>(x.data()) +
                         (n * xs[0] + g * Cg_ * xs[1]) * int64_t(dtype_size(x.dtype));
        for (int64_t p0 = 0; p0 < P_; p0 += tile_) {
          const int64_t cols = std::min(tile_, P_ - p0);
          int32_t* c = out + (n * M_ + g * Mg_) * P_ + p0;
          parallel_for(igemm_panels(cols), 1, [&](int64_t q0, int64_t q1) {
            for (int64_t q = q0; q < q1; ++q) {
              const int64_t nc = std::min<int64_t>(kIgemmNR, cols - q * kIgemmNR);
              if (q8)
                pack_cols<int8_t, 4, true>(xg, x.dtype, xs, xz, p0 + q * kIgemmNR, nc,
                                           bq + q * igemm_panel_bytes_q8(Kc_),
                                           colsum + q * kIgemmNR);
              else
                pack_cols<int16_t, 2, false>(xg, x.dtype, xs, xz, p0 + q * kIgemmNR, nc,
                                             bp + q * igemm_panel_elems(Kc_), nullptr);
            }
          });
          if (q8) {
            const int32_t beta = beta_of(xz, x.dtype);
            gemm_q8(
                isa_, aq + g * Mg_ * kq, rowsum + g * Mg_, Mg_, bq, colsum, Kc_, cols, c, P_,
                [&](int64_t r) { return alpha_of(zw(g * Mg_ + r), w.dtype); },
                [&](int64_t) { return beta; });
          } else {
            gemm_packed(isa_, ap + g * Mg_ * kp, Mg_, bp, Kc_, cols, c, P_);
          }
        }
      }
  }

 private:
  // One B panel: im2col columns p0 .. p0 + nc (nc <= kIgemmNR; the rest zero), as int16 pairs
  // of x - x_zp (Shifted false: padding 0) or as byte quads of B' (Shifted true: padding is the
  // shifted zero point, which the corrections cancel; column sums added to colsum).
  template <typename E, int G, bool Shifted>
  void pack_cols(const char* xg, DType t, const int64_t* xs, int32_t xz, int64_t p0, int64_t nc,
                 E* d, int32_t* colsum) const {
    int64_t base[3][kIgemmNR];  // first input coordinate of each column, per spatial dim
    for (int j = 0; j < kIgemmNR; ++j) {
      int64_t p = p0 + std::min<int64_t>(j, nc - 1);
      for (int s = 2; s >= 0; --s) {
        base[s][j] = (p % out_[s]) * stride_[s] - pad_[s];
        p /= out_[s];
      }
    }
    const int64_t kpad = (Kc_ + G - 1) / G * G, es = int64_t(dtype_size(t));
    const E pad = Shifted ? E(shift_b(xz, t)) : E(0);
    int32_t sum[kIgemmNR] = {};
    for (int64_t k = 0; k < kpad; ++k) {
      E* dk = d + (k / G) * G * kIgemmNR + (k % G);
      if (k >= Kc_) {
        for (int j = 0; j < kIgemmNR; ++j) dk[G * j] = 0;
        continue;
      }
      int64_t rest = k, off[3];
      for (int s = 2; s >= 0; --s) {
        off[s] = (rest % k_[s]) * dil_[s];
        rest /= k_[s];
      }
      const char* xc = xg + rest * xs[1] * es;  // rest is now the channel within the group
      for (int j = 0; j < kIgemmNR; ++j) {
        E v = 0;
        if (j < nc) {
          const int64_t i0 = base[0][j] + off[0], i1 = base[1][j] + off[1],
                        i2 = base[2][j] + off[2];
          v = pad;
          if (i0 >= 0 && i0 < in_[0] && i1 >= 0 && i1 < in_[1] && i2 >= 0 && i2 < in_[2]) {
            const int32_t x = load8(xc, t, i0 * xs[2] + i1 * xs[3] + i2 * xs[4]);
            v = Shifted ? E(shift_b(x, t)) : E(x - xz);
          }
        }
        dk[G * j] = v;
        sum[j] += v;
      }
    }
    if (Shifted)
      for (int j = 0; j < kIgemmNR; ++j) colsum[j] = sum[j];
  }

  const IgemmIsa& isa_;
  std::string name_;
  std::unique_ptr<ConvIntImplicit> implicit_;  // set where it runs this conv
  int64_t in_[3] = {1, 1, 1}, k_[3] = {1, 1, 1}, out_[3] = {1, 1, 1};
  int64_t stride_[3] = {1, 1, 1}, pad_[3] = {0, 0, 0}, dil_[3] = {1, 1, 1};
  int64_t groups_ = 1, N_ = 0, C_ = 0, M_ = 0, Cg_ = 0, Mg_ = 0, Kc_ = 0, P_ = 0, tile_ = 0;
  int64_t workspace_ = 0;
};

// conv_dynamic_int8 (ir/ops/quant.cpp): ConvIntImplicit's quantize-at-run-time entry, its
// constant weights packed once per plan.
class ConvDynamicInt8Kernel final : public CpuKernel {
 public:
  ConvDynamicInt8Kernel(const ir::Node& node, const std::vector<ir::TensorType>& in) {
    const Shape& x = in[0].shape;
    const Shape& w = in[1].shape;
    const Shape& o = node.type.shape;
    const bool two = x.size() == 4;
    const auto& st = node.attrs.get_ints("strides");
    const auto& pd = node.attrs.get_ints("pads");
    const auto& dl = node.attrs.get_ints("dilations");
    ConvIntGeom g;
    g.N = x[0], g.C = x[1], g.M = w[0], g.G = node.attrs.get_int("groups");
    g.H = two ? x[2] : 1, g.W = x.back(), g.Ho = two ? o[2] : 1, g.Wo = o.back();
    g.kh = two ? w[2] : 1, g.kw = w.back();
    g.sh = two ? st[0] : 1, g.sw = st.back(), g.dh = two ? dl[0] : 1, g.dw = dl.back();
    g.pt = two ? pd[0] : 0, g.pl = two ? pd[1] : pd[0];
    empty_ = numel(o) == 0;
    const std::string act = node.attrs.get_string("activation");
    act_ = act == "relu"   ? ConvIntImplicit::kRelu
           : act == "silu" ? ConvIntImplicit::kSilu
                           : ConvIntImplicit::kNone;
    conv_ = std::make_unique<ConvIntImplicit>(g, igemm_best().name);
    name_ = str("cpu.conv_dynamic_int8.", conv_->isa_name());
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return empty_ ? 0 : conv_->workspace_bytes(true); }
  std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const override {
    if (empty_ || constants.size() < 2 || !constants[1]) return nullptr;
    return conv_->pack(*constants[1], nullptr);
  }
  void run(const KernelArgs& args) const override {
    if (empty_) return;
    const bool used = conv_->run_dynamic(args.inputs[0], args.inputs[1], args.inputs[2],
                                         args.inputs.size() == 4 ? &args.inputs[3] : nullptr, act_,
                                         args.out.data_as<float>(), args.workspace, args.prepared);
    if (args.prepared) ++(used ? counters().gemm_prepacked : counters().gemm_prepack_fallbacks);
  }

 private:
  std::unique_ptr<ConvIntImplicit> conv_;
  std::string name_;
  ConvIntImplicit::Activation act_ = ConvIntImplicit::kNone;
  bool empty_ = false;
};

}  // namespace

const IgemmIsa& igemm_best() {
  static const IgemmIsa& isa = choose();
  return isa;
}

void register_integer_kernels(KernelTable& t) {
  t.add_prepared<MatmulIntegerKernel>("matmul_integer");
  t.add_prepared<ConvIntegerKernel>("conv_integer");
  t.add_prepared<MatmulDynamicInt8Kernel>("matmul_dynamic_int8");
  t.add_prepared<ConvDynamicInt8Kernel>("conv_dynamic_int8");
}

}  // namespace nef::backend::cpu
