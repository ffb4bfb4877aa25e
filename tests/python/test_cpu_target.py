"""NEF_CPU_TARGET also caps the Highway-dispatched loops (transcendentals, the fused elementwise
interpreter, the row kernels): the CPU device reports the target they run (`vector_kernels`),
and each target's results match numpy float64. One subprocess per target: Highway's choice is
made once per process, when the CPU device starts."""

import json
import os
import subprocess
import sys

import pytest

_CODE = r"""
import json, sys
import numpy as np
import nef
d = nef.devices()
cpu = [x for x in d["devices"] if x["name"] == "cpu"][0]
rng = np.random.default_rng(int(sys.argv[1]))
x = np.concatenate([rng.uniform(-30, 30, 4099), rng.standard_normal(1001) * 3,
                    [0.0, -0.0, 1e-30, -1e-30, 88.0, -87.0, 20.0, -20.0]]).astype(np.float32)
a = nef.asarray(x)
got = {
    "exp": nef.exp(a * 0.5).numpy(),
    "tanh": nef.tanh(a).numpy(),
    "sigmoid": nef.sigmoid(a).numpy(),
    "erf": nef.erf(a * 0.25).numpy(),
    "log": nef.log(nef.abs(a) + 1e-3).numpy(),
    "chain": (nef.tanh(a * 0.1 + 0.2) * nef.exp(-nef.abs(a) * 0.1) - nef.sigmoid(a)).numpy(),
    "softmax": nef.softmax(nef.asarray(x[:5000].reshape(50, 100)), axis=-1).numpy(),
}
np.savez(sys.argv[2], **got)
print(json.dumps([d["cpu"]["features"], cpu["extra"]["vector_kernels"]]))
"""


def _reference(x):
    import math
    import numpy as np
    erf = np.vectorize(math.erf, otypes=[np.float64])
    x = x.astype(np.float64)
    s = x[:5000].reshape(50, 100)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return {
        "exp": np.exp(x * 0.5),
        "tanh": np.tanh(x),
        "sigmoid": 1 / (1 + np.exp(-x)),
        "erf": erf(x * 0.25),
        "log": np.log(np.abs(x) + 1e-3),
        "chain": np.tanh(x * 0.1 + 0.2) * np.exp(-np.abs(x) * 0.1) - 1 / (1 + np.exp(-x)),
        "softmax": e / e.sum(axis=-1, keepdims=True),
    }


@pytest.mark.parametrize("target", [None, "avx512", "avx2", "generic"])
def test_vector_kernels_follow_the_target(tmp_path, target):
    import numpy as np
    env = dict(os.environ)
    env.pop("NEF_CPU_TARGET", None)
    if target:
        env["NEF_CPU_TARGET"] = target
    seed = 1234 + (len(target) if target else 0)
    out = tmp_path / "out.npz"
    r = subprocess.run([sys.executable, "-c", _CODE, str(seed), str(out)], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    feats, name = json.loads(r.stdout.strip().splitlines()[-1])
    avx512 = feats["avx512f"] and feats["avx512bw"] and feats["avx512vl"]
    avx2 = feats["avx2"] and feats["fma"]
    if target in (None, "avx512") and avx512:
        assert name.startswith("AVX3"), name
    elif target in (None, "avx512", "avx2") and avx2:
        assert name == "AVX2", name
    else:
        assert not name.startswith(("AVX3", "AVX2")), name
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(-30, 30, 4099), rng.standard_normal(1001) * 3,
                        [0.0, -0.0, 1e-30, -1e-30, 88.0, -87.0, 20.0, -20.0]]).astype(np.float32)
    want = _reference(x)
    got = dict(np.load(out))
    for k, ref in want.items():
        # float32 results of float32 inputs: a few ulp of the result (docs/ops.md bounds), plus
        # the chain's rounding of its float32 intermediates.
        np.testing.assert_allclose(got[k], ref, rtol=2e-5, atol=2e-6, err_msg=f"{k} on {name}")
