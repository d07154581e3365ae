r"""The Model 2 refinement loop (FORMULATIONS.md 7.3) as a pipeline plug-in (``--method model2``).

For one unsafe case with objective ``m(x) = max_r (A_r f(x) - b_r)``:

1. Sound pre-activation bounds (CROWN, or the caller's, e.g. windowed ones) and an initial
   partition with ``K = options.segments`` segments per banded neuron (adaptive placement).
2. Solve the Model 2 MILP with an exact solver (HiGHS). Its dual bound ``m_K`` is a sound
   lower bound of ``m* = min_x m(x)`` (the MILP over-approximates every execution):
   ``m_K > tol`` (or infeasibility) proves the case, ``exact=True``.
3. Otherwise take the MILP's candidate ``x_hat`` (an incumbent with objective ``<= tol``) and
   replay it on the real network: ``m(x_hat) <= 0`` is a counterexample (the pipeline replays
   it again). A short PGD run from ``x_hat`` looks for a real counterexample nearby.
4. A spurious candidate is cut off by splitting, at every banded neuron where it uses the
   over-approximation (slack ``|a_hat - sigma(z_hat)| > 0``), the segment holding its
   ``z_hat`` (:func:`nncert.formulations.model2.refine_at`). The refinement is nested, so
   ``m_K`` never decreases; repeat until decided or out of budget.

Reported statistics: ``segments_per_layer`` (largest ``K`` per hidden layer, ``0`` for
exactly encoded ReLU/HardTanh layers), ``gap`` (best real value minus the proven bound),
``iterations``, ``spins`` (binaries of the last MILP), ``bound_history``,
``segments_history`` (total segments of each MILP solved).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nncert.formulations.model2 import (
    MIN_WIDTH,
    BandKind,
    Model2Partition,
    Placement,
    default_banded,
    encode_model2,
    network_partition,
    reduce_problem,
    refine_at,
)
from nncert.solvers.registry import get_solver
from nncert.verify.attack import pgd_attack
from nncert.verify.bounds import LayerBounds, crown_bounds
from nncert.verify.network import FloatArray, Network
from nncert.verify.result import CaseContext, CaseOutcome
from nncert.verify.spec import UnsafeCase


@dataclass
class RefineLoopResult:
    """Outcome of :func:`refine_case`.

    Attributes:
        status: ``"verified"``, ``"falsified"``, ``"unknown"`` or ``"timeout"``.
        lower_bound: best proven lower bound of ``min_x m(x)`` (``None`` when nothing proven).
        best_value: smallest real ``m(x)`` seen, at ``best_x``.
        best_x: the input reaching it (``None`` when no candidate was evaluated).
        stats: counters (see the module docstring).
    """

    status: str
    lower_bound: float | None
    best_value: float
    best_x: FloatArray | None
    stats: dict[str, Any] = field(default_factory=dict)


#: segments split per refinement step (``None``: every segment the candidate used the
#: relaxation in). Splitting all of them grew one dist_shift MILP to ~1000 binaries in 15 s and
#: timed out; 16 keeps it near 45 and decides it (run_dist_shift.py --max-splits).
MAX_SPLITS_PER_STEP: int | None = 16


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.perf_counter())


def refine_case(
    network: Network,
    case: UnsafeCase,
    solver: Any,
    *,
    bounds: LayerBounds | None = None,
    segments: int = 4,
    band: BandKind = "pwl",
    placement: Placement = "adaptive",
    min_width: float = MIN_WIDTH,
    tolerance: float = 1e-6,
    deadline: float | None = None,
    max_iterations: int = 50,
    rng: np.random.Generator | None = None,
    x_start: FloatArray | None = None,
    pgd: bool = True,
    partition: Model2Partition | None = None,
    max_binaries: int | None = 64,
    max_splits: int | None = MAX_SPLITS_PER_STEP,
) -> RefineLoopResult:
    """Run the Model 2 refinement loop on one case (module docstring).

    Args:
        network: the network (any monotone activations).
        case: the unsafe case.
        solver: an exact MILP solver (``get_solver("highs")``); with an inexact one nothing is
            ever verified.
        bounds: sound pre-activation bounds (default: CROWN over the case's box).
        segments: initial ``K`` per banded neuron.
        band: ``"pwl"`` or ``"pwc"`` bands.
        placement: initial breakpoint placement.
        min_width: neurons/segments with narrower bands are never split.
        tolerance: a bound must exceed this to prove the case.
        deadline: ``time.perf_counter()`` deadline (``None``: unlimited).
        max_iterations: MILP solves at most.
        rng: random generator for PGD.
        x_start: a known good point (its value seeds ``best_value``).
        pgd: run PGD from every spurious candidate.
        partition: initial partition of the *reduced* network
            (:func:`nncert.formulations.model2.reduce_problem`; overrides ``segments``).
        max_binaries: initial segment binaries at most (the widest bands get ``segments``
            segments first; refinement adds more on demand).
        max_splits: segments split per refinement step at most (those where the candidate
            uses the most slack; default :data:`MAX_SPLITS_PER_STEP`); ``None``: every segment
            the candidate uses the relaxation in.
    """

    t0 = time.perf_counter()
    rng = np.random.default_rng(0) if rng is None else rng
    full = network.normalized()
    if bounds is None:
        bounds = crown_bounds(full, case.input_box)
    red = reduce_problem(full, case, bounds)
    net, rcase, bounds = red.network, red.case, red.bounds
    if partition is None:
        partition = network_partition(
            net,
            bounds,
            segments,
            placement=placement,
            band=band,
            min_width=min_width,
            max_binaries=max_binaries,
        )
    exact = bool(getattr(solver, "exact", False))
    best_value, best_x = math.inf, None
    if x_start is not None:
        xs = np.clip(
            np.asarray(x_start, dtype=np.float64), case.input_box.lower, case.input_box.upper
        )
        best_value, best_x = float(case.violation(network.forward(xs)[None])[0]), xs
    lower: float | None = None
    history: list[float | None] = []
    stats: dict[str, Any] = {}

    def finish(status: str) -> RefineLoopResult:
        gap = (best_value - lower) if lower is not None and math.isfinite(best_value) else None
        stats.update(
            gap=gap,
            iterations=len(history),
            bound_history=history,
            time=time.perf_counter() - t0,
        )
        return RefineLoopResult(status, lower, best_value, best_x, stats)

    if best_value <= 0.0:
        return finish("falsified")
    for _ in range(max_iterations):
        rem = _remaining(deadline)
        if rem is not None and rem <= 0.05:
            return finish("timeout")
        m2 = encode_model2(net, rcase, bounds, partition, band=band)
        stats["segments_per_layer"] = list(m2.segments_per_layer)
        stats["spins"] = m2.n_binaries
        stats["segments_total"] = sum(0 if p is None else p.n_segments for p in m2.partition)
        stats.setdefault("segments_history", []).append(stats["segments_total"])
        res = solver.solve(m2.problem, time_limit=rem, objective_target=0.0, bound_target=tolerance)
        status_name = res.status.value
        # A sound over-approximation of a non-empty box is always feasible: "infeasible" can
        # only be a numerical fault, so it proves nothing (and res.bound is ignored then).
        bound = res.bound if exact and status_name != "infeasible" else None
        history.append(bound)
        if bound is not None:
            lower = bound if lower is None else max(lower, bound)
        if lower is not None and lower > tolerance:
            return finish("verified")
        if res.x is None:
            timed_out = status_name == "time_limit" or (
                deadline is not None and time.perf_counter() >= deadline
            )
            return finish("timeout" if timed_out else "unknown")
        x_hat = red.lift(m2.decode_input(res.x))
        x_hat = np.clip(x_hat, case.input_box.lower, case.input_box.upper)
        value = float(case.violation(network.forward(x_hat)[None])[0])
        if value < best_value:
            best_value, best_x = value, x_hat
        if value <= 0.0:
            return finish("falsified")
        if pgd:
            att = pgd_attack(network, case, steps=30, restarts=4, rng=rng, x_init=x_hat)
            if att.violation < best_value:
                best_value, best_x = float(att.violation), np.asarray(att.x)
            if att.violation <= 0.0:
                return finish("falsified")
        ref = refine_at(m2, res.x, min_width=min_width, max_splits=max_splits)
        if ref.n_split == 0:
            return finish("unknown")
        partition = ref.partition
    return finish("unknown")


def initial_binaries(network: Network, spin_budget: int) -> int:
    """Initial segment binaries: ``spin_budget`` for small networks, ``0`` for large ones.

    When a network has more banded (sigmoid/tanh) neurons than ``spin_budget``, the loop starts
    from single linear bands (no segment binaries, an LP-sized relaxation) and lets the
    refinement add segments only where spurious candidates use the relaxation; on
    ``dist_shift`` (784 sigmoid neurons) this decides instances that time out when 64 segment
    binaries are placed up front.
    """

    dense, acts = network.affine_and_activations()
    flags = default_banded(acts, None)
    n_banded = sum(d.n_out for d, f in zip(dense, flags) if f)
    return int(spin_budget) if n_banded <= spin_budget else 0


def model2_case(network: Network, case: UnsafeCase, ctx: CaseContext) -> CaseOutcome:
    """Pipeline plug-in: the Model 2 refinement loop on one case (HiGHS by default).

    ``ctx.options.segments`` is the initial ``K`` (given to the widest bands first, at most
    :func:`initial_binaries` initial segment binaries); the budget is ``ctx.remaining()``. A
    ``"verified"`` outcome is ``exact`` only when the solver is exact (its dual bound is a proof
    over a sound over-approximation).
    """

    solver = get_solver(ctx.options.solver)
    deadline = None if ctx.deadline is None else ctx.deadline
    out = refine_case(
        network,
        case,
        solver,
        segments=ctx.options.segments,
        tolerance=ctx.options.milp_tolerance,
        deadline=deadline,
        rng=ctx.rng,
        x_start=ctx.best_x,
        max_binaries=initial_binaries(network, ctx.options.spin_budget),
        max_splits=MAX_SPLITS_PER_STEP,
    )
    exact = bool(getattr(solver, "exact", False))
    return CaseOutcome(
        status=out.status,
        exact=exact,
        lower_bound=out.lower_bound if exact else None,
        x=out.best_x if out.status == "falsified" else None,
        solver=str(getattr(solver, "name", ctx.options.solver)),
        stats=dict(out.stats),
    )


__all__ = ["RefineLoopResult", "initial_binaries", "model2_case", "refine_case"]
