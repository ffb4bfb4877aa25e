#include "planner/cost_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/cache_dir.h"
#include "common/log.h"
#include "devices/cpu_info.h"
#include "nef/error.h"

namespace nef::planner {
namespace {
using Clock = std::chrono::steady_clock;

// One op node over fresh inputs, compiled for `dev` and timed (minimum of `reps` runs).
double time_op(backend::Device& dev, const std::string& op, const std::vector<ir::TensorType>& in,
               ir::Attrs attrs, int reps) {
  ir::Graph g;
  for (size_t k = 0; k < in.size(); ++k) {
    ir::Node x;
    x.op = &ir::get_op("input");
    x.attrs.set("shape", std::vector<int64_t>(in[k].shape.begin(), in[k].shape.end()));
    x.attrs.set("dtype", std::string(dtype_name(in[k].dtype)));
    x.type = in[k];
    x.binding = int(k);
    g.input_names.push_back("x" + std::to_string(k));
    g.nodes.push_back(std::move(x));
  }
  ir::Node n;
  n.op = &ir::get_op(op);
  for (size_t k = 0; k < in.size(); ++k) n.inputs.push_back(int(k));
  n.attrs = std::move(attrs);
  n.type = ir::check_and_infer(*n.op, in, n.attrs);
  g.nodes.push_back(n);
  const ir::Node& node = g.nodes.back();
  auto kernel = dev.compile(node, g);
  auto alloc = [&](const Shape& shape, DType t) {
    size_t bytes = size_t(numel(shape)) * dtype_size(t);
    Array a;
    a.storage = dev.allocate(bytes);
    a.shape = shape;
    a.strides = contiguous_strides(shape);
    a.dtype = t;
    std::string zeros(bytes, '\0');
    if (a.storage->on_host()) std::memset(a.storage->data(), 0, bytes);
    else if (bytes) a.storage->space()->write(*a.storage, 0, zeros.data(), bytes);
    return a;
  };
  std::vector<Array> inputs;
  for (const auto& t : in) inputs.push_back(alloc(t.shape, t.dtype));
  Array out = alloc(node.type.shape, node.type.dtype);
  Array ws;
  if (int64_t b = kernel->workspace_bytes(); b > 0) ws = alloc({b}, DType::UInt8);
  backend::QueuePtr q = dev.acquire_queue();
  backend::KernelArgs args{inputs, out, node.attrs, node, ws};
  double best = 1e30;
  for (int r = 0; r < reps + 1; ++r) {  // the first run warms caches and lazy builds
    Clock::time_point t0 = Clock::now();
    kernel->enqueue(args, *q, {})->wait();
    double t = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r > 0) best = std::min(best, t);
  }
  return best;
}

double time_copy(backend::Device& dev, size_t bytes, bool to_device, int reps) {
  Array host = Array::empty({int64_t(bytes)}, DType::UInt8);
  std::memset(host.data(), 1, bytes);
  Array d;
  d.storage = dev.allocate(bytes);
  d.shape = host.shape;
  d.strides = host.strides;
  d.dtype = DType::UInt8;
  backend::QueuePtr q = dev.acquire_queue();
  double best = 1e30;
  for (int r = 0; r < reps + 1; ++r) {
    Clock::time_point t0 = Clock::now();
    (to_device ? dev.copy(host, d, *q, {}) : dev.copy(d, host, *q, {}))->wait();
    double t = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r > 0) best = std::min(best, t);
  }
  return best;
}

DeviceProfile measure(backend::Device& dev) {
  DeviceProfile p = default_profile(dev);
  const int64_t n = int64_t{1} << 22;  // 4M float32: 48 MB of traffic for a + b
  double t_add = time_op(dev, "add", {{{n}, DType::Float32}, {{n}, DType::Float32}}, {}, 3);
  p.bandwidth_bytes = 3.0 * 4.0 * double(n) / t_add;
  const int64_t m = 1024;  // large enough for a GEMM's steady rate (512 undersells it)
  ir::TensorType square{{m, m}, DType::Float32};
  try {
    double t_mm = time_op(dev, "matmul", {square, square}, {}, 3);
    p.flops = 2.0 * double(m * m * m) / t_mm;
    p.method = "matmul";
  } catch (const CompileError&) {
    // No GEMM on this device: arithmetic throughput from a math-heavy elementwise op, counted
    // with the registry's FLOPs per element (what node_seconds charges).
    double t_tanh = time_op(dev, "tanh", {{{n}, DType::Float32}}, {}, 3);
    p.flops = ir::get_op("tanh").flops_per_element * double(n) / t_tanh;
    p.method = "tanh";
  }
  p.launch_seconds = time_op(dev, "add", {{{1}, DType::Float32}, {{1}, DType::Float32}}, {}, 10);
  if (!dev.is_host()) {
    double small = time_copy(dev, 64, true, 5);
    p.transfer_seconds = small;
    // Uploads are measured even where the device shares host memory: the runtime maps a host
    // value across only when its address suits the device (numpy's large arrays, at a page + 16
    // bytes, do not suit PoCL), so the planner must not count on a free transfer. Downloads
    // from such a device are always mapped (map_to_host has no condition): free.
    const size_t bytes = size_t{16} << 20;
    double up = time_copy(dev, bytes, true, 3);
    p.from_host_bytes = double(bytes) / std::max(up - small, 1e-9);
    if (dev.info().host_unified) {
      p.to_host_bytes = 1e13;
    } else {
      double down = time_copy(dev, bytes, false, 3);
      p.to_host_bytes = double(bytes) / std::max(down - small, 1e-9);
    }
  }
  p.measured = true;
  p.source = "measured";
  return p;
}

std::string cache_key(const backend::Device& dev) {
  static const std::string cpu_model = devices::detect_cpu().model;  // fixed while we run
  const backend::DeviceInfo& i = dev.info();
  return str("nef-calibration-v4|", devices::library_version(), "|", cpu_model, "|", i.id, "|",
             i.name, "|", i.vendor, "|", i.driver_version, "|", i.api_version, "|", i.compute_units,
             "|", dev.config_key());
}

bool positive(double v) { return std::isfinite(v) && v > 0; }

bool runs_matmul(const backend::Device& dev) {
  ir::Graph g;
  for (int k = 0; k < 2; ++k) {
    ir::Node x;
    x.op = &ir::get_op("input");
    x.type = {{512, 512}, DType::Float32};
    x.binding = k;
    g.nodes.push_back(x);
  }
  ir::Node mm;
  mm.op = &ir::get_op("matmul");
  mm.inputs = {0, 1};
  mm.type = {{512, 512}, DType::Float32};
  return dev.supports(mm, g);
}

// Whether the machine looked busy (1-minute load above half the cores).
bool busy() {
  std::optional<std::string> avg = read_file("/proc/loadavg", 256);
  if (!avg) return false;
  double load = std::atof(avg->c_str());
  int cores = std::max(1, devices::detect_cpu().logical_cores);
  return load > 0.5 * cores;
}

std::optional<DeviceProfile> load(const std::string& path, const std::string& key) {
  std::optional<std::string> text = read_file(path, 1 << 16);
  if (!text) return std::nullopt;
  try {
    nlohmann::json j = nlohmann::json::parse(*text);
    if (j.at("key").get<std::string>() != key) return std::nullopt;
    DeviceProfile p;
    p.bandwidth_bytes = j.at("bandwidth_bytes").get<double>();
    p.flops = j.at("flops").get<double>();
    p.launch_seconds = j.at("launch_seconds").get<double>();
    p.to_host_bytes = j.at("to_host_bytes").get<double>();
    p.from_host_bytes = j.at("from_host_bytes").get<double>();
    p.transfer_seconds = j.at("transfer_seconds").get<double>();
    p.method = j.at("method").get<std::string>();
    if (!positive(p.bandwidth_bytes) || !positive(p.flops) || !positive(p.to_host_bytes) ||
        !positive(p.from_host_bytes) || !(p.launch_seconds >= 0) || !(p.transfer_seconds >= 0) ||
        !std::isfinite(p.launch_seconds) || !std::isfinite(p.transfer_seconds))
      return std::nullopt;
    p.measured = true;
    p.source = "cache " + path;
    return p;
  } catch (const std::exception&) {
    return std::nullopt;  // a corrupted or foreign file: measure again
  }
}

void store(const std::string& path, const std::string& key, const DeviceProfile& p) {
  nlohmann::json j = {{"key", key},
                      {"bandwidth_bytes", p.bandwidth_bytes},
                      {"flops", p.flops},
                      {"launch_seconds", p.launch_seconds},
                      {"to_host_bytes", p.to_host_bytes},
                      {"from_host_bytes", p.from_host_bytes},
                      {"transfer_seconds", p.transfer_seconds},
                      {"method", p.method}};
  write_file_atomic(path, j.dump(1));
}

}  // namespace

double node_seconds(const ir::Node& n, const ir::Graph& g, const DeviceProfile& p) {
  if (n.is("input") || n.is("constant") || n.op->has(ir::kView)) return 0;
  thread_local std::vector<ir::TensorType> inputs;  // reused: no allocation per node
  g.input_types(n, inputs);
  ir::Cost c = ir::estimate_cost(*n.op, inputs, n.type, n.attrs);
  double rate = p.flops * (n.type.dtype == DType::Float64 ? 0.5 : 1.0);
  return p.launch_seconds + std::max(c.flops / rate, c.bytes / p.bandwidth_bytes);
}

double transfer_seconds(double bytes, const DeviceProfile& from, bool from_host,
                        const DeviceProfile& to, bool to_host) {
  double t = 0;
  if (!from_host) t += from.transfer_seconds + bytes / from.to_host_bytes;
  if (!to_host) t += to.transfer_seconds + bytes / to.from_host_bytes;
  return t;
}

DeviceProfile default_profile(const backend::Device& dev) {
  const backend::DeviceInfo& i = dev.info();
  DeviceProfile p;
  int units = std::max(1, i.compute_units);
  // Rough facts-based guesses, replaced by measurements whenever placement needs a choice.
  p.flops = 2e10 * units;
  p.bandwidth_bytes = 1e10 * std::min(units, 4);
  p.launch_seconds = dev.is_host() ? 2e-6 : 5e-5;
  p.to_host_bytes = p.from_host_bytes = i.host_unified ? 1e10 : 5e9;
  p.transfer_seconds = dev.is_host() ? 0 : 2e-5;
  p.source = "defaults";
  return p;
}

DeviceProfile known_profile(backend::Device& dev) {
  const char* mode = std::getenv("NEF_CALIBRATION");
  if (mode && std::strcmp(mode, "off") == 0) return default_profile(dev);
  // Every compile asks: the file is read once per process and key (and cache location), not per
  // compile (reading and parsing it was most of a small graph's compile time).
  std::string key = cache_key(dev);
  std::string memo_key = key;
  for (const char* var : {"NEF_CACHE_DIR", "XDG_CACHE_HOME", "HOME"}) {
    const char* v = std::getenv(var);
    memo_key += '|';
    memo_key += v ? v : "";
  }
  static std::mutex mu;
  static auto* known = new std::map<std::string, DeviceProfile>();  // never destroyed
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = known->find(memo_key); it != known->end()) return it->second;
  }
  DeviceProfile p = default_profile(dev);
  std::optional<std::string> dir = cache_dir("calibration");
  if (dir)
    if (std::optional<DeviceProfile> c = load(*dir + "/" + hash_hex(key) + ".json", key)) p = *c;
  std::lock_guard<std::mutex> lock(mu);
  return known->emplace(memo_key, p).first->second;
}

const DeviceProfile& calibrated_profile(backend::Device& dev) {
  static std::mutex mu;
  static std::map<const backend::Device*, DeviceProfile>* profiles =
      new std::map<const backend::Device*, DeviceProfile>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = profiles->find(&dev);
  if (it != profiles->end()) return it->second;
  DeviceProfile p;
  const char* mode = std::getenv("NEF_CALIBRATION");
  if (mode && std::strcmp(mode, "off") == 0) {
    p = default_profile(dev);
  } else {
    std::string key = cache_key(dev);
    std::optional<std::string> dir = cache_dir("calibration");
    std::string path = dir ? *dir + "/" + hash_hex(key) + ".json" : std::string();
    std::optional<DeviceProfile> cached = dir ? load(path, key) : std::nullopt;
    // A profile whose FLOP rate came from the fallback is stale once the device has a GEMM.
    if (cached && cached->method != "matmul" && runs_matmul(dev)) cached.reset();
    if (cached) {
      p = *cached;
    } else {
      try {
        p = measure(dev);
        // A profile measured while other work competes for the cores is used, not kept.
        if (dir && !busy()) store(path, key, p);
      } catch (const std::exception& e) {
        debug_log(str("calibration of ", dev.id(), " failed (", e.what(), "); using defaults"));
        p = default_profile(dev);
      }
    }
  }
  debug_log(str("profile ", dev.id(), " (", p.source, "): ", p.bandwidth_bytes / 1e9, " GB/s, ",
                p.flops / 1e9, " GFLOP/s, launch ", p.launch_seconds * 1e6, " us, to host ",
                p.to_host_bytes / 1e9, " GB/s, from host ", p.from_host_bytes / 1e9, " GB/s"));
  return profiles->emplace(&dev, p).first->second;
}

}  // namespace nef::planner
