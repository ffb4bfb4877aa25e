"""Value-dependent output shapes (nonzero, unique, non_max_suppression, TopK with a run-time K):
eager results over data, graphs over placeholders that run in segments (from memory, from a
.nef file and through `nef run`), the ONNX converters (NonZero, Compress, Unique,
NonMaxSuppression, TopK) against numpy references in float64/int64, and the errors of bad
inputs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nef

RNG = np.random.default_rng(2606)


def sparse(shape, p, dtype="float32"):
    """Random values with about a fraction p of them nonzero."""
    x = RNG.uniform(0.5, 3, shape) * (RNG.random(shape) < p)
    return x.astype(dtype)


def unique_ref(x, axis, sorted_):
    """numpy.unique's four results; unsorted: reordered by first occurrence."""
    y, idx, inv, cnt = np.unique(x, axis=axis, return_index=True, return_inverse=True,
                                 return_counts=True)
    inv = inv.reshape(-1)
    if not sorted_:
        order = np.argsort(idx, kind="stable")
        pos = np.empty_like(order)
        pos[order] = np.arange(len(order))
        y = np.take(y, order, axis=0 if axis is None else axis)
        idx, cnt, inv = idx[order], cnt[order], pos[inv]
    return y, idx, inv, cnt


def nms_ref(boxes, scores, max_out, iou_thr, score_thr, center):
    """ONNX NonMaxSuppression in float64 (greedy per batch and class)."""
    b = boxes.astype(np.float64)
    if center:
        xc, yc, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        b = np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], -1)
    y1, x1 = np.minimum(b[..., 0], b[..., 2]), np.minimum(b[..., 1], b[..., 3])
    y2, x2 = np.maximum(b[..., 0], b[..., 2]), np.maximum(b[..., 1], b[..., 3])
    out = []
    for bi in range(boxes.shape[0]):
        area = (y2[bi] - y1[bi]) * (x2[bi] - x1[bi])
        for c in range(scores.shape[1]):
            s = scores[bi, c].astype(np.float64)
            cand = [i for i in np.argsort(-s, kind="stable")
                    if score_thr is None or s[i] > score_thr]
            kept = []
            for i in cand:
                if len(kept) >= max_out:
                    break
                ok = True
                for k in kept:
                    ih = min(y2[bi, i], y2[bi, k]) - max(y1[bi, i], y1[bi, k])
                    iw = min(x2[bi, i], x2[bi, k]) - max(x1[bi, i], x1[bi, k])
                    if ih <= 0 or iw <= 0:
                        continue
                    inter = ih * iw
                    if inter / (area[i] + area[k] - inter) > iou_thr:
                        ok = False
                        break
                if ok:
                    kept.append(i)
                    out.append((bi, c, i))
    return np.array(out, np.int64).reshape(-1, 3)


def random_boxes(b, n, center=False):
    lo = RNG.uniform(0, 10, (b, n, 2))
    size = RNG.uniform(0.5, 4, (b, n, 2))
    if center:
        return np.concatenate([lo + size / 2, size], -1).astype(np.float32)
    hi = lo + size
    # Some boxes given with flipped corners (ONNX allows either order).
    flip = RNG.random((b, n, 1)) < 0.3
    first = np.where(flip, hi, lo)
    second = np.where(flip, lo, hi)
    return np.concatenate([first, second], -1).astype(np.float32)


# ---- eager (over data) ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape,p", [((7,), 0.5), ((3, 5, 4), 0.3), ((4, 9), 0.0), ((2, 3), 1.0),
                                     ((0, 3), 0.5)])
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_nonzero_eager(shape, p, dtype):
    x = sparse(shape, p, "float32").astype(dtype)
    t = nef.nonzero(nef.tensor(x))
    want = np.array(np.nonzero(x), np.int64).reshape(len(shape), -1)
    assert t.shape == want.shape  # the true shape before any read
    np.testing.assert_array_equal(t.numpy(), want)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("sorted_", [True, False])
def test_unique_eager(axis, sorted_):
    x = RNG.integers(0, 3, (6, 3)).astype(np.float32)
    got = nef.unique(nef.tensor(x), axis=axis, sorted=sorted_)
    for g, w in zip(got, unique_ref(x, axis, sorted_)):
        np.testing.assert_array_equal(g.numpy(), w)


def test_nms_eager_against_float64():
    for center in (0, 1):
        boxes = random_boxes(2, 23, center=bool(center))
        scores = RNG.random((2, 3, 23)).astype(np.float32)
        for max_out, iou, thr in [(5, 0.4, None), (100, 0.0, 0.5), (0, 0.5, None),
                                  (3, 1.0, 0.2)]:
            got = nef.non_max_suppression(nef.tensor(boxes), nef.tensor(scores), max_out, iou,
                                          thr, center).numpy()
            np.testing.assert_array_equal(got, nms_ref(boxes, scores, max_out, iou, thr, center))


# ---- graphs over placeholders: segments, .nef, nef run ---------------------------------------

def _nonzero_graph():
    x = nef.placeholder("x", (5, 7), nef.float32)
    nz = nef.nonzero(x * 2.0)
    # After the value-shaped node: its shape is an upper bound until the graph runs.
    total = nef.sum(nz, axis=0)
    return {"nz": nz, "total": total, "dense": x + 1.0}


def test_placeholder_graph_runs_in_segments(tmp_path):
    path = tmp_path / "nz.nef"
    nef.build(path, _nonzero_graph())
    g = nef.load(path)
    for p in (0.0, 0.3, 1.0, 0.3):
        x = sparse((5, 7), p)
        out = g.run(x=x)
        want = np.array(np.nonzero(x * 2), np.int64)
        np.testing.assert_array_equal(out["nz"], want)
        np.testing.assert_array_equal(out["total"], want.sum(0))
        np.testing.assert_allclose(out["dense"], x + 1, rtol=1e-6)
    # Same extents again: every segment comes from the plan cache.
    x = sparse((5, 7), 0.4)
    g.run(x=x)
    nef.reset_stats()
    g.run(x=x.copy())
    s = nef.stats()
    assert s["plan_cache_misses"] == 0 and s["plan_cache_hits"] >= 2


def test_chained_value_shaped_nodes(tmp_path):
    # unique over the result of nonzero: two segment boundaries in a row.
    x = nef.placeholder("x", (4, 6), nef.int32)
    rows = nef.nonzero(x)[0]
    vals, first, inv, counts = nef.unique(rows)
    path = tmp_path / "chain.nef"
    nef.build(path, {"v": vals, "c": counts, "i": inv})
    g = nef.load(path)
    for p in (0.4, 0.0, 1.0):
        xv = (RNG.random((4, 6)) < p).astype(np.int32)
        out = g.run(x=xv)
        v, i, c = np.unique(np.nonzero(xv)[0], return_inverse=True, return_counts=True)
        np.testing.assert_array_equal(out["v"], v)
        np.testing.assert_array_equal(out["c"], c)
        np.testing.assert_array_equal(out["i"], i)


def test_embed_plan_is_skipped_with_a_warning(tmp_path, capfd):
    path = tmp_path / "nz.nef"
    nef.build(path, _nonzero_graph(), embed_plan=True)
    x = sparse((5, 7), 0.5)
    np.testing.assert_array_equal(nef.load(path).run(x=x)["nz"], np.array(np.nonzero(x * 2)))


def _cli():
    cand = Path(sys.executable).parent / "nef"
    return os.environ.get("NEF_CLI") or (str(cand) if cand.is_file() else None)


@pytest.mark.skipif(_cli() is None, reason="the nef executable was not found")
def test_nef_run_cli(tmp_path):
    path = tmp_path / "nz.nef"
    nef.build(path, _nonzero_graph())
    x = sparse((5, 7), 0.4)
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([_cli(), "run", str(path), "--input", f"x={tmp_path / 'x.npy'}",
                        "--output", str(tmp_path / "out")], capture_output=True, text=True,
                       env=dict(os.environ, NEF_DEVICES="cpu"), timeout=120)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "nz.npy"),
                                  np.array(np.nonzero(x * 2), np.int64))
    # --plan says how the graph runs instead of failing for want of a single plan.
    r = subprocess.run([_cli(), "run", str(path), "--input", f"x={tmp_path / 'x.npy'}",
                        "--output", str(tmp_path / "out"), "--plan"], capture_output=True,
                       text=True, env=dict(os.environ, NEF_DEVICES="cpu"), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "runs in segments" in r.stdout and "(nonzero)" in r.stdout


def test_shape_error_after_the_extent_is_known(tmp_path):
    # Adding a fixed [2, 35] tensor to nonzero's [2, n] type-checks against the upper bound and
    # fails at run time when n != 35: a ShapeError naming the node, never a crash.
    x = nef.placeholder("x", (5, 7), nef.float32)
    y = nef.nonzero(x) + nef.tensor(np.zeros((2, 35), np.int64))
    path = tmp_path / "bad.nef"
    nef.build(path, y)
    g = nef.load(path)
    np.testing.assert_array_equal(g.run(x=np.ones((5, 7), np.float32))["output"],
                                  np.array(np.nonzero(np.ones((5, 7)))))
    with pytest.raises(nef.NEFShapeError, match="add"):
        g.run(x=sparse((5, 7), 0.5))


def test_bad_inputs_are_structured_errors():
    with pytest.raises(nef.NEFShapeError, match="non_max_suppression"):
        nef.non_max_suppression(nef.tensor(np.zeros((1, 3, 4), np.float32)),
                                nef.tensor(np.zeros((1, 2, 4), np.float32)))
    with pytest.raises(nef.NEFValidationError, match="iou_threshold"):
        nef.non_max_suppression(nef.tensor(np.zeros((1, 3, 4), np.float32)),
                                nef.tensor(np.zeros((1, 2, 3), np.float32)), 1, 1.5)
    with pytest.raises(nef.NEFTypeError, match="float32"):
        nef.non_max_suppression(nef.tensor(np.zeros((1, 3, 4))), nef.tensor(np.zeros((1, 2, 3))))
    with pytest.raises(nef.NEFShapeError, match="rank"):
        nef.nonzero(nef.tensor(np.float32(1)))
    with pytest.raises(nef.NEFShapeError, match="axis"):
        nef.unique(nef.tensor(np.zeros((2, 3), np.float32)), axis=2)


# ---- ONNX ------------------------------------------------------------------------------------------

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_node_util import make_model  # noqa: E402


def onnx_run(op, inputs, attrs=None, opset=13, static=(), n_out=1):
    m, feed, outs = make_model(op, inputs, attrs, opset, static, n_out)
    g = nef.from_onnx(m)
    res = g.run(feed)
    return [res[o] for o in outs]


@pytest.mark.parametrize("p", [0.0, 0.4, 1.0])
def test_onnx_nonzero(p):
    x = sparse((3, 4, 5), p)
    (got,) = onnx_run("NonZero", [x])
    np.testing.assert_array_equal(got, np.array(np.nonzero(x), np.int64))


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("static", [(), (1,)])
def test_onnx_compress(axis, static):
    x = RNG.standard_normal((5, 6)).astype(np.float32)
    n = x.size if axis is None else x.shape[axis] - 1  # shorter conditions drop the rest
    cond = RNG.random(n) < 0.5
    attrs = {} if axis is None else {"axis": axis}
    (got,) = onnx_run("Compress", [x, cond], attrs, opset=11, static=static)
    np.testing.assert_array_equal(got, np.compress(cond, x, axis=axis))
    (none,) = onnx_run("Compress", [x, np.zeros(n, bool)], attrs, opset=11, static=static)
    assert none.size == 0


@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("sorted_", [1, 0])
def test_onnx_unique(axis, sorted_):
    x = RNG.integers(0, 4, (7, 3)).astype(np.float32)
    attrs = {"sorted": sorted_}
    if axis is not None:
        attrs["axis"] = axis
    got = onnx_run("Unique", [x], attrs, opset=11, n_out=4)
    for g, w in zip(got, unique_ref(x, axis, sorted_)):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("static", [(2, 3, 4), ()])
def test_onnx_nms(center, static):
    boxes = random_boxes(2, 17, center=bool(center))
    scores = RNG.random((2, 2, 17)).astype(np.float32)
    inputs = [boxes, scores, np.array([4], np.int64), np.array([0.3], np.float32),
              np.array([0.2], np.float32)]
    (got,) = onnx_run("NonMaxSuppression", inputs, {"center_point_box": center}, opset=11,
                      static=static)
    np.testing.assert_array_equal(got, nms_ref(boxes, scores, 4, 0.3, 0.2, center))


def test_onnx_topk_runtime_k():
    x = RNG.standard_normal((4, 9)).astype(np.float32)
    m, feed, outs = make_model("TopK", [x, np.array([3], np.int64)], {"axis": 1}, 11, (), 2)
    g = nef.from_onnx(m)
    for k in (3, 0, 9, 5):
        res = g.run({"in0": x, "in1": np.array([k], np.int64)})
        order = np.argsort(-x.astype(np.float64), axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(res["out1"], order)
        np.testing.assert_array_equal(res["out0"], np.take_along_axis(x, order, 1))
    with pytest.raises(nef.NEFShapeError, match="k = 10"):
        g.run({"in0": x, "in1": np.array([10], np.int64)})


def _nonzero_chain_model():
    """x -> NonZero -> Transpose -> Gather rows of a table: a dynamic value through later ops."""
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]),
             helper.make_node("Transpose", ["nz"], ["t"]),
             helper.make_node("Cast", ["t"], ["tf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["tf", "s"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     ["a", 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[onnx.numpy_helper.from_array(np.float32([2, 3]), "s")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_onnx_import_to_nef_and_run(tmp_path):
    m = _nonzero_chain_model()
    g = nef.from_onnx(m, dims={"a": 4})
    path = tmp_path / "m.nef"
    g.build(path)
    loaded = nef.load(path)
    for p in (0.5, 0.0, 1.0):
        x = sparse((4, 6), p)
        want = np.array(np.nonzero(x)).T.astype(np.float64) * [2, 3]
        np.testing.assert_array_equal(loaded.run(x=x)["y"], want.astype(np.float32))
        np.testing.assert_array_equal(g.run(x=x)["y"], want.astype(np.float32))


def test_onnx_shape_of_dynamic_value_specializes_on_values():
    # Shape reads the dims of nonzero's result: the importer specializes on x's values instead.
    nodes = [helper.make_node("NonZero", ["x"], ["nz"]), helper.make_node("Shape", ["nz"], ["s"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [3, 4])],
                          [helper.make_tensor_value_info("s", TensorProto.INT64, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    loaded = nef.from_onnx(m)
    for p in (0.3, 0.8):
        x = sparse((3, 4), p)
        np.testing.assert_array_equal(loaded.run(x=x)["s"], [2, np.count_nonzero(x)])


def test_onnx_bad_nodes():
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(nef.NEFFormatError, match="condition must be bool"):
        onnx_run("Compress", [x, np.ones(3, np.int64)], {"axis": 0}, opset=11)
    with pytest.raises(nef.NEFFormatError, match="longer than axis"):
        onnx_run("Compress", [x, np.ones(5, bool)], {"axis": 0}, opset=11, static=(1,))
    with pytest.raises(nef.NEFShapeError, match="boxes must be"):
        onnx_run("NonMaxSuppression", [np.zeros((1, 3, 5), np.float32),
                                       np.zeros((1, 1, 3), np.float32)], opset=11)
    with pytest.raises(nef.NEFValidationError, match="iou_threshold"):
        onnx_run("NonMaxSuppression", [np.zeros((1, 3, 4), np.float32),
                                       np.zeros((1, 1, 3), np.float32), np.array([2], np.int64),
                                       np.array([3.0], np.float32)], opset=11, static=(2, 3))
