r"""Layerwise partitioning as a pipeline plug-in (``--method window``, FORMULATIONS.md 10.1).

For one unsafe case:

1. Tighten the pre-activation bounds by sliding windows of ``s = options.window`` affine
   layers (:func:`nncert.verify.partition.window_bounds`): every min/max is solved exactly by
   the MILP solver and only its *dual bound* is used, so the bounds are sound.
2. Decide from the last window: the margin problem over the last ``s`` layers, with the
   post-activation box at its input (:func:`nncert.verify.partition.window_margin`). A dual
   bound ``> tol`` proves the case.
3. Otherwise run the full-depth problem over the tightened bounds: Model 1 for
   piecewise-linear networks (exact: a candidate is a real counterexample up to the replay) and
   the Model 2 refinement loop for sigmoid/tanh
   (:func:`nncert.formulations.model2_method.refine_case`), which also verifies (sound dual
   bound) or falsifies (replayed candidate).

Stats: ``window`` (s), ``window_solves``, ``qubo_eligible`` (windows within the spin budget;
solved classically, see :mod:`nncert.verify.partition`), ``window_time``, ``window_margin``,
plus the Model 2 loop's ``segments_per_layer``, ``gap``, ``iterations``, ``spins``.
"""

from __future__ import annotations

import time

from nncert.formulations.model2_method import initial_binaries, refine_case
from nncert.solvers.registry import get_solver
from nncert.verify.network import Network
from nncert.verify.partition import window_bounds_with_stats, window_margin
from nncert.verify.result import CaseContext, CaseOutcome
from nncert.verify.spec import UnsafeCase

#: fraction of the remaining budget the window tightening may use
WINDOW_SHARE = 0.5


def window_case(network: Network, case: UnsafeCase, ctx: CaseContext) -> CaseOutcome:
    """Pipeline plug-in: window-tightened bounds, last-window margin, then the full problem."""

    opts = ctx.options
    solver = get_solver(opts.solver)
    exact = bool(getattr(solver, "exact", False))
    name = str(getattr(solver, "name", opts.solver))
    s = int(opts.window)
    rem = ctx.remaining()
    w_deadline = None if rem is None else time.perf_counter() + WINDOW_SHARE * rem
    bounds, wst = window_bounds_with_stats(
        network,
        case.input_box,
        s,
        solver=solver,
        deadline=w_deadline,
        neuron_time_limit=5.0,
        segments=opts.segments,
        spin_budget=opts.spin_budget,
    )
    stats: dict[str, object] = {
        "window": s,
        "window_solves": wst.solves,
        "qubo_eligible": wst.qubo_eligible,
        "window_time": wst.time,
        "window_timed_out": wst.timed_out,
    }
    L = len(network.affine_and_activations()[0])
    tol = opts.milp_tolerance
    if s < L:
        lb = window_margin(
            network,
            case,
            bounds,
            s,
            solver=solver,
            time_limit=ctx.remaining(),
            tolerance=tol,
            segments=opts.segments,
        )
        stats["window_margin"] = lb
        if lb is not None and exact and lb > tol:
            return CaseOutcome("verified", exact=True, lower_bound=lb, solver=name, stats=stats)
    out = refine_case(
        network,
        case,
        solver,
        bounds=bounds,
        segments=opts.segments,
        tolerance=tol,
        deadline=ctx.deadline,
        rng=ctx.rng,
        x_start=ctx.best_x,
        max_binaries=initial_binaries(network, opts.spin_budget),
    )
    stats.update(out.stats)
    return CaseOutcome(
        status=out.status,
        exact=exact,
        lower_bound=out.lower_bound if exact else None,
        x=out.best_x if out.status == "falsified" else None,
        solver=name,
        stats=stats,
    )


__all__ = ["window_case"]
