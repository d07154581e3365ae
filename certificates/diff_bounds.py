r"""Sound bounds on the output difference of two networks over a box (FORMULATIONS.md 11.3).

For a *target* network :math:`f_t` and a *source* network :math:`f_s` on the same inputs, this
module bounds

.. math::  d(x) = f_t(x) - f_s(x), \qquad c^\top d(x) \quad (x \in X = [x_l, x_u])

per output and per spec row :math:`c`. Three methods:

**Interval difference propagation** (``"interval"``; ReluDiff ∩ NeuroDiff). Needs the same
normalized architecture (same layer widths and activations; e.g. magnitude-pruned or
weight-quantized copies). Boxes are propagated for the source activations :math:`a`, the target
activations :math:`\tilde a`, and their difference :math:`\tilde a - a`, starting from a zero
difference at the input. An affine layer with :math:`\Delta W = \tilde W - W`,
:math:`\Delta b = \tilde b - b` gives two sound forms, whose intersection is kept:

.. math::

    \delta z = \tilde W (\tilde a - a) + \Delta W a + \Delta b
             = W (\tilde a - a) + \Delta W \tilde a + \Delta b.

Each is also intersected with :math:`[\tilde z_l - z_u,\; \tilde z_u - z_l]`, and the two
pre-activation boxes are tightened with :math:`\tilde z = z + \delta z`. Activation rules for
:math:`\sigma(\tilde z) - \sigma(z)`, given :math:`z \in [l, u]`, :math:`\tilde z \in [l', u']`,
:math:`\delta = \tilde z - z \in [\delta_l, \delta_u]`:

* ReLU: ReluDiff (both active: :math:`\delta`; both inactive: 0; else
  :math:`[\min(0,\delta_l), \max(0,\delta_u)]`) intersected with NeuroDiff's nine cases.
* LeakyReLU(α) = α z + (1 − α) ReLU(z): :math:`\alpha\delta + (1-\alpha)\,\mathrm{ReLU\ rule}`.
* HardTanh: both in the linear part: :math:`\delta`; both saturated on the same side: 0; else
  (monotone, 1-Lipschitz) :math:`[\min(0,\delta_l), \max(0,\delta_u)]`.
* Sigmoid/Tanh: mean value theorem, :math:`\sigma(\tilde z) - \sigma(z) = \sigma'(\xi)\delta`
  with :math:`\xi` in the hull :math:`H` of both boxes, so the difference lies in the interval
  product :math:`[\min_H \sigma', \max_H \sigma'] \cdot [\delta_l, \delta_u]` (σ' is unimodal
  with its peak at 0).

Every rule is finally intersected with the box difference
:math:`[\sigma(l') - \sigma(u),\; \sigma(u') - \sigma(l)]`. The last layer is merged with the
spec rows :math:`C` (:math:`(C\tilde W)(\tilde a - a) + (C\Delta W) a + C\Delta b`).

**CROWN on the difference network** (``"crown"``). :func:`difference_network` stacks both
networks' hidden layers block-diagonally on a shared input, with last layer
:math:`[\tilde W^{(L)}, -W^{(L)}]`, so its output is :math:`f_t - f_s`; CROWN's
back-substitution captures the correlation through the shared input. Works when widths differ
(structured pruning, low rank) as long as depths and activation types match.

**Best** (``"best"``): the intersection of both when the interval method applies (each is
sound, so their intersection is).

Soundness is with respect to real arithmetic evaluated in float64 round-to-nearest, like
:mod:`nncert.verify.bounds`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.bounds import spec_bounds
from nncert.verify.errors import (
    InvalidOptionsError,
    InvalidPropertyError,
    TransferError,
    UnsupportedLayerError,
)
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
from nncert.verify.spec import Box

DiffMethod = Literal["interval", "crown", "best"]
DIFF_METHODS: tuple[str, ...] = ("interval", "crown", "best")

#: Relative outward widening of the smooth-activation rules (round-off protection).
_SMOOTH_MARGIN = 1e-12


@dataclass(frozen=True, eq=False)
class DiffBounds:
    """Bounds on :math:`f_t(x) - f_s(x)` over a box.

    Attributes:
        lower: shape ``(n_outputs,)``, lower bounds of each output difference.
        upper: shape ``(n_outputs,)``.
        spec_lower: shape ``(k,)``, lower bounds of :math:`C (f_t - f_s)` (``None`` without C).
        spec_upper: shape ``(k,)``.
        method: ``"interval"``, ``"crown"`` or ``"best"``.
    """

    lower: FloatArray
    upper: FloatArray
    spec_lower: FloatArray | None
    spec_upper: FloatArray | None
    method: str

    def intersect(self, other: DiffBounds, method: str = "best") -> DiffBounds:
        """The intersection of two sound bounds (still sound)."""
        sl = su = None
        if (
            self.spec_lower is not None
            and other.spec_lower is not None
            and self.spec_upper is not None
            and other.spec_upper is not None
        ):
            sl, su = _intersect(
                self.spec_lower, self.spec_upper, other.spec_lower, other.spec_upper
            )
        lo, hi = _intersect(self.lower, self.upper, other.lower, other.upper)
        return DiffBounds(lo, hi, sl, su, method)


def _intersect(
    la: FloatArray, ua: FloatArray, lb: FloatArray, ub: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Intersection of two sound intervals; where round-off makes it empty, their hull."""
    lo, hi = np.maximum(la, lb), np.minimum(ua, ub)
    empty = lo > hi
    if np.any(empty):
        lo = np.where(empty, np.minimum(la, lb), lo)
        hi = np.where(empty, np.maximum(ua, ub), hi)
    return lo, hi


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _box(box: Box | tuple[ArrayLike, ArrayLike], n: int) -> Box:
    b = Box.from_pair(box)
    if b.dim != n:
        raise InvalidPropertyError(f"box has {b.dim} dimensions but the networks have {n} inputs")
    return b


def _matvec_interval(
    M: FloatArray, lo: FloatArray, hi: FloatArray, offset: FloatArray | float = 0.0
) -> tuple[FloatArray, FloatArray]:
    """Interval of ``M v + offset`` for ``lo <= v <= hi`` (centre/radius form)."""
    c = M @ ((lo + hi) / 2.0) + offset
    r = np.abs(M) @ ((hi - lo) / 2.0)
    return c - r, c + r


def _spec_matrix(C: ArrayLike | None, n_out: int) -> FloatArray | None:
    if C is None:
        return None
    Cm = np.asarray(C, dtype=np.float64)
    if Cm.ndim == 1:
        Cm = Cm.reshape(1, -1)
    if Cm.ndim != 2 or Cm.shape[1] != n_out or not np.all(np.isfinite(Cm)):
        raise InvalidPropertyError(
            f"spec matrix must be finite with shape (k, {n_out}), got {np.shape(C)}"
        )
    return Cm


def _check_inputs(target: Network, source: Network) -> None:
    if target.n_inputs != source.n_inputs or target.n_outputs != source.n_outputs:
        raise TransferError(
            f"networks differ in shape: target {target.n_inputs}->{target.n_outputs}, "
            f"source {source.n_inputs}->{source.n_outputs}"
        )


def _same_architecture(target: Network, source: Network) -> str | None:
    """``None`` when the interval method applies, else why not."""
    if target.n_inputs != source.n_inputs or target.n_outputs != source.n_outputs:
        return "input/output sizes differ"
    dt, at = target.affine_and_activations()
    ds, as_ = source.affine_and_activations()
    if len(dt) != len(ds):
        return f"depths differ ({len(dt)} vs {len(ds)} affine layers)"
    for k, (lt, ls) in enumerate(zip(dt, ds)):
        if lt.weight.shape != ls.weight.shape:
            return f"affine layer {k} shapes differ ({lt.weight.shape} vs {ls.weight.shape})"
    for k, (a, b) in enumerate(zip(at, as_)):
        if a != b:
            return f"activation {k} differs ({a!r} vs {b!r})"
    return None


# --------------------------------------------------------------------------------------------
# Activation difference rules: (act, l, u, l', u', dl, du) -> (lo, hi) bounds of
# sigma(z') - sigma(z) with z in [l, u], z' in [l', u'], z' - z in [dl, du]
# --------------------------------------------------------------------------------------------

ActDiffRule = Callable[
    [Any, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
    tuple[FloatArray, FloatArray],
]


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
    layer: Any,
    l: FloatArray,
    u: FloatArray,
    lt: FloatArray,
    ut: FloatArray,
    dl: FloatArray,
    du: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    a_lo, a_hi = relu_diff_reludiff(l, u, lt, ut, dl, du)
    b_lo, b_hi = relu_diff_neurodiff(l, u, lt, ut, dl, du)
    return np.maximum(a_lo, b_lo), np.minimum(a_hi, b_hi)


def _leaky_diff(
    layer: Any,
    l: FloatArray,
    u: FloatArray,
    lt: FloatArray,
    ut: FloatArray,
    dl: FloatArray,
    du: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    a = float(layer.alpha)
    r_lo, r_hi = _relu_diff(None, l, u, lt, ut, dl, du)
    return a * dl + (1.0 - a) * r_lo, a * du + (1.0 - a) * r_hi


def _hardtanh_diff(
    layer: Any,
    l: FloatArray,
    u: FloatArray,
    lt: FloatArray,
    ut: FloatArray,
    dl: FloatArray,
    du: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    m, M = float(layer.min_val), float(layer.max_val)
    linear = (l >= m) & (u <= M) & (lt >= m) & (ut <= M)
    same_sat = ((u <= m) & (ut <= m)) | ((l >= M) & (lt >= M))
    lo = np.where(linear, dl, np.where(same_sat, 0.0, np.minimum(0.0, dl)))
    hi = np.where(linear, du, np.where(same_sat, 0.0, np.maximum(0.0, du)))
    return lo, hi


def _smooth_diff(
    deriv: Callable[[FloatArray], FloatArray],
) -> ActDiffRule:
    def rule(
        layer: Any,
        l: FloatArray,
        u: FloatArray,
        lt: FloatArray,
        ut: FloatArray,
        dl: FloatArray,
        du: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        hl, hu = np.minimum(l, lt), np.maximum(u, ut)
        s_max = deriv(np.clip(0.0, hl, hu)) * (1.0 + _SMOOTH_MARGIN)
        s_min = np.maximum(np.minimum(deriv(hl), deriv(hu)) * (1.0 - _SMOOTH_MARGIN), 0.0)
        prods = np.stack([s_min * dl, s_min * du, s_max * dl, s_max * du])
        lo, hi = prods.min(axis=0), prods.max(axis=0)
        pad = _SMOOTH_MARGIN * (np.abs(lo) + np.abs(hi))
        return lo - pad, hi + pad

    return rule


def _sigmoid_deriv(z: FloatArray) -> FloatArray:
    s = apply_activation(Sigmoid(), z)
    return s * (1.0 - s)


def _tanh_deriv(z: FloatArray) -> FloatArray:
    t = np.tanh(z)
    return 1.0 - t * t


def _identity_diff(
    layer: Any,
    l: FloatArray,
    u: FloatArray,
    lt: FloatArray,
    ut: FloatArray,
    dl: FloatArray,
    du: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    return dl.copy(), du.copy()


#: activation type -> difference rule (override by passing ``rules=`` to interval_difference)
DIFF_RULES: dict[type, ActDiffRule] = {
    ReLU: _relu_diff,
    LeakyReLU: _leaky_diff,
    HardTanh: _hardtanh_diff,
    Sigmoid: _smooth_diff(_sigmoid_deriv),
    Tanh: _smooth_diff(_tanh_deriv),
    Identity: _identity_diff,
}


# --------------------------------------------------------------------------------------------
# (a) interval difference propagation
# --------------------------------------------------------------------------------------------


def _affine_diff(
    Wt: FloatArray,
    Ws: FloatArray,
    dbias: FloatArray,
    sl: FloatArray,
    su: FloatArray,
    tl: FloatArray,
    tu: FloatArray,
    dl: FloatArray,
    du: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Bounds of ``Wt ã + bt - (Ws a + bs)`` from both difference forms (intersected)."""
    dW = Wt - Ws
    l1, u1 = _matvec_interval(Wt, dl, du, dbias)
    m1l, m1u = _matvec_interval(dW, sl, su)
    l2, u2 = _matvec_interval(Ws, dl, du, dbias)
    m2l, m2u = _matvec_interval(dW, tl, tu)
    return np.maximum(l1 + m1l, l2 + m2l), np.minimum(u1 + m1u, u2 + m2u)


def interval_difference(
    target: Network,
    source: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    C: ArrayLike | None = None,
    *,
    rules: dict[type, ActDiffRule] | None = None,
) -> DiffBounds:
    """Interval difference propagation (ReluDiff ∩ NeuroDiff; see the module docstring).

    Args:
        target: :math:`f_t`.
        source: :math:`f_s`, with the same normalized architecture as ``target``.
        box: the input box.
        C: optional spec rows, shape ``(k, n_outputs)``.
        rules: overrides of :data:`DIFF_RULES` by activation type.

    Returns:
        :class:`DiffBounds` with ``method="interval"``.

    Raises:
        TransferError: the architectures differ (use ``"crown"`` then).
        UnsupportedLayerError: an activation without a difference rule.
    """
    why = _same_architecture(target, source)
    if why is not None:
        raise TransferError(f"interval difference bounds need the same architecture: {why}")
    table = {**DIFF_RULES, **(rules or {})}
    dt, at = target.affine_and_activations()
    ds, _ = source.affine_and_activations()
    b = _box(box, target.n_inputs)
    Cm = _spec_matrix(C, target.n_outputs)
    sl, su = b.lower, b.upper
    tl, tu = b.lower, b.upper
    dl = np.zeros(b.dim)
    du = np.zeros(b.dim)
    L = len(dt)
    for k in range(L):
        Wt, bt, Ws, bs = dt[k].weight, dt[k].bias, ds[k].weight, ds[k].bias
        if k == L - 1:
            break
        zsl, zsu = _matvec_interval(Ws, sl, su, bs)
        ztl, ztu = _matvec_interval(Wt, tl, tu, bt)
        dzl, dzu = _affine_diff(Wt, Ws, bt - bs, sl, su, tl, tu, dl, du)
        dzl, dzu = np.maximum(dzl, ztl - zsu), np.minimum(dzu, ztu - zsl)
        ztl, ztu = np.maximum(ztl, zsl + dzl), np.minimum(ztu, zsu + dzu)
        zsl, zsu = np.maximum(zsl, ztl - dzu), np.minimum(zsu, ztu - dzl)
        # round-off guards (the true values lie in every intersected box)
        dzu, ztu, zsu = np.maximum(dzu, dzl), np.maximum(ztu, ztl), np.maximum(zsu, zsl)
        act: Activation = at[k]
        rule = table.get(type(act))
        if rule is None:

            raise UnsupportedLayerError(
                f"no difference rule for activation {type(act).__name__}; supported: "
                f"{', '.join(t.__name__ for t in table)}"
            )
        rl, ru = rule(act, zsl, zsu, ztl, ztu, dzl, dzu)
        sl, su = apply_activation(act, zsl), apply_activation(act, zsu)
        tl, tu = apply_activation(act, ztl), apply_activation(act, ztu)
        dl, du = np.maximum(rl, tl - su), np.minimum(ru, tu - sl)
        du = np.maximum(du, dl)
        tl, tu = np.maximum(tl, sl + dl), np.minimum(tu, su + du)
        sl, su = np.maximum(sl, tl - du), np.minimum(su, tu - dl)
        tu, su = np.maximum(tu, tl), np.maximum(su, sl)

    def final(M: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Bounds of ``M (z_t - z_s)`` at the last layer, merged with ``M``."""
        Mt, Ms = M @ Wt, M @ Ws
        lo, hi = _affine_diff(Mt, Ms, M @ (bt - bs), sl, su, tl, tu, dl, du)
        ztl, ztu = _matvec_interval(Mt, tl, tu, M @ bt)
        zsl, zsu = _matvec_interval(Ms, sl, su, M @ bs)
        lo, hi = np.maximum(lo, ztl - zsu), np.minimum(hi, ztu - zsl)
        return lo, np.maximum(hi, lo)

    lo, hi = final(np.eye(target.n_outputs))
    sl_, su_ = (None, None) if Cm is None else final(Cm)
    return DiffBounds(lo, hi, sl_, su_, "interval")


# --------------------------------------------------------------------------------------------
# (b) CROWN on the difference network
# --------------------------------------------------------------------------------------------


def _block_diag(A: FloatArray, B: FloatArray) -> FloatArray:
    out = np.zeros((A.shape[0] + B.shape[0], A.shape[1] + B.shape[1]))
    out[: A.shape[0], : A.shape[1]] = A
    out[A.shape[0] :, A.shape[1] :] = B
    return out


def difference_network(a: Network, b: Network) -> Network:
    """The network :math:`x \\mapsto f_a(x) - f_b(x)` (both networks side by side).

    Layer 1 stacks both first layers on the shared input (``[W_a; W_b]``), hidden layers are
    block-diagonal (``diag(W_a, W_b)``), the last layer is ``[W_a, -W_b]`` with bias
    ``b_a - b_b``. Widths may differ; depths and activations must match.

    Raises:
        TransferError: different input/output sizes, depths or activations.

    Examples:
        >>> import numpy as np
        >>> from nncert.verify.network import Dense, Network, ReLU
        >>> n = Network((Dense([[1.0]], [0.0]), ReLU(), Dense([[2.0]], [1.0])), (1,))
        >>> float(difference_network(n, n).forward(np.array([0.5]))[0])
        0.0
    """
    _check_inputs(a, b)
    da, aa = a.affine_and_activations()
    db, ab = b.affine_and_activations()
    if len(da) != len(db):
        raise TransferError(
            f"difference_network: depths differ ({len(da)} vs {len(db)} affine layers)"
        )
    for k, (x, y) in enumerate(zip(aa, ab)):
        if x != y:
            raise TransferError(f"difference_network: activation {k} differs ({x!r} vs {y!r})")
    L = len(da)
    if L == 1:
        last = Dense(da[0].weight - db[0].weight, da[0].bias - db[0].bias)
        return Network((last,), a.input_shape, name=f"{a.name}-{b.name}")
    layers: list[Any] = [
        Dense(np.vstack([da[0].weight, db[0].weight]), np.concatenate([da[0].bias, db[0].bias])),
        aa[0],
    ]
    for k in range(1, L - 1):
        layers.append(
            Dense(
                _block_diag(da[k].weight, db[k].weight),
                np.concatenate([da[k].bias, db[k].bias]),
            )
        )
        layers.append(aa[k])
    layers.append(Dense(np.hstack([da[-1].weight, -db[-1].weight]), da[-1].bias - db[-1].bias))
    return Network(tuple(layers), a.input_shape, name=f"{a.name}-{b.name}")


def crown_difference(
    target: Network,
    source: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    C: ArrayLike | None = None,
) -> DiffBounds:
    """CROWN bounds on :math:`C (f_t - f_s)` via :func:`difference_network`.

    Raises:
        TransferError: depths or activations differ.
    """

    diff = difference_network(target, source)
    b = _box(box, target.n_inputs)
    Cm = _spec_matrix(C, target.n_outputs)
    lo, hi = spec_bounds(diff, b, np.eye(target.n_outputs), method="crown")
    sl = su = None
    if Cm is not None:
        sl, su = spec_bounds(diff, b, Cm, method="crown")
    return DiffBounds(lo, hi, sl, su, "crown")


# --------------------------------------------------------------------------------------------
# (c) front door
# --------------------------------------------------------------------------------------------


def difference_bounds(
    target: Network,
    source: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    C: ArrayLike | None = None,
    *,
    method: DiffMethod | str = "best",
) -> DiffBounds:
    """Sound bounds on :math:`f_t(x) - f_s(x)` (and :math:`C(f_t - f_s)`) over ``box``.

    Args:
        target: :math:`f_t`.
        source: :math:`f_s`.
        box: the input box.
        C: optional spec rows, shape ``(k, n_outputs)``.
        method: ``"interval"`` (same architecture), ``"crown"`` (same depth and activations)
            or ``"best"`` (their intersection where both apply, else the one that does).

    Raises:
        TransferError: no method applies to this pair of networks.
        InvalidOptionsError: unknown ``method``.

    Examples:
        >>> import numpy as np
        >>> from nncert.verify.network import Dense, Network, ReLU
        >>> n = Network((Dense([[1.0], [-1.0]], [0.0, 0.0]), ReLU(), Dense([[1.0, 1.0]], [0.0])),
        ...             (1,))
        >>> d = difference_bounds(n, n, ([-1.0], [1.0]))
        >>> float(d.lower[0]), float(d.upper[0])
        (0.0, 0.0)
    """
    if method not in DIFF_METHODS:
        raise InvalidOptionsError(f"method={method!r} must be one of {', '.join(DIFF_METHODS)}")
    _check_inputs(target, source)
    if method == "interval":
        return interval_difference(target, source, box, C)
    if method == "crown":
        return crown_difference(target, source, box, C)
    crown: DiffBounds | None
    try:
        crown = crown_difference(target, source, box, C)
    except TransferError:
        crown = None
    interval: DiffBounds | None = None
    if _same_architecture(target, source) is None:
        interval = interval_difference(target, source, box, C)
    if crown is None and interval is None:
        raise TransferError(
            "no difference bound applies: the networks need the same depth and activations"
        )
    if crown is None and interval is not None:
        return replace(interval, method="best")
    if interval is None and crown is not None:
        return replace(crown, method="best")
    if crown is None or interval is None:  # pragma: no cover - excluded above
        raise TransferError("no difference bound applies")
    return crown.intersect(interval, "best")


__all__ = [
    "DIFF_METHODS",
    "DIFF_RULES",
    "DiffBounds",
    "DiffMethod",
    "crown_difference",
    "difference_bounds",
    "difference_network",
    "interval_difference",
    "relu_diff_neurodiff",
    "relu_diff_reludiff",
]
