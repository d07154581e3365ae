"""VerifyOptions validation: unknown solvers fail at construction (issue 17)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
        pytest.param(
            "neal.SimulatedAnnealingSampler",
            "did you mean 'dimod:neal.SimulatedAnnealingSampler'?",
            id="dimod-hint",
        ),
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


_PLUGIN_CHECK = """
import sys, warnings
from nncert.verify.options import VerifyOptions
VerifyOptions(solver="highs")
VerifyOptions(solver="pyomo:cbc")
print("metadata" if "importlib.metadata" in sys.modules else "no-metadata")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    VerifyOptions(solver="fakeplug")
from nncert.solvers.registry import get_solver_spec
print(get_solver_spec("fakeplug").factory, get_solver_spec("highs").factory)
print(*sorted(str(w.message) for w in caught), sep="\\n")
"""


def test_plugins_are_loaded_only_for_names_no_builtin_has(tmp_path: Path) -> None:
    """A built-in solver name is accepted without scanning the entry points (that scan, and
    importing importlib.metadata, cost about 0.15 s of every start-up); a plug-in's name still
    loads the plug-ins, and a plug-in cannot replace a built-in either way."""
    dist = tmp_path / "fakeplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[nncert.solvers]\nfakeplug = fakeplug:SPECS\n")
    (tmp_path / "fakeplug.py").write_text(
        "from nncert.solvers.registry import SolverSpec\n"
        "SPECS = [SolverSpec('fakeplug', 'fakeplug:make'), SolverSpec('highs', 'evil:make')]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("NNCERT_NO_PLUGINS", None)
    out = subprocess.run(
        [sys.executable, "-c", _PLUGIN_CHECK], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "no-metadata"
    assert lines[1] == "fakeplug:make nncert.solvers.highs_solver:HighsSolver"
    assert any("tried to replace the solver 'highs'; ignored" in line for line in lines[2:])


def test_a_qubo_sampler_is_refused_by_methods_that_need_a_milp_solver() -> None:
    """``--method milp --solver sa`` failed deep in the MILP stage with a TypeError (exit 4);
    ``verify`` now refuses the pair before any work (the options themselves still build: the
    names are valid, and the qubo and benders methods take samplers)."""
    from nncert.verify import Box, Dense, Network, Property, ReLU, UnsafeCase, verify

    net = Network((Dense([[1.0], [-1.0]], [0.0, 0.0]), ReLU(), Dense([[1.0, 1.0]], [0.0])),
                  input_shape=(1,))  # fmt: skip
    prop = Property((UnsafeCase(Box([-1.0], [1.0]), [[1.0]], [-0.5]),))
    for method, solver in (("milp", "sa"), ("auto", "tabu"), ("relu_bab", "exact")):
        opts = VerifyOptions(method=method, solver=solver)
        with pytest.raises(InvalidOptionsError, match="QUBO sampler"):
            verify(net, prop, opts)
    assert verify(net, prop, VerifyOptions(method="benders", solver="sa")).verdict.value in (
        "verified", "unknown", "falsified",
    )  # fmt: skip
