// The hand-written OpenCL kernels (matmul, matmul_epilogue, row ops, reductions, attention)
// against the CPU: each case builds the op with the C++ API, runs it forced onto OpenCL and on the
// CPU, checks that the plan put the op on opencl:0 (or, for what the kernels do not support, on
// the CPU), and compares by a normalized error per dtype (max |opencl - cpu| / max |cpu|; NaN
// and inf positions must agree exactly). Fresh random inputs every run (the seed is printed; set
// NEF_TEST_SEED to replay), odd sizes, batch broadcasts, transposed and strided views (from the
// host and produced on the device), empty tensors, float32 and float64. Skipped without an
// OpenCL device.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "common/dispatch.h"
#include "nef/tensor.h"

namespace nef {
namespace {

using Build = std::function<Tensor()>;

std::map<std::string, double>& max_errors() {
  static std::map<std::string, double> m;
  return m;
}

uint64_t seed() {
  static const uint64_t s = [] {
    const char* env = std::getenv("NEF_TEST_SEED");
    uint64_t v = env ? std::strtoull(env, nullptr, 10)
                     : uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    std::cout << "[opencl kernels] NEF_TEST_SEED=" << v << "\n";
    return v;
  }();
  return s;
}

class OpenclKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!backend::find_device("opencl:0")) GTEST_SKIP() << "no OpenCL device";
    rng_.seed(seed() ^ std::hash<std::string>{}(
                           ::testing::UnitTest::GetInstance()->current_test_info()->name()));
  }
  void TearDown() override {
    set_devices({});
    set_profiling(false);
  }

  // Prints the largest normalized error met per op and dtype (the suite's tolerances at work).
  static void TearDownTestSuite() {
    for (const auto& [key, err] : max_errors())
      std::cout << "[opencl kernels] max normalized error " << key << ": " << err << "\n";
    max_errors().clear();
  }

  static bool fp64() { return backend::find_device("opencl:0")->info().fp64; }

  // Uniform values in [lo, hi) (floats), 0/1 (bool).
  Array random(const Shape& shape, DType t = DType::Float32, double lo = -1, double hi = 1) {
    Array a = Array::empty(shape, t);
    std::uniform_real_distribution<double> u(lo, hi);
    dispatch_dtype(t, [&]<typename T>() {
      T* p = a.data_as<T>();
      for (int64_t i = 0; i < a.numel(); ++i) {
        if constexpr (std::is_same_v<T, bool>) p[i] = (rng_() & 1) != 0;
        else p[i] = store_as<T>(compute_t<T>(u(rng_)));
      }
    });
    return a;
  }
  // Small integers as floats: many exact ties (argmax's first occurrence, max of equals).
  Array integers(const Shape& shape, DType t, int lo, int hi) {
    Array a = Array::empty(shape, t);
    std::uniform_int_distribution<int> u(lo, hi);
    dispatch_dtype(t, [&]<typename T>() {
      for (int64_t i = 0; i < a.numel(); ++i)
        a.data_as<T>()[i] = store_as<T>(compute_t<T>(u(rng_)));
    });
    return a;
  }

  std::mt19937_64 rng_;
};

// Sets element i (flat, of a contiguous array) to v.
void set(Array& a, int64_t i, double v) {
  dispatch_dtype(a.dtype, [&]<typename T>() { a.data_as<T>()[i] = store_as<T>(compute_t<T>(v)); });
}

// A transposed view of the last two dims (no copy).
Array t_view(const Array& a) {
  Array v = a;
  int r = a.rank();
  std::swap(v.shape[r - 1], v.shape[r - 2]);
  std::swap(v.strides[r - 1], v.strides[r - 2]);
  return v;
}

std::vector<double> values(const Array& a) {
  Array c = a.contiguous();
  std::vector<double> v(size_t(c.numel()));
  dispatch_dtype(c.dtype, [&]<typename T>() {
    for (size_t i = 0; i < v.size(); ++i) v[i] = double(load_as(c.data_as<T>()[i]));
  });
  return v;
}

struct Result {
  Array out;
  RunProfile profile;
};

// Builds and runs a fresh graph with the given devices ({"opencl"}: everything OpenCL supports
// there, the rest on the CPU), profiling its kernels.
Result run_with(const std::vector<std::string>& devices, const Build& build) {
  set_devices(devices);
  set_profiling(true);
  const int64_t fallbacks = stats()["device_fallbacks"];
  Tensor t = build();
  Result r;
  r.out = t.array().contiguous();
  r.profile = last_profile();
  // A kernel that failed to build or run is rerouted to the CPU: right results, but a bug here.
  EXPECT_EQ(stats()["device_fallbacks"], fallbacks) << "a kernel fell back to the CPU";
  set_profiling(false);
  set_devices({});
  return r;
}

std::string devices_of(const RunProfile& p, const std::string& op) {
  std::string s;
  for (const KernelProfile& k : p.kernels)
    if (k.op == op) s += (s.empty() ? "" : ",") + k.device;
  return s;
}

std::string kernels_of(const RunProfile& p) {
  std::string s;
  for (const KernelProfile& k : p.kernels) s += k.op + "@" + k.device + "(" + k.kernel + ") ";
  return s;
}

double tolerance(DType t) { return t == DType::Float64 ? 1e-12 : 1e-5; }

// max |a - b| / max |b| over finite values; NaN and inf positions must agree. Returns the error.
double normalized_error(const Array& got, const Array& want, const std::string& what) {
  EXPECT_EQ(got.shape, want.shape) << what;
  EXPECT_EQ(got.dtype, want.dtype) << what;
  if (got.shape != want.shape) return INFINITY;
  std::vector<double> g = values(got), w = values(want);
  double scale = 0, err = 0;
  for (size_t i = 0; i < w.size(); ++i)
    if (std::isfinite(w[i])) scale = std::max(scale, std::fabs(w[i]));
  int mismatches = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    bool special = !std::isfinite(w[i]) || !std::isfinite(g[i]);
    if (special) {
      bool same = (std::isnan(w[i]) && std::isnan(g[i])) || w[i] == g[i];
      if (!same && mismatches++ < 5)
        ADD_FAILURE() << what << ": element " << i << " is " << g[i] << " on OpenCL, " << w[i]
                      << " on the CPU";
      continue;
    }
    err = std::max(err, std::fabs(g[i] - w[i]) / std::max(scale, 1e-300));
  }
  return err;
}

// Runs `build` on OpenCL and on the CPU; `op` must land on `expect_device` in the OpenCL run.
// Returns the normalized error, and records it (under `key`, default the op) for the summary.
double compare(const Build& build, const std::string& op, const std::string& what,
               const std::string& expect_device = "opencl:0", const std::string& key = "") {
  Result cl = run_with({"opencl"}, build);
  Result cpu = run_with({"cpu"}, build);
  // An empty result needs no kernel (the plan may drop it).
  if (cpu.out.numel() > 0) {
    EXPECT_EQ(devices_of(cl.profile, op), expect_device)
        << what << ": kernels " << kernels_of(cl.profile);
  }
  EXPECT_EQ(devices_of(cpu.profile, op).find("opencl"), std::string::npos) << what;
  double err = normalized_error(cl.out, cpu.out, what);
  const double tol = is_floating(cpu.out.dtype) ? tolerance(cpu.out.dtype) : 0;
  EXPECT_LE(err, tol) << what;
  if (expect_device != "cpu") {
    double& e = max_errors()[(key.empty() ? op : key) + " " + dtype_name(cpu.out.dtype)];
    e = std::max(e, err);
  }
  return err;
}

// An operand as the kernel may see it: straight from the host, a host view, or produced on the
// device by an elementwise op and then viewed there (the kernel reads the device view's strides).
enum class Source { Host, Device };
Tensor on(const Array& a, Source s) {
  Tensor t = from_array(a);
  return s == Source::Host ? t : t * 1.0 + t * 0.5;  // device-side elementwise work
}
Tensor on_t(const Array& a, Source s) {  // transposed (last two dims), as a view
  if (s == Source::Host) return from_array(t_view(a));
  return transpose(on(a, s), [&] {
    std::vector<int64_t> perm(a.rank());
    for (int d = 0; d < a.rank(); ++d) perm[d] = d;
    std::swap(perm[a.rank() - 1], perm[a.rank() - 2]);
    return perm;
  }());
}

std::vector<DType> float_types() {
  std::vector<DType> t = {DType::Float32};
  if (backend::find_device("opencl:0")->info().fp64) t.push_back(DType::Float64);
  return t;
}

std::string shape_s(const Shape& s) { return shape_str(s); }

// float64 runs every other case of the long tables (the kernels differ from float32's in types
// only; each distinct kernel costs a device compile on a cold cache).
bool thin(DType t, size_t i) { return t == DType::Float64 && i % 2 == 1; }
// Every third case of a table also runs on a device-produced input (the views tests run both).
std::vector<Source> sources(size_t i) {
  if (i % 3 == 2) return {Source::Host, Source::Device};
  return {Source::Host};
}

// ---- matmul ---------------------------------------------------------------------------------

TEST_F(OpenclKernels, MatmulShapesAndBroadcasts) {
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {{1}, {1}},
      {{7}, {7}},
      {{7}, {7, 5}},
      {{7, 5}, {5}},
      {{1, 1}, {1, 1}},
      {{33, 17}, {17, 65}},
      {{130, 70}, {70, 129}},
      {{64, 64}, {64, 64}},
      {{3, 7}, {2, 1, 7, 9}},
      {{2, 3, 33, 40}, {40, 31}},
      {{2, 1, 70, 50}, {3, 50, 66}},
      {{5, 33}, {4, 33, 2}},
      {{257, 3}, {3, 200}},
      {{100, 300}, {300, 1}},
      {{1, 300}, {300, 100}},
  };
  for (DType t : float_types())
    for (const Case& c : cases)
      if (!thin(t, size_t(&c - cases.data())))
        for (Source s : sources(size_t(&c - cases.data()))) {
          Array a = random(c.a, t), b = random(c.b, t);
          std::string what = str("matmul ", shape_s(c.a), " @ ", shape_s(c.b), " ", dtype_name(t),
                                 s == Source::Host ? " host" : " device");
          compare([&] { return matmul(on(a, s), on(b, s)); }, "matmul", what);
        }
}

TEST_F(OpenclKernels, MatmulTransposedAndStridedViews) {
  for (DType t : float_types())
    for (Source s : {Source::Host, Source::Device}) {
      const char* where = s == Source::Host ? " host" : " device";
      Array a = random({70, 130}, t), b = random({97, 70}, t);  // used transposed
      compare([&] { return matmul(on_t(a, s), on_t(b, s)); }, "matmul",
              str("matmul a.T @ b.T ", dtype_name(t), where));
      Array c = random({130, 70}, t);
      compare([&] { return matmul(on(c, s), on_t(b, s)); }, "matmul",
              str("matmul a @ b.T ", dtype_name(t), where));
      Array bt = random({3, 40, 33}, t), at = random({2, 3, 40, 21}, t);
      compare([&] { return matmul(on_t(at, s), on(bt, s)); }, "matmul",
              str("batched a.T @ b ", dtype_name(t), where));
      // Every other row and a reversed column order (slices with steps).
      Array big = random({140, 90}, t), w = random({45, 33}, t);
      compare(
          [&] {
            Tensor x = slice(on(big, s), {0, 89}, {140, -91}, {2, -2});  // [70, 45]
            return matmul(x, on(w, s));
          },
          "matmul", str("matmul of a stepped, reversed slice ", dtype_name(t), where));
    }
}

TEST_F(OpenclKernels, MatmulEmpty) {
  for (DType t : float_types()) {
    for (auto [sa, sb] : std::vector<std::pair<Shape, Shape>>{{{0, 5}, {5, 3}},
                                                              {{4, 0}, {0, 3}},
                                                              {{0}, {0}},
                                                              {{2, 0, 7}, {7, 4}},
                                                              {{40, 0}, {0, 50}}}) {
      Array a = random(sa, t), b = random(sb, t);
      compare([&] { return matmul(from_array(a), from_array(b)); }, "matmul",
              str("matmul ", shape_s(sa), " @ ", shape_s(sb), " ", dtype_name(t)));
    }
  }
}

TEST_F(OpenclKernels, MatmulSpecialValues) {
  for (DType t : float_types()) {
    Array a = random({33, 40}, t), b = random({40, 35}, t);
    double inf = std::numeric_limits<double>::infinity();
    set(a, 5, NAN);
    set(a, 40 * 7 + 3, inf);
    set(b, 35 * 2 + 9, -inf);
    compare([&] { return matmul(from_array(a), from_array(b)); }, "matmul",
            str("matmul with NaN/inf ", dtype_name(t)));
  }
}

TEST_F(OpenclKernels, MatmulEpilogue) {
  for (DType t : float_types())
    for (Source s : {Source::Host, Source::Device}) {
      const char* where = s == Source::Host ? " host" : " device";
      Array x = random({67, 50}, t), w = random({50, 90}, t), bias = random({90}, t);
      Array res = random({90, 67}, t), col = random({67, 1}, t);  // res used transposed
      compare([&] { return matmul(from_array(x), on(w, s)) + from_array(bias); }, "matmul_epilogue",
              str("x@w + bias ", dtype_name(t), where));
      compare([&] { return gelu(matmul(on(x, s), from_array(w)) + on(bias, s)); },
              "matmul_epilogue", str("gelu(x@w + bias) ", dtype_name(t), where));
      compare(
          [&] {
            return on_t(res, s) +
                   tanh(matmul(from_array(x), from_array(w)) * 0.5 + from_array(col));
          },
          "matmul_epilogue", str("residual + tanh(x@w * 0.5 + col) ", dtype_name(t), where));
      // Small (the simple kernel), batched, 1-D.
      Array xb = random({3, 5, 7}, t), wb = random({7, 6}, t), bb = random({3, 1, 6}, t);
      compare([&] { return relu(matmul(from_array(xb), from_array(wb)) - from_array(bb)); },
              "matmul_epilogue", str("relu(batched x@w - b) ", dtype_name(t), where));
      Array v = random({50}, t), bv = random({90}, t);
      compare([&] { return matmul(from_array(v), from_array(w)) + from_array(bv); },
              "matmul_epilogue", str("v@w + b (1-D) ", dtype_name(t), where));
    }
  // Programs with selects and helpers (mod with negative divisors, clip, maximum with NaN, where
  // on a bool operand), lane by lane in the vector store and element by element at the edges;
  // the whole chain must be one kernel.
  for (DType t : float_types()) {
    Array x = random({37, 20}, t), w = random({20, 70}, t), d = random({70}, t, 0.3, 1.5);
    Array lo = random({70}, t, -2, -0.5), hi = random({1, 70}, t, 0.5, 2), nan = random({70}, t);
    Array cond = random({37, 1}, DType::Bool), other = random({37, 70}, t);
    for (int64_t j = 0; j < 70; j += 3) set(d, j, -double(j + 1) / 50);  // negative divisors
    set(nan, 5, NAN);
    const std::vector<std::pair<std::string, Build>> chains = {
        {"abs(clip(mod(x@w, d), lo, hi))",
         [&] {
           Tensor y = mod(matmul(from_array(x), from_array(w)), from_array(d));
           return abs(clip(y, from_array(lo), from_array(hi)));
         }},
        {"sigmoid(where(cond, maximum(x@w, nan), other))", [&] {
           Tensor y = maximum(matmul(from_array(x), from_array(w)), from_array(nan));
           return sigmoid(where(from_array(cond), y, from_array(other)));
         }}};
    for (const auto& [name, build] : chains) {
      compare(build, "matmul_epilogue", str(name, " ", dtype_name(t)));
      int kernels = 0;
      for (const KernelProfile& k : run_with({"opencl"}, build).profile.kernels)
        kernels += k.op != "copy";
      EXPECT_EQ(kernels, 1) << name << ": the chain is not one matmul_epilogue";
    }
  }
  // An integer and a bool extra operand are converted like the CPU converts them.
  Array x = random({40, 30}), w = random({30, 50});
  Array iv = integers({50}, DType::Int8, -3, 3);
  compare([&] { return matmul(from_array(x), from_array(w)) * from_array(iv); }, "matmul_epilogue",
          "x@w * int8 column scale");
}

// ---- row ops --------------------------------------------------------------------------------

TEST_F(OpenclKernels, SoftmaxAndLogSoftmax) {
  struct Case {
    Shape shape;
    int64_t axis;
  };
  const std::vector<Case> cases = {
      {{1}, -1},       {{7}, 0},         {{33, 130}, -1},   {{4, 1024}, 1}, {{130, 7}, 0},
      {{3, 65, 9}, 1}, {{2, 300, 5}, 1}, {{5, 3, 257}, -1}, {{1000, 3}, 0}, {{0, 5}, 1},
      {{5, 0}, 1},     {{}, 0},          {{3, 20001}, -1},  {{33, 48}, 0}};
  for (DType t : float_types())
    for (const Case& c : cases)
      if (!thin(t, size_t(&c - cases.data())))
        for (bool log : {false, true})
          for (Source s : sources(size_t(&c - cases.data()))) {
            Array x = random(c.shape, t, -5, 5);
            std::string what =
                str(log ? "log_softmax " : "softmax ", shape_s(c.shape), " axis ", c.axis, " ",
                    dtype_name(t), s == Source::Host ? " host" : " device");
            compare([&] { return log ? log_softmax(on(x, s), c.axis) : softmax(on(x, s), c.axis); },
                    log ? "log_softmax" : "softmax", what);
          }
  // Transposed input: the softmax axis is strided.
  for (DType t : float_types()) {
    Array x = random({300, 20}, t, -3, 3);
    for (int64_t axis : {0, 1})
      for (Source s : {Source::Host, Source::Device})
        compare([&] { return softmax(on_t(x, s), axis); }, "softmax",
                str("softmax of a transposed view, axis ", axis, " ", dtype_name(t)));
  }
}

TEST_F(OpenclKernels, SoftmaxSpecialValues) {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType t : float_types())
    for (int64_t n : {5, 200, 9001}) {  // scalar rows, vector rows, a work group per row
      Array x = random({6, n}, t, -3, 3);
      for (int64_t j = 0; j < n; ++j) set(x, 0 * n + j, -inf);  // all -inf: NaN row
      set(x, 1 * n + 2, NAN);                                   // NaN: NaN row
      set(x, 2 * n + 1, inf);                                   // +inf: NaN row
      set(x, 3 * n + 0, -inf);                                  // one -inf: zero there
      set(x, 4 * n + 3, 1e30);                                  // huge: one-hot
      for (bool log : {false, true}) {
        compare([&] { return log ? log_softmax(from_array(x)) : softmax(from_array(x)); },
                log ? "log_softmax" : "softmax",
                str(log ? "log_softmax" : "softmax", " special values n=", n, " ", dtype_name(t)));
        // Along axis 0 (strided rows, neighbouring rows sharing vectors), the values meet
        // other specials.
        compare([&] { return log ? log_softmax(from_array(x), 0) : softmax(from_array(x), 0); },
                log ? "log_softmax" : "softmax",
                str(log ? "log_softmax" : "softmax", " special values along axis 0, n=", n, " ",
                    dtype_name(t)));
      }
    }
}

TEST_F(OpenclKernels, LayernormAndRmsnorm) {
  struct Case {
    Shape x, w, b;
    int64_t axis;
  };
  const std::vector<Case> cases = {
      {{33, 130}, {130}, {130}, -1}, {{7}, {7}, {}, -1},          {{5, 7, 33}, {33}, {7, 33}, -2},
      {{4, 1000}, {}, {}, -1},       {{3, 9, 65}, {1}, {65}, -1}, {{2, 3, 4, 5}, {3, 1, 5}, {}, 1},
      {{0, 8}, {8}, {8}, -1},        {{6, 1}, {1}, {1}, -1},      {{}, {}, {}, 0},
      {{2, 10007}, {10007}, {1}, -1}};
  for (DType t : float_types())
    for (const Case& c : cases)
      if (!thin(t, size_t(&c - cases.data())))
        for (bool rms : {false, true})
          for (Source s : sources(size_t(&c - cases.data()))) {
            Array x = random(c.x, t, -3, 3);
            Array w = c.w.empty() ? Array() : random(c.w, t, 0.5, 1.5);
            Array b = c.b.empty() ? Array() : random(c.b, t);
            std::string what = str(rms ? "rmsnorm " : "layernorm ", shape_s(c.x), " w ",
                                   shape_s(c.w), " b ", shape_s(c.b), " axis ", c.axis, " ",
                                   dtype_name(t), s == Source::Host ? " host" : " device");
            const bool has_w = !c.w.empty(), has_b = !c.b.empty() && !rms;
            compare(
                [&] {
                  Tensor tw = has_w ? from_array(w) : Tensor();
                  if (rms) return rmsnorm(on(x, s), tw, 1e-6, c.axis);
                  return layernorm(on(x, s), tw, has_b ? from_array(b) : Tensor(), 1e-5, c.axis);
                },
                rms ? "rmsnorm" : "layernorm", what);
          }
}

TEST_F(OpenclKernels, NormMixedDtypesStridesAndSpecials) {
  if (!fp64()) GTEST_SKIP() << "no fp64";
  // float32 x with a float64 weight: a float64 result computed in double.
  Array x = random({17, 66}), w = random({66}, DType::Float64);
  compare([&] { return layernorm(from_array(x), from_array(w)); }, "layernorm",
          "layernorm f32 x, f64 weight");
  // A transposed x and a large eps.
  Array xt = random({90, 40}, DType::Float32, -2, 2);
  for (Source s : {Source::Host, Source::Device})
    compare([&] { return rmsnorm(on_t(xt, s), Tensor(), 0.5); }, "rmsnorm",
            "rmsnorm of a transposed view, eps 0.5");
  // A transposed x with weight and bias: vectors of neighbouring rows.
  Array xt2 = random({64, 33}), w2 = random({64}), b2 = random({64});
  compare([&] { return layernorm(from_array(t_view(xt2)), from_array(w2), from_array(b2)); },
          "layernorm", "layernorm of a transposed view with weight and bias");
  // inf and NaN rows; a constant row (zero variance: eps keeps it finite).
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t n : {6, 300, 9001}) {  // scalar rows, vector rows, a work group per row
    Array y = random({4, n}, DType::Float32);
    float* p = y.data_as<float>();
    p[0 * n + 1] = float(inf);
    p[1 * n + 2] = NAN;
    for (int64_t j = 0; j < n; ++j) p[2 * n + j] = 3.0f;
    for (bool rms : {false, true})
      compare([&] { return rms ? rmsnorm(from_array(y)) : layernorm(from_array(y)); },
              rms ? "rmsnorm" : "layernorm", str(rms ? "rmsnorm" : "layernorm", " specials n=", n));
  }
}

// ---- reductions -----------------------------------------------------------------------------

TEST_F(OpenclKernels, Reductions) {
  struct Case {
    Shape shape;
    Axes axes;
  };
  const std::vector<Case> cases = {{{7}, std::nullopt},
                                   {{33, 130}, std::vector<int64_t>{1}},
                                   {{33, 130}, std::vector<int64_t>{0}},
                                   {{3, 5, 7}, std::vector<int64_t>{0, 2}},
                                   {{3, 5, 7}, std::nullopt},
                                   {{4000}, std::nullopt},
                                   {{4, 3000}, std::vector<int64_t>{-1}},
                                   {{700, 3, 2}, std::vector<int64_t>{0, 2}},
                                   {{2, 3}, std::vector<int64_t>{}},
                                   {{}, std::nullopt},
                                   {{1, 1, 9}, std::vector<int64_t>{0, 1}},
                                   {{20011}, std::nullopt},  // a group per output
                                   {{3, 17003}, std::vector<int64_t>{1}},
                                   {{64, 48}, std::vector<int64_t>{0}}};
  using Fn = Tensor (*)(const Tensor&, Axes, bool);
  const std::vector<std::pair<std::string, Fn>> ops = {
      {"sum", sum}, {"mean", mean}, {"prod", prod}, {"max", max}, {"min", min}};
  for (DType t : float_types())
    for (const Case& c : cases)
      if (!thin(t, size_t(&c - cases.data())))
        for (const auto& [name, fn] : ops)
          for (bool keep : {false, true})
            for (Source s : sources(size_t(&c - cases.data()))) {
              if (!fp64() && name != "max" && name != "min") continue;  // double accumulation
              // mean, prod and min share sum's and max's code: every third case.
              if ((&c - cases.data()) % 3 != 0 && name != "sum" && name != "max") continue;
              // prod: values near 1 so long products stay finite.
              Array x = name == "prod" ? random(c.shape, t, 0.9, 1.1) : random(c.shape, t);
              std::string what =
                  str(name, " ", shape_s(c.shape), " axes ",
                      c.axes ? shape_str(*c.axes) : std::string("all"), keep ? " keepdims " : " ",
                      dtype_name(t), s == Source::Host ? " host" : " device");
              compare([&] { return fn(on(x, s), c.axes, keep); }, name, what);
            }
}

TEST_F(OpenclKernels, ReductionsOfViewsEmptiesAndSpecials) {
  for (DType t : float_types()) {
    Array x = random({300, 40}, t);
    for (Source s : {Source::Host, Source::Device})
      for (int64_t axis : {0, 1}) {
        compare([&] { return max(on_t(x, s), std::vector<int64_t>{axis}); }, "max",
                str("max of a transposed view, axis ", axis, " ", dtype_name(t)));
        if (fp64())
          compare([&] { return sum(on_t(x, s), std::vector<int64_t>{axis}, true); }, "sum",
                  str("sum of a transposed view, axis ", axis, " ", dtype_name(t)));
      }
    if (fp64()) {
      // Empty reduced extents: sum 0, prod 1, mean NaN.
      Array e = random({0, 5}, t);
      for (auto [name, fn] :
           std::vector<std::pair<std::string, Tensor (*)(const Tensor&, Axes, bool)>>{
               {"sum", sum}, {"prod", prod}, {"mean", mean}})
        compare([&] { return fn(from_array(e), std::vector<int64_t>{0}, false); }, name,
                str(name, " over an empty axis ", dtype_name(t)));
      Array e2 = random({5, 0}, t);
      compare([&] { return sum(from_array(e2), std::vector<int64_t>{0}, false); }, "sum",
              "sum into an empty output");
    }
    // NaN wins max/min (per item and per group); inf stays.
    for (int64_t n : {9, 2000, 20011}) {
      Array y = random({3, n}, t);
      set(y, 0 * n + n / 2, NAN);
      set(y, 1 * n + 1, INFINITY);
      set(y, 2 * n + n - 1, -INFINITY);
      for (auto [name, fn] :
           std::vector<std::pair<std::string, Tensor (*)(const Tensor&, Axes, bool)>>{
               {"max", max}, {"min", min}, {"sum", sum}})
        if (fp64() || name != "sum")
          compare([&] { return fn(from_array(y), std::vector<int64_t>{1}, false); }, name,
                  str(name, " with NaN/inf n=", n, " ", dtype_name(t)));
    }
  }
}

TEST_F(OpenclKernels, ArgmaxArgmin) {
  using Fn = Tensor (*)(const Tensor&, std::optional<int64_t>, bool);
  const std::vector<std::pair<std::string, Fn>> ops = {{"argmax", argmax}, {"argmin", argmin}};
  struct Case {
    Shape shape;
    std::optional<int64_t> axis;
  };
  const std::vector<Case> cases = {{{7}, 0},
                                   {{33, 130}, 1},
                                   {{33, 130}, 0},
                                   {{3, 5, 7}, 1},
                                   {{3000}, std::nullopt},
                                   {{5, 4000}, -1},
                                   {{4, 5, 6}, std::nullopt},
                                   {{}, std::nullopt},
                                   {{2, 20011}, 1},
                                   {{40, 64}, 0}};
  for (DType t : float_types())
    for (const Case& c : cases)
      if (!thin(t, size_t(&c - cases.data())))
        for (const auto& [name, fn] : ops)
          for (bool keep : {false, true})
            for (bool ties : {false, true}) {
              // Small integers: many ties, the first occurrence must win.
              Array x = ties ? integers(c.shape, t, -2, 2) : random(c.shape, t);
              std::string what = str(name, " ", shape_s(c.shape), " axis ",
                                     c.axis ? std::to_string(*c.axis) : std::string("none"),
                                     keep ? " keepdims" : "", ties ? " ties " : " ", dtype_name(t));
              compare([&] { return fn(from_array(x), c.axis, keep); }, name, what);
            }
  // The first NaN wins; a transposed view.
  for (DType t : float_types())
    for (int64_t n : {9, 3000, 20011}) {
      Array y = integers({2, n}, t, 0, 3);
      set(y, n / 3, NAN);
      set(y, n / 2, NAN);
      for (const auto& [name, fn] : ops) {
        compare([&] { return fn(from_array(y), 1, false); }, name,
                str(name, " with NaN n=", n, " ", dtype_name(t)));
        compare([&] { return fn(from_array(t_view(y)), 0, false); }, name,
                str(name, " of a transposed view with NaN n=", n, " ", dtype_name(t)));
      }
    }
}

// ---- attention ------------------------------------------------------------------------------

TEST_F(OpenclKernels, Attention) {
  struct Case {
    Shape q, k, v, mask;
    DType mask_t;
    bool causal;
    std::optional<double> scale;
  };
  const DType B = DType::Bool, F = DType::Float32;
  const std::vector<Case> cases = {
      {{1, 2, 7, 16}, {1, 2, 33, 16}, {1, 2, 33, 24}, {}, F, false, std::nullopt},
      {{2, 3, 65, 8}, {1, 3, 65, 8}, {2, 1, 65, 8}, {}, F, true, std::nullopt},  // broadcast
      {{3, 40, 32}, {3, 17, 32}, {3, 17, 5}, {40, 17}, B, false, 0.3},           // bool mask
      {{2, 4, 9, 16}, {2, 4, 30, 16}, {2, 4, 30, 16}, {2, 1, 1, 30}, F, true, std::nullopt},
      {{1, 30, 4}, {1, 9, 4}, {1, 9, 3}, {}, F, true, std::nullopt},               // Lq > Lk
      {{1, 1, 64}, {1, 129, 64}, {1, 129, 64}, {1, 129}, B, false, std::nullopt},  // decoding
      {{4, 1, 1}, {4, 1, 1}, {4, 1, 1}, {}, F, false, std::nullopt},
      {{2, 5, 0}, {2, 6, 0}, {2, 6, 3}, {}, F, false, std::nullopt},  // D = 0
      {{2, 5, 4}, {2, 0, 4}, {2, 0, 3}, {}, F, false, std::nullopt},  // Lk = 0
      {{0, 5, 4}, {0, 6, 4}, {0, 6, 3}, {}, F, false, std::nullopt},  // empty
      // The largest head dims the kernels take, in both forms.
      {{1, 17, 256}, {1, 30, 256}, {1, 30, 256}, {}, F, true, std::nullopt},
      {{2, 3, 256}, {2, 40, 256}, {2, 40, 200}, {3, 40}, B, false, std::nullopt},
  };
  for (DType t : float_types())
    for (const Case& c : cases)
      if (!thin(t, size_t(&c - cases.data())))
        for (Source s : sources(size_t(&c - cases.data()))) {
          Array q = random(c.q, t), k = random(c.k, t), v = random(c.v, t);
          DType mt = c.mask_t == B ? B : t;
          Array m = c.mask.empty() ? Array() : random(c.mask, mt, -2, 2);
          std::string what =
              str("attention q", shape_s(c.q), " k", shape_s(c.k), " v", shape_s(c.v), " mask",
                  shape_s(c.mask), c.causal ? " causal " : " ", dtype_name(t),
                  s == Source::Host ? " host" : " device");
          compare(
              [&] {
                return attention(on(q, s), on(k, s), on(v, s),
                                 c.mask.empty() ? Tensor() : from_array(m), c.scale, c.causal);
              },
              "attention", what);
        }
}

TEST_F(OpenclKernels, AttentionViewsEmptyRowsAndSpecials) {
  for (DType t : float_types()) {
    // K given transposed ([.., D, Lk] viewed back as [.., Lk, D]), V sliced with a step.
    Array q = random({2, 13, 8}, t), kt = random({2, 8, 21}, t), v2 = random({2, 42, 6}, t);
    for (Source s : {Source::Host, Source::Device})
      compare(
          [&] {
            Tensor v = slice(on(v2, s), {0, 0, 0}, {2, 42, 6}, {1, 2, 1});
            return attention(on(q, s), on_t(kt, s), v);
          },
          "attention", str("attention with k.T and a stepped v ", dtype_name(t)));
    // Fully masked rows: zeros, or NaN with empty_rows = "nan"; a NaN/+inf score: NaN row. Both
    // kernel forms: few query rows (lanes along the head dims) and many (lanes = rows); keys in
    // one block and in several.
    for (auto [lq, lk] : std::vector<std::pair<int64_t, int64_t>>{{6, 5}, {20, 37}}) {
      Array qq = random({1, lq, 4}, t), kk = random({1, lk, 4}, t), vv = random({1, lk, 3}, t);
      Array mb = random({lq, lk}, DType::Bool);
      for (int64_t j = 0; j < lk; ++j) mb.data_as<bool>()[1 * lk + j] = false;
      Array mf = random({lq, lk}, t);
      for (int64_t j = 0; j < lk; ++j) set(mf, 0 * lk + j, -INFINITY);
      set(mf, 2 * lk + 1, NAN);
      set(mf, 3 * lk + lk - 1, INFINITY);
      set(mf, 4 * lk + 0, -INFINITY);
      set(mf, 5 * lk + lk / 2, -INFINITY);
      for (const char* empty : {"zero", "nan"})
        for (const Array* m : {&mb, &mf}) {
          ir::Attrs a;
          a.set("empty_rows", std::string(empty));
          compare(
              [&] {
                return op("attention",
                          {from_array(qq), from_array(kk), from_array(vv), from_array(*m)}, a);
              },
              "attention",
              str("attention Lq=", lq, " Lk=", lk, " empty_rows=", empty,
                  m == &mb ? " bool" : " float", " mask ", dtype_name(t)));
        }
    }
    // Causal with Lq > Lk: the first rows see no key.
    Array q2 = random({1, 20, 4}, t), k2 = random({1, 3, 4}, t), v3 = random({1, 3, 2}, t);
    ir::Attrs a;
    a.set("causal", true);
    a.set("empty_rows", std::string("nan"));
    compare(
        [&] {
          return op("attention", {from_array(q2), from_array(k2), from_array(v3)}, a);
        },
        "attention", str("causal Lq > Lk, empty_rows=nan ", dtype_name(t)));
  }
}

// ---- a whole graph -----------------------------------------------------------------------------

// A transformer encoder block (pre-norm attention with a padding mask, a GELU MLP, residuals):
// every family in one graph, epilogues fused on the device, head splits as device views.
// ---- matmul_dynamic_int8 ----------------------------------------------------------------------
// The row quantization must agree code for code with the CPU's (its float quotients, rounding
// half to even): a single code off by one moves an output by ~1e-3 of its scale, far above the
// tolerance.

Tensor dynamic_int8(const Tensor& x, const Tensor& w, const Tensor& ws, const Tensor* bias,
                    const std::string& activation) {
  ir::Attrs attrs;
  if (!activation.empty()) attrs.set("activation", activation);
  std::vector<Tensor> in = {x, w, ws};
  if (bias) in.push_back(*bias);
  return op("matmul_dynamic_int8", in, attrs);
}

TEST_F(OpenclKernels, MatmulDynamicInt8) {
  if (!fp64()) GTEST_SKIP() << "the OpenCL kernel needs fp64 (else the op runs on the CPU)";
  struct Case {
    Shape x;
    int64_t n;
  };
  const std::vector<Case> cases = {
      {{1, 7}, 5},   {{33, 40}, 35}, {{2, 3, 17}, 70}, {{130, 384}, 100}, {{5, 1}, 16},
      {{4, 64}, 48}, {{7}, 33},      {{3, 300}, 1},    {{2, 129}, 257},
  };
  for (const Case& c : cases)
    for (const char* act : {"", "relu", "gelu"})
      for (bool with_bias : {true, false}) {
        const size_t i = size_t(&c - cases.data());
        if ((i + (with_bias ? 1 : 0)) % 2 == 1 && std::string(act) == "gelu") continue;
        const int64_t K = c.x.back();
        Array x = random(c.x, DType::Float32, -2, 3);
        Array w = integers({K, c.n}, DType::Int8, -127, 127);
        Array ws = random({c.n}, DType::Float32, 0.001, 0.02);
        Array b = random({c.n}, DType::Float32, -1, 1);
        std::string what = str("matmul_dynamic_int8 ", shape_s(c.x), " @ [", K, ", ", c.n,
                               "] activation '", act, "'", with_bias ? " + bias" : "");
        compare(
            [&] {
              Tensor bt = from_array(b);
              return dynamic_int8(from_array(x), from_array(w), from_array(ws),
                                  with_bias ? &bt : nullptr, act);
            },
            "matmul_dynamic_int8", what);
      }
}

TEST_F(OpenclKernels, MatmulDynamicInt8ViewsEmptiesAndSpecials) {
  if (!fp64()) GTEST_SKIP() << "the OpenCL kernel needs fp64 (else the op runs on the CPU)";
  for (Source s : {Source::Host, Source::Device}) {
    const char* where = s == Source::Host ? " host" : " device";
    // x transposed and w transposed (views: the kernel reads their strides).
    Array xt = random({50, 21}, DType::Float32), wt = integers({37, 50}, DType::Int8, -127, 127);
    Array ws = random({37}, DType::Float32, 0.001, 0.02), b = random({37}, DType::Float32);
    compare(
        [&] {
          Tensor bt = from_array(b);
          return dynamic_int8(on_t(xt, s), from_array(t_view(wt)), from_array(ws), &bt, "relu");
        },
        "matmul_dynamic_int8", str("matmul_dynamic_int8 of x.T and w.T", where));
  }
  // Rows holding NaN or an infinity give NaN rows; an all-positive row (range widened to 0),
  // a constant row and a zero row quantize like the CPU's.
  Array x = random({6, 45}, DType::Float32, -1, 1);
  set(x, 0 * 45 + 3, NAN);
  set(x, 1 * 45 + 44, std::numeric_limits<double>::infinity());
  for (int64_t k = 0; k < 45; ++k) {
    set(x, 2 * 45 + k, 0.5 + 0.01 * double(k));
    set(x, 3 * 45 + k, -0.75);
    set(x, 4 * 45 + k, 0.0);
  }
  Array w = integers({45, 40}, DType::Int8, -127, 127);
  Array ws = random({40}, DType::Float32, 0.001, 0.02), b = random({40}, DType::Float32);
  for (const char* act : {"", "relu"})
    compare(
        [&] {
          Tensor bt = from_array(b);
          return dynamic_int8(from_array(x), from_array(w), from_array(ws), &bt, act);
        },
        "matmul_dynamic_int8", str("matmul_dynamic_int8 with NaN/inf/constant rows '", act, "'"));
  // K = 0 (the bias alone, through the activation) and no rows.
  Array x0 = random({3, 0}, DType::Float32), w0 = integers({0, 20}, DType::Int8, -1, 1);
  Array ws0 = random({20}, DType::Float32), b0 = random({20}, DType::Float32);
  compare(
      [&] {
        Tensor bt = from_array(b0);
        return dynamic_int8(from_array(x0), from_array(w0), from_array(ws0), &bt, "relu");
      },
      "matmul_dynamic_int8", "matmul_dynamic_int8 with K = 0");
  Array xe = random({0, 8}, DType::Float32), we = integers({8, 4}, DType::Int8, -9, 9);
  Array wse = random({4}, DType::Float32);
  compare(
      [&] { return dynamic_int8(from_array(xe), from_array(we), from_array(wse), nullptr, ""); },
      "matmul_dynamic_int8", "matmul_dynamic_int8 with no rows");
}

TEST_F(OpenclKernels, TransformerBlockMatchesTheCpu) {
  const int64_t B = 2, L = 37, H = 4, Dh = 16, E = H * Dh, F = 4 * E;
  for (DType t : float_types()) {
    Array x = random({B, L, E}, t), mask = random({B, 1, 1, L}, DType::Bool);
    for (int64_t b = 0; b < B; ++b) mask.data_as<bool>()[b * L] = true;  // no empty row
    Array g1 = random({E}, t, 0.5, 1.5), b1 = random({E}, t), g2 = random({E}, t, 0.5, 1.5);
    Array wq = random({E, E}, t, -0.2, 0.2), wk = random({E, E}, t, -0.2, 0.2);
    Array wv = random({E, E}, t, -0.2, 0.2), wo = random({E, E}, t, -0.2, 0.2);
    Array bq = random({E}, t), bo = random({E}, t);
    Array w1 = random({E, F}, t, -0.2, 0.2), c1 = random({F}, t), w2 = random({F, E}, t, -0.1, 0.1);
    Build block = [&] {
      Tensor h = from_array(x);
      Tensor n = layernorm(h, from_array(g1), from_array(b1));
      auto heads = [&](const Tensor& y) {  // [B, L, E] -> [B, H, L, Dh]
        return transpose(reshape(y, {B, L, H, Dh}), {0, 2, 1, 3});
      };
      Tensor q = heads(matmul(n, from_array(wq)) + from_array(bq));
      Tensor k = heads(matmul(n, from_array(wk)));
      Tensor v = heads(matmul(n, from_array(wv)));
      Tensor a = attention(q, k, v, from_array(mask));
      a = reshape(transpose(a, {0, 2, 1, 3}), {B, L, E});
      h = h + (matmul(a, from_array(wo)) + from_array(bo));
      Tensor m = gelu(matmul(rmsnorm(h, from_array(g2)), from_array(w1)) + from_array(c1));
      h = h + matmul(m, from_array(w2));
      return softmax(h, -1) * 10.0 + mean(h, std::vector<int64_t>{-1}, true);
    };
    compare(block, "attention", str("transformer block ", dtype_name(t)), "opencl:0",
            "transformer block");
    RunProfile p = run_with({"opencl"}, block).profile;
    for (const char* op : {"layernorm", "rmsnorm", "matmul_epilogue", "softmax", "mean"})
      EXPECT_NE(devices_of(p, op).find("opencl:0"), std::string::npos)
          << op << " in the block: " << kernels_of(p);
    for (const KernelProfile& k : p.kernels)
      EXPECT_TRUE(k.op == "copy" || k.device == "opencl:0") << k.op << " ran on " << k.device;
  }
}

// ---- what stays on the CPU ------------------------------------------------------------------

TEST_F(OpenclKernels, UnsupportedCasesFallBackToTheCpu) {
  // Mixed-dtype and integer matmuls, half types, a head dim past the private-array bound,
  // integer reductions: the CPU runs them, with the CPU's results.
  Array a32 = random({20, 30}), b64 = random({30, 10}, DType::Float64);
  compare([&] { return matmul(from_array(a32), from_array(b64)); }, "matmul", "matmul f32 @ f64",
          "cpu");
  Array ia = integers({9, 8}, DType::Int32, -5, 5), ib = integers({8, 7}, DType::Int32, -5, 5);
  compare([&] { return matmul(from_array(ia), from_array(ib)); }, "matmul", "matmul int32", "cpu");
  Array h = random({6, 40}, DType::Float16);
  compare([&] { return softmax(from_array(h)); }, "softmax", "softmax f16", "cpu");
  compare([&] { return sum(from_array(h), std::vector<int64_t>{1}); }, "sum", "sum f16", "cpu");
  Array q = random({1, 3, 300}), k = random({1, 4, 300}), v = random({1, 4, 2});
  compare([&] { return attention(from_array(q), from_array(k), from_array(v)); }, "attention",
          "attention D=300", "cpu");
  Array ints = integers({7, 9}, DType::Int32, -9, 9);
  compare([&] { return sum(from_array(ints), std::vector<int64_t>{0}); }, "sum", "sum int32",
          "cpu");
  compare([&] { return argmax(from_array(ints), 1); }, "argmax", "argmax int32", "cpu");
  Array hq = random({1, 3, 4}, DType::BFloat16);
  compare([&] { return attention(from_array(hq), from_array(hq), from_array(hq)); }, "attention",
          "attention bf16", "cpu");
  if (!fp64()) {
    Array x64 = random({5, 5}, DType::Float64);
    compare([&] { return matmul(from_array(x64), from_array(x64)); }, "matmul",
            "matmul f64 without fp64", "cpu");
  }
}

TEST_F(OpenclKernels, BadInputIsAStructuredErrorWithOpenclEnabled) {
  set_devices({"opencl"});
  Tensor a = from_array(random({3, 4})), b = from_array(random({5, 6}));
  EXPECT_THROW(matmul(a, b), ShapeError);
  EXPECT_THROW(softmax(a, 2), ShapeError);
  EXPECT_THROW(sum(a, std::vector<int64_t>{0, 0}), ShapeError);
  EXPECT_THROW(max(from_array(random({0, 3})), std::vector<int64_t>{0}), ShapeError);
  EXPECT_THROW(attention(from_array(random({2, 3, 4})), from_array(random({2, 5, 3})),
                         from_array(random({2, 5, 3}))),
               ShapeError);
  EXPECT_THROW(layernorm(a, from_array(random({3}))), ShapeError);
  ir::Attrs bad;
  bad.set("empty_rows", std::string("maybe"));
  Tensor q = from_array(random({1, 2, 4}));
  EXPECT_THROW(op("attention", {q, q, q}, bad), ValidationError);
  set_devices({});
}

}  // namespace
}  // namespace nef
