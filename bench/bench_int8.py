"""MiniLM (all-MiniLM-L6-v2) in int8: NEF (`Graph.quantize("int8")`, what `nef quantize --int8`
writes) vs ONNX Runtime's dynamic quantization (onnxruntime.quantization.quantize_dynamic, int8
weights, per channel) of the same model, beside both float models; one run, medians, 1 and 2
threads, and each int8 model's worst cosine to its float embeddings.

    .venv/bin/python bench/bench_int8.py [--batch 1] [--seq 128] [--threads 1 2]

Quote only runs at `uptime` load < 1.5."""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import nef
from nef.models import minilm


def median_ms(fn, warmup=3, reps=15):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def worst_cosine(a, b):
    return float(((a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)).min())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    m = minilm.MiniLM()
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, size=(args.batch, args.seq)).astype(np.int64)
    mask = np.ones_like(ids)
    with tempfile.TemporaryDirectory() as tmp:
        nef_path, onnx_path = os.path.join(tmp, "m.nef"), os.path.join(tmp, "m.onnx")
        q_onnx = os.path.join(tmp, "m_int8.onnx")
        m.build_nef(nef_path, batch=args.batch, seq=args.seq)
        m.build_onnx(onnx_path, batch=args.batch, seq=args.seq)
        quantize_dynamic(onnx_path, q_onnx, weight_type=QuantType.QInt8, per_channel=True)
        g = nef.load(nef_path)
        gq = g.quantize("int8")
        feed = {"input_ids": ids, "attention_mask": mask}
        print(f"# MiniLM {args.batch}x{args.seq}; load {os.getloadavg()[0]:.2f}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
              f"NEF int8: {gq.quantize_report}")
        print("| threads (NEF read back) | NEF float ms | NEF int8 ms | ORT float ms | "
              "ORT int8 ms | NEF int8 / ORT int8 | cos NEF int8 | cos ORT int8 |")
        print("|---|---|---|---|---|---|---|---|")
        for t in args.threads:
            nef.config(threads=t)
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            sf = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
            sq = ort.InferenceSession(q_onnx, so, providers=["CPUExecutionProvider"])
            ef = g.run(**feed)["embeddings"]
            eq = gq.run(**feed)["embeddings"]
            of = sf.run(None, feed)[0]
            oq = sq.run(None, feed)[0]
            nf = median_ms(lambda: g.run(**feed))
            nq = median_ms(lambda: gq.run(**feed))
            rf = median_ms(lambda: sf.run(None, feed))
            rq = median_ms(lambda: sq.run(None, feed))
            print(f"| {t} ({nef.config()['threads']}) | {nf:.2f} | {nq:.2f} | {rf:.2f} | {rq:.2f} "
                  f"| {nq / rq:.2f} | {worst_cosine(ef, eq):.4f} | {worst_cosine(of, oq):.4f} |")


if __name__ == "__main__":
    main()
