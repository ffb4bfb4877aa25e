"""ONNX LSTM / GRU / RNN nodes through nef.from_onnx against ONNX Runtime (one-node models built
with onnx.helper): every direction, both layouts, optional inputs given or left out (B,
sequence_lens, initial states, peepholes), activations with alpha/beta lists (ONNX consumes
them in order, only for the functions that take them), clip, input_forget,
linear_before_reset, the older revisions, and the structured errors of malformed nodes.
Tolerances: float32 results within rtol 1e-4, atol 1e-5 of ONNX Runtime's. What ONNX Runtime
does not run (layout 1, GRU revision 3) is compared with the float64 reference of
rnn_reference.py instead."""

import os
import sys

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rnn_reference as ref  # noqa: E402
from onnx_node_util import make_model  # noqa: E402

OPS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
N_OUT = {"lstm": 3, "gru": 2, "rnn": 2}


def inputs(rng, op, S, B, I, H, D, layout=0, bias=True, lens=None, h0=True, c0=True, peep=True):
    """The node's inputs in ONNX order (None: left out)."""
    G = ref.GATES[op]
    u = lambda *s: rng.uniform(-0.6, 0.6, s).astype(np.float32)  # noqa: E731
    x = rng.uniform(-1, 1, (B, S, I) if layout else (S, B, I)).astype(np.float32)
    state = (lambda: u(B, D, H)) if layout else (lambda: u(D, B, H))
    out = [x, u(D, G * H, I), u(D, G * H, H), u(D, 2 * G * H) if bias else None,
           None if lens is None else np.asarray(lens, np.int32), state() if h0 else None]
    if op == "lstm":
        out += [state() if c0 else None, u(D, 3 * H) if peep else None]
    while out[-1] is None:
        out.pop()
    return out


def reference(op, ins, attrs):
    """The float64 reference for what ONNX Runtime does not run (layout 1, GRU revision 3)."""
    ins = ins + [None] * (8 - len(ins))
    x, h0, c0 = ins[0], ins[5], ins[6]
    if attrs.get("layout", 0) == 1:
        x = x.transpose(1, 0, 2)
        h0, c0 = (None if t is None else t.transpose(1, 0, 2) for t in (h0, c0))
    res = ref.run(op, x, ins[1], ins[2], ins[3], h0, c0, ins[4], ins[7],
                  direction=attrs.get("direction", "forward"),
                  lbr=bool(attrs.get("linear_before_reset", 0)))
    if attrs.get("layout", 0) == 1:
        res = (res[0].transpose(2, 0, 1, 3),) + tuple(t.transpose(1, 0, 2) for t in res[1:])
    return [t.astype(np.float32) for t in res]


def both(op, ins, attrs, opset=22, static=(1, 2, 3), rtol=1e-4, atol=1e-5, peer="ort"):
    """NEF against ONNX Runtime (peer "ort") or the float64 reference (peer "ref")."""
    attrs = dict(attrs)
    attrs.setdefault("hidden_size", ins[2].shape[2])  # ONNX Runtime requires it
    m, feed, outs = make_model(OPS[op], ins, attrs, opset=opset, static=static, n_out=N_OUT[op])
    got = nef.from_onnx(m).run(feed)
    if peer == "ort":
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        want = sess.run(outs, feed)
    else:
        want = reference(op, ins, attrs)
    for o, w in zip(outs, want):
        assert got[o].shape == w.shape and got[o].dtype == w.dtype, o
        np.testing.assert_allclose(got[o], w, rtol=rtol, atol=atol, err_msg=o)
    return got, outs


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("layout", [0, 1])
def test_directions_and_layouts(op, direction, layout):
    rng = np.random.default_rng(len(op) * 100 + len(direction) * 10 + layout)
    D = 2 if direction == "bidirectional" else 1
    S, B, I, H = 7, 3, 5, 9
    lens = [7, 4, 1]
    ins = inputs(rng, op, S, B, I, H, D, layout, lens=lens)
    # ONNX Runtime refuses layout 1 ("batchwise recurrent operations are not supported").
    both(op, ins, {"direction": direction, "hidden_size": H, "layout": layout},
         peer="ref" if layout else "ort")


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("given", ["none", "bias", "lens", "h0", "all_but_lens"])
def test_optional_inputs(op, given):
    rng = np.random.default_rng(len(op) + 7 * len(given))
    S, B, I, H = 5, 2, 3, 6
    ins = inputs(rng, op, S, B, I, H, 1, bias=given in ("bias", "all_but_lens"),
                 lens=[5, 3] if given == "lens" else None,
                 h0=given in ("h0", "all_but_lens"), c0=given == "all_but_lens",
                 peep=given == "all_but_lens")
    both(op, ins, {"hidden_size": H}, static=tuple(i for i in (1, 2, 3) if i < len(ins)))


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_activations_with_alpha_beta(op):
    # ONNX hands alpha/beta values only to the functions that take them, in order.
    rng = np.random.default_rng(3)
    n = ref.N_ACTS[op]
    pick = {"lstm": ["HardSigmoid", "LeakyRelu", "ScaledTanh", "Sigmoid", "Affine", "Tanh"],
            "gru": ["HardSigmoid", "ScaledTanh", "Sigmoid", "LeakyRelu"],
            "rnn": ["LeakyRelu", "ScaledTanh"]}[op]
    acts = pick[:2 * n]
    alpha = [0.3, 0.05, 0.9, 1.1][:sum(a in ("HardSigmoid", "LeakyRelu", "ScaledTanh", "Affine")
                                       for a in acts)]
    beta = [0.4, 0.7, 0.2][:sum(a in ("HardSigmoid", "ScaledTanh", "Affine") for a in acts)]
    ins = inputs(rng, op, 6, 2, 4, 5, 2)
    both(op, ins, {"direction": "bidirectional", "activations": acts,
                   "activation_alpha": alpha, "activation_beta": beta})


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_clip(op):
    rng = np.random.default_rng(4)
    ins = inputs(rng, op, 6, 3, 4, 7, 2)
    ins[0] = ins[0] * 4
    both(op, ins, {"direction": "bidirectional", "clip": 0.8})


def test_lstm_input_forget():
    rng = np.random.default_rng(5)
    both("lstm", inputs(rng, "lstm", 6, 2, 4, 5, 1), {"input_forget": 1})


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_linear_before_reset(lbr):
    rng = np.random.default_rng(6 + lbr)
    both("gru", inputs(rng, "gru", 6, 9, 4, 10, 2, lens=[6, 5, 4, 3, 2, 1, 6, 6, 2]),
         {"direction": "bidirectional", "linear_before_reset": lbr})


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_dynamic_inputs(op):
    # Weights and sequence_lens fed at run time instead of initializers.
    rng = np.random.default_rng(8)
    ins = inputs(rng, op, 4, 3, 3, 4, 1, lens=[4, 2, 3])
    both(op, ins, {}, static=())


@pytest.mark.parametrize("op,opset", [("lstm", 7), ("gru", 7), ("rnn", 7), ("gru", 3),
                                      ("lstm", 14)])
def test_older_revisions(op, opset):
    rng = np.random.default_rng(opset)
    attrs = {"direction": "bidirectional"}
    if op == "gru":
        attrs["linear_before_reset"] = 1
    # ONNX Runtime has no GRU-3 kernel.
    both(op, inputs(rng, op, 5, 2, 3, 4, 2), attrs, opset=opset,
         peer="ref" if opset < 7 else "ort")


@pytest.mark.parametrize("op", ["lstm", "gru", "rnn"])
def test_revision1_output_sequence(op):
    # Revision 1 (ONNX Runtime runs it from 7): its output_sequence only allowed leaving Y out.
    rng = np.random.default_rng(9)
    ins = inputs(rng, op, 4, 2, 3, 5, 1)
    m, feed, outs = make_model(OPS[op], ins, {"output_sequence": 1}, opset=1, static=(1, 2, 3),
                               n_out=N_OUT[op])
    got = nef.from_onnx(m).run(feed)
    lstm = op == "lstm"
    want = ref.run(op, ins[0], ins[1], ins[2], b=ins[3], h0=ins[5], c0=ins[6] if lstm else None,
                   p=ins[7] if lstm else None)
    for o, w in zip(outs, want):
        np.testing.assert_allclose(got[o], w, rtol=1e-5, atol=1e-6)


def test_only_final_states_wanted():
    rng = np.random.default_rng(10)
    ins = inputs(rng, "lstm", 5, 2, 3, 4, 1)
    m, feed, _ = make_model("LSTM", ins, {}, static=(1, 2, 3), n_out=3)
    m.graph.node[0].output[0] = ""
    m.graph.ClearField("output")
    m.graph.output.extend([onnx.helper.make_empty_tensor_value_info("out1"),
                           onnx.helper.make_empty_tensor_value_info("out2")])
    got = nef.from_onnx(m).run(feed)
    want = ref.run("lstm", ins[0], ins[1], ins[2], ins[3], ins[5], ins[6], None, ins[7])
    np.testing.assert_allclose(got["out1"], want[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["out2"], want[2], rtol=1e-5, atol=1e-6)


def test_errors():
    rng = np.random.default_rng(12)
    ins = inputs(rng, "lstm", 3, 2, 4, 5, 1)

    def run(attrs, ins=ins, opset=22, n_out=3):
        m, feed, _ = make_model("LSTM", ins, attrs, opset=opset, static=(1, 2, 3), n_out=n_out)
        return nef.from_onnx(m).run(feed)

    with pytest.raises(nef.NEFFormatError, match="hidden_size 6 does not match R"):
        run({"hidden_size": 6})
    with pytest.raises(nef.NEFUnsupportedError, match="activation 'Swish'"):
        run({"activations": ["Sigmoid", "Swish", "Tanh"]})
    with pytest.raises(nef.NEFFormatError, match="activations lists 2 functions"):
        run({"activations": ["Sigmoid", "Tanh"]})
    with pytest.raises(nef.NEFFormatError, match="more values"):
        run({"activation_alpha": [0.5]})
    with pytest.raises(nef.NEFFormatError, match="direction 'up'"):
        run({"direction": "up"})
    with pytest.raises(nef.NEFFormatError, match="clip must be positive"):
        run({"clip": 0.0})
    with pytest.raises(nef.NEFFormatError, match="layout 2"):
        run({"layout": 2})
    with pytest.raises(nef.NEFUnsupportedError, match="layout"):
        run({"layout": 1}, opset=7)  # not an attribute before revision 14
    with pytest.raises(nef.NEFShapeError, match=r"LSTM node 'n'.*\[lstm\] r must be"):
        run({}, ins=[ins[0], ins[1], ins[2][:, :, :4]])
    bad = list(ins)
    bad[4] = np.array([3, 3], np.int64)
    with pytest.raises(nef.NEFFormatError, match="sequence_lens must be int32"):
        run({}, ins=bad)
    with pytest.raises(nef.NEFFormatError, match="X, W and R must be 3-D"):
        run({}, ins=[ins[0][0], ins[1], ins[2]])
