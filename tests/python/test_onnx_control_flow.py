"""ONNX If, Loop and Scan: branches folded and loops unrolled at import, subgraphs that read
outer-scope values by name, against numpy in float64; and hostile subgraphs (deep nesting,
names that are not visible, huge trip counts, endless loops) as structured errors."""

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(3131)
F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def branch(name, nodes, outs):
    return helper.make_graph(nodes, name, [], [vi(o) for o in outs])


def if_model(cond_static):
    # then: x * 2 (x from the outer scope); else: x - y
    then_g = branch("then", [helper.make_node("Mul", ["x", "two"], ["t"])], ["t"])
    else_g = branch("else", [helper.make_node("Sub", ["x", "y"], ["e"])], ["e"])
    node = helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)
    inits = [numpy_helper.from_array(np.float32(2), "two")]
    inputs = [vi("x", F, [3, 5]), vi("y", F, [3, 5])]
    if cond_static is None:
        inputs.append(vi("c", TensorProto.BOOL, []))
    else:
        inits.append(numpy_helper.from_array(np.array(cond_static), "c"))
    return model([node], inputs, [vi("out")], inits)


@pytest.mark.parametrize("cond", [True, False])
def test_if_folds_a_static_condition(cond, tmp_path):
    x, y = RNG.standard_normal((2, 3, 5)).astype(np.float32)
    g = nef.from_onnx(if_model(cond))
    want = x.astype(np.float64) * 2 if cond else x.astype(np.float64) - y
    np.testing.assert_allclose(g.run(x=x, y=y)["out"], want, rtol=1e-6)
    # Folded: a static graph that saves and reloads.
    g.build(tmp_path / "if.nef")
    np.testing.assert_allclose(nef.load(tmp_path / "if.nef").run(x=x, y=y)["out"], want,
                               rtol=1e-6)


def test_if_on_a_graph_input_selects_at_run_time(tmp_path):
    x, y = RNG.standard_normal((2, 3, 5)).astype(np.float32)
    g = nef.from_onnx(if_model(None))
    g.build(tmp_path / "if.nef")  # one graph for both conditions, so it saves
    loaded = nef.load(tmp_path / "if.nef")
    for c in (True, False, True):
        want = x.astype(np.float64) * 2 if c else x.astype(np.float64) - y
        np.testing.assert_allclose(g.run(x=x, y=y, c=np.array(c))["out"], want, rtol=1e-6)
        np.testing.assert_allclose(loaded.run(x=x, y=y, c=np.array(c))["out"], want, rtol=1e-6)


def test_if_on_a_computed_condition_runs_only_the_branch_taken():
    # cond = sum(x) > 0 over a 300x300 input (too large to specialize on); the then branch
    # gathers with indices from an input, which fail only if that branch runs.
    then_g = branch("then", [helper.make_node("Gather", ["table", "i"], ["t"])], ["t"])
    else_g = branch("else", [helper.make_node("Mul", ["table2", "s"], ["e"])], ["e"])
    nodes = [helper.make_node("ReduceSum", ["x"], ["sum"], keepdims=0),
             helper.make_node("Greater", ["sum", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g)]
    table = RNG.standard_normal(6).astype(np.float32)
    inits = [numpy_helper.from_array(table, "table"),
             numpy_helper.from_array(table[:2].copy(), "table2"),
             numpy_helper.from_array(np.float32(3), "s"),
             numpy_helper.from_array(np.float32(0), "zero")]
    m = model(nodes, [vi("x", F, [300, 300]), vi("i", TensorProto.INT64, [2])], [vi("out")],
              inits)
    g = nef.from_onnx(m)
    x = RNG.standard_normal((300, 300)).astype(np.float32)
    pos, neg = np.abs(x), -np.abs(x)
    np.testing.assert_allclose(g.run(x=pos, i=np.array([5, 1]))["out"], table[[5, 1]])
    np.testing.assert_allclose(g.run(x=neg, i=np.array([5, 1]))["out"], table[:2] * 3)
    # Out-of-range indices: harmless while the else branch is taken, an error when then runs.
    np.testing.assert_allclose(g.run(x=neg, i=np.array([70, 90]))["out"], table[:2] * 3)
    with pytest.raises(nef.NEFValidationError, match="gather"):
        g.run(x=pos, i=np.array([70, 90]))


def loop_model(trip, cond_limit=None):
    """y_{i+1} = y_i + x * i; scan output y_i * w (w from the outer scope); with cond_limit the
    body's condition is i + 1 < cond_limit."""
    body_nodes = [
        helper.make_node("Cast", ["i"], ["fi"], to=F),
        helper.make_node("Mul", ["x", "fi"], ["xi"]),
        helper.make_node("Add", ["y_in", "xi"], ["y_out"]),
        helper.make_node("Mul", ["y_in", "w"], ["s"]),
    ]
    if cond_limit is None:
        body_nodes.append(helper.make_node("Identity", ["c_in"], ["c_out"]))
    else:
        body_nodes += [helper.make_node("Add", ["i", "one"], ["i1"]),
                       helper.make_node("Less", ["i1", "lim"], ["c_out"])]
    body = helper.make_graph(body_nodes, "body",
                             [vi("i", TensorProto.INT64, []), vi("c_in", TensorProto.BOOL, []),
                              vi("y_in")],
                             [vi("c_out", TensorProto.BOOL, []), vi("y_out"), vi("s")])
    inits = [numpy_helper.from_array(np.float32(1.5), "w"),
             numpy_helper.from_array(np.int64(1), "one"),
             numpy_helper.from_array(np.int64(cond_limit or 0), "lim"),
             numpy_helper.from_array(np.array(True), "c0")]
    m_in = "M" if trip is not None else ""
    if trip is not None:
        inits.append(numpy_helper.from_array(np.int64(trip), "M"))
    node = helper.make_node("Loop", [m_in, "c0", "y0"], ["y_final", "scan"], body=body)
    return model([node], [vi("x", F, [4]), vi("y0", F, [4])], [vi("y_final"), vi("scan")], inits)


def loop_ref(x, y0, n):
    y, scans = y0.astype(np.float64), []
    for i in range(n):
        scans.append(y * 1.5)
        y = y + x * i
    return y, np.stack(scans)


@pytest.mark.parametrize("trip,limit,n", [(5, None, 5), (1, None, 1), (None, 4, 4),
                                          (7, 3, 3)])
def test_loop_unrolled(trip, limit, n):
    x, y0 = RNG.standard_normal((2, 4)).astype(np.float32)
    out = nef.from_onnx(loop_model(trip, limit)).run(x=x, y0=y0)
    y, scans = loop_ref(x, y0, n)
    np.testing.assert_allclose(out["y_final"], y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["scan"], scans, rtol=1e-5, atol=1e-6)


def scan_model(directions, out_dirs, axis):
    body = helper.make_graph([helper.make_node("Add", ["s_in", "e"], ["s_out"]),
                              helper.make_node("Mul", ["s_out", "k"], ["o"])],
                             "body", [vi("s_in"), vi("e")], [vi("s_out"), vi("o")])
    node = helper.make_node("Scan", ["s0", "x"], ["s_final", "ys"], body=body,
                            num_scan_inputs=1, scan_input_directions=[directions],
                            scan_input_axes=[axis], scan_output_directions=[out_dirs],
                            scan_output_axes=[axis])
    return model([node], [vi("s0", F, [3]), vi("x", F, [6, 3] if axis == 0 else [3, 6])],
                 [vi("s_final"), vi("ys")], [numpy_helper.from_array(np.float32(-0.5), "k")],
                 opset=11)


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("out_dir", [0, 1])
@pytest.mark.parametrize("axis", [0, -1])
def test_scan_unrolled(direction, out_dir, axis):
    s0 = RNG.standard_normal(3).astype(np.float32)
    x = RNG.standard_normal((6, 3) if axis == 0 else (3, 6)).astype(np.float32)
    out = nef.from_onnx(scan_model(direction, out_dir, axis)).run(s0=s0, x=x)
    seq = x.astype(np.float64) if axis == 0 else x.astype(np.float64).T
    if direction:
        seq = seq[::-1]
    s, ys = s0.astype(np.float64), []
    for e in seq:
        s = s + e
        ys.append(s * -0.5)
    if out_dir:
        ys = ys[::-1]
    ys = np.stack(ys) if axis == 0 else np.stack(ys, -1)
    np.testing.assert_allclose(out["s_final"], s, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["ys"], ys, rtol=1e-5, atol=1e-6)


def nested_if(depth):
    """An If whose then branch holds an If ... `depth` levels deep."""
    g = branch("leaf", [helper.make_node("Identity", ["x"], ["o0"])], ["o0"])
    for d in range(1, depth + 1):
        leaf = branch(f"e{d}", [helper.make_node("Neg", ["x"], [f"e{d}"])], [f"e{d}"])
        node = helper.make_node("If", ["c"], [f"o{d}"], then_branch=g, else_branch=leaf)
        g = branch(f"b{d}", [node], [f"o{d}"])
    return model(list(g.node), [vi("x", F, [2])], [vi(f"o{depth}")],
                 [numpy_helper.from_array(np.array(True), "c")])


def test_nested_ifs_and_the_depth_limit():
    x = RNG.standard_normal(2).astype(np.float32)
    np.testing.assert_array_equal(nef.from_onnx(nested_if(16)).run(x=x)["o16"], x)
    with pytest.raises(nef.NEFFormatError, match="nested deeper than 16"):
        nef.from_onnx(nested_if(17))


def test_hostile_subgraphs():
    # A branch that reads a value defined after its node (recursion through names).
    then_g = branch("then", [helper.make_node("Identity", ["later"], ["t"])], ["t"])
    else_g = branch("else", [helper.make_node("Identity", ["x"], ["e"])], ["e"])
    nodes = [helper.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Neg", ["out"], ["later"])]
    m = model(nodes, [vi("x", F, [2])], [vi("later")],
              [numpy_helper.from_array(np.array(True), "c")])
    with pytest.raises(nef.NEFFormatError, match="'later'"):
        nef.from_onnx(m)
    # A branch output nothing computes.
    bad = branch("then", [], ["nowhere"])
    m = model([helper.make_node("If", ["c"], ["out"], then_branch=bad, else_branch=else_g)],
              [vi("x", F, [2])], [vi("out")], [numpy_helper.from_array(np.array(True), "c")])
    with pytest.raises(nef.NEFFormatError, match="'nowhere'"):
        nef.from_onnx(m)
    # Huge trip count: refused before anything is unrolled.
    with pytest.raises(nef.NEFUnsupportedError, match="trip count 1000000000000"):
        nef.from_onnx(loop_model(10**12))
    # A loop with no trip count whose condition never turns false.
    with pytest.raises(nef.NEFUnsupportedError, match="more than the 16384 iterations"):
        nef.from_onnx(loop_model(None))
    # A body with the wrong number of inputs.
    m = loop_model(3)
    m.graph.node[0].attribute[0].g.input.append(vi("extra"))
    with pytest.raises(nef.NEFFormatError, match="body has 4 inputs"):
        nef.from_onnx(m)
