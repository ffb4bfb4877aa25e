// The integer GEMM micro-tiles (backends/cpu/kernels/igemm.h) of every instruction set this CPU
// runs, in one process, against an int64 reference: every tile height (1 to kIgemmMR), every
// column count (1 to kIgemmNR), K from 0 up, and the extreme values (+-255 products, the
// zero-point-subtracted range, and 255 x -128 bytes) that would saturate a 16-bit sum. The
// byte tiles' zero-point corrections are covered end to end by tests/python/test_onnx_quant.py.
#include "backends/cpu/kernels/igemm.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "backends/cpu/kernels/cpu_target.h"

namespace nef::test {
namespace {

using namespace backend::cpu;

std::vector<const IgemmIsa*> isas() {
  std::vector<const IgemmIsa*> v = {&igemm_generic()};
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  if (igemm_avx2() && __builtin_cpu_supports("avx2")) v.push_back(igemm_avx2());
  if (igemm_avx2vnni() && cpu_isa().avx_vnni) v.push_back(igemm_avx2vnni());
  if (igemm_avx512() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
    v.push_back(igemm_avx512());
#endif
  return v;
}

// One case: a [mr, kp] and a panel [kp / 2][NR][2] of values in [lo, hi].
void check_tile(const IgemmIsa& isa, int mr, int nc, int64_t kp, int lo, int hi,
                std::mt19937& rng) {
  std::uniform_int_distribution<int> d(lo, hi);
  const int64_t lda = kp + 2;  // a row stride wider than K, as packed rows may be
  std::vector<int16_t> a(size_t(mr * lda)), panel(size_t(kp * kIgemmNR));
  for (auto& v : a) v = int16_t(d(rng));
  for (auto& v : panel) v = int16_t(d(rng));
  const int64_t ldc = kIgemmNR + 3;
  std::vector<int32_t> c(size_t(mr * ldc), 12345);
  isa.tile(a.data(), lda, mr, panel.data(), kp, c.data(), ldc, nc);
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < int(ldc); ++j) {
      if (j >= nc) {  // columns past nc are left alone
        ASSERT_EQ(c[size_t(r * ldc + j)], 12345) << isa.name << " wrote column " << j;
        continue;
      }
      int64_t want = 0;
      for (int64_t k = 0; k < kp; ++k)
        want += int64_t(a[size_t(r * lda + k)]) *
                panel[size_t((k / 2) * 2 * kIgemmNR + 2 * j + (k & 1))];
      ASSERT_EQ(c[size_t(r * ldc + j)], want)
          << isa.name << " mr " << mr << " nc " << nc << " kp " << kp << " at " << r << ", " << j;
    }
}

TEST(Igemm, EveryTileShapeMatchesInt64) {
  std::mt19937 rng(std::random_device{}());
  for (const IgemmIsa* isa : isas())
    for (int mr = 1; mr <= kIgemmMR; ++mr)
      for (int nc = 1; nc <= kIgemmNR; nc += (nc < 3 ? 1 : 5))
        for (int64_t kp : {0, 2, 6, 32, 130, 514}) check_tile(*isa, mr, nc, kp, -255, 255, rng);
}

TEST(Igemm, ExtremeValuesDoNotSaturate) {
  std::mt19937 rng(7);
  for (const IgemmIsa* isa : isas()) {
    check_tile(*isa, kIgemmMR, kIgemmNR, 1024, 255, 255, rng);    // all +255 x +255
    check_tile(*isa, kIgemmMR, kIgemmNR, 1024, -255, -255, rng);  // all -255 x -255
    check_tile(*isa, 3, 7, 998, -255, 255, rng);
  }
}

// The byte tiles (vpdpbusd): uint8 A' x int8 B' quads against int64, extremes included.
// tile_q8 (pair false: nc columns of one panel) or tile_q8_pair (pair true: 16 + nc columns of
// two adjacent panels) against int64 sums; columns past them must stay untouched.
void check_tile_q8(const IgemmIsa& isa, int mr, int nc, int64_t kq, bool extreme, bool pair,
                   std::mt19937& rng) {
  std::uniform_int_distribution<int> du(0, 255), ds(-128, 127);
  const int64_t lda = kq + 4, panels = pair ? 2 : 1;
  std::vector<uint8_t> a(size_t(mr * lda));
  std::vector<int8_t> panel(size_t(panels * kq * kIgemmNR));
  for (auto& v : a) v = extreme ? 255 : uint8_t(du(rng));
  for (auto& v : panel) v = extreme ? int8_t(-128) : int8_t(ds(rng));
  const int64_t ldc = panels * kIgemmNR + 1;
  const int cols = int(pair ? kIgemmNR : 0) + nc;
  std::vector<int32_t> c(size_t(mr * ldc), 777);
  if (pair) isa.tile_q8_pair(a.data(), lda, mr, panel.data(), kq, c.data(), ldc, nc);
  else isa.tile_q8(a.data(), lda, mr, panel.data(), kq, c.data(), ldc, nc);
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < int(ldc); ++j) {
      if (j >= cols) {
        ASSERT_EQ(c[size_t(r * ldc + j)], 777) << isa.name << " wrote column " << j;
        continue;
      }
      const int8_t* p = panel.data() + (j / kIgemmNR) * kq * kIgemmNR;
      const int jj = j % kIgemmNR;
      int64_t want = 0;
      for (int64_t k = 0; k < kq; ++k)
        want += int64_t(a[size_t(r * lda + k)]) * p[(k / 4) * 4 * kIgemmNR + 4 * jj + (k & 3)];
      ASSERT_EQ(c[size_t(r * ldc + j)], want)
          << isa.name << " mr " << mr << " nc " << nc << " pair " << pair;
    }
}

TEST(Igemm, ByteTilesMatchInt64) {
  std::mt19937 rng(std::random_device{}());
  int tested = 0;
  for (const IgemmIsa* isa : isas()) {
    if (!isa->tile_q8) continue;
    ++tested;
    for (bool pair : {false, true}) {
      if (pair && !isa->tile_q8_pair) continue;
      for (int mr = 1; mr <= kIgemmMR; ++mr)
        for (int nc : {1, 2, 7, 15, 16})
          for (int64_t kq : {0, 4, 12, 128, 516}) check_tile_q8(*isa, mr, nc, kq, false, pair, rng);
      check_tile_q8(*isa, kIgemmMR, kIgemmNR, 2048, true, pair, rng);  // 255 x -128: no saturation
    }
  }
  if (!tested) GTEST_SKIP() << "no instruction set with byte products on this CPU";
}

TEST(Igemm, BestIsOneOfThem) {
  const IgemmIsa& best = igemm_best();
  bool found = false;
  for (const IgemmIsa* isa : isas()) found = found || isa == &best;
  EXPECT_TRUE(found) << best.name;
}

}  // namespace
}  // namespace nef::test
