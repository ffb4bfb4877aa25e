"""The Python layer's cost of building graph nodes (nothing executes): microseconds per
`t * u`, `t + 1` (a weak Python scalar, checked against t's dtype), `nef.exp(t)`, `t[1:3, 0]`
and `np.exp(t)` (through __array_ufunc__). Best of --repeats runs of --n calls each.

Run: .venv/bin/python bench/bench_graph_building.py [--n 20000] [--repeats 5]
To compare with another checkout's Python package, run it with PYTHONPATH pointing there.
"""

import argparse
import time

import numpy as np

import nef


def per_call_us(fn, n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    t = nef.tensor(np.ones((4, 4), np.float32))
    u = nef.tensor(np.ones((4, 4), np.float32))
    cases = {"t * u": lambda: t * u, "t + 1": lambda: t + 1, "nef.exp(t)": lambda: nef.exp(t),
             "t[1:3, 0]": lambda: t[1:3, 0], "np.exp(t)": lambda: np.exp(t)}
    print(f"nef {nef.__version__} from {nef.__file__}")
    for name, fn in cases.items():
        try:
            us = per_call_us(fn, args.n, args.repeats)
        except Exception as e:  # an older package may lack a case (np.exp(t) executes there)
            print(f"{name:12s} n/a ({type(e).__name__})")
            continue
        print(f"{name:12s} {us:6.2f} us/call")


if __name__ == "__main__":
    main()
