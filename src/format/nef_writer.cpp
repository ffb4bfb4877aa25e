// .nef writer: JSON header in the seed's graph-v1 layout plus the 64-byte aligned binary section
// (docs/format.md). Anything the reader would reject is rejected here first, so every file we
// write loads again.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "format/format_internal.h"
#include "format/mmap_file.h"
#include "format/nef_file.h"
#include "nef/error.h"

namespace nef::format {
namespace {

using nlohmann::json;
using namespace detail;

void check_len(const std::string& s, const char* what, size_t node) {
  if (s.size() > kMaxString)
    throw ValidationError(str("[write_nef] node ", node, ": ", what, " is ", s.size(),
                              " bytes, longer than the ", kMaxString, "-byte limit"));
}

// Non-finite values have no JSON number form; they are written as strings.
json encode_float(double v) {
  if (std::isnan(v)) return std::signbit(v) ? "-nan" : "nan";  // sign kept, payload not
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

json encode_attr(const ir::AttrValue& v, size_t node) {
  json out = json::object();
  // The file's own type names (docs/format.md), independent of the registry's display names.
  static constexpr const char* kTypeNames[] = {"int", "float", "bool", "string", "ints", "floats"};
  out["type"] = kTypeNames[v.index()];
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, double>) {
          out["value"] = encode_float(x);
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          if (x.size() > kMaxList)
            throw ValidationError(str("[write_nef] node ", node, ": attribute list too long"));
          json a = json::array();
          for (double d : x) a.push_back(encode_float(d));
          out["value"] = std::move(a);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          if (x.size() > kMaxList)
            throw ValidationError(str("[write_nef] node ", node, ": attribute list too long"));
          out["value"] = x;
        } else if constexpr (std::is_same_v<T, std::string>) {
          check_len(x, "string attribute", node);
          out["value"] = x;
        } else {
          out["value"] = x;
        }
      },
      v);
  return out;
}

// Unique tensor names: a node keeps its name if it is the first to use it, others get "t<i>".
std::vector<std::string> tensor_names(const ir::Graph& g) {
  std::vector<std::string> names(g.nodes.size());
  std::unordered_set<std::string> used;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const std::string& n = g.nodes[i].name;
    check_len(n, "name", i);
    if (!n.empty() && used.insert(n).second) names[i] = n;
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!names[i].empty()) continue;
    std::string cand = str("t", i);
    for (int k = 1; used.count(cand); ++k) cand = str("t", i, "_", k);
    used.insert(cand);
    names[i] = cand;
  }
  return names;
}

struct Blob {
  Array a;
  uint64_t offset;
};

struct Encoded {
  json graph, tensors;
};

// One graph as the header's "graph" and "tensors" objects; constants are appended to `blobs`.
// With `dedupe`, a constant whose bytes equal an earlier blob's shares its offset (the embedded
// plan's unchanged weights cost no second copy).
Encoded encode_graph(const ir::Graph& g, std::vector<Blob>& blobs, uint64_t& data_size,
                     bool dedupe) {
  const size_t n = g.nodes.size();
  if (n > kMaxNodes)
    throw ValidationError(str("[write_nef] graph has ", n, " nodes, more than ", kMaxNodes));
  std::vector<std::string> names = tensor_names(g);
  std::vector<std::string> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = str("node_", i);

  json nodes = json::array(), edges = json::array(), tensors = json::object();
  for (size_t i = 0; i < n; ++i) {
    const ir::Node& node = g.nodes[i];
    NEF_CHECK(node.op, "node ", i, " has no op");
    json jn = json::object();
    jn["id"] = ids[i];
    jn["op"] = node.op->name;
    json ins = json::array();
    std::vector<int> producers;
    for (int in : node.inputs) {
      if (in < 0 || static_cast<size_t>(in) >= i)
        throw ValidationError(str("[write_nef] node ", i, " (", node.op->name, ") refers to node ",
                                  in, " which does not precede it"));
      ins.push_back(names[in]);
      if (std::find(producers.begin(), producers.end(), in) == producers.end())
        producers.push_back(in);
    }
    for (int p : producers) edges.push_back({{"from", ids[p]}, {"to", ids[i]}});
    jn["inputs"] = std::move(ins);
    jn["output"] = names[i];
    if (node.name != names[i]) jn["name"] = node.name;
    json attrs = json::object();
    for (const auto& [k, v] : node.attrs.values()) {
      check_len(k, "attribute name", i);
      attrs[k] = encode_attr(v, i);
    }
    jn["attrs"] = std::move(attrs);
    check_len(node.device_hint, "device hint", i);
    jn["preferred_device"] = node.device_hint.empty() ? std::string("auto") : node.device_hint;
    if (node.is("input")) jn["binding"] = node.binding;
    nodes.push_back(std::move(jn));

    json t = json::object();
    t["shape"] = node.type.shape;
    t["dtype"] = dtype_name(node.type.dtype);
    if (node.type.weak) t["weak"] = true;
    if (node.is("constant")) {
      if (!node.constant)
        throw ValidationError(str("[write_nef] node ", i, " (constant) has no value"));
      Array a = node.constant->contiguous();
      if (a.shape != node.type.shape || a.dtype != node.type.dtype)
        throw ValidationError(str("[write_nef] node ", i, " (constant) value ", shape_str(a.shape),
                                  " ", dtype_name(a.dtype), " does not match its type ",
                                  shape_str(node.type.shape), " ", dtype_name(node.type.dtype)));
      const Blob* same = nullptr;
      if (dedupe)
        for (const Blob& b : blobs)
          if (b.a.nbytes() == a.nbytes() && a.nbytes() &&
              std::memcmp(b.a.data(), a.data(), a.nbytes()) == 0) {
            same = &b;
            break;
          }
      if (same) {
        t["data"] = {{"offset", same->offset}, {"nbytes", a.nbytes()}};
      } else {
        uint64_t off = align_up(data_size, kAlign);
        t["data"] = {{"offset", off}, {"nbytes", a.nbytes()}};
        data_size = off + a.nbytes();
        blobs.push_back({std::move(a), off});
      }
    }
    tensors[names[i]] = std::move(t);
  }
  json inputs = json::array(), outputs = json::array();
  for (const std::string& s : g.input_names) {
    check_len(s, "graph input name", 0);
    inputs.push_back(s);
  }
  if (g.outputs.size() != g.output_names.size())
    throw ValidationError("[write_nef] graph outputs and output names differ in length");
  for (int o : g.outputs) {
    if (o < 0 || static_cast<size_t>(o) >= n)
      throw ValidationError(str("[write_nef] graph output refers to missing node ", o));
    outputs.push_back(names[o]);
  }
  for (const std::string& s : g.output_names) check_len(s, "graph output name", 0);

  Encoded e;
  e.graph = {{"nodes", std::move(nodes)},
             {"edges", std::move(edges)},
             {"inputs", std::move(inputs)},
             {"outputs", std::move(outputs)},
             {"output_names", g.output_names}};
  e.tensors = std::move(tensors);
  return e;
}

}  // namespace

std::vector<uint8_t> serialize_nef(const ir::Graph& g, const WriteOptions& opts) {
  std::vector<Blob> blobs;
  uint64_t data_size = 0;
  Encoded src = encode_graph(g, blobs, data_size, false);

  json header = json::object();
  header["version"] = "1.0";
  header["nef_format"] = "graph-v1";
  header["graph"] = std::move(src.graph);
  header["tensors"] = std::move(src.tensors);
  if (const auto& e = opts.embedded) {
    if (e->devices.size() != e->graph.nodes.size())
      throw ValidationError(str("[write_nef] ", e->devices.size(), " device names for ",
                                e->graph.nodes.size(), " compiled nodes"));
    Encoded comp = encode_graph(e->graph, blobs, data_size, true);
    header["compiled"] = {{"key_hash", e->key_hash},
                          {"graph", std::move(comp.graph)},
                          {"tensors", std::move(comp.tensors)},
                          {"devices", e->devices}};
  }
  data_size = align_up(data_size, kAlign);
  header["target"] = opts.target;
  header["compiler_cache"] = opts.embedded ? "embedded" : "none";

  std::string text;
  try {
    text = header.dump(1);
  } catch (const json::exception& e) {
    // dump() refuses strings that are not UTF-8 (names, attributes).
    throw ValidationError(str("[write_nef] cannot encode the header: ", e.what()));
  }
  if (text.size() > kMaxHeaderBytes)
    throw ValidationError(str("[write_nef] header is ", text.size(), " bytes, more than the ",
                              kMaxHeaderBytes, "-byte limit"));

  uint64_t data_offset = align_up(kPreambleSize + text.size(), kAlign);
  std::vector<uint8_t> out(data_offset + data_size, 0);
  std::memcpy(out.data(), kNefMagic, 4);
  store_le32(out.data() + 4, kNefFileVersion);
  store_le64(out.data() + 8, text.size());
  store_le64(out.data() + 16, data_offset);
  store_le64(out.data() + 24, data_size);
  std::memcpy(out.data() + kPreambleSize, text.data(), text.size());
  // Padding between the JSON and the binary section is spaces, so the header reads as text.
  std::memset(out.data() + kPreambleSize + text.size(), ' ',
              data_offset - kPreambleSize - text.size());
  for (const Blob& b : blobs)
    if (b.a.nbytes()) std::memcpy(out.data() + data_offset + b.offset, b.a.data(), b.a.nbytes());
  return out;
}

void write_nef(const std::string& path, const ir::Graph& g, const WriteOptions& opts) {
  std::vector<uint8_t> bytes = serialize_nef(g, opts);
  write_file_bytes(path, bytes.data(), bytes.size());
}

nlohmann::json detail::encode_attr_json(const ir::AttrValue& v) { return encode_attr(v, 0); }

}  // namespace nef::format
