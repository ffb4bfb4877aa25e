// Malformed .nef files, each made by mutating a valid one, must fail with the exact error type:
// FormatError (container/JSON/limits/references), ValidationError (types that disagree with
// inference), GraphCycleError (cycles). Never a crash, never another exception.
#include <functional>
#include <limits>

#include "format_test_util.h"
#include "nef/error.h"

namespace nef {
namespace {

using nlohmann::json;

std::vector<uint8_t> valid_file() { return format::serialize_nef(test::small_graph()); }

// Parses `bytes`; expects an error with `code` whose message contains `needle`.
void expect_error(const std::vector<uint8_t>& bytes, ErrorCode code, const std::string& needle = "") {
  try {
    format::parse_nef(bytes.data(), bytes.size());
    ADD_FAILURE() << "no error, expected " << error_code_name(code);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << "got " << error_code_name(e.code()) << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "message '" << e.what() << "' lacks '" << needle << "'";
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-NEF exception: " << e.what();
  }
}

// A valid file with its header changed by `f` (edges left alone unless f fixes them).
std::vector<uint8_t> mutated(const std::function<void(json&)>& f) {
  test::NefParts p = test::split_nef(valid_file());
  f(p.header);
  return test::assemble_nef(p);
}

void expect_header_error(const std::function<void(json&)>& f, ErrorCode code,
                         const std::string& needle = "") {
  expect_error(mutated(f), code, needle);
}

TEST(NefMalformed, TheBaseFileIsValid) {
  std::vector<uint8_t> b = valid_file();
  EXPECT_NO_THROW(format::parse_nef(b.data(), b.size()));
  std::vector<uint8_t> r = mutated([](json&) {});
  EXPECT_NO_THROW(format::parse_nef(r.data(), r.size()));
}

TEST(NefMalformed, TruncatedAnywhere) {
  std::vector<uint8_t> b = valid_file();
  for (size_t cut = 0; cut < b.size(); ++cut) {
    std::vector<uint8_t> t(b.begin(), b.begin() + cut);
    SCOPED_TRACE(cut);
    expect_error(t, ErrorCode::Format);
  }
  expect_error({}, ErrorCode::Format, "preamble");
  // Header text cut with the preamble made consistent: invalid JSON, with a byte offset.
  test::NefParts p = test::split_nef(b);
  std::string text = p.header.dump(1);
  for (size_t cut = 0; cut < text.size(); cut += 7) {
    SCOPED_TRACE(cut);
    expect_error(test::assemble_nef(text.substr(0, cut), p.data), ErrorCode::Format,
                 cut ? "byte " : "");
  }
}

TEST(NefMalformed, Preamble) {
  std::vector<uint8_t> b = valid_file();
  auto with = [&](size_t at, uint64_t v, int width) {
    std::vector<uint8_t> c = b;
    if (width == 8) format::detail::store_le64(c.data() + at, v);
    else format::detail::store_le32(c.data() + at, uint32_t(v));
    return c;
  };
  std::vector<uint8_t> bad_magic = b;
  bad_magic[1] = 'X';
  expect_error(bad_magic, ErrorCode::Format, "magic");
  expect_error(with(4, 2, 4), ErrorCode::Format, "version");
  expect_error(with(8, b.size(), 8), ErrorCode::Format, "past the end");
  expect_error(with(8, std::numeric_limits<uint64_t>::max(), 8), ErrorCode::Format, "header length");
  expect_error(with(8, (uint64_t{64} << 20) + 1, 8), ErrorCode::Format, "header length");
  expect_error(with(8, 0, 8), ErrorCode::Format, "header length");
  expect_error(with(16, 64, 8), ErrorCode::Format, "data offset");
  expect_error(with(24, 1u << 30, 8), ErrorCode::Format, "data section");
  expect_error(with(24, std::numeric_limits<uint64_t>::max(), 8), ErrorCode::Format, "data section");
  std::vector<uint8_t> longer = b;
  longer.push_back(0);
  expect_error(longer, ErrorCode::Format, "data section");
}

TEST(NefMalformed, BadJsonAndBadText) {
  test::NefParts p = test::split_nef(valid_file());
  std::string text = p.header.dump(1);
  expect_error(test::assemble_nef("{\"version\": \"1.0\",, }", p.data), ErrorCode::Format, "byte ");
  expect_error(test::assemble_nef("[]", p.data), ErrorCode::Format, "expected an object");
  expect_error(test::assemble_nef("null", p.data), ErrorCode::Format);
  expect_error(test::assemble_nef(text + " trailing", p.data), ErrorCode::Format, "byte ");
  expect_error(test::assemble_nef(std::string(1000, '[') + std::string(1000, ']'), p.data),
               ErrorCode::Format, "nested");
  // Invalid UTF-8 inside a string, reported at its byte offset in the file.
  for (const char* bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    std::string t = text;
    size_t at = t.find("\"s\"");
    ASSERT_NE(at, std::string::npos);
    t.insert(at + 2, bad);
    expect_error(test::assemble_nef(t, p.data), ErrorCode::Format, str("byte ", 32 + at + 2));
  }
  // A lone surrogate escape is valid UTF-8 text but not a valid JSON string.
  std::string t = text;
  t.insert(t.find("\"s\"") + 2, "\\ud800");
  expect_error(test::assemble_nef(t, p.data), ErrorCode::Format);
}

TEST(NefMalformed, TopLevelFields) {
  expect_header_error([](json& h) { h["version"] = "2.0"; }, ErrorCode::Format, "version");
  expect_header_error([](json& h) { h["version"] = 1.0; }, ErrorCode::Format, "version");
  expect_header_error([](json& h) { h.erase("version"); }, ErrorCode::Format, "version");
  expect_header_error([](json& h) { h["nef_format"] = "graph-v2"; }, ErrorCode::Format, "nef_format");
  expect_header_error([](json& h) { h["target"] = 3; }, ErrorCode::Format, "target");
  expect_header_error([](json& h) { h["compiler_cache"] = json::array(); }, ErrorCode::Format,
                      "compiler_cache");
  expect_header_error([](json& h) { h.erase("graph"); }, ErrorCode::Format, "graph");
  expect_header_error([](json& h) { h["graph"] = "g"; }, ErrorCode::Format, "graph");
  expect_header_error([](json& h) { h.erase("tensors"); }, ErrorCode::Format, "tensors");
  expect_header_error([](json& h) { h["tensors"] = json::array(); }, ErrorCode::Format, "tensors");
}

TEST(NefMalformed, WrongJsonTypesEverywhere) {
  using F = std::function<void(json&)>;
  std::vector<std::pair<F, std::string>> cases = {
      {[](json& h) { h["graph"]["nodes"] = json::object(); }, "graph.nodes"},
      {[](json& h) { h["graph"]["nodes"][0] = 5; }, "graph.nodes[0]"},
      {[](json& h) { h["graph"]["nodes"][0]["id"] = 5; }, "graph.nodes[0].id"},
      {[](json& h) { h["graph"]["nodes"][0]["op"] = nullptr; }, "graph.nodes[0].op"},
      {[](json& h) { h["graph"]["nodes"][2]["inputs"] = "x"; }, "graph.nodes[2].inputs"},
      {[](json& h) { h["graph"]["nodes"][2]["inputs"][1] = 1; }, "graph.nodes[2].inputs[1]"},
      {[](json& h) { h["graph"]["nodes"][2]["output"] = json::array(); }, "graph.nodes[2].output"},
      {[](json& h) { h["graph"]["nodes"][2]["attrs"] = json::array(); }, "graph.nodes[2].attrs"},
      {[](json& h) { h["graph"]["nodes"][2]["preferred_device"] = false; }, "preferred_device"},
      {[](json& h) { h["graph"]["nodes"][0]["binding"] = "0"; }, "binding"},
      {[](json& h) { h["graph"]["nodes"][0]["binding"] = 0.0; }, "binding"},
      {[](json& h) { h["graph"]["nodes"][0].erase("binding"); }, "binding"},
      {[](json& h) { h["graph"]["nodes"][2]["binding"] = 0; }, "binding"},
      {[](json& h) { h["graph"]["nodes"][0]["attrs"]["shape"] = json::array({2, 3}); }, "attrs"},
      {[](json& h) { h["graph"]["nodes"][0]["attrs"]["shape"]["type"] = "tuple"; }, "attrs"},
      {[](json& h) { h["graph"]["nodes"][0]["attrs"]["shape"]["value"] = "2,3"; }, ".value"},
      {[](json& h) { h["graph"]["nodes"][0]["attrs"]["shape"]["value"][0] = 2.0; }, ".value[0]"},
      {[](json& h) { h["graph"]["nodes"][0]["attrs"]["shape"]["value"][0] = 18446744073709551615u; },
       ".value[0]"},
      {[](json& h) { h["graph"]["nodes"][0]["attrs"]["shape"]["value"][0] = 1e300; }, ".value[0]"},
      {[](json& h) { h["graph"]["nodes"][0]["attrs"]["name"]["value"] = 1; }, ".value"},
      {[](json& h) { h["graph"]["nodes"][0]["attrs"]["name"].erase("value"); }, "value"},
      {[](json& h) { h["tensors"]["s"] = json::array(); }, "tensors.'s'"},
      {[](json& h) { h["tensors"]["s"]["shape"] = "(2, 3)"; }, "tensors.'s'.shape"},
      {[](json& h) { h["tensors"]["s"]["shape"][0] = 2.5; }, "tensors.'s'.shape[0]"},
      {[](json& h) { h["tensors"]["s"]["shape"][0] = true; }, "tensors.'s'.shape[0]"},
      {[](json& h) { h["tensors"]["s"]["dtype"] = 1; }, "tensors.'s'.dtype"},
      {[](json& h) { h["tensors"]["s"]["dtype"] = "complex64"; }, "tensors.'s'.dtype"},
      {[](json& h) { h["tensors"]["s"]["weak"] = 1; }, "weak"},
      {[](json& h) { h["tensors"]["w"]["data"] = 0; }, "tensors.'w'.data"},
      {[](json& h) { h["tensors"]["w"]["data"]["offset"] = "0"; }, ".offset"},
      {[](json& h) { h["tensors"]["w"]["data"]["nbytes"] = 24.0; }, ".nbytes"},
      {[](json& h) { h["tensors"]["w"]["data"]["offset"] = -64; }, "negative"},
      {[](json& h) { h["graph"]["edges"] = 1; }, "graph.edges"},
      {[](json& h) { h["graph"]["edges"][0] = "node_0"; }, "graph.edges[0]"},
      {[](json& h) { h["graph"]["edges"][0]["from"] = 0; }, "graph.edges[0].from"},
      {[](json& h) { h["graph"]["inputs"] = "x"; }, "graph.inputs"},
      {[](json& h) { h["graph"]["inputs"][0] = 0; }, "graph.inputs[0]"},
      {[](json& h) { h["graph"]["outputs"] = json::object(); }, "graph.outputs"},
      {[](json& h) { h["graph"]["outputs"][0] = 3; }, "graph.outputs[0]"},
      {[](json& h) { h["graph"]["output_names"] = json::array({"a"}); }, "graph.output_names"},
      {[](json& h) { h["graph"]["output_names"][1] = 2; }, "graph.output_names[1]"},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    SCOPED_TRACE(str("case ", k, " expecting ", cases[k].second));
    expect_header_error(cases[k].first, ErrorCode::Format, cases[k].second);
  }
}

TEST(NefMalformed, References) {
  // Unknown op: FormatError naming the op and where.
  expect_header_error([](json& h) { h["graph"]["nodes"][2]["op"] = "frobnicate"; },
                      ErrorCode::Format, "graph.nodes[2].op: unknown op 'frobnicate'");
  // Dangling input.
  expect_header_error(
      [](json& h) {
        h["graph"]["nodes"][2]["inputs"][1] = "nope";
        test::fix_edges(h);
      },
      ErrorCode::Format, "graph.nodes[2].inputs[1]: unknown tensor 'nope'");
  expect_header_error([](json& h) { h["graph"]["nodes"][3]["id"] = "node_0"; }, ErrorCode::Format,
                      "duplicate node id");
  expect_header_error(
      [](json& h) {
        h["graph"]["nodes"][4]["output"] = "s";
        test::fix_edges(h);
      },
      ErrorCode::Format, "produced by two nodes");
  expect_header_error([](json& h) { h["graph"]["nodes"][2]["output"] = "zz"; }, ErrorCode::Format,
                      "not declared");
  expect_header_error([](json& h) { h["tensors"]["ghost"] = {{"shape", json::array()}, {"dtype", "float32"}}; },
                      ErrorCode::Format, "not the output of any node");
  expect_header_error([](json& h) { h["graph"]["outputs"][0] = "ghost"; }, ErrorCode::Format,
                      "graph.outputs[0]: unknown tensor");
  // Edges that disagree with the inputs, or name unknown nodes.
  expect_header_error([](json& h) { h["graph"]["edges"].erase(0); }, ErrorCode::Format, "missing");
  expect_header_error([](json& h) { h["graph"]["edges"].push_back({{"from", "node_0"}, {"to", "node_5"}}); },
                      ErrorCode::Format, "does not match");
  expect_header_error([](json& h) { h["graph"]["edges"][0]["to"] = "node_99"; }, ErrorCode::Format,
                      "unknown node id");
  // Bindings.
  expect_header_error([](json& h) { h["graph"]["nodes"][0]["binding"] = 1; }, ErrorCode::Format,
                      "binding");
  expect_header_error([](json& h) { h["graph"]["nodes"][0]["binding"] = -1; }, ErrorCode::Format,
                      "binding");
  expect_header_error([](json& h) { h["graph"]["inputs"].push_back("y"); }, ErrorCode::Format,
                      "no input node binds it");
}

TEST(NefMalformed, Cycles) {
  // s = add(x, w) now reads r, which depends on s.
  expect_header_error(
      [](json& h) {
        h["graph"]["nodes"][2]["inputs"][1] = "r";
        h["tensors"]["r"]["shape"] = {2, 3};
        test::fix_edges(h);
      },
      ErrorCode::GraphCycle);
  expect_header_error(
      [](json& h) {
        h["graph"]["nodes"][4]["inputs"][0] = "m";  // m = mul(m, s)
        test::fix_edges(h);
      },
      ErrorCode::GraphCycle);
}

TEST(NefMalformed, TypesThatDisagreeWithInference) {
  expect_header_error([](json& h) { h["tensors"]["s"]["shape"] = {3, 2}; }, ErrorCode::Validation,
                      "inference gives");
  expect_header_error([](json& h) { h["tensors"]["m"]["dtype"] = "float64"; }, ErrorCode::Validation,
                      "inference gives");
  expect_header_error([](json& h) { h["tensors"]["r"]["shape"] = {6}; }, ErrorCode::Validation);
  // The constant's attributes disagree with its declared tensor.
  expect_header_error([](json& h) { h["graph"]["nodes"][1]["attrs"]["dtype"]["value"] = "int32"; },
                      ErrorCode::Validation);
  // The registry's attribute checks run too: unknown attribute, wrong attribute type.
  expect_header_error(
      [](json& h) { h["graph"]["nodes"][2]["attrs"]["alpha"] = {{"type", "float"}, {"value", 1.0}}; },
      ErrorCode::Validation, "unknown attribute");
  expect_header_error(
      [](json& h) { h["graph"]["nodes"][5]["attrs"]["shape"] = {{"type", "string"}, {"value", "3,2"}}; },
      ErrorCode::Validation);
  // Re-inference errors keep their own type (here the reshape cannot produce 7 elements).
  expect_header_error([](json& h) { h["graph"]["nodes"][5]["attrs"]["shape"]["value"] = {7}; },
                      ErrorCode::Shape);
}

TEST(NefMalformed, ConstantData) {
  expect_header_error([](json& h) { h["tensors"]["w"]["data"]["nbytes"] = 20; }, ErrorCode::Format,
                      "nbytes");
  expect_header_error([](json& h) { h["tensors"]["w"]["data"]["offset"] = 1 << 20; },
                      ErrorCode::Format, "past");
  expect_header_error([](json& h) { h["tensors"]["flag"]["data"]["offset"] = 128; },
                      ErrorCode::Format, "past");
  expect_header_error([](json& h) { h["tensors"]["w"]["data"]["offset"] = 8; }, ErrorCode::Format,
                      "aligned");
  expect_header_error(
      [](json& h) { h["tensors"]["w"]["data"]["offset"] = std::numeric_limits<int64_t>::max() - 63; },
      ErrorCode::Format);
  expect_header_error([](json& h) { h["tensors"]["w"].erase("data"); }, ErrorCode::Format,
                      "constant without 'data'");
  expect_header_error([](json& h) { h["tensors"]["x"]["data"] = {{"offset", 0}, {"nbytes", 24}}; },
                      ErrorCode::Format, "only constants carry data");
  // A bool constant holding 2 would be undefined behaviour for kernels.
  test::NefParts p = test::split_nef(valid_file());
  p.data[p.header["tensors"]["flag"]["data"]["offset"].get<size_t>()] = 2;
  expect_error(test::assemble_nef(p), ErrorCode::Format, "bool");
}

TEST(NefMalformed, Limits) {
  expect_header_error([](json& h) { h["tensors"]["x"]["shape"] = json(std::vector<int>(17, 1)); },
                      ErrorCode::Format, "tensors.'x'.shape");
  expect_header_error([](json& h) { h["tensors"]["x"]["shape"] = {int64_t{1} << 62, 4}; },
                      ErrorCode::Format, "tensors.'x'.shape");
  expect_header_error([](json& h) { h["tensors"]["x"]["shape"] = {-2, 3}; }, ErrorCode::Format,
                      "negative");
  expect_header_error([](json& h) { h["tensors"]["x"]["shape"] = {0, int64_t{1} << 62}; },
                      ErrorCode::Format, "tensors.'x'.shape");
  // 2M nodes claimed: rejected from the array length before looking at any entry.
  expect_header_error([](json& h) { h["graph"]["nodes"] = json(std::vector<int>(2000001, 0)); },
                      ErrorCode::Format, "more than 1000000");
  // 10 KB strings anywhere: ids, op names, tensor names, attribute strings.
  std::string big(10 * 1024, 'a');
  expect_header_error([&](json& h) { h["graph"]["nodes"][2]["id"] = big; }, ErrorCode::Format,
                      "graph.nodes[2].id");
  expect_header_error([&](json& h) { h["graph"]["nodes"][0]["attrs"]["name"]["value"] = big; },
                      ErrorCode::Format, "limit");
  expect_header_error([&](json& h) { h["graph"]["inputs"][0] = big; }, ErrorCode::Format, "limit");
  expect_header_error([&](json& h) { h["tensors"][big] = h["tensors"]["s"]; }, ErrorCode::Format,
                      "limit");
  // Attribute lists above 1M entries.
  expect_header_error(
      [](json& h) { h["graph"]["nodes"][5]["attrs"]["shape"]["value"] = json(std::vector<int>(1000001, 1)); },
      ErrorCode::Format, "more than 1000000");
}

// Random byte flips of a valid file: any outcome but a crash or a non-NEF exception.
TEST(NefMalformed, RandomMutationsNeverCrash) {
  std::vector<uint8_t> b = valid_file();
  std::mt19937_64 rng(20240601);
  std::printf("seed 20240601\n");
  int errors = 0;
  for (int it = 0; it < 3000; ++it) {
    std::vector<uint8_t> c = b;
    int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) c[rng() % c.size()] = uint8_t(rng());
    try {
      format::parse_nef(c.data(), c.size());
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

}  // namespace
}  // namespace nef
