"""Constraints over inputs: lower a :class:`~nncert.verify.spec.MixedProperty` to a plain one.

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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidPropertyError
from nncert.verify.network import (
    Activation,
    Dense,
    FloatArray,
    HardTanh,
    LeakyReLU,
    Network,
    ReLU,
    dense_weight,
)
from nncert.verify.rounding import affine_interval, sub_up
from nncert.verify.spec import Box, MixedProperty, Property, UnsafeCase

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
        y = self.base.forward(a)
        if y.ndim == 1:
            return np.concatenate([y, a.reshape(-1)])
        return np.hstack([y, a.reshape(a.shape[0], -1)])


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
        A, b = case.A[keep].copy(), case.b[keep].copy()
        scale = input_only[keep]
        scaled_A = np.ldexp(A[scale], INPUT_ROW_SCALE_EXP)
        scaled_b = np.ldexp(b[scale], INPUT_ROW_SCALE_EXP)
        if np.all(np.isfinite(scaled_A)) and np.all(np.isfinite(scaled_b)):
            A[scale], b[scale] = scaled_A, scaled_b
        if not keep.any():
            A, b = np.zeros((1, case.A.shape[1])), np.ones(1)
        cases.append(UnsafeCase(box, A, b))
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


__all__ = [
    "INPUT_ROW_SCALE_EXP",
    "InputCarryNetwork",
    "carried_result",
    "carry_inputs",
    "lower_property",
    "normalize_input_rows",
    "relax_property",
]
