"""Tree replay: a branch-and-bound certificate's proof trees carried to a compressed network.

A bab certificate of a small ReLU network (its property needs splits) is transferred to pruned,
quantized and perturbed versions: carried trees and grafted subtrees pass ``check`` with trust
"independent"; a target the property fails on is never called verified; the source certificate
is checked once per process; :func:`replay_tree` lists every failing leaf while
:func:`check_tree` still stops at the first. Hypothesis: on random small networks and random
perturbations, a transferred VERIFIED is never contradicted by a dense grid or the MILP.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncert.certificates import BabEvidence, Certificate, certificate_from_result, check
from nncert.certificates.proofcheck import check_tree, replay_tree
from nncert.certificates.transfer import clear_check_cache, transfer
from nncert.compression import magnitude_prune, quantize_weights
from nncert.verify import relu_bab, verify
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.proof import ProofTree
from nncert.verify.result import Verdict
from nncert.verify.spec import Box, Property, UnsafeCase


def _net(seed: int, sizes: list[int]) -> Network:
    rng = np.random.default_rng(seed)
    layers: list[object] = []
    for a, b in itertools.pairwise(sizes):
        layers += [Dense(rng.standard_normal((b, a)) / np.sqrt(a), 0.3 * rng.standard_normal(b))]
        layers.append(ReLU())
    return Network(tuple(layers[:-1]), input_shape=(sizes[0],))  # type: ignore[arg-type]


def _grid_min(net: Network, box: Box, A: np.ndarray, n: int = 201) -> float:
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(box.lower, box.upper)]
    xs = np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, box.dim)
    return float((net.forward(xs) @ A.T).min())


def _shift_output(net: Network, shift: np.ndarray) -> Network:
    """``net`` with ``shift`` added to the last layer's bias."""
    layers = list(net.layers)
    last = layers[-1]
    assert isinstance(last, Dense)
    layers[-1] = Dense(last.weight, last.bias + shift)
    return Network(tuple(layers), input_shape=net.input_shape)


NET = _net(1, [2, 12, 12, 2])
BOX = Box(-np.ones(2), np.ones(2))
A = np.array([[1.0, -1.0]])
THRESHOLD = _grid_min(NET, BOX, A) - 0.05
PROP = Property((UnsafeCase(BOX, A, [THRESHOLD]),), name="needs-splits")


def _bab_cert(net: Network, prop: Property) -> Certificate:
    res = verify(net, prop, method="bab", time_limit=30)
    assert res.verdict is Verdict.VERIFIED and res.method == "bab"
    return certificate_from_result(net, prop, res, options={"method": "bab"})


@pytest.fixture(scope="module")
def cert() -> Certificate:
    out = _bab_cert(NET, PROP)
    ev = out.evidence
    assert isinstance(ev, BabEvidence) and ev.cases[0].tree is not None
    assert ev.cases[0].tree.n_nodes > 3
    return out


def _tree(c: Certificate) -> ProofTree:
    ev = c.evidence
    assert isinstance(ev, BabEvidence) and ev.cases[0].tree is not None
    return ev.cases[0].tree


def test_replay_tree_lists_every_failing_leaf_check_tree_stops(cert: Certificate) -> None:
    tree = _tree(cert)
    same = replay_tree(NET, PROP.cases[0], tree)
    assert same.check.ok and same.failing.size == 0
    assert same.check.min_bound == check_tree(NET, PROP.cases[0], tree).min_bound
    # lower the output row by 0.04 of the 0.05 margin: some leaves no longer close
    target = _shift_output(NET, np.array([-0.02, 0.02]))
    rep = replay_tree(target, PROP.cases[0], tree)
    chk = check_tree(target, PROP.cases[0], tree)
    assert not chk.ok and not rep.check.ok and not rep.structural
    assert rep.check.reason == chk.reason  # the first failure, as check_tree reports it
    assert rep.failing.size >= 1 and np.all(rep.bounds <= 0.0)
    assert set(rep.failing.tolist()) <= set(tree.leaves.tolist())
    assert np.all(rep.lower <= rep.upper) and not np.any(rep.phased)


def test_replay_records_sound_rows_of_the_failing_leaves(cert: Certificate) -> None:
    """The rows the walk bounded a failing leaf with (what transfer splits on without bounding
    the leaf again) are lower bounds of ``A f(x) - b`` on the leaf's box, at most the leaf's
    bound, and their coefficients give the box vertex minimising each row."""
    tree = _tree(cert)
    target = _shift_output(NET, np.array([-0.02, 0.02]))
    rep = replay_tree(target, PROP.cases[0], tree)
    k = rep.failing.size
    assert k >= 1 and rep.row_lower is not None and rep.row_coef is not None
    assert rep.row_lower.shape == (k, A.shape[0]) and rep.row_coef.shape == (k, A.shape[0], 2)
    assert np.all(rep.row_lower.max(axis=1) <= rep.bounds)
    rng = np.random.default_rng(0)
    for j in range(k):
        xs = rep.lower[j] + rng.random((400, 2)) * (rep.upper[j] - rep.lower[j])
        g = target.forward(xs) @ A.T - PROP.cases[0].b
        assert np.all(g >= rep.row_lower[j] - 1e-12)
    # the walk that checks (no failures collected) does not keep them
    assert replay_tree(NET, PROP.cases[0], tree).row_coef is None


def test_replay_from_a_start_frontier_meets_the_same_bounds(cert: Certificate) -> None:
    """Walking only below the failing leaves (the start frontier) gives those leaves exactly
    the bounds the walk from the root gave them; a bad frontier is a structural rejection."""
    tree = _tree(cert)
    target = _shift_output(NET, np.array([-0.02, 0.02]))
    rep = replay_tree(target, PROP.cases[0], tree)
    assert rep.failing.size >= 1 and rep.frontier is not None
    again = replay_tree(target, PROP.cases[0], tree, start=rep.frontier)
    assert np.array_equal(again.failing, rep.failing)
    assert np.array_equal(again.bounds, rep.bounds)
    assert np.array_equal(again.lower, rep.lower) and np.array_equal(again.upper, rep.upper)
    bad = dataclasses.replace(rep.frontier, ids=rep.frontier.ids + tree.n_nodes)
    wrong = replay_tree(target, PROP.cases[0], tree, start=bad)
    assert wrong.structural and "start frontier" in wrong.check.reason


def test_replay_stops_once_too_many_leaves_fail(cert: Certificate) -> None:
    tree = _tree(cert)
    target = _shift_output(NET, np.array([-0.1, 0.1]))  # falsifiable: many leaves fail
    full = replay_tree(target, PROP.cases[0], tree)
    assert full.failing.size >= 3
    short = replay_tree(target, PROP.cases[0], tree, max_failing=1)
    assert 2 <= short.failing.size <= full.failing.size  # failures come a level at a time
    assert "more than 1 leaves fail" in short.check.reason and not short.structural
    assert set(short.failing.tolist()) <= set(full.failing.tolist())


def test_pruned_target_carries_the_tree_and_checks_independently(cert: Certificate) -> None:
    target, _ = magnitude_prune(NET, 0.1)
    res = transfer(cert, NET, target, verify_fallback=False)
    assert res.verdict is Verdict.VERIFIED and res.transferred
    assert res.replay is not None and res.replay["carried"] == res.replay["leaves"] > 0
    assert res.certificate.evidence.kind == "bab"
    report = check(res.certificate, target, expected_property=PROP)
    assert report.ok and report.trust == "independent", report.reasons
    assert _grid_min(target, BOX, A) > THRESHOLD


@pytest.mark.parametrize("make", ["prune30", "shift"])
def test_failing_leaves_get_grafted_subtrees(cert: Certificate, make: str) -> None:
    if make == "prune30":
        target, _ = magnitude_prune(NET, 0.3)
    else:  # 0.03 of the 0.05 margin gone: still unreachable, but leaves fail
        target = _shift_output(NET, np.array([-0.015, 0.015]))
    assert _grid_min(target, BOX, A) > THRESHOLD
    res = transfer(cert, NET, target, verify_fallback=False)
    assert res.replay is not None and res.replay["failing"] >= 1, res.reason
    assert res.verdict is Verdict.VERIFIED and res.transferred, res.reason
    assert res.replay["grafted"] == res.replay["failing"]
    assert res.replay["carried"] == res.replay["leaves"] - res.replay["failing"]
    new = _tree(res.certificate)
    assert new.n_nodes > _tree(cert).n_nodes  # subtrees below the failing leaves
    report = check(res.certificate, target, expected_property=PROP)
    assert report.ok and report.trust == "independent", report.reasons


def test_falsifiable_target_is_never_verified(cert: Certificate) -> None:
    target = _shift_output(NET, np.array([-0.1, 0.1]))  # the row drops 0.2 below the margin
    assert _grid_min(target, BOX, A) <= THRESHOLD
    res = transfer(cert, NET, target, verify_fallback=False)
    assert res.verdict is not Verdict.VERIFIED and not res.transferred
    assert res.replay is not None and res.replay["failing"] >= 1 and not res.replay["ok"]
    if res.verdict is Verdict.FALSIFIED:
        # a witness the replay met in a failing leaf, confirmed on the target
        report = check(res.certificate, target, expected_property=PROP)
        assert report.ok, report.reasons
        x = res.certificate.evidence.x  # type: ignore[union-attr]
        assert float((target.forward(np.asarray(x)[None, :]) @ A.T)[0, 0]) <= THRESHOLD
    full = transfer(cert, NET, target, time_limit=30)
    assert full.verdict is Verdict.FALSIFIED and not full.transferred


def test_source_certificate_is_checked_once(
    cert: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_check_cache()
    calls: list[int] = []
    # the package re-exports transfer() under the module's name: reach the module itself
    transfer_module = sys.modules["nncert.certificates.transfer"]
    real = transfer_module.check

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transfer_module, "check", counting)
    # a replayed tree is re-derived on the target: the source need not be checked at all
    for target in (magnitude_prune(NET, 0.05)[0], quantize_weights(NET, 8)[0]):
        res = transfer(cert, NET, target, verify_fallback=False)
        assert res.verdict is Verdict.VERIFIED and res.replay is not None
    assert len(calls) == 0
    # the margin rule needs the source's re-derived margins: checked once for both targets
    for target in (magnitude_prune(NET, 0.05)[0], quantize_weights(NET, 8)[0]):
        res = transfer(cert, NET, target, verify_fallback=False, replay=False)
    assert len(calls) == 1


def test_replay_rests_on_the_target_alone(cert: Certificate) -> None:
    """A source certificate whose claimed margins are forged still gives a sound target proof
    by replay (the tree is re-derived on the target)."""
    ev = cert.evidence
    assert isinstance(ev, BabEvidence)
    forged_cases = tuple(dataclasses.replace(c, lower_bound=c.lower_bound + 5) for c in ev.cases)
    forged = dataclasses.replace(cert, evidence=dataclasses.replace(ev, cases=forged_cases))
    target = magnitude_prune(NET, 0.05)[0]
    res = transfer(forged, NET, target, verify_fallback=False)
    assert res.transferred and res.verdict is Verdict.VERIFIED
    report = check(res.certificate, target)
    assert report.ok and report.independent
    # the margin rule uses only what the checker re-derives from the source, never the claims
    res2 = transfer(forged, NET, target, verify_fallback=False, replay=False)
    assert (
        res2.certificate.verdict is not Verdict.VERIFIED
        or check(res2.certificate, target, source=NET, source_certificate=cert).ok
    )


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 10_000),
    margin=st.sampled_from([0.02, 0.1]),
    change=st.sampled_from(["prune10", "prune30", "int8", "int4", "noise"]),
)
def test_random_transfers_are_sound(seed: int, margin: float, change: str) -> None:
    net = _net(seed, [2, 8, 8, 2])
    box = Box(-np.ones(2), np.ones(2))
    thr = _grid_min(net, box, A) - margin
    prop = Property((UnsafeCase(box, A, [thr]),))
    res = verify(net, prop, method="bab", time_limit=20)
    if res.verdict is not Verdict.VERIFIED:
        return
    src = certificate_from_result(net, prop, res, options={"method": "bab"})
    if change.startswith("prune"):
        target = magnitude_prune(net, int(change[5:]) / 100)[0]
    elif change.startswith("int"):
        target = quantize_weights(net, int(change[3:]))[0]
    else:
        rng = np.random.default_rng(seed)
        target = _shift_output(net, 0.05 * rng.standard_normal(2))
    out = transfer(src, net, target, verify_fallback=False, time_limit=20)
    if out.verdict is not Verdict.VERIFIED:
        return
    assert _grid_min(target, box, A) > thr
    assert verify(target, prop, method="milp", time_limit=20).verdict is not Verdict.FALSIFIED
    # a source the bound presolve proved transfers by the margin rule, whose certificate is
    # checked with the source (the tree replay's stands alone)
    report = check(
        out.certificate, target, expected_property=prop, source=net, source_certificate=src
    )
    assert report.ok and report.trust == "independent", report.reasons


@pytest.mark.parametrize("strong", [True, False])
def test_failing_box_leaves_are_split_in_place(
    cert: Certificate, monkeypatch: pytest.MonkeyPatch, strong: bool
) -> None:
    # the failing leaves are halved where they are (strong branching or the slope rule) and
    # the halves walked under their ancestors' bounds: no fresh per-leaf search
    transfer_module = sys.modules["nncert.certificates.transfer"]
    monkeypatch.setattr(transfer_module, "STRONG_SPLIT_LEAVES", 128 if strong else 0)

    def no_search(*args: object, **kwargs: object) -> None:
        raise AssertionError("a failing box leaf went to a per-leaf search")

    monkeypatch.setattr(transfer_module, "_graft_searches", no_search)
    target = _shift_output(NET, np.array([-0.015, 0.015]))
    assert _grid_min(target, BOX, A) > THRESHOLD
    res = transfer(cert, NET, target, verify_fallback=False)
    assert res.verdict is Verdict.VERIFIED and res.transferred, res.reason
    assert res.replay is not None and res.replay["failing"] >= 1
    assert res.replay["split_nodes"] >= 2 * res.replay["failing"]
    new = _tree(res.certificate)
    assert new.n_nodes == _tree(cert).n_nodes + res.replay["split_nodes"]
    report = check(res.certificate, target, expected_property=PROP)
    assert report.ok and report.trust == "independent", report.reasons


def test_split_rounds_that_do_not_converge_give_up(
    cert: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # leaves still failing after the allowed rounds of splits (more than a per-leaf search
    # takes) are left to direct verification, which proves the target
    transfer_module = sys.modules["nncert.certificates.transfer"]
    monkeypatch.setattr(transfer_module, "MIN_FAILING_SEARCHED", 0)
    monkeypatch.setattr(transfer_module, "MAX_FAILING_SHARE", 1.0)
    monkeypatch.setattr(transfer_module, "MAX_SPLIT_ROUNDS", 1)
    target = _shift_output(NET, np.array([-0.02, 0.02]))  # 0.04 of the 0.05 margin gone
    assert _grid_min(target, BOX, A) > THRESHOLD
    res = transfer(cert, NET, target, time_limit=30)
    assert "leaves still fail after 1 rounds of splits" in res.reason, res.reason
    assert res.verdict is Verdict.VERIFIED and not res.transferred
    assert res.fallback_result is not None


def test_many_failing_leaves_go_straight_to_direct_verification(
    cert: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    transfer_module = sys.modules["nncert.certificates.transfer"]
    monkeypatch.setattr(transfer_module, "MIN_FAILING_SEARCHED", 0)
    monkeypatch.setattr(transfer_module, "MAX_FAILING_SHARE", 0.01)
    target = _shift_output(NET, np.array([-0.015, 0.015]))  # unreachable, some leaves fail
    res = transfer(cert, NET, target, time_limit=30)
    assert "verifying directly is cheaper" in res.reason
    assert res.replay is not None and res.replay["grafted"] == 0 and res.replay["failing"] >= 1
    assert res.verdict is Verdict.VERIFIED and not res.transferred
    assert res.fallback_result is not None


# --------------------------------------------------------------------------------------------
# phase-split trees (ReLU-phase branch and bound): failing leaves are searched on the subdomain
# of their phases and grafted
# --------------------------------------------------------------------------------------------

PNET = _net(4, [4, 12, 12, 2])
PBOX = Box(-0.2 * np.ones(4), 0.2 * np.ones(4))
PTHR = _grid_min(PNET, PBOX, A, n=21) - 0.1
PPROP = Property((UnsafeCase(PBOX, A, [PTHR]),), name="phase-splits")


@pytest.fixture(scope="module")
def phase_cert() -> Certificate:
    # the earlier search (plain CROWN on the objective) needs a tree of over 100 nodes here;
    # the current one closes the root with optimised slopes. The source tree comes from the
    # earlier one (a big tree with leaves to fail); grafting runs the current search.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(relu_bab, "DEFAULT_SETTINGS", relu_bab.LEGACY)
        res = verify(PNET, PPROP, method="relu_bab", time_limit=60)
    assert res.verdict is Verdict.VERIFIED and res.method == "relu_bab"
    out = certificate_from_result(PNET, PPROP, res, options={"method": "relu_bab"})
    tree = _tree(out)
    assert tree.recipe.get("search") == "relu-split" and tree.n_nodes > 100
    return out


@pytest.mark.parametrize("make", ["prune30", "shift"])
def test_failing_phase_leaves_get_grafted_subtrees(phase_cert: Certificate, make: str) -> None:
    if make == "prune30":
        target, _ = magnitude_prune(PNET, 0.3)
    else:
        target = _shift_output(PNET, np.array([-0.015, 0.015]))
    assert _grid_min(target, PBOX, A, n=21) > PTHR
    res = transfer(phase_cert, PNET, target, verify_fallback=False, time_limit=60)
    assert res.replay is not None and res.replay["failing"] >= 1, res.reason
    assert res.verdict is Verdict.VERIFIED and res.transferred, res.reason
    assert res.replay["grafted"] == res.replay["failing"]
    report = check(res.certificate, target, expected_property=PPROP)
    assert report.ok and report.trust == "independent", report.reasons


def test_grafts_below_a_tree_searched_with_child_crown() -> None:
    # a source tree whose children recompute no CROWN layer above their split: the
    # grafted searches run with the same child_crown, their roots bounded as children of the
    # failing leaf's split, so the next walk (and the independent checker) re-derive them
    net = _net(5, [4, 10, 10, 10, 2])
    thr = _grid_min(net, PBOX, A, n=21) - 0.05
    prop = Property((UnsafeCase(PBOX, A, [thr]),), name="phase-splits-child-crown")
    # (child_crown 0: no CROWN layer above a split, far from what full CROWN would give)
    plain = relu_bab.ReluBabSettings(alpha_iters=0, root_alpha_iters=0, beta_lr=None, child_crown=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(relu_bab, "DEFAULT_SETTINGS", plain)
        res = verify(net, prop, method="relu_bab", time_limit=60)
    assert res.verdict is Verdict.VERIFIED and res.method == "relu_bab"
    src = certificate_from_result(net, prop, res, options={"method": "relu_bab"})
    tree = _tree(src)
    assert tree.recipe.get("child_crown") == 0 and tree.n_nodes > 100
    target, _ = magnitude_prune(net, 0.3)
    assert _grid_min(target, PBOX, A, n=21) > thr
    out = transfer(src, net, target, verify_fallback=False, time_limit=60)
    assert out.replay is not None and out.replay["failing"] >= 1, out.reason
    assert out.verdict is Verdict.VERIFIED and out.transferred, out.reason
    assert out.replay["grafted"] == out.replay["failing"], out.replay
    assert _tree(out.certificate).recipe.get("child_crown") == 0
    report = check(out.certificate, target, expected_property=prop)
    assert report.ok and report.trust == "independent", report.reasons


def test_falsifiable_phase_target_is_never_verified(phase_cert: Certificate) -> None:
    target = _shift_output(PNET, np.array([-0.2, 0.2]))
    assert _grid_min(target, PBOX, A, n=21) <= PTHR
    res = transfer(phase_cert, PNET, target, verify_fallback=False, time_limit=30)
    assert res.verdict is not Verdict.VERIFIED


def test_transfer_runs_small_networks_on_one_blas_thread(
    cert: Certificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like verify(), transfer caps BLAS at one thread for small networks (the target's bound
    presolve ran on the caller's pool before)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not any(p["user_api"] == "blas" for p in threadpoolctl.threadpool_info()):
        pytest.skip("no BLAS library that threadpoolctl can control")
    transfer_module = sys.modules["nncert.certificates.transfer"]
    real = transfer_module.bound_evidence
    seen: list[set[int]] = []

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(
            {
                int(p["num_threads"])
                for p in threadpoolctl.threadpool_info()
                if p["user_api"] == "blas"
            }
        )
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transfer_module, "bound_evidence", spy)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        res = transfer(cert, NET, magnitude_prune(NET, 0.05)[0], verify_fallback=False)
    assert res.verdict is Verdict.VERIFIED
    assert seen and all(s == {1} for s in seen)


# --------------------------------------------------------------------------------------------
# leaves bounded from their own regions (recipe inherit=false)
# --------------------------------------------------------------------------------------------


def _own_region_bounds(net: Network, case: UnsafeCase, tree: ProofTree) -> dict[int, float]:
    """Every leaf's bound computed alone from its box (rebuilt here from the split records),
    without any ancestor's bounds: what an inherit=false check must find."""
    from nncert.certificates.proofcheck import _leaf_bounds
    from nncert.verify.bounds import engine_for
    from nncert.verify.proof import INPUT_SPLIT, LEAF

    eng = engine_for(net)
    kids = tree.children()
    out: dict[int, float] = {}
    stack = [(0, case.input_box.lower.copy(), case.input_box.upper.copy())]
    while stack:
        node, lo, hi = stack.pop()
        if tree.split[node] == LEAF:
            inter = eng.intermediate(lo[None], hi[None], "crown")
            b = _leaf_bounds(
                eng,
                case,
                tree,
                np.array([node]),
                lo[None],
                hi[None],
                inter,
                np.zeros((1, eng.n_hidden), dtype=np.int8),
            )
            out[node] = float(b[0])
            continue
        assert tree.split[node] == INPUT_SPLIT
        d, v = int(tree.index[node]), float(tree.value[node])
        h0, l1 = hi.copy(), lo.copy()
        h0[d], l1[d] = min(h0[d], v), max(l1[d], v)
        stack += [(int(kids[node, 0]), lo, h0), (int(kids[node, 1]), l1, hi)]
    return out


def test_inherit_false_bounds_each_leaf_from_its_own_box(cert: Certificate) -> None:
    tree = _tree(cert)
    own = dataclasses.replace(tree, recipe={**dict(tree.recipe), "inherit": False})
    case = PROP.cases[0]
    for net in (NET, _shift_output(NET, np.array([-0.015, 0.015]))):
        expect = _own_region_bounds(net, case, own)
        rep = replay_tree(net, case, own)
        failing = {int(i) for i in rep.failing}
        assert failing == {k for k, v in expect.items() if not v > 0.0}
        assert check_tree(net, case, own).ok == (not failing)
        if rep.failing.size:
            np.testing.assert_allclose(rep.bounds, [expect[int(i)] for i in rep.failing])


def test_a_recipe_whose_inherit_is_not_a_bool_is_refused(cert: Certificate) -> None:
    tree = _tree(cert)
    bad = dataclasses.replace(tree, recipe={**dict(tree.recipe), "inherit": "no"})
    res = check_tree(NET, PROP.cases[0], bad)
    assert not res.ok and "inherit must be true or false" in res.reason


def test_transferred_input_split_trees_bound_leaves_from_their_own_boxes(
    cert: Certificate,
) -> None:
    target, _ = magnitude_prune(NET, 0.1)
    res = transfer(cert, NET, target, verify_fallback=False)
    assert res.verdict is Verdict.VERIFIED and res.transferred
    assert _tree(res.certificate).recipe["inherit"] is False
    report = check(res.certificate, target, expected_property=PROP)
    assert report.ok and report.trust == "independent", report.reasons


@pytest.mark.parametrize("fallback", [True, False])
def test_replay_budget_is_capped_by_the_source_time(
    cert: Certificate, monkeypatch: pytest.MonkeyPatch, fallback: bool
) -> None:
    # with a fallback, a replay slower than the source's own verification is slower than
    # verifying the target directly: its deadline is at most the source's recorded time
    # (floored); without a fallback only the time limit's share bounds it
    transfer_module = sys.modules["nncert.certificates.transfer"]
    seen: list[float | None] = []
    real = transfer_module._replay_trees

    def spy(ev: object, prop: object, target: Network, deadline: float | None) -> object:
        seen.append(None if deadline is None else deadline - time.perf_counter())
        return real(ev, prop, target, deadline)

    monkeypatch.setattr(transfer_module, "_replay_trees", spy)
    slow = dataclasses.replace(cert, provenance=dataclasses.replace(cert.provenance, time=2.0))
    target = _shift_output(NET, np.array([-0.015, 0.015]))
    res = transfer(slow, NET, target, time_limit=100.0, verify_fallback=fallback)
    assert res.verdict is not Verdict.FALSIFIED
    (left,) = seen
    assert left is not None
    if fallback:
        cap = max(
            transfer_module.REPLAY_MIN_SECONDS, transfer_module.REPLAY_SOURCE_TIME_FACTOR * 2.0
        )
        assert left <= cap
    else:
        assert left > 40.0  # half of the time limit
