// .nef round trips: every attribute type (exact floats, non-finite included), constants of every
// dtype (bit-exact, zero-size and rank 0 too), weak scalars, names, device hints, bindings;
// loaded constants are zero-copy views of the file mapping.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "format_test_util.h"
#include "nef/error.h"

namespace nef {
namespace {

using nlohmann::json;
using test::GraphBuilder;

std::string temp_path(const std::string& name) {
  return testing::TempDir() + "/nef_fmt_" + std::to_string(::getpid()) + "_" + name;
}

ir::Attrs attrs_of(std::initializer_list<std::pair<const char*, ir::AttrValue>> kv) {
  ir::Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

// A graph exercising every attribute type and every dtype of constant.
ir::Graph rich_graph(uint64_t seed) {
  std::mt19937_64 rng(seed);
  GraphBuilder b;
  int x = b.input("x", {3, 4}, DType::Float32);
  int y = b.input("y", {4, 5}, DType::Float32);
  b.g.nodes[y].device_hint = "cpu";
  std::vector<int> consts;
  struct C {
    Shape s;
    DType t;
  };
  for (const C& c :
       {C{{3, 4}, DType::Float32}, C{{7}, DType::Float16}, C{{2, 3}, DType::BFloat16},
        C{{5}, DType::Float64}, C{{3, 1}, DType::Int8}, C{{9}, DType::UInt8},
        C{{2, 2}, DType::Int32}, C{{4}, DType::Int64}, C{{5}, DType::Bool}, C{{3, 3}, DType::Int16},
        C{{5}, DType::UInt16}, C{{2, 1}, DType::UInt32}, C{{3}, DType::UInt64},
        C{{0, 3}, DType::Float32}, C{{}, DType::Float32}, C{{1, 1, 1}, DType::Int64}})
    consts.push_back(b.constant(test::random_bytes_array(c.s, c.t, rng)));
  b.g.nodes[consts[0]].name = "w";
  int a = b.add("add", {x, consts[0]});  // unnamed: the writer generates a tensor name
  b.g.nodes[a].device_hint = "gpu";
  int m = b.add("matmul", {a, y}, {}, "dup");
  int r = b.add("reshape", {m}, attrs_of({{"shape", std::vector<int64_t>{5, -1}}}), "dup");
  int s = b.add("softmax", {r}, attrs_of({{"axis", int64_t{-1}}}), "t3");  // clashes with t<i>
  int sm = b.add("sum", {s}, attrs_of({{"axes", std::vector<int64_t>{0}}, {"keepdims", true}}));
  double specials[] = {std::numeric_limits<double>::quiet_NaN(),
                       -std::numeric_limits<double>::quiet_NaN(),
                       std::numeric_limits<double>::infinity(),
                       -std::numeric_limits<double>::infinity(),
                       -0.0,
                       5e-324,
                       std::numeric_limits<double>::max(),
                       0.1,
                       1.0 / 3.0};
  std::vector<int> outs = {s, sm};
  for (double v : specials)
    outs.push_back(b.add("full", {},
                         attrs_of({{"shape", std::vector<int64_t>{2}},
                                   {"dtype", std::string("float16")},
                                   {"value", v}})));
  outs.push_back(b.add(
      "arange", {},
      attrs_of({{"start", 0.1}, {"stop", 3.7}, {"step", 0.3}, {"dtype", std::string("float64")}})));
  outs.push_back(
      b.add("gelu", {x}, attrs_of({{"approximate", std::string("tanh")}}), "gelu \xce\xbb"));
  outs.push_back(b.add("cast", {consts[6]}, attrs_of({{"dtype", std::string("int64")}})));
  outs.push_back(b.add("concat", {consts[9], consts[9]}, attrs_of({{"axis", int64_t{1}}})));
  outs.push_back(b.add("random_normal", {},
                       attrs_of({{"shape", std::vector<int64_t>{3}},
                                 {"seed", std::numeric_limits<int64_t>::min()},
                                 {"std", 1e300}})));
  // A weak int scalar keeps the int8 tensor's dtype; losing `weak` would re-infer int64.
  Array one = Array::empty({}, DType::Int64);
  *one.data_as<int64_t>() = 1;
  int w = b.constant(one, "", true);
  int ad = b.add("add", {consts[4], w});
  EXPECT_EQ(b.g.nodes[ad].type.dtype, DType::Int8);
  outs.push_back(ad);
  for (size_t k = 0; k < outs.size(); ++k) b.output(outs[k], "out" + std::to_string(k));
  b.output(s, "again");  // the same node twice under another name
  return b.g;
}

void expect_same_graph(const ir::Graph& a, const ir::Graph& b) {
  EXPECT_EQ(ir::to_text(a), ir::to_text(b));
  ASSERT_EQ(a.nodes.size(), b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(a.nodes[i].name, b.nodes[i].name);
    EXPECT_EQ(a.nodes[i].device_hint, b.nodes[i].device_hint);
    EXPECT_EQ(a.nodes[i].type.weak, b.nodes[i].type.weak);
    // canonical() writes floats bit-exactly (operator== would fail on NaN != NaN).
    EXPECT_EQ(a.nodes[i].attrs.canonical(), b.nodes[i].attrs.canonical());
    ASSERT_EQ(a.nodes[i].constant.has_value(), b.nodes[i].constant.has_value());
    if (a.nodes[i].constant) {
      EXPECT_TRUE(test::same_bytes(*a.nodes[i].constant, *b.nodes[i].constant));
    }
  }
  EXPECT_EQ(a.input_names, b.input_names);
  EXPECT_EQ(a.output_names, b.output_names);
  EXPECT_EQ(a.outputs, b.outputs);
}

// The [start, end) address ranges mapped from `path`, from /proc/self/maps.
std::vector<std::pair<uintptr_t, uintptr_t>> mappings_of(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  std::string canon = std::filesystem::canonical(path).string();
  while (std::getline(maps, line)) {
    if (line.size() < canon.size() || line.compare(line.size() - canon.size(), canon.size(), canon))
      continue;
    uintptr_t lo, hi;
    char dash;
    std::istringstream is(line);
    is >> std::hex >> lo >> dash >> hi;
    out.push_back({lo, hi});
  }
  return out;
}

TEST(NefFormat, RoundTripEveryAttributeTypeAndDtype) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    std::printf("seed %llu\n", (unsigned long long)seed);
    ir::Graph g = rich_graph(seed);
    std::string path = temp_path("rich.nef");
    format::write_nef(path, g);
    ir::Graph back = format::read_nef(path);
    expect_same_graph(g, back);
    // Writing the loaded graph gives the same bytes (deterministic, nothing lost).
    EXPECT_EQ(format::serialize_nef(g), format::serialize_nef(back));
    ir::Graph from_mem =
        format::parse_nef(format::serialize_nef(g).data(), format::serialize_nef(g).size());
    expect_same_graph(g, from_mem);
    std::filesystem::remove(path);
  }
}

TEST(NefFormat, HeaderFollowsTheSeedLayout) {
  ir::Graph g = rich_graph(1);
  std::vector<uint8_t> bytes = format::serialize_nef(g, {"cpu", std::nullopt});
  ASSERT_EQ(std::memcmp(bytes.data(), "NEF\x01", 4), 0);
  test::NefParts p = test::split_nef(bytes);
  const json& h = p.header;
  EXPECT_EQ(h["version"], "1.0");
  EXPECT_EQ(h["nef_format"], "graph-v1");
  EXPECT_EQ(h["target"], "cpu");
  EXPECT_EQ(h["compiler_cache"], "none");
  EXPECT_EQ(h["graph"]["nodes"].size(), g.nodes.size());
  EXPECT_EQ(h["graph"]["inputs"], json({"x", "y"}));
  const json& n0 = h["graph"]["nodes"][0];
  EXPECT_EQ(n0["op"], "input");
  EXPECT_EQ(n0["binding"], 0);
  EXPECT_EQ(n0["preferred_device"], "auto");
  // Edges are derived: one per distinct (producer, consumer) pair.
  size_t want = 0;
  for (const auto& n : g.nodes) {
    std::vector<int> u = n.inputs;
    std::sort(u.begin(), u.end());
    want += std::unique(u.begin(), u.end()) - u.begin();
  }
  EXPECT_EQ(h["graph"]["edges"].size(), want);
  // Constants: 64-byte aligned offsets into the binary section, which starts 64-byte aligned.
  EXPECT_EQ(format::detail::load_le64(bytes.data() + 16) % 64, 0u);
  int nconst = 0;
  for (const auto& [name, t] : h["tensors"].items()) {
    if (!t.contains("data")) continue;
    ++nconst;
    EXPECT_EQ(t["data"]["offset"].get<uint64_t>() % 64, 0u) << name;
  }
  EXPECT_EQ(nconst, 17);
  // Typed attributes: floats keep their type even when integral; non-finite as strings.
  bool saw_nan = false;
  for (const auto& n : h["graph"]["nodes"])
    if (n["op"] == "full" && n["attrs"]["value"]["value"] == "nan") saw_nan = true;
  EXPECT_TRUE(saw_nan);
}

TEST(NefFormat, ConstantsAreZeroCopyViewsOfTheMapping) {
  ir::Graph g = rich_graph(5);
  std::string path = temp_path("zc.nef");
  format::write_nef(path, g);
  std::optional<Array> keep;
  {
    ir::Graph back = format::read_nef(path);
    auto maps = mappings_of(path);
    ASSERT_FALSE(maps.empty()) << "file not mapped";
    for (const ir::Node& n : back.nodes) {
      if (!n.constant) continue;
      auto p = reinterpret_cast<uintptr_t>(n.constant->data());
      EXPECT_EQ(p % 64, 0u);
      bool inside = false;
      for (auto [lo, hi] : maps) inside |= p >= lo && p + n.constant->nbytes() <= hi;
      EXPECT_TRUE(inside) << "constant " << n.name << " is not in the mapping";
      if (n.constant->nbytes() > 8) keep = *n.constant;
    }
  }
  ASSERT_TRUE(keep);
  // The graph is gone; the view keeps the mapping alive.
  EXPECT_FALSE(mappings_of(path).empty());
  bool found = false;
  for (const ir::Node& n : g.nodes)
    if (n.constant && n.constant->nbytes() == keep->nbytes() &&
        test::same_bytes(*n.constant, *keep))
      found = true;
  EXPECT_TRUE(found);
  keep.reset();
  EXPECT_TRUE(mappings_of(path).empty()) << "mapping outlived its last view";
  std::filesystem::remove(path);
}

TEST(NefFormat, ParseFromMemoryBorrowsOneAlignedCopy) {
  ir::Graph g = rich_graph(6);
  std::vector<uint8_t> bytes = format::serialize_nef(g);
  test::NefParts parts = test::split_nef(bytes);
  ir::Graph back = format::parse_nef(bytes.data(), bytes.size());
  // All constants live in one buffer at the file's relative offsets.
  const uint8_t* base = nullptr;
  for (size_t i = 0; i < back.nodes.size(); ++i) {
    const ir::Node& n = back.nodes[i];
    if (!n.constant) continue;
    auto* p = static_cast<const uint8_t*>(n.constant->data());
    std::string tensor = parts.header["graph"]["nodes"][i]["output"];
    uint64_t off = parts.header["tensors"][tensor]["data"]["offset"];
    if (!base) base = p - off;
    EXPECT_EQ(p, base + off);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    EXPECT_TRUE(p < bytes.data() || p >= bytes.data() + bytes.size()) << "must not alias the input";
  }
}

TEST(NefFormat, AttributeJsonIsExact) {
  std::mt19937_64 rng(11);
  std::printf("seed 11\n");
  std::vector<double> fl = {0.0,
                            -0.0,
                            1.0,
                            -1.5,
                            5e-324,
                            -2.2250738585072014e-308,
                            std::numeric_limits<double>::max(),
                            std::numeric_limits<double>::lowest(),
                            std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity(),
                            1e23,
                            0.1};
  for (int i = 0; i < 2000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, 8);
    if (!std::isnan(d)) fl.push_back(d);
  }
  std::vector<ir::AttrValue> values = {
      int64_t{0},
      std::numeric_limits<int64_t>::min(),
      std::numeric_limits<int64_t>::max(),
      true,
      false,
      std::string(),
      std::string("h\xc3\xa9llo \"q\" \\ \n\t\x01"),
      std::vector<int64_t>{},
      std::vector<int64_t>{-1, 0, std::numeric_limits<int64_t>::max()},
      std::vector<double>{},
      fl};
  for (double d : fl) values.push_back(d);
  for (const ir::AttrValue& v : values) {
    json j = format::detail::encode_attr_json(v);
    json reparsed = json::parse(j.dump());
    ir::AttrValue back = format::detail::decode_attr_json(reparsed, "x");
    ASSERT_EQ(v.index(), back.index()) << j.dump();
    if (auto* dv = std::get_if<double>(&v)) {
      double b = std::get<double>(back);
      EXPECT_EQ(std::memcmp(dv, &b, 8), 0) << j.dump();
    } else if (auto* fv = std::get_if<std::vector<double>>(&v)) {
      const auto& b = std::get<std::vector<double>>(back);
      ASSERT_EQ(fv->size(), b.size());
      if (!b.empty()) EXPECT_EQ(std::memcmp(fv->data(), b.data(), 8 * b.size()), 0);
    } else {
      EXPECT_TRUE(v == back) << j.dump();
    }
  }
  // NaN round-trips as NaN with its sign (the payload is not kept).
  for (double nan : {std::nan(""), -std::nan("")}) {
    json jn = format::detail::encode_attr_json(nan);
    double back = std::get<double>(format::detail::decode_attr_json(jn, "x"));
    EXPECT_TRUE(std::isnan(back));
    EXPECT_EQ(std::signbit(back), std::signbit(nan));
  }
}

TEST(NefFormat, NodesInAnyOrderAreSortedOnLoad) {
  ir::Graph g = test::small_graph();
  test::NefParts p = test::split_nef(format::serialize_nef(g));
  json& nodes = p.header["graph"]["nodes"];
  std::reverse(nodes.begin(), nodes.end());
  ir::Graph back = format::parse_nef(test::assemble_nef(p).data(), test::assemble_nef(p).size());
  EXPECT_EQ(ir::to_text(g).size(), ir::to_text(back).size());
  ASSERT_EQ(back.nodes.size(), g.nodes.size());
  for (size_t i = 0; i < back.nodes.size(); ++i)
    for (int in : back.nodes[i].inputs) EXPECT_LT(in, int(i));
  // Outputs still name the right tensors.
  EXPECT_EQ(back.nodes[back.outputs[0]].name, "r");
  EXPECT_EQ(back.nodes[back.outputs[1]].name, "m");
}

TEST(NefFormat, EdgesAreOptionalAndHeaderJsonIsReadable) {
  ir::Graph g = test::small_graph();
  test::NefParts p = test::split_nef(format::serialize_nef(g));
  p.header["graph"].erase("edges");
  std::vector<uint8_t> bytes = test::assemble_nef(p);
  EXPECT_NO_THROW(format::parse_nef(bytes.data(), bytes.size()));
  std::string path = temp_path("hdr.nef");
  format::write_nef(path, g);
  json h = json::parse(format::read_nef_header_json(path));
  EXPECT_EQ(h["nef_format"], "graph-v1");
  EXPECT_TRUE(h["tensors"]["w"].contains("data"));
  std::filesystem::remove(path);
}

TEST(NefFormat, EmptyGraphRoundTrips) {
  ir::Graph g;
  std::vector<uint8_t> bytes = format::serialize_nef(g);
  ir::Graph back = format::parse_nef(bytes.data(), bytes.size());
  EXPECT_TRUE(back.nodes.empty());
  EXPECT_TRUE(back.outputs.empty());
}

TEST(NefFormat, WriterRejectsWhatTheReaderWould) {
  ir::Graph g = test::small_graph();
  g.nodes[1].constant = Array::empty({3}, DType::Float32);  // value does not match its type
  EXPECT_THROW(format::serialize_nef(g), ValidationError);
  g = test::small_graph();
  g.nodes[1].constant.reset();
  EXPECT_THROW(format::serialize_nef(g), ValidationError);
  g = test::small_graph();
  g.nodes[2].name = std::string(5000, 'n');
  EXPECT_THROW(format::serialize_nef(g), ValidationError);
  g = test::small_graph();
  g.nodes[2].name = "bad \xff utf8";
  EXPECT_THROW(format::serialize_nef(g), ValidationError);
  g = test::small_graph();
  try {
    format::write_nef("/nonexistent-dir/x.nef", g);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::Generic);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.nef"), std::string::npos);
  }
  EXPECT_THROW(format::read_nef("/nonexistent-dir/x.nef"), Error);
}

TEST(NefFormat, NonContiguousConstantIsWrittenContiguous) {
  GraphBuilder b;
  Array a = Array::empty({3, 2}, DType::Int32);
  for (int i = 0; i < 6; ++i) a.data_as<int32_t>()[i] = i;
  Array t = a;  // transposed view (2, 3)
  t.shape = {2, 3};
  t.strides = {1, 2};
  int c = b.constant(t, "c");
  b.output(c, "c");
  std::vector<uint8_t> bytes = format::serialize_nef(b.g);
  ir::Graph back = format::parse_nef(bytes.data(), bytes.size());
  const Array& v = *back.nodes[0].constant;
  ASSERT_EQ(v.shape, (Shape{2, 3}));
  int32_t want[6] = {0, 2, 4, 1, 3, 5};
  EXPECT_EQ(std::memcmp(v.data(), want, sizeof want), 0);
}

// The corpus files are written by fuzz/make_corpus.py, an independent Python writer of the
// format; every valid_* file must load.
TEST(NefFormat, PythonWrittenCorpusLoads) {
  std::string dir = std::string(NEF_SOURCE_DIR) + "/fuzz/corpus/nef";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no corpus";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.rfind("valid_", 0) != 0) continue;
    SCOPED_TRACE(name);
    ir::Graph g = format::read_nef(e.path().string());
    EXPECT_FALSE(g.nodes.empty());
    ++n;
  }
  EXPECT_GT(n, 0);
}

}  // namespace
}  // namespace nef
