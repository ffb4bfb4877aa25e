// .nef reader. Nothing in the file is trusted: the preamble, every JSON value's type, every
// name, size, offset and count is checked, then the graph is re-inferred and validated.
// Errors name where they are: a byte offset for the container, a JSON path for the header.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "format/format_internal.h"
#include "format/mmap_file.h"
#include "format/nef_file.h"
#include "nef/error.h"

namespace nef::format {
namespace {

using nlohmann::json;
using namespace detail;

[[noreturn]] void fail(const std::string& where, const std::string& msg) {
  throw FormatError(str("[read_nef] ", where, ": ", msg));
}

// --- typed JSON access: `path` is a callable building the JSON path only when an error needs it

template <typename P>
const json& expect_object(const json& v, P&& path) {
  if (!v.is_object()) fail(path(), str("expected an object, got ", v.type_name()));
  return v;
}

template <typename P>
const json& expect_array(const json& v, P&& path, size_t max_len) {
  if (!v.is_array()) fail(path(), str("expected an array, got ", v.type_name()));
  if (v.size() > max_len) fail(path(), str("has ", v.size(), " entries, more than ", max_len));
  return v;
}

template <typename P>
const std::string& get_string(const json& v, P&& path) {
  if (!v.is_string()) fail(path(), str("expected a string, got ", v.type_name()));
  const std::string& s = v.get_ref<const std::string&>();
  if (s.size() > kMaxString)
    fail(path(), str("string of ", s.size(), " bytes, longer than the ", kMaxString, "-byte limit"));
  return s;
}

template <typename P>
int64_t get_int(const json& v, P&& path) {
  if (!v.is_number_integer()) fail(path(), str("expected an integer, got ", v.type_name()));
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    fail(path(), "integer out of the int64 range");
  return v.get<int64_t>();
}

template <typename P>
double get_float(const json& v, P&& path) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "-nan") return -std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  fail(path(), str("expected a number or \"nan\"/\"-nan\"/\"inf\"/\"-inf\", got ", v.type_name()));
}

// A member of an object already checked with expect_object.
template <typename P>
const json& field(const json& obj, const char* key, P&& path) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(path(), str("missing field '", key, "'"));
  return *it;
}

const json* opt_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

template <typename P>
ir::AttrValue decode_attr(const json& v, P&& path) {
  expect_object(v, path);
  const std::string& type = get_string(field(v, "type", path), [&] { return path() + ".type"; });
  const json& val = field(v, "value", path);
  auto vpath = [&] { return path() + ".value"; };
  auto epath = [&](size_t k) { return str(path(), ".value[", k, "]"); };
  if (type == "int") return get_int(val, vpath);
  if (type == "float") return get_float(val, vpath);
  if (type == "bool") {
    if (!val.is_boolean()) fail(vpath(), str("expected a bool, got ", val.type_name()));
    return val.get<bool>();
  }
  if (type == "string") return get_string(val, vpath);
  if (type == "ints") {
    expect_array(val, vpath, kMaxList);
    std::vector<int64_t> out;
    out.reserve(val.size());
    for (size_t k = 0; k < val.size(); ++k) out.push_back(get_int(val[k], [&] { return epath(k); }));
    return out;
  }
  if (type == "floats") {
    expect_array(val, vpath, kMaxList);
    std::vector<double> out;
    out.reserve(val.size());
    for (size_t k = 0; k < val.size(); ++k)
      out.push_back(get_float(val[k], [&] { return epath(k); }));
    return out;
  }
  fail(path() + ".type", str("unknown attribute type ", quote(type)));
}

struct TensorDecl {
  Shape shape;
  DType dtype = DType::Float32;
  bool weak = false;
  bool has_data = false;
  uint64_t offset = 0, nbytes = 0;
  int producer = -1;  // position in graph.nodes of the file
};

struct FileNode {
  std::string id, output;
  const ir::OpDef* op = nullptr;
  std::vector<int> inputs;  // file positions
  std::optional<std::string> name;
  ir::Attrs attrs;
  std::string device;
  int binding = -1;
};

struct Container {
  json header;
  uint64_t data_offset = 0, data_size = 0;
};

Container parse_container(const uint8_t* p, size_t size) {
  if (size < kPreambleSize)
    fail("byte 0", str("file is ", size, " bytes, smaller than the ", kPreambleSize,
                       "-byte preamble"));
  if (std::memcmp(p, kNefMagic, 4) != 0) fail("byte 0", "bad magic (not a .nef file)");
  uint32_t version = load_le32(p + 4);
  if (version != kNefFileVersion)
    fail("byte 4", str("unsupported container version ", version, " (this reader knows ",
                       kNefFileVersion, ")"));
  uint64_t header_len = load_le64(p + 8);
  if (header_len == 0 || header_len > kMaxHeaderBytes)
    fail("byte 8", str("header length ", header_len, " outside 1..", kMaxHeaderBytes));
  if (header_len > size - kPreambleSize)
    fail("byte 8", str("header length ", header_len, " runs past the end of the ", size,
                       "-byte file"));
  Container c;
  c.data_offset = load_le64(p + 16);
  c.data_size = load_le64(p + 24);
  uint64_t expect_offset = align_up(kPreambleSize + header_len, kAlign);
  if (c.data_offset != expect_offset)
    fail("byte 16", str("data offset ", c.data_offset, " should be ", expect_offset,
                        " (64-byte aligned end of the header)"));
  if (c.data_offset > size || c.data_size != size - c.data_offset)
    fail("byte 24", str("data section of ", c.data_size, " bytes at offset ", c.data_offset,
                        " does not end at the end of the ", size, "-byte file"));

  const uint8_t* text = p + kPreambleSize;
  size_t bad = find_invalid_utf8(text, header_len);
  if (bad != SIZE_MAX) fail(str("byte ", kPreambleSize + bad), "header is not valid UTF-8");
  size_t deep = find_deep_nesting(text, header_len, kMaxJsonDepth);
  if (deep != SIZE_MAX)
    fail(str("byte ", kPreambleSize + deep), str("JSON nested deeper than ", kMaxJsonDepth));
  try {
    c.header = json::parse(text, text + header_len);
  } catch (const json::parse_error& e) {
    fail(str("byte ", kPreambleSize + (e.byte ? e.byte - 1 : 0)),
         str("invalid JSON header: ", e.what()));
  }
  return c;
}

// `order_out`: for each node of the result, its position in the file's graph.nodes.
ir::Graph build_graph(const json& h, const uint8_t* base, const Container& c,
                      const std::shared_ptr<void>& owner, std::vector<int>* order_out = nullptr) {
  expect_object(h, [] { return std::string("header"); });
  const std::string& version = get_string(field(h, "version", [] { return std::string("header"); }),
                                          [] { return std::string("version"); });
  if (version.rfind("1.", 0) != 0) fail("version", str("unsupported version ", quote(version)));
  const std::string& fmt = get_string(field(h, "nef_format", [] { return std::string("header"); }),
                                      [] { return std::string("nef_format"); });
  if (fmt != "graph-v1") fail("nef_format", str("unsupported format ", quote(fmt)));
  if (const json* t = opt_field(h, "target")) get_string(*t, [] { return std::string("target"); });
  if (const json* t = opt_field(h, "compiler_cache"))
    get_string(*t, [] { return std::string("compiler_cache"); });

  const json& graph = expect_object(field(h, "graph", [] { return std::string("header"); }),
                                    [] { return std::string("graph"); });
  auto gpath = [] { return std::string("graph"); };
  const json& jnodes = expect_array(field(graph, "nodes", gpath),
                                    [] { return std::string("graph.nodes"); }, kMaxNodes);
  const json& jtensors = expect_object(field(h, "tensors", [] { return std::string("header"); }),
                                       [] { return std::string("tensors"); });
  if (jtensors.size() > kMaxNodes)
    fail("tensors", str("has ", jtensors.size(), " entries, more than ", kMaxNodes));

  // --- tensors
  std::unordered_map<std::string, TensorDecl> tensors;
  tensors.reserve(jtensors.size());
  for (auto it = jtensors.begin(); it != jtensors.end(); ++it) {
    const std::string& name = it.key();
    auto tpath = [&] { return str("tensors.", quote(name)); };
    if (name.size() > kMaxString) fail(tpath(), "tensor name longer than the limit");
    const json& jt = expect_object(it.value(), tpath);
    TensorDecl d;
    auto spath = [&] { return tpath() + ".shape"; };
    const json& js = expect_array(field(jt, "shape", tpath), spath, size_t(kMaxRank));
    for (size_t k = 0; k < js.size(); ++k) {
      int64_t dim = get_int(js[k], [&] { return str(spath(), "[", k, "]"); });
      if (dim < 0) fail(str(spath(), "[", k, "]"), str("negative dimension ", dim));
      d.shape.push_back(dim);
    }
    try {
      checked_numel(d.shape, "read_nef");
    } catch (const ShapeError& e) {
      fail(spath(), e.what());
    }
    const std::string& dt = get_string(field(jt, "dtype", tpath), [&] { return tpath() + ".dtype"; });
    auto dtype = dtype_from_name(dt);
    if (!dtype) fail(tpath() + ".dtype", str("unknown dtype ", quote(dt)));
    d.dtype = *dtype;
    if (const json* w = opt_field(jt, "weak")) {
      if (!w->is_boolean()) fail(tpath() + ".weak", str("expected a bool, got ", w->type_name()));
      d.weak = w->get<bool>();
    }
    if (const json* jd = opt_field(jt, "data")) {
      auto dpath = [&] { return tpath() + ".data"; };
      expect_object(*jd, dpath);
      int64_t off = get_int(field(*jd, "offset", dpath), [&] { return dpath() + ".offset"; });
      int64_t nb = get_int(field(*jd, "nbytes", dpath), [&] { return dpath() + ".nbytes"; });
      if (off < 0 || nb < 0) fail(dpath(), "negative offset or size");
      if (uint64_t(off) % kAlign != 0)
        fail(dpath() + ".offset", str("offset ", off, " is not ", kAlign, "-byte aligned"));
      if (uint64_t(off) > c.data_size || uint64_t(nb) > c.data_size - uint64_t(off))
        fail(dpath(), str("bytes [", off, ", ", off, "+", nb, ") run past the ", c.data_size,
                          "-byte data section"));
      uint64_t want = uint64_t(numel(d.shape)) * dtype_size(d.dtype);
      if (uint64_t(nb) != want)
        fail(dpath() + ".nbytes", str("nbytes ", nb, " but ", shape_str(d.shape), " ",
                                      dtype_name(d.dtype), " needs ", want));
      d.has_data = true;
      d.offset = uint64_t(off);
      d.nbytes = uint64_t(nb);
    }
    tensors.emplace(name, std::move(d));
  }

  // --- nodes
  const size_t n = jnodes.size();
  std::vector<FileNode> nodes(n);
  std::unordered_map<std::string, int> id_pos, out_pos;
  id_pos.reserve(n);
  out_pos.reserve(n);
  std::vector<std::vector<std::string>> input_names(n);
  for (size_t i = 0; i < n; ++i) {
    std::string base = str("graph.nodes[", i, "]");
    auto npath = [&] { return base; };
    const json& jn = expect_object(jnodes[i], npath);
    FileNode& fn = nodes[i];
    fn.id = get_string(field(jn, "id", npath), [&] { return base + ".id"; });
    if (!id_pos.emplace(fn.id, int(i)).second)
      fail(base + ".id", str("duplicate node id ", quote(fn.id)));
    const std::string& op = get_string(field(jn, "op", npath), [&] { return base + ".op"; });
    fn.op = ir::find_op(op);
    if (!fn.op) fail(base + ".op", str("unknown op ", quote(op)));
    const json& jin = expect_array(field(jn, "inputs", npath), [&] { return base + ".inputs"; },
                                   kMaxList);
    for (size_t k = 0; k < jin.size(); ++k)
      input_names[i].push_back(get_string(jin[k], [&] { return str(base, ".inputs[", k, "]"); }));
    fn.output = get_string(field(jn, "output", npath), [&] { return base + ".output"; });
    if (!out_pos.emplace(fn.output, int(i)).second)
      fail(base + ".output", str("tensor ", quote(fn.output), " is produced by two nodes"));
    if (const json* nm = opt_field(jn, "name")) fn.name = get_string(*nm, [&] { return base + ".name"; });
    const json& ja = expect_object(field(jn, "attrs", npath), [&] { return base + ".attrs"; });
    for (auto it = ja.begin(); it != ja.end(); ++it) {
      auto apath = [&] { return str(base, ".attrs.", quote(it.key())); };
      if (it.key().size() > kMaxString) fail(apath(), "attribute name longer than the limit");
      fn.attrs.set(it.key(), decode_attr(it.value(), apath));
    }
    if (const json* dev = opt_field(jn, "preferred_device")) {
      fn.device = get_string(*dev, [&] { return base + ".preferred_device"; });
      if (fn.device == "auto") fn.device.clear();
    }
    const json* jb = opt_field(jn, "binding");
    if (fn.op->name == "input") {
      if (!jb) fail(base, "input node without a 'binding'");
      int64_t b = get_int(*jb, [&] { return base + ".binding"; });
      if (b < 0 || b > int64_t(kMaxList)) fail(base + ".binding", str("binding ", b, " out of range"));
      fn.binding = int(b);
    } else if (jb) {
      fail(base + ".binding", "only input nodes have a binding");
    }
    auto t = tensors.find(fn.output);
    if (t == tensors.end())
      fail(base + ".output", str("tensor ", quote(fn.output), " is not declared in 'tensors'"));
    t->second.producer = int(i);
    bool is_const = fn.op->name == "constant";
    if (is_const && !t->second.has_data)
      fail(str("tensors.", quote(fn.output)), "constant without 'data'");
    if (!is_const && t->second.has_data)
      fail(str("tensors.", quote(fn.output)), str("only constants carry data (op ", op, ")"));
  }
  for (const auto& [name, d] : tensors)
    if (d.producer < 0) fail(str("tensors.", quote(name)), "not the output of any node");
  for (size_t i = 0; i < n; ++i) {
    nodes[i].inputs.reserve(input_names[i].size());
    for (size_t k = 0; k < input_names[i].size(); ++k) {
      auto it = out_pos.find(input_names[i][k]);
      if (it == out_pos.end())
        fail(str("graph.nodes[", i, "].inputs[", k, "]"),
             str("unknown tensor ", quote(input_names[i][k])));
      nodes[i].inputs.push_back(it->second);
    }
  }
  input_names.clear();

  // --- edges: derived data, but a file whose edges disagree with its inputs is inconsistent
  if (const json* je = opt_field(graph, "edges")) {
    expect_array(*je, [] { return std::string("graph.edges"); }, kMaxNodes * 16);
    std::vector<std::pair<int, int>> want, have;
    for (size_t i = 0; i < n; ++i)
      for (int p : nodes[i].inputs) want.push_back({p, int(i)});
    for (size_t k = 0; k < je->size(); ++k) {
      std::string epath = str("graph.edges[", k, "]");
      auto ep = [&] { return epath; };
      const json& e = expect_object((*je)[k], ep);
      const std::string& from = get_string(field(e, "from", ep), [&] { return epath + ".from"; });
      const std::string& to = get_string(field(e, "to", ep), [&] { return epath + ".to"; });
      auto f = id_pos.find(from), t = id_pos.find(to);
      if (f == id_pos.end()) fail(epath + ".from", str("unknown node id ", quote(from)));
      if (t == id_pos.end()) fail(epath + ".to", str("unknown node id ", quote(to)));
      have.push_back({f->second, t->second});
    }
    for (auto* v : {&want, &have}) {
      std::sort(v->begin(), v->end());
      v->erase(std::unique(v->begin(), v->end()), v->end());
    }
    if (want != have) {
      std::vector<std::pair<int, int>> diff;
      std::set_symmetric_difference(want.begin(), want.end(), have.begin(), have.end(),
                                    std::back_inserter(diff));
      const auto& d = diff.front();
      bool missing = std::binary_search(want.begin(), want.end(), d);
      fail("graph.edges", str("edge ", quote(nodes[d.first].id), " -> ", quote(nodes[d.second].id),
                              missing ? " is missing" : " does not match any node input"));
    }
  }

  // --- graph inputs (binding slots)
  ir::Graph g;
  const json& jins = expect_array(field(graph, "inputs", gpath),
                                  [] { return std::string("graph.inputs"); }, kMaxList);
  for (size_t k = 0; k < jins.size(); ++k)
    g.input_names.push_back(get_string(jins[k], [&] { return str("graph.inputs[", k, "]"); }));
  std::vector<int> slot_owner(g.input_names.size(), -1);
  for (size_t i = 0; i < n; ++i) {
    int b = nodes[i].binding;
    if (b < 0) continue;
    if (size_t(b) >= slot_owner.size())
      fail(str("graph.nodes[", i, "].binding"),
           str("binding ", b, " but the graph has ", slot_owner.size(), " inputs"));
    if (slot_owner[b] >= 0)
      fail(str("graph.nodes[", i, "].binding"), str("binding ", b, " used twice"));
    slot_owner[b] = int(i);
  }
  for (size_t k = 0; k < slot_owner.size(); ++k)
    if (slot_owner[k] < 0) fail(str("graph.inputs[", k, "]"), "no input node binds it");

  // --- topological order, re-inference against the declared types
  std::vector<std::vector<int>> inputs_of(n);
  for (size_t i = 0; i < n; ++i) inputs_of[i] = nodes[i].inputs;
  std::vector<int> order;
  try {
    order = ir::topo_order(inputs_of);
  } catch (const GraphCycleError& e) {
    throw GraphCycleError(str("[read_nef] graph.nodes: ", e.what(), " (positions in the file)"));
  }
  inputs_of.clear();
  std::vector<int> new_pos(n, -1);
  for (size_t k = 0; k < order.size(); ++k) new_pos[order[k]] = int(k);
  g.nodes.resize(n);
  for (size_t k = 0; k < n; ++k) {
    FileNode& fn = nodes[order[k]];
    const TensorDecl& d = tensors.at(fn.output);
    ir::Node& node = g.nodes[k];
    node.op = fn.op;
    node.attrs = std::move(fn.attrs);
    for (int in : fn.inputs) node.inputs.push_back(new_pos[in]);
    node.name = fn.name ? *fn.name : fn.output;
    node.device_hint = std::move(fn.device);
    node.binding = fn.binding;
    std::string where = str("graph.nodes[", order[k], "] (id ", quote(fn.id), ")");
    ir::TensorType t;
    try {
      t = ir::check_and_infer(*node.op, g.input_types(node), node.attrs);
    } catch (const Error& e) {
      throw_error(e.code(), str("[read_nef] ", where, ": ", e.what()));
    }
    if (t.shape != d.shape || t.dtype != d.dtype)
      throw ValidationError(str("[read_nef] ", where, ": declared ", shape_str(d.shape), " ",
                                dtype_name(d.dtype), " but inference gives ", shape_str(t.shape),
                                " ", dtype_name(t.dtype)));
    node.type = {d.shape, d.dtype, d.weak};
    if (d.has_data) {
      uint8_t* p = const_cast<uint8_t*>(base) + c.data_offset + d.offset;
      if (d.dtype == DType::Bool)
        for (uint64_t b = 0; b < d.nbytes; ++b)
          if (p[b] > 1)
            fail(str("byte ", c.data_offset + d.offset + b),
                 str("bool constant ", quote(fn.output), " holds a byte other than 0 or 1"));
      Array a;
      a.storage = Storage::borrow(p, d.nbytes, owner);
      a.shape = d.shape;
      a.strides = contiguous_strides(d.shape);
      a.dtype = d.dtype;
      node.constant = std::move(a);
    }
  }

  // --- graph outputs
  const json& jouts = expect_array(field(graph, "outputs", gpath),
                                   [] { return std::string("graph.outputs"); }, kMaxList);
  for (size_t k = 0; k < jouts.size(); ++k) {
    const std::string& name = get_string(jouts[k], [&] { return str("graph.outputs[", k, "]"); });
    auto it = out_pos.find(name);
    if (it == out_pos.end()) fail(str("graph.outputs[", k, "]"), str("unknown tensor ", quote(name)));
    g.outputs.push_back(new_pos[it->second]);
  }
  if (const json* jon = opt_field(graph, "output_names")) {
    expect_array(*jon, [] { return std::string("graph.output_names"); }, kMaxList);
    if (jon->size() != jouts.size())
      fail("graph.output_names", str("has ", jon->size(), " names for ", jouts.size(), " outputs"));
    for (size_t k = 0; k < jon->size(); ++k)
      g.output_names.push_back(
          get_string((*jon)[k], [&] { return str("graph.output_names[", k, "]"); }));
  } else {
    for (const json& o : jouts) g.output_names.push_back(o.get<std::string>());
  }

  ir::validate(g);
  if (order_out) *order_out = std::move(order);
  return g;
}

// The "compiled" section: its graph and tensors go through build_graph exactly like the main
// graph (untrusted input), devices are re-indexed to the loaded node order.
EmbeddedPlanData build_embedded(const json& h, const uint8_t* base, const Container& c,
                                const std::shared_ptr<void>& owner) {
  const json* jc = opt_field(h, "compiled");
  if (!jc) fail("header", "compiler_cache is \"embedded\" but there is no 'compiled' section");
  auto cpath = [] { return std::string("compiled"); };
  expect_object(*jc, cpath);
  EmbeddedPlanData e;
  e.key_hash = get_string(field(*jc, "key_hash", cpath), [] { return std::string("compiled.key_hash"); });
  json sub = json::object();
  sub["version"] = "1.0";
  sub["nef_format"] = "graph-v1";
  sub["graph"] = field(*jc, "graph", cpath);
  sub["tensors"] = field(*jc, "tensors", cpath);
  std::vector<int> order;
  try {
    e.graph = build_graph(sub, base, c, owner, &order);
  } catch (const Error& err) {
    throw_error(err.code(), str("compiled section: ", err.what()));
  }
  const json& jd = expect_array(field(*jc, "devices", cpath),
                                [] { return std::string("compiled.devices"); }, kMaxNodes);
  if (jd.size() != order.size())
    fail("compiled.devices", str("has ", jd.size(), " entries for ", order.size(), " nodes"));
  e.devices.resize(order.size());
  for (size_t k = 0; k < order.size(); ++k)
    e.devices[k] = get_string(jd[order[k]], [&] { return str("compiled.devices[", order[k], "]"); });
  return e;
}

// Parses and builds with nlohmann's own exceptions (which typed access should never raise)
// turned into FormatError as a last line of defence.
ir::Graph load(const uint8_t* p, size_t size, const std::shared_ptr<void>& owner,
               std::string* header_text) {
  try {
    Container c = parse_container(p, size);
    ir::Graph g = build_graph(c.header, p, c, owner);
    if (header_text) *header_text = c.header.dump(2);
    return g;
  } catch (const json::exception& e) {
    throw FormatError(str("[read_nef] malformed header: ", e.what()));
  }
}

NefContents load_contents(const uint8_t* p, size_t size, const std::shared_ptr<void>& owner) {
  NefContents out;
  Container c;
  try {
    c = parse_container(p, size);
    out.graph = build_graph(c.header, p, c, owner);
    if (const json* cc = opt_field(c.header, "compiler_cache"); cc && cc->is_string())
      out.compiler_cache = cc->get<std::string>();
  } catch (const json::exception& e) {
    throw FormatError(str("[read_nef] malformed header: ", e.what()));
  }
  if (out.compiler_cache != "embedded") return out;
  // A bad embedded plan only costs the warm start: report it, keep the main graph.
  try {
    out.embedded = build_embedded(c.header, p, c, owner);
  } catch (const Error& e) {
    out.embedded_error = e.what();
  } catch (const json::exception& e) {
    out.embedded_error = str("[read_nef] malformed compiled section: ", e.what());
  }
  return out;
}

}  // namespace

NefContents read_nef_contents(const std::string& path) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  return load_contents(m->data(), m->size(), m);
}

NefContents parse_nef_contents(const uint8_t* data, size_t size) {
  std::shared_ptr<Storage> s = Storage::allocate(size);
  if (size) std::memcpy(s->data(), data, size);
  return load_contents(static_cast<const uint8_t*>(s->data()), size, s);
}

ir::AttrValue detail::decode_attr_json(const json& v, const std::string& path) {
  return decode_attr(v, [&] { return path; });
}

ir::Graph read_nef(const std::string& path) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  return load(m->data(), m->size(), m, nullptr);
}

ir::Graph parse_nef(const uint8_t* data, size_t size) {
  // One aligned copy; constants borrow from it the same way they borrow from a mapping.
  std::shared_ptr<Storage> s = Storage::allocate(size);
  if (size) std::memcpy(s->data(), data, size);
  return load(static_cast<const uint8_t*>(s->data()), size, s, nullptr);
}

std::string read_nef_header_json(const std::string& path) {
  std::shared_ptr<MappedFile> m = MappedFile::open(path);
  std::string text;
  load(m->data(), m->size(), m, &text);
  return text;
}

}  // namespace nef::format
