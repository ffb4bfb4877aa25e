"""The float GEMM's instruction-set kernels (kernels/gemm_f32.h) and its thread splits.

float32 products run AVX-512 intrinsics (14- or 8-row tiles of 32 columns), AVX2 intrinsics
(6 x 16, NEF_CPU_TARGET=avx2) or the portable kernel (NEF_CPU_TARGET=generic, and float64);
with several threads and few row blocks the product is split into column groups (matmul.cpp's
gemm_groups). Each path against numpy float64: sizes around the tile edges (rows 1, 13-15, 8-9,
6-7; columns around 16 and 32; K around the 512-row K block), several row blocks and column
groups, strided and transposed operands, K = 0, empty products, a prepacked constant B under the
column groups, and the fused epilogue's tile hook, at 1 and 2 threads.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import nef
from conftest import seed_of

TARGETS = [None, "avx2", "generic"]


@pytest.fixture(autouse=True)
def cpu_only():
    threads = nef.config()["threads"]
    old = os.environ.get("NEF_CPU_TARGET")
    nef.config(devices=["cpu"])
    yield
    nef.config(devices=[], threads=threads)
    if old is None:
        os.environ.pop("NEF_CPU_TARGET", None)
    else:
        os.environ["NEF_CPU_TARGET"] = old


def use(target, threads):
    if target is None:
        os.environ.pop("NEF_CPU_TARGET", None)
    else:
        os.environ["NEF_CPU_TARGET"] = target
    nef.config(threads=threads)


def check(got, want, k, dtype=np.float32):
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, rtol=tol,
                               atol=tol * 2 * np.sqrt(max(k, 1)))


SHAPES = [
    (1, 1, 1),
    (1, 257, 33),
    (13, 255, 31),
    (14, 256, 32),
    (15, 257, 17),
    (9, 100, 65),
    (7, 513, 47),
    (3, 1024, 5),
    (2, 1025, 50),
    (29, 384, 96),
    (128, 384, 384),    # MiniLM's attention projections
    (197, 300, 97),     # two row blocks
    (300, 520, 700),    # column groups at 2 threads
    (421, 77, 1090),
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_float32_matches_float64(target, threads, m, k, n):
    use(target, threads)
    rng = np.random.default_rng(seed_of("gemm32", m, k, n))
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    got = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
    assert got.dtype == np.float32 and got.shape == (m, n)
    check(got, a.astype(np.float64) @ b.astype(np.float64), k)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m,k,n", [(15, 257, 33), (300, 520, 700)])
def test_float64(target, threads, m, k, n):
    use(target, threads)
    rng = np.random.default_rng(seed_of("gemm64", m, k, n))
    a, b = rng.uniform(-1, 1, (m, k)), rng.uniform(-1, 1, (k, n))
    got = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
    assert got.dtype == np.float64
    check(got, a @ b, k, np.float64)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("threads", [1, 2])
def test_strided_and_transposed(target, threads):
    use(target, threads)
    rng = np.random.default_rng(seed_of("gemm_strided", target, threads))
    big_a = rng.uniform(-1, 1, (2 * 301, 3 * 530)).astype(np.float32)
    a = big_a[::2, 1::3][:, :523]               # [301, 523], both strides > 1
    bt = rng.uniform(-1, 1, (650, 523)).astype(np.float32)   # B = bt.T: column stride K
    want = a.astype(np.float64) @ bt.T.astype(np.float64)
    got = nef.matmul(nef.tensor(a), nef.tensor(bt).T).numpy()
    check(got, want, 523)
    # A transposed inside the graph: [523, 301].T
    at = np.ascontiguousarray(a.T)
    got = nef.matmul(nef.tensor(at).T, nef.tensor(bt).T).numpy()
    check(got, want, 523)


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_and_broadcast(threads):
    use(None, threads)
    rng = np.random.default_rng(seed_of("gemm_batch", threads))
    a = rng.uniform(-1, 1, (3, 1, 37, 129)).astype(np.float32)
    b = rng.uniform(-1, 1, (4, 129, 45)).astype(np.float32)
    got = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
    check(got, a.astype(np.float64) @ b.astype(np.float64), 129)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("threads", [1, 2])
def test_k_zero_and_empty(target, threads):
    use(target, threads)
    a = np.ones((5, 0), np.float32)
    b = np.ones((0, 7), np.float32)
    got = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
    assert got.shape == (5, 7) and np.all(got == 0)
    got = nef.matmul(nef.tensor(np.ones((0, 4), np.float32)),
                     nef.tensor(np.ones((4, 9), np.float32))).numpy()
    assert got.shape == (0, 9)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("m,k,n", [(300, 777, 650), (700, 600, 500)])
def test_deterministic_at_two_threads(target, m, k, n):
    """Column groups (300 rows) and row blocks whose items threads take from each other
    (700 rows): which thread runs an item varies from run to run, the result must not."""
    use(target, 2)
    rng = np.random.default_rng(seed_of("gemm_det", target, m))
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    first = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
    for _ in range(3):
        assert np.array_equal(nef.matmul(nef.tensor(a), nef.tensor(b)).numpy(), first)
    nef.config(threads=1)
    check(first, a.astype(np.float64) @ b.astype(np.float64), k)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("m,k,n", [(256, 256, 256), (257, 129, 1000), (1011, 1030, 333),
                                   (2000, 40, 70), (200, 21000, 40)])
def test_row_blocks_shared_out(target, threads, m, k, n):
    """Products with many row blocks: the rows are dealt out as whole tiles (256 rows: 126 + 130
    at 14-row tiles), the columns of each block split into items that threads walk in order and
    take from each other's ends; several K blocks accumulate into each item's tiles. The B panel
    (and, for few row blocks with an A too large for the column groups: 200 x 21000, the shared
    A blocks) is packed inside the items' region by whichever threads get there."""
    use(target, threads)
    rng = np.random.default_rng(seed_of("gemm_rows", m, k, n))
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    got = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
    check(got, a.astype(np.float64) @ b.astype(np.float64), k)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("m,k,n", [(300, 520, 700), (29, 1030, 3100), (700, 300, 130)])
def test_prepacked_constant_and_epilogue(tmp_path, target, threads, m, k, n):
    """x @ constant W + bias -> gelu: one matmul_epilogue whose tile hook runs per finished tile,
    reading W packed at plan time (under the column groups at 2 threads)."""
    use(target, threads)
    rng = np.random.default_rng(seed_of("gemm_epi", m, k, n))
    w = rng.uniform(-1, 1, (k, n)).astype(np.float32) / np.sqrt(k)
    bias = rng.uniform(-1, 1, (n,)).astype(np.float32)
    x = nef.placeholder("x", (m, k), nef.float32)
    y = nef.gelu(x @ nef.tensor(w) + nef.tensor(bias), approximate="tanh")
    path = tmp_path / "g.nef"
    y.build(path)
    g = nef.load(path)
    for _ in range(2):
        xv = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        h = xv.astype(np.float64) @ w.astype(np.float64) + bias
        want = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
        check(g.run(x=xv)["output"], want, k)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("threads", [1, 2])
def test_bfloat16_inputs(target, threads):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    use(target, threads)
    rng = np.random.default_rng(seed_of("gemm_bf16", target, threads))
    a = rng.uniform(-1, 1, (45, 300)).astype(ml_dtypes.bfloat16)
    b = rng.uniform(-1, 1, (300, 70)).astype(ml_dtypes.bfloat16)
    got = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
    assert got.dtype == ml_dtypes.bfloat16
    want = a.astype(np.float64) @ b.astype(np.float64)
    # float32 sums, one bfloat16 rounding of the output (2^-8 relative).
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=8e-3, atol=1e-3 * np.sqrt(300))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("m,k,n", [(300, 520, 700), (29, 1030, 3100), (1000, 333, 4000)])
def test_three_threads(target, m, k, n):
    """More threads than cores: other row-block and column-group counts (and a second kNC block)."""
    use(target, 3)
    rng = np.random.default_rng(seed_of("gemm3", m, k, n))
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    got = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
    check(got, a.astype(np.float64) @ b.astype(np.float64), k)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("m,k,n,dtype", [(128, 384, 384, np.float32), (100, 70, 200, np.float32),
                                         (300, 520, 700, np.float32), (61, 90, 77, np.float64)])
def test_epilogue_on_narrow_tiles(tmp_path, target, threads, m, k, n, dtype):
    """(x @ W + bias) * row_scale + residual - 0.5 fused into one matmul_epilogue: at 2+ threads
    the column groups hand the epilogue tiles of one or a few slivers (16-32 columns), whose
    rows it gathers into whole blocks; each extra operand (per column, per row, full, scalar)
    must land on its own element, and every tile exactly once."""
    use(target, threads)
    rng = np.random.default_rng(seed_of("gemm_epi_narrow", m, k, n))
    w = rng.uniform(-1, 1, (k, n)).astype(dtype)
    bias = rng.uniform(-1, 1, (n,)).astype(dtype)
    x = nef.placeholder("x", (m, k), dtype)
    rs = nef.placeholder("rs", (m, 1), dtype)
    res = nef.placeholder("res", (m, n), dtype)
    y = (x @ nef.tensor(w) + nef.tensor(bias)) * rs + res - 0.5
    path = tmp_path / "g.nef"
    y.build(path)
    g = nef.load(path)
    assert any(kern["op"] == "matmul_epilogue" for kern in g.plan()["kernels"])
    for _ in range(2):
        xv = rng.uniform(-1, 1, (m, k)).astype(dtype)
        rv = rng.uniform(-2, 2, (m, 1)).astype(dtype)
        resv = rng.uniform(-1, 1, (m, n)).astype(dtype)
        want = (xv.astype(np.float64) @ w.astype(np.float64) + bias) * rv + resv - 0.5
        check(g.run(x=xv, rs=rv, res=resv)["output"], want, 2 * k, dtype)
