// qmatmul's instruction-set variants (backends/cpu/kernels/qmatmul.h) against each other where
// they must agree exactly: the activation quantization is bit-identical in every variant (the
// AVX-512 one is vectorized), and the decoding paths (gemv: AVX-512, AVX-VNNI) give the tiled
// rows() path's results up to float summation order on 1 to 50 blocks (16-block groups, pairs
// and odd tails). The float64 references are in tests/python/test_quant_ops.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backends/cpu/kernels/cpu_target.h"
#include "backends/cpu/kernels/qmatmul.h"
#include "common/quant.h"

namespace nef::test {
namespace {

using backend::cpu::QChunk;
using backend::cpu::QGemmIsa;

std::vector<const QGemmIsa*> variants() {
  std::vector<const QGemmIsa*> v{&backend::cpu::qgemm_generic()};
  __builtin_cpu_init();
  if (backend::cpu::qgemm_avx2() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    v.push_back(backend::cpu::qgemm_avx2());
  if (backend::cpu::qgemm_avx2vnni() && backend::cpu::cpu_isa().avx_vnni)
    v.push_back(backend::cpu::qgemm_avx2vnni());
  if (backend::cpu::qgemm_avx512() && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni"))
    v.push_back(backend::cpu::qgemm_avx512());
  return v;
}

bool same_float(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0;
}

TEST(QmatmulIsa, ActivationQuantizationIsBitIdenticalInEveryVariant) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const auto isas = variants();
  for (int t = 0; t < 3000; ++t) {
    const int64_t K = 32 * (1 + t % 5);
    std::vector<float> x(static_cast<size_t>(K));
    const float scale = t % 97 == 0 ? 1e38f : std::pow(10.0f, float(int(rng() % 16) - 8));
    for (float& v : x) v = u(rng) * scale;
    if (t % 50 == 1) x[rng() % K] = std::numeric_limits<float>::quiet_NaN();
    if (t % 50 == 2) x[rng() % K] = -std::numeric_limits<float>::infinity();
    if (t % 50 == 3) std::fill(x.begin(), x.end(), 0.0f);
    if (t % 50 == 4)  // halves: x * (1 / d) lands on .5 ties
      for (float& v : x) v = float(int(rng() % 9) - 4) * 0.5f;
    std::vector<QChunk> want(size_t(K / 32));
    isas[0]->quantize_row(x.data(), K, want.data());
    for (const QGemmIsa* isa : isas) {
      std::vector<QChunk> got(size_t(K / 32));
      isa->quantize_row(x.data(), K, got.data());
      for (size_t c = 0; c < got.size(); ++c) {
        SCOPED_TRACE(std::string(isa->name) + " trial " + std::to_string(t));
        EXPECT_EQ(std::memcmp(got[c].q, want[c].q, 32), 0);
        EXPECT_TRUE(same_float(got[c].d, want[c].d));
        EXPECT_TRUE(same_float(got[c].sl, want[c].sl));
        EXPECT_TRUE(same_float(got[c].sh, want[c].sh));
        EXPECT_TRUE(same_float(got[c].s, want[c].s));
      }
    }
  }
}

TEST(QmatmulIsa, DecodingPathMatchesTheTiledRows) {
  bool any = false;
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> nd;
  for (const QGemmIsa* isa : variants()) {
    if (!isa->gemv) continue;
    any = true;
    for (quant::Format f : {quant::Format::Q4_0, quant::Format::Q4_1, quant::Format::Q8_0}) {
      for (int64_t nb = 1; nb <= 50; ++nb) {
        const int64_t K = 32 * nb, N = 7, rb = quant::row_bytes(f, K);
        std::vector<float> wf(static_cast<size_t>(K)), x(static_cast<size_t>(K));
        std::vector<uint8_t> w(size_t(rb * N));
        for (int64_t n = 0; n < N; ++n) {
          for (float& v : wf) v = nd(rng);
          quant::quantize_row(f, wf.data(), w.data() + n * rb, K);
        }
        for (float& v : x) v = nd(rng);
        std::vector<QChunk> xq(static_cast<size_t>(nb));
        isa->quantize_row(x.data(), K, xq.data());
        const int64_t nb16 = backend::cpu::gemv_padded_blocks(K);
        std::vector<int8_t> q(static_cast<size_t>(K));
        std::vector<float> d(size_t(nb16), 0.0f), s(size_t(nb16), 0.0f);
        for (int64_t b = 0; b < nb; ++b) {
          std::memcpy(q.data() + 32 * b, xq[size_t(b)].q, 32);
          d[size_t(b)] = xq[size_t(b)].d, s[size_t(b)] = xq[size_t(b)].s;
        }
        std::vector<float> want(static_cast<size_t>(N)), got(static_cast<size_t>(N), -1.0f);
        std::vector<uint8_t> scratch(size_t(backend::cpu::unpacked_row_bytes(K)));
        isa->rows({f, w.data(), rb, K, xq.data(), 1, want.data(), N}, 0, N, scratch.data());
        // Rows 2..5 only: the others must stay untouched.
        isa->gemv({f, w.data(), rb, K, q.data(), d.data(), s.data(), got.data()}, 2, 6);
        // Summation order differs: the error bound scales with sum |w_k x_k| (the outputs cancel).
        std::vector<float> wrow(static_cast<size_t>(K));
        for (int64_t n = 0; n < N; ++n) {
          quant::dequantize_row(f, w.data() + n * rb, wrow.data(), K);
          double mag = 0;
          for (int64_t k = 0; k < K; ++k)
            mag += std::fabs(double(wrow[size_t(k)]) * xq[size_t(k / 32)].d *
                             xq[size_t(k / 32)].q[k % 32]);
          SCOPED_TRACE(std::string(quant::info(f).name) + " K=" + std::to_string(K) +
                       " n=" + std::to_string(n));
          if (n < 2 || n >= 6) {
            EXPECT_EQ(got[size_t(n)], -1.0f);
          } else {
            EXPECT_NEAR(got[size_t(n)], want[size_t(n)], 1e-5 * mag + 1e-6);
          }
        }
      }
    }
  }
  if (!any) GTEST_SKIP() << "no variant with a decoding path on this CPU";
}

}  // namespace
}  // namespace nef::test
