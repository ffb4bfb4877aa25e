// `nef run FILE --input NAME=FILE.npy ... [--output DIR] [--device D] [--plan] [--timing]
// [--profile] [--repeat N]`.
// Order of checks: command-line syntax (exit 2) before touching any file, then the device,
// the graph, input names, input files, input types; only then does anything run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "backends/registry.h"
#include "cli.h"
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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string fixed(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Rows of cells as aligned columns (`right`: right-aligned), each line indented by two spaces.
std::string table(const std::vector<std::vector<std::string>>& rows,
                  const std::vector<bool>& right) {
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  std::string s;
  for (const auto& r : rows) {
    std::string line = " ";
    for (size_t c = 0; c < r.size(); ++c) {
      std::string pad(width[c] - r[c].size(), ' ');
      line += " " + (right[c] ? pad + r[c] : c + 1 == r.size() ? r[c] : r[c] + pad);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    s += line + "\n";
  }
  return s;
}

// The per-kernel table (median over the profiled runs) and the time per op kind.
std::string profile_report(const std::vector<RunProfile>& runs, bool warm) {
  const std::vector<KernelProfile>& kernels = runs.front().kernels;
  std::vector<double> ms(kernels.size());
  std::vector<double> totals;
  for (size_t i = 0; i < kernels.size(); ++i) {
    std::vector<double> t;
    for (const RunProfile& r : runs) {
      // Every run of one loaded graph executes the same plan, so the same kernels.
      NEF_CHECK(r.kernels.size() == kernels.size() && r.kernels[i].step == kernels[i].step,
                "profiled runs executed different plans");
      t.push_back(r.kernels[i].seconds * 1e3);
    }
    ms[i] = median(t);
  }
  for (const RunProfile& r : runs) totals.push_back(r.seconds * 1e3);
  double sum = 0;
  for (double m : ms) sum += m;
  auto pct = [&](double m) { return fixed(sum > 0 ? 100 * m / sum : 0, 1); };

  // The first run also pays first-touch costs of fresh memory, so warm runs are preferred.
  std::string which = !warm ? std::string("1 run, the first; --repeat N profiles N-1 warm runs")
                      : runs.size() == 1 ? std::string("1 warm run")
                                         : str("median of ", runs.size(), " warm runs");
  std::string s = str("profile: ", kernels.size(), " kernels, ", fixed(sum, 3), " ms of ",
                      fixed(median(totals), 3), " ms per execution (", which, "); predicted ",
                      fixed(runs.front().predicted_seconds * 1e3, 3), " ms\n");
  std::vector<std::vector<std::string>> rows{
      {"step", "node", "op", "shape", "dtype", "device", "kernel", "ms", "est_ms", "%", "covers"}};
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelProfile& k = kernels[i];
    // Only fused kernels cover more than their own op.
    bool fused = k.ops.size() != 1 || k.ops.front() != k.op;
    std::string covers;
    for (const std::string& o : k.ops) covers += (covers.empty() ? "" : " ") + o;
    rows.push_back({std::to_string(k.step), std::to_string(k.node), k.op, shape_str(k.shape),
                    dtype_name(k.dtype), k.device, k.kernel, fixed(ms[i], 4),
                    fixed(k.predicted_seconds * 1e3, 4), pct(ms[i]),
                    fused ? covers : std::string()});
  }
  s += table(rows, {true, true, false, false, false, false, false, true, true, true, false});

  std::vector<std::string> order;
  std::map<std::string, std::pair<int, double>> by_op;  // op -> (kernels, ms)
  for (size_t i = 0; i < kernels.size(); ++i) {
    auto [it, fresh] = by_op.try_emplace(kernels[i].op, 0, 0.0);
    if (fresh) order.push_back(kernels[i].op);
    it->second.first++;
    it->second.second += ms[i];
  }
  std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
    return by_op[a].second > by_op[b].second;
  });
  s += "by op:\n";
  std::vector<std::vector<std::string>> op_rows{{"op", "kernels", "ms", "%"}};
  for (const std::string& op : order)
    op_rows.push_back(
        {op, std::to_string(by_op[op].first), fixed(by_op[op].second, 4), pct(by_op[op].second)});
  op_rows.push_back({"total", std::to_string(kernels.size()), fixed(sum, 4), pct(sum)});
  s += table(op_rows, {false, true, true, true});
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
  if (opts.device != "auto") backend::set_device_override({opts.device});
  backend::enabled_device_ids();

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
      throw ValidationError(
          str("[run] missing input '", name, "'",
              want_shape ? str(" (", shape_str(*want_shape), " ", dtype_name(*want_dtype), ")")
                         : std::string(),
              "; pass --input ", name, "=FILE.npy"));
    }
    require_file(it->second, "input file");
    Array a = format::read_npy(it->second);
    // Checked here too so the message names the input and its file, not a graph node.
    if (want_shape && a.shape != *want_shape) {
      throw ShapeError(str("[run] input '", name, "' from '", it->second, "' has shape ",
                           shape_str(a.shape), " but the graph expects ", shape_str(*want_shape)));
    }
    if (want_dtype && a.dtype != *want_dtype) {
      throw TypeError(str("[run] input '", name, "' from '", it->second, "' has dtype ",
                          dtype_name(a.dtype), " but the graph expects ", dtype_name(*want_dtype),
                          " (convert with .astype('", dtype_name(*want_dtype), "'))"));
    }
    inputs.emplace(name, std::move(a));
  }
  double read_ms = ms_since(t0);

  if (opts.plan) std::cout << describe_plan(opts.file, graph) << std::flush;

  // --profile times the warm runs; with no warm run, the only one.
  std::vector<RunProfile> profiles;
  auto run_once = [&](bool profiled) {
    if (!profiled) return graph.run(inputs);
    profiles.emplace_back();
    return graph.run_profiled(inputs, profiles.back());
  };
  t0 = Clock::now();
  std::map<std::string, Array> outputs = run_once(opts.profile && opts.repeat == 1);
  double first_ms = ms_since(t0);
  std::vector<double> warm;
  for (int r = 1; r < opts.repeat; ++r) {
    t0 = Clock::now();
    outputs = run_once(opts.profile);
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
      auto [lo, hi] = std::minmax_element(warm.begin(), warm.end());
      std::cout << "  warm run median (" << warm.size() << " runs)  " << ms_str(median(warm))
                << "  (min " << ms_str(*lo) << ", max " << ms_str(*hi) << ")\n";
    }
    std::cout << "  write outputs               " << ms_str(write_ms) << "\n";
  }
  if (opts.profile) std::cout << profile_report(profiles, opts.repeat > 1);
  std::cout << std::flush;
  return 0;
}

}  // namespace nef::cli
