"""Sound bounds on the pre-activations and outputs of a network over an input box.

Everything works on the network's *normal form* (``Network.normalized()``): ``L`` Dense layers
with one activation between consecutive ones. ``LayerBounds.pre_activation[k]`` bounds
``z^(k+1) = W^(k+1) a^(k) + b^(k+1)`` for ``k = 0..L-1``; the last entry bounds the output.

Interval bound propagation (IBP), centre/radius form (FORMULATIONS.md section 3)::

    c' = W c + b,   r' = |W| r,   [l', u'] = [c' - r', c' + r']
    activation:  [sigma(l'), sigma(u')]   (every supported activation is monotone)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.errors import InvalidOptionsError, InvalidPropertyError
from nncert.verify.network import Dense, FloatArray, Network, apply_activation
from nncert.verify.spec import Box

BoundMethod = Literal["ibp", "crown"]


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
    """

    network: Network
    box: Box
    pre_activation: tuple[Interval, ...]
    method: str
    arithmetic: str = "float64-nearest"

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


def output_bounds(
    network: Network,
    box: Box | tuple[ArrayLike, ArrayLike],
    method: BoundMethod = "crown",
) -> tuple[FloatArray, FloatArray]:
    """Sound bounds on the network outputs over ``box``.

    Returns:
        ``(lower, upper)``, each of shape ``(n_outputs,)``.
    """
    if method == "ibp":
        lb = interval_bounds(network, box)
        return lb.output.lower.copy(), lb.output.upper.copy()
    if method == "crown":
        from nncert.verify import bounds as _self

        crown = getattr(_self, "crown_bounds", None)
        if crown is None:  # pragma: no cover - CROWN lands in a later commit
            raise InvalidOptionsError("method='crown' is not available yet")
        lb = crown(network, box)
        return lb.output.lower.copy(), lb.output.upper.copy()
    raise InvalidOptionsError(f"method={method!r} must be 'ibp' or 'crown'")


__all__ = ["Interval", "LayerBounds", "interval_bounds", "output_bounds"]
