// CPU kernels of the quantized ops: qmatmul (x @ W^T with W block-quantized, qmatmul.h has the
// scheme) and qgather (rows of a block-quantized table, dequantized: embeddings). The
// instruction set is chosen once (cpu_target.h): AVX-512 VNNI, else AVX2 with AVX-VNNI, else
// AVX2, else portable code; NEF_CPU_TARGET=avx2vnni, avx2 or generic forces a lower one (tests
// cover every variant that way).
#include "backends/cpu/kernels/qmatmul.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/cpu_target.h"
#include "backends/cpu/kernels/gemm.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "common/dispatch.h"
#include "common/log.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {

int64_t unpacked_row_bytes(int64_t K) { return (K + 63) / 64 * 64 + (K / 32) * 4 * 4; }

namespace {

// The variant of int8_cpu_target(), or the next one down compiled in.
const QGemmIsa& choose() {
  return pick_int8_variant(qgemm_avx512(), qgemm_avx2vnni(), qgemm_avx2(), qgemm_generic());
}

quant::Format format_of(const ir::Attrs& attrs) {
  auto f = quant::format_from_name(attrs.get_string("format"));
  NEF_CHECK(f.has_value(), "qmatmul format validated at inference");
  return *f;
}

// Element offset of row `row` of x seen as [rows, K] (leading dims walked with their strides).
int64_t row_offset(const Array& x, int64_t row) {
  const int r = x.rank();
  int64_t off = 0;
  for (int d = r - 2; d >= 0; --d) {
    off += (row % x.shape[d]) * x.strides[d];
    row /= x.shape[d];
  }
  return off;
}

// Row `row` of x as contiguous floats: x itself when it is float32 with unit element stride,
// else converted into buf.
const float* float_row(const Array& x, int64_t row, float* buf) {
  const int64_t K = x.shape.back(), ks = x.strides.back(), off = row_offset(x, row);
  if (x.dtype == DType::Float32 && (ks == 1 || K <= 1)) return x.data_as<float>() + off;
  dispatch_dtype(x.dtype, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      const T* src = static_cast<const T*>(x.data()) + off;
      for (int64_t k = 0; k < K; ++k) buf[k] = float(load_as(src[k * ks]));
    } else {
      NEF_CHECK(false, "qmatmul x must be float");
    }
  });
  return buf;
}

// Multiply-adds per parallel piece, at least: a decoding GEMV row of 576 weights takes ~30 ns,
// so a piece of ~110 such rows (~3 us) is worth handing to another thread.
constexpr int64_t kRowWork = int64_t(1) << 16;

const GemmTileHook kNoHook = [](int64_t, int64_t, int64_t, int64_t) {};

class QMatmulKernel final : public CpuKernel {
 public:
  QMatmulKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : isa_(qgemm_best()), format_(format_of(node.attrs)) {
    name_ = str("cpu.qmatmul.", quant::info(format_).name, ".", isa_.name);
    const Shape& x = in[0].shape;
    K_ = x.back();
    M_ = K_ > 0 ? numel(x) / K_ : 0;
    N_ = in[1].shape[0];
    if (M_ == 0 || N_ == 0 || K_ == 0) return;
    if (M_ >= kPanelRows) {
      // Many activation rows: weight panels dequantized in cache, then the float GEMM.
      pslots_ = parallel_slots((N_ + kPanelCols - 1) / kPanelCols, 1);
      workspace_ = x_convert_bytes(in[0]) + pslots_ * panel_slot_bytes();
      return;
    }
    qslots_ = parallel_slots(M_, std::max<int64_t>(1, kRowWork / (64 * K_)));
    nslots_ = parallel_slots(N_, grain_n());
    gemv_ = M_ == 1 && isa_.gemv && quant::info(format_).block_elems == 32;
    if (gemv_) {
      const int64_t nb16 = gemv_padded_blocks(K_);
      workspace_ = workspace_piece(K_ / 32 * int64_t(sizeof(QChunk)), DType::UInt8) +
                   workspace_piece(K_, DType::Float32) + workspace_piece(K_, DType::UInt8) +
                   2 * workspace_piece(nb16, DType::Float32);
      return;
    }
    workspace_ = workspace_piece(M_ * (K_ / 32) * int64_t(sizeof(QChunk)), DType::UInt8) +
                 qslots_ * workspace_piece(K_, DType::Float32) +
                 nslots_ * workspace_piece(unpacked_row_bytes(K_), DType::UInt8);
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }

  void run(const KernelArgs& args) const override {
    if (M_ == 0 || N_ == 0) return;
    float* out = args.out.data_as<float>();
    if (K_ == 0) {
      std::fill(out, out + M_ * N_, 0.0f);
      return;
    }
    const Array& x = args.inputs[0];
    const Array& w = args.inputs[1];
    NEF_CHECK(w.dtype == DType::UInt8 && w.strides.back() == 1 &&
                  (w.shape[0] <= 1 || w.strides[0] == w.shape[1]),
              "qmatmul weights must be contiguous rows");
    WorkspaceCarver ws(args.workspace);
    if (M_ >= kPanelRows) return run_panels(x, w, args.out, ws);
    if (gemv_) return run_gemv(x, w, out, ws);
    QChunk* xq = reinterpret_cast<QChunk*>(
        ws.take({M_ * (K_ / 32) * int64_t(sizeof(QChunk))}, DType::UInt8).data());
    float* fbuf = ws.take({qslots_ * ((K_ + 15) / 16 * 16)}, DType::Float32).data_as<float>();
    const int64_t fstride = (K_ + 15) / 16 * 16;
    const int64_t ustride = workspace_piece(unpacked_row_bytes(K_), DType::UInt8);
    uint8_t* ubuf = static_cast<uint8_t*>(ws.take({nslots_ * ustride}, DType::UInt8).data());

    parallel_for_slots(
        M_, std::max<int64_t>(1, kRowWork / (64 * K_)), [&](int64_t slot, int64_t b, int64_t e) {
          for (int64_t m = b; m < e; ++m)
            isa_.quantize_row(float_row(x, m, fbuf + slot * fstride), K_, xq + m * (K_ / 32));
        });
    QGemmArgs a{format_, static_cast<const uint8_t*>(w.data()), w.shape[1], K_, xq, M_, out, N_};
    parallel_for_slots(N_, grain_n(), [&](int64_t slot, int64_t b, int64_t e) {
      isa_.rows(a, b, e, ubuf + slot * ustride);
    });
  }

 private:
  // From this many activation rows on (prefill, encoders), dequantizing a panel of kPanelCols
  // weight rows into cache once and running the float GEMM over all rows beats the byte dot
  // products, whose per-block scaling costs as much as the products.
  static constexpr int64_t kPanelRows = 32, kPanelCols = 128;

  int64_t grain_n() const { return std::max<int64_t>(1, kRowWork / std::max<int64_t>(1, M_ * K_)); }

  // One activation row (decoding): quantized once, split into the planes the gemv reads, then
  // the weight rows in parallel.
  void run_gemv(const Array& x, const Array& w, float* out, WorkspaceCarver& ws) const {
    const int64_t nb = K_ / 32, nb16 = gemv_padded_blocks(K_);
    QChunk* xq =
        reinterpret_cast<QChunk*>(ws.take({nb * int64_t(sizeof(QChunk))}, DType::UInt8).data());
    float* fbuf = ws.take({K_}, DType::Float32).data_as<float>();
    int8_t* q = static_cast<int8_t*>(ws.take({K_}, DType::UInt8).data());
    float* d = ws.take({nb16}, DType::Float32).data_as<float>();
    float* s = ws.take({nb16}, DType::Float32).data_as<float>();
    isa_.quantize_row(float_row(x, 0, fbuf), K_, xq);
    for (int64_t b = 0; b < nb; ++b) {
      std::memcpy(q + 32 * b, xq[b].q, 32);
      d[b] = xq[b].d, s[b] = xq[b].s;
    }
    std::fill(d + nb, d + nb16, 0.0f);
    std::fill(s + nb, s + nb16, 0.0f);
    const QGemvArgs a{format_, static_cast<const uint8_t*>(w.data()), w.shape[1], K_, q, d, s, out};
    parallel_for(N_, grain_n(), [&](int64_t b, int64_t e) { isa_.gemv(a, b, e); });
  }

  // x as a dense float32 [M, K] when it is not one already (strides are known at run time).
  int64_t x_convert_bytes(const ir::TensorType&) const {
    return workspace_piece(M_ * K_, DType::Float32);
  }
  // One thread's panel: kPanelCols dequantized rows, the unpack scratch, the GEMM's packing
  // scratch and an [M, kPanelCols] result.
  int64_t panel_slot_bytes() const {
    return workspace_piece(kPanelCols * K_, DType::Float32) +
           workspace_piece(unpacked_row_bytes(K_), DType::UInt8) +
           matmul_scratch_bytes({M_, K_}, {K_, kPanelCols}, DType::Float32, false) +
           workspace_piece(M_ * kPanelCols, DType::Float32);
  }

  void run_panels(const Array& x, const Array& w, Array& out, WorkspaceCarver& ws) const {
    Array xf = ws.take({M_, K_}, DType::Float32);
    if (x.dtype == DType::Float32 && x.strides == contiguous_strides(x.shape)) {
      xf.storage = x.storage, xf.offset = x.offset;  // dense already: a view
    } else {
      for (int64_t m = 0; m < M_; ++m) {
        float* dst = xf.data_as<float>() + m * K_;
        const float* src = float_row(x, m, dst);
        if (src != dst) std::copy(src, src + K_, dst);
      }
    }
    const int64_t slot_bytes = panel_slot_bytes();
    const Array slots = ws.take({pslots_ * slot_bytes}, DType::UInt8);
    const uint8_t* wd = static_cast<const uint8_t*>(w.data());
    const int64_t rb = w.shape[1], panels = (N_ + kPanelCols - 1) / kPanelCols;
    float* o = out.data_as<float>();
    parallel_for_slots(panels, 1, [&](int64_t slot, int64_t p0, int64_t p1) {
      Array mine = slots;
      mine.offset += slot * slot_bytes;
      WorkspaceCarver sw(mine);
      Array panel = sw.take({kPanelCols, K_}, DType::Float32);
      uint8_t* ubuf = static_cast<uint8_t*>(sw.take({unpacked_row_bytes(K_)}, DType::UInt8).data());
      const Array gemm = sw.take(
          {matmul_scratch_bytes({M_, K_}, {K_, kPanelCols}, DType::Float32, false)}, DType::UInt8);
      Array res = sw.take({M_, kPanelCols}, DType::Float32);
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n0 = p * kPanelCols, nc = std::min(kPanelCols, N_ - n0);
        for (int64_t j = 0; j < nc; ++j)
          isa_.dequantize_row(format_, wd + (n0 + j) * rb, K_, panel.data_as<float>() + j * K_,
                              ubuf);
        Array b = panel;  // W^T columns n0.. as [K, nc]: element (k, j) at j * K + k
        b.shape = {K_, nc};
        b.strides = {1, K_};
        Array r = res;
        r.shape = {M_, nc};
        r.strides = contiguous_strides({M_, nc});
        matmul_float_with_hook(xf, b, r, kNoHook, gemm, false);
        const float* rp = r.data_as<float>();
        for (int64_t m = 0; m < M_; ++m) std::copy(rp + m * nc, rp + (m + 1) * nc, o + m * N_ + n0);
      }
    });
  }

  const QGemmIsa& isa_;
  quant::Format format_;
  std::string name_;
  int64_t M_ = 0, N_ = 0, K_ = 0, qslots_ = 1, nslots_ = 1, pslots_ = 1, workspace_ = 0;
  bool gemv_ = false;  // M = 1 with a 32-element format and an ISA gemv
};

class QGatherKernel final : public CpuKernel {
 public:
  QGatherKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : isa_(qgemm_best()), format_(format_of(node.attrs)) {
    name_ = str("cpu.qgather.", quant::info(format_).name);
    K_ = node.type.shape.back();
    rows_ = numel(in[1].shape);
    slots_ = parallel_slots(rows_, grain());
    workspace_ = slots_ * workspace_piece(unpacked_row_bytes(K_), DType::UInt8);
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }

  void run(const KernelArgs& args) const override {
    if (rows_ == 0 || K_ == 0) return;
    const Array& w = args.inputs[0];
    const Array& ids = args.inputs[1];
    NEF_CHECK(w.dtype == DType::UInt8 && w.strides.back() == 1 &&
                  (w.shape[0] <= 1 || w.strides[0] == w.shape[1]),
              "qgather table must be contiguous rows");
    const int64_t N = w.shape[0], rb = w.shape[1];
    // Indices first, all of them: a bad one fails the op before any row is written.
    std::vector<int64_t> idx(static_cast<size_t>(rows_));
    dispatch_dtype(ids.dtype, [&]<typename T>() {
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        const T* p = static_cast<const T*>(ids.data());
        for (int64_t i = 0; i < rows_; ++i) {
          int64_t rem = i, off = 0;
          for (int d = ids.rank() - 1; d >= 0; --d) {
            off += (rem % ids.shape[d]) * ids.strides[d];
            rem /= ids.shape[d];
          }
          int64_t v = int64_t(p[off]);
          if (v < 0) v += N;
          if (v < 0 || v >= N)
            throw ValidationError(str("[qgather] index ", int64_t(p[off]), " out of range for ", N,
                                      " rows (table ", shape_str(w.shape), ")"));
          idx[size_t(i)] = v;
        }
      } else {
        NEF_CHECK(false, "qgather ids must be integers");
      }
    });
    const int64_t ustride = workspace_piece(unpacked_row_bytes(K_), DType::UInt8);
    uint8_t* ubuf = static_cast<uint8_t*>(args.workspace.data());
    const uint8_t* table = static_cast<const uint8_t*>(w.data());
    float* out = args.out.data_as<float>();
    parallel_for_slots(rows_, grain(), [&](int64_t slot, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        isa_.dequantize_row(format_, table + idx[size_t(i)] * rb, K_, out + i * K_,
                            ubuf + slot * ustride);
    });
  }

 private:
  int64_t grain() const { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, K_)); }

  const QGemmIsa& isa_;
  quant::Format format_;
  std::string name_;
  int64_t K_ = 0, rows_ = 0, slots_ = 1, workspace_ = 0;
};

}  // namespace

const QGemmIsa& qgemm_best() {
  static const QGemmIsa& isa = choose();
  return isa;
}

void register_quant_kernels(KernelTable& t) {
  t.add_prepared<QMatmulKernel>("qmatmul");
  t.add_prepared<QGatherKernel>("qgather");
}

}  // namespace nef::backend::cpu
