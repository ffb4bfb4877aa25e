"""End-to-end tests of the `nef` command-line tool (tools/nef/).

The executable is NEF_CLI if set, else the `nef` next to sys.executable (the venv's bin, where
the Python package's build installs it). Only a missing executable skips these tests. Graph
files are built with the Python API in tmp_path; results are checked against float64 numpy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _find_cli() -> str | None:
    env = os.environ.get("NEF_CLI")
    if env:
        return env  # explicitly chosen: a wrong path must fail, not skip
    cand = Path(sys.executable).parent / "nef"
    if cand.is_file() and os.access(cand, os.X_OK):
        return str(cand)
    return None


CLI = _find_cli()
pytestmark = pytest.mark.skipif(CLI is None, reason="the nef executable was not found "
                                "(set NEF_CLI or install the package into this venv)")


def run_cli(*args, cwd=None, env_extra=None, timeout=120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["NEF_DEVICES"] = "cpu"  # deterministic plans; tests of other devices pass their own
    if env_extra:
        env.update(env_extra)
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def assert_ok(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"


def assert_error(r: subprocess.CompletedProcess, type_name: str, *fragments: str) -> str:
    """Exit 1 and exactly one stderr line "nef: <type_name>: <message>"; returns the message."""
    assert r.returncode == 1, f"rc={r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{r.stderr}"
    prefix = f"nef: {type_name}: "
    assert lines[0].startswith(prefix), lines[0]
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0][len(prefix):]


def assert_usage(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 2, f"rc={r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert r.stderr.strip(), "a usage error must say what is wrong"
    assert "Traceback" not in r.stderr and "terminate called" not in r.stderr


def rng_for(seed: int) -> np.random.Generator:
    print(f"seed={seed}")
    return np.random.default_rng(seed)


# ---- graphs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nef_api():
    import nef  # the Python package must import wherever the CLI is installed
    return nef


@pytest.fixture
def affine(nef_api, tmp_path):
    """exp(x @ w + b) with x a (3, 5) float32 placeholder, w (5, 4) and b (4,) constants."""
    nef = nef_api
    rng = rng_for(1234)
    w = rng.uniform(-1, 1, (5, 4)).astype(np.float32)
    b = rng.uniform(-1, 1, (4,)).astype(np.float32)
    x = nef.placeholder("x", (3, 5), nef.float32)
    y = (x @ nef.tensor(w) + nef.tensor(b)).exp()
    path = tmp_path / "affine.nef"
    y.build(path)

    def reference(xv):
        return np.exp(xv.astype(np.float64) @ w.astype(np.float64) + b.astype(np.float64))

    return path, reference


@pytest.fixture
def garbage_nef(tmp_path):
    p = tmp_path / "garbage.nef"
    p.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return p


def save(tmp_path: Path, name: str, arr: np.ndarray) -> Path:
    p = tmp_path / f"{name}.npy"
    np.save(p, arr)
    return p


# ---- run ----------------------------------------------------------------------------------


def test_run_matches_numpy(affine, tmp_path):
    path, reference = affine
    xv = rng_for(42).uniform(-1, 1, (3, 5)).astype(np.float32)
    out_dir = tmp_path / "out" / "nested"  # created by the tool
    r = run_cli("run", path, "--input", f"x={save(tmp_path, 'x', xv)}", "--output", out_dir)
    assert_ok(r)
    got = np.load(out_dir / "output.npy")
    assert got.shape == (3, 4) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference(xv), rtol=1e-5, atol=1e-6)
    # The summary names the output, its shape and dtype, and min/max/mean.
    assert "output" in r.stdout and "(3, 4)" in r.stdout and "float32" in r.stdout
    assert "min" in r.stdout and "max" in r.stdout and "mean" in r.stdout


def test_run_broadcast_odd_sizes(nef_api, tmp_path):
    nef = nef_api
    a = nef.placeholder("a", (2, 3, 7), nef.float32)
    b = nef.placeholder("b", (7,), nef.float32)
    (a * b - a / 2.0).build(tmp_path / "bc.nef")
    rng = rng_for(99)
    av = rng.normal(size=(2, 3, 7)).astype(np.float32)
    bv = rng.normal(size=(7,)).astype(np.float32)
    r = run_cli("run", tmp_path / "bc.nef", "-i", f"a={save(tmp_path, 'a', av)}",
                "-i", f"b={save(tmp_path, 'b', bv)}", "-o", tmp_path)
    assert_ok(r)
    a64, b64 = av.astype(np.float64), bv.astype(np.float64)
    np.testing.assert_allclose(np.load(tmp_path / "output.npy"), a64 * b64 - a64 / 2,
                               rtol=1e-6, atol=1e-6)


def test_run_zero_size_and_scalar(nef_api, tmp_path):
    nef = nef_api
    z = nef.placeholder("z", (0, 3), nef.float32)
    (z + 1.0).build(tmp_path / "zero.nef")
    r = run_cli("run", tmp_path / "zero.nef", "--input",
                f"z={save(tmp_path, 'z', np.zeros((0, 3), np.float32))}", "--output", tmp_path)
    assert_ok(r)
    got = np.load(tmp_path / "output.npy")
    assert got.shape == (0, 3) and got.dtype == np.float32
    assert "(0, 3)" in r.stdout

    s = nef.placeholder("s", (), nef.float32)
    (s * 3.0 + 0.5).build(tmp_path / "scalar.nef")
    sv = np.array(rng_for(5).normal(), dtype=np.float32)
    r = run_cli("run", tmp_path / "scalar.nef", "--input", f"s={save(tmp_path, 's', sv)}",
                "--output", tmp_path / "s_out")
    assert_ok(r)
    got = np.load(tmp_path / "s_out" / "output.npy")
    assert got.shape == ()
    np.testing.assert_allclose(got, float(sv) * 3.0 + 0.5, rtol=1e-6)


def test_run_view_output_and_int_dtype(nef_api, tmp_path):
    # A transpose output is a strided view of the input: summary and .npy must follow strides.
    nef = nef_api
    x = nef.placeholder("x", (3, 5), nef.int32)
    x.T.build(tmp_path / "t.nef")
    xv = rng_for(11).integers(-100, 100, (3, 5)).astype(np.int32)
    r = run_cli("run", tmp_path / "t.nef", "-i", f"x={save(tmp_path, 'x', xv)}", "-o", tmp_path)
    assert_ok(r)
    got = np.load(tmp_path / "output.npy")
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, xv.T)
    assert f"min {xv.min()}  max {xv.max()}" in r.stdout


def test_run_default_output_dir_is_cwd(affine, tmp_path):
    path, reference = affine
    xv = rng_for(3).uniform(-1, 1, (3, 5)).astype(np.float32)
    x_file = save(tmp_path, "x", xv)
    work = tmp_path / "work"
    work.mkdir()
    assert_ok(run_cli("run", path, "--input", f"x={x_file}", cwd=work))
    np.testing.assert_allclose(np.load(work / "output.npy"), reference(xv), rtol=1e-5, atol=1e-6)


def test_run_plan_and_timing(affine, tmp_path):
    path, _ = affine
    x_file = save(tmp_path, "x", np.ones((3, 5), np.float32))
    r = run_cli("run", path, "--input", f"x={x_file}", "-o", tmp_path, "--plan", "--timing",
                "--repeat", "3")
    assert_ok(r)
    assert "matmul" in r.stdout and "cpu" in r.stdout
    assert "load" in r.stdout and "first run" in r.stdout and "warm run median (2 runs)" in r.stdout
    assert_usage(run_cli("run", path, "--input", f"x={x_file}", "--repeat", "0"))


def test_run_devices(affine, tmp_path):
    path, reference = affine
    xv = np.full((3, 5), 0.25, np.float32)
    x_file = save(tmp_path, "x", xv)
    assert_ok(run_cli("run", path, "--input", f"x={x_file}", "-o", tmp_path, "--device", "cpu"))
    np.testing.assert_allclose(np.load(tmp_path / "output.npy"), reference(xv), rtol=1e-5)
    assert_ok(run_cli("run", path, "--input", f"x={x_file}", "-o", tmp_path,
                      env_extra={"NEF_DEVICES": "cpu"}))
    assert_usage(run_cli("run", path, "--input", f"x={x_file}", "--device", "gpu"))
    assert_error(run_cli("run", path, "--input", f"x={x_file}", "-o", tmp_path,
                         env_extra={"NEF_DEVICES": "cpu,quantum"}), "NEFDeviceError", "quantum")


def test_run_missing_file(tmp_path):
    r = run_cli("run", tmp_path / "nope.nef")
    assert_error(r, "NEFError", "nope.nef")


def test_run_garbage_and_truncated_nef(affine, garbage_nef, tmp_path):
    assert_error(run_cli("run", garbage_nef), "NEFFormatError")
    path, _ = affine
    data = path.read_bytes()
    for cut in (0, 7, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.nef"
        bad.write_bytes(data[:cut])
        assert_error(run_cli("run", bad), "NEFFormatError")


def test_run_missing_input(affine):
    path, _ = affine
    assert_error(run_cli("run", path), "NEFValidationError", "'x'")


def test_run_unknown_input_name(affine, tmp_path):
    path, _ = affine
    x_file = save(tmp_path, "x", np.ones((3, 5), np.float32))
    assert_error(run_cli("run", path, "--input", f"x={x_file}", "--input", f"y={x_file}"),
                 "NEFValidationError", "'y'")


def test_run_wrong_shape_and_dtype(affine, tmp_path):
    path, _ = affine
    bad_shape = save(tmp_path, "bad_shape", np.ones((5, 3), np.float32))
    assert_error(run_cli("run", path, "--input", f"x={bad_shape}"), "NEFShapeError", "(5, 3)",
                 "(3, 5)")
    bad_dtype = save(tmp_path, "bad_dtype", np.ones((3, 5), np.float64))
    assert_error(run_cli("run", path, "--input", f"x={bad_dtype}"), "NEFTypeError", "float64")


def test_run_bad_npy(affine, tmp_path):
    path, _ = affine
    good = save(tmp_path, "good", np.ones((3, 5), np.float32)).read_bytes()
    cases = {
        "truncated_data": good[:-4],
        "truncated_header": good[:20],
        "garbage_header": b"\x93NUMPY\x01\x00\x20\x00{'descr': <f4, 'shape': (((( }\n",
        "not_npy": b"hello, this is not a numpy file\n" * 4,
        "empty": b"",
    }
    for name, data in cases.items():
        f = tmp_path / f"{name}.npy"
        f.write_bytes(data)
        assert_error(run_cli("run", path, "--input", f"x={f}"), "NEFFormatError")
    assert_error(run_cli("run", path, "--input", f"x={tmp_path / 'absent.npy'}"), "NEFError",
                 "absent.npy")


def test_run_bad_input_syntax(affine):
    path, _ = affine
    for spec in ("x", "=x.npy", "x="):
        assert_usage(run_cli("run", path, "--input", spec))


def test_usage_errors(affine):
    path, _ = affine
    assert_usage(run_cli("frobnicate"))
    assert_usage(run_cli())
    assert_usage(run_cli("run"))  # FILE is required
    assert_usage(run_cli("run", path, "--no-such-option"))
    assert_usage(run_cli("inspect", path, "--json", "--dot"))


def test_version_and_help():
    r = run_cli("--version")
    assert_ok(r)
    assert r.stdout.startswith("nef ")
    r = run_cli("--help")
    assert_ok(r)
    for word in ("run", "inspect", "devices"):
        assert word in r.stdout
    r = run_cli("run", "--help")
    assert_ok(r)
    assert "--input" in r.stdout and "--plan" in r.stdout


# ---- inspect ------------------------------------------------------------------------------


def test_inspect_table(affine):
    path, _ = affine
    r = run_cli("inspect", path)
    assert_ok(r)
    for word in ("matmul", "exp", "constant", "input", "(3, 5)", "(5, 4)", "float32", "totals"):
        assert word in r.stdout, word
    assert "parameters (constant elements): 24" in r.stdout  # w (5x4) + b (4)
    assert "constant bytes: 96 B" in r.stdout


def test_inspect_json(affine):
    path, _ = affine
    r = run_cli("inspect", path, "--json")
    assert_ok(r)
    header = json.loads(r.stdout)
    assert header["nef_format"] == "graph-v1"
    ops = [n["op"] for n in header["graph"]["nodes"]]
    assert "matmul" in ops and "exp" in ops


def test_inspect_dot(affine):
    path, _ = affine
    r = run_cli("inspect", path, "--dot")
    assert_ok(r)
    text = r.stdout.strip()
    assert text.startswith("digraph")
    assert text.endswith("}")
    assert "->" in text and "matmul" in text and "output" in text


def test_inspect_errors(garbage_nef, tmp_path):
    for form in ((), ("--json",), ("--dot",)):
        assert_error(run_cli("inspect", garbage_nef, *form), "NEFFormatError")
        assert_error(run_cli("inspect", tmp_path / "missing.nef", *form), "NEFError")


# ---- inspect: passes, plan, memory ----------------------------------------------------------


@pytest.fixture
def chain(nef_api, tmp_path):
    """tanh(a*b+c)*d - exp(-a) over four (4, 7) float32 placeholders: one fused kernel."""
    nef = nef_api
    a, b, c, d = (nef.placeholder(n, (4, 7), nef.float32) for n in "abcd")
    path = tmp_path / "chain.nef"
    (nef.tanh(a * b + c) * d - nef.exp(-a)).build(path)
    return path


@pytest.fixture
def hand_softmax(nef_api, tmp_path):
    """softmax written numpy-style over a (3, 5) placeholder: one softmax row kernel."""
    nef = nef_api
    x = nef.placeholder("x", (3, 5), nef.float32)
    e = nef.exp(x - x.max(axis=-1, keepdims=True))
    path = tmp_path / "softmax.nef"
    (e / e.sum(axis=-1, keepdims=True)).build(path)
    return path


@pytest.fixture
def mlp(nef_api, tmp_path):
    """softmax(exp(relu(x @ w1) @ w2) @ w3) with odd sizes: intermediates the arena can reuse."""
    nef = nef_api
    rng = rng_for(4321)
    ws = [rng.uniform(-1, 1, s).astype(np.float32) for s in ((9, 13), (13, 7), (7, 5))]
    x = nef.placeholder("x", (6, 9), nef.float32)
    h = nef.relu(x @ nef.tensor(ws[0]))
    y = nef.softmax(nef.exp(h @ nef.tensor(ws[1])) @ nef.tensor(ws[2]))
    path = tmp_path / "mlp.nef"
    y.build(path)

    def reference(xv):
        h = np.maximum(xv.astype(np.float64) @ ws[0].astype(np.float64), 0)
        z = np.exp(h @ ws[1].astype(np.float64)) @ ws[2].astype(np.float64)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    return path, reference


def plan_json(path) -> dict:
    r = run_cli("inspect", path, "--plan", "--json")
    assert_ok(r)
    return json.loads(r.stdout)


def test_inspect_passes(chain):
    r = run_cli("inspect", chain, "--passes")
    assert_ok(r)
    out = r.stdout
    assert out.startswith("--- as loaded")
    for name in ("dce", "simplify", "patterns", "cse", "constant_folding", "fuse_elementwise"):
        assert f"--- after {name} ---" in out, name
    # The last dump is the optimized graph: the chain became one fused_elementwise node.
    last = out.rsplit("--- after ", 1)[1]
    assert "fused_elementwise" in last and "tanh" in last and "exp" in last
    assert "%5 = tanh" not in last
    r = run_cli("inspect", chain, "--passes", "--json")
    assert_ok(r)
    dumps = json.loads(r.stdout)
    assert dumps[0]["pass"] == "input" and "tanh(" in dumps[0]["ir"]
    assert [d["pass"] for d in dumps][1:].count("fuse_elementwise") == 1
    assert "fused_elementwise" in dumps[-1]["ir"]


def test_inspect_plan_fused_chain(chain):
    plan = plan_json(chain)
    kernels = plan["kernels"]
    fused = [k for k in kernels if k["op"] == "fused_elementwise"]
    assert len(fused) == 1, kernels
    assert len(kernels) == 1, kernels  # nothing else runs: the whole chain is one kernel
    k = fused[0]
    assert k["device"] == "cpu"
    assert k["shape"] == [4, 7] and k["dtype"] == "float32"
    assert k["kernel"]
    assert sorted(k["nodes"]) == sorted(["mul", "add", "tanh", "mul", "neg", "exp", "sub"])
    assert "tanh(" in k["program"] and "exp(" in k["program"]
    mem = plan["memory"]
    assert 0 <= mem["planned_peak_bytes"] <= mem["naive_bytes"]

    r = run_cli("inspect", chain, "--plan")
    assert_ok(r)
    assert "fused_elementwise" in r.stdout and "covers" in r.stdout and "tanh" in r.stdout
    assert "on cpu" in r.stdout and "memory: planned peak" in r.stdout


def test_inspect_plan_hand_softmax(hand_softmax):
    kernels = plan_json(hand_softmax)["kernels"]
    assert [k["op"] for k in kernels] == ["softmax"], kernels
    assert kernels[0]["nodes"] == ["softmax"]
    assert kernels[0]["shape"] == [3, 5]


def test_inspect_plan_and_memory_mlp(mlp):
    path, _ = mlp
    plan = plan_json(path)
    kernels = plan["kernels"]
    ops = [k["op"] for k in kernels]
    assert ops[-1] == "softmax", ops
    # Each matmul is a kernel of its own or the head of a matmul epilogue (relu, exp fused).
    assert sum(k["nodes"].count("matmul") for k in kernels) == 3, kernels
    covered = [o for k in kernels for o in k["nodes"]]
    assert "relu" in covered and "exp" in covered, kernels
    for k in kernels:
        if k["op"] == "matmul_epilogue":
            assert k["nodes"][0] == "matmul" and len(k["nodes"]) > 1 and k["program"], k
    assert all(k["device"] == "cpu" for k in plan["kernels"])
    mem = plan["memory"]
    assert 0 < mem["planned_peak_bytes"] <= mem["naive_bytes"]
    # Every arena value lies inside its arena, at an aligned offset.
    arena = {a["device"]: a["bytes"] for a in mem["arenas"]}
    placed = [v for v in mem["values"] if "offset" in v]
    assert placed
    for v in placed:
        assert v["offset"] % 64 == 0 and v["offset"] + v["bytes"] <= arena[v["device"]]
        assert v["live_begin"] <= v["live_end"]

    r = run_cli("inspect", path, "--memory")
    assert_ok(r)
    first = r.stdout.splitlines()[0]
    nums = [int(w) for w in first.replace(",", " ").split() if w.isdigit()]
    peak, naive = nums[0], nums[1]
    assert first.startswith("memory: planned peak")
    assert (peak, naive) == (mem["planned_peak_bytes"], mem["naive_bytes"])
    assert peak <= naive
    assert "offset" in r.stdout and "size" in r.stdout and "live" in r.stdout
    r = run_cli("inspect", path, "--memory", "--json")
    assert_ok(r)
    assert json.loads(r.stdout)["planned_peak_bytes"] == peak


def test_inspect_compiled_forms_errors(chain, garbage_nef, tmp_path):
    for form in (("--passes",), ("--plan",), ("--plan", "--json"), ("--memory",)):
        assert_error(run_cli("inspect", garbage_nef, *form), "NEFFormatError")
        assert_error(run_cli("inspect", tmp_path / "missing.nef", *form), "NEFError")
    for bad in (("--plan", "--memory"), ("--passes", "--plan"), ("--dot", "--plan"),
                ("--memory", "--dot"), ("--dot", "--json")):
        assert_usage(run_cli("inspect", chain, *bad))
    assert_error(run_cli("inspect", chain, "--plan", env_extra={"NEF_DEVICES": "tpu"}),
                 "NEFDeviceError", "tpu")


def test_python_graph_plan_and_memory(nef_api, mlp, chain):
    nef = nef_api
    path, reference = mlp
    g = nef.load(path)
    mem = g.memory
    assert set(mem) == {"planned_peak_bytes", "naive_bytes"}
    assert 0 < mem["planned_peak_bytes"] <= mem["naive_bytes"]
    plan = g.plan()
    assert plan["memory"]["planned_peak_bytes"] == mem["planned_peak_bytes"]
    assert plan == plan_json(path)  # the same plan as the CLI's
    assert "planned peak" in g.describe_memory()
    # Inspecting does not disturb running: results still match float64.
    xv = rng_for(99).uniform(-1, 1, (6, 9)).astype(np.float32)
    out = g.run({"x": xv})["output"]
    np.testing.assert_allclose(out, reference(xv), rtol=1e-4, atol=1e-6)

    gc = nef.load(chain)
    kernels = gc.plan()["kernels"]
    assert [k["op"] for k in kernels] == ["fused_elementwise"]
    assert "tanh" in kernels[0]["nodes"] and "exp" in kernels[0]["nodes"]
    rng = rng_for(7)
    vals = {n: rng.uniform(-2, 2, (4, 7)).astype(np.float32) for n in "abcd"}
    v = {n: a.astype(np.float64) for n, a in vals.items()}
    want = np.tanh(v["a"] * v["b"] + v["c"]) * v["d"] - np.exp(-v["a"])
    np.testing.assert_allclose(gc.run(vals)["output"], want, rtol=1e-5, atol=1e-6)


# ---- devices ------------------------------------------------------------------------------


def test_devices():
    r = run_cli("devices", "--json")
    assert_ok(r)
    report = json.loads(r.stdout)
    assert report["devices"][0]["name"] == "cpu"
    assert report["devices"][0]["enabled"] is True
    assert report["devices"][0]["backend"] == "cpu"
    assert report["cpu"]["logical_cores"] >= 1
    assert "cpu" in report["enabled"]
    assert report["memory"]["total_bytes"] > 0
    r = run_cli("devices")
    assert_ok(r)
    assert "cpu" in r.stdout and "Cores" in r.stdout
    assert_error(run_cli("devices", env_extra={"NEF_DEVICES": "tpu"}), "NEFDeviceError", "tpu")


# ---- compile (embedded plans) -------------------------------------------------------------


def test_compile_embeds_plan_same_results(affine, tmp_path):
    path, reference = affine
    out = tmp_path / "affine_compiled.nef"
    r = run_cli("compile", path, "-o", out)
    assert_ok(r)
    assert "embedded plan" in r.stdout
    header = json.loads(run_cli("inspect", out, "--json").stdout)
    assert header["compiler_cache"] == "embedded"
    assert len(header["compiled"]["key_hash"]) == 32
    assert len(header["compiled"]["devices"]) == len(header["compiled"]["graph"]["nodes"])
    # The source graph is kept unchanged next to the plan.
    assert header["graph"] == json.loads(run_cli("inspect", path, "--json").stdout)["graph"]
    xv = rng_for(77).uniform(-1, 1, (3, 5)).astype(np.float32)
    x = save(tmp_path, "x", xv)
    for f, d in ((path, "plain"), (out, "compiled")):
        r = run_cli("run", f, "--input", f"x={x}", "--output", tmp_path / d)
        assert_ok(r)
        assert r.stderr == ""
    a = np.load(tmp_path / "plain" / "output.npy")
    b = np.load(tmp_path / "compiled" / "output.npy")
    assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(b, reference(xv), rtol=2e-6, atol=1e-6)


def test_compile_tampered_plan_warns_and_falls_back(affine, tmp_path):
    path, reference = affine
    out = tmp_path / "c.nef"
    assert_ok(run_cli("compile", path, "-o", out))
    data = bytearray(out.read_bytes())
    k = data.index(b'"key_hash": "') + len(b'"key_hash": "')
    data[k] = ord("0") if data[k] != ord("0") else ord("1")  # same length: still a valid file
    bad = tmp_path / "tampered.nef"
    bad.write_bytes(bytes(data))
    xv = rng_for(78).uniform(-1, 1, (3, 5)).astype(np.float32)
    r = run_cli("run", bad, "--input", f"x={save(tmp_path, 'x', xv)}", "--output", tmp_path / "o")
    assert_ok(r)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nef: warning: embedded plan ignored: "), r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o" / "output.npy"), reference(xv),
                               rtol=2e-6, atol=1e-6)


def test_compile_errors(garbage_nef, tmp_path):
    assert_error(run_cli("compile", tmp_path / "missing.nef", "-o", tmp_path / "o.nef"), "NEFError")
    assert_error(run_cli("compile", garbage_nef, "-o", tmp_path / "o.nef"), "NEFFormatError")
    assert_usage(run_cli("compile", garbage_nef))  # -o is required


def test_python_build_embed_plan(nef_api, tmp_path):
    nef = nef_api
    rng = rng_for(99)
    w = rng.uniform(-1, 1, (5, 4)).astype(np.float32)
    x = nef.placeholder("x", (3, 5), nef.float32)
    y = nef.tanh(x @ nef.tensor(w)) * 2.0 - nef.exp(-(x @ nef.tensor(w)))
    plain, emb, emb2 = tmp_path / "p.nef", tmp_path / "e.nef", tmp_path / "e2.nef"
    y.build(plain)
    y.build(emb, embed_plan=True)
    nef.build(emb2, {"y": y}, embed_plan=True)
    xv = rng.uniform(-1, 1, (3, 5)).astype(np.float32)
    before = nef.stats()["embedded_plans_used"]
    g = nef.load(emb)
    assert nef.stats()["embedded_plans_used"] == before + 1
    got = g.run(x=xv)["output"]
    assert nef.load(emb2).run(x=xv)["y"].tobytes() == np.asarray(got).tobytes()
    assert nef.stats()["embedded_plans_used"] == before + 2
    want = nef.load(plain).run(x=xv)["output"]
    assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    h = np.tanh(xv.astype(np.float64) @ w.astype(np.float64))
    ref = h * 2.0 - np.exp(-(xv.astype(np.float64) @ w.astype(np.float64)))
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-5)
