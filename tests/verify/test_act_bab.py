"""Branch and bound over hidden-neuron bounds (``act_bab``, GenBaB-style splits).

* ReLU networks: the verdicts match the exact MILP (a split at the kink makes the relaxation
  exact, so the search is complete) and every proof is re-derived by ``check_tree``;
* sigmoid, tanh and mixed networks: a "verified" is re-derived by ``check_tree`` and no point
  of a dense sample of the box violates; a "falsified" witness is real; a timeout's bound
  lies below the sampled minimum;
* the checker clips each child of a bound split on its own side (a checker clipping both to
  the same side fails it, and fails to re-derive the search's proofs), and rejects bound-split
  trees that claim a falsifiable case, out-of-range neurons and non-finite split points;
* the search stops at its deadline (an injected clock) with a sound bound;
* ``auto`` runs it before Model 2 on a sigmoid network with many inputs, and the certificate
  built from the result checks.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nncert.certificates.proofcheck as pc
import nncert.verify.act_bab as ab
from nncert.certificates import certificate_from_result, check
from nncert.certificates.proofcheck import check_tree
from nncert.formulations.milp import encode_milp
from nncert.solvers.base import SolveStatus
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify import verify
from nncert.verify.bounds import interval_bounds
from nncert.verify.network import Dense, Network, ReLU, Sigmoid, Tanh
from nncert.verify.options import VerifyOptions
from nncert.verify.proof import BOUND_SPLIT, CLOSED_BY_BOUND, ProofRecorder, ProofTree
from nncert.verify.result import CaseContext, Verdict
from nncert.verify.spec import Box, Property, UnsafeCase

SOLVER = HighsSolver(mip_rel_gap=0.0)

ACTS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def _net(rng: np.random.Generator, widths: list[int], acts: list[str]) -> Network:
    layers: list[object] = []
    for i in range(len(widths) - 1):
        if i:
            layers.append(ACTS[acts[(i - 1) % len(acts)]]())
        w = rng.normal(scale=1.5, size=(widths[i + 1], widths[i])) / np.sqrt(widths[i])
        layers.append(Dense(w, rng.normal(scale=0.3, size=widths[i + 1])))
    return Network(tuple(layers), input_shape=(widths[0],))  # type: ignore[arg-type]


def _ctx(seconds: float | None = 10.0) -> CaseContext:
    deadline = None if seconds is None else time.perf_counter() + seconds
    return CaseContext(
        VerifyOptions(method="act_bab"), deadline, np.random.default_rng(0), None, 0, None
    )


def _case(
    rng: np.random.Generator, net: Network, shift: float
) -> tuple[UnsafeCase, float, np.ndarray]:
    """A one-row case ``f_0 - f_1 <= t``, ``t`` the sampled minimum plus ``shift``; with the
    sampled minimum and a dense sample of the box."""
    x0 = rng.uniform(-1, 1, net.n_inputs)
    box = Box(x0 - 0.5, x0 + 0.5)
    a = np.zeros((1, net.n_outputs))
    a[0, 0], a[0, 1] = 1.0, -1.0
    xs = np.concatenate([box.sample(6000, rng), _corners(box)])
    low = float((net.forward(xs) @ a.T).min())
    return UnsafeCase(box, a, np.array([low + shift])), low, xs


def _hard_case(
    rng: np.random.Generator, net: Network, gap: float, radius: float
) -> tuple[UnsafeCase, np.ndarray]:
    """A one-row case ``f_0 - f_1 <= t`` on a small box, ``t`` just below the least value
    found: by sampling, then by the witnesses the search itself returns on cases just above it
    (it finds lower points than sampling in 10-20 dimensions); with the points seen."""
    x0 = rng.uniform(-1, 1, net.n_inputs)
    box = Box(x0 - radius, x0 + radius)
    a = np.zeros((1, net.n_outputs))
    a[0, 0], a[0, 1] = 1.0, -1.0
    xs = box.sample(4000, rng)
    low = float((net.forward(xs) @ a.T).min())
    for _ in range(6):
        case = UnsafeCase(box, a, np.array([low - gap]))
        out = ab.act_bab_case(net, case, _ctx(2.0))
        if out.status != "falsified":
            break
        x = np.asarray(out.x)
        xs = np.concatenate([xs, x[None]])
        low = float((net.forward(x[None]) @ a.T).min())
    return case, xs


def _corners(box: Box) -> np.ndarray:
    n = box.dim
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    return np.where(bits == 1, box.upper, box.lower)


def _milp_min(net: Network, case: UnsafeCase) -> float:
    res = SOLVER.solve(encode_milp(net, case, interval_bounds(net, case.input_box)))
    assert res.status is SolveStatus.OPTIMAL and res.objective is not None
    return float(res.objective)


def _assert_sound(net: Network, case: UnsafeCase, out: object, xs: np.ndarray) -> None:
    """Whatever the search answered agrees with the network."""
    sampled = float(case.violation(net.forward(xs)).min())
    status = out.status  # type: ignore[attr-defined]
    if status == "verified":
        assert out.exact and out.proof is not None  # type: ignore[attr-defined]
        assert sampled > 0.0
        chk = check_tree(net, case, out.proof)  # type: ignore[attr-defined]
        assert chk.ok, chk.reason
        assert out.lower_bound is None or out.lower_bound <= sampled  # type: ignore[attr-defined]
    elif status == "falsified":
        x = np.asarray(out.x)  # type: ignore[attr-defined]
        assert case.input_box.contains(x)
        assert case.violation(net.forward(x[None]))[0] <= 0.0
    else:
        assert status in ("timeout", "unknown")
        lb = out.lower_bound  # type: ignore[attr-defined]
        assert lb is None or lb <= sampled


@pytest.mark.parametrize("shift", [-0.2, -0.02, 0.02])
def test_relu_networks_match_the_exact_milp(shift: float) -> None:
    """(Fully stable nodes whose phases no input satisfies are only found empty after input
    splits, which is slow on wide networks: ReLU networks are ``relu_bab``'s, with leaf LPs;
    here the networks are small.)"""
    decided = branched = 0
    for seed in range(6):
        rng = np.random.default_rng(300 + seed)
        net = _net(rng, [3, 6, 6, 2], ["relu"])
        case, _, xs = _case(rng, net, shift)
        opt = _milp_min(net, case)
        out = ab.act_bab_case(net, case, _ctx(10.0))
        _assert_sound(net, case, out, xs)
        if out.status == "verified":
            assert opt > 0.0, (seed, opt)
        elif out.status == "falsified":
            assert opt <= 0.0
        decided += int(out.status in ("verified", "falsified"))
        branched += int(out.stats["splits"] > 0)
    assert decided >= 5
    if shift == -0.02:
        assert branched > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    acts=st.sampled_from([["sigmoid"], ["tanh"], ["sigmoid", "relu"], ["tanh", "sigmoid"]]),
    shift=st.sampled_from([-0.3, -0.03, -0.003, 0.01]),
)
def test_smooth_networks_answers_are_sound(seed: int, acts: list[str], shift: float) -> None:
    rng = np.random.default_rng(seed)
    net = _net(rng, [2, 6, 6, 3], acts)
    case, _, xs = _case(rng, net, shift)
    out = ab.act_bab_case(net, case, _ctx(4.0))
    _assert_sound(net, case, out, xs)


def test_smooth_networks_are_proven_after_splitting() -> None:
    """Cases that CROWN alone leaves open close after splits, with checked proofs."""
    split_proofs = 0
    for seed in range(4):
        rng = np.random.default_rng(60 + seed)
        net = _net(rng, [20, 16, 16, 3], ["tanh", "sigmoid"])
        case, xs = _hard_case(rng, net, 0.02, 0.06)
        out = ab.act_bab_case(net, case, _ctx(10.0))
        _assert_sound(net, case, out, xs)
        if out.status == "verified" and out.proof is not None and out.proof.n_nodes > 1:
            assert np.all(out.proof.split[out.proof.split != 0] == BOUND_SPLIT)
            split_proofs += 1
    assert split_proofs >= 2


def _witness_tree(net: Network, x: np.ndarray, rng: np.random.Generator) -> ProofTree:
    """A tree of bound splits near the witness's own pre-activations, every leaf claimed
    closed by a bound."""
    zs, a = [], x
    for layer in net.layers:
        if isinstance(layer, Dense):
            a = layer.weight @ a + layer.bias
            zs.append(a)
        else:
            a = _apply(layer, a)
    z = np.concatenate(zs[:-1])
    rec = ProofRecorder(recipe={"intermediate": "crown", "search": ab.SEARCH, "child_crown": 9})
    frontier = [rec.root()]
    for _ in range(3):
        nxt = []
        for node in frontier:
            j = int(rng.integers(z.size))
            s = float(z[j] + rng.normal(scale=0.05))
            nxt.extend(rec.split(node, BOUND_SPLIT, j, s))
        frontier = nxt
    for node in frontier:
        rec.close(node, CLOSED_BY_BOUND)
    return rec.tree()


def _apply(layer: object, z: np.ndarray) -> np.ndarray:
    if isinstance(layer, ReLU):
        return np.maximum(z, 0.0)
    if isinstance(layer, Sigmoid):
        return 1.0 / (1.0 + np.exp(-z))
    assert isinstance(layer, Tanh)
    return np.tanh(z)


def test_checker_rejects_bound_split_trees_for_a_falsifiable_case() -> None:
    rejected = 0
    for seed in range(12):
        rng = np.random.default_rng(70 + seed)
        net = _net(rng, [2, 6, 6, 3], ["sigmoid", "tanh"])
        case, _, xs = _case(rng, net, 0.05)
        viol = case.violation(net.forward(xs))
        x = xs[int(np.argmin(viol))]
        assert viol.min() <= 0.0
        tree = _witness_tree(net, x, rng)
        chk = check_tree(net, case, tree)
        assert not chk.ok
        rejected += 1
    assert rejected == 12


def test_checker_clips_each_side_of_a_bound_split() -> None:
    """The two children of a bound split on ``z_j`` at ``s``: ``l_j <- max(l_j, s)`` on side 0
    and ``u_j <- min(u_j, s)`` on side 1, nothing else changed."""
    rec = ProofRecorder()
    rec.split(rec.root(), BOUND_SPLIT, 2, 0.25)
    tree = rec.tree()
    h, n_in = 5, 3
    part = pc._Frontier(
        ids=np.zeros(1, dtype=np.int64),
        lo=np.zeros((1, n_in)),
        hi=np.ones((1, n_in)),
        pl=np.full((1, h), -1.0),
        pu=np.full((1, h), 1.0),
        phase=np.zeros((1, h), dtype=np.int8),
        empty=np.zeros(1, dtype=bool),
    )
    kids = pc._children(tree, tree.children(), part, np.array([0]), part.pl, part.pu, part.empty)
    assert kids.ids.tolist() == [1, 2]
    want_l = np.full((2, h), -1.0)
    want_u = np.full((2, h), 1.0)
    want_l[0, 2], want_u[1, 2] = 0.25, 0.25
    np.testing.assert_array_equal(kids.pl, want_l)
    np.testing.assert_array_equal(kids.pu, want_u)
    np.testing.assert_array_equal(kids.lo, np.zeros((2, n_in)))
    np.testing.assert_array_equal(kids.hi, np.ones((2, n_in)))
    assert not np.any(kids.phase)


def test_checker_rejects_out_of_range_and_non_finite_bound_splits() -> None:
    rng = np.random.default_rng(5)
    net = _net(rng, [2, 4, 3], ["sigmoid"])
    case, _, _ = _case(rng, net, -0.5)
    for j, s, why in ((4, 0.0, "neuron"), (1, np.nan, "non-finite")):
        rec = ProofRecorder(recipe={"intermediate": "crown"})
        a, b = rec.split(rec.root(), BOUND_SPLIT, j, s)
        rec.close(a, CLOSED_BY_BOUND)
        rec.close(b, CLOSED_BY_BOUND)
        chk = check_tree(net, case, rec.tree())
        assert not chk.ok and why in chk.reason


def test_the_search_stops_at_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """An injected clock: every reading advances 1 s; a 5 s budget ends after a few rounds
    with a timeout whose bound is sound."""
    rng = np.random.default_rng(11)
    net = _net(rng, [2, 12, 12, 3], ["sigmoid"])
    case, low, xs = _case(rng, net, -0.001)
    ticks = iter(range(10**6))
    monkeypatch.setattr(ab.time, "perf_counter", lambda: float(next(ticks)))
    ctx = CaseContext(VerifyOptions(method="act_bab"), 5.0, np.random.default_rng(0), None, 0, None)
    out = ab.act_bab_case(net, case, ctx)
    assert out.status == "timeout", out.stats
    assert out.stats["splits"] < 5 * ab.DEFAULT_SETTINGS.batch_nodes
    assert out.lower_bound is not None and out.lower_bound <= low - case.b[0] + 1e-9
    _assert_sound(net, case, out, xs)


def test_auto_runs_it_between_two_model2_slices_on_sigmoid_networks_with_many_inputs() -> None:
    """``auto`` on a 20-input sigmoid/tanh network: Model 2's first slice, then (on a case it
    leaves open) the search, then Model 2 again; the verdict's certificate checks."""
    for seed in (61, 60):
        rng = np.random.default_rng(seed)
        net = _net(rng, [20, 16, 16, 3], ["tanh", "sigmoid"])
        case, xs = _hard_case(rng, net, 0.02, 0.06)
        prop = Property((case,))
        res = verify(net, prop, VerifyOptions(time_limit=20.0))
        order = res.stats["auto_order"]
        assert order[0] == "model2" and order[1:2] in ([], ["act_bab"]), order
        assert order[2:] in ([], ["model2"]), order
        assert res.verdict is Verdict.VERIFIED, res.reason
        assert case.violation(net.forward(xs)).min() > 0.0
        report = check(certificate_from_result(net, prop, res), net, expected_property=prop)
        assert report.ok, report.reasons


def test_its_proofs_make_independent_certificates() -> None:
    """``method="act_bab"`` on a 20-input network and small boxes (the search's ground: the
    network is nearly linear on the box, its relaxations are what is loose): the verdict's
    certificate is re-derived by the checker alone."""
    decided = split = 0
    for seed in range(4):
        rng = np.random.default_rng(60 + seed)
        net = _net(rng, [20, 16, 16, 3], ["tanh", "sigmoid"])
        case, xs = _hard_case(rng, net, 0.02, 0.06)
        prop = Property((case,))
        res = verify(net, prop, VerifyOptions(method="act_bab", time_limit=20.0))
        if res.verdict is Verdict.FALSIFIED:
            assert res.counterexample is not None
            x = np.asarray(res.counterexample.x)
            assert case.violation(net.forward(x[None]))[0] <= 0.0
        assert res.verdict is not Verdict.VERIFIED or case.violation(net.forward(xs)).min() > 0
        if res.verdict is not Verdict.VERIFIED:
            continue
        decided += 1
        report = check(certificate_from_result(net, prop, res), net, expected_property=prop)
        assert report.ok, report.reasons
        assert report.trust == "independent", report.unchecked
        split += int(res.stats["act_bab"][0]["splits"] > 0)
    assert decided >= 2 and split >= 2


def test_under_auto_it_hands_over_when_its_bound_rises_too_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An injected clock (1 s per reading, 100 s budget): after the probe (15 s) the bound,
    extrapolated at its average rate, stays below 0, so the search returns "unknown" early
    (with a sound bound); with ``give_up=False`` the same search runs to its deadline."""
    rng = np.random.default_rng(11)
    net = _net(rng, [2, 12, 12, 3], ["sigmoid"])
    case, _, xs = _case(rng, net, -0.001)
    runs = {}
    for give_up in (None, False):
        ticks = iter(range(10**6))
        monkeypatch.setattr(ab.time, "perf_counter", lambda t=ticks: float(next(t)))
        ctx = CaseContext(VerifyOptions(), 100.0, np.random.default_rng(0), None, 0, None)
        settings = ab.ActBabSettings(give_up=give_up)
        runs[give_up] = out = ab.act_bab_case(net, case, ctx, settings=settings)
        _assert_sound(net, case, out, xs)
    assert runs[None].status == "unknown" and runs[None].stats.get("gave_up")
    assert runs[False].status == "timeout" and "gave_up" not in runs[False].stats
    assert runs[None].stats["splits"] < runs[False].stats["splits"]


def test_two_jobs_give_the_serial_verdict_and_checked_proofs() -> None:
    """``jobs=2`` runs the cases on two worker processes (``PARALLEL_CASE_METHODS``)."""
    rng = np.random.default_rng(62)
    net = _net(rng, [20, 16, 16, 3], ["tanh", "sigmoid"])
    case, _ = _hard_case(rng, net, 0.02, 0.06)
    other = UnsafeCase(case.input_box, case.A[:, [0, 2, 1]], case.b - 10.0)
    prop = Property((case, other))
    verdicts = []
    for jobs in (1, 2):
        res = verify(net, prop, VerifyOptions(method="act_bab", time_limit=30.0, jobs=jobs))
        verdicts.append(res.verdict)
        if res.verdict is Verdict.VERIFIED:
            report = check(certificate_from_result(net, prop, res), net, expected_property=prop)
            assert report.ok and report.trust == "independent", report.reasons
    assert verdicts[0] is verdicts[1] is Verdict.VERIFIED
