"""An independent float64 numpy forward pass of a Llama-architecture GGUF model, written from the
model's definition (not from NEF's graph code): weights read and dequantized with the `gguf`
package, every activation in float64, no KV cache (the whole sequence at once).

GGUF Llama specifics: llama.cpp's converter permutes the q and k projection rows so that RoPE
rotates adjacent pairs (2i, 2i + 1) of each head; token_embd doubles as the output matrix when
the file has no output.weight."""
import numpy as np

import gguf


class LlamaReference:
    def __init__(self, path):
        self.r = gguf.GGUFReader(path)
        f = {k: v for k, v in self.r.fields.items()}
        arch = f["general.architecture"].contents()
        get = lambda key, default=None: (f[f"{arch}.{key}"].contents() if f"{arch}.{key}" in f
                                         else default)
        self.n_layer = int(get("block_count"))
        self.n_embd = int(get("embedding_length"))
        self.n_head = int(get("attention.head_count"))
        self.n_head_kv = int(get("attention.head_count_kv", self.n_head))
        self.head_dim = self.n_embd // self.n_head
        self.rope_base = float(get("rope.freq_base", 10000.0))
        self.rope_dims = int(get("rope.dimension_count", self.head_dim))
        self.eps = float(get("attention.layer_norm_rms_epsilon"))
        self.tensors = {t.name: t for t in self.r.tensors}
        self._cache = {}

    def w(self, name):
        """The tensor in numpy order, float64 (cached)."""
        if name not in self._cache:
            t = self.tensors[name]
            a = gguf.quants.dequantize(t.data, t.tensor_type)
            self._cache[name] = np.asarray(a, np.float64).reshape(
                tuple(int(d) for d in reversed(t.shape)))
        return self._cache[name]

    def rmsnorm(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def rope(self, x, pos):
        """x [heads, T, D]: adjacent pairs of the first rope_dims channels rotate."""
        half = self.rope_dims // 2
        inv = self.rope_base ** (-2.0 * np.arange(half) / self.rope_dims)
        ang = np.asarray(pos, np.float64)[:, None] * inv[None, :]
        c, s = np.cos(ang), np.sin(ang)
        out = x.copy()
        a, b = x[..., 0:2 * half:2], x[..., 1:2 * half:2]
        out[..., 0:2 * half:2] = a * c - b * s
        out[..., 1:2 * half:2] = a * s + b * c
        return out

    def logits(self, tokens, kv_dtype=None):
        """Logits [T, vocab] of every position of `tokens` (positions 0..T-1). kv_dtype (e.g.
        np.float16): keys (after RoPE) and values rounded to it, as a KV cache of that type
        holds them."""
        T = len(tokens)
        H, Hkv, D = self.n_head, self.n_head_kv, self.head_dim
        x = self.w("token_embd.weight")[np.asarray(tokens)]
        pos = np.arange(T)
        causal = np.tril(np.ones((T, T), bool))
        for l in range(self.n_layer):
            b = f"blk.{l}."
            h = self.rmsnorm(x, self.w(b + "attn_norm.weight"))
            q = (h @ self.w(b + "attn_q.weight").T).reshape(T, H, D).transpose(1, 0, 2)
            k = (h @ self.w(b + "attn_k.weight").T).reshape(T, Hkv, D).transpose(1, 0, 2)
            v = (h @ self.w(b + "attn_v.weight").T).reshape(T, Hkv, D).transpose(1, 0, 2)
            q, k = self.rope(q, pos), self.rope(k, pos)
            if kv_dtype is not None:
                k = k.astype(np.float32).astype(kv_dtype).astype(np.float64)
                v = v.astype(np.float32).astype(kv_dtype).astype(np.float64)
            k = np.repeat(k, H // Hkv, axis=0)
            v = np.repeat(v, H // Hkv, axis=0)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(D)
            s = np.where(causal, s, -np.inf)
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            att = (p @ v).transpose(1, 0, 2).reshape(T, H * D)
            x = x + att @ self.w(b + "attn_output.weight").T
            h = self.rmsnorm(x, self.w(b + "ffn_norm.weight"))
            g = h @ self.w(b + "ffn_gate.weight").T
            u = h @ self.w(b + "ffn_up.weight").T
            x = x + (g / (1 + np.exp(-g)) * u) @ self.w(b + "ffn_down.weight").T
        x = self.rmsnorm(x, self.w("output_norm.weight"))
        out = "output.weight" if "output.weight" in self.tensors else "token_embd.weight"
        return x @ self.w(out).T
