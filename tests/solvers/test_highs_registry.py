"""HighsSolver specifics, PyomoSolver agreement, and the solver registry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import activations, boxes, networks

from nncert.formulations.milp import MilpProblem, encode_milp
from nncert.solvers import (
    MilpSolver,
    SolverSpec,
    available_solvers,
    get_solver,
    register_solver,
    unregister_solver,
)
from nncert.solvers.base import SolveResult, SolveStatus
from nncert.solvers.highs_solver import (
    IPM_MIN_NONZEROS,
    PRESOLVE_RULES_OFF,
    SPARSIFY_RULE,
    SPARSIFY_SECONDS_PER_NONZERO,
    HighsSolver,
)
from nncert.verify.bounds import interval_bounds
from nncert.verify.errors import InvalidOptionsError, SolverUnavailableError
from nncert.verify.network import Dense, HardTanh, LeakyReLU, Network, ReLU
from nncert.verify.spec import Box, UnsafeCase


def _knapsack() -> MilpProblem:
    return MilpProblem.from_arrays(
        [-5.0, -4.0, -3.0],
        [[2.0, 3.0, 1.0], [4.0, 1.0, 2.0], [3.0, 4.0, 2.0]],
        [-np.inf] * 3,
        [5.0, 11.0, 8.0],
        [0, 0, 0],
        [1, 1, 1],
        [True, True, True],
    )


# -- HiGHS ----------------------------------------------------------------------------------


def test_highs_is_a_milp_solver() -> None:
    assert isinstance(HighsSolver(), MilpSolver)


def test_highs_rejects_unknown_option_and_bad_value() -> None:
    with pytest.raises(InvalidOptionsError, match="no_such_option"):
        HighsSolver(options={"no_such_option": 1})
    with pytest.raises(InvalidOptionsError, match="time_limit"):
        HighsSolver(options={"time_limit": "soon"})
    with pytest.raises(InvalidOptionsError, match="presolve"):
        HighsSolver(presolve="maybe")
    with pytest.raises(InvalidOptionsError, match="time_limit"):
        HighsSolver().solve(_knapsack(), time_limit=-1.0)


def test_highs_threads_are_fixed_per_process() -> None:
    HighsSolver(threads=1).solve(_knapsack())  # the process now uses threads=1
    with pytest.raises(InvalidOptionsError, match="one fixed threads value"):
        HighsSolver(threads=2).solve(_knapsack())


def test_highs_warm_start_size_is_checked() -> None:
    with pytest.raises(InvalidOptionsError, match="initial_solution"):
        HighsSolver().solve(_knapsack(), initial_solution=np.zeros(7))


def test_highs_result_is_frozen() -> None:
    r = HighsSolver().solve(_knapsack())
    assert isinstance(r, SolveResult)
    assert r.x is not None and not r.x.flags.writeable
    with pytest.raises(TypeError):
        r.info["time"] = 0.0  # type: ignore[index]
    assert set(r.info) >= {"time", "nodes", "gap", "dual_bound", "status_text"}


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


def test_highs_prints_nothing_on_stdout() -> None:
    out = _run(
        """
        import numpy as np
        from nncert.formulations.milp import MilpProblem
        from nncert.solvers.highs_solver import HighsSolver
        p = MilpProblem.from_arrays([1.0], np.ones((1, 1)), [0.5], [2.0], [0], [3], [True])
        r = HighsSolver().solve(p)
        print("objective", r.objective)
        """
    )
    assert out.stdout.strip() == "objective 1.0"


def test_importing_solvers_imports_no_backend() -> None:
    out = _run(
        """
        import sys
        import nncert.solvers
        nncert.solvers.available_solvers()
        print(sorted(m for m in ("highspy", "pyomo", "dimod") if m in sys.modules))
        """
    )
    assert out.stdout.strip() == "[]"


# -- HiGHS and Pyomo agree on network MILPs ---------------------------------------------------


@settings(max_examples=10)
@given(data=st.data())
def test_highs_and_pyomo_agree(data: st.DataObject) -> None:
    net = data.draw(
        networks(
            activation=activations([ReLU, LeakyReLU, HardTanh]),
            max_depth=2,
            max_width=4,
            max_inputs=3,
            max_outputs=3,
        )
    )
    box = data.draw(boxes(net.n_inputs, max_width=2.0))
    a = np.zeros(net.n_outputs)
    a[0], a[1] = 1.0, -1.0
    case = UnsafeCase(box, a[None], [0.0])
    problem = encode_milp(net, case, interval_bounds(net, box))
    h = HighsSolver(mip_rel_gap=0.0).solve(problem)
    p = get_solver("pyomo", options={"mip_rel_gap": 0.0}).solve(problem)
    assert h.status is SolveStatus.OPTIMAL and p.status is SolveStatus.OPTIMAL
    assert h.objective is not None and p.objective is not None
    assert h.objective == pytest.approx(p.objective, abs=1e-6 * (1 + abs(h.objective)))


# -- registry ---------------------------------------------------------------------------------


def test_available_solvers() -> None:
    assert "highs" in available_solvers("milp")
    assert "highs" not in available_solvers("qubo")
    with pytest.raises(InvalidOptionsError):
        available_solvers("lp")  # type: ignore[arg-type]


def test_unknown_solver_suggests_a_name() -> None:
    with pytest.raises(InvalidOptionsError, match="did you mean 'highs'"):
        get_solver("higs")


def test_unknown_option_suggests_a_name() -> None:
    with pytest.raises(InvalidOptionsError, match="did you mean 'threads'"):
        get_solver("highs", thread=1)


def test_variant_names_and_aliases() -> None:
    s = get_solver("pyomo:cbc")
    assert s.name == "pyomo:cbc" and s.solver == "cbc"
    assert get_solver("pyomo", pyomo_solver="glpk").solver == "glpk"
    with pytest.raises(InvalidOptionsError, match="variant"):
        get_solver("highs:fast")


def test_instances_pass_through() -> None:
    s = HighsSolver()
    assert get_solver(s) is s
    with pytest.raises(InvalidOptionsError, match="instance"):
        get_solver(s, threads=1)

    class Fake:
        name = "highs"
        exact = True

        def solve(self, problem: object, /, **kw: object) -> None:
            return None

    with pytest.raises(InvalidOptionsError, match="reuse"):
        get_solver(Fake())
    with pytest.raises(InvalidOptionsError, match="neither"):
        get_solver(42)


def test_missing_dependency_names_the_extra() -> None:
    spec = SolverSpec(
        "needs-missing",
        "nncert_missing_backend:Solver",
        requires=("nncert_missing_backend_xyz",),
        extra="missing",
    )
    register_solver(spec)
    try:
        assert "needs-missing" not in available_solvers()
        with pytest.raises(SolverUnavailableError, match=r"nncert\[missing\]"):
            get_solver("needs-missing")
        with pytest.raises(InvalidOptionsError, match="already registered"):
            register_solver(SolverSpec("needs-missing", "other:Thing"))
    finally:
        unregister_solver("needs-missing")


def test_bad_specs_are_rejected() -> None:
    with pytest.raises(InvalidOptionsError, match="module:attr"):
        SolverSpec("x", "no_colon")
    with pytest.raises(InvalidOptionsError, match="name"):
        SolverSpec("a:b", "m:a")


def test_presolve_infeasible_claim_is_rechecked_without_presolve() -> None:
    """An LP (every ReLU stable) that HiGHS's presolve declared infeasible although the point
    below satisfies it: a column of width 1.2e-7 (found by hypothesis in
    tests/formulations/test_milp.py). The claim came without a dual ray; the solve without
    presolve is optimal, and that answer is the one returned."""
    w1 = np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0], [0.0, 0.5, 0.0]])
    net = Network(
        (
            Dense(w1, np.ones(3)),
            LeakyReLU(0.0),
            Dense(np.ones((1, 3)), np.zeros(1)),
            LeakyReLU(0.0),
            Dense(np.array([[1.0], [0.0]]), np.zeros(2)),
        ),
        input_shape=(3,),
    )
    box = Box(np.zeros(3), np.array([1.0, 1.1920929e-07, 0.0]))
    case = UnsafeCase(box, np.array([[-1.0, 0.0]]), np.zeros(1))
    problem = encode_milp(net, case, interval_bounds(net, box))
    assert not problem.is_mip
    res = HighsSolver().solve(problem)
    assert res.status is SolveStatus.OPTIMAL, res
    # min -y_0 over the box: y_0 = x_0 + x_1 + 3 is at most 4 + 1.2e-7
    assert res.objective == pytest.approx(-(4.0 + 1.1920929e-07), abs=1e-6)


def test_sparsify_presolve_is_off_when_the_time_limit_is_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HiGHS's sparsify presolve rule ignores ``time_limit`` (10.4 s under a 0.4 s limit on a
    Model 2 MILP of a 6x200 sigmoid network): it is switched off when the limit is short for
    the problem's size, kept otherwise; parallel rows/columns are always off; an explicit
    ``presolve_rule_off`` option replaces both; the answers do not change."""
    assert PRESOLVE_RULES_OFF & (1 << 13) and not PRESOLVE_RULES_OFF & SPARSIFY_RULE
    problem = _knapsack()
    seen: list[int] = []
    real = HighsSolver._apply_options

    def spy(h: Any, options: Any) -> None:
        real(h, options)
        if "presolve_rule_off" in options:
            seen.append(h.getOptionValue("presolve_rule_off")[1])

    monkeypatch.setattr(HighsSolver, "_apply_options", staticmethod(spy))
    short = SPARSIFY_SECONDS_PER_NONZERO * problem.A.nnz / 2
    results = []
    for limit, options, final in [
        (None, {}, PRESOLVE_RULES_OFF),
        (60.0, {}, PRESOLVE_RULES_OFF),
        (short, {}, PRESOLVE_RULES_OFF | SPARSIFY_RULE),
        (short, {"presolve_rule_off": 0}, 0),
    ]:
        seen.clear()
        results.append(HighsSolver(options=options).solve(problem, time_limit=limit))
        assert seen and seen[-1] == final, (limit, options, seen)
    assert all(r.objective == pytest.approx(-9.0) for r in results)


def _dense_lp(seed: int, *, infeasible: bool = False) -> MilpProblem:
    """A dense LP with at least :data:`IPM_MIN_NONZEROS` nonzeros (``x = 0`` is feasible unless
    ``infeasible``: then its last two rows demand ``sum x >= 1`` and ``sum x <= -1``)."""
    rng = np.random.default_rng(seed)
    n, m = 400, 260
    a = rng.normal(size=(m, n))
    lo, hi = -rng.uniform(0.5, 2.0, m), rng.uniform(0.5, 2.0, m)
    if infeasible:
        a[-2:] = 1.0
        lo[-2:], hi[-2:] = [1.0, -np.inf], [np.inf, -1.0]
    return MilpProblem.from_arrays(
        rng.normal(size=n), a, lo, hi, -np.ones(n), np.ones(n), np.zeros(n, dtype=bool)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_large_lps_go_to_ipm_and_agree_with_the_simplex(seed: int) -> None:
    """A large LP is solved by the interior point solver with crossover: the same optimum as
    the simplex, and its row duals prove the same bound (weak duality over the box)."""
    problem = _dense_lp(seed)
    assert problem.A.nnz >= IPM_MIN_NONZEROS
    ipm = HighsSolver().solve(problem)
    simplex = HighsSolver(options={"solver": "simplex"}).solve(problem)
    assert ipm.info["lp_solver"] == "ipm" and simplex.info["lp_solver"] == "choose"
    assert ipm.status is simplex.status is SolveStatus.OPTIMAL
    assert ipm.objective == pytest.approx(simplex.objective, rel=1e-9, abs=1e-9)
    # Lagrangian bound from the row duals: min over the box of c x - y (A x) + y-side rhs
    y = ipm.duals
    assert y is not None
    red = problem.c - problem.A.T @ y
    rhs = np.where(y > 0, problem.row_lower, problem.row_upper)
    box_min = np.where(red > 0, red * problem.col_lower, red * problem.col_upper).sum()
    assert box_min + float(y @ np.where(y != 0, rhs, 0.0)) == pytest.approx(
        simplex.objective, rel=1e-7, abs=1e-7
    )
    small = MilpProblem.from_arrays(
        [-1.0, -1.0], [[1.0, 2.0]], [-np.inf], [3.5], [0.0, 0.0], [2.0, 2.0], [False, False]
    )
    assert HighsSolver().solve(small).info["lp_solver"] == "choose"


def test_large_infeasible_lp_gets_its_farkas_ray_from_the_simplex() -> None:
    problem = _dense_lp(3, infeasible=True)
    res = HighsSolver().solve(problem)
    assert res.status is SolveStatus.INFEASIBLE
    assert res.dual_ray is not None
    assert res.info["lp_solver"] == "choose"
