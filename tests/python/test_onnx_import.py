"""nef.from_onnx / `nef import`: the importer's own behaviour (the op semantics are covered by
ONNX's node tests in test_onnx_conformance.py): symbolic dims, initializers and external data,
shape-computation folding, .nef round trips, and every kind of bad model."""

import os
import subprocess
import sys

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(20261125)


def make_model(nodes, inputs, outputs, initializers=(), opset=17, **kw):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], **kw)
    m.ir_version = 8
    return m


def mlp_model(batch="batch"):
    """x[batch, 5] @ W + b -> relu -> reshape via Shape/Gather/Concat to [batch, 3, 1]."""
    w = RNG.standard_normal((5, 3)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "B"], ["pre"], name="add"),
        helper.make_node("Relu", ["pre"], ["act"], name="relu"),
        helper.make_node("Shape", ["x"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "tail"], ["newshape"], name="concat", axis=0),
        helper.make_node("Reshape", ["act", "newshape"], ["y"], name="reshape"),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             numpy_helper.from_array(np.array([3, 1], np.int64), "tail")]
    m = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 5])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3, 1])], inits)
    onnx.checker.check_model(m)
    return m, w, b


def mlp_ref(x, w, b):
    return np.maximum(x.astype(np.float64) @ w + b, 0).reshape(len(x), 3, 1)


@pytest.mark.parametrize("form", ["path", "bytes", "proto"])
def test_symbolic_batch_binds_per_run(tmp_path, form):
    m, w, b = mlp_model()
    path = tmp_path / "mlp.onnx"
    onnx.save(m, path)
    src = {"path": path, "bytes": m.SerializeToString(), "proto": m}[form]
    g = nef.from_onnx(src)
    assert g.inputs == ["x"] and g.outputs == ["y"]
    assert g.input_types["x"][0] == ("batch", 5)
    for n in (1, 4, 7, 0):
        x = RNG.standard_normal((n, 5)).astype(np.float32)
        y = g.run({"x": x})["y"]
        assert y.shape == (n, 3, 1) and y.dtype == np.float32
        np.testing.assert_allclose(y, mlp_ref(x, w, b), rtol=1e-5, atol=1e-6)


def test_bound_dims_at_import_and_wrong_shapes(tmp_path):
    m, w, b = mlp_model()
    g = nef.from_onnx(m, dims={"batch": 3})
    assert g.input_types["x"][0] == (3, 5)
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(g.run(x=x)["y"], mlp_ref(x, w, b), rtol=1e-5, atol=1e-6)
    with pytest.raises(nef.NEFShapeError):
        g.run(x=RNG.standard_normal((4, 5)).astype(np.float32))
    with pytest.raises(nef.NEFValidationError, match="not a symbolic dim"):
        nef.from_onnx(m, dims={"sequence": 3})
    g2 = nef.from_onnx(m)
    with pytest.raises(nef.NEFShapeError, match="dim 1 must be 5"):
        g2.run(x=np.ones((2, 6), np.float32))
    with pytest.raises(nef.NEFShapeError, match="rank"):
        g2.run(x=np.ones((2, 5, 1), np.float32))
    with pytest.raises(nef.NEFValidationError, match="missing input"):
        g2.run({})


def test_shared_symbol_mismatch_between_inputs():
    nodes = [helper.make_node("Add", ["a", "b"], ["c"], name="add")]
    m = make_model(nodes,
                   [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 2]),
                    helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 2])],
                   [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["n", 2])])
    g = nef.from_onnx(m)
    a = RNG.standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_allclose(g.run(a=a, b=a)["c"], a * 2)
    with pytest.raises(nef.NEFShapeError, match="dim 'n' is 3 in input 'a' but 4 in input 'b'"):
        g.run(a=a, b=np.ones((4, 2), np.float32))


def test_shape_subgraph_folds_away():
    m, _, _ = mlp_model()
    g = nef.from_onnx(m, dims={"batch": 2})
    ops = [op for k in g.plan()["kernels"] for op in k["nodes"]]
    for shape_op in ("Shape", "gather", "concat", "expand_dims"):
        assert shape_op not in ops, ops


def test_unused_inputs_keep_model_order():
    nodes = [helper.make_node("Neg", ["b"], ["y"], name="neg")]
    m = make_model(nodes,
                   [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2]),
                    helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    g = nef.from_onnx(m)
    assert g.inputs == ["a", "b"]
    y = g.run(a=np.ones(2, np.float32), b=np.array([1, -2], np.float32))["y"]
    np.testing.assert_array_equal(y, [-1, 2])


def test_output_that_is_an_input_or_initializer():
    c = np.arange(4, dtype=np.float32)
    m = make_model([],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                   [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
                    helper.make_tensor_value_info("c", TensorProto.FLOAT, [4])],
                   [numpy_helper.from_array(c, "c")])
    g = nef.from_onnx(m)
    x = RNG.standard_normal(4).astype(np.float32)
    out = g.run(x=x)
    np.testing.assert_array_equal(out["x"], x)
    np.testing.assert_array_equal(out["c"], c)


def test_external_data(tmp_path):
    m, w, b = mlp_model()
    onnx.save(m, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    g = nef.from_onnx(tmp_path / "ext.onnx")
    x = RNG.standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(g.run(x=x)["y"], mlp_ref(x, w, b), rtol=1e-5, atol=1e-6)
    # The same model as bytes has no folder to read the weights from.
    with pytest.raises(nef.NEFFormatError, match="external data"):
        nef.from_onnx((tmp_path / "ext.onnx").read_bytes())


@pytest.mark.parametrize("location", ["/etc/passwd", "../weights.bin", "sub/../../weights.bin",
                                      "missing.bin"])
def test_hostile_external_locations(tmp_path, location):
    m, _, _ = mlp_model()
    onnx.save(m, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    m2 = onnx.load(tmp_path / "ext.onnx", load_external_data=False)
    for t in m2.graph.initializer:
        for kv in t.external_data:
            if kv.key == "location":
                kv.value = location
    (tmp_path / "evil.onnx").write_bytes(m2.SerializeToString())
    with pytest.raises(nef.NEFFormatError):
        nef.from_onnx(tmp_path / "evil.onnx")


def test_external_data_too_short(tmp_path):
    m, _, _ = mlp_model()
    onnx.save(m, tmp_path / "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(nef.NEFFormatError, match="bytes"):
        nef.from_onnx(tmp_path / "ext.onnx")


def test_build_nef_roundtrip_and_cli(tmp_path):
    m, w, b = mlp_model()
    onnx.save(m, tmp_path / "mlp.onnx")
    g = nef.from_onnx(tmp_path / "mlp.onnx", dims={"batch": 4})
    g.build(tmp_path / "mlp.nef")
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    loaded = nef.load(tmp_path / "mlp.nef")
    np.testing.assert_allclose(loaded.run(x=x)["y"], mlp_ref(x, w, b), rtol=1e-5, atol=1e-6)
    # Unbound symbolic dims cannot go into a .nef (static shapes).
    with pytest.raises(nef.NEFValidationError, match="batch"):
        nef.from_onnx(tmp_path / "mlp.onnx").build(tmp_path / "bad.nef")

    cli = os.environ.get("NEF_CLI") or os.path.join(os.path.dirname(sys.executable), "nef")
    if not os.path.exists(cli):
        pytest.skip("nef CLI not installed next to this Python")
    out = tmp_path / "cli.nef"
    r = subprocess.run([cli, "import", str(tmp_path / "mlp.onnx"), "-o", str(out), "--dim",
                        "batch=4"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(nef.load(out).run(x=x)["y"], mlp_ref(x, w, b), rtol=1e-5, atol=1e-6)
    r = subprocess.run([cli, "import", str(tmp_path / "mlp.onnx"), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--dim" in r.stderr
    r = subprocess.run([cli, "import", str(tmp_path / "mlp.onnx"), "-o", str(out), "--dim",
                        "batch=x"], capture_output=True, text=True)
    assert r.returncode == 2
    (tmp_path / "junk.onnx").write_bytes(b"\x0a\xff\xff\xff\xff\x0f")
    r = subprocess.run([cli, "import", str(tmp_path / "junk.onnx"), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "NEFFormatError" in r.stderr


def test_unsupported_op_names_op_node_and_opset():
    nodes = [helper.make_node("TfIdfVectorizer", ["x"], ["y"], name="tfidf1")]
    m = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], opset=19)
    with pytest.raises(nef.NEFUnsupportedError, match=r"TfIdfVectorizer node 'tfidf1' \(opset 19\)"):
        nef.from_onnx(m)


def test_unknown_attribute_is_not_ignored():
    node = helper.make_node("Relu", ["x"], ["y"], name="r", mystery=3)
    m = make_model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(nef.NEFUnsupportedError, match="attribute 'mystery'"):
        nef.from_onnx(m)


def test_other_domains_and_old_opsets():
    node = helper.make_node("FusedGemm", ["x"], ["y"], name="f", domain="com.microsoft")
    m = make_model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(nef.NEFUnsupportedError, match="com.microsoft.FusedGemm"):
        nef.from_onnx(m)
    relu = helper.make_node("Relu", ["x"], ["y"], name="r")
    # Opset 11 imports (tests/python/test_onnx_versions.py); opset 5 has Relu's first revision,
    # with the legacy consumed_inputs attribute, which NEF does not convert.
    ok = make_model([relu], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], opset=11)
    np.testing.assert_array_equal(nef.from_onnx(ok).run(x=np.array([-1, 2], np.float32))["y"],
                                  [0, 2])
    old = make_model([relu], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], opset=5)
    with pytest.raises(nef.NEFUnsupportedError, match="Relu node 'r' \\(opset 5\\).*opset-6 revision"):
        nef.from_onnx(old)


def test_inputs_whose_values_shape_the_graph():
    # Reshape's target is a graph input: the graph is specialized per value at run time.
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="rs"),
             helper.make_node("Add", ["y", "y"], ["z"], name="add")]
    m = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6]),
                           helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
                   [helper.make_tensor_value_info("z", TensorProto.FLOAT, [None, None])])
    g = nef.from_onnx(m)
    x = RNG.standard_normal(6).astype(np.float32)
    for shape in ([2, 3], [3, 2], [6, 1], [-1, 2], [2, 3]):
        s = np.array(shape, np.int64)
        z = g.run(x=x, s=s)["z"]
        np.testing.assert_array_equal(z, (x + x).reshape(shape))
        s[0] = 99  # the cached specialization holds its own copy of the value
    with pytest.raises(nef.NEFShapeError):
        g.run(x=x, s=np.array([4, 2], np.int64))
    with pytest.raises(nef.NEFUnsupportedError, match="Reshape node 'rs'.*values of graph inputs"):
        g.build("never-written.nef")


def test_shape_errors_name_the_node():
    nodes = [helper.make_node("MatMul", ["a", "b"], ["c"], name="mm7")]
    m = make_model(nodes, [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [4, 5])],
                   [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2, 5])])
    with pytest.raises(nef.NEFShapeError, match=r"MatMul node 'mm7'.*\(2, 3\)"):
        nef.from_onnx(m)


@pytest.mark.parametrize("case", [
    "empty", "garbage", "truncated", "no_graph", "undefined_value", "duplicate_value",
    "no_outputs", "missing_output", "bad_raw_size", "negative_dim", "bad_dtype_input",
    "no_opset", "string_initializer", "huge_dims", "attr_wrong_type", "unsorted",
])
def test_malformed_models(case):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    relu = helper.make_node("Relu", ["x"], ["y"], name="r")
    good = make_model([relu], [x], [y])
    expect = nef.NEFFormatError
    if case == "empty":
        data = b""
    elif case == "garbage":
        data = bytes(RNG.integers(0, 256, 300, dtype=np.uint8))
    elif case == "truncated":
        data = good.SerializeToString()[:-5]
    elif case == "no_graph":
        m = helper.make_model(helper.make_graph([], "g", [], []))
        m.ClearField("graph")
        data = m.SerializeToString()
    elif case == "undefined_value":
        data = make_model([helper.make_node("Relu", ["nope"], ["y"])], [x], [y]).SerializeToString()
    elif case == "duplicate_value":
        data = make_model([relu, helper.make_node("Neg", ["x"], ["y"])], [x], [y]).SerializeToString()
    elif case == "no_outputs":
        data = make_model([relu], [x], []).SerializeToString()
    elif case == "missing_output":
        data = make_model([relu], [x], [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])]
                          ).SerializeToString()
    elif case == "bad_raw_size":
        t = numpy_helper.from_array(np.ones(4, np.float32), "c")
        t.raw_data = t.raw_data[:7]
        data = make_model([helper.make_node("Add", ["x", "c"], ["y"])], [x], [y], [t]).SerializeToString()
    elif case == "negative_dim":
        t = numpy_helper.from_array(np.ones(2, np.float32), "c")
        t.dims[0] = -2
        data = make_model([helper.make_node("Add", ["x", "c"], ["y"])], [x], [y], [t]).SerializeToString()
    elif case == "bad_dtype_input":
        xs = helper.make_tensor_value_info("x", TensorProto.STRING, [2])
        data = make_model([relu], [xs], [y]).SerializeToString()
        expect = nef.NEFUnsupportedError
    elif case == "no_opset":
        m = make_model([relu], [x], [y])
        del m.opset_import[:]
        data = m.SerializeToString()
        expect = (nef.NEFFormatError, nef.NEFUnsupportedError)
    elif case == "string_initializer":
        t = helper.make_tensor("c", TensorProto.STRING, [1], [b"a"])
        data = make_model([helper.make_node("Identity", ["c"], ["y"])], [x], [y], [t]).SerializeToString()
        expect = nef.NEFUnsupportedError
    elif case == "huge_dims":
        t = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40], raw_data=b"")
        data = make_model([helper.make_node("Add", ["x", "c"], ["y"])], [x], [y], [t]).SerializeToString()
        expect = (nef.NEFFormatError, nef.NEFShapeError)
    elif case == "attr_wrong_type":
        node = helper.make_node("Softmax", ["x"], ["y"], name="s")
        node.attribute.append(helper.make_attribute("axis", "zero"))
        data = make_model([node], [x], [y]).SerializeToString()
    elif case == "unsorted":
        n1 = helper.make_node("Neg", ["t"], ["y"])
        n2 = helper.make_node("Relu", ["x"], ["t"])
        data = make_model([n1, n2], [x], [y]).SerializeToString()
    with pytest.raises(expect):
        nef.from_onnx(data)


def test_fuzzed_bytes_never_crash():
    m, _, _ = mlp_model()
    base = bytearray(m.SerializeToString())
    rng = np.random.default_rng(7)
    for _ in range(300):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        try:
            g = nef.from_onnx(bytes(data))
            g.run(x=np.ones((2, 5), np.float32))
        except nef.NEFError:
            pass


def test_attention_with_a_bad_past_key_rank():
    # Found by the importer fuzzer: a 2-D past_key was indexed as 4-D.
    f = TensorProto.FLOAT
    node = helper.make_node("Attention", ["q", "k", "v", "", "pk"], ["y"], name="att")
    m = make_model([node], [helper.make_tensor_value_info("q", f, [1, 2, 3, 4]),
                            helper.make_tensor_value_info("k", f, [1, 2, 3, 4]),
                            helper.make_tensor_value_info("v", f, [1, 2, 3, 4]),
                            helper.make_tensor_value_info("pk", f, [3, 4])],
                   [helper.make_tensor_value_info("y", f, [1, 2, 3, 4])], opset=23)
    with pytest.raises(nef.NEFFormatError, match="past_key must be 4-D"):
        nef.from_onnx(m)


@pytest.mark.parametrize("dtype,onnx_type,field", [
    ("int16", TensorProto.INT16, "int32_data"), ("uint16", TensorProto.UINT16, "int32_data"),
    ("uint32", TensorProto.UINT32, "uint64_data"), ("uint64", TensorProto.UINT64, "uint64_data")])
@pytest.mark.parametrize("raw", [False, True])
def test_int16_and_unsigned_initializers_inputs_and_outputs(dtype, onnx_type, field, raw):
    # Initializers in raw_data and in the typed field ONNX stores each type in, a graph input,
    # and an output of the type: values over the whole range, wrapping as numpy does.
    info = np.iinfo(dtype)
    rng = np.random.default_rng(int(onnx_type) * 2 + raw)
    c = rng.integers(info.min, info.max, (3, 4), dtype=dtype, endpoint=True)
    c[0, :2] = [info.min, info.max]
    init = helper.make_tensor("c", onnx_type, c.shape, c.tobytes() if raw else c.ravel().tolist(),
                              raw=raw)
    assert init.HasField("raw_data") == raw and (raw or len(getattr(init, field)) == c.size)
    x = rng.integers(info.min, info.max, (3, 4), dtype=dtype, endpoint=True)
    g = helper.make_graph([helper.make_node("Add", ["x", "c"], ["y"]),
                           helper.make_node("Mul", ["y", "c"], ["z"])], "g",
                          [helper.make_tensor_value_info("x", onnx_type, c.shape)],
                          [helper.make_tensor_value_info("z", onnx_type, c.shape)], [init])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    out = nef.from_onnx(m).run({"x": x})["z"]
    assert out.dtype == np.dtype(dtype)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out, (x + c) * c)


def test_typed_field_count_mismatch_is_a_format_error():
    t = helper.make_tensor("c", TensorProto.UINT32, [3], [1, 2, 3])
    del t.uint64_data[:]
    t.uint64_data.extend([1, 2])
    g = helper.make_graph([helper.make_node("Identity", ["c"], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", TensorProto.UINT32, [3])], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    with pytest.raises(nef.NEFFormatError, match="2 values stored"):
        nef.from_onnx(m)


@pytest.mark.parametrize("onnx_type,name", [
    (TensorProto.FLOAT8E4M3FN, "float8_e4m3fn"), (TensorProto.FLOAT8E4M3FNUZ, "float8_e4m3fnuz"),
    (TensorProto.FLOAT8E5M2, "float8_e5m2"), (TensorProto.FLOAT8E5M2FNUZ, "float8_e5m2fnuz")])
@pytest.mark.parametrize("raw", [False, True])
def test_float8_initializers_and_cast_back(onnx_type, name, raw):
    # A float8 initializer (bit patterns in int32_data, or raw bytes) cast to float32 and
    # concatenated with a float8 graph input (layout ops move float8 as bytes).
    import ml_dtypes
    f8 = np.dtype(getattr(ml_dtypes, name))
    rng = np.random.default_rng(int(onnx_type) + 10 * raw)
    c = rng.integers(0, 256, (2, 5), dtype=np.uint8).view(f8)
    init = onnx.TensorProto()
    init.name, init.data_type = "c", onnx_type
    init.dims.extend(c.shape)
    if raw:
        init.raw_data = c.tobytes()
    else:
        init.int32_data.extend(c.view(np.uint8).ravel().tolist())
    g = helper.make_graph([helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT),
                           helper.make_node("Concat", ["c", "x"], ["z"], axis=0)], "g",
                          [helper.make_tensor_value_info("x", onnx_type, [3, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, c.shape),
                           helper.make_tensor_value_info("z", onnx_type, [5, 5])], [init])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    x = rng.integers(0, 256, (3, 5), dtype=np.uint8).view(f8)
    out = nef.from_onnx(m).run({"x": x})
    np.testing.assert_array_equal(out["y"], c.astype(np.float32))  # NaN codes: NaN both sides
    assert out["z"].dtype == f8
    np.testing.assert_array_equal(out["z"].view(np.uint8),
                                  np.concatenate([c, x]).view(np.uint8))


def test_cast_saturate_must_be_0_or_1():
    g = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E5M2,
                                            saturate=2)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT8E5M2, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    with pytest.raises(nef.NEFFormatError, match="saturate must be 0 or 1"):
        nef.from_onnx(m)
