r"""One home per activation: everything the verifier needs to know about each activation type.

Each supported activation (:class:`~nncert.verify.network.ReLU`, ``LeakyReLU``, ``HardTanh``,
``Sigmoid``, ``Tanh``, ``RectifiedPower``, ``Exp``, ``NegReciprocal1p``, ``Identity``) has one
:class:`ActivationRule` object in :data:`RULES`,
looked up with :func:`rule_for`. A rule knows

* ``apply``: the function itself (float64);
* ``interval``: an enclosure of :math:`\sigma([l, u])` (every supported activation is
  monotone), rounded outwards;
* ``relax``: two linear lines per neuron, :math:`s_L z + b_L \le \sigma(z) \le s_U z + b_U` for
  every *real* :math:`z \in [l, u]`, with non-negative slopes; the lines hold in real arithmetic
  although they were computed in float64 (see *Soundness of the lines* below);
* ``lower_family``: for the ReLU family, the neurons whose lower line may be any
  :math:`s z` with :math:`s \in [s_{min}, s_{max}]` (what alpha-CROWN optimises);
* ``exact``: where :math:`\sigma` is affine on :math:`[l, u]` (the relaxation is then exact and
  the MILP needs no binary);
* ``affine_on``: the slope and intercept where :math:`\sigma` is affine on :math:`[l, u]`
  (stable neurons: folded into the next layer or encoded without a binary);
* ``derivative`` (what attacks back-propagate), ``lipschitz`` and ``kinks`` (breakpoints of a
  piecewise-linear activation);
* ``relu_pieces``: the big-M (MILP) rule as data, :math:`\sigma(z) = c + \sum_i w_i
  \max(z - \theta_i, \lambda_i (z - \theta_i))` with :math:`0 \le \lambda_i \le 1`;
* ``diff``: the difference rule for :math:`\sigma(\tilde z) - \sigma(z)` given boxes of
  :math:`z`, :math:`\tilde z` and :math:`\delta = \tilde z - z` (used by transfer between an
  original and a compressed network), rounded outwards.

Every other module asks the rule (:func:`rule_for`) instead of testing activation types.
A piecewise-linear activation needs only its pieces: :class:`PiecewiseLinearRule` derives
every item above from ``relu_pieces`` (generic relaxation: parallel chord lines with safe
intercepts; generic difference rule: the mean slope lies between the smallest and the largest
slope met on the hull of both boxes). ``ReLU``, ``LeakyReLU`` and ``HardTanh`` override
the relaxation, the interval and the difference rule with tighter, exact versions.
:func:`register_rule` adds a new activation type (a frozen dataclass of its parameters) to the
table and to the network IR's forward pass, after which bounds, the MILP, attacks and
difference bounds handle it without any other change.

Soundness of the lines
----------------------
A line computed in float64 may miss the function by a rounding error; near a property's boundary
that is enough for a wrong answer. The lines are therefore built so that they hold exactly:

* lines that *are* a piece of the function (identity, constants, :math:`\lambda z` through the
  ReLU kink) are exact in float64;
* for a piecewise-linear :math:`\sigma`, a line with slope :math:`s` lies below :math:`\sigma` on
  :math:`[l, u]` iff it lies below it at :math:`l`, :math:`u` and the kinks inside, so a lower
  line's intercept is :math:`\min_p (\sigma(p) - s p)` over those points and an upper line's
  the maximum, each term rounded in the safe direction with an explicit error bound
  (:func:`_intercepts`); any float slope then gives a valid line;
* sigmoid and tanh lines (tangents and chords) are widened by a relative margin of
  ``1e-12``, several orders of magnitude above the float64 error of their construction;
* :class:`RectifiedPowerRule` (convex) computes the intercept of any float slope safely: an
  upper line from the end points (a line above a convex function at both ends lies above it
  in between), a lower line from the global minimum of ``sigma(z) - s z`` in closed form.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any, ClassVar, NamedTuple

import numpy as np
from numpy.typing import NDArray

import nncert.verify.network as _network
from nncert.verify.errors import InvalidNetworkError, UnsupportedLayerError
from nncert.verify.network import (
    Activation,
    Exp,
    FloatArray,
    HardTanh,
    Identity,
    LeakyReLU,
    NegReciprocal1p,
    RectifiedPower,
    ReLU,
    Sigmoid,
    Tanh,
    apply_activation,
    rectified_power,
)
from nncert.verify.rounding import TINY, UNIT, down, gamma, inflate, up

BoolArray = NDArray[np.bool_]

#: Relative outward margin added to sigmoid/tanh relaxation offsets (round-off protection).
SMOOTH_MARGIN = 1e-12

_BISECTION_STEPS = 60


class Relaxation(NamedTuple):
    """Per-neuron lines ``lower_slope*z + lower_bias <= sigma(z) <= upper_slope*z + upper_bias``.

    Valid for every real ``z`` in the interval ``[l, u]`` they were built for. All arrays have
    the shape of ``l``; both slopes are ``>= 0``.
    """

    lower_slope: FloatArray
    lower_bias: FloatArray
    upper_slope: FloatArray
    upper_bias: FloatArray


class LowerFamily(NamedTuple):
    """Neurons whose lower line may be ``s z`` for any ``s`` in ``[s_min, s_max]`` (bias 0)."""

    mask: FloatArray
    s_min: float
    s_max: float


#: the big-M rule as data: ``sigma(z) = offset + sum_i w_i max(z - theta_i, leak_i (z - theta_i))``
ReluPieces = tuple[float, tuple[tuple[float, float, float], ...]]


# --------------------------------------------------------------------------------------------
# Safe intercepts for piecewise-linear functions
# --------------------------------------------------------------------------------------------


def _minus_product(f: FloatArray, s: FloatArray, p: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``fl(f - fl(s p))`` and a bound on its distance to the exact ``f - s p``."""
    sp = s * p
    v = f - sp
    err = 2.0 * UNIT * (np.abs(sp) + np.abs(v)) + TINY
    return v, err


def _intercepts(
    s: FloatArray,
    points: list[FloatArray],
    values_lo: list[FloatArray],
    values_hi: list[FloatArray],
    *,
    upper: bool,
) -> FloatArray:
    """The intercept that makes slope ``s`` a valid lower (``upper=False``) or upper line.

    ``points`` are the places to check (end points and kinks inside ``[l, u]``, as arrays
    shaped like ``s``; use ``nan`` to skip a point for a neuron), ``values_lo``/``values_hi``
    float64 bounds of the function at them. Lower: ``min_p (sigma(p) - s p)`` rounded down;
    upper: ``max_p (sigma(p) - s p)`` rounded up.
    """
    out: FloatArray | None = None
    for p, flo, fhi in zip(points, values_lo, values_hi):
        v, err = _minus_product(fhi if upper else flo, s, p)
        t = up(v + err) if upper else down(v - err)
        t = np.where(np.isnan(p), -np.inf if upper else np.inf, t)
        out = t if out is None else (np.maximum(out, t) if upper else np.minimum(out, t))
    assert out is not None
    return out


# --------------------------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------------------------


class ActivationRule:
    """Base class: what every activation provides (see the module docstring).

    A rule for a new activation type overrides at least ``apply`` (unless the network IR
    already knows the function), ``relax``, ``derivative`` and ``lipschitz``; piecewise-linear
    ones should derive from :class:`PiecewiseLinearRule` and only give their pieces.
    """

    #: the IR layer type the rule belongs to
    layer_type: ClassVar[type]
    #: whether the function is piecewise linear (exact MILP encodings exist)
    piecewise_linear: ClassVar[bool] = True

    def apply(self, layer: Any, z: FloatArray) -> FloatArray:
        """``sigma(z)`` element-wise in float64 (the network IR's forward pass)."""
        return apply_activation(layer, np.asarray(z, dtype=np.float64))

    def interval(self, layer: Any, l: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Outward-rounded enclosure of ``sigma([l, u])`` (monotone: the end points' images).

        The default returns ``apply`` at the end points, which is only outward when ``apply`` is
        exact in float64 (clip, identity); other rules override it.
        """
        return self.apply(layer, l), self.apply(layer, u)

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        """Sound lines on ``[l, u]`` (see the module docstring)."""
        raise NotImplementedError

    def affine_on(
        self, layer: Any, l: FloatArray, u: FloatArray
    ) -> tuple[BoolArray, FloatArray, FloatArray]:
        """``(mask, slope, const)``: ``sigma(z) = slope z + const`` on ``[l, u]`` where ``mask``.

        ``slope`` and ``const`` are only meaningful where ``mask`` is true. The default (no
        neuron is affine) suits smooth activations.
        """
        zero = np.zeros(np.shape(l))
        return np.zeros(np.shape(l), dtype=bool), zero, zero.copy()

    def exact(self, layer: Any, l: FloatArray, u: FloatArray) -> BoolArray:
        """Boolean mask: ``sigma`` is affine on ``[l, u]`` (the relaxation is exact)."""
        return self.affine_on(layer, l, u)[0]

    def lower_family(self, layer: Any, l: FloatArray, u: FloatArray) -> LowerFamily | None:
        """Neurons whose lower line may be optimised (alpha-CROWN); ``None`` if none can."""
        return None

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        """``sigma'(z)``; at a kink the smaller one-sided derivative (ReLU: 0 at 0).

        Args:
            layer: the activation layer.
            z: pre-activations.
            value: ``sigma(z)`` when already computed (smooth rules reuse it).
        """
        raise NotImplementedError

    def lipschitz(self, layer: Any) -> float:
        """A Lipschitz constant of ``sigma`` (the largest slope)."""
        raise NotImplementedError

    def kinks(self, layer: Any) -> tuple[float, ...]:
        """Breakpoints of a piecewise-linear activation, sorted (empty for smooth ones)."""
        return ()

    def relu_pieces(self, layer: Any) -> ReluPieces | None:
        """The big-M rule as data (``None`` for activations without an exact MILP)."""
        return None

    def diff(
        self,
        layer: Any,
        l: FloatArray,
        u: FloatArray,
        lt: FloatArray,
        ut: FloatArray,
        dl: FloatArray,
        du: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        r"""Bounds of :math:`\sigma(\tilde z) - \sigma(z)` for :math:`z \in [l, u]`,
        :math:`\tilde z \in [l_t, u_t]`, :math:`\tilde z - z \in [d_l, d_u]` (outward).

        Raises:
            UnsupportedLayerError: the rule has no difference rule.
        """
        raise UnsupportedLayerError(f"no difference rule for activation {type(layer).__name__}")


# -- piecewise-linear activations given by their pieces ---------------------------------------


def check_pieces(pieces: ReluPieces) -> ReluPieces:
    """Validate ``relu_pieces`` data: finite numbers, leaks in ``[0, 1]``, monotone function.

    Raises:
        InvalidNetworkError: on pieces the MILP and the bound engine cannot use.
    """
    offset, ps = pieces
    values = [offset, *(v for piece in ps for v in piece)]
    if not ps or not all(np.isfinite(v) for v in values):
        raise InvalidNetworkError(f"relu_pieces: need finite numbers and a piece, got {pieces!r}")
    if any(not (0.0 <= leak <= 1.0) for _, _, leak in ps):
        raise InvalidNetworkError(f"relu_pieces: every leak must lie in [0, 1], got {pieces!r}")
    if any(s < 0.0 for s in region_slopes(pieces)[1]):
        raise InvalidNetworkError(f"relu_pieces: the function must be non-decreasing: {pieces!r}")
    return pieces


def region_slopes(pieces: ReluPieces) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(kinks, slopes)``: the sorted kinks ``k_1 < ... < k_m`` and the ``m + 1`` slopes of
    the affine regions ``(-inf, k_1), (k_1, k_2), ..., (k_m, inf)``.

    A piece with leak 1 is affine (no kink); on region ``j`` piece ``i`` is active (slope
    ``w_i``) iff ``theta_i <= k_{j-1}``, else it contributes ``w_i leak_i``.
    """
    _, ps = pieces
    kinks = sorted({float(t) for t, w, leak in ps if leak != 1.0 and w != 0.0})
    left = [-np.inf, *kinks]
    slopes = tuple(
        float(sum(w * (1.0 if (leak == 1.0 or t <= lo) else leak) for t, w, leak in ps))
        for lo in left
    )
    return tuple(kinks), slopes


def eval_pieces(pieces: ReluPieces, z: FloatArray) -> tuple[FloatArray, FloatArray]:
    r"""``sigma(z)`` from its pieces in float64 and a bound on the rounding error.

    Each term :math:`w_i \max(z - \theta_i, \lambda_i (z - \theta_i))` costs three roundings
    and the sum one per term, so the error is at most :math:`\gamma_{2k+2} (|c| + \sum_i
    |w_i| (|z| + |\theta_i|))` (with :math:`|\max(s, \lambda s)| \le |s|`); the bound is
    computed with :func:`~nncert.verify.rounding.gamma` and inflated for its own rounding.

    Returns:
        ``(value, err)`` with ``|sigma(z) - value| <= err`` for the exact ``sigma``.
    """
    offset, ps = pieces
    z = np.asarray(z, dtype=np.float64)
    v = np.full(z.shape, float(offset))
    mag = np.full(z.shape, abs(float(offset)))
    az = np.abs(z)
    for theta, w, leak in ps:
        s = z - theta
        v = v + w * np.maximum(s, leak * s)
        mag = mag + abs(w) * (az + abs(theta))
    n = 2 * len(ps) + 2
    return v, inflate(gamma(n) * mag, n)


class ExactRegions(NamedTuple):
    r"""The affine regions of a piecewise-linear function, exactly (see :func:`exact_regions`).

    Region ``j`` lies between ``kinks[j-1]`` and ``kinks[j]``; there
    :math:`\sigma(z) = S_j z + C_j` exactly, ``slope[j]`` is the float64 ``S_j`` and
    ``slope_exact[j]`` whether it equals ``S_j``; ``icpt_lo[j] <= C_j <= icpt_hi[j]``
    (the neighbouring floats).
    """

    kinks: FloatArray
    slope: FloatArray
    slope_exact: BoolArray
    icpt_lo: FloatArray
    icpt_hi: FloatArray


def _float_enclosure(v: Fraction) -> tuple[float, float]:
    """The largest float ``<= v`` and the smallest ``>= v``."""
    f = float(v)
    lo = f if Fraction(f) <= v else math.nextafter(f, -math.inf)
    hi = f if Fraction(f) >= v else math.nextafter(f, math.inf)
    return lo, hi


@functools.lru_cache(maxsize=512)
def exact_regions(pieces: ReluPieces) -> ExactRegions:
    """Slopes and intercepts of every affine region of ``pieces``, in rational arithmetic.

    Piece ``i`` is active (slope ``w_i``, intercept ``-w_i theta_i``) on a region whose left
    edge is ``>= theta_i`` or when its leak is 1, else it contributes ``w_i lam_i`` and
    ``-w_i lam_i theta_i``.
    """
    offset, ps = pieces
    kinks, _ = region_slopes(pieces)
    slopes, exact, lo, hi = [], [], [], []
    for left in (-math.inf, *kinks):
        S, C = Fraction(0), Fraction(offset)
        for theta, w, leak in ps:
            k = Fraction(1) if (leak == 1.0 or theta <= left) else Fraction(leak)
            S += Fraction(w) * k
            C -= Fraction(w) * k * Fraction(theta)
        slopes.append(float(S))
        exact.append(Fraction(float(S)) == S)
        c_lo, c_hi = _float_enclosure(C)
        lo.append(c_lo)
        hi.append(c_hi)
    return ExactRegions(
        np.array(kinks, dtype=np.float64),
        np.array(slopes),
        np.array(exact, dtype=bool),
        np.array(lo),
        np.array(hi),
    )


@functools.lru_cache(maxsize=512)
def _checked_pieces(rule: ActivationRule, layer: Any) -> ReluPieces:
    """``rule.relu_pieces(layer)``, validated once per (rule, layer)."""
    pieces = rule.relu_pieces(layer)
    if pieces is None:  # pragma: no cover - a PiecewiseLinearRule always has pieces
        raise UnsupportedLayerError(f"{type(rule).__name__} gives no pieces")
    return check_pieces(pieces)


class PiecewiseLinearRule(ActivationRule):
    r"""A rule derived from ``relu_pieces`` alone (see :data:`ReluPieces`).

    Subclasses give ``layer_type`` and ``relu_pieces``; everything else follows:

    * ``apply``: the pieces in float64; ``interval``: their values at the end points widened
      by the error bound of :func:`eval_pieces` (the function is non-decreasing);
    * ``affine_on``: every piece stable (``l >= theta_i``, ``u <= theta_i`` or leak 1); then
      :math:`\sigma(z) = c + \sum_i w_i s_i (z - \theta_i)` with :math:`s_i \in \{1, \lambda_i\}`;
    * ``relax``: where :math:`\sigma` is affine on ``[l, u]`` (no kink strictly inside) and the
      region's slope is a float, the region's exact line (:func:`exact_regions`, intercepts
      rounded outwards); elsewhere parallel lines with the chord slope
      :math:`(\sigma(u) - \sigma(l))/(u - l)`, intercepts from :func:`_intercepts` over ``l``,
      ``u`` and the kinks inside (a line lies below a piecewise-linear function iff it does at
      these points), so sound whatever the rounding;
    * ``derivative``: the smaller one-sided derivative at a kink; ``lipschitz``: the largest
      region slope; ``kinks`` from :func:`region_slopes`;
    * ``diff``: :math:`\sigma(\tilde z) - \sigma(z) = \bar s \delta` with the mean slope
      :math:`\bar s` between the smallest and the largest slope of the regions that meet the
      hull of both boxes, so the difference lies in the interval product
      :math:`[s_{min}, s_{max}] \cdot [\delta_l, \delta_u]` (rounded outwards).
    """

    def relu_pieces(self, layer: Any) -> ReluPieces | None:
        raise NotImplementedError

    def _pieces(self, layer: Any) -> ReluPieces:
        try:
            return _checked_pieces(self, layer)
        except TypeError:  # an unhashable layer: no cache
            return _checked_pieces.__wrapped__(self, layer)

    def apply(self, layer: Any, z: FloatArray) -> FloatArray:
        return eval_pieces(self._pieces(layer), np.asarray(z, dtype=np.float64))[0]

    def interval(self, layer: Any, l: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        pieces = self._pieces(layer)
        vl, el = eval_pieces(pieces, l)
        vu, eu = eval_pieces(pieces, u)
        return down(vl - el), up(vu + eu)

    def affine_on(
        self, layer: Any, l: FloatArray, u: FloatArray
    ) -> tuple[BoolArray, FloatArray, FloatArray]:
        offset, ps = self._pieces(layer)
        lo = np.asarray(l, dtype=np.float64)
        hi = np.asarray(u, dtype=np.float64)
        mask = np.ones(lo.shape, dtype=bool)
        slope = np.zeros(lo.shape)
        const = np.full(lo.shape, float(offset))
        for theta, w, leak in ps:
            on = (leak == 1.0) | (lo >= theta)
            mask &= on | (hi <= theta)
            s = np.where(on, 1.0, leak)
            slope = slope + w * s
            const = const + w * (s * -theta)
        return mask, slope, const

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        pieces = self._pieces(layer)
        lo = np.asarray(l, dtype=np.float64)
        hi = np.asarray(u, dtype=np.float64)
        kinks, _ = region_slopes(pieces)
        f_lo, f_hi = [], []
        points: list[FloatArray] = [lo, hi]
        for p in (lo, hi):
            v, e = eval_pieces(pieces, p)
            f_lo.append(down(v - e))
            f_hi.append(up(v + e))
        for k in kinks:
            v, e = eval_pieces(pieces, np.array(k))
            points.append(np.where((lo < k) & (hi > k), k, np.nan))
            f_lo.append(np.broadcast_to(down(v - e), lo.shape))
            f_hi.append(np.broadcast_to(up(v + e), lo.shape))
        # affine on [l, u] (no kink strictly inside): the region's exact line
        reg = exact_regions(pieces)
        j = np.searchsorted(reg.kinks, lo, side="right")
        nxt = np.concatenate([reg.kinks, [np.inf]])[j]
        affine = (hi <= nxt) & reg.slope_exact[j]
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            chord = (f_hi[1] - f_lo[0]) / np.where(hi > lo, hi - lo, 1.0)
        chord = np.where((hi > lo) & np.isfinite(chord), np.maximum(chord, 0.0), 0.0)
        s = np.where(affine, reg.slope[j], chord)
        with np.errstate(over="ignore", invalid="ignore"):
            lower = _intercepts(s, points, f_lo, f_hi, upper=False)
            upper = _intercepts(s, points, f_lo, f_hi, upper=True)
        lower = np.where(affine, reg.icpt_lo[j], lower)
        upper = np.where(affine, reg.icpt_hi[j], upper)
        bad = ~(np.isfinite(lower) & np.isfinite(upper))
        if np.any(bad):  # overflow of s p: constant lines sigma(l) <= . <= sigma(u)
            s = np.where(bad, 0.0, s)
            lower = np.where(bad, f_lo[0], lower)
            upper = np.where(bad, f_hi[1], upper)
        return Relaxation(s, lower, s.copy(), upper)

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        _, ps = self._pieces(layer)
        z = np.asarray(z, dtype=np.float64)
        left = np.zeros(z.shape)
        right = np.zeros(z.shape)
        for theta, w, leak in ps:
            left = left + w * np.where(z > theta, 1.0, leak)
            right = right + w * np.where(z >= theta, 1.0, leak)
        return np.minimum(left, right)

    def lipschitz(self, layer: Any) -> float:
        return float(max(abs(s) for s in region_slopes(self._pieces(layer))[1]))

    def kinks(self, layer: Any) -> tuple[float, ...]:
        return region_slopes(self._pieces(layer))[0]

    def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        pieces = self._pieces(layer)
        kinks, slopes = region_slopes(pieces)
        hl, hu = np.minimum(l, lt), np.maximum(u, ut)
        edges = [-np.inf, *kinks, np.inf]
        s_min = np.full(np.shape(hl), np.inf)
        s_max = np.full(np.shape(hl), -np.inf)
        for j, sj in enumerate(slopes):
            meets = (hl <= edges[j + 1]) & (hu >= edges[j])
            s_min = np.where(meets, np.minimum(s_min, sj), s_min)
            s_max = np.where(meets, np.maximum(s_max, sj), s_max)
        # the slopes are sums of k products: widen by their rounding error
        k = len(pieces[1])
        slack = float(inflate(gamma(k) * sum(abs(w) for _, w, _ in pieces[1]), k))
        s_min = np.maximum(s_min - slack, 0.0)
        s_max = s_max + slack
        prods = np.stack([s_min * dl, s_min * du, s_max * dl, s_max * du])
        return down(prods.min(axis=0)), up(prods.max(axis=0))


class IdentityRule(PiecewiseLinearRule):
    """``sigma(z) = z``: every line is the function itself."""

    layer_type = Identity
    apply = ActivationRule.apply
    interval = ActivationRule.interval

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        one = np.ones_like(l)
        zero = np.zeros_like(l)
        return Relaxation(one, zero, one, zero)

    def exact(self, layer: Any, l: FloatArray, u: FloatArray) -> BoolArray:
        return np.ones(np.shape(l), dtype=bool)

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        return np.ones(np.shape(z))

    def relu_pieces(self, layer: Any) -> ReluPieces | None:
        return (0.0, ((0.0, 1.0, 1.0),))

    def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        return dl.copy(), du.copy()


def _leak(layer: Any) -> float:
    return float(layer.alpha) if isinstance(layer, LeakyReLU) else 0.0


class LeakyReluRule(PiecewiseLinearRule):
    r"""``max(z, a z)`` with ``0 <= a <= 1`` (``a = 0``: ReLU), kink at 0.

    * ``u <= 0``: slope ``a`` on both sides; ``l >= 0``: slope 1 (exact).
    * ``l < 0 < u`` (unstable): upper = chord through ``(l, a l)`` and ``(u, u)``, slope
      ``(u - a l)/(u - l)`` with a safe intercept; lower = ``s z`` for any ``s in [a, 1]``
      (exact lines through the kink); CROWN's adaptive choice is ``s = 1`` iff ``u > -l``
      (the smaller area between line and function).
    """

    layer_type = LeakyReLU
    apply = ActivationRule.apply

    def interval(self, layer: Any, l: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        a = _leak(layer)
        lo, hi = self.apply(layer, l), self.apply(layer, u)
        if a == 0.0 or a == 1.0:
            return lo, hi
        return np.where(l < 0.0, down(lo), lo), np.where(u < 0.0, up(hi), hi)

    def exact(self, layer: Any, l: FloatArray, u: FloatArray) -> BoolArray:
        return (l >= 0.0) | (u <= 0.0) | (_leak(layer) >= 1.0)

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        a = _leak(layer)
        # a = 1 is the identity: exact on every interval, no chord (whose rounding pads would
        # make the upper line a little loose, contradicting ``exact``)
        unstable = (l < 0.0) & (u > 0.0) & (a < 1.0)
        base = np.where(l >= 0.0, 1.0, a)
        lower_slope = np.where(unstable, np.where(u > -l, 1.0, a), base)
        zero = np.zeros_like(l)
        if not np.any(unstable):
            return Relaxation(lower_slope, zero, base.copy(), zero.copy())
        width = np.where(unstable, u - l, 1.0)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            chord = np.where(unstable, (u - a * l) / width, base)
        # the line must lie above the function at both end points (convex function): the
        # largest of f(p) - chord p over p in {l, u}, each rounded up with its error bound;
        # f(l) = a l is enclosed from above
        al = a * l
        al_hi = al if a in (0.0, 1.0) else up(al)
        cl, cu = chord * l, chord * u
        v1, v2 = al_hi - cl, u - cu
        e1 = 2.0 * UNIT * (np.abs(cl) + np.abs(v1)) + TINY
        e2 = 2.0 * UNIT * (np.abs(cu) + np.abs(v2)) + TINY
        upper_bias = np.where(unstable, up(np.maximum(v1 + e1, v2 + e2)), 0.0)
        return Relaxation(lower_slope, zero, chord, upper_bias)

    def lower_family(self, layer: Any, l: FloatArray, u: FloatArray) -> LowerFamily | None:
        a = _leak(layer)
        if a >= 1.0:
            return None
        mask = ((l < 0.0) & (u > 0.0)).astype(np.float64)
        return LowerFamily(mask, a, 1.0)

    def relu_pieces(self, layer: Any) -> ReluPieces | None:
        return (0.0, ((0.0, 1.0, _leak(layer)),))

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        a = _leak(layer)  # the generic rule's value, without its temporaries
        pos = np.asarray(z) > 0.0
        return pos.astype(np.float64) if a == 0.0 else np.where(pos, 1.0, a)

    def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        r_lo, r_hi = _relu_diff(l, u, lt, ut, dl, du)
        a = _leak(layer)
        if a == 0.0:
            return r_lo, r_hi
        # a d + (1 - a) relu-difference, rounded outwards (|error| <= 3u per term)
        lo = a * dl + (1.0 - a) * r_lo
        hi = a * du + (1.0 - a) * r_hi
        pad_lo = 4.0 * UNIT * (np.abs(a * dl) + np.abs(r_lo)) + TINY
        pad_hi = 4.0 * UNIT * (np.abs(a * du) + np.abs(r_hi)) + TINY
        return down(lo - pad_lo), up(hi + pad_hi)


class ReluRule(LeakyReluRule):
    """``max(z, 0)``: the leaky rule with ``a = 0``."""

    layer_type = ReLU  # type: ignore[assignment]


class HardTanhRule(PiecewiseLinearRule):
    r"""``clip(z, m, M)`` with kinks ``m < M``.

    Cases (lines are exact wherever the function is affine on ``[l, u]``):

    1. ``u <= m``: constant ``m``.  2. ``l >= M``: constant ``M``.
    3. ``m <= l, u <= M``: identity ``z``.
    4. ``l < m < u <= M`` (convex part ``max(z, m)``): upper = chord, slope
       ``(u - m)/(u - l)``; lower = ``z`` when the midpoint is ``> m``, else ``m`` (both exact).
    5. ``m <= l < M < u`` (concave part ``min(z, M)``): lower = chord, slope
       ``(M - l)/(u - l)``; upper = ``z`` when the midpoint is ``< M``, else ``M``.
    6. ``l < m, M < u`` (both kinks): lower slope ``(M - m)/(u - m)`` (the line through
       ``(m, m)`` and ``(u, M)``) when the midpoint is ``> m``, else the constant ``m``; upper
       slope ``(M - m)/(M - l)`` when the midpoint is ``< M``, else the constant ``M``.

    Every chord or sloped line gets its intercept from :func:`_intercepts` over ``l``, ``u``
    and the kinks inside, so it is valid whatever the rounding of its slope.
    """

    layer_type = HardTanh
    apply = ActivationRule.apply
    interval = ActivationRule.interval

    def exact(self, layer: Any, l: FloatArray, u: FloatArray) -> BoolArray:
        m, M = float(layer.min_val), float(layer.max_val)
        return (u <= m) | (l >= M) | ((l >= m) & (u <= M))

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        m, M = float(layer.min_val), float(layer.max_val)
        mid = (l + u) / 2.0
        one = np.ones_like(l)
        zero = np.zeros_like(l)
        c_lo = u <= m
        c_hi = l >= M
        c_id = (l >= m) & (u <= M)
        c_cvx = (l < m) & (u > m) & (u <= M)
        c_ccv = (l >= m) & (l < M) & (u > M)
        c_both = (l < m) & (u > M)
        width = np.where(u > l, u - l, 1.0)
        # every branch is evaluated; only the selected ones are finite-valued and used
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            s4 = np.where(c_cvx, (u - m) / width, 0.0)
            s5 = np.where(c_ccv, (M - l) / width, 0.0)
            t6l = np.where(c_both & (mid > m), (M - m) / np.where(u > m, u - m, 1.0), 0.0)
            t6u = np.where(c_both & (mid < M), (M - m) / np.where(M > l, M - l, 1.0), 0.0)
        t4 = np.where(mid > m, 1.0, 0.0)
        t5 = np.where(mid < M, 1.0, 0.0)
        conds = [c_lo, c_hi, c_id, c_cvx, c_ccv, c_both]
        lower_slope = np.select(conds, [zero, zero, one, t4, s5, t6l], default=zero)
        upper_slope = np.select(conds, [zero, zero, one, s4, t5, t6u], default=zero)
        # exact intercepts (constants, identity, lines through a kink with slope 0 or 1)
        lower_bias = np.select(
            conds,
            [zero + m, zero + M, zero, np.where(t4 > 0, 0.0, m), zero, zero + m],
            default=zero + m,
        )
        upper_bias = np.select(
            conds,
            [zero + m, zero + M, zero, zero, np.where(t5 > 0, 0.0, M), zero + M],
            default=zero + M,
        )
        # sloped lines that are not pieces of the function: safe intercepts
        need_lo = c_ccv | (c_both & (t6l > 0))
        need_up = c_cvx | (c_both & (t6u > 0))
        if np.any(need_lo) or np.any(need_up):
            clip_l = np.clip(l, m, M)
            clip_u = np.clip(u, m, M)
            nan = np.full_like(l, np.nan)
            in_m = np.where((l < m) & (u > m), m, nan)
            in_M = np.where((l < M) & (u > M), M, nan)
            pts = [l, u, in_m, in_M]
            vals = [clip_l, clip_u, zero + m, zero + M]
            if np.any(need_lo):
                tb = _intercepts(lower_slope, pts, vals, vals, upper=False)
                lower_bias = np.where(need_lo, tb, lower_bias)
            if np.any(need_up):
                tb = _intercepts(upper_slope, pts, vals, vals, upper=True)
                upper_bias = np.where(need_up, tb, upper_bias)
        return Relaxation(lower_slope, lower_bias, upper_slope, upper_bias)

    def relu_pieces(self, layer: Any) -> ReluPieces | None:
        m, M = float(layer.min_val), float(layer.max_val)
        return (m, ((m, 1.0, 0.0), (M, -1.0, 0.0)))

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        zz = np.asarray(z)  # the generic rule's value (0 at both kinks), fast
        return ((zz > float(layer.min_val)) & (zz < float(layer.max_val))).astype(np.float64)

    def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        m, M = float(layer.min_val), float(layer.max_val)
        linear = (l >= m) & (u <= M) & (lt >= m) & (ut <= M)
        same_sat = ((u <= m) & (ut <= m)) | ((l >= M) & (lt >= M))
        lo = np.where(linear, dl, np.where(same_sat, 0.0, np.minimum(0.0, dl)))
        hi = np.where(linear, du, np.where(same_sat, 0.0, np.maximum(0.0, du)))
        return lo, hi


# -- sigmoid and tanh ---------------------------------------------------------------------


def _sigmoid_fn(z: FloatArray) -> FloatArray:
    return apply_activation(Sigmoid(), z)


def _sigmoid_deriv(z: FloatArray) -> FloatArray:
    s = _sigmoid_fn(z)
    return s * (1.0 - s)


def _tanh_deriv(z: FloatArray) -> FloatArray:
    t = np.tanh(z)
    return 1.0 - t * t


def _sigmoid_deriv_accurate(z: FloatArray) -> FloatArray:
    r"""``sigma'(z) = e / (1 + e)^2`` with ``e = exp(-|z|)``: a few ulps *relative* error.

    ``s (1 - s)`` loses all relative accuracy in the tails (``1 - s`` cancels: a third of the
    value at ``z = 35.6``); the difference rule needs relative accuracy.
    """
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(np.asarray(z, dtype=np.float64)))
        return e / ((1.0 + e) * (1.0 + e))


def _tanh_deriv_accurate(z: FloatArray) -> FloatArray:
    r"""``tanh'(z) = 4 e / (1 + e)^2`` with ``e = exp(-2|z|)`` (``1 - tanh^2`` cancels)."""
    with np.errstate(under="ignore"):
        e = np.exp(-2.0 * np.abs(np.asarray(z, dtype=np.float64)))
        return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _s_shaped_upper(
    f: Callable[[FloatArray], FloatArray],
    df: Callable[[FloatArray], FloatArray],
    l: FloatArray,
    u: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Upper line ``a z + b >= f(z)`` on ``[l, u]`` for an S-shaped ``f``.

    ``f`` is increasing, convex on ``z <= 0`` and concave on ``z >= 0`` (sigmoid, tanh). See
    :class:`SigmoidRule` for the construction.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _s_shaped_upper_raw(f, df, l, u)


def _s_shaped_upper_raw(
    f: Callable[[FloatArray], FloatArray],
    df: Callable[[FloatArray], FloatArray],
    l: FloatArray,
    u: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    fl, fu = f(l), f(u)
    width = u - l
    tiny = width <= 1e-9 * (1.0 + np.abs(l) + np.abs(u))
    safe_w = np.where(tiny, 1.0, width)
    chord_a = (fu - fl) / safe_w
    chord_b = fl - chord_a * l
    # concave region (l >= 0): tangent at the midpoint
    mid = (l + u) / 2.0
    tan_a = df(mid)
    tan_b = f(mid) - tan_a * mid
    # crossing region: tangent at d >= 0 whose line passes through (l, f(l)); valid for every
    # d >= d*, where g(d) = f(d) - f(l) - f'(d)(d - l) changes sign (g increasing on [0, inf)).
    cross = (l < 0.0) & (u > 0.0) & ~tiny
    a = np.where(l >= 0.0, tan_a, chord_a)
    b = np.where(l >= 0.0, tan_b, chord_b)
    if np.any(cross):
        lc, uc, flc = l[cross], u[cross], fl[cross]

        def g(d: FloatArray) -> FloatArray:
            return f(d) - flc - df(d) * (d - lc)

        use_tangent = g(uc) > 0.0  # else the chord is a valid upper line
        lo = np.zeros_like(uc)
        hi = uc.copy()
        for _ in range(_BISECTION_STEPS):
            mid_d = (lo + hi) / 2.0
            pos = g(mid_d) >= 0.0
            hi = np.where(pos, mid_d, hi)
            lo = np.where(pos, lo, mid_d)
        d = hi  # g(hi) >= 0 keeps the tangent line above f(l): sound
        ta = df(d)
        tb = f(d) - ta * d
        a[cross] = np.where(use_tangent, ta, a[cross])
        b[cross] = np.where(use_tangent, tb, b[cross])
    a = np.where(tiny, 0.0, a)
    b = np.where(tiny, fu, b)
    # insurance: the line must lie above both end points; plus an outward margin
    b = np.maximum(b, np.maximum(fl - a * l, fu - a * u))
    b = b + SMOOTH_MARGIN * (1.0 + np.abs(b) + np.abs(a) * np.maximum(np.abs(l), np.abs(u)))
    bad = ~(np.isfinite(a) & np.isfinite(b))
    a = np.where(bad, 0.0, a)
    b = np.where(bad, up(fu + SMOOTH_MARGIN * (1.0 + np.abs(fu))), b)
    return a, b


class _SShapedRule(ActivationRule):
    piecewise_linear = False
    _f0: ClassVar[float]

    def _f(self, z: FloatArray) -> FloatArray:
        raise NotImplementedError

    def interval(self, layer: Any, l: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        a, b = self._f(l), self._f(u)
        pad_a = 8.0 * UNIT * np.abs(a) + TINY
        pad_b = 8.0 * UNIT * np.abs(b) + TINY
        return down(a - pad_a), up(b + pad_b)

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        # point symmetry f(-z) = 2 f(0) - f(z): an upper line a z + b of f on [-u, -l] gives
        # the lower line a z + (2 f(0) - b) of f on [l, u].
        lo = np.asarray(l, dtype=np.float64)
        hi = np.asarray(u, dtype=np.float64)
        ua, ub = _s_shaped_upper(self._f, self.derivative_fn, lo, hi)
        ra, rb = _s_shaped_upper(self._f, self.derivative_fn, -hi, -lo)
        return Relaxation(ra, down(2.0 * self._f0 - rb), ua, ub)

    def derivative_fn(self, z: FloatArray) -> FloatArray:
        raise NotImplementedError

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        if value is not None:
            return self._derivative_from_value(np.asarray(value, dtype=np.float64))
        return self.derivative_fn(np.asarray(z, dtype=np.float64))

    def _derivative_from_value(self, value: FloatArray) -> FloatArray:
        raise NotImplementedError

    def lipschitz(self, layer: Any) -> float:
        return float(self.derivative_fn(np.zeros(1))[0])

    def _accurate_derivative(self, z: FloatArray) -> FloatArray:
        raise NotImplementedError

    def derivative_range(self, l: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        r"""A rigorous enclosure ``[s_min, s_max]`` of :math:`\sigma'` on ``[l, u]``.

        :math:`\sigma'` is even and decreasing in :math:`|z|`, so its maximum is at the point of
        ``[l, u]`` closest to 0 and its minimum at an end point. The derivative is evaluated
        in a form with a few ulps of relative error (:func:`_sigmoid_deriv_accurate`), widened
        by the relative :data:`SMOOTH_MARGIN` and the absolute ``TINY`` (subnormal tails).
        """
        s_max = self._accurate_derivative(np.clip(0.0, l, u)) * (1.0 + SMOOTH_MARGIN) + TINY
        s_min = np.minimum(self._accurate_derivative(l), self._accurate_derivative(u))
        return np.maximum(s_min * (1.0 - SMOOTH_MARGIN) - TINY, 0.0), s_max

    def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        # mean value theorem: sigma(z~) - sigma(z) = sigma'(xi) delta, xi in the hull H
        s_min, s_max = self.derivative_range(np.minimum(l, lt), np.maximum(u, ut))
        prods = np.stack([s_min * dl, s_min * du, s_max * dl, s_max * du])
        lo, hi = prods.min(axis=0), prods.max(axis=0)
        pad = SMOOTH_MARGIN * (np.abs(lo) + np.abs(hi)) + TINY
        return down(lo - pad), up(hi + pad)


class SigmoidRule(_SShapedRule):
    r"""Sigmoid (convex for ``z <= 0``, concave for ``z >= 0``).

    Upper line:

    * ``l >= 0`` (concave): tangent at the midpoint ``m``: ``sigma(m) + sigma'(m)(z - m)``.
    * ``u <= 0`` (convex): chord ``sigma(l) + k (z - l)``, ``k = (sigma(u) - sigma(l))/(u - l)``.
    * ``l < 0 < u``: if ``g(u) <= 0`` with ``g(d) = sigma(d) - sigma(l) - sigma'(d)(d - l)``, the
      chord (it lies above the graph because ``k <= sigma'(u)``); otherwise the tangent at the
      root ``d* in (0, u]`` of ``g`` (the tangent from ``(l, sigma(l))`` to the concave part),
      found by vectorized bisection and rounded *up* (``d >= d*`` keeps the line sound).

    Lower line: by the point symmetry ``sigma(-z) = 1 - sigma(z)``, the upper line ``a z + b`` on
    ``[-u, -l]`` yields the lower line ``a z + 1 - b`` on ``[l, u]``.

    Degenerate or very narrow intervals get constant lines ``sigma(l) <= . <= sigma(u)``; the
    offsets are raised to cover both end points and moved outwards by
    ``1e-12 (1 + |b| + |a| max(|l|, |u|))``.
    """

    layer_type = Sigmoid
    _f0 = 0.5

    def _f(self, z: FloatArray) -> FloatArray:
        return _sigmoid_fn(z)

    def derivative_fn(self, z: FloatArray) -> FloatArray:
        return _sigmoid_deriv(z)

    def _accurate_derivative(self, z: FloatArray) -> FloatArray:
        return _sigmoid_deriv_accurate(z)

    def _derivative_from_value(self, value: FloatArray) -> FloatArray:
        return value * (1.0 - value)


class TanhRule(_SShapedRule):
    """Tanh: the construction of :class:`SigmoidRule` with ``tanh`` (odd, ``tanh(0) = 0``,
    ``tanh' = 1 - tanh^2``)."""

    layer_type = Tanh
    _f0 = 0.0

    def _f(self, z: FloatArray) -> FloatArray:
        return np.tanh(z)

    def derivative_fn(self, z: FloatArray) -> FloatArray:
        return _tanh_deriv(z)

    def _accurate_derivative(self, z: FloatArray) -> FloatArray:
        return _tanh_deriv_accurate(z)

    def _derivative_from_value(self, value: FloatArray) -> FloatArray:
        return 1.0 - value * value


# -- rectified powers max(z, 0)^p (squares, products, integer powers) -------------------------

#: relative error allowed for one float64 evaluation of ``max(z, 0)^p`` (``pow`` is within one
#: ulp in glibc; 8 ulps leave room for other C libraries)
_POW_ULPS = 8.0


def _power_enclosure(z: FloatArray, p: float) -> tuple[FloatArray, FloatArray]:
    """``(lo, hi)`` with ``lo <= max(z, 0)^p <= hi`` exactly, ``lo >= 0`` (overflow: the
    largest float below, ``inf`` above)."""
    v = rectified_power(z, p)
    with np.errstate(invalid="ignore", over="ignore"):
        pad = _POW_ULPS * UNIT * v + TINY
        lo = np.where(np.isinf(v), np.finfo(np.float64).max, np.maximum(v - pad, 0.0))
        hi = np.where(v == 0.0, 0.0, v + pad)
    return lo, hi


class RectifiedPowerRule(ActivationRule):
    r"""``sigma(z) = max(z, 0)^p``, ``p >= 1``: non-decreasing and convex on the real line.

    * ``interval``: ``[sigma(l), sigma(u)]`` (monotone), each end enclosed with
      :data:`_POW_ULPS` ulps.
    * Upper line: the chord slope ``a = (sigma(u) - sigma(l)) / (u - l)`` (the derivative at
      ``u`` for a degenerate interval); the intercept is the largest
      :math:`\sigma(e) - a e` over the end points ``e in {l, u}``, rounded up. By convexity a
      line above the graph at both ends lies above it on ``[l, u]``, for any float ``a``.
    * Lower line: the tangent at ``t = max((l + u)/2, 0)``, slope ``s = p t^{p-1}``. Its
      intercept is not taken from ``t`` but from ``s`` alone: for ``p > 1`` and ``s >= 0``,
      :math:`\min_z (\sigma(z) - s z) = -(p - 1) (s / p)^{p/(p-1)}` over *all* real ``z`` (the
      minimiser is :math:`(s/p)^{1/(p-1)}`; for ``z <= 0`` the value is ``-s z >= 0``), computed
      in float64 and moved down by the relative :data:`SMOOTH_MARGIN` (the evaluation errs by
      a few ulps, plus ``|ln(s/p)|`` ulps from the rounded exponent: below ``1e-13``). With
      ``t = (l + u)/2`` the two lines of ``max(z,0)^2`` and ``max(-z,0)^2`` add up to the
      chord and the midpoint tangent of ``z^2``. ``p = 1`` (ReLU) uses ``s <= 1``, intercept 0.
    * Neurons with ``u <= 0`` are the constant 0 (exact); with ``p = 1`` and ``l >= 0`` the
      identity.

    No family of lower lines through the origin exists for ``p > 1`` (alpha-CROWN's form), so
    ``lower_family`` is ``None``. The difference rule is the mean value theorem with
    :math:`\sigma'` non-decreasing: :math:`\sigma'(\xi) \in [\sigma'(\max(l_H, 0)),
    \sigma'(\max(u_H, 0))]` on the hull ``H`` of both boxes. The function has no finite
    Lipschitz constant for ``p > 1`` and no exact MILP encoding (Model 2 bands it).
    """

    layer_type = RectifiedPower
    piecewise_linear = False

    def interval(self, layer: Any, l: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        p = layer.exponent
        return _power_enclosure(l, p)[0], _power_enclosure(u, p)[1]

    def affine_on(
        self, layer: Any, l: FloatArray, u: FloatArray
    ) -> tuple[BoolArray, FloatArray, FloatArray]:
        zero = np.asarray(u, dtype=np.float64) <= 0.0
        ident = (np.asarray(l, dtype=np.float64) >= 0.0) & (layer.exponent == 1.0)
        slope = np.where(ident, 1.0, 0.0)
        return zero | ident, slope, np.zeros(np.shape(l))

    def _deriv(self, p: float, z: FloatArray) -> FloatArray:
        m = np.maximum(np.asarray(z, dtype=np.float64), 0.0)
        with np.errstate(over="ignore"):
            if p == 1.0:
                return np.where(m > 0.0, 1.0, 0.0)
            return p * (m if p == 2.0 else np.power(m, p - 1.0))

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        p = layer.exponent
        lo = np.asarray(l, dtype=np.float64)
        hi = np.asarray(u, dtype=np.float64)
        fl_lo, fl_hi = _power_enclosure(lo, p)
        fu_lo, fu_hi = _power_enclosure(hi, p)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            width = hi - lo
            chord = (rectified_power(hi, p) - rectified_power(lo, p)) / np.where(
                width > 0.0, width, 1.0
            )
            a = np.where(width > 0.0, chord, self._deriv(p, hi))
            a = np.where(np.isfinite(a) & (a >= 0.0), a, 0.0)
            bu = _intercepts(a, [lo, hi], [fl_lo, fu_lo], [fl_hi, fu_hi], upper=True)
            # a slope too large for a finite intercept: the constant line sigma(u)
            bad = ~np.isfinite(bu)
            a = np.where(bad, 0.0, a)
            bu = np.where(bad, fu_hi, bu)
            t = np.maximum((lo + hi) / 2.0, 0.0)
            s = self._deriv(p, t)
            if p == 1.0:
                s = np.minimum(s, 1.0)
                bl = np.zeros_like(s)
            else:
                v = (p - 1.0) * np.power(s / p, p / (p - 1.0))
                bl = -(v * (1.0 + SMOOTH_MARGIN) + TINY)
                bl = np.where(s == 0.0, 0.0, down(bl))
            fallback = ~(np.isfinite(s) & np.isfinite(bl))
            s = np.where(fallback, 0.0, s)
            bl = np.where(fallback, 0.0, bl)
        dead = hi <= 0.0  # sigma = 0 on [l, u]
        zero = np.zeros_like(a)
        return Relaxation(
            np.where(dead, 0.0, s),
            np.where(dead, 0.0, bl),
            np.where(dead, 0.0, a),
            np.where(dead, zero, bu),
        )

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        return self._deriv(layer.exponent, z)

    def lipschitz(self, layer: Any) -> float:
        return 1.0 if layer.exponent == 1.0 else math.inf

    def kinks(self, layer: Any) -> tuple[float, ...]:
        """``(0.0,)``: where the function leaves the constant 0 (not analytic there)."""
        return (0.0,)

    def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        # mean value theorem with sigma' non-decreasing on the hull H of both boxes
        p = layer.exponent
        s_min = self._deriv(p, np.minimum(l, lt))
        s_max = self._deriv(p, np.maximum(u, ut))
        return _mean_value_diff(s_min, s_max, dl, du)


def _mean_value_diff(
    s_min: FloatArray, s_max: FloatArray, dl: FloatArray, du: FloatArray
) -> tuple[FloatArray, FloatArray]:
    r"""Outward enclosure of :math:`s \delta` for :math:`s \in [s_{min}, s_{max}]` (float64
    evaluations of a derivative range, widened here by the relative :data:`SMOOTH_MARGIN`)
    and :math:`\delta \in [d_l, d_u]`: the mean value theorem's difference bound."""
    s_min = np.maximum(s_min * (1.0 - SMOOTH_MARGIN) - TINY, 0.0)
    s_max = s_max * (1.0 + SMOOTH_MARGIN) + TINY
    with np.errstate(invalid="ignore", over="ignore"):
        prods = np.stack([s_min * dl, s_min * du, s_max * dl, s_max * du])
        nan = np.isnan(prods)  # 0 * inf: no information
        lo = np.min(np.where(nan, -np.inf, prods), axis=0)
        hi = np.max(np.where(nan, np.inf, prods), axis=0)
        pad = SMOOTH_MARGIN * (np.abs(lo) + np.abs(hi)) + TINY
        return down(lo - pad), up(hi + pad)


# -- softmax pieces: exp and -1/(1 + max(s, 0)) -----------------------------------------------


def _exp_enclosure(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(lo, hi)`` with ``lo <= exp(z) <= hi`` exactly (``exp`` within one ulp in glibc;
    :data:`_POW_ULPS` ulps allowed); overflow: the largest float below, ``inf`` above."""
    with np.errstate(over="ignore", invalid="ignore"):
        v = np.exp(np.asarray(z, dtype=np.float64))
        pad = _POW_ULPS * UNIT * v + TINY
        lo = np.where(np.isinf(v), np.finfo(np.float64).max, np.maximum(v - pad, 0.0))
        return lo, v + pad


class ExpRule(ActivationRule):
    r"""``exp(z)``: increasing and convex.

    * Upper line: the chord slope (``exp(u)`` for a degenerate interval), intercept from the
      end points (convexity, as :class:`RectifiedPowerRule`), rounded up.
    * Lower line: the tangent at the midpoint ``t``, slope ``s = exp(t)``, with the intercept
      of slope ``s`` itself: :math:`\min_z (e^z - s z) = s (1 - \ln s)` over all real ``z``,
      computed in float64 and moved down by ``16 u s (1 + |ln s|) + 4 TINY`` (the
      evaluation's error: ``log`` within an ulp, one subtraction, one product).
    * ``s = 0`` (underflow) gives the line 0; overflow gives the constant lines.
    """

    layer_type = Exp
    piecewise_linear = False

    def interval(self, layer: Any, l: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        return _exp_enclosure(l)[0], _exp_enclosure(u)[1]

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        lo = np.asarray(l, dtype=np.float64)
        hi = np.asarray(u, dtype=np.float64)
        fl_lo, fl_hi = _exp_enclosure(lo)
        fu_lo, fu_hi = _exp_enclosure(hi)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            width = hi - lo
            el, eu = np.exp(lo), np.exp(hi)
            a = np.where(width > 0.0, (eu - el) / np.where(width > 0.0, width, 1.0), eu)
            a = np.where(np.isfinite(a) & (a >= 0.0), a, 0.0)
            bu = _intercepts(a, [lo, hi], [fl_lo, fu_lo], [fl_hi, fu_hi], upper=True)
            bad = ~np.isfinite(bu)
            a = np.where(bad, 0.0, a)
            bu = np.where(bad, fu_hi, bu)
            s = np.exp((lo + hi) / 2.0)
            ls = np.log(np.where(s > 0.0, s, 1.0))
            v = s * (1.0 - ls)
            err = 16.0 * UNIT * s * (1.0 + np.abs(ls)) + 4.0 * TINY
            bl = down(v - err)
            fallback = ~(np.isfinite(s) & np.isfinite(bl)) | (s == 0.0)
            s = np.where(fallback, 0.0, s)
            bl = np.where(fallback, 0.0, bl)
        return Relaxation(s, bl, a, bu)

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        if value is not None:
            return np.asarray(value, dtype=np.float64)
        with np.errstate(over="ignore"):
            return np.exp(np.asarray(z, dtype=np.float64))

    def lipschitz(self, layer: Any) -> float:
        return math.inf

    def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        # mean value theorem, exp' = exp increasing on the hull of both boxes
        with np.errstate(over="ignore", under="ignore"):
            s_min = np.exp(np.minimum(l, lt))
            s_max = np.exp(np.maximum(u, ut))
        return _mean_value_diff(s_min, s_max, dl, du)


def _nr1p_enclosure(z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(lo, hi)`` around ``-1 / (1 + max(z, 0))`` (two roundings; exact ``-1`` for
    ``z <= 0``), clipped to the range ``[-1, 0]``."""
    z = np.asarray(z, dtype=np.float64)
    v = _network.apply_activation(NegReciprocal1p(), z)
    # exact only for z <= 0: a tiny z > 0 rounds to -1 although g(z) > -1
    pad = np.where(z <= 0.0, 0.0, _POW_ULPS * UNIT * np.abs(v) + TINY)
    return np.maximum(v - pad, -1.0), np.minimum(v + pad, 0.0)


class NegReciprocal1pRule(ActivationRule):
    r"""``g(z) = -1 / (1 + max(z, 0))``: ``-1`` for ``z <= 0``, increasing and concave on
    ``z >= 0`` (``g' = 1/(1+z)^2``), with a kink at 0 (slope 0 to 1).

    * Lower line: the chord of ``[max(l, 0), u]`` (``g'(u)`` when degenerate); for any slope
      ``a >= 0``, ``g(z) - a z`` is concave on ``[max(l,0), u]`` and decreasing on
      ``[l, 0]``, so its minimum over ``[l, u]`` is at ``max(l, 0)`` or ``u``: the intercept
      is that minimum, rounded down (:func:`_intercepts`).
    * Upper line: slope ``s = g'(t)`` at ``t = max((l+u)/2, 0)``, ``0 < s <= 1``; the largest
      :math:`g(z) - s z` is :math:`s - 2\sqrt{s}` over ``z >= 0`` (at
      :math:`z = 1/\sqrt{s} - 1`, the tangent) and :math:`-1 - s l` over ``[l, 0]``; the
      intercept is the larger, rounded up after an explicit error term.
    * ``u <= 0``: the constant ``-1`` (exact).
    """

    layer_type = NegReciprocal1p
    piecewise_linear = False

    def interval(self, layer: Any, l: FloatArray, u: FloatArray) -> tuple[FloatArray, FloatArray]:
        return _nr1p_enclosure(l)[0], _nr1p_enclosure(u)[1]

    def affine_on(
        self, layer: Any, l: FloatArray, u: FloatArray
    ) -> tuple[BoolArray, FloatArray, FloatArray]:
        mask = np.asarray(u, dtype=np.float64) <= 0.0
        return mask, np.zeros(np.shape(l)), np.full(np.shape(l), -1.0)

    def _deriv(self, z: FloatArray) -> FloatArray:
        z = np.asarray(z, dtype=np.float64)
        with np.errstate(over="ignore", under="ignore"):
            d = 1.0 + np.maximum(z, 0.0)
            return np.where(z > 0.0, 1.0 / (d * d), 0.0)

    def relax(self, layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
        lo = np.asarray(l, dtype=np.float64)
        hi = np.asarray(u, dtype=np.float64)
        lp = np.maximum(lo, 0.0)
        gp_lo, gp_hi = _nr1p_enclosure(lp)
        gu_lo, gu_hi = _nr1p_enclosure(hi)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            width = hi - lp
            g = self.apply
            chord = (g(layer, hi) - g(layer, lp)) / np.where(width > 0.0, width, 1.0)
            a = np.where(width > 0.0, chord, self._deriv(hi))
            a = np.where(np.isfinite(a) & (a >= 0.0), a, 0.0)
            bl = _intercepts(a, [lp, hi], [gp_lo, gu_lo], [gp_hi, gu_hi], upper=False)
            t = np.maximum((lo + hi) / 2.0, 0.0)
            d = 1.0 + t
            s = np.minimum(1.0 / (d * d), 1.0)
            rs = np.sqrt(s)
            top = s - 2.0 * rs
            top = top + 8.0 * UNIT * (s + 2.0 * rs) + TINY
            left = -1.0 - s * np.minimum(lo, 0.0)
            left = left + 8.0 * UNIT * (1.0 + np.abs(s * lo)) + TINY
            bu = up(np.maximum(top, left))
            bad = ~(np.isfinite(s) & np.isfinite(bu))
            s = np.where(bad, 0.0, s)
            bu = np.where(bad, 0.0, bu)
        dead = hi <= 0.0
        return Relaxation(
            np.where(dead, 0.0, a),
            np.where(dead, -1.0, bl),
            np.where(dead, 0.0, s),
            np.where(dead, -1.0, bu),
        )

    def derivative(self, layer: Any, z: FloatArray, value: FloatArray | None = None) -> FloatArray:
        return self._deriv(z)

    def lipschitz(self, layer: Any) -> float:
        return 1.0

    def kinks(self, layer: Any) -> tuple[float, ...]:
        return (0.0,)

    def diff(self, layer, l, u, lt, ut, dl, du):  # type: ignore[no-untyped-def]
        # g' (and the generalized gradient [0, 1] at the kink) on the hull [a, b]: largest at
        # max(a, 0) when b > 0, smallest at b when a > 0, else 0
        a, b = np.minimum(l, lt), np.maximum(u, ut)
        s_max = np.where(b > 0.0, np.where(a > 0.0, self._deriv(a), 1.0), 0.0)
        s_min = np.where(a > 0.0, self._deriv(b), 0.0)
        return _mean_value_diff(s_min, s_max, dl, du)


# -- ReLU difference rules (ReluDiff and NeuroDiff) -----------------------------------------


def relu_diff_reludiff(
    l: FloatArray, u: FloatArray, lt: FloatArray, ut: FloatArray, dl: FloatArray, du: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """ReluDiff's rule: ``ReLU(z + δ) - ReLU(z) ∈ [min(0, δ), max(0, δ)]`` with stability cases."""
    active = (l >= 0.0) & (lt >= 0.0)
    inactive = (u <= 0.0) & (ut <= 0.0)
    lo = np.where(active, dl, np.where(inactive, 0.0, np.minimum(0.0, dl)))
    hi = np.where(active, du, np.where(inactive, 0.0, np.maximum(0.0, du)))
    return lo, hi


def relu_diff_neurodiff(
    l: FloatArray, u: FloatArray, lt: FloatArray, ut: FloatArray, dl: FloatArray, du: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """NeuroDiff's nine concretized cases (FORMULATIONS.md 11.3, table of option 3)."""
    s_in, s_act = u <= 0.0, l >= 0.0
    s_un = ~s_in & ~s_act
    t_in, t_act = ut <= 0.0, lt >= 0.0
    t_un = ~t_in & ~t_act
    zero = np.zeros_like(l)
    c9_lo = np.where(dl >= 0.0, 0.0, np.maximum(dl, -u))
    c9_hi = np.where(du <= 0.0, 0.0, du)
    conds = [
        s_in & t_in,
        s_in & t_act,
        s_in & t_un,
        s_act & t_in,
        s_act & t_act,
        s_act & t_un,
        s_un & t_in,
        s_un & t_act,
        s_un & t_un,
    ]
    lo = np.select(
        conds,
        [zero, lt, zero, -u, dl, np.maximum(-u, dl), -u, np.minimum(lt, dl), c9_lo],
        default=-np.inf,
    )
    hi = np.select(
        conds,
        [zero, ut, ut, -l, du, np.maximum(-l, du), zero, np.minimum(ut, du), c9_hi],
        default=np.inf,
    )
    return lo, hi


def _relu_diff(
    l: FloatArray, u: FloatArray, lt: FloatArray, ut: FloatArray, dl: FloatArray, du: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """ReluDiff intersected with NeuroDiff (both only copy, negate and compare: exact)."""
    a_lo, a_hi = relu_diff_reludiff(l, u, lt, ut, dl, du)
    b_lo, b_hi = relu_diff_neurodiff(l, u, lt, ut, dl, du)
    return np.maximum(a_lo, b_lo), np.minimum(a_hi, b_hi)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

#: activation layer type -> its rule
RULES: dict[type, ActivationRule] = {
    rule.layer_type: rule
    for rule in (
        ReluRule(),
        LeakyReluRule(),
        HardTanhRule(),
        SigmoidRule(),
        TanhRule(),
        RectifiedPowerRule(),
        ExpRule(),
        NegReciprocal1pRule(),
        IdentityRule(),
    )
}


#: the built-in rules (what :func:`unregister_rule` restores)
_BUILTIN: dict[type, ActivationRule] = dict(RULES)


def register_rule(rule: ActivationRule) -> None:
    """Add (or replace) the rule of ``rule.layer_type``: the one step that adds an activation.

    A new layer type (a frozen dataclass of its parameters, compared by value) is also made
    known to the network IR: :class:`~nncert.verify.network.Network` accepts it, its forward
    pass calls ``rule.apply`` and, for a piecewise-linear rule,
    :attr:`~nncert.verify.network.Network.is_piecewise_linear` counts it as such (the IR's
    tables live below this layer, so the registration fills them from here).

    Raises:
        UnsupportedLayerError: a new layer type whose rule does not define ``apply``.
    """
    t = rule.layer_type
    if t not in _network.ACTIVATION_FUNCTIONS:
        if type(rule).apply is ActivationRule.apply:
            raise UnsupportedLayerError(
                f"register_rule: {type(rule).__name__} must define apply() for the new layer "
                f"type {t.__name__}"
            )
        _network.ACTIVATION_FUNCTIONS[t] = rule.apply
    if t not in _network.ACTIVATION_TYPES:
        _network.ACTIVATION_TYPES = (*_network.ACTIVATION_TYPES, t)
    pwl = _network.PIECEWISE_LINEAR_TYPES
    if rule.piecewise_linear and t not in pwl:
        _network.PIECEWISE_LINEAR_TYPES = (*pwl, t)
    elif not rule.piecewise_linear and t in pwl:
        _network.PIECEWISE_LINEAR_TYPES = tuple(x for x in pwl if x is not t)
    RULES[t] = rule


def unregister_rule(layer_type: type) -> None:
    """Undo :func:`register_rule`: a built-in type gets its own rule back, a new type is
    forgotten (by the rule table and the network IR)."""
    if layer_type in _BUILTIN:
        register_rule(_BUILTIN[layer_type])
        return
    RULES.pop(layer_type, None)
    _network.ACTIVATION_FUNCTIONS.pop(layer_type, None)
    _network.ACTIVATION_TYPES = tuple(x for x in _network.ACTIVATION_TYPES if x is not layer_type)
    _network.PIECEWISE_LINEAR_TYPES = tuple(
        x for x in _network.PIECEWISE_LINEAR_TYPES if x is not layer_type
    )


def rule_for(layer: Activation | Any) -> ActivationRule:
    """The rule of an activation layer.

    Raises:
        UnsupportedLayerError: for an activation without a rule.
    """
    try:
        return RULES[type(layer)]
    except KeyError:
        raise UnsupportedLayerError(
            f"no rule for activation {type(layer).__name__}; supported: "
            f"{', '.join(t.__name__ for t in RULES)}"
        ) from None


def relax(layer: Activation, l: Any, u: Any) -> Relaxation:
    """Sound linear relaxation lines of ``layer`` on the per-neuron intervals ``[l, u]``.

    Raises:
        UnsupportedLayerError: for an activation without a rule.
    """
    lo = np.asarray(l, dtype=np.float64)
    hi = np.asarray(u, dtype=np.float64)
    return rule_for(layer).relax(layer, lo, hi)


__all__ = [
    "RULES",
    "SMOOTH_MARGIN",
    "ActivationRule",
    "ExactRegions",
    "ExpRule",
    "HardTanhRule",
    "IdentityRule",
    "LeakyReluRule",
    "LowerFamily",
    "NegReciprocal1pRule",
    "PiecewiseLinearRule",
    "RectifiedPowerRule",
    "Relaxation",
    "ReluPieces",
    "ReluRule",
    "SigmoidRule",
    "TanhRule",
    "check_pieces",
    "eval_pieces",
    "exact_regions",
    "region_slopes",
    "register_rule",
    "relax",
    "relu_diff_neurodiff",
    "relu_diff_reludiff",
    "rule_for",
    "unregister_rule",
]
