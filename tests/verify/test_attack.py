"""Tests of nncert.verify.attack: gradients, random search, PGD and falsify()."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import activations, networks_and_boxes

from nncert.verify.attack import (
    AttackResult,
    falsify,
    forward_and_gradient,
    gradient,
    pgd_attack,
    pgd_boxes,
    random_attack,
)
from nncert.verify.bounds import interval_bounds
from nncert.verify.network import (
    Dense,
    HardTanh,
    LeakyReLU,
    Network,
    ReLU,
    Sigmoid,
    Tanh,
)
from nncert.verify.spec import Box, Property, UnsafeCase
from nncert.verify.witness import confirm_counterexample


def _pre_activations(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Inputs of every activation layer (to detect points near kinks)."""
    out = []
    a = x
    for layer in net.layers:
        if isinstance(layer, Dense):
            a = a @ layer.weight.T + layer.bias
        else:
            out.append(a.copy())
            a = _act(layer, a)
    return out


def _act(layer: object, z: np.ndarray) -> np.ndarray:
    from nncert.verify.network import apply_activation

    return apply_activation(layer, z)  # type: ignore[arg-type]


def _kink_distance(net: Network, x: np.ndarray) -> np.ndarray:
    """Per point, the distance of the nearest pre-activation to a kink of its activation."""
    dist = np.full(x.shape[0], np.inf)
    acts = [l for l in net.layers if not isinstance(l, Dense)]
    for layer, z in zip(acts, _pre_activations(net, x)):
        if isinstance(layer, ReLU | LeakyReLU):
            dist = np.minimum(dist, np.abs(z).min(axis=1))
        elif isinstance(layer, HardTanh):
            d = np.minimum(np.abs(z - layer.min_val), np.abs(z - layer.max_val))
            dist = np.minimum(dist, d.min(axis=1))
    return dist


@settings(max_examples=max(60, 60 * settings.default.max_examples // 100))
@given(networks_and_boxes(), st.integers(0, 2**31 - 1))
def test_gradient_matches_finite_differences(net_box: tuple[Network, Box], seed: int) -> None:
    net, box = net_box
    rng = np.random.default_rng(seed)
    x = rng.uniform(box.lower - 0.5, box.upper + 0.5, size=(8, net.n_inputs))
    c = rng.standard_normal(net.n_outputs)
    g = gradient(net, x, c)
    assert g.shape == x.shape
    h = 1e-6
    fd = np.empty_like(x)
    for i in range(net.n_inputs):
        e = np.zeros(net.n_inputs)
        e[i] = h
        fd[:, i] = (net.forward(x + e) @ c - net.forward(x - e) @ c) / (2 * h)
    # only compare where no piecewise-linear unit is within reach of a kink
    ok = _kink_distance(net, x) > 1e-3
    scale = 1.0 + np.abs(fd[ok])
    np.testing.assert_array_less(np.abs(g[ok] - fd[ok]), 1e-4 * scale + 1e-6)


def test_gradient_single_point_and_per_row_weights() -> None:
    rng = np.random.default_rng(0)
    net = Network(
        (
            Dense(rng.standard_normal((4, 3)), rng.standard_normal(4)),
            Tanh(),
            Dense(rng.standard_normal((2, 4)), rng.standard_normal(2)),
        ),
        input_shape=(3,),
    )
    x = rng.standard_normal((5, 3))
    C = rng.standard_normal((5, 2))
    y, g = forward_and_gradient(net, x, C)
    np.testing.assert_allclose(y, net.forward(x))
    for n in range(5):
        np.testing.assert_allclose(gradient(net, x[n], C[n]), g[n], rtol=1e-12, atol=1e-14)


def _random_case(net: Network, box: Box, rng: np.random.Generator, shift: float) -> UnsafeCase:
    """A case whose unsafe set sits around the value at the box centre (+ shift)."""
    r = int(rng.integers(1, 3))
    A = rng.standard_normal((r, net.n_outputs))
    b = A @ net.forward(box.center) + shift
    return UnsafeCase(box, A, b)


@settings(max_examples=max(40, 40 * settings.default.max_examples // 100))
@given(
    networks_and_boxes(activation=activations()),
    st.integers(0, 2**31 - 1),
    st.floats(-1.0, 1.0),
)
def test_attacks_return_points_in_the_box_with_true_values(
    net_box: tuple[Network, Box], seed: int, shift: float
) -> None:
    net, box = net_box
    rng = np.random.default_rng(seed)
    case = _random_case(net, box, rng, shift)
    for res in (
        random_attack(net, case, 64, rng),
        pgd_attack(net, case, steps=10, restarts=4, rng=rng),
        pgd_attack(net, case, steps=5, restarts=2, rng=rng, x_init=box.upper + 1.0),
    ):
        assert isinstance(res, AttackResult)
        assert box.contains(res.x)
        assert res.violation == pytest.approx(float(case.violation(net.forward(res.x))[0]))
    cex = falsify(net, Property((case,)), budget_s=0.05, seed=seed)
    if cex is not None:
        assert box.contains(cex.x)
        assert float(case.violation(net.forward(cex.x))[0]) <= 0.0
        np.testing.assert_array_equal(cex.y, net.forward(cex.x))
    if shift > 1e-6:
        # the centre itself violates the case (beyond rounding): falsify finds a witness
        assert cex is not None


def test_pgd_reaches_the_minimising_vertex_of_a_linear_network() -> None:
    rng = np.random.default_rng(3)
    n = 30
    w = rng.standard_normal(n)
    net = Network((Dense(w[None, :], [0.0]),), input_shape=(n,))
    box = Box(-np.ones(n), np.ones(n))
    best = -np.abs(w).sum()
    case = UnsafeCase(box, [[1.0]], [best + 1e-3])  # only a tiny corner region is unsafe
    res = pgd_attack(net, case, steps=30, restarts=2, step_size=0.5, rng=rng)
    assert res.violation <= 0.0
    np.testing.assert_array_equal(res.x, -np.sign(w))
    # uniform sampling essentially never hits that corner in 30 dimensions
    assert random_attack(net, case, 256, rng).violation > 0.0


def test_falsify_is_deterministic_and_none_when_certified() -> None:
    rng = np.random.default_rng(1)
    net = Network(
        (
            Dense(rng.standard_normal((8, 4)), rng.standard_normal(8)),
            ReLU(),
            Dense(rng.standard_normal((8, 8)), rng.standard_normal(8)),
            Sigmoid(),
            Dense(rng.standard_normal((3, 8)), rng.standard_normal(3)),
        ),
        input_shape=(4,),
    )
    box = Box(-np.ones(4), np.ones(4))
    lo = interval_bounds(net, box).output.lower
    safe = UnsafeCase(box, [[1.0, 0.0, 0.0]], [lo[0] - 1.0])  # IBP-certified: no witness
    assert falsify(net, Property((safe,)), budget_s=0.05, seed=0) is None
    case = _random_case(net, box, rng, -0.2)
    prop = Property((safe, case))
    a = falsify(net, prop, budget_s=0.2, seed=7)
    b = falsify(net, prop, budget_s=0.2, seed=7)
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        np.testing.assert_array_equal(a.x, b.x)
        assert a.case_index == b.case_index == 1


def test_confirm_counterexample_clips_and_rejects() -> None:
    net = Network((Dense([[1.0]], [0.0]),), input_shape=(1,))
    case = UnsafeCase(Box([0.0], [1.0]), [[1.0]], [0.5])  # unsafe iff x <= 0.5
    cex = confirm_counterexample(net, case, 3, [-5.0])  # clipped to 0
    assert cex is not None and cex.x[0] == 0.0 and cex.case_index == 3
    assert cex.violation == -0.5
    assert confirm_counterexample(net, case, 0, [0.75]) is None
    # a point exactly on the boundary counts (A f(x) <= b)
    edge = confirm_counterexample(net, case, 0, [0.5])
    assert edge is not None and edge.violation == 0.0


def test_pgd_boxes_respects_each_box() -> None:
    rng = np.random.default_rng(2)
    net = Network(
        (
            Dense(rng.standard_normal((6, 2)), rng.standard_normal(6)),
            HardTanh(),
            Dense(rng.standard_normal((1, 6)), rng.standard_normal(1)),
        ),
        input_shape=(2,),
    )
    lo = rng.uniform(-2, 0, size=(10, 2))
    hi = lo + rng.uniform(0, 1, size=(10, 2))
    x, v, evals = pgd_boxes(net, np.eye(1), np.zeros(1), lo, hi, rng.uniform(-5, 5, (10, 2)))
    assert evals > 0
    assert np.all((x >= lo) & (x <= hi))
    np.testing.assert_allclose(v, net.forward(x)[:, 0])
