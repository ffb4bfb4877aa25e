// The C++ API: lazy tensors. Every op only adds a node to a DAG (shape and dtype are inferred
// at once, so errors surface where the op is written); nothing runs until execute(), array()
// or to_vector() is called. Mirrors the Python API (nef.matmul, operators, .T, ...).
//
// Thread-safety: building graphs from several threads is safe when they share no nodes;
// executing a tensor that another thread is executing at the same time is not.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nef/array.h"
#include "nef/attrs.h"
#include "nef/dtype.h"
#include "nef/error.h"
#include "nef/shape.h"

namespace nef {

namespace detail {
struct LazyNode;
}
namespace backend {
class PlacementScope;
}

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<detail::LazyNode> node) : node_(std::move(node)) {}

  bool defined() const { return node_ != nullptr; }
  const Shape& shape() const;
  DType dtype() const;
  int rank() const { return static_cast<int>(shape().size()); }
  int64_t numel() const { return nef::numel(shape()); }
  const std::string& op() const;  // producing op's registry name
  bool is_materialized() const;

  // Runs the graph that computes this tensor (optimize, plan, compile, run); keeps the value.
  Tensor& execute();
  Tensor& eval() { return execute(); }
  // The value on the host, executing first if needed.
  const Array& array();
  // The value when it is computed and on the host, else null: never executes or transfers.
  const Array* host_value() const;
  template <typename T>
  std::vector<T> to_vector();
  double item();  // single-element tensors only (ShapeError otherwise)

  // Writes a .nef file computing this tensor (output named "output"). embed_plan: also store
  // the compiled plan (compiler_cache "embedded", docs/format.md) so loading it starts warm.
  void build(const std::string& path, bool embed_plan = false) const;

  Tensor reshape(const Shape& shape) const;
  Tensor transpose(std::vector<int64_t> perm = {}) const;
  Tensor T() const { return transpose(); }
  Tensor astype(DType dtype) const;
  Tensor sum(std::optional<std::vector<int64_t>> axes = std::nullopt, bool keepdims = false) const;
  Tensor mean(std::optional<std::vector<int64_t>> axes = std::nullopt, bool keepdims = false) const;

  // A placement hint for the node computing this tensor: a device id ("opencl:0"), a backend
  // ("opencl", "cpu") or a kind ("gpu"). The planner honors it when such a device is enabled and
  // supports the op (the plan says why when it cannot); "" removes it. Returns *this.
  Tensor& prefer(const std::string& device);
  const std::string& device_hint() const;
  // Where the computed value lives ("cpu", "opencl:0"); "" before it is computed. Results stay
  // on the device that computed them until read (array(), to_vector(), item()).
  std::string device() const;

  const std::shared_ptr<detail::LazyNode>& node() const { return node_; }

 private:
  std::shared_ptr<detail::LazyNode> node_;
};

// Every op created on this thread while the scope lives gets `device` as its placement hint
// (scopes nest; an explicit Tensor::prefer still wins afterwards).
class DeviceScope {
 public:
  explicit DeviceScope(std::string device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  std::string previous_;
};

// ---- creation --------------------------------------------------------------------------------
// Wraps existing data (zero-copy: the array's storage is shared, not copied).
Tensor from_array(Array a);
template <typename T>
Tensor tensor(const std::vector<T>& values, const Shape& shape);  // copies values
Tensor scalar(double value, DType dtype = DType::Float32);
// A Python-style weak scalar literal (NEP 50 promotion): x + 2.0 keeps x's dtype.
Tensor weak_scalar(double value, bool is_float);
Tensor placeholder(const std::string& name, const Shape& shape, DType dtype);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor arange(double start, double stop, double step = 1, DType dtype = DType::Float32);
Tensor random_uniform(const Shape& shape, uint64_t seed, double low = 0, double high = 1,
                      DType dtype = DType::Float32);
Tensor random_normal(const Shape& shape, uint64_t seed, double mean = 0, double std = 1,
                     DType dtype = DType::Float32);

// ---- any registered op by name (what the bindings use) --------------------------------------
Tensor op(const std::string& name, const std::vector<Tensor>& inputs, ir::Attrs attrs = {});

// ---- elementwise -----------------------------------------------------------------------------
#define NEF_UNARY_API(fn) Tensor fn(const Tensor& x);
NEF_UNARY_API(neg)
NEF_UNARY_API(abs)
NEF_UNARY_API(exp)
NEF_UNARY_API(log)
NEF_UNARY_API(sqrt)
NEF_UNARY_API(rsqrt)
NEF_UNARY_API(reciprocal)
NEF_UNARY_API(tanh)
NEF_UNARY_API(sigmoid)
NEF_UNARY_API(relu)
NEF_UNARY_API(silu)
NEF_UNARY_API(erf)
NEF_UNARY_API(sin)
NEF_UNARY_API(cos)
NEF_UNARY_API(tan)
NEF_UNARY_API(asin)
NEF_UNARY_API(acos)
NEF_UNARY_API(atan)
NEF_UNARY_API(sinh)
NEF_UNARY_API(cosh)
NEF_UNARY_API(asinh)
NEF_UNARY_API(acosh)
NEF_UNARY_API(atanh)
NEF_UNARY_API(bitwise_not)
NEF_UNARY_API(floor)
NEF_UNARY_API(ceil)
NEF_UNARY_API(round)
NEF_UNARY_API(sign)
NEF_UNARY_API(logical_not)
#undef NEF_UNARY_API
Tensor gelu(const Tensor& x, const std::string& approximate = "none");

#define NEF_BINARY_API(fn) Tensor fn(const Tensor& a, const Tensor& b);
NEF_BINARY_API(add)
NEF_BINARY_API(sub)
NEF_BINARY_API(mul)
NEF_BINARY_API(div)
NEF_BINARY_API(pow)
NEF_BINARY_API(maximum)
NEF_BINARY_API(minimum)
NEF_BINARY_API(mod)
NEF_BINARY_API(equal)
NEF_BINARY_API(not_equal)
NEF_BINARY_API(less)
NEF_BINARY_API(less_equal)
NEF_BINARY_API(greater)
NEF_BINARY_API(greater_equal)
NEF_BINARY_API(logical_and)
NEF_BINARY_API(logical_or)
NEF_BINARY_API(bitwise_and)
NEF_BINARY_API(bitwise_or)
NEF_BINARY_API(bitwise_xor)
NEF_BINARY_API(left_shift)
NEF_BINARY_API(right_shift)
NEF_BINARY_API(matmul)
#undef NEF_BINARY_API
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor clip(const Tensor& x, const Tensor& lo, const Tensor& hi);
Tensor cast(const Tensor& x, DType dtype);

// ---- reductions ------------------------------------------------------------------------------
using Axes = std::optional<std::vector<int64_t>>;  // nullopt: all axes
Tensor sum(const Tensor& x, Axes axes = std::nullopt, bool keepdims = false);
Tensor mean(const Tensor& x, Axes axes = std::nullopt, bool keepdims = false);
Tensor max(const Tensor& x, Axes axes = std::nullopt, bool keepdims = false);
Tensor min(const Tensor& x, Axes axes = std::nullopt, bool keepdims = false);
Tensor prod(const Tensor& x, Axes axes = std::nullopt, bool keepdims = false);
Tensor argmax(const Tensor& x, std::optional<int64_t> axis = std::nullopt, bool keepdims = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> axis = std::nullopt, bool keepdims = false);

// ---- neural ----------------------------------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
Tensor layernorm(const Tensor& x, const Tensor& weight = {}, const Tensor& bias = {},
                 double eps = 1e-5, int64_t axis = -1);
Tensor rmsnorm(const Tensor& x, const Tensor& weight = {}, double eps = 1e-6, int64_t axis = -1);
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask = {},
                 std::optional<double> scale = std::nullopt, bool causal = false);

// ---- layout ----------------------------------------------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor transpose(const Tensor& x, std::vector<int64_t> perm = {});
Tensor slice(const Tensor& x, const std::vector<int64_t>& starts, const std::vector<int64_t>& stops,
             const std::vector<int64_t>& steps);  // one entry per dim, Python slice semantics
Tensor concat(const std::vector<Tensor>& xs, int64_t axis = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis = 0);
Tensor broadcast_to(const Tensor& x, const Shape& shape);
Tensor expand_dims(const Tensor& x, const std::vector<int64_t>& axes);
Tensor squeeze(const Tensor& x, std::optional<std::vector<int64_t>> axes = std::nullopt);
Tensor gather(const Tensor& x, const Tensor& indices, int64_t axis = 0);

// ---- indexing, sorting, scans (docs/ops.md) --------------------------------------------------
// numpy's take_along_axis: out[..., i, ...] = x[..., indices[..., i, ...], ...] along `axis`.
Tensor gather_elements(const Tensor& x, const Tensor& indices, int64_t axis = 0);
// Slices of x addressed by the last dim of indices, after `batch_dims` shared leading dims.
Tensor gather_nd(const Tensor& x, const Tensor& indices, int64_t batch_dims = 0);
// A copy of data with updates written (reduction "none") or combined ("add", "mul", "max",
// "min") at the positions indices give along `axis` / by index tuples; in index order.
Tensor scatter_elements(const Tensor& data, const Tensor& indices, const Tensor& updates,
                        int64_t axis = 0, const std::string& reduction = "none");
Tensor scatter_nd(const Tensor& data, const Tensor& indices, const Tensor& updates,
                  const std::string& reduction = "none");
// The k largest (or smallest) values along `axis` and their int64 indices, sorted, equal values
// in index order, NaN above every number.
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t axis = -1, bool largest = true);
Tensor cumsum(const Tensor& x, int64_t axis = 0, bool exclusive = false, bool reverse = false);
Tensor cumprod(const Tensor& x, int64_t axis = 0, bool exclusive = false, bool reverse = false);
// numpy's einsum ("ij,jk->ik", implicit output, "..." broadcasting, repeated labels for
// diagonals), built from transposes, diagonal gathers, sums and batched matmuls.
Tensor einsum(const std::string& equation, const std::vector<Tensor>& operands);

// ---- recurrent layers (ONNX LSTM / GRU / RNN cells; docs/ops.md) -----------------------------
struct RecurrentOptions {
  std::string direction = "forward";  // "reverse", "bidirectional" (D = 2)
  // Per direction (LSTM f, g, h; GRU f, g; RNN f), or all of them for both directions, by
  // ONNX name (case-insensitive); empty: sigmoid/tanh/tanh, sigmoid/tanh, tanh.
  std::vector<std::string> activations;
  // One per activation (empty: the ONNX defaults of each function).
  std::vector<double> activation_alpha, activation_beta;
  double clip = 0;                   // bound on every gate's pre-activation; 0: none
  bool input_forget = false;         // lstm: f = 1 - i
  bool linear_before_reset = false;  // gru
};
// x [S, B, I], w [D, G*H, I], r [D, G*H, H] (gates LSTM i o f c, GRU z r h); optional (an
// undefined Tensor{}): b [D, 2*G*H] (Wb then Rb; zeros), initial_h / initial_c [D, B, H]
// (zeros), sequence_lens [B] int32/int64 (S each), p [D, 3*H] (LSTM peepholes i o f; none).
// Returns Y [S, D, B, H] (zero past each row's length), Y_h [D, B, H] (the state after each
// row's last step; zeros for length 0) and, for lstm, Y_c [D, B, H]: views of one node.
// Streaming: pass Y_h (and Y_c) of one chunk as the next chunk's initial state.
std::vector<Tensor> lstm(const Tensor& x, const Tensor& w, const Tensor& r, const Tensor& b = {},
                         const Tensor& initial_h = {}, const Tensor& initial_c = {},
                         const Tensor& sequence_lens = {}, const Tensor& p = {},
                         const RecurrentOptions& options = {});
std::vector<Tensor> gru(const Tensor& x, const Tensor& w, const Tensor& r, const Tensor& b = {},
                        const Tensor& initial_h = {}, const Tensor& sequence_lens = {},
                        const RecurrentOptions& options = {});
std::vector<Tensor> rnn(const Tensor& x, const Tensor& w, const Tensor& r, const Tensor& b = {},
                        const Tensor& initial_h = {}, const Tensor& sequence_lens = {},
                        const RecurrentOptions& options = {});

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);

// Executes several tensors in one graph (shared subgraphs run once).
void evaluate(const std::vector<Tensor>& tensors);

// ---- graph files -----------------------------------------------------------------------------
// Writes a .nef file whose named outputs compute the given tensors; placeholders become named
// inputs, data tensors become constants. embed_plan: see Tensor::build.
void build(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& outputs,
           bool embed_plan = false);

// ---- profiling -------------------------------------------------------------------------------
// One kernel of a profiled graph execution (the kernels of LoadedGraph::describe_plan_json, in
// the same order, views included).
struct KernelProfile {
  int step = 0;                  // index in the plan's steps
  int node = 0;                  // node id in the optimized graph
  std::string op;                // the node's op, e.g. "matmul_epilogue"
  std::vector<std::string> ops;  // the ops it covers (fused kernels: their program's ops)
  std::string kernel;            // e.g. "cpu.matmul.float32"
  std::string device;
  Shape shape;  // of its output
  DType dtype = DType::Float32;
  double seconds = 0;            // measured: device time when the device reports it, else wall
  double predicted_seconds = 0;  // the placement cost model's estimate
  // When it ran, in seconds from the start of the run (on the host's clock; device work is
  // placed by its completion time and duration): overlapping intervals ran concurrently.
  double start = 0, end = 0;
};
struct RunProfile {
  std::vector<KernelProfile> kernels;  // in execution order, transfers (op "copy") included
  double seconds = 0;  // the whole execution: kernels plus input checks and output allocation
  double predicted_seconds = 0;  // the cost model's estimate of the whole plan
};

// Profiling times every kernel of each graph execution on the calling thread (LoadedGraph::run,
// Tensor::execute, evaluate). Off by default; off, it costs one branch per kernel. The flag and
// the last profile are per thread: threads profile independently and never see each other's
// runs. last_profile(): the most recent execution on this thread that ran with profiling on
// (empty before any); after an error, the kernels that ran.
void set_profiling(bool on);
bool profiling();
RunProfile last_profile();

struct LoadedGraphImpl;
class LoadedGraph {
 public:
  LoadedGraph() = default;
  explicit LoadedGraph(std::shared_ptr<LoadedGraphImpl> impl) : impl_(std::move(impl)) {}
  // Loads and fully re-validates a .nef file (FormatError / ValidationError / GraphCycleError).
  static LoadedGraph load(const std::string& path);
  // Imports an ONNX model (default domain, opsets up to 27; docs/onnx.md): a file (external
  // data is read next to it) or the model's bytes. `dims` binds symbolic input dims ("batch": 1);
  // dims left unbound are bound by each run from the input shapes (one specialization per distinct
  // binding). FormatError for malformed files, UnsupportedError naming op, node and opset.
  static LoadedGraph from_onnx(const std::string& path,
                               const std::map<std::string, int64_t>& dims = {});
  static LoadedGraph from_onnx_bytes(const std::string& bytes,
                                     const std::map<std::string, int64_t>& dims = {});
  // The graph build() would write, kept in memory: placeholders become named inputs, data
  // tensors constants (shared, not copied). A step captured once and replayed with run() on new
  // inputs compiles once (an LLM's decoding step).
  static LoadedGraph from_tensors(const std::vector<std::pair<std::string, Tensor>>& outputs);
  const std::vector<std::string>& inputs() const;
  const std::vector<std::string>& outputs() const;
  // Shapes use -1 for a symbolic dim that is still unbound; input_dim_names names them.
  std::vector<std::pair<Shape, DType>> input_types() const;
  std::vector<std::vector<std::string>> input_dim_names() const;  // "" for fixed dims
  // Compiles the graph now (through the plan cache) instead of at the first run.
  void compile() const;
  // Writes the graph as a .nef file (all dims must be bound: ValidationError otherwise).
  void save(const std::string& path, bool embed_plan = false) const;
  // Runs with named inputs (ValidationError on a missing/extra name, ShapeError/TypeError on a
  // mismatch); returns outputs by name.
  std::map<std::string, Array> run(const std::map<std::string, Array>& inputs) const;
  // run() with profiling on for this call only (on this thread; the flag is restored after):
  // `profile` receives the graph's execution (not the shape subgraphs an imported model with
  // unbound dims evaluates while specializing).
  std::map<std::string, Array> run_profiled(const std::map<std::string, Array>& inputs,
                                            RunProfile& profile) const;
  // Post-training quantization, scheme "int8": every matmul by a constant float matrix [K, N]
  // (float32 result) runs on int8 weights: with 32 or more activation rows, per-channel
  // symmetric weights and per-row uint8 activations (quantized at run time) through the exact
  // integer product matmul_integer; with fewer rows (K a multiple of 32), a qmatmul over Q8_0
  // blocks (one scale per 32 weights of each output channel), activations per row and 32
  // values. Weights shared with other ops stay float (docs/llm.md, "INT8 for float models").
  // UnsupportedError for another scheme; ValidationError while symbolic dims are unbound.
  struct QuantizeReport {
    int quantized = 0, kept = 0;  // matmuls by constant matrices rewritten / left in float
    int64_t bytes_before = 0, bytes_after = 0;  // of the weights rewritten
    int convs_quantized = 0, convs_kept = 0;    // convs by constant weights rewritten / in float
  };
  LoadedGraph quantize(const std::string& scheme = "int8", QuantizeReport* report = nullptr) const;
  // The compiled plan (kernels in order, devices and placement reasons) as text.
  std::string describe_plan() const;
  // The compiled plan as a JSON object: "kernels" in execution order (op, kernel, device, shape,
  // dtype, the ops each covers) and "memory" (planned_peak_bytes, naive_bytes, per-value
  // offsets). `indent` < 0: one line.
  std::string describe_plan_json(int indent = -1) const;
  // The memory plan as text: planned peak, naive sum, each value's offset, size and lifetime.
  std::string describe_memory() const;
  std::shared_ptr<LoadedGraphImpl> impl() const { return impl_; }

 private:
  std::shared_ptr<LoadedGraphImpl> impl_;
};

// ---- stats and configuration -----------------------------------------------------------------
std::map<std::string, int64_t> stats();
void reset_stats();
// Devices the planner may use ("cpu", later "cuda:0", "gpu"...); wins over NEF_DEVICES.
// Unknown names raise DeviceError. An empty list clears the override.
void set_devices(const std::vector<std::string>& names);
// Restricts the devices the planner may use to `names` on the calling thread while it lives
// (innermost wins; over set_devices and NEF_DEVICES): for work only some devices can run.
// Naming only "cpu" loads no other backend's driver. Unknown names raise DeviceError.
class PlacementScope {
 public:
  explicit PlacementScope(const std::vector<std::string>& names);
  ~PlacementScope();
  PlacementScope(const PlacementScope&) = delete;
  PlacementScope& operator=(const PlacementScope&) = delete;

 private:
  std::unique_ptr<backend::PlacementScope> impl_;
};
// Threads for CPU kernels (0 = all cores).
void set_num_threads(int n);
int num_threads();

}  // namespace nef
