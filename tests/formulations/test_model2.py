"""Model 2 (FORMULATIONS.md section 7): soundness, nested monotonicity, a-priori gap,
relation to interval arithmetic, hardtanh cross-check, and the refinement loop."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from nets import seeded_network

from nncert.formulations.milp import encode_milp
from nncert.formulations.model2 import (
    LayerPartition,
    _constant_value,
    a_priori_gap,
    band_lines,
    encode_model2,
    initial_partition,
    model2_point,
    reduce_problem,
    refine_all,
)
from nncert.solvers.model2_method import refine_case
from nncert.solvers.registry import get_solver
from nncert.verify.bounds import crown_bounds, interval_bounds, spec_bounds
from nncert.verify.errors import InvalidOptionsError, InvalidPropertyError
from nncert.verify.network import HardTanh, LeakyReLU, Network, ReLU, Sigmoid, Tanh
from nncert.verify.pipeline import verify
from nncert.verify.spec import Box, Property, UnsafeCase

SOLVER = get_solver("highs", mip_rel_gap=1e-9)


def _net(seed: int, sizes: list[int], acts: list[object], scale: float = 2.0) -> Network:
    return seeded_network(seed, sizes, acts, scale)


def _case(n_in: int, n_out: int, rows: int = 1) -> UnsafeCase:
    A = np.zeros((rows, n_out))
    for r in range(rows):
        A[r, 0], A[r, 1 + r % (n_out - 1)] = 1.0, -1.0
    return UnsafeCase(Box(-np.ones(n_in), np.ones(n_in)), A, np.zeros(rows))


def _sampled_min(net: Network, case: UnsafeCase, n: int = 20000, seed: int = 0) -> float:
    xs = case.input_box.sample(n, np.random.default_rng(seed))
    box = case.input_box
    grid = np.meshgrid(*[[lo, hi] for lo, hi in zip(box.lower, box.upper)])
    corners = np.array(grid).reshape(box.dim, -1).T
    return float(case.violation(net.forward(np.vstack([xs, corners]))).min())


def _bound(m2: object) -> float:
    res = SOLVER.solve(m2.problem)  # type: ignore[attr-defined]
    assert res.status.value == "optimal"
    return float(res.bound)


@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=["sigmoid", "tanh"])
@pytest.mark.parametrize("seed", [0, 1])
def test_sound_every_k_band_placement(act: object, seed: int) -> None:
    net = _net(seed, [2, 4, 4, 3], [act, act])
    case = _case(2, 3, rows=2)
    smin = _sampled_min(net, case)
    bounds = crown_bounds(net, case.input_box)
    for band in ("pwl", "pwc"):
        for placement in ("uniform", "value", "adaptive"):
            for K in (1, 3):
                m2 = encode_model2(net, case, bounds, segments=K, band=band, placement=placement)
                assert _bound(m2) <= smin + 1e-6, (band, placement, K)


@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=["sigmoid", "tanh"])
def test_true_execution_is_feasible(act: object) -> None:
    net = _net(3, [2, 5, 4, 2], [act, ReLU()])
    case = _case(2, 2)
    m2 = encode_model2(net, case, crown_bounds(net, case.input_box), segments=4)
    for x in case.input_box.sample(50, np.random.default_rng(1)):
        v = model2_point(m2, x)
        assert m2.problem.max_violation(v) <= 1e-9
        assert m2.problem.objective_value(v) == pytest.approx(
            case.violation(net.forward(x)[None])[0], abs=1e-9
        )


@pytest.mark.parametrize("band", ["pwl", "pwc"])
@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=["sigmoid", "tanh"])
def test_nested_refinement_never_loosens(band: str, act: object) -> None:
    net = _net(5, [2, 3, 3, 2], [act, act])
    case = _case(2, 2)
    bounds = crown_bounds(net, case.input_box)
    m2 = encode_model2(net, case, bounds, segments=1, band=band)  # type: ignore[arg-type]
    prev = -np.inf
    smin = _sampled_min(net, case)
    for K in (1, 2, 4, 8):
        value = _bound(m2)
        assert value >= prev - 1e-7, K
        assert value <= smin + 1e-6
        assert m2.segments_per_layer == (K, K) or K > 1
        prev = value
        m2 = encode_model2(net, case, bounds, refine_all(m2.partition), band=band)  # type: ignore[arg-type]


@pytest.mark.parametrize("band", ["pwl", "pwc"])
@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=["sigmoid", "tanh"])
def test_a_priori_gap_one_hidden_layer(band: str, act: object) -> None:
    """Oracle 13: m* - m_K <= sum_i |c_i| omega_i (1-d input: a fine grid gives m*)."""
    net = _net(7, [1, 6, 2], [act], scale=3.0)
    case = UnsafeCase(Box([-1.0], [1.0]), [[1.0, -1.0]], [0.0])
    grid = np.linspace(-1.0, 1.0, 200001)[:, None]
    m_star = float(case.violation(net.forward(grid)).min())
    bounds = interval_bounds(net, case.input_box)
    for K in (1, 2, 4, 8):
        m2 = encode_model2(net, case, bounds, segments=K, band=band, placement="uniform")  # type: ignore[arg-type]
        mk = _bound(m2)
        gap = a_priori_gap(m2, case)
        assert mk <= m_star + 1e-6
        assert m_star - mk <= gap + 1e-5, (K, m_star - mk, gap)
        if band == "pwc":  # omega_i = sigma(t_k) - sigma(t_{k-1}), the paper's form
            c = np.abs((case.A @ net.dense_layers[-1].weight)[0])
            iv = bounds.pre_activation[0]
            part = initial_partition(act, iv.lower, iv.upper, K, placement="uniform", min_width=0.0)  # type: ignore[arg-type]
            f = act.__class__
            rise = np.zeros(6)
            lo = band_lines(f(), part.lo, part.hi, "pwc")[4]
            hi = band_lines(f(), part.lo, part.hi, "pwc")[5]
            np.maximum.at(rise, part.neuron, hi - lo)
            assert m_star - mk <= float(c @ rise) + 1e-5


@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=["sigmoid", "tanh"])
def test_k1_equals_interval_arithmetic(act: object) -> None:
    """Oracle 15: K = 1 constant bands over IA bounds give the IA bound with the merged last
    layer; the piecewise-linear K = 1 band is never looser."""
    for sizes in ([2, 4, 2], [2, 4, 3, 2]):
        net = _net(11, sizes, [act, act])
        case = _case(2, 2)
        ib = interval_bounds(net, case.input_box)
        ia = float(spec_bounds(net, case.input_box, case.A, -case.b, method="ibp")[0][0])
        pwc = _bound(encode_model2(net, case, ib, segments=1, band="pwc"))
        pwl = _bound(encode_model2(net, case, ib, segments=1, band="pwl"))
        assert pwc == pytest.approx(ia, abs=1e-6)
        assert pwl >= pwc - 1e-7


def test_hardtanh_model2_below_model1_and_converges() -> None:
    """Oracle 16: bands on hardtanh (kinks as breakpoints) bound Model 1 from below; constant
    bands converge to it, linear bands are exact."""
    net = _net(13, [2, 4, 4, 2], [HardTanh(), HardTanh()], scale=1.5)
    case = _case(2, 2)
    bounds = crown_bounds(net, case.input_box)
    exact = float(SOLVER.solve(encode_milp(net, case, bounds)).objective)
    pwl = _bound(encode_model2(net, case, bounds, segments=2, band="pwl", banded=(HardTanh,)))
    assert pwl == pytest.approx(exact, abs=1e-6)
    m2 = encode_model2(
        net, case, bounds, segments=1, band="pwc", banded=(HardTanh,), placement="uniform"
    )
    gaps = []
    for _ in range(4):
        value = _bound(m2)
        assert value <= exact + 1e-6
        gaps.append(exact - value)
        m2 = encode_model2(
            net, case, bounds, refine_all(m2.partition), band="pwc", banded=(HardTanh,)
        )
    assert all(b <= a + 1e-7 for a, b in itertools.pairwise(gaps))
    # one hidden layer: the a-priori bound forces convergence (gap <= sum |c_i| omega_i)
    net1 = _net(13, [2, 4, 2], [HardTanh()], scale=1.5)
    b1 = crown_bounds(net1, case.input_box)
    exact1 = float(SOLVER.solve(encode_milp(net1, case, b1)).objective)
    for K in (2, 8, 32):
        m2 = encode_model2(
            net1, case, b1, segments=K, band="pwc", banded=(HardTanh,), placement="uniform"
        )
        value = _bound(m2)
        assert value <= exact1 + 1e-6
        assert exact1 - value <= a_priori_gap(m2, case) + 1e-6


def test_relu_only_equals_model1_and_mixed_is_sound() -> None:
    net = _net(17, [2, 5, 5, 2], [ReLU(), ReLU()])
    case = _case(2, 2)
    b = crown_bounds(net, case.input_box)
    assert _bound(encode_model2(net, case, b)) == pytest.approx(
        float(SOLVER.solve(encode_milp(net, case, b)).objective), abs=1e-6
    )
    mixed = _net(19, [2, 5, 5, 3, 2], [ReLU(), Sigmoid(), ReLU()])
    mb = crown_bounds(mixed, case.input_box)
    assert _bound(encode_model2(mixed, case, mb, segments=3)) <= _sampled_min(mixed, case) + 1e-6


def test_reduction_folds_fixed_inputs_and_dead_neurons() -> None:
    net = _net(23, [4, 6, 5, 2], [ReLU(), Sigmoid()])
    box = Box([-1.0, 0.3, -0.5, 0.0], [1.0, 0.3, 0.5, 0.0])
    case = UnsafeCase(box, [[1.0, -1.0]], [0.0])
    red = reduce_problem(net, case, crown_bounds(net, box))
    assert red.network.n_inputs == 2
    xs = red.case.input_box.sample(100, np.random.default_rng(0))
    full = np.array([red.lift(x) for x in xs])
    np.testing.assert_allclose(red.network.forward(xs), net.forward(full), atol=1e-12)


@pytest.mark.parametrize(
    ("act", "mask", "values"),
    [
        (ReLU(), [1, 1, 1, 0, 0], [0.0, 0.0, 1.5]),
        (LeakyReLU(0.1), [0, 1, 1, 0, 0], [None, 0.0, 1.5]),
        (LeakyReLU(0.0), [1, 1, 1, 0, 0], [0.0, 0.0, 1.5]),
        (HardTanh(-1.0, 2.0), [1, 1, 1, 0, 1], [-1.0, 0.0, 1.5, None, 2.0]),
        (Sigmoid(), [0, 1, 1, 0, 0], [None, 0.5, 1.0 / (1.0 + np.exp(-1.5))]),
    ],
    ids=["relu", "leaky", "leaky0", "hardtanh", "sigmoid"],
)
def test_constant_neurons_come_from_the_rules(
    act: object, mask: list[int], values: list[float | None]
) -> None:
    """A neuron is folded away where its activation is flat on ``[l, u]`` (the rule's
    ``affine_on`` with slope 0) or ``l = u``, for every activation alike (a leaky ReLU on the
    point 0 included), with the exact constant."""
    l = np.array([-2.0, 0.0, 1.5, -1.0, 3.0])
    u = np.array([-1.0, 0.0, 1.5, 1.0, 4.0])
    const, val = _constant_value(act, l, u)  # type: ignore[arg-type]
    assert const.tolist() == [bool(m) for m in mask]
    for i, v in enumerate(values):
        if v is not None:
            assert val[i] == v


def test_partition_validation_and_split() -> None:
    p = LayerPartition.single([0.0, -1.0], [1.0, 1.0])
    q = p.split([0, 1, 1], [0.5, 0.0, 0.2])
    assert q.counts.tolist() == [2, 2]
    assert q.split([0], [5.0]) is q  # outside the segment: unchanged
    with pytest.raises(InvalidOptionsError):
        LayerPartition(np.array([0, 0]), np.array([0.0, 0.6]), np.array([0.5, 1.0]), 1)
    with pytest.raises(InvalidPropertyError):
        q.clip([-1.0, -2.0], [1.0, 1.0])


@pytest.mark.parametrize("act", [Sigmoid(), Tanh()], ids=["sigmoid", "tanh"])
def test_refinement_loop_decides_consistently(act: object) -> None:
    net = _net(29, [2, 4, 4, 2], [act, act], scale=1.5)
    rng = np.random.default_rng(0)
    for shift in (-3.0, 0.0, 3.0):
        case = UnsafeCase(Box(-np.ones(2) * 0.3, np.ones(2) * 0.3), [[1.0, -1.0]], [shift])
        smin = _sampled_min(net, case)
        out = refine_case(net, case, SOLVER, segments=2, rng=rng, max_iterations=30)
        assert out.status in ("verified", "falsified"), out.stats
        if out.status == "verified":
            assert out.lower_bound is not None and 0 < out.lower_bound <= smin + 1e-6
        else:
            assert out.best_x is not None
            assert case.violation(net.forward(out.best_x)[None])[0] <= 0.0
        assert {"segments_per_layer", "gap", "iterations", "spins"} <= set(out.stats)


@pytest.mark.parametrize("cap", [1, 3])
def test_refinement_step_cap(cap: int) -> None:
    """``max_splits`` bounds the segments added per refinement step, and the loop still
    decides the same way as uncapped refinement (which splits ~11 segments per step here)."""
    net = _net(3, [2, 6, 6, 2], [Tanh(), Tanh()], scale=2.0)
    box = Box(-np.ones(2) * 0.5, np.ones(2) * 0.5)
    smin = _sampled_min(net, UnsafeCase(box, [[1.0, -1.0]], [0.0]))  # min of f0 - f1
    # unsafe iff f0 - f1 <= b: margin 1.9 is verified, -0.5 falsified
    for margin in (1.9, -0.5):
        case = UnsafeCase(box, [[1.0, -1.0]], [smin - margin])
        free = refine_case(net, case, SOLVER, segments=1, max_iterations=400, max_splits=None)
        out = refine_case(net, case, SOLVER, segments=1, max_iterations=400, max_splits=cap)
        assert out.status == free.status == ("verified" if margin > 0 else "falsified")
        assert np.all(np.diff(out.stats["segments_history"]) <= cap)
        if margin == 1.9:
            assert max(np.diff(free.stats["segments_history"])) > cap


def test_pipeline_method_model2() -> None:
    net = _net(31, [2, 4, 3], [Sigmoid()], scale=1.0)
    box = Box([-0.2, -0.2], [0.2, 0.2])
    y = net.forward(np.zeros(2))
    label = int(np.argmax(y))
    cases = tuple(
        UnsafeCase(box, np.eye(3)[[label]] - np.eye(3)[[j]], np.zeros(1))
        for j in range(3)
        if j != label
    )
    res = verify(net, Property(cases), method="model2", time_limit=30, attack=False)
    smin = min(_sampled_min(net, c) for c in cases)
    assert (res.verdict.value == "verified") == (smin > 0) or res.verdict.value == "unknown"
