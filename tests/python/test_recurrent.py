"""nef.lstm / nef.gru / nef.rnn against the float64 numpy reference of rnn_reference.py: random
odd shapes, every direction and activation, clip, input_forget, linear_before_reset, ragged
sequence_lens (0 and full included), strided inputs, batches on both kernel paths (row dot
products below 8 rows, the GEMM from 8), half types, batch-1 streaming in chunks with the state
carried over, and the structured errors of malformed calls."""

import os
import sys

import numpy as np
import pytest

import nef

from conftest import np_dtype  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rnn_reference as ref  # noqa: E402

FNS = {"lstm": nef.lstm, "gru": nef.gru, "rnn": nef.rnn}
ACTS = ["relu", "tanh", "sigmoid", "affine", "leakyrelu", "thresholdedrelu", "scaledtanh",
        "hardsigmoid", "elu", "softsign", "softplus"]
TOL = {"float64": (1e-10, 1e-12), "float32": (2e-4, 2e-5), "float16": (2e-2, 1e-2),
       "bfloat16": (3e-2, 2e-2)}


def params(rng, op, S, B, I, H, D, dtype="float64", scale=0.5):
    G = ref.GATES[op]
    u = lambda *s: rng.uniform(-scale, scale, s).astype(dtype)  # noqa: E731
    out = {"x": rng.uniform(-1, 1, (S, B, I)).astype(dtype), "w": u(D, G * H, I),
           "r": u(D, G * H, H), "b": u(D, 2 * G * H), "h0": u(D, B, H)}
    if op == "lstm":
        out["c0"] = u(D, B, H)
        out["p"] = u(D, 3 * H)
    return out


def call(op, a, lens=None, peep=True, **kw):
    """The NEF function on the arrays of `a` (keys as params()), results as numpy."""
    x, w, r, b, h0 = a["x"], a["w"], a["r"], a.get("b"), a.get("h0")
    if op == "lstm":
        res = nef.lstm(x, w, r, b, h0, a.get("c0"), lens, a.get("p") if peep else None, **kw)
    else:
        res = FNS[op](x, w, r, b, h0, lens, **kw)
    return [t.numpy() for t in res]


def reference(op, a, lens=None, peep=True, **kw):
    m = {"direction": "direction", "activations": "acts", "activation_alpha": "alpha",
         "activation_beta": "beta", "clip": "clip", "input_forget": "input_forget",
         "linear_before_reset": "lbr"}
    return ref.run(op, a["x"], a["w"], a["r"], a.get("b"), a.get("h0"), a.get("c0"), lens,
                   a.get("p") if peep else None, **{m[k]: v for k, v in kw.items()})


def check(got, want, dtype):
    rtol, atol = TOL[dtype]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np_dtype(dtype)
        np.testing.assert_allclose(g.astype(np.float64), w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", [1, 2])
def test_cells_match_reference(op, direction, dtype, seed):
    rng = np.random.default_rng(seed * 100 + len(op) * 10 + len(direction))
    S, B, I, H = rng.integers(1, 9), rng.integers(1, 6), rng.integers(1, 12), rng.integers(1, 37)
    D = 2 if direction == "bidirectional" else 1
    a = params(rng, op, S, B, I, H, D, dtype)
    lens = rng.integers(0, S + 1, B).astype(np.int32)
    lens[0] = S
    for lens_ in (None, lens):
        check(call(op, a, lens_, direction=direction),
              reference(op, a, lens_, direction=direction), dtype)


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("name", ACTS)
def test_every_activation_in_every_slot(op, name):
    rng = np.random.default_rng(len(name) * 7 + len(op))
    n = ref.N_ACTS[op]
    a = params(rng, op, 5, 3, 4, 9, 2, "float64")
    for slot in range(n):
        acts = list(ref.DEFAULT_ACTS[op]) * 2
        acts[slot] = name
        acts[n + slot] = name  # the reverse direction too
        alpha = list(rng.uniform(0.1, 1.5, 2 * n))
        beta = list(rng.uniform(-0.5, 0.5, 2 * n))
        kw = dict(direction="bidirectional", activations=acts, activation_alpha=alpha,
                  activation_beta=beta)
        check(call(op, a, **kw), reference(op, a, **kw), "float64")


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_default_alphas_and_one_list_for_both_directions(op):
    rng = np.random.default_rng(77)
    a = params(rng, op, 4, 2, 3, 5, 2, "float64")
    n = ref.N_ACTS[op]
    acts = ["leakyrelu", "hardsigmoid", "elu"][:n]
    got = call(op, a, direction="bidirectional", activations=acts)
    check(got, reference(op, a, direction="bidirectional", activations=acts), "float64")


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_clip(op):
    rng = np.random.default_rng(5)
    a = params(rng, op, 6, 3, 5, 7, 1, "float64", scale=2.0)
    for clip in (0.3, 1.7):
        check(call(op, a, clip=clip), reference(op, a, clip=clip), "float64")


def test_lstm_input_forget_and_peepholes():
    rng = np.random.default_rng(9)
    a = params(rng, "lstm", 7, 2, 3, 6, 2, "float64")
    for peep in (True, False):
        kw = dict(direction="bidirectional", input_forget=True)
        check(call("lstm", a, peep=peep, **kw), reference("lstm", a, peep=peep, **kw), "float64")


@pytest.mark.parametrize("lbr", [False, True])
def test_gru_linear_before_reset(lbr):
    rng = np.random.default_rng(11)
    a = params(rng, "gru", 6, 4, 5, 11, 2, "float32")
    kw = dict(direction="bidirectional", linear_before_reset=lbr)
    check(call("gru", a, **kw), reference("gru", a, **kw), "float32")


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("B,H", [(9, 7), (13, 40), (3, 300)])
def test_large_batches_and_hidden_sizes(op, B, H):
    # 8+ rows take the per-step GEMM; H = 300 splits a step's units over threads.
    rng = np.random.default_rng(B * H)
    a = params(rng, op, 5, B, 17, H, 2, "float32", scale=0.1)
    lens = rng.integers(0, 6, B).astype(np.int32)
    kw = dict(direction="bidirectional")
    check(call(op, a, lens, **kw), reference(op, a, lens, **kw), "float32")
    before = nef.config()["threads"]
    nef.config(threads=1)
    try:
        check(call(op, a, lens, **kw), reference(op, a, lens, **kw), "float32")
    finally:
        nef.config(threads=before)


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("S,B,H", [(23, 1, 37), (9, 2, 70), (12, 1, 16)])
def test_weights_prepared_once_per_plan(tmp_path, op, dtype, S, B, H):
    """Constant W and R are packed once per plan (W^T for the projection GEMM, R into panels);
    W and R fed as graph inputs are packed per run: both against the float64 reference, with x
    transposed in memory (as a CNN's feature map reaches a BiLSTM), over repeated runs."""
    rng = np.random.default_rng(S * 100 + B * 10 + H)
    a = params(rng, op, S, B, 19, H, 2, dtype, scale=0.3)
    kw = dict(direction="bidirectional")
    want = reference(op, a, peep=False, **kw)
    xt = np.ascontiguousarray(a["x"].transpose(2, 1, 0))  # [I, B, S] in memory
    dt = getattr(nef, dtype)
    x = nef.transpose(nef.placeholder("x", xt.shape, dt), [2, 1, 0])
    w = nef.placeholder("w", a["w"].shape, dt)
    r = nef.placeholder("r", a["r"].shape, dt)
    extra = [nef.tensor(a[k]) for k in (("b", "h0", "c0") if op == "lstm" else ("b", "h0"))]
    fn = FNS[op]
    const = fn(x, nef.tensor(a["w"]), nef.tensor(a["r"]), *extra, **kw)
    fed = fn(x, w, r, *extra, **kw)
    names = [f"o{i}" for i in range(len(want))]
    nef.build(tmp_path / "c.nef", dict(zip(names, const)))
    nef.build(tmp_path / "f.nef", dict(zip(names, fed)))
    gc, gf = nef.load(tmp_path / "c.nef"), nef.load(tmp_path / "f.nef")
    for _ in range(2):
        check([gc.run({"x": xt})[n] for n in names], want, dtype)
        res = gf.run({"x": xt, "w": a["w"], "r": a["r"]})
        check([res[n] for n in names], want, dtype)


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_strided_inputs(op):
    rng = np.random.default_rng(21)
    S, B, I, H = 5, 3, 4, 6
    a = params(rng, op, S, B, I, H, 2, "float32")
    want = reference(op, a, direction="bidirectional")
    # x as [B, S, I] transposed: rows (b, t); x with a step on I: per-step GEMMs; r transposed
    # in memory (rows not contiguous): the GEMM products.
    xb = nef.transpose(nef.tensor(np.ascontiguousarray(a["x"].transpose(1, 0, 2))), [1, 0, 2])
    wide = np.repeat(a["x"], 2, axis=2)
    xs = nef.tensor(np.ascontiguousarray(wide.transpose(1, 0, 2)))
    xs = nef.transpose(xs, [1, 0, 2])[:, :, ::2]
    rt = nef.transpose(nef.tensor(np.ascontiguousarray(a["r"].transpose(0, 2, 1))), [0, 2, 1])
    for x, r in ((xb, a["r"]), (xs, a["r"]), (a["x"], rt), (xs, rt)):
        b = dict(a, x=x, r=r)
        check(call(op, b, direction="bidirectional"), want, "float32")


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_types(op, dtype):
    # Computed in float32 from the half inputs, rounded once on store.
    rng = np.random.default_rng(31)
    a = params(rng, op, 9, 2, 5, 8, 1, np_dtype(dtype))
    check(call(op, a), reference(op, a), dtype)


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_streaming_batch1_equals_whole(op, direction):
    # A sequence fed in chunks with the state carried over gives the run over the whole
    # sequence (forward: in order; reverse: the chunks from the end).
    rng = np.random.default_rng(41 + len(direction))
    S = 11
    a = params(rng, op, S, 1, 6, 13, 1, "float32")
    whole = call(op, a, direction=direction)
    for cuts in ([5], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [3, 4, 9]):
        bounds = [0] + cuts + [S]
        chunks = list(zip(bounds[:-1], bounds[1:]))
        if direction == "reverse":
            chunks = chunks[::-1]
        h, c = a["h0"], a.get("c0")
        ys = {}
        for t0, t1 in chunks:
            part = dict(a, x=a["x"][t0:t1], h0=h, c0=c)
            res = call(op, part, direction=direction)
            ys[t0] = res[0]
            h = res[1]
            c = res[2] if op == "lstm" else None
        y = np.concatenate([ys[t0] for t0, _ in sorted(chunks)])
        np.testing.assert_allclose(y, whole[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h, whole[1], rtol=1e-5, atol=1e-6)
        if op == "lstm":
            np.testing.assert_allclose(c, whole[2], rtol=1e-5, atol=1e-6)


def test_streaming_lazy_chain_of_steps():
    # The state of one call is a lazy tensor fed to the next: one graph of S lstm nodes.
    rng = np.random.default_rng(51)
    a = params(rng, "lstm", 6, 1, 4, 5, 1, "float32")
    whole = call("lstm", a)
    h, c = nef.tensor(a["h0"]), nef.tensor(a["c0"])
    ys = []
    for t in range(6):
        y, h, c = nef.lstm(a["x"][t:t + 1], a["w"], a["r"], a["b"], h, c, None, a["p"])
        ys.append(y)
    np.testing.assert_allclose(nef.concat(ys, 0).numpy(), whole[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.numpy(), whole[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_empty_sizes(op):
    rng = np.random.default_rng(61)
    for S, B, I, H in ((0, 2, 3, 4), (3, 0, 3, 4), (3, 2, 0, 4), (3, 2, 3, 0)):
        a = params(rng, op, S, B, I, H, 2, "float32")
        check(call(op, a, direction="bidirectional"),
              reference(op, a, direction="bidirectional"), "float32")


def test_errors():
    rng = np.random.default_rng(71)
    a = params(rng, "lstm", 3, 2, 4, 5, 1, "float32")
    x, w, r, b, h0, c0 = a["x"], a["w"], a["r"], a["b"], a["h0"], a["c0"]
    with pytest.raises(nef.NEFShapeError, match=r"\[lstm\] w must be \(1, 20, 4\)"):
        nef.lstm(x, w[:, :, :3], r)
    with pytest.raises(nef.NEFShapeError, match=r"\[lstm\] r must be"):
        nef.lstm(x, w, r[:, :19])
    with pytest.raises(nef.NEFShapeError, match="initial_h"):
        nef.lstm(x, w, r, b, h0[:, :1])
    with pytest.raises(nef.NEFShapeError, match="sequence_lens"):
        nef.lstm(x, w, r, b, h0, c0, np.array([3], np.int32))
    with pytest.raises(nef.NEFShapeError, match="3-D"):
        nef.gru(x[0], w, r)
    with pytest.raises(nef.NEFShapeError, match=r"r must be \(2, 20, 5\)"):
        nef.lstm(x, w, r, direction="bidirectional")
    with pytest.raises(nef.NEFTypeError, match="x's dtype"):
        nef.lstm(x, w.astype(np.float64), r)
    with pytest.raises(nef.NEFTypeError, match="float"):
        nef.rnn(x.astype(np.int32), w[:, :5].astype(np.int32), r[:, :5].astype(np.int32))
    with pytest.raises(nef.NEFTypeError, match="sequence_lens must be int32 or int64"):
        nef.lstm(x, w, r, b, h0, c0, np.array([3, 3], np.float32))
    with pytest.raises(nef.NEFValidationError, match="direction"):
        nef.lstm(x, w, r, direction="sideways")
    with pytest.raises(nef.NEFValidationError, match="unknown activation 'swish'"):
        nef.lstm(x, w, r, activations=["sigmoid", "swish", "tanh"])
    with pytest.raises(nef.NEFValidationError, match="must name 3"):
        nef.lstm(x, w, r, activations=["sigmoid", "tanh"])
    with pytest.raises(nef.NEFValidationError, match="activation_alpha has 2 values"):
        nef.lstm(x, w, r, activations=["affine"] * 3, activation_alpha=[1.0, 2.0])
    with pytest.raises(nef.NEFValidationError, match="clip"):
        nef.lstm(x, w, r, clip=-1.0)
    # sequence_lens values are checked when the graph runs.
    y, _, _ = nef.lstm(x, w, r, b, h0, c0, np.array([3, 4], np.int32))
    with pytest.raises(nef.NEFValidationError, match=r"sequence_lens\[1\] = 4 is outside \[0, 3\]"):
        y.numpy()
    y, _, _ = nef.lstm(x, w, r, b, h0, c0, np.array([-1, 2], np.int64))
    with pytest.raises(nef.NEFValidationError, match=r"sequence_lens\[0\] = -1"):
        y.numpy()
