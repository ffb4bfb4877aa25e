"""NEF vs llama.cpp (llama-cpp-python) on the same GGUF model, in one run: decode tokens/s,
prompt (prefill) tokens/s for 128- and 512-token prompts, time to first token, peak RSS, at 1
and 2 threads; and the greedy tokens of fixed prompts (--record writes llama.cpp's to
tests/data/llm/, which tests/python/test_llm_peer.py compares NEF against).

    make bench-llm                       # builds/installs the peer once (build/peers), then this
    .venv/bin/python bench/bench_llm.py [--model M.gguf] [--threads 1 2] [--record]

Each measurement runs in its own process (peak RSS is that process's VmHWM); both engines get
the same token ids. Medians of --repeat runs. Quote only runs at `uptime` load < 1.5."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GREEDY_PROMPTS = ["The capital of France is", "def fibonacci(n):",
                  "Once upon a time, there was a little robot who",
                  "The three primary colors are", "Water boils at"]
GREEDY_TOKENS = 24


def default_model():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "smollm2_path.py")],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def vm_hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def prompt_ids(n, vocab_tokens):
    """n token ids of plain English-like text (fixed, the same for both engines)."""
    rng = np.random.default_rng(1234)
    return [int(t) for t in rng.choice(vocab_tokens, size=n)]


# ---- the child: one engine, one thread count --------------------------------------------

class NefEngine:
    def __init__(self, model, threads, ctx):
        import nef
        nef.config(threads=threads)
        self.nef = nef
        self.m = nef.llm.load(model, context=ctx, prefill_chunk=512)
        self.threads = nef.config()["threads"]

    def tokenize(self, text):
        return self.m.tokenizer.encode(text)

    def prefill(self, ids):
        s = self.m.session()
        return s, s.eval(ids)

    def step(self, s, tok):
        return s.eval([tok])

    def greedy(self, text, n):
        g = self.m.generate(text, max_tokens=n, ignore_eos=True)
        list(g)
        return g.prompt_tokens, g.tokens


class LlamaCppEngine:
    def __init__(self, model, threads, ctx):
        from llama_cpp import Llama
        self.m = Llama(model_path=model, n_ctx=ctx, n_threads=threads, n_threads_batch=threads,
                       n_batch=512, verbose=False)
        self.threads = threads

    def tokenize(self, text):
        return self.m.tokenize(text.encode(), add_bos=False, special=True)

    def logits(self):
        # The last token's logits from the context (Llama.scores is only kept with logits_all).
        import llama_cpp
        p = llama_cpp.llama_get_logits_ith(self.m.ctx, -1)
        return np.ctypeslib.as_array(p, shape=(self.m.n_vocab(),)).copy()

    def prefill(self, ids):
        self.m.reset()
        self.m.eval(ids)
        return None, self.logits()

    def step(self, s, tok):
        self.m.eval([tok])
        return self.logits()

    def greedy(self, text, n):
        ids = self.tokenize(text)
        self.m.reset()
        self.m.eval(ids)
        out = []
        for _ in range(n):
            tok = int(np.argmax(self.logits()))
            out.append(tok)
            self.m.eval([tok])
        return ids, out


def child(args):
    eng = (NefEngine if args.engine == "nef" else LlamaCppEngine)(args.model, args.threads, 1024)
    vocab = list(range(300, 20000))
    res = {"engine": args.engine, "threads": eng.threads}
    # Time to first token: a 13-token prompt, cold session.
    ids = eng.tokenize("Write a short poem about the sea and the wind that blows over it.")
    ttft = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        eng.prefill(ids)
        ttft.append(time.perf_counter() - t0)
    res["ttft_s"] = statistics.median(ttft)
    for n in (128, 512):
        p = prompt_ids(n, vocab)
        eng.prefill(p)  # warm (plans compiled, pages touched)
        ts = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            eng.prefill(p)
            ts.append(time.perf_counter() - t0)
        res[f"prompt{n}_tok_s"] = n / statistics.median(ts)
    # Decode: 64 tokens after a 32-token prompt, argmax fed back.
    rates = []
    for _ in range(args.repeat):
        s, logits = eng.prefill(prompt_ids(32, vocab))
        tok = int(np.argmax(logits))
        t0 = time.perf_counter()
        for _ in range(64):
            tok = int(np.argmax(eng.step(s, tok)))
        rates.append(64 / (time.perf_counter() - t0))
    res["decode_tok_s"] = statistics.median(rates)
    res["greedy"] = {}
    for text in GREEDY_PROMPTS:
        pids, toks = eng.greedy(text, GREEDY_TOKENS)
        res["greedy"][text] = {"prompt": list(map(int, pids)), "tokens": list(map(int, toks))}
    res["peak_rss_mb"] = vm_hwm_mb()
    print(json.dumps(res))


def run_child(engine, model, threads, repeat):
    env = dict(os.environ)
    if engine == "llama.cpp":  # the peer measured as users run it
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    out = subprocess.run([sys.executable, __file__, "--child", "--engine", engine, "--model",
                          model, "--threads", str(threads), "--repeat", str(repeat)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{engine} at {threads} threads failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--record", action="store_true",
                    help="write llama.cpp's greedy tokens to tests/data/llm/")
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--engine", default="nef")
    args = ap.parse_args()
    args.model = args.model or default_model()
    if args.child:
        args.threads = args.threads[0]
        return child(args)
    try:
        import llama_cpp  # noqa: F401
        have_peer = True
    except ImportError:
        have_peer = False
        print("llama-cpp-python is not installed: NEF only (make bench-llm installs the peer)")
    print(f"# {os.path.basename(args.model)}; load: {os.getloadavg()[0]:.2f}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    rows = []
    for t in args.threads:
        nef_r = run_child("nef", args.model, t, args.repeat)
        peer = run_child("llama.cpp", args.model, t, args.repeat) if have_peer else None
        rows.append((t, nef_r, peer))
    print("| threads (NEF read back) | metric | NEF | llama.cpp | NEF / llama.cpp |")
    print("|---|---|---|---|---|")
    for t, n, p in rows:
        for key, unit in [("decode_tok_s", "decode tokens/s"), ("prompt128_tok_s",
                          "prompt 128 tokens/s"), ("prompt512_tok_s", "prompt 512 tokens/s"),
                          ("ttft_s", "time to first token s (13-token prompt)"),
                          ("peak_rss_mb", "peak RSS MB")]:
            pv = p[key] if p else float("nan")
            print(f"| {t} ({n['threads']}) | {unit} | {n[key]:.3g} | {pv:.3g} | {n[key] / pv:.2f} |")
    if rows and rows[0][2]:
        same = 0
        for text in GREEDY_PROMPTS:
            a, b = rows[0][1]["greedy"][text], rows[0][2]["greedy"][text]
            same += a["tokens"] == b["tokens"]
            if a["prompt"] != b["prompt"]:
                print(f"tokenization differs for {text!r}: {a['prompt']} vs {b['prompt']}")
        print(f"greedy: {same}/{len(GREEDY_PROMPTS)} prompts give llama.cpp's {GREEDY_TOKENS} tokens")
        if args.record:
            path = os.path.join(ROOT, "tests", "data", "llm", "llama_cpp_greedy.json")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            import llama_cpp
            with open(path, "w") as f:
                json.dump({"command": "bench/bench_llm.py --record", "model":
                           os.path.basename(args.model), "llama_cpp_python":
                           llama_cpp.__version__, "threads": rows[0][0], "tokens": GREEDY_TOKENS,
                           "greedy": rows[0][2]["greedy"]}, f, indent=1)
            print(f"recorded {path}")


if __name__ == "__main__":
    main()
