"""Pyomo's HiGHS and :class:`HighsSolver` in one process share HiGHS's global scheduler."""

from __future__ import annotations

import subprocess
import sys

import pytest

_HIGHS_AFTER_PYOMO = """
import numpy as np
from nncert.formulations.milp import encode_milp
from nncert.solvers import get_solver
from nncert.verify import crown_bounds, load_example, robustness_property, verify

net, props = load_example("iris_relu")
res = verify(net, props[0], method="milp", solver="pyomo:highs", presolve=False, time_limit=30)
print(res.verdict.name)
x0 = np.array([0.2, 0.6, 0.1, 0.05])
prop = robustness_property(x0, 0.1, int(np.argmax(net.forward(x0))), net.n_outputs)
normal = net.normalized()
case = prop.cases[0]
milp = encode_milp(normal, case, crown_bounds(normal, case.input_box))
print(get_solver("highs").solve(milp, time_limit=30).status.name)
"""


def test_highs_solves_after_pyomo_highs_in_the_same_process() -> None:
    """The scheduler is sized by a process's first solve: Pyomo's HiGHS must not size it
    differently from HighsSolver (it did: every later HighsSolver solve ended 'Not Set')."""
    pytest.importorskip("pyomo")
    proc = subprocess.run(
        [sys.executable, "-c", _HIGHS_AFTER_PYOMO], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["VERIFIED", "OPTIMAL"]
