// Reading and writing .nef files (format "graph-v1", see docs/format.md): a JSON header in the
// seed's layout plus a 64-byte aligned little-endian binary section with the constants.
// Loading trusts nothing: every size, offset, count, name and type is checked, the graph is
// re-inferred and validated, and the constants are mapped (mmap) without copying.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace nef::format {

// The "compiled" section of a file with compiler_cache "embedded": the optimized, placed graph,
// its device per node and an integrity hash (compiler/embedded_plan.h makes and checks them; the
// format only stores them). On reading, parsed and validated like the main graph (constants
// borrow the same mapping) but not yet verified against the hash.
struct EmbeddedPlanData {
  ir::Graph graph;                   // optimized graph, topological order
  std::vector<std::string> devices;  // device id per node of `graph`
  std::string key_hash;              // as stored in the file
};

struct WriteOptions {
  std::string target = "auto";
  // Set: the file gets compiler_cache "embedded" and this "compiled" section (docs/format.md).
  std::optional<EmbeddedPlanData> embedded;
};

struct NefContents {
  ir::Graph graph;
  std::string compiler_cache = "none";
  std::optional<EmbeddedPlanData> embedded;
  // Why the embedded section could not be parsed or validated ("" when it was, or is absent
  // with compiler_cache "none"). The main graph loads regardless.
  std::string embedded_error;
};

// Writes `g` (inputs are graph inputs, constants go to the binary section). Throws on I/O errors
// (Error with ErrorCode::Generic naming the path).
void write_nef(const std::string& path, const ir::Graph& g, const WriteOptions& opts = {});
// The bytes of the file write_nef would produce.
std::vector<uint8_t> serialize_nef(const ir::Graph& g, const WriteOptions& opts = {});

// Loads a file with mmap; constants borrow the mapping. Throws FormatError (with byte offset or
// JSON path), ValidationError, GraphCycleError, ShapeError/TypeError from re-inference.
ir::Graph read_nef(const std::string& path);
// Same from memory (copied once into owned storage); used by the fuzz target and tests.
ir::Graph parse_nef(const uint8_t* data, size_t size);

// read_nef/parse_nef plus the embedded plan section when compiler_cache is "embedded". A bad
// embedded section never fails the load: it is reported in embedded_error.
NefContents read_nef_contents(const std::string& path);
NefContents parse_nef_contents(const uint8_t* data, size_t size);

// The JSON header text of a file (for `nef inspect --json`), after the same checks as read_nef.
std::string read_nef_header_json(const std::string& path);

}  // namespace nef::format
