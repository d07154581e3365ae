"""Multipliers of split constraints (beta-CROWN) in the optimised-slope steps.

* Soundness: on random ReLU networks, with random phase constraints that hold on a region of
  the box and random starting multipliers (large ones included), the bound with multipliers
  optimised alongside the slopes never exceeds the objective at any sampled point of that
  region (:meth:`~nncert.verify.bounds.BoundEngine.bound` with ``beta_sign``).
* Batch independence: a box's bound does not depend on the other boxes of its batch (the
  checker bounds a leaf among other leaves than the search did), up to the last bits: the
  matrix products of the gradient steps may round differently for another batch size.
* On the real ``mnist-net_256x4`` with ``prop_8_0.03``, the ReLU-phase search records the
  multipliers each closed leaf started from; the checker re-derives the trees, and the same
  trees without the recipe's ``beta_lr``, or with the records zeroed, fail to check (so the
  checker really uses both).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nets import pre_activations, seeded_network
from strategies import networks_and_boxes

from nncert.certificates.proofcheck import check_tree
from nncert.verify.bounds import engine_for
from nncert.verify.importers import from_onnx
from nncert.verify.network import Network, ReLU
from nncert.verify.options import VerifyOptions
from nncert.verify.relu_bab import ReluBabSettings, relu_bab_case
from nncert.verify.result import CaseContext
from nncert.verify.spec import Box
from nncert.verify.vnnlib import load_vnnlib

MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks" / "vnncomp" / "mnistfc"


def _region(
    net: Network, box: Box, rng: np.random.Generator, share: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples of ``box``, the phases (stacked hidden neurons) of a random subset of neurons
    taken from one sample, and which samples satisfy them."""
    x = box.sample(2000, rng)
    hidden = np.concatenate(pre_activations(net, x)[:-1], axis=1)
    anchor = hidden[0]
    pick = rng.random(anchor.size) < share
    phase = np.where(pick, np.where(anchor >= 0.0, 1, -1), 0).astype(np.int8)
    inside = np.all(phase * hidden >= 0.0, axis=1)
    return x, phase, inside


@settings(max_examples=60, deadline=None)
@given(
    net_box=networks_and_boxes(activation=ReLU),
    seed=st.integers(0, 2**32 - 1),
    iters=st.integers(1, 12),
    scale=st.sampled_from([0.0, 0.1, 1.0, 100.0]),
    lr=st.sampled_from([0.01, 0.05, 1.0]),
)
def test_bounds_with_multipliers_hold_on_the_constrained_region(
    net_box: tuple[Network, Box], seed: int, iters: int, scale: float, lr: float
) -> None:
    net, box = net_box
    eng = engine_for(net)
    if len(eng.offsets) < 2 or eng.offsets[-1] == 0:
        return
    rng = np.random.default_rng(seed)
    x, phase, inside = _region(net, box, rng, share=float(rng.uniform(0.2, 0.8)))
    lo, hi = box.lower[None, :], box.upper[None, :]
    plain = eng.intermediate(lo, hi, "crown")
    pl, pu = plain.stacked()
    # the region's bounds: the box's, clipped by the phases (as the search does)
    pl = np.where(phase > 0, np.maximum(pl, 0.0), pl)
    pu = np.where(phase < 0, np.minimum(pu, 0.0), pu)
    inter = eng.intermediate(lo, hi, "crown", prior=(pl, pu))
    assert not inter.empty[0]  # the anchor sample lies in the region
    R = int(rng.integers(1, 3))
    A = rng.normal(size=(R, net.n_outputs))
    b = rng.normal(size=R)
    offs = eng.offsets
    signs = [phase[None, offs[j] : offs[j + 1]].astype(np.float64) for j in range(len(offs) - 1)]
    init = [scale * rng.random((1, R, int(offs[j + 1] - offs[j]))) for j in range(len(offs) - 1)]
    out: list[np.ndarray | None] = []
    res = eng.bound(
        lo,
        hi,
        A,
        b,
        inter=inter,
        alpha_iters=iters,
        beta_sign=signs,
        beta_init=init,
        beta_out=out,
        beta_lr=lr,
    )
    g = net.forward(x[inside]) @ A.T - b
    assert np.all(res.lower[0] <= g.min(axis=0) + 1e-12), (res.lower[0], g.min(axis=0))
    for sg, bt in zip(signs, out):
        if bt is not None:
            assert np.all(bt >= 0.0) and np.all(bt[:, :, sg[0] == 0] == 0.0)


def test_a_box_bound_does_not_depend_on_its_batch() -> None:
    rng = np.random.default_rng(7)
    net = seeded_network(7, [5, 16, 16, 16, 3], [ReLU()] * 3, scale=1.0)
    eng = engine_for(net)
    n = 6
    lo = rng.uniform(-1, 0, size=(n, 5))
    hi = lo + 0.6
    inter = eng.intermediate(lo, hi, "crown")
    h = len(eng.offsets) - 1
    offs = eng.offsets
    pl, pu = inter.stacked()
    unst = (pl < 0) & (pu > 0)
    phase = np.zeros((n, int(offs[-1])), dtype=np.int8)
    for k in range(1, n):  # box 0 without constraints; others with some
        idx = np.flatnonzero(unst[k])[:k]
        phase[k, idx] = np.where(rng.random(idx.size) < 0.5, 1, -1)
    pl = np.where(phase > 0, np.maximum(pl, 0.0), pl)
    pu = np.where(phase < 0, np.minimum(pu, 0.0), pu)
    inter = eng.intermediate(lo, hi, "crown", prior=(pl, pu))
    A, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    signs = [phase[:, offs[j] : offs[j + 1]].astype(np.float64) for j in range(h)]
    init = [rng.random((n, 2, int(offs[j + 1] - offs[j]))) for j in range(h)]

    def run(ids: np.ndarray) -> np.ndarray:
        return eng.bound(
            lo[ids],
            hi[ids],
            A,
            b,
            inter=inter.take(ids),
            alpha_iters=6,
            beta_sign=[s[ids] for s in signs],
            beta_init=[i_[ids] for i_ in init],
            beta_lr=0.05,
        ).lower

    whole = run(np.arange(n))
    for k in range(n):
        single = run(np.array([k]))
        assert np.allclose(single, whole[k : k + 1], rtol=1e-12, atol=1e-12), k
        assert np.array_equal(run(np.array([k, (k + 1) % n])), whole[[k, (k + 1) % n]]), k


def test_closed_boxes_leave_the_batch_and_the_others_are_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # with close_above, a box whose best bound closes it stops iterating (the working arrays
    # shrink); every other box gets the bound and multipliers of the run without close_above
    from nncert.verify.bounds import Intermediate

    rng = np.random.default_rng(11)
    net = seeded_network(11, [5, 16, 16, 16, 3], [ReLU()] * 3, scale=1.0)
    eng = engine_for(net)
    n = 24
    lo = rng.uniform(-1, 0, size=(n, 5))
    hi = lo + rng.uniform(0.2, 0.9, size=(n, 1))
    inter = eng.intermediate(lo, hi, "crown")
    h = len(eng.offsets) - 1
    offs = eng.offsets
    pl, pu = inter.stacked()
    phase = np.where(((pl < 0) & (pu > 0)) & (rng.random(pl.shape) < 0.2), 1, 0).astype(np.int8)
    A, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    signs = [phase[:, offs[j] : offs[j + 1]].astype(np.float64) for j in range(h)]

    def run(close: float | None) -> tuple[np.ndarray, list[np.ndarray | None]]:
        out: list[np.ndarray | None] = []
        res = eng.bound(
            lo,
            hi,
            A,
            b,
            inter=inter,
            alpha_iters=10,
            close_above=close,
            beta_sign=signs,
            beta_out=out,
            beta_lr=0.05,
        )
        return res.lower, out

    full, full_beta = run(None)
    best = full.max(axis=1)
    close = float(np.quantile(best, 0.5))  # about half of the boxes close
    taken: list[int] = []
    real_take = Intermediate.take

    def spy(self: Intermediate, ids: np.ndarray) -> Intermediate:
        taken.append(int(np.asarray(ids).size))
        return real_take(self, ids)

    monkeypatch.setattr(Intermediate, "take", spy)
    part, part_beta = run(close)
    assert taken and min(taken) < n  # the batch did shrink
    closed = best > close
    assert np.all(part.max(axis=1)[closed] > close)
    assert np.allclose(part[~closed], full[~closed], rtol=1e-12, atol=1e-12)
    for bp, bf in zip(part_beta, full_beta):
        if bf is not None and bp is not None:
            assert np.allclose(bp[~closed], bf[~closed], rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST-FC suite not present")
def test_the_checker_rederives_the_multipliers_of_the_search() -> None:
    net = from_onnx(str(MNIST / "onnx" / "mnist-net_256x4.onnx")).normalized()
    prop = load_vnnlib(str(MNIST / "vnnlib" / "prop_8_0.03.vnnlib"))
    without, zeroed = 0, 0
    for i in (2, 3):
        case = prop.cases[i]
        ctx = CaseContext(
            VerifyOptions(), time.perf_counter() + 60, np.random.default_rng(0), None, i, None
        )
        # (without child_crown: on these cases, with it, the zeroed records happen to close too)
        out = relu_bab_case(net, case, ctx, settings=ReluBabSettings(child_crown=None))
        assert out.status == "verified" and out.proof is not None
        tree = out.proof
        assert tree.recipe["beta_lr"] == ReluBabSettings().beta_lr
        assert "child_crown" not in tree.recipe
        assert np.any(tree.param_len > 0) and np.any(tree.params > 0.0)
        assert check_tree(net, case, tree).ok
        plain = dataclasses.replace(
            tree, recipe={k: v for k, v in tree.recipe.items() if k != "beta_lr"}
        )
        without += not check_tree(net, case, plain).ok
        zero = dataclasses.replace(tree, params=np.zeros_like(tree.params))
        zeroed += not check_tree(net, case, zero).ok
    assert without >= 1 and zeroed >= 1
