// fused_elementwise: one node for a chain of elementwise ops (made by passes/fuse_elementwise).
// Inputs are the chain's external operands (any shapes broadcastable to `shape`); attributes are
// the program text (see fused_program.h), the output `shape` and `dtype`. Inference re-parses
// and checks the program, so a malformed one from a file is a ValidationError, never a crash.
#include <algorithm>
#include <array>
#include <unordered_map>
#include <variant>

#include "ir/graph.h"
#include "ir/ops/fused_program.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

constexpr const char* kOp = "fused_elementwise";

struct OpInfo {
  const char* name;
  int arity;
};
constexpr std::array<OpInfo, size_t(FusedOp::kCount)> kOps = {{
    {"neg", 1},        {"abs", 1},         {"sign", 1},          {"relu", 1},
    {"floor", 1},      {"ceil", 1},        {"round", 1},         {"exp", 1},
    {"log", 1},        {"sqrt", 1},        {"rsqrt", 1},         {"reciprocal", 1},
    {"tanh", 1},       {"sigmoid", 1},     {"silu", 1},          {"erf", 1},
    {"sin", 1},        {"cos", 1},         {"gelu", 1},          {"gelu_tanh", 1},
    {"tan", 1},        {"asin", 1},        {"acos", 1},          {"atan", 1},
    {"sinh", 1},       {"cosh", 1},        {"asinh", 1},         {"acosh", 1},
    {"atanh", 1},      {"add", 2},         {"sub", 2},           {"mul", 2},
    {"div", 2},        {"maximum", 2},     {"minimum", 2},       {"mod", 2},
    {"pow", 2},        {"equal", 2},       {"not_equal", 2},     {"less", 2},
    {"less_equal", 2}, {"greater", 2},     {"greater_equal", 2}, {"logical_and", 2},
    {"logical_or", 2}, {"logical_not", 1}, {"where", 3},         {"clip", 3},
    {"cast", 1},
}};

struct Parser {
  std::string_view s;
  size_t pos = 0;
  int instr = 0;

  [[noreturn]] void fail(const std::string& why) const {
    std::string near(s.substr(std::min(pos, s.size()), 24));
    throw ValidationError(str("[", kOp, "] bad program at character ", pos, " (instruction ", instr,
                              "): ", why, near.empty() ? "" : str(" near \"", near, "\"")));
  }
  bool at(char c) const { return pos < s.size() && s[pos] == c; }
  void expect(char c) {
    if (!at(c)) fail(str("expected '", c, "'"));
    ++pos;
  }
  // A decimal index of at most 6 digits (no sign, no leading zeros).
  int number() {
    size_t start = pos;
    int v = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start >= 6) fail("index too long");
      v = v * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) fail("expected a number");
    if (pos - start > 1 && s[start] == '0') fail("leading zero in index");
    return v;
  }
  std::string_view word() {
    size_t start = pos;
    while (
        pos < s.size() &&
        ((s[pos] >= 'a' && s[pos] <= 'z') || (s[pos] >= '0' && s[pos] <= '9') || s[pos] == '_') &&
        pos - start < 32)
      ++pos;
    if (pos == start) fail("expected a name");
    return s.substr(start, pos - start);
  }
};

std::optional<DType> dtype_from_short(std::string_view n) {
  if (n == "f16") return DType::Float16;
  if (n == "bf16") return DType::BFloat16;
  if (n == "f32") return DType::Float32;
  if (n == "f64") return DType::Float64;
  if (n == "bool") return DType::Bool;
  return std::nullopt;
}

TensorType infer_fused(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const std::string& dname = attrs.get_string("dtype");
  std::optional<DType> out = dtype_from_name(dname);
  if (!out || !fused_dtype_name(*out))
    throw ValidationError(
        str("[", kOp, "] dtype must be a float dtype or bool, got \"", dname, "\""));
  const auto& dims = attrs.get_ints("shape");
  if (dims.size() > size_t(kMaxRank))
    throw ValidationError(str("[", kOp, "] shape has rank ", dims.size(), " > ", kMaxRank));
  Shape shape(dims.begin(), dims.end());
  for (int64_t d : shape)
    if (d < 0) throw ValidationError(str("[", kOp, "] negative dim in shape ", shape_str(shape)));
  checked_numel(shape, kOp);
  // Every input broadcasts to exactly `shape` (the output of a chain is the broadcast of its
  // operands), so the kernel never reads outside an input.
  std::vector<TensorType> all = in;
  all.push_back({shape, *out});
  if (broadcast_all(op, all) != shape)
    throw ShapeError(
        str("[", kOp, "] inputs ", types_str(in), " do not broadcast to shape ", shape_str(shape)));
  parse_fused_program(attrs.get_string("program"), in, *out);
  return {shape, *out};
}

Cost fused_cost(const std::vector<TensorType>& in, const TensorType& out, const Attrs& attrs) {
  Cost c;
  double n = double(numel(out.shape));
  const std::string& p = attrs.get_string("program");
  c.flops = n * double(1 + std::count(p.begin(), p.end(), ';'));
  c.bytes = n * double(dtype_size(out.dtype));
  for (const TensorType& t : in) c.bytes += double(numel(t.shape)) * double(dtype_size(t.dtype));
  return c;
}

}  // namespace

const char* fused_op_name(FusedOp op) { return kOps[size_t(op)].name; }
int fused_op_arity(FusedOp op) { return kOps[size_t(op)].arity; }

std::optional<FusedOp> fused_op_of(const Node& n) {
  // By registry entry, looked up once per op: the fusion passes ask for every node.
  static const auto* by_op = [] {
    auto* m = new std::unordered_map<const OpDef*, std::optional<FusedOp>>();
    for (const OpDef* d : all_ops()) (*m)[d] = fused_op_from_name(d->name);
    return m;
  }();
  if (n.is("gelu"))
    return n.attrs.get_string("approximate") == "tanh" ? FusedOp::GeluTanh : FusedOp::Gelu;
  auto it = by_op->find(n.op);
  return it != by_op->end() ? it->second : fused_op_from_name(n.op->name);
}

std::optional<FusedOp> fused_op_from_name(std::string_view name) {
  static const auto* by_name = [] {
    auto* m = new std::unordered_map<std::string_view, FusedOp>();
    for (size_t i = 0; i < kOps.size(); ++i) m->emplace(kOps[i].name, FusedOp(i));
    return m;
  }();
  auto it = by_name->find(name);
  if (it == by_name->end()) return std::nullopt;
  return it->second;
}

bool fused_op_is_compare(FusedOp op) { return op >= FusedOp::Equal && op <= FusedOp::GreaterEqual; }
bool fused_op_is_bool(FusedOp op) { return op >= FusedOp::Equal && op <= FusedOp::LogicalNot; }

const char* fused_dtype_name(DType t) {
  switch (t) {
    case DType::Float16:
      return "f16";
    case DType::BFloat16:
      return "bf16";
    case DType::Float32:
      return "f32";
    case DType::Float64:
      return "f64";
    case DType::Bool:
      return "bool";
    default:
      return nullptr;
  }
}

FusedProgram parse_fused_program(std::string_view text, const std::vector<TensorType>& inputs,
                                 DType out_dtype) {
  if (text.size() > kFusedMaxProgramChars)
    throw ValidationError(str("[", kOp, "] program has ", text.size(), " characters (max ",
                              kFusedMaxProgramChars, ")"));
  if (inputs.size() > size_t(kFusedMaxInputs))
    throw ValidationError(
        str("[", kOp, "] ", inputs.size(), " inputs (max ", kFusedMaxInputs, ")"));
  FusedProgram p;
  p.num_inputs = static_cast<int>(inputs.size());
  std::vector<bool> used(inputs.size(), false);
  Parser ps{text};
  if (text.empty()) ps.fail("empty program");
  while (true) {
    if (ps.instr >= kFusedMaxInstrs) ps.fail(str("more than ", kFusedMaxInstrs, " instructions"));
    FusedInstr ins;
    ps.expect('r');
    if (ps.number() != ps.instr) ps.fail(str("instruction ", ps.instr, " must define r", ps.instr));
    ins.dtype = out_dtype;
    if (ps.at(':')) {
      ++ps.pos;
      std::string_view dn = ps.word();
      auto t = dtype_from_short(dn);
      if (!t) ps.fail(str("unknown dtype '", dn, "' (f16, bf16, f32, f64, bool)"));
      ins.dtype = *t;
    }
    ps.expect('=');
    std::string_view name = ps.word();
    auto op = fused_op_from_name(name);
    if (!op) ps.fail(str("unknown op '", name, "'"));
    ins.op = *op;
    ps.expect('(');
    while (true) {
      if (ins.nargs >= 3) ps.fail("too many operands");
      int ref;
      if (ps.at('r')) {
        ++ps.pos;
        ref = ps.number();
        if (ref >= ps.instr)
          ps.fail(str("r", ref, " is not defined before instruction ", ps.instr));
      } else if (ps.at('i')) {
        ++ps.pos;
        int k = ps.number();
        if (k >= p.num_inputs) ps.fail(str("i", k, " but the node has ", p.num_inputs, " inputs"));
        used[k] = true;
        ref = -1 - k;
      } else {
        ps.fail("expected an operand rN or iN");
      }
      ins.args[ins.nargs++] = ref;
      if (ps.at(')')) break;
      ps.expect(',');
    }
    ++ps.pos;  // ')'
    if (ins.nargs != fused_op_arity(ins.op))
      ps.fail(str(name, " takes ", fused_op_arity(ins.op), " operands, got ", ins.nargs));
    bool is_float = is_floating(ins.dtype);
    if (fused_op_is_bool(ins.op) ? ins.dtype != DType::Bool
                                 : (ins.op != FusedOp::Cast && !is_float))
      ps.fail(str(name, " cannot produce ", dtype_name(ins.dtype)));
    p.code.push_back(ins);
    ++ps.instr;
    if (ps.pos == text.size()) break;
    ps.expect(';');
  }
  for (size_t k = 0; k < used.size(); ++k)
    if (!used[k]) throw ValidationError(str("[", kOp, "] program never reads input i", k));
  if (p.code.back().dtype != out_dtype)
    throw ValidationError(str("[", kOp, "] the last instruction produces ",
                              dtype_name(p.code.back().dtype), " but dtype is ",
                              dtype_name(out_dtype)));
  // float64 math when any value is float64, or a comparison sees a float64 operand (the unfused
  // comparison runs in the promoted dtype).
  auto operand_dtype = [&](int a) { return a >= 0 ? p.code[a].dtype : inputs[-1 - a].dtype; };
  for (const FusedInstr& ins : p.code) {
    if (ins.dtype == DType::Float64) p.compute = DType::Float64;
    if (fused_op_is_compare(ins.op))
      for (int k = 0; k < ins.nargs; ++k)
        if (operand_dtype(ins.args[k]) == DType::Float64) p.compute = DType::Float64;
  }
  return p;
}

std::string print_fused_program(const FusedProgram& p, DType out_dtype) {
  std::string s;
  for (size_t k = 0; k < p.code.size(); ++k) {
    const FusedInstr& ins = p.code[k];
    if (k) s += ';';
    s += 'r';
    s += std::to_string(k);
    if (ins.dtype != out_dtype) {
      s += ':';
      s += fused_dtype_name(ins.dtype);
    }
    s += '=';
    s += fused_op_name(ins.op);
    s += '(';
    for (int a = 0; a < ins.nargs; ++a) {
      if (a) s += ',';
      int ref = ins.args[a];
      s += ref >= 0 ? 'r' : 'i';
      s += std::to_string(ref >= 0 ? ref : -1 - ref);
    }
    s += ')';
  }
  return s;
}

void register_fused_ops(Registry& r) {
  OpDef d;
  d.name = kOp;
  d.min_inputs = 1;
  d.max_inputs = kFusedMaxInputs;
  d.attrs = {{"program", AttrType::String, std::nullopt, true},
             {"shape", AttrType::Ints, std::nullopt, true},
             {"dtype", AttrType::String, std::nullopt, true}};
  d.infer = infer_fused;
  d.traits = kElementwise;
  d.cost = fused_cost;
  r.add(std::move(d));
}

namespace {
std::string program_text(const Node& n) {
  const AttrValue* v = n.attrs.find("program");
  if (!v) return {};
  const auto* text = std::get_if<std::string>(v);
  return text ? *text : std::string();
}
}  // namespace

// A program that no longer parses (it was checked when the node was built, so this is a bug) is
// reported as the node's own op rather than throwing.
std::vector<std::string> covered_ops(const Graph& g, const Node& n) {
  const bool mm = n.is("matmul_epilogue"), conv = n.is("conv_epilogue");
  if (!(n.is("fused_elementwise") || mm || conv)) return {n.op->name};
  std::vector<TensorType> in = g.input_types(n);
  std::vector<std::string> ops;
  if (mm || conv) {  // the product's operands, then the program's extras
    const size_t lead = mm ? 2 : 3;
    if (in.size() < lead) return {n.op->name};
    in.erase(in.begin(), in.begin() + lead);
    in.insert(in.begin(), n.type);  // the product has the node's type
    ops.emplace_back(mm ? "matmul" : "conv");
  }
  try {
    FusedProgram p = parse_fused_program(program_text(n), in, n.type.dtype);
    for (const FusedInstr& ins : p.code) ops.emplace_back(fused_op_name(ins.op));
    return ops;
  } catch (const Error&) {
    return {n.op->name};
  }
}

}  // namespace nef::ir
