// A constant B packed once (prepack_matmul_b) and read by the float GEMM: identical results to
// packing per call (same tiles, same order: bitwise), right against float64 for odd sizes, several
// K and N blocks, strided (transposed) B, 1 and 2 threads, both tile families (NEF_CPU_TARGET),
// and a packed B that does not apply (other data, other layout) falling back to packing per call.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernels/gemm.h"
#include "common/session.h"
#include "test_util.h"

namespace nef {
namespace {

using backend::cpu::GemmTileHook;
using backend::cpu::kPrepackMaxRows;
using backend::cpu::matmul_float_with_hook;
using backend::cpu::matmul_scratch_bytes;
using backend::cpu::prepack_matmul_b;

// Sets NEF_CPU_TARGET (or unsets it for "") for the scope, restoring what was there.
class TargetScope {
 public:
  explicit TargetScope(const std::string& v) {
    if (const char* old = std::getenv("NEF_CPU_TARGET")) old_ = old, had_ = true;
    if (v.empty()) unsetenv("NEF_CPU_TARGET");
    else setenv("NEF_CPU_TARGET", v.c_str(), 1);
  }
  ~TargetScope() {
    if (had_) setenv("NEF_CPU_TARGET", old_.c_str(), 1);
    else unsetenv("NEF_CPU_TARGET");
  }

 private:
  std::string old_;
  bool had_ = false;
};

class ThreadsScope {
 public:
  explicit ThreadsScope(int n) : old_(current_session().threads()) {
    current_session().set_threads(n);
  }
  ~ThreadsScope() { current_session().set_threads(old_); }

 private:
  int old_;
};

// a @ b into a fresh output; `hook` adds 0.5 to every finished tile (as an epilogue would), and
// counts the elements it saw.
Array product(const Array& a, const Array& b, const backend::Prepared* packed,
              int64_t* hooked = nullptr) {
  Shape os{a.shape[0], b.shape[1]};
  Array out = Array::empty(os, a.dtype);
  Array scratch = Array::empty({matmul_scratch_bytes(a.shape, b.shape, a.dtype)}, DType::UInt8);
  int64_t seen = 0;
  std::mutex mu;
  GemmTileHook hook = [&](int64_t offset, int64_t rows, int64_t cols, int64_t ld) {
    dispatch_dtype(out.dtype, [&]<typename T>() {
      if constexpr (std::is_floating_point_v<T>) {
        T* o = out.data_as<T>() + offset;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c) o[r * ld + c] += T(0.5);
      }
    });
    std::lock_guard<std::mutex> lock(mu);
    seen += rows * cols;
  };
  matmul_float_with_hook(a, b, out, hook, scratch, true, packed);
  if (hooked) *hooked = seen;
  return out;
}

// float64 a @ b + 0.5 over any strides.
std::vector<double> reference(const Array& a, const Array& b) {
  const int64_t M = a.shape[0], K = a.shape[1], N = b.shape[1];
  std::vector<double> r(size_t(M * N));
  dispatch_dtype(a.dtype, [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T>) {
      const T* A = static_cast<const T*>(a.data());
      const T* B = static_cast<const T*>(b.data());
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k)
            s += double(A[i * a.strides[0] + k * a.strides[1]]) *
                 double(B[k * b.strides[0] + j * b.strides[1]]);
          r[size_t(i * N + j)] = s + 0.5;
        }
    }
  });
  return r;
}

void expect_close(const Array& got, const std::vector<double>& want, int64_t K,
                  const std::string& what) {
  std::vector<double> g = test::to_doubles(got);
  ASSERT_EQ(g.size(), want.size()) << what;
  // Inputs in [-2, 2): the float32 rounding grows with sqrt(K) at most like K * 4 * eps.
  const double tol = (got.dtype == DType::Float32 ? 6e-7 : 1e-15) * 4.0 * double(K) + 1e-6;
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], want[i], tol) << what << " at " << i;
}

bool same_bytes(const Array& x, const Array& y) {
  return x.nbytes() == y.nbytes() && std::memcmp(x.data(), y.data(), x.nbytes()) == 0;
}

struct Case {
  int64_t M, K, N;
};

// Odd K and N (not multiples of NR or kKC), K > kKC = 512 and N > kNC = 3072 (several panels).
const Case kCases[] = {{1, 257, 33},   {38, 1000, 3073}, {7, 256, 16},
                       {128, 384, 96}, {3, 5, 1},        {5, 1025, 40}};

TEST(GemmPrepack, PackedMatchesPerCallPackingBitwiseAndFloat64) {
  std::mt19937_64 rng(91);
  for (const char* target : {"", "avx2"})  // both tile families (NR 32 / 16 floats)
    for (DType t : {DType::Float32, DType::Float64})
      for (int threads : {1, 2})
        for (const Case& c : kCases) {
          TargetScope tg(target);
          ThreadsScope ts(threads);
          Array a = test::random_array({c.M, c.K}, t, rng);
          Array b = test::random_array({c.K, c.N}, t, rng);
          const std::string what = str(dtype_name(t), " ", c.M, "x", c.K, "x", c.N, " threads ",
                                       threads, " target '", target, "'");
          auto pk = prepack_matmul_b(b, t, c.M);
          ASSERT_TRUE(pk) << what;
          const int64_t before = counters().gemm_prepacked.load();
          const int64_t fb = counters().gemm_prepack_fallbacks.load();
          int64_t hooked = 0;
          Array packed = product(a, b, pk.get(), &hooked);
          EXPECT_EQ(counters().gemm_prepacked.load(), before + 1) << what;
          EXPECT_EQ(counters().gemm_prepack_fallbacks.load(), fb) << what;
          EXPECT_EQ(hooked, c.M * c.N) << what;  // every tile handed over exactly once
          Array plain = product(a, b, nullptr);
          EXPECT_TRUE(same_bytes(packed, plain)) << what;
          expect_close(packed, reference(a, b), c.K, what);
        }
}

TEST(GemmPrepack, TransposedConstantB) {
  // ONNX Gemm transB: B is a transposed view of an [N, K] constant (strides {1, K}).
  std::mt19937_64 rng(92);
  for (int threads : {1, 2}) {
    ThreadsScope ts(threads);
    const int64_t M = 19, K = 301, N = 3100;
    Array a = test::random_array({M, K}, DType::Float32, rng);
    Array bt = test::random_array({N, K}, DType::Float32, rng);
    Array b = bt;
    b.shape = {K, N};
    b.strides = {1, K};
    auto pk = prepack_matmul_b(b, DType::Float32, M);
    ASSERT_TRUE(pk);
    const int64_t before = counters().gemm_prepacked.load();
    Array packed = product(a, b, pk.get());
    EXPECT_EQ(counters().gemm_prepacked.load(), before + 1);
    EXPECT_TRUE(same_bytes(packed, product(a, b, nullptr)));
    expect_close(packed, reference(a, b), K, "transposed B");
  }
}

TEST(GemmPrepack, OtherDataFallsBack) {
  // A packed B only applies to the data it was packed from: a copy (other address), a
  // different view of the same data, or another shape pack per call instead.
  std::mt19937_64 rng(93);
  const int64_t M = 9, K = 300, N = 70;
  Array a = test::random_array({M, K}, DType::Float32, rng);
  Array b = test::random_array({K, N}, DType::Float32, rng);
  auto pk = prepack_matmul_b(b, DType::Float32, M);
  ASSERT_TRUE(pk);
  Array other = test::random_array({K, N}, DType::Float32, rng);
  Array sub = b;  // the first N - 1 columns: same data pointer, other shape
  sub.shape = {K, N - 1};
  for (const Array* bb : {&other, &sub}) {
    const int64_t fb = counters().gemm_prepack_fallbacks.load();
    const int64_t used = counters().gemm_prepacked.load();
    Array got = product(a, *bb, pk.get());
    EXPECT_EQ(counters().gemm_prepack_fallbacks.load(), fb + 1);
    EXPECT_EQ(counters().gemm_prepacked.load(), used);
    EXPECT_TRUE(same_bytes(got, product(a, *bb, nullptr)));
    expect_close(got, reference(a, *bb), K, "fallback");
  }
}

TEST(GemmPrepack, LayoutOfOtherTileFamilyFallsBack) {
  // Packed under one NEF_CPU_TARGET and run under another: on an AVX-512 machine the NR differs,
  // the packed panels are never read and B is packed per call; the results stay those of the
  // tiles that run. Without AVX-512 both settings run the AVX2 tiles and the packing applies.
  std::mt19937_64 rng(94);
  const int64_t M = 14, K = 520, N = 3080;
  Array a = test::random_array({M, K}, DType::Float32, rng);
  Array b = test::random_array({K, N}, DType::Float32, rng);
  const bool avx512 = __builtin_cpu_supports("avx512f");
  for (auto [pack_env, run_env] : {std::pair<std::string, std::string>{"avx2", ""}, {"", "avx2"}}) {
    std::shared_ptr<const backend::Prepared> pk;
    {
      TargetScope t(pack_env);
      pk = prepack_matmul_b(b, DType::Float32, M);
    }
    ASSERT_TRUE(pk);
    TargetScope t(run_env);
    const int64_t fb = counters().gemm_prepack_fallbacks.load();
    const int64_t used = counters().gemm_prepacked.load();
    Array got = product(a, b, pk.get());
    EXPECT_EQ(counters().gemm_prepack_fallbacks.load(), fb + (avx512 ? 1 : 0));
    EXPECT_EQ(counters().gemm_prepacked.load(), used + (avx512 ? 0 : 1));
    EXPECT_TRUE(same_bytes(got, product(a, b, nullptr)));
    expect_close(got, reference(a, b), K, "pack " + pack_env + " run " + run_env);
  }
}

TEST(GemmPrepack, AppliesOnlyWherePackingPays) {
  std::mt19937_64 rng(95);
  Array b = test::random_array({64, 48}, DType::Float32, rng);
  EXPECT_TRUE(prepack_matmul_b(b, DType::Float32, kPrepackMaxRows));
  EXPECT_FALSE(prepack_matmul_b(b, DType::Float32, kPrepackMaxRows + 1));  // packing is cheap
  EXPECT_FALSE(prepack_matmul_b(b, DType::Float64, 8));                    // other dtype
  EXPECT_FALSE(prepack_matmul_b(test::random_array({2, 64, 48}, DType::Float32, rng),
                                DType::Float32, 8));  // batched B
  EXPECT_FALSE(
      prepack_matmul_b(test::random_array({64, 48}, DType::Float16, rng), DType::Float16, 8));
  EXPECT_FALSE(
      prepack_matmul_b(test::random_array({0, 48}, DType::Float32, rng), DType::Float32, 8));
}

}  // namespace
}  // namespace nef
