"""ReLU-phase branch and bound (:mod:`nncert.verify.relu_bab`) against the exact MILP.

On random tiny ReLU networks the verdict must agree with Model 1's optimum (never "verified"
when the optimum is ``<= 0``), witnesses must be real, and each subdomain's bounds must hold
for every sampled input that satisfies the subdomain's phases.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import nncert.verify.relu_bab as rb
from nncert.formulations.milp import encode_milp
from nncert.solvers.base import SolveStatus
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.attack import AttackResult
from nncert.verify.bounds import interval_bounds
from nncert.verify.network import Dense, Network, ReLU, Sigmoid
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import CaseContext, verify
from nncert.verify.registry import get_method
from nncert.verify.spec import Box, UnsafeCase, robustness_property

SOLVER = HighsSolver(mip_rel_gap=0.0)


def _net(rng: np.random.Generator, widths: list[int]) -> Network:
    layers: list[object] = []
    for i in range(len(widths) - 1):
        if i:
            layers.append(ReLU())
        w = rng.normal(size=(widths[i + 1], widths[i])) / np.sqrt(widths[i])
        layers.append(Dense(w, rng.normal(scale=0.3, size=widths[i + 1])))
    return Network(tuple(layers), input_shape=(widths[0],))  # type: ignore[arg-type]


def _ctx(seconds: float = 10.0, seed: int = 0) -> CaseContext:
    return CaseContext(
        options=VerifyOptions(),
        deadline=time.perf_counter() + seconds,
        rng=np.random.default_rng(seed),
        progress=None,
        case_index=0,
        best_x=None,
    )


def _milp_min(net: Network, case: UnsafeCase) -> float:
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    res = SOLVER.solve(problem)
    assert res.status is SolveStatus.OPTIMAL and res.objective is not None
    return float(res.objective)


def _cases(rng: np.random.Generator, net: Network) -> list[UnsafeCase]:
    x0 = rng.uniform(-1, 1, size=net.n_inputs)
    eps = float(rng.choice([0.05, 0.15, 0.4]))
    label = int(np.argmax(net.forward(x0[None])[0]))
    prop = robustness_property(x0, eps, label, net.n_outputs, domain=None)
    cases = list(prop.cases)
    # one conjunction with two rows (label beats neither of two targets), shifted threshold
    a = np.zeros((2, net.n_outputs))
    a[0, label], a[0, (label + 1) % net.n_outputs] = 1.0, -1.0
    a[1, label], a[1, (label + 2) % net.n_outputs] = 1.0, -1.0
    cases.append(UnsafeCase(prop.cases[0].input_box, a, rng.normal(scale=0.2, size=2)))
    return cases


@pytest.fixture
def no_attack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Disable the root attack so branch and bound itself has to decide."""

    def fake(network: Network, case: UnsafeCase, **_: object) -> AttackResult:
        x = case.input_box.center
        return AttackResult(x, np.inf, 0)

    monkeypatch.setattr(rb, "pgd_attack", fake)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("attack", [True, False])
def test_agrees_with_milp(seed: int, attack: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not attack:
        monkeypatch.setattr(
            rb,
            "pgd_attack",
            lambda network, case, **_: AttackResult(case.input_box.center, np.inf, 0),
        )
    rng = np.random.default_rng(seed)
    net = _net(rng, [6, 8, 7, 4])
    for case in _cases(rng, net):
        opt = _milp_min(net, case)
        res = rb.relu_bab_case(net, case, _ctx(seed=seed))
        assert res.status in ("verified", "falsified", "unknown"), res
        if res.status == "verified":
            assert res.exact
            assert opt > 0.0, (opt, res)
            assert res.lower_bound is not None and res.lower_bound <= opt + 1e-6
        elif res.status == "falsified":
            assert res.x is not None
            assert case.input_box.contains(res.x)
            assert case.violation(net.forward(res.x[None]))[0] <= 0.0
            assert opt <= 1e-7
        # a clear-cut MILP answer must be matched
        if opt > 1e-4:
            assert res.status == "verified", (opt, res)
        elif opt < -1e-4:
            assert res.status == "falsified", (opt, res)


@pytest.mark.parametrize("seed", range(6))
def test_subdomain_bounds_are_sound(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    net = _net(rng, [6, 8, 8, 6, 3])
    case = _cases(rng, net)[-1]
    bd = rb._Bounder(net, case)
    dense, _ = net.affine_and_activations()
    xs = case.input_box.sample(40, rng)
    for x in xs:
        zs, a = [], x
        for d in dense[:-1]:
            z = d.weight @ a + d.bias
            zs.append(z)
            a = np.maximum(z, 0.0)
        true = float(case.violation(net.forward(x[None]))[0])
        # fix the phases of x on a random subset of neurons
        phases = [
            np.where(rng.random(z.size) < 0.5, np.where(z >= 0, 1, -1), 0).astype(np.int8)
            for z in zs
        ]
        c = dense[0].weight @ case.input_box.center + dense[0].bias
        r = np.abs(dense[0].weight) @ case.input_box.radius
        node = rb._Node(
            phases=phases,
            lower=[c - r] + [np.full(d.n_out, -np.inf) for d in dense[1:-1]],
            upper=[c + r] + [np.full(d.n_out, np.inf) for d in dense[1:-1]],
            depth=0,
        )
        assert rb._evaluate(bd, node, 0), "a domain containing x was declared empty"
        assert node.bound <= true + 1e-9
        for k, z in enumerate(zs):
            assert np.all(node.lower[k] <= z + 1e-9) and np.all(z <= node.upper[k] + 1e-9)
        # and a child split on a neuron, on x's side, still contains x
        if node.split is not None:
            k, i = node.split
            child = rb._Node(
                phases=[p.copy() for p in node.phases],
                lower=list(node.lower),
                upper=list(node.upper),
                depth=1,
            )
            child.phases[k][i] = 1 if zs[k][i] >= 0 else -1
            assert rb._evaluate(bd, child, k)
            assert child.bound <= true + 1e-9


def test_leaf_lp_and_deep_tree(no_attack: None) -> None:
    # narrow enough to split everything: exercises the leaf LP
    rng = np.random.default_rng(7)
    net = _net(rng, [3, 4, 3, 2])
    for _ in range(5):
        x0 = rng.uniform(-1, 1, 3)
        a = np.array([[1.0, -1.0]])
        case = UnsafeCase(Box(x0 - 0.5, x0 + 0.5), a, np.array([rng.normal(scale=0.3)]))
        opt = _milp_min(net, case)
        res = rb.relu_bab_case(net, case, _ctx())
        if opt > 1e-4:
            assert res.status == "verified"
        elif opt < -1e-4:
            assert res.status == "falsified"
        if res.status == "verified":
            assert opt > 0.0


def test_timeout_and_unsupported() -> None:
    rng = np.random.default_rng(3)
    net = _net(rng, [6, 8, 8, 4])
    case = _cases(rng, net)[0]
    ctx = CaseContext(VerifyOptions(), time.perf_counter() - 1.0, rng, None, 0, None)
    res = rb.relu_bab_case(net, case, ctx)
    assert res.status in ("timeout", "falsified")
    sig = Network((Dense(np.eye(2), np.zeros(2)), Sigmoid(), Dense(np.eye(2), np.zeros(2))), (2,))
    case2 = UnsafeCase(Box(np.zeros(2), np.ones(2)), np.array([[1.0, -1.0]]), np.zeros(1))
    assert rb.relu_bab_case(sig, case2, _ctx()).status == "unknown"


def test_pipeline_method() -> None:
    """``relu_bab`` is a registered method: ``verify(..., method="relu_bab")`` runs it."""
    rng = np.random.default_rng(11)
    net = _net(rng, [6, 8, 8, 4])
    x0 = rng.uniform(-1, 1, 6)
    label = int(np.argmax(net.forward(x0[None])[0]))
    prop = robustness_property(x0, 0.05, label, 4, domain=None)
    assert get_method("relu_bab").load() is rb.relu_bab_case
    res = verify(net, prop, method="relu_bab", time_limit=20)
    ref = verify(net, prop, method="milp", time_limit=20)
    assert res.verdict == ref.verdict
