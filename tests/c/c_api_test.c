/* The C API from plain C: values, error codes, NULL handling and a build/load/run round trip.
 * Prints "N passed, M failed" and exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nef/nef.h"
#include "nef/version.h"

static int passed = 0, failed = 0;
#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (cond) {                                                                               \
      ++passed;                                                                               \
    } else {                                                                                  \
      ++failed;                                                                               \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
              nef_last_error());                                                              \
    }                                                                                         \
  } while (0)

int main(void) {
  const int64_t s22[2] = {2, 2};
  float a_data[4] = {1, 2, 3, 4}, b_data[4] = {5, 6, 7, 8};
  nef_tensor *a = NULL, *b = NULL, *c = NULL;
  CHECK(nef_tensor_from_data(a_data, NEF_FLOAT32, s22, 2, &a) == NEF_OK);
  CHECK(nef_tensor_from_data(b_data, NEF_FLOAT32, s22, 2, &b) == NEF_OK);
  CHECK(nef_matmul(a, b, &c) == NEF_OK);
  float out[4] = {0};
  CHECK(nef_tensor_copy_to(c, out, sizeof out) == NEF_OK);
  CHECK(out[0] == 19 && out[1] == 22 && out[2] == 43 && out[3] == 50);
  int rank = 0;
  int64_t shape[2] = {0, 0};
  nef_dtype dt = NEF_BOOL;
  CHECK(nef_tensor_rank(c, &rank) == NEF_OK && rank == 2);
  CHECK(nef_tensor_shape(c, shape) == NEF_OK && shape[0] == 2 && shape[1] == 2);
  CHECK(nef_tensor_dtype(c, &dt) == NEF_OK && dt == NEF_FLOAT32);

  /* Too small a destination is an error, not an overflow. */
  CHECK(nef_tensor_copy_to(c, out, 4) == NEF_ERROR_VALIDATION);

  /* Shape errors come back as codes with a message naming the op. */
  const int64_t s3[1] = {3};
  float v3[3] = {1, 2, 3};
  nef_tensor *v = NULL, *bad = NULL;
  CHECK(nef_tensor_from_data(v3, NEF_FLOAT32, s3, 1, &v) == NEF_OK);
  CHECK(nef_matmul(a, v, &bad) == NEF_ERROR_SHAPE);
  CHECK(bad == NULL);
  CHECK(strstr(nef_last_error(), "[matmul]") != NULL);
  CHECK(strcmp(nef_status_name(NEF_ERROR_SHAPE), "NEFShapeError") == 0);

  /* Ops by name with JSON attributes. */
  nef_tensor* sm = NULL;
  CHECK(nef_op("softmax", &a, 1, "{\"axis\": -1}", &sm) == NEF_OK);
  float smv[4];
  CHECK(nef_tensor_copy_to(sm, smv, sizeof smv) == NEF_OK);
  CHECK(fabsf(smv[0] + smv[1] - 1.0f) < 1e-6f);
  CHECK(nef_op("no_such_op", &a, 1, NULL, &bad) == NEF_ERROR_UNSUPPORTED);
  CHECK(nef_op("softmax", &a, 1, "{not json", &bad) == NEF_ERROR_VALIDATION);
  CHECK(nef_op("softmax", &a, 1, "{\"axis\": 18446744073709551615}", &bad) == NEF_ERROR_VALIDATION);

  /* NULL handling. */
  CHECK(nef_matmul(NULL, b, &bad) == NEF_ERROR_INVALID_ARGUMENT);
  CHECK(nef_tensor_execute(NULL) == NEF_ERROR_INVALID_ARGUMENT);
  nef_tensor_free(NULL);
  nef_graph_free(NULL);

  /* Build with a placeholder, load, run on new inputs. */
  nef_tensor *x = NULL, *y = NULL;
  CHECK(nef_placeholder("x", NEF_FLOAT32, s22, 2, &x) == NEF_OK);
  CHECK(nef_matmul(x, b, &y) == NEF_OK);
  const char* path = "c_api_test_model.nef";
  CHECK(nef_tensor_build(y, path) == NEF_OK);
  nef_graph* g = NULL;
  CHECK(nef_graph_load(path, &g) == NEF_OK);
  int ni = 0, no = 0;
  const char* name = NULL;
  CHECK(nef_graph_num_inputs(g, &ni) == NEF_OK && ni == 1);
  CHECK(nef_graph_num_outputs(g, &no) == NEF_OK && no == 1);
  CHECK(nef_graph_input_name(g, 0, &name) == NEF_OK && strcmp(name, "x") == 0);
  CHECK(nef_graph_input_name(g, 5, &name) == NEF_ERROR_VALIDATION);
  nef_tensor* res = NULL;
  CHECK(nef_graph_run(g, &a, 1, &res, 1) == NEF_OK);
  float rv[4] = {0};
  CHECK(nef_tensor_copy_to(res, rv, sizeof rv) == NEF_OK);
  CHECK(rv[0] == 19 && rv[3] == 50);
  CHECK(nef_graph_run(g, &v, 1, &bad, 1) == NEF_ERROR_SHAPE);
  CHECK(nef_graph_load("does-not-exist.nef", &g) != NEF_OK);
  remove(path);

  /* ONNX import from bytes: Relu over x [n, 2] with a symbolic n (bytes written by onnx.helper). */
  static const unsigned char relu_onnx[] = {
      8,  8, 58,  61, 10, 12, 10,  1,   120, 18, 1,  121, 34, 4,  82, 101, 108, 117,
      18, 1, 103, 90, 20, 10, 1,   120, 18,  15, 10, 13,  8,  1,  18, 9,   10,  3,
      18, 1, 110, 10, 2,  8,  2,   98,  20,  10, 1,  121, 18, 15, 10, 13,  8,   1,
      18, 9, 10,  3,  18, 1,  110, 10,  2,   8,  2,  66,  4,  10, 0,  16,  17};
  nef_graph* og = NULL;
  const char* dim_names[] = {"n"};
  const int64_t dim_values[] = {2};
  CHECK(nef_graph_from_onnx_bytes(relu_onnx, sizeof relu_onnx, dim_names, dim_values, 1, &og) ==
        NEF_OK);
  float ov[4] = {0}, od[4] = {-1, 2, -3, 4};
  nef_tensor *ores = NULL, *oin = NULL;
  CHECK(nef_tensor_from_data(od, NEF_FLOAT32, s22, 2, &oin) == NEF_OK);
  CHECK(nef_graph_run(og, &oin, 1, &ores, 1) == NEF_OK);
  CHECK(nef_tensor_copy_to(ores, ov, sizeof ov) == NEF_OK);
  CHECK(ov[0] == 0 && ov[1] == 2 && ov[2] == 0 && ov[3] == 4);
  nef_tensor_free(ores);
  nef_tensor_free(oin);
  nef_graph_free(og);
  CHECK(nef_graph_from_onnx_bytes(relu_onnx, 20, NULL, NULL, 0, &og) == NEF_ERROR_FORMAT);
  CHECK(nef_graph_from_onnx_bytes(relu_onnx, sizeof relu_onnx, dim_names, NULL, 1, &og) ==
        NEF_ERROR_INVALID_ARGUMENT);
  CHECK(nef_graph_from_onnx("does-not-exist.onnx", NULL, NULL, 0, &og) == NEF_ERROR_FORMAT);

  /* A graph input's type: unbound symbolic dims are -1 and named. */
  CHECK(nef_graph_from_onnx_bytes(relu_onnx, sizeof relu_onnx, NULL, NULL, 0, &og) == NEF_OK);
  int irank = 0;
  int64_t ishape[2] = {0, 0};
  nef_dtype idt = NEF_BOOL;
  const char* dname = NULL;
  CHECK(nef_graph_input_rank(og, 0, &irank) == NEF_OK && irank == 2);
  CHECK(nef_graph_input_shape(og, 0, ishape) == NEF_OK && ishape[0] == -1 && ishape[1] == 2);
  CHECK(nef_graph_input_dtype(og, 0, &idt) == NEF_OK && idt == NEF_FLOAT32);
  CHECK(nef_graph_input_dim_name(og, 0, 0, &dname) == NEF_OK && strcmp(dname, "n") == 0);
  CHECK(nef_graph_input_dim_name(og, 0, 1, &dname) == NEF_OK && strcmp(dname, "") == 0);
  CHECK(nef_graph_input_dim_name(og, 0, 2, &dname) == NEF_ERROR_VALIDATION);
  CHECK(nef_graph_input_rank(og, 1, &irank) == NEF_ERROR_VALIDATION);
  CHECK(nef_graph_save(og, "c_api_test_unbound.nef", 0) == NEF_ERROR_VALIDATION);
  CHECK(strstr(nef_last_error(), "n") != NULL);
  nef_graph_free(og);
  /* Bound at import: the input type is static and the graph saves as a .nef that loads. */
  CHECK(nef_graph_from_onnx_bytes(relu_onnx, sizeof relu_onnx, dim_names, dim_values, 1, &og) ==
        NEF_OK);
  CHECK(nef_graph_input_shape(og, 0, ishape) == NEF_OK && ishape[0] == 2 && ishape[1] == 2);
  CHECK(nef_graph_save(og, "c_api_test_relu.nef", 1) == NEF_OK);
  nef_graph_free(og);
  og = NULL;
  CHECK(nef_graph_load("c_api_test_relu.nef", &og) == NEF_OK);
  CHECK(nef_tensor_from_data(od, NEF_FLOAT32, s22, 2, &oin) == NEF_OK);
  CHECK(nef_graph_run(og, &oin, 1, &ores, 1) == NEF_OK);
  CHECK(nef_tensor_copy_to(ores, ov, sizeof ov) == NEF_OK);
  CHECK(ov[0] == 0 && ov[1] == 2 && ov[2] == 0 && ov[3] == 4);
  nef_tensor_free(ores);
  nef_tensor_free(oin);
  nef_graph_free(og);
  remove("c_api_test_relu.nef");

  /* Typed attributes: the same softmax as with JSON, NaN/infinity values JSON cannot carry. */
  nef_attrs* at = NULL;
  nef_tensor *sm2 = NULL, *t = NULL;
  CHECK(nef_attrs_new(&at) == NEF_OK);
  CHECK(nef_attrs_set_int(at, "axis", 0) == NEF_OK);
  CHECK(nef_attrs_set_int(at, "axis", -1) == NEF_OK); /* the last value wins */
  CHECK(nef_op_attrs("softmax", &a, 1, at, &sm2) == NEF_OK);
  float sm2v[4];
  CHECK(nef_tensor_copy_to(sm2, sm2v, sizeof sm2v) == NEF_OK);
  CHECK(memcmp(sm2v, smv, sizeof smv) == 0);
  nef_tensor_free(sm2);
  nef_attrs_free(at);

  const int64_t s23[2] = {2, 3};
  CHECK(nef_attrs_new(&at) == NEF_OK);
  CHECK(nef_attrs_set_ints(at, "shape", s23, 2) == NEF_OK);
  CHECK(nef_attrs_set_string(at, "dtype", "float64") == NEF_OK);
  CHECK(nef_attrs_set_float(at, "value", NAN) == NEF_OK);
  CHECK(nef_op_attrs("full", NULL, 0, at, &t) == NEF_OK);
  double full_v[6];
  CHECK(nef_tensor_dtype(t, &dt) == NEF_OK && dt == NEF_FLOAT64);
  CHECK(nef_tensor_copy_to(t, full_v, sizeof full_v) == NEF_OK);
  CHECK(isnan(full_v[0]) && isnan(full_v[5]));
  nef_tensor_free(t);
  nef_attrs_free(at);

  /* pad: ints, a string and an infinite float; a [2, 2] input gets one row of +inf on top. */
  const int64_t pads[4] = {1, 0, 0, 0};
  CHECK(nef_attrs_new(&at) == NEF_OK);
  CHECK(nef_attrs_set_ints(at, "pads", pads, 4) == NEF_OK);
  CHECK(nef_attrs_set_string(at, "mode", "constant") == NEF_OK);
  CHECK(nef_attrs_set_float(at, "value", INFINITY) == NEF_OK);
  CHECK(nef_op_attrs("pad", &a, 1, at, &t) == NEF_OK);
  float pad_v[6];
  CHECK(nef_tensor_shape(t, shape) == NEF_OK && shape[0] == 3 && shape[1] == 2);
  CHECK(nef_tensor_copy_to(t, pad_v, sizeof pad_v) == NEF_OK);
  CHECK(isinf(pad_v[0]) && pad_v[0] > 0 && isinf(pad_v[1]) && pad_v[2] == 1 && pad_v[5] == 4);
  nef_tensor_free(t);
  nef_attrs_free(at);

  /* resize: floats (scales) and ints (sizes); nearest doubles every element. */
  const int64_t s44[2] = {4, 4};
  const double scales[2] = {2.0, 2.0};
  CHECK(nef_attrs_new(&at) == NEF_OK);
  CHECK(nef_attrs_set_ints(at, "sizes", s44, 2) == NEF_OK);
  CHECK(nef_attrs_set_floats(at, "scales", scales, 2) == NEF_OK);
  CHECK(nef_attrs_set_string(at, "mode", "nearest") == NEF_OK);
  CHECK(nef_op_attrs("resize", &a, 1, at, &t) == NEF_OK);
  float rs_v[16];
  CHECK(nef_tensor_copy_to(t, rs_v, sizeof rs_v) == NEF_OK);
  CHECK(rs_v[0] == 1 && rs_v[1] == 1 && rs_v[2] == 2 && rs_v[4] == 1 && rs_v[8] == 3 &&
        rs_v[15] == 4);
  nef_tensor_free(t);
  nef_attrs_free(at);

  /* bool: keepdims. */
  const int64_t ax1[1] = {1};
  CHECK(nef_attrs_new(&at) == NEF_OK);
  CHECK(nef_attrs_set_ints(at, "axes", ax1, 1) == NEF_OK);
  CHECK(nef_attrs_set_bool(at, "keepdims", 1) == NEF_OK);
  CHECK(nef_op_attrs("sum", &a, 1, at, &t) == NEF_OK);
  float sum_v[2];
  CHECK(nef_tensor_shape(t, shape) == NEF_OK && shape[0] == 2 && shape[1] == 1);
  CHECK(nef_tensor_copy_to(t, sum_v, sizeof sum_v) == NEF_OK && sum_v[0] == 3 && sum_v[1] == 7);
  nef_tensor_free(t);
  /* A wrong attribute type is a validation error naming the op; NULL attrs mean none. */
  CHECK(nef_attrs_set_string(at, "axes", "1") == NEF_OK);
  CHECK(nef_op_attrs("sum", &a, 1, at, &bad) == NEF_ERROR_VALIDATION && bad == NULL);
  CHECK(strstr(nef_last_error(), "sum") != NULL);
  nef_attrs_free(at);
  CHECK(nef_op_attrs("relu", &a, 1, NULL, &t) == NEF_OK);
  nef_tensor_free(t);
  CHECK(nef_attrs_set_int(NULL, "axis", 1) == NEF_ERROR_INVALID_ARGUMENT);
  CHECK(nef_attrs_new(&at) == NEF_OK);
  CHECK(nef_attrs_set_int(at, NULL, 1) == NEF_ERROR_INVALID_ARGUMENT);
  CHECK(nef_attrs_set_ints(at, "shape", NULL, 2) == NEF_ERROR_INVALID_ARGUMENT);
  CHECK(nef_attrs_set_ints(at, "shape", NULL, 0) == NEF_OK);
  CHECK(nef_op_attrs("relu", NULL, 1, at, &bad) == NEF_ERROR_INVALID_ARGUMENT);
  nef_attrs_free(at);
  nef_attrs_free(NULL);

  /* Evaluate two tensors in one graph; both keep their values. */
  nef_tensor *e1 = NULL, *e2 = NULL;
  int mat = -1;
  CHECK(nef_add(a, b, &e1) == NEF_OK);
  CHECK(nef_matmul(e1, b, &e2) == NEF_OK);
  CHECK(nef_tensor_is_materialized(e1, &mat) == NEF_OK && mat == 0);
  CHECK(nef_tensor_is_materialized(a, &mat) == NEF_OK && mat == 1);
  nef_tensor* both[2] = {e1, e2};
  CHECK(nef_evaluate(both, 2) == NEF_OK);
  CHECK(nef_tensor_is_materialized(e1, &mat) == NEF_OK && mat == 1);
  CHECK(nef_tensor_is_materialized(e2, &mat) == NEF_OK && mat == 1);
  float e2v[4];
  CHECK(nef_tensor_copy_to(e2, e2v, sizeof e2v) == NEF_OK);
  /* (a + b) @ b = [[6 8] [10 12]] @ [[5 6] [7 8]] */
  CHECK(e2v[0] == 86 && e2v[1] == 100 && e2v[2] == 134 && e2v[3] == 156);
  CHECK(nef_tensor_op_name(e2, &name) == NEF_OK && strcmp(name, "matmul") == 0);
  CHECK(nef_tensor_op_name(a, &name) == NEF_OK && strcmp(name, "input") == 0);
  nef_tensor* with_null[2] = {e1, NULL};
  CHECK(nef_evaluate(with_null, 2) == NEF_ERROR_VALIDATION);
  CHECK(nef_evaluate(NULL, 0) == NEF_OK);

  /* Build with two named outputs and an embedded plan; load and run it. */
  nef_tensor *h = NULL, *p = NULL;
  CHECK(nef_add(x, b, &h) == NEF_OK);
  CHECK(nef_op("softmax", &h, 1, "{\"axis\": -1}", &p) == NEF_OK);
  const char* out_names[2] = {"h", "probs"};
  nef_tensor* outs[2] = {h, p};
  CHECK(nef_build("c_api_test_two.nef", out_names, outs, 2, 1) == NEF_OK);
  CHECK(nef_build("c_api_test_two.nef", out_names, outs, 0, 0) == NEF_ERROR_VALIDATION);
  const char* null_name[2] = {"h", NULL};
  CHECK(nef_build("c_api_test_two.nef", null_name, outs, 2, 0) == NEF_ERROR_VALIDATION);
  nef_graph* g2 = NULL;
  CHECK(nef_graph_load("c_api_test_two.nef", &g2) == NEF_OK);
  CHECK(nef_graph_num_outputs(g2, &no) == NEF_OK && no == 2);
  CHECK(nef_graph_output_name(g2, 1, &name) == NEF_OK && strcmp(name, "probs") == 0);
  nef_tensor* two[2] = {NULL, NULL};
  CHECK(nef_graph_run(g2, &a, 1, two, 2) == NEF_OK);
  float hv[4], pv[4];
  CHECK(nef_tensor_copy_to(two[0], hv, sizeof hv) == NEF_OK && hv[0] == 6 && hv[3] == 12);
  CHECK(nef_tensor_copy_to(two[1], pv, sizeof pv) == NEF_OK);
  CHECK(fabsf(pv[0] - 1.0f / (1.0f + expf(2.0f))) < 1e-6f && fabsf(pv[2] + pv[3] - 1) < 1e-6f);
  nef_tensor_free(two[0]);
  nef_tensor_free(two[1]);
  nef_graph_free(g2);
  remove("c_api_test_two.nef");

  /* dtypes. */
  CHECK(nef_dtype_size(NEF_FLOAT32) == 4 && nef_dtype_size(NEF_BFLOAT16) == 2);
  CHECK(nef_dtype_size(NEF_BOOL) == 1 && nef_dtype_size((nef_dtype)42) == 0);
  CHECK(strcmp(nef_dtype_name(NEF_INT64), "int64") == 0 && nef_dtype_name((nef_dtype)-1) == NULL);
  CHECK(nef_dtype_size(NEF_INT16) == 2 && nef_dtype_size(NEF_UINT16) == 2);
  CHECK(nef_dtype_size(NEF_UINT32) == 4 && nef_dtype_size(NEF_UINT64) == 8);
  CHECK(strcmp(nef_dtype_name(NEF_UINT64), "uint64") == 0 &&
        strcmp(nef_dtype_name(NEF_INT16), "int16") == 0 && nef_dtype_name((nef_dtype)17) == NULL);
  CHECK(nef_dtype_size(NEF_FLOAT8E5M2) == 1 &&
        strcmp(nef_dtype_name(NEF_FLOAT8E4M3FN), "float8_e4m3fn") == 0);
  {
    /* A uint64 tensor keeps values beyond int64. */
    uint64_t big[2] = {18446744073709551615ull, 2};
    int64_t bs = 2;
    nef_tensor* u = NULL;
    CHECK(nef_tensor_from_data(big, NEF_UINT64, &bs, 1, &u) == NEF_OK);
    nef_dtype udt = NEF_BOOL;
    CHECK(nef_tensor_dtype(u, &udt) == NEF_OK && udt == NEF_UINT64);
    uint64_t back[2] = {0, 0};
    CHECK(nef_tensor_copy_to(u, back, sizeof back) == NEF_OK);
    CHECK(back[0] == big[0] && back[1] == 2);
    nef_tensor_free(u);
  }

  /* Stats, devices, threads. */
  const char* js = NULL;
  CHECK(nef_reset_stats() == NEF_OK);
  CHECK(nef_stats_json(&js) == NEF_OK && strstr(js, "\"graphs_executed\":0") != NULL);
  nef_tensor* st = NULL;
  CHECK(nef_op("neg", &a, 1, NULL, &st) == NEF_OK && nef_tensor_execute(st) == NEF_OK);
  nef_tensor_free(st);
  CHECK(nef_stats_json(&js) == NEF_OK && strstr(js, "\"graphs_executed\":1") != NULL);
  CHECK(strstr(js, "\"plan_cache_misses\"") != NULL);
  CHECK(nef_devices_json(&js) == NEF_OK && strstr(js, "\"enabled\"") != NULL);
  CHECK(strstr(js, "\"name\": \"cpu\"") != NULL);
  const char* cpu_only[1] = {"cpu"};
  const char* unknown[1] = {"no-such-device"};
  CHECK(nef_set_devices(cpu_only, 1) == NEF_OK);
  CHECK(nef_set_devices(unknown, 1) == NEF_ERROR_DEVICE);
  CHECK(strstr(nef_last_error(), "no-such-device") != NULL);
  CHECK(nef_set_devices(NULL, 0) == NEF_OK);
  int threads = 0;
  CHECK(nef_set_num_threads(1) == NEF_OK && nef_num_threads(&threads) == NEF_OK && threads == 1);
  CHECK(nef_set_num_threads(-1) == NEF_ERROR_VALIDATION);
  CHECK(nef_set_num_threads(0) == NEF_OK && nef_num_threads(&threads) == NEF_OK && threads >= 1);

  /* The live handle counts are exactly the handles still held here. */
  nef_tensor* all[] = {a, b, c, v, sm, x, y, res, e1, e2, h, p};
  int64_t live_t = -1, live_g = -1, live_a = -1;
  CHECK(nef_live_handles(&live_t, &live_g, &live_a) == NEF_OK);
  CHECK(live_t == (int64_t)(sizeof all / sizeof all[0]) && live_g == 1 && live_a == 0);

  /* The library's version is the build's VERSION file (nef/version.h), parts included. */
  CHECK(nef_version() != NULL && strcmp(nef_version(), NEF_VERSION_STRING) == 0);
  int major = -1, minor = -1, patch = -1;
  CHECK(sscanf(nef_version(), "%d.%d.%d", &major, &minor, &patch) == 3);
  CHECK(major == NEF_VERSION_MAJOR && minor == NEF_VERSION_MINOR && patch == NEF_VERSION_PATCH);
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) nef_tensor_free(all[i]);
  nef_graph_free(g);
  /* Every handle this test made is freed. */
  CHECK(nef_live_handles(&live_t, &live_g, NULL) == NEF_OK && live_t == 0 && live_g == 0);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
