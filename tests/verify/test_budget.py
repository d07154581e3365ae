"""Every stage honours the remaining budget (issue 15, deliverable 3).

No assertion here is about real time: a fake :func:`time.perf_counter` (a clock that the
test advances, or that moves on by a fixed step per call) replaces the module's clock, and
the slow parts (a bound-engine call, a HiGHS solve) advance it by a known amount. The tests
check that a stage does not start a step it cannot finish before the deadline, that the run
then answers timeout/unknown, and that a search cut short never answers "verified".
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nncert.solvers.highs_solver as hs
import nncert.verify.bab as bab
import nncert.verify.pipeline as pl
import nncert.verify.relu_bab as rb
from nncert.formulations.milp import encode_milp
from nncert.solvers.base import SolveResult, SolveStatus
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.attack import AttackResult
from nncert.verify.bounds import interval_bounds
from nncert.verify.cliutil import process_start
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import CaseContext, verify
from nncert.verify.spec import Box, Property, UnsafeCase, robustness_property


class FakeClock:
    """A ``perf_counter`` that moves only when told to (plus ``tick`` per reading)."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now = 1000.0
        self.tick = tick
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        self.now += self.tick
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def module(self) -> types.SimpleNamespace:
        """A stand-in for the ``time`` module of the code under test."""
        return types.SimpleNamespace(perf_counter=self, monotonic=self)


def _net(rng: np.random.Generator, widths: list[int]) -> Network:
    layers: list[object] = []
    for i in range(len(widths) - 1):
        if i:
            layers.append(ReLU())
        w = rng.normal(size=(widths[i + 1], widths[i])) / np.sqrt(widths[i])
        layers.append(Dense(w, rng.normal(scale=0.3, size=widths[i + 1])))
    return Network(tuple(layers), input_shape=(widths[0],))  # type: ignore[arg-type]


def _case(rng: np.random.Generator, net: Network, eps: float) -> UnsafeCase:
    x0 = rng.uniform(-1, 1, size=net.n_inputs)
    label = int(np.argmax(net.forward(x0[None])[0]))
    return robustness_property(x0, eps, label, net.n_outputs, domain=None).cases[0]


def _ctx(deadline: float | None, seed: int = 0) -> CaseContext:
    return CaseContext(VerifyOptions(), deadline, np.random.default_rng(seed), None, 0, None)


def _milp_min(net: Network, case: UnsafeCase) -> float:
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    res = HighsSolver(mip_rel_gap=0.0).solve(problem)
    assert res.status is SolveStatus.OPTIMAL and res.objective is not None
    return float(res.objective)


@pytest.fixture
def no_attack(monkeypatch: pytest.MonkeyPatch) -> None:
    """No root attack: branch and bound itself must decide."""
    monkeypatch.setattr(
        rb, "pgd_attack", lambda network, case, **_: AttackResult(case.input_box.center, np.inf, 0)
    )


def _slow_evaluate(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, seconds: float
) -> list[float]:
    """Make every node evaluation of relu_bab (one node in the earlier search, one round of
    batched nodes in the current one) take ``seconds`` on ``clock``; returns the clock
    readings at which evaluations started."""
    real, real_groups = rb._evaluate, rb._evaluate_groups
    starts: list[float] = []

    def slow(bd: Any, node: Any, start: int) -> bool:
        starts.append(clock.now)
        clock.advance(seconds)
        return real(bd, node, start)

    def slow_groups(bd: Any, groups: Any, *args: Any) -> tuple[list[bool], float]:
        starts.append(clock.now)
        clock.advance(seconds)
        return real_groups(bd, groups, *args)

    monkeypatch.setattr(rb, "_evaluate", slow)
    monkeypatch.setattr(rb, "_evaluate_groups", slow_groups)
    return starts


# --------------------------------------------------------------------------------------------
# relu_bab
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "settings"), [(5, rb.LEGACY), (0, rb.DEFAULT_SETTINGS)])
def test_relu_bab_does_not_start_a_node_it_cannot_finish(
    monkeypatch: pytest.MonkeyPatch, no_attack: None, seed: int, settings: rb.ReluBabSettings
) -> None:
    """Node evaluations (or rounds of batched nodes) of 3 s against a 10 s budget: the search
    answers timeout, the clock still before the deadline. The earlier search stops after the
    third evaluation (the fourth would end at 12 s); the batched one reserves a round's cost
    per node (3 s for the root alone), so after the root and one round of two children (6 s)
    the next round of two would end at 12 s. (The current search falsifies seed 5's case at
    once, so it runs on another case that needs many rounds.)"""
    clock = FakeClock()
    monkeypatch.setattr(rb, "time", clock.module())
    starts = _slow_evaluate(monkeypatch, clock, 3.0)
    rng = np.random.default_rng(seed)
    net = _net(rng, [6, 16, 16, 4])
    case = _case(rng, net, 0.4)  # wide: needs many splits
    deadline = clock.now + 10.0
    res = rb.relu_bab_case(net, case, _ctx(deadline), settings=settings)
    assert res.status in ("timeout", "falsified"), res
    assert res.status == "timeout"
    assert clock.now <= deadline, (clock.now, deadline, starts)
    assert len(starts) == (3 if settings is rb.LEGACY else 2)


def test_relu_bab_timeout_before_the_root(monkeypatch: pytest.MonkeyPatch, no_attack: None) -> None:
    clock = FakeClock()
    monkeypatch.setattr(rb, "time", clock.module())
    starts = _slow_evaluate(monkeypatch, clock, 3.0)
    rng = np.random.default_rng(5)
    net = _net(rng, [6, 16, 16, 4])
    res = rb.relu_bab_case(net, _case(rng, net, 0.4), _ctx(clock.now - 1.0))
    assert res.status == "timeout" and starts == []


def _full_run(net: Network, case: UnsafeCase) -> Any:
    return rb.relu_bab_case(net, case, _ctx(None))


@given(
    seed=st.integers(0, 10_000),
    widths=st.lists(st.integers(2, 7), min_size=1, max_size=3),
    eps=st.sampled_from([0.05, 0.2, 0.5]),
    cut=st.integers(0, 60),
)
def test_relu_bab_sound_against_milp_when_cut_anywhere(
    seed: int, widths: list[int], eps: float, cut: int
) -> None:
    """Random small ReLU networks; the search's clock jumps past the deadline after ``cut``
    readings. Whatever the cut, the verdict never contradicts the exact MILP minimum (HiGHS,
    no gap): "verified" only when the minimum is positive and the search ran to the end (as
    many nodes as the uncut search), "falsified" only with a real counterexample."""
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(2, 5))
    net = _net(rng, [n_in, *widths, 3])
    case = _case(rng, net, eps)
    opt = _milp_min(net, case)
    full = _full_run(net, case)

    clock = FakeClock(tick=1.0)  # one second per reading
    real_time = rb.time
    rb.time = clock.module()  # type: ignore[assignment]  # hypothesis: no monkeypatch fixture
    try:
        res = rb.relu_bab_case(net, case, _ctx(clock.now + cut + 0.5, seed=seed))
    finally:
        rb.time = real_time
    assert res.status in ("verified", "falsified", "unknown", "timeout"), res
    if res.status == "verified":
        assert res.exact and opt > 0.0, (opt, res)
        assert res.stats["nodes"] == full.stats["nodes"], "verified from an unfinished search"
        assert res.lower_bound is not None and res.lower_bound <= opt + 1e-6
    elif res.status == "falsified":
        assert res.x is not None and case.input_box.contains(res.x)
        assert case.violation(net.forward(res.x[None]))[0] <= 0.0
    elif res.status == "timeout" and res.lower_bound is not None:
        assert res.lower_bound <= opt + 1e-6  # what a cut search reports is still a bound
    # the uncut search agrees with the MILP on clear-cut instances
    if opt > 1e-4:
        assert full.status == "verified", (opt, full)
    elif opt < -1e-4:
        assert full.status == "falsified", (opt, full)


# --------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------


def _wrap_slow(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, clock: FakeClock, seconds: float
) -> list[float]:
    real: Callable[..., Any] = getattr(module, name)
    calls: list[float] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        calls.append(clock.now)
        clock.advance(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, slow)
    return calls


def test_pipeline_bound_stage_stops_before_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """CROWN bounds of 2 s per case, 9 cases, 5 s: the stage stops after two cases (a third
    would end at 6 s), the run answers unknown/timeout and no later stage runs."""
    clock = FakeClock()
    monkeypatch.setattr(pl, "time", clock.module())
    calls = _wrap_slow(monkeypatch, pl, "spec_bounds", clock, 2.0)
    rng = np.random.default_rng(2)
    net = _net(rng, [20, 16, 16, 10])
    x0 = rng.uniform(-1, 1, 20)
    label = int(np.argmax(net.forward(x0[None])[0]))
    prop = robustness_property(x0, 0.05, label, 10, domain=None)
    res = verify(net, prop, method="crown", time_limit=5.0)
    assert res.verdict.value == "unknown" and res.reason == "timeout", res
    assert len(calls) == 2, calls
    assert clock.now <= 1000.0 + 5.0 + 0.1 * clock.readings


def test_pipeline_milp_gets_the_remaining_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MILP stage passes HiGHS what is left of the budget, never the full time limit,
    and does not start an encoding it cannot finish."""
    clock = FakeClock()
    monkeypatch.setattr(pl, "time", clock.module())
    _wrap_slow(monkeypatch, pl, "encode_milp", clock, 1.5)
    limits: list[float | None] = []
    real_solve = HighsSolver.solve

    def solve(self: HighsSolver, problem: Any, /, **kw: Any) -> SolveResult:
        limits.append(kw.get("time_limit"))
        clock.advance(float(kw["time_limit"]))  # the solver uses its whole budget...
        return real_solve(self, problem, **{**kw, "time_limit": 0.0})  # ...and times out

    monkeypatch.setattr(HighsSolver, "solve", solve)
    rng = np.random.default_rng(4)
    net = _net(rng, [8, 12, 12, 5])
    x0 = rng.uniform(-1, 1, 8)
    label = int(np.argmax(net.forward(x0[None])[0]))
    prop = robustness_property(x0, 0.6, label, 5, domain=None)
    res = verify(net, prop, method="milp", time_limit=10.0, presolve=False)
    assert res.verdict.value in ("unknown", "falsified"), res
    assert limits and all(t is not None and t <= 10.0 - 1.5 + 1e-9 for t in limits), limits
    assert clock.now <= 1000.0 + 10.0 + 1e-6


# --------------------------------------------------------------------------------------------
# HiGHS: a confirming re-solve gets what the first solve left
# --------------------------------------------------------------------------------------------


def test_highs_retry_shares_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """An infeasibility claim is confirmed by a second solve without presolve; that solve
    used to get the full ``time_limit`` again (two solves: twice the limit). The first
    solve is made to claim infeasibility after 3 s (a fault we cannot cause on demand)."""
    clock = FakeClock()
    monkeypatch.setattr(hs, "time", clock.module())
    given_limits: list[float | None] = []

    def once(
        self: HighsSolver, problem: Any, presolve: str, time_limit: float | None, *a: Any, **kw: Any
    ):
        given_limits.append(time_limit)
        clock.advance(3.0)
        return SolveResult(SolveStatus.INFEASIBLE, None, None, None, info={})

    monkeypatch.setattr(HighsSolver, "_solve_once", once)
    rng = np.random.default_rng(0)
    net = _net(rng, [3, 4, 2])
    case = UnsafeCase(Box(-np.ones(3), np.ones(3)), np.array([[1.0, -1.0]]), np.zeros(1))
    problem = encode_milp(net, case, interval_bounds(net, case.input_box))
    HighsSolver(confirm_infeasible=True).solve(problem, time_limit=5.0)
    assert given_limits[0] == 5.0
    assert len(given_limits) == 2 and given_limits[1] is not None
    assert given_limits[1] <= 2.0 + 1e-9, given_limits


# --------------------------------------------------------------------------------------------
# the clock starts with the process
# --------------------------------------------------------------------------------------------


def test_process_start_counts_the_startup(tmp_path: Path) -> None:
    now = time.monotonic()
    start = process_start()
    assert start <= time.monotonic()
    if Path("/proc/self/stat").exists():
        # this pytest process has been running for at least a clock tick (10 ms)
        assert start < now
    # an unreadable or malformed stat file: no guess, the clock starts now
    bad = tmp_path / "stat"
    bad.write_text("garbage")
    assert abs(process_start(str(bad)) - time.monotonic()) < 60.0
    assert process_start(str(tmp_path / "missing")) >= now


# --------------------------------------------------------------------------------------------
# input-split branch and bound (bab)
# --------------------------------------------------------------------------------------------


def test_bab_does_not_start_a_round_it_cannot_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batched bound rounds of 3 s against a 10 s budget: no round starts after 7 s (it
    would end after the deadline), and the answer is not "verified" (the search is cut)."""
    clock = FakeClock()
    monkeypatch.setattr(bab, "time", clock.module())
    rounds = _wrap_slow(monkeypatch, bab._CaseSearch, "_bound_candidates", clock, 3.0)
    rng = np.random.default_rng(8)
    net = _net(rng, [2, 24, 24, 2])
    box = Box(-np.ones(2), np.ones(2))
    xs = box.sample(20000, rng)
    y = net.forward(xs)
    lowest = float(np.min(y[:, 0] - y[:, 1]))
    # unsafe: y0 - y1 <= lowest - 0.01, just below what sampling found (needs many rounds)
    case = UnsafeCase(box, np.array([[1.0, -1.0]]), np.array([lowest - 0.01]))
    prop = Property((case,))
    opts = bab.BabOptions(attack_budget_s=0.0, jobs=1, batch_size=4, alpha_iters=0)
    t0 = clock.now
    res = bab.bab_verify(net, prop, time_limit=10.0, options=opts)
    assert res.verdict.value != "verified", res
    assert len(rounds) >= 2, rounds
    assert clock.now <= t0 + 10.0, (clock.now - t0, rounds)
