"""LP bound tightening: sound, never looser, and the MILP optimum is unchanged."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from exact_arith import assert_enclosed, exact_pre_activations
from hypothesis import given, settings
from hypothesis import strategies as st
from nets import pre_activations
from strategies import activations, boxes, networks

from nncert.formulations.milp import MilpProblem, encode_milp
from nncert.solvers.highs_solver import HighsSolver
from nncert.solvers.tightening import dual_lower_bound, tighten_bounds_lp
from nncert.verify.bounds import interval_bounds
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Dense, HardTanh, LeakyReLU, Network, ReLU
from nncert.verify.spec import Box, UnsafeCase

SOLVER = HighsSolver(mip_rel_gap=0.0)


@settings(max_examples=25)
@given(data=st.data())
def test_lp_bounds_are_sound_tighter_and_keep_the_optimum(data: st.DataObject) -> None:
    net = data.draw(
        networks(
            activation=activations([ReLU, LeakyReLU, HardTanh]),
            max_depth=3,
            max_width=5,
            max_inputs=3,
            max_outputs=3,
        )
    )
    box = data.draw(boxes(net.n_inputs, max_width=2.0))
    ibp = interval_bounds(net, box)
    lp = tighten_bounds_lp(net, box, ibp)
    assert lp.method == "lp"
    rng = np.random.default_rng(0)
    xs = np.vstack([box.sample(500, rng), box.lower, box.upper])
    for iv_lp, iv_ibp, z in zip(lp.pre_activation, ibp.pre_activation, pre_activations(net, xs)):
        assert np.all(iv_lp.lower >= iv_ibp.lower) and np.all(iv_lp.upper <= iv_ibp.upper)
        assert iv_lp.contains(z, atol=1e-7)
    a = np.zeros(net.n_outputs)
    a[0], a[1] = 1.0, -1.0
    case = UnsafeCase(box, a[None], [0.0])
    p_ibp, p_lp = encode_milp(net, case, ibp), encode_milp(net, case, lp)
    assert p_lp.stats is not None and p_ibp.stats is not None
    assert p_lp.stats.n_binaries <= p_ibp.stats.n_binaries
    r_ibp, r_lp = SOLVER.solve(p_ibp), SOLVER.solve(p_lp)
    assert r_ibp.objective is not None and r_lp.objective is not None
    assert r_lp.objective == pytest.approx(r_ibp.objective, abs=1e-6 * (1 + abs(r_ibp.objective)))


def test_dual_lower_bound_matches_lp_optimum() -> None:
    p = MilpProblem.from_arrays(
        [-1.0, -1.0], [[1.0, 2.0], [3.0, 1.0]], [-np.inf, -np.inf], [4.0, 6.0], [0, 0], [5, 5]
    )
    r = SOLVER.solve(p)
    assert r.duals is not None
    assert dual_lower_bound(p, r.duals) == pytest.approx(-2.8)
    # any multipliers give a valid (weaker) bound
    assert dual_lower_bound(p, np.zeros(2)) <= -2.8
    assert dual_lower_bound(p, np.array([5.0, 5.0])) <= -2.8


def test_tightening_rejects_foreign_bounds() -> None:
    net = Network(
        (Dense(np.eye(2), np.zeros(2)), ReLU(), Dense(np.ones((1, 2)), np.zeros(1))), (2,)
    )
    other = Network(
        (Dense(2 * np.eye(2), np.zeros(2)), ReLU(), Dense(np.ones((1, 2)), np.zeros(1))), (2,)
    )
    box = interval_bounds(net, ([-1, -1], [1, 1])).box
    with pytest.raises(InvalidOptionsError, match="another network"):
        tighten_bounds_lp(net, box, interval_bounds(other, box))
    with pytest.raises(InvalidOptionsError, match="time_limit"):
        tighten_bounds_lp(net, box, interval_bounds(net, box), time_limit=-1.0)


@pytest.mark.parametrize("seed", range(12))
def test_forward_push_is_rigorous_for_the_exact_network(seed: int) -> None:
    """Large pre-activations on a point box: the tightened bounds of every layer contain the
    exact (rational) values, with no tolerance (the push-forward is outward-rounded)."""
    rng = np.random.default_rng(seed)
    sizes = [2, 3, 3, 3, 2]
    layers: list[object] = []
    for n_in, n_out in itertools.pairwise(sizes):
        W = rng.normal(size=(n_out, n_in))
        layers += [Dense(W, 1e6 + rng.normal(size=n_out)), ReLU()]
    net = Network(tuple(layers[:-1]), input_shape=(2,))  # type: ignore[arg-type]
    x = rng.normal(size=2) * 1e3
    box = Box(x, x)
    lp = tighten_bounds_lp(net, box, interval_bounds(net, box))
    for z, iv in zip(exact_pre_activations(net, x), lp.pre_activation):
        assert_enclosed(z, iv.lower, iv.upper, exact=True, what="lp")
