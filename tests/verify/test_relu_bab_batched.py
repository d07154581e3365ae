"""The batched ReLU-phase search (both children per engine call, optimised objective slopes).

Against brute force on random small networks: never "verified" when the exact MILP optimum is
``<= 0`` (and a clear-cut optimum is matched), every subdomain bound holds for sampled inputs
in the subdomain, the proof trees it records pass the independent checker (its recipe names
the slope iterations, so the checker re-derives the same leaves), and with an injected clock
no node batch ends after the deadline.

Children that recompute CROWN only for the layers just above their split (``child_crown``;
the layers further up take IBP on the recomputed ones, intersected with the parent's bounds):
sound against sampled inputs of the child's domain, recorded in the proof's recipe, re-derived
the same way by the checker (its bounds change with the key, so it does read it), and a forged
value is refused.

Filtered smart branching: its child estimates are the children's plain CROWN bounds (the
engine's rounding-accounted bound just below, no sampled point of a child below), and it only
ever splits an unstable, free neuron.
"""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nncert.verify.relu_bab as rb
from nncert.certificates.proofcheck import MAX_CHILD_CROWN, check_tree, recipe_problem
from nncert.formulations.milp import encode_milp
from nncert.solvers.base import SolveStatus
from nncert.solvers.highs_solver import HighsSolver
from nncert.verify.attack import AttackResult
from nncert.verify.bounds import child_crown_layers, interval_bounds
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.options import VerifyOptions
from nncert.verify.result import CaseContext
from nncert.verify.spec import Box, UnsafeCase

SOLVER = HighsSolver(mip_rel_gap=0.0)


def _net(rng: np.random.Generator, widths: list[int]) -> Network:
    layers: list[object] = []
    for i in range(len(widths) - 1):
        if i:
            layers.append(ReLU())
        w = rng.normal(size=(widths[i + 1], widths[i])) / np.sqrt(widths[i])
        layers.append(Dense(w, rng.normal(scale=0.3, size=widths[i + 1])))
    return Network(tuple(layers), input_shape=(widths[0],))  # type: ignore[arg-type]


def _ctx(seconds: float = 20.0, start: float | None = None) -> CaseContext:
    t = time.perf_counter() if start is None else start
    return CaseContext(VerifyOptions(), t + seconds, np.random.default_rng(0), None, 0, None)


def _milp_min(net: Network, case: UnsafeCase) -> float:
    res = SOLVER.solve(encode_milp(net, case, interval_bounds(net, case.input_box)))
    assert res.status is SolveStatus.OPTIMAL and res.objective is not None
    return float(res.objective)


def _case(rng: np.random.Generator, net: Network, shift: float) -> UnsafeCase:
    """A one-row case ``f_0 - f_1 <= t`` with ``t`` just below the sampled minimum + shift."""
    x0 = rng.uniform(-1, 1, net.n_inputs)
    box = Box(x0 - 0.6, x0 + 0.6)
    a = np.zeros((1, net.n_outputs))
    a[0, 0], a[0, 1] = 1.0, -1.0
    xs = box.sample(4000, rng)
    low = float((net.forward(xs) @ a.T).min())
    return UnsafeCase(box, a, np.array([low + shift]))


def _pre_activations(dense: list[Dense], x: np.ndarray) -> list[np.ndarray]:
    """The hidden pre-activations ``z_k`` of ``x`` (plain float64 forward pass)."""
    zs, a = [], x
    for d in dense[:-1]:
        z = d.weight @ a + d.bias
        zs.append(z)
        a = np.maximum(z, 0.0)
    return zs


def _free_node(dense: list[Dense], phases: list[np.ndarray], depth: int = 0) -> rb._Node:
    """A node with the given phases and no bounds yet."""
    return rb._Node(
        phases=[p.copy() for p in phases],
        lower=[np.full(d.n_out, -np.inf) for d in dense[:-1]],
        upper=[np.full(d.n_out, np.inf) for d in dense[:-1]],
        depth=depth,
    )


@pytest.fixture
def no_attack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Disable the root attack so branch and bound itself has to decide."""
    monkeypatch.setattr(
        rb,
        "pgd_attack",
        lambda network, case, **_: AttackResult(case.input_box.center, np.inf, 0),
    )


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), shift=st.sampled_from([-0.3, -0.05, -0.01, 0.02, 0.2]))
def test_verdicts_match_the_exact_milp_and_trees_check(
    no_attack: None, seed: int, shift: float
) -> None:
    rng = np.random.default_rng(seed)
    net = _net(rng, [4, 10, 10, 3])
    case = _case(rng, net, shift)
    opt = _milp_min(net, case)
    res = rb.relu_bab_case(net, case, _ctx(5.0))
    if res.status == "verified":
        assert opt > 0.0, (opt, res.stats)
        assert res.lower_bound is not None and res.lower_bound <= opt + 1e-6
        assert res.proof is not None
        assert res.proof.recipe.get("alpha_iters") == rb.ReluBabSettings().alpha_iters
        assert res.proof.recipe.get("root_alpha_iters") == rb.ReluBabSettings().root_alpha_iters
        chk = check_tree(net, case, res.proof)
        assert chk.ok, chk.reason
    elif res.status == "falsified":
        assert res.x is not None and case.input_box.contains(res.x)
        assert case.violation(net.forward(res.x[None]))[0] <= 0.0
    # a clear-cut optimum is matched unless the budget ran out (never the other answer)
    if opt > 1e-4:
        assert res.status in ("verified", "timeout"), (opt, res.status)
    elif opt < -1e-4:
        assert res.status in ("falsified", "timeout"), (opt, res.status)


def test_a_branching_proof_passes_the_checker(no_attack: None) -> None:
    # seeds whose proof needs splits: the tree, not only the root, is re-derived
    branched = 0
    for seed in range(15):
        rng = np.random.default_rng(seed)
        net = _net(rng, [4, 12, 12, 3])
        case = _case(rng, net, -0.3)
        res = rb.relu_bab_case(net, case, _ctx(5.0))
        if res.status != "verified":
            continue
        assert res.proof is not None
        chk = check_tree(net, case, res.proof)
        assert chk.ok, chk.reason
        branched += res.proof.n_nodes > 1
    assert branched >= 8


@pytest.mark.parametrize("seed", range(6))
def test_batched_subdomain_bounds_are_sound(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    net = _net(rng, [6, 8, 8, 6, 3])
    case = _case(rng, net, 0.0)
    bd = rb._Bounder(net, case)
    dense, _ = net.affine_and_activations()
    for x in case.input_box.sample(25, rng):
        zs = _pre_activations(dense, x)
        true = float(case.violation(net.forward(x[None]))[0])
        phases = [
            np.where(rng.random(z.size) < 0.5, np.where(z >= 0, 1, -1), 0).astype(np.int8)
            for z in zs
        ]
        nodes = [_free_node(dense, phases)]
        # a second node in the same batch, on the other side of one fixed neuron: x is not in
        # it, but its presence must not change the first node's bounds
        other = _free_node(dense, [-p for p in phases])
        ok, _ = rb._evaluate_batch(bd, [*nodes, other], -1, 8)
        assert ok[0], "a domain containing x was declared empty"
        node = nodes[0]
        assert node.bound <= true + 1e-9
        for k, z in enumerate(zs):
            assert np.all(node.lower[k] <= z + 1e-9) and np.all(z <= node.upper[k] + 1e-9)
        alone = _free_node(dense, phases)
        assert rb._evaluate_batch(bd, [alone], -1, 8)[0][0]
        if alone.bound > rb.CLOSE_TOL or node.bound > rb.CLOSE_TOL:
            # the slope steps end once every box of a batch closes, so a closed box's value
            # depends on its batch; whether it closes does not (the best bound of more steps
            # is never below that of fewer)
            assert alone.bound > rb.CLOSE_TOL and node.bound > rb.CLOSE_TOL
        else:
            # (the matrix products of another batch size may round differently in the last ulp)
            assert alone.bound == pytest.approx(node.bound, rel=1e-9, abs=1e-12)


class _Clock:
    """A fake ``time`` module: a round of node bounds takes 0.1 s of this clock per node."""

    def __init__(self) -> None:
        self.t = 1000.0

    def perf_counter(self) -> float:
        return self.t


def test_search_stops_before_its_budget_with_an_injected_clock(
    no_attack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    ends: list[float] = []
    real = rb._evaluate_groups

    def timed(
        bd: rb._Bounder, groups: list[tuple[list[rb._Node], int]], *args: object, **kw: object
    ) -> tuple[list[bool], float]:
        out = real(bd, groups, *args, **kw)  # type: ignore[arg-type]
        clock.t += 0.1 * sum(len(g) for g, _ in groups)
        ends.append(clock.t)
        return out

    monkeypatch.setattr(rb, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    monkeypatch.setattr(rb, "_evaluate_groups", timed)
    stopped = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        net = _net(rng, [4, 24, 24, 24, 3])
        case = _case(rng, net, 0.01)
        ends.clear()
        deadline_in = 2.5
        start = clock.t
        res = rb.relu_bab_case(net, case, _ctx(deadline_in, start=start))
        assert all(e <= start + deadline_in + 1e-9 for e in ends), (ends, start)
        if res.status == "timeout":
            stopped += 1
            # rounds shrink to fit: it stops only when not even one split (two children,
            # 0.2 s) fits in what is left
            assert start + deadline_in - ends[-1] <= 0.2 + 1e-9, (ends, start)
            assert len(ends) > 4
    assert stopped >= 2


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), shift=st.sampled_from([-0.3, -0.01, 0.02, 0.2]))
def test_given_root_bounds_keep_the_verdict_sound(no_attack: None, seed: int, shift: float) -> None:
    # a replay's grafted search starts from the bounds the leaf's ancestors impose: here the
    # box's refined hidden-layer bounds (sound), given with phases fixed on no neuron
    rng = np.random.default_rng(seed)
    net = _net(rng, [4, 10, 10, 3])
    case = _case(rng, net, shift)
    opt = _milp_min(net, case)
    eng = rb.engine_for(net)
    box = case.input_box
    ref = eng.refine_intermediate(box.lower[None, :], box.upper[None, :], 10)
    assert ref is not None
    pl, pu = ref.stacked()
    free = np.zeros(pl.shape[1], dtype=np.int8)
    res = rb.relu_bab_case(net, case, _ctx(5.0), root_phases=free, root_bounds=(pl[0], pu[0]))
    if res.status == "verified":
        assert opt > 0.0, (opt, res.stats)
    elif res.status == "falsified":
        assert res.x is not None and case.violation(net.forward(res.x[None]))[0] <= 0.0
    if opt > 1e-4:
        assert res.status in ("verified", "timeout"), (opt, res.status)
    elif opt < -1e-4:
        assert res.status in ("falsified", "timeout"), (opt, res.status)
    # bounds of the wrong size are refused, never trusted
    bad = rb.relu_bab_case(net, case, _ctx(5.0), root_bounds=(pl[0][:-1], pu[0][:-1]))
    assert bad.status == "unknown"


def test_an_abandoned_root_refinement_leaves_a_plain_search(
    no_attack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the refinement's share of the budget ran out (simulated): the search goes on from
    # plain CROWN bounds, its proof does not name the refinement, and the checker agrees
    rng = np.random.default_rng(7)
    net = _net(rng, [4, 12, 12, 3])
    case = _case(rng, net, -0.3)
    eng = rb.engine_for(net)
    monkeypatch.setattr(eng, "refine_intermediate", lambda *a, **k: None)
    res = rb.relu_bab_case(net, case, _ctx(5.0))
    assert res.status == "verified" and res.proof is not None
    assert "root_alpha_iters" not in res.proof.recipe
    assert check_tree(net, case, res.proof).ok


def test_child_crown_layers() -> None:
    assert child_crown_layers(2, None) is None
    assert child_crown_layers(-1, 1) is None  # the root recomputes every layer
    assert child_crown_layers(0, 1) == 2
    assert child_crown_layers(3, 0) == 4  # no CROWN layer above the split
    assert rb.ReluBabSettings().child_crown == rb.CHILD_CROWN


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("child_crown", [0, 1, None])
def test_children_bounds_hold_on_their_domain(seed: int, child_crown: int | None) -> None:
    rng = np.random.default_rng(300 + seed)
    net = _net(rng, [5, 8, 8, 8, 8, 3])
    case = _case(rng, net, 0.0)
    bd = rb._Bounder(net, case)
    dense, _ = net.affine_and_activations()
    h = len(dense) - 1

    for x in case.input_box.sample(12, rng):
        zs = _pre_activations(dense, x)
        true = float(case.violation(net.forward(x[None]))[0])
        parent = _free_node(dense, [np.zeros(z.size, dtype=np.int8) for z in zs])
        assert rb._evaluate_batch(bd, [parent], -1, 0)[0][0]
        # the parent's unstable neuron on a random layer, split on x's side
        for m in rng.permutation(h):
            unst = np.flatnonzero((parent.lower[m] < 0.0) & (parent.upper[m] > 0.0))
            if unst.size:
                break
        else:
            continue
        i = int(rng.choice(unst))
        child = rb._Node(
            phases=[p.copy() for p in parent.phases],
            lower=list(parent.lower),
            upper=list(parent.upper),
            depth=1,
        )
        child.phases[m][i] = 1 if zs[m][i] >= 0.0 else -1
        ok, _ = rb._evaluate_batch(bd, [child], int(m), 6, child_crown=child_crown)
        assert ok[0], "a domain containing x was declared empty"
        assert child.bound <= true + 1e-9
        for k, z in enumerate(zs):
            assert np.all(child.lower[k] <= z + 1e-9), (k, m)
            assert np.all(z <= child.upper[k] + 1e-9), (k, m)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    shift=st.sampled_from([-0.3, -0.05, 0.02, 0.2]),
    child_crown=st.sampled_from([0, 1]),
)
def test_trees_searched_with_child_crown_are_sound_and_check(
    no_attack: None, seed: int, shift: float, child_crown: int
) -> None:
    rng = np.random.default_rng(seed)
    net = _net(rng, [4, 10, 10, 10, 3])
    case = _case(rng, net, shift)
    opt = _milp_min(net, case)
    cfg = rb.ReluBabSettings(child_crown=child_crown)
    out = rb.relu_bab_case(net, case, _ctx(10.0), settings=cfg)
    if out.status == "verified":
        assert opt > 0.0, (opt, out.stats)
        assert out.proof is not None and out.proof.recipe["child_crown"] == child_crown
        chk = check_tree(net, case, out.proof)
        assert chk.ok, chk.reason
    elif out.status == "falsified":
        assert out.x is not None and case.violation(net.forward(out.x[None]))[0] <= 0.0
    if opt > 1e-4:
        assert out.status in ("verified", "timeout"), (opt, out.status)
    elif opt < -1e-4:
        assert out.status in ("falsified", "timeout"), (opt, out.status)


def test_the_checker_recomputes_as_the_recipe_says(no_attack: None) -> None:
    # with child_crown = 0 a child's layers above its split get IBP only; the checker must
    # walk the same way: its smallest leaf bound changes when the key is dropped (then every
    # layer gets CROWN), and the tree checks as recorded
    changed = branched = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        net = _net(rng, [4, 12, 12, 12, 3])
        case = _case(rng, net, -0.3)
        cfg = rb.ReluBabSettings(child_crown=0, alpha_iters=0, root_alpha_iters=0)
        out = rb.relu_bab_case(net, case, _ctx(10.0), settings=cfg)
        if out.status != "verified" or out.proof is None or out.proof.n_nodes < 3:
            continue
        branched += 1
        tree = out.proof
        chk = check_tree(net, case, tree)
        assert chk.ok, chk.reason
        assert chk.min_bound == pytest.approx(out.lower_bound, rel=1e-9, abs=1e-12)
        plain = dataclasses.replace(
            tree, recipe={k: v for k, v in tree.recipe.items() if k != "child_crown"}
        )
        other = check_tree(net, case, plain)
        changed += (not other.ok) or other.min_bound != chk.min_bound
    assert branched >= 3
    assert changed >= 1


@pytest.mark.parametrize("bad", [True, -1, MAX_CHILD_CROWN + 1, 1.5, "1"])
def test_a_forged_child_crown_is_refused(no_attack: None, bad: object) -> None:
    assert "child_crown" in recipe_problem({"child_crown": bad})
    rng = np.random.default_rng(1)
    net = _net(rng, [4, 12, 12, 3])
    case = _case(rng, net, -0.3)
    out = rb.relu_bab_case(net, case, _ctx(10.0))
    assert out.status == "verified" and out.proof is not None
    forged = dataclasses.replace(out.proof, recipe={**out.proof.recipe, "child_crown": bad})
    chk = check_tree(net, case, forged)
    assert not chk.ok and "child_crown" in chk.reason


@pytest.mark.parametrize("good", [0, 1, MAX_CHILD_CROWN, None])
def test_acceptable_child_crown_values(good: object) -> None:
    assert recipe_problem({"child_crown": good}) == ""


def _evaluated(seed: int, widths: list[int]) -> tuple[UnsafeCase, Network, rb._Bounder, rb._Node]:
    """A random case with its root node bounded (no phases), CROWN slopes only."""
    rng = np.random.default_rng(seed)
    net = _net(rng, widths)
    case = _case(rng, net, 0.0)
    bd = rb._Bounder(net, case)
    dense, _ = net.affine_and_activations()
    node = _free_node(dense, [np.zeros(d.n_out, dtype=np.int8) for d in dense[:-1]])
    assert rb._evaluate_batch(bd, [node], -1, 0)[0][0]
    return case, net, bd, node


def _inter_and_lams(bd: rb._Bounder, node: rb._Node) -> tuple[object, list[np.ndarray]]:
    eng = bd.engine
    lo = np.concatenate(node.lower)[None, :]
    hi = np.concatenate(node.upper)[None, :]
    inter = eng.intermediate(bd.lo2, bd.hi2, "crown", prior=(lo, hi), fixed_below=bd.n_hidden)
    lam, const, err = eng.spec_start(bd.A, bd.rhs, inter, bd.xmag)
    _, _, lams = eng.backsub(lam, const, err, bd.n_hidden - 1, inter, bd.xmag, keep=True)
    return inter, lams


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("chunked", [False, True])
def test_fsb_child_estimates_are_crown_bounds_of_the_children(
    seed: int, chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each estimate is the plain CROWN bound of the child with the split neuron's relaxation
    # replaced by its phase: the engine's rounding-accounted back-substitution with the same
    # lines agrees with it up to the estimate's single precision below the split layer, and
    # no sampled point of the child's domain lies below it (chunked: two variants at a time,
    # as on layers too wide for one pass)
    if chunked:
        monkeypatch.setattr(rb, "_FSB_CHUNK_ENTRIES", 1)
    case, net, bd, node = _evaluated(400 + seed, [5, 9, 9, 9, 3])
    inter, lams = _inter_and_lams(bd, node)
    unst = [
        (j, i)
        for j in range(bd.n_hidden)
        for i in range(node.lower[j].size)
        if node.lower[j][i] < 0.0 < node.upper[j][i]
    ]
    assert unst
    layer = np.array([j for j, _ in unst for _ in (0, 1)])
    neuron = np.array([i for _, i in unst for _ in (0, 1)])
    active = np.tile(np.array([True, False]), len(unst))
    box = np.zeros(layer.size, dtype=np.intp)
    rows = np.zeros(1, dtype=np.intp)
    coefs = rb._row_coefficients(lams, rows)
    est = rb._fsb_child_bounds(bd, inter, coefs, rows, box, layer, neuron, active)
    eng = bd.engine
    lam, const, err = eng.spec_start(bd.A, bd.rhs, inter, bd.xmag)
    for v in range(layer.size):
        rel = []
        for k, r in enumerate(inter.rel):
            arrs = [np.array(a, dtype=np.float64) for a in r]
            if k == layer[v]:
                arrs[0][0, neuron[v]] = arrs[2][0, neuron[v]] = 1.0 if active[v] else 0.0
                arrs[1][0, neuron[v]] = arrs[3][0, neuron[v]] = 0.0
            rel.append(type(r)(*arrs))
        coef, off, _ = eng.backsub(lam, const, err, bd.n_hidden - 1, inter, bd.xmag, rel=rel)
        sound = float(eng.concretize_lower(coef, off, bd.lo2, bd.hi2)[0, 0])
        assert abs(est[v] - sound) <= 1e-5 * (1.0 + abs(sound)), (v, sound, est[v])
    dense, _ = net.affine_and_activations()
    for x in case.input_box.sample(400, np.random.default_rng(seed)):
        zs = _pre_activations(dense, x)
        true = float(case.violation(net.forward(x[None]))[0])
        side = np.array([zs[j][i] >= 0.0 for j, i in zip(layer, neuron)])
        on = side == active  # x lies in these children
        assert np.all(est[on] <= true + 1e-5 * (1.0 + abs(true)))


@pytest.mark.parametrize("seed", range(5))
def test_fsb_chooses_an_unstable_free_neuron(seed: int) -> None:
    _, _, bd, node = _evaluated(500 + seed, [5, 9, 9, 3])
    rng = np.random.default_rng(seed)
    # fix a random half of the unstable neurons: they are no longer candidates
    for j in range(bd.n_hidden):
        unst = (node.lower[j] < 0.0) & (node.upper[j] > 0.0)
        node.phases[j] = np.where(unst & (rng.random(unst.size) < 0.5), 1, 0).astype(np.int8)
    inter, lams = _inter_and_lams(bd, node)
    free = [
        (j, i)
        for j in range(bd.n_hidden)
        for i in range(node.lower[j].size)
        if node.lower[j][i] < 0.0 < node.upper[j][i] and node.phases[j][i] == 0
    ]
    rows = np.zeros(1, dtype=np.intp)
    for k in (1, 3, 50):
        (pick,) = rb._fsb_splits(bd, [node], inter, lams, rows, k)
        assert (pick is None) == (not free)
        assert pick is None or pick in free
        if k == 1 and pick is not None:  # one candidate: the BaBSR choice itself
            assert pick == rb._split_choice(bd, node, lams, 0, 0)
    # every neuron fixed: nothing to split
    node.phases = [np.where(lo >= 0.0, 1, -1).astype(np.int8) for lo in node.lower]
    assert rb._fsb_splits(bd, [node], inter, lams, rows, 8) == [None]
