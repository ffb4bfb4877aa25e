// Internals of the `nef` command-line tool, shared by its .cpp files (not installed).
// Each command is a plain function taking parsed options and returning the exit status; errors
// are thrown (nef::Error -> exit 1, UsageError -> exit 2) and turned into one stderr line in main.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "nef/array.h"
#include "nef/tensor.h"

namespace nef::cli {

// Bad command-line syntax found after CLI11's parse (exit status 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunOptions {
  std::string file;
  std::vector<std::string> inputs;  // "NAME=FILE.npy"
  std::string output_dir = ".";
  std::string device = "auto";
  bool plan = false;
  bool timing = false;
  bool profile = false;  // per-kernel times of the warm runs (of the only run with repeat 1)
  int repeat = 1;
};
int cmd_run(const RunOptions& opts);

struct InspectOptions {
  std::string file;
  bool json = false;  // alone: the file's JSON header; with --plan/--memory/--passes: JSON form
  bool dot = false;
  bool passes = false;  // the IR text after each optimizer pass
  bool plan = false;    // the compiled plan: kernels, what each covers, devices, memory
  bool memory = false;  // the memory plan only
};
int cmd_inspect(const InspectOptions& opts);

int cmd_devices(bool json);

// Writes `file` again as `out` with its compiled plan embedded (compiler_cache "embedded").
int cmd_compile(const std::string& file, const std::string& out);

struct ImportOptions {
  std::string model;              // .onnx
  std::string output;             // .nef
  std::vector<std::string> dims;  // "NAME=VALUE"
  bool embed_plan = false;
};
// Converts an ONNX model to a .nef (symbolic dims must be bound with --dim).
int cmd_import(const ImportOptions& opts);

struct GenerateCliOptions {
  std::string model;  // .gguf
  std::string prompt;
  bool chat = false;  // wrap the prompt as a user message in the model's chat template
  int64_t max_tokens = 128;
  int64_t context = 0;
  double temperature = 0.0;  // 0: greedy
  int64_t top_k = 40;
  double top_p = 0.95, min_p = 0.05, repeat_penalty = 1.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
};
// Streams a GGUF language model's continuation (or chat answer) of a prompt to stdout.
int cmd_generate(const GenerateCliOptions& opts);

// Writes `in` with its matmul weights quantized to int8 (LoadedGraph::quantize) as `out`.
int cmd_quantize(const std::string& in, const std::string& out, bool int8);

// ---- helpers -----------------------------------------------------------------------------
// Splits "NAME=FILE" at the first '='; UsageError when '=' is missing or a side is empty.
std::pair<std::string, std::string> split_input_spec(const std::string& spec);
// Throws nef::Error (NEFError) naming `what` when `path` is not a readable regular file.
void require_file(const std::string& path, const char* what);
// A file name for an output tensor: names come from the (untrusted) graph file, so anything
// that could escape the output directory or be hidden is replaced.
std::string output_file_name(const std::string& tensor_name, size_t index);
// "name: shape dtype" summary lines with a few values and min/max/mean.
std::string summarize(const std::string& name, const Array& a);
// Text form of an attribute value: 3, 0.5, true, "tanh", [0, 1].
std::string attr_value_str(const ir::AttrValue& v);
// Bytes of a tensor of this type (no overflow: validated graphs keep numel <= kMaxElements).
int64_t type_bytes(const ir::TensorType& t);

// What `nef run --plan` prints. One function so the planner's own description can replace it.
std::string describe_plan(const std::string& path, const LoadedGraph& graph);

}  // namespace nef::cli
