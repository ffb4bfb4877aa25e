// Matmul epilogue fusion: the pass (which chains become one matmul_epilogue node), the op's strict
// inference and the CPU kernel (numbers against float64 references computed here, odd and zero
// sizes, batched broadcasting, bias shapes, scalars, float64, and equivalence with passes off).
#include <gtest/gtest.h>

#include <cmath>
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

int count_op(const ir::Graph& g, std::string_view op) {
  int k = 0;
  for (const ir::Node& n : g.nodes) k += n.is(op);
  return k;
}

int kernel_steps(const runtime::Plan& p) {
  int k = 0;
  for (const auto& s : p.steps) k += s.kernel != nullptr;
  return k;
}

const ir::Node* find_node(const ir::Graph& g, std::string_view op) {
  for (const ir::Node& n : g.nodes)
    if (n.is(op)) return &n;
  return nullptr;
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

// float64 matmul of operands of rank >= 2 with broadcast batch dims; returns values and shape.
std::vector<double> ref_matmul(const Array& a, const Array& b, Shape* out_shape) {
  std::vector<double> va = test::to_doubles(a), vb = test::to_doubles(b);
  int64_t M = a.shape[a.rank() - 2], K = a.shape.back(), N = b.shape.back();
  Shape ba(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "test");
  *out_shape = batch;
  out_shape->push_back(M);
  out_shape->push_back(N);
  int64_t nb = numel(batch);
  std::vector<double> out(size_t(nb * M * N), 0.0);
  for (int64_t t = 0; t < nb; ++t) {
    const double* A = va.data() + bcast_index(ba, batch, t) * M * K;
    const double* B = vb.data() + bcast_index(bb, batch, t) * K * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += A[i * K + k] * B[k * N + j];
        out[size_t((t * M + i) * N + j)] = s;
      }
  }
  return out;
}

double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double rtol,
                  double atol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    double g = got[i], w = want[i];
    if (!(std::abs(g - w) <= atol + rtol * std::abs(w))) {
      ++bad;
      ADD_FAILURE() << what << " element " << i << ": got " << g << " want " << w;
    }
  }
}

// ---- structure ----------------------------------------------------------------------------

TEST(MatmulEpiloguePass, BiasAddIsOneKernel) {
  NEF_SEEDED_RNG(rng, 3001);
  Tensor x = test::rand_tensor(rng, {7, 37}), w = test::rand_tensor(rng, {37, 5}),
         b = test::rand_tensor(rng, {5});
  Tensor y = matmul(x, w) + b;
  Both both = compile_both({y});
  const ir::Graph& g = both.opt->graph;
  EXPECT_EQ(count_op(g, "matmul_epilogue"), 1) << ir::to_text(g);
  EXPECT_EQ(count_op(g, "matmul"), 0) << ir::to_text(g);
  EXPECT_EQ(kernel_steps(*both.opt), 1) << ir::to_text(g);
  const ir::Node* n = find_node(g, "matmul_epilogue");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->attrs.get_string("program"), "r0=add(i0,i1)");
  EXPECT_EQ(n->inputs.size(), 3u);
  for (const auto& s : both.opt->steps)
    if (s.kernel) EXPECT_NE(s.kernel->name().find("matmul_epilogue"), std::string::npos);
  EXPECT_NE(test::dump_after(both, "fuse_epilogue").find("matmul_epilogue"), std::string::npos);
  expect_equivalent(both);
}

TEST(MatmulEpiloguePass, BiasGeluIsOneKernel) {
  NEF_SEEDED_RNG(rng, 3002);
  Tensor x = test::rand_tensor(rng, {9, 16}), w = test::rand_tensor(rng, {16, 33}),
         b = test::rand_tensor(rng, {33});
  Tensor y = gelu(matmul(x, w) + b);
  Both both = compile_both({y});
  const ir::Graph& g = both.opt->graph;
  EXPECT_EQ(count_op(g, "matmul_epilogue"), 1) << ir::to_text(g);
  EXPECT_EQ(kernel_steps(*both.opt), 1) << ir::to_text(g);
  const ir::Node* n = find_node(g, "matmul_epilogue");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->attrs.get_string("program"), "r0=add(i0,i1);r1=gelu(r0)");
  expect_equivalent(both);
}

TEST(MatmulEpiloguePass, ResidualAddIsOneKernel) {
  NEF_SEEDED_RNG(rng, 3003);
  Tensor x = test::rand_tensor(rng, {6, 20}), h = test::rand_tensor(rng, {6, 40}),
         w2 = test::rand_tensor(rng, {40, 20}), b2 = test::rand_tensor(rng, {20});
  Tensor y = x + (matmul(h, w2) + b2);
  Both both = compile_both({y});
  const ir::Graph& g = both.opt->graph;
  EXPECT_EQ(count_op(g, "matmul_epilogue"), 1) << ir::to_text(g);
  EXPECT_EQ(kernel_steps(*both.opt), 1) << ir::to_text(g);
  const ir::Node* n = find_node(g, "matmul_epilogue");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->attrs.get_string("program"), "r0=add(i0,i1);r1=add(i2,r0)");
  EXPECT_EQ(n->inputs.size(), 4u);
  expect_equivalent(both);
}

TEST(MatmulEpiloguePass, TransformerBlockShowsFusedEpilogues) {
  NEF_SEEDED_RNG(rng, 3004);
  const int64_t T = 13, D = 24, F = 48;
  Tensor x = test::rand_tensor(rng, {T, D});
  Tensor w1 = test::rand_tensor(rng, {D, F}, DType::Float32, -0.3, 0.3),
         b1 = test::rand_tensor(rng, {F}),
         w2 = test::rand_tensor(rng, {F, D}, DType::Float32, -0.3, 0.3),
         b2 = test::rand_tensor(rng, {D});
  Both both = NEF_BOTH(x + (matmul(gelu(matmul(x, w1) + b1), w2) + b2));
  const ir::Graph& g = both.opt->graph;
  EXPECT_EQ(count_op(g, "matmul_epilogue"), 2) << ir::to_text(g);
  EXPECT_EQ(count_op(g, "matmul"), 0) << ir::to_text(g);
  EXPECT_EQ(kernel_steps(*both.opt), 2) << ir::to_text(g);
  expect_equivalent(both, 1e-5, 1e-5);
}

TEST(MatmulEpiloguePass, MatmulWithSecondUserStaysPlain) {
  NEF_SEEDED_RNG(rng, 3005);
  Tensor x = test::rand_tensor(rng, {5, 8}), w = test::rand_tensor(rng, {8, 7}),
         b = test::rand_tensor(rng, {7});
  Both both = NEF_BOTH(
      [&] {
        Tensor t = matmul(x, w);
        return gelu(t + b);
      }(),
      sum(matmul(x, w) * 2.0));
  // CSE merges the two matmuls: the product then has two users and must not be fused away.
  const ir::Graph& g = both.opt->graph;
  EXPECT_EQ(count_op(g, "matmul"), 1) << ir::to_text(g);
  EXPECT_EQ(count_op(g, "matmul_epilogue"), 0) << ir::to_text(g);
  expect_equivalent(both);

  // A matmul that is itself a graph output stays plain too.
  Tensor t = matmul(x, w);
  Tensor y = t + b;
  Both out = compile_both({t, y});
  EXPECT_EQ(count_op(out.opt->graph, "matmul_epilogue"), 0) << ir::to_text(out.opt->graph);
  expect_equivalent(out);
}

TEST(MatmulEpiloguePass, IntegerAndMixedMatmulsAreNotFused) {
  NEF_SEEDED_RNG(rng, 3006);
  Tensor x = test::rand_tensor(rng, {4, 6}, DType::Int32, -5, 5),
         w = test::rand_tensor(rng, {6, 3}, DType::Int32, -5, 5),
         b = test::rand_tensor(rng, {3}, DType::Int32, -5, 5);
  Both both = NEF_BOTH(matmul(x, w) + b);
  EXPECT_EQ(count_op(both.opt->graph, "matmul_epilogue"), 0) << ir::to_text(both.opt->graph);
  expect_equivalent(both);
  // float32 @ float64 (the kernel would convert an operand): left to the plain matmul.
  Tensor xf = test::rand_tensor(rng, {4, 6}), wd = test::rand_tensor(rng, {6, 3}, DType::Float64);
  Both mixed = NEF_BOTH(matmul(xf, wd) + 1.0);
  EXPECT_EQ(count_op(mixed.opt->graph, "matmul_epilogue"), 0) << ir::to_text(mixed.opt->graph);
  expect_equivalent(mixed);
}

TEST(MatmulEpiloguePass, LimitsOnOperandsAndLength) {
  NEF_SEEDED_RNG(rng, 3007);
  Tensor x = test::rand_tensor(rng, {5, 6}), w = test::rand_tensor(rng, {6, 4});
  std::vector<Tensor> bs;
  for (int k = 0; k < 6; ++k) bs.push_back(test::rand_tensor(rng, {4}));
  Both both = NEF_BOTH([&] {
    Tensor y = matmul(x, w);
    for (const Tensor& b : bs) y = y + b;  // 6 extra operands: only 4 fit the epilogue
    return y;
  }());
  const ir::Graph& g = both.opt->graph;
  ASSERT_EQ(count_op(g, "matmul_epilogue"), 1) << ir::to_text(g);
  EXPECT_EQ(find_node(g, "matmul_epilogue")->inputs.size(), 6u) << ir::to_text(g);
  expect_equivalent(both);

  Both longer = NEF_BOTH([&] {
    Tensor y = matmul(x, w);
    for (int k = 0; k < 20; ++k) y = tanh(y);  // 20 ops: 16 fit
    return y;
  }());
  const ir::Node* n = find_node(longer.opt->graph, "matmul_epilogue");
  ASSERT_NE(n, nullptr) << ir::to_text(longer.opt->graph);
  const std::string& p = n->attrs.get_string("program");
  EXPECT_EQ(std::count(p.begin(), p.end(), ';'), 15) << p;
  expect_equivalent(longer);
}

// ---- the op -------------------------------------------------------------------------------

TEST(MatmulEpilogueOp, StrictInference) {
  const ir::OpDef& op = ir::get_op("matmul_epilogue");
  auto infer = [&](std::vector<ir::TensorType> in, std::string prog) {
    ir::Attrs attrs;
    attrs.set("program", prog);
    return ir::check_and_infer(op, in, attrs);
  };
  ir::TensorType a{{3, 4}, DType::Float32}, b{{4, 5}, DType::Float32};
  EXPECT_EQ(infer({a, b, {{5}, DType::Float32}}, "r0=add(i0,i1)"),
            (ir::TensorType{{3, 5}, DType::Float32}));
  EXPECT_EQ(
      infer({{{2, 1, 3, 4}, DType::Float64}, {{6, 4, 5}, DType::Float64}, {{}, DType::Float64}},
            "r0=mul(i0,i1);r1=relu(r0)"),
      (ir::TensorType{{2, 6, 3, 5}, DType::Float64}));
  EXPECT_THROW(infer({a, b, {{4}, DType::Float32}}, "r0=add(i0,i1)"), ShapeError);
  EXPECT_THROW(infer({a, b, {{2, 3, 5}, DType::Float32}}, "r0=add(i0,i1)"), ShapeError);
  EXPECT_THROW(infer({a, {{3, 5}, DType::Float32}}, "r0=relu(i0)"), ShapeError);
  EXPECT_THROW(infer({{{3, 4}, DType::Int32}, {{4, 5}, DType::Int32}}, "r0=relu(i0)"), TypeError);
  EXPECT_THROW(infer({a, {{4, 5}, DType::Float64}}, "r0=relu(i0)"), TypeError);
  EXPECT_THROW(infer({a, b, {{5}, DType::Float32}}, "r0=add(i0,i2)"), ValidationError);
  EXPECT_THROW(infer({a, b, {{5}, DType::Float32}}, "r0=relu(i0)"), ValidationError);  // unused i1
  EXPECT_THROW(infer({a, b}, "r0:f64=relu(i0)"), ValidationError);  // wrong result dtype
  EXPECT_THROW(infer({a, b}, "garbage"), ValidationError);
  try {
    infer({a, b, {{4}, DType::Float32}}, "r0=add(i0,i1)");
  } catch (const ShapeError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[matmul_epilogue]", 0), 0u) << e.what();
  }
}

// ---- numerics -----------------------------------------------------------------------------

struct Case {
  Shape a, b, bias;
  DType dtype;
  bool gelu, residual;
};

void run_case(const Case& c, uint64_t seed) {
  NEF_SEEDED_RNG(rng, seed);
  SCOPED_TRACE(::testing::Message()
               << "a=" << shape_str(c.a) << " b=" << shape_str(c.b) << " bias=" << shape_str(c.bias)
               << " " << dtype_name(c.dtype) << " gelu=" << c.gelu << " residual=" << c.residual);
  Array aa = test::random_array(c.a, c.dtype, rng), ba = test::random_array(c.b, c.dtype, rng);
  Array bias = test::random_array(c.bias, c.dtype, rng);
  Shape out_shape;
  std::vector<double> want = ref_matmul(aa, ba, &out_shape);
  Shape res_shape(out_shape.end() - std::min<size_t>(out_shape.size(), 2), out_shape.end());
  Array res = test::random_array(res_shape, c.dtype, rng);
  std::vector<double> vbias = test::to_doubles(bias), vres = test::to_doubles(res);
  for (size_t i = 0; i < want.size(); ++i) {
    double v = want[i] + vbias[size_t(bcast_index(c.bias, out_shape, int64_t(i)))];
    if (c.gelu) v = gelu_ref(v);
    if (c.residual) v += vres[size_t(bcast_index(res_shape, out_shape, int64_t(i)))];
    want[i] = v;
  }
  Tensor ta = from_array(aa), tb = from_array(ba), tbias = from_array(bias), tres = from_array(res);
  Both both = NEF_BOTH([&] {
    Tensor y = matmul(ta, tb) + tbias;
    if (c.gelu) y = gelu(y);
    if (c.residual) y = tres + y;
    return y;
  }());
  const ir::Graph& g = both.opt->graph;
  if (numel(out_shape) > 0) EXPECT_EQ(count_op(g, "matmul_epilogue"), 1) << ir::to_text(g);
  std::vector<Array> got = runtime::execute(both.opt, both.bindings);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].shape, out_shape);
  EXPECT_EQ(got[0].dtype, c.dtype);
  const double K = double(c.a.back());
  const bool f32 = c.dtype == DType::Float32;
  expect_close(test::to_doubles(got[0]), want, f32 ? 1e-5 : 1e-12, (f32 ? 2e-6 : 1e-13) * (K + 4),
               "vs float64 reference");
  expect_equivalent(both, f32 ? 1e-5 : 1e-12, f32 ? 1e-5 : 1e-12);
}

TEST(MatmulEpilogueKernel, OddSizesMatchFloat64) {
  const int64_t sizes[] = {1, 7, 37, 129, 257};
  uint64_t seed = 3100;
  for (int64_t M : sizes)
    for (int64_t N : sizes) {
      int64_t K = sizes[(M + N) % 5];
      run_case({{M, K}, {K, N}, {N}, DType::Float32, true, true}, seed++);
    }
}

TEST(MatmulEpilogueKernel, BiasShapesAndScalars) {
  uint64_t seed = 3200;
  for (DType t : {DType::Float32, DType::Float64}) {
    for (Shape bias : {Shape{37}, Shape{1, 37}, Shape{129, 1}, Shape{}, Shape{1}, Shape{129, 37}})
      run_case({{129, 7}, {7, 37}, bias, t, false, false}, seed++);
    run_case({{7, 257}, {257, 129}, {129}, t, true, false}, seed++);
  }
}

TEST(MatmulEpilogueKernel, BatchedWithBroadcasting) {
  uint64_t seed = 3300;
  for (DType t : {DType::Float32, DType::Float64}) {
    run_case({{3, 1, 7, 5}, {4, 5, 37}, {4, 1, 37}, t, true, true}, seed++);
    run_case({{2, 37, 9}, {9, 7}, {2, 37, 1}, t, false, true}, seed++);
    run_case({{1, 1, 1}, {5, 1, 1}, {}, t, true, true}, seed++);
  }
}

TEST(MatmulEpilogueKernel, WideAndZeroSizes) {
  uint64_t seed = 3400;
  // Wider than one GEMM column panel (tiles that are column slices of rows).
  run_case({{7, 5}, {5, 3100}, {3100}, DType::Float32, true, true}, seed++);
  run_case({{300, 3}, {3, 3080}, {300, 1}, DType::Float64, false, true}, seed++);
  // K == 0: the product is zeros, the epilogue still runs; M == 0 / N == 0: empty outputs.
  run_case({{5, 0}, {0, 6}, {6}, DType::Float32, true, true}, seed++);
  run_case({{0, 4}, {4, 6}, {6}, DType::Float32, true, false}, seed++);
  run_case({{3, 4}, {4, 0}, {0}, DType::Float64, false, true}, seed++);
}

TEST(MatmulEpilogueKernel, NonContiguousOperands) {
  NEF_SEEDED_RNG(rng, 3500);
  // Transposed weights and a strided bias slice: the kernel reads strided views.
  Tensor x = test::rand_tensor(rng, {37, 9}), wt = test::rand_tensor(rng, {129, 9}),
         b = test::rand_tensor(rng, {2, 129});
  Both both =
      NEF_BOTH(gelu(matmul(x, wt.transpose()) + b.transpose().sum(std::vector<int64_t>{1})));
  EXPECT_GE(count_op(both.opt->graph, "matmul_epilogue"), 0);
  expect_equivalent(both);
}

}  // namespace
}  // namespace nef
