#!/usr/bin/env python3
"""Writes the fuzz seed corpus: fuzz/corpus/nef/*.nef, fuzz/corpus/npy/*.npy and
fuzz/corpus/gguf/*.gguf.

The .nef files come from this script's own small writer of docs/format.md (independent of the
C++ writer, so the C++ tests that load the valid_* files cross-check both). The .npy files are
written by numpy itself (and ml_dtypes for bfloat16, when installed). The .gguf files come from
a small writer of the GGUF layout here (tiny tensors of every type NEF reads, every metadata
value type, and a few damaged files).

Usage: python3 fuzz/make_corpus.py      (run from anywhere; needs numpy for the npy part)
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
NEF_DIR = os.path.join(HERE, "corpus", "nef")
NPY_DIR = os.path.join(HERE, "corpus", "npy")
GGUF_DIR = os.path.join(HERE, "corpus", "gguf")


def align(v, a=64):
    return (v + a - 1) // a * a


class Graph:
    """Nodes in file order; tensors declared with shape/dtype and constants' bytes."""

    def __init__(self):
        self.nodes, self.tensors, self.inputs, self.outputs = [], {}, [], []
        self.blob = bytearray()

    def node(self, op, inputs, out, shape, dtype, attrs=None, weak=False, data=None, binding=None,
             device="auto"):
        n = {"id": "n%d" % len(self.nodes), "op": op, "inputs": inputs, "output": out,
             "attrs": attrs or {}, "preferred_device": device}
        if binding is not None:
            n["binding"] = binding
        self.nodes.append(n)
        t = {"shape": shape, "dtype": dtype}
        if weak:
            t["weak"] = True
        if data is not None:
            off = align(len(self.blob))
            self.blob += b"\0" * (off - len(self.blob)) + data
            t["data"] = {"offset": off, "nbytes": len(data)}
        self.tensors[out] = t
        return out

    def input(self, name, shape, dtype):
        self.node("input", [], name, shape, dtype,
                  {"name": s(name), "shape": ints(shape), "dtype": s(dtype)},
                  binding=len(self.inputs))
        self.inputs.append(name)
        return name

    def const(self, name, shape, dtype, data, weak=False):
        return self.node("constant", [], name, shape, dtype, {"shape": ints(shape), "dtype": s(dtype)},
                         weak=weak, data=data)

    def file(self, reverse=False):
        ids = {n["output"]: n["id"] for n in self.nodes}
        edges = []
        for n in self.nodes:
            seen = []
            for i in n["inputs"]:
                if i not in seen:
                    seen.append(i)
                    edges.append({"from": ids[i], "to": n["id"]})
        nodes = list(reversed(self.nodes)) if reverse else self.nodes
        header = {"version": "1.0", "nef_format": "graph-v1",
                  "graph": {"nodes": nodes, "edges": edges, "inputs": self.inputs,
                            "outputs": self.outputs, "output_names": self.outputs},
                  "tensors": self.tensors, "target": "auto", "compiler_cache": "none"}
        text = json.dumps(header, indent=1, allow_nan=False).encode("utf-8")
        doff = align(32 + len(text))
        data = bytes(self.blob) + b"\0" * (align(len(self.blob)) - len(self.blob))
        pre = b"NEF\x01" + struct.pack("<IQQQ", 1, len(text), doff, len(data))
        return pre + text + b" " * (doff - 32 - len(text)) + data


def ints(v):
    return {"type": "ints", "value": list(v)}


def s(v):
    return {"type": "string", "value": v}


def f(v):
    if v != v:
        v = "nan"
    elif v in (float("inf"), float("-inf")):
        v = "inf" if v > 0 else "-inf"
    return {"type": "float", "value": v}


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def nef_files():
    out = {}
    g = Graph()
    x = g.input("x", [2, 3], "float32")
    w = g.const("w", [2, 3], "float32", f32(range(6)))
    g.node("add", [x, w], "y", [2, 3], "float32")
    g.outputs = ["y"]
    out["valid_add.nef"] = g.file()
    out["valid_add_unordered.nef"] = g.file(reverse=True)

    g = Graph()
    a = g.input("a", [2, 4], "float32")
    b = g.const("b", [4, 3], "float16", struct.pack("<12e", *[i / 4 for i in range(12)]))
    g.node("matmul", [a, b], "mm", [2, 3], "float32", device="gpu")
    g.node("reshape", ["mm"], "r", [3, 2], "float32", {"shape": ints([3, -1])})
    g.node("softmax", ["r"], "sm", [3, 2], "float32", {"axis": {"type": "int", "value": -1}})
    g.node("sum", ["sm"], "total", [1, 2], "float32",
           {"axes": ints([0]), "keepdims": {"type": "bool", "value": True}})
    g.outputs = ["sm", "total"]
    out["valid_matmul.nef"] = g.file()

    g = Graph()
    g.node("full", [], "nan2", [2], "float32",
           {"shape": ints([2]), "dtype": s("float32"), "value": f(float("nan"))})
    g.node("full", [], "inf2", [2], "float16",
           {"shape": ints([2]), "dtype": s("float16"), "value": f(float("-inf"))})
    g.node("arange", [], "ar", [12], "float64",
           {"start": f(0.1), "stop": f(3.7), "step": f(0.3), "dtype": s("float64")})
    g.node("gelu", ["ar"], "ge", [12], "float64", {"approximate": s("tanh")})
    i8 = g.const("i8", [3], "int8", bytes([1, 2, 255]))
    one = g.const("one", [], "int64", struct.pack("<q", 1), weak=True)
    g.node("add", [i8, one], "i8p1", [3], "int8")
    g.node("cast", ["i8p1"], "as64", [3], "int64", {"dtype": s("int64")})
    g.outputs = ["nan2", "inf2", "ge", "as64"]
    out["valid_attrs.nef"] = g.file()

    g = Graph()
    consts = [("c_f32", [2, 2], "float32", f32([1, 2, 3, 4])),
              ("c_f16", [3], "float16", struct.pack("<3e", 1, 2, 3)),
              ("c_bf16", [2], "bfloat16", bytes([0x80, 0x3f, 0x00, 0x40])),
              ("c_f64", [1], "float64", struct.pack("<d", 2.5)),
              ("c_i8", [2], "int8", bytes([0x80, 0x7f])),
              ("c_u8", [2], "uint8", bytes([0, 255])),
              ("c_i32", [1], "int32", struct.pack("<i", -7)),
              ("c_i64", [1], "int64", struct.pack("<q", 1 << 40)),
              ("c_bool", [3], "bool", bytes([1, 0, 1])),
              ("c_empty", [0, 4], "float32", b""),
              ("c_scalar", [], "float32", f32([3.5]))]
    for name, shape, dt, data in consts:
        g.const(name, shape, dt, data)
    g.outputs = [c[0] for c in consts]
    out["valid_consts.nef"] = g.file()

    # A few broken seeds so the fuzzer starts near the error paths too.
    base = out["valid_add.nef"]
    out["bad_magic.nef"] = b"NEF\x02" + base[4:]
    out["bad_truncated.nef"] = base[: len(base) // 2]
    g = Graph()
    x = g.input("x", [2], "float32")
    g.node("add", [x, "q"], "p", [2], "float32")
    g.node("add", ["p", x], "q", [2], "float32")
    g.outputs = ["q"]
    out["bad_cycle.nef"] = g.file()
    return out


def npy_files():
    import io
    import numpy as np
    out = {}

    def save(name, arr, version=None):
        bio = io.BytesIO()
        if version:
            np.lib.format.write_array(bio, arr, version=version)
        else:
            np.save(bio, arr)
        out[name] = bio.getvalue()

    save("f4_2x3_v1.npy", np.arange(6, dtype="<f4").reshape(2, 3))
    save("f4_be_2x3.npy", np.arange(6, dtype=">f4").reshape(2, 3))
    save("f8_be_5.npy", np.arange(5, dtype=">f8"))
    save("i8_be_4.npy", np.arange(4, dtype=">i8"))
    save("i4_fortran_3x4.npy", np.asfortranarray(np.arange(12, dtype="<i4").reshape(3, 4)))
    save("f2_fortran_be_2x3x2.npy", np.asfortranarray(np.arange(12, dtype=">f2").reshape(2, 3, 2)))
    save("f4_v2.npy", np.arange(6, dtype="<f4").reshape(3, 2), version=(2, 0))
    save("f4_v3.npy", np.arange(6, dtype="<f4").reshape(3, 2), version=(3, 0))
    save("u1_7.npy", np.arange(7, dtype="u1"))
    save("i1_2x2.npy", np.arange(4, dtype="i1").reshape(2, 2))
    save("b1_5.npy", np.arange(5) % 2 == 1)
    save("f4_scalar.npy", np.array(0, dtype="<f4"))
    save("f4_empty_0x3.npy", np.zeros((0, 3), dtype="<f4"))
    try:
        import ml_dtypes
        save("bf16_2x3.npy", np.arange(6).astype(ml_dtypes.bfloat16).reshape(2, 3))
    except ImportError:
        print("ml_dtypes not installed: bf16_2x3.npy not written")
    return out


# ---- GGUF ------------------------------------------------------------------------------------

def gguf_str(v):
    b = v.encode() if isinstance(v, str) else v
    return struct.pack("<Q", len(b)) + b


# GGUF value types: u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64
GGUF_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
               10: "<Q", 11: "<q", 12: "<d"}


def gguf_value(vtype, v):
    if vtype == 8:
        return gguf_str(v)
    if vtype == 9:
        etype, items = v
        return struct.pack("<IQ", etype, len(items)) + b"".join(gguf_value(etype, x) for x in items)
    return struct.pack(GGUF_SCALAR[vtype], v)


def gguf_file(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, vtype, value)]; tensors: [(name, ne, ggml_type, data bytes)] laid out in order."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, v in kvs:
        out += gguf_str(key) + struct.pack("<I", vtype) + gguf_value(vtype, v)
    offset, blob = 0, b""
    for name, ne, gtype, data in tensors:
        out += gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        out += struct.pack("<IQ", gtype, offset)
        blob += data + b"\0" * (align(len(data), alignment) - len(data))
        offset = len(blob)
    out += b"\0" * (align(len(out), alignment) - len(out))
    return out + blob


def pseudo_bytes(n, seed):
    """Deterministic filler bytes (a small LCG), so seeds are reproducible without numpy."""
    x, out = seed, bytearray()
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(x >> 16 & 0xFF)
    return bytes(out)


def quant_blocks(n_blocks, block_bytes, scale_offsets, seed):
    """Random blocks whose fp16 scales are 0.5 (finite) at the given byte offsets."""
    out = bytearray()
    for b in range(n_blocks):
        blk = bytearray(pseudo_bytes(block_bytes, seed + b))
        for off in scale_offsets:
            blk[off:off + 2] = struct.pack("<e", 0.5)
        out += blk
    return bytes(out)


def gguf_files():
    kvs = [("general.architecture", 8, "llama"), ("general.alignment", 4, 32),
           ("t.u8", 0, 200), ("t.i8", 1, -3), ("t.u16", 2, 60000), ("t.i16", 3, -2),
           ("t.u32", 4, 7), ("t.i32", 5, -7), ("t.f32", 6, 0.5), ("t.bool", 7, True),
           ("t.u64", 10, 2**40), ("t.i64", 11, -2**40), ("t.f64", 12, 0.25),
           ("t.tokens", 9, (8, ["a", "\u00fc", ""])), ("t.scores", 9, (6, [0.5, -1.0])),
           ("t.nested", 9, (9, [(4, [1, 2]), (4, [])]))]
    # (name, ne, ggml type, data): every type NEF reads, two rows each where the size allows.
    types = [
        ("f32", [3, 2], 0, struct.pack("<6f", *range(6))),
        ("f16", [3, 2], 1, struct.pack("<6e", *range(6))),
        ("bf16", [4], 30, bytes([0, 0x3F, 0, 0x40, 0, 0xC0, 0x80, 0x3F])),
        ("f64", [2], 28, struct.pack("<2d", 1.5, -2.0)),
        ("i8", [4], 24, bytes([1, 2, 0xFF, 4])),
        ("i32", [2], 26, struct.pack("<2i", 5, -5)),
        ("i64", [1], 27, struct.pack("<q", 9)),
        ("q4_0", [32, 2], 2, quant_blocks(2, 18, [0], 1)),
        ("q4_1", [32, 2], 3, quant_blocks(2, 20, [0, 2], 2)),
        ("q8_0", [64, 1], 8, quant_blocks(2, 34, [0], 3)),
        ("q4_k", [256], 12, quant_blocks(1, 144, [0, 2], 4)),
        ("q5_k", [256], 13, quant_blocks(1, 176, [0, 2], 5)),
        ("q6_k", [256, 1], 14, quant_blocks(1, 210, [208], 6)),
        ("q5_0", [32], 6, quant_blocks(1, 22, [0], 7)),  # listed, not readable
    ]
    out = {}
    out["valid_all_types.gguf"] = gguf_file(kvs, types)
    out["valid_v2_small.gguf"] = gguf_file(kvs[:2], types[:2], version=2)
    out["valid_align64.gguf"] = gguf_file(
        [("general.alignment", 4, 64)], [types[0], types[9]], alignment=64)
    out["valid_metadata_only.gguf"] = gguf_file(kvs, [])
    good = gguf_file(kvs[:1], types[7:9])
    out["bad_truncated.gguf"] = good[:-30]  # into the last tensor (past its padding)
    overlap = bytearray(good)  # the second tensor's offset (the last 8 bytes before padding)
    end = good.index(b"q4_1") + 4 + 4 + 16 + 4
    overlap[end:end + 8] = struct.pack("<Q", 0)
    out["bad_overlap.gguf"] = bytes(overlap)
    return out


def main():
    os.makedirs(NEF_DIR, exist_ok=True)
    os.makedirs(NPY_DIR, exist_ok=True)
    os.makedirs(GGUF_DIR, exist_ok=True)
    total = 0
    for d, files in ((NEF_DIR, nef_files()), (NPY_DIR, npy_files()), (GGUF_DIR, gguf_files())):
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
            total += len(data)
    print("corpus: %d bytes" % total)


if __name__ == "__main__":
    main()
