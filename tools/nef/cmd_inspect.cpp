// `nef inspect FILE [--json|--dot|--passes|--plan|--memory]`: a node table and tensor sizes,
// the JSON header, a Graphviz graph, or what the compiler makes of the graph (IR after each
// pass, the compiled plan, the memory plan). The file is fully loaded and validated first, so
// a bad file fails the same way in every form.
#include <algorithm>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "compiler/compiler.h"
#include "compiler/memory_plan.h"
#include "compiler/plan_json.h"
#include "format/nef_file.h"

namespace nef::cli {
namespace {

// Left-aligned columns; the last column is not padded (it may be long).
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  }
  std::ostringstream os;
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line += std::string(width[c] - r[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    os << "  " << line << "\n";
  }
  return os.str();
}

std::string bytes_str(int64_t b) {
  if (b < 1024) return std::to_string(b) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = double(b) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return str(b, " B (", buf, ")");
}

// Attributes worth a column: an input's or constant's name/shape/dtype are already shown.
std::string attrs_str(const ir::Node& n) {
  bool source = n.is("input") || n.is("constant");
  std::string s;
  for (const auto& [k, v] : n.attrs.values()) {
    if (source && (k == "name" || k == "shape" || k == "dtype")) continue;
    s += str(s.empty() ? "" : " ", k, "=", attr_value_str(v));
  }
  if (!n.device_hint.empty()) s += str(s.empty() ? "" : " ", "hint=", n.device_hint);
  return s;
}

// "%3": how nodes are referred to everywhere (str() also sidesteps a GCC 12 -Wrestrict false
// positive on `"%" + std::string&&`).
std::string node_ref(size_t i) { return str("%", i); }

std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n' || c == '\r') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void print_table(const std::string& path, const ir::Graph& g) {
  std::map<int, std::vector<std::string>> output_of;  // node -> graph output names
  for (size_t k = 0; k < g.outputs.size(); ++k)
    output_of[g.outputs[k]].push_back(g.output_names[k]);

  std::cout << path << ": " << g.nodes.size() << " nodes, " << g.num_bindings() << " inputs, "
            << g.outputs.size() << " outputs\n\nnodes:\n";
  std::vector<std::vector<std::string>> rows{
      {"id", "op", "inputs", "output", "shape", "dtype", "attrs"}};
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    std::string ins;
    for (int k : n.inputs) ins += str(ins.empty() ? "" : ", ", node_ref(k));
    std::string out = n.name;
    if (auto it = output_of.find(int(i)); it != output_of.end()) {
      for (const std::string& o : it->second) {
        if (o == n.name) out += " (output)";
        else out += (out.empty() ? "" : " ") + ("=> " + o);
      }
    }
    rows.push_back({node_ref(i), n.op->name, ins.empty() ? "-" : ins, out.empty() ? "-" : out,
                    shape_str(n.type.shape), dtype_name(n.type.dtype), attrs_str(n)});
  }
  std::cout << table(rows);

  int64_t in_bytes = 0, const_bytes = 0, out_bytes = 0, params = 0, inter_bytes = 0;
  std::vector<std::vector<std::string>> trows{{"kind", "name", "node", "shape", "dtype", "bytes"}};
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    int64_t b = type_bytes(n.type);
    if (n.is("input")) {
      in_bytes += b;
      std::string name =
          n.binding >= 0 && n.binding < g.num_bindings() ? g.input_names[n.binding] : n.name;
      trows.push_back({"input", name.empty() ? "-" : name, node_ref(i), shape_str(n.type.shape),
                       dtype_name(n.type.dtype), bytes_str(b)});
    } else if (n.is("constant")) {
      const_bytes += b;
      params += numel(n.type.shape);
      trows.push_back({"constant", n.name.empty() ? "-" : n.name, node_ref(i),
                       shape_str(n.type.shape), dtype_name(n.type.dtype), bytes_str(b)});
    } else {
      inter_bytes += b;
    }
  }
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const ir::Node& n = g.nodes[g.outputs[k]];
    int64_t b = type_bytes(n.type);
    out_bytes += b;
    trows.push_back({"output", g.output_names[k], node_ref(g.outputs[k]), shape_str(n.type.shape),
                     dtype_name(n.type.dtype), bytes_str(b)});
  }
  std::cout << "\ntensors:\n" << table(trows);

  std::map<std::string, int> op_counts;
  for (const ir::Node& n : g.nodes) ++op_counts[n.op->name];
  std::string ops;
  for (const auto& [op, c] : op_counts) ops += str(ops.empty() ? "" : ", ", op, " x", c);
  std::cout << "\ntotals:\n"
            << "  nodes: " << g.nodes.size() << " (" << ops << ")\n"
            << "  parameters (constant elements): " << params << "\n"
            << "  constant bytes: " << bytes_str(const_bytes) << "\n"
            << "  input bytes: " << bytes_str(in_bytes) << "\n"
            << "  output bytes: " << bytes_str(out_bytes) << "\n"
            << "  computed tensors, before memory planning: " << bytes_str(inter_bytes) << "\n";
}

void print_dot(const ir::Graph& g) {
  std::ostringstream os;
  os << "digraph nef {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    std::string label = str("%", i, " ", n.op->name);
    if (!n.name.empty()) label += " '" + n.name + "'";
    label += str("\n", shape_str(n.type.shape), " ", dtype_name(n.type.dtype));
    std::string style;
    if (n.is("input")) {
      style = "shape=invhouse, style=filled, fillcolor=\"#cfe8ff\"";
    } else if (n.is("constant")) {
      style = "shape=box, style=\"filled,dashed\", fillcolor=\"#eeeeee\"";
    } else {
      style = "shape=box, style=rounded";
    }
    os << "  n" << i << " [label=\"" << dot_escape(label) << "\", " << style << "];\n";
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (int k : g.nodes[i].inputs) os << "  n" << k << " -> n" << i << ";\n";
  }
  // Outputs are separate sink nodes so a node that is also an output keeps its op label.
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    os << "  out" << k << " [label=\"" << dot_escape("output '" + g.output_names[k] + "'")
       << "\", shape=house, style=filled, fillcolor=\"#d5f5d5\"];\n";
    os << "  n" << g.outputs[k] << " -> out" << k << ";\n";
  }
  os << "}\n";
  std::cout << os.str();
}

// --passes / --plan / --memory: compiles the loaded graph as `nef run` would (same devices,
// same pipeline) and prints what came out, without running any kernel.
void print_compiled(const InspectOptions& opts, ir::Graph g) {
  std::string loaded_text = opts.passes ? ir::to_text(g) : std::string();
  compiler::CompileOptions co;
  co.keep_pass_dumps = opts.passes;  // also bypasses the plan cache, so the passes really run
  std::shared_ptr<const runtime::Plan> plan = compiler::compile(std::move(g), co);
  if (opts.passes) {
    if (opts.json) {
      nlohmann::json j = nlohmann::json::array();
      j.push_back({{"pass", "input"}, {"ir", loaded_text}});
      for (const auto& [pass, text] : plan->pass_dumps) j.push_back({{"pass", pass}, {"ir", text}});
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "--- as loaded (" << opts.file << ") ---\n" << loaded_text;
      for (const auto& [pass, text] : plan->pass_dumps)
        std::cout << "--- after " << pass << " ---\n" << text;
    }
  } else if (opts.plan) {
    if (opts.json) {
      std::cout << compiler::describe_json(*plan, 2) << "\n";
    } else {
      std::cout << "plan for " << opts.file << "\n" << compiler::describe_kernels_text(*plan);
    }
  } else if (opts.json) {  // --memory --json: the "memory" object of the plan
    nlohmann::json j = nlohmann::json::parse(compiler::describe_json(*plan));
    std::cout << j["memory"].dump(2) << "\n";
  } else {
    std::cout << compiler::describe_memory(*plan);
  }
}

}  // namespace

int cmd_inspect(const InspectOptions& opts) {
  require_file(opts.file, "graph file");
  if (opts.passes || opts.plan || opts.memory) {
    print_compiled(opts, format::read_nef(opts.file));
    std::cout << std::flush;
    return 0;
  }
  if (opts.json) {
    std::string header = format::read_nef_header_json(opts.file);
    std::cout << header << (header.empty() || header.back() != '\n' ? "\n" : "") << std::flush;
    return 0;
  }
  ir::Graph g = format::read_nef(opts.file);
  if (opts.dot) {
    print_dot(g);
  } else {
    print_table(opts.file, g);
  }
  std::cout << std::flush;
  return 0;
}

}  // namespace nef::cli
