// Hardware detection sanity and device-list parsing (NEF_DEVICES, programmatic override).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "backends/registry.h"
#include "nef/error.h"

namespace nef::backend {
namespace {
using devices::CpuFeatures;
using devices::CpuInfo;
using devices::feature_list;
using devices::MemoryInfo;

// Sets or unsets NEF_DEVICES for one test and restores the previous value afterwards.
class EnvGuard {
 public:
  explicit EnvGuard(const char* value) {
    const char* old = std::getenv("NEF_DEVICES");
    if (old) old_ = old;
    had_ = old != nullptr;
    if (value) setenv("NEF_DEVICES", value, 1);
    else unsetenv("NEF_DEVICES");
  }
  ~EnvGuard() {
    if (had_) setenv("NEF_DEVICES", old_.c_str(), 1);
    else unsetenv("NEF_DEVICES");
    clear_device_override();
  }

 private:
  std::string old_;
  bool had_ = false;
};

// A device that only has facts (for parsing tests): it runs nothing.
class FakeDevice final : public Device {
 public:
  explicit FakeDevice(DeviceInfo i) : info_(std::move(i)) {}
  const DeviceInfo& info() const override { return info_; }
  bool supports(const ir::Node&, const ir::Graph&) const override { return false; }
  std::shared_ptr<const Kernel> compile(const ir::Node&, const ir::Graph&) const override {
    throw CompileError("fake");
  }
  std::shared_ptr<Storage> allocate(size_t) override { throw OutOfMemoryError("fake"); }
  QueuePtr acquire_queue() override { return nullptr; }
  EventPtr copy(const Array&, const Array&, Queue&, Waits) override { return completed_event(); }

 private:
  DeviceInfo info_;
};

// A report with the CPU, a fake GPU, and an OpenCL backend that found no device.
DeviceReport fake_report() {
  DeviceReport r;
  r.cpu = detect().cpu;
  r.memory = detect().memory;
  r.devices.push_back(host_device());
  DeviceInfo g;
  g.id = "cuda:0";
  g.backend = "cuda";
  g.kind = "gpu";
  g.description = "fake gpu";
  r.devices.push_back(std::make_shared<FakeDevice>(g));
  r.problems.emplace_back("opencl", "driver not found");
  return r;
}

// fake_report plus an OpenCL device that runs on the host's cores (PoCL's kind).
DeviceReport fake_report_with_host_opencl() {
  DeviceReport r = fake_report();
  r.problems.clear();
  DeviceInfo c;
  c.id = "opencl:0";
  c.backend = "opencl";
  c.kind = "cpu";
  c.description = "fake opencl cpu device";
  r.devices.push_back(std::make_shared<FakeDevice>(c));
  return r;
}

TEST(Devices, CpuIsSane) {
  const DeviceReport& r = detect();
  const CpuInfo& c = r.cpu;
  EXPECT_GE(c.logical_cores, 1);
  EXPECT_GE(c.physical_cores, 1);
  EXPECT_LE(c.physical_cores, c.logical_cores);
  EXPECT_FALSE(c.vendor.empty());
  EXPECT_FALSE(c.model.empty());
  EXPECT_FALSE(c.arch.empty());
  // Cache sizes are 0 (unknown) or plausible; levels grow outward when known.
  if (c.l1d_bytes) {
    EXPECT_GE(c.l1d_bytes, 4 << 10);
    EXPECT_LE(c.l1d_bytes, 4 << 20);
  }
  if (c.l2_bytes) {
    EXPECT_GE(c.l2_bytes, 64 << 10);
    EXPECT_LE(c.l2_bytes, int64_t(256) << 20);
    if (c.l1d_bytes) {
      EXPECT_GT(c.l2_bytes, c.l1d_bytes);
    }
  }
  if (c.l3_bytes) {
    EXPECT_GE(c.l3_bytes, 256 << 10);
    EXPECT_LE(c.l3_bytes, int64_t(16) << 30);
  }
#if defined(__x86_64__)
  EXPECT_GT(c.l1d_bytes, 0);
  EXPECT_GT(c.l2_bytes, 0);
  EXPECT_TRUE(c.features.sse4_2 || !c.features.avx);  // every AVX CPU has SSE4.2
#endif
  // The same process sees the same count std::thread does (when it knows one).
  unsigned hc = std::thread::hardware_concurrency();
  if (hc) {
    EXPECT_LE(int(hc), c.logical_cores * 2);
  }
}

TEST(Devices, FeatureImplicationsHold) {
  const CpuFeatures& f = detect().cpu.features;
  // Each of these is enforced by the ISA (and by our OS-support checks).
  EXPECT_TRUE(!f.avx2 || f.avx);
  EXPECT_TRUE(!f.fma || f.avx);
  EXPECT_TRUE(!(f.avx512bw || f.avx512vl || f.avx512_vnni || f.avx512_bf16) || f.avx512f);
  EXPECT_TRUE(!f.avx_vnni || f.avx2);
  EXPECT_TRUE(!f.sve2 || f.sve);
#if defined(__x86_64__)
  EXPECT_FALSE(f.neon || f.sve || f.sve2 || f.dotprod || f.bf16);
#endif
#if defined(__aarch64__)
  EXPECT_TRUE(f.neon);  // mandatory on AArch64 Linux
  EXPECT_FALSE(f.avx || f.avx2 || f.avx512f);
#endif
#if defined(__AVX2__)
  EXPECT_TRUE(f.avx2);  // this binary was compiled for AVX2 and runs, so the CPU has it
#endif
}

TEST(Devices, FeatureListCoversEveryFlag) {
  CpuFeatures f;
  auto list = feature_list(f);
  EXPECT_EQ(list.size(), 16u);
  for (const auto& [name, on] : list) EXPECT_FALSE(on) << name;
  f.avx512_bf16 = true;
  int set = 0;
  for (const auto& [name, on] : feature_list(f)) {
    if (on) {
      ++set;
      EXPECT_EQ(name, "avx512_bf16");
    }
  }
  EXPECT_EQ(set, 1);
}

TEST(Devices, MemoryIsSane) {
  const MemoryInfo& m = detect().memory;
  EXPECT_GT(m.total_bytes, int64_t(16) << 20);
  EXPECT_GE(m.available_bytes, 0);
  EXPECT_LE(m.available_bytes, m.total_bytes);
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    // /proc/meminfo and sysconf describe the same RAM (to within a few percent of rounding).
    double ratio = double(m.total_bytes) / (double(pages) * double(page));
    EXPECT_NEAR(ratio, 1.0, 0.05);
  }
}

TEST(Devices, CpuAlwaysFirst) {
  const DeviceReport& r = detect();
  ASSERT_FALSE(r.devices.empty());
  EXPECT_EQ(r.devices[0]->id(), "cpu");
  EXPECT_EQ(r.devices[0]->info().kind, "cpu");
  EXPECT_TRUE(r.devices[0]->is_host());
  EXPECT_EQ(host_device(), r.devices[0]);
  EXPECT_EQ(find_device("cpu"), r.devices[0]);
  EXPECT_EQ(find_device("cuda:7"), nullptr);
  EXPECT_EQ(&detect(), &r);  // cached
}

TEST(Devices, DefaultEnablesAllButHostCoreDevices) {
  EnvGuard env(nullptr);
  auto e = enabled_device_ids();
  size_t expected = 0;
  for (const auto& d : detect().devices) expected += d->is_host() || d->info().kind != "cpu";
  ASSERT_EQ(e.size(), expected);
  EXPECT_EQ(e[0], "cpu");
  EnvGuard blank("  ");
  EXPECT_EQ(enabled_device_ids(), e);  // a blank NEF_DEVICES counts as unset
}

TEST(Devices, ParseLists) {
  DeviceReport r = fake_report();
  using V = std::vector<std::string>;
  EXPECT_EQ(parse_device_list("cpu", r), V{"cpu"});
  EXPECT_EQ(parse_device_list(" CPU , cpu,", r), V{"cpu"});             // trimmed, case, duplicates
  EXPECT_EQ(parse_device_list("cuda:0,cpu", r), (V{"cpu", "cuda:0"}));  // report order
  EXPECT_EQ(parse_device_list("gpu", r), V{"cuda:0"});                  // a kind
  EXPECT_EQ(parse_device_list("cuda", r), V{"cuda:0"});                 // a backend
  EXPECT_EQ(parse_device_list("auto", r), (V{"cpu", "cuda:0"}));
  EXPECT_EQ(parse_device_list("", r), (V{"cpu", "cuda:0"}));
  // Known names with no device here are dropped (with a warning), not errors.
  EXPECT_EQ(parse_device_list("opencl:0,cpu", r), V{"cpu"});
  EXPECT_EQ(parse_device_list("opencl", r), V{});
  // An OpenCL device on the host's own cores: left out of auto, in when named or with "all".
  DeviceReport h = fake_report_with_host_opencl();
  EXPECT_EQ(parse_device_list("", h), (V{"cpu", "cuda:0"}));
  EXPECT_EQ(parse_device_list("auto", h), (V{"cpu", "cuda:0"}));
  EXPECT_EQ(parse_device_list("all", h), (V{"cpu", "cuda:0", "opencl:0"}));
  EXPECT_EQ(parse_device_list("opencl", h), V{"opencl:0"});
  EXPECT_EQ(parse_device_list("opencl:0", h), V{"opencl:0"});
  EXPECT_EQ(parse_device_list("auto,opencl", h), (V{"cpu", "cuda:0", "opencl:0"}));
}

TEST(Devices, PlacementKeepsTheCpuAsFallback) {
  EnvGuard env("opencl:5");  // not present here: the CPU remains, as a first-class device
  PlacementDevices p = placement_devices();
  ASSERT_EQ(p.devices.size(), 1u);
  EXPECT_TRUE(p.devices[0]->is_host());
  EXPECT_FALSE(p.fallback_only[0]);
}

TEST(Devices, ParseErrors) {
  DeviceReport r = fake_report();
  try {
    parse_device_list("cpu,tpu", r);
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'tpu'"), std::string::npos) << m;
    EXPECT_NE(m.find("NEF_DEVICES"), std::string::npos) << m;
    EXPECT_NE(m.find("cpu, cuda:0"), std::string::npos) << m;  // the devices here
    EXPECT_EQ(e.code(), ErrorCode::Device);
  }
  EXPECT_THROW(parse_device_list(",,gpu7", r), DeviceError);
  EXPECT_THROW(parse_device_list("opencl:x", r), DeviceError);
}

TEST(Devices, EnvVariable) {
  {
    EnvGuard env("cpu");
    EXPECT_EQ(enabled_device_ids(), std::vector<std::string>{"cpu"});
  }
  {
    EnvGuard env("cpu,warp-drive");
    try {
      enabled_device_ids();
      FAIL() << "expected DeviceError";
    } catch (const DeviceError& e) {
      EXPECT_NE(std::string(e.what()).find("warp-drive"), std::string::npos);
    }
    EXPECT_THROW(to_json(detect()), DeviceError);  // the report shows what is enabled
  }
}

TEST(Devices, OverrideWinsOverEnv) {
  EnvGuard env("nonsense");
  set_device_override({"cpu"});
  EXPECT_EQ(enabled_device_ids(), std::vector<std::string>{"cpu"});
  EXPECT_THROW(set_device_override({"gpu9"}), DeviceError);
  EXPECT_EQ(enabled_device_ids(), std::vector<std::string>{"cpu"});  // a failed set changes nothing
  set_device_override({});  // clears: NEF_DEVICES applies again
  EXPECT_THROW(enabled_device_ids(), DeviceError);
}

TEST(Devices, JsonForm) {
  EnvGuard env(nullptr);
  auto j = nlohmann::json::parse(to_json(detect()));
  EXPECT_EQ(j["cpu"]["logical_cores"].get<int>(), detect().cpu.logical_cores);
  EXPECT_TRUE(j["cpu"]["features"].contains("avx512_vnni"));
  EXPECT_TRUE(j["cpu"]["cache"].contains("l1d_bytes"));
  ASSERT_TRUE(j["devices"].is_array());
  EXPECT_EQ(j["devices"][0]["name"], "cpu");
  EXPECT_EQ(j["devices"][0]["enabled"], true);
  EXPECT_TRUE(j["devices"][0].contains("compute_units"));
  EXPECT_TRUE(j["problems"].is_array());
  EXPECT_EQ(j["enabled"][0], "cpu");
  EXPECT_GT(j["memory"]["total_bytes"].get<int64_t>(), 0);
  std::string text = to_text(detect());
  EXPECT_NE(text.find("cpu"), std::string::npos);
  EXPECT_NE(text.find("enabled"), std::string::npos);
}

TEST(Devices, PlacementScopeWinsOnItsThreadAndNests) {
  EnvGuard env("cpu,opencl:5");
  const std::vector<std::string> outside = enabled_device_ids();
  {
    PlacementScope cpu({"cpu"});
    EXPECT_EQ(enabled_device_ids(), std::vector<std::string>{"cpu"});
    {
      PlacementScope any({"auto"});
      EXPECT_EQ(enabled_device_ids(), resolve_devices({}, detect(), "test"));
    }
    EXPECT_EQ(enabled_device_ids(), std::vector<std::string>{"cpu"});
    std::vector<std::string> other;  // another thread does not see the scope
    std::thread([&] { other = enabled_device_ids(); }).join();
    EXPECT_EQ(other, outside);
  }
  EXPECT_EQ(enabled_device_ids(), outside);
  EXPECT_THROW(PlacementScope({"warp-drive"}), DeviceError);
}

}  // namespace
}  // namespace nef::backend
