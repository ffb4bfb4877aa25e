#!/usr/bin/env python3
"""Markdown tables from bench_planning's JSON output (--benchmark_format=json).

Usage: bench/planning_table.py RESULT.json  (prints the tables: totals, then the stage split)
"""
import json
import sys


def main(path):
    runs = json.load(open(path))["benchmarks"]
    by = {r["name"]: r for r in runs}
    print("| graph | nodes (after passes) | cold ms | coldest ms | warm ms | warm/cold | warm_graph ms |")
    print("|---|---|---|---|---|---|---|")
    for kind in ("random", "transformer"):
        for n in (100, 1000, 10000):
            cold, coldest, warm = (by.get(f"{m}/{kind}/{n}") for m in ("cold", "coldest", "warm"))
            if not cold:
                continue
            ms = lambda r: r["cpu_time"] if r else float("nan")  # unit: ms (cpu time)
            print(f"| {kind} {n} | {int(cold['nodes'])} ({int(cold['nodes_after'])}) | "
                  f"{ms(cold):.3f} | {ms(coldest):.3f} | {ms(warm):.3f} | "
                  f"{ms(warm) / ms(cold):.0%} | {ms(by.get(f'warm_graph/{kind}/{n}')):.3f} |")
    stages = [r for r in runs if r["name"].startswith("stages/")]
    if not stages:
        return
    keys = sorted(k for k in stages[0] if k[:1].isdigit())
    print()
    print("| stage (ms per compile) | " + " | ".join(r["name"][7:] for r in stages) + " |")
    print("|---" * (len(stages) + 1) + "|")
    for k in keys:
        print(f"| {k[2:]} | " + " | ".join(f"{r[k]:.3f}" for r in stages) + " |")
    print("| **sum** | " + " | ".join(f"{sum(r[k] for k in keys):.3f}" for r in stages) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
