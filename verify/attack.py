"""Falsification: gradient attacks and random sampling in plain numpy.

An attack looks for an input ``x`` in a case's box with ``max_r (A_r f(x) - b_r) <= 0``
(the case's *violation*, see :class:`~nncert.verify.spec.UnsafeCase`). Attacks are heuristics:
they never prove anything, and a point they return is only a *candidate*. :func:`falsify`
turns candidates into :class:`~nncert.verify.result.Counterexample` objects only after a plain
float64 forward pass (:meth:`Network.forward`) confirms that the point lies in the case's box
and violates the case.

Gradients are computed by manual back-propagation through the IR (:func:`gradient`), batched
over inputs. PGD (:func:`pgd_attack`) minimises the violation with projected signed-gradient
steps, one step size per input dimension proportional to the box width, over a batch of
random restarts.

Example:
    >>> import numpy as np
    >>> from nncert.verify import Box, Dense, Network, Property, ReLU, UnsafeCase
    >>> net = Network((Dense([[1.0], [-1.0]], [0.0, 0.0]), ReLU(), Dense([[1.0, 1.0]], [0.0])),
    ...               input_shape=(1,))
    >>> prop = Property((UnsafeCase(Box([-1.0], [1.0]), [[1.0]], [0.5]),))  # unsafe: |x| <= 0.5
    >>> falsify(net, prop, budget_s=1.0, seed=0).violation <= 0
    True
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from nncert.verify.activations import rule_for
from nncert.verify.errors import InvalidPropertyError
from nncert.verify.network import Dense, FloatArray, Network, apply_activation
from nncert.verify.result import Counterexample
from nncert.verify.spec import Property, UnsafeCase
from nncert.verify.witness import confirm_counterexample


class AttackResult(NamedTuple):
    """Best point an attack found (a candidate, not a confirmed witness).

    A named tuple, so ``x, violation, evaluations = result`` works.

    Attributes:
        x: the best input, shape ``(n_inputs,)``, inside the case's box (clipped).
        violation: the case's violation ``max_r (A_r f(x) - b_r)`` at ``x`` (``<= 0``: unsafe).
        evaluations: number of forward passes spent (one per point and step).
    """

    x: FloatArray
    violation: float
    evaluations: int


def forward_and_gradient(
    network: Network, x: ArrayLike, c: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Outputs ``f(x)`` and the input gradient of ``c . f(x)``, batched.

    Args:
        network: the network.
        x: inputs, shape ``(N, n_inputs)``.
        c: output weights, shape ``(n_outputs,)`` (shared) or ``(N, n_outputs)`` (per input).

    Returns:
        ``(y, g)`` with ``y`` of shape ``(N, n_outputs)`` and ``g`` of shape ``(N, n_inputs)``.
    """
    y, cache = _forward_cached(network, x)
    return y, _backprop(network, cache, np.broadcast_to(np.asarray(c, dtype=np.float64), y.shape))


_Cache = list[tuple[object, FloatArray, FloatArray]]


def _forward_cached(network: Network, x: ArrayLike) -> tuple[FloatArray, _Cache]:
    """Forward pass keeping every activation's input and output for :func:`_backprop`."""
    a = np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1)
    cache: _Cache = []
    for layer in network.layers:
        if isinstance(layer, Dense):
            a = np.asarray(a @ layer.weight.T) + layer.bias  # numpy or scipy sparse W
        else:
            z = a
            a = apply_activation(layer, z)
            cache.append((layer, z, a))
    return a, cache


def _backprop(network: Network, cache: _Cache, c: FloatArray) -> FloatArray:
    """Input gradient of ``sum_k c[n, k] f_k(x_n)`` from a forward cache (consumed)."""
    g = np.array(c, dtype=np.float64)
    cache = list(cache)
    for layer in reversed(network.layers):
        if isinstance(layer, Dense):
            g = np.asarray(g @ layer.weight)
        else:
            lay, z, act = cache.pop()
            g = g * rule_for(lay).derivative(lay, z, act)
    return g


def gradient(network: Network, x: ArrayLike, c: ArrayLike) -> FloatArray:
    """Gradient of ``c . f(x)`` with respect to ``x`` by manual back-propagation.

    Each activation's derivative comes from its rule
    (:meth:`~nncert.verify.activations.ActivationRule.derivative`); at a kink of a
    piecewise-linear activation that is the smaller one-sided derivative (ReLU: 0 at
    ``z = 0``; HardTanh: 0 at both kinks).

    Args:
        network: the network.
        x: one input ``(n_inputs,)`` or a batch ``(N, n_inputs)``.
        c: output weights ``(n_outputs,)`` or ``(N, n_outputs)``.

    Returns:
        The gradient, same shape as ``x``.
    """
    xa = np.asarray(x, dtype=np.float64)
    single = xa.ndim == 1
    xb = xa.reshape(1, -1) if single else xa.reshape(xa.shape[0], -1)
    _, g = forward_and_gradient(network, xb, c)
    return g[0] if single else g.reshape(xa.shape)


def _check_case(network: Network, case: UnsafeCase) -> None:
    if case.input_box.dim != network.n_inputs or case.A.shape[1] != network.n_outputs:
        raise InvalidPropertyError(
            f"attack: case has {case.input_box.dim} inputs / {case.A.shape[1]} outputs, the "
            f"network {network.n_inputs} / {network.n_outputs}"
        )
    if case.n_rows == 0:
        raise InvalidPropertyError("attack: case has no output constraint rows")


def random_attack(
    network: Network, case: UnsafeCase, n: int, rng: np.random.Generator
) -> AttackResult:
    """Evaluate the box centre and ``n`` uniform samples.

    Args:
        network: the network.
        case: the unsafe case (box and output rows).
        n: number of uniform samples (the centre is always included).
        rng: random generator (the only source of randomness).

    Returns:
        The sample with the smallest violation.
    """
    _check_case(network, case)
    box = case.input_box
    pts = np.vstack([box.center[None, :], box.sample(max(int(n), 0), rng)])
    v = case.violation(network.forward(pts))
    i = int(np.argmin(v))
    return AttackResult(pts[i].copy(), float(v[i]), int(pts.shape[0]))


def pgd_attack(
    network: Network,
    case: UnsafeCase,
    *,
    steps: int = 50,
    restarts: int = 16,
    step_size: float = 0.25,
    rng: np.random.Generator,
    x_init: ArrayLike | None = None,
    deadline: float | None = None,
) -> AttackResult:
    """Projected signed-gradient descent on the case's violation, batched over restarts.

    Each restart starts at a uniform random point of the box (rows of ``x_init``, clipped to
    the box, replace the first restarts). Step ``t`` moves every coordinate by
    ``step_size * width_i * decay_t`` against the sign of the gradient and clips to the box;
    ``decay_t`` falls geometrically from 1 to 0.02. The search stops early once some point
    has violation ``< 0``.

    Args:
        network: the network.
        case: the unsafe case.
        steps: gradient steps per restart.
        restarts: number of parallel starting points (at least the rows of ``x_init``).
        step_size: initial step as a fraction of each dimension's width.
        rng: random generator.
        x_init: optional starting points, shape ``(k, n_inputs)`` or ``(n_inputs,)``.
        deadline: :func:`time.perf_counter` time after which no further step starts.

    Returns:
        The best point seen (inside the box) and its violation.
    """
    _check_case(network, case)
    box = case.input_box
    lo, hi = box.lower, box.upper
    starts = box.sample(max(int(restarts), 1), rng)
    if x_init is not None:
        xi = np.atleast_2d(np.asarray(x_init, dtype=np.float64))
        xi = np.clip(xi, lo, hi)
        if xi.shape[0] >= starts.shape[0]:
            starts = xi.copy()
        else:
            starts[: xi.shape[0]] = xi
    best_x, best_v, evals = pgd_boxes(
        network,
        case.A,
        case.b,
        np.broadcast_to(lo, starts.shape),
        np.broadcast_to(hi, starts.shape),
        starts,
        steps=steps,
        step_size=step_size,
        deadline=deadline,
    )
    i = int(np.argmin(best_v))
    return AttackResult(best_x[i].copy(), float(best_v[i]), evals)


def pgd_boxes(
    network: Network,
    A: FloatArray,
    b: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    x0: FloatArray,
    *,
    steps: int = 50,
    step_size: float = 0.25,
    deadline: float | None = None,
) -> tuple[FloatArray, FloatArray, int]:
    """PGD on ``max_r (A_r f(x) - b_r)`` for ``K`` independent points, each in its own box.

    Args:
        network: the network.
        A: ``(R, n_out)`` rows of the unsafe set.
        b: ``(R,)`` offsets.
        lower: ``(K, n_in)`` per-point box lower corners.
        upper: ``(K, n_in)`` per-point box upper corners.
        x0: ``(K, n_in)`` starting points (clipped to the boxes).
        steps: gradient steps.
        step_size: initial step as a fraction of each box's width (decays to 2 percent).
        deadline: :func:`time.perf_counter` time after which no further step starts (the
            best points so far are returned; ``None``: run every step).

    Returns:
        ``(best_x, best_v, evaluations)``: per point the best iterate (inside its box) and its
        violation, and the number of forward passes spent.
    """
    x = np.clip(np.asarray(x0, dtype=np.float64), lower, upper)
    width = upper - lower
    best_v = np.full(x.shape[0], np.inf)
    best_x = x.copy()
    evals = 0
    n_steps = max(int(steps), 0)
    decay = 0.02 ** (1.0 / max(n_steps - 1, 1))
    step = float(step_size) * width
    rows = np.arange(x.shape[0])
    for _ in range(n_steps + 1):
        y, cache = _forward_cached(network, x)
        g = y @ A.T - b
        r = np.argmax(g, axis=1)
        v = g[rows, r]
        evals += x.shape[0]
        better = v < best_v
        best_v = np.where(better, v, best_v)
        best_x[better] = x[better]
        if np.any(best_v < 0.0) or _ == n_steps:
            break
        if deadline is not None and time.perf_counter() >= deadline:
            break
        grad = _backprop(network, cache, A[r])
        x = np.clip(x - step * np.sign(grad), lower, upper)
        step = step * decay
    return best_x, best_v, evals


def falsify(
    network: Network,
    prop: Property,
    *,
    budget_s: float = 1.0,
    seed: int = 0,
    samples: int = 1024,
    steps: int = 50,
    restarts: int = 16,
) -> Counterexample | None:
    """Search every case of ``prop`` for a confirmed counterexample.

    Rounds over the cases: first the box centre and ``samples`` random points per case, then
    PGD started at the ``restarts`` best samples, then PGD from the best point so far plus
    fresh random restarts, until ``budget_s`` seconds have passed (the sampling and the
    first PGD round always run). Each case uses its own generator derived from
    ``seed``, so the result is deterministic given the seed (up to the time budget cutting
    rounds short).

    Args:
        network: the network.
        prop: the property.
        budget_s: wall-clock budget in seconds.
        seed: random seed.
        samples: uniform samples per case in the first round.
        steps: PGD steps per round.
        restarts: PGD restarts per round.

    Returns:
        A counterexample confirmed by the float64 replay of
        :func:`~nncert.verify.witness.confirm_counterexample`, or ``None``.
    """
    prop.check_network_shape(network.n_inputs, network.n_outputs, where="falsify")
    t_end = time.perf_counter() + float(budget_s)
    rngs = [np.random.default_rng([int(seed), i]) for i in range(len(prop.cases))]
    best: list[AttackResult | None] = [None] * len(prop.cases)
    starts: list[FloatArray | None] = [None] * len(prop.cases)
    for i, case in enumerate(prop.cases):
        if case.n_rows == 0:
            return confirm_counterexample(
                network, case, i, case.input_box.center, onnx_replay=False
            )
        box = case.input_box
        pts = np.vstack([box.center[None, :], box.sample(max(int(samples), 0), rngs[i])])
        v = case.violation(network.forward(pts))
        order = np.argsort(v, kind="stable")
        best[i] = AttackResult(pts[order[0]].copy(), float(v[order[0]]), int(pts.shape[0]))
        starts[i] = pts[order[: max(int(restarts), 1)]]  # PGD starts at the best samples
        for k in order[:4]:
            if v[k] > 0.0:
                break
            cex = confirm_counterexample(network, case, i, pts[k], onnx_replay=False)
            if cex is not None:
                return cex
    first = True
    while first or time.perf_counter() < t_end:
        for i, case in enumerate(prop.cases):
            if not first and time.perf_counter() >= t_end:
                break
            prev = best[i]
            res = pgd_attack(
                network,
                case,
                steps=steps,
                restarts=restarts,
                step_size=0.25 if first else 0.5,
                rng=rngs[i],
                x_init=starts[i] if first else (None if prev is None else prev.x),
                deadline=t_end,
            )
            if prev is None or res.violation < prev.violation:
                best[i] = res
            if res.violation <= 0.0:
                cex = confirm_counterexample(network, case, i, res.x, onnx_replay=False)
                if cex is not None:
                    return cex
        first = False
    return None


__all__ = [
    "AttackResult",
    "falsify",
    "forward_and_gradient",
    "gradient",
    "pgd_attack",
    "pgd_boxes",
    "random_attack",
]
