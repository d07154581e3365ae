"""Layerwise partitioning, Scheme A (FORMULATIONS.md 10.1; oracles 28-29)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from exact_arith import assert_enclosed, exact_pre_activations
from nets import pre_activations

from nncert.formulations.milp import encode_milp
from nncert.solvers.partition_method import window_bounds, window_bounds_with_stats, window_margin
from nncert.solvers.registry import get_solver
from nncert.verify.bounds import interval_bounds
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Dense, Network, ReLU, Sigmoid, Tanh
from nncert.verify.pipeline import verify
from nncert.verify.spec import Box, Property, UnsafeCase

SOLVER = get_solver("highs", mip_rel_gap=1e-9)


def _net(seed: int, sizes: list[int], act: object) -> Network:
    rng = np.random.default_rng(seed)
    layers: list[object] = []
    for i in range(len(sizes) - 1):
        layers.append(
            Dense(rng.normal(size=(sizes[i + 1], sizes[i])), rng.normal(size=sizes[i + 1]) * 0.5)
        )
        if i < len(sizes) - 2:
            layers.append(act)
    return Network(tuple(layers), (sizes[0],))  # type: ignore[arg-type]


BOX = Box(-np.ones(3), np.ones(3))


def _samples(net: Network, n: int = 20000) -> list[np.ndarray]:
    """Pre-activations of every layer at random inputs."""
    return pre_activations(net, BOX.sample(n, np.random.default_rng(0)))


@pytest.mark.parametrize("act", [ReLU(), Sigmoid(), Tanh()], ids=["relu", "sigmoid", "tanh"])
def test_sound_and_monotone_in_window_size(act: object) -> None:
    sizes = [3, 5, 5, 5, 2] if isinstance(act, ReLU) else [3, 3, 3, 2]
    net = _net(1, sizes, act)
    zs = _samples(net)
    prev = None
    for s in range(1, len(sizes)):
        lb = window_bounds(net, BOX, s, solver=SOLVER, initial="ibp", segments=2, tighten="all")
        for iv, z in zip(lb.pre_activation, zs):
            assert np.all(iv.lower <= z.min(axis=0) + 1e-9)
            assert np.all(iv.upper >= z.max(axis=0) - 1e-9)
        if prev is not None:
            for a, b in zip(prev.pre_activation, lb.pre_activation):
                assert np.all(b.lower >= a.lower - 1e-6)
                assert np.all(b.upper <= a.upper + 1e-6)
        prev = lb


def test_window_one_is_interval_propagation() -> None:
    net = _net(2, [3, 5, 5, 2], ReLU())
    lb = window_bounds(net, BOX, 1, solver=SOLVER, initial="ibp")
    ib = interval_bounds(net, BOX)
    for a, b in zip(lb.pre_activation, ib.pre_activation):
        np.testing.assert_allclose(a.lower, b.lower, atol=1e-12)
        np.testing.assert_allclose(a.upper, b.upper, atol=1e-12)


def test_exact_at_full_depth_relu() -> None:
    net = _net(3, [3, 5, 5, 5, 2], ReLU())
    lb, stats = window_bounds_with_stats(net, BOX, 4, solver=SOLVER, initial="ibp")
    assert stats.solves > 0
    ib = interval_bounds(net, BOX)
    for j in range(2):
        for sign in (1.0, -1.0):
            e = np.zeros((1, 2))
            e[0, j] = sign
            exact = float(SOLVER.solve(encode_milp(net, UnsafeCase(BOX, e, [0.0]), ib)).objective)
            got = lb.output.lower[j] if sign > 0 else -lb.output.upper[j]
            assert got == pytest.approx(exact, abs=1e-5)
    # the margin of the last window equals the exact margin when it spans the network
    case = UnsafeCase(BOX, [[1.0, -1.0]], [0.0])
    exact = float(SOLVER.solve(encode_milp(net, case, ib)).objective)
    assert window_margin(net, case, lb, 4, solver=SOLVER) == pytest.approx(exact, abs=1e-5)
    part = window_margin(net, case, window_bounds(net, BOX, 2, solver=SOLVER), 2, solver=SOLVER)
    assert part is not None and part <= exact + 1e-6


def test_bad_window_size() -> None:
    with pytest.raises(InvalidOptionsError):
        window_bounds(_net(0, [3, 2, 2], ReLU()), BOX, 0)


@pytest.mark.parametrize("act", [ReLU(), Sigmoid()], ids=["relu", "sigmoid"])
def test_pipeline_method_window(act: object) -> None:
    net = _net(5, [3, 4, 4, 2], act)
    box = Box(-0.3 * np.ones(3), 0.3 * np.ones(3))
    xs = box.sample(20000, np.random.default_rng(0))
    y = net.forward(xs)
    for shift in (-2.0, 2.0):
        case = UnsafeCase(box, [[1.0, -1.0]], [shift])
        smin = float(case.violation(y).min())
        res = verify(net, Property((case,)), method="window", window=2, time_limit=30, attack=False)
        if res.verdict.value == "verified":
            assert smin > 0
        elif res.verdict.value == "falsified":
            assert res.counterexample is not None and res.counterexample.violation <= 0


@pytest.mark.parametrize("seed", range(12))
def test_window_bounds_hold_for_the_exact_network(seed: int) -> None:
    """Large pre-activations on a point box: every layer's window bounds contain the exact
    (rational) values, with no tolerance (the interval steps are outward-rounded)."""
    rng = np.random.default_rng(seed)
    sizes = [2, 3, 3, 3, 2]
    layers: list[object] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [Dense(rng.normal(size=(n_out, n_in)), 1e6 + rng.normal(size=n_out)), ReLU()]
    net = Network(tuple(layers[:-1]), input_shape=(2,))  # type: ignore[arg-type]
    x = rng.normal(size=2) * 1e3
    lb = window_bounds(net, Box(x, x), 1, initial="ibp")
    for z, iv in zip(exact_pre_activations(net, x), lb.pre_activation):
        assert_enclosed(z, iv.lower, iv.upper, exact=True, what="window")
