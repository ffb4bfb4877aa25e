"""An independent float64 numpy reference of ONNX's recurrent cells (LSTM, GRU, RNN), written
from the operator definitions: one batch row at a time, one step at a time.

Conventions it checks NEF against: gates stacked LSTM i, o, f, c / GRU z, r, h; B = Wb then Rb;
peepholes P = i, o, f (the output gate's uses the new cell state); clip bounds every gate's
pre-activation (not the cell state given to h); a reversed direction walks each row from its
own last valid step back to step 0; Y is zero past a row's length; Y_h / Y_c are the state
after the row's last step (zeros for length 0).
"""

import numpy as np

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
N_ACTS = {"lstm": 3, "gru": 2, "rnn": 1}
DEFAULT_ACTS = {"lstm": ["sigmoid", "tanh", "tanh"], "gru": ["sigmoid", "tanh"], "rnn": ["tanh"]}
# ONNX operator defaults of each activation's alpha / beta.
DEFAULT_ALPHA = {"affine": 1.0, "leakyrelu": 0.01, "thresholdedrelu": 1.0, "scaledtanh": 1.0,
                 "hardsigmoid": 0.2, "elu": 1.0}
DEFAULT_BETA = {"affine": 0.0, "scaledtanh": 1.0, "hardsigmoid": 0.5}


def act(name, x, a, b):
    name = name.lower()
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "affine":
        return a * x + b
    if name == "leakyrelu":
        return np.where(x >= 0, x, a * x)
    if name == "thresholdedrelu":
        return np.where(x >= a, x, 0.0)
    if name == "scaledtanh":
        return a * np.tanh(b * x)
    if name == "hardsigmoid":
        return np.clip(a * x + b, 0.0, 1.0)
    if name == "elu":
        return np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1.0))
    if name == "softsign":
        return x / (1.0 + np.abs(x))
    if name == "softplus":
        return np.logaddexp(0.0, x)
    raise ValueError(name)


def run(op, x, w, r, b=None, h0=None, c0=None, lens=None, p=None, direction="forward",
        acts=None, alpha=None, beta=None, clip=0.0, input_forget=False, lbr=False):
    """Y [S, D, B, H], Y_h [D, B, H] (and Y_c for lstm) in float64. acts/alpha/beta: one per
    activation of every direction (defaults filled per activation when alpha/beta are None)."""
    f64 = lambda a: None if a is None else np.asarray(a, np.float64)  # noqa: E731
    x, w, r, b, h0, c0, p = map(f64, (x, w, r, b, h0, c0, p))
    S, B, _ = x.shape
    D, H = w.shape[0], r.shape[2]
    G = GATES[op]
    n = N_ACTS[op]
    acts = list(acts or DEFAULT_ACTS[op])
    if len(acts) == n and D == 2:
        acts = acts * 2
    if alpha is None:
        alpha = [DEFAULT_ALPHA.get(a.lower(), 0.0) for a in acts]
    if beta is None:
        beta = [DEFAULT_BETA.get(a.lower(), 0.0) for a in acts]
    b = np.zeros((D, 2 * G * H)) if b is None else b
    h0 = np.zeros((D, B, H)) if h0 is None else h0
    c0 = np.zeros((D, B, H)) if c0 is None else c0
    lens = np.full(B, S) if lens is None else np.asarray(lens)
    cl = (lambda v: np.clip(v, -clip, clip)) if clip > 0 else (lambda v: v)
    Y = np.zeros((S, D, B, H))
    Yh = np.zeros((D, B, H))
    Yc = np.zeros((D, B, H))
    for d in range(D):
        fs = [lambda v, k=k: act(acts[d * n + k], v, alpha[d * n + k], beta[d * n + k])
              for k in range(n)]
        rev = direction == "reverse" or d == 1
        W, R = w[d], r[d]
        Wb, Rb = b[d, :G * H], b[d, G * H:]
        for row in range(B):
            h, c = h0[d, row].copy(), c0[d, row].copy()
            L = int(lens[row])
            for t in (range(L - 1, -1, -1) if rev else range(L)):
                xt = x[t, row]
                if op == "lstm":
                    g = xt @ W.T + h @ R.T + Wb + Rb
                    gi, go, gf, gc = np.split(g, 4)
                    if p is not None:
                        gi = gi + p[d, :H] * c
                        gf = gf + p[d, 2 * H:] * c
                    i = fs[0](cl(gi))
                    f = 1.0 - i if input_forget else fs[0](cl(gf))
                    c = f * c + i * fs[1](cl(gc))
                    if p is not None:
                        go = go + p[d, H:2 * H] * c
                    h = fs[0](cl(go)) * fs[2](c)
                elif op == "gru":
                    xz, xr, xh = np.split(xt @ W.T, 3)
                    Rz, Rr, Rh = np.split(R, 3)
                    wz, wr, wh = np.split(Wb, 3)
                    rz, rr, rh = np.split(Rb, 3)
                    z = fs[0](cl(xz + h @ Rz.T + wz + rz))
                    rg = fs[0](cl(xr + h @ Rr.T + wr + rr))
                    if lbr:
                        ht = fs[1](cl(xh + rg * (h @ Rh.T + rh) + wh))
                    else:
                        ht = fs[1](cl(xh + (rg * h) @ Rh.T + rh + wh))
                    h = (1.0 - z) * ht + z * h
                else:
                    h = fs[0](cl(xt @ W.T + h @ R.T + Wb + Rb))
                Y[t, d, row] = h
            if L > 0:
                Yh[d, row], Yc[d, row] = h, c
    return (Y, Yh, Yc) if op == "lstm" else (Y, Yh)
