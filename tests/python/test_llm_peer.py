"""NEF's greedy decoding of SmolLM2-135M-Instruct against llama.cpp's, recorded once by
`bench/bench_llm.py --record` (llama-cpp-python 0.3.36; tests/data/llm/llama_cpp_greedy.json
names the command and versions): the same prompt tokens and the same generated tokens."""
import json
import os
import sys

import pytest

import nef

sys.path.insert(0, os.path.dirname(__file__))
from test_llm import SMOLLM2, needs_smollm2  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "llm", "llama_cpp_greedy.json")


@needs_smollm2
def test_greedy_tokens_equal_llama_cpp():
    with open(DATA) as f:
        rec = json.load(f)
    assert rec["model"] == os.path.basename(SMOLLM2)
    m = nef.llm.load(SMOLLM2, context=256)
    for prompt, want in rec["greedy"].items():
        g = m.generate(prompt, max_tokens=rec["tokens"], ignore_eos=True)
        list(g)
        assert g.prompt_tokens == want["prompt"], prompt
        assert g.tokens == want["tokens"], (prompt, m.tokenizer.decode(g.tokens),
                                            m.tokenizer.decode(want["tokens"]))
