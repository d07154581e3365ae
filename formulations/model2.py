r"""Model 2: sound piecewise over-approximations of monotone activations as a MILP.

FORMULATIONS.md section 7. Every hidden neuron whose activation ``sigma`` is *banded*
(sigmoid and tanh by default; HardTanh on request, for the cross-check of section 7.9) gets a
partition of its sound pre-activation range ``l = t_0 < t_1 < ... < t_K = u`` into ``K``
segments, and on segment ``k`` a *band*::

    lo_k(z) <= a <= hi_k(z)          for z in [t_{k-1}, t_k]

that contains the graph of ``sigma`` on the segment. Two bands are offered:

* ``"pwc"`` (the paper's piecewise-constant band, 7.1): ``lo_k = sigma(t_{k-1})``,
  ``hi_k = sigma(t_k)`` (``sigma`` is monotone non-decreasing);
* ``"pwl"`` (7.8, the default, tighter at the same ``K``): the constant band intersected with the
  linear relaxation of ``sigma`` on the segment from :func:`nncert.verify.bounds.relax`
  (chords and tangents chosen by the convexity of ``sigma`` on ``[t_{k-1}, t_k]``, with an
  outward safety margin)::

      max(sigma(t_{k-1}), aL_k z + bL_k)  <=  a  <=  min(sigma(t_k), aU_k z + bU_k).

The disjunction "``z`` lies in some segment and ``a`` in its band" is encoded with the
disaggregated (convex-hull) formulation: one-hot binaries ``delta_k``, copies ``z_k``, ``a_k``::

    sum_k delta_k = 1,      z = sum_k z_k,      a = sum_k a_k
    t_{k-1} delta_k <= z_k <= t_k delta_k
    sigma(t_{k-1}) delta_k <= a_k <= sigma(t_k) delta_k
    aL_k z_k + bL_k delta_k <= a_k <= aU_k z_k + bU_k delta_k        ("pwl" only)

With ``delta_k = 1`` the copies equal ``(z, a)``; with ``delta_k = 0`` they are ``0``. A neuron
with a single segment (``K = 1``: narrow bounds, a nearly linear or saturated activation) gets
no binary: the rows act on ``(z, a)`` directly. Its LP relaxation is the convex hull of the
union of the bands, the tightest possible for one neuron.

**Soundness** (7.2): for every input ``x`` of the case's box the true execution
``z = W a_prev + b``, ``a = sigma(z)`` is feasible (choose the segment containing ``z``), so
the MILP optimum ``m_K`` is a lower bound on ``m* = min_x max_r (A_r f(x) - b_r)``. ReLU,
LeakyReLU and HardTanh neurons use the *exact* big-M rules of
:mod:`nncert.formulations.milp`, so a network without banded neurons gives Model 1 exactly.

**A-priori gap** (7.4): with ``omega_k`` the largest vertical band width in layer ``k``,
``|a_hat^(k) - a^(k)| <= E_k = omega_k + Lip |W^(k)| E_{k-1}`` and
``m* - m_K <= |c^T W^(L)| E_{L-1}``; one hidden layer: ``m* - m_K <= sum_i |c_i| omega_i`` with
``c = A W^(L)`` (:func:`a_priori_gap`).

**Nested refinement** (7.5): :meth:`LayerPartition.split` and :meth:`LayerPartition.refine_all`
only split existing segments, so the feasible set shrinks and the bound never decreases.

Breakpoint placement (7.6, :func:`initial_partition`): ``"uniform"`` in ``z``, ``"value"``
(uniform in ``sigma(z)``, equal ``omega`` per segment), ``"adaptive"`` (repeatedly bisect each
neuron's widest band). Kinks of banded piecewise-linear activations (HardTanh ``m, M``) are
always breakpoints.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from nncert.formulations.milp import (
    BoolArray,
    EncodingStats,
    IntArray,
    MilpBuilder,
    MilpProblem,
    VariableIndex,
    big_m_pieces,
    encode_activation,
    encode_case_objective,
    piece_thresholds,
    piece_values,
)
from nncert.verify.activations import rule_for
from nncert.verify.bounds import RELAXATIONS, Interval, LayerBounds, relax
from nncert.verify.errors import InvalidOptionsError, InvalidPropertyError
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    Network,
    apply_activation,
    densified,
)
from nncert.verify.spec import Box, UnsafeCase

BandKind = Literal["pwl", "pwc"]
Placement = Literal["uniform", "value", "adaptive"]

#: relative + absolute outward margin on activation values at breakpoints (round-off)
VALUE_MARGIN = 1e-12

#: slopes below this are replaced by constants (solvers drop tiny matrix entries)
SMALL_SLOPE = 1e-7

#: default band width below which a neuron gets a single segment (no binaries)
MIN_WIDTH = 1e-4

_INF = np.inf


# --------------------------------------------------------------------------------------------
# Partitions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LayerPartition:
    """The segments of every neuron of one banded layer, flattened.

    Segments are sorted by neuron, then by position; the segments of one neuron are contiguous
    (``hi`` of one equals ``lo`` of the next) and cover that neuron's range.

    Attributes:
        neuron: owning neuron of each segment, shape ``(S,)``.
        lo: left end ``t_{k-1}`` of each segment, shape ``(S,)``.
        hi: right end ``t_k``, shape ``(S,)``.
        n_neurons: number of neurons of the layer.

    Raises:
        InvalidOptionsError: when the segments are unsorted, overlap, leave gaps, or some
            neuron has none.
    """

    neuron: IntArray
    lo: FloatArray
    hi: FloatArray
    n_neurons: int

    def __post_init__(self) -> None:
        neuron = np.asarray(self.neuron, dtype=np.int64).reshape(-1)
        lo = np.asarray(self.lo, dtype=np.float64).reshape(-1)
        hi = np.asarray(self.hi, dtype=np.float64).reshape(-1)
        if not (neuron.shape == lo.shape == hi.shape):
            raise InvalidOptionsError("LayerPartition: neuron, lo and hi differ in length")
        if np.any(hi < lo) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise InvalidOptionsError("LayerPartition: segments need finite lo <= hi")
        if np.any(np.diff(neuron) < 0):
            raise InvalidOptionsError("LayerPartition: segments must be sorted by neuron")
        same = neuron[1:] == neuron[:-1]
        if np.any(hi[:-1][same] != lo[1:][same]):
            raise InvalidOptionsError("LayerPartition: segments of a neuron must be contiguous")
        counts = np.bincount(neuron, minlength=self.n_neurons)
        if counts.size != self.n_neurons or np.any(counts == 0):
            raise InvalidOptionsError("LayerPartition: every neuron needs at least one segment")
        for arr in (neuron, lo, hi):
            arr.setflags(write=False)
        object.__setattr__(self, "neuron", neuron)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def n_segments(self) -> int:
        """Total number of segments ``S``."""
        return int(self.neuron.size)

    @property
    def counts(self) -> IntArray:
        """Segments per neuron ``K_i``, shape ``(n_neurons,)``."""
        return np.bincount(self.neuron, minlength=self.n_neurons).astype(np.int64)

    @property
    def first(self) -> IntArray:
        """Index of each neuron's first segment."""
        return np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)

    @property
    def range_lower(self) -> FloatArray:
        """Left end of each neuron's covered range."""
        return self.lo[self.first]

    @property
    def range_upper(self) -> FloatArray:
        """Right end of each neuron's covered range."""
        return self.hi[self.first + self.counts - 1]

    @classmethod
    def from_points(cls, points: ArrayLike, keep: ArrayLike | None = None) -> LayerPartition:
        """Segments between consecutive kept breakpoints of each row of ``points``.

        Args:
            points: shape ``(n, K + 1)``, each row non-decreasing; column 0 and column ``K``
                are the neuron's range and are always kept.
            keep: optional mask of the same shape selecting interior breakpoints.
        """
        P = np.asarray(points, dtype=np.float64)
        n, m = P.shape
        mask = np.ones_like(P, dtype=bool) if keep is None else np.asarray(keep, dtype=bool).copy()
        mask[:, 0] = True
        mask[:, -1] = True
        rows, cols = np.nonzero(mask)
        pts = P[rows, cols]
        same = rows[1:] == rows[:-1]
        lo, hi, neuron = pts[:-1][same], pts[1:][same], rows[:-1][same]
        if m == 1:  # degenerate: one point per row
            lo, hi, neuron = P[:, 0], P[:, 0], np.arange(n)
        return cls(neuron.astype(np.int64), lo, hi, n)

    @classmethod
    def single(cls, lower: ArrayLike, upper: ArrayLike) -> LayerPartition:
        """One segment ``[l_i, u_i]`` per neuron."""
        lo = np.asarray(lower, dtype=np.float64).reshape(-1)
        hi = np.asarray(upper, dtype=np.float64).reshape(-1)
        return cls(np.arange(lo.size, dtype=np.int64), lo, hi, lo.size)

    def split(self, segments: ArrayLike, at: ArrayLike) -> LayerPartition:
        """Split segment ``segments[j]`` at ``at[j]`` (a nested refinement).

        Points outside the open segment are ignored (the segment is kept whole); a segment listed
        twice is split once.
        """
        idx = np.asarray(segments, dtype=np.int64).reshape(-1)
        pt = np.asarray(at, dtype=np.float64).reshape(-1)
        idx, first = np.unique(idx, return_index=True)
        pt = pt[first]
        ok = (pt > self.lo[idx]) & (pt < self.hi[idx])
        idx, pt = idx[ok], pt[ok]
        if idx.size == 0:
            return self
        lo = self.lo.copy()
        hi = self.hi.copy()
        new_lo, new_hi = pt, hi[idx].copy()
        hi[idx] = pt
        neuron = np.concatenate([self.neuron, self.neuron[idx]])
        lo = np.concatenate([lo, new_lo])
        hi = np.concatenate([hi, new_hi])
        order = np.lexsort((lo, neuron))
        return LayerPartition(neuron[order], lo[order], hi[order], self.n_neurons)

    def refine_all(self) -> LayerPartition:
        """Bisect every segment of positive width (uniform ``K -> 2K`` is nested)."""
        mid = (self.lo + self.hi) / 2.0
        return self.split(np.arange(self.n_segments), mid)

    def clip(self, lower: ArrayLike, upper: ArrayLike) -> LayerPartition:
        """Restrict every neuron to ``[l_i, u_i]`` (segments outside are removed).

        Raises:
            InvalidPropertyError: when the partition does not cover ``[l_i, u_i]`` (the
                encoding would then be unsound).
        """
        l = np.asarray(lower, dtype=np.float64).reshape(-1)
        u = np.asarray(upper, dtype=np.float64).reshape(-1)
        if np.any(self.range_lower > l) or np.any(self.range_upper < u):
            raise InvalidPropertyError(
                "LayerPartition: the segments do not cover the neurons' bounds; rebuild the "
                "partition for the current bounds"
            )
        lo = np.maximum(self.lo, l[self.neuron])
        hi = np.minimum(self.hi, u[self.neuron])
        valid = hi > lo
        has = np.bincount(self.neuron[valid], minlength=self.n_neurons) > 0
        missing = np.flatnonzero(~has)
        neuron = np.concatenate([self.neuron[valid], missing])
        lo = np.concatenate([lo[valid], l[missing]])
        hi = np.concatenate([hi[valid], u[missing]])
        order = np.lexsort((lo, neuron))
        return LayerPartition(neuron[order], lo[order], hi[order], self.n_neurons)

    def locate(self, z: ArrayLike) -> IntArray:
        """Index of the segment containing ``z_i`` for every neuron (clamped to the range)."""
        zv = np.asarray(z, dtype=np.float64).reshape(-1)
        zz = zv[self.neuron]
        inside = (zz >= self.lo) & (zz <= self.hi)
        # last containing segment per neuron, else the nearest end
        idx = np.full(self.n_neurons, -1, dtype=np.int64)
        seg = np.flatnonzero(inside)
        idx[self.neuron[seg]] = seg  # later segments overwrite earlier (sorted)
        first = self.first
        last = first + self.counts - 1
        below = idx < 0
        idx[below] = np.where(zv[below] < self.range_lower[below], first[below], last[below])
        return idx


#: per hidden layer: the partition of a banded layer, ``None`` for an exactly encoded one
Model2Partition: TypeAlias = tuple[LayerPartition | None, ...]


# --------------------------------------------------------------------------------------------
# Bands
# --------------------------------------------------------------------------------------------


def _f(act: Activation, z: FloatArray) -> FloatArray:
    return apply_activation(act, np.asarray(z, dtype=np.float64))


def band_lines(
    act: Activation, lo: ArrayLike, hi: ArrayLike, kind: BandKind = "pwl"
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Sound band of the monotone ``act`` on every segment ``[lo_j, hi_j]``.

    Returns:
        ``(aL, bL, aU, bU, fmin, fmax)`` with, for every ``z`` in ``[lo_j, hi_j]``,
        ``max(fmin_j, aL_j z + bL_j) <= act(z) <= min(fmax_j, aU_j z + bU_j)``.
        ``fmin = act(lo) - margin``, ``fmax = act(hi) + margin`` (monotonicity); for
        ``kind="pwc"`` (or an activation without a linear relaxation) the lines are the
        constants themselves.
    """
    lo_a = np.asarray(lo, dtype=np.float64)
    hi_a = np.asarray(hi, dtype=np.float64)
    f_lo = _f(act, lo_a)
    f_hi = _f(act, hi_a)
    fmin = f_lo - VALUE_MARGIN * (1.0 + np.abs(f_lo))
    fmax = f_hi + VALUE_MARGIN * (1.0 + np.abs(f_hi))
    zero = np.zeros_like(lo_a)
    if kind == "pwc" or type(act) not in RELAXATIONS:
        return zero, fmin.copy(), zero.copy(), fmax.copy(), fmin, fmax
    if kind != "pwl":
        raise InvalidOptionsError(f"band={kind!r} must be 'pwl' or 'pwc'")
    rel = relax(act, lo_a, hi_a)
    aL = np.asarray(rel.lower_slope, dtype=np.float64).copy()
    bL = np.asarray(rel.lower_bias, dtype=np.float64).copy()
    aU = np.asarray(rel.upper_slope, dtype=np.float64).copy()
    bU = np.asarray(rel.upper_bias, dtype=np.float64).copy()
    # Solvers drop tiny matrix entries (HiGHS: |v| < 1e-9), which would turn a sloped line
    # into a wrong constant. Replace tiny slopes by the line's own sound constant bound on the
    # segment (its minimum for the lower line, its maximum for the upper one).
    flat_l = np.abs(aL) < SMALL_SLOPE
    flat_u = np.abs(aU) < SMALL_SLOPE
    bL = np.where(flat_l, np.minimum(aL * lo_a, aL * hi_a) + bL, bL)
    bU = np.where(flat_u, np.maximum(aU * lo_a, aU * hi_a) + bU, bU)
    aL = np.where(flat_l, 0.0, aL)
    aU = np.where(flat_u, 0.0, aU)
    return aL, bL, aU, bU, fmin, fmax


def band_width(act: Activation, lo: ArrayLike, hi: ArrayLike, kind: BandKind = "pwl") -> FloatArray:
    """Largest vertical width ``omega_j`` of the band on each segment.

    The width ``min(fmax, U(z)) - max(fmin, L(z))`` is concave and piecewise linear in ``z``,
    so its maximum is attained at a segment end or where a line meets its constant.
    """
    lo_a = np.asarray(lo, dtype=np.float64)
    hi_a = np.asarray(hi, dtype=np.float64)
    aL, bL, aU, bU, fmin, fmax = band_lines(act, lo_a, hi_a, kind)

    def width(z: FloatArray) -> FloatArray:
        return np.minimum(fmax, aU * z + bU) - np.maximum(fmin, aL * z + bL)

    with np.errstate(divide="ignore", invalid="ignore"):
        zu = np.where(aU != 0.0, (fmax - bU) / np.where(aU != 0.0, aU, 1.0), lo_a)
        zl = np.where(aL != 0.0, (fmin - bL) / np.where(aL != 0.0, aL, 1.0), lo_a)
    cands = [lo_a, hi_a, np.clip(zu, lo_a, hi_a), np.clip(zl, lo_a, hi_a)]
    return np.maximum(np.max([width(c) for c in cands], axis=0), 0.0)


def _inverse(act: Activation, target: FloatArray, l: FloatArray, u: FloatArray) -> FloatArray:
    """Vectorized bisection for ``act(z) = target`` on ``[l, u]`` (``act`` non-decreasing)."""
    a = np.broadcast_to(l, target.shape).copy()
    b = np.broadcast_to(u, target.shape).copy()
    for _ in range(64):
        mid = (a + b) / 2.0
        up = _f(act, mid) < target
        a = np.where(up, mid, a)
        b = np.where(up, b, mid)
    return (a + b) / 2.0


def _with_kinks(act: Activation, part: LayerPartition) -> LayerPartition:
    for kink in rule_for(act).kinks(act):
        seg = np.flatnonzero((part.lo < kink) & (part.hi > kink))
        part = part.split(seg, np.full(seg.size, kink))
    return part


def initial_partition(
    act: Activation,
    lower: ArrayLike,
    upper: ArrayLike,
    segments: int,
    *,
    placement: Placement = "adaptive",
    band: BandKind = "pwl",
    min_width: float = MIN_WIDTH,
    allowed: ArrayLike | None = None,
) -> LayerPartition:
    """Breakpoints for one banded layer with pre-activation bounds ``[l, u]`` (section 7.6).

    Args:
        act: the layer's activation (monotone non-decreasing).
        lower: ``l``, shape ``(n,)``.
        upper: ``u``, shape ``(n,)``.
        segments: target number of segments ``K`` per neuron (``>= 1``).
        placement: ``"uniform"`` (equal widths in ``z``), ``"value"`` (equal rise of
            ``act``: equal constant-band width ``omega``), ``"adaptive"`` (``K - 1`` rounds,
            each bisecting every neuron's widest band).
        band: the band kind used to measure widths.
        min_width: a neuron whose single band over ``[l, u]`` is at most this wide gets one
            segment and no binary (nearly linear or saturated); ``"adaptive"`` also never splits
            a segment narrower than this.
        allowed: optional mask of the neurons that may get more than one segment.

    Returns:
        A partition whose neurons cover exactly ``[l_i, u_i]``; kinks of a banded
        piecewise-linear activation are always breakpoints.
    """
    if not isinstance(segments, int) or segments < 1:
        raise InvalidOptionsError(f"segments={segments!r} must be an int >= 1")
    if placement not in ("uniform", "value", "adaptive"):
        raise InvalidOptionsError(
            f"placement={placement!r} must be 'uniform', 'value' or 'adaptive'"
        )
    l = np.asarray(lower, dtype=np.float64).reshape(-1)
    u = np.asarray(upper, dtype=np.float64).reshape(-1)
    base = _with_kinks(act, LayerPartition.single(l, u))
    if segments == 1:
        return base
    w1 = band_width(act, base.lo, base.hi, band)
    wide = np.zeros(l.size, dtype=bool)
    np.logical_or.at(wide, base.neuron, w1 > min_width)
    if allowed is not None:
        wide &= np.asarray(allowed, dtype=bool).reshape(-1)
    if placement == "adaptive":
        part = base
        for _ in range(segments - 1):
            w = band_width(act, part.lo, part.hi, band)
            grow = wide & (part.counts < segments)
            order = np.lexsort((-w, part.neuron))
            head = np.ones(order.size, dtype=bool)
            head[1:] = part.neuron[order][1:] != part.neuron[order][:-1]
            best = order[head]
            pick = best[(w[best] > min_width) & grow[part.neuron[best]]]
            if pick.size == 0:
                break
            part = part.split(pick, (part.lo[pick] + part.hi[pick]) / 2.0)
        return part
    frac = np.linspace(0.0, 1.0, segments + 1)
    if placement == "uniform":
        P = l[:, None] + (u - l)[:, None] * frac[None, :]
        P[:, 0], P[:, -1] = l, u  # exact ends (l + (u - l) * 1 may differ from u)
        P = np.maximum.accumulate(np.minimum(P, u[:, None]), axis=1)
    else:
        fl, fu = _f(act, l), _f(act, u)
        target = fl[:, None] + (fu - fl)[:, None] * frac[None, 1:-1]
        inner = _inverse(act, target, l[:, None], u[:, None])
        P = np.concatenate([l[:, None], np.maximum.accumulate(inner, axis=1), u[:, None]], 1)
    scale = 1e-9 * (1.0 + np.abs(P))
    keep = np.zeros_like(P, dtype=bool)
    keep[:, 1:-1] = (
        (np.diff(P, axis=1)[:, :-1] > scale[:, 1:-1])
        & ((u[:, None] - P[:, 1:-1]) > scale[:, 1:-1])
        & wide[:, None]
    )
    return _with_kinks(act, LayerPartition.from_points(P, keep))


def default_banded(acts: Sequence[Activation], banded: Sequence[type] | None) -> tuple[bool, ...]:
    """Which hidden layers are banded: the given types, plus any type without a big-M rule
    (by default exactly those: sigmoid and tanh)."""
    types = tuple(banded or ())
    return tuple(type(a) in types or big_m_pieces(a) is None for a in acts)


def network_partition(
    network: Network,
    bounds: LayerBounds,
    segments: int,
    *,
    placement: Placement = "adaptive",
    band: BandKind = "pwl",
    min_width: float = MIN_WIDTH,
    banded: Sequence[type] | None = None,
    max_binaries: int | None = None,
) -> Model2Partition:
    """:func:`initial_partition` for every banded hidden layer (``None`` for the others).

    With ``max_binaries``, only the ``max_binaries // segments`` neurons with the largest
    score ``omega_i * ||W^(k+1)[:, i]||_1`` (single-band width times outgoing weight) get
    ``segments`` segments; the others keep one (the refinement loop splits them on demand).
    """
    network = densified(network, "Model 2")  # sparse layers: densified or refused
    dense, acts = network.affine_and_activations()
    flags = default_banded(acts, banded)
    allowed: dict[int, BoolArray] = {}
    if max_binaries is not None and segments > 1:
        scores = []
        for k, act in enumerate(acts):
            if flags[k]:
                iv = bounds.pre_activation[k]
                w = band_width(act, iv.lower, iv.upper, band)
                scores.append((k, w * np.abs(dense[k + 1].weight).sum(axis=0)))
        total = sum(sc.size for _, sc in scores)
        n_allowed = max(0, int(max_binaries) // segments)
        if total > n_allowed and scores:
            flat = np.concatenate([sc for _, sc in scores])
            cut = np.sort(flat)[::-1][n_allowed - 1] if n_allowed > 0 else np.inf
            for k, sc in scores:
                allowed[k] = sc >= cut
    out: list[LayerPartition | None] = []
    for k, act in enumerate(acts):
        iv = bounds.pre_activation[k]
        out.append(
            initial_partition(
                act,
                iv.lower,
                iv.upper,
                segments,
                placement=placement,
                band=band,
                min_width=min_width,
                allowed=allowed.get(k),
            )
            if flags[k]
            else None
        )
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SegmentColumns:
    """Columns of the segment copies of one banded layer.

    Attributes:
        multi: per segment, whether it belongs to a neuron with ``K >= 2`` (only those have
            copies and a binary), shape ``(S,)``.
        z: columns of the copies ``z_k`` of the ``multi`` segments (in segment order).
        a: columns of the copies ``a_k``.
        delta: columns of the binaries ``delta_k``.
    """

    multi: BoolArray
    z: slice
    a: slice
    delta: slice


@dataclass(frozen=True, eq=False)
class Model2Problem:
    """An encoded Model 2 MILP and what is needed to read and refine its solutions.

    Attributes:
        problem: the MILP (minimise ``max_r (A_r f - b_r)`` over the over-approximation).
        partition: the partition actually encoded (clipped to the bounds), per hidden layer.
        segment_columns: per hidden layer, the segment columns (``None`` when not banded).
        acts: the activations of the normalized network, per hidden layer.
        band: ``"pwl"`` or ``"pwc"``.
        bounds: the pre-activation bounds used.
    """

    problem: MilpProblem
    partition: Model2Partition
    segment_columns: tuple[SegmentColumns | None, ...]
    acts: tuple[Activation, ...]
    band: BandKind
    bounds: LayerBounds

    @property
    def n_binaries(self) -> int:
        """All binaries (segments and big-M phases)."""
        return self.problem.n_integer

    @property
    def segments_per_layer(self) -> tuple[int, ...]:
        """Largest ``K`` per hidden layer (``0`` for exactly encoded layers)."""
        return tuple(0 if p is None else int(p.counts.max()) for p in self.partition)

    def decode_input(self, v: ArrayLike) -> FloatArray:
        """The input part of a solution vector."""
        return self.problem.index.decode_input(v)


def _band_layer(
    b: MilpBuilder,
    act: Activation,
    z: slice,
    part: LayerPartition,
    kind: BandKind,
    l: FloatArray,
    u: FloatArray,
) -> tuple[slice, SegmentColumns]:
    """Columns and rows of one banded layer (module docstring)."""
    n = z.stop - z.start
    aL, bL, aU, bU, fmin, fmax = band_lines(act, part.lo, part.hi, kind)
    f_l, f_u = _f(act, l), _f(act, u)
    a = b.add_columns(
        n, f_l - VALUE_MARGIN * (1.0 + np.abs(f_l)), f_u + VALUE_MARGIN * (1.0 + np.abs(f_u))
    )
    z_idx = np.arange(z.start, z.stop, dtype=np.int64)
    a_idx = np.arange(a.start, a.stop, dtype=np.int64)
    counts = part.counts
    multi = counts[part.neuron] >= 2
    lines = kind == "pwl" and type(act) in RELAXATIONS
    # ---- single-segment neurons: rows on (z, a) directly
    single = np.flatnonzero(~multi)
    if single.size:
        nz = part.neuron[single]
        zc, ac = z_idx[nz], a_idx[nz]
        # column bounds of a are act(l), act(u); z is confined to [l, u] by its column bounds
        if lines:
            b.add_rows([(ac, 1.0), (zc, -aL[single])], bL[single], _INF)
            b.add_rows([(ac, 1.0), (zc, -aU[single])], -_INF, bU[single])
    # ---- multi-segment neurons: disaggregated copies and one-hot binaries
    ms = np.flatnonzero(multi)
    m = ms.size
    lo, hi = part.lo[ms], part.hi[ms]
    zs = b.add_columns(m, np.minimum(lo, 0.0), np.maximum(hi, 0.0))
    fmin_m, fmax_m = fmin[ms], fmax[ms]
    as_ = b.add_columns(m, np.minimum(fmin_m, 0.0), np.maximum(fmax_m, 0.0))
    ds = b.add_columns(m, 0.0, 1.0, integer=True)
    cols = SegmentColumns(multi, zs, as_, ds)
    if m == 0:
        return a, cols
    zc = np.arange(zs.start, zs.stop, dtype=np.int64)
    ac = np.arange(as_.start, as_.stop, dtype=np.int64)
    dc = np.arange(ds.start, ds.stop, dtype=np.int64)
    # sums over each multi neuron: pad to K_max terms with zero coefficients
    neurons = np.unique(part.neuron[ms])
    seg_neuron = part.neuron[ms]
    start = np.searchsorted(seg_neuron, neurons)
    cnt = counts[neurons]
    kmax = int(cnt.max())
    terms_d: list[tuple[ArrayLike, ArrayLike]] = []
    terms_z: list[tuple[ArrayLike, ArrayLike]] = [(z_idx[neurons], 1.0)]
    terms_a: list[tuple[ArrayLike, ArrayLike]] = [(a_idx[neurons], 1.0)]
    for j in range(kmax):
        present = j < cnt
        pos = np.where(present, start + j, start)
        coef = present.astype(np.float64)
        terms_d.append((dc[pos], coef))
        terms_z.append((zc[pos], -coef))
        terms_a.append((ac[pos], -coef))
    b.add_rows(terms_d, 1.0, 1.0)  # sum_k delta_k = 1
    b.add_rows(terms_z, 0.0, 0.0)  # z = sum_k z_k
    b.add_rows(terms_a, 0.0, 0.0)  # a = sum_k a_k
    b.add_rows([(zc, 1.0), (dc, -lo)], 0.0, _INF)  # z_k >= t_{k-1} delta_k
    b.add_rows([(zc, 1.0), (dc, -hi)], -_INF, 0.0)  # z_k <= t_k delta_k
    b.add_rows([(ac, 1.0), (dc, -fmin_m)], 0.0, _INF)  # a_k >= fmin delta_k
    b.add_rows([(ac, 1.0), (dc, -fmax_m)], -_INF, 0.0)  # a_k <= fmax delta_k
    if lines:
        b.add_rows([(ac, 1.0), (zc, -aL[ms]), (dc, -bL[ms])], 0.0, _INF)
        b.add_rows([(ac, 1.0), (zc, -aU[ms]), (dc, -bU[ms])], -_INF, 0.0)
    return a, cols


def _check_bounds(net: Network, case: UnsafeCase, bounds: LayerBounds) -> tuple[Dense, ...]:
    dense, _ = densified(net, "Model 2").affine_and_activations()
    if case.input_box.dim != net.n_inputs or case.A.shape[1] != net.n_outputs:
        raise InvalidPropertyError("encode_model2: the case does not fit the network")
    pre = bounds.pre_activation
    if len(pre) != len(dense) or any(iv.lower.shape != (d.n_out,) for iv, d in zip(pre, dense)):
        raise InvalidOptionsError("encode_model2: bounds do not match the network's normal form")
    box = case.input_box
    if np.any(box.lower < bounds.box.lower) or np.any(box.upper > bounds.box.upper):
        raise InvalidPropertyError("encode_model2: bounds were computed over a smaller box")
    for k, iv in enumerate(pre[:-1]):
        if not (np.all(np.isfinite(iv.lower)) and np.all(np.isfinite(iv.upper))):
            raise InvalidOptionsError(f"encode_model2: bounds of layer {k + 1} are not finite")
        if np.any(iv.lower > iv.upper):
            raise InvalidOptionsError(f"encode_model2: bounds of layer {k + 1} have lower > upper")
    return dense


@dataclass(frozen=True)
class _Linear:
    """Stable neurons of an exactly encoded layer: ``a_i = s_i z_i + c_i`` on ``[l_i, u_i]``,
    with ``z = W a_in + b`` (``a_in`` in the columns ``inputs``)."""

    mask: BoolArray
    slope: FloatArray
    const: FloatArray
    layer: Dense
    inputs: slice
    post: slice


def _stable_linear(
    act: Activation, l: FloatArray, u: FloatArray, layer: Dense, inputs: slice, post: slice
) -> _Linear | None:
    mask, slope, const = rule_for(act).affine_on(act, l, u)
    if not mask.any():
        return None
    return _Linear(mask, slope, const, layer, inputs, post)


def _affine_blocks(
    layer: Dense, prev: slice, lin: _Linear | None
) -> tuple[list[tuple[slice, FloatArray]], FloatArray]:
    r"""Blocks of ``W a_prev + b`` with stable-linear neurons of ``a_prev`` substituted.

    A stable neuron has ``a_i = s_i z_i + c_i`` and ``z_i = W'_i a_in + b'_i``, so
    ``W[:, i] a_i = W[:, i] s_i (W'_i a_in + b'_i) + W[:, i] c_i`` exactly. The substitution is
    made only when it saves matrix entries (a wide layer fed by a narrow one), which keeps LPs
    small (e.g. a 200-neuron ReLU layer over 8 free inputs).
    """
    W, bias = layer.weight, layer.bias
    if lin is None:
        return [(prev, W)], bias
    idx = np.flatnonzero(lin.mask)
    Wl = W[:, idx]
    n_in = lin.inputs.stop - lin.inputs.start
    if np.count_nonzero(Wl) <= W.shape[0] * n_in:
        return [(prev, W)], bias
    rest = W.copy()
    rest[:, idx] = 0.0
    scaled = Wl * lin.slope[idx]
    sub = scaled @ lin.layer.weight[idx]
    new_bias = bias + scaled @ lin.layer.bias[idx] + Wl @ lin.const[idx]
    return [(prev, rest), (lin.inputs, sub)], new_bias


def encode_model2(
    network: Network,
    case: UnsafeCase,
    bounds: LayerBounds,
    partition: Model2Partition | None = None,
    *,
    segments: int = 4,
    band: BandKind = "pwl",
    placement: Placement = "adaptive",
    min_width: float = MIN_WIDTH,
    banded: Sequence[type] | None = None,
) -> Model2Problem:
    r"""Encode ``min_{x in box} max_r (A_r f(x) - b_r)`` over the Model 2 over-approximation.

    The objective is that of :func:`nncert.formulations.milp.encode_milp` (one row: the row
    itself; several: ``min t``, ``t >= A_r f - b_r``). Its optimum is a sound lower bound of the
    true minimum (module docstring); a positive optimum proves the case infeasible.

    Args:
        network: any network with monotone activations (normalized first).
        case: the unsafe case.
        bounds: sound pre-activation bounds of the normalized network over a box containing the
            case's input box (they set the big-M constants and the band ranges).
        partition: segments per banded hidden layer (``None`` entries for exact layers);
            clipped to ``bounds``. Default: :func:`network_partition` with ``segments``,
            ``placement``, ``band`` and ``min_width``.
        segments: ``K`` for the default partition.
        band: ``"pwl"`` (default) or ``"pwc"``.
        placement: breakpoint placement for the default partition.
        min_width: band width under which a neuron gets no binary (default partition).
        banded: activation types to encode by bands (default sigmoid and tanh; add
            ``HardTanh`` for the cross-check of section 7.9). Types without an exact big-M
            rule are always banded.

    Returns:
        The :class:`Model2Problem`.
    """
    t0 = time.perf_counter()
    if band not in ("pwl", "pwc"):
        raise InvalidOptionsError(f"band={band!r} must be 'pwl' or 'pwc'")
    net = network.normalized()
    dense = _check_bounds(net, case, bounds)
    _, acts = densified(net, "Model 2").affine_and_activations()
    flags = default_banded(acts, banded)
    if partition is None:
        partition = network_partition(
            net,
            bounds,
            segments,
            placement=placement,
            band=band,
            min_width=min_width,
            banded=banded,
        )
    if len(partition) != len(acts):
        raise InvalidOptionsError(
            f"encode_model2: partition has {len(partition)} layers, network has {len(acts)}"
        )
    b = MilpBuilder()
    x = b.add_columns(net.n_inputs, case.input_box.lower, case.input_box.upper)
    prev = x
    pre: list[slice] = []
    post: list[slice] = []
    aux: list[slice] = []
    bins: list[slice] = []
    bin_neuron: list[IntArray] = []
    unstable: list[int] = []
    used: list[LayerPartition | None] = []
    seg_cols: list[SegmentColumns | None] = []
    linear_prev: _Linear | None = None
    for k, act in enumerate(acts):
        layer = dense[k]
        iv = bounds.pre_activation[k]
        l = np.asarray(iv.lower, dtype=np.float64)
        u = np.asarray(iv.upper, dtype=np.float64)
        z = b.add_columns(layer.n_out, l, u)
        blocks, bias = _affine_blocks(layer, prev, linear_prev)
        rows = b.add_rows([(np.arange(z.start, z.stop), 1.0)], bias, bias)
        for cols_k, block in blocks:
            b.add_block(rows, cols_k, -block)
        part_k = partition[k]
        if flags[k] or part_k is not None:
            if part_k is None:
                part_k = initial_partition(act, l, u, 1)
            part_k = part_k.clip(l, u)
            a, cols = _band_layer(b, act, z, part_k, band, l, u)
            post.append(a)
            aux.append(slice(a.stop, a.stop))
            bins.append(cols.delta)
            neuron = part_k.neuron[cols.multi]
            bin_neuron.append(neuron)
            unstable.append(int(np.unique(neuron).size))
            used.append(part_k)
            seg_cols.append(cols)
        else:
            enc = encode_activation(b, act, z, l, u, False)
            post.append(enc.post)
            aux.append(enc.aux)
            bins.append(enc.binaries)
            bin_neuron.append(np.asarray(enc.binary_neuron, dtype=np.int64))
            unstable.append(int(np.unique(enc.binary_neuron).size))
            used.append(None)
            seg_cols.append(None)
        pre.append(z)
        linear_prev = (
            None
            if flags[k] or partition[k] is not None
            else _stable_linear(act, l, u, layer, prev, post[-1])
        )
        prev = post[-1]
    c, offset, t_col = encode_case_objective(b, case, dense[-1], prev)
    index = VariableIndex(
        n_cols=b.n_cols,
        inputs=x,
        pre=tuple(pre),
        post=tuple(post),
        aux=tuple(aux),
        binaries=tuple(bins),
        binary_neuron=tuple(bin_neuron),
        objective=t_col,
    )
    problem = b.build(c, offset, index)
    stats = EncodingStats(
        n_binaries=index.n_binaries,
        unstable_per_layer=tuple(unstable),
        binaries_per_layer=tuple(s.stop - s.start for s in bins),
        n_rows=problem.n_rows,
        n_cols=problem.n_cols,
        nnz=int(problem.A.nnz),
        build_time=time.perf_counter() - t0,
    )
    problem = dataclasses.replace(problem, stats=stats)
    return Model2Problem(problem, tuple(used), tuple(seg_cols), acts, band, bounds)


# --------------------------------------------------------------------------------------------
# Reading solutions, refinement, a-priori gap
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefineResult:
    """A refined partition and how many segments were split."""

    partition: Model2Partition
    n_split: int


def relaxation_slack(m2: Model2Problem, v: ArrayLike) -> list[FloatArray | None]:
    """Per banded layer, ``|a_hat_i - sigma(z_hat_i)|`` at a MILP solution ``v``.

    This is how far the candidate uses the over-approximation at each neuron; ``None`` for
    exactly encoded layers.
    """
    sol = np.asarray(v, dtype=np.float64)
    idx = m2.problem.index
    out: list[FloatArray | None] = []
    for k, part in enumerate(m2.partition):
        if part is None:
            out.append(None)
            continue
        zh, ah = sol[idx.pre[k]], sol[idx.post[k]]
        out.append(np.abs(ah - _f(m2.acts[k], zh)))
    return out


def refine_at(
    m2: Model2Problem,
    v: ArrayLike,
    *,
    max_splits: int | None = None,
    min_width: float = MIN_WIDTH,
    slack_tol: float = 1e-9,
) -> RefineResult:
    """Split the segments a spurious candidate ``v`` used (CEGAR step, nested).

    For every banded neuron the candidate's segment is the one holding its ``z_hat``. Neurons are
    ranked by the slack ``|a_hat - sigma(z_hat)|``; those with slack above ``slack_tol`` and a
    band wider than ``min_width`` are split (the ``max_splits`` largest, default all), at
    ``z_hat`` clamped into the middle half of the segment (so every split shrinks the segment by
    at least a quarter and repeated refinement converges).
    """
    sol = np.asarray(v, dtype=np.float64)
    idx = m2.problem.index
    slack = relaxation_slack(m2, sol)
    cands: list[tuple[float, int, int, float]] = []  # (slack, layer, segment, point)
    layers_s: list[tuple[int, IntArray, FloatArray, FloatArray]] = []
    for k, part in enumerate(m2.partition):
        s = slack[k]
        if part is None or s is None:
            continue
        zh = sol[idx.pre[k]]
        seg = part.locate(zh)
        cols = m2.segment_columns[k]
        if cols is not None and np.any(cols.multi):  # prefer the chosen delta
            d = sol[cols.delta]
            multi_seg = np.flatnonzero(cols.multi)
            chosen = multi_seg[d > 0.5]
            seg[part.neuron[chosen]] = chosen
        lo, hi = part.lo[seg], part.hi[seg]
        width = band_width(m2.acts[k], lo, hi, m2.band)
        ok = (s > slack_tol) & (width > min_width) & (hi > lo)
        w = hi - lo
        at = np.clip(zh, lo + w / 4.0, hi - w / 4.0)
        layers_s.append((k, seg[ok], at[ok], s[ok]))
        cands.extend((float(sv), k, int(sg), float(p)) for sv, sg, p in zip(s[ok], seg[ok], at[ok]))
    if max_splits is not None and len(cands) > max_splits:
        cands.sort(key=lambda t: -t[0])
        cands = cands[:max_splits]
    new = list(m2.partition)
    n = 0
    for k, _, _, _ in layers_s:
        mine = [(sg, p) for _, kk, sg, p in cands if kk == k]
        part = new[k]
        if not mine or part is None:
            continue
        segs = np.array([t[0] for t in mine], dtype=np.int64)
        pts = np.array([t[1] for t in mine])
        refined = part.split(segs, pts)
        n += refined.n_segments - part.n_segments
        new[k] = refined
    return RefineResult(tuple(new), n)


def refine_all(partition: Model2Partition) -> Model2Partition:
    """Bisect every segment of every banded layer (nested ``K -> 2K``)."""
    return tuple(None if p is None else p.refine_all() for p in partition)


def a_priori_gap(m2: Model2Problem, case: UnsafeCase) -> float:
    r"""The a-priori bound on ``m* - m_K`` of section 7.4 (per case row, the largest).

    ``E_0 = 0``, ``E_k = omega_k + Lip_k |W^(k)| E_{k-1}`` with ``omega_k`` the per-neuron
    largest band width (``0`` for exactly encoded layers, whose error is only propagated) and
    the bound ``|A W^(L)| E_{L-1}``. For one hidden layer this is ``sum_i |c_i| omega_i``.
    """
    net = m2.bounds.network
    dense, _ = densified(net, "Model 2").affine_and_activations()
    E = np.zeros(net.n_inputs)
    for k, act in enumerate(m2.acts):
        lip = rule_for(act).lipschitz(act)
        prop = lip * (np.abs(dense[k].weight) @ E) if k > 0 else np.zeros(dense[k].n_out)
        part = m2.partition[k]
        omega = np.zeros(dense[k].n_out)
        if part is not None:
            w = band_width(act, part.lo, part.hi, m2.band)
            np.maximum.at(omega, part.neuron, w)
        E = omega + prop
    G = np.abs(case.A @ dense[-1].weight)
    return float(np.max(G @ E)) if G.size else 0.0


def solve_model2(
    m2: Model2Problem, solver: Any, *, time_limit: float | None = None, **kwargs: Any
) -> Any:
    """Solve the MILP with a :class:`~nncert.solvers.base.MilpSolver` (thin convenience)."""
    return solver.solve(m2.problem, time_limit=time_limit, **kwargs)


# --------------------------------------------------------------------------------------------
# Exact problem reduction
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Reduction:
    """An equivalent smaller problem: fixed inputs and constant neurons folded away.

    Attributes:
        network: the reduced normalized network.
        case: the case over the free inputs only.
        bounds: the bounds restricted to the kept neurons.
        free: indices of the kept (free) inputs of the original network.
        x_fixed: the original input vector with the fixed coordinates set (free ones 0).
        kept: per layer of the reduced network, the original neuron indices kept.
    """

    network: Network
    case: UnsafeCase
    bounds: LayerBounds
    free: IntArray
    x_fixed: FloatArray
    kept: tuple[IntArray, ...]

    def lift(self, x_free: ArrayLike) -> FloatArray:
        """The original input for a point of the reduced input space."""
        x = self.x_fixed.copy()
        x[self.free] = np.asarray(x_free, dtype=np.float64).reshape(-1)
        return x


def _constant_value(act: Activation, l: FloatArray, u: FloatArray) -> tuple[BoolArray, FloatArray]:
    """Neurons whose activation is constant on ``[l, u]`` and that constant.

    Constant means ``l = u`` (the value ``sigma(l)``) or affine with slope 0 on ``[l, u]``
    (inactive ReLU, saturated HardTanh: the rule's constant, exact for the built-in rules).
    """
    rule = rule_for(act)
    mask, slope, const = rule.affine_on(act, l, u)
    flat = mask & (slope == 0.0)
    return flat | (l == u), np.where(flat, const, rule.apply(act, l))


def reduce_problem(network: Network, case: UnsafeCase, bounds: LayerBounds) -> Reduction:
    """Fold fixed inputs (``lo == hi``) and constant neurons into biases (exact).

    A fixed input ``x_j = c`` contributes ``W^(1)[:, j] c`` to the first bias; a neuron whose
    activation is constant on its bounds (inactive ReLU, saturated HardTanh, ``l = u``) contributes
    ``W^(k+1)[:, i] sigma(l_i)`` to the next bias. The reduced network computes the same outputs
    on the case's box, so every bound and counterexample carries over (:meth:`Reduction.lift`).
    """
    network = densified(network, "Model 2")  # sparse layers: densified or refused
    net = network.normalized()
    dense, acts = densified(net, "Model 2").affine_and_activations()
    box = case.input_box
    fixed = box.lower == box.upper
    free = np.flatnonzero(~fixed).astype(np.int64)
    if free.size == 0:  # keep one input so the network stays well formed
        free = np.array([0], dtype=np.int64)
        fixed[0] = False
    x_fixed = np.where(fixed, box.lower, 0.0)
    W0 = dense[0].weight
    b_carry = dense[0].bias + W0[:, fixed] @ box.lower[fixed]
    weights: list[FloatArray] = [W0[:, free]]
    biases: list[FloatArray] = [b_carry]
    kept: list[IntArray] = []
    ivs: list[Interval] = []
    keep_prev = np.arange(dense[0].n_out, dtype=np.int64)
    for k, act in enumerate(acts):
        iv = bounds.pre_activation[k]
        l, u = iv.lower[keep_prev], iv.upper[keep_prev]
        const, val = _constant_value(act, l, u)
        keep = ~const
        if not keep.any():
            keep[0] = True
            const[0] = False
        W_next = dense[k + 1].weight[:, keep_prev]
        b_next = dense[k + 1].bias + W_next[:, const] @ val[const]
        weights[-1] = weights[-1][keep]
        biases[-1] = biases[-1][keep]
        kept.append(keep_prev[keep])
        ivs.append(Interval(l[keep], u[keep]))
        weights.append(W_next[:, keep])
        biases.append(b_next)
        keep_prev = np.arange(dense[k + 1].n_out, dtype=np.int64)
    ivs.append(bounds.pre_activation[-1])
    layers: list[Any] = []
    for k in range(len(dense)):
        layers.append(Dense(weights[k], biases[k]))
        if k < len(acts):
            layers.append(acts[k])
    rnet = Network(tuple(layers), (int(free.size),), name=net.name)
    rbox_lo, rbox_hi = box.lower[free], box.upper[free]
    rbox = Box(rbox_lo, rbox_hi)
    rcase = UnsafeCase(rbox, case.A, case.b)
    rb = LayerBounds(rnet, rbox, tuple(ivs), method=bounds.method)
    return Reduction(rnet, rcase, rb, free, x_fixed, tuple(kept))


def model2_point(m2: Model2Problem, x: ArrayLike) -> FloatArray:
    """The MILP point of the true execution from input ``x`` (feasible by soundness).

    Used as a warm start and to test soundness: ``m2.problem.max_violation(point)`` must be
    within the solver's tolerances, and its objective equals the real case objective.
    """
    net = m2.bounds.network
    dense, _ = densified(net, "Model 2").affine_and_activations()
    idx = m2.problem.index
    v = np.zeros(m2.problem.n_cols)
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    v[idx.inputs] = a
    for k, act in enumerate(m2.acts):
        z = dense[k].weight @ a + dense[k].bias
        iv = m2.bounds.pre_activation[k]
        z = np.clip(z, iv.lower, iv.upper)
        a = _f(act, z)
        v[idx.pre[k]] = z
        part = m2.partition[k]
        cols = m2.segment_columns[k]
        if part is not None and cols is not None:
            a = np.clip(a, m2.problem.col_lower[idx.post[k]], m2.problem.col_upper[idx.post[k]])
            v[idx.post[k]] = a
            seg = part.locate(z)
            multi = np.flatnonzero(cols.multi)
            pos = np.searchsorted(multi, seg)
            has = cols.multi[seg]
            zc = np.arange(cols.z.start, cols.z.stop)
            ac = np.arange(cols.a.start, cols.a.stop)
            dc = np.arange(cols.delta.start, cols.delta.stop)
            v[zc[pos[has]]] = z[has]
            v[ac[pos[has]]] = a[has]
            v[dc[pos[has]]] = 1.0
            continue
        v[idx.post[k]] = a
        bins = np.arange(idx.binaries[k].start, idx.binaries[k].stop)
        neuron = idx.binary_neuron[k]
        pieces = big_m_pieces(act)
        if pieces is None:  # pragma: no cover - layers without pieces are banded
            continue
        if idx.aux[k].stop > idx.aux[k].start:
            v[idx.aux[k]] = np.concatenate(piece_values(pieces, z))
        theta = piece_thresholds(pieces, iv.lower, iv.upper)
        v[bins] = (z[neuron] > theta).astype(float)
    if idx.objective is not None:
        # rows t - G a >= h: with t = 0 the activity is -G a, so t = max_r (h_r + G_r a)
        col = m2.problem.A[:, [idx.objective]].toarray().reshape(-1)
        rows = np.flatnonzero(col)
        act_rows = m2.problem.A[rows] @ v
        v[idx.objective] = float(np.max(m2.problem.row_lower[rows] - act_rows))
    return v


__all__ = [
    "BandKind",
    "LayerPartition",
    "Model2Partition",
    "Model2Problem",
    "Placement",
    "Reduction",
    "RefineResult",
    "SegmentColumns",
    "a_priori_gap",
    "band_lines",
    "band_width",
    "encode_model2",
    "initial_partition",
    "model2_point",
    "network_partition",
    "reduce_problem",
    "refine_all",
    "refine_at",
    "relaxation_slack",
    "solve_model2",
]
