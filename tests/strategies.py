"""Shared Hypothesis strategies for nncert tests (DESIGN.md section 11.4).

Import from test modules as ``from strategies import networks, boxes`` (pytest puts ``tests/``
on ``sys.path`` because there is no ``__init__.py`` under ``tests/``).

All floats are drawn with ``width=32``: such values are exactly representable in float64, which
keeps tolerance noise down and makes shrunk examples readable.

Strategies:
    finite: float32-representable floats in ``[-2, 2]``.
    activations(kinds): activation *instances* with random parameters (LeakyReLU slope,
        HardTanh ``min_val < max_val``).
    networks(...): random small feed-forward networks in normal form
        ``Dense (act Dense)*``.
    boxes(n): input boxes of dimension ``n`` with widths in ``[0, max_width]`` (degenerate
        dimensions included).
    networks_and_boxes(...): a network together with a box that fits its input.

Example:
    >>> from hypothesis import given
    >>> @given(networks_and_boxes(activation=activations([ReLU])))
    ... def test_something(net_box): ...
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import hypothesis.extra.numpy as nps
import numpy as np
from hypothesis import strategies as st

from nncert.verify.network import (
    Activation,
    Dense,
    HardTanh,
    LeakyReLU,
    NegReciprocal1p,
    Network,
    RectifiedPower,
    ReLU,
    Sigmoid,
    Tanh,
)
from nncert.verify.spec import Box

#: float32-representable finite floats in ``[-2, 2]`` (no subnormals).
finite = st.floats(-2, 2, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)

#: every activation type the strategies know how to build.
ALL_ACTIVATIONS: tuple[type, ...] = (ReLU, LeakyReLU, HardTanh, Sigmoid, Tanh)


@st.composite
def _hardtanh(draw: st.DrawFn) -> HardTanh:
    lo = draw(st.floats(-2, 1, width=32, allow_subnormal=False))
    gap = draw(st.floats(0.125, 3, width=32, allow_subnormal=False))
    return HardTanh(lo, lo + gap)


_BUILDERS: dict[type, st.SearchStrategy[Activation]] = {
    ReLU: st.just(ReLU()),
    LeakyReLU: st.floats(0, 1, width=32, allow_subnormal=False).map(LeakyReLU),
    HardTanh: _hardtanh(),
    Sigmoid: st.just(Sigmoid()),
    Tanh: st.just(Tanh()),
    # not in ALL_ACTIVATIONS (no finite Lipschitz constant): ask for it by name
    RectifiedPower: st.sampled_from([RectifiedPower(p) for p in (2.0, 3.0, 2.5)]),
    NegReciprocal1p: st.just(NegReciprocal1p()),
}


def activations(kinds: Sequence[type] = ALL_ACTIVATIONS) -> st.SearchStrategy[Activation]:
    """Activation instances of the given types (parameters drawn at random).

    Args:
        kinds: activation classes to choose from, e.g. ``[ReLU, HardTanh]``.
    """
    return st.one_of([_BUILDERS[k] for k in kinds])


@st.composite
def networks(
    draw: st.DrawFn,
    *,
    activation: st.SearchStrategy[Activation] | type | None = None,
    max_depth: int = 3,
    max_width: int = 6,
    max_inputs: int = 4,
    max_outputs: int = 4,
    mixed: bool = False,
    elements: st.SearchStrategy[float] = finite,
) -> Network:
    """Random networks ``Dense (act Dense)*`` with 1..``max_depth`` hidden layers.

    Args:
        draw: supplied by Hypothesis.
        activation: a strategy of activation instances (see :func:`activations`), or an
            activation class (``ReLU``); default: any of :data:`ALL_ACTIVATIONS`.
        max_depth: maximum number of hidden layers (at least 1 is drawn).
        max_width: maximum hidden width.
        max_inputs: maximum input dimension (at least 1).
        max_outputs: maximum number of outputs (at least 2, as for classifiers).
        mixed: draw one activation per hidden layer instead of one per network.
        elements: strategy for the weights and biases.
    """
    if activation is None:
        act_st: st.SearchStrategy[Activation] = activations()
    elif isinstance(activation, type):
        act_st = activations([activation])
    else:
        act_st = activation
    sizes = [draw(st.integers(1, max_inputs))]
    sizes += draw(st.lists(st.integers(1, max_width), min_size=1, max_size=max_depth))
    sizes += [draw(st.integers(2, max(2, max_outputs)))]
    shared = draw(act_st)
    layers: list[Dense | Activation] = []
    for n_in, n_out in itertools.pairwise(sizes):
        W = draw(nps.arrays(np.float64, (n_out, n_in), elements=elements))
        b = draw(nps.arrays(np.float64, (n_out,), elements=elements))
        layers += [Dense(W, b), draw(act_st) if mixed else shared]
    return Network(tuple(layers[:-1]), input_shape=(sizes[0],))


@st.composite
def boxes(draw: st.DrawFn, n: int, *, max_width: float = 1.0) -> Box:
    """Boxes ``[lo, lo + w]`` of dimension ``n`` with ``lo`` in ``[-2, 2]``, ``w`` in
    ``[0, max_width]``."""
    lo = draw(nps.arrays(np.float64, (n,), elements=finite))
    width = draw(
        nps.arrays(
            np.float64, (n,), elements=st.floats(0, max_width, width=32, allow_subnormal=False)
        )
    )
    return Box(lo, lo + width)


@st.composite
def networks_and_boxes(draw: st.DrawFn, **network_kwargs: object) -> tuple[Network, Box]:
    """A network (keyword arguments go to :func:`networks`) and a box for its input."""
    net = draw(networks(**network_kwargs))  # type: ignore[arg-type]
    return net, draw(boxes(net.n_inputs))


__all__ = [
    "ALL_ACTIVATIONS",
    "activations",
    "boxes",
    "finite",
    "networks",
    "networks_and_boxes",
]


# --------------------------------------------------------------------------------------------
# Networks whose property margin is exactly 0 (boundary-falsifiable)
# --------------------------------------------------------------------------------------------


def _dyadic(draw: st.DrawFn, shape: tuple[int, ...], lo: int, hi: int, bits: int) -> np.ndarray:
    """Integers in ``[lo, hi]`` divided by ``2**bits``: exact in float32 and float64, and their
    sums and products stay exact in float64 for the sizes used here."""
    k = draw(nps.arrays(np.int64, shape, elements=st.integers(lo, hi)))
    return k.astype(np.float64) / 2.0**bits


@st.composite
def boundary_cases(
    draw: st.DrawFn,
    *,
    activation: Sequence[type] = (ReLU, LeakyReLU, HardTanh),
    max_depth: int = 3,
    max_width: int = 4,
    max_inputs: int = 3,
    rows: int = 2,
) -> tuple[Network, Box, np.ndarray, np.ndarray, np.ndarray]:
    """A monotone network, a box and unsafe rows ``A f(x) <= b`` whose minimum margin
    ``min_x max_r (A_r f(x) - b_r)`` is **exactly 0** (at a box vertex, in real arithmetic).

    Hidden layers have non-negative weights and the activations are monotone, so ``f`` is
    monotone in each input (the sign of an input's first-layer column fixes the direction);
    ``A >= 0`` makes every row minimal at the same vertex ``v``. Every number is a dyadic
    rational with few bits, so ``f(v)`` is computed exactly in float64 and ``b = A f(v)``
    exactly: at ``v`` every row has margin 0, so the property is falsifiable and the only right
    answers are ``sat`` and ``unknown``.

    Returns:
        ``(network, box, A, b, v)``.
    """
    act_type = draw(st.sampled_from(list(activation)))
    n_in = draw(st.integers(1, max_inputs))
    sizes = [n_in, *draw(st.lists(st.integers(1, max_width), min_size=1, max_size=max_depth))]
    n_out = draw(st.integers(1, 3))
    sizes.append(n_out)
    sign = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n_in, max_size=n_in)))
    layers: list[object] = []
    for j, (a, b) in enumerate(itertools.pairwise(sizes)):
        if j == 0:
            W = _dyadic(draw, (b, a), 0, 32, 4) * sign[None, :]
        else:
            W = _dyadic(draw, (b, a), 0, 32, 4)
        bias = _dyadic(draw, (b,), -32, 32, 4)
        layers.append(Dense(W, bias))
        if j < len(sizes) - 2:
            if act_type is LeakyReLU:
                layers.append(LeakyReLU(2.0 ** -draw(st.integers(1, 4))))
            elif act_type is HardTanh:
                m = float(_dyadic(draw, (), -16, 0, 4))
                layers.append(HardTanh(m, m + float(_dyadic(draw, (), 4, 48, 4))))
            else:
                layers.append(act_type())
    net = Network(tuple(layers), input_shape=(n_in,))  # type: ignore[arg-type]
    lo = _dyadic(draw, (n_in,), -16, 8, 4)
    hi = lo + _dyadic(draw, (n_in,), 1, 16, 4)
    v = np.where(sign > 0, lo, hi)
    r = draw(st.integers(1, rows))
    A = _dyadic(draw, (r, n_out), 0, 16, 2)
    A[np.arange(r), np.arange(r) % n_out] += 1.0  # every row depends on some output
    b = A @ net.forward(v)
    return net, Box(lo, hi), A, b, v
