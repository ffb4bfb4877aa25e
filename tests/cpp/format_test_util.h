// Helpers for the .nef tests: GraphBuilder (ir_builder.h) and byte-level access to a serialized file (split it into header JSON + data, re-assemble
// with a correct preamble) so malformed files can be made by mutating valid ones.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/format_internal.h"
#include "format/nef_file.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "ir_builder.h"
#include "nef/array.h"

namespace nef::test {

// Random bytes for every dtype (any bit pattern, so bit-exactness is tested); bools are 0/1.
inline Array random_bytes_array(const Shape& shape, DType dt, std::mt19937_64& rng) {
  Array a = Array::empty(shape, dt);
  auto* p = static_cast<uint8_t*>(a.data());
  for (size_t i = 0; i < a.nbytes(); ++i)
    p[i] = dt == DType::Bool ? uint8_t(rng() & 1) : uint8_t(rng());
  return a;
}

inline bool same_bytes(const Array& a, const Array& b) {
  if (a.shape != b.shape || a.dtype != b.dtype) return false;
  Array ca = a.contiguous(), cb = b.contiguous();
  return a.nbytes() == 0 || std::memcmp(ca.data(), cb.data(), a.nbytes()) == 0;
}

// A small valid graph used as the base of the malformed-file corpus:
// x:input(2,3) f32, w:const(2,3) f32, s = add(x, w), flag:const(4) bool, m = mul(s, s),
// r = reshape(m, (3, 2)).
inline ir::Graph small_graph() {
  GraphBuilder b;
  std::mt19937_64 rng(7);
  int x = b.input("x", {2, 3}, DType::Float32);
  int w = b.constant(random_bytes_array({2, 3}, DType::Float32, rng), "w");
  int s = b.add("add", {x, w}, {}, "s");
  b.constant(random_bytes_array({4}, DType::Bool, rng), "flag");
  int m = b.add("mul", {s, s}, {}, "m");
  ir::Attrs ra;
  ra.set("shape", std::vector<int64_t>{3, 2});
  int r = b.add("reshape", {m}, ra, "r");
  b.output(r, "out");
  b.output(m, "m");
  return b.g;
}

struct NefParts {
  nlohmann::json header;
  std::vector<uint8_t> data;  // the binary section
};

inline NefParts split_nef(const std::vector<uint8_t>& file) {
  uint64_t hlen = format::detail::load_le64(file.data() + 8);
  uint64_t doff = format::detail::load_le64(file.data() + 16);
  NefParts p;
  p.header = nlohmann::json::parse(file.begin() + 32, file.begin() + 32 + hlen);
  p.data.assign(file.begin() + doff, file.end());
  return p;
}

// A file with a correct preamble around arbitrary header text and data.
inline std::vector<uint8_t> assemble_nef(const std::string& text, const std::vector<uint8_t>& data) {
  uint64_t doff = format::detail::align_up(32 + text.size(), 64);
  std::vector<uint8_t> out(doff + data.size(), ' ');
  std::memcpy(out.data(), "NEF\x01", 4);
  format::detail::store_le32(out.data() + 4, 1);
  format::detail::store_le64(out.data() + 8, text.size());
  format::detail::store_le64(out.data() + 16, doff);
  format::detail::store_le64(out.data() + 24, data.size());
  std::memcpy(out.data() + 32, text.data(), text.size());
  if (!data.empty()) std::memcpy(out.data() + doff, data.data(), data.size());
  return out;
}

inline std::vector<uint8_t> assemble_nef(const NefParts& p) { return assemble_nef(p.header.dump(1), p.data); }

// Recomputes graph.edges from the nodes' inputs (so a test can change inputs alone).
inline void fix_edges(nlohmann::json& h) {
  std::map<std::string, std::string> producer;
  for (const auto& n : h["graph"]["nodes"]) producer[n["output"]] = n["id"];
  nlohmann::json edges = nlohmann::json::array();
  for (const auto& n : h["graph"]["nodes"])
    for (const auto& in : n["inputs"])
      if (producer.count(in)) edges.push_back({{"from", producer[in]}, {"to", n["id"]}});
  h["graph"]["edges"] = edges;
}

inline nlohmann::json& node_by_output(nlohmann::json& h, const std::string& out) {
  for (auto& n : h["graph"]["nodes"])
    if (n["output"] == out) return n;
  throw std::runtime_error("no node " + out);
}


}  // namespace nef::test
