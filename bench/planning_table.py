#!/usr/bin/env python3
"""Markdown tables from bench_planning's JSON output (--benchmark_out_format=json).

Usage: bench/planning_table.py RESULT.json            (totals, then the stage split)
       bench/planning_table.py BEFORE.json AFTER.json (the same, before -> after side by side)
With --benchmark_repetitions the medians are used (the "_median" aggregates).
"""
import json
import sys

KINDS = ("random", "transformer")
SIZES = (100, 1000, 10000)
MEASURES = ("cold", "coldest", "warm", "warm_graph")


def load(path):
    runs = json.load(open(path))["benchmarks"]
    by = {}
    for r in runs:
        name = r["name"]
        if r.get("run_type") == "aggregate":
            if r.get("aggregate_name") != "median":
                continue
            name = r["run_name"]
        by[name] = r
    return by


def ms(r):
    return r["cpu_time"] if r else float("nan")  # unit: ms (cpu time)


def stage_keys(by):
    keys = set()
    for name, r in by.items():
        if name.startswith("stages/"):
            keys |= {k for k in r if k[:1].isdigit()}
    return sorted(keys)


def one(by):
    print("| graph | nodes (after passes) | " + " | ".join(f"{m} ms" for m in MEASURES) + " |")
    print("|---" * (len(MEASURES) + 2) + "|")
    for kind in KINDS:
        for n in SIZES:
            cold = by.get(f"cold/{kind}/{n}")
            if not cold:
                continue
            cells = " | ".join(f"{ms(by.get(f'{m}/{kind}/{n}')):.3f}" for m in MEASURES)
            print(f"| {kind} {n} | {int(cold['nodes'])} ({int(cold['nodes_after'])}) | {cells} |")
    stages = [(name, r) for name, r in by.items() if name.startswith("stages/")]
    keys = stage_keys(by)
    if not stages:
        return
    print()
    print("| stage (ms per compile) | " + " | ".join(name[7:] for name, _ in stages) + " |")
    print("|---" * (len(stages) + 1) + "|")
    for k in keys:
        print(f"| {k[2:]} | " + " | ".join(f"{r.get(k, 0):.3f}" for _, r in stages) + " |")
    print("| **sum** | " + " | ".join(f"{sum(r.get(k, 0) for k in keys):.3f}" for _, r in stages) +
          " |")


def two(before, after):
    print("| graph | nodes (after passes) | " +
          " | ".join(f"{m} ms before -> after" for m in MEASURES) + " |")
    print("|---" * (len(MEASURES) + 2) + "|")
    for kind in KINDS:
        for n in SIZES:
            b, a = before.get(f"cold/{kind}/{n}"), after.get(f"cold/{kind}/{n}")
            if not b or not a:
                continue
            cells = []
            for m in MEASURES:
                x, y = ms(before.get(f"{m}/{kind}/{n}")), ms(after.get(f"{m}/{kind}/{n}"))
                cells.append(f"{x:.3f} -> **{y:.3f}** ({x / y:.1f}x)")
            print(f"| {kind} {n} | {int(a['nodes'])} ({int(a['nodes_after'])}) | " +
                  " | ".join(cells) + " |")
    names = [name for name in after if name.startswith("stages/") and name in before]
    keys = sorted(set(stage_keys(before)) | set(stage_keys(after)))
    if not names:
        return
    print()
    print("| stage (ms per compile, before -> after) | " + " | ".join(n[7:] for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for k in keys:
        cells = []
        for name in names:
            x, y = before[name].get(k), after[name].get(k)
            cells.append(("-" if x is None else f"{x:.3f}") + " -> " +
                         ("-" if y is None else f"{y:.3f}"))
        print(f"| {k[2:]} | " + " | ".join(cells) + " |")
    sums = [f"{sum(before[n].get(k, 0) for k in keys):.3f} -> "
            f"{sum(after[n].get(k, 0) for k in keys):.3f}" for n in names]
    print("| **sum** | " + " | ".join(sums) + " |")


if __name__ == "__main__":
    if len(sys.argv) == 2:
        one(load(sys.argv[1]))
    elif len(sys.argv) == 3:
        two(load(sys.argv[1]), load(sys.argv[2]))
    else:
        sys.exit(__doc__)
