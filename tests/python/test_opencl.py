"""OpenCL from the user's side (PoCL in CI): the device in `nef devices`, forced and hinted
placement through the Python API, .nef files and the CLI, results left on the device until read,
probe failures (a missing library, a broken ICD) that only disable OpenCL, and the on-disk program
cache detecting tampered entries. Skipped where no OpenCL device exists."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nef

HAS_OPENCL = any(d["backend"] == "opencl" for d in nef.devices()["devices"])
pytestmark = pytest.mark.skipif(not HAS_OPENCL, reason="no OpenCL device on this machine")
CLI = str(Path(sys.executable).parent / "nef")
RNG = np.random.default_rng()


@pytest.fixture(autouse=True)
def _restore_devices():
    yield
    nef.config(devices=[])


def run(args, env_extra=None, **kw):
    env = dict(os.environ)
    env.pop("NEF_DEVICES", None)
    env.update(env_extra or {})
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, **kw)


def python(code, env_extra=None):
    return run([sys.executable, "-c", code], env_extra)


def test_device_report_lists_opencl_with_capabilities():
    r = run([CLI, "devices", "--json"])
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    cl = [d for d in rep["devices"] if d["backend"] == "opencl"]
    assert cl and cl[0]["name"] == "opencl:0"
    d = cl[0]
    assert d["compute_units"] > 0 and d["memory_bytes"] > 0 and d["max_alloc_bytes"] > 0
    assert "OpenCL C" in d["api_version"]
    assert isinstance(d["fp16"], bool) and isinstance(d["fp64"], bool)
    # PoCL's device runs on the host's own cores: listed, but not enabled by default (auto);
    # enabled when named or with "all".
    assert d["kind"] == "cpu" and "opencl:0" not in rep["enabled"]
    for names in ("opencl", "all", "cpu,opencl:0"):
        named = json.loads(run([CLI, "devices", "--json"], {"NEF_DEVICES": names}).stdout)
        assert "opencl:0" in named["enabled"], names
    text = run([CLI, "devices"]).stdout
    assert "opencl:0" in text and "fp64" in text


def test_forced_placement_matches_numpy_and_results_stay_on_the_device():
    a = RNG.standard_normal((37, 53)).astype(np.float32)
    nef.config(devices=["opencl"])
    x = nef.tensor(a)
    y = nef.tanh(x.T * 2.0) + nef.exp(-nef.abs(x.T))
    y.execute()
    assert y.device == "opencl:0"
    np.testing.assert_allclose(y.numpy(), np.tanh(a.T * 2) + np.exp(-np.abs(a.T)), rtol=1e-5,
                               atol=1e-6)
    assert y.device == "cpu"  # read: brought to the host once


@pytest.mark.parametrize("dtype", ["int16", "uint16", "uint32", "uint64"])
def test_dtypes_without_opencl_kernels_stay_on_the_cpu(dtype):
    # The renderer has no int16/unsigned kernels: even with only OpenCL enabled and a hint,
    # the planner keeps those nodes on the CPU (the capability query), with numpy's wrapping.
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, (7, 9), dtype=dtype, endpoint=True)
    b = RNG.integers(info.min, info.max, (9,), dtype=dtype, endpoint=True)
    nef.config(devices=["opencl"])
    with nef.device("opencl"):
        y = nef.tensor(a) * nef.tensor(b) + nef.tensor(a)
    y.execute()
    assert y.device == "cpu"
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(y.numpy(), a * b + a)


def test_hints_and_device_scope():
    a = RNG.standard_normal((8, 9)).astype(np.float32)
    nef.config(devices=["opencl", "cpu"])
    with nef.device("opencl"):
        u = nef.exp(nef.tensor(a))
    v = nef.tanh(nef.tensor(a)).prefer("cpu")
    assert u.device_hint == "opencl" and v.device_hint == "cpu"
    nef.evaluate(u, v)
    assert u.device == "opencl:0" and v.device == "cpu"
    np.testing.assert_allclose(u.numpy(), np.exp(a), rtol=1e-6)


def test_nef_file_preferred_device_and_cli_plan(tmp_path):
    a = RNG.standard_normal((16, 24)).astype(np.float32)
    x = nef.placeholder("x", a.shape, nef.float32)
    with nef.device("opencl"):
        y = nef.sigmoid(x * 3.0) - x
    nef.build(tmp_path / "m.nef", y)
    header = (tmp_path / "m.nef").read_bytes()[32:].split(b"\0")[0]
    assert b'"preferred_device": "opencl"' in header
    np.save(tmp_path / "x.npy", a)
    # The default (auto) leaves PoCL's host-core device out, so the hint cannot be followed...
    r = run([CLI, "run", tmp_path / "m.nef", "--input", f"x={tmp_path / 'x.npy'}", "--output",
             tmp_path / "out", "--plan"])
    assert r.returncode == 0, r.stderr
    assert "on opencl:0" not in r.stdout and "hint 'opencl' unavailable" in r.stdout, r.stdout
    # ...and with every device enabled it is.
    r = run([CLI, "run", tmp_path / "m.nef", "--input", f"x={tmp_path / 'x.npy'}", "--output",
             tmp_path / "out", "--plan"], {"NEF_DEVICES": "all"})
    assert r.returncode == 0, r.stderr
    assert "on opencl:0" in r.stdout and "device hint 'opencl'" in r.stdout, r.stdout
    assert "copy" in r.stdout  # the input crosses to the device
    out = np.load(tmp_path / "out" / "output.npy")
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-3 * a)) - a, rtol=1e-5, atol=1e-6)
    plan = json.loads(run([CLI, "inspect", tmp_path / "m.nef", "--plan", "--json"],
                          {"NEF_DEVICES": "all"}).stdout)
    assert {k["device"] for k in plan["kernels"]} >= {"opencl:0"}
    assert plan["transfers"] and all(t["to"] == "opencl:0" for t in plan["transfers"])


def test_missing_library_disables_opencl_only(tmp_path):
    env = {"NEF_OPENCL_LIBRARY": str(tmp_path / "libOpenCL.so.1"), "NEF_DEBUG": "1"}
    r = run([CLI, "devices", "--json"], env)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [d["name"] for d in rep["devices"]] == ["cpu"]
    assert rep["problems"][0]["backend"] == "opencl" and "cannot load" in rep["problems"][0]["reason"]
    assert "debug: backend opencl disabled" in r.stderr
    # Asking for OpenCL then runs on the CPU, with one warning.
    r = python("import nef, numpy as np; nef.config(devices=['opencl']);"
               "print(float(nef.exp(nef.tensor(np.ones(3, np.float32))).sum().numpy()))", env)
    assert r.returncode == 0, r.stderr
    assert abs(float(r.stdout) - 3 * np.e) < 1e-5
    assert "not present here" in r.stderr


def test_broken_icd_is_skipped(tmp_path):
    vendors = Path("/etc/OpenCL/vendors")
    good = sorted(vendors.glob("*.icd")) if vendors.is_dir() else []
    if not good:
        pytest.skip("no system ICD files to combine with a broken one")
    (tmp_path / "broken.icd").write_text(str(tmp_path / "missing" / "libbroken.so") + "\n")
    for f in good:
        shutil.copy(f, tmp_path / f.name)
    r = run([CLI, "devices", "--json"], {"OCL_ICD_VENDORS": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "opencl:0" in [d["name"] for d in json.loads(r.stdout)["devices"]]
    # Only the broken one: no platform, OpenCL disabled with its reason, the CPU still works.
    for f in good:
        (tmp_path / f.name).unlink()
    r = run([CLI, "devices", "--json"], {"OCL_ICD_VENDORS": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [d["name"] for d in rep["devices"]] == ["cpu"]
    assert rep["problems"] and rep["problems"][0]["backend"] == "opencl"


PROGRAM = ("import nef, numpy as np; nef.config(devices=['opencl']);"
           "a = np.arange(12, dtype=np.float32).reshape(3, 4);"
           "print(repr(nef.{op}(nef.tensor(a) * 0.5).numpy().tolist()))")


def test_program_cache_detects_tampering(tmp_path):
    env = {"NEF_CACHE_DIR": str(tmp_path / "cache"), "NEF_DEBUG": "1"}
    want = repr(np.tanh(np.arange(12, dtype=np.float32).reshape(3, 4) * np.float32(0.5)).tolist())

    def check(expect_in_stderr=None):
        r = python(PROGRAM.format(op="tanh"), env)
        assert r.returncode == 0, r.stderr
        got = np.array(eval(r.stdout))
        np.testing.assert_allclose(got, np.array(eval(want)), rtol=1e-6)
        if expect_in_stderr:
            assert expect_in_stderr in r.stderr, r.stderr
        return r

    first = check()
    assert "built a program" in first.stderr  # cold: compiled from source
    entries = sorted((tmp_path / "cache" / "opencl").glob("*.bin"))
    assert entries
    warm = check()
    assert "built a program" not in warm.stderr  # warm: the cached binary, checked, was used
    # A second program's entry, to plant under the first one's name (a foreign file).
    check_other = python(PROGRAM.format(op="exp"), env)
    assert check_other.returncode == 0
    others = [p for p in sorted((tmp_path / "cache" / "opencl").glob("*.bin")) if p not in entries]
    assert others
    target = entries[0]
    original = target.read_bytes()
    for name, tampered in [("truncated", original[: len(original) // 2]),
                           ("edited", original[:-1] + bytes([original[-1] ^ 0x5A])),
                           ("foreign", others[0].read_bytes()),
                           ("empty", b"")]:
        target.write_bytes(tampered)
        r = check()
        assert "built a program" in r.stderr, (name, r.stderr)  # rebuilt from NEF's source
        assert ("damaged" in r.stderr or "not an entry" in r.stderr
                or "did not load" in r.stderr or name == "empty"), (name, r.stderr)
        assert target.read_bytes() == original or check().returncode == 0
    # After the rebuilds the entry is whole again and used as is.
    assert "built a program" not in check().stderr


def test_dlpack_brings_device_values_to_the_host():
    """DLPack has no way to hand out NEF's OpenCL buffers: __dlpack_device__ says where the
    exported data is (the CPU), export reads the value to the host first, and copy=False refuses
    a value that is still on the device."""
    a = RNG.standard_normal((33, 17)).astype(np.float32)
    nef.config(devices=["opencl"])
    y = nef.tanh(nef.tensor(a) * 3.0)
    y.execute()
    assert y.device == "opencl:0"
    assert y.__dlpack_device__() == (1, 0)
    with pytest.raises(nef.NEFBufferError, match="opencl:0"):
        y.__dlpack__(max_version=(1, 0), copy=False)
    assert y.device == "opencl:0"  # the refused export moved nothing
    got = np.from_dlpack(y)
    np.testing.assert_allclose(got, np.tanh(a * 3), rtol=1e-5, atol=1e-6)
    assert y.device == "cpu"  # read once, like numpy()
    assert np.shares_memory(got, y.numpy())  # later exports view the host copy
    z = nef.from_dlpack(got) + 1  # and back in, zero-copy, to run on the device again
    z.execute()
    np.testing.assert_allclose(z.numpy(), np.tanh(a * 3) + 1, rtol=1e-5, atol=1e-6)
