"""What idle time before a run costs NEF, at 1 and 2 threads: a chain of small products
(24 x (128x384 @ 384x384, tanh), a MiniLM-sized layer stack) run back to back, and after the
process slept 20 ms and 100 ms before each run. The sleeps are what a benchmark that alternates
engines, or a server between requests, puts between runs: the pool's workers have blocked in
the kernel by then, and on a VM the idle vCPU takes its time to come back.

    .venv/bin/python bench/bench_cold_start.py [--runs 40]

Prints one line per (threads, sleep): median / min / max wall time of a run, the load, and the
thread count nef.config() reads back. Nothing is recorded: a diagnostic, not a peer comparison.
"""

import argparse
import os
import time

import numpy as np

import nef


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    rng = np.random.default_rng(20261205)
    x = nef.from_numpy(rng.standard_normal((128, 384)).astype(np.float32))
    ws = [nef.from_numpy((rng.standard_normal((384, 384)) * 0.05).astype(np.float32))
          for _ in range(24)]

    def run():
        h = x
        for w in ws:
            h = nef.tanh(h @ w)
        return h.numpy()

    print(f"load {os.getloadavg()[0]:.2f}")
    for threads in (1, 2):
        nef.config(threads=threads)
        got = nef.config()["threads"]
        for _ in range(5):
            run()
        for sleep_s in (0.0, 0.02, 0.1):
            ts = []
            for _ in range(args.runs):
                time.sleep(sleep_s)
                t0 = time.perf_counter()
                run()
                ts.append(time.perf_counter() - t0)
            ms = np.array(ts) * 1e3
            print(f"threads {threads} (read back {got}), sleep {sleep_s * 1e3:.0f} ms before each "
                  f"run: median {np.median(ms):.2f} ms, min {ms.min():.2f}, max {ms.max():.2f}")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
