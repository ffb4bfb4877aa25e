"""ONNX backend node tests through NEF's importer.

The cases are the ones the pinned onnx release ships on disk
(onnx/backend/test/data/node/test_*/: model.onnx and test_data_set_*/{input,output}_*.pb).
Each runs through ``nef.from_onnx(model).run(inputs)`` and is compared with the stored outputs
the way ONNX's own runner does (same dtype and shape, rtol 1e-3, atol 1e-7, NaN == NaN).

Used by tests/python/test_onnx_conformance.py (every case not in tests/onnx/exclusions.txt must
pass) and from the command line:

    python tests/python/onnx_conformance.py --filter 'test_add*' -v     # run some cases
    python tests/python/onnx_conformance.py --report docs/onnx.md   # the per-op table
    python tests/python/onnx_conformance.py --suggest-exclusions        # unsupported cases
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import os
import sys
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

RTOL, ATOL = 1e-3, 1e-7
HERE = os.path.dirname(os.path.abspath(__file__))
EXCLUSIONS = os.path.join(HERE, "..", "onnx", "exclusions.txt")


def node_test_dir() -> str:
    import onnx
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")


def case_names() -> list:
    root = node_test_dir()
    return sorted(d for d in os.listdir(root)
                  if d.startswith("test_") and os.path.isfile(os.path.join(root, d, "model.onnx")))


def load_exclusions(path: str = EXCLUSIONS) -> dict:
    """{case name or glob: reason}. Lines are ``NAME  # reason``; every entry needs a reason."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, reason = line.partition("#")
            if not sep or not reason.strip():
                raise ValueError(f"{path}:{lineno}: an exclusion needs a '# reason'")
            out[name.strip()] = reason.strip()
    return out


def excluded_reason(name: str, exclusions: dict):
    if name in exclusions:
        return exclusions[name]
    for pat, reason in exclusions.items():
        if any(c in pat for c in "*?[") and fnmatch.fnmatch(name, pat):
            return reason
    return None


def _read_value(path: str):
    """A stored input/output as a numpy array; None when it is not a plain tensor."""
    import onnx
    from onnx import numpy_helper
    data = open(path, "rb").read()
    t = onnx.TensorProto()
    try:
        t.ParseFromString(data)
        if t.data_type != 0:
            return numpy_helper.to_array(t)
    except Exception:  # noqa: BLE001 - not a TensorProto: a sequence/optional/map value
        pass
    return None


@dataclass
class Result:
    name: str
    status: str  # pass | fail | unsupported | error | skip
    detail: str = ""
    ops: tuple = ()


def model_ops(name: str) -> tuple:
    import onnx
    m = onnx.load(os.path.join(node_test_dir(), name, "model.onnx"), load_external_data=False)
    return tuple(n.op_type for n in m.graph.node)


def compare(name: str, want: np.ndarray, got: np.ndarray) -> str:
    """'' when equal the way ONNX's runner compares, else why not."""
    if want.dtype != got.dtype and not (want.dtype.kind in "US" or want.dtype == object):
        return f"dtype {got.dtype} != expected {want.dtype}"
    if want.shape != got.shape:
        return f"shape {got.shape} != expected {want.shape}"
    if want.dtype.kind in "fc" or str(want.dtype) == "bfloat16" or \
            str(want.dtype).startswith("float8"):  # ml_dtypes: compared as values, NaN == NaN
        w = want.astype(np.float64)
        g = got.astype(np.float64)
        bad = ~(np.isclose(g, w, rtol=RTOL, atol=ATOL) | (np.isnan(g) & np.isnan(w)))
        if bad.any():
            i = np.flatnonzero(bad.ravel())[0]
            err = np.nanmax(np.abs(g - w)) if w.size else 0.0
            return (f"{bad.sum()}/{bad.size} values differ (max abs err {err:.3g}); first at "
                    f"{np.unravel_index(i, w.shape)}: got {g.ravel()[i]!r}, want {w.ravel()[i]!r}")
        return ""
    if not np.array_equal(want, got):
        bad = want != got
        i = np.flatnonzero(bad.ravel())[0]
        return (f"{bad.sum()}/{bad.size} values differ; first at "
                f"{np.unravel_index(i, want.shape)}: got {got.ravel()[i]!r}, want {want.ravel()[i]!r}")
    return ""


def run_case(name: str) -> Result:
    import nef
    case = os.path.join(node_test_dir(), name)
    ops = ()
    try:
        ops = model_ops(name)
    except Exception:  # noqa: BLE001
        pass
    sets = sorted(glob.glob(os.path.join(case, "test_data_set_*")))
    try:
        g = nef.from_onnx(os.path.join(case, "model.onnx"))
    except nef.NEFUnsupportedError as e:
        return Result(name, "unsupported", str(e), ops)
    except Exception as e:  # noqa: BLE001
        return Result(name, "error", f"import: {type(e).__name__}: {e}", ops)
    for ds in sets:
        n_in = len(glob.glob(os.path.join(ds, "input_*.pb")))
        n_out = len(glob.glob(os.path.join(ds, "output_*.pb")))
        inputs = [_read_value(os.path.join(ds, f"input_{i}.pb")) for i in range(n_in)]
        wants = [_read_value(os.path.join(ds, f"output_{i}.pb")) for i in range(n_out)]
        if any(v is None for v in inputs + wants):
            return Result(name, "unsupported", "non-tensor (sequence/optional/map) inputs or outputs", ops)
        if len(inputs) != len(g.inputs):
            return Result(name, "error", f"{len(inputs)} stored inputs, graph has {len(g.inputs)}", ops)
        feed = dict(zip(g.inputs, inputs))
        try:
            out = g._g.run({k: np.require(v, requirements="C") for k, v in feed.items()})
        except nef.NEFUnsupportedError as e:
            return Result(name, "unsupported", str(e), ops)
        except Exception as e:  # noqa: BLE001
            return Result(name, "error", f"run: {type(e).__name__}: {e}", ops)
        for oname, want in zip(g.outputs, wants):
            why = compare(name, want, np.asarray(out[oname]))
            if why:
                return Result(name, "fail", f"{os.path.basename(ds)} output '{oname}': {why}", ops)
    return Result(name, "pass", "", ops)


def op_of(r: Result) -> str:
    """The op a case tests: its only node's op, or '(expanded) <first op>' for function-body
    expansions and other multi-node cases."""
    if len(r.ops) == 1:
        return r.ops[0]
    if "_expanded" in r.name:
        return "(function expansions)"
    return "(multi-node models)"


def report_markdown(results: list, exclusions: dict) -> str:
    per = defaultdict(lambda: defaultdict(int))
    for r in results:
        op = op_of(r)
        per[op]["cases"] += 1
        if excluded_reason(r.name, exclusions) is not None:
            per[op]["excluded"] += 1
        else:
            per[op]["run"] += 1
            per[op]["passed"] += r.status == "pass"
    tot = defaultdict(int)
    lines = ["| op | cases | run | passed | excluded |", "|---|---:|---:|---:|---:|"]
    for op in sorted(per, key=lambda o: (o.startswith("("), o.lower())):
        c = per[op]
        if c["run"] == 0:
            continue
        for k in ("cases", "run", "passed", "excluded"):
            tot[k] += c[k]
        lines.append(f"| {op} | {c['cases']} | {c['run']} | {c['passed']} | {c['excluded']} |")
    not_run = sum(1 for op in per if per[op]["run"] == 0)
    not_run_cases = sum(per[op]["cases"] for op in per if per[op]["run"] == 0)
    lines.append(f"| **total (ops NEF imports)** | {tot['cases']} | {tot['run']} | {tot['passed']} | "
                 f"{tot['excluded']} |")
    lines.append("")
    lines.append(f"Not imported at all: {not_run} ops ({not_run_cases} cases), every case listed "
                 f"in tests/onnx/exclusions.txt with its reason.")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--filter", default="test_*", help="glob over case names")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case")
    ap.add_argument("--include-excluded", action="store_true", help="also run excluded cases")
    ap.add_argument("--report", help="write the per-op markdown table to this file")
    ap.add_argument("--suggest-exclusions", action="store_true",
                    help="print exclusion lines for cases that raise NEFUnsupportedError")
    args = ap.parse_args(argv)
    exclusions = load_exclusions() if os.path.exists(EXCLUSIONS) else {}
    names = [n for n in case_names() if fnmatch.fnmatch(n, args.filter)]
    results = []
    counts = defaultdict(int)
    for n in names:
        if not (args.include_excluded or args.report or args.suggest_exclusions) and \
                excluded_reason(n, exclusions) is not None:
            counts["excluded"] += 1
            continue
        r = run_case(n)
        results.append(r)
        counts[r.status] += 1
        if args.verbose or (r.status in ("fail", "error") and not args.suggest_exclusions):
            print(f"{r.status:12s} {n}  {r.detail[:300]}")
        if args.suggest_exclusions and r.status == "unsupported" and \
                excluded_reason(n, exclusions) is None:
            print(f"{n}  # {r.detail.splitlines()[0][:200]}")
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), file=sys.stderr)
    if args.report:
        table = report_markdown(results, exclusions)
        text = open(args.report, encoding="utf-8").read() if os.path.exists(args.report) else ""
        begin, end = "<!-- conformance:begin -->", "<!-- conformance:end -->"
        if begin in text and end in text:  # replace the generated section of a doc page
            text = text[: text.index(begin) + len(begin)] + "\n" + table + "\n" + text[text.index(end):]
        else:
            text = table + "\n"
        with open(args.report, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
