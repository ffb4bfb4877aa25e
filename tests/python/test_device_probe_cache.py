"""Resolving "auto" (no NEF_DEVICES) without loading drivers whose devices it would not use: a
process that probes records the kinds of the devices found under a fingerprint of the installed
drivers (src/backends/registry.cpp, Backend::fingerprint); later processes with the same
fingerprint resolve "auto" from that record, so PoCL's ICD (and the ~70 MB of LLVM it maps)
stays out of a process that would never run on it. Naming devices, listing them, a changed
fingerprint or an untrusted record probe as before."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

import nef

CODE = """
import sys, numpy as np, nef
x = np.arange(12, dtype=np.float32).reshape(3, 4)
a = nef.tensor(x)
np.testing.assert_allclose((a @ a.T + 1).numpy(), x.astype(np.float64) @ x.T + 1, rtol=1e-6)
if sys.argv[1:] == ['list']:
    nef.devices()
print(any('libpocl' in l for l in open('/proc/self/maps')))
"""


def pocl_loaded(cache, env=None, *args):
    """Runs CODE in a fresh process with NEF_CACHE_DIR=cache; whether PoCL got mapped."""
    e = {k: v for k, v in os.environ.items() if k != "NEF_DEVICES"}
    e["NEF_CACHE_DIR"] = str(cache)
    e.update(env or {})
    r = subprocess.run([sys.executable, "-c", CODE, *args], env=e, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip() == "True"


@pytest.fixture(scope="module")
def pocl():
    devs = nef.devices()["devices"]
    if not any(d.get("backend") == "opencl" and d.get("kind") == "cpu" for d in devs) or \
            "pocl" not in str(devs).lower():
        pytest.skip("needs PoCL's OpenCL CPU device")


def records(cache):
    return sorted(glob.glob(os.path.join(str(cache), "devices", "*.txt")))


def test_auto_leaves_pocl_unloaded_once_probed(tmp_path, pocl):
    assert pocl_loaded(tmp_path)  # nothing recorded yet: the first process probes
    assert len(records(tmp_path)) == 1
    assert not pocl_loaded(tmp_path)  # the record says "auto" is the CPU alone
    assert not pocl_loaded(tmp_path, {"NEF_DEVICES": "auto"})
    assert not pocl_loaded(tmp_path, {"NEF_DEVICES": "cpu"})
    assert pocl_loaded(tmp_path, None, "list")  # nef.devices() lists everything: it probes
    assert pocl_loaded(tmp_path, {"NEF_DEVICES": "opencl"})  # a named device is probed and used
    assert pocl_loaded(tmp_path, {"NEF_DEVICES": "all"})


def test_changed_drivers_probe_again(tmp_path, pocl):
    vendors = tmp_path / "vendors"
    vendors.mkdir()
    for f in glob.glob("/etc/OpenCL/vendors/*.icd"):
        shutil.copy(f, vendors)
    env = {"OCL_ICD_VENDORS": str(vendors)}
    assert pocl_loaded(tmp_path, env)
    assert not pocl_loaded(tmp_path, env)
    # A driver installed (another .icd): the fingerprint differs, so the next process probes.
    (vendors / "zz-other.icd").write_text("libnef-test-no-such-driver.so\n")
    assert pocl_loaded(tmp_path, env)
    assert not pocl_loaded(tmp_path, env)
    assert len(records(tmp_path)) == 2


def test_untrusted_or_gpu_records_probe(tmp_path, pocl):
    assert pocl_loaded(tmp_path)
    (rec,) = records(tmp_path)
    first = open(rec).readline()
    # A record that does not start with its fingerprint's hash is ignored (and rewritten).
    with open(rec, "w") as f:
        f.write("0123\n")
    assert pocl_loaded(tmp_path)
    assert not pocl_loaded(tmp_path)
    # A recorded device that "auto" enables (a GPU) needs the real device: probe.
    with open(rec, "w") as f:
        f.write(first + "gpu\n")
    assert pocl_loaded(tmp_path)
    assert open(rec).read() == first + "cpu\n"  # rewritten from the real probe
