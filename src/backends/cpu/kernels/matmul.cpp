// CPU matmul with numpy semantics (1-D operands, broadcast batch dims) on strided inputs.
// float32/float64: cache-blocked GEMM (Goto-style: pack a KCxNC panel of B, an MCxKC block of A,
// and run a register-blocked MRxNR micro-kernel: for float32 intrinsics per instruction set
// (gemm_f32.h, AVX-512 / AVX2), else portable code GCC auto-vectorizes into clones picked at
// load time; with 2+ threads and few row blocks, column groups (gemm_groups)). float16/bfloat16
// are packed into float32 panels. Integers use a plain loop with 64-bit accumulation (wrapping
// on store like numpy). A plan's constant 2-D B can be packed once (prepack_matmul_b, gemm.h)
// and read by every run instead of packed per run.
#include <hwy/aligned_allocator.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/cpu_target.h"
#include "backends/cpu/kernels/gemm.h"
#include "backends/cpu/kernels/gemm_f32.h"
#include "backends/cpu/parallel.h"
#include "backends/cpu/workspace.h"
#include "common/dispatch.h"
#include "common/session.h"
#include "common/simd.h"
#include "nef/array.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

// Cache blocking: an A block (MC x KC) stays in L2, a B sliver (KC x NR) in L1, the packed B
// panel (KC x NC) in L2/L3.
// KC 512 rather than 256: half the passes over C and fewer, longer K loops; the B sliver (64 KiB
// at NR 32) streams from L2 at no measured cost (2048^3 at 1 thread 5% faster, 1024^3 2%).
constexpr int64_t kKC = 512;
constexpr int64_t kMC = 196;  // multiple of the AVX-512 MR (14)
constexpr int64_t kNC = 3072;

// A strided matrix view: element (i, j) at base[i * rs + j * cs].
template <typename S>
struct MatView {
  const S* base;
  int64_t rs, cs;
};

// Packs rows [0, mc) x cols [0, kc) of A into MR-row slivers, k-major inside a sliver, padding
// the last sliver with zeros so that the micro-kernel never branches.
template <int MR, typename T, typename S>
void pack_a(MatView<S> a, int64_t mc, int64_t kc, T* ap) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    int64_t mr = std::min<int64_t>(MR, mc - i0);
    for (int64_t k = 0; k < kc; ++k) {
      const S* col = a.base + i0 * a.rs + k * a.cs;
      for (int64_t i = 0; i < mr; ++i) ap[k * MR + i] = T(load_as(col[i * a.rs]));
      for (int64_t i = mr; i < MR; ++i) ap[k * MR + i] = T(0);
    }
    ap += MR * kc;
  }
}

// Packs B slivers [s0, s1) (each NR columns) of a kc x nc panel, k-major inside a sliver.
template <int NR, typename T, typename S>
void pack_b(MatView<S> b, int64_t nc, int64_t kc, int64_t s0, int64_t s1, T* bp) {
  if (b.cs == 1) {
    // Rows of B lie far apart (a page or more for wide B): a sliver at a time would fetch one
    // or two lines per row and wait on each. Up to kRun slivers are copied row by row instead,
    // each row one contiguous run, the row kAhead further down fetched meanwhile (1024 x 4096:
    // 15% of a 256-row product's time in packing -> 10%, at the copy bandwidth).
    constexpr int64_t kRun = 8, kAhead = 6;
    constexpr int64_t kLine = 64 / int64_t(sizeof(S));
    const int64_t full = nc / NR;  // slivers with all NR columns
    for (int64_t r0 = s0; r0 < s1; r0 += kRun) {
      const int64_t r1 = std::min(s1, r0 + kRun);
      const int64_t cols = std::min(nc, r1 * NR) - r0 * NR;
      for (int64_t k = 0; k < kc; ++k) {
        const S* row = b.base + k * b.rs + r0 * NR;
        if (k + kAhead < kc)
          for (int64_t j = 0; j < cols; j += kLine) __builtin_prefetch(row + kAhead * b.rs + j);
        for (int64_t s = r0; s < r1; ++s) {
          T* dst = bp + s * NR * kc + k * NR;
          const S* src = row + (s - r0) * NR;
          if (s < full) {
            for (int64_t j = 0; j < NR; ++j) dst[j] = T(load_as(src[j]));
          } else {
            const int64_t nr = nc - s * NR;
            for (int64_t j = 0; j < nr; ++j) dst[j] = T(load_as(src[j]));
            for (int64_t j = nr; j < NR; ++j) dst[j] = T(0);
          }
        }
      }
    }
    return;
  }
  for (int64_t s = s0; s < s1; ++s) {
    int64_t j0 = s * NR;
    int64_t nr = std::min<int64_t>(NR, nc - j0);
    T* dst = bp + s * NR * kc;
    for (int64_t k = 0; k < kc; ++k) {
      const S* row = b.base + k * b.rs + j0 * b.cs;
      if (nr == NR && b.cs == 1) {
        for (int64_t j = 0; j < NR; ++j) dst[k * NR + j] = T(load_as(row[j]));
      } else {
        for (int64_t j = 0; j < nr; ++j) dst[k * NR + j] = T(load_as(row[j * b.cs]));
        for (int64_t j = nr; j < NR; ++j) dst[k * NR + j] = T(0);
      }
    }
  }
}

// MR x NR register tile: acc stays in vector registers when MR * NR / lanes fits the register
// file; the j loop is the vectorized dimension, i is unrolled.
template <typename T, int MR, int NR>
[[gnu::always_inline]] inline void micro_kernel(int64_t kc, const T* __restrict ap,
                                                const T* __restrict bp, T* __restrict c,
                                                int64_t ldc, bool accumulate, int64_t mr,
                                                int64_t nr) {
  T acc[MR][NR];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = T(0);
  for (int64_t k = 0; k < kc; ++k) {
    const T* a = ap + k * MR;
    const T* b = bp + k * NR;
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      T ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
  }
  if (mr == MR && nr == NR) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
      if (accumulate) {
        for (int j = 0; j < NR; ++j) ci[j] += acc[i][j];
      } else {
        for (int j = 0; j < NR; ++j) ci[j] = acc[i][j];
      }
    }
  } else {
    // Edge tile: spill through a buffer with constant indices so acc itself stays in registers.
    alignas(64) T tile[MR * NR];
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) tile[i * NR + j] = acc[i][j];
    for (int64_t i = 0; i < mr; ++i)
      for (int64_t j = 0; j < nr; ++j)
        c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * NR + j] : tile[i * NR + j];
  }
}

// All MR x NR tiles of one packed A block against B slivers [s0, s1). The hot function: compiled
// once per ISA (AVX-512, AVX2, baseline) and chosen at load time.
template <typename T, int MR, int NR>
NEF_SIMD_CLONES void macro_kernel(int64_t mc, int64_t nc, int64_t kc, int64_t s0, int64_t s1,
                                  const T* ap, const T* bp, T* c, int64_t ldc, bool accumulate) {
  for (int64_t s = s0; s < s1; ++s) {
    int64_t j0 = s * NR;
    int64_t nr = std::min<int64_t>(NR, nc - j0);
    const T* b = bp + s * NR * kc;
    for (int64_t i0 = 0; i0 < mc; i0 += MR) {
      int64_t mr = std::min<int64_t>(MR, mc - i0);
      micro_kernel<T, MR, NR>(kc, ap + i0 * kc, b, c + i0 * ldc + j0, ldc, accumulate, mr, nr);
    }
  }
}

// A macro-kernel as gemm<T, MR, NR> calls it: the portable one above, or for float32 an
// instruction set's (gemm_f32.h), same packed layouts and contract.
template <typename T>
using MacroFn = void (*)(int64_t mc, int64_t nc, int64_t kc, int64_t s0, int64_t s1, const T* ap,
                         const T* bp, T* c, int64_t ldc, bool accumulate);

// Runs fn(slot, item) once for every item in [0, n) on up to `threads` threads. Each thread
// has a home range of consecutive items (about n / threads) that it walks from the front, so
// consecutive items (the same packed A block) stay on one thread; a thread done with its own
// range takes items from the back of the others' while they have at least two left, so a
// thread that starts late or is descheduled is covered by the others, one item at a time,
// instead of the whole region waiting for its share. Which thread runs an item must not change
// what the item computes (results stay deterministic).
// `pre()` (run_with_stealing_after) runs at the start of every thread's share, before its
// first item: work all items depend on, which the threads share out among themselves and wait
// for (one parallel region instead of two).
template <typename Pre, typename Fn>
void run_with_stealing_after(int64_t n, int threads, Pre&& pre, Fn&& fn) {
  const int parts = int(std::max<int64_t>(1, std::min<int64_t>(threads, n)));
  if (n >= (int64_t(1) << 31)) {  // beyond the 32-bit ends: plain chunks
    pre();
    parallel_for_slots(n, 1, [&](int64_t slot, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) fn(slot, i);
    });
    return;
  }
  if (parts <= 1) {
    pre();
    for (int64_t i = 0; i < n; ++i) fn(int64_t{0}, i);
    return;
  }
  // [lo, hi) of each home range in one 64-bit word (lo low, hi high), so both ends move by CAS.
  struct alignas(64) Range {
    std::atomic<uint64_t> v;
  };
  std::unique_ptr<Range[]> ranges(new Range[size_t(parts)]);
  for (int p = 0; p < parts; ++p) {
    const uint64_t lo = uint64_t(n * p / parts), hi = uint64_t(n * (p + 1) / parts);
    ranges[size_t(p)].v.store(lo | (hi << 32), std::memory_order_relaxed);
  }
  // Claims the front (own range) or the back (another's, only while 2+ items are left).
  auto take = [&](int p, bool front) -> int64_t {
    std::atomic<uint64_t>& r = ranges[size_t(p)].v;
    uint64_t v = r.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t lo = v & 0xFFFFFFFFu, hi = v >> 32;
      if (lo + (front ? 0 : 1) >= hi) return -1;
      const uint64_t next = front ? (lo + 1) | (hi << 32) : lo | ((hi - 1) << 32);
      if (r.compare_exchange_weak(v, next, std::memory_order_acq_rel, std::memory_order_relaxed))
        return int64_t(front ? lo : hi - 1);
    }
  };
  run_chunks(parts, parts, [&](int64_t c, int slot) {
    pre();
    const int home = int(c);
    for (int64_t i; (i = take(home, true)) >= 0;) fn(int64_t(slot), i);
    for (int d = 1; d < parts; ++d)
      for (int64_t i; (i = take((home + d) % parts, false)) >= 0;) fn(int64_t(slot), i);
  });
}

template <typename Fn>
void run_with_stealing(int64_t n, int threads, Fn&& fn) {
  run_with_stealing_after(
      n, threads, [] {}, std::forward<Fn>(fn));
}

// How gemm<T, MR, NR> splits the M rows among threads: mblocks blocks of at most mc rows (whole
// MR-row tiles, at most kMC; the column groups use mc rows each, gemm's row blocks deal the
// tiles out evenly: 256 rows are 126 + 130), and whether the A blocks are packed once per K
// block and shared by all threads (few blocks: packing A per item would repeat it) or packed
// per thread slot (many blocks: a thread's consecutive items share one block).
struct MBlocking {
  int64_t mc = 0, mblocks = 0, a_blocks = 1, want = 1;
  bool shared_a = false;
};
template <int MR>
MBlocking m_blocking(int64_t M, int64_t N, int64_t K, int threads) {
  // Whole micro-tiles per A block, never more than the kMC rows the scratch holds per block
  // (196 rows of 6-row AVX2 tiles once packed 198 and overran their slot).
  static_assert(kMC >= MR);
  constexpr int64_t MC = kMC / MR * MR;
  MBlocking b;
  const int64_t blocks = std::max<int64_t>(1, (M + MC - 1) / MC);
  b.mc = std::min<int64_t>(MC, ((M + blocks - 1) / blocks + MR - 1) / MR * MR);
  b.mblocks = std::max<int64_t>(1, (M + b.mc - 1) / b.mc);
  // Products under 0.2 GFLOP take one item per thread: their regions are short, and more items
  // cost more than the balance buys (MiniLM 1x128 at 2 threads: 20 ms against 22.7 ms).
  const bool small = 2.0 * double(M) * double(N) * double(K) < 2e8;
  b.want = threads > 1 ? threads * (small ? 1 : kChunksPerThread) : 1;
  b.shared_a = threads > 1 && b.mblocks < b.want;
  b.a_blocks = b.shared_a ? b.mblocks : threads;
  return b;
}

// Several threads and few M blocks (m_blocking's shared_a): rather than three parallel regions
// per K block (pack the B panel, pack the A blocks, multiply), one region packs all of A (the
// threads share the parts out and wait for each other's) and then hands out column groups. A
// group packs its own columns of B (all K rows: at most kGroupBBytes, so they stay in L2) and
// runs every A block against them, K blocks innermost, so each output tile is finished (and
// handed to the hook) while in cache, and no thread reads what another packed except the
// shared A. One region per product, no packing repeated. Used while the packed A stays under
// kGroupAElems.
inline constexpr int64_t kGroupBBytes = 1 << 20;
inline constexpr int64_t kGroupAElems = int64_t(4) << 20;
struct GroupPlan {
  bool use = false;
  int64_t mcp = 0, mblocks = 0;      // A blocks: mcp rows each (a multiple of MR)
  int64_t width = 1;                 // slivers per group (at most)
  int64_t a_elems = 0, b_elems = 0;  // packed A (all of it), one slot's packed B columns
};
template <int MR, int NR>
GroupPlan group_plan(int64_t M, int64_t N, int64_t K, int threads, int64_t elem_bytes) {
  GroupPlan g;
  if (threads <= 1 || M == 0 || N == 0 || K == 0) return g;
  const MBlocking mb = m_blocking<MR>(M, N, K, threads);
  g.mcp = mb.mc, g.mblocks = mb.mblocks;
  g.a_elems = g.mblocks * g.mcp * K;
  if (!mb.shared_a || g.a_elems > kGroupAElems) return g;
  const int64_t slivers = (std::min(N, kNC) + NR - 1) / NR;
  const int64_t fit = std::max<int64_t>(1, kGroupBBytes / (K * NR * elem_bytes));
  // About 8 groups per thread (run_with_stealing's items): a late or descheduled thread holds
  // up one small piece while the others take the rest (the groups share A, so more of them cost
  // little: 128 x 384 x 384 at 2 threads: 12 groups of one sliver).
  const int64_t want = int64_t(threads) * 8;
  g.width = std::min(fit, std::max<int64_t>(1, (slivers + want - 1) / want));
  g.b_elems = K * g.width * NR;
  g.use = true;
  return g;
}

// Elements of T one gemm<T, MR, NR> call needs as scratch: the packed B panel, then the packed
// A blocks (m_blocking's a_blocks, kMC x kc each), 64-byte aligned; or what the column groups
// need (group_plan), whichever is more.
template <typename T, int MR, int NR>
int64_t gemm_scratch(int64_t M, int64_t N, int64_t K, bool parallel) {
  if (M == 0 || N == 0 || K == 0) return 0;
  const int64_t nc_max = std::min<int64_t>(kNC, (N + NR - 1) / NR * NR);
  const int64_t kc_max = std::min<int64_t>(kKC, K);
  const int threads = parallel ? num_threads() : 1;
  const MBlocking mb = m_blocking<MR>(M, N, K, threads);
  const int64_t blocked = nc_max * kc_max + mb.a_blocks * kMC * kc_max;
  const GroupPlan g = group_plan<MR, NR>(M, N, K, threads, int64_t(sizeof(T)));
  const int64_t grouped = g.use ? g.a_elems + threads * g.b_elems + threads * 64 : 0;
  return std::max(blocked, grouped) + 2 * 64 / int64_t(sizeof(T));
}

// gemm<T, MR, NR> by column groups (group_plan), scratch as gemm_scratch sized it.
template <typename T, int MR, int NR, typename S>
void gemm_groups(const GroupPlan& g, int64_t M, int64_t N, int64_t K, MatView<S> a, MatView<S> b,
                 T* c, int64_t ldc, T* scratch, MacroFn<T> macro, const GemmTileHook* hook,
                 int64_t c_off, const T* packed) {
  auto align = [](T* p) {
    return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) / 64 * 64);
  };
  T* const apk = align(scratch);
  T* const bslots = align(apk + g.a_elems);
  const int64_t slot_elems = (g.b_elems + 63) / 64 * 64;
  // A block (ib, pc) at apk + ib * mcp * K + pc * mcp: mcp x kc, MR-row slivers.
  // Each A block is packed in `parts` runs of whole MR-row slivers, so that one or two blocks
  // (128-row products) still give every thread a share of the packing.
  const int64_t kblocks = (K + kKC - 1) / kKC;
  const int threads = num_threads();
  const int64_t block_slivers = g.mcp / MR;
  const int64_t parts = std::clamp<int64_t>(
      (int64_t(threads) * kChunksPerThread + g.mblocks * kblocks - 1) / (g.mblocks * kblocks), 1,
      block_slivers);
  auto pack_item = [&](int64_t w) {
    const int64_t blk = w / parts, part = w % parts;
    const int64_t ic = (blk / kblocks) * g.mcp, pc = (blk % kblocks) * kKC;
    const int64_t mc = std::min(g.mcp, M - ic), kc = std::min(kKC, K - pc);
    // Slivers [t0, t1) of this block, rows [t0 * MR, min(t1 * MR, mc)).
    const int64_t t0 = block_slivers * part / parts, t1 = block_slivers * (part + 1) / parts;
    const int64_t r0 = t0 * MR, r1 = std::min(t1 * MR, mc);
    if (r1 <= r0) return;
    MatView<S> av{a.base + (ic + r0) * a.rs + pc * a.cs, a.rs, a.cs};
    pack_a<MR>(av, r1 - r0, kc, apk + ic * K + pc * g.mcp + r0 * kc);
  };
  // The packing runs in the groups' region: each thread claims parts until none are left, then
  // waits for the ones others are still packing (short; they are running them), then takes
  // groups. A thread that joins late finds the packing done.
  const int64_t pack_items = g.mblocks * kblocks * parts;
  std::atomic<int64_t> next_pack{0}, packed_items{0};
  auto share_packing = [&] {
    for (int64_t w; (w = next_pack.fetch_add(1, std::memory_order_relaxed)) < pack_items;) {
      pack_item(w);
      packed_items.fetch_add(1, std::memory_order_release);
    }
    while (packed_items.load(std::memory_order_acquire) < pack_items) std::this_thread::yield();
  };
  // The groups: whole slivers of one kNC column block each (a prepacked B is laid out by block).
  struct Group {
    int64_t jc, s0, s1;
  };
  std::vector<Group> groups;
  for (int64_t jc = 0; jc < N; jc += kNC) {
    const int64_t slivers = (std::min(kNC, N - jc) + NR - 1) / NR;
    const int64_t n = (slivers + g.width - 1) / g.width;
    for (int64_t i = 0; i < n; ++i) groups.push_back({jc, slivers * i / n, slivers * (i + 1) / n});
  }
  // Consecutive groups per thread, single groups taken from the others' ends at the finish.
  run_with_stealing_after(
      int64_t(groups.size()), threads, share_packing, [&](int64_t slot, int64_t gi) {
        T* const own = bslots + slot * slot_elems;
        const Group& gr = groups[size_t(gi)];
        const int64_t nc_block = std::min(kNC, N - gr.jc), ns = gr.s1 - gr.s0;
        const int64_t j0 = gr.jc + gr.s0 * NR;  // the group's first column
        const int64_t ncols = std::min(nc_block - gr.s0 * NR, ns * NR);
        // This group's B for every K block: at own + pc * ns * NR, or where the plan packed it.
        auto panel = [&](int64_t pc) -> const T* {
          if (packed) {
            const int64_t block_slivers = (nc_block + NR - 1) / NR;
            return packed + gr.jc * K + pc * block_slivers * NR +
                   gr.s0 * NR * std::min(kKC, K - pc);
          }
          return own + pc * ns * NR;
        };
        if (!packed)
          for (int64_t pc = 0; pc < K; pc += kKC) {
            MatView<S> bv{b.base + pc * b.rs + j0 * b.cs, b.rs, b.cs};
            pack_b<NR>(bv, ncols, std::min(kKC, K - pc), 0, ns, own + pc * ns * NR);
          }
        for (int64_t ib = 0; ib < g.mblocks; ++ib) {
          const int64_t ic = ib * g.mcp, mc = std::min(g.mcp, M - ic);
          T* const ct = c + ic * ldc + j0;
          for (int64_t pc = 0; pc < K; pc += kKC)
            macro(mc, ncols, std::min(kKC, K - pc), 0, ns, apk + ic * K + pc * g.mcp, panel(pc), ct,
                  ldc, pc > 0);
          if (hook) (*hook)(c_off + ic * ldc + j0, mc, ncols, ldc);
        }
      });
}

// C[M, N] (dense, row stride ldc) = A[M, K] @ B[K, N] for one matrix; threads split the M blocks
// and the N slivers into items (run_with_stealing) and share each packed B panel, or take column
// groups (gemm_groups). `hook` (may be null) sees each finished tile, with offsets relative to c
// plus `c_off` (gemm.h). `packed` (may be null): all of B already packed for this NR
// (pack_whole_b); the panel of column block jc and row block pc is read from there instead of
// packed into the scratch.
template <typename T, int MR, int NR, typename S>
void gemm(int64_t M, int64_t N, int64_t K, MatView<S> a, MatView<S> b, T* c, int64_t ldc,
          bool parallel, T* scratch, MacroFn<T> macro, const GemmTileHook* hook = nullptr,
          int64_t c_off = 0, const T* packed = nullptr) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(c + i * ldc, c + i * ldc + N, T(0));
    if (hook) (*hook)(c_off, M, N, ldc);
    return;
  }
  const GroupPlan groups =
      group_plan<MR, NR>(M, N, K, parallel ? num_threads() : 1, int64_t(sizeof(T)));
  if (groups.use)
    return gemm_groups<T, MR, NR>(groups, M, N, K, a, b, c, ldc, scratch, macro, hook, c_off,
                                  packed);
  const int64_t nc_max = std::min<int64_t>(kNC, (N + NR - 1) / NR * NR);
  const int64_t kc_max = std::min<int64_t>(kKC, K);
  // The panel and the A blocks, each 64-byte aligned, from the caller's scratch.
  auto align = [](T* p) {
    return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) / 64 * 64);
  };
  T* const bp = align(scratch);
  T* const ap_base = align(bp + nc_max * kc_max);
  const int threads = parallel ? num_threads() : 1;
  const MBlocking mb = m_blocking<MR>(M, N, K, threads);
  const int64_t mblocks = mb.mblocks;
  // Block ib's first row: whole tiles shared out as evenly as possible (256 rows of 14-row
  // tiles: 126 + 130, not 140 + 116), at most kMC rows each (mblocks >= M / kMC).
  const int64_t tiles = (M + MR - 1) / MR;
  auto row0 = [&](int64_t ib) { return std::min(M, tiles * ib / mblocks * MR); };
  for (int64_t jc = 0; jc < N; jc += kNC) {
    const int64_t nc = std::min<int64_t>(kNC, N - jc);
    const int64_t slivers = (nc + NR - 1) / NR;
    // Columns are split too so that every thread has about kItemsPerThread items: fine enough
    // for run_with_stealing to even out the threads, while a thread's consecutive items mostly
    // share one A block (packed once per thread).
    constexpr int64_t kItemsPerThread = 16;
    const int64_t want = mb.shared_a ? mb.want : threads * kItemsPerThread;
    const int64_t nsplit =
        threads > 1 ? std::clamp<int64_t>((want + mblocks - 1) / mblocks, 1, slivers) : 1;
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min<int64_t>(kKC, K - pc);
      // What every item reads, packed inside the items' region (one region per K block): the
      // B panel in runs of slivers unless prepacked, and the shared A blocks. Each thread claims
      // runs until none are left and waits for those another running thread still packs.
      const T* panel = packed ? packed + jc * K + pc * (slivers * NR) : bp;
      MatView<S> bv{b.base + pc * b.rs + jc * b.cs, b.rs, b.cs};
      auto a_block = [&](int64_t ib) {
        return MatView<S>{a.base + row0(ib) * a.rs + pc * a.cs, a.rs, a.cs};
      };
      // Runs as parallel_for cut them (about kChunksPerThread per thread, 16K elements or more;
      // one run at 1 thread: pack_b copies up to 8 slivers row by row).
      const int64_t b_run = threads > 1
                                ? std::max<int64_t>({1, 16384 / (kc * NR) + 1,
                                                     (slivers + threads * kChunksPerThread - 1) /
                                                         (threads * kChunksPerThread)})
                                : slivers;
      const int64_t b_runs = packed ? 0 : (slivers + b_run - 1) / b_run;
      const int64_t pack_tasks = b_runs + (mb.shared_a ? mblocks : 0);
      std::atomic<int64_t> next_task{0}, tasks_done{0};
      auto share_packing = [&] {
        for (int64_t t; (t = next_task.fetch_add(1, std::memory_order_relaxed)) < pack_tasks;) {
          if (t < b_runs) {
            pack_b<NR>(bv, nc, kc, t * b_run, std::min(slivers, (t + 1) * b_run), bp);
          } else {
            const int64_t ib = t - b_runs;
            pack_a<MR>(a_block(ib), row0(ib + 1) - row0(ib), kc, ap_base + ib * kMC * kc_max);
          }
          tasks_done.fetch_add(1, std::memory_order_release);
        }
        while (tasks_done.load(std::memory_order_acquire) < pack_tasks) std::this_thread::yield();
      };
      const bool accumulate = pc > 0;
      const int64_t items = mblocks * nsplit;
      // The A block each slot last packed into its own area (per-slot packing only).
      std::vector<int64_t> slot_block(size_t(std::max(1, threads)), -1);
      run_with_stealing_after(items, threads, share_packing, [&](int64_t slot, int64_t w) {
        T* const own = ap_base + slot * kMC * kc_max;
        const int64_t ib = w / nsplit, part = w % nsplit;
        const int64_t ic = row0(ib), mc = row0(ib + 1) - ic;
        const T* ap = own;
        if (mb.shared_a) {
          ap = ap_base + ib * kMC * kc_max;
        } else if (slot_block[size_t(slot)] != ib) {
          pack_a<MR>(a_block(ib), mc, kc, own);
          slot_block[size_t(slot)] = ib;
        }
        const int64_t s0 = slivers * part / nsplit, s1 = slivers * (part + 1) / nsplit;
        macro(mc, nc, kc, s0, s1, ap, panel, c + ic * ldc + jc, ldc, accumulate);
        // The last K block finished this tile: hand it over while it is still in cache.
        if (hook && pc + kc == K) {
          const int64_t j0 = s0 * NR, j1 = std::min(s1 * NR, nc);
          if (j1 > j0) (*hook)(c_off + ic * ldc + jc + j0, mc, j1 - j0, ldc);
        }
      });
    }
  }
}

bool has_avx512() {
#if defined(__GNUC__) && defined(__x86_64__)
  static const bool v = __builtin_cpu_supports("avx512f");
  return v;
#else
  return false;
#endif
}

bool has_avx2_fma() {
#if defined(__GNUC__) && defined(__x86_64__)
  static const bool v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return v;
#else
  return false;
#endif
}

// NEF_CPU_TARGET (cpu_target.h): avx2vnni, avx2 or generic ask for less than the CPU has (read
// per call); the float tiles have no VNNI variant, so avx2vnni means AVX2 here.
bool target_allows(CpuTarget t) { return cpu_target_ceiling() >= t; }

// The AVX-512 tile family (NR = 2 x 16 floats) when the CPU has it and NEF_CPU_TARGET does not
// ask for less (avx2, generic: the AVX2 family, NR = 2 x 8 floats). Read per call, so that a B
// prepacked under one setting is never read under another.
bool wide_tiles() { return has_avx512() && target_allows(CpuTarget::kAvx512); }

// The macro-kernel for gemm<T, MR, NR>: for float32 the intrinsics of the instruction set chosen
// (gemm_f32.h; AVX-512 for the wide family, AVX2 for the narrow one unless NEF_CPU_TARGET is
// generic), else the portable one.
template <typename T, int MR, int NR>
MacroFn<T> pick_macro() {
  if constexpr (std::is_same_v<T, float>) {
    if constexpr (NR == 32) {
      const GemmF32Isa* isa = gemm_f32_avx512();
      if (isa && has_avx512()) {
        if constexpr (MR == 14) return isa->mr14_nr32;
        if constexpr (MR == 8) return isa->mr8_nr32;
      }
    } else if constexpr (MR == 6 && NR == 16) {
      const GemmF32Isa* isa = gemm_f32_avx2();
      if (isa && has_avx2_fma() && target_allows(CpuTarget::kAvx2)) return isa->mr6_nr16;
    }
  }
  return &macro_kernel<T, MR, NR>;
}

// A plan's constant B packed once (Kernel::prepare), laid out as gemm<T, MR, NR> reads it: for
// each kNC-column block jc and kKC-row block pc, the panel pack_b writes, at element
// jc * K + pc * ncr (ncr: the block's columns rounded up to NR; kNC is a multiple of every NR).
// The source and the layout are recorded and checked on every use.
struct PackedB final : backend::Prepared {
  DType dtype = DType::Float32;
  int nr = 0;
  int64_t kc = kKC, nc = kNC;
  int64_t K = 0, N = 0;
  const void* src = nullptr;  // the constant's first element, and its strides
  int64_t rs = 0, cs = 0;
  hwy::AlignedFreeUniquePtr<uint8_t[]> bytes;
  bool replaces(size_t input) const override { return input == 1; }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(bytes.get());
  }
};

// Elements of all of B packed for NR.
template <int NR>
int64_t packed_elems(int64_t K, int64_t N) {
  int64_t n = 0;
  for (int64_t jc = 0; jc < N; jc += kNC) n += (std::min(kNC, N - jc) + NR - 1) / NR * NR * K;
  return n;
}

template <typename T, int NR>
void pack_whole_b(MatView<T> b, int64_t K, int64_t N, T* dst) {
  static_assert(kNC % NR == 0, "column blocks must hold whole slivers");
  for (int64_t jc = 0; jc < N; jc += kNC) {
    const int64_t nc = std::min(kNC, N - jc), slivers = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = std::min(kKC, K - pc);
      MatView<T> bv{b.base + pc * b.rs + jc * b.cs, b.rs, b.cs};
      T* panel = dst + jc * K + pc * slivers * NR;
      parallel_for(slivers, std::max<int64_t>(1, 16384 / (kc * NR) + 1),
                   [&](int64_t s0, int64_t s1) { pack_b<NR>(bv, nc, kc, s0, s1, panel); });
    }
  }
}

// AVX-512 tile rows for an M-row product: 14 (the fastest tile) unless 8-row tiles pad about 9%
// less or more (pad8 * 1.1 < pad14). Measured at 1 thread: 16 x 144 x 25600 (a 16-channel 3x3 conv)
// 34 -> 44 GFLOP/s, 32 x 288 x 6400 67 -> 73, while at 128 rows the 14-row tile stays ahead (131 vs
// 109).
inline int avx512_rows(int64_t M) {
  const double pad14 = double((M + 13) / 14 * 14), pad8 = double((M + 7) / 8 * 8);
  return pad8 * 1.1 < pad14 ? 8 : 14;
}

// Tile shapes per ISA: AVX-512 has 32 vector registers (14x32 floats = 28 accumulators; ~210
// GFLOP/s per core in L1 when measured alone), AVX2 has 16 (6x16 floats = 12 accumulators).
// `pk` (may be null): B prepacked by a plan; read when it was packed for the tiles chosen now,
// else B is packed per call as without it (counted in nef.stats()).
template <typename T, typename S>
void gemm_dispatch(int64_t M, int64_t N, int64_t K, MatView<S> a, MatView<S> b, T* c, bool parallel,
                   T* scratch, const GemmTileHook* hook = nullptr, int64_t c_off = 0,
                   const PackedB* pk = nullptr) {
  constexpr int kLanes512 = 64 / sizeof(T);
  constexpr int kLanes256 = 32 / sizeof(T);
  const bool wide = wide_tiles();
  const T* packed = nullptr;
  if (pk) {
    if (pk->nr == (wide ? 2 * kLanes512 : 2 * kLanes256)) {
      packed = pk->data<T>();
      counters().gemm_prepacked++;
    } else {
      counters().gemm_prepack_fallbacks++;
    }
  }
  auto run = [&]<int MR, int NR>() {
    gemm<T, MR, NR>(M, N, K, a, b, c, N, parallel, scratch, pick_macro<T, MR, NR>(), hook, c_off,
                    packed);
  };
  if (wide) {
    if (avx512_rows(M) == 8) run.template operator()<8, 2 * kLanes512>();
    else run.template operator()<14, 2 * kLanes512>();
  } else {
    run.template operator()<6, 2 * kLanes256>();
  }
}

// Enough for whichever tiles run: NEF_CPU_TARGET is read per call, the scratch sized before.
template <typename T>
int64_t gemm_dispatch_scratch(int64_t M, int64_t N, int64_t K, bool parallel) {
  constexpr int kLanes512 = 64 / sizeof(T);
  constexpr int kLanes256 = 32 / sizeof(T);
  const int64_t narrow = gemm_scratch<T, 6, 2 * kLanes256>(M, N, K, parallel);
  if (!has_avx512()) return narrow;
  return std::max(narrow, avx512_rows(M) == 8
                              ? gemm_scratch<T, 8, 2 * kLanes512>(M, N, K, parallel)
                              : gemm_scratch<T, 14, 2 * kLanes512>(M, N, K, parallel));
}

// B of `t` packed for the tiles chosen now.
template <typename T>
std::shared_ptr<const PackedB> pack_constant_b(const Array& b) {
  constexpr int kLanes512 = 64 / sizeof(T);
  constexpr int kLanes256 = 32 / sizeof(T);
  auto pk = std::make_shared<PackedB>();
  pk->dtype = b.dtype;
  pk->K = b.shape[0], pk->N = b.shape[1];
  pk->src = b.data();
  pk->rs = b.strides[0], pk->cs = b.strides[1];
  MatView<T> bv{static_cast<const T*>(b.data()), pk->rs, pk->cs};
  auto fill = [&]<int NR>() {
    pk->nr = NR;
    pk->bytes = hwy::AllocateAligned<uint8_t>(size_t(packed_elems<NR>(pk->K, pk->N)) * sizeof(T));
    NEF_CHECK(pk->bytes, "[matmul] prepacking B: out of memory");
    pack_whole_b<T, NR>(bv, pk->K, pk->N, reinterpret_cast<T*>(pk->bytes.get()));
  };
  if (wide_tiles()) fill.template operator()<2 * kLanes512>();
  else fill.template operator()<2 * kLanes256>();
  return pk;
}

// Batch geometry shared by all dtype paths: per output batch, the element offsets of A and B.
struct MatmulPlan {
  int64_t M = 1, N = 1, K = 0;
  int64_t rsa = 0, csa = 0, rsb = 0, csb = 0;
  std::vector<int64_t> a_off, b_off;  // one per output batch
};

MatmulPlan make_plan(const Array& a, const Array& b) {
  MatmulPlan p;
  int ra = a.rank(), rb = b.rank();
  NEF_CHECK(ra >= 1 && rb >= 1, "matmul ranks");
  if (ra == 1) {
    p.M = 1, p.K = a.shape[0], p.rsa = 0, p.csa = a.strides[0];
  } else {
    p.M = a.shape[ra - 2], p.K = a.shape[ra - 1], p.rsa = a.strides[ra - 2],
    p.csa = a.strides[ra - 1];
  }
  if (rb == 1) {
    p.N = 1, p.rsb = b.strides[0], p.csb = 0;
  } else {
    p.N = b.shape[rb - 1], p.rsb = b.strides[rb - 2], p.csb = b.strides[rb - 1];
  }
  Shape ba(a.shape.begin(), a.shape.end() - std::min(ra, 2));
  Strides sa(a.strides.begin(), a.strides.end() - std::min(ra, 2));
  Shape bb(b.shape.begin(), b.shape.end() - std::min(rb, 2));
  Strides sb(b.strides.begin(), b.strides.end() - std::min(rb, 2));
  Shape batch = broadcast_shapes(ba, bb, "matmul");
  Strides ta = broadcast_strides(ba, sa, batch), tb = broadcast_strides(bb, sb, batch);
  int64_t nb = numel(batch);
  p.a_off.resize(nb);
  p.b_off.resize(nb);
  for (int64_t i = 0; i < nb; ++i) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int d = int(batch.size()) - 1; d >= 0; --d) {
      int64_t idx = rem % batch[d];
      rem /= batch[d];
      oa += idx * ta[d];
      ob += idx * tb[d];
    }
    p.a_off[i] = oa;
    p.b_off[i] = ob;
  }
  return p;
}

// `x` converted to dtype `t` (mixed-dtype matmul computes in the promoted type), into the
// workspace; `x` itself when it has that dtype.
Array convert(const Array& x, DType t, WorkspaceCarver& ws) {
  if (x.dtype == t) return x;
  Array dst = ws.take(x.shape, t);
  const int64_t n = x.numel();
  if (n == 0) return dst;
  dispatch_dtype(x.dtype, [&]<typename S>() {
    dispatch_dtype(t, [&]<typename D>() {
      const S* s = static_cast<const S*>(x.data());
      D* d = dst.data_as<D>();
      // Row-major walk over any strides (an odometer over the dims).
      std::vector<int64_t> idx(size_t(x.rank()), 0);
      int64_t off = 0;
      for (int64_t i = 0; i < n; ++i) {
        d[i] = store_as<D>(compute_t<D>(load_as(s[off])));
        for (int k = x.rank() - 1; k >= 0; --k) {
          off += x.strides[k];
          if (++idx[k] < x.shape[k]) break;
          off -= x.strides[k] * x.shape[k];
          idx[k] = 0;
        }
      }
    });
  });
  return dst;
}

// How matmul_float spreads a batch: many small matrices one per thread, else one matrix at a time
// with all threads (the same decision sizes the scratch and runs the product).
struct BatchSplit {
  bool per_batch = false;
  int64_t grain = 1, slots = 1;
};

BatchSplit batch_split(int64_t M, int64_t N, int64_t K, int64_t nb, bool parallel) {
  BatchSplit s;
  const double flops = 2.0 * double(M) * double(N) * double(K);
  s.per_batch = parallel && nb > 1 && (flops < 4e6 || nb >= 4 * num_threads());
  if (s.per_batch) {
    s.grain = std::max<int64_t>(1, int64_t(4e6 / std::max(flops, 1.0)));
    s.slots = parallel_slots(nb, s.grain);
  }
  return s;
}

// Bytes of scratch one matmul_float<T> call needs: per thread slot (one when the matrices go one at
// a time) a GEMM's scratch and, for the half types, a float result to round from.
template <typename T>
int64_t matmul_float_scratch(int64_t M, int64_t N, int64_t K, int64_t nb, bool parallel) {
  using C = compute_t<T>;
  const BatchSplit split = batch_split(M, N, K, nb, parallel);
  const bool gemm_parallel = parallel && !split.per_batch;
  int64_t per = gemm_dispatch_scratch<C>(M, N, K, gemm_parallel);
  if (!std::is_same_v<T, C>) per += M * N + 64 / int64_t(sizeof(C));
  return split.slots * per * int64_t(sizeof(C));
}

// Whether `pk`, a plan's prepacked B, was packed from exactly this b (data, shape, strides).
template <typename T>
bool packed_applies(const PackedB& pk, const MatmulPlan& p, const Array& b) {
  return std::is_same_v<T, compute_t<T>> && pk.dtype == b.dtype && b.rank() == 2 &&
         pk.src == b.data() && pk.K == p.K && pk.N == p.N && pk.rs == p.rsb && pk.cs == p.csb &&
         pk.kc == kKC && pk.nc == kNC;
}

template <typename T>
void matmul_float(const MatmulPlan& p, const Array& a, const Array& b, Array& out,
                  const Array& scratch, bool parallel, const GemmTileHook* hook = nullptr,
                  const PackedB* pk = nullptr) {
  using C = compute_t<T>;  // float for the half types
  if (pk && !packed_applies<T>(*pk, p, b)) {
    counters().gemm_prepack_fallbacks++;
    pk = nullptr;
  }
  const T* A = static_cast<const T*>(a.data());
  const T* B = static_cast<const T*>(b.data());
  const int64_t nb = int64_t(p.a_off.size());
  const int64_t mat = p.M * p.N;
  const BatchSplit split = batch_split(p.M, p.N, p.K, nb, parallel);
  const bool gemm_parallel = parallel && !split.per_batch;
  int64_t per = gemm_dispatch_scratch<C>(p.M, p.N, p.K, gemm_parallel);
  if (!std::is_same_v<T, C>) per += mat + 64 / int64_t(sizeof(C));
  NEF_CHECK(scratch.numel() >= split.slots * per * int64_t(sizeof(C)), "[matmul] scratch of ",
            scratch.numel(), " bytes, ", split.slots * per * int64_t(sizeof(C)), " needed");
  C* const base = reinterpret_cast<C*>(scratch.data());
  auto one = [&](int64_t i, int64_t slot) {
    C* region = base + slot * per;
    MatView<T> av{A + p.a_off[i], p.rsa, p.csa};
    MatView<T> bv{B + p.b_off[i], p.rsb, p.csb};
    if constexpr (std::is_same_v<T, C>) {
      gemm_dispatch<C>(p.M, p.N, p.K, av, bv, out.data_as<T>() + i * mat, gemm_parallel, region,
                       hook, i * mat, pk);
    } else {
      NEF_CHECK(!hook, "matmul tile hooks need float32/float64");
      C* tmp = region + (per - mat);
      gemm_dispatch<C>(p.M, p.N, p.K, av, bv, tmp, gemm_parallel, region);
      T* o = out.data_as<T>() + i * mat;
      for (int64_t e = 0; e < mat; ++e) o[e] = store_as<T>(tmp[e]);
    }
  };
  if (split.per_batch) {
    parallel_for_slots(nb, split.grain, [&](int64_t slot, int64_t b0, int64_t b1) {
      for (int64_t i = b0; i < b1; ++i) one(i, slot);
    });
  } else {
    for (int64_t i = 0; i < nb; ++i) one(i, 0);
  }
}

// Integers: 64-bit accumulation in unsigned arithmetic (wraps instead of UB), truncated on store.
template <typename T>
void matmul_int(const MatmulPlan& p, const Array& a, const Array& b, Array& out) {
  const T* A = static_cast<const T*>(a.data());
  const T* B = static_cast<const T*>(b.data());
  const int64_t rows = int64_t(p.a_off.size()) * p.M;
  T* O = out.data_as<T>();
  int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, p.N * p.K));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    std::vector<uint64_t> acc(p.N);
    for (int64_t r = r0; r < r1; ++r) {
      int64_t bi = r / p.M, i = r % p.M;
      const T* ar = A + p.a_off[bi] + i * p.rsa;
      const T* bm = B + p.b_off[bi];
      std::fill(acc.begin(), acc.end(), 0);
      for (int64_t k = 0; k < p.K; ++k) {
        uint64_t aik = uint64_t(int64_t(ar[k * p.csa]));
        const T* br = bm + k * p.rsb;
        for (int64_t j = 0; j < p.N; ++j) acc[j] += aik * uint64_t(int64_t(br[j * p.csb]));
      }
      T* o = O + r * p.N;
      for (int64_t j = 0; j < p.N; ++j) o[j] = static_cast<T>(int64_t(acc[j]));
    }
  });
}

// The (M, N, K, batch count) of a @ b, from shapes alone (numpy matmul semantics).
struct Dims {
  int64_t M = 1, N = 1, K = 0, nb = 1;
};
Dims matmul_dims(const Shape& a, const Shape& b) {
  Dims d;
  const size_t ra = a.size(), rb = b.size();
  d.M = ra >= 2 ? a[ra - 2] : 1;
  d.K = a.empty() ? 0 : a[ra - 1];
  d.N = rb >= 2 ? b[rb - 1] : 1;
  Shape ba(a.begin(), a.end() - std::min<size_t>(ra, 2));
  Shape bb(b.begin(), b.end() - std::min<size_t>(rb, 2));
  d.nb = numel(broadcast_shapes(ba, bb, "matmul"));
  return d;
}

void matmul_run(const KernelArgs& args) {
  const auto* pk = dynamic_cast<const PackedB*>(args.prepared);
  Array& out = args.out;
  if (out.numel() == 0) return;
  WorkspaceCarver ws(args.workspace);
  Array a = convert(args.inputs[0], out.dtype, ws);
  Array b = convert(args.inputs[1], out.dtype, ws);
  MatmulPlan p = make_plan(a, b);
  NEF_CHECK(int64_t(p.a_off.size()) * p.M * p.N == out.numel(), "matmul output size");
  dispatch_dtype(out.dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      throw TypeError("[matmul] bool operands are not supported");
    } else if constexpr (std::is_integral_v<T>) {
      matmul_int<T>(p, a, b, out);
    } else {
      const int64_t bytes = matmul_float_scratch<T>(p.M, p.N, p.K, int64_t(p.a_off.size()), true);
      matmul_float<T>(p, a, b, out, ws.take({bytes}, DType::UInt8), true, nullptr, pk);
    }
  });
}

// matmul prepared per node: operand conversions (mixed dtypes compute in the output's) and the
// GEMM's packing panels are its workspace.
class MatmulKernel final : public CpuKernel {
 public:
  MatmulKernel(const ir::Node& node, const std::vector<ir::TensorType>& in)
      : name_(str("cpu.matmul.", dtype_name(node.type.dtype))) {
    const DType t = node.type.dtype;
    if (in.size() != 2 || numel(node.type.shape) == 0) return;
    for (const auto& x : in)
      if (x.dtype != t) workspace_ += workspace_piece(numel(x.shape), t);
    if (is_floating(t)) {
      const Dims d = matmul_dims(in[0].shape, in[1].shape);
      rows_ = d.M;
      operands_match_ = in[0].dtype == t && in[1].dtype == t;
      dispatch_dtype(t, [&]<typename T>() {
        if constexpr (std::is_floating_point_v<compute_t<T>>)
          workspace_ +=
              workspace_piece(matmul_float_scratch<T>(d.M, d.N, d.K, d.nb, true), DType::UInt8);
      });
    }
  }
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }
  void run(const KernelArgs& args) const override { matmul_run(args); }
  // A constant B of the output dtype (no conversion) is packed once per plan.
  std::shared_ptr<const Prepared> prepare(
      const std::vector<const Array*>& constants) const override {
    if (!operands_match_ || constants.size() != 2 || !constants[1]) return nullptr;
    return prepack_matmul_b(*constants[1], constants[1]->dtype, rows_);
  }

 private:
  std::string name_;
  int64_t workspace_ = 0;
  int64_t rows_ = 0;
  bool operands_match_ = false;
};

}  // namespace

int64_t matmul_scratch_bytes(const Shape& a, const Shape& b, DType t, bool parallel) {
  if (t != DType::Float32 && t != DType::Float64) return 0;
  const Dims d = matmul_dims(a, b);
  if (d.M * d.N * d.nb == 0) return 0;
  auto need = [&]<typename T>() {
    // Callers may run smaller products of this bound (a chunk of images or positions: M, the
    // rows, stays), which can split the batch differently: enough for either split.
    int64_t split = matmul_float_scratch<T>(d.M, d.N, d.K, d.nb, parallel);
    if (!parallel) return split;
    int64_t each = int64_t(sizeof(T)) * gemm_dispatch_scratch<T>(d.M, d.N, d.K, false);
    int64_t whole = int64_t(sizeof(T)) * gemm_dispatch_scratch<T>(d.M, d.N, d.K, true);
    return std::max({split, num_threads() * each, whole});
  };
  return workspace_piece(
      t == DType::Float32 ? need.template operator()<float>() : need.template operator()<double>(),
      DType::UInt8);
}

std::shared_ptr<const Prepared> prepack_matmul_b(const Array& b, DType t, int64_t rows) {
  if ((t != DType::Float32 && t != DType::Float64) || b.dtype != t || b.rank() != 2 ||
      !b.on_host() || b.numel() == 0 || rows > kPrepackMaxRows)
    return nullptr;
  if (t == DType::Float32) return pack_constant_b<float>(b);
  return pack_constant_b<double>(b);
}

void matmul_float_with_hook(const Array& a, const Array& b, Array& out, const GemmTileHook& hook,
                            const Array& scratch, bool parallel, const Prepared* packed) {
  if (out.numel() == 0) return;
  NEF_CHECK(a.dtype == out.dtype && b.dtype == out.dtype &&
                (out.dtype == DType::Float32 || out.dtype == DType::Float64),
            "matmul_float_with_hook dtypes");
  MatmulPlan p = make_plan(a, b);
  NEF_CHECK(int64_t(p.a_off.size()) * p.M * p.N == out.numel(), "matmul output size");
  const auto* pk = dynamic_cast<const PackedB*>(packed);
  if (out.dtype == DType::Float32) matmul_float<float>(p, a, b, out, scratch, parallel, &hook, pk);
  else matmul_float<double>(p, a, b, out, scratch, parallel, &hook, pk);
}

// The other kernels of the family live in det.cpp, softmax.cpp, norm.cpp and attention.cpp.
void register_softmax_kernels(KernelTable& t);
void register_norm_kernels(KernelTable& t);
void register_det_kernels(KernelTable& t);               // det.cpp (same linear-algebra family)
void register_attention_kernels(KernelTable& t);         // attention, cached_attention
void register_rope_kernels(KernelTable& t);              // rope.cpp
void register_linear_attention_kernels(KernelTable& t);  // linear_attention.cpp
void register_matmul_epilogue_kernels(KernelTable& t);   // matmul_epilogue.cpp

void register_linalg_nn_kernels(KernelTable& t) {
  t.add_prepared<MatmulKernel>("matmul");
  register_det_kernels(t);
  register_softmax_kernels(t);
  register_norm_kernels(t);
  register_attention_kernels(t);
  register_rope_kernels(t);
  register_linear_attention_kernels(t);
  register_matmul_epilogue_kernels(t);
}

}  // namespace nef::backend::cpu
