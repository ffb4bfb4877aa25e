"""Independent branches run at the same time (compiler/concurrency.h): small independent kernels
are grouped in the plan and run together on the pool's threads. Checked against numpy float64,
and bit for bit against the same graph with grouping off (NEF_CONCURRENT_STEPS=0, read once per
process, so that side runs in a subprocess)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nef

from conftest import seed_of


def _branches(rng, n_branches, depth, n):
    """Branches of matmul, tanh, softmax over transposes/reshapes; their sum and each branch."""
    xs = [nef.placeholder(f"x{b}", (n, n + 2), "float32") for b in range(n_branches)]
    ws = [[(rng.standard_normal((n + 2, n + 2)) / np.sqrt(n + 2)).astype(np.float32)
           for _ in range(depth)] for _ in range(n_branches)]
    outs = {}
    total = None
    for b, x in enumerate(xs):
        y = x
        for w in ws[b]:
            y = nef.tanh(nef.matmul(y, nef.tensor(w)) * 0.5)
            y = nef.softmax(y.T.reshape((n + 2, n)), axis=-1).reshape((n, n + 2)) + y
        outs[f"y{b}"] = y
        total = y if total is None else total + y
    outs["sum"] = total
    return outs, ws


def _reference(feeds, ws, n):
    outs = {}
    total = None
    for b in range(len(ws)):
        y = feeds[f"x{b}"].astype(np.float64)
        for w in ws[b]:
            y = np.tanh(y @ w.astype(np.float64) * 0.5)
            t = y.T.reshape(n + 2, n)
            e = np.exp(t - t.max(axis=-1, keepdims=True))
            y = (e / e.sum(axis=-1, keepdims=True)).reshape(n, n + 2) + y
        outs[f"y{b}"] = y
        total = y if total is None else total + y
    outs["sum"] = total
    return outs


@pytest.mark.parametrize("n_branches,depth,n", [(2, 3, 53), (2, 4, 61), (3, 3, 77), (4, 2, 101)])
def test_branches_group_and_match_numpy(tmp_path, n_branches, depth, n):
    rng = np.random.default_rng(seed_of("conc", n_branches, depth, n))
    outs, ws = _branches(rng, n_branches, depth, n)
    path = tmp_path / "branches.nef"
    nef.build(path, outs)
    feeds = {f"x{b}": rng.standard_normal((n, n + 2)).astype(np.float32)
             for b in range(n_branches)}
    want = _reference(feeds, ws, n)
    before = nef.config()["threads"]
    try:
        for threads in (1, 2):
            nef.config(threads=threads)
            g = nef.load(path)
            groups = [k["concurrent"] for k in g.plan()["kernels"] if "concurrent" in k]
            if threads == 1:
                assert groups == []
            else:
                assert len(groups) >= 2 * (depth - 1), g.plan()["kernels"]
                for first, last in groups:
                    assert first < last
            for _ in range(3):
                got = g.run(feeds)
                for name, ref in want.items():
                    np.testing.assert_allclose(got[name], ref, rtol=2e-5, atol=2e-5)
    finally:
        nef.config(threads=before)


_SIDE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import nef
    nef.config(threads=2)
    g = nef.load(sys.argv[1])
    feeds = dict(np.load(sys.argv[2]))
    out = g.run(feeds)
    groups = sum("concurrent" in k for k in g.plan()["kernels"])
    np.savez(sys.argv[3], **out)
    print(json.dumps({"groups": groups}))
""")


def test_same_bits_with_grouping_off(tmp_path):
    rng = np.random.default_rng(seed_of("conc-bits"))
    outs, _ = _branches(rng, 3, 4, 67)
    path = tmp_path / "b.nef"
    nef.build(path, outs)
    feeds = {f"x{b}": rng.standard_normal((67, 69)).astype(np.float32) for b in range(3)}
    np.savez(tmp_path / "feeds.npz", **feeds)
    results = {}
    for flag in ("1", "0"):
        env = dict(os.environ, NEF_CONCURRENT_STEPS=flag)
        out = tmp_path / f"out{flag}.npz"
        p = subprocess.run([sys.executable, "-c", _SIDE, str(path), str(tmp_path / "feeds.npz"),
                            str(out)], env=env, capture_output=True, text=True, check=True)
        results[flag] = (json.loads(p.stdout)["groups"], dict(np.load(out)))
    assert results["1"][0] > 0 and results["0"][0] == 0
    for name in outs:
        np.testing.assert_array_equal(results["1"][1][name], results["0"][1][name])


def test_lazy_branches_numpy():
    """The lazy path (evaluate through the plan cache) runs grouped plans too."""
    rng = np.random.default_rng(seed_of("conc-lazy"))
    before = nef.config()["threads"]
    nef.config(threads=2)
    try:
        a = rng.standard_normal((71, 71)).astype(np.float32) / 8
        b = rng.standard_normal((71, 71)).astype(np.float32) / 8
        ya, yb = nef.asarray(a), nef.asarray(b)
        ra, rb = a.astype(np.float64), b.astype(np.float64)
        for _ in range(4):
            ya, yb = nef.tanh(nef.matmul(ya, ya) * 0.1), nef.exp(nef.matmul(yb, yb) * -0.1)
            ra, rb = np.tanh(ra @ ra * 0.1), np.exp(rb @ rb * -0.1)
        np.testing.assert_allclose((ya - yb).numpy(), ra - rb, rtol=3e-5, atol=3e-5)
    finally:
        nef.config(threads=before)
