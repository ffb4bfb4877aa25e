"""The examples of the seed README (NEF-README), verbatim, with their expected values."""

import numpy as np

import nef


def test_quick_start_matmul():
    a = nef.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=nef.float32)
    b = nef.tensor([[5.0, 6.0], [7.0, 8.0]], dtype=nef.float32)

    c = nef.matmul(a, b)   # ← no execution yet. graph node created.
    assert not c.is_materialized
    c.execute()            # ← optimizer → planner → compiler → hardware. done.

    assert c.is_materialized
    assert c.dtype == nef.float32 and c.shape == (2, 2)
    np.testing.assert_array_equal(c.numpy(), np.array([[19.0, 22.0], [43.0, 50.0]], np.float32))


def test_graph_builder_dot_then_softmax():
    nef.reset_stats()
    a = nef.tensor([1, 2, 3])
    b = nef.tensor([4, 5, 6])
    c = nef.matmul(a, b)    # → DAG node added. Nothing ran.
    d = nef.softmax(c)      # → DAG node added. Nothing ran.
                            # Graph: a,b → matmul → softmax → d
    assert nef.stats()["graphs_executed"] == 0
    assert c.shape == () and c.dtype == nef.int64
    assert d.shape == () and d.dtype == nef.float32
    assert c.item() == 32
    assert d.item() == 1.0


def test_build_nef_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = nef.tensor([[1.0]], dtype=nef.float32)
    b = nef.tensor([[2.0]], dtype=nef.float32)
    nef.matmul(a, b).build('model.nef')

    assert (tmp_path / "model.nef").stat().st_size > 0
    g = nef.load("model.nef")
    assert g.inputs == [] and g.outputs == ["output"]
    out = g.run({})
    np.testing.assert_array_equal(out["output"], np.array([[2.0]], np.float32))
