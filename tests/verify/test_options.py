"""VerifyOptions validation: unknown solvers fail at construction (issue 17)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nncert.verify.errors import InvalidOptionsError
from nncert.verify.options import VerifyOptions, check_solver_name


@pytest.mark.parametrize("name", ["highs", "pyomo", "pyomo:cbc", "pyomo:gurobi", "sa", "tabu",
                                  "steepest", "exact", "exact-qubo"])  # fmt: skip
def test_registered_solver_names_are_accepted(name: str) -> None:
    assert VerifyOptions(solver=name).solver == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        pytest.param("higs", "did you mean 'highs'?", id="typo"),
        pytest.param("gurobi", "did you mean 'pyomo:gurobi'?", id="pyomo-hint"),
        pytest.param("highs:fast", "'highs' takes no ':NAME' variant", id="bad-variant"),
        pytest.param("pyomo:", "give the variant after the colon", id="empty-variant"),
        pytest.param("", "must be a solver name", id="empty"),
        pytest.param(3, "must be a solver name", id="not-a-string"),
    ],
)
def test_unknown_solvers_fail_at_construction(name: object, fragment: str) -> None:
    with pytest.raises(InvalidOptionsError, match=fragment) as info:
        VerifyOptions(solver=name)  # type: ignore[arg-type]
    assert f"solver={name!r}" in str(info.value)
    with pytest.raises(InvalidOptionsError):
        VerifyOptions.from_mapping({"solver": name, "method": "milp"})


def test_plugin_solvers_are_accepted() -> None:
    from nncert.solvers.registry import SolverSpec, register_solver, unregister_solver

    with pytest.raises(InvalidOptionsError):
        check_solver_name("mysolver")
    register_solver(SolverSpec("mysolver", "nowhere.module:Factory", requires=("nowhere",)))
    try:
        VerifyOptions(solver="mysolver")  # its backend is not even installed: checked later
    finally:
        unregister_solver("mysolver")


def test_validation_imports_no_backend() -> None:
    code = (
        "import sys; from nncert.verify.options import VerifyOptions; "
        "VerifyOptions(solver='pyomo:cbc'); VerifyOptions(solver='sa'); "
        "heavy = [m for m in ('pyomo', 'highspy', 'dimod', 'dwave.samplers') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
