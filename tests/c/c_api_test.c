/* The C API from plain C: values, error codes, NULL handling and a build/load/run round trip.
 * Prints "N passed, M failed" and exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nef/nef.h"
#include "nef/version.h"

static int passed = 0, failed = 0;
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      ++passed;                                                            \
    } else {                                                               \
      ++failed;                                                            \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
              nef_last_error());                                           \
    }                                                                      \
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
      8,  8,  58, 61,  10, 12, 10, 1,  120, 18, 1,  121, 34, 4,  82, 101, 108, 117,
      18, 1,  103, 90, 20, 10, 1,  120, 18, 15, 10, 13, 8,  1,  18, 9,  10,  3,
      18, 1,  110, 10, 2,  8,  2,  98, 20, 10, 1,  121, 18, 15, 10, 13, 8,   1,
      18, 9,  10, 3,  18, 1,  110, 10, 2,  8,  2,  66, 4,  10, 0,  16, 17};
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

  /* The library's version is the build's VERSION file (nef/version.h), parts included. */
  CHECK(nef_version() != NULL && strcmp(nef_version(), NEF_VERSION_STRING) == 0);
  int major = -1, minor = -1, patch = -1;
  CHECK(sscanf(nef_version(), "%d.%d.%d", &major, &minor, &patch) == 3);
  CHECK(major == NEF_VERSION_MAJOR && minor == NEF_VERSION_MINOR && patch == NEF_VERSION_PATCH);

  nef_tensor* all[] = {a, b, c, v, sm, x, y, res};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) nef_tensor_free(all[i]);
  nef_graph_free(g);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
