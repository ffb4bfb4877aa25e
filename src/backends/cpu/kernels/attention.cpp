// CPU scaled dot-product attention: out = softmax(scale * q k^T + mask) v per (batch..., head),
// leading dims broadcast, inputs strided. Work items are (batch, block of query rows), split over
// threads. Per item and block of keys: S = Q_blk K_blk^T with the blocked GEMM of matmul.cpp
// (gemm.h), then scale, mask and exp per row in place (vmath.h: vectorized exp), then
// P V_blk with the GEMM. Blocks of at most kDirectRows query rows (decoding: Lq = 1) use dot
// products and weighted sums of V rows instead: packing K and V for the GEMM would cost more
// than the products. One key block covers Lk up to kMaxKeyBlock keys; beyond that the blocks
// combine with a running row max and sum (online softmax), so scratch stays bounded by the block
// sizes, never Lq x Lk. Rows are normalized once at the end (a row with no attended key: zeros,
// or NaN with empty_rows = "nan"; a NaN or +inf score: NaN). A bool mask adds 0 / -inf; causal
// masking is bottom-right aligned and skips the keys no row of the block can see.
// float16/bfloat16 compute in float32.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/gemm.h"
#include "backends/cpu/kernels/vmath.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "common/dispatch.h"
#include "common/simd.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

constexpr int64_t kMaxKeyBlock = 2048;       // keys per block (one block for most models)
constexpr int64_t kKeyBlockElems = 1 << 18;  // bounds a converted K or V block when D is large
constexpr int64_t kScoreElems = 1 << 16;     // scores per item: query rows = this / key block
constexpr int64_t kMinRows = 16, kMaxRows = 256;
constexpr int64_t kDirectRows = 6;  // blocks of at most this many query rows skip the GEMM

// One operand seen as [batch..., rows, cols]: per-batch offsets plus row and column strides.
struct Operand {
  const Array* a = nullptr;
  std::vector<int64_t> batch_off;
  int64_t rs = 0, cs = 0;
};

Operand make_operand(const Array& a, const Shape& batch, const Shape& full_tail) {
  Operand o;
  o.a = &a;
  Shape full = batch;
  full.insert(full.end(), full_tail.begin(), full_tail.end());
  Strides st = broadcast_strides(a.shape, a.strides, full);
  const int nb = int(batch.size());
  o.rs = st[nb];
  o.cs = st[nb + 1];
  int64_t n = numel(batch);
  o.batch_off.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, off = 0;
    for (int d = nb - 1; d >= 0; --d) {
      off += (rem % batch[d]) * st[d];
      rem /= batch[d];
    }
    o.batch_off[i] = off;
  }
  return o;
}

// A 2-D view of `base` (same storage) starting `off` elements after base's first element.
Array view2d(const Array& base, int64_t off, int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  Array v = base;
  v.offset += off;
  v.shape = {rows, cols};
  v.strides = {rs, cs};
  return v;
}

// Rows [r0, r0 + rows) x all cols of operand `o` at batch b as a 2-D view in the compute type
// C: the input itself when it already has that dtype (and unit column stride if `unit_cols`),
// else a dense converted copy in `buf`. `transpose` views it as cols x rows (for K^T).
template <typename C>
Array operand_block(const Operand& o, int64_t b, int64_t r0, int64_t rows, int64_t cols,
                    bool transpose, const Array& buf, bool unit_cols = false) {
  const int64_t off = o.batch_off[b] + r0 * o.rs;
  if (o.a->dtype == buf.dtype && (!unit_cols || o.cs == 1 || cols <= 1)) {
    return transpose ? view2d(*o.a, off, cols, rows, o.cs, o.rs)
                     : view2d(*o.a, off, rows, cols, o.rs, o.cs);
  }
  C* dst = buf.data_as<C>();
  if constexpr (std::is_same_v<C, float>) {
    if (o.a->dtype == DType::Float16 && o.cs == 1) {  // a float16 KV cache: vector converts
      const uint16_t* src = static_cast<const uint16_t*>(o.a->data()) + off;
      for (int64_t r = 0; r < rows; ++r)
        vmath::half_to_float(src + r * o.rs, dst + r * cols, size_t(cols));
      return transpose ? view2d(buf, 0, cols, rows, 1, cols) : view2d(buf, 0, rows, cols, cols, 1);
    }
  }
  dispatch_dtype(o.a->dtype, [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) {
      const T* src = static_cast<const T*>(o.a->data()) + off;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) dst[r * cols + c] = C(load_as(src[r * o.rs + c * o.cs]));
    }
  });
  return transpose ? view2d(buf, 0, cols, rows, 1, cols) : view2d(buf, 0, rows, cols, cols, 1);
}

// The additive mask row (b, i, keys [j0, j0 + n)) in C: a bool mask gives 0 / -inf. Points into
// the mask when it is already a dense row of C, else converts into buf.
template <typename C>
const C* mask_row(const Operand& o, int64_t b, int64_t i, int64_t j0, int64_t n, C* buf) {
  const int64_t off = o.batch_off[b] + i * o.rs + j0 * o.cs;
  return dispatch_dtype(o.a->dtype, [&]<typename T>() -> const C* {
    const T* src = static_cast<const T*>(o.a->data()) + off;
    if constexpr (std::is_same_v<T, C>) {
      if (o.cs == 1) return src;
    }
    for (int64_t j = 0; j < n; ++j) {
      if constexpr (std::is_same_v<T, bool>) {
        buf[j] = src[j * o.cs] ? C(0) : -std::numeric_limits<C>::infinity();
      } else if constexpr (std::is_floating_point_v<compute_t<T>>) {
        buf[j] = C(load_as(src[j * o.cs]));
      } else {
        NEF_CHECK(false, "attention mask dtype");
      }
    }
    return buf;
  });
}

// s[j] = q . K_j for j < nk, K rows ldk apart (each contiguous): the few-query-rows path, where
// packing K for the GEMM would cost as much as the products. Sixteen independent partial sums
// per key vectorize without reassociation flags.
template <typename C>
NEF_SIMD_CLONES void dot_keys(const C* q, const C* K, int64_t ldk, int64_t D, int64_t nk, C* s) {
  constexpr int L = 16;
  for (int64_t j = 0; j < nk; ++j) {
    const C* kr = K + j * ldk;
    C lanes[L] = {};
    int64_t e = 0;
    for (; e + L <= D; e += L)
      for (int l = 0; l < L; ++l) lanes[l] += q[e + l] * kr[e + l];
    C t = 0;
    for (; e < D; ++e) t += q[e] * kr[e];
    for (int w = L / 2; w >= 1; w /= 2)
      for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w];
    s[j] = t + lanes[0];
  }
}

// acc[d] = sum_j p[j] * V_j[d] over j < nk (V rows ldv apart, each contiguous), skipping keys
// with p = 0 (masked, hidden by causality, or underflowed).
template <typename C>
NEF_SIMD_CLONES void weighted_sum(const C* p, const C* V, int64_t ldv, int64_t Dv, int64_t nk,
                                  C* acc) {
  std::fill(acc, acc + Dv, C(0));
  for (int64_t j = 0; j < nk; ++j) {
    const C pj = p[j];
    if (pj == C(0)) continue;
    const C* vr = V + j * ldv;
    for (int64_t d = 0; d < Dv; ++d) acc[d] += pj * vr[d];
  }
}

// The direct path over a float16 operand (a KV cache) read in place, converted as it is loaded
// (no float32 copy of the block per query head): float32 compute, unit column stride, rows
// forward. False (nothing done) where it does not apply.
bool half_rows(const Operand& o) { return o.a->dtype == DType::Float16 && o.cs == 1 && o.rs >= 0; }
const uint16_t* half_block(const Operand& o, int64_t b, int64_t r0) {
  return static_cast<const uint16_t*>(o.a->data()) + o.batch_off[size_t(b)] + r0 * o.rs;
}
// s[rr * nk + j] = q row rr . key row r0 + j.
template <typename C>
bool half_scores(const Operand& k, int64_t b, int64_t r0, int64_t nk, int64_t D, const Array& qv,
                 int64_t nq, C* s) {
  if constexpr (!std::is_same_v<C, float>) {
    return false;
  } else {
    if (!half_rows(k)) return false;
    const uint16_t* kr = half_block(k, b, r0);
    for (int64_t rr = 0; rr < nq; ++rr)
      vmath::dot_rows_half(kr, size_t(k.rs), size_t(nk), size_t(D),
                           qv.data_as<float>() + rr * qv.strides[0], s + rr * nk);
    return true;
  }
}
// pv row rr = sum_j s[rr * nk + j] * value row r0 + j.
template <typename C>
bool half_weighted(const Operand& v, int64_t b, int64_t r0, int64_t nk, int64_t Dv, const C* s,
                   int64_t nq, const Array& pv) {
  if constexpr (!std::is_same_v<C, float>) {
    return false;
  } else {
    if (!half_rows(v)) return false;
    const uint16_t* vr = half_block(v, b, r0);
    for (int64_t rr = 0; rr < nq; ++rr)
      vmath::weighted_rows_half(s + rr * nk, vr, size_t(v.rs), size_t(nk), size_t(Dv),
                                pv.data_as<float>() + rr * pv.strides[0]);
    return true;
  }
}

const GemmTileHook kNoHook = [](int64_t, int64_t, int64_t, int64_t) {};

// The blocking of one attention node and the per-thread scratch it needs: computed from the shapes
// (and the thread count) alike at compile time, to size the workspace, and at run time.
struct Blocks {
  int64_t kb = 1, qb = 1, nqb = 1, nbatch = 1, grain = 1, slots = 1;
  bool one_key_block = true, direct_out = false;
  // Per thread slot, in elements of the compute type (rows: RowState entries).
  int64_t s = 0, q = 0, k = 0, v = 0, tmp = 0, acc = 0, mask = 0, rows = 0;
  int64_t gemm = 0;  // bytes: the GEMMs' packing panels (one at a time, on the slot's thread)
};

// Per-row softmax state across key blocks.
struct RowState {
  double m;  // running max (in C's range); -inf until a key is attended
  double l;  // running sum of exp(score - m)
  bool nan;  // a NaN or +inf score: the row's output is NaN
};

// `segmented`: keys come from two operands (cached_attention), so there is never one key block.
Blocks blocks(const Shape& q, const Shape& k, const Shape& v, const Shape& out, bool same_type,
              bool has_mask, DType compute, bool segmented = false) {
  Blocks b;
  const int r = int(out.size());
  b.nbatch = numel(Shape(out.begin(), out.end() - 2));
  const int64_t Lq = q[q.size() - 2], D = q[q.size() - 1];
  const int64_t Lk = k[k.size() - 2], Dv = v[v.size() - 1];
  (void)r;
  b.kb = std::max<int64_t>(
      1, std::min({Lk, kMaxKeyBlock,
                   std::max<int64_t>(64, kKeyBlockElems / std::max<int64_t>(1, std::max(D, Dv)))}));
  int64_t qb = std::clamp<int64_t>(kScoreElems / b.kb, kMinRows, kMaxRows);
  // Few (batch, head) pairs: split the query rows too, aiming at two items per thread.
  const int64_t want = 2 * int64_t(num_threads());
  if (b.nbatch < want) {
    const int64_t per_batch = (want + b.nbatch - 1) / b.nbatch;
    qb = std::min(qb, std::max<int64_t>(kMinRows, (Lq + per_batch - 1) / per_batch));
  }
  b.qb = std::max<int64_t>(1, std::min(qb, Lq));
  b.nqb = (Lq + b.qb - 1) / b.qb;
  b.one_key_block = Lk <= b.kb && !segmented;
  b.direct_out = same_type && b.one_key_block;
  const double item_flops = 2.0 * double(b.qb) * double(std::max<int64_t>(Lk, 1)) * double(D + Dv);
  b.grain = std::max<int64_t>(1, int64_t(1e6 / std::max(item_flops, 1.0)));
  b.slots = parallel_slots(b.nbatch * b.nqb, b.grain);
  // Converted copies of q, k, v blocks are reserved whatever the layout (the strides are only
  // known at run time; a unit-stride operand of the compute type leaves them unused).
  b.s = b.qb * b.kb;
  b.q = b.qb * D;
  b.k = b.kb * D;
  b.v = b.kb * Dv;
  b.tmp = b.direct_out ? 0 : b.qb * Dv;
  b.acc = b.one_key_block ? 0 : b.qb * Dv;
  b.mask = has_mask ? b.kb : 0;
  b.rows = b.qb;
  // The direct path (few query rows) multiplies without the GEMM; the others use it one product
  // at a time: Q K^T (qb x D by D x kb), then P V (qb x kb by kb x Dv).
  b.gemm = std::max(matmul_scratch_bytes({b.qb, D}, {D, b.kb}, compute, false),
                    matmul_scratch_bytes({b.qb, b.kb}, {b.kb, Dv}, compute, false));
  return b;
}

int64_t slot_bytes(const Blocks& b, DType c) {
  return b.gemm + workspace_piece(b.s, c) + workspace_piece(b.q, c) + workspace_piece(b.k, c) +
         workspace_piece(b.v, c) + workspace_piece(b.tmp, c) + workspace_piece(b.acc, c) +
         workspace_piece(b.mask, c) + workspace_piece(b.qb, c) +
         workspace_piece(b.rows * int64_t(sizeof(RowState)), DType::UInt8);
}

// Keys [begin, end) of a row come from rows [0, end - begin) of these operands.
struct KeySegment {
  Operand k, v;
  int64_t begin = 0, end = 0;
};

// Shapes of the keys as blocks() sees them: cached_attention's at a full cache (C + T rows), so
// the blocking, hence the workspace, does not depend on the run-time start.
struct KeyShapes {
  Shape k, v;
};
KeyShapes key_shapes(const std::vector<Shape>& in, bool cached) {
  if (!cached) return {in[1], in[2]};
  const int64_t T = in[0][in[0].size() - 2];
  KeyShapes s{in[1], in[2]};
  s.k[s.k.size() - 2] += T;
  s.v[s.v.size() - 2] += T;
  return s;
}

// attention (inputs q, k, v[, mask]) or cached_attention (q, k_cache, v_cache, k_new, v_new,
// start): the keys of the latter are cache rows [0, start) then the new rows, causal.
template <typename O>
void attention_typed(const KernelArgs& args, bool cached) {
  using C = std::conditional_t<std::is_same_v<O, double>, double, float>;
  constexpr DType kC = std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
  const C ninf = -std::numeric_limits<C>::infinity();
  const Array& q = args.inputs[0];
  const Array& k = args.inputs[1];
  const Array& v = args.inputs[2];
  const bool has_mask = !cached && args.inputs.size() > 3;
  const bool nan_empty = !cached && args.attrs.get_string("empty_rows") == "nan";
  Array& out = args.out;
  const int r = out.rank();
  const Shape batch(out.shape.begin(), out.shape.end() - 2);
  const int64_t Lq = q.shape[q.rank() - 2], D = q.shape[q.rank() - 1];
  const int64_t Dv = v.shape[v.rank() - 1];
  NEF_CHECK(out.shape[r - 2] == Lq && out.shape[r - 1] == Dv, "attention output shape");
  const Operand oq = make_operand(q, batch, {Lq, D});
  int64_t Lk = k.shape[k.rank() - 2];
  std::vector<KeySegment> segs;
  if (!cached) {
    segs.push_back({make_operand(k, batch, {Lk, D}), make_operand(v, batch, {Lk, Dv}), 0, Lk});
  } else {
    const Array& st = args.inputs[5];
    const int64_t start = st.dtype == DType::Int32 ? *static_cast<const int32_t*>(st.data())
                                                   : *static_cast<const int64_t*>(st.data());
    if (start < 0 || start > Lk)
      throw ValidationError(str("[cached_attention] start ", start, " is outside the cache of ", Lk,
                                " rows (k_cache ", shape_str(k.shape), ")"));
    segs.push_back({make_operand(k, batch, {Lk, D}), make_operand(v, batch, {Lk, Dv}), 0, start});
    segs.push_back({make_operand(args.inputs[3], batch, {Lq, D}),
                    make_operand(args.inputs[4], batch, {Lq, Dv}), start, start + Lq});
    Lk = start + Lq;
  }
  Operand om;
  if (has_mask) om = make_operand(args.inputs[3], batch, {Lq, Lk});
  const bool causal = cached || args.attrs.get_bool("causal");
  double scale_d = 1.0;
  if (args.attrs.has("scale")) scale_d = args.attrs.get_float("scale");
  else if (D > 0) scale_d = 1.0 / std::sqrt(double(D));
  const C scale = C(scale_d);
  O* o = out.data_as<O>();
  // Causal, bottom-right aligned: query i sees keys j < kend(i) = i + Lk - Lq + 1.
  auto kend = [&](int64_t i) { return causal ? std::clamp<int64_t>(i + Lk - Lq + 1, 0, Lk) : Lk; };

  std::vector<Shape> in_shapes;
  for (const Array& a : args.inputs) in_shapes.push_back(a.shape);
  const KeyShapes ks = key_shapes(in_shapes, cached);
  const Blocks bl =
      blocks(q.shape, ks.k, ks.v, out.shape, std::is_same_v<O, C>, has_mask, kC, cached);
  const int64_t kb = bl.kb, qb = bl.qb, nqb = bl.nqb, nbatch = bl.nbatch;
  const bool one_key_block = bl.one_key_block, direct_out = bl.direct_out;
  const int64_t per_slot = slot_bytes(bl, kC);
  NEF_CHECK(args.workspace.numel() >= bl.slots * per_slot, "[attention] workspace of ",
            args.workspace.numel(), " bytes, ", bl.slots * per_slot, " needed");

  parallel_for_slots(nbatch * nqb, bl.grain, [&](int64_t slot, int64_t w0, int64_t w1) {
    // The running thread's scratch: its slot of the workspace, carved as blocks() counted it.
    Array mine = args.workspace;
    mine.offset += slot * per_slot;
    WorkspaceCarver ws(mine);
    const Array gemm_scratch = ws.take({bl.gemm}, DType::UInt8);
    Array S = ws.take({bl.s}, kC);
    // Converted copies of operand blocks, used where an operand is not C (or not unit-stride
    // for the direct path).
    Array qbuf = ws.take({bl.q}, kC), kbuf = ws.take({bl.k}, kC), vbuf = ws.take({bl.v}, kC);
    Array tmp = ws.take({bl.tmp}, kC);
    C* acc = ws.take({bl.acc}, kC).data_as<C>();
    C* mbuf = ws.take({bl.mask}, kC).data_as<C>();
    C* alpha = ws.take({bl.qb}, kC).data_as<C>();
    RowState* rows = reinterpret_cast<RowState*>(
        ws.take({bl.rows * int64_t(sizeof(RowState))}, DType::UInt8).data());
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / nqb, i0 = (w % nqb) * qb, nq = std::min(qb, Lq - i0);
      for (int64_t rr = 0; rr < nq; ++rr) rows[rr] = {-INFINITY, 0.0, false};
      const bool direct = nq <= kDirectRows;
      const Array qv = operand_block<C>(oq, b, i0, nq, D, false, qbuf, direct);
      const int64_t klim = kend(i0 + nq - 1);  // no row of the block sees keys past this
      Array pv;                                // P V of the current key block: [nq, Dv], dense
      size_t si = 0;                           // the segment of key j0
      for (int64_t j0 = 0, nk = 0; j0 < klim; j0 += nk) {
        while (j0 >= segs[si].end) ++si;
        const KeySegment& seg = segs[si];
        nk = std::min({kb, klim - j0, seg.end - j0});
        const bool first = j0 == 0;
        Array sv = view2d(S, 0, nq, nk, nk, 1);
        C* s = S.data_as<C>();
        if (direct && half_scores(seg.k, b, j0 - seg.begin, nk, D, qv, nq, s)) {
          // done: the scores straight from the float16 keys
        } else if (direct) {
          const Array kv = operand_block<C>(seg.k, b, j0 - seg.begin, nk, D, false, kbuf, true);
          for (int64_t rr = 0; rr < nq; ++rr)
            dot_keys<C>(qv.data_as<C>() + rr * qv.strides[0], kv.data_as<C>(), kv.strides[0], D, nk,
                        s + rr * nk);
        } else {
          matmul_float_with_hook(qv, operand_block<C>(seg.k, b, j0 - seg.begin, nk, D, true, kbuf),
                                 sv, kNoHook, gemm_scratch, false);
        }
        const char* mrow_src = nullptr;  // where the last mask row came from (broadcast rows
        const C* mrow = nullptr;         // share one, e.g. a [batch, 1, 1, Lk] padding mask)
        for (int64_t rr = 0; rr < nq; ++rr) {
          C* row = s + rr * nk;
          RowState& st = rows[rr];
          const int64_t n = std::clamp<int64_t>(kend(i0 + rr) - j0, 0, nk);
          if (has_mask && n > 0) {
            const char* src = static_cast<const char*>(om.a->data()) +
                              (om.batch_off[b] + (i0 + rr) * om.rs + j0 * om.cs) *
                                  int64_t(dtype_size(om.a->dtype));
            if (src != mrow_src) mrow = mask_row<C>(om, b, i0 + rr, j0, nk, mbuf);
            mrow_src = src;
          }
          // The whole row, with the keys past n set to -inf: full vectors for causal rows too.
          const C bm = n > 0 ? vmath::scale_add_max(row, size_t(nk), size_t(n), scale,
                                                    has_mask ? mrow : nullptr)
                             : ninf;
          if (!(bm < std::numeric_limits<C>::infinity())) st.nan = true;  // NaN or +inf
          if (st.nan || bm == ninf) {  // nothing attended in this block (or a NaN row)
            std::fill(row, row + nk, C(0));
            alpha[rr] = C(1);
            continue;
          }
          const C m = std::max(C(st.m), bm);
          const C sum = vmath::exp_shift_sum(row, size_t(nk), m);  // exp(-inf) = 0 past n
          const C a = st.m == -INFINITY ? C(0) : C(std::exp(C(st.m) - m));
          st.l = double(C(st.l) * a + sum);
          st.m = double(m);
          alpha[rr] = a;
        }
        // P V: straight into the output rows, into tmp, then into acc with the rescaling.
        if (direct_out) pv = view2d(out, (b * Lq + i0) * Dv, nq, Dv, Dv, 1);
        else pv = view2d(tmp, 0, nq, Dv, Dv, 1);
        if (direct && half_weighted(seg.v, b, j0 - seg.begin, nk, Dv, s, nq, pv)) {
          // done: P V straight from the float16 values
        } else if (direct) {
          const Array vv = operand_block<C>(seg.v, b, j0 - seg.begin, nk, Dv, false, vbuf, true);
          for (int64_t rr = 0; rr < nq; ++rr)
            weighted_sum<C>(s + rr * nk, vv.data_as<C>(), vv.strides[0], Dv, nk,
                            pv.data_as<C>() + rr * Dv);
        } else {
          matmul_float_with_hook(sv,
                                 operand_block<C>(seg.v, b, j0 - seg.begin, nk, Dv, false, vbuf),
                                 pv, kNoHook, gemm_scratch, false);
        }
        if (!one_key_block) {
          const C* t = pv.data_as<C>();
          for (int64_t rr = 0; rr < nq; ++rr) {
            C* ar = acc + rr * Dv;
            const C* tr = t + rr * Dv;
            const C a = alpha[rr];
            if (first || a == C(0)) {  // nothing attended before: drop what acc holds
              std::copy(tr, tr + Dv, ar);
            } else {
              for (int64_t d = 0; d < Dv; ++d) ar[d] = ar[d] * a + tr[d];
            }
          }
        }
      }
      // Normalize: out = acc / l; zeros where no key was attended, NaN for NaN rows.
      const C* res = one_key_block ? (klim > 0 ? pv.data_as<C>() : nullptr) : acc;
      for (int64_t rr = 0; rr < nq; ++rr) {
        const RowState& st = rows[rr];
        O* dst = o + (b * Lq + i0 + rr) * Dv;
        if (st.nan || !(st.l > 0) || !res) {
          // Lk == 0 stays zeros either way (an empty sum, as matmul over no keys gives).
          const bool nan_row = st.nan || (nan_empty && Lk > 0);
          const C fill = nan_row ? std::numeric_limits<C>::quiet_NaN() : C(0);
          std::fill(dst, dst + Dv, store_as<O>(fill));
          continue;
        }
        const C inv = C(1) / C(st.l);
        const C* src = res + rr * Dv;
        for (int64_t d = 0; d < Dv; ++d) dst[d] = store_as<O>(C(src[d] * inv));
      }
    }
  });
}

template <bool kCached>
void attention_kernel(const KernelArgs& args) {
  if (args.out.numel() == 0) return;
  dispatch_dtype(args.out.dtype, [&]<typename O>() {
    if constexpr (std::is_floating_point_v<compute_t<O>>) attention_typed<O>(args, kCached);
    else NEF_CHECK(false, "attention output must be floating");
  });
}

// Prepared per node: the blocking, hence the workspace (one slot per thread), follows
// from the shapes and the thread count.
template <bool kCached>
class AttentionKernel final : public CpuKernel {
 public:
  AttentionKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : name_(str(kCached ? "cpu.cached_attention." : "cpu.attention.",
                  dtype_name(node.type.dtype))) {
    if (in.size() < 3 || numel(node.type.shape) == 0) return;
    const DType t = node.type.dtype;
    const DType c = t == DType::Float64 ? DType::Float64 : DType::Float32;
    std::vector<Shape> shapes;
    for (const auto& x : in) shapes.push_back(x.shape);
    const KeyShapes ks = key_shapes(shapes, kCached);
    Blocks b = blocks(in[0].shape, ks.k, ks.v, node.type.shape, t == c, !kCached && in.size() > 3,
                      c, kCached);
    workspace_ = b.slots * slot_bytes(b, c);
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }
  void run(const KernelArgs& args) const override { attention_kernel<kCached>(args); }

 private:
  std::string name_;
  int64_t workspace_ = 0;
};

}  // namespace

void register_attention_kernels(KernelTable& t) {
  t.add_prepared<AttentionKernel<false>>("attention");
  t.add_prepared<AttentionKernel<true>>("cached_attention");
}

}  // namespace nef::backend::cpu
