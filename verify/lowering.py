"""Constraints over inputs: lower a :class:`~nncert.verify.spec.MixedProperty` (or a
:class:`~nncert.verify.spec.PolynomialProperty`) to a plain one.

A mixed case says "unsafe iff some ``x`` in the box has ``A [f(x); x] <= b``". Every method
of nncert reasons about rows over the *outputs* of a network, so the inputs are made outputs:
:func:`carry_inputs` builds the network ``g(x) = [f(x); x]`` and the mixed case becomes the
ordinary case "``x`` in the box and ``A g(x) <= b``" (:meth:`MixedProperty.augmented`).

Construction, on the normal form ``Dense_1, act_1, ..., act_{L-1}, Dense_L`` of ``f``: every
hidden layer ``k`` gets ``n`` extra neurons (``n`` inputs) carrying

.. math:: t_k = s_k (x - \\ell),

with ``\\ell`` a float a little below the lower corner of the hull of the cases' boxes (by
``2^-8 max(1, |lower|, width)``, so that the bound engine, whose outward rounding is far
smaller, sees the carry neurons as stable) and ``s_k`` a power of two:
``Dense_1`` adds the rows ``s_1 I x - s_1 \\ell``, ``Dense_k`` the rows ``(s_k / s_{k-1}) t_{k-1}``,
and ``Dense_L`` the rows ``t_{L-1} / s_{L-1} + \\ell``. Powers of two and their products with
floats are exact, so in real arithmetic the last rows equal ``x`` exactly whenever every
``act_k`` is the identity on the values ``t_k`` takes, i.e. on ``(0, s_k (u - \\ell)]``
(``u``: the hull's upper corner):

* ReLU and LeakyReLU are the identity on ``[0, inf)`` (``s_k = 1``): the carry neurons are
  *stably active*, so CROWN, interval bounds and the MILP (no binaries for stable neurons)
  lose nothing;
* HardTanh(``m``, ``M``) with ``m <= 0 < M`` is the identity on ``[m, M]``: ``s_k`` is the
  largest power of two (at most 1) with ``s_k (u - \\ell) <= M / 2`` (checked in exact
  rational arithmetic);
* Sigmoid and Tanh (and HardTanh with ``m > 0`` or ``M <= 0``) are the identity nowhere
  near: :func:`carry_inputs` refuses such networks
  (:class:`~nncert.verify.errors.InvalidPropertyError`), and :func:`nncert.verify.verify`
  decides their properties through :func:`relax_property` instead (sound for ``unsat``;
  a witness is believed only if it satisfies the original rows).

The original rows of every layer get zero weights on the carry neurons, and composition
errors recorded on a Dense layer (:attr:`~nncert.verify.network.Dense.weight_error`) stay
valid (they scale with the largest input magnitude, which the carry can only increase).
Input splitting (``bab``) only shrinks boxes inside the hull, where the carry stays exact.

The float64 forward pass of :class:`InputCarryNetwork` is ``[f(x); x]`` with ``f``
evaluated as given and ``x`` copied (no rounding of ``x - \\ell`` ever reaches a witness), so
replaying a witness of the lowered case *is* checking the original constraints; onnxruntime
replays the original model (:mod:`nncert.verify.witness`).

Polynomial constraints (:class:`~nncert.verify.spec.PolynomialProperty`, rows over
``z = [f(x); x]`` and monomials ``m_k = prod_{j in k} z_j`` of degree 2 to 4):
:func:`lower_polynomial` builds ``h(x) = [z_S; m(z)]`` (``S``: the columns of ``z`` some row
uses) from ``[f(x); x]`` (or ``f`` alone when no input is needed) and one or two *product
stages* ``Dense, RectifiedPower(2), Dense``. One activation type per layer means every value a
stage must pass on unchanged goes through the squares too; all three uses are identities in
real arithmetic:

.. math::

    a^2 = \\max(a, 0)^2 + \\max(-a, 0)^2, \\qquad
    ab = \\tfrac14 \\big((a + b)^2 - (a - b)^2\\big), \\qquad
    v = \\frac{(v + c)^2 - (c - v)^2}{4c},

the last with ``c`` a power of two ``>= 2^20 (2 M + 1)``, ``M`` a sound bound of ``|v|`` on the
hull (interval bounds of ``f``, interval products of those), so both of its neurons are stably
active and the relaxation gap of the carry, ``w^2 / (8c)`` for a value of width ``w``, stays
below ``2^-23 w``. Degree 3 and 4 multiply two degree-<=2 halves in the second stage. Weights
are ``+-1``, ``1/4`` and ``1/(4c)``, biases ``c``: exact floats. The float64 forward pass of
:class:`PolynomialNetwork` multiplies the monomials directly from ``f`` as given (left to right),
which is how a witness is checked against the original constraints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncert.verify.errors import InvalidPropertyError
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    HardTanh,
    Layer,
    LeakyReLU,
    Network,
    RectifiedPower,
    ReLU,
    dense_weight,
)
from nncert.verify.rounding import affine_interval, sub_up
from nncert.verify.spec import (
    Box,
    MixedProperty,
    PolynomialProperty,
    Property,
    UnsafeCase,
    monomial_values,
)

_R = TypeVar("_R", bound=Any)

#: rows over inputs alone are scaled by ``2**INPUT_ROW_SCALE_EXP`` (:func:`normalize_input_rows`)
INPUT_ROW_SCALE_EXP = 20

#: activation types on which the inputs are carried with scale 1 (identity on ``[0, inf)``)
_RELU_LIKE: tuple[type, ...] = (ReLU, LeakyReLU)


@dataclass(frozen=True, eq=False)
class InputCarryNetwork(Network):
    """``g(x) = [f(x); x]`` for ``f = base``: layers carry the inputs (see the module doc).

    Attributes:
        base: the network ``f`` as given; :meth:`forward` evaluates it and appends ``x``.
    """

    base: Network | None = field(default=None, compare=False)

    def forward(self, x: ArrayLike) -> FloatArray:
        """``[f(x); x]`` in float64 (``f`` as given, ``x`` copied exactly)."""
        if self.base is None:  # pragma: no cover - built only by carry_inputs
            return super().forward(x)
        a = np.asarray(x, dtype=np.float64)
        return self.extend(self.base.forward(a), a)

    def extend(self, y: ArrayLike, x: ArrayLike) -> FloatArray:
        """This network's outputs from ``f``'s outputs ``y`` at ``x`` (one point or a batch):
        ``[y; x]``. The witness replay applies it to onnxruntime's outputs of ``f``."""
        yv = np.asarray(y, dtype=np.float64)
        a = np.asarray(x, dtype=np.float64)
        if yv.ndim == 1:
            return np.concatenate([yv, a.reshape(-1)])
        return np.hstack([yv, a.reshape(a.shape[0], -1)])


def _scale(act: Activation, width: list[Fraction]) -> int:
    """The exponent ``e`` of the carry scale ``2**e`` through ``act`` for carried values in
    ``(0, 2**e * width]``; raises when ``act`` is not the identity on such a range.

    For HardTanh the values stay below half of ``max_val`` (a margin far above the bound
    engine's rounding), so the carry neurons are stable in its eyes too."""
    if isinstance(act, _RELU_LIKE):
        return 0
    if isinstance(act, HardTanh) and act.min_val <= 0.0 < act.max_val:
        top = Fraction(act.max_val) / 2
        w = max(width, default=Fraction(0))
        e = 0 if w == 0 else min(int(np.floor(np.log2(float(top / w)))), 0)
        while Fraction(2) ** e * w > top:
            e -= 1
        return e
    raise InvalidPropertyError(
        f"constraints over the inputs need every activation to be the identity on an "
        f"interval (ReLU, LeakyReLU, HardTanh(m<=0<M)); this network has "
        f"{type(act).__name__}"
        + (f"({act.min_val:g}, {act.max_val:g})" if isinstance(act, HardTanh) else "")
    )


def _pad(err: FloatArray | None, extra: int) -> FloatArray | None:
    return None if err is None else np.concatenate([err, np.zeros(extra)])


def carry_inputs(network: Network, hull: Box) -> InputCarryNetwork:
    """The network ``[f(x); x]``, exact in real arithmetic for every ``x`` in ``hull``.

    Args:
        network: ``f``.
        hull: a box containing every input the lowered property ranges over.

    Raises:
        InvalidPropertyError: an activation is not the identity on any interval the carry
            could use (Sigmoid, Tanh, HardTanh without 0 in ``[m, M)``), or the box does not
            fit the network.
    """
    n = network.n_inputs
    if hull.dim != n:
        raise InvalidPropertyError(f"box has {hull.dim} inputs but the network has {n}")
    dense, acts = network.affine_and_activations()
    # the shift: strictly below the box, so that the carried values t = s (x - lo) are
    # bounded away from 0 by far more than the bound engine's outward rounding (stable)
    margin = np.ldexp(np.maximum(1.0, np.maximum(np.abs(hull.lower), hull.upper - hull.lower)), -8)
    lo = hull.lower - margin
    if not (np.all(np.isfinite(lo)) and np.all(lo < hull.lower)):
        raise InvalidPropertyError("input bounds too extreme to carry the inputs exactly")
    width = [Fraction(float(h)) - Fraction(float(v)) for h, v in zip(hull.upper, lo)]
    exps = [_scale(a, width) for a in acts]
    for e in exps:  # s * lo must be exact: no underflow into subnormals, no overflow
        s_lo = np.ldexp(lo, e)
        if not (np.all(np.isfinite(s_lo)) and np.array_equal(np.ldexp(s_lo, -e), lo)):
            raise InvalidPropertyError("input bounds too extreme to carry the inputs exactly")
    eye = np.eye(n)
    layers: list[Dense | Activation] = []
    prev_e: int | None = None
    for k, d in enumerate(dense):
        last = k == len(dense) - 1
        wd = dense_weight(d.weight, "carrying the inputs (lowering)")
        if prev_e is None:  # first layer: from x
            top = wd
            block = eye if last else np.ldexp(eye, exps[k])
            shift = np.zeros(n) if last else -np.ldexp(lo, exps[k])
            w = np.vstack([top, block])
        else:
            e_next = 0 if last else exps[k]
            w = np.block(
                [
                    [wd, np.zeros((d.n_out, n))],
                    [np.zeros((n, d.n_in)), np.ldexp(eye, e_next - prev_e)],
                ]
            )
            shift = lo.copy() if last else np.zeros(n)
        b = np.concatenate([d.bias, shift + 0.0])
        layers.append(Dense(w, b, _pad(d.weight_error, n), _pad(d.bias_error, n)))
        if not last:
            layers.append(acts[k])
            prev_e = exps[k]
    return InputCarryNetwork(
        tuple(layers), network.input_shape, name=network.name, source=None, base=network
    )


def _implied(c: FloatArray, e: float, box: Box) -> bool:
    """Whether ``c . x <= e`` for every ``x`` in ``box``, decided exactly (rationals; the
    maximum is at a corner)."""
    top = Fraction(0)
    for ci, lo, hi in zip(c.tolist(), box.lower.tolist(), box.upper.tolist()):
        if ci != 0.0:
            top += max(Fraction(ci) * Fraction(lo), Fraction(ci) * Fraction(hi))
    return top <= Fraction(e)


def _kept_rows(
    case: UnsafeCase, keep: NDArray[np.bool_], input_only: NDArray[np.bool_]
) -> UnsafeCase:
    """``case`` with only the rows ``keep``: the kept rows over inputs alone are scaled by
    ``2**INPUT_ROW_SCALE_EXP`` (exact; skipped if it would overflow), and a case left without
    rows gets the always-true row ``0 <= 1`` (its dropped rows hold on the whole box)."""
    A, b = case.A[keep].copy(), case.b[keep].copy()
    scale = input_only[keep]
    scaled_A = np.ldexp(A[scale], INPUT_ROW_SCALE_EXP)
    scaled_b = np.ldexp(b[scale], INPUT_ROW_SCALE_EXP)
    if np.all(np.isfinite(scaled_A)) and np.all(np.isfinite(scaled_b)):
        A[scale], b[scale] = scaled_A, scaled_b
    if not keep.any():
        A, b = np.zeros((1, case.A.shape[1])), np.ones(1)
    return UnsafeCase(case.input_box, A, b)


def normalize_input_rows(prop: MixedProperty) -> Property | MixedProperty:
    """The same unsafe set, in the form branch and bound searches well: rows over inputs
    alone that hold on the whole box of their case are dropped, the other ones scaled by
    ``2**INPUT_ROW_SCALE_EXP``.

    Why: the bound of such a row does not depend on the network, and a row that is (nearly)
    always satisfied has a lower bound just below 0 that dominates the ``max`` over rows that
    branch and bound reads, misleading its branching (measured on ACAS Xu 1_2 prop_2, sat in
    1.6 s: a redundant ``X_3 + X_4 <= 1`` made it a 60 s timeout, and so did the binding
    ``X_3 + X_4 <= 0.04`` unless scaled by ``2^20``; scaled by ``2^6`` or ``2^10`` it still
    timed out). Implied rows are decided exactly (rationals); scaling by a power of two is
    exact and keeps every row's sign, so the unsafe set is unchanged. A case left without rows
    gets the always-true row ``0 . y <= 1``. When no row involves an input any more, the
    result is the plain :class:`Property` on the outputs. Deterministic.
    """
    n_out = prop.n_outputs
    cases: list[UnsafeCase] = []
    for case in prop.cases:
        box = case.input_box
        input_only = ~np.any(case.A[:, :n_out] != 0.0, axis=1)
        keep = np.ones(case.n_rows, dtype=bool)
        for r in np.flatnonzero(input_only):
            keep[r] = not _implied(case.A[r, n_out:], float(case.b[r]), box)
        cases.append(_kept_rows(case, keep, input_only))
    if any(np.any(c.A[:, n_out:] != 0.0) for c in cases):
        return MixedProperty(tuple(cases), n_outputs=n_out, name=prop.name)
    plain = (UnsafeCase(c.input_box, c.A[:, :n_out], c.b) for c in cases)
    return Property(tuple(plain), name=prop.name)


def lower_property(network: Network, prop: MixedProperty) -> tuple[Network, Property]:
    """``(g, P)``: ``P`` holds on ``g`` iff ``prop`` holds on ``f = network``, and a witness
    of ``P`` is one of ``prop`` (same ``x``, outputs ``g(x)[:n_outputs]``).

    After :func:`normalize_input_rows`, ``g = [f; x]`` (:func:`carry_inputs` over the
    cases' hull) and ``P`` the mixed rows as output rows of ``g``; or, when no row involves
    an input any more, ``g = f`` and ``P`` the rows on the outputs. Deterministic (a
    function of the network's layers and the property only).

    Raises:
        InvalidPropertyError: the property does not fit the network, or the network cannot
            carry its inputs (see :func:`carry_inputs`).
    """
    prop.check_network_shape(network.n_inputs, network.n_outputs)
    simple = normalize_input_rows(prop)
    if isinstance(simple, Property):
        return network, simple
    return carry_inputs(network, simple.input_hull()), simple.augmented()


def relax_property(prop: MixedProperty) -> Property:
    """A sound relaxation on the outputs alone, for networks that cannot carry their inputs.

    Row ``d . y + c . x <= e`` of a case becomes ``d . y <= e'`` with ``e'`` a float upper
    bound of ``e - min_{x in box} c . x`` (outward-rounded interval arithmetic): every point
    of the original unsafe set satisfies the relaxed rows, so the relaxed property holding
    proves the original one, while a witness of the relaxed property must still be checked
    against the original rows (a row ``c . x <= e`` without outputs becomes the constant row
    ``0 <= e'``, false when no ``x`` in the box satisfies it).
    """
    n_out = prop.n_outputs
    cases = []
    for case in prop.cases:
        box = case.input_box
        C = np.ascontiguousarray(case.A[:, n_out:])
        low, _ = affine_interval(C, np.zeros(C.shape[0]), box.lower, box.upper)
        rhs = sub_up(case.b, low)
        cases.append(UnsafeCase(box, case.A[:, :n_out], rhs))
    return Property(tuple(cases), name=prop.name)


def carried_result(carry: Network, result: _R) -> _R:
    """A :class:`~nncert.verify.result.VerificationResult` of :func:`nncert.verify.verify`
    on a mixed property, restated about the network ``carry`` of :func:`lower_property` (for
    an :class:`InputCarryNetwork` its witness's outputs become ``[f(x); x]``), e.g. for a
    certificate about the lowered property."""
    cex = getattr(result, "counterexample", None)
    if cex is None or not isinstance(carry, InputCarryNetwork):
        return result
    y = carry.forward(np.asarray(cex.x, dtype=np.float64).reshape(-1))
    return dataclasses.replace(result, counterexample=dataclasses.replace(cex, y=y))


# --------------------------------------------------------------------------------------------
# Polynomial constraints
# --------------------------------------------------------------------------------------------

#: a value ``v`` with ``|v| <= M`` passes a rectified-power layer as
#: ``((v + c)^2 - (c - v)^2) / (4c)`` with ``c`` a power of two ``>= 2^POLY_CARRY_EXP (2M + 1)``
POLY_CARRY_EXP = 20

_Item = tuple[int, ...]  # a product of columns of z = [f(x); x] (a 1-tuple: one column)


@dataclass(frozen=True, eq=False)
class PolynomialNetwork(InputCarryNetwork):
    """``h(x) = [z_S; m(z)]`` for ``z = [f(x); x]``: the columns ``S`` of ``z`` and the
    monomials ``m`` (see :func:`lower_polynomial`).

    Attributes:
        columns: ``S``, the columns of ``z`` output first.
        monomials: the monomials output after them (sorted column indices into ``z``).
    """

    columns: tuple[int, ...] = ()
    monomials: tuple[_Item, ...] = ()

    def extend(self, y: ArrayLike, x: ArrayLike) -> FloatArray:
        """``[z_S; m(z)]`` with ``z = [y; x]``, the monomials multiplied in float64 (left to
        right, as :meth:`~nncert.verify.spec.PolynomialProperty.is_counterexample` does)."""
        z = super().extend(y, x)
        cols = z[..., list(self.columns)]
        return np.concatenate([cols, monomial_values(self.monomials, z)], axis=-1)


def _halves(m: _Item) -> tuple[_Item, _Item]:
    """A monomial of degree 2 to 4 as a product of two items of degree at most 2."""
    k = (len(m) + 1) // 2
    return m[:k], m[k:]


def _carry_offset(lo: float, hi: float) -> float:
    """The power of two ``c`` with ``v + c > 0`` and ``c - v > 0`` on ``[lo, hi]`` by a wide
    margin: ``c >= 2^POLY_CARRY_EXP (2 max(|lo|, |hi|) + 1)``."""
    m = max(abs(lo), abs(hi))
    if not np.isfinite(m) or m > 2.0**400:
        raise InvalidPropertyError(
            "polynomial constraints: a value to carry has no finite bound (or one too large)"
        )
    e = int(np.ceil(np.log2(2.0 * m + 1.0))) + 1 + POLY_CARRY_EXP
    return float(np.ldexp(1.0, e))


def _product_stage(
    layout: dict[_Item, int],
    width: int,
    bounds: dict[_Item, tuple[float, float]],
    targets: list[tuple[_Item, tuple[_Item, ...]]],
) -> tuple[list[Layer], dict[_Item, int]]:
    """``Dense, RectifiedPower(2), Dense`` computing ``targets`` from the current vector.

    ``layout`` maps the items of the current vector (``width`` entries) to their index. A
    target ``(item, ())`` carries ``item`` (two stable neurons ``v + c``, ``c - v`` and
    ``((v + c)^2 - (c - v)^2) / (4c) = v``), ``(item, (a, a))`` squares ``a``
    (``max(a, 0)^2 + max(-a, 0)^2 = a^2``), ``(item, (a, b))`` multiplies by polarization
    (``ab = ((a + b)^2 - (a - b)^2) / 4``, each square as two rectified powers, as the ONNX
    importer does). Every weight is ``+-1`` or a power of two and every bias a power of two:
    exact in real arithmetic.
    """
    pre_rows: list[FloatArray] = []
    pre_bias: list[float] = []
    post: list[list[tuple[int, float]]] = []

    def row(coefs: dict[_Item, float], bias: float = 0.0) -> int:
        r = np.zeros(width)
        for item, c in coefs.items():
            r[layout[item]] += c
        pre_rows.append(r)
        pre_bias.append(bias)
        return len(pre_rows) - 1

    for item, how in targets:
        if not how:
            c = _carry_offset(*bounds[item])
            r1 = row({item: 1.0}, c)
            r2 = row({item: -1.0}, c)
            s = float(np.ldexp(1.0, -int(np.log2(c)) - 2))  # 1 / (4c), exact
            post.append([(r1, s), (r2, -s)])
        elif how[0] == how[1]:
            a = how[0]
            post.append([(row({a: 1.0}), 1.0), (row({a: -1.0}), 1.0)])
        else:
            a, b = how
            rs = [
                row({a: 1.0, b: 1.0}),
                row({a: -1.0, b: -1.0}),
                row({a: 1.0, b: -1.0}),
                row({a: -1.0, b: 1.0}),
            ]
            post.append([(rs[0], 0.25), (rs[1], 0.25), (rs[2], -0.25), (rs[3], -0.25)])
    W = np.zeros((len(targets), len(pre_rows)))
    for i, entries in enumerate(post):
        for j, c in entries:
            W[i, j] = c
    layers: list[Layer] = [
        Dense(np.vstack(pre_rows), np.array(pre_bias)),
        RectifiedPower(2.0),
        Dense(W, np.zeros(len(targets))),
    ]
    return layers, {item: i for i, (item, _) in enumerate(targets)}


def _interval_product(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """Float interval product, widened by a factor of two (only used to choose carry
    offsets, which keep a margin of ``2^POLY_CARRY_EXP`` on top)."""
    ps = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    m = 2.0 * max(abs(p) for p in ps) + 1.0
    return -m, m


def lower_polynomial(
    network: Network,
    prop: PolynomialProperty,
    output_bounds: tuple[ArrayLike, ArrayLike],
) -> tuple[PolynomialNetwork, Property]:
    """``(h, P)``: ``P`` holds on ``h`` iff ``prop`` holds on ``f = network``, and a witness
    of ``P`` is one of ``prop`` (same ``x``).

    ``h(x) = [z_S; m_1(z); ...; m_k(z)]`` with ``z = [f(x); x]``, ``S`` the columns of ``z``
    that some row uses (in order) and ``m`` the property's monomials; ``P`` has the rows of
    ``prop`` restricted to those columns (the others are zero). Construction: ``z`` is
    ``[f(x); x]`` (:func:`carry_inputs`) when some used column or factor is an input, else
    ``f(x)``; then one product stage (:func:`_product_stage`: ``Dense``,
    ``RectifiedPower(2)``, ``Dense``) computes the degree-2 monomials and carries ``z_S``, and
    a second one, when some monomial has degree 3 or 4, multiplies two degree-<=2 halves
    computed by the first. Every stage is exact in real arithmetic on the hull of the cases'
    boxes: the squares are exact identities and a carried ``v`` stays strictly inside
    ``(-c, c)`` there, given sound bounds on ``f`` over that hull.

    Args:
        network: ``f``.
        prop: the polynomial property.
        output_bounds: sound ``(lower, upper)`` bounds on ``f(x)`` over ``prop``'s input hull
            (e.g. interval bound propagation); they only choose the carry offsets ``c``.

    Raises:
        InvalidPropertyError: the property does not fit the network, the inputs are needed
            and the network cannot carry them (:func:`carry_inputs`), or a bound is not finite.
    """
    prop.check_network_shape(network.n_inputs, network.n_outputs)
    n_out = prop.n_outputs
    n_z = n_out + prop.n_inputs
    monos = prop.monomials
    used = np.zeros(n_z, dtype=bool)
    for case in prop.cases:
        used |= np.any(case.A[:, :n_z] != 0.0, axis=0)
    cols = tuple(int(j) for j in np.flatnonzero(used))
    factors = {j for m in monos for j in m}
    hull = prop.input_hull()
    lo_y = np.asarray(output_bounds[0], dtype=np.float64).reshape(-1)
    hi_y = np.asarray(output_bounds[1], dtype=np.float64).reshape(-1)
    if lo_y.shape != (n_out,) or hi_y.shape != (n_out,):
        raise InvalidPropertyError(f"output bounds must have {n_out} entries")
    lo_z = np.concatenate([lo_y, hull.lower])
    hi_z = np.concatenate([hi_y, hull.upper])
    need_x = any(j >= n_out for j in (*cols, *factors))
    g: Network = carry_inputs(network, hull) if need_x else network
    bounds: dict[_Item, tuple[float, float]] = {
        (j,): (float(lo_z[j]), float(hi_z[j])) for j in range(n_z)
    }
    layout: dict[_Item, int] = {(j,): j for j in range(g.n_outputs)}
    width = g.n_outputs
    outputs: list[tuple[_Item, tuple[_Item, ...]]] = [((j,), ()) for j in cols]
    layers: list[Layer] = list(g.layers)
    if all(len(m) == 2 for m in monos):
        outputs += [(m, ((m[0],), (m[1],))) for m in monos]
        stage, layout = _product_stage(layout, width, bounds, outputs)
        layers += stage
    else:
        first: dict[_Item, tuple[_Item, ...]] = {(j,): () for j in cols}
        for m in monos:
            for half in _halves(m) if len(m) > 2 else (m,):
                if half not in first:
                    first[half] = () if len(half) == 1 else ((half[0],), (half[1],))
        for item, how in first.items():
            if how:
                bounds[item] = _interval_product(bounds[how[0]], bounds[how[1]])
        stage, layout = _product_stage(layout, width, bounds, list(first.items()))
        layers += stage
        outputs += [(m, () if len(m) == 2 else _halves(m)) for m in monos]
        stage, layout = _product_stage(layout, len(first), bounds, outputs)
        layers += stage
    h = PolynomialNetwork(
        tuple(layers),
        network.input_shape,
        name=network.name,
        source=None,
        base=network,
        columns=cols,
        monomials=monos,
    )
    keep = [*cols, *range(n_z, n_z + len(monos))]
    cases = tuple(UnsafeCase(c.input_box, c.A[:, keep], c.b) for c in prop.cases)
    return h, Property(cases, name=prop.name)


def _power_range(lo: Fraction, hi: Fraction, p: int) -> tuple[Fraction, Fraction]:
    """The exact range of ``t^p`` for ``t`` in ``[lo, hi]``."""
    a, b = lo**p, hi**p
    if p % 2 == 0 and lo <= 0 <= hi:
        return Fraction(0), max(a, b)
    return min(a, b), max(a, b)


def _input_part_range(
    coefs: FloatArray, prop: PolynomialProperty, box: Box, columns: list[int]
) -> tuple[Fraction, Fraction]:
    """An exact enclosure of ``sum_{j in columns} coefs[j] col_j(x)`` over ``box``, where each
    column is an input or a monomial of inputs only: the sum of the terms' exact ranges
    (powers of one input exactly, products of those by interval products)."""
    n_out, n_z = prop.n_outputs, prop.n_outputs + prop.n_inputs
    lo_sum, hi_sum = Fraction(0), Fraction(0)
    for j in columns:
        c = Fraction(float(coefs[j]))
        if c == 0:
            continue
        factors = (j,) if j < n_z else prop.monomials[j - n_z]
        lo, hi = Fraction(1), Fraction(1)
        for i in sorted(set(factors)):
            a, b = _power_range(
                Fraction(float(box.lower[i - n_out])),
                Fraction(float(box.upper[i - n_out])),
                factors.count(i),
            )
            ends = (lo * a, lo * b, hi * a, hi * b)
            lo, hi = min(ends), max(ends)
        lo_sum += min(c * lo, c * hi)
        hi_sum += max(c * lo, c * hi)
    return lo_sum, hi_sum


def _column_kinds(prop: PolynomialProperty) -> tuple[list[int], list[int], list[int]]:
    """The columns of ``[y; x; m]`` by what they depend on: ``(inputs only, outputs only,
    outputs and inputs)``."""
    n_out, n_z = prop.n_outputs, prop.n_outputs + prop.n_inputs
    x_only = list(range(n_out, n_z))
    y_only = list(range(n_out))
    both: list[int] = []
    for k, m in enumerate(prop.monomials):
        has_y = any(j < n_out for j in m)
        has_x = any(j >= n_out for j in m)
        (both if has_y and has_x else y_only if has_y else x_only).append(n_z + k)
    return x_only, y_only, both


def _float_at_least(v: Fraction) -> float:
    """The smallest float ``>= v`` (``inf`` beyond the range)."""
    f = float(v) if abs(v) < Fraction(2) ** 1023 else (np.inf if v > 0 else -np.inf)
    return float(np.nextafter(f, np.inf)) if np.isfinite(f) and Fraction(f) < v else f


def normalize_polynomial_rows(prop: PolynomialProperty) -> PolynomialProperty:
    """As :func:`normalize_input_rows`, for polynomial rows: a row over inputs only (inputs
    and monomials of inputs) that holds on the whole box of its case (decided by the exact
    enclosure of :func:`_input_part_range`, so a row is dropped only when it is implied) is
    dropped, the other such rows scaled by ``2**INPUT_ROW_SCALE_EXP`` (exact, same sign); a
    case left without rows gets the always-true row ``0 <= 1``. The unsafe set is unchanged."""
    x_only, _, _ = _column_kinds(prop)
    xs = np.zeros(prop.cases[0].A.shape[1], dtype=bool)
    xs[x_only] = True
    cases: list[UnsafeCase] = []
    for case in prop.cases:
        input_only = ~np.any((case.A != 0.0) & ~xs, axis=1)
        keep = np.ones(case.n_rows, dtype=bool)
        for r in np.flatnonzero(input_only):
            _, top = _input_part_range(case.A[r], prop, case.input_box, x_only)
            keep[r] = not top <= Fraction(float(case.b[r]))
        cases.append(_kept_rows(case, keep, input_only))
    return PolynomialProperty(tuple(cases), prop.n_outputs, prop.monomials, name=prop.name)


def relax_polynomial(prop: PolynomialProperty) -> Property | PolynomialProperty:
    """A sound relaxation without inputs, for networks that cannot carry them (Sigmoid, Tanh).

    Row ``d . [y; m_y] + c . [x; m_x] <= e`` (``m_y``: monomials of outputs only, ``m_x`` of
    inputs only) becomes ``d . [y; m_y] <= e'`` with ``e'`` the smallest float
    ``>= e - min_{x in box} c . [x; m_x]`` (the minimum bounded below exactly, in rationals):
    every point of the original unsafe set satisfies the relaxed rows, so the relaxed property
    holding proves the original one; a witness of the relaxed property must still be checked
    against the original rows. The result keeps only the monomials of outputs still used (a
    :class:`Property` on the outputs when none is).

    Raises:
        InvalidPropertyError: a row has a product of an output and an input (no such
            relaxation by a constant exists).
    """
    x_only, y_only, both = _column_kinds(prop)
    n_out, n_z = prop.n_outputs, prop.n_outputs + prop.n_inputs
    cases: list[tuple[Box, FloatArray, FloatArray]] = []
    for case in prop.cases:
        if both and np.any(case.A[:, both] != 0.0):
            k = both[int(np.argmax(np.any(case.A[:, both] != 0.0, axis=0)))] - n_z
            raise InvalidPropertyError(
                "polynomial constraints with a product of outputs and inputs "
                f"(monomial {prop.monomials[k]} of [y; x]) need a network that can carry its "
                "inputs (ReLU, LeakyReLU, HardTanh(m<=0<M))"
            )
        A = case.A[:, y_only].copy()
        b = np.empty(case.n_rows)
        for r in range(case.n_rows):
            low, _ = _input_part_range(case.A[r], prop, case.input_box, x_only)
            b[r] = _float_at_least(Fraction(float(case.b[r])) - low)
        if not np.all(np.isfinite(b)):
            raise InvalidPropertyError("polynomial constraints: relaxed right-hand side overflows")
        cases.append((case.input_box, A, b))
    used = [
        k for k in range(n_out, len(y_only)) if any(np.any(A[:, k] != 0.0) for _, A, _ in cases)
    ]
    monos = tuple(prop.monomials[y_only[k] - n_z] for k in used)
    if not monos:
        return Property(tuple(UnsafeCase(bx, A[:, :n_out], b) for bx, A, b in cases), prop.name)
    zeros = np.zeros(prop.n_inputs)  # the relaxed rows do not involve the inputs any more
    out = tuple(
        UnsafeCase(bx, np.hstack([A[:, :n_out], np.tile(zeros, (len(b), 1)), A[:, used]]), b)
        for bx, A, b in cases
    )
    return PolynomialProperty(out, n_out, monos, name=prop.name)


__all__ = [
    "INPUT_ROW_SCALE_EXP",
    "POLY_CARRY_EXP",
    "InputCarryNetwork",
    "PolynomialNetwork",
    "carried_result",
    "carry_inputs",
    "lower_polynomial",
    "lower_property",
    "normalize_input_rows",
    "normalize_polynomial_rows",
    "relax_polynomial",
    "relax_property",
]
