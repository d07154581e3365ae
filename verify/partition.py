r"""Layerwise partitioning, Scheme A: sliding depth windows with bound coupling.

FORMULATIONS.md section 10.1. For a normalized network ``Dense_1, act_1, ..., Dense_L`` and a
window size ``s``, the bounds on ``z^(k)`` are computed in order ``k = 1..L``:

1. ``k = 1``: the exact interval image of the input box (one affine layer).
2. ``k > 1``: the window spans the affine layers ``j0 = max(1, k - s + 1) .. k``. Its input is the
   box of ``a^(j0-1)`` (the input box when ``j0 = 1``; otherwise
   ``[sigma(l^(j0-1)), sigma(u^(j0-1))]``, sound because every activation is monotone), and the
   pre-activations inside the window are constrained by the bounds already computed for them:
   this is the **coupling across depth**. For each selected neuron ``i`` two problems
   ``min / max z_i^(k)`` are solved over the window's MILP (exact big-M rules for
   ReLU/LeakyReLU/HardTanh, Model 2 bands for sigmoid/tanh; :func:`nncert.formulations.model2.
   encode_model2`) or over its LP relaxation.
3. The new interval is intersected with the IBP step from the (already tightened) previous layer
   and the initial bounds (CROWN by default), and it feeds the big-M constants, the stability of
   later neurons and the inputs of later windows.

**Soundness.** The window problem over-approximates the set of reachable ``(a^(j0-1), ...,
z^(k))``, so its *true* optimum bounds ``z_i^(k)``; we use the solver's **dual bound** (a proven
bound on that optimum, also after a time limit), never the incumbent, moved outwards by
``margin (1 + |v|)`` against the solver's feasibility tolerances. A solve that proves nothing
keeps the previous bound. Every interval therefore contains the true range.

**Monotone in s, exact at full depth.** A window of size ``s + 1`` contains the constraints of
the size-``s`` window (with bounds that are themselves tighter by induction), so with exact
solves the bounds are non-decreasing in ``s``; when ``s >= L`` every window starts at the input
and, for piecewise-linear networks, every bound is the exact min/max (up to the MIP gap).
``s = 1`` is per-layer interval propagation (IBP).

**Routing and the annealing side.** A window whose binary count fits ``spin_budget`` could be
sent to a QUBO sampler, but a sampler is a heuristic: its values are not bounds, so they can
never tighten bounds used for certification (section 10.1, last paragraph). No QUBO encoder of
Model 1/2 windows exists yet (``nncert.formulations.qubo`` is absent), so every window is solved
classically by the exact MILP solver (dual bound) or its LP relaxation; the number of windows
that *would* fit the spin budget is reported as ``qubo_eligible`` for the hybrid workflow.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.activations import rule_for
from nncert.verify.bounds import (
    Interval,
    LayerBounds,
    crown_bounds,
    dense_interval,
    interval_bounds,
)
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Activation, Dense, FloatArray, Network, weight_rows
from nncert.verify.spec import Box, UnsafeCase

Relaxation = Literal["milp", "lp"]
Tighten = Literal["unstable", "all"]

#: outward margin (relative + absolute) on every solver bound
SOLVER_MARGIN = 1e-7


class WindowEncoders(NamedTuple):
    """The formulation functions a window solve needs, passed in by the caller: this module
    is part of the core and imports neither :mod:`nncert.formulations` nor
    :mod:`nncert.solvers` (DESIGN.md section 2). :mod:`nncert.solvers.partition_method` passes
    :func:`nncert.formulations.model2.encode_model2` and
    :func:`nncert.formulations.milp.lp_relaxation` and resolves solver names.

    Attributes:
        encode_model2: ``(network, case, bounds, *, segments, band) -> Model2Problem``.
        lp_relaxation: ``MilpProblem -> MilpProblem`` with the binaries relaxed.
    """

    encode_model2: Any
    lp_relaxation: Any


@dataclass
class WindowStats:
    """Counters of one :func:`window_bounds` run.

    Attributes:
        solves: optimisation problems solved (two per tightened neuron).
        windows: window problems built.
        qubo_eligible: windows whose binary count fits the spin budget (routable to an
            annealer for *heuristic* use; all were solved exactly here).
        binaries_per_window: binaries of each window problem.
        improved: neurons whose interval shrank.
        timed_out: whether the deadline cut the tightening short.
        time: seconds.
    """

    solves: int = 0
    windows: int = 0
    qubo_eligible: int = 0
    binaries_per_window: list[int] = field(default_factory=list)
    improved: int = 0
    timed_out: bool = False
    time: float = 0.0


def _needs_tightening(act: Activation | None, l: FloatArray, u: FloatArray, mode: Tighten) -> Any:
    """Which neurons to tighten: all, or the ones whose encoding depends on the bounds (a kink
    strictly inside for a piecewise-linear activation, a non-trivial band for a smooth one)."""
    if act is None or mode == "all":
        return u > l
    rule = rule_for(act)
    if rule.relu_pieces(act) is None:
        return u - l > 1e-9
    mask = np.zeros(np.shape(l), dtype=bool)
    for theta in rule.kinks(act):
        mask |= (l < theta) & (u > theta)
    return mask


def _meet(lo: FloatArray, hi: FloatArray, nlo: FloatArray, nhi: FloatArray) -> Interval:
    """Intersection of two sound intervals; crossings (round-off only) keep the old one."""
    a = np.maximum(lo, nlo)
    b = np.minimum(hi, nhi)
    bad = a > b
    return Interval(np.where(bad, lo, a), np.where(bad, hi, b))


def _window_network(
    dense: tuple[Dense, ...], acts: tuple[Activation, ...], j0: int, k: int
) -> Network:
    layers: list[Any] = []
    for j in range(j0, k + 1):
        layers.append(dense[j])
        if j < k:
            layers.append(acts[j])
    return Network(tuple(layers), (dense[j0].n_in,))


def _window_input(box: Box, acts: tuple[Activation, ...], bounds: list[Interval], j0: int) -> Box:
    if j0 == 0:
        return box
    iv = bounds[j0 - 1]
    lo, hi = rule_for(acts[j0 - 1]).interval(acts[j0 - 1], iv.lower, iv.upper)
    return Box(lo, np.maximum(hi, lo))


def _solve_bound(solver: Any, problem: Any, time_limit: float | None) -> float | None:
    """A proven lower bound of the problem's optimum (``None``: nothing proven)."""
    res = solver.solve(problem, time_limit=time_limit)
    # the window relaxation of a non-empty box is always feasible: "infeasible" is a
    # numerical fault and proves nothing
    if res.status.value == "infeasible":
        return None
    if res.bound is None or not math.isfinite(res.bound):
        return None
    return float(res.bound)


def window_bounds_with_stats(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    s: int,
    *,
    solver: Any,
    encoders: WindowEncoders,
    relaxation: Relaxation = "milp",
    initial: Literal["crown", "ibp"] = "crown",
    neuron_time_limit: float | None = None,
    deadline: float | None = None,
    segments: int = 4,
    band: str = "pwl",
    spin_budget: int = 64,
    tighten: Tighten = "unstable",
    margin: float = SOLVER_MARGIN,
) -> tuple[LayerBounds, WindowStats]:
    """:func:`window_bounds` plus its :class:`WindowStats` (``solver``: a solver instance)."""

    if not isinstance(s, int) or s < 1:
        raise InvalidOptionsError(f"window size s={s!r} must be an int >= 1")
    if relaxation not in ("milp", "lp"):
        raise InvalidOptionsError(f"relaxation={relaxation!r} must be 'milp' or 'lp'")
    t0 = time.perf_counter()
    stats = WindowStats()
    slv = solver
    exact = bool(getattr(slv, "exact", False))
    net = network.normalized()
    b = Box.from_pair(box)
    init = crown_bounds(net, b) if initial == "crown" else interval_bounds(net, b)
    dense, acts = net.affine_and_activations()
    L = len(dense)
    bounds: list[Interval] = []
    for k in range(L):
        if k == 0:
            lo, hi = dense_interval(dense[0], b.lower, b.upper)
        else:
            prev = bounds[-1]
            act_prev = acts[k - 1]
            lo, hi = dense_interval(
                dense[k], *rule_for(act_prev).interval(act_prev, prev.lower, prev.upper)
            )
        iv = _meet(init.pre_activation[k].lower, init.pre_activation[k].upper, lo, hi)
        j0 = max(0, k - s + 1)
        expired = deadline is not None and time.perf_counter() >= deadline
        if k > 0 and j0 < k and exact and not expired:
            act_k = acts[k] if k < L - 1 else None
            sel = np.flatnonzero(_needs_tightening(act_k, iv.lower, iv.upper, tighten))
            if sel.size:
                iv = _tighten_layer(
                    dense,
                    acts,
                    bounds,
                    b,
                    j0,
                    k,
                    iv,
                    sel,
                    slv,
                    relaxation,
                    neuron_time_limit,
                    deadline,
                    segments,
                    band,
                    spin_budget,
                    margin,
                    stats,
                    encoders.encode_model2,
                    encoders.lp_relaxation,
                )
        elif expired:
            stats.timed_out = True
        bounds.append(iv)
    stats.time = time.perf_counter() - t0
    return LayerBounds(net, b, tuple(bounds), method="window"), stats


def _tighten_layer(
    dense: tuple[Dense, ...],
    acts: tuple[Activation, ...],
    bounds: list[Interval],
    box: Box,
    j0: int,
    k: int,
    iv: Interval,
    sel: Any,
    slv: Any,
    relaxation: Relaxation,
    neuron_time_limit: float | None,
    deadline: float | None,
    segments: int,
    band: str,
    spin_budget: int,
    margin: float,
    stats: WindowStats,
    encode_model2: Any,
    lp_relaxation: Any,
) -> Interval:
    """Min/max of the selected neurons of ``z^(k+1)`` over the window ``j0..k`` (0-based)."""
    sub = _window_network(dense, acts, j0, k)
    in_box = _window_input(box, acts, bounds, j0)
    sub_bounds = LayerBounds(sub, in_box, (*bounds[j0:k], iv), method="window")
    e0 = np.zeros((1, dense[k].n_out))
    e0[0, 0] = 1.0
    m2 = encode_model2(
        sub, UnsafeCase(in_box, e0, np.zeros(1)), sub_bounds, segments=segments, band=band
    )
    base = m2.problem if relaxation == "milp" else lp_relaxation(m2.problem)
    stats.windows += 1
    stats.binaries_per_window.append(int(base.n_integer))
    if 0 < m2.problem.n_integer <= spin_budget:
        stats.qubo_eligible += 1
    prev = base.index.post[-1]
    W, bias = dense[k].weight, dense[k].bias
    lo, hi = iv.lower.copy(), iv.upper.copy()
    for i in sel:
        for sign in (1.0, -1.0):
            rem = None if deadline is None else deadline - time.perf_counter()
            if rem is not None and rem <= 0.0:
                stats.timed_out = True
                return _meet(iv.lower, iv.upper, lo, hi)
            tl = (
                neuron_time_limit
                if rem is None
                else (rem if neuron_time_limit is None else min(rem, neuron_time_limit))
            )
            c = np.zeros(base.n_cols)
            c[prev] = sign * weight_rows(W, i)
            problem = dataclasses.replace(base, c=c, offset=float(sign * bias[i]))
            val = _solve_bound(slv, problem, tl)
            stats.solves += 1
            if val is None:
                continue
            if sign > 0:
                new = val - margin * (1.0 + abs(val)) if math.isfinite(val) else hi[i]
                lo[i] = max(lo[i], new)
            else:
                new = -val + margin * (1.0 + abs(val)) if math.isfinite(val) else lo[i]
                hi[i] = min(hi[i], new)
    out = _meet(iv.lower, iv.upper, lo, hi)
    stats.improved += int(np.count_nonzero((out.lower > iv.lower) | (out.upper < iv.upper)))
    return out


def window_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    s: int,
    **kwargs: Any,
) -> LayerBounds:
    """Sound pre-activation bounds tightened by sliding windows of ``s`` affine layers.

    See the module docstring. ``pre_activation[k]`` bounds ``z^(k+1)`` of the normalized
    network, like :func:`nncert.verify.bounds.crown_bounds`; ``method="window"``.

    Args:
        network: any network with monotone activations (normalized first).
        box: the input box.
        s: window size (number of affine layers per window, ``>= 1``).
        **kwargs: ``solver`` (a solver instance; must be exact to tighten) and ``encoders``
            (:class:`WindowEncoders`), both required (names are resolved by
            :func:`nncert.solvers.partition_method.window_bounds`), ``relaxation``
            (``"milp"`` or ``"lp"``), ``initial`` (``"crown"`` or ``"ibp"``),
            ``neuron_time_limit`` (seconds per min/max solve), ``deadline``
            (``time.perf_counter()`` value), ``segments`` and ``band`` (Model 2 bands for
            sigmoid/tanh inside windows), ``spin_budget``, ``tighten`` (``"unstable"``:
            only neurons whose encoding depends on their bounds, plus every output; or
            ``"all"``), ``margin``.
    """
    return window_bounds_with_stats(network, box, s, **kwargs)[0]


def window_margin(
    network: Network,
    case: UnsafeCase,
    bounds: LayerBounds,
    s: int,
    *,
    solver: Any,
    encoders: WindowEncoders,
    time_limit: float | None = None,
    tolerance: float = 0.0,
    segments: int = 4,
) -> float | None:
    """A sound lower bound of ``min_x max_r (A_r f(x) - b_r)`` from the last window alone.

    The window spans the last ``s`` affine layers; its input is the box of post-activations
    implied by ``bounds``. Returns the solver's dual bound (``None`` when nothing is proven).
    ``solver`` is a solver instance, ``encoders`` the formulation functions.
    """

    slv = solver
    if not getattr(slv, "exact", False):
        return None
    net = network.normalized()
    dense, acts = net.affine_and_activations()
    L = len(dense)
    j0 = max(0, L - s)
    pre = list(bounds.pre_activation)
    sub = _window_network(dense, acts, j0, L - 1)
    in_box = _window_input(case.input_box, acts, pre, j0)
    sub_bounds = LayerBounds(sub, in_box, tuple(pre[j0:]), method="window")
    m2 = encoders.encode_model2(
        sub, UnsafeCase(in_box, case.A, case.b), sub_bounds, segments=segments
    )
    res = slv.solve(m2.problem, time_limit=time_limit, bound_target=tolerance)
    if res.status.value == "infeasible":  # always feasible in exact arithmetic: proves nothing
        return None
    return None if res.bound is None or not math.isfinite(res.bound) else float(res.bound)


__all__ = [
    "WindowEncoders",
    "WindowStats",
    "window_bounds",
    "window_bounds_with_stats",
    "window_margin",
]
