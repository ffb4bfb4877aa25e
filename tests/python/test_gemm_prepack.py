"""Constant GEMM weights packed once per plan (Kernel::prepare, gemm.h prepack_matmul_b).

A float32 matmul / matmul_epilogue whose B is a constant reads B packed when the plan was built
(compiled, or loaded from a .nef with an embedded plan) instead of packing it every run. Checked
against numpy float64 for odd sizes (K, N not multiples of the tile or block sizes; K > 256 and
N > 3072: several panels), a transposed constant, 1 and 2 threads, both tile families
(NEF_CPU_TARGET=avx2), a plan reused across runs, two graphs sharing a constant, the .nef round
trip with an embedded plan, and a plan packed for other tiles falling back to packing per run.
nef.stats() counts GEMMs that read a prepacked B (gemm_prepacked) and those where it did not
apply (gemm_prepack_fallbacks).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import nef
from conftest import seed_of

AVX512 = "avx512f" in open("/proc/cpuinfo").read()


@pytest.fixture(autouse=True)
def cpu_only():
    # The packing is the CPU GEMM's; under NEF_DEVICES=opencl the matmuls would run there.
    threads = nef.config()["threads"]
    nef.config(devices=["cpu"])
    yield
    nef.config(devices=[], threads=threads)


@pytest.fixture
def target():
    """Sets NEF_CPU_TARGET for the test (None unsets it), restoring it after."""
    old = os.environ.get("NEF_CPU_TARGET")

    def set_(v):
        if v is None:
            os.environ.pop("NEF_CPU_TARGET", None)
        else:
            os.environ["NEF_CPU_TARGET"] = v

    yield set_
    set_(old)


def counts():
    s = nef.stats()
    return s["gemm_prepacked"], s["gemm_prepack_fallbacks"]


def model(m, k, n, seed, epilogue=False, transposed=False):
    """x [m, k] placeholder @ a constant [k, n] (built transposed: w^T of an [n, k] array), plus
    a bias and a relu when `epilogue` (one matmul_epilogue node). Returns (output, w [k, n])."""
    rng = np.random.default_rng(seed)
    x = nef.placeholder("x", (m, k), nef.float32)
    if transposed:
        wt = rng.uniform(-1, 1, (n, k)).astype(np.float32)
        w, wc = wt.T, nef.tensor(wt).T
    else:
        w = rng.uniform(-1, 1, (k, n)).astype(np.float32)
        wc = nef.tensor(w)
    y = x @ wc
    bias = None
    if epilogue:
        bias = rng.uniform(-1, 1, (n,)).astype(np.float32)
        y = nef.relu(y + nef.tensor(bias))
    return y, w, bias


def reference(xv, w, bias):
    r = xv.astype(np.float64) @ w.astype(np.float64)
    if bias is not None:
        r = np.maximum(r + bias.astype(np.float64), 0.0)
    return r


def check(got, want, k):
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=2e-6 * np.sqrt(k))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m,k,n,epilogue,transposed", [
    (1, 257, 33, False, False),
    (38, 1000, 3073, True, False),
    (5, 300, 1000, True, True),
    (128, 384, 96, False, True),
])
def test_prepacked_matches_numpy(tmp_path, threads, m, k, n, epilogue, transposed):
    nef.config(threads=threads)
    seed = seed_of("prepack", m, k, n, epilogue, transposed)
    y, w, bias = model(m, k, n, seed, epilogue, transposed)
    path = tmp_path / "g.nef"
    y.build(path)
    g = nef.load(path)
    rng = np.random.default_rng(seed + 1)
    for _ in range(3):  # one plan, packed once, reused by every run with fresh inputs
        xv = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        used, fell = counts()
        got = g.run(x=xv)["output"]
        assert counts() == (used + 1, fell)
        check(got, reference(xv, w, bias), k)


def test_embedded_plan_round_trip(tmp_path):
    y, w, bias = model(21, 520, 3100, seed_of("embedded"), epilogue=True)
    plain, emb = tmp_path / "p.nef", tmp_path / "e.nef"
    y.build(plain)
    y.build(emb, embed_plan=True)
    xv = np.random.default_rng(5).uniform(-1, 1, (21, 520)).astype(np.float32)
    before = nef.stats()["embedded_plans_used"]
    g = nef.load(emb)
    assert nef.stats()["embedded_plans_used"] == before + 1
    used, fell = counts()
    got = np.asarray(g.run(x=xv)["output"])
    assert counts() == (used + 1, fell)  # the plan loaded from the file packed its weights
    want = np.asarray(nef.load(plain).run(x=xv)["output"])
    assert got.tobytes() == want.tobytes()
    check(got, reference(xv, w, bias), 520)


def test_embedded_plan_loaded_under_other_tiles(tmp_path):
    # A .nef written where AVX-512 tiles run, loaded where only AVX2 ones do (NEF_CPU_TARGET=avx2
    # in a fresh process): the file holds no packed data, the loading plan packs for its tiles.
    y, w, bias = model(9, 300, 70, seed_of("other-tiles"), epilogue=True)
    emb = tmp_path / "e.nef"
    y.build(emb, embed_plan=True)
    xv = np.random.default_rng(6).uniform(-1, 1, (9, 300)).astype(np.float32)
    np.save(tmp_path / "x.npy", xv)
    code = (
        "import sys, numpy as np, nef\n"
        "nef.config(devices=['cpu'])\n"
        "g = nef.load(sys.argv[1])\n"
        "assert nef.stats()['embedded_plans_used'] == 1\n"
        "out = np.asarray(g.run(x=np.load(sys.argv[2]))['output'])\n"
        "np.save(sys.argv[3], out)\n"
        "s = nef.stats()\n"
        "print(s['gemm_prepacked'], s['gemm_prepack_fallbacks'])\n")
    env = dict(os.environ, NEF_CPU_TARGET="avx2")
    r = subprocess.run([sys.executable, "-c", code, str(emb), str(tmp_path / "x.npy"),
                        str(tmp_path / "o.npy")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "0"]
    check(np.load(tmp_path / "o.npy"), reference(xv, w, bias), 300)


def test_plan_packed_for_other_tiles_falls_back(tmp_path, target):
    # NEF_CPU_TARGET changed after the plan was built: on an AVX-512 machine the packed panels
    # have the other sliver width, so the run packs per call (counted) and stays right.
    y, w, bias = model(14, 600, 3080, seed_of("fallback"), epilogue=True)
    path = tmp_path / "g.nef"
    y.build(path)
    xv = np.random.default_rng(7).uniform(-1, 1, (14, 600)).astype(np.float32)
    for pack, run in [(None, "avx2"), ("avx2", None)]:
        target(pack)
        g = nef.load(path)  # a new load: its own constants, its own plan, packed now
        first = np.asarray(g.run(x=xv)["output"])
        target(run)
        used, fell = counts()
        got = np.asarray(g.run(x=xv)["output"])
        if AVX512:
            assert counts() == (used, fell + 1)
        else:
            assert counts() == (used + 1, fell)
        check(got, reference(xv, w, bias), 600)
        check(first, reference(xv, w, bias), 600)


def test_two_graphs_share_a_constant(tmp_path):
    # Two graphs over the same weight (different row counts and epilogues): each plan has its own
    # packed copy, and each result is its own product.
    rng = np.random.default_rng(seed_of("shared"))
    w = rng.uniform(-1, 1, (333, 77)).astype(np.float32)
    wc = nef.tensor(w)
    x1 = nef.placeholder("x", (3, 333), nef.float32)
    x2 = nef.placeholder("x", (40, 333), nef.float32)
    p1, p2 = tmp_path / "a.nef", tmp_path / "b.nef"
    (x1 @ wc).build(p1)
    nef.tanh(x2 @ wc).build(p2)
    g1, g2 = nef.load(p1), nef.load(p2)
    for _ in range(2):
        a = rng.uniform(-1, 1, (3, 333)).astype(np.float32)
        b = rng.uniform(-1, 1, (40, 333)).astype(np.float32)
        used, _ = counts()
        check(g1.run(x=a)["output"], a.astype(np.float64) @ w, 333)
        check(g2.run(x=b)["output"], np.tanh(b.astype(np.float64) @ w), 333)
        assert counts()[0] == used + 2


def test_same_structure_other_weights(tmp_path):
    # Plans of one structure over other weights share their kernels (the kernel cache keys types),
    # never their packing: interleaved runs each give their own weights' product.
    rng = np.random.default_rng(seed_of("other-weights"))
    graphs, weights = [], []
    for i in range(3):
        y, w, bias = model(6, 260, 40, seed_of("other-weights", i), epilogue=True)
        y.build(tmp_path / f"{i}.nef")
        graphs.append(nef.load(tmp_path / f"{i}.nef"))
        weights.append((w, bias))
    for _ in range(2):
        for g, (w, bias) in zip(graphs, weights):
            xv = rng.uniform(-1, 1, (6, 260)).astype(np.float32)
            used, fell = counts()
            check(g.run(x=xv)["output"], reference(xv, w, bias), 260)
            assert counts() == (used + 1, fell)


@pytest.mark.parametrize("target_name", ["avx2", None])
def test_both_tile_families(tmp_path, target, target_name):
    target(target_name)
    y, w, bias = model(38, 1024, 3100, seed_of("family", target_name), epilogue=True)
    path = tmp_path / "g.nef"
    y.build(path)
    g = nef.load(path)
    xv = np.random.default_rng(8).uniform(-1, 1, (38, 1024)).astype(np.float32)
    used, fell = counts()
    check(g.run(x=xv)["output"], reference(xv, w, bias), 1024)
    assert counts() == (used + 1, fell)


@pytest.mark.parametrize("target_name", [None, "avx2", "generic"])
@pytest.mark.parametrize("m,k,n,zero_points,transposed", [
    (1, 257, 33, True, False),
    (3, 1000, 70, False, False),
    (7, 130, 17, True, True),
])
def test_matmul_integer_prepacked(tmp_path, target, target_name, m, k, n, zero_points,
                                  transposed):
    # matmul_integer's constant int8 B packed once per plan, in the format of the ISA the kernel
    # runs (byte panels with VNNI, int16 panels with the zero point subtracted elsewhere; the
    # target is fixed when the plan is built, so each load runs in one setting). Exact.
    target(target_name)
    rng = np.random.default_rng(seed_of("integer", m, k, n, zero_points, transposed))
    x = nef.placeholder("x", (m, k), nef.uint8)
    if transposed:
        wt = rng.integers(-128, 128, (n, k)).astype(np.int8)
        w, wc = wt.T, nef.tensor(wt).T
    else:
        w = rng.integers(-128, 128, (k, n)).astype(np.int8)
        wc = nef.tensor(w)
    za = np.uint8(rng.integers(0, 256)) if zero_points else np.uint8(0)
    zb = rng.integers(-128, 128, (n,)).astype(np.int8) if zero_points else np.zeros(n, np.int8)
    if zero_points:
        y = nef.matmul_integer(x, wc, nef.tensor(za), nef.tensor(zb))
    else:
        y = nef.matmul_integer(x, wc)
    path = tmp_path / "q.nef"
    y.build(path)
    g = nef.load(path)
    for _ in range(2):
        xv = rng.integers(0, 256, (m, k)).astype(np.uint8)
        used, fell = counts()
        got = np.asarray(g.run(x=xv)["output"])
        assert counts() == (used + 1, fell)
        want = (xv.astype(np.int64) - int(za)) @ (w.astype(np.int64) - zb.astype(np.int64))
        np.testing.assert_array_equal(got, want.astype(np.int32))
