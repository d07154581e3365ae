r"""Progressive LP tightening of pre-activation bounds (MIPVerify's ``lp`` algorithm).

Layer by layer (``k = 1 .. L-1``), every neuron whose interval ``[l_i, u_i]`` still contains a
kink of its activation strictly inside gets two LPs over the big-M relaxation (binaries relaxed
to ``[0, 1]``) of the layers before it, built with the bounds tightened so far::

    l_i' = max(l_i, min z_i^(k)),      u_i' = min(u_i, max z_i^(k))     over the LP relaxation

The reported LP optimum is not used directly: a bound is taken from the LP *duals* ``y`` by weak
duality, valid for any ``y`` (so solver tolerances cannot make it unsound, up to float64
rounding, which is covered by a small outward margin)::

    min c^T v + o  >=  o + sum_i y_i^+ row_lower_i - y_i^- row_upper_i
                         + sum_j min(r_j col_lower_j, r_j col_upper_j),   r = c - A^T y

After each layer the new intervals are pushed forward by interval arithmetic and intersected
with the given bounds, so the result is never looser than the input.

This lives in ``nncert.solvers`` (not ``formulations``) because it runs a solver.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from nncert.formulations.milp import MilpProblem, encode_milp, lp_relaxation
from nncert.solvers.base import SolveStatus
from nncert.solvers.registry import get_solver
from nncert.verify.activations import rule_for
from nncert.verify.bounds import Interval, LayerBounds, dense_interval
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Activation, FloatArray, Network, weight_rows
from nncert.verify.spec import Box, UnsafeCase

_MARGIN = 1e-9


def _needs_tightening(act: Activation, l: FloatArray, u: FloatArray) -> FloatArray:
    """Neurons with a kink of their activation strictly inside ``(l, u)`` (the rule's kinks)."""
    mask = np.zeros(l.shape, dtype=bool)
    for theta in rule_for(act).kinks(act):
        mask |= (l < theta) & (u > theta)
    return mask


def dual_lower_bound(problem: MilpProblem, y: FloatArray) -> float:
    """Weak-duality lower bound of the LP relaxation of ``problem`` for row multipliers ``y``.

    Multipliers whose sign would pair with an infinite row bound are set to zero, so every
    ``y`` gives a valid (possibly ``-inf``) bound. Column bounds must be finite where the
    reduced cost is nonzero, otherwise the bound is ``-inf``.
    """
    yy = np.asarray(y, dtype=np.float64).copy()
    yy[(yy > 0) & ~np.isfinite(problem.row_lower)] = 0.0
    yy[(yy < 0) & ~np.isfinite(problem.row_upper)] = 0.0
    pos, neg = np.maximum(yy, 0.0), np.minimum(yy, 0.0)
    lo_rows = np.where(pos > 0, problem.row_lower, 0.0)
    hi_rows = np.where(neg < 0, problem.row_upper, 0.0)
    row_term = float(pos @ lo_rows + neg @ hi_rows)
    r = problem.c - problem.A.T @ yy
    with np.errstate(invalid="ignore"):
        col = np.where(r > 0, r * problem.col_lower, np.where(r < 0, r * problem.col_upper, 0.0))
    if np.isnan(col).any():
        return -math.inf
    return problem.offset + row_term + float(col.sum())


def _lp_min(solver: Any, problem: MilpProblem, time_limit: float | None) -> float:
    """A sound lower bound on the LP ``problem`` (``-inf`` when nothing is proven)."""
    res = solver.solve(problem, time_limit=time_limit)
    if res.status is SolveStatus.INFEASIBLE:
        # the LP relaxation over a non-empty box is feasible; "infeasible" is a numerical
        # fault and proves nothing
        return -math.inf
    if res.duals is not None and res.status is SolveStatus.OPTIMAL:
        value = dual_lower_bound(problem, res.duals)
        return value - _MARGIN * (1.0 + abs(value))
    return -math.inf


def tighten_bounds_lp(
    network: Network,
    box: Box,
    bounds: LayerBounds,
    /,
    *,
    solver: Any = "highs",
    time_limit: float | None = None,
) -> LayerBounds:
    """Tighten the hidden pre-activation bounds of ``bounds`` by LP (module docstring).

    Args:
        network: a piecewise-linear network (normalized internally).
        box: the input box; ``bounds`` must be sound over a box containing it.
        bounds: sound starting bounds (e.g. IBP or CROWN) of ``network.normalized()``.
        solver: an LP-capable :class:`~nncert.solvers.base.MilpSolver` or registry name;
            row duals make the bounds rigorous, without them a neuron keeps its old bounds.
        time_limit: overall seconds; neurons not reached in time keep their bounds (sound).

    Returns:
        New :class:`LayerBounds` with ``method="lp"``, element-wise within ``bounds``.

    Raises:
        InvalidOptionsError: on bounds of another network, or a bad time limit.
    """

    if time_limit is not None and not time_limit >= 0:
        raise InvalidOptionsError(f"tighten_bounds_lp: time_limit={time_limit!r} must be >= 0")
    lp_solver = get_solver(solver)
    net = network.normalized()
    if bounds.network != net:
        raise InvalidOptionsError("tighten_bounds_lp: bounds were computed for another network")
    dense, acts = net.affine_and_activations()
    deadline = math.inf if time_limit is None else time.perf_counter() + time_limit
    lower = [iv.lower.copy() for iv in bounds.pre_activation]
    upper = [iv.upper.copy() for iv in bounds.pre_activation]

    for k in range(1, len(acts)):
        # k indexes z^(k+1): bound it over the relaxation of layers 1..k
        act = acts[k]
        todo = np.flatnonzero(_needs_tightening(act, lower[k], upper[k]))
        if todo.size and time.perf_counter() < deadline:
            sub = net.replace_layers(_truncate(dense, acts, k))
            sub_bounds = LayerBounds(
                sub,
                bounds.box,
                tuple(Interval(lower[j], upper[j]) for j in range(k + 1)),
                method="lp",
            )
            e = np.zeros((1, dense[k].n_out))
            e[0, 0] = 1.0
            base = lp_relaxation(encode_milp(sub, UnsafeCase(box, e, np.zeros(1)), sub_bounds))
            prev = base.index.post[-1]
            for i in todo.tolist():
                for sign in (1.0, -1.0):
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    c = np.zeros(base.n_cols)
                    c[prev] = sign * weight_rows(dense[k].weight, i)
                    p = dataclasses.replace(base, c=c, offset=sign * float(dense[k].bias[i]))
                    value = _lp_min(lp_solver, p, None if math.isinf(remaining) else remaining)
                    if sign > 0:
                        lower[k][i] = max(lower[k][i], value)
                    else:
                        upper[k][i] = min(upper[k][i], -value)
            bad = lower[k] > upper[k]  # only from numerics; keep the given bounds there
            lower[k][bad] = bounds.pre_activation[k].lower[bad]
            upper[k][bad] = bounds.pre_activation[k].upper[bad]
        # push the tightened layer forward by sound interval arithmetic and intersect
        lo_a, hi_a = rule_for(act).interval(act, lower[k], upper[k])
        for j in range(k + 1, len(dense)):
            lz, uz = dense_interval(dense[j], lo_a, hi_a)
            lower[j] = np.maximum(lower[j], lz)
            upper[j] = np.minimum(upper[j], uz)
            bad = lower[j] > upper[j]
            lower[j][bad] = bounds.pre_activation[j].lower[bad]
            upper[j][bad] = bounds.pre_activation[j].upper[bad]
            if j < len(acts):
                lo_a, hi_a = rule_for(acts[j]).interval(acts[j], lower[j], upper[j])
    out = tuple(Interval(lo, hi) for lo, hi in zip(lower, upper))
    return LayerBounds(net, bounds.box, out, method="lp", arithmetic=bounds.arithmetic)


def _truncate(dense: tuple[Any, ...], acts: tuple[Any, ...], k: int) -> list[Any]:
    """Layers ``Dense_1, act_1, ..., act_k, Dense_{k+1}`` (output ``z^(k+1)``)."""
    layers: list[Any] = [dense[0]]
    for j in range(k):
        layers += [acts[j], dense[j + 1]]
    return layers


__all__ = ["dual_lower_bound", "tighten_bounds_lp"]
