// qmatmul's decoding product (one activation row) at SmolLM2-135M's shapes: each variant's gemv
// path against the tiled rows() path it replaced, interleaved, in thread CPU time. Weights
// rotate through copies larger than L2 so that every call streams its rows as decoding does.
// First, where the CPU has AVX-VNNI: the rows() path of the AVX2 variant against the AVX-VNNI
// one (1 and 4 activation rows), interleaved the same way.
//   ninja -C build/release bench_qgemv && build/release/bench_qgemv [rounds] [hot]
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/kernels/qmatmul.h"
#include "common/quant.h"

using namespace nef;
using namespace nef::backend::cpu;

static double cpu_ns() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e9 + double(t.tv_nsec);
}

namespace {

struct Shape {
  int64_t K, N;
  quant::Format f;
};
const Shape kShapes[] = {{576, 1536, quant::Format::Q4_1},
                         {1536, 576, quant::Format::Q4_1},
                         {576, 576, quant::Format::Q4_1},
                         {576, 192, quant::Format::Q4_1},
                         {576, 49152, quant::Format::Q8_0}};

// Random weights of shape s quantized, repeated into copies past L2 unless hot.
std::vector<uint8_t> weights(const Shape& s, bool hot, int64_t& copies, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  const int64_t rb = quant::row_bytes(s.f, s.K);
  std::vector<float> wf(size_t(s.K));
  std::vector<uint8_t> w1(size_t(rb * s.N));
  for (int64_t n = 0; n < s.N; ++n) {
    for (float& v : wf) v = nd(rng);
    quant::quantize_row(s.f, wf.data(), w1.data() + n * rb, s.K);
  }
  copies = hot ? 1 : std::max<int64_t>(2, (int64_t(64) << 20) / int64_t(w1.size()));
  std::vector<uint8_t> w(w1.size() * size_t(copies));
  for (int64_t c = 0; c < copies; ++c) std::memcpy(w.data() + c * w1.size(), w1.data(), w1.size());
  return w;
}

// The AVX2 variant's rows() against the AVX-VNNI one's, M activation rows.
void avx2_vs_vnni(int rounds, bool hot) {
  const QGemmIsa* isa[2] = {qgemm_avx2(), qgemm_avx2vnni()};
  std::mt19937 rng(2);
  std::normal_distribution<float> nd;
  std::printf("qmatmul rows(): ns per 32-weight block and row, median of %d rounds\n", rounds);
  std::printf("%-18s %3s %10s %10s %8s\n", "K->N fmt", "M", "avx2", "avx2vnni", "speedup");
  for (const Shape& s : kShapes) {
    int64_t copies = 1;
    const std::vector<uint8_t> w = weights(s, hot, copies, rng);
    const int64_t rb = quant::row_bytes(s.f, s.K), nb = s.K / 32;
    const size_t one = w.size() / size_t(copies);
    for (int64_t M : {1, 4}) {
      std::vector<float> x(size_t(M * s.K));
      for (float& v : x) v = nd(rng);
      std::vector<QChunk> xq(size_t(M * nb));
      for (int64_t m = 0; m < M; ++m)
        isa[0]->quantize_row(x.data() + m * s.K, s.K, xq.data() + m * nb);
      std::vector<float> out[2] = {std::vector<float>(size_t(M * s.N)),
                                   std::vector<float>(size_t(M * s.N))};
      std::vector<uint8_t> scratch(size_t(unpacked_row_bytes(s.K)));
      std::vector<double> t[2];
      const int64_t reps = std::max<int64_t>(1, (int64_t(4) << 20) / (M * s.N * nb));
      int64_t c = 0;
      for (int r = 0; r < rounds; ++r)
        for (int which = 0; which < 2; ++which) {
          const double t0 = cpu_ns();
          for (int64_t i = 0; i < reps; ++i, c = (c + 1) % copies) {
            QGemmArgs a{s.f, w.data() + size_t(c) * one, rb, s.K, xq.data(),
                        M,   out[which].data(),          s.N};
            isa[which]->rows(a, 0, s.N, scratch.data());
          }
          t[which].push_back((cpu_ns() - t0) / double(reps * M * s.N * nb));
        }
      double maxdiff = 0;
      for (size_t i = 0; i < out[0].size(); ++i)
        maxdiff = std::max(maxdiff, double(std::abs(out[0][i] - out[1][i])));
      for (auto& v : t) std::sort(v.begin(), v.end());
      const double a = t[0][t[0].size() / 2], b = t[1][t[1].size() / 2];
      std::printf("%4lld->%-6lld %-5s %3lld %10.3f %10.3f %7.2fx  (max |diff| %.2g)\n",
                  (long long)s.K, (long long)s.N, quant::info(s.f).name, (long long)M, a, b, a / b,
                  maxdiff);
    }
  }
}

// One variant's gemv against its rows() at M = 1.
void gemv_vs_rows(const QGemmIsa& isa, int rounds, bool hot) {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::printf("isa %s; ns per 32-weight block, median of %d rounds (thread CPU time)\n", isa.name,
              rounds);
  std::printf("%-18s %10s %10s %8s\n", "K->N fmt", "rows()", "gemv", "speedup");
  for (const Shape& s : kShapes) {
    const int64_t rb = quant::row_bytes(s.f, s.K), nb = s.K / 32;
    std::vector<float> wf(size_t(s.K));
    std::vector<uint8_t> w1(size_t(rb * s.N));
    for (int64_t n = 0; n < s.N; ++n) {
      for (float& v : wf) v = nd(rng);
      quant::quantize_row(s.f, wf.data(), w1.data() + n * rb, s.K);
    }
    const int64_t copies = hot ? 1 : std::max<int64_t>(2, (int64_t(64) << 20) / int64_t(w1.size()));
    std::vector<uint8_t> w(w1.size() * size_t(copies));
    for (int64_t c = 0; c < copies; ++c)
      std::memcpy(w.data() + c * w1.size(), w1.data(), w1.size());
    std::vector<float> x(size_t(s.K));
    for (float& v : x) v = nd(rng);
    std::vector<QChunk> xq(static_cast<size_t>(nb));
    isa.quantize_row(x.data(), s.K, xq.data());
    const int64_t nb16 = gemv_padded_blocks(s.K);
    std::vector<int8_t> q(size_t(s.K));
    std::vector<float> d(size_t(nb16), 0.0f), sm(size_t(nb16), 0.0f);
    for (int64_t b = 0; b < nb; ++b) {
      std::memcpy(q.data() + 32 * b, xq[size_t(b)].q, 32);
      d[size_t(b)] = xq[size_t(b)].d, sm[size_t(b)] = xq[size_t(b)].s;
    }
    std::vector<float> out_old(size_t(s.N)), out_new(size_t(s.N));
    std::vector<uint8_t> scratch(size_t(unpacked_row_bytes(s.K)));
    std::vector<double> t_old, t_new;
    const int64_t reps = std::max<int64_t>(1, (int64_t(8) << 20) / (s.N * nb));
    int64_t c = 0;
    for (int r = 0; r < rounds; ++r) {
      for (int which = 0; which < 2; ++which) {
        const double t0 = cpu_ns();
        for (int64_t i = 0; i < reps; ++i, c = (c + 1) % copies) {
          const uint8_t* wc = w.data() + c * w1.size();
          if (which == 0) {
            QGemmArgs a{s.f, wc, rb, s.K, xq.data(), 1, out_old.data(), s.N};
            isa.rows(a, 0, s.N, scratch.data());
          } else {
            QGemvArgs a{s.f, wc, rb, s.K, q.data(), d.data(), sm.data(), out_new.data()};
            isa.gemv(a, 0, s.N);
          }
        }
        (which == 0 ? t_old : t_new).push_back((cpu_ns() - t0) / double(reps * s.N * nb));
      }
    }
    double maxdiff = 0, maxabs = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      maxdiff = std::max(maxdiff, double(std::abs(out_old[size_t(n)] - out_new[size_t(n)])));
      maxabs = std::max(maxabs, double(std::abs(out_old[size_t(n)])));
    }
    std::sort(t_old.begin(), t_old.end());
    std::sort(t_new.begin(), t_new.end());
    const double mo = t_old[t_old.size() / 2], mn = t_new[t_new.size() / 2];
    std::printf("%4lld->%-6lld %-5s %10.3f %10.3f %7.2fx  (max |old-new| %.2g of %.2g)\n",
                (long long)s.K, (long long)s.N, quant::info(s.f).name, mo, mn, mo / mn, maxdiff,
                maxabs);
  }
}
}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 30;
  const bool hot = argc > 2 && std::strcmp(argv[2], "hot") == 0;  // one copy: cache-resident
  __builtin_cpu_init();
  if (qgemm_avx2() && qgemm_avx2vnni() && __builtin_cpu_supports("avxvnni")) {
    avx2_vs_vnni(rounds, hot);
    gemv_vs_rows(*qgemm_avx2vnni(), rounds, hot);
  }
  if (qgemm_avx512() && __builtin_cpu_supports("avx512vnni"))
    gemv_vs_rows(*qgemm_avx512(), rounds, hot);
  return 0;
}
