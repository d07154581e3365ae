r"""Benders decomposition as a composite solver (DESIGN.md 7, FORMULATIONS.md 9).

:class:`BendersSolver` combines a *master* solver over the activation binaries ``delta`` with an
LP *subproblem* solver (HiGHS) for the continuous variables, as an outer loop (highspy has no
working lazy-constraint callback, 9.11). It solves a :class:`~nncert.formulations.milp.MilpProblem`
split by :func:`~nncert.formulations.benders.split_milp`; each iteration

1. solves the elastic LP ``E_M(delta_bar)`` (always feasible, 9.3) and reads its ``row_dual``;
2. adds the optimality cut ``eta >= L(delta)`` of those duals and, with Magnanti–Wong on, the cut of
   the LP at the core point ``delta_core <- (delta_core + delta_bar)/2`` (both are valid for every
   ``delta``; the standard cut keeps ``delta_bar`` cut off, 9.5);
3. updates the upper bound ``UB`` from points that are *really* feasible: a zero-slack LP
   solution, or the value of the LP's input part under ``evaluate`` (the network's forward pass);
4. solves the master over the last ``cut_window`` cuts (FIFO) and sets ``delta_bar`` to its
   answer.

**Lower bounds are sound or absent** (9.7, normative):

* a MILP master (HiGHS) that is ``exact``: its proven dual bound ``res.bound``;
* an exactly solved QUBO master (``exact-qubo``: ``dimod.ExactSolver`` or the structured
  branch and bound of :mod:`nncert.solvers.exact_qubo`, slack penalization): ``min(E, bound) -
  bound_correction`` with ``bound`` the solver's proven lower bound of the ground energy (the
  resolution-corrected bound of :mod:`nncert.formulations.qubo`). Such a bound trails the
  master optimum by up to ``bound_correction + 1/(4P)`` (plus the solver's gap); the eta range
  narrows to ``[LB, UB]`` every iteration, so the step shrinks until it reaches its floor, and
  only then does the loop stop ``"optimal"`` with ``UB - LB`` within that resolution;
* a heuristic master (simulated annealing, tabu, a QPU): **none**. The loop is then a heuristic
  search that can only falsify; every ``exact_check_every`` iterations, and when it stops, the
  optimum of the master over every cut is established exactly by ``exact_master`` (HiGHS MILP,
  or enumeration for few binaries) — only then is a lower bound reported (``master_exact``).
  The periodic exact optimum's minimiser is also the next ``delta`` (if not visited yet), so a
  poor annealer cannot keep the loop from converging.

The decoded ``eta`` of a QUBO master is never used: ``eta_hat = max_k L_k(delta_hat)`` is
recomputed in float64 and only logged. ``LB`` is the running maximum of the sound bounds (a FIFO
window can lower a master's optimum, never a bound already proven); ``UB`` the running minimum.

Elastic penalty: every cut is valid for any ``M``, and ``E_M`` grows with ``M``. When an exact
master shows ``LB >= min E_M(delta)`` (the elastic problem is solved) but the best real point is
still above ``LB``, ``M`` is multiplied by 10 (up to ``elastic_M_max``) and the loop continues
with the cuts kept.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.formulations.benders import (
    ENUMERATE_MAX,
    BendersSplit,
    enumerate_master,
    master_values,
    split_milp,
)
from nncert.formulations.milp import MilpProblem
from nncert.formulations.qubo import QuboMasterOptions, benders_master_qubo
from nncert.solvers.base import SolveResult, SolveStatus
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import FloatArray

#: BendersRun.status -> SolveStatus
_STATUS = {
    "optimal": SolveStatus.OPTIMAL,
    "bound_target": SolveStatus.INTERRUPTED,
    "objective_target": SolveStatus.OBJECTIVE_TARGET,
    "iteration_limit": SolveStatus.ITERATION_LIMIT,
    "time_limit": SolveStatus.TIME_LIMIT,
    "stalled": SolveStatus.FEASIBLE,
    "elastic_limit": SolveStatus.FEASIBLE,
    "spin_budget": SolveStatus.ERROR,
    "error": SolveStatus.ERROR,
}


@dataclass(frozen=True)
class BendersOptions:
    """Options of :class:`BendersSolver`.

    Attributes:
        max_iterations: iteration limit.
        gap_tol: stop when ``UB - LB <= gap_tol`` (absolute).
        time_limit: seconds for the whole loop (``None``: unlimited; ``solve(time_limit=)``
            overrides).
        elastic_M: initial slack cost ``M`` of the elastic subproblem.
        elastic_M_max: largest ``M`` (multiplied by 10 when the elastic problem is solved).
        magnanti_wong: add the Magnanti–Wong cut at the core point too.
        cut_window: the master keeps only the last ``cut_window`` cuts (FIFO; ``None``: all).
            The seed cut ``eta >= eta_lo`` is a bound of ``eta`` and never dropped.
        qubo: encoding of a QUBO master.
        max_master_variables: largest QUBO master (the window shrinks to fit; the spin budget).
        max_stall: a master that proposes no new ``delta`` this many times in a row stops the
            loop (``"stalled"``).
        final_exact_master: for a heuristic master, establish the final master optimum exactly
            (``exact_master``) so that a sound lower bound can be reported.
        exact_check_every: for a heuristic master, also solve the master over all cuts
            exactly every this many iterations (a sound bound; ``None``: only at the end).
        audit_master: log the exact optimum of each master (by enumeration when
            ``n_delta <= ENUMERATE_MAX``, else the master MILP on HiGHS) next to the heuristic
            answer (benchmarks: how often annealing reaches the master optimum).
    """

    max_iterations: int = 100
    gap_tol: float = 1e-6
    time_limit: float | None = None
    elastic_M: float = 100.0
    elastic_M_max: float = 1e6
    magnanti_wong: bool = True
    cut_window: int | None = None
    qubo: QuboMasterOptions = field(default_factory=QuboMasterOptions)
    max_master_variables: int | None = None
    max_stall: int = 3
    final_exact_master: bool = True
    exact_check_every: int | None = None
    audit_master: bool = False

    def __post_init__(self) -> None:
        if self.max_iterations < 1:
            raise InvalidOptionsError("BendersOptions: max_iterations must be >= 1")
        if not (self.gap_tol >= 0):
            raise InvalidOptionsError("BendersOptions: gap_tol must be >= 0")
        if not (0 < self.elastic_M <= self.elastic_M_max):
            raise InvalidOptionsError("BendersOptions: need 0 < elastic_M <= elastic_M_max")
        if self.cut_window is not None and self.cut_window < 1:
            raise InvalidOptionsError("BendersOptions: cut_window must be >= 1 or None")
        if self.time_limit is not None and not self.time_limit > 0:
            raise InvalidOptionsError("BendersOptions: time_limit must be > 0")


@dataclass(frozen=True)
class BendersIteration:
    """One line of the Benders log (frozen).

    Attributes:
        iteration: 1-based.
        lower_bound: running sound lower bound (``None``: none proven yet).
        upper_bound: running upper bound from real points (``inf``: none yet).
        master_bound: this master's proven bound (``None`` for heuristic masters).
        master_value: ``eta_hat = max_k L_k(delta_hat)`` over the master's cuts, in float64.
        master_optimum: the exact optimum of the same master (``audit_master``), else ``None``.
        master_energy: best QUBO energy (QUBO masters).
        sub_value: ``E_M(delta_bar)`` of this iteration's subproblem.
        true_value: ``evaluate`` at the subproblem's input part (``None`` without evaluator).
        slack: total elastic slack of the subproblem solution.
        n_cuts: cuts in the master.
        master_variables: variables of the master (QUBO: spins; MILP: binaries).
        elastic_M: the slack cost used.
        new_delta: whether the master proposed a ``delta`` not evaluated before.
        time: seconds since the start.
    """

    iteration: int
    lower_bound: float | None
    upper_bound: float
    master_bound: float | None
    master_value: float
    master_optimum: float | None
    master_energy: float | None
    sub_value: float
    true_value: float | None
    slack: float
    n_cuts: int
    master_variables: int
    elastic_M: float
    new_delta: bool
    time: float


@dataclass(frozen=True, eq=False)
class BendersRun:
    """The outcome of a Benders loop.

    Attributes:
        status: ``"optimal"``, ``"bound_target"``, ``"objective_target"``,
            ``"iteration_limit"``, ``"time_limit"``, ``"stalled"``, ``"elastic_limit"``,
            ``"spin_budget"`` or ``"error"``.
        lower_bound: sound lower bound of the MILP optimum, or ``None``.
        upper_bound: best value of a real point (``inf``: none).
        master_exact: whether ``lower_bound`` rests on an exactly solved master.
        lower_bound_source: ``"master"``, ``"periodic_exact_master"``, ``"final_exact_master"``
            or ``""``.
        best_x: full column vector of the best subproblem point (may carry elastic slack).
        best_input: input part of the point that achieved ``upper_bound``.
        iterations: the log.
        n_cuts: cuts generated.
        spins: the largest master solved (QUBO variables, or binaries for a MILP master).
        master: the master solver's name.
        message: details for ``"error"``.
        cut_alpha: constants of every cut generated, shape ``(n_cuts,)``.
        cut_beta: slopes of every cut, shape ``(n_cuts, n_delta)``.
    """

    status: str
    lower_bound: float | None
    upper_bound: float
    master_exact: bool
    lower_bound_source: str
    best_x: FloatArray | None
    best_input: FloatArray | None
    iterations: tuple[BendersIteration, ...]
    n_cuts: int
    spins: int
    master: str
    message: str = ""
    cut_alpha: FloatArray = field(default_factory=lambda: np.zeros(0))
    cut_beta: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))


class _Cuts:
    """All cuts (``alpha``, ``beta``) plus the FIFO window the master sees."""

    def __init__(self, n: int, window: int | None) -> None:
        self.n = n
        self.alpha: list[float] = []
        self.beta: list[FloatArray] = []
        self.window: deque[int] = deque(maxlen=window)

    def add(self, a: float, b: FloatArray) -> None:
        for k in range(len(self.alpha) - 1, max(-1, len(self.alpha) - 8), -1):
            if self.alpha[k] == a and np.array_equal(self.beta[k], b):
                if k not in self.window:
                    self.window.append(k)
                return
        self.alpha.append(float(a))
        self.beta.append(np.asarray(b, dtype=np.float64).reshape(self.n))
        self.window.append(len(self.alpha) - 1)

    def arrays(self, idx: list[int] | None = None) -> tuple[FloatArray, FloatArray]:
        ids = list(range(len(self.alpha))) if idx is None else idx
        if not ids:
            return np.zeros(0), np.zeros((0, self.n))
        return np.array([self.alpha[i] for i in ids]), np.vstack([self.beta[i] for i in ids])


@dataclass
class _MasterAnswer:
    delta: NDArray[np.int8]
    bound: float | None
    energy: float | None
    variables: int
    candidates: list[NDArray[np.int8]]
    #: width below which the master's bound cannot close the gap (QUBO resolution)
    resolution: float = 0.0


class BendersSolver:
    """Benders decomposition: a master (MILP or QUBO solver) plus an LP subproblem solver.

    Args:
        master: an exact MILP solver over ``delta`` (e.g. ``HighsSolver``) or a QUBO solver
            (``problem_kind == "qubo"``: :class:`~nncert.solvers.dimod_solver.DimodSolver`).
        subproblem: an LP solver that returns row duals (``HighsSolver``).
        options: loop options.
        exact_master: MILP solver for the final exact master of heuristic runs (default: a
            HiGHS solver built on first use); enumeration is used for ``n_delta <= 12``.
        name: registry/report name.

    ``solve`` implements :class:`~nncert.solvers.base.MilpSolver`; its ``bound`` is ``None``
    unless a sound lower bound was established (so ``exact = True`` is honest).
    """

    exact = True
    problem_kind = "milp"

    def __init__(
        self,
        master: Any,
        subproblem: Any,
        options: BendersOptions | None = None,
        *,
        exact_master: Any | None = None,
        name: str = "benders",
    ) -> None:
        for obj, what in ((master, "master"), (subproblem, "subproblem")):
            if not (hasattr(obj, "solve") and hasattr(obj, "exact")):
                raise InvalidOptionsError(f"BendersSolver: {what} {obj!r} is not a solver")
        self.master = master
        self.subproblem = subproblem
        self.options = options or BendersOptions()
        self._exact_master = exact_master
        self.name = name
        self.master_is_qubo = getattr(master, "problem_kind", "milp") == "qubo"

    # -- helpers -----------------------------------------------------------------------------
    def _exact_master_solver(self) -> Any:
        if self._exact_master is None:
            self._exact_master = HighsSolver(mip_rel_gap=0.0)
        return self._exact_master

    def _solve_master(
        self,
        split: BendersSplit,
        cuts: _Cuts,
        lb: float | None,
        ub: float,
        remaining: float | None,
    ) -> _MasterAnswer | str:
        n = split.n_delta
        idx = list(cuts.window)
        if not self.master_is_qubo:
            a, B = cuts.arrays(idx)
            res = self.master.solve(split.master_milp(a, B), time_limit=remaining)
            if res.x is None:
                if res.status is SolveStatus.TIME_LIMIT:
                    return "time_limit"
                return f"MILP master failed ({res.status.value})"
            d = np.round(res.x[:n]).astype(np.int8)
            bound = res.bound if (self.master.exact and res.bound is not None) else None
            return _MasterAnswer(d, bound, None, n, [d])
        lo = split.eta_lo if lb is None else max(split.eta_lo, lb)
        hi = min(split.eta_hi, ub) if math.isfinite(ub) else split.eta_hi
        hi = max(hi, lo)
        limit = self.options.max_master_variables
        mv = getattr(self.master, "max_variables", None)
        if mv is not None:
            limit = mv if limit is None else min(limit, mv)
        while True:
            a, B = cuts.arrays(idx)
            q = benders_master_qubo(a, B, (lo, hi), self.options.qubo)
            if limit is None or q.num_variables <= limit or len(idx) <= 1:
                break
            idx = idx[1:]  # drop the oldest cut until the QUBO fits
        if limit is not None and q.num_variables > limit:
            return "spin_budget"
        res = self.master.solve(q, time_limit=remaining)
        if res.x is None:
            if res.status is SolveStatus.TIME_LIMIT:
                return "time_limit"
            return f"QUBO master failed ({res.status.value})"
        d = q.decode(res.x)["delta"]
        bound = None
        resolution = 0.0
        if self.master.exact and res.status is SolveStatus.OPTIMAL and res.objective is not None:
            if math.isfinite(q.bound_correction):
                # the proven minimum energy: the dual bound when the solver gives one (MILP
                # linearisation, structured search within a gap), else the exhaustive optimum
                base = res.objective if res.bound is None else min(res.objective, res.bound)
                bound = base - q.bound_correction
                # E_min >= m - 1/(4P), so at convergence UB - LB <= this; it is final only
                # when a narrower eta range would not refine the step
                if q.meta.get("step_is_final", False):
                    resolution = (
                        q.bound_correction + 1.0 / (4.0 * q.meta["penalty"]) + res.objective - base
                    )
        cands = [np.asarray(s[:n], dtype=np.int8) for s in res.info.get("samples", ())]
        if cands:
            vals = master_values(a, B, np.array(cands), lo)
            cands = [cands[i] for i in np.argsort(vals, kind="stable")]
        return _MasterAnswer(d, bound, res.objective, q.num_variables, [d, *cands], resolution)

    # -- main loop ---------------------------------------------------------------------------
    def run(
        self,
        split: BendersSplit,
        *,
        time_limit: float | None = None,
        objective_target: float | None = None,
        bound_target: float | None = None,
        evaluate: Callable[[FloatArray], float] | None = None,
        initial_delta: ArrayLike | None = None,
    ) -> BendersRun:
        """Run the loop on a split problem (see the module docstring)."""
        opts = self.options
        t0 = time.perf_counter()
        tl = time_limit if time_limit is not None else opts.time_limit
        deadline = None if tl is None else t0 + float(tl)

        def remaining() -> float | None:
            return None if deadline is None else max(1e-3, deadline - time.perf_counter())

        n = split.n_delta
        problem = split.problem
        ins = problem.index.inputs
        cuts = _Cuts(n, opts.cut_window)
        lb: float | None = None
        lb_source = ""
        ub = math.inf
        ub_elastic = math.inf
        best_x: FloatArray | None = None
        best_input: FloatArray | None = None
        M = float(opts.elastic_M)
        if initial_delta is None:
            delta = np.zeros(n, dtype=np.int8)
        else:
            delta = np.asarray(initial_delta).reshape(n).astype(np.int8)
        core = np.full(n, 0.5)
        visited: set[bytes] = set()
        stall = 0
        spins = 0
        log: list[BendersIteration] = []
        status = "iteration_limit"
        message = ""
        new_delta = True
        for it in range(1, opts.max_iterations + 1):
            if deadline is not None and time.perf_counter() >= deadline:
                status = "time_limit"
                break
            visited.add(delta.tobytes())
            # 1. subproblem
            res = self.subproblem.solve(split.subproblem(delta, M), time_limit=remaining())
            if res.status is not SolveStatus.OPTIMAL or res.duals is None or res.x is None:
                if res.status is SolveStatus.TIME_LIMIT:
                    status = "time_limit"
                else:
                    status, message = "error", f"subproblem LP: {res.status.value}"
                break
            E = float(res.objective) if res.objective is not None else math.inf
            v = np.asarray(res.x)
            slack = split.slack_total(v)
            ub_elastic = min(ub_elastic, E)
            full = split.assemble(v, delta)
            if slack <= 1e-9 * (1.0 + abs(E)) and E < ub:
                ub, best_x, best_input = E, full, full[ins].copy()
            true_value = None
            if evaluate is not None:
                xin = full[ins].copy()
                true_value = float(evaluate(xin))
                if true_value < ub:
                    ub, best_x, best_input = true_value, full, xin
            a, b = split.cut(res.duals, M)
            cuts.add(a, b)
            if opts.magnanti_wong and n:
                core = 0.5 * (core + delta)
                rc = self.subproblem.solve(split.subproblem(core, M), time_limit=remaining())
                if rc.status is SolveStatus.OPTIMAL and rc.duals is not None:
                    a2, b2 = split.cut(rc.duals, M)
                    cuts.add(a2, b2)
            if objective_target is not None and ub <= objective_target:
                log.append(
                    self._line(
                        it,
                        lb,
                        ub,
                        None,
                        math.nan,
                        None,
                        None,
                        E,
                        true_value,
                        slack,
                        len(cuts.window),
                        0,
                        M,
                        new_delta,
                        t0,
                    )
                )
                status = "objective_target"
                break
            # 2. master
            if n == 0:
                a_all, B_all = cuts.arrays()
                mval = float(master_values(a_all, B_all, np.zeros((1, 0)), split.eta_lo)[0])
                lb = mval if lb is None else max(lb, mval)
                lb_source = "master"
                log.append(
                    self._line(
                        it,
                        lb,
                        ub,
                        mval,
                        mval,
                        mval,
                        None,
                        E,
                        true_value,
                        slack,
                        len(cuts.window),
                        0,
                        M,
                        new_delta,
                        t0,
                    )
                )
                status = "optimal"
                break
            ans = self._solve_master(split, cuts, lb, ub, remaining())
            if isinstance(ans, str):
                status = ans if ans in ("spin_budget", "time_limit") else "error"
                message = "" if ans == "time_limit" else ans
                break
            spins = max(spins, ans.variables)
            a_w, B_w = cuts.arrays(list(cuts.window))
            mval = float(master_values(a_w, B_w, ans.delta, split.eta_lo)[0])
            m_opt = None
            if opts.audit_master and n <= ENUMERATE_MAX:
                m_opt = enumerate_master(a_w, B_w, n, split.eta_lo)[0]
            elif opts.audit_master:  # the same master (window cuts) as an exact MILP
                aud = self._exact_master_solver().solve(
                    split.master_milp(a_w, B_w), time_limit=remaining()
                )
                if aud.status is SolveStatus.OPTIMAL and aud.objective is not None:
                    m_opt = float(aud.objective)
            if ans.bound is not None:
                if lb is None or ans.bound > lb:
                    lb, lb_source = ans.bound, "master"
            every = opts.exact_check_every
            steer: list[NDArray[np.int8]] = []
            if ans.bound is None and every is not None and it % every == 0:
                fin, fin_delta = self._solve_exact_master(split, cuts, deadline)
                if fin is not None and (lb is None or fin > lb):
                    lb, lb_source = fin, "periodic_exact_master"
                if fin_delta is not None:
                    # the classically recomputed master optimum steers the heuristic run
                    steer.append(fin_delta)
            # choose the next delta: the master's, or its best unvisited alternative
            nxt = None
            for cand in [*steer, *ans.candidates]:
                if cand.tobytes() not in visited:
                    nxt = cand
                    break
            new_delta = nxt is not None
            log.append(
                self._line(
                    it,
                    lb,
                    ub,
                    ans.bound,
                    mval,
                    m_opt,
                    ans.energy,
                    E,
                    true_value,
                    slack,
                    len(cuts.window),
                    ans.variables,
                    M,
                    new_delta,
                    t0,
                )
            )
            tol = max(
                opts.gap_tol,
                1e-9 * (1.0 + abs(ub) if math.isfinite(ub) else 1.0),
                ans.resolution,  # an exact QUBO master closes the gap to its resolution only
            )
            if lb is not None and bound_target is not None and lb > bound_target:
                status = "bound_target"
                break
            if lb is not None and ub - lb <= tol:
                status = "optimal"
                break
            exact_here = ans.bound is not None
            etol = max(opts.gap_tol, 1e-6 * (1.0 + abs(ub_elastic)))
            if exact_here and lb is not None and (lb >= ub_elastic - etol or nxt is None):
                # the elastic problem is solved at this M: raise M (cuts stay valid)
                if M >= opts.elastic_M_max:
                    status = "elastic_limit"
                    break
                M = min(M * 10.0, opts.elastic_M_max)
                ub_elastic = math.inf
                visited.clear()
                delta = ans.delta
                stall = 0
                continue
            if nxt is None:
                stall += 1
                if stall >= opts.max_stall:
                    status = "stalled"
                    break
                delta = ans.delta
                continue
            stall = 0
            delta = nxt
        n_cuts = len(cuts.alpha)
        master_exact = lb is not None
        done = status in ("optimal", "bound_target", "objective_target")
        if not done and opts.final_exact_master and n_cuts and status != "error":
            fin, _ = self._solve_exact_master(split, cuts, deadline)
            if fin is not None and (lb is None or fin > lb):
                lb, lb_source, master_exact = fin, "final_exact_master", True
                if status != "spin_budget":
                    if bound_target is not None and lb > bound_target:
                        status = "bound_target"
                    elif ub - lb <= opts.gap_tol:
                        status = "optimal"
        return BendersRun(
            status=status,
            lower_bound=lb,
            upper_bound=ub,
            master_exact=master_exact,
            lower_bound_source=lb_source,
            best_x=best_x,
            best_input=best_input,
            iterations=tuple(log),
            n_cuts=n_cuts,
            spins=spins,
            master=str(getattr(self.master, "name", type(self.master).__name__)),
            message=message,
            cut_alpha=cuts.arrays()[0],
            cut_beta=cuts.arrays()[1],
        )

    def _solve_exact_master(
        self, split: BendersSplit, cuts: _Cuts, deadline: float | None
    ) -> tuple[float | None, NDArray[np.int8] | None]:
        """Exact optimum of the master over *all* cuts (a sound lower bound, or ``None``) and
        its minimiser (or ``None``)."""
        a, B = cuts.arrays()
        n = split.n_delta
        if n <= 12:
            val, arg = enumerate_master(a, B, n, split.eta_lo)
            return val, arg
        rem = None if deadline is None else deadline - time.perf_counter()
        if rem is not None and rem <= 0.05:
            return None, None
        solver = self._exact_master_solver()
        res = solver.solve(split.master_milp(a, B), time_limit=rem)
        delta = None if res.x is None else np.round(res.x[:n]).astype(np.int8)
        if getattr(solver, "exact", False) and res.bound is not None:
            return float(res.bound), delta
        return None, delta

    @staticmethod
    def _line(
        it: int,
        lb: float | None,
        ub: float,
        mbound: float | None,
        mval: float,
        mopt: float | None,
        energy: float | None,
        E: float,
        tv: float | None,
        slack: float,
        n_cuts: int,
        nvars: int,
        M: float,
        new: bool,
        t0: float,
    ) -> BendersIteration:
        return BendersIteration(
            it,
            lb,
            ub,
            mbound,
            mval,
            mopt,
            energy,
            E,
            tv,
            slack,
            n_cuts,
            nvars,
            M,
            new,
            time.perf_counter() - t0,
        )

    # -- MilpSolver protocol -----------------------------------------------------------------
    def solve(
        self,
        problem: MilpProblem,
        /,
        *,
        time_limit: float | None = None,
        objective_target: float | None = None,
        bound_target: float | None = None,
        initial_solution: ArrayLike | None = None,
        eta_bounds: tuple[float, float] | None = None,
        evaluate: Callable[[FloatArray], float] | None = None,
    ) -> SolveResult:
        """Split ``problem`` and run the loop; see :class:`~nncert.solvers.base.MilpSolver`.

        Extra keywords: ``eta_bounds`` (sound bounds of the optimum, for the seed cut and the
        QUBO range) and ``evaluate`` (true objective of an input point, for the upper bound).
        ``initial_solution`` may be a full column vector; its binaries seed ``delta``.

        Returns:
            ``bound`` is the sound lower bound or ``None``; ``info["benders"]`` is the
            :class:`BendersRun`; ``info["best_input"]`` the input of the best point.
        """
        if not isinstance(problem, MilpProblem):
            raise InvalidOptionsError(
                f"BendersSolver.solve: expected a MilpProblem, got {type(problem).__name__}"
            )
        split = split_milp(problem, eta_bounds=eta_bounds)
        init = None
        if initial_solution is not None:
            s = np.asarray(initial_solution, dtype=np.float64).reshape(-1)
            if s.size == problem.n_cols:
                init = np.round(s[split.delta_cols]).astype(np.int8)
        run = self.run(
            split,
            time_limit=time_limit,
            objective_target=objective_target,
            bound_target=bound_target,
            evaluate=evaluate,
            initial_delta=init,
        )
        return benders_result(run, self.name)


def benders_result(run: BendersRun, name: str = "benders") -> SolveResult:
    """The :class:`SolveResult` view of a :class:`BendersRun`."""
    ub = run.upper_bound if math.isfinite(run.upper_bound) else None
    info = {
        "benders": run,
        "iterations": len(run.iterations),
        "time": run.iterations[-1].time if run.iterations else 0.0,
        "best_input": run.best_input,
        "master_exact": run.master_exact,
        "lower_bound_source": run.lower_bound_source,
        "spins": run.spins,
        "n_cuts": run.n_cuts,
        "master": run.master,
        "status_text": run.status + (f": {run.message}" if run.message else ""),
    }
    return SolveResult(
        _STATUS.get(run.status, SolveStatus.ERROR),
        ub,
        run.lower_bound,
        run.best_x,
        solver=name,
        info=info,
    )


__all__ = ["BendersIteration", "BendersOptions", "BendersRun", "BendersSolver", "benders_result"]
