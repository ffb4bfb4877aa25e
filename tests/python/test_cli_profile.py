"""`nef run --profile`: the per-kernel table lists every kernel of the plan (as `nef inspect
--plan --json` gives them) and the per-op summary adds up to the kernels' total, with and
without warm runs; the outputs are what they are without --profile. Same executable lookup as
test_cli.py (NEF_CLI, else the venv's `nef`)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from test_cli import CLI, assert_ok, assert_usage, run_cli

pytestmark = pytest.mark.skipif(CLI is None, reason="the nef executable was not found "
                                "(set NEF_CLI or install the package into this venv)")

RNG = np.random.default_rng(20261208)


@pytest.fixture
def model(tmp_path):
    import nef
    w = RNG.standard_normal((7, 5)).astype(np.float32)
    x = nef.placeholder("x", (3, 7), nef.float32)
    h = x @ nef.tensor(w)
    y = nef.softmax(nef.tanh(h) * 2.0 - nef.exp(-h), axis=-1)
    nef.build(tmp_path / "m.nef", {"y": y})
    xv = RNG.standard_normal((3, 7)).astype(np.float32)
    np.save(tmp_path / "x.npy", xv)
    h64 = xv.astype(np.float64) @ w
    z = np.tanh(h64) * 2.0 - np.exp(-h64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return tmp_path, e / e.sum(-1, keepdims=True)


def parse_profile(stdout: str, kernels):
    """(header line, kernel rows as lists of cells, {op: (kernels, ms, percent)}). Kernel names
    and shapes may hold spaces ("cpu.fused_elementwise.f32[5 ops]", "(3, 5)"), so each row is
    read against the plan's kernel it should describe."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("profile: "))
    by_op_at = lines.index("by op:")
    header = lines[start + 1].split()
    assert header == ["step", "node", "op", "shape", "dtype", "device", "kernel", "ms", "est_ms",
                      "%", "covers"]
    body = lines[start + 2:by_op_at]
    assert len(body) == len(kernels), body
    rows = []
    for line, k in zip(body, kernels):
        m = re.match(r"\s+(\d+)\s+(\d+)\s+(\S+)\s+(\(.*?\))\s+(\S+)\s+(\S+)\s+(.*)$", line)
        assert m, line
        rest = m.group(7)
        assert rest.startswith(k["kernel"]), (rest, k["kernel"])
        tail = rest[len(k["kernel"]):].split(maxsplit=3)
        rows.append(list(m.groups()[:6]) + [k["kernel"], tail[0], tail[1], tail[2],
                                            tail[3] if len(tail) > 3 else ""])
    ops = {}
    assert lines[by_op_at + 1].split() == ["op", "kernels", "ms", "%"]
    for line in lines[by_op_at + 2:]:
        cells = line.split()
        if len(cells) != 4:
            break
        ops[cells[0]] = (int(cells[1]), float(cells[2]), float(cells[3]))
    return lines[start], rows, ops


@pytest.mark.parametrize("repeat", [1, 4])
def test_run_profile(model, repeat):
    d, ref = model
    r = run_cli("run", d / "m.nef", "--input", f"x={d / 'x.npy'}", "--output", d / "out",
                "--profile", "--repeat", repeat)
    assert_ok(r)
    np.testing.assert_allclose(np.load(d / "out" / "y.npy"), ref, rtol=2e-5, atol=1e-6)
    plan = run_cli("inspect", d / "m.nef", "--plan", "--json")
    assert_ok(plan)
    kernels = json.loads(plan.stdout)["kernels"]
    assert len(kernels) > 0
    head, rows, ops = parse_profile(r.stdout, kernels)
    assert f"profile: {len(kernels)} kernels, " in head
    if repeat == 1:
        assert "(1 run, the first;" in head
    else:
        assert f"(median of {repeat - 1} warm runs)" in head
    for row, k in zip(rows, kernels):
        step, node, op, shape, dtype, device, kernel, ms, est, pct, covers = row
        assert (int(step), int(node), op, dtype, device, kernel) == \
            (k["step"], k["node"], k["op"], k["dtype"], k["device"], k["kernel"])
        assert shape == "(" + ", ".join(map(str, k["shape"])) + ")"
        assert float(ms) >= 0 and 0 <= float(pct) <= 100
        assert float(est) == pytest.approx(k["predicted_seconds"] * 1e3, abs=1e-4)
        # fused kernels name what they cover; others leave the column empty
        assert covers == (" ".join(k["nodes"]) if k["nodes"] != [k["op"]] else "")
    total = ops.pop("total")
    assert total[0] == len(kernels)
    assert sum(n for n, _, _ in ops.values()) == len(kernels)
    assert set(ops) == {k["op"] for k in kernels}
    assert sum(ms for _, ms, _ in ops.values()) == pytest.approx(total[1], abs=5e-4 * len(ops))
    if total[1] > 0:
        assert sum(p for _, _, p in ops.values()) == pytest.approx(100.0, abs=0.1 * len(ops))


def test_run_without_profile_prints_none(model):
    d, _ = model
    r = run_cli("run", d / "m.nef", "--input", f"x={d / 'x.npy'}", "--output", d / "out",
                "--repeat", 2, "--timing")
    assert_ok(r)
    assert "profile:" not in r.stdout and "by op:" not in r.stdout


def test_profile_is_a_flag(model):
    d, _ = model
    assert_usage(run_cli("run", d / "m.nef", "--input", f"x={d / 'x.npy'}", "--output", d / "out",
                         "--profile=maybe", cwd=d))
