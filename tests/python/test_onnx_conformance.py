"""ONNX's backend node tests (the cases onnx==1.22.0 ships on disk) through nef.from_onnx.

Every case runs unless tests/onnx/exclusions.txt lists it with a reason; every case that runs
must match ONNX's stored outputs (tests/python/onnx_conformance.py has the comparison and a
command line for running subsets and writing the per-op table in docs/onnx.md)."""

import os
import sys

import pytest

pytest.importorskip("onnx")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_conformance as conf  # noqa: E402

EXCLUSIONS = conf.load_exclusions()
ALL = conf.case_names()
RUN = [n for n in ALL if conf.excluded_reason(n, EXCLUSIONS) is None]
SKIPPED = [n for n in ALL if conf.excluded_reason(n, EXCLUSIONS) is not None]


@pytest.mark.parametrize("name", RUN)
def test_node(name):
    r = conf.run_case(name)
    assert r.status == "pass", f"{r.status}: {r.detail}"


def test_exclusions_name_real_cases():
    names = set(ALL)
    for entry in EXCLUSIONS:
        if not any(c in entry for c in "*?["):
            assert entry in names, f"exclusions.txt lists '{entry}', which is not a node test"


def test_excluded_cases_still_fail():
    """An exclusion that now passes is stale: remove it so the case keeps passing."""
    stale = [n for n in SKIPPED if conf.run_case(n).status == "pass"]
    assert not stale, f"these excluded cases pass now; remove them from exclusions.txt: {stale}"
