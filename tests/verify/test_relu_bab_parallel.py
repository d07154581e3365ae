"""One case's ReLU-phase search on several worker processes (``relu_bab_case_parallel``).

The search runs until enough nodes are open, hands them to worker processes as pieces (each
searched from its parent's bounds, bounded as a child of its split, as the checker's walk
bounds it) and grafts their trees into one proof:

* verdicts against the exact MILP on random networks, with the root attack disabled (so the
  pieces' searches decide), and every grafted proof re-derived by ``check_tree``;
* a counterexample found in a piece is replayed and decides;
* the run ends at its deadline (real MNIST network, a hard case, a 3 s budget);
* ``verify`` with ``jobs=2`` and one open case takes this route, with the serial verdict.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from test_relu_bab_batched import _case, _ctx, _milp_min, _net

import nncert.verify.relu_bab as rb
from nncert.certificates.proofcheck import check_tree
from nncert.verify import pipeline
from nncert.verify.attack import AttackResult
from nncert.verify.importers import from_onnx
from nncert.verify.options import VerifyOptions
from nncert.verify.result import Verdict
from nncert.verify.spec import Property
from nncert.verify.vnnlib import load_vnnlib

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "vnncomp" / "mnistfc"


@pytest.fixture
def no_attack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Disable the root attacks (the first search's and every piece's: the workers are forked
    after the patch) so that the searches decide."""
    monkeypatch.setattr(
        rb,
        "pgd_attack",
        lambda network, case, **_: AttackResult(case.input_box.center, np.inf, 0),
    )


@pytest.mark.parametrize("shift", [-0.3, -0.05, 0.02])
def test_pieces_match_the_exact_milp_and_their_grafted_proofs_check(
    no_attack: None, shift: float
) -> None:
    split = decided = 0
    for seed in range(6):
        rng = np.random.default_rng(900 + seed)
        net = _net(rng, [4, 12, 12, 12, 3])
        case = _case(rng, net, shift)
        opt = _milp_min(net, case)
        res = rb.relu_bab_case_parallel(net, case, _ctx(8.0), jobs=2, pieces=3)
        split += int("pieces" in res.stats)
        if res.status == "verified":
            assert opt > 0.0, (seed, opt, res.stats)
            assert res.lower_bound is not None and res.lower_bound <= opt + 1e-6
            assert res.proof is not None
            chk = check_tree(net, case, res.proof)
            assert chk.ok, (seed, chk.reason)
        elif res.status == "falsified":
            assert res.x is not None and case.input_box.contains(res.x)
            assert case.violation(net.forward(res.x[None]))[0] <= 0.0
        else:  # a timeout's bound is still a proven one
            assert res.status == "timeout", (seed, opt, res.status)
            assert res.lower_bound is not None and res.lower_bound <= opt + 1e-6
        # a clear-cut optimum is matched unless the budget ran out (never the other answer)
        if opt > 1e-4:
            assert res.status in ("verified", "timeout"), (seed, opt, res.status)
        elif opt < -1e-4:
            assert res.status in ("falsified", "timeout"), (seed, opt, res.status)
        decided += int(res.status in ("verified", "falsified"))
    assert decided >= 4
    if shift == -0.05:  # just below the sampled minimum: the searches branch
        assert split > 0  # some cases did go to the workers


def test_a_piece_without_its_graft_fails_the_checker(no_attack: None) -> None:
    # the grafted trees carry the proof: with one piece left open the checker refuses the tree,
    # with every piece grafted it accepts it
    from nncert.verify.proof import ProofRecorder

    def search(net: object, case: object, pc: rb.Piece) -> object:
        opts = VerifyOptions()
        return rb._piece_task(net, case, opts, time.time() + 10.0, (0,), 0, pc, rb.DEFAULT_SETTINGS)  # type: ignore[arg-type]

    for seed in range(20):
        rng = np.random.default_rng(900 + seed)
        net = _net(rng, [4, 12, 12, 12, 3])
        case = _case(rng, net, -0.05)
        frontier: list[rb.Piece] = []
        first = rb.relu_bab_case(net, case, _ctx(20.0), split_at=3, frontier_out=frontier)
        if first.status != "split":
            continue
        assert first.proof is not None and len(frontier) >= 3
        subs = [search(net, case, pc) for pc in frontier]
        if any(s.status != "verified" for s in subs):  # type: ignore[attr-defined]
            continue
        rec = ProofRecorder(recipe=dict(first.proof.recipe))
        rec.graft(rec.root(), first.proof)
        for pc, sub in list(zip(frontier, subs))[1:]:
            rec.graft(pc.id, sub.proof)  # type: ignore[attr-defined]
        assert not check_tree(net, case, rec.tree()).ok
        rec.graft(frontier[0].id, subs[0].proof)  # type: ignore[attr-defined]
        chk = check_tree(net, case, rec.tree())
        assert chk.ok, chk.reason
        return
    pytest.fail("no seed split into pieces that all verify")


@pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST-FC suite not present")
def test_the_parallel_search_ends_at_its_deadline() -> None:
    net = from_onnx(str(MNIST / "onnx" / "mnist-net_256x4.onnx")).normalized()
    case = load_vnnlib(str(MNIST / "vnnlib" / "prop_0_0.05.vnnlib")).cases[6]
    t0 = time.perf_counter()
    res = rb.relu_bab_case_parallel(net, case, _ctx(3.0, t0), jobs=2)
    wall = time.perf_counter() - t0
    assert res.status == "timeout"
    assert res.exact and res.lower_bound is not None and res.lower_bound < 0.0
    assert wall <= 3.0 + 0.5, wall


@pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST-FC suite not present")
def test_verify_with_two_jobs_searches_a_single_case_on_the_workers() -> None:
    net = from_onnx(str(MNIST / "onnx" / "mnist-net_256x4.onnx"))
    case = load_vnnlib(str(MNIST / "vnnlib" / "prop_10_0.05.vnnlib")).cases[1]
    prop = Property((case,))
    kw = {"method": "relu_bab", "time_limit": 120, "attack": False}
    one = pipeline.verify(net, prop, jobs=1, **kw)
    two = pipeline.verify(net, prop, jobs=2, **kw)
    assert one.verdict is two.verdict is Verdict.VERIFIED
    assert "pieces" not in one.stats["relu_bab"][0]
    assert two.stats["relu_bab"][0]["pieces"] >= 2
    (ev,) = two.evidence
    assert ev.proof is not None
    assert check_tree(net.normalized(), case, ev.proof).ok
