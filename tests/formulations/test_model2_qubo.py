"""Model 2 as a QUBO (FORMULATIONS.md 7.7): spin counts, window restriction, decoding, and the
link to the Model 2 MILP's segment binaries."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nets import seeded_network

from nncert.formulations.model2 import (
    encode_model2,
    model2_point,
    network_partition,
    reduce_problem,
)
from nncert.formulations.model2_qubo import (
    SegmentQuboOptions,
    forward_pre_activations,
    pattern_delta,
    restrict_qubo,
    segment_qubo,
    segment_spins,
)
from nncert.formulations.qubo import QuboProblem, brute_force
from nncert.verify.bounds import crown_bounds
from nncert.verify.errors import InvalidOptionsError
from nncert.verify.network import Network, Sigmoid, Tanh
from nncert.verify.spec import Box, UnsafeCase


def _net(seed: int, sizes: list[int], act: object = Sigmoid(), scale: float = 2.0) -> Network:
    return seeded_network(seed, sizes, [act] * (len(sizes) - 2), scale)


def _case(n_in: int, n_out: int) -> UnsafeCase:
    A = np.zeros((1, n_out))
    A[0, 0], A[0, 1] = 1.0, -1.0
    return UnsafeCase(Box(-np.ones(n_in), np.ones(n_in)), A, np.zeros(1))


def _setup(seed: int = 0, sizes: tuple[int, ...] = (2, 4, 3, 2), K: int = 4, act: object = None):
    net = _net(seed, list(sizes), Sigmoid() if act is None else act)
    case = _case(sizes[0], sizes[-1])
    bounds = crown_bounds(net, case.input_box)
    red = reduce_problem(net, case, bounds)
    _, acts = red.network.affine_and_activations()
    banded = tuple({type(a) for a in acts})
    part = network_partition(red.network, red.bounds, K, banded=banded)
    m2 = encode_model2(red.network, red.case, red.bounds, part, banded=banded)
    return red, m2, banded


@pytest.mark.parametrize("encoding", ["thermometer", "one_hot"])
def test_spin_count_matches_formula(encoding: str) -> None:
    red, m2, _ = _setup(1, (3, 5, 4, 2), K=5)
    sq = segment_qubo(
        red.network, red.case, m2.partition, options=SegmentQuboOptions(encoding=encoding)
    )
    counts = np.concatenate([p.counts for p in m2.partition if p is not None])
    multi = counts[counts >= 2]
    per = multi - 1 if encoding == "thermometer" else multi
    assert sq.num_spins == 3 * 4 + int(per.sum())
    assert sq.num_spins == segment_spins(m2.partition, 3, 4, encoding)  # type: ignore[arg-type]
    assert sq.spins["input"] == 12 and sum(sq.spins.values()) == sq.num_spins
    # one-hot needs one more spin per multi-segment neuron (7.7)
    assert multi.size > 0


def test_thermometer_is_smaller_than_one_hot() -> None:
    red, m2, _ = _setup(2, (2, 6, 2), K=5)
    t = segment_qubo(red.network, red.case, m2.partition)
    o = segment_qubo(
        red.network, red.case, m2.partition, options=SegmentQuboOptions(encoding="one_hot")
    )
    n_multi = sum(int(np.sum(p.counts >= 2)) for p in m2.partition if p is not None)
    assert o.num_spins - t.num_spins == n_multi > 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 9))
def test_restrict_qubo_keeps_energies(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    r, c = np.triu_indices(n, 1)
    q = QuboProblem(rng.normal(size=n), r, c, rng.normal(size=r.size), 0.3, {"x": n})
    free = np.sort(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False))
    state = rng.integers(0, 2, size=n)
    sub = restrict_qubo(q, free, state)
    assert sub.num_variables == free.size
    for _ in range(8):
        y = rng.integers(0, 2, size=free.size)
        full = state.copy()
        full[free] = y
        assert sub.energy(y) == pytest.approx(q.energy(full), abs=1e-9)


def test_encode_decode_round_trip() -> None:
    red, m2, _ = _setup(3)
    sq = segment_qubo(red.network, red.case, m2.partition)
    rng = np.random.default_rng(0)
    box = red.case.input_box
    for x in box.sample(20, rng):
        z = forward_pre_activations(red.network, x)
        bits = sq.encode(x, z)
        assert np.all(np.abs(sq.input_point(bits) - x) <= sq.input_step / 2 + 1e-12)
        segs = sq.segments(bits)
        for part, zk, sk in zip(m2.partition, z, segs):
            assert part is not None
            np.testing.assert_array_equal(sk, part.locate(zk))


def test_pattern_delta_matches_model2_point() -> None:
    red, m2, _ = _setup(4, (2, 5, 2), K=4)
    sq = segment_qubo(red.network, red.case, m2.partition)
    integ = np.flatnonzero(m2.problem.integrality)
    for x in red.case.input_box.sample(10, np.random.default_rng(1)):
        z = forward_pre_activations(red.network, x)
        delta = pattern_delta(m2, sq.segments(sq.encode(x, z)))
        np.testing.assert_array_equal(delta, model2_point(m2, x)[integ])


def test_ground_state_proposes_a_good_input() -> None:
    """On a tiny network the exact ground state of the segment QUBO decodes to an input whose
    real value is close to the true minimum (a proposer, checked against sampling)."""
    net = _net(5, [1, 3, 2], Tanh(), scale=1.5)
    case = _case(1, 2)
    bounds = crown_bounds(net, case.input_box)
    red = reduce_problem(net, case, bounds)
    part = network_partition(red.network, red.bounds, 3, banded=(Tanh,))
    sq = segment_qubo(red.network, red.case, part, options=SegmentQuboOptions(input_bits=5))
    assert sq.num_spins <= 12
    bits, _energy = brute_force(sq.qubo)
    x = red.lift(sq.input_point(bits))
    xs = np.linspace(-1, 1, 2001)[:, None]
    vals = case.violation(net.forward(xs))
    got = float(case.violation(net.forward(x[None]))[0])
    span = float(vals.max() - vals.min())
    assert got <= float(vals.min()) + 0.25 * span


def test_windows_respect_budget_and_groups() -> None:
    red, m2, _ = _setup(6, (3, 6, 5, 2), K=5)
    sq = segment_qubo(red.network, red.case, m2.partition)
    for budget in (4, 7, 12, 30):
        wins = sq.windows(budget)
        assert wins is not None
        assert all(w.size <= budget for w in wins)
        np.testing.assert_array_equal(np.sort(np.concatenate(wins)), np.arange(sq.num_spins))
    assert sq.windows(2) is None  # a 4-bit input cannot be split


def test_bad_options() -> None:
    with pytest.raises(InvalidOptionsError):
        SegmentQuboOptions(encoding="binary")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionsError):
        SegmentQuboOptions(input_bits=0)
    red, m2, _ = _setup(7)
    with pytest.raises(InvalidOptionsError):
        segment_qubo(red.network, red.case, m2.partition, row=3)


def test_one_hot_validity_penalty_prefers_one_hot_states() -> None:
    """Among states that differ only in one neuron's one-hot block, the lowest energy has
    exactly one spin on (the validity penalty dominates)."""
    red, m2, _ = _setup(8, (1, 2, 2), K=3)
    sq = segment_qubo(
        red.network, red.case, m2.partition, options=SegmentQuboOptions(encoding="one_hot")
    )
    groups = sq.groups()[1]
    assert groups
    x = red.case.input_box.center
    base = sq.encode(x, forward_pre_activations(red.network, x)).astype(np.int64)
    g = groups[0]
    best, arg = np.inf, None
    for bits in itertools.product([0, 1], repeat=g.size):
        s = base.copy()
        s[g] = bits
        e = sq.qubo.energy(s)
        if e < best:
            best, arg = e, bits
    assert arg is not None and sum(arg) == 1
