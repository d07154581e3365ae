"""Exact (rational) evaluation of networks and activations, for soundness tests.

Bounds in nncert hold for the *exact* real-arithmetic network, so the tests compare them with
exact values rather than float64 forward passes with a tolerance:

* a piecewise-linear activation is evaluated from its rule's ``relu_pieces`` in
  :class:`fractions.Fraction` arithmetic (the tests of :mod:`nncert.verify.activations` check
  that the pieces reproduce ``apply``);
* sigmoid and tanh are evaluated with :mod:`mpmath` at :data:`PREC` bits and returned as
  fractions, so their values are off by a relative :math:`2^{-PREC}` only
  (:data:`SMOOTH_TOL` covers that).

Import as ``from exact_arith import exact_forward`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from nncert.verify.activations import rule_for
from nncert.verify.network import (
    Dense,
    Exp,
    NegReciprocal1p,
    Network,
    RectifiedPower,
    Sigmoid,
    Tanh,
)

#: bits of precision for the smooth activations
PREC = 300

#: absolute-plus-relative slack that covers the smooth activations' approximation
SMOOTH_TOL = 2.0**-200

#: smooth values below this magnitude are returned as 0 (an error far inside SMOOTH_TOL)
_NEGLIGIBLE = mpmath.mpf(2) ** -400

_SMOOTH: dict[type, Callable[[Any], Any]] = {
    Sigmoid: lambda x: 1 / (1 + mpmath.exp(-x)),
    Tanh: mpmath.tanh,
    Exp: mpmath.exp,
}


def _to_fraction(x: Any) -> Fraction:
    sign, man, exp, _ = x._mpf_  # value (-1)^sign man 2^exp
    return Fraction(-int(man) if sign else int(man)) * Fraction(2) ** int(exp)


def exact_activation(layer: Any, z: Fraction) -> Fraction:
    """``sigma(z)``: exact from the rule's pieces, or to :data:`PREC` bits (sigmoid, tanh)."""
    pieces = rule_for(layer).relu_pieces(layer)
    if pieces is not None:
        offset, ps = pieces
        out = Fraction(offset)
        for theta, w, leak in ps:
            s = z - Fraction(theta)
            out += Fraction(w) * max(s, Fraction(leak) * s)
        return out
    if isinstance(layer, NegReciprocal1p):
        return Fraction(-1) / (1 + max(z, Fraction(0)))
    if isinstance(layer, RectifiedPower):
        p = layer.exponent
        if z <= 0:
            return Fraction(0)
        if p == int(p):
            return z ** int(p)  # exact
        with mpmath.workprec(PREC):
            y = mpmath.power(mpmath.mpf(z.numerator) / z.denominator, mpmath.mpf(p))
            return Fraction(0) if abs(y) < _NEGLIGIBLE else _to_fraction(y)
    fn = _SMOOTH[type(layer)]
    with mpmath.workprec(PREC):
        y = mpmath.mpf(fn(mpmath.mpf(z.numerator) / z.denominator))
        if abs(y) < _NEGLIGIBLE:  # e.g. sigmoid(-1e300) = 2^(-1.4e300): no Fraction holds it
            return Fraction(0)
        return _to_fraction(y)


def is_exact(network_or_layers: Network | Sequence[Any]) -> bool:
    """Whether :func:`exact_forward` is exact (no smooth activation)."""
    layers = (
        network_or_layers.layers if isinstance(network_or_layers, Network) else network_or_layers
    )
    return all(isinstance(l, Dense) or rule_for(l).relu_pieces(l) is not None for l in layers)


def exact_forward(net: Network, x: np.ndarray) -> list[Fraction]:
    """The exact network output at the float input ``x`` (one point)."""
    a = [Fraction(float(v)) for v in np.asarray(x, dtype=np.float64).reshape(-1)]
    for layer in net.layers:
        if isinstance(layer, Dense):
            W = [[Fraction(float(w)) for w in row] for row in layer.weight]
            a = [
                sum((w * v for w, v in zip(row, a) if w), Fraction(float(b)))
                for row, b in zip(W, layer.bias)
            ]
        else:
            a = [exact_activation(layer, v) for v in a]
    return a


def exact_pre_activations(net: Network, x: np.ndarray) -> list[list[Fraction]]:
    """The exact output of every Dense layer at the float input ``x`` (one point)."""
    a = [Fraction(float(v)) for v in np.asarray(x, dtype=np.float64).reshape(-1)]
    out: list[list[Fraction]] = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            a = [
                sum((Fraction(float(w)) * v for w, v in zip(row, a) if w), Fraction(float(b)))
                for row, b in zip(layer.weight, layer.bias)
            ]
            out.append(a)
        else:
            a = [exact_activation(layer, v) for v in a]
    return out


def exact_linear(C: np.ndarray, y: Sequence[Fraction]) -> list[Fraction]:
    """``C y`` in exact arithmetic."""
    return [sum((Fraction(float(c)) * v for c, v in zip(row, y)), Fraction(0)) for row in C]


def assert_enclosed(
    values: Sequence[Fraction], lower: np.ndarray, upper: np.ndarray, *, exact: bool, what: str
) -> None:
    """Every exact value lies in ``[lower, upper]`` (no tolerance when ``exact``)."""
    for i, v in enumerate(values):
        tol = Fraction(0) if exact else Fraction(SMOOTH_TOL) * (1 + abs(v))
        lo, hi = Fraction(float(lower[i])), Fraction(float(upper[i]))
        assert lo - tol <= v <= hi + tol, f"{what}[{i}]: {float(v)!r} not in [{lo}, {hi}]"


__all__ = [
    "PREC",
    "SMOOTH_TOL",
    "assert_enclosed",
    "exact_activation",
    "exact_forward",
    "exact_linear",
    "exact_pre_activations",
    "is_exact",
]
