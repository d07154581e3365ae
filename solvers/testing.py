"""Shipped conformance suite for :class:`~nncert.solvers.base.MilpSolver` backends.

Third-party backends can run the same checks as the built-ins::

    from nncert.solvers.testing import check_solver
    check_solver(MySolver())            # raises AssertionError listing every failed case

or parametrise their own tests over :func:`conformance_cases` (each case has a readable
``name`` for test ids such as ``highs-infeasible_milp``).

The cases are tiny LPs and MILPs with known optima, infeasible and unbounded problems, an empty
problem, a single variable, a time-limited hard-ish MILP (market split), and the
``objective_target`` / ``bound_target`` early stops. Every result is also checked for
consistency: status type, ``x`` shape, feasibility and objective of ``x`` for OPTIMAL results,
and ``bound <= objective`` for minimisation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncert.formulations.milp import MilpProblem, lp_relaxation
from nncert.solvers.base import MilpSolver, SolveResult, SolveStatus

_INF = math.inf
FEAS_TOL = 1e-6


def _rel_tol(value: float) -> float:
    return 1e-6 * (1.0 + abs(value))


@dataclass(frozen=True)
class ConformanceCase:
    """One problem, the solve arguments, and what an exact solver must return.

    Attributes:
        name: short identifier (used in test ids).
        problem: the problem to solve.
        solve_kwargs: keyword arguments for ``solver.solve``.
        statuses: acceptable statuses.
        objective: the known optimum (checked for OPTIMAL results), or ``None``.
        extra_check: further assertions on ``(solver, problem, result, elapsed)``.
        exact_only: skip for heuristic solvers (``exact=False``).
    """

    name: str
    problem: MilpProblem
    solve_kwargs: Mapping[str, Any] = field(default_factory=dict)
    statuses: frozenset[SolveStatus] = frozenset({SolveStatus.OPTIMAL})
    objective: float | None = None
    extra_check: Callable[[Any, MilpProblem, SolveResult, float], None] | None = None
    exact_only: bool = True

    def run(self, solver: MilpSolver) -> SolveResult:
        """Solve and check; raises ``AssertionError`` with a readable message on failure."""
        t0 = time.perf_counter()
        result = solver.solve(self.problem, **self.solve_kwargs)
        elapsed = time.perf_counter() - t0
        where = f"{getattr(solver, 'name', solver)!s}/{self.name}"
        _check_consistency(where, self.problem, result)
        if not getattr(solver, "exact", True) and self.exact_only:
            return result
        if result.status not in self.statuses:
            raise AssertionError(
                f"{where}: status {result.status.name}, expected one of "
                f"{sorted(s.name for s in self.statuses)} ({result.info.get('status_text')})"
            )
        if self.objective is not None and result.status is SolveStatus.OPTIMAL:
            if result.objective is None or abs(result.objective - self.objective) > _rel_tol(
                self.objective
            ):
                raise AssertionError(
                    f"{where}: objective {result.objective!r}, expected {self.objective!r}"
                )
        if self.extra_check is not None:
            self.extra_check(solver, self.problem, result, elapsed)
        return result


def _check_consistency(where: str, problem: MilpProblem, r: SolveResult) -> None:
    if not isinstance(r, SolveResult):
        raise AssertionError(f"{where}: solve returned {type(r).__name__}, not SolveResult")
    if not isinstance(r.status, SolveStatus):
        raise AssertionError(f"{where}: status {r.status!r} is not a SolveStatus")
    if r.x is not None:
        if r.x.shape != (problem.n_cols,):
            raise AssertionError(f"{where}: x has shape {r.x.shape}, expected ({problem.n_cols},)")
        if r.status is SolveStatus.OPTIMAL:
            viol = problem.max_violation(r.x)
            if viol > FEAS_TOL * 10:
                raise AssertionError(f"{where}: optimal x violates constraints by {viol:g}")
        if r.objective is not None and r.status is not SolveStatus.UNBOUNDED:
            value = problem.objective_value(r.x)
            if abs(value - r.objective) > 1e-5 * (1.0 + abs(value)):
                raise AssertionError(
                    f"{where}: objective {r.objective!r} but c^T x + offset = {value!r}"
                )
    if r.status is SolveStatus.INFEASIBLE and r.x is not None:
        raise AssertionError(f"{where}: an infeasible result carries a point")
    if r.bound is not None and r.objective is not None:
        if r.bound > r.objective + _rel_tol(r.objective):
            raise AssertionError(
                f"{where}: bound {r.bound!r} exceeds objective {r.objective!r} (minimisation)"
            )


# --------------------------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------------------------


def market_split(m: int = 4, n: int = 32, seed: int = 0) -> MilpProblem:
    """A Cornuéjols–Dawande market-split instance: hard for branch and bound.

    ``min sum_i (s+_i + s-_i)`` s.t. ``sum_j a_ij x_j + s+_i - s-_i = floor(sum_j a_ij / 2)``,
    ``x`` binary, ``a_ij`` uniform in ``0..99``.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, size=(m, n)).astype(np.float64)
    d = np.floor(a.sum(axis=1) / 2.0)
    A = np.hstack([a, np.eye(m), -np.eye(m)])
    c = np.concatenate([np.zeros(n), np.ones(2 * m)])
    integ = np.concatenate([np.ones(n, dtype=bool), np.zeros(2 * m, dtype=bool)])
    upper = np.concatenate([np.ones(n), np.full(2 * m, _INF)])
    return MilpProblem.from_arrays(c, A, d, d, np.zeros(n + 2 * m), upper, integ)


def _lp_basic() -> MilpProblem:
    # min -x - y  s.t.  x + 2y <= 4,  3x + y <= 6,  x, y >= 0  ->  x = 1.6, y = 1.2, opt -2.8
    return MilpProblem.from_arrays(
        [-1.0, -1.0], [[1.0, 2.0], [3.0, 1.0]], [-_INF, -_INF], [4.0, 6.0], [0, 0], [_INF, _INF]
    )


def _lp_ranged_offset() -> MilpProblem:
    # min x - 2y + 3  s.t.  1 <= x + y <= 3,  x - y = 0.5,  -5 <= x, y <= 5
    # x = y + 0.5, 2y + 0.5 in [1, 3] -> y in [0.25, 1.25]; obj = -y + 3.5 -> y = 1.25: 2.25
    return MilpProblem.from_arrays(
        [1.0, -2.0],
        [[1.0, 1.0], [1.0, -1.0]],
        [1.0, 0.5],
        [3.0, 0.5],
        [-5.0, -5.0],
        [5.0, 5.0],
        offset=3.0,
    )


def _milp_binary_knapsack() -> MilpProblem:
    # max 5a + 4b + 3c  s.t. 2a+3b+c <= 5, 4a+b+2c <= 11, 3a+4b+2c <= 8, binary  ->  a=b=1: 9
    return MilpProblem.from_arrays(
        [-5.0, -4.0, -3.0],
        [[2.0, 3.0, 1.0], [4.0, 1.0, 2.0], [3.0, 4.0, 2.0]],
        [-_INF] * 3,
        [5.0, 11.0, 8.0],
        [0, 0, 0],
        [1, 1, 1],
        [True, True, True],
    )


def _milp_general_integer() -> MilpProblem:
    # min -x - y  s.t. 2x + 2y <= 7, x integer in [0, 10], y continuous in [0, 0.4]
    # LP relaxation -3.5; x <= 3.5 - y integer -> x = 3, y = 0.4: -3.4
    return MilpProblem.from_arrays(
        [-1.0, -1.0], [[2.0, 2.0]], [-_INF], [7.0], [0.0, 0.0], [10.0, 0.4], [True, False]
    )


def _infeasible_milp() -> MilpProblem:
    # binaries x + y >= 3 (the LP relaxation is infeasible too); 2x + 2y = 3 is LP-feasible only
    return MilpProblem.from_arrays(
        [1.0, 1.0, 0.0],
        [[2.0, 2.0, 0.0], [0.0, 0.0, 1.0]],
        [3.0, 0.0],
        [3.0, 1.0],
        [0, 0, 0],
        [1, 1, 1],
        [True, True, True],
    )


def _infeasible_lp() -> MilpProblem:
    # x + y >= 3 with x, y in [0, 1]
    return MilpProblem.from_arrays([1.0, 1.0], [[1.0, 1.0]], [3.0], [_INF], [0, 0], [1, 1])


def _unbounded_lp() -> MilpProblem:
    # min -x - y  s.t.  x - y <= 1,  x, y >= 0
    return MilpProblem.from_arrays(
        [-1.0, -1.0], [[1.0, -1.0]], [-_INF], [1.0], [0, 0], [_INF, _INF]
    )


def _empty() -> MilpProblem:
    return MilpProblem.from_arrays([], np.zeros((0, 0)), [], [], [], [], offset=1.5)


def _single_variable() -> MilpProblem:
    return MilpProblem.from_arrays(
        [2.0], np.zeros((0, 1)), [], [], [-1.5], [3.0], [True], offset=1.0
    )


# --------------------------------------------------------------------------------------------
# extra checks
# --------------------------------------------------------------------------------------------


def _check_duals(solver: Any, problem: MilpProblem, r: SolveResult, elapsed: float) -> None:
    if not getattr(solver, "supports_duals", False):
        return
    if r.duals is None or r.duals.shape != (problem.n_rows,):
        raise AssertionError(f"{solver.name}: LP duals missing or misshapen: {r.duals!r}")
    # stationarity with HiGHS signs: reduced costs c - A^T y vanish on basic, non-bound columns
    assert r.x is not None
    red = problem.c - problem.A.T @ r.duals
    free = (r.x > problem.col_lower + 1e-7) & (r.x < problem.col_upper - 1e-7)
    if np.any(np.abs(red[free]) > 1e-6):
        raise AssertionError(f"{solver.name}: duals violate stationarity: reduced costs {red}")


def _check_proof(solver: Any, problem: MilpProblem, r: SolveResult, elapsed: float) -> None:
    # "infeasible MILP -> VERIFIED": an infeasible Model-1 problem proves the property
    if not r.proves_above(0.0):
        raise AssertionError(f"{solver.name}: infeasible result does not prove the bound")


def _check_ray(solver: Any, problem: MilpProblem, r: SolveResult, elapsed: float) -> None:
    if getattr(solver, "supports_rays", False):
        if r.dual_ray is None or r.dual_ray.shape != (problem.n_rows,):
            raise AssertionError(f"{solver.name}: no dual ray for an infeasible LP")


def _time_check(
    limit: float, slack: float
) -> Callable[[Any, MilpProblem, SolveResult, float], None]:
    def check(solver: Any, problem: MilpProblem, r: SolveResult, elapsed: float) -> None:
        if elapsed > limit + slack:
            raise AssertionError(
                f"{solver.name}: took {elapsed:.2f}s with time_limit={limit} (slack {slack}s)"
            )
        if r.status is SolveStatus.TIME_LIMIT and r.bound is not None and r.objective is not None:
            if r.bound > r.objective + 1e-6:
                raise AssertionError(f"{solver.name}: bound above incumbent at time limit")

    return check


def _objective_target_check(
    target: float,
) -> Callable[[Any, MilpProblem, SolveResult, float], None]:
    def check(solver: Any, problem: MilpProblem, r: SolveResult, elapsed: float) -> None:
        if r.objective is None or r.objective > target + 1e-9:
            raise AssertionError(
                f"{solver.name}: stopped with objective {r.objective!r}, target {target}"
            )

    return check


def _bound_target_check(target: float) -> Callable[[Any, MilpProblem, SolveResult, float], None]:
    def check(solver: Any, problem: MilpProblem, r: SolveResult, elapsed: float) -> None:
        if r.bound is None or not r.bound > target:
            raise AssertionError(f"{solver.name}: stopped with bound {r.bound!r} <= {target}")

    return check


def conformance_cases() -> list[ConformanceCase]:
    """The conformance cases (fresh problem objects on every call)."""
    S = SolveStatus
    hard = market_split()
    return [
        ConformanceCase("lp_basic", _lp_basic(), objective=-2.8, extra_check=_check_duals),
        ConformanceCase("lp_ranged_offset", _lp_ranged_offset(), objective=2.25),
        ConformanceCase("milp_binary_knapsack", _milp_binary_knapsack(), objective=-9.0),
        ConformanceCase(
            "lp_relaxation_knapsack", lp_relaxation(_milp_binary_knapsack()), objective=-32.0 / 3.0
        ),
        ConformanceCase("milp_general_integer", _milp_general_integer(), objective=-3.4),
        ConformanceCase(
            "infeasible_milp",
            _infeasible_milp(),
            statuses=frozenset({S.INFEASIBLE}),
            extra_check=_check_proof,
        ),
        ConformanceCase(
            "infeasible_lp",
            _infeasible_lp(),
            statuses=frozenset({S.INFEASIBLE}),
            extra_check=_check_ray,
        ),
        ConformanceCase("unbounded_lp", _unbounded_lp(), statuses=frozenset({S.UNBOUNDED})),
        ConformanceCase("empty_problem", _empty(), objective=1.5),
        ConformanceCase("single_variable", _single_variable(), objective=-1.0),
        ConformanceCase(
            "time_limited_milp",
            hard,
            solve_kwargs={"time_limit": 1.0},
            statuses=frozenset({S.TIME_LIMIT, S.OPTIMAL}),
            extra_check=_time_check(1.0, 10.0),
        ),
        ConformanceCase(
            "objective_target_stop",
            hard,
            solve_kwargs={"objective_target": 1e6, "time_limit": 20.0},
            statuses=frozenset({S.OBJECTIVE_TARGET, S.OPTIMAL, S.FEASIBLE}),
            extra_check=_objective_target_check(1e6),
        ),
        ConformanceCase(
            "bound_target_stop",
            _milp_binary_knapsack(),
            solve_kwargs={"bound_target": -100.0},
            statuses=frozenset({S.INTERRUPTED, S.OPTIMAL}),
            extra_check=_bound_target_check(-100.0),
        ),
    ]


def check_solver(solver: MilpSolver, cases: Sequence[ConformanceCase] | None = None) -> None:
    """Run every conformance case; raise ``AssertionError`` listing all failures."""
    failures = []
    for case in conformance_cases() if cases is None else cases:
        try:
            case.run(solver)
        except AssertionError as err:
            failures.append(f"{case.name}: {err}")
    if failures:
        raise AssertionError(f"{len(failures)} conformance failure(s):\n" + "\n".join(failures))


__all__ = ["ConformanceCase", "check_solver", "conformance_cases", "market_split"]
