// `nef run FILE --input NAME=FILE.npy ... [--output DIR] [--device D] [--plan] [--timing]`.
// Order of checks: command-line syntax (exit 2) before touching any file, then the device,
// the graph, input names, input files, input types; only then does anything run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>

#include "cli.h"
#include "devices/devices.h"
#include "format/npy.h"

namespace nef::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string ms_str(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f ms", ms);
  return buf;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

int cmd_run(const RunOptions& opts) {
  std::map<std::string, std::string> input_files;
  for (const std::string& spec : opts.inputs) {
    auto [name, file] = split_input_spec(spec);
    if (!input_files.emplace(name, file).second) {
      throw UsageError(str("--input '", name, "' given twice"));
    }
  }

  // --device cpu narrows the process to the CPU; auto keeps NEF_DEVICES or the default. Either
  // way a bad NEF_DEVICES or an unavailable choice fails here as a DeviceError.
  if (opts.device != "auto") devices::set_device_override({opts.device});
  devices::enabled_devices();

  require_file(opts.file, "graph file");
  auto t0 = Clock::now();
  LoadedGraph graph = LoadedGraph::load(opts.file);
  double load_ms = ms_since(t0);

  const std::vector<std::string>& names = graph.inputs();
  std::vector<std::pair<Shape, DType>> types = graph.input_types();
  for (const auto& [name, file] : input_files) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      throw ValidationError(str("[run] unknown input '", name, "'; ",
                                names.empty() ? std::string("the graph has no inputs")
                                              : "the graph's inputs are: " + join(names)));
    }
  }

  t0 = Clock::now();
  std::map<std::string, Array> inputs;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    auto it = input_files.find(name);
    const Shape* want_shape = i < types.size() ? &types[i].first : nullptr;
    const DType* want_dtype = i < types.size() ? &types[i].second : nullptr;
    if (it == input_files.end()) {
      throw ValidationError(str("[run] missing input '", name, "'",
                                want_shape ? str(" (", shape_str(*want_shape), " ",
                                                 dtype_name(*want_dtype), ")")
                                           : std::string(),
                                "; pass --input ", name, "=FILE.npy"));
    }
    require_file(it->second, "input file");
    Array a = format::read_npy(it->second);
    // Checked here too so the message names the input and its file, not a graph node.
    if (want_shape && a.shape != *want_shape) {
      throw ShapeError(str("[run] input '", name, "' from '", it->second, "' has shape ",
                           shape_str(a.shape), " but the graph expects ",
                           shape_str(*want_shape)));
    }
    if (want_dtype && a.dtype != *want_dtype) {
      throw TypeError(str("[run] input '", name, "' from '", it->second, "' has dtype ",
                          dtype_name(a.dtype), " but the graph expects ",
                          dtype_name(*want_dtype), " (convert with .astype('",
                          dtype_name(*want_dtype), "'))"));
    }
    inputs.emplace(name, std::move(a));
  }
  double read_ms = ms_since(t0);

  if (opts.plan) std::cout << describe_plan(opts.file, graph) << std::flush;

  t0 = Clock::now();
  std::map<std::string, Array> outputs = graph.run(inputs);
  double first_ms = ms_since(t0);
  std::vector<double> warm;
  for (int r = 1; r < opts.repeat; ++r) {
    t0 = Clock::now();
    outputs = graph.run(inputs);
    warm.push_back(ms_since(t0));
  }

  std::filesystem::create_directories(opts.output_dir);
  t0 = Clock::now();
  std::set<std::string> used;
  size_t index = 0;
  for (const std::string& name : graph.outputs()) {
    auto it = outputs.find(name);
    NEF_CHECK(it != outputs.end(), "output '", name, "' missing from the run's results");
    std::string file = output_file_name(name, index++);
    // Two names that sanitize alike must not overwrite each other.
    while (!used.insert(file).second) file = "_" + file;
    std::string path = (std::filesystem::path(opts.output_dir) / file).string();
    format::write_npy(path, it->second);
    std::cout << summarize(name, it->second) << "  written to " << path << "\n";
  }
  double write_ms = ms_since(t0);

  if (opts.timing) {
    std::cout << "timing:\n";
    std::cout << "  load (read + validate)      " << ms_str(load_ms) << "\n";
    std::cout << "  read inputs                 " << ms_str(read_ms) << "\n";
    std::cout << "  first run (compile + run)   " << ms_str(first_ms) << "\n";
    if (!warm.empty()) {
      std::vector<double> s = warm;
      std::sort(s.begin(), s.end());
      double median = s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
      std::cout << "  warm run median (" << s.size() << " runs)  " << ms_str(median) << "  (min "
                << ms_str(s.front()) << ", max " << ms_str(s.back()) << ")\n";
    }
    std::cout << "  write outputs               " << ms_str(write_ms) << "\n";
  }
  std::cout << std::flush;
  return 0;
}

}  // namespace nef::cli
