"""The proof-tree checker: genuine trees from both searches are accepted, forgeries rejected.

Trees come from the real searches (input-split branch and bound on low-dimensional networks,
ReLU-phase branch and bound); forgeries edit them the way an attacker would (a leaf dropped, a
split point moved, a phase split made one-sided, multipliers edited, the tree grafted onto a
falsifiable twin property over the same box). Hypothesis: on random small networks, no tree is
ever accepted for a case that has a counterexample (checked by brute force).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncert.certificates.proofcheck import check_tree
from nncert.verify.bab import BabOptions, bab_verify
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.options import VerifyOptions
from nncert.verify.proof import (
    CLOSED_BY_BOUND,
    CLOSED_BY_EMPTY,
    CLOSED_BY_LP,
    INPUT_SPLIT,
    LEAF,
    PHASE_SPLIT,
    ProofRecorder,
    ProofTree,
)
from nncert.verify.relu_bab import relu_bab_case
from nncert.verify.result import CaseContext
from nncert.verify.spec import Box, Property, UnsafeCase


def _net(seed: int, sizes: list[int]) -> Network:
    rng = np.random.default_rng(seed)
    layers: list[object] = []
    for a, b in itertools.pairwise(sizes):
        layers += [Dense(rng.standard_normal((b, a)) / np.sqrt(a), 0.3 * rng.standard_normal(b))]
        layers.append(ReLU())
    return Network(tuple(layers[:-1]), input_shape=(sizes[0],))  # type: ignore[arg-type]


def _grid_min(net: Network, case: UnsafeCase, n: int = 101) -> float:
    box = case.input_box
    axes = [np.linspace(lo, hi, n) for lo, hi in zip(box.lower, box.upper)]
    xs = np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, box.dim)
    return float(case.violation(net.forward(xs)).min())


def _input_split_case(seed: int = 1) -> tuple[Network, UnsafeCase, ProofTree]:
    """A 2-input network, a case that needs splitting, and bab's tree for it."""
    net = _net(seed, [2, 12, 12, 2])
    box = Box(-np.ones(2), np.ones(2))
    A = np.array([[1.0, -1.0]])
    m = _grid_min(net, UnsafeCase(box, A, [0.0]))
    case = UnsafeCase(box, A, [m - 0.05])  # true min >= m - L h/2; 0.05 is ample here
    res = bab_verify(net, Property((case,)), time_limit=30, options=BabOptions(seed=0))
    assert res.verdict.value == "verified"
    tree = res.stats["proofs"][0]
    assert tree is not None and tree.n_nodes > 3
    return net, case, tree


def _relu_case() -> tuple[Network, UnsafeCase, ProofTree]:
    """ReLU-phase branch and bound's tree for a 6-input case (split phases, LP leaves)."""
    for seed, eps in itertools.product(range(30), (0.1, 0.2, 0.3, 0.45)):
        net = _net(seed, [6, 12, 12, 3])
        x0 = np.random.default_rng(seed).uniform(-1, 1, 6)
        y = net.forward(x0)
        label = int(np.argmax(y))
        j = int(np.argsort(y)[-2])  # the runner-up
        A = np.zeros((1, 3))
        A[0, label], A[0, j] = 1.0, -1.0  # unsafe: y_label - y_j <= 0
        case = UnsafeCase(Box(x0 - eps, x0 + eps), A, np.zeros(1))
        ctx = CaseContext(
            options=VerifyOptions(),
            deadline=time.perf_counter() + 20,
            rng=np.random.default_rng(0),
            progress=None,
            case_index=0,
            best_x=None,
        )
        out = relu_bab_case(net, case, ctx)
        if out.status == "verified" and out.proof is not None and out.proof.n_nodes > 5:
            return net, case, out.proof
    pytest.skip("no random case needed phase splits")


def _lp_case() -> tuple[Network, UnsafeCase, ProofTree]:
    """A small ReLU network whose phase tree has LP leaves (every neuron fixed)."""
    for seed, eps in itertools.product(range(60), (0.3, 0.6, 1.0)):
        net = _net(seed, [3, 3, 3, 2])
        x0 = np.random.default_rng(seed).uniform(-1, 1, 3)
        y = net.forward(x0)
        label = int(np.argmax(y))
        A = np.zeros((1, 2))
        A[0, label], A[0, 1 - label] = 1.0, -1.0
        case = UnsafeCase(Box(x0 - eps, x0 + eps), A, np.zeros(1))
        ctx = CaseContext(
            options=VerifyOptions(),
            deadline=time.perf_counter() + 10,
            rng=np.random.default_rng(0),
            progress=None,
            case_index=0,
            best_x=None,
        )
        out = relu_bab_case(net, case, ctx)
        if out.status == "verified" and out.proof is not None:
            tree = out.proof
            if np.any(tree.closed_by == CLOSED_BY_LP):
                # keep a tree whose LP leaves need their multipliers (the plain bound fails)
                plain = _with(tree, param_len=np.zeros_like(tree.param_len))
                if not check_tree(net, case, plain).ok:
                    return net, case, tree
    pytest.skip("no random case needed an LP leaf")


@pytest.fixture(scope="module")
def lp_tree() -> tuple[Network, UnsafeCase, ProofTree]:
    return _lp_case()


def test_genuine_lp_leaves_are_accepted(lp_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = lp_tree
    report = check_tree(net, case, tree)
    assert report.ok, report.reason


@pytest.fixture(scope="module")
def input_tree() -> tuple[Network, UnsafeCase, ProofTree]:
    return _input_split_case()


@pytest.fixture(scope="module")
def relu_tree() -> tuple[Network, UnsafeCase, ProofTree]:
    return _relu_case()


def _with(tree: ProofTree, **arrays: np.ndarray) -> ProofTree:
    return replace(tree, **arrays)


# --------------------------------------------------------------------------------------------
# genuine trees
# --------------------------------------------------------------------------------------------


def test_genuine_input_split_tree_is_accepted(input_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = input_tree
    report = check_tree(net, case, tree)
    assert report.ok, report.reason
    assert report.min_bound > 0.0
    assert np.any(tree.split == INPUT_SPLIT)


def test_genuine_relu_tree_is_accepted(relu_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = relu_tree
    report = check_tree(net, case, tree)
    assert report.ok, report.reason
    assert np.any(tree.split == PHASE_SPLIT)


# --------------------------------------------------------------------------------------------
# forgeries
# --------------------------------------------------------------------------------------------


def test_a_dropped_leaf_is_rejected(input_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = input_tree
    leaf = int(tree.leaves[-1])
    closed = tree.closed_by.copy()
    closed[leaf] = 0
    assert "not closed" in check_tree(net, case, _with(tree, closed_by=closed)).reason
    # or the whole subtree cut off: its parent claimed closed as a leaf
    parent = int(tree.parent[leaf])
    keep = np.flatnonzero(tree.parent != parent)
    keep = keep[keep <= max(int(k) for k in keep)]
    split = tree.split.copy()
    split[parent] = LEAF
    closed = tree.closed_by.copy()
    closed[parent] = CLOSED_BY_BOUND
    forged = _with(tree, split=split, closed_by=closed)
    assert not check_tree(net, case, forged).ok


def test_a_moved_split_point_is_rejected_or_harmless(input_tree: tuple) -> None:  # type: ignore[type-arg]
    """Moving a split point keeps coverage (children are rebuilt from it) but changes the
    regions; a leaf that no longer closes must be reported."""
    net, case, tree = input_tree
    splits = np.flatnonzero(tree.split == INPUT_SPLIT)
    rejected = 0
    for k in splits[:10]:
        value = tree.value.copy()
        d = int(tree.index[k])
        value[k] = case.input_box.upper[d] + 1.0  # everything goes to side 0
        report = check_tree(net, case, _with(tree, value=value))
        rejected += not report.ok
    assert rejected > 0


def test_a_one_sided_phase_split_is_rejected(relu_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = relu_tree
    k = int(np.flatnonzero(tree.split == PHASE_SPLIT)[0])
    side = tree.side.copy()
    kids = np.flatnonzero(tree.parent == k)
    side[kids] = 0  # both children claim the active side
    report = check_tree(net, case, _with(tree, side=side))
    assert not report.ok and "one child on each side" in report.reason


def test_edited_multipliers_are_rejected(lp_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = lp_tree
    params = tree.params.copy()
    params[:] = 0.0
    assert not check_tree(net, case, _with(tree, params=params)).ok


def test_tree_grafted_onto_a_falsifiable_twin_is_rejected(input_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = input_tree
    m = _grid_min(net, case)
    twin = UnsafeCase(case.input_box, case.A, case.b + m + 1e-3)  # now a grid point violates
    assert _grid_min(net, twin) <= 0.0
    assert not check_tree(net, twin, tree).ok


def test_a_false_empty_claim_is_rejected(input_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = input_tree
    closed = tree.closed_by.copy()
    closed[tree.leaves[0]] = CLOSED_BY_EMPTY
    report = check_tree(net, case, _with(tree, closed_by=closed))
    assert not report.ok and "empty" in report.reason


def test_out_of_range_indices_are_rejected(input_tree: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = input_tree
    index = tree.index.copy()
    index[0] = 99
    assert "dimension" in check_tree(net, case, _with(tree, index=index)).reason


# --------------------------------------------------------------------------------------------
# Hypothesis: no tree is accepted for a falsifiable case
# --------------------------------------------------------------------------------------------


@st.composite
def _forged(draw: st.DrawFn) -> tuple[Network, UnsafeCase, ProofTree]:
    seed = draw(st.integers(0, 10_000))
    net = _net(seed, [2, draw(st.integers(2, 6)), 2])
    box = Box(-np.ones(2), np.ones(2))
    A = np.array([[1.0, -1.0]])
    m = _grid_min(net, UnsafeCase(box, A, [0.0]), n=41)
    case = UnsafeCase(box, A, [m + draw(st.floats(0.0, 0.5))])  # a grid point violates it
    # a random tree of input splits, all leaves claimed closed (some by emptiness)
    rec = ProofRecorder(recipe={"intermediate": draw(st.sampled_from(["ibp", "crown"]))})
    open_ = [(rec.root(), box.lower.copy(), box.upper.copy())]
    for _ in range(draw(st.integers(0, 12))):
        k = draw(st.integers(0, len(open_) - 1))
        node, lo, hi = open_.pop(k)
        d = draw(st.integers(0, 1))
        s = draw(st.floats(-1.2, 1.2))
        a, b = rec.split(node, INPUT_SPLIT, d, s)
        hi0, lo1 = hi.copy(), lo.copy()
        hi0[d], lo1[d] = min(hi[d], s), max(lo[d], s)
        open_ += [(a, lo, hi0), (b, lo1, hi)]
    for node, _, _ in open_:
        rec.close(node, draw(st.sampled_from([CLOSED_BY_BOUND, CLOSED_BY_EMPTY])))
    return net, case, rec.tree()


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(_forged())
def test_no_tree_proves_a_falsifiable_case(data: tuple) -> None:  # type: ignore[type-arg]
    net, case, tree = data
    assert _grid_min(net, case, n=41) <= 0.0
    assert not check_tree(net, case, tree).ok
