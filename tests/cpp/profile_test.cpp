// Per-kernel profiles (nef::set_profiling / last_profile, LoadedGraph::run_profiled): one entry
// per kernel of the plan in order, described as describe_plan_json describes it, times that add
// up within the whole run; off by default, per thread, restored after run_profiled.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "nef/tensor.h"

namespace nef {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("nef_profile_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

Array random_f32(const Shape& shape, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  Array a = Array::empty(shape, DType::Float32);
  auto* p = static_cast<float*>(a.data());
  for (int64_t i = 0; i < numel(shape); ++i) p[i] = u(rng);
  return a;
}

// y = softmax(tanh(x @ w + b) * 0.5 - exp(-x @ w)) over odd sizes: a matmul epilogue, a fused
// chain, a softmax and a transpose view, so fused kernels and views are both profiled.
LoadedGraph model(const std::string& tag) {
  Tensor x = placeholder("x", {5, 7}, DType::Float32);
  Tensor w = from_array(random_f32({7, 3}, 11));
  Tensor b = from_array(random_f32({3}, 12));
  Tensor h = matmul(x, w);
  Tensor y = softmax(tanh(h + b) * 0.5 - exp(-h), -1);
  std::string path = temp_path(tag + ".nef");
  build(path, {{"y", y}, {"yt", transpose(y)}});
  LoadedGraph g = LoadedGraph::load(path);
  std::filesystem::remove(path);
  return g;
}

TEST(Profile, CoversEveryKernelOfThePlanInOrder) {
  LoadedGraph g = model("cover");
  Array x = random_f32({5, 7}, 13);
  RunProfile p;
  std::map<std::string, Array> outs = g.run_profiled({{"x", x}}, p);
  ASSERT_EQ(outs.size(), 2u);

  nlohmann::json plan = nlohmann::json::parse(g.describe_plan_json());
  const auto& kernels = plan["kernels"];
  ASSERT_EQ(p.kernels.size(), kernels.size());
  ASSERT_FALSE(p.kernels.empty());
  double sum = 0;
  bool fused = false;
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelProfile& k = p.kernels[i];
    SCOPED_TRACE(k.op);
    EXPECT_EQ(k.step, kernels[i]["step"].get<int>());
    EXPECT_EQ(k.node, kernels[i]["node"].get<int>());
    EXPECT_EQ(k.op, kernels[i]["op"].get<std::string>());
    EXPECT_EQ(k.kernel, kernels[i]["kernel"].get<std::string>());
    EXPECT_EQ(k.device, kernels[i]["device"].get<std::string>());
    EXPECT_EQ(k.ops, kernels[i]["nodes"].get<std::vector<std::string>>());
    EXPECT_EQ(k.shape, kernels[i]["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(dtype_name(k.dtype), kernels[i]["dtype"].get<std::string>());
    EXPECT_GE(k.seconds, 0);
    EXPECT_TRUE(std::isfinite(k.seconds));
    sum += k.seconds;
    fused = fused || k.ops.size() > 1;
  }
  EXPECT_TRUE(fused) << "the model should have a fused kernel";
  EXPECT_GT(p.seconds, 0);
  EXPECT_LE(sum, p.seconds);
  // The profiled run computes the same as a plain one.
  std::map<std::string, Array> plain = g.run({{"x", x}});
  for (const auto& [name, a] : plain) {
    Array c = outs.at(name).contiguous(), d = a.contiguous();
    ASSERT_EQ(c.shape, d.shape);
    for (int64_t i = 0; i < c.numel(); ++i)
      EXPECT_EQ(c.data_as<float>()[i], d.data_as<float>()[i]);
  }
}

TEST(Profile, OffByDefaultAndRestoredAfterRunProfiled) {
  // A fresh thread: nothing this process did before can have set its flag or profile.
  std::thread([] {
    LoadedGraph g = model("flag");
    Array x = random_f32({5, 7}, 14);
    EXPECT_FALSE(profiling());
    g.run({{"x", x}});
    EXPECT_TRUE(last_profile().kernels.empty());
    RunProfile p;
    g.run_profiled({{"x", x}}, p);
    EXPECT_FALSE(profiling());
    EXPECT_FALSE(p.kernels.empty());
    EXPECT_EQ(last_profile().kernels.size(), p.kernels.size());
    // Left on by the caller: stays on.
    set_profiling(true);
    g.run_profiled({{"x", x}}, p);
    EXPECT_TRUE(profiling());
    set_profiling(false);
    // A failing run restores the flag too.
    EXPECT_THROW(g.run_profiled({{"x", random_f32({5, 6}, 15)}}, p), ShapeError);
    EXPECT_FALSE(profiling());
  }).join();
}

TEST(Profile, LazyTensorsAndThreadsAreIndependent) {
  Tensor a = from_array(random_f32({9, 4}, 16));
  Tensor c = from_array(random_f32({4, 6}, 17));
  std::thread([&] {
    set_profiling(true);
    Tensor y = relu(matmul(a, c)) + 1.0;
    y.execute();
    RunProfile p = last_profile();
    ASSERT_FALSE(p.kernels.empty());
    EXPECT_EQ(p.kernels.back().shape, (Shape{9, 6}));
    set_profiling(false);
  }).join();
  // The other thread's flag and profile are its own.
  std::thread([&] {
    EXPECT_FALSE(profiling());
    Tensor y = relu(matmul(a, c)) + 2.0;
    y.execute();
    EXPECT_TRUE(last_profile().kernels.empty());
  }).join();
}

}  // namespace
}  // namespace nef
