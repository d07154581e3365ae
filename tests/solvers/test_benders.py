"""Benders decomposition: exactness with an exact master (oracle 18), cut validity (20),
Magnanti–Wong (21), elastic soundness (19), heuristic masters never certify (17)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import activations, networks

from nncert.formulations.benders import split_milp
from nncert.formulations.milp import MilpProblem, encode_milp
from nncert.formulations.qubo import QuboMasterOptions
from nncert.solvers.base import SolveResult, SolveStatus
from nncert.solvers.benders import BendersOptions, BendersSolver, benders_result
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.bounds import crown_bounds, spec_bounds
from nncert.verify.network import HardTanh, Network, ReLU
from nncert.verify.spec import Box, Property, UnsafeCase

HIGHS = HighsSolver(mip_rel_gap=0.0)


def _case(net: Network, rows: int = 1) -> UnsafeCase:
    rng = np.random.default_rng(net.n_inputs * 7 + net.n_outputs)
    A = rng.normal(size=(rows, net.n_outputs))
    return UnsafeCase(Box(-np.ones(net.n_inputs), np.ones(net.n_inputs)), A, np.zeros(rows))


def _setup(net: Network, case: UnsafeCase) -> tuple[MilpProblem, float, tuple[float, float], Any]:
    p = encode_milp(net, case, crown_bounds(net, case.input_box))
    opt = HIGHS.solve(p)
    assert opt.status is SolveStatus.OPTIMAL and opt.objective is not None
    lo, hi = spec_bounds(net, case.input_box, case.A, -case.b)

    def evaluate(x: np.ndarray) -> float:
        return float(case.violation(net.forward(x.reshape(1, -1)))[0])

    return p, float(opt.objective), (float(np.max(lo)), float(np.max(hi))), evaluate


#: how far HiGHS's reported MILP optimum may sit from m* (its feasibility tolerances on rows
#: with coefficients in the thousands move the objective by about 1e-6; the same tolerance as
#: the final bound and objective are compared with)
OPT_TOL = 1e-5


def _check_log(run: Any, opt: float) -> None:
    lbs = [it.lower_bound for it in run.iterations if it.lower_bound is not None]
    assert np.all(np.diff(lbs) >= 0.0)  # LB non-decreasing
    for it in run.iterations:
        if it.lower_bound is not None:
            assert it.lower_bound <= opt + OPT_TOL  # LB <= m*
        assert it.upper_bound >= opt - OPT_TOL  # UB >= m*


small_nets = networks(
    activation=activations([ReLU, HardTanh]), max_depth=2, max_width=4, max_inputs=3, max_outputs=3
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=small_nets, rows=st.integers(1, 2))
def test_exact_master_reaches_milp_optimum(net: Network, rows: int) -> None:
    """Oracle 18 on random ReLU/hardtanh networks, MILP master."""
    case = _case(net, rows)
    p, opt, eta, evaluate = _setup(net, case)
    solver = BendersSolver(HIGHS, HighsSolver(), BendersOptions(max_iterations=400))
    res = solver.solve(p, eta_bounds=eta, evaluate=evaluate)
    run = res.info["benders"]
    assert run.status == "optimal", run.status
    assert res.bound == pytest.approx(opt, abs=1e-5)
    assert res.objective == pytest.approx(opt, abs=1e-5)
    assert run.master_exact and run.lower_bound_source == "master"
    _check_log(run, opt)
    # oracle 20: every cut is valid: L_k(delta) <= Q(delta) on random binaries
    rng = np.random.default_rng(0)
    split = split_milp(p)
    for _ in range(4):
        d = rng.integers(0, 2, split.n_delta)
        cl, cu = np.array(p.col_lower), np.array(p.col_upper)
        cl[split.delta_cols] = cu[split.delta_cols] = d
        q = HIGHS.solve(
            MilpProblem.from_arrays(
                p.c, p.A, p.row_lower, p.row_upper, cl, cu, None, offset=p.offset
            )
        )
        if q.status is SolveStatus.OPTIMAL and q.objective is not None:
            cuts = run.cut_alpha + run.cut_beta @ d
            assert np.all(cuts <= q.objective + 1e-6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=small_nets, rows=st.integers(1, 2))
def test_exact_qubo_master_reaches_milp_optimum(net: Network, rows: int) -> None:
    """Oracle 18 with the QUBO master solved exactly (no final MILP master): the upper bound is
    the MILP optimum and the lower bound, sound at every iteration, is within the QUBO's
    resolution of it."""
    from nncert.solvers.dimod_solver import ExactQuboSolver

    case = _case(net, rows)
    p, opt, eta, evaluate = _setup(net, case)
    opts = BendersOptions(
        max_iterations=200, qubo=QuboMasterOptions(eta_bits=8), final_exact_master=False
    )
    res = BendersSolver(ExactQuboSolver(), HighsSolver(), opts).solve(
        p, eta_bounds=eta, evaluate=evaluate
    )
    run = res.info["benders"]
    assert run.status == "optimal", run.status
    assert run.master_exact and run.lower_bound_source == "master"
    assert run.upper_bound == pytest.approx(opt, abs=1e-5)
    assert run.lower_bound is not None and run.lower_bound <= opt + OPT_TOL
    assert opt - run.lower_bound <= 1e-4 * (1.0 + abs(eta[0]) + abs(eta[1]))
    _check_log(run, opt)


def _fixed_nets() -> list[Network]:
    from nncert.verify.network import Dense

    rng = np.random.default_rng(5)
    nets = []
    for act in (ReLU(), HardTanh(), ReLU()):
        sizes = [3, 5, 4, 3]
        layers: list[Any] = []
        for a, b in itertools.pairwise(sizes):
            layers += [Dense(rng.normal(size=(b, a)), 0.5 * rng.normal(size=b)), act]
        nets.append(Network(tuple(layers[:-1]), input_shape=(3,)))
    return nets


@pytest.mark.parametrize("k", range(3))
def test_exact_master_deeper_networks_and_magnanti_wong_off(k: int) -> None:
    net = _fixed_nets()[k]
    case = _case(net, 1 + k % 2)
    p, opt, eta, evaluate = _setup(net, case)
    for mw in (True, False):
        solver = BendersSolver(
            HIGHS, HighsSolver(), BendersOptions(max_iterations=400 if mw else 60, magnanti_wong=mw)
        )
        res = solver.solve(p, eta_bounds=eta, evaluate=evaluate)
        if mw:  # without MW cuts big-M Benders may need many more iterations (9.9)
            assert res.status is SolveStatus.OPTIMAL
        if res.status is SolveStatus.OPTIMAL:
            assert res.bound == pytest.approx(opt, abs=1e-5)
        assert res.bound is not None and res.bound <= opt + OPT_TOL
        _check_log(res.info["benders"], opt)


def test_magnanti_wong_cut_not_weaker_at_core() -> None:
    """Oracle 21."""
    net = _fixed_nets()[0]
    p, _, _, _ = _setup(net, _case(net))
    split = split_milp(p)
    rng = np.random.default_rng(1)
    sub = HighsSolver()
    for _ in range(5):
        d = rng.integers(0, 2, split.n_delta)
        core = rng.uniform(0.1, 0.9, split.n_delta)
        r1 = sub.solve(split.subproblem(d, 100.0))
        r2 = sub.solve(split.subproblem(core, 100.0))
        a1, b1 = split.cut(r1.duals, 100.0)
        a2, b2 = split.cut(r2.duals, 100.0)
        assert a2 + b2 @ core >= a1 + b1 @ core - 1e-7
        # the standard cut is tight at its own delta (strong duality)
        assert a1 + b1 @ d == pytest.approx(r1.objective, abs=1e-6)


def test_small_elastic_penalty_is_still_sound() -> None:
    """Oracle 19: M = 0.05 may converge below m*, never above."""
    net = _fixed_nets()[1]
    p, opt, eta, evaluate = _setup(net, _case(net))
    opts = BendersOptions(max_iterations=300, elastic_M=0.05, elastic_M_max=0.05)
    res = BendersSolver(HIGHS, HighsSolver(), opts).solve(p, eta_bounds=eta, evaluate=evaluate)
    assert res.bound is not None and res.bound <= opt + 1e-6
    _check_log(res.info["benders"], opt)


class RandomMaster:
    """A deliberately bad QUBO master: random bits, no claims."""

    problem_kind = "qubo"
    exact = False
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def solve(self, problem: Any, /, *, time_limit: float | None = None) -> SolveResult:
        x = self.rng.integers(0, 2, problem.num_variables).astype(float)
        return SolveResult(SolveStatus.FEASIBLE, problem.energy(x), None, x, solver=self.name)


def test_bad_master_never_certifies() -> None:
    """Oracle 17: without an exact master there is no bound, hence no VERIFIED."""
    for k, net in enumerate(_fixed_nets()):
        case = _case(net)
        p, opt, eta, evaluate = _setup(net, case)
        opts = BendersOptions(max_iterations=15, final_exact_master=False, cut_window=4)
        res = BendersSolver(RandomMaster(k), HighsSolver(), opts).solve(
            p, eta_bounds=eta, evaluate=evaluate, bound_target=-1e9
        )
        run = res.info["benders"]
        assert res.bound is None and run.lower_bound is None and not run.master_exact
        assert all(it.lower_bound is None for it in run.iterations)
        assert res.objective is None or res.objective >= opt - 1e-6
        # with the final master solved exactly, the bound is sound
        opts2 = BendersOptions(max_iterations=10, cut_window=4)
        res2 = BendersSolver(RandomMaster(k), HighsSolver(), opts2).solve(
            p, eta_bounds=eta, evaluate=evaluate
        )
        assert res2.info["master_exact"] and res2.bound is not None and res2.bound <= opt + 1e-6


def test_periodic_exact_master_steers_a_bad_master_to_the_optimum() -> None:
    """With ``exact_check_every`` the random master's run still converges: the exact master's
    minimiser becomes the next delta, and the bound (periodic or final exact) is sound."""
    for k, net in enumerate(_fixed_nets()):
        case = _case(net)
        p, opt, eta, evaluate = _setup(net, case)
        opts = BendersOptions(
            max_iterations=200, cut_window=4, exact_check_every=2, final_exact_master=False
        )
        res = BendersSolver(RandomMaster(k), HighsSolver(), opts).solve(
            p, eta_bounds=eta, evaluate=evaluate
        )
        run = res.info["benders"]
        assert run.lower_bound_source == "periodic_exact_master"
        assert run.lower_bound is not None and run.lower_bound <= opt + 1e-6
        assert run.status == "optimal" and run.upper_bound == pytest.approx(opt, abs=1e-5)


class _TimedOutMaster:
    """A master whose solve runs out of time without an incumbent (a fault that a real solver
    shows only under load)."""

    name = "timed-out"
    exact = True
    problem_kind = "milp"

    def solve(self, problem: Any, /, *, time_limit: float | None = None) -> SolveResult:
        return SolveResult(SolveStatus.TIME_LIMIT, None, None, None, solver=self.name)


def test_master_time_limit_is_a_timeout_not_an_error() -> None:
    net = _fixed_nets()[0]
    p, opt, eta, evaluate = _setup(net, _case(net))
    res = BendersSolver(_TimedOutMaster(), HighsSolver(), BendersOptions()).solve(
        p, eta_bounds=eta, evaluate=evaluate
    )
    run = res.info["benders"]
    assert run.status == "time_limit" and run.message == ""
    assert res.status is SolveStatus.TIME_LIMIT
    assert res.bound is None or res.bound <= opt + 1e-6  # the final exact master's, if any


def test_bad_master_through_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    from nncert.solvers import benders_method
    from nncert.solvers.registry import SolverSpec, register_solver, unregister_solver
    from nncert.verify.pipeline import verify

    monkeypatch.setattr(benders_method, "make_master", _random_or_highs)
    # solver names are checked against the registry: register "random" like a plug-in would
    register_solver(SolverSpec("random", "test_benders:RandomMaster", problem="qubo", exact=False))
    net = _fixed_nets()[0]
    case = UnsafeCase(Box(-np.ones(3), np.ones(3)), np.array([[1.0, -1.0, 0.0]]), [-50.0])
    try:
        res = verify(net, Property((case,)), method="benders", solver="random", attack=False)
    finally:
        unregister_solver("random")
    assert res.verdict.value != "verified" or res.method == "crown"


def _random_or_highs(name: str, **kwargs: Any) -> Any:
    if name == "random":
        return RandomMaster()
    return HighsSolver(mip_rel_gap=0.0)


def _tiny_net() -> Network:
    from nncert.verify.network import Dense

    W1 = np.array([[1.0, -0.5], [0.3, 1.0], [-1.0, -0.7]])
    W2 = np.array([[1.0, -1.0, 0.5], [-0.4, 0.8, 1.0]])
    return Network(
        (Dense(W1, np.array([0.1, -0.2, 0.05])), ReLU(), Dense(W2, np.zeros(2))),
        input_shape=(2,),
    )


@pytest.mark.parametrize("master_name", ["exact", "exact-linearised", "exact-structured", "sa"])
def test_qubo_masters(master_name: str) -> None:
    from nncert.solvers.dimod_solver import ExactQuboSolver, exact, simulated_annealing

    net = _fixed_nets()[0] if master_name == "sa" else _tiny_net()
    case = _case(net)
    p, opt, eta, evaluate = _setup(net, case)
    assert master_name == "sa" or p.n_integer <= 4
    masters = {
        "exact": exact,
        # the McCormick-linearised MILP path that exact-qubo uses for unstructured QUBOs
        "exact-linearised": lambda: ExactQuboSolver(enumerate_up_to=0, structured=False),
        # the structured branch and bound it uses for master QUBOs
        "exact-structured": lambda: ExactQuboSolver(enumerate_up_to=0),
        "sa": lambda: simulated_annealing(num_reads=30, seed=0),
    }
    master = masters[master_name]()
    opts = BendersOptions(
        max_iterations=12 if master_name == "sa" else 6,
        cut_window=3 if master_name == "sa" else 1,
        qubo=QuboMasterOptions(eta_bits=4),
        audit_master=True,
        max_stall=50,
    )
    res = BendersSolver(master, HighsSolver(), opts).solve(p, eta_bounds=eta, evaluate=evaluate)
    run = res.info["benders"]
    _check_log(run, opt)
    assert run.spins > 0
    if master_name == "sa":
        assert all(
            it.master_bound is None and it.master_optimum is not None for it in run.iterations
        )
    else:  # the exactly solved QUBO gives resolution-corrected sound bounds every iteration
        assert run.iterations and all(it.master_bound is not None for it in run.iterations)
        assert all(it.master_bound <= opt + 1e-6 for it in run.iterations)
    if res.bound is not None:
        assert run.master_exact and res.bound <= opt + 1e-6


def test_benders_result_and_spin_budget() -> None:
    from nncert.solvers.dimod_solver import simulated_annealing

    net = _fixed_nets()[0]
    p, _, eta, _ = _setup(net, _case(net))
    opts = BendersOptions(max_iterations=3, max_master_variables=5, final_exact_master=False)
    res = BendersSolver(simulated_annealing(num_reads=5), HighsSolver(), opts).solve(
        p, eta_bounds=eta
    )
    assert res.info["benders"].status == "spin_budget" and res.bound is None
    assert benders_result(res.info["benders"]).status is SolveStatus.ERROR


@pytest.mark.parametrize("solver", ["highs", "sa", "exact"])
def test_pipeline_agrees_with_milp(solver: str) -> None:
    from nncert.solvers.benders_method import benders_case
    from nncert.verify.options import VerifyOptions
    from nncert.verify.pipeline import CaseContext, verify

    for _k, net in enumerate(_fixed_nets()[:2]):
        box = Box(-np.ones(3), np.ones(3))
        prop = Property(
            tuple(
                UnsafeCase(box, row.reshape(1, -1), [b])
                for row, b in zip(np.eye(3)[:2] - np.eye(3)[2], (-1.0, 1.0))
            )
        )
        ref = verify(net, prop, method="milp", attack=False)
        got = verify(net, prop, method="benders", solver=solver, attack=False, time_limit=60)
        if got.verdict.value != "unknown":
            assert got.verdict == ref.verdict
        if solver in ("highs", "exact"):  # exact masters reach the MILP verdict
            assert got.verdict == ref.verdict
        # the plug-in directly (no CROWN shortcut): stats and soundness
        opts = VerifyOptions(solver=solver, spin_budget=128, num_reads=20)
        for i, case in enumerate(prop.cases):
            ctx = CaseContext(opts, None, np.random.default_rng(0), None, i, None)
            out = benders_case(net, case, ctx)
            for key in ("spins", "iterations", "master_solver"):
                assert key in out.stats
            _p, opt, _, _ = _setup(net, case)
            if out.status == "verified":
                assert out.exact and opt > 0
            if out.lower_bound is not None:
                assert out.lower_bound <= opt + 1e-6
            if solver in ("highs", "exact") and not math.isclose(opt, 0.0, abs_tol=1e-6):
                assert out.status == ("verified" if opt > 0 else "falsified")
