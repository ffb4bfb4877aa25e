// roofline: measures this machine's limits so that benchmarks can report "% of limit".
//   STREAM-like copy (c = a) and triad (a = b + s*c) in GB/s, counting bytes read + written
//   (no write-allocate traffic, as STREAM does), with plain and non-temporal stores;
//   FP32 FMA peak in GFLOP/s from independent FMA chains held in registers (512- and 256-bit).
// Build: g++ -O3 -march=native -fopenmp -o build/bench/roofline bench/roofline.cpp
// Usage: roofline [--threads 1,2] [--mb 512] [--reps 10]     (prints one JSON object)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Stat {
  double best = 0, median = 0;  // rates: best = fastest repeat (STREAM's convention)
};

Stat summarize(std::vector<double> rates) {
  std::sort(rates.begin(), rates.end());
  Stat s;
  s.best = rates.back();
  size_t n = rates.size();
  s.median = n % 2 ? rates[n / 2] : 0.5 * (rates[n / 2 - 1] + rates[n / 2]);
  return s;
}

float* alloc_floats(int64_t n) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, static_cast<size_t>(n) * sizeof(float)) != 0) {
    std::fprintf(stderr, "roofline: cannot allocate %lld floats\n", static_cast<long long>(n));
    std::exit(1);
  }
  return static_cast<float*>(p);
}

// Same static partition as the kernels below, so that each thread first-touches its own pages.
void init(float* a, float* b, float* c, int64_t n, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    a[i] = 1.0f;
    b[i] = 2.0f;
    c[i] = 0.5f;
  }
}

void copy_plain(float* __restrict c, const float* __restrict a, int64_t n, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) c[i] = a[i];
}

void triad_plain(float* __restrict a, const float* __restrict b, const float* __restrict c,
                 float s, int64_t n, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

// Non-temporal stores skip the read-for-ownership of the destination line. n is a multiple
// of 16 and the arrays are page aligned, so every chunk start below is 64-byte aligned.
void copy_nt(float* __restrict c, const float* __restrict a, int64_t n, int threads) {
  const int64_t blocks = n / 16;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t k = 0; k < blocks; ++k) {
#ifdef __AVX512F__
    _mm512_stream_ps(c + 16 * k, _mm512_load_ps(a + 16 * k));
#else
    _mm256_stream_ps(c + 16 * k, _mm256_load_ps(a + 16 * k));
    _mm256_stream_ps(c + 16 * k + 8, _mm256_load_ps(a + 16 * k + 8));
#endif
  }
  _mm_sfence();
}

void triad_nt(float* __restrict a, const float* __restrict b, const float* __restrict c, float s,
              int64_t n, int threads) {
  const int64_t blocks = n / 16;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t k = 0; k < blocks; ++k) {
#ifdef __AVX512F__
    __m512 vs = _mm512_set1_ps(s);
    _mm512_stream_ps(a + 16 * k,
                     _mm512_fmadd_ps(vs, _mm512_load_ps(c + 16 * k), _mm512_load_ps(b + 16 * k)));
#else
    __m256 vs = _mm256_set1_ps(s);
    for (int h = 0; h < 16; h += 8)
      _mm256_stream_ps(a + 16 * k + h, _mm256_fmadd_ps(vs, _mm256_load_ps(c + 16 * k + h),
                                                       _mm256_load_ps(b + 16 * k + h)));
#endif
  }
  _mm_sfence();
}

template <typename Fn>
Stat time_bandwidth(Fn&& fn, double bytes, int reps) {
  fn();  // warm-up: page tables, thread pool
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    double t0 = now_s();
    fn();
    double t1 = now_s();
    rates.push_back(bytes / (t1 - t0) / 1e9);
  }
  return summarize(rates);
}

// kChains independent accumulators hide the FMA latency (4 cycles x 2 ports needs >= 8).
constexpr int kChains = 16;

// Tag types rather than templates over __m512/__m256 (GCC drops their attributes there).
#ifdef __AVX512F__
struct W512 {
  using V = __m512;
  static constexpr int lanes = 16;
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(V v) {
    alignas(64) float t[16];
    _mm512_store_ps(t, v);
    float s = 0;
    for (float x : t) s += x;
    return s;
  }
};
#endif

struct W256 {
  using V = __m256;
  static constexpr int lanes = 8;
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(V v) {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    float s = 0;
    for (float x : t) s += x;
    return s;
  }
};

// Returns a value depending on every chain so that nothing is optimized away.
template <typename O>
float fma_chains(int64_t iters, float seed) {
  using V = typename O::V;
  V acc[kChains];
  for (int k = 0; k < kChains; ++k) acc[k] = O::set1(seed + 0.001f * k);
  // acc = acc * m + a with m just below 1 keeps values bounded and normal.
  const V m = O::set1(0.999999f), a = O::set1(1e-6f);
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int k = 0; k < kChains; ++k) acc[k] = O::fma(acc[k], m, a);
  }
  float s = 0;
  for (int k = 0; k < kChains; ++k) s += O::sum(acc[k]);
  return s;
}

template <typename O>
Stat time_fma(int threads, int reps, volatile float* sink) {
  // ~10 ms per repeat (5M x 16 chains at 2 FMA/cycle, 4 GHz), many repeats, best kept: on a
  // shared machine a short window is more likely to run without being preempted.
  const int64_t iters = 5'000'000;
  const double flops = 2.0 * O::lanes * kChains * static_cast<double>(iters) * threads;
  std::vector<double> rates;
  for (int r = 0; r < reps + 1; ++r) {
    double t0 = now_s();
#pragma omp parallel num_threads(threads)
    {
      float s = fma_chains<O>(iters, 1.0f + omp_get_thread_num());
#pragma omp critical
      *sink = *sink + s;
    }
    double t1 = now_s();
    if (r > 0) rates.push_back(flops / (t1 - t0) / 1e9);  // first repeat: warm-up
  }
  return summarize(rates);
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      std::string m = p == std::string::npos ? line : line.substr(p + 1);
      m.erase(0, m.find_first_not_of(' '));
      std::string out;
      for (char ch : m) {
        if (ch == '"' || ch == '\\') out += '\\';
        out += ch;
      }
      return out;
    }
  }
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts = {1, 2};
  int64_t mb = 512;
  int reps = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--threads") {
      thread_counts.clear();
      std::string v = argv[i + 1];
      size_t pos = 0;
      while (pos < v.size()) {
        size_t e = v.find(',', pos);
        if (e == std::string::npos) e = v.size();
        thread_counts.push_back(std::max(1, std::atoi(v.substr(pos, e - pos).c_str())));
        pos = e + 1;
      }
    } else if (k == "--mb") {
      mb = std::max<int64_t>(16, std::atoll(argv[i + 1]));
    } else if (k == "--reps") {
      reps = std::max(3, std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: roofline [--threads 1,2] [--mb 512] [--reps 10]\n");
      return 2;
    }
  }
  const int64_t n = (mb << 20) / static_cast<int64_t>(sizeof(float)) / 16 * 16;
  float* a = alloc_floats(n);
  float* b = alloc_floats(n);
  float* c = alloc_floats(n);
  volatile float sink = 0;
  const float s = 3.0f;

#ifdef __AVX512F__
  const char* isa = "avx512";
#else
  const char* isa = "avx2";
#endif
  std::printf("{\n  \"cpu\": \"%s\",\n  \"isa\": \"%s\",\n  \"array_mb\": %lld,\n"
              "  \"arrays\": 3,\n  \"bytes_counted\": \"read + written, no write-allocate\",\n"
              "  \"stat\": \"best and median of %d repeats\",\n  \"threads\": {",
              cpu_model().c_str(), isa, static_cast<long long>(mb), reps);
  for (size_t ti = 0; ti < thread_counts.size(); ++ti) {
    int t = thread_counts[ti];
    init(a, b, c, n, t);
    Stat cp = time_bandwidth([&] { copy_plain(c, a, n, t); }, 2.0 * 4 * n, reps);
    Stat tr = time_bandwidth([&] { triad_plain(a, b, c, s, n, t); }, 3.0 * 4 * n, reps);
    Stat cpn = time_bandwidth([&] { copy_nt(c, a, n, t); }, 2.0 * 4 * n, reps);
    Stat trn = time_bandwidth([&] { triad_nt(a, b, c, s, n, t); }, 3.0 * 4 * n, reps);
#ifdef __AVX512F__
    Stat f512 = time_fma<W512>(t, 15, &sink);
#else
    Stat f512;
#endif
    Stat f256 = time_fma<W256>(t, 15, &sink);
    Stat peak = f512.best > 0 ? f512 : f256;
    std::printf("%s\n    \"%d\": {\"copy_gbs\": %.1f, \"copy_gbs_median\": %.1f, "
                "\"triad_gbs\": %.1f, \"triad_gbs_median\": %.1f, "
                "\"copy_nt_gbs\": %.1f, \"triad_nt_gbs\": %.1f, "
                "\"fma_gflops\": %.1f, \"fma_gflops_median\": %.1f, "
                "\"fma512_gflops\": %.1f, \"fma256_gflops\": %.1f}",
                ti ? "," : "", t, cp.best, cp.median, tr.best, tr.median, cpn.best, trn.best,
                peak.best, peak.median, f512.best, f256.best);
    std::fflush(stdout);
  }
  // The checksum keeps the compiler from dropping the work; it is not a result.
  std::printf("\n  },\n  \"checksum\": %.3g\n}\n",
              static_cast<double>(sink) + a[n / 2] + c[n / 3]);
  std::free(a);
  std::free(b);
  std::free(c);
  return 0;
}
