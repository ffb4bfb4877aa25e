"""all-MiniLM-L6-v2 in plain numpy float64: the reference for tests/python/test_minilm.py.

Written from the BERT / sentence-transformers definitions, sharing no code with
nef.models.minilm: it reads the weights with safetensors.numpy, keeps the token-type embedding
separate, computes attention per head with an explicit -inf key mask and pools with a loop.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])


class Reference:
    def __init__(self, model_dir) -> None:
        from safetensors.numpy import load_file
        d = Path(model_dir)
        cfg = json.loads((d / "config.json").read_text())
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg["layer_norm_eps"]
        self.n_layers = cfg["num_hidden_layers"]
        tensors = load_file(str(d / "model.safetensors"))
        self.w = {k: v.astype(np.float64) for k, v in tensors.items()}

    def _ln(self, x, prefix):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(var + self.eps)
        return y * self.w[prefix + ".weight"] + self.w[prefix + ".bias"]

    def _dense(self, x, prefix):
        # torch.nn.Linear: y = x W^T + b, W stored [out, in]
        return np.einsum("...i,oi->...o", x, self.w[prefix + ".weight"]) + self.w[prefix + ".bias"]

    def hidden_states(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        B, S = ids.shape
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][np.arange(S)][None]
             + w["embeddings.token_type_embeddings.weight"][np.zeros_like(ids)])
        x = self._ln(x, "embeddings.LayerNorm")
        H = x.shape[-1]
        nh, hd = self.heads, H // self.heads
        key_bias = np.where(mask.astype(bool), 0.0, -np.inf)  # [B, S]
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."
            q = self._dense(x, p + "attention.self.query").reshape(B, S, nh, hd)
            k = self._dense(x, p + "attention.self.key").reshape(B, S, nh, hd)
            v = self._dense(x, p + "attention.self.value").reshape(B, S, nh, hd)
            scores = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
            scores = scores + key_bias[:, None, None, :]
            scores = scores - scores.max(-1, keepdims=True)
            e = np.exp(scores)
            probs = e / e.sum(-1, keepdims=True)
            ctx = np.einsum("bhqk,bkhd->bqhd", probs, v).reshape(B, S, H)
            x = self._ln(self._dense(ctx, p + "attention.output.dense") + x,
                         p + "attention.output.LayerNorm")
            h = self._dense(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
            x = self._ln(self._dense(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def embed(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean over the kept tokens, then unit length: [B, hidden] float64."""
        x = self.hidden_states(ids, mask)
        out = np.empty((x.shape[0], x.shape[2]))
        for b in range(x.shape[0]):
            kept = mask[b].astype(bool)
            mean = x[b, kept].mean(0)
            out[b] = mean / np.linalg.norm(mean)
        return out
