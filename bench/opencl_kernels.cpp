// Times NEF's hand-written OpenCL kernels against the CPU kernels on mid-size cases: each case
// runs forced onto OpenCL and on the CPU (set_devices), several times after a warm-up, and
// reports the median and minimum time of the op's kernel from the run profile (OpenCL: device
// time from the queue's profiling events; CPU: the kernel's wall time). Build:
// `cmake --build BUILD --target nef_bench_opencl`; run:
// `BUILD/nef_bench_opencl [repeats] [cpu_threads]` (cpu_threads: the CPU kernels' threads, default
// all; 1 gives steadier CPU figures on a machine others are loading). Prints a Markdown table.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "nef/tensor.h"

namespace {

using nef::Array;
using nef::DType;
using nef::Tensor;

Array random(const nef::Shape& shape, DType t, uint64_t seed) {
  Array a = Array::empty(shape, t);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (t == DType::Float64) a.data_as<double>()[i] = u(rng);
    else a.data_as<float>()[i] = float(u(rng));
  }
  return a;
}

struct Timing {
  double median = -1, min = -1;
  std::string kernel;
};

// Median and minimum seconds of `op`'s kernel over `repeats` runs (after one warm-up) on
// `devices`. On a loaded machine the minimum is the fairer figure: a CPU kernel's time is wall
// time, which includes its threads waiting for a core.
Timing time_op(const std::vector<std::string>& devices, const std::function<Tensor()>& build,
               const std::string& op, int repeats) {
  nef::set_devices(devices);
  nef::set_profiling(true);
  std::vector<double> t;
  Timing r;
  for (int i = 0; i <= repeats; ++i) {
    Tensor x = build();
    x.execute();
    for (const nef::KernelProfile& k : nef::last_profile().kernels)
      if (k.op == op) {
        if (i > 0) t.push_back(k.seconds);
        r.kernel = k.kernel + " on " + k.device;
      }
  }
  nef::set_profiling(false);
  nef::set_devices({});
  if (t.empty()) return r;
  std::sort(t.begin(), t.end());
  r.median = t[t.size() / 2];
  r.min = t[0];
  return r;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  if (argc > 2) nef::set_num_threads(std::max(1, std::atoi(argv[2])));
  if (!nef::backend::find_device("opencl:0")) {
    std::printf("no OpenCL device\n");
    return 0;
  }
  std::printf("# OpenCL kernels vs CPU kernels (%d runs each, %d CPU threads), load before: %s\n\n",
              repeats, nef::num_threads(), loadavg().c_str());
  std::printf(
      "| case | op | OpenCL median (min) | CPU median (min) | OpenCL / CPU (min) | kernels |\n"
      "|---|---|---|---|---|---|\n");
  struct Case {
    std::string name, op;
    std::function<Tensor()> build;
  };
  const DType F = DType::Float32, D = DType::Float64;
  Array a = random({512, 512}, F, 1), b = random({512, 512}, F, 2);
  Array a64 = random({512, 512}, D, 3), b64 = random({512, 512}, D, 4);
  Array bias = random({512}, F, 5);
  Array big = random({1536, 1536}, F, 15);
  Array x = random({1024, 1024}, F, 6), w = random({1024}, F, 7);
  Array q = random({1, 12, 512, 64}, F, 8), k = random({1, 12, 512, 64}, F, 9),
        v = random({1, 12, 512, 64}, F, 10);
  Array qd = random({1, 12, 1, 64}, F, 11), kd = random({1, 12, 2048, 64}, F, 12),
        vd = random({1, 12, 2048, 64}, F, 13);
  using nef::from_array;
  const std::vector<Case> cases = {
      {"matmul 512x512x512 f32", "matmul",
       [&] { return nef::matmul(from_array(a), from_array(b)); }},
      {"matmul 512x512x512 f64", "matmul",
       [&] { return nef::matmul(from_array(a64), from_array(b64)); }},
      {"matmul 512x512x512 f32, b transposed (x @ W.T)", "matmul",
       [&] { return nef::matmul(from_array(a), nef::transpose(from_array(b))); }},
      {"matmul 1536x1536x1536 f32", "matmul",
       [&] { return nef::matmul(from_array(big), from_array(big)); }},
      {"x@w + b 512 f32", "matmul_epilogue",
       [&] { return nef::matmul(from_array(a), from_array(b)) + from_array(bias); }},
      {"gelu(x@w + b) 512 f32", "matmul_epilogue",
       [&] { return nef::gelu(nef::matmul(from_array(a), from_array(b)) + from_array(bias)); }},
      {"matmul 1x512 @ 512x512 f32", "matmul",
       [&] {
         return nef::matmul(from_array(random({1, 512}, F, 14)), from_array(b));
       }},
      {"softmax 1024x1024 f32", "softmax", [&] { return nef::softmax(from_array(x)); }},
      {"softmax 1024x1024 axis 0 f32", "softmax", [&] { return nef::softmax(from_array(x), 0); }},
      {"layernorm 1024x1024 f32", "layernorm",
       [&] { return nef::layernorm(from_array(x), from_array(w), from_array(w)); }},
      {"rmsnorm 1024x1024 f32", "rmsnorm",
       [&] { return nef::rmsnorm(from_array(x), from_array(w)); }},
      {"sum 1024x1024 axis 1 f32", "sum",
       [&] { return nef::sum(from_array(x), std::vector<int64_t>{1}); }},
      {"sum 1024x1024 axis 0 f32", "sum",
       [&] { return nef::sum(from_array(x), std::vector<int64_t>{0}); }},
      {"max 1024x1024 all f32", "max", [&] { return nef::max(from_array(x)); }},
      {"argmax 1024x1024 axis 1 f32", "argmax", [&] { return nef::argmax(from_array(x), 1); }},
      {"attention 1x12x512x64 f32", "attention",
       [&] { return nef::attention(from_array(q), from_array(k), from_array(v)); }},
      {"attention causal 1x12x512x64 f32", "attention",
       [&] {
         return nef::attention(from_array(q), from_array(k), from_array(v), Tensor(), std::nullopt,
                               true);
       }},
      {"attention decode 1x12x1x64, 2048 keys f32", "attention",
       [&] { return nef::attention(from_array(qd), from_array(kd), from_array(vd)); }},
  };
  for (const Case& c : cases) {
    Timing cl = time_op({"opencl"}, c.build, c.op, repeats);
    Timing cpu = time_op({"cpu"}, c.build, c.op, repeats);
    std::printf("| %s | %s | %.3f ms (%.3f) | %.3f ms (%.3f) | %.2f | %s; %s |\n", c.name.c_str(),
                c.op.c_str(), cl.median * 1e3, cl.min * 1e3, cpu.median * 1e3, cpu.min * 1e3,
                cl.min / cpu.min, cl.kernel.c_str(), cpu.kernel.c_str());
    std::fflush(stdout);
  }
  std::printf("\nload after: %s\n", loadavg().c_str());
  return 0;
}
