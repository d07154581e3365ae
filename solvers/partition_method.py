r"""Layerwise partitioning as a pipeline plug-in (``--method window``, FORMULATIONS.md 10.1).

For one unsafe case:

1. Tighten the pre-activation bounds by sliding windows of ``s = options.window`` affine
   layers (:func:`window_bounds`, over :mod:`nncert.verify.partition`): every min/max is
   solved exactly by the MILP solver and only its *dual bound* is used, so the bounds are sound.
2. Decide from the last window: the margin problem over the last ``s`` layers, with the
   post-activation box at its input (:func:`window_margin`). A dual
   bound ``> tol`` proves the case.
3. Otherwise run the full-depth problem over the tightened bounds: Model 1 for
   piecewise-linear networks (exact: a candidate is a real counterexample up to the replay) and
   the Model 2 refinement loop for sigmoid/tanh
   (:func:`nncert.solvers.model2_method.refine_case`), which also verifies (sound dual
   bound) or falsifies (replayed candidate).

Stats: ``window`` (s), ``window_solves``, ``qubo_eligible`` (windows within the spin budget;
solved classically, see :mod:`nncert.verify.partition`), ``window_time``, ``window_margin``,
plus the Model 2 loop's ``segments_per_layer``, ``gap``, ``iterations``, ``spins``.
"""

from __future__ import annotations

import time
from typing import Any

from numpy.typing import ArrayLike

from nncert.formulations.milp import lp_relaxation
from nncert.formulations.model2 import encode_model2
from nncert.solvers.model2_method import initial_binaries, refine_case
from nncert.solvers.registry import get_solver
from nncert.verify.bounds import LayerBounds
from nncert.verify.network import Network
from nncert.verify.partition import WindowEncoders, WindowStats
from nncert.verify.partition import window_bounds_with_stats as _window_bounds_core
from nncert.verify.partition import window_margin as _window_margin_core
from nncert.verify.result import CaseContext, CaseOutcome
from nncert.verify.spec import Box, UnsafeCase

#: fraction of the remaining budget the window tightening may use
WINDOW_SHARE = 0.5

#: the formulation functions the core's window code is given
ENCODERS = WindowEncoders(encode_model2=encode_model2, lp_relaxation=lp_relaxation)


def window_bounds_with_stats(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    s: int,
    *,
    solver: Any = "highs",
    **kwargs: Any,
) -> tuple[LayerBounds, WindowStats]:
    """:func:`nncert.verify.partition.window_bounds_with_stats` with ``solver`` a registry name
    or an instance (default ``"highs"``) and this package's formulations."""
    return _window_bounds_core(
        network, box, s, solver=get_solver(solver), encoders=ENCODERS, **kwargs
    )


def window_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    s: int,
    **kwargs: Any,
) -> LayerBounds:
    """Sound pre-activation bounds tightened by sliding windows of ``s`` affine layers
    (:func:`nncert.verify.partition.window_bounds`; ``solver`` a name or an instance, default
    ``"highs"``; the other keywords as there)."""
    return window_bounds_with_stats(network, box, s, **kwargs)[0]


def window_margin(
    network: Network,
    case: UnsafeCase,
    bounds: LayerBounds,
    s: int,
    *,
    solver: Any = "highs",
    **kwargs: Any,
) -> float | None:
    """:func:`nncert.verify.partition.window_margin` with ``solver`` a name or an instance."""
    return _window_margin_core(
        network, case, bounds, s, solver=get_solver(solver), encoders=ENCODERS, **kwargs
    )


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


__all__ = ["ENCODERS", "window_bounds", "window_bounds_with_stats", "window_case", "window_margin"]
