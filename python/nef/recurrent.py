"""Recurrent layers with ONNX's LSTM / GRU / RNN cell semantics (docs/ops.md).

x is [seq, batch, input]; w [dirs, gates*hidden, input] and r [dirs, gates*hidden, hidden] stack
the gates (LSTM i, o, f, c; GRU z, r, h; RNN one); b [dirs, 2*gates*hidden] is Wb then Rb. Left
as None, b and the initial states are zeros, sequence_lens is the full length and LSTM has no
peepholes. Each function returns Y [seq, dirs, batch, hidden] (zero past a row's length) and
the final states [dirs, batch, hidden] (after each row's last step; zeros for length 0): pass
them as the next chunk's initial states to stream a sequence in pieces.
"""

from __future__ import annotations

import builtins

from . import _nef
from .creation import full
from .dtypes import int32
from .errors import NEFShapeError
from .tensor import Tensor, nodes_for, wrap


def _recurrent(name, x, w, r, optional, direction, activations, activation_alpha,
               activation_beta, clip, extra) -> tuple:
    x, w, r = nodes_for(x, w, r, op=name)
    if len(x.shape) != 3 or len(w.shape) != 3 or len(r.shape) != 3:
        raise NEFShapeError(f"[{name}] x, w and r must be 3-D, got {tuple(x.shape)}, "
                            f"{tuple(w.shape)}, {tuple(r.shape)}")
    seq, batch = x.shape[0], x.shape[1]
    dirs, gh, hidden = w.shape[0], r.shape[1], r.shape[2]
    states = 2 if name == "lstm" else 1
    # Absent optional inputs before the last given one: zero biases and states, full lengths.
    defaults = [([dirs, 2 * gh], 0.0, x.dtype)] + [([dirs, batch, hidden], 0.0, x.dtype)] * states
    defaults.append(([batch], seq, int32))
    last = len(optional)
    while last > 1 + states and optional[last - 1] is None:
        last -= 1
    inputs = [x, w, r]
    for i in range(last):
        if optional[i] is None:
            inputs.append(full(*defaults[i])._t)
        else:
            inputs.append(nodes_for(optional[i], op=name)[0])
    attrs = {"direction": str(direction),
             "activation_alpha": [float(a) for a in (activation_alpha or [])],
             "activation_beta": [float(a) for a in (activation_beta or [])],
             "clip": float(clip)}
    if activations is not None:
        attrs["activations"] = ",".join(str(a) for a in activations)
    attrs.update(extra)
    # One node: Y, then the final states, stacked along dim 0.
    packed = wrap(_nef.op(name, inputs, attrs))
    return (packed[:seq],) + tuple(packed[seq + k] for k in range(states))


def lstm(x, w, r, b=None, initial_h=None, initial_c=None, sequence_lens=None, p=None, *,
         direction: str = "forward", activations=None, activation_alpha=None,
         activation_beta=None, clip: float = 0.0,
         input_forget: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """ONNX LSTM: returns (Y, Y_h, Y_c). activations: f, g, h per direction (default sigmoid,
    tanh, tanh), one alpha/beta per activation; clip bounds the gates' pre-activations (0:
    none); input_forget couples f = 1 - i; p [dirs, 3*hidden] are the i, o, f peepholes."""
    return _recurrent("lstm", x, w, r, [b, initial_h, initial_c, sequence_lens, p], direction,
                      activations, activation_alpha, activation_beta, clip,
                      {"input_forget": builtins.bool(input_forget)})


def gru(x, w, r, b=None, initial_h=None, sequence_lens=None, *, direction: str = "forward",
        activations=None, activation_alpha=None, activation_beta=None, clip: float = 0.0,
        linear_before_reset: bool = False) -> tuple[Tensor, Tensor]:
    """ONNX GRU: returns (Y, Y_h). activations: f, g per direction (default sigmoid, tanh)."""
    return _recurrent("gru", x, w, r, [b, initial_h, sequence_lens], direction, activations,
                      activation_alpha, activation_beta, clip,
                      {"linear_before_reset": builtins.bool(linear_before_reset)})


def rnn(x, w, r, b=None, initial_h=None, sequence_lens=None, *, direction: str = "forward",
        activations=None, activation_alpha=None, activation_beta=None,
        clip: float = 0.0) -> tuple[Tensor, Tensor]:
    """ONNX RNN (Elman): returns (Y, Y_h). activations: f per direction (default tanh)."""
    return _recurrent("rnn", x, w, r, [b, initial_h, sequence_lens], direction, activations,
                      activation_alpha, activation_beta, clip, {})

