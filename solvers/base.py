"""Solver-neutral result types and the solver protocols.

A solver is anything with a ``name``, an ``exact`` flag and a ``solve`` method of the right
signature (duck typing; backends never subclass each other). Every backend returns a frozen
:class:`SolveResult` whose ``status`` is a :class:`SolveStatus`; "infeasible", "time limit" and
"interrupted" are results, never exceptions. Only malfunctions raise (``SolverError``), and bad
options raise ``InvalidOptionsError``.

Semantics used by the verifier (the problems are minimisations, see
:class:`nncert.formulations.milp.MilpProblem`):

* ``objective`` is the value of the returned point ``x`` (the best incumbent), or ``None``.
* ``bound`` is a *proven* lower bound on the optimum (the MIP dual bound; the optimum itself
  for a solved LP; ``+inf`` for a proven infeasible problem), or ``None`` when the backend
  proves nothing (heuristics, failed solves).
* An exact solver's ``bound > 0`` proves a Model-1 case infeasible (VERIFIED); an ``x`` with
  ``objective <= 0`` is a *candidate* counterexample, to be confirmed by a forward pass.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.verify.errors import InvalidOptionsError

if TYPE_CHECKING:
    from nncert.formulations.milp import MilpProblem


class SolveStatus(Enum):
    """How a solve ended.

    Members:
        OPTIMAL: solved to optimality (within the solver's gap tolerances).
        FEASIBLE: stopped with a feasible point but without an optimality proof (heuristics,
            solution limits).
        INFEASIBLE: proven infeasible.
        UNBOUNDED: proven unbounded (or "unbounded or infeasible" after disambiguation failed
            is reported as ``ERROR``).
        TIME_LIMIT: the time limit was reached; ``x``/``bound`` may still be set.
        ITERATION_LIMIT: an iteration or node limit was reached.
        INTERRUPTED: stopped by a user interrupt, e.g. ``bound_target`` was exceeded (check
            ``bound``).
        OBJECTIVE_TARGET: stopped because an incumbent reached ``objective_target``.
        ERROR: the backend failed; ``info["status_text"]`` says why.
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    INTERRUPTED = "interrupted"
    OBJECTIVE_TARGET = "objective_target"
    ERROR = "error"


def _frozen_vector(value: ArrayLike | None) -> NDArray[np.float64] | None:
    if value is None:
        return None
    arr = np.array(value, dtype=np.float64, copy=True).reshape(-1)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class SolveResult:
    """The outcome of one solve (frozen; arrays are read-only copies).

    Attributes:
        status: how the solve ended.
        objective: value ``c^T x + offset`` of ``x`` (the best incumbent), or ``None``.
        bound: proven lower bound on the optimum (see the module docstring), or ``None``.
        x: the primal point, shape ``(n_cols,)``, or ``None``.
        duals: LP row duals (shape ``(n_rows,)``), when the backend provides them.
        dual_ray: a Farkas ray over the rows for an infeasible LP, when available.
        solver: the backend's name.
        info: backend details; HiGHS fills ``time``, ``nodes``, ``gap``, ``dual_bound``,
            ``status_text``.
    """

    status: SolveStatus
    objective: float | None
    bound: float | None
    x: NDArray[np.float64] | None
    duals: NDArray[np.float64] | None = None
    dual_ray: NDArray[np.float64] | None = None
    solver: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.status, SolveStatus):
            object.__setattr__(self, "status", SolveStatus(self.status))
        for name in ("x", "duals", "dual_ray"):
            object.__setattr__(self, name, _frozen_vector(getattr(self, name)))
        for name in ("objective", "bound"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else float(value))
        object.__setattr__(self, "info", types.MappingProxyType(dict(self.info)))

    @property
    def has_solution(self) -> bool:
        """True when a primal point is available."""
        return self.x is not None

    def proves_above(self, threshold: float = 0.0) -> bool:
        """True when the proven bound shows ``optimum > threshold`` (infeasible counts)."""
        if self.status is SolveStatus.INFEASIBLE:
            return True
        return self.bound is not None and self.bound > threshold

    def __repr__(self) -> str:
        return (
            f"SolveResult(status={self.status.name}, objective={self.objective!r}, "
            f"bound={self.bound!r}, solver={self.solver!r})"
        )


def solve_empty_problem(problem: MilpProblem, solver: str) -> SolveResult:
    """Result for a problem that has no columns, or an empty row whose range excludes 0.

    Such a problem is decided without a solver: it is feasible iff every row whose entries are
    all zero has ``row_lower <= 0 <= row_upper``; without columns the optimum is ``offset``.
    """
    empty_rows = np.diff(problem.A.indptr) == 0
    bad = (problem.row_lower[empty_rows] > 0.0) | (problem.row_upper[empty_rows] < 0.0)
    info: dict[str, Any] = {"time": 0.0, "nodes": 0, "gap": 0.0}
    if bad.any():
        return SolveResult(
            SolveStatus.INFEASIBLE,
            None,
            math.inf,
            None,
            solver=solver,
            info=info | {"dual_bound": math.inf, "status_text": "empty row excludes 0"},
        )
    if problem.n_cols:
        raise InvalidOptionsError("solve_empty_problem: the problem has columns")
    return SolveResult(
        SolveStatus.OPTIMAL,
        problem.offset,
        problem.offset,
        np.zeros(0),
        duals=np.zeros(problem.n_rows),
        solver=solver,
        info=info | {"dual_bound": problem.offset, "status_text": "empty model"},
    )


@runtime_checkable
class MilpSolver(Protocol):
    """Anything that solves a :class:`~nncert.formulations.milp.MilpProblem` (minimisation).

    Attributes:
        name: registry name (``"highs"``, ``"pyomo:cbc"``, ...).
        exact: True when a returned ``bound``/``INFEASIBLE`` is a proof.

    ``solve`` arguments:
        time_limit: seconds (``None``: no limit).
        objective_target: stop as soon as an incumbent with ``objective <= objective_target``
            is found (status ``OBJECTIVE_TARGET``); for Model 1 use ``0.0``.
        bound_target: stop as soon as the proven bound exceeds ``bound_target`` (status
            ``INTERRUPTED`` with ``bound > bound_target``); for Model 1 use ``0.0``.
        initial_solution: a full point (``n_cols`` entries) or the inputs only
            (``problem.index.n_inputs`` entries) to start from.
    """

    name: str
    exact: bool

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
        """Solve ``problem``; see the class docstring."""
        ...


@runtime_checkable
class QuboSolver(Protocol):
    """Anything that minimises a QUBO problem (see ``nncert.formulations.qubo``)."""

    name: str
    exact: bool

    def solve(self, problem: Any, /, *, time_limit: float | None = None) -> SolveResult:
        """Solve ``problem``."""
        ...


__all__ = ["MilpSolver", "QuboSolver", "SolveResult", "SolveStatus", "solve_empty_problem"]
