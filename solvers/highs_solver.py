"""HiGHS backend (highspy): the fast, exact default for :class:`MilpProblem`.

The problem arrays go to HiGHS in one ``passModel`` call (CSC matrix, int32 indices); no
per-row Python calls. Early stops for verification:

* ``objective_target`` (a counterexample exists): the HiGHS option ``objective_target`` plus a
  ``cbMipInterrupt`` test ``incumbent <= target`` (so the stop is inclusive), status
  ``OBJECTIVE_TARGET``;
* ``bound_target`` (the property is proven): a ``cbMipInterrupt`` test ``mip_dual_bound >
  target`` that sets ``user_interrupt``, status ``INTERRUPTED`` with ``bound > target``.

Gotchas handled here (ECOSYSTEM.md 8.1):

* HiGHS prints a banner when the first ``Highs`` object of a process is built, before
  ``output_flag`` can be set; the first construction redirects file descriptor 1 to
  ``os.devnull`` (and flushes C stdio) for its duration.
* HiGHS's global scheduler keeps the ``threads`` value of the first solve in a process; a later
  solve with another value fails. This module remembers the first value and raises
  :class:`InvalidOptionsError` on a conflicting one. Use one fixed ``threads`` per process.
* Dual (Farkas) rays need presolve off: when an infeasible LP yields no ray, the LP is solved
  again with ``presolve="off"``.
* HiGHS's MIP presolve does not poll ``time_limit`` in every rule: its *sparsify* rule
  (``presolve_rule_off`` bit 14) ran 10.4 s under a 0.4 s limit on a Model 2 MILP of a 6x200
  sigmoid MNIST network (363k nonzeros, 32 binaries; presolve without it: 0.04 s), so a
  verification stage overran its budget by that much. It is switched off when the time limit
  is below :data:`SPARSIFY_SECONDS_PER_NONZERO` times the nonzeros (twice that observed rate);
  with time to spare it stays on, because it pays: on a dist_shift Model 2 MILP the
  counterexample was found in 66 s with it and not in 150 s without it. The parallel rows
  and columns rule (bit 13) is always off, as a precaution: other HiGHS users have reported
  it certifying wrong optima on badly scaled columns (not reproduced here; big-M models have
  coefficients from 1e-8 to 20); on three MNIST 256x2 and two ACAS Xu MILPs answers and
  times are unchanged without it. An explicit ``options={"presolve_rule_off": ...}`` replaces
  both choices.

Large LPs go to the interior point solver (``solver="ipm"``, crossover on) unless ``options``
name a ``solver``: HiGHS's choice is the dual simplex, which took 16.5 s on the first Model 2
LP of a 6x200 sigmoid MNIST network (3,184 columns, 363k nonzeros) where IPM with crossover
takes 1.8 s and ends at the same basic optimum (objective equal to the last digit). Any
first answer other than optimal or the time limit (numerical trouble, or an infeasibility
claim, whose Farkas ray must come from the simplex) is retried with the simplex in the time
left, and every presolve-off retry below uses the simplex. HiGHS's crossover may poll the
time limit less often than the simplex (not seen: 1.8 s in all).

Sign conventions (HiGHS): for ``min c^T x`` the row duals ``y`` and column duals ``s`` satisfy
``c - A^T y - s = 0``; a row dual is ``>= 0`` when its lower bound is active and ``<= 0`` when
its upper bound is active. The dual ray is HiGHS's ``getDualRay`` vector (one entry per row).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import highspy
import numpy as np
from numpy.typing import ArrayLike

from nncert.formulations.milp import MilpProblem
from nncert.solvers.base import SolveResult, SolveStatus, solve_empty_problem
from nncert.verify.errors import InvalidOptionsError

_MS = highspy.HighsModelStatus

#: LPs with at least this many nonzeros go to HiGHS's interior point solver (with crossover, so
#: the solution, row duals and status are a basic solution's, as from the simplex); smaller ones
#: and every retry to the simplex (module docstring)
IPM_MIN_NONZEROS = 100_000

#: HiGHS ``presolve_rule_off`` bits set for every solve: ``kPresolveRuleParallelRowsAndCols``
#: (bit 13), a precaution (module docstring)
PRESOLVE_RULES_OFF = 1 << 13

#: ``presolve_rule_off`` bit of ``kPresolveRuleSparsify``, which does not stop at the time limit
SPARSIFY_RULE = 1 << 14

#: sparsify is switched off when ``time_limit`` is below this many seconds per nonzero (twice
#: the 29 us per nonzero it took on a 363k-nonzero Model 2 MILP)
SPARSIFY_SECONDS_PER_NONZERO = 6e-5

#: HiGHS model status -> SolveStatus (anything else is ERROR).
STATUS_MAP: dict[Any, SolveStatus] = {
    _MS.kOptimal: SolveStatus.OPTIMAL,
    _MS.kInfeasible: SolveStatus.INFEASIBLE,
    _MS.kUnbounded: SolveStatus.UNBOUNDED,
    _MS.kTimeLimit: SolveStatus.TIME_LIMIT,
    _MS.kIterationLimit: SolveStatus.ITERATION_LIMIT,
    _MS.kObjectiveTarget: SolveStatus.OBJECTIVE_TARGET,
    _MS.kObjectiveBound: SolveStatus.INTERRUPTED,
    _MS.kSolutionLimit: SolveStatus.FEASIBLE,
    _MS.kInterrupt: SolveStatus.INTERRUPTED,
    getattr(_MS, "kHighsInterrupt", _MS.kInterrupt): SolveStatus.INTERRUPTED,
}

_banner_lock = threading.Lock()
_banner_done = False
_threads_lock = threading.Lock()
_scheduler_threads: int | None = None


@contextlib.contextmanager
def _stdout_fd_silenced() -> Iterator[None]:
    """Send file descriptor 1 to ``os.devnull`` (no-op when fd 1 cannot be duplicated)."""
    try:
        sys.stdout.flush()
    except (AttributeError, ValueError, OSError):  # pragma: no cover - exotic stdout
        pass
    try:
        saved = os.dup(1)
    except OSError:  # pragma: no cover - fd 1 closed
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        _flush_c_stdout()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _flush_c_stdout() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # pragma: no cover - no libc (Windows)
        pass


def new_highs() -> highspy.Highs:
    """A silent ``highspy.Highs`` (the process's first one is built with stdout silenced)."""
    global _banner_done
    if not _banner_done:
        with _banner_lock:
            if not _banner_done:
                with _stdout_fd_silenced():
                    h = highspy.Highs()
                _banner_done = True
                h.setOptionValue("output_flag", False)
                return h
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


def claim_threads(threads: int) -> None:
    """Fix (or check) the ``threads`` value of HiGHS's process-wide scheduler.

    Every HiGHS user in the process (:class:`HighsSolver`, Pyomo's HiGHS) calls this before
    solving, so that the first solve does not size the scheduler differently from the rest.

    Raises:
        InvalidOptionsError: another value was claimed before.
    """
    _check_threads(threads)


def _check_threads(threads: int) -> None:
    global _scheduler_threads
    with _threads_lock:
        if _scheduler_threads is None:
            _scheduler_threads = threads
        elif _scheduler_threads != threads:
            raise InvalidOptionsError(
                f"HighsSolver: threads={threads} but HiGHS's global scheduler in this process "
                f"already uses threads={_scheduler_threads}; use one fixed threads value per "
                f"process"
            )


class HighsSolver:
    """Solve a :class:`MilpProblem` with HiGHS through highspy (exact).

    Args:
        threads: HiGHS ``threads`` option; one fixed value per process (see module docstring).
        mip_rel_gap: relative MIP gap at which HiGHS stops with OPTIMAL.
        presolve: ``"choose"``, ``"on"`` or ``"off"``.
        options: further HiGHS options passed to ``setOptionValue`` (checked by HiGHS).
        confirm_infeasible: re-solve a MIP found infeasible once more with presolve off and
            report that second answer (infeasibility proves a property, so it is double-checked;
            encoded Model-1 problems are always feasible, so this costs nothing normally).

    Raises:
        InvalidOptionsError: when HiGHS rejects an option name or value.

    Example:
        >>> from nncert.formulations.milp import MilpProblem
        >>> p = MilpProblem.from_arrays([-1.0, -1.0], [[1.0, 2.0]], [-np.inf], [3.5],
        ...                             [0.0, 0.0], [2.0, 2.0], [True, True])
        >>> HighsSolver().solve(p).objective
        -2.0
    """

    name = "highs"
    exact = True
    supports_duals = True
    supports_rays = True
    supports_warm_start = True

    def __init__(
        self,
        *,
        threads: int = 1,
        mip_rel_gap: float = 1e-4,
        presolve: str = "choose",
        options: Mapping[str, Any] | None = None,
        confirm_infeasible: bool = True,
    ) -> None:
        if not isinstance(threads, int) or threads < 0:
            raise InvalidOptionsError(f"HighsSolver: threads={threads!r} must be an int >= 0")
        if not (isinstance(mip_rel_gap, (int, float)) and 0.0 <= mip_rel_gap < math.inf):
            raise InvalidOptionsError(f"HighsSolver: mip_rel_gap={mip_rel_gap!r} must be >= 0")
        if presolve not in ("choose", "on", "off"):
            raise InvalidOptionsError(
                f"HighsSolver: presolve={presolve!r} must be 'choose', 'on' or 'off'"
            )
        self.threads = threads
        self.mip_rel_gap = float(mip_rel_gap)
        self.presolve = presolve
        self.options: dict[str, Any] = dict(options or {})
        self.confirm_infeasible = bool(confirm_infeasible)
        # validate option names/values now, so errors surface at construction
        self._apply_options(new_highs(), self.options)

    def __repr__(self) -> str:
        return (
            f"HighsSolver(threads={self.threads}, mip_rel_gap={self.mip_rel_gap}, "
            f"presolve={self.presolve!r}, options={self.options!r})"
        )

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _apply_options(h: highspy.Highs, options: Mapping[str, Any]) -> None:
        for key, value in options.items():
            if isinstance(value, (np.integer, np.floating, np.bool_)):
                value = value.item()
            status = h.setOptionValue(str(key), value)
            if status == highspy.HighsStatus.kError:
                raise InvalidOptionsError(
                    f"HighsSolver: HiGHS rejected option {key!r}={value!r} "
                    f"(unknown name or invalid value)"
                )

    def _setup(self, problem: MilpProblem, presolve: str) -> highspy.Highs:
        _check_threads(self.threads)
        h = new_highs()
        self._apply_options(
            h,
            {
                "threads": self.threads,
                "mip_rel_gap": self.mip_rel_gap,
                "presolve": presolve,
                "presolve_rule_off": PRESOLVE_RULES_OFF,
            },
        )
        self._apply_options(h, self.options)
        A = problem.A.tocsc()
        A.sort_indices()
        status = h.passModel(
            problem.n_cols,
            problem.n_rows,
            int(A.nnz),
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            float(problem.offset),
            np.ascontiguousarray(problem.c, dtype=np.float64),
            np.ascontiguousarray(problem.col_lower, dtype=np.float64),
            np.ascontiguousarray(problem.col_upper, dtype=np.float64),
            np.ascontiguousarray(problem.row_lower, dtype=np.float64),
            np.ascontiguousarray(problem.row_upper, dtype=np.float64),
            A.indptr.astype(np.int32),
            A.indices.astype(np.int32),
            np.ascontiguousarray(A.data, dtype=np.float64),
            problem.integrality.astype(np.int32),
        )
        if status == highspy.HighsStatus.kError:
            raise InvalidOptionsError("HighsSolver: HiGHS rejected the model (passModel)")
        return h

    @staticmethod
    def _warm_start(h: highspy.Highs, problem: MilpProblem, initial: ArrayLike) -> None:
        vals = np.asarray(initial, dtype=np.float64).reshape(-1)
        if vals.size == problem.n_cols:
            idx = np.arange(problem.n_cols, dtype=np.int32)
        elif vals.size == problem.index.n_inputs:
            idx = np.arange(problem.index.inputs.start, problem.index.inputs.stop, dtype=np.int32)
        else:
            raise InvalidOptionsError(
                f"HighsSolver: initial_solution has {vals.size} entries; expected "
                f"{problem.n_cols} (all columns) or {problem.index.n_inputs} (inputs)"
            )
        if not np.all(np.isfinite(vals)):
            raise InvalidOptionsError("HighsSolver: initial_solution must be finite")
        h.setSolution(int(idx.size), idx, np.ascontiguousarray(vals))

    # -- solve -------------------------------------------------------------------------------
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
        """Solve ``problem`` (a minimisation); see :class:`nncert.solvers.base.MilpSolver`.

        Returns:
            A :class:`SolveResult`; for LPs ``duals`` holds the row duals and, when infeasible,
            ``dual_ray`` a Farkas ray. ``info`` has ``time``, ``nodes``, ``gap``,
            ``dual_bound``, ``status_text``.
        """
        if not isinstance(problem, MilpProblem):
            raise InvalidOptionsError(
                f"HighsSolver.solve: expected a MilpProblem, got {type(problem).__name__}"
            )
        if time_limit is not None and not (time_limit >= 0):
            raise InvalidOptionsError(f"HighsSolver: time_limit={time_limit!r} must be >= 0")
        if problem.n_cols == 0:
            return solve_empty_problem(problem, self.name)
        # one budget for the call: a retry below gets what the first solve left, not a new
        # ``time_limit`` (two solves used to take up to twice the limit)
        end = None if time_limit is None else time.perf_counter() + float(time_limit)

        def left() -> float | None:
            return None if end is None else max(0.0, end - time.perf_counter())

        ipm = (
            not problem.is_mip
            and "solver" not in self.options
            and problem.A.nnz >= IPM_MIN_NONZEROS
        )
        result = self._solve_once(
            problem,
            self.presolve,
            time_limit,
            objective_target,
            bound_target,
            initial_solution,
            lp_solver="ipm" if ipm else None,
        )
        if ipm and result.status not in (SolveStatus.OPTIMAL, SolveStatus.TIME_LIMIT):
            # the interior point solver gave up (numerics), or claims infeasibility (which
            # needs a Farkas ray, and rays come from the simplex): the simplex in the time left
            result = self._solve_once(
                problem, self.presolve, left(), objective_target, bound_target, initial_solution
            )
        if (
            result.status is SolveStatus.ERROR
            and result.info.get("status_text") == "unbounded_or_infeasible"
            and self.presolve != "off"
        ):
            # presolve could not tell; the simplex without presolve can
            result = self._solve_once(
                problem, "off", left(), objective_target, bound_target, initial_solution
            )
        if (
            result.status is SolveStatus.INFEASIBLE
            and not problem.is_mip
            and result.dual_ray is None
            and self.presolve != "off"
        ):
            # presolve's word without a ray: the simplex without presolve either confirms it
            # (with a ray) or contradicts it (HiGHS's presolve declared a feasible LP with a
            # column of width 1.2e-7 infeasible; without presolve it is optimal)
            retry = self._solve_once(problem, "off", left(), None, None, None)
            if retry.status in (SolveStatus.INFEASIBLE, SolveStatus.OPTIMAL):
                result = retry
        if (
            result.status is SolveStatus.INFEASIBLE
            and problem.is_mip
            and self.confirm_infeasible
            and self.presolve != "off"
        ):
            # an infeasibility claim is a proof: confirm it without presolve (HiGHS 1.16's
            # presolve once declared a feasible big-M MILP infeasible at a tight tolerance)
            retry = self._solve_once(
                problem, "off", left(), objective_target, bound_target, initial_solution
            )
            info = dict(retry.info) | {
                "infeasible_confirmed": retry.status is SolveStatus.INFEASIBLE
            }
            result = dataclasses.replace(retry, info=info)
        return result

    def _solve_once(
        self,
        problem: MilpProblem,
        presolve: str,
        time_limit: float | None,
        objective_target: float | None,
        bound_target: float | None,
        initial_solution: ArrayLike | None,
        *,
        lp_solver: str | None = None,
    ) -> SolveResult:
        h = self._setup(problem, presolve)
        if (
            time_limit is not None
            and "presolve_rule_off" not in self.options
            and time_limit < SPARSIFY_SECONDS_PER_NONZERO * problem.A.nnz
        ):
            self._apply_options(h, {"presolve_rule_off": PRESOLVE_RULES_OFF | SPARSIFY_RULE})
        if lp_solver is not None:
            self._apply_options(h, {"solver": lp_solver})
        if time_limit is not None:
            self._apply_options(h, {"time_limit": float(time_limit)})
        if objective_target is not None and problem.is_mip:
            self._apply_options(h, {"objective_target": float(objective_target)})
        if initial_solution is not None:
            self._warm_start(h, problem, initial_solution)

        reason: list[str] = []
        if problem.is_mip and (objective_target is not None or bound_target is not None):

            def on_interrupt(event: Any) -> None:
                out = event.data_out
                if bound_target is not None and out.mip_dual_bound > bound_target:
                    reason.append("bound_target")
                    event.interrupt()
                elif objective_target is not None and out.mip_primal_bound <= objective_target:
                    reason.append("objective_target")
                    event.interrupt()

            h.cbMipInterrupt.subscribe(on_interrupt)

        run_status = h.run()
        model_status = h.getModelStatus()
        info = h.getInfo()
        status = STATUS_MAP.get(model_status, SolveStatus.ERROR)
        if status is SolveStatus.INTERRUPTED and reason and reason[-1] == "objective_target":
            status = SolveStatus.OBJECTIVE_TARGET
        status_text = h.modelStatusToString(model_status)
        if model_status == _MS.kUnboundedOrInfeasible:
            status_text = "unbounded_or_infeasible"
        if run_status == highspy.HighsStatus.kError and status is not SolveStatus.ERROR:
            status = SolveStatus.ERROR

        sol = h.getSolution()
        x = None
        objective = None
        if sol.value_valid and status not in (SolveStatus.INFEASIBLE, SolveStatus.ERROR):
            x = np.asarray(sol.col_value, dtype=np.float64)
            if x.size != problem.n_cols:  # pragma: no cover - defensive
                x = None
            else:
                objective = float(info.objective_function_value)

        bound: float | None
        dual_bound = float(info.mip_dual_bound) if problem.is_mip else math.nan
        if status is SolveStatus.INFEASIBLE:
            bound = math.inf
        elif status is SolveStatus.UNBOUNDED or status is SolveStatus.ERROR:
            bound = None
        elif problem.is_mip:
            bound = dual_bound if math.isfinite(dual_bound) else None
            if status is SolveStatus.OPTIMAL and bound is None:
                bound = objective
        else:
            bound = objective if status is SolveStatus.OPTIMAL else None

        duals = None
        ray = None
        if not problem.is_mip:
            if status is SolveStatus.OPTIMAL and sol.dual_valid:
                duals = np.asarray(sol.row_dual, dtype=np.float64)
            if status is SolveStatus.INFEASIBLE:
                ray_status, has_ray, values = h.getDualRay()  # type: ignore[attr-defined]
                if has_ray and ray_status != highspy.HighsStatus.kError:
                    ray = np.asarray(values, dtype=np.float64)[: problem.n_rows]

        out_info = {
            "time": float(h.getRunTime()),
            "nodes": int(info.mip_node_count) if problem.is_mip else 0,
            "gap": float(info.mip_gap) if problem.is_mip else (0.0 if x is not None else math.inf),
            "dual_bound": dual_bound if problem.is_mip else bound,
            "status_text": status_text,
            "simplex_iterations": int(info.simplex_iteration_count),
            "presolve": presolve,
            "lp_solver": lp_solver or "choose",
        }
        if reason:
            out_info["stopped_by"] = reason[-1]
        return SolveResult(status, objective, bound, x, duals, ray, self.name, out_info)


__all__ = ["STATUS_MAP", "HighsSolver", "claim_threads", "new_highs"]
