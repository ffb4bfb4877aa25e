// Embedded plans (.nef compiler_cache "embedded"): a round trip uses the embedded plan and gives
// the same results as a normal load; tampered, mismatched or garbage sections are ignored with a
// warning (or fail cleanly), never used and never a crash.
#include "compiler/embedded_plan.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>

#include "common/session.h"
#include "compiler/compiler.h"
#include "format_test_util.h"
#include "nef/tensor.h"

namespace nef::test {
namespace {

Array random_f32(const Shape& shape, std::mt19937_64& rng) {
  Array a = Array::empty(shape, DType::Float32);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  auto* p = static_cast<float*>(a.data());
  for (int64_t i = 0; i < numel(shape); ++i) p[i] = u(rng);
  return a;
}

// x:(5,7) input; a:(5,7) constant; b:(7,5) constant transposed (folded on compile);
// y = tanh(x*a + b^T) * a - exp(-x)  (one fused kernel), s = x + a.
struct Model {
  ir::Graph g;
  Array a, b;
};
Model make_model(uint64_t seed) {
  std::mt19937_64 rng(seed);
  Model m;
  m.a = random_f32({5, 7}, rng);
  m.b = random_f32({7, 5}, rng);
  GraphBuilder gb;
  int x = gb.input("x", {5, 7}, DType::Float32);
  int a = gb.constant(m.a, "a");
  int b = gb.constant(m.b, "b");
  ir::Attrs perm;
  perm.set("perm", std::vector<int64_t>{1, 0});
  int bt = gb.add("transpose", {b}, perm);
  int xa = gb.add("mul", {x, a});
  int t = gb.add("tanh", {gb.add("add", {xa, bt})});
  int y = gb.add("sub", {gb.add("mul", {t, a}), gb.add("exp", {gb.add("neg", {x})})});
  int s = gb.add("add", {x, a});
  gb.output(y, "y");
  gb.output(s, "s");
  m.g = gb.g;
  return m;
}

// Independent float64 reference of y.
std::vector<double> reference_y(const Model& m, const Array& x) {
  const auto* px = static_cast<const float*>(x.data());
  const auto* pa = static_cast<const float*>(m.a.data());
  const auto* pb = static_cast<const float*>(m.b.data());
  std::vector<double> y(35);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 7; ++j) {
      double xv = px[i * 7 + j], av = pa[i * 7 + j], bv = pb[j * 5 + i];
      y[i * 7 + j] = std::tanh(xv * av + bv) * av - std::exp(-xv);
    }
  return y;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("nef_embedded_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

int64_t stat(const char* name) { return nef::stats().at(name); }

struct LoadResult {
  std::map<std::string, Array> out;
  int64_t used = 0;         // embedded_plans_used during load + run
  int64_t plan_misses = 0;  // compiles during load + run
  std::string err;          // stderr
};

LoadResult load_and_run(const std::vector<uint8_t>& file, const Array& x, const std::string& tag) {
  std::string path = temp_path(tag + ".nef");
  write_bytes(path, file);
  compiler::clear_caches();
  nef::reset_stats();
  LoadResult r;
  testing::internal::CaptureStderr();
  try {
    LoadedGraph lg = LoadedGraph::load(path);
    r.out = lg.run({{"x", x}});
  } catch (...) {
    r.err = testing::internal::GetCapturedStderr();
    std::filesystem::remove(path);
    throw;
  }
  r.err = testing::internal::GetCapturedStderr();
  r.used = stat("embedded_plans_used");
  r.plan_misses = stat("plan_cache_misses");
  std::filesystem::remove(path);
  return r;
}

format::WriteOptions embedded_opts(const ir::Graph& g) {
  format::WriteOptions o;
  o.embedded = compiler::make_embedded(g);
  return o;
}

class EmbeddedPlan : public testing::Test {
 protected:
  void SetUp() override {
    uint64_t seed = std::random_device{}();
    std::printf("embedded plan test seed %llu\n", (unsigned long long)seed);
    m = make_model(seed);
    std::mt19937_64 rng(seed + 1);
    x = random_f32({5, 7}, rng);
    plain = format::serialize_nef(m.g);
    embedded = format::serialize_nef(m.g, embedded_opts(m.g));
    normal = load_and_run(plain, x, "plain");
  }
  void expect_same_as_normal(const LoadResult& r) {
    for (const char* k : {"y", "s"}) EXPECT_TRUE(same_bytes(r.out.at(k), normal.out.at(k))) << k;
  }
  void expect_ignored(const std::vector<uint8_t>& file, const std::string& tag,
                      const std::string& reason = "") {
    LoadResult r = load_and_run(file, x, tag);
    EXPECT_NE(r.err.find(reason), std::string::npos) << tag << ": " << r.err;
    EXPECT_EQ(r.used, 0) << tag;
    EXPECT_NE(r.err.find("nef: warning: embedded plan ignored: "), std::string::npos)
        << tag << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    expect_same_as_normal(r);
  }
  // The compiled section's tensors whose bytes are not shared with the source graph's.
  std::vector<std::pair<uint64_t, uint64_t>> compiled_only_blobs(const NefParts& p) {
    std::set<uint64_t> src;
    for (auto& [k, t] : p.header["tensors"].items())
      if (t.contains("data")) src.insert(t["data"]["offset"].get<uint64_t>());
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (auto& [k, t] : p.header["compiled"]["tensors"].items())
      if (t.contains("data") && !src.count(t["data"]["offset"].get<uint64_t>()) &&
          t["data"]["nbytes"].get<uint64_t>() > 0)
        out.push_back({t["data"]["offset"].get<uint64_t>(), t["data"]["nbytes"].get<uint64_t>()});
    return out;
  }

  Model m;
  Array x;
  std::vector<uint8_t> plain, embedded;
  LoadResult normal;
};

TEST_F(EmbeddedPlan, RoundTripUsesEmbeddedPlanWithIdenticalResults) {
  EXPECT_EQ(normal.used, 0);
  EXPECT_EQ(normal.plan_misses, 1);
  EXPECT_TRUE(normal.err.empty()) << normal.err;
  std::vector<double> ref = reference_y(m, x);
  const auto* py = static_cast<const float*>(normal.out.at("y").data());
  for (size_t i = 0; i < ref.size(); ++i)
    EXPECT_NEAR(py[i], ref[i], 1e-5 + 1e-5 * std::abs(ref[i]));

  LoadResult r = load_and_run(embedded, x, "embedded");
  EXPECT_EQ(r.used, 1);
  EXPECT_EQ(r.plan_misses, 0);  // no validate/passes/planning: compile() never ran
  EXPECT_TRUE(r.err.empty()) << r.err;
  expect_same_as_normal(r);

  // The embedded section holds the optimized graph: fewer nodes (fused, folded) than the source.
  NefParts p = split_nef(embedded);
  ASSERT_TRUE(p.header.contains("compiled"));
  EXPECT_EQ(p.header["compiler_cache"], "embedded");
  EXPECT_LT(p.header["compiled"]["graph"]["nodes"].size(), p.header["graph"]["nodes"].size());
  EXPECT_EQ(p.header["compiled"]["devices"].size(), p.header["compiled"]["graph"]["nodes"].size());
  // Plain read_nef still loads the source graph of an embedded file.
  ir::Graph src = format::parse_nef(embedded.data(), embedded.size());
  EXPECT_EQ(src.nodes.size(), m.g.nodes.size());
}

TEST_F(EmbeddedPlan, PlanDescribesEmbeddedPlacement) {
  std::string path = temp_path("describe.nef");
  write_bytes(path, embedded);
  LoadedGraph lg = LoadedGraph::load(path);
  EXPECT_NE(lg.describe_plan().find("embedded plan"), std::string::npos) << lg.describe_plan();
  std::filesystem::remove(path);
}

TEST_F(EmbeddedPlan, NoneWriterUnchanged) {
  NefParts p = split_nef(plain);
  EXPECT_FALSE(p.header.contains("compiled"));
  EXPECT_EQ(p.header["compiler_cache"], "none");
  EXPECT_EQ(format::serialize_nef(m.g, format::WriteOptions{}), plain);
  // Same source section (graph, tensors, constants' bytes) in both files.
  NefParts e = split_nef(embedded);
  EXPECT_EQ(e.header["graph"], p.header["graph"]);
  EXPECT_EQ(e.header["tensors"], p.header["tensors"]);
  EXPECT_TRUE(std::equal(p.data.begin(), p.data.end(), e.data.begin()));
  // A compiled section whose device list does not cover its graph is refused.
  format::WriteOptions bad = embedded_opts(m.g);
  bad.embedded->devices.pop_back();
  EXPECT_THROW(format::serialize_nef(m.g, bad), ValidationError);
}

TEST_F(EmbeddedPlan, TamperedConstantBytesRejectedByHash) {
  NefParts p = split_nef(embedded);
  auto blobs = compiled_only_blobs(p);
  ASSERT_FALSE(blobs.empty()) << "the folded transpose should be a compiled-only constant";
  p.data[blobs[0].first] ^= 0x01;  // still a valid float32: only the hash can tell
  expect_ignored(assemble_nef(p), "tampered_const", "hash mismatch");
}

TEST_F(EmbeddedPlan, TamperedGraphRejectedByHash) {
  // A still-valid change of the compiled graph (the graph validates; the hash does not match).
  NefParts p = split_nef(embedded);
  auto& nodes = p.header["compiled"]["graph"]["nodes"];
  bool changed = false;
  // Change one string attribute (a fused program) or, failing that, a float one.
  for (auto& n : nodes) {
    for (auto& [k, v] : n["attrs"].items()) {
      if (v["type"] == "string" && n["op"] != "input" && n["op"] != "constant") {
        std::string s = v["value"];
        // Program text: replacing one tanh by sigmoid keeps a valid program.
        auto pos = s.find("tanh");
        if (pos != std::string::npos) {
          v["value"] = s.replace(pos, 4, "sigmoid");
          changed = true;
        }
      }
    }
  }
  if (!changed) GTEST_SKIP() << "no fused program in the compiled graph";
  expect_ignored(assemble_nef(p), "tampered_program", "hash mismatch");
}

TEST_F(EmbeddedPlan, SplicedPlanOfAnotherGraphRejected) {
  // Same structure, other weights: the embedded plan of model B is valid but not for model A.
  Model other = make_model(12345);
  // B's file with A's source graph and constants (appended after B's data, which the embedded
  // section's offsets refer to).
  NefParts pb = split_nef(format::serialize_nef(other.g, embedded_opts(other.g)));
  NefParts plainA = split_nef(plain);
  NefParts mixed = pb;
  mixed.header["graph"] = plainA.header["graph"];
  // Append A's constants after B's data and point A's source tensors at them.
  uint64_t base = mixed.data.size();
  mixed.data.insert(mixed.data.end(), plainA.data.begin(), plainA.data.end());
  mixed.data.resize(format::detail::align_up(mixed.data.size(), 64), 0);
  mixed.header["tensors"] = plainA.header["tensors"];
  for (auto& [k, t] : mixed.header["tensors"].items())
    if (t.contains("data")) t["data"]["offset"] = t["data"]["offset"].get<uint64_t>() + base;
  expect_ignored(assemble_nef(mixed), "spliced", "hash mismatch");
}

TEST_F(EmbeddedPlan, MissingOrGarbageSectionFallsBack) {
  NefParts p = split_nef(embedded);
  std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> cases = {
      {"missing", [](nlohmann::json& h) { h.erase("compiled"); }},
      {"not_object", [](nlohmann::json& h) { h["compiled"] = "garbage"; }},
      {"no_hash", [](nlohmann::json& h) { h["compiled"].erase("key_hash"); }},
      {"bad_hash", [](nlohmann::json& h) { h["compiled"]["key_hash"] = "00"; }},
      {"nodes_int", [](nlohmann::json& h) { h["compiled"]["graph"]["nodes"] = 5; }},
      {"node_garbage",
       [](nlohmann::json& h) {
         h["compiled"]["graph"]["nodes"][1] = {{"x", 1}};
       }},
      {"unknown_op",
       [](nlohmann::json& h) { h["compiled"]["graph"]["nodes"].back()["op"] = "nope"; }},
      {"devices_short",
       [](nlohmann::json& h) { h["compiled"]["devices"] = nlohmann::json::array(); }},
      {"device_unknown",
       [](nlohmann::json& h) {
         for (auto& d : h["compiled"]["devices"]) d = "tpu";
       }},
      {"data_oob",
       [](nlohmann::json& h) {
         for (auto& [k, t] : h["compiled"]["tensors"].items())
           if (t.contains("data")) t["data"]["offset"] = 1 << 30;
       }},
      {"wrong_shape",
       [](nlohmann::json& h) {
         for (auto& [k, t] : h["compiled"]["tensors"].items()) t["shape"] = {3};
       }},
      {"cycle",
       [](nlohmann::json& h) {
         auto& nodes = h["compiled"]["graph"]["nodes"];
         auto& last = nodes.back();
         if (!last["inputs"].empty()) last["inputs"][0] = last["output"];
         fix_edges(h["compiled"]);
       }},
  };
  for (auto& [name, mutate] : cases) {
    NefParts q = p;
    mutate(q.header);
    expect_ignored(assemble_nef(q), "garbage_" + name);
  }
}

TEST_F(EmbeddedPlan, RandomMutationsNeverCrash) {
  // Random leaves of the compiled section replaced by random values: the load either falls back
  // (warning) or, when it still matches, uses a plan equal to the original.
  uint64_t seed = std::random_device{}();
  std::printf("mutation seed %llu\n", (unsigned long long)seed);
  std::mt19937_64 rng(seed);
  NefParts p = split_nef(embedded);
  std::vector<nlohmann::json> values = {nullptr,
                                        -1,
                                        0,
                                        1,
                                        1e300,
                                        "x",
                                        "float32",
                                        "cpu",
                                        nlohmann::json::array(),
                                        nlohmann::json::object(),
                                        int64_t(1) << 62,
                                        true};
  for (int iter = 0; iter < 60; ++iter) {
    NefParts q = p;
    std::vector<nlohmann::json*> leaves;
    std::function<void(nlohmann::json&)> walk = [&](nlohmann::json& j) {
      leaves.push_back(&j);
      if (j.is_structured())
        for (auto& c : j) walk(c);
    };
    walk(q.header["compiled"]);
    *leaves[rng() % leaves.size()] = values[rng() % values.size()];
    try {
      LoadResult r = load_and_run(assemble_nef(q), x, "mut");
      if (r.used) expect_same_as_normal(r);
    } catch (const Error&) {
      // a clean error is acceptable
    }
  }
}

TEST(EmbeddedPlanUnit, PlanFromEmbeddedChecksInterface) {
  Model a = make_model(1);
  GraphBuilder gb;
  int x = gb.input("x", {5, 7}, DType::Float32);
  gb.output(gb.add("neg", {x}), "y");  // one output where the source has two
  std::vector<std::string> dev(gb.g.nodes.size(), "cpu");
  EXPECT_THROW(compiler::plan_from_embedded(a.g, gb.g, dev), ValidationError);
  // The hash depends on both graphs and the devices.
  std::string h1 = compiler::embedded_key_hash(a.g, gb.g, dev);
  EXPECT_EQ(h1, compiler::embedded_key_hash(a.g, gb.g, dev));
  EXPECT_EQ(h1.size(), 32u);
  dev[0] = "gpu";
  EXPECT_NE(h1, compiler::embedded_key_hash(a.g, gb.g, dev));
  EXPECT_NE(h1, compiler::embedded_key_hash(make_model(2).g, gb.g, {"cpu", "cpu"}));
}

}  // namespace
}  // namespace nef::test
