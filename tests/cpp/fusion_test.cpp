// Elementwise fusion: the pass (structure of the optimized graph), the fused_elementwise op's
// program parser (strict, never crashes on garbage) and the CPU kernel (numbers against float64
// references written here, broadcasting, odd and zero sizes, strided inputs, every dtype).
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ir/ops/fused_program.h"
#include "nef/tensor.h"
#include "passes_test_util.h"
#include "test_util.h"

namespace nef {
namespace {

using test::Both;
using test::compile_both;
using test::expect_equivalent;
using test::lit;
using test::rand_tensor;

int count_op(const ir::Graph& g, std::string_view op) {
  int k = 0;
  for (const ir::Node& n : g.nodes) k += n.is(op);
  return k;
}

// Steps of a plan that run a kernel (inputs and constants have none).
int kernel_steps(const runtime::Plan& p) {
  int k = 0;
  for (const auto& s : p.steps) k += s.kernel != nullptr;
  return k;
}

// Row-major index into `in` (broadcast to `out`) of output element `flat`.
int64_t bcast_index(const Shape& in, const Shape& out, int64_t flat) {
  int64_t idx = 0, stride = 1;
  for (int d = int(out.size()) - 1; d >= 0; --d) {
    int64_t i = flat % out[d];
    flat /= out[d];
    int din = d - int(out.size() - in.size());
    if (din >= 0) {
      if (in[din] != 1) idx += i * stride;
      stride *= in[din];
    }
  }
  return idx;
}

double chain_ref(double a, double b, double c, double d) {
  return std::tanh(a * b + c) * d - std::exp(-a);
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double rtol,
                  double atol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    double g = got[i], w = want[i];
    bool ok =
        std::isnan(w) ? std::isnan(g) : (g == w || std::abs(g - w) <= atol + rtol * std::abs(w));
    if (!ok) {
      ++bad;
      ADD_FAILURE() << what << " element " << i << ": got " << g << " want " << w;
    }
  }
}

// ---- structure ----------------------------------------------------------------------------

TEST(FusionPass, ChainBecomesOneKernel) {
  NEF_SEEDED_RNG(rng, 1001);
  std::vector<Array> arr;
  for (int k = 0; k < 4; ++k) arr.push_back(test::random_array({37, 41}, DType::Float32, rng));
  Tensor a = from_array(arr[0]), b = from_array(arr[1]), c = from_array(arr[2]),
         d = from_array(arr[3]);
  Tensor y = tanh(a * b + c) * d - exp(-a);
  Both both = compile_both({y});
  const ir::Graph& g = both.opt->graph;
  EXPECT_EQ(count_op(g, "fused_elementwise"), 1) << ir::to_text(g);
  EXPECT_EQ(g.nodes.size(), 5u) << ir::to_text(g);  // 4 inputs + 1 fused node
  EXPECT_EQ(kernel_steps(*both.opt), 1);
  for (const ir::Node& n : g.nodes)
    if (n.is("fused_elementwise")) {
      EXPECT_EQ(n.attrs.get_string("program"),
                "r0=mul(i0,i1);r1=add(r0,i2);r2=tanh(r1);r3=mul(r2,i3);r4=neg(i0);r5=exp(r4);"
                "r6=sub(r3,r5)");
      EXPECT_EQ(n.inputs.size(), 4u);
    }
  for (const auto& s : both.opt->steps) {
    if (s.kernel) EXPECT_NE(s.kernel->name().find("fused_elementwise"), std::string::npos);
  }
  expect_equivalent(both);
  // And against float64 math on the inputs.
  std::vector<double> va = test::to_doubles(arr[0]), vb = test::to_doubles(arr[1]);
  std::vector<double> vc = test::to_doubles(arr[2]), vd = test::to_doubles(arr[3]);
  std::vector<double> want(va.size());
  for (size_t i = 0; i < va.size(); ++i) want[i] = chain_ref(va[i], vb[i], vc[i], vd[i]);
  expect_close(test::to_doubles(y.array()), want, 1e-5, 1e-6, "chain");
}

TEST(FusionPass, IntermediateWithOutsideUserStays) {
  NEF_SEEDED_RNG(rng, 1002);
  Tensor a = rand_tensor(rng, {8, 9}), b = rand_tensor(rng, {8, 9});
  Tensor y, s;
  {
    Tensor t = a * b;       // used by the chain and by a reduction
    y = exp(t) + lit(1.0);  // fusable chain
    s = sum(t, std::vector<int64_t>{1});
  }
  Both both = compile_both({y, s});
  const ir::Graph& g = both.opt->graph;
  EXPECT_EQ(count_op(g, "mul"), 1) << ir::to_text(g);
  EXPECT_EQ(count_op(g, "fused_elementwise"), 1) << ir::to_text(g);
  for (const ir::Node& n : g.nodes) {
    if (n.is("fused_elementwise"))
      EXPECT_EQ(n.attrs.get_string("program"), "r0=exp(i0);r1=add(r0,i1)");
  }
  expect_equivalent(both);
}

TEST(FusionPass, GraphOutputsArePreserved) {
  NEF_SEEDED_RNG(rng, 1003);
  Tensor a = rand_tensor(rng, {5, 6}), c = rand_tensor(rng, {6});
  Tensor t = a * a;
  Tensor y = exp(t) + c;
  Both both = compile_both({t, y});
  const ir::Graph& g = both.opt->graph;
  ASSERT_EQ(g.outputs.size(), 2u);
  EXPECT_TRUE(g.nodes[g.outputs[0]].is("mul")) << ir::to_text(g);
  EXPECT_TRUE(g.nodes[g.outputs[1]].is("fused_elementwise")) << ir::to_text(g);
  expect_equivalent(both);

  // A lone elementwise op stays itself (a group of one is not worth a program).
  Tensor z = exp(a);
  Both single = compile_both({z});
  EXPECT_EQ(count_op(single.opt->graph, "fused_elementwise"), 0);
  EXPECT_EQ(count_op(single.opt->graph, "exp"), 1);
}

TEST(FusionPass, SharedIntermediateInsideGroupComputedOnce) {
  NEF_SEEDED_RNG(rng, 1004);
  Tensor x = rand_tensor(rng, {11});
  // t lives only inside the graph: a tensor the caller still holds is kept as an extra output.
  Tensor y = [&] {
    Tensor t = exp(x);
    return t * t + t;
  }();
  Both both = compile_both({y});
  const ir::Graph& g = both.opt->graph;
  EXPECT_EQ(count_op(g, "fused_elementwise"), 1) << ir::to_text(g);
  for (const ir::Node& n : g.nodes) {
    if (n.is("fused_elementwise"))
      EXPECT_EQ(n.attrs.get_string("program"), "r0=exp(i0);r1=mul(r0,r0);r2=add(r1,r0)");
  }
  expect_equivalent(both);
}

TEST(FusionPass, LimitsOnInputsAndLength) {
  NEF_SEEDED_RNG(rng, 1005);
  std::vector<Tensor> xs;
  for (int k = 0; k < 40; ++k) xs.push_back(rand_tensor(rng, {3, 4}));
  Tensor acc = xs[0];
  for (int k = 1; k < 40; ++k) acc = acc * lit(0.5) + xs[k];
  Tensor y = tanh(acc);
  // A long chain on one input: x -> sin(x) * 1.001 + 0.01 -> ... (300 ops).
  Tensor z = xs[0];
  for (int k = 0; k < 100; ++k) z = sin(z) * lit(1.001) + lit(0.01);
  Both both = compile_both({y, z});
  const ir::Graph& g = both.opt->graph;
  int fused = 0;
  for (const ir::Node& n : g.nodes) {
    if (!n.is("fused_elementwise")) continue;
    ++fused;
    EXPECT_LE(n.inputs.size(), 16u);
    const std::string& p = n.attrs.get_string("program");
    EXPECT_LE(std::count(p.begin(), p.end(), ';') + 1, 64);
  }
  EXPECT_GE(fused, 2 + 300 / 64) << ir::to_text(g);
  expect_equivalent(both, 1e-4, 1e-5);
}

TEST(FusionPass, IntegerAndMixedChainsStayCorrect) {
  NEF_SEEDED_RNG(rng, 1006);
  Tensor i = from_array(test::random_array({7, 5}, DType::Int32, rng, -50, 50));
  Tensor j = from_array(test::random_array({7, 5}, DType::Int64, rng, -50, 50));
  Tensor x = rand_tensor(rng, {7, 5});
  Tensor m = (i * j) + i;                                  // integer chain: not fused
  Tensor y = where(greater(x, lit(0.0)), exp(x) * i, -x);  // int operand into f32 ops
  Tensor mask = logical_and(less(x, lit(1.0)), greater(x * lit(2.0), lit(-1.0)));
  Tensor h = cast(x * lit(3.0), DType::Float16) * cast(x, DType::Float16);
  Both both = compile_both({m, y, mask, h});
  EXPECT_GE(count_op(both.opt->graph, "fused_elementwise"), 3) << ir::to_text(both.opt->graph);
  bool int_add_kept = false;  // the integer chain is not fused
  for (const ir::Node& n : both.opt->graph.nodes)
    int_add_kept = int_add_kept || (n.is("add") && n.type.dtype == DType::Int64);
  EXPECT_TRUE(int_add_kept) << ir::to_text(both.opt->graph);
  expect_equivalent(both, 1e-3, 1e-5);
}

// ---- program parser -----------------------------------------------------------------------

ir::TensorType infer(const std::string& program, int ninputs, const std::string& dtype = "float32",
                     std::vector<int64_t> shape = {4}) {
  std::vector<ir::TensorType> in(ninputs, ir::TensorType{{4}, DType::Float32});
  ir::Attrs attrs;
  attrs.set("program", program);
  attrs.set("shape", shape);
  attrs.set("dtype", dtype);
  return ir::check_and_infer(ir::get_op("fused_elementwise"), in, attrs);
}

TEST(FusionParser, AcceptsValidPrograms) {
  EXPECT_EQ(infer("r0=add(i0,i1)", 2).shape, Shape{4});
  EXPECT_EQ(infer("r0:bool=less(i0,i1);r1=where(r0,i0,i1)", 2).dtype, DType::Float32);
  EXPECT_EQ(infer("r0:f16=cast(i0);r1:f16=exp(r0)", 1, "float16").dtype, DType::Float16);
  EXPECT_EQ(infer("r0:bool=greater(i0,i0)", 1, "bool").dtype, DType::Bool);
  std::vector<ir::TensorType> in = {{{4}, DType::Float32}};
  ir::FusedProgram p =
      ir::parse_fused_program("r0:f32=neg(i0);r1:f64=cast(r0);r2:f64=exp(r1)", in, DType::Float64);
  EXPECT_EQ(p.compute, DType::Float64);
  EXPECT_EQ(ir::print_fused_program(p, DType::Float64), "r0:f32=neg(i0);r1=cast(r0);r2=exp(r1)");
}

TEST(FusionParser, RejectsBadPrograms) {
  const char* bad[] = {
      "",                           // empty
      "r0=add(i0,i1",               // unclosed
      "r0=add(i0,i1))",             // trailing garbage
      "r0=frobnicate(i0)",          // unknown op
      "r1=exp(i0)",                 // wrong register number
      "r0=exp(r0)",                 // self reference (cycle)
      "r0=exp(i0);r1=exp(r2)",      // forward reference
      "r0=exp(i5)",                 // input out of range
      "r0=add(i0)",                 // arity
      "r0=exp(i0,i0)",              // arity
      "r0=exp(i0);",                // trailing separator
      "r0:f99=exp(i0)",             // unknown dtype
      "r0:i32=exp(i0)",             // integer register
      "r0=less(i0,i0)",             // comparison into a float register
      "r0:bool=exp(i0)",            // float op into bool
      "r0=exp(i0);r1:f16=exp(r0)",  // last dtype differs from the node's
      "r0=exp(i00)",                // leading zero
      "r0=exp(i99999999999)",       // huge index
      "r0 = exp(i0)",               // whitespace
      "r0=exp(-1)",                 // negative operand
      "r0=where(i0,i0,i0,i0)",      // too many operands
      ";;;;",
      "r0=add(r,i0)",
      "r0=add(i0,i0);r1=add(i0,i0)x",
  };
  for (const char* p : bad) {
    std::string s(p);
    EXPECT_THROW(infer(s, 1), ValidationError) << "program: " << s;
  }
  EXPECT_THROW(infer("r0=exp(i0)", 2), ValidationError);              // input 1 never read
  EXPECT_THROW(infer("r0=exp(i0)", 1, "int32"), ValidationError);     // bad dtype attr
  EXPECT_THROW(infer("r0=exp(i0)", 1, "float32", {5}), ShapeError);   // inputs don't broadcast
  EXPECT_THROW(infer(std::string(100000, 'r'), 1), ValidationError);  // too long
  std::string with_nul("r0=exp(i0)\0x", 12);
  EXPECT_THROW(infer(with_nul, 1), ValidationError);
}

TEST(FusionParser, RandomGarbageNeverCrashes) {
  const uint64_t seed = 1010;
  NEF_SEEDED_RNG(rng, seed);
  const std::string alphabet = "ri0123456789=(),;:abcdefghlnopqstuwx_ \xff";
  const std::string valid =
      "r0=mul(i0,i1);r1=add(r0,i2);r2=tanh(r1);r3=mul(r2,i3);r4=neg(i0);r5=exp(r4);r6=sub(r3,r5)";
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string p;
    if (iter % 2 == 0) {
      size_t len = rng() % 60;
      for (size_t k = 0; k < len; ++k) p += alphabet[rng() % alphabet.size()];
    } else {  // mutate a valid program: replace, delete or insert a few characters
      p = valid;
      int edits = 1 + int(rng() % 3);
      for (int e = 0; e < edits && !p.empty(); ++e) {
        size_t at = rng() % p.size();
        switch (rng() % 3) {
          case 0:
            p[at] = alphabet[rng() % alphabet.size()];
            break;
          case 1:
            p.erase(at, 1);
            break;
          default:
            p.insert(at, 1, alphabet[rng() % alphabet.size()]);
            break;
        }
      }
    }
    try {
      infer(p, 4);
      ++accepted;
    } catch (const ValidationError&) {
    }
  }
  SUCCEED() << accepted << " mutated programs were still valid";
}

// ---- kernel numerics ----------------------------------------------------------------------

// Runs a one-node fused program on arrays through the CPU kernel table.
Array run_fused(const std::string& program, const std::vector<Array>& in, const Shape& shape,
                DType dtype) {
  ir::Attrs attrs;
  attrs.set("program", program);
  attrs.set("shape", std::vector<int64_t>(shape.begin(), shape.end()));
  attrs.set("dtype", std::string(dtype_name(dtype)));
  return test::run_kernel("fused_elementwise", in, attrs);
}

struct OpCase {
  const char* op;
  int arity;
  double lo, hi;  // input domain
  double (*ref)(double a, double b, double c);
  bool bool_out = false;
};

void set_zero(Array& a, int64_t i) {
  nef::dispatch_dtype(
      a.dtype, [&]<typename T>() { a.data_as<T>()[i] = nef::store_as<T>(nef::compute_t<T>(0)); });
}

double sgn(double x) { return x > 0 ? 1 : x < 0 ? -1 : x; }
double mod_ref(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r == 0 ? std::copysign(0.0, b) : r;
}

const OpCase kCases[] = {
    {"neg", 1, -3, 3, [](double a, double, double) { return -a; }},
    {"abs", 1, -3, 3, [](double a, double, double) { return std::fabs(a); }},
    {"sign", 1, -3, 3, [](double a, double, double) { return sgn(a); }},
    {"relu", 1, -3, 3, [](double a, double, double) { return a < 0 ? 0.0 : a; }},
    {"floor", 1, -3, 3, [](double a, double, double) { return std::floor(a); }},
    {"ceil", 1, -3, 3, [](double a, double, double) { return std::ceil(a); }},
    {"round", 1, -3, 3, [](double a, double, double) { return std::nearbyint(a); }},
    {"exp", 1, -100, 100, [](double a, double, double) { return std::exp(a); }},
    {"log", 1, 1e-3, 1e3, [](double a, double, double) { return std::log(a); }},
    {"sqrt", 1, 0, 100, [](double a, double, double) { return std::sqrt(a); }},
    {"rsqrt", 1, 1e-3, 100, [](double a, double, double) { return 1 / std::sqrt(a); }},
    {"reciprocal", 1, 0.1, 10, [](double a, double, double) { return 1 / a; }},
    {"tanh", 1, -12, 12, [](double a, double, double) { return std::tanh(a); }},
    {"sigmoid", 1, -30, 30, [](double a, double, double) { return 1 / (1 + std::exp(-a)); }},
    {"silu", 1, -30, 30, [](double a, double, double) { return a / (1 + std::exp(-a)); }},
    {"erf", 1, -4, 4, [](double a, double, double) { return std::erf(a); }},
    {"sin", 1, -10, 10, [](double a, double, double) { return std::sin(a); }},
    {"cos", 1, -10, 10, [](double a, double, double) { return std::cos(a); }},
    {"gelu", 1, -6, 6,
     [](double a, double, double) { return 0.5 * a * (1 + std::erf(a / std::sqrt(2.0))); }},
    {"gelu_tanh", 1, -6, 6,
     [](double a, double, double) {
       return 0.5 * a * (1 + std::tanh(std::sqrt(2 / M_PI) * (a + 0.044715 * a * a * a)));
     }},
    {"add", 2, -3, 3, [](double a, double b, double) { return a + b; }},
    {"sub", 2, -3, 3, [](double a, double b, double) { return a - b; }},
    {"mul", 2, -3, 3, [](double a, double b, double) { return a * b; }},
    {"div", 2, 0.5, 3, [](double a, double b, double) { return a / b; }},
    {"maximum", 2, -3, 3, [](double a, double b, double) { return std::max(a, b); }},
    {"minimum", 2, -3, 3, [](double a, double b, double) { return std::min(a, b); }},
    {"mod", 2, 0.5, 7, [](double a, double b, double) { return mod_ref(a, b); }},
    {"pow", 2, 0.5, 3, [](double a, double b, double) { return std::pow(a, b); }},
    {"equal", 2, -1, 1, [](double a, double b, double) { return double(a == b); }, true},
    {"not_equal", 2, -1, 1, [](double a, double b, double) { return double(a != b); }, true},
    {"less", 2, -1, 1, [](double a, double b, double) { return double(a < b); }, true},
    {"less_equal", 2, -1, 1, [](double a, double b, double) { return double(a <= b); }, true},
    {"greater", 2, -1, 1, [](double a, double b, double) { return double(a > b); }, true},
    {"greater_equal", 2, -1, 1, [](double a, double b, double) { return double(a >= b); }, true},
    {"logical_and", 2, -1, 1, [](double a, double b, double) { return double(a != 0 && b != 0); },
     true},
    {"logical_or", 2, -1, 1, [](double a, double b, double) { return double(a != 0 || b != 0); },
     true},
    {"logical_not", 1, -1, 1, [](double a, double, double) { return double(a == 0); }, true},
    {"where", 3, -1, 1, [](double a, double b, double c) { return a != 0 ? b : c; }},
    {"clip", 3, -2, 2, [](double a, double b, double c) { return std::min(std::max(a, b), c); }},
};

TEST(FusionKernel, EveryOpMatchesFloat64) {
  const uint64_t seed = 1020;
  NEF_SEEDED_RNG(rng, seed);
  // Every SIMD target this machine has (the kernel dispatches at run time): best, AVX2, SSE4.
  const int64_t have = hwy::SupportedTargets();
  for (int64_t target : {int64_t(0), int64_t(HWY_AVX2), int64_t(HWY_SSE4)}) {
    if (target && !(have & target)) continue;
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(target ? hwy::TargetName(target) : "best target");
    for (DType dt : {DType::Float32, DType::Float64}) {
      for (const OpCase& c : kCases) {
        SCOPED_TRACE(str(c.op, " ", dtype_name(dt)));
        const int64_t n = 1031;
        std::vector<Array> in;
        for (int k = 0; k < c.arity; ++k) {
          double lo = c.lo, hi = c.hi;
          if (std::string(c.op) == "clip" && k == 1) hi = -0.5;  // lo bound
          if (std::string(c.op) == "clip" && k == 2) lo = 0.5;   // hi bound
          Array a = test::random_array({n}, dt, rng, lo, hi);
          // Exact zeros and equal pairs exercise the comparison and logic edges.
          if (c.bool_out || std::string(c.op) == "where")
            for (int64_t i = 0; i < n; i += 7) set_zero(a, i);
          in.push_back(a);
        }
        std::string prog = str("r0=", c.op, "(");
        for (int k = 0; k < c.arity; ++k) prog += str(k ? "," : "", "i", k);
        prog += ")";
        DType out_dt = c.bool_out ? DType::Bool : dt;
        Array out = run_fused(prog, in, {n}, out_dt);
        std::vector<std::vector<double>> v;
        for (const Array& a : in) v.push_back(test::to_doubles(a));
        std::vector<double> want(n);
        for (int64_t i = 0; i < n; ++i) {
          double r = c.ref(v[0][i], c.arity > 1 ? v[1][i] : 0, c.arity > 2 ? v[2][i] : 0);
          want[i] = dt == DType::Float32 && !c.bool_out ? double(float(r)) : r;
        }
        double rtol = dt == DType::Float32 ? 1e-5 : 1e-12;
        double atol = dt == DType::Float32 ? 1e-30 : 1e-300;
        // gelu's 1 + erf / 1 + tanh cancels for negative x in any float formula (the unfused
        // kernels too): there the error is relative to |x|, not to the tiny result.
        if (std::string(c.op).rfind("gelu", 0) == 0) atol = dt == DType::Float32 ? 2e-6 : 1e-14;
        expect_close(test::to_doubles(out), want, rtol, atol, c.op);
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(FusionKernel, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::vector<float> xs = {0.0f,   -0.0f,   1e-40f,  -1e-40f, 1e-30f, 88.0f, 88.8f, 89.0f,
                           -87.5f, -100.0f, -104.5f, 200.0f,  inf,    -inf,  nan,   1.0f};
  while (xs.size() % 16 != 3) xs.push_back(0.5f);  // a partial vector at the end too
  Array x = Array::empty({int64_t(xs.size())}, DType::Float32);
  std::copy(xs.begin(), xs.end(), x.data_as<float>());
  struct U {
    const char* op;
    float (*f)(float);
  };
  for (U u : {U{"exp", [](float v) { return std::exp(v); }},
              U{"log", [](float v) { return std::log(v); }},
              U{"tanh", [](float v) { return std::tanh(v); }},
              U{"sigmoid", [](float v) { return 1.0f / (1.0f + std::exp(-v)); }},
              U{"sqrt", [](float v) { return std::sqrt(v); }}}) {
    Array out = run_fused(str("r0=", u.op, "(i0)"), {x}, x.shape, DType::Float32);
    for (size_t i = 0; i < xs.size(); ++i) {
      float want = u.f(xs[i]), got = out.data_as<float>()[i];
      if (got == want) continue;
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got)) << u.op << "(" << xs[i] << ")";
      } else {
        EXPECT_NEAR(got, want, 4e-7 * std::abs(want) + 1e-44) << u.op << "(" << xs[i] << ")";
      }
    }
  }
}

// The chain with broadcasting: (N,1) with (1,M), scalars, odd and zero sizes, run through the
// whole pipeline and compared with float64 math.
TEST(FusionKernel, ChainBroadcastingAndSizes) {
  const uint64_t seed = 1030;
  NEF_SEEDED_RNG(rng, seed);
  struct Case {
    Shape a, b, c, d;
  };
  std::vector<Case> cases = {
      {{1}, {1}, {1}, {1}},
      {{7}, {7}, {7}, {7}},
      {{1031}, {1031}, {}, {1031}},
      {{100003}, {1}, {100003}, {}},
      {{33, 1}, {1, 65}, {65}, {33, 65}},
      {{1, 1031}, {17, 1}, {}, {1}},
      {{0, 5}, {1, 5}, {5}, {0, 1}},
      {{3, 0}, {3, 1}, {}, {0}},
      {{2, 3, 1, 5}, {1, 3, 4, 1}, {4, 5}, {2, 1, 1, 1}},
  };
  for (const Case& cs : cases) {
    SCOPED_TRACE(str(shape_str(cs.a), shape_str(cs.b), shape_str(cs.c), shape_str(cs.d)));
    std::vector<Array> arrs = {test::random_array(cs.a, DType::Float32, rng),
                               test::random_array(cs.b, DType::Float32, rng),
                               test::random_array(cs.c, DType::Float32, rng),
                               test::random_array(cs.d, DType::Float32, rng)};
    Tensor a = from_array(arrs[0]), b = from_array(arrs[1]), c = from_array(arrs[2]),
           d = from_array(arrs[3]);
    Tensor y = tanh(a * b + c) * d - exp(-a);
    Both both = compile_both({y});
    EXPECT_EQ(count_op(both.opt->graph, "fused_elementwise"), 1) << ir::to_text(both.opt->graph);
    const Shape& out = y.shape();
    std::vector<std::vector<double>> v;
    for (const Array& x : arrs) v.push_back(test::to_doubles(x));
    std::vector<double> want(numel(out));
    for (int64_t i = 0; i < numel(out); ++i)
      want[i] = chain_ref(v[0][bcast_index(cs.a, out, i)], v[1][bcast_index(cs.b, out, i)],
                          v[2][bcast_index(cs.c, out, i)], v[3][bcast_index(cs.d, out, i)]);
    Array got = y.array();
    EXPECT_EQ(got.shape, out);
    expect_close(test::to_doubles(got), want, 1e-5, 1e-6, "chain");
  }
}

// Strided inputs: a transposed view, a reversed view and a stepped slice.
TEST(FusionKernel, NonContiguousInputs) {
  const uint64_t seed = 1040;
  NEF_SEEDED_RNG(rng, seed);
  const int64_t R = 37, C = 53;
  Array base = test::random_array({C, R}, DType::Float32, rng);
  Array tr = base;  // (R, C) view of the (C, R) data
  tr.shape = {R, C};
  tr.strides = {1, R};
  Array wide = test::random_array({R, 2 * C + 1}, DType::Float32, rng);
  Array stepped = wide;  // every other column, starting at column 1
  stepped.shape = {R, C};
  stepped.strides = {2 * C + 1, 2};
  stepped.offset = 1;
  Array row = test::random_array({C}, DType::Float32, rng);
  Array rev = row;  // reversed
  rev.strides = {-1};
  rev.offset = C - 1;
  Array out = run_fused("r0=mul(i0,i1);r1=add(r0,i2);r2=tanh(r1)", {tr, stepped, rev}, {R, C},
                        DType::Float32);
  std::vector<double> want(R * C);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j)
      want[i * C + j] = std::tanh(test::element(tr, i * C + j) * test::element(stepped, i * C + j) +
                                  test::element(rev, j));
  expect_close(test::to_doubles(out), want, 1e-5, 1e-6, "strided");

  // The same through the graph: a transpose view feeding the chain.
  Tensor x = from_array(base);
  Tensor y = exp(-transpose(x)) * from_array(stepped) + lit(1.0);
  std::vector<double> want2(R * C);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j)
      want2[i * C + j] =
          std::exp(-test::element(base, j * R + i)) * test::element(stepped, i * C + j) + 1;
  expect_close(test::to_doubles(y.array()), want2, 1e-5, 1e-6, "graph strided");
}

TEST(FusionKernel, HalfBfloatAndDouble) {
  const uint64_t seed = 1050;
  NEF_SEEDED_RNG(rng, seed);
  for (DType dt : {DType::Float16, DType::BFloat16, DType::Float64}) {
    SCOPED_TRACE(dtype_name(dt));
    Shape s = {19, 57};
    std::vector<Array> arr = {test::random_array(s, dt, rng), test::random_array({57}, dt, rng),
                              test::random_array({19, 1}, dt, rng), test::random_array(s, dt, rng)};
    Tensor a = from_array(arr[0]), b = from_array(arr[1]), c = from_array(arr[2]),
           d = from_array(arr[3]);
    Tensor y = tanh(a * b + c) * d - exp(-a);
    Both both = compile_both({y});
    EXPECT_EQ(count_op(both.opt->graph, "fused_elementwise"), 1) << ir::to_text(both.opt->graph);
    // Each op rounds to the dtype like the unfused ops: results agree to ~1 ulp of the dtype.
    double ulp = dt == DType::Float16 ? 1e-3 : dt == DType::BFloat16 ? 8e-3 : 1e-14;
    expect_equivalent(both, 2 * ulp, 2 * ulp);
    // Against float64 math with the chain's accumulated rounding.
    std::vector<double> va = test::to_doubles(arr[0]), vb = test::to_doubles(arr[1]);
    std::vector<double> vc = test::to_doubles(arr[2]), vd = test::to_doubles(arr[3]);
    std::vector<double> want(numel(s));
    for (int64_t i = 0; i < numel(s); ++i)
      want[i] = chain_ref(va[i], vb[i % 57], vc[i / 57], vd[i]);
    expect_close(test::to_doubles(y.array()), want, 8 * ulp, 8 * ulp, "vs float64");
  }
}

}  // namespace
}  // namespace nef
