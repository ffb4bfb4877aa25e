// Heterogeneous execution on a real OpenCL device (PoCL in CI): one harness runs each declared
// case on every device and compares with the CPU by a normalized error per dtype; forced and
// alternating placements; two branches overlapping on two devices; every rung of the failure
// ladder injected and survived with CPU-equal results. Skipped where no OpenCL device exists.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "api/lazy.h"
#include "backends/registry.h"
#include "common/faults.h"
#include "common/session.h"
#include "compiler/compiler.h"
#include "engine/execute.h"
#include "nef/tensor.h"
#include "runtime/run.h"
#include "test_util.h"

namespace nef {
namespace {

bool have_opencl() { return backend::find_device("opencl:0") != nullptr; }

#define REQUIRE_OPENCL() \
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device (" << problems() << ")"

std::string problems() {
  std::string s;
  for (const auto& [b, why] : backend::detect().problems) s += b + ": " + why + "; ";
  return s;
}

// Restores the default device selection and disarms faults whatever a test does.
struct Devices {
  explicit Devices(std::vector<std::string> names) { set_devices(std::move(names)); }
  ~Devices() {
    set_devices({});
    faults::set("");
  }
};

// max |a - b| / (1 + |b|): the normalized error the harness compares per dtype.
double normalized_error(const Array& got, const Array& want) {
  EXPECT_EQ(got.shape, want.shape);
  EXPECT_EQ(got.dtype, want.dtype);
  std::vector<double> g = test::to_doubles(to_host(got)), w = test::to_doubles(to_host(want));
  double e = 0;
  for (size_t i = 0; i < g.size() && i < w.size(); ++i) {
    if (std::isnan(w[i]) || std::isnan(g[i])) {
      if (std::isnan(w[i]) != std::isnan(g[i])) return INFINITY;
      continue;
    }
    if (std::isinf(w[i]) || std::isinf(g[i])) {
      if (g[i] != w[i]) return INFINITY;
      continue;
    }
    e = std::max(e, std::abs(g[i] - w[i]) / (1 + std::abs(w[i])));
  }
  return e;
}

double tolerance(DType t) { return t == DType::Float64 ? 1e-12 : t == DType::Bool ? 0 : 2e-6; }

// A case: fresh inputs (data tensors) and the graph to compute from them.
struct Case {
  std::string name;
  std::function<std::vector<Tensor>(std::mt19937_64&)> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> build;
};

Tensor data(const Shape& s, DType t, std::mt19937_64& rng, double lo = -2, double hi = 2) {
  return from_array(test::random_array(s, t, rng, lo, hi));
}

// Evaluates the case's graph on `devices` (fresh lazy nodes each time, same input data).
Array evaluate_on(const Case& c, const std::vector<Tensor>& in, std::vector<std::string> devices,
                  std::string* placed = nullptr) {
  Devices d(std::move(devices));
  Tensor y = c.build(in);
  y.execute();
  if (placed) *placed = y.device();
  return to_host(y.node()->value.value());
}

std::vector<Case> elementwise_cases() {
  auto f32 = [](Shape s) {
    return [s](std::mt19937_64& r) { return std::vector<Tensor>{data(s, DType::Float32, r)}; };
  };
  return {
      {"tanh_odd", f32({7, 33}), [](auto& v) { return tanh(v[0]); }},
      {"chain_broadcast",
       [](auto& r) {
         return std::vector<Tensor>{data({5, 1, 7}, DType::Float32, r),
                                    data({3, 1}, DType::Float32, r), data({7}, DType::Float32, r)};
       },
       [](auto& v) { return tanh(v[0] * v[1] + v[2]) * sigmoid(v[0]) - exp(-v[2]); }},
      {"transposed_view", f32({9, 130}),
       [](auto& v) { return gelu(transpose(v[0]) + 1.0, "none") / 2.0; }},
      {"sliced_view", f32({17, 31}),
       [](auto& v) {
         return abs(slice(v[0], {1, 2}, {16, 31}, {3, 2})) * 2.0;
       }},
      {"empty", f32({0, 5}), [](auto& v) { return exp(v[0]) + 1.0; }},
      {"scalar", f32({}), [](auto& v) { return sqrt(abs(v[0])) + 1.0; }},
      {"compare_where",
       [](auto& r) {
         return std::vector<Tensor>{data({4, 65}, DType::Float32, r),
                                    data({65}, DType::Float32, r)};
       },
       [](auto& v) { return where(less(v[0], v[1]), maximum(v[0], v[1]), minimum(v[0], v[1])); }},
      {"float64",
       [](auto& r) {
         return std::vector<Tensor>{data({11, 13}, DType::Float64, r)};
       },
       [](auto& v) { return erf(v[0]) * cos(v[0]) + mod(v[0], v[0] * 0.25 + 3.0); }},
      {"int_to_float",
       [](auto& r) {
         return std::vector<Tensor>{data({6, 7}, DType::Int32, r, -50, 50),
                                    data({7}, DType::Float32, r)};
       },
       [](auto& v) { return add(v[0], v[1]); }},
      {"bool_out",
       [](auto& r) {
         return std::vector<Tensor>{data({3, 300}, DType::Float32, r)};
       },
       [](auto& v) {
         return logical_and(greater(v[0], weak_scalar(0, true)), less(v[0], weak_scalar(1, true)));
       }},
  };
}

TEST(OpenclRuntime, DeviceIsListedWithItsCapabilities) {
  REQUIRE_OPENCL();
  const backend::DeviceInfo& i = backend::find_device("opencl:0")->info();
  EXPECT_EQ(i.backend, "opencl");
  EXPECT_GT(i.compute_units, 0);
  EXPECT_GT(i.memory_bytes, 0);
  EXPECT_NE(i.api_version.find("OpenCL C"), std::string::npos) << i.api_version;
  EXPECT_FALSE(i.description.empty());
}

TEST(OpenclRuntime, HarnessMatchesTheCpuOnEveryDevice) {
  REQUIRE_OPENCL();
  std::mt19937_64 rng(std::random_device{}());
  uint64_t seed = rng();
  std::printf("harness seed %llu\n", (unsigned long long)seed);
  rng.seed(seed);
  for (const Case& c : elementwise_cases()) {
    SCOPED_TRACE(c.name);
    std::vector<Tensor> in = c.inputs(rng);
    Array want = evaluate_on(c, in, {"cpu"});
    for (const auto& dev : backend::detect().devices) {
      std::string where;
      Array got = evaluate_on(c, in, {dev->id()}, &where);
      EXPECT_LE(normalized_error(got, want), tolerance(want.dtype)) << "on " << dev->id();
      if (want.numel() > 0) EXPECT_EQ(where, dev->id()) << "the result should come from there";
    }
  }
}

TEST(OpenclRuntime, AlternatingPlacementMatchesTheCpu) {
  REQUIRE_OPENCL();
  std::mt19937_64 rng(11);
  Tensor x = data({37, 29}, DType::Float32, rng), w = data({29}, DType::Float32, rng);
  auto build = [&](bool alternate) {
    Tensor t = x;
    const char* dev[] = {"opencl", "cpu"};
    for (int i = 0; i < 8; ++i) {
      t = i % 2 ? tanh(t * w) : exp(-abs(t)) + w;
      if (alternate) t.prefer(dev[i % 2]);
    }
    return t;
  };
  Array want;
  {
    Devices d({"cpu"});
    Tensor y = build(false);
    want = y.array();
  }
  Devices d({"opencl", "cpu"});
  reset_stats();
  Tensor y = build(true);
  EXPECT_LE(normalized_error(y.array(), want), 1e-5);
  EXPECT_GE(stats().at("transfers"), 6);  // every hop crossed devices
}

TEST(OpenclRuntime, BranchesOnTwoDevicesOverlap) {
  REQUIRE_OPENCL();
  // Two independent elementwise chains, one per device, long enough to run for tens of ms.
  std::mt19937_64 rng(3);
  Tensor a = data({1000, 1000}, DType::Float32, rng), b = data({1000, 1000}, DType::Float32, rng);
  auto chain = [](Tensor t) {
    for (int i = 0; i < 12; ++i) t = tanh(t * 1.0001 + 0.5) * exp(-t);
    return t;
  };
  Devices d({"opencl", "cpu"});
  Tensor u, v;
  {
    DeviceScope s("opencl");
    u = chain(a);
  }
  {
    DeviceScope s("cpu");
    v = chain(b);
  }
  // Warm up (program builds), then profile one run of the same plan.
  evaluate({u, v});
  {
    DeviceScope s("opencl");
    u = chain(a);
  }
  {
    DeviceScope s("cpu");
    v = chain(b);
  }
  set_profiling(true);
  evaluate({u, v});
  set_profiling(false);
  RunProfile p = last_profile();
  double cl0 = 1e9, cl1 = -1, cpu0 = 1e9, cpu1 = -1;
  for (const KernelProfile& k : p.kernels) {
    if (k.op == "copy") continue;
    if (k.device == "opencl:0") cl0 = std::min(cl0, k.start), cl1 = std::max(cl1, k.end);
    if (k.device == "cpu") cpu0 = std::min(cpu0, k.start), cpu1 = std::max(cpu1, k.end);
  }
  ASSERT_GE(cl1, 0) << "nothing ran on opencl:0";
  ASSERT_GE(cpu1, 0) << "nothing ran on the cpu";
  std::printf("opencl:0 [%.1f, %.1f] ms, cpu [%.1f, %.1f] ms, run %.1f ms\n", cl0 * 1e3, cl1 * 1e3,
              cpu0 * 1e3, cpu1 * 1e3, p.seconds * 1e3);
  EXPECT_LT(std::max(cl0, cpu0), std::min(cl1, cpu1)) << "the two branches did not overlap";
}

// The ladder: every fault leaves a CPU-equal result and counts a fallback (or an eviction).
struct LadderCase {
  const char* faults;
  const char* counter;
};

TEST(OpenclRuntime, FailureLadderEveryRungIsSurvived) {
  REQUIRE_OPENCL();
  std::mt19937_64 rng(5);
  Tensor x = data({64, 96}, DType::Float32, rng), w = data({96}, DType::Float32, rng);
  auto build = [&] { return sigmoid(tanh(x * w + 1.0) * 3.0) - exp(-abs(x)); };
  Array want;
  {
    Devices d({"cpu"});
    want = build().array();
  }
  for (LadderCase lc : {LadderCase{"oom:opencl", "cache_evictions"},       // evict, retry
                        LadderCase{"oom:opencl:*:2", "device_fallbacks"},  // then split
                        LadderCase{"oom:opencl:*:9", "device_fallbacks"},  // then the host
                        LadderCase{"compile:opencl", "device_fallbacks"},  // reroute at compile
                        LadderCase{"run:opencl", "device_fallbacks"}}) {   // mid-graph failure
    SCOPED_TRACE(lc.faults);
    compiler::clear_caches();  // so the compile rung compiles
    Devices d({"opencl"});
    faults::set(lc.faults);
    reset_stats();
    testing::internal::CaptureStderr();
    Tensor y = build();
    Array got = y.array();
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_LE(normalized_error(got, want), 1e-5);
    EXPECT_GE(stats().at(lc.counter), 1) << err;
    EXPECT_NE(err.find("nef: warning"), std::string::npos) << "the ladder says what it did";
  }
}

TEST(OpenclRuntime, MidGraphFailureKeepsFinishedResults) {
  REQUIRE_OPENCL();
  std::mt19937_64 rng(6);
  Tensor x = data({40, 50}, DType::Float32, rng);
  Devices d({"opencl", "cpu"});
  // exp on OpenCL, tanh on the CPU, sigmoid on OpenCL: the sigmoid fails after the rest ran.
  Tensor a = exp(x).prefer("opencl");
  Tensor b = tanh(a).prefer("cpu");
  Tensor c = sigmoid(b).prefer("opencl");
  detail::BuiltGraph built = detail::build_graph({c.node().get()}, detail::BuildMode::Execute);
  auto plan = compiler::compile(built.graph);
  faults::set("run:opencl:sigmoid");
  runtime::Run run(plan, built.bindings);
  run.advance();
  run.wait();
  ASSERT_TRUE(run.failure().has_value());
  EXPECT_EQ(plan->graph.nodes[plan->steps[run.failure()->step].node].op->name, "sigmoid");
  std::vector<const Array*> done(plan->graph.nodes.size());
  for (size_t v = 0; v < done.size(); ++v) done[v] = run.value(int(v));
  std::vector<Array> bindings = built.bindings;
  ir::Graph rest = engine::remainder(*plan, done, bindings);
  // Only the failed op is left to compute, from tanh's finished value.
  int kernels = 0, finished = 0;
  for (const ir::Node& n : rest.nodes) {
    kernels += !n.is("input") && !n.is("constant");
    finished += n.is("input") && n.name.rfind("__finished_", 0) == 0;
    EXPECT_FALSE(n.is("exp") || n.is("tanh")) << "recomputed " << n.op->name;
  }
  EXPECT_EQ(kernels, 1);
  EXPECT_EQ(finished, 1);
  compiler::CompileOptions o;
  o.exclude_devices = {"opencl:0"};
  auto out = runtime::execute(compiler::compile(rest, o), bindings);
  std::vector<double> got = test::to_doubles(to_host(out[0]));
  std::vector<double> xs = test::to_doubles(to_host(*x.node()->value));
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], 1 / (1 + std::exp(-std::tanh(std::exp(xs[i])))), 1e-6);
}

TEST(OpenclRuntime, MemoryLimitKeepsBigWorkOffTheDevice) {
  REQUIRE_OPENCL();
  std::mt19937_64 rng(8);
  Tensor x = data({512, 512}, DType::Float32, rng);
  Array want;
  {
    Devices d({"cpu"});
    want = exp(-abs(x)).array();
  }
  setenv("NEF_DEVICE_MEMORY_LIMIT", "opencl:0=64K", 1);
  {
    Devices d({"opencl", "cpu"});
    Tensor y = exp(-abs(x)).prefer("opencl");
    EXPECT_LE(normalized_error(y.array(), want), 1e-6);
    EXPECT_EQ(y.device(), "cpu") << "1 MiB of data on a 64 KiB budget";
  }
  // Allocations are held to it as well, with an error naming the device and the limit.
  backend::DevicePtr cl = backend::find_device("opencl:0");
  auto small = cl->allocate(32 << 10);
  try {
    cl->allocate(40 << 10);
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("opencl:0"), std::string::npos) << m;
    EXPECT_NE(m.find("65536"), std::string::npos) << m;
  }
  small.reset();
  EXPECT_NO_THROW(cl->allocate(40 << 10));  // freed memory is available again
  unsetenv("NEF_DEVICE_MEMORY_LIMIT");
}

TEST(OpenclRuntime, ResultsStayOnTheDeviceUntilRead) {
  REQUIRE_OPENCL();
  std::mt19937_64 rng(9);
  Tensor x = data({100}, DType::Float32, rng);
  Devices d({"opencl"});
  Tensor y = exp(x);
  y.execute();
  EXPECT_EQ(y.device(), "opencl:0");
  Tensor z = y * 2.0;  // reads y where it lives: no trip through the host
  reset_stats();
  z.execute();
  EXPECT_EQ(stats().at("transfers"), 0);
  std::vector<float> v = z.to_vector<float>();  // read: now on the host
  EXPECT_EQ(z.device(), "cpu");
  std::vector<float> xs = x.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], 2 * std::exp(xs[i]), 1e-5 * v[i]);
}

}  // namespace
}  // namespace nef
