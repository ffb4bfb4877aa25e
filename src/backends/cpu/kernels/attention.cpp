// CPU scaled dot-product attention: out = softmax(scale * q k^T + mask) v per (batch..., head),
// leading dims broadcast, inputs strided. Work items are (batch, query) pairs split over threads;
// a chunk packs K and V of its current batch densely in the compute type, then streams keys in
// blocks with a running max and running sum (online softmax: stable, no Lq x Lk score matrix).
// A bool mask becomes an additive 0 / -inf row; causal masking is bottom-right aligned.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/parallel.h"
#include "common/simd.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

constexpr int64_t kKeyBlock = 64;

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

// Loads rows x cols of operand `o` at batch `b` (from row r0) densely into dst, as C.
template <typename C>
void load_block(const Operand& o, int64_t b, int64_t r0, int64_t rows, int64_t cols, C* dst) {
  dispatch_dtype(o.a->dtype, [&]<typename T>() {
    const T* base = static_cast<const T*>(o.a->data()) + o.batch_off[b] + r0 * o.rs;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        if constexpr (std::is_same_v<T, bool>) {
          // bool mask: true = attend (add 0), false = masked (add -inf)
          dst[r * cols + c] = base[r * o.rs + c * o.cs] ? C(0) : -std::numeric_limits<C>::infinity();
        } else {
          dst[r * cols + c] = C(load_as(base[r * o.rs + c * o.cs]));
        }
      }
  });
}

template <typename C>
inline C dot(const C* a, const C* b, int64_t n) {
  constexpr int L = 16;  // independent lanes: vectorizes without reassociation flags
  C lanes[L] = {};
  int64_t j = 0;
  for (; j + L <= n; j += L)
    for (int l = 0; l < L; ++l) lanes[l] += a[j + l] * b[j + l];
  C s = 0;
  for (; j < n; ++j) s += a[j] * b[j];
  for (int w = L / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) lanes[l] += lanes[l + w];
  return s + lanes[0];
}

// One query row against keys [0, kend): online softmax over key blocks. q is pre-scaled;
// mask_row (additive, may be null) has Lk entries. Writes the unnormalized acc and returns l.
template <typename C>
NEF_SIMD_CLONES C attend_row(const C* q, const C* K, const C* V, const C* mask_row, int64_t kend,
                             int64_t D, int64_t Dv, C* acc) {
  const C ninf = -std::numeric_limits<C>::infinity();
  C m = ninf, l = 0;
  C s[kKeyBlock];
  std::fill(acc, acc + Dv, C(0));
  for (int64_t j0 = 0; j0 < kend; j0 += kKeyBlock) {
    int64_t nb = std::min(kKeyBlock, kend - j0);
    C bm = ninf;
    for (int64_t j = 0; j < nb; ++j) {
      C v = dot(q, K + (j0 + j) * D, D);
      if (mask_row) v += mask_row[j0 + j];
      s[j] = v;
      bm = std::max(bm, v);
    }
    if (!(bm > ninf)) continue;  // every key of the block is masked
    if (bm > m) {
      C f = std::exp(m - bm);  // 0 on the first attended block
      l *= f;
      for (int64_t d = 0; d < Dv; ++d) acc[d] *= f;
      m = bm;
    }
    for (int64_t j = 0; j < nb; ++j) {
      C p = std::exp(s[j] - m);
      l += p;
      const C* vr = V + (j0 + j) * Dv;
      for (int64_t d = 0; d < Dv; ++d) acc[d] += p * vr[d];
    }
  }
  return l;
}

template <typename O>
void attention_typed(const KernelArgs& args) {
  using C = std::conditional_t<std::is_same_v<O, double>, double, float>;
  const Array& q = args.inputs[0];
  const Array& k = args.inputs[1];
  const Array& v = args.inputs[2];
  const bool has_mask = args.inputs.size() > 3;
  Array& out = args.out;
  const int r = out.rank();
  const Shape batch(out.shape.begin(), out.shape.end() - 2);
  const int64_t Lq = q.shape[q.rank() - 2], D = q.shape[q.rank() - 1];
  const int64_t Lk = k.shape[k.rank() - 2], Dv = v.shape[v.rank() - 1];
  NEF_CHECK(out.shape[r - 2] == Lq && out.shape[r - 1] == Dv, "attention output shape");
  const Operand oq = make_operand(q, batch, {Lq, D});
  const Operand ok = make_operand(k, batch, {Lk, D});
  const Operand ov = make_operand(v, batch, {Lk, Dv});
  Operand om;
  if (has_mask) om = make_operand(args.inputs[3], batch, {Lq, Lk});
  const bool causal = args.attrs.get_bool("causal");
  double scale_d = 1.0;
  if (args.attrs.has("scale")) scale_d = args.attrs.get_float("scale");
  else if (D > 0) scale_d = 1.0 / std::sqrt(double(D));
  const C scale = C(scale_d);
  const int64_t nbatch = numel(batch);
  O* o = out.data_as<O>();

  const int64_t items = nbatch * Lq;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, Lk * (D + Dv)));
  parallel_for(items, grain, [&](int64_t w0, int64_t w1) {
    std::vector<C> K(Lk * D), V(Lk * Dv), qrow(D), mrow(has_mask ? Lk : 0), acc(Dv);
    int64_t loaded = -1;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / Lq, i = w % Lq;
      if (b != loaded) {
        load_block(ok, b, 0, Lk, D, K.data());
        load_block(ov, b, 0, Lk, Dv, V.data());
        loaded = b;
      }
      load_block(oq, b, i, 1, D, qrow.data());
      for (int64_t d = 0; d < D; ++d) qrow[d] *= scale;
      if (has_mask) load_block(om, b, i, 1, Lk, mrow.data());
      // Causal, bottom-right aligned: query i sees keys j <= i + Lk - Lq.
      int64_t kend = causal ? std::clamp<int64_t>(i + Lk - Lq + 1, 0, Lk) : Lk;
      C l = attend_row<C>(qrow.data(), K.data(), V.data(), has_mask ? mrow.data() : nullptr,
                          kend, D, Dv, acc.data());
      O* dst = o + w * Dv;
      C inv = l > 0 ? C(1) / l : C(0);  // no attended key: zeros
      for (int64_t d = 0; d < Dv; ++d) dst[d] = store_as<O>(C(l > 0 ? acc[d] * inv : C(0)));
    }
  });
}

void attention_kernel(const KernelArgs& args) {
  if (args.out.numel() == 0) return;
  dispatch_dtype(args.out.dtype, [&]<typename O>() {
    if constexpr (std::is_floating_point_v<compute_t<O>>) attention_typed<O>(args);
    else NEF_CHECK(false, "attention output must be floating");
  });
}

}  // namespace

void register_attention_kernels(KernelTable& t) { t.add("attention", attention_kernel); }

}  // namespace nef::backend::cpu
