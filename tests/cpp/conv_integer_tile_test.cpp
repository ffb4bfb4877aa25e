// conv_integer's implicit-GEMM tiles (backends/cpu/kernels/conv_integer.h) of every instruction
// set this CPU runs, in one process, against an int64 reference: the tiles accumulate onto c,
// read b at per-k offsets (unaligned, overlapping), K from 0 up; byte words (unsigned plane
// bytes x signed weight bytes, 255 x -128 at the extreme) and int16 pairs (+-255, the
// zero-point-subtracted range). Whole convs (planes, packing, corrections) are covered end to end
// by tests/python/test_conv_integer.py.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "backends/cpu/kernels/conv_integer.h"
#include "backends/cpu/kernels/cpu_target.h"

namespace nef::test {
namespace {

using namespace backend::cpu;

std::vector<const ConvIntIsa*> isas() {
  std::vector<const ConvIntIsa*> v = {&conv_int_generic()};
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  if (conv_int_avx2() && __builtin_cpu_supports("avx2")) v.push_back(conv_int_avx2());
  if (conv_int_avx2vnni() && cpu_isa().avx_vnni) v.push_back(conv_int_avx2vnni());
  if (conv_int_avx512() && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni"))
    v.push_back(conv_int_avx512());
#endif
  return v;
}

// Lane e of word v as the instruction set's operand: plane (unsigned byte / int16) or weight
// (signed byte / int16).
int64_t lane(const ConvIntIsa& isa, uint32_t v, int e, bool plane) {
  if (isa.per_word == 4) {
    const uint8_t b = uint8_t(v >> (8 * e));
    return plane ? int64_t(b) : int64_t(int8_t(b));
  }
  return int64_t(int16_t(uint16_t(v >> (16 * e))));
}

// A word of per_word random values in [lo, hi] (as bytes or int16).
uint32_t word(const ConvIntIsa& isa, std::mt19937& rng, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  uint32_t w = 0;
  for (int e = 0; e < isa.per_word; ++e)
    w |= isa.per_word == 4 ? uint32_t(uint8_t(d(rng))) << (8 * e)
                           : uint32_t(uint16_t(int16_t(d(rng)))) << (16 * e);
  return w;
}

void check(const ConvIntIsa& isa, int64_t kc, std::mt19937& rng, int plo, int phi, int wlo, int whi,
           bool zero = false) {
  const int mr = isa.mr, nr = isa.nr;
  const int64_t span = 3 * nr + 7;
  std::vector<int32_t> a(size_t(kc * mr)), b(size_t(span + nr));
  for (auto& v : a) v = int32_t(word(isa, rng, wlo, whi));
  for (auto& v : b) v = int32_t(word(isa, rng, plo, phi));
  std::vector<int64_t> offs(static_cast<size_t>(kc));
  std::uniform_int_distribution<int64_t> doff(0, span);
  for (auto& o : offs) o = doff(rng);
  std::vector<int32_t> c(size_t(mr * nr));
  std::uniform_int_distribution<int32_t> dc(-1000000, 1000000);
  for (auto& v : c) v = dc(rng);
  const std::vector<int32_t> c0 = c;
  isa.tile(kc, a.data(), b.data(), offs.data(), c.data(), zero);
  for (int i = 0; i < mr; ++i)
    for (int j = 0; j < nr; ++j) {
      int64_t want = zero ? 0 : c0[size_t(i * nr + j)];
      for (int64_t k = 0; k < kc; ++k)
        for (int e = 0; e < isa.per_word; ++e)
          want += lane(isa, uint32_t(a[size_t(k * mr + i)]), e, false) *
                  lane(isa, uint32_t(b[size_t(offs[size_t(k)] + j)]), e, true);
      ASSERT_EQ(int64_t(c[size_t(i * nr + j)]), want)
          << isa.name << " kc " << kc << " at " << i << ", " << j;
    }
}

TEST(ConvIntegerTile, MatchesInt64) {
  std::mt19937 rng(std::random_device{}());
  for (const ConvIntIsa* isa : isas()) {
    const bool bytes = isa->per_word == 4;
    for (int64_t kc : {0, 1, 2, 7, 33, 130}) {
      for (bool zero : {false, true}) {
        if (bytes) check(*isa, kc, rng, 0, 255, -128, 127, zero);
        else check(*isa, kc, rng, -255, 255, -255, 255, zero);
      }
    }
  }
}

TEST(ConvIntegerTile, ExtremeValuesDoNotSaturate) {
  std::mt19937 rng(3);
  for (const ConvIntIsa* isa : isas()) {
    if (isa->per_word == 4) {
      check(*isa, 700, rng, 255, 255, -128, -128);
      check(*isa, 700, rng, 255, 255, 127, 127);
    } else {
      check(*isa, 700, rng, 255, 255, -255, -255);
      check(*isa, 700, rng, -255, -255, -255, -255);
    }
  }
}

// The depthwise row of every variant: n around the vector widths (4, 8, 16 lanes, blocks of 4
// vectors), unit and larger steps, 0 to 49 taps at scattered offsets, values +-255 (the
// zero-point-subtracted range) and the extreme 255 x -255 everywhere.
TEST(ConvIntegerTile, DepthwiseRowMatchesInt64) {
  std::mt19937 rng(std::random_device{}());
  for (const ConvIntIsa* isa : isas())
    for (int64_t n : {1, 3, 8, 15, 16, 17, 63, 64, 65, 130})
      for (int64_t step : {1, 2, 3})
        for (int64_t taps : {0, 1, 9, 25, 49})
          for (bool extreme : {false, true}) {
            std::uniform_int_distribution<int32_t> dv(-255, 255);
            std::uniform_int_distribution<int64_t> doff(0, 50);
            std::vector<int64_t> toff(static_cast<size_t>(taps));
            std::vector<int32_t> tw(static_cast<size_t>(taps));
            for (auto& o : toff) o = doff(rng);
            for (auto& w : tw) w = extreme ? -255 : dv(rng);
            std::vector<int32_t> src(size_t(51 + n * step));
            for (auto& v : src) v = extreme ? 255 : dv(rng);
            std::vector<int32_t> acc(size_t(n) + 1, 424242);
            isa->dw_row(src.data(), step, n, toff.data(), tw.data(), taps, acc.data());
            for (int64_t j = 0; j < n; ++j) {
              int64_t want = 0;
              for (int64_t t = 0; t < taps; ++t)
                want += int64_t(tw[size_t(t)]) * src[size_t(toff[size_t(t)] + j * step)];
              ASSERT_EQ(int64_t(acc[size_t(j)]), want)
                  << isa->name << " n " << n << " step " << step << " taps " << taps << " at " << j;
            }
            ASSERT_EQ(acc[size_t(n)], 424242) << isa->name << " wrote past n";
          }
}

}  // namespace
}  // namespace nef::test
