"""Sound bounds on the pre-activations and outputs of a network over an input box.

Everything works on the network's *normal form* (``Network.normalized()``): ``L`` Dense layers
with one activation between consecutive ones. ``LayerBounds.pre_activation[k]`` bounds
``z^(k+1) = W^(k+1) a^(k) + b^(k+1)`` for ``k = 0..L-1``; the last entry bounds the output.

Interval bound propagation (IBP), centre/radius form (FORMULATIONS.md section 3)::

    c' = W c + b,   r' = |W| r,   [l', u'] = [c' - r', c' + r']
    activation:  [sigma(l'), sigma(u')]   (every supported activation is monotone)

CROWN / DeepPoly backward linear bound propagation
--------------------------------------------------

Given bounds ``[l, u]`` on a pre-activation ``z``, every activation gets two *linear
relaxation* lines per neuron (see the ``_*_relax`` functions for each activation)::

    aL * z + bL  <=  sigma(z)  <=  aU * z + bU        for all z in [l, u]

To bound ``y = Lam z^(k) + c`` (``Lam`` has one row per bounded quantity), substitute
``z^(k) = W^(k) a^(k-1) + b^(k)`` and then, layer by layer downwards, replace ``a^(j)`` by the
line that is valid for the sign of its coefficient. For a *lower* bound, with
``Lam+ = max(Lam, 0)`` and ``Lam- = min(Lam, 0)``::

    Lam a^(j)  >=  (Lam+ diag(aL) + Lam- diag(aU)) z^(j)  +  Lam+ bL + Lam- bU

(the upper bound swaps ``L`` and ``U``). At the input, ``x`` ranges over the box
``[x_lo, x_hi]`` and the affine form is concretised exactly::

    min_x Lam x + c = c + Lam+ x_lo + Lam- x_hi.

Back-substitution is done for the whole layer at once (matrix products ``Lam W``, relaxation
slopes as column scalings); lower and upper bounds are propagated as one stacked matrix.
Intermediate bounds are computed in order ``k = 1..L`` (full CROWN) and each is intersected
with the IBP step from the previous (already tightened) layer, so the result is never looser
than IBP.

A linear objective ``C f(x) + d`` is bounded by starting the back-substitution from the merged
row ``C W^(L)`` (FORMULATIONS.md section 3, [Design]), which is tighter than bounding the logits
first and combining them afterwards.

alpha-CROWN (optional) treats the lower-line slopes of unstable ReLU / LeakyReLU neurons as free
parameters ``alpha in [0, 1]`` (one set per bounded row), which keeps every bound sound, and
maximises the final bounds by projected gradient ascent (Adam steps) with the gradient computed
analytically by reverse-mode differentiation of the back-substitution.

Soundness is with respect to real arithmetic; float64 round-to-nearest is used throughout
(``arithmetic="float64-nearest"``). Sigmoid/tanh lines carry a tiny outward margin against
round-off in the line construction itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidOptionsError, InvalidPropertyError, UnsupportedLayerError
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    HardTanh,
    Identity,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
    apply_activation,
)
from nncert.verify.spec import Box, UnsafeCase

BoundMethod = Literal["ibp", "crown", "alpha-crown"]
IntermediateMethod = Literal["ibp", "crown"]

#: Relative outward margin added to sigmoid/tanh relaxation offsets (round-off protection).
SMOOTH_MARGIN = 1e-12


@dataclass(frozen=True, eq=False)
class Interval:
    """Element-wise interval ``lower <= v <= upper``."""

    lower: FloatArray
    upper: FloatArray

    @property
    def width(self) -> FloatArray:
        """``upper - lower``."""
        return self.upper - self.lower

    def contains(self, v: ArrayLike, *, atol: float = 0.0) -> bool:
        """Whether every row of ``v`` (shape ``(n,)`` or ``(batch, n)``) lies inside."""
        a = np.asarray(v, dtype=np.float64)
        return bool(np.all(a >= self.lower - atol) and np.all(a <= self.upper + atol))


@dataclass(frozen=True, eq=False)
class LayerBounds:
    """Bounds on every pre-activation of a normalized network over ``box``.

    Attributes:
        network: the normalized network the bounds refer to.
        box: the input box.
        pre_activation: ``L`` intervals, bounds on ``z^(1) .. z^(L)`` (the last is the output).
        method: how they were computed.
        arithmetic: ``"float64-nearest"`` (round to nearest) or ``"float64-outward"``.
        spec: bounds on ``spec_matrix @ f(x) + spec_offset`` when a spec matrix was given
            (else ``None``).
    """

    network: Network
    box: Box
    pre_activation: tuple[Interval, ...]
    method: str
    arithmetic: str = "float64-nearest"
    spec: Interval | None = None

    @property
    def output(self) -> Interval:
        """Bounds on the network output ``f(x) = z^(L)``."""
        return self.pre_activation[-1]


def _check_box(network: Network, box: Box | tuple[ArrayLike, ArrayLike]) -> Box:
    b = Box.from_pair(box)
    if b.dim != network.n_inputs:
        raise InvalidPropertyError(
            f"box has {b.dim} dimensions but the network has {network.n_inputs} inputs"
        )
    return b


def _affine_interval(layer: Dense, lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray]:
    c = (lo + hi) / 2.0
    r = (hi - lo) / 2.0
    cz = layer.weight @ c + layer.bias
    rz = np.abs(layer.weight) @ r
    return cz - rz, cz + rz


def interval_bounds(network: Network, box: Box | tuple[ArrayLike, ArrayLike]) -> LayerBounds:
    """IBP bounds on every pre-activation (see module docstring).

    Args:
        network: any network (it is normalized first).
        box: a :class:`Box` or a ``(lower, upper)`` pair of shape ``(n_inputs,)``.
    """
    net = network.normalized()
    b = _check_box(net, box)
    lo, hi = b.lower, b.upper
    out: list[Interval] = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            lo, hi = _affine_interval(layer, lo, hi)
            out.append(Interval(lo, hi))
        else:
            lo = apply_activation(layer, lo)
            hi = apply_activation(layer, hi)
    return LayerBounds(net, b, tuple(out), method="ibp")


# --------------------------------------------------------------------------------------------
# Linear relaxations of the activations
# --------------------------------------------------------------------------------------------


class Relaxation(NamedTuple):
    """Per-neuron lines ``lower_slope*z + lower_bias <= sigma(z) <= upper_slope*z + upper_bias``.

    Valid for every ``z`` in the interval ``[l, u]`` they were built for. All arrays have the
    shape of ``l``.
    """

    lower_slope: FloatArray
    lower_bias: FloatArray
    upper_slope: FloatArray
    upper_bias: FloatArray


def _relu_relax(layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
    r"""ReLU ``max(z, 0)`` on ``[l, u]``.

    * ``u <= 0``: ``0 <= relu(z) <= 0``;  ``l >= 0``: ``z <= relu(z) <= z``.
    * ``l < 0 < u`` (unstable): upper = chord ``s (z - l)`` with ``s = u / (u - l)``; lower =
      ``alpha z`` for any ``alpha in [0, 1]``; CROWN's adaptive choice is ``alpha = 1`` iff
      ``u > -l`` (minimises the area between the line and the function).
    """
    return _leaky_relax_slope(0.0, l, u)


def _leaky_relu_relax(layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
    r"""LeakyReLU ``max(z, a z)``, ``0 <= a <= 1`` (convex) on ``[l, u]``.

    * ``u <= 0``: slope ``a`` both sides;  ``l >= 0``: slope 1 both sides.
    * ``l < 0 < u``: upper = chord through ``(l, a l)`` and ``(u, u)``:
      ``s = (u - a l)/(u - l)``, ``upper(z) = s z + (1 - s) u``; lower = ``beta z`` with
      ``beta in [a, 1]`` (any line through the kink with slope between the two pieces); the
      default picks ``beta = 1`` iff ``u > -l``.
    """
    return _leaky_relax_slope(float(layer.alpha), l, u)


def _leaky_relax_slope(a: float, l: FloatArray, u: FloatArray) -> Relaxation:
    unstable = (l < 0.0) & (u > 0.0)
    pos = l >= 0.0
    base = np.where(pos, 1.0, a)
    denom = np.where(unstable, u - l, 1.0)
    chord = np.where(unstable, (u - a * l) / denom, base)
    upper_bias = np.where(unstable, (1.0 - chord) * u, 0.0)
    lower_slope = np.where(unstable, np.where(u > -l, 1.0, a), base)
    zero = np.zeros_like(l)
    return Relaxation(lower_slope, zero, chord, upper_bias)


def _hardtanh_relax(layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
    r"""HardTanh ``clip(z, m, M)`` on ``[l, u]`` (kinks at ``m < M``).

    Cases (lines are exact wherever the function is affine on ``[l, u]``):

    1. ``u <= m``: constant ``m``.  2. ``l >= M``: constant ``M``.
    3. ``m <= l, u <= M``: identity ``z``.
    4. ``l < m < u <= M`` (convex part ``max(z, m)``): upper = chord
       ``m + s (z - l)``, ``s = (u - m)/(u - l)``; lower = ``m + t (z - m)`` with ``t in [0, 1]``,
       ``t = 1`` iff the midpoint ``(l + u)/2 > m``.
    5. ``m <= l < M < u`` (concave part ``min(z, M)``): lower = chord ``l + s (z - l)``,
       ``s = (M - l)/(u - l)``; upper = ``M + t (z - M)``, ``t = 1`` iff the midpoint ``< M``.
    6. ``l < m, M < u`` (both kinks): lower = ``m + t (z - m)`` with ``t in {0, (M - m)/(u - m)}``
       (the line through ``(m, m)`` and ``(u, M)`` lies below the graph), sloped iff the
       midpoint ``> m``; upper = ``M + t (z - M)`` with ``t in {0, (M - m)/(M - l)}``, sloped
       iff the midpoint ``< M``. Each choice maximises (lower) / minimises (upper) the
       integral of the line over ``[l, u]``.
    """
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
    # case 4
    s4 = (u - m) / width
    t4 = np.where(mid > m, 1.0, 0.0)
    # case 5
    s5 = (M - l) / width
    t5 = np.where(mid < M, 1.0, 0.0)
    # case 6
    t6l = np.where(mid > m, (M - m) / np.where(u > m, u - m, 1.0), 0.0)
    t6u = np.where(mid < M, (M - m) / np.where(M > l, M - l, 1.0), 0.0)
    conds = [c_lo, c_hi, c_id, c_cvx, c_ccv, c_both]
    lower_slope = np.select(conds, [zero, zero, one, t4, s5, t6l], default=zero)
    lower_bias = np.select(
        conds,
        [zero + m, zero + M, zero, m - t4 * m, l - s5 * l, m - t6l * m],
        default=zero + m,
    )
    upper_slope = np.select(conds, [zero, zero, one, s4, t5, t6u], default=zero)
    upper_bias = np.select(
        conds,
        [zero + m, zero + M, zero, m - s4 * l, M - t5 * M, M - t6u * M],
        default=zero + M,
    )
    return Relaxation(lower_slope, lower_bias, upper_slope, upper_bias)


def _identity_relax(layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
    """Identity: ``z <= z <= z``."""
    one = np.ones_like(l)
    zero = np.zeros_like(l)
    return Relaxation(one, zero, one, zero)


def _sigmoid_fn(z: FloatArray) -> FloatArray:
    return apply_activation(Sigmoid(), z)


def _sigmoid_deriv(z: FloatArray) -> FloatArray:
    s = _sigmoid_fn(z)
    return s * (1.0 - s)


def _tanh_deriv(z: FloatArray) -> FloatArray:
    t = np.tanh(z)
    return 1.0 - t * t


_BISECTION_STEPS = 60


def _s_shaped_upper(
    f: Callable[[FloatArray], FloatArray],
    df: Callable[[FloatArray], FloatArray],
    l: FloatArray,
    u: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Upper line ``a z + b >= f(z)`` on ``[l, u]`` for an S-shaped ``f``.

    ``f`` is increasing, convex on ``z <= 0`` and concave on ``z >= 0`` (sigmoid, tanh). See
    :func:`_sigmoid_relax` for the construction.
    """
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
    b = np.where(bad, fu, b)
    return a, b


def _s_shaped_relax(
    f: Callable[[FloatArray], FloatArray],
    df: Callable[[FloatArray], FloatArray],
    f0: float,
    l: FloatArray,
    u: FloatArray,
) -> Relaxation:
    # point symmetry f(-z) = 2 f(0) - f(z): an upper line a z + b of f on [-u, -l] gives the
    # lower line a z + (2 f(0) - b) of f on [l, u].
    ua, ub = _s_shaped_upper(f, df, l, u)
    ra, rb = _s_shaped_upper(f, df, -u, -l)
    return Relaxation(ra, 2.0 * f0 - rb, ua, ub)


def _sigmoid_relax(layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
    r"""Sigmoid on ``[l, u]`` (convex for ``z <= 0``, concave for ``z >= 0``).

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
    return _s_shaped_relax(_sigmoid_fn, _sigmoid_deriv, 0.5, l, u)


def _tanh_relax(layer: Any, l: FloatArray, u: FloatArray) -> Relaxation:
    r"""Tanh on ``[l, u]``: the construction of :func:`_sigmoid_relax` with ``tanh`` (odd,
    ``tanh(0) = 0``, ``tanh' = 1 - tanh^2``)."""
    return _s_shaped_relax(np.tanh, _tanh_deriv, 0.0, l, u)


RelaxFn = Callable[[Any, FloatArray, FloatArray], Relaxation]

#: Linear relaxation of each activation type, looked up by ``type(layer)``.
RELAXATIONS: dict[type, RelaxFn] = {
    ReLU: _relu_relax,
    LeakyReLU: _leaky_relu_relax,
    HardTanh: _hardtanh_relax,
    Sigmoid: _sigmoid_relax,
    Tanh: _tanh_relax,
    Identity: _identity_relax,
}

#: Leak slope of the activations whose lower line is ``beta z`` with ``beta in [leak, 1]`` on
#: unstable neurons (the ones alpha-CROWN optimises).
_ALPHA_LEAK: dict[type, Callable[[Any], float]] = {
    ReLU: lambda layer: 0.0,
    LeakyReLU: lambda layer: float(layer.alpha),
}


def relax(layer: Activation, l: ArrayLike, u: ArrayLike) -> Relaxation:
    """Sound linear relaxation lines of ``layer`` on the per-neuron intervals ``[l, u]``.

    Raises:
        UnsupportedLayerError: for an activation without a relaxation.
    """
    lo = np.asarray(l, dtype=np.float64)
    hi = np.asarray(u, dtype=np.float64)
    try:
        fn = RELAXATIONS[type(layer)]
    except KeyError:
        raise UnsupportedLayerError(
            f"no linear relaxation for {type(layer).__name__}; supported: "
            f"{', '.join(t.__name__ for t in RELAXATIONS)}"
        ) from None
    return fn(layer, lo, hi)


# --------------------------------------------------------------------------------------------
# CROWN back-substitution
# --------------------------------------------------------------------------------------------


def _backsubstitute(
    dense: tuple[Dense, ...],
    relaxations: list[Relaxation],
    k: int,
    lam: FloatArray | None,
    const: FloatArray,
    box: Box,
) -> tuple[FloatArray, FloatArray]:
    """Bounds on ``lam @ z^(k+1) + const`` (0-based ``k``) over ``box``.

    ``lam=None`` stands for the identity matrix (bounds on ``z^(k+1)`` itself).

    ``relaxations[j]`` relaxes the activation applied to ``z^(j+1)``.

    Returns:
        ``(lower, upper)``, each of shape ``(lam.shape[0],)``.
    """
    # rows 0..r-1: lower bound, rows r..2r-1: upper bound
    if lam is None:  # identity: bound z^(k+1) itself
        first, first_c = dense[k].weight, dense[k].bias + const
    else:
        first, first_c = lam @ dense[k].weight, lam @ dense[k].bias + const
    r = first.shape[0]
    coef = np.concatenate([first, first], axis=0)
    c = np.concatenate([first_c, first_c])
    for j in range(k - 1, -1, -1):
        rel = relaxations[j]
        pos = np.maximum(coef, 0.0)
        neg = np.minimum(coef, 0.0)
        lo_part = slice(0, r)
        up_part = slice(r, 2 * r)
        new = np.empty_like(coef)
        new[lo_part] = pos[lo_part] * rel.lower_slope + neg[lo_part] * rel.upper_slope
        new[up_part] = pos[up_part] * rel.upper_slope + neg[up_part] * rel.lower_slope
        c[lo_part] += pos[lo_part] @ rel.lower_bias + neg[lo_part] @ rel.upper_bias
        c[up_part] += pos[up_part] @ rel.upper_bias + neg[up_part] @ rel.lower_bias
        c += new @ dense[j].bias
        coef = new @ dense[j].weight
    centre = coef @ box.center
    radius = np.abs(coef) @ box.radius
    return (c[:r] + centre[:r] - radius[:r]), (c[r:] + centre[r:] + radius[r:])


def _intersect(
    il: FloatArray, iu: FloatArray, cl: FloatArray, cu: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Intersection of two sound intervals ``[il, iu]`` (IBP) and ``[cl, cu]``.

    Both contain the true range, so they can only be disjoint through round-off; such entries
    get the hull of the two crossing end points, clipped to ``[il, iu]`` (so the result is
    never looser than the first interval and always has ``lower <= upper``).
    """
    lo = np.maximum(il, cl)
    hi = np.minimum(iu, cu)
    crossed = lo > hi
    if np.any(crossed):
        lo, hi = (
            np.where(crossed, np.minimum(lo, hi), lo),
            np.where(crossed, np.maximum(lo, hi), hi),
        )
        lo, hi = np.clip(lo, il, iu), np.clip(hi, il, iu)
    return lo, hi


def _crown_layers(
    net: Network,
    box: Box,
    intermediate: IntermediateMethod,
    ibp: LayerBounds,
) -> tuple[tuple[Dense, ...], list[Interval], list[Relaxation]]:
    """Bounds on ``z^(1) .. z^(L-1)`` and the relaxations built on them.

    Each layer is the intersection of plain IBP (``ibp``), the IBP step from the tightened
    previous layer and (for ``intermediate="crown"``) CROWN back-substitution.
    """
    dense, acts = net.affine_and_activations()
    bounds = [ibp.pre_activation[0]]  # exact for the first layer
    relaxations: list[Relaxation] = []
    for k in range(1, len(dense) - 1):
        act = acts[k - 1]
        relaxations.append(relax(act, bounds[-1].lower, bounds[-1].upper))
        # IBP step from the tightened previous layer
        lo, hi = _affine_interval(
            dense[k],
            apply_activation(act, bounds[-1].lower),
            apply_activation(act, bounds[-1].upper),
        )
        plain = ibp.pre_activation[k]
        lo, hi = _intersect(plain.lower, plain.upper, lo, hi)
        if intermediate == "crown":
            n = dense[k].n_out
            cl, cu = _backsubstitute(dense, relaxations, k, None, np.zeros(n), box)
            lo, hi = _intersect(lo, hi, cl, cu)
        bounds.append(Interval(lo, hi))
    if len(dense) > 1:
        relaxations.append(relax(acts[-1], bounds[-1].lower, bounds[-1].upper))
    return dense, bounds, relaxations


def _merged_spec_ibp(
    net: Network, ibp: LayerBounds, C: FloatArray, d: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Plain IBP bounds on ``C f(x) + d`` with the merged last layer ``C W^(L)``."""
    dense, acts = net.affine_and_activations()
    if len(dense) == 1:
        a_lo, a_hi = ibp.box.lower, ibp.box.upper
    else:
        pre = ibp.pre_activation[-2]
        a_lo = apply_activation(acts[-1], pre.lower)
        a_hi = apply_activation(acts[-1], pre.upper)
    return _merged_ibp(C, d, dense[-1], a_lo, a_hi)


def _merged_ibp(
    C: FloatArray, d: FloatArray, last: Dense, a_lo: FloatArray, a_hi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """IBP bounds on ``C (W a + b) + d`` using the merged row ``C W``."""
    merged = Dense(C @ last.weight, C @ last.bias + d)
    return _affine_interval(merged, a_lo, a_hi)


def _check_method(method: str, allowed: tuple[str, ...], name: str = "method") -> None:
    if method not in allowed:
        raise InvalidOptionsError(
            f"{name}={method!r} must be one of {', '.join(repr(a) for a in allowed)}"
        )


def _spec_arrays(
    C: ArrayLike, d: ArrayLike | None, n_outputs: int
) -> tuple[FloatArray, FloatArray]:
    Cm = np.asarray(C, dtype=np.float64)
    if Cm.ndim == 1:
        Cm = Cm.reshape(1, -1)
    if Cm.ndim != 2 or Cm.shape[1] != n_outputs:
        raise InvalidPropertyError(
            f"spec matrix must have shape (k, {n_outputs}), got {np.shape(C)}"
        )
    dv = np.zeros(Cm.shape[0]) if d is None else np.asarray(d, dtype=np.float64).reshape(-1)
    if dv.shape != (Cm.shape[0],):
        raise InvalidPropertyError(f"spec offset must have shape ({Cm.shape[0]},), got {dv.shape}")
    if not (np.all(np.isfinite(Cm)) and np.all(np.isfinite(dv))):
        raise InvalidPropertyError("spec matrix and offset must be finite")
    return Cm, dv


def crown_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    *,
    spec_matrix: ArrayLike | None = None,
    spec_offset: ArrayLike | None = None,
    alpha: bool = False,
    alpha_steps: int = 20,
    intermediate: IntermediateMethod = "crown",
) -> LayerBounds:
    """CROWN / DeepPoly bounds on every pre-activation (see the module docstring).

    Args:
        network: any network (it is normalized first).
        box: a :class:`Box` or a ``(lower, upper)`` pair of shape ``(n_inputs,)``.
        spec_matrix: optional ``C`` of shape ``(k, n_outputs)``; the result's ``spec`` then
            bounds ``C f(x) + d``, computed from the merged row ``C W^(L)``.
        spec_offset: optional ``d`` of shape ``(k,)`` (default zeros); needs ``spec_matrix``.
        alpha: optimise the lower slopes of unstable ReLU/LeakyReLU neurons (alpha-CROWN) for
            the final bounds (the spec rows, or the outputs when no spec is given). The
            intermediate bounds are plain CROWN.
        alpha_steps: number of projected-gradient steps for ``alpha``.
        intermediate: ``"crown"`` (full CROWN: back-substitute every layer) or ``"ibp"``
            (IBP intermediate bounds, CROWN only for the last layer).

    Returns:
        :class:`LayerBounds` with ``method="crown"`` (``"alpha-crown"`` when ``alpha``); each
        interval is intersected with IBP, so it is never looser than :func:`interval_bounds`.
    """
    _check_method(intermediate, ("ibp", "crown"), "intermediate")
    if alpha_steps < 0:
        raise InvalidOptionsError(f"alpha_steps={alpha_steps!r} must be >= 0")
    if spec_offset is not None and spec_matrix is None:
        raise InvalidOptionsError("spec_offset needs spec_matrix")
    net = network.normalized()
    b = _check_box(net, box)
    ibp = interval_bounds(net, b)
    dense, bounds, relaxations = _crown_layers(net, b, intermediate, ibp)
    n_out = dense[-1].n_out
    steps = alpha_steps if alpha else 0
    if len(dense) == 1:
        out = bounds[0]
    else:
        out = Interval(
            *_final_bounds(net, ibp, dense, bounds, relaxations, b, np.eye(n_out), None, steps)
        )
    layers = [*bounds[: len(dense) - 1], out]
    spec: Interval | None = None
    if spec_matrix is not None:
        Cm, dv = _spec_arrays(spec_matrix, spec_offset, n_out)
        spec = Interval(*_final_bounds(net, ibp, dense, bounds, relaxations, b, Cm, dv, steps))
    return LayerBounds(net, b, tuple(layers), method="alpha-crown" if alpha else "crown", spec=spec)


def _final_bounds(
    net: Network,
    ibp: LayerBounds,
    dense: tuple[Dense, ...],
    bounds: list[Interval],
    relaxations: list[Relaxation],
    box: Box,
    C: FloatArray,
    d: FloatArray | None,
    alpha_steps: int,
) -> tuple[FloatArray, FloatArray]:
    """Bounds on ``C z^(L) + d``: merged IBP (plain and tightened) intersected with CROWN
    (and alpha-CROWN when ``alpha_steps > 0``)."""
    dv = np.zeros(C.shape[0]) if d is None else d
    il, iu = _merged_spec_ibp(net, ibp, C, dv)
    _, acts = net.affine_and_activations()
    k = len(dense) - 1
    if k > 0:  # IBP step from the tightened last hidden layer
        tl, tu = _merged_ibp(
            C,
            dv,
            dense[-1],
            apply_activation(acts[-1], bounds[-1].lower),
            apply_activation(acts[-1], bounds[-1].upper),
        )
        il, iu = _intersect(il, iu, tl, tu)
    lo, hi = _backsubstitute(dense, relaxations, k, C, dv, box)
    if alpha_steps > 0 and k > 0:
        alo, ahi = _alpha_crown(dense, acts, bounds, relaxations, box, C, dv, alpha_steps)
        lo, hi = np.maximum(lo, alo), np.minimum(hi, ahi)
    return _intersect(il, iu, lo, hi)


# --------------------------------------------------------------------------------------------
# alpha-CROWN
# --------------------------------------------------------------------------------------------


def _alpha_crown(
    dense: tuple[Dense, ...],
    acts: tuple[Activation, ...],
    bounds: list[Interval],
    relaxations: list[Relaxation],
    box: Box,
    C: FloatArray,
    d: FloatArray,
    steps: int,
    lr: float = 0.1,
) -> tuple[FloatArray, FloatArray]:
    r"""Optimise lower-line slopes of unstable ReLU/LeakyReLU neurons for bounds on ``C z^(L)+d``.

    Every bounded row (lower rows and upper rows separately) has its own slopes
    ``beta = leak + alpha (1 - leak)``, ``alpha in [0, 1]``, so every iterate is a sound CROWN
    bound; the best value seen per row is returned. The objective
    ``J = sum(lower rows) - sum(upper rows)`` is differentiated in reverse mode through the
    back-substitution (the positive/negative split contributes its sign pattern).
    """
    r = C.shape[0]
    L = len(dense) - 1  # number of activations
    rows = 2 * r
    sign = np.concatenate([np.ones(r), -np.ones(r)])[:, None]  # +1 lower rows, -1 upper rows
    # masks of optimisable neurons, their leak and the initial alpha (CROWN's choice)
    free: list[FloatArray | None] = []
    leak: list[float] = []
    alphas: list[FloatArray] = []
    for j in range(L):
        leak_fn = _ALPHA_LEAK.get(type(acts[j]))
        iv = bounds[j]
        if leak_fn is None:
            free.append(None)
            leak.append(0.0)
            alphas.append(np.zeros((rows, 0)))
            continue
        a = leak_fn(acts[j])
        mask = (iv.lower < 0.0) & (iv.upper > 0.0)
        free.append(mask.astype(np.float64) if a < 1.0 else None)
        leak.append(a)
        init = (relaxations[j].lower_slope - a) / (1.0 - a) if a < 1.0 else np.zeros_like(iv.lower)
        alphas.append(np.tile(np.clip(init, 0.0, 1.0), (rows, 1)))
    if all(f is None or not f.any() for f in free):
        return _backsubstitute(dense, relaxations, L, C, d, box)
    lam0 = np.concatenate([C, C], axis=0)
    const0 = np.concatenate([d, d])
    best = np.concatenate([np.full(r, -np.inf), np.full(r, np.inf)])
    m1 = [np.zeros_like(a) for a in alphas]
    m2 = [np.zeros_like(a) for a in alphas]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    lo_rows = slice(0, r)
    up_rows = slice(r, rows)
    for it in range(steps + 1):
        # ---- forward: back-substitution with per-row slopes
        coef = lam0 @ dense[L].weight
        c = const0 + lam0 @ dense[L].bias
        saved: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        for j in range(L - 1, -1, -1):
            rel = relaxations[j]
            fm = free[j]
            low_s: FloatArray = np.broadcast_to(rel.lower_slope, (rows, rel.lower_slope.size))
            if fm is not None:
                low_s = np.where(fm > 0, leak[j] + alphas[j] * (1.0 - leak[j]), low_s)
            pos = np.maximum(coef, 0.0)
            neg = np.minimum(coef, 0.0)
            # slope multiplying pos / neg parts, per row
            s_pos = np.empty_like(coef)
            s_neg = np.empty_like(coef)
            s_pos[lo_rows], s_neg[lo_rows] = low_s[lo_rows], rel.upper_slope
            s_pos[up_rows], s_neg[up_rows] = rel.upper_slope, low_s[up_rows]
            b_pos = np.concatenate(
                [np.tile(rel.lower_bias, (r, 1)), np.tile(rel.upper_bias, (r, 1))]
            )
            b_neg = np.concatenate(
                [np.tile(rel.upper_bias, (r, 1)), np.tile(rel.lower_bias, (r, 1))]
            )
            saved.append((coef, s_pos, s_neg))
            c = c + np.sum(pos * b_pos + neg * b_neg, axis=1)
            new = pos * s_pos + neg * s_neg
            c = c + new @ dense[j].bias
            coef = new @ dense[j].weight
        value = c + coef @ box.center - sign[:, 0] * (np.abs(coef) @ box.radius)
        best[lo_rows] = np.maximum(best[lo_rows], value[lo_rows])
        best[up_rows] = np.minimum(best[up_rows], value[up_rows])
        if it == steps:
            break
        # ---- reverse: gradient of J = sum(sign * value) w.r.t. alphas
        # d value / d coef (input concretisation)
        g = sign * box.center - np.sign(coef) * box.radius
        for idx, j in enumerate(range(0, L)):
            coef_j, s_pos, s_neg = saved[L - 1 - idx]
            rel = relaxations[j]
            # through Dense j: coef = new @ W_j, c += new @ b_j
            g_new = g @ dense[j].weight.T + sign * dense[j].bias
            pos_m = coef_j > 0.0
            neg_m = coef_j < 0.0
            fm = free[j]
            if fm is not None:
                grad = np.zeros_like(coef_j)
                grad[lo_rows] = (g_new * np.where(pos_m, coef_j, 0.0))[lo_rows]
                grad[up_rows] = (g_new * np.where(neg_m, coef_j, 0.0))[up_rows]
                grad = grad * fm * (1.0 - leak[j])
                # Adam ascent step, projected onto [0, 1]
                m1[j] = beta1 * m1[j] + (1 - beta1) * grad
                m2[j] = beta2 * m2[j] + (1 - beta2) * grad * grad
                mh = m1[j] / (1 - beta1 ** (it + 1))
                vh = m2[j] / (1 - beta2 ** (it + 1))
                alphas[j] = np.clip(alphas[j] + lr * mh / (np.sqrt(vh) + eps), 0.0, 1.0)
            # through the relaxation: new = pos*s_pos + neg*s_neg, c += pos*b_pos + neg*b_neg
            b_pos = np.concatenate(
                [np.tile(rel.lower_bias, (r, 1)), np.tile(rel.upper_bias, (r, 1))]
            )
            b_neg = np.concatenate(
                [np.tile(rel.upper_bias, (r, 1)), np.tile(rel.lower_bias, (r, 1))]
            )
            g = np.where(pos_m, g_new * s_pos + sign * b_pos, 0.0) + np.where(
                neg_m, g_new * s_neg + sign * b_neg, 0.0
            )
    return best[lo_rows], best[up_rows]


# --------------------------------------------------------------------------------------------
# Public front ends
# --------------------------------------------------------------------------------------------


def spec_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    C: ArrayLike,
    d: ArrayLike | None = None,
    method: BoundMethod | str = "crown",
    *,
    alpha_steps: int = 20,
) -> tuple[FloatArray, FloatArray]:
    """Sound bounds on ``C f(x) + d`` for ``x`` in ``box``.

    The last Dense layer is merged with ``C`` (rows ``C W^(L)``), which is tighter than
    bounding ``f`` first. ``"crown"`` and ``"alpha-crown"`` results are intersected with the
    merged IBP bound, so they are never looser than ``"ibp"``.

    Args:
        network: any network.
        box: the input box.
        C: shape ``(k, n_outputs)`` (a 1-d array is one row).
        d: shape ``(k,)``; default zeros.
        method: ``"ibp"``, ``"crown"`` or ``"alpha-crown"``.
        alpha_steps: projected-gradient steps for ``"alpha-crown"``.

    Returns:
        ``(lower, upper)``, each of shape ``(k,)``.
    """
    _check_method(method, ("ibp", "crown", "alpha-crown"))
    net = network.normalized()
    Cm, dv = _spec_arrays(C, d, net.n_outputs)
    if method == "ibp":
        return _merged_spec_ibp(net, interval_bounds(net, box), Cm, dv)
    lb = crown_bounds(
        net,
        box,
        spec_matrix=Cm,
        spec_offset=dv,
        alpha=method == "alpha-crown",
        alpha_steps=alpha_steps,
    )
    assert lb.spec is not None
    return lb.spec.lower, lb.spec.upper


def output_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    method: BoundMethod | str = "crown",
) -> tuple[FloatArray, FloatArray]:
    """Sound bounds on the network outputs over ``box``.

    Args:
        network: any network.
        box: the input box.
        method: ``"ibp"``, ``"crown"`` (default; intersected with IBP) or ``"alpha-crown"``.

    Returns:
        ``(lower, upper)``, each of shape ``(n_outputs,)``.
    """
    _check_method(method, ("ibp", "crown", "alpha-crown"))
    if method == "ibp":
        lb = interval_bounds(network, box)
    else:
        lb = crown_bounds(network, box, alpha=method == "alpha-crown")
    return lb.output.lower.copy(), lb.output.upper.copy()


def property_case_bounds(
    network: Network, case: UnsafeCase, method: BoundMethod = "crown"
) -> tuple[FloatArray, FloatArray]:
    """Bounds on ``case.A @ f(x) - case.b`` over ``case.input_box``.

    The case is proven infeasible (cannot be violated) iff some row's lower bound is ``> 0``.

    Returns:
        ``(lower, upper)``, each of shape ``(case.n_rows,)``.
    """
    return spec_bounds(network, case.input_box, case.A, -case.b, method=method)


__all__ = [
    "RELAXATIONS",
    "BoundMethod",
    "Interval",
    "LayerBounds",
    "Relaxation",
    "crown_bounds",
    "interval_bounds",
    "output_bounds",
    "property_case_bounds",
    "relax",
    "spec_bounds",
]
