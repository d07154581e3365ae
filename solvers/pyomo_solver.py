"""Pyomo backend: one adapter for every solver Pyomo knows (the interop path, not the fast path).

The :class:`MilpProblem` arrays become a ``ConcreteModel``: one indexed variable ``v`` (integer
domain where ``integrality``), one indexed ranged/equality constraint per non-empty row built
from CSR slices as ``LinearExpression`` objects (no operator overloading), and a linear
objective with the offset as constant. Building is a Python loop over rows inside Pyomo, so it
is much slower than :class:`~nncert.solvers.highs_solver.HighsSolver` on large models
(ECOSYSTEM.md 8.3: about 1 s for a 784-256-256-10 network, against 0.02 s).

Solvers registered with the new ``pyomo.contrib.solver`` interface (``"highs"``,
``"gurobi_direct"``, ``"scip_direct"``, ...) are used through it; any other name goes
through the legacy ``pyomo.environ.SolverFactory`` (``"cbc"``, ``"glpk"``, ``"cplex"``, ...).
Solutions are never loaded automatically: the adapter reads them only when the solver reports
a feasible point, so an infeasible model (the proof of a property) never raises.

Early stops: ``objective_target`` is passed as the HiGHS option of the same name for
``solver="highs"`` and ignored otherwise; ``bound_target`` and ``initial_solution`` are ignored
(both only affect speed, never the correctness of the returned status and bound).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyomo.environ as pyo
from numpy.typing import ArrayLike
from pyomo.contrib.solver.common.factory import SolverFactory as NewSolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.core.expr.numeric_expr import LinearExpression
from pyomo.opt import TerminationCondition as LegacyTC

from nncert.formulations.milp import MilpProblem
from nncert.solvers.base import SolveResult, SolveStatus, solve_empty_problem
from nncert.solvers.highs_solver import claim_threads, new_highs
from nncert.verify.errors import InvalidOptionsError, SolverError, SolverUnavailableError

#: pyomo.contrib.solver termination condition -> SolveStatus (anything else is ERROR).
STATUS_MAP: dict[Any, SolveStatus] = {
    TerminationCondition.convergenceCriteriaSatisfied: SolveStatus.OPTIMAL,
    TerminationCondition.maxTimeLimit: SolveStatus.TIME_LIMIT,
    TerminationCondition.iterationLimit: SolveStatus.ITERATION_LIMIT,
    TerminationCondition.objectiveLimit: SolveStatus.OBJECTIVE_TARGET,
    TerminationCondition.unbounded: SolveStatus.UNBOUNDED,
    TerminationCondition.provenInfeasible: SolveStatus.INFEASIBLE,
    TerminationCondition.interrupted: SolveStatus.INTERRUPTED,
    TerminationCondition.emptyModel: SolveStatus.OPTIMAL,
}

#: Legacy ``pyomo.opt`` termination condition -> SolveStatus (anything else is ERROR).
LEGACY_STATUS_MAP: dict[Any, SolveStatus] = {
    LegacyTC.optimal: SolveStatus.OPTIMAL,
    LegacyTC.globallyOptimal: SolveStatus.OPTIMAL,
    LegacyTC.feasible: SolveStatus.FEASIBLE,
    LegacyTC.infeasible: SolveStatus.INFEASIBLE,
    LegacyTC.unbounded: SolveStatus.UNBOUNDED,
    LegacyTC.maxTimeLimit: SolveStatus.TIME_LIMIT,
    LegacyTC.maxIterations: SolveStatus.ITERATION_LIMIT,
    LegacyTC.maxEvaluations: SolveStatus.ITERATION_LIMIT,
    LegacyTC.userInterrupt: SolveStatus.INTERRUPTED,
    LegacyTC.minFunctionValue: SolveStatus.OBJECTIVE_TARGET,
}

#: Name of the time-limit option of legacy solvers.
LEGACY_TIME_OPTION: dict[str, str] = {
    "cbc": "seconds",
    "glpk": "tmlim",
    "cplex": "timelimit",
    "gurobi": "TimeLimit",
    "scip": "limits/time",
    "xpress": "maxtime",
}

_HAS_SOLUTION = (SolutionStatus.feasible, SolutionStatus.optimal)


def _bounded(problem: MilpProblem) -> bool:
    return bool(np.all(np.isfinite(problem.col_lower)) and np.all(np.isfinite(problem.col_upper)))


def build_model(problem: MilpProblem) -> tuple[pyo.ConcreteModel, np.ndarray]:
    """A Pyomo model of ``problem`` and the indices of the rows it contains (non-empty rows).

    Model components: ``v`` (variables ``0..n_cols-1``), ``rows`` (constraints indexed by the
    original row number), ``obj`` (the minimised objective, constant ``offset`` included).
    """
    n = problem.n_cols
    A = problem.A
    m = pyo.ConcreteModel()

    lo = np.where(np.isfinite(problem.col_lower), problem.col_lower, np.nan)
    hi = np.where(np.isfinite(problem.col_upper), problem.col_upper, np.nan)
    bounds = {
        j: (None if math.isnan(a) else float(a), None if math.isnan(b) else float(b))
        for j, a, b in zip(range(n), lo.tolist(), hi.tolist())
    }
    integer = set(np.flatnonzero(problem.integrality).tolist())
    m.v = pyo.Var(
        range(n),
        bounds=lambda _m, j: bounds[j],
        domain=lambda _m, j: pyo.Integers if j in integer else pyo.Reals,
    )
    v = m.v
    indptr, indices, data = A.indptr, A.indices.tolist(), A.data.tolist()
    row_len = np.diff(indptr)
    rows = np.flatnonzero(row_len > 0)
    rl, ru = problem.row_lower.tolist(), problem.row_upper.tolist()
    start = indptr.tolist()

    def row_rule(_m: Any, i: int) -> Any:
        a, b = start[i], start[i + 1]
        expr = LinearExpression(
            constant=0.0, linear_coefs=data[a:b], linear_vars=[v[j] for j in indices[a:b]]
        )
        lower = rl[i] if math.isfinite(rl[i]) else None
        upper = ru[i] if math.isfinite(ru[i]) else None
        if lower is not None and lower == upper:
            return expr == lower
        if lower is None and upper is None:
            return pyo.Constraint.Skip
        return (lower, expr, upper)

    m.rows = pyo.Constraint(rows.tolist(), rule=row_rule)
    nz = np.flatnonzero(problem.c)
    m.obj = pyo.Objective(
        expr=LinearExpression(
            constant=float(problem.offset),
            linear_coefs=problem.c[nz].tolist(),
            linear_vars=[v[j] for j in nz.tolist()],
        ),
        sense=pyo.minimize,
    )
    return m, rows


class PyomoSolver:
    """Solve a :class:`MilpProblem` with any Pyomo solver.

    Args:
        solver: a Pyomo solver name (default ``"highs"``); ``get_solver("pyomo:cbc")`` sets it.
        options: solver-specific options (``solver_options`` for the new interface, the
            legacy ``options`` dictionary otherwise).
        pyomo_solver: alias of ``solver`` (configuration files use this name).

    ``exact`` is True: it assumes ``solver`` is a MIP solver that proves optimality (HiGHS,
    CBC, SCIP, Gurobi, CPLEX, ...).

    Raises:
        SolverUnavailableError: when Pyomo cannot find the named solver at solve time.
    """

    exact = True
    supports_duals = True
    supports_rays = False
    supports_warm_start = False

    def __init__(
        self,
        solver: str = "highs",
        *,
        options: Mapping[str, Any] | None = None,
        pyomo_solver: str | None = None,
    ) -> None:
        name = pyomo_solver if pyomo_solver is not None else solver
        if not isinstance(name, str) or not name:
            raise InvalidOptionsError(f"PyomoSolver: solver={name!r} must be a solver name")
        self.solver = name
        self.options: dict[str, Any] = dict(options or {})
        self.name = f"pyomo:{name}"

    def __repr__(self) -> str:
        return f"PyomoSolver(solver={self.solver!r}, options={self.options!r})"

    def solve(
        self,
        problem: MilpProblem,
        /,
        *,
        time_limit: float | None = None,
        objective_target: float | None = None,
        bound_target: float | None = None,
        initial_solution: ArrayLike | None = None,
    ) -> SolveResult:
        """Solve ``problem``; see :class:`nncert.solvers.base.MilpSolver` and the module notes."""
        if not isinstance(problem, MilpProblem):
            raise InvalidOptionsError(
                f"PyomoSolver.solve: expected a MilpProblem, got {type(problem).__name__}"
            )
        if time_limit is not None and not (time_limit >= 0):
            raise InvalidOptionsError(f"PyomoSolver: time_limit={time_limit!r} must be >= 0")
        if time_limit is not None and math.isinf(time_limit):
            time_limit = None
        empty_rows = np.diff(problem.A.indptr) == 0
        if problem.n_cols == 0 or (
            np.any(problem.row_lower[empty_rows] > 0) or np.any(problem.row_upper[empty_rows] < 0)
        ):
            return solve_empty_problem(problem, self.name)
        t0 = time.perf_counter()
        model, rows = build_model(problem)
        build_time = time.perf_counter() - t0
        if self.solver in NewSolverFactory._cls:
            result = self._solve_new(model, rows, problem, time_limit, objective_target)
        else:
            result = self._solve_legacy(model, rows, problem, time_limit)
        info = dict(result.info)
        info["build_time"] = build_time
        info.setdefault("time", time.perf_counter() - t0 - build_time)
        return SolveResult(
            result.status,
            result.objective,
            result.bound,
            result.x,
            result.duals,
            None,
            self.name,
            info,
        )

    # -- new interface -----------------------------------------------------------------------
    def _solve_new(
        self,
        model: pyo.ConcreteModel,
        rows: np.ndarray,
        problem: MilpProblem,
        time_limit: float | None,
        objective_target: float | None,
    ) -> SolveResult:
        if self.solver == "highs":

            new_highs()  # makes sure HiGHS's one-time banner is swallowed
        opt = NewSolverFactory(self.solver)
        avail = opt.available()
        if not avail:
            raise SolverUnavailableError(
                f"PyomoSolver: Pyomo solver {self.solver!r} is not available ({avail})"
            )
        solver_options = dict(self.options)
        if self.solver == "highs":
            # HiGHS keeps one global scheduler per process, sized by the first solve: Pyomo's
            # HiGHS must use the same threads value as HighsSolver, or every later solve of the
            # other kind fails ("Not Set")
            solver_options.setdefault("threads", 1)
            claim_threads(int(solver_options["threads"]))
        if objective_target is not None and self.solver == "highs" and problem.is_mip:
            solver_options.setdefault("objective_target", float(objective_target))
        kwargs: dict[str, Any] = {
            "load_solutions": False,
            "raise_exception_on_nonoptimal_result": False,
            "tee": False,
            "solver_options": solver_options,
        }
        if time_limit is not None:
            kwargs["time_limit"] = float(time_limit)
        t0 = time.perf_counter()
        try:
            res = opt.solve(model, **kwargs)
        except (ValueError, RuntimeError) as err:
            raise SolverError(f"PyomoSolver({self.solver!r}): solve failed: {err}") from err
        elapsed = time.perf_counter() - t0
        tc = res.termination_condition
        status = STATUS_MAP.get(tc, SolveStatus.ERROR)
        if tc == TerminationCondition.infeasibleOrUnbounded and _bounded(problem):
            status = SolveStatus.INFEASIBLE  # every column is bounded: cannot be unbounded
        x = None
        objective = None
        duals = None
        if res.solution_status in _HAS_SOLUTION and status is not SolveStatus.INFEASIBLE:
            primals = res.solution_loader.get_vars()
            # columns that appear nowhere are not sent to the solver: any value in bounds works
            x = np.clip(0.0, problem.col_lower, problem.col_upper)
            for j in range(problem.n_cols):
                value = primals.get(model.v[j])
                if value is not None:
                    x[j] = value
            objective = problem.objective_value(x)
            if not problem.is_mip and status is SolveStatus.OPTIMAL:
                try:
                    dual_map = res.solution_loader.get_duals()
                except (ValueError, RuntimeError, NotImplementedError):
                    dual_map = None
                if dual_map is not None:
                    duals = np.zeros(problem.n_rows)
                    for i in rows.tolist():
                        duals[i] = dual_map.get(model.rows[i], 0.0)
        bound = _bound(status, res.objective_bound, objective, problem)
        info = {
            "time": elapsed,
            "nodes": None,
            "gap": None if bound is None or objective is None else abs(objective - bound),
            "dual_bound": bound,
            "status_text": str(tc.name),
        }
        return SolveResult(status, objective, bound, x, duals, None, self.name, info)

    # -- legacy interface --------------------------------------------------------------------
    def _solve_legacy(
        self,
        model: pyo.ConcreteModel,
        rows: np.ndarray,
        problem: MilpProblem,
        time_limit: float | None,
    ) -> SolveResult:
        opt = pyo.SolverFactory(self.solver)
        try:
            ok = bool(opt.available(exception_flag=False))
        except (ValueError, RuntimeError, OSError):
            ok = False
        if not ok:
            raise SolverUnavailableError(
                f"PyomoSolver: Pyomo solver {self.solver!r} is not installed or not on PATH"
            )
        options = dict(self.options)
        if time_limit is not None and self.solver in LEGACY_TIME_OPTION:
            options.setdefault(LEGACY_TIME_OPTION[self.solver], float(time_limit))
        t0 = time.perf_counter()
        try:
            res = opt.solve(model, load_solutions=False, tee=False, options=options)
        except (ValueError, RuntimeError) as err:
            raise SolverError(f"PyomoSolver({self.solver!r}): solve failed: {err}") from err
        elapsed = time.perf_counter() - t0
        tc = res.solver.termination_condition
        status = LEGACY_STATUS_MAP.get(tc, SolveStatus.ERROR)
        if tc == LegacyTC.infeasibleOrUnbounded and _bounded(problem):
            status = SolveStatus.INFEASIBLE
        x = None
        objective = None
        if status not in (SolveStatus.INFEASIBLE, SolveStatus.ERROR) and len(res.solution) > 0:
            model.solutions.load_from(res)
            x = np.clip(0.0, problem.col_lower, problem.col_upper)
            for j in range(problem.n_cols):
                value = model.v[j].value
                if value is not None:
                    x[j] = value
            objective = problem.objective_value(x)
        lb = getattr(res.problem, "lower_bound", None)
        raw_bound = float(lb) if isinstance(lb, (int, float)) else None
        bound = _bound(status, raw_bound, objective, problem)
        info = {
            "time": elapsed,
            "nodes": None,
            "gap": None if bound is None or objective is None else abs(objective - bound),
            "dual_bound": bound,
            "status_text": str(tc),
        }
        return SolveResult(status, objective, bound, x, None, None, self.name, info)


def _bound(
    status: SolveStatus, raw: float | None, objective: float | None, problem: MilpProblem
) -> float | None:
    if status is SolveStatus.INFEASIBLE:
        return math.inf
    if status in (SolveStatus.UNBOUNDED, SolveStatus.ERROR):
        return None
    if raw is not None and math.isfinite(raw):
        return float(raw)
    if status is SolveStatus.OPTIMAL and objective is not None:
        return objective
    return None


__all__ = ["LEGACY_STATUS_MAP", "STATUS_MAP", "PyomoSolver", "build_model"]
