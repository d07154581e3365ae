"""Branch and bound over ReLU phases (BaBSR-style) for ReLU networks with many inputs.

Input splitting (:mod:`nncert.verify.bab`) scales badly with the input dimension (784 for
MNIST); splitting *unstable ReLU neurons* instead keeps the input box fixed and refines the
activation pattern, as in BaBSR / beta-CROWN.

Subdomains
    A subdomain is the case's input box ``X`` together with a set of fixed ReLU phases:
    neuron ``(k, i)`` *active* (``z_i^(k) >= 0``) or *inactive* (``z_i^(k) <= 0``). The two
    children of a split cover their parent: every ``x`` with ``z_i^(k)(x) >= 0`` lies in the
    active child, every ``x`` with ``z_i^(k)(x) <= 0`` in the inactive one. Hence the leaves
    of the tree always cover ``X`` and the case is infeasible once every leaf is closed.

Bounds (soundness argument)
    Write ``D`` for the set of ``x`` in ``X`` that satisfy a node's phases. Pre-activation bounds
    ``[l^(k), u^(k)]`` are computed layer by layer by the bound engine
    (:class:`~nncert.verify.bounds.BoundEngine`: IBP and CROWN back-substitution with every rounding
    error accounted for), each relaxation built on already-proven bounds of earlier layers, and then
    clipped by the node's phases (active: ``l = max(l, 0)``; inactive: ``u = min(u, 0)``). By
    induction over the layers every bound holds for all ``x`` in ``D``: the back-substituted linear
    bounds hold wherever the earlier bounds hold, and the clipping only adds facts true on ``D``. A
    child's domain is a subset of its parent's, so the parent's bounds stay valid and are
    intersected with the child's. If some ``l > u`` the node's ``D`` is empty and it closes (the
    bounds are rigorous, so crossing bounds prove emptiness; a point with ``z = 0`` exactly belongs
    to both children and keeps both non-empty). The final bound of row ``r`` is a sound lower bound
    of ``min_{x in D} A_r f(x) - b_r``, and ``max_r lb_r <= min_{x in D} max_r g_r(x)``; a node
    closes when ``max_r lb_r > 0`` (:data:`CLOSE_TOL`).

Search (batched)
    Best first on the bound. Each round splits up to ``batch_nodes`` open nodes (the lowest
    bounds) and bounds all their children together: hidden layers above each split recomputed
    in one engine call per split layer, then one objective call for all children, with
    ``alpha_iters`` optimised lower slopes (alpha-CROWN on the objective rows) for the children
    whose plain bound is near enough to 0 for them to matter. Any slopes in the family give a
    sound bound, and the proof's recipe names the iterations, so the checker re-derives them.
    With ``beta_lr`` the same steps also optimise the multipliers ``beta >= 0`` of the node's
    split constraints ``s z >= 0`` (beta-CROWN: ``- beta s z`` is added to the objective, which
    only lowers it on the node's domain), each node starting from its parent's best; a closed
    leaf records its starting multipliers, so the checker repeats the same steps.
    A round is not interruptible: its measured cost is reserved before the next one starts.
    Each node's split neuron is chosen by filtered smart branching: the best BaBSR candidates
    (the chord intercepts' shares in the bound) are each tried by one plain back-substitution
    per child, and the candidate whose better child bounds highest is split (a heuristic: the
    tree records the splits, the checker never re-derives the choice).
    :data:`LEGACY` selects the earlier one-node-per-call search without optimised slopes.

Leaves
    A node without unstable neurons is linear on ``D``; it is settled exactly by one LP
    (HiGHS through :func:`scipy.optimize.linprog`) over the box and the phase constraints.
    It closes only when the LP reports an optimum above ``options.milp_tolerance``.

Falsification
    A short PGD attack at the root, and at every node the box corner minimising the linear
    bound of the hardest row is run through the real network; ``case.violation(f(x)) <= 0``
    returns ``"falsified"`` (the pipeline replays the witness before believing it).
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from nncert.verify.attack import pgd_attack
from nncert.verify.bounds import Intermediate, child_crown_layers, engine_for
from nncert.verify.network import FloatArray, Network, ReLU, weight_rows
from nncert.verify.options import VerifyOptions
from nncert.verify.processes import pool_worker_init
from nncert.verify.proof import (
    CLOSED_BY_BOUND,
    CLOSED_BY_EMPTY,
    CLOSED_BY_LP,
    PHASE_SPLIT,
    ProofRecorder,
    ProofTree,
)
from nncert.verify.result import CaseContext, CaseOutcome
from nncert.verify.spec import UnsafeCase

#: a node closes when its sound lower bound exceeds this (the engine's bounds account for
#: every rounding error, so no tolerance is needed: a margin of exactly 0 never closes)
CLOSE_TOL = 0.0

IntArray = NDArray[np.int8]


@dataclass
class _Node:
    """One subdomain: phases per hidden layer (+1 active, -1 inactive, 0 free) and bounds.

    ``lower[k]``/``upper[k]`` bound ``z^(k)`` (hidden layers only) on the node's domain.
    """

    phases: list[IntArray]
    lower: list[FloatArray]
    upper: list[FloatArray]
    depth: int
    bound: float = -np.inf
    split: tuple[int, int] | None = None
    corner: FloatArray | None = None
    id: int = 0
    #: beta-CROWN multipliers of the split constraints, per hidden layer ``(R, n_j)``: the
    #: node's own best once evaluated (what its children start from), ``None`` for zeros
    beta: list[FloatArray] | None = None
    #: the multipliers the node's evaluation started from (its parent's), recorded with a
    #: closed leaf so that the checker repeats the same optimisation
    beta0: list[FloatArray] | None = None
    #: the hidden layer of the split that made the node (-1: the root)
    start: int = -1
    #: its parent's stacked hidden-layer bounds (kept only while a search prepares pieces for
    #: worker processes: what a piece's search starts from, as the checker's walk does)
    prior: tuple[FloatArray, FloatArray] | None = None


class Piece(NamedTuple):
    """An open node handed to a worker process by :func:`relu_bab_case_parallel`.

    Attributes:
        id: the node in the proof tree of the search that made it.
        phases: its phases, one entry per hidden neuron (stacked, engine order).
        prior: its parent's stacked hidden-layer bounds ``(lower, upper)``.
        start: the hidden layer of the split that made it.
        bound: its bound in that search (the lowest are the hardest).
    """

    id: int
    phases: NDArray[np.int8]
    prior: tuple[FloatArray, FloatArray]
    start: int
    bound: float


class _Bounder:
    """The bound engine on one case's input box, plus the arrays the leaf LPs need."""

    def __init__(self, network: Network, case: UnsafeCase) -> None:
        self.engine = engine_for(network)
        self.W = list(self.engine.weights)
        self._w32: list[Any] | None = None
        self.b = list(self.engine.biases)
        self.lo = case.input_box.lower
        self.hi = case.input_box.upper
        self.lo2, self.hi2 = self.lo[None, :], self.hi[None, :]
        self.xmag = np.maximum(np.abs(self.lo2), np.abs(self.hi2))
        self.A = case.A
        self.rhs = case.b
        self.n_hidden = len(self.W) - 1
        # spec folded into the last layer: g(x) = A W^L a + A b^L - b
        self.spec_W = case.A @ self.W[-1]
        self.spec_b = case.A @ self.b[-1] - case.b
        self.offsets = self.engine.offsets

    @property
    def W32(self) -> list[Any]:
        """Single-precision copies of the weights for the branching heuristic's estimates
        (never a bound), made on first use: a search that branches by BaBSR, or whose FSB
        candidates all lie on the first hidden layer, does not pay for them."""
        if self._w32 is None:
            self._w32 = [w.astype(np.float32) for w in self.W]
        return self._w32


def _clipped_prior(node: _Node) -> tuple[FloatArray, FloatArray]:
    """The node's bounds with its phases applied, stacked as ``(1, H)`` arrays."""
    lo = [np.where(p > 0, np.maximum(l, 0.0), l) for p, l in zip(node.phases, node.lower)]
    hi = [np.where(p < 0, np.minimum(u, 0.0), u) for p, u in zip(node.phases, node.upper)]
    return np.concatenate(lo)[None, :], np.concatenate(hi)[None, :]


def _evaluate(bd: _Bounder, node: _Node, start: int) -> bool:
    """Tighten ``node``'s bounds from hidden layer ``start`` on and compute its final bound.

    Bounds of layers ``<= start`` are taken as they are, with the phases applied; later layers
    are recomputed by the engine (IBP, CROWN for the neurons still unstable) and intersected
    with the stored (parent) bounds and the phases. Returns ``False`` when the domain is empty
    (the sound bounds cross). Sets ``node.bound``, ``node.split`` and ``node.corner``.
    """
    eng = bd.engine
    prior = _clipped_prior(node)
    inter = eng.intermediate(
        bd.lo2, bd.hi2, "crown", prior=prior, fixed_below=start + 1, rows="open"
    )
    if bool(inter.empty[0]):
        return False
    # apply the phases of the recomputed layers too (prior intersection did), store bounds
    for k, (l, u) in enumerate(inter.pre):
        node.lower[k], node.upper[k] = l[0], u[0]
    lam, const, err = eng.spec_start(bd.A, bd.rhs, inter, bd.xmag)
    coef, off, lams = eng.backsub(lam, const, err, bd.n_hidden - 1, inter, bd.xmag, keep=True)
    low = eng.concretize_lower(coef, off, bd.lo2, bd.hi2)[0]
    r = int(np.argmax(low))
    node.bound = float(low[r])
    node.corner = np.where(coef[0, r] > 0.0, bd.lo, bd.hi)
    node.split = _split_choice(bd, node, lams, r, 0)
    return True


def _babsr_scores(
    mu: FloatArray, l: FloatArray, u: FloatArray, unst: NDArray[np.bool_]
) -> FloatArray:
    """BaBSR scores of neurons with bounds ``[l, u]`` and back-substitution coefficients ``mu``
    on their post-activations: ``max(-mu, 0) u (-l) / (u - l)`` plus ``1e-4 |mu| min(u, -l)``
    for the unstable ones (``unst``; a NaN score counts as the lowest finite one), ``-inf``
    for the others."""
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(unst, u - l, 1.0)
        s = np.maximum(-mu, 0.0) * u * (-l) / w + 1e-4 * np.abs(mu) * np.minimum(u, -l)
    return np.where(unst, np.nan_to_num(s, nan=np.finfo(float).min), -np.inf)


def _split_choice(
    bd: _Bounder, node: _Node, lams: list[FloatArray], row: int, box: int
) -> tuple[int, int] | None:
    """BaBSR-style choice on ``node`` (box ``box`` of a batch) for objective row ``row``.

    The score of an unstable neuron is the share of the chord intercept in the row's bound,
    ``max(-mu, 0) u (-l) / (u - l)``, plus a small tie breaker on ``|mu| min(u, -l)``, where
    ``mu`` is the back-substitution coefficient met on the neuron's post-activation.
    """
    best: tuple[float, int, int] | None = None
    for j in range(bd.n_hidden):
        l, u = node.lower[j], node.upper[j]
        unst = (l < 0.0) & (u > 0.0) & (node.phases[j] == 0)
        if not np.any(unst):
            continue
        lj = np.asarray(lams[j])
        mu = lj[box, row] if lj.ndim == 3 else lj[row]
        score = _babsr_scores(mu, l, u, unst)
        i = int(np.argmax(score))
        if best is None or score[i] > best[0]:
            best = (float(score[i]), j, i)
    return None if best is None else (best[1], best[2])


#: float64 or float32 arrays (FSB's estimates run in single precision below the split layer)
_Real = NDArray[np.floating[Any]]

#: with FSB, child-bound estimates per chunk (variants x widest layer): keeps a round's memory
#: bounded on wide layers
_FSB_CHUNK_ENTRIES = 1 << 21


def _row_coefficients(lams: list[FloatArray], rows: NDArray[np.intp]) -> list[FloatArray]:
    """Per hidden layer, the plain back-substitution's coefficients on ``a_j`` of each box's
    row ``rows[b]``: ``(N, n_j)``."""
    ar = np.arange(rows.size)
    return [lj[ar, rows] if lj.ndim == 3 else lj[rows] for lj in (np.asarray(x) for x in lams)]


def _fsb_child_bounds(
    bd: _Bounder,
    inter: Intermediate,
    coefs: list[FloatArray],
    rows: NDArray[np.intp],
    box: NDArray[np.intp],
    layer: NDArray[np.intp],
    neuron: NDArray[np.intp],
    active: NDArray[np.bool_],
) -> FloatArray:
    """Estimated bounds of children (FSB): variant ``v`` is box ``box[v]`` with neuron
    ``(layer[v], neuron[v])`` fixed active or inactive (``active[v]``). Each is the plain
    back-substitution of the box's objective row (``rows[b]``) with the box's relaxations,
    the split neuron's replaced by its phase (identity or 0), the hidden-layer bounds kept.
    Above the split layer ``j`` nothing changes, so a variant starts from its box's
    coefficients on ``a_j`` (``coefs``: :func:`_row_coefficients`) and the constant gathered
    above; on ``a_j`` it differs from its box in the split neuron alone, so its coefficients
    on ``a_{j-1}`` are the box's plus a multiple of one weight row (no matmul per variant).
    Below layer ``j`` in single precision, without rounding allowances: a heuristic that only
    ranks candidates, never a bound (mnist-net_256x4 prop_10 eps 0.05 case 1: the same 1,565
    nodes, FSB 3.9 s -> 1.6 s of the search's 10.1 s -> 7.6 s)."""

    def relax(lam: _Real, i: int, rel: tuple[_Real, ...]) -> tuple[_Real, _Real]:
        # coefficients on z_i and the constant added (lower line where lam >= 0, else upper)
        sl, bl, su, bu = rel
        pos = lam >= 0.0
        lamz = np.where(pos, lam * sl, lam * su)
        return lamz, np.sum(np.where(pos, lam * bl, lam * bu), axis=-1) + lamz @ bd.b[i].astype(
            lamz.dtype
        )

    # per box and layer: the constant gathered above the layer, the parent's coefficients on
    # the layer's pre-activations and their product with the layer's weights (a variant
    # differs from its box there in one neuron: a rank-one update instead of a matmul)
    top: list[FloatArray] = [np.empty(0)] * bd.n_hidden
    lamz_par: list[_Real] = [np.empty(0)] * bd.n_hidden
    c = bd.spec_b[rows]
    for i in range(bd.n_hidden - 1, -1, -1):
        lamz_par[i], add = relax(coefs[i], i, tuple(np.asarray(x) for x in inter.rel[i]))
        c = c + add
        top[i] = c
    centre, radius = 0.5 * (bd.lo + bd.hi), 0.5 * (bd.hi - bd.lo)
    # below the split layer in single precision (twice as fast; the estimates only rank)
    rel32 = [tuple(np.asarray(x, dtype=np.float32) for x in r) for r in inter.rel]
    est = np.empty(box.size)
    widest = max(max(int(w.shape[0]) for w in bd.W[:-1]), bd.lo.size)
    step = max(_FSB_CHUNK_ENTRIES // widest, 2)
    for j in (int(j) for j in np.unique(layer)):
        bl, bu = np.asarray(inter.rel[j][1]), np.asarray(inter.rel[j][3])
        pw = np.asarray(lamz_par[j] @ bd.W[j])
        for a in range(0, box.size, step):
            sel = np.flatnonzero(layer == j)[a : a + step]
            if not sel.size:
                continue
            bx, ns = box[sel], neuron[sel]
            mu = coefs[j][bx, ns]
            old = lamz_par[j][bx, ns]
            new = np.where(active[sel], mu, 0.0)
            # the split neuron's lines replaced by its phase (identity or zero, no intercept)
            const = (
                top[j][bx]
                - np.where(mu >= 0.0, mu * bl[bx, ns], mu * bu[bx, ns])
                + (new - old) * bd.b[j][ns]
            )
            lam: _Real = (pw[bx] + (new - old)[:, None] * weight_rows(bd.W[j], ns)).astype(
                np.float32
            )
            for i in range(j - 1, -1, -1):
                lamz, add = relax(lam, i, tuple(x[bx] for x in rel32[i]))
                const = const + add
                lam = np.asarray(lamz @ bd.W32[i])
            est[sel] = const + lam @ centre - np.abs(lam) @ radius
    return est


def _fsb_splits(
    bd: _Bounder,
    nodes: list[_Node],
    inter: Intermediate,
    lams: list[FloatArray],
    rows: NDArray[np.intp],
    k: int,
) -> list[tuple[int, int] | None]:
    """Filtered smart branching for a batch of nodes (their bounds in ``inter``).

    Per node, the ``k`` unstable free neurons with the best BaBSR scores (as
    :func:`_split_choice`, row ``rows[b]``) are candidates; each candidate's two children are
    estimated by :func:`_fsb_child_bounds` and the candidate whose *better* child has the
    largest estimate is chosen (measured on mnist-net_256x4 prop_10 eps 0.05 case 1, 16
    candidates: 2,001 nodes against 4,575 for BaBSR; the worse child's estimate instead:
    18,565 with 8 candidates). ``None`` for a node without unstable free neurons.
    """
    n = len(nodes)
    coefs = _row_coefficients(lams, rows)
    scores = []
    for j in range(bd.n_hidden):
        l, u = inter.pre[j]
        ph = np.stack([nd.phases[j] for nd in nodes])
        scores.append(_babsr_scores(coefs[j], l, u, (l < 0.0) & (u > 0.0) & (ph == 0)))
    S = np.concatenate(scores, axis=1)
    kk = max(min(int(k), S.shape[1]), 1)
    top = np.argsort(-S, axis=1, kind="stable")[:, :kk]
    valid = np.take_along_axis(S, top, axis=1) > -np.inf
    offs = np.asarray(bd.offsets)
    layer = np.searchsorted(offs, top, side="right") - 1
    neuron = top - offs[layer]
    est = _fsb_child_bounds(
        bd,
        inter,
        coefs,
        rows,
        np.repeat(np.arange(n), 2 * kk),
        np.repeat(layer.reshape(-1), 2),
        np.repeat(neuron.reshape(-1), 2),
        np.tile(np.array([True, False]), n * kk),
    )
    better = est.reshape(n, kk, 2).max(axis=2)
    better = np.where(valid & ~np.isnan(better), better, -np.inf)
    pick = np.argmax(better, axis=1)
    out: list[tuple[int, int] | None] = []
    for b in range(n):
        c = int(pick[b]) if better[b, pick[b]] > -np.inf else 0
        out.append((int(layer[b, c]), int(neuron[b, c])) if valid[b, c] else None)
    return out


def _beta_params(node: _Node, rows: int) -> FloatArray | None:
    """The multipliers ``node``'s evaluation started from, as a closed leaf records them:
    their rows ``(R, k)`` on the node's ``k`` phase-constrained neurons (in stacked order),
    flattened (zeros when it started from 0); ``None`` without constrained neurons. The checker
    optimises multipliers exactly for the leaves that carry such a record."""
    sel = np.flatnonzero(np.concatenate(node.phases))
    if not sel.size:
        return None
    if node.beta0 is None:
        return np.zeros(rows * sel.size)
    return np.concatenate(node.beta0, axis=1)[:, sel].reshape(-1)


def _beta_inputs(
    bd: _Bounder, nodes: list[_Node], ids: NDArray[np.intp]
) -> tuple[list[FloatArray | None], list[FloatArray | None]]:
    """Per hidden layer, the split constraints' signs ``(N, n_j)`` of the nodes ``ids`` (their
    phases) and the multipliers their evaluation starts from ``(N, R, n_j)``."""
    r = bd.A.shape[0]
    signs: list[FloatArray | None] = []
    starts: list[FloatArray | None] = []
    for j in range(bd.n_hidden):
        sg = np.stack([nodes[int(b)].phases[j] for b in ids]).astype(np.float64)
        st = np.zeros((ids.size, r, sg.shape[1]))
        for t, b in enumerate(ids):
            b0 = nodes[int(b)].beta0
            if b0 is not None:
                st[t] = b0[j]
        signs.append(sg)
        starts.append(st)
    return signs, starts


def _evaluate_batch(
    bd: _Bounder,
    nodes: list[_Node],
    start: int,
    alpha_iters: int,
    alpha_window: float = np.inf,
    child_crown: int | None = None,
    fsb_candidates: int = 0,
) -> tuple[list[bool], float]:
    """:func:`_evaluate_groups` for one group of nodes sharing ``start``."""
    return _evaluate_groups(
        bd,
        [(nodes, start)],
        alpha_iters,
        alpha_window,
        child_crown=child_crown,
        fsb_candidates=fsb_candidates,
    )


def _evaluate_groups(
    bd: _Bounder,
    groups: list[tuple[list[_Node], int]],
    alpha_iters: int,
    alpha_window: float = np.inf,
    beta_lr: float | None = None,
    child_crown: int | None = None,
    fsb_candidates: int = 0,
) -> tuple[list[bool], float]:
    """:func:`_evaluate` for many nodes at once (batched subdomains).

    Each group ``(nodes, start)`` holds nodes whose bounds of hidden layers ``<= start`` are
    final (the children of splits on layer ``start``); their later layers are recomputed in
    one engine call per group (with ``child_crown``, CROWN only for that many layers above
    ``start``, IBP intersected with the parent's bounds above them:
    :func:`~nncert.verify.bounds.child_crown_layers`). The final bounds of all nodes then
    come from one call of the engine's :meth:`~BoundEngine.bound` on the recomputed
    hidden-layer bounds: CROWN plus IBP on the merged last layer, and, for the nodes whose
    plain bound is in
    ``(-alpha_window, 0]`` (open, but near enough to closing for the optimised slopes to
    matter), the better of it and ``alpha_iters`` optimised-slope steps on the objective rows.
    That is what the proof checker re-derives for a tree whose recipe names ``alpha_iters``
    (it runs both on every leaf and keeps the larger); every box's result depends on that box
    alone. Each node's split is chosen by :func:`_split_choice` (BaBSR), or with
    ``fsb_candidates > 0`` by :func:`_fsb_splits` among that many candidates. Returns, per node
    in group order, ``False`` when its domain is empty (the sound bounds cross), and the
    largest gain of the optimised slopes over the plain bound among the
    nodes that got them (0 when none).
    """
    eng = bd.engine
    parts: list[Intermediate] = []
    nodes: list[_Node] = []
    for group, start in groups:
        priors = [_clipped_prior(node) for node in group]
        prior = (
            np.concatenate([p[0] for p in priors], axis=0),
            np.concatenate([p[1] for p in priors], axis=0),
        )
        m = len(group)
        parts.append(
            eng.intermediate(
                np.repeat(bd.lo2, m, axis=0),
                np.repeat(bd.hi2, m, axis=0),
                "crown",
                prior=prior,
                fixed_below=start + 1,
                rows="open",
                crown_layers=child_crown_layers(start, child_crown),
            )
        )
        nodes.extend(group)
    inter = Intermediate.concat(parts)
    n = len(nodes)
    lo = np.repeat(bd.lo2, n, axis=0)
    hi = np.repeat(bd.hi2, n, axis=0)
    res = eng.bound(lo, hi, bd.A, bd.rhs, inter=inter)
    lower, coef = res.lower, res.coef
    gain = 0.0
    if alpha_iters > 0:
        best = lower.max(axis=1)
        ids = np.flatnonzero(~inter.empty & (best <= CLOSE_TOL) & (best > -alpha_window))
        if ids.size:
            bsign: list[FloatArray | None] | None = None
            binit: list[FloatArray | None] | None = None
            bout: list[FloatArray | None] = []
            use_beta = beta_lr is not None
            if use_beta:
                bsign, binit = _beta_inputs(bd, nodes, ids)
            opt = eng.bound(
                lo[ids],
                hi[ids],
                bd.A,
                bd.rhs,
                inter=inter.take(ids),
                alpha_iters=alpha_iters,
                close_above=CLOSE_TOL,
                beta_sign=bsign,
                beta_init=binit,
                beta_out=bout if use_beta else None,
                beta_lr=beta_lr,
            )
            if use_beta and bout:
                for t, bi in enumerate(ids):
                    node = nodes[int(bi)]
                    node.beta = [
                        np.zeros((bd.A.shape[0], p.size)) if bj is None else bj[t]
                        for p, bj in zip(node.phases, bout)
                    ]
            gain = float(np.max(opt.lower.max(axis=1) - best[ids]))
            lower, coef = lower.copy(), coef.copy()
            lower[ids] = np.maximum(lower[ids], opt.lower)
            coef[ids] = np.where((opt.lower >= res.lower[ids])[:, :, None], opt.coef, coef[ids])
    # the plain back-substitution's coefficients on each layer drive the branching choice
    xmag = np.repeat(bd.xmag, n, axis=0)
    lam, const, err = eng.spec_start(bd.A, bd.rhs, inter, xmag)
    _, _, lams = eng.backsub(lam, const, err, bd.n_hidden - 1, inter, xmag, keep=True)
    ok: list[bool] = []
    fsb = None
    if fsb_candidates > 0 and n:
        fsb = _fsb_splits(bd, nodes, inter, lams, np.argmax(lower, axis=1), fsb_candidates)
    for b, node in enumerate(nodes):
        if bool(inter.empty[b]):
            ok.append(False)
            continue
        for k, (l, u) in enumerate(inter.pre):
            node.lower[k], node.upper[k] = l[b], u[b]
        low = lower[b]
        r = int(np.argmax(low))
        node.bound = float(low[r])
        node.corner = np.where(coef[b, r] > 0.0, bd.lo, bd.hi)
        node.split = fsb[b] if fsb is not None else _split_choice(bd, node, lams, r, b)
        ok.append(True)
    return ok, gain


#: signed step size of the split constraints' multipliers (beta-CROWN) in the slope steps
BETA_LR = 0.05

#: hidden layers above a split that a child recomputes by CROWN (the others: IBP intersected
#: with the parent's bounds). Measured on mnist-net_256x4 prop_10 eps 0.05 (1 thread): case 1
#: 34.3 s -> 20.0 s, case 2 timeout at 150 s (bound -0.034) -> verified in 128.6 s, case 7
#: 13.0 s -> 15.4 s; the CROWN rows of the upper layers cost more than their bounds gain
CHILD_CROWN = 1

#: open nodes split per round (their children bounded together). The tree of a proof does not
#: depend on it (each node's bounds and split depend on the node alone); larger batches spread
#: numpy's per-call overhead: mnist-net_256x4 prop_10 eps 0.05 case 1 (1 thread), 8: 22.1 s,
#: 32: 15.4 s, 128: 14.7 s, the same 4,575 nodes
BATCH_NODES = 64

#: candidates per node of filtered smart branching (:func:`_fsb_splits`). Measured on
#: mnist-net_256x4 prop_10 eps 0.05 (1 thread, 64 nodes per round), 16 candidates against
#: BaBSR: case 1 4,575 -> 2,001 nodes (13.96 s -> 9.86 s), case 2 29,633 -> 11,177 nodes
#: (93.9 s -> 52.7 s), case 6 timeout at 250 s (bound -0.155) -> verified in 48.1 s; on prop_0
#: eps 0.05 at 100 s, 16 / 32 / 64 candidates: case 2 timeout (-0.119) / 74.3 s / 96.3 s,
#: case 8 timeout at -0.277 / -0.184 / -0.211
FSB_CANDIDATES = 32


@dataclass(frozen=True)
class ReluBabSettings:
    """How the search evaluates its nodes (the defaults are the measured best).

    Attributes:
        batched: evaluate both children of a split in one bound-engine call (with
            :func:`_evaluate_batch`); ``False`` is the earlier search, one node per call and
            plain CROWN on the objective (:func:`_evaluate`), kept for side-by-side runs.
        alpha_iters: optimised-slope steps on the objective rows per node (with ``batched``;
            recorded in the proof's recipe, so the checker re-derives the same bounds).
        batch_nodes: with ``batched``, up to this many open nodes (the lowest bounds) are
            split per round and all their children bounded together (one intermediate-bound
            call per split layer, one objective call for all).
        root_alpha_iters: with ``batched``, optimised-slope steps per hidden layer that
            tighten the root's hidden-layer bounds before the search
            (:meth:`~nncert.verify.bounds.BoundEngine.refine_intermediate`; every node inherits
            them). Recorded in the proof's recipe, so the checker re-derives the same root
            bounds; 0 disables.
        beta_lr: with ``alpha_iters``, the split constraints' multipliers (beta-CROWN) are
            optimised with the slopes, in signed steps of this size (decaying as the
            slopes'), each node starting from its parent's best; ``None`` disables. Recorded
            in the recipe; a leaf closed by its bound records its starting multipliers, so
            the checker repeats the same steps.
        child_crown: with ``batched``, a child of a split on hidden layer ``k`` recomputes
            by CROWN only layers ``k+1 .. k+child_crown``; above them IBP intersected with
            the parent's bounds (:func:`~nncert.verify.bounds.child_crown_layers`). Recorded
            in the recipe, so the checker recomputes the same way; ``None``: CROWN for every
            layer above the split.
        fsb_candidates: with ``batched``, the split neuron is chosen by filtered smart
            branching among this many BaBSR candidates per node (:func:`_fsb_splits`); 0:
            the best BaBSR score. A heuristic: the proof tree records the splits made, the
            checker does not re-derive the choice.
    """

    batched: bool = True
    alpha_iters: int = 20
    batch_nodes: int = BATCH_NODES
    root_alpha_iters: int = 10
    beta_lr: float | None = BETA_LR
    child_crown: int | None = CHILD_CROWN
    fsb_candidates: int = FSB_CANDIDATES


#: the search before batched evaluation and optimised slopes (for side-by-side measurement)
LEGACY = ReluBabSettings(batched=False, alpha_iters=0)

#: what :func:`relu_bab_case` uses without explicit ``settings`` (the registered method)
DEFAULT_SETTINGS = ReluBabSettings()


#: the largest share of a search's remaining budget the root refinement may take
ROOT_REFINE_SHARE = 0.25

#: relative slack of the phase constraints in leaf LPs (see ``_leaf_lp``)
_PHASE_MARGIN = 1e-7


def _leaf_lp(
    bd: _Bounder, node: _Node, time_limit: float | None
) -> tuple[float | None, FloatArray | None, FloatArray | None]:
    """Exact ``min_{x in D} max_r g_r(x)`` for a node without unstable neurons (one LP).

    The phase constraints are relaxed by ``_PHASE_MARGIN``, so the optimum is a lower bound of
    the true minimum and infeasibility is robust. Returns ``(optimum, argmin, multipliers)``:
    the multipliers ``[w (R), beta (H)]`` are the LP's dual values (``w`` on the objective
    rows, ``beta`` on the phase rows, both ``>= 0``), from which the bound engine re-derives a
    lower bound that a checker can verify without trusting the LP
    (:meth:`BoundEngine.multiplier_bound`). An infeasible LP gives ``(None, None, mult)``
    with ``w = 0`` and ``beta`` from an auxiliary LP that proves the domain empty (``None``
    when that fails); ``(nan, None, None)`` on failure.
    """
    from scipy.optimize import linprog

    n = bd.lo.size
    M = np.eye(n)
    c = np.zeros(n)
    A_ub: list[FloatArray] = []
    b_ub: list[FloatArray] = []
    for k in range(bd.n_hidden):
        Mz = bd.W[k] @ M
        cz = bd.W[k] @ c + bd.b[k]
        act = node.lower[k] >= 0.0
        # active: -z <= 0; inactive: z <= 0
        sign = np.where(act, -1.0, 1.0)
        A_ub.append(sign[:, None] * Mz)
        # Relax each phase row by a small margin: the relaxed domain contains the true one,
        # so the LP minimum is still a sound lower bound (the objective is exact on the true
        # domain), and "infeasible" now means robustly empty rather than a tolerance artefact.
        b_ub.append(-sign * cz + _PHASE_MARGIN * (1.0 + np.abs(cz)))
        M = np.where(act[:, None], Mz, 0.0)
        c = np.where(act, cz, 0.0)
    G = bd.spec_W @ M
    g = bd.spec_W @ c + bd.spec_b
    r = G.shape[0]
    n_phase = sum(a.shape[0] for a in A_ub)
    # variables (x, t): minimise t subject to G x + g <= t
    A_phase = np.hstack([np.vstack(A_ub), np.zeros((n_phase, 1))])
    A_spec = np.hstack([G, -np.ones((r, 1))])
    A_all = np.vstack([A_phase, A_spec])
    b_all = np.concatenate([np.concatenate(b_ub), -g])
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    bounds = [(float(a), float(b)) for a, b in zip(bd.lo, bd.hi)] + [(None, None)]
    opts: dict[str, float] = {}
    end = None
    if time_limit is not None:
        end = time.perf_counter() + time_limit
        opts["time_limit"] = max(time_limit, 0.01)
    res = linprog(cost, A_ub=A_all, b_ub=b_all, bounds=bounds, method="highs", options=opts)
    if res.status == 2:
        # infeasible: min t s.t. (phase rows) - t <= margin; a positive optimum proves the
        # domain empty, and its duals are the multipliers of that proof (objective weight 0)
        A_aux = np.hstack([np.vstack(A_ub), -np.ones((n_phase, 1))])
        if end is not None:  # what the first LP left of the budget
            opts["time_limit"] = max(end - time.perf_counter(), 0.01)
        aux = linprog(
            cost, A_ub=A_aux, b_ub=np.concatenate(b_ub), bounds=bounds, method="highs", options=opts
        )
        if aux.status != 0 or aux.ineqlin is None:
            return None, None, None
        beta = np.maximum(-np.asarray(aux.ineqlin.marginals, dtype=np.float64), 0.0)
        return None, None, np.concatenate([np.zeros(r), beta])
    if res.status != 0 or res.x is None:
        return float("nan"), None, None
    duals = np.maximum(-np.asarray(res.ineqlin.marginals, dtype=np.float64), 0.0)
    mult = np.concatenate([duals[n_phase:], duals[:n_phase]])
    return float(res.fun), np.clip(np.asarray(res.x[:n], dtype=np.float64), bd.lo, bd.hi), mult


def _lp_leaf_bound(bd: _Bounder, node: _Node, mult: FloatArray) -> float:
    """The bound engine's lower bound from LP multipliers on a leaf (what a checker computes):
    phase signs from the node's sound bounds, one row ``w . g`` minus ``beta s z``."""
    r = bd.A.shape[0]
    w = np.maximum(mult[:r], 0.0)
    w = w / max(float(w.sum()), 1.0)
    lower, upper = np.concatenate(node.lower), np.concatenate(node.upper)
    sign = np.where(lower >= 0.0, 1.0, np.where(upper <= 0.0, -1.0, 0.0))
    beta = np.maximum(mult[r:], 0.0) * sign
    prior = (lower[None, :], upper[None, :])
    inter = bd.engine.intermediate(bd.lo2, bd.hi2, "crown", prior=prior, rows="open")
    if bool(inter.empty[0]):
        return np.inf
    return bd.engine.multiplier_bound(bd.lo, bd.hi, bd.A, bd.rhs, w, beta, inter)


def _outcome(
    ctx: CaseContext,
    status: str,
    exact: bool,
    lower_bound: float | None,
    x: FloatArray | None,
    stats: dict[str, Any],
    proof: ProofTree | None,
) -> CaseOutcome:
    """A search's outcome with its evidence (:meth:`CaseOutcome.of_search`)."""
    return CaseOutcome.of_search(
        "relu_bab", ctx.case_index, status, exact, lower_bound, x, stats, proof
    )


def relu_bab_case(
    network: Network,
    case: UnsafeCase,
    ctx: CaseContext,
    *,
    root_phases: NDArray[np.int8] | None = None,
    split_root: bool = False,
    settings: ReluBabSettings | None = None,
    root_bounds: tuple[FloatArray, FloatArray] | None = None,
    root_start: int = -1,
    split_at: int = 0,
    frontier_out: list[Piece] | None = None,
) -> CaseOutcome:
    """Branch and bound over ReLU phases for one unsafe case (plug-in complete method).

    Returns ``"verified"`` (``exact=True``) only when every leaf is closed by a sound bound
    above :data:`CLOSE_TOL`, an empty domain or an exact leaf LP above
    ``ctx.options.milp_tolerance``; ``"falsified"`` with a candidate ``x`` whose real
    violation is ``<= 0``; ``"timeout"`` when ``ctx.deadline`` passes; ``"unknown"`` for
    networks with other activations or leaves the LP could not settle.

    With ``root_phases`` (one entry per hidden neuron in the engine's order: ``+1`` active,
    ``-1`` inactive, ``0`` free) the search covers only the subdomain where those phases hold
    (its proof tree then proves the case on that subdomain: what a proof-tree replay grafts in
    place of a phase-split leaf that no longer closes). ``split_root`` splits the root even
    when its bound closes it (a replay re-derives the subtree under its ancestors' bounds, with
    the checker's leaf bound, which need not close the unsplit root where this search's did).
    ``settings`` chooses how nodes are evaluated (default :data:`DEFAULT_SETTINGS`;
    :data:`LEGACY` is the earlier one-node-per-call search). ``root_bounds`` (stacked lower and
    upper bounds of every hidden neuron, sound on the searched domain: for a replay, the
    bounds the grafted leaf's ancestors impose, which the checker's walk also starts from)
    are intersected into the root's. ``root_start``: with ``root_bounds``, the root is
    bounded as a child of a phase split on that hidden layer (its bounds of layers
    ``<= root_start`` taken as given), as the checker's walk bounds the grafted leaf (``-1``:
    every layer recomputed).

    With ``split_at > 0`` and a list ``frontier_out`` (batched settings), the search stops
    once ``split_at`` nodes are open: it appends them to ``frontier_out`` as :class:`Piece`
    (lowest bound first) and returns status ``"split"`` with the tree so far (the pieces are
    its open leaves) and ``stats["closed_min"]``, the smallest bound of its closed leaves
    (what :func:`relu_bab_case_parallel` does with them).
    """
    t0 = time.perf_counter()
    cfg = DEFAULT_SETTINGS if settings is None else settings
    alpha = int(cfg.alpha_iters) if cfg.batched else 0
    stats: dict[str, int | float] = {"nodes": 0, "max_depth": 0, "splits": 0, "lp_leaves": 0}

    recipe: dict[str, object] = {"intermediate": "crown", "search": "relu-split"}
    beta_lr = None
    if alpha > 0:
        recipe["alpha_iters"] = alpha
        if cfg.beta_lr is not None:
            beta_lr = float(cfg.beta_lr)
            recipe["beta_lr"] = beta_lr
    child_crown = cfg.child_crown if cfg.batched else None
    if child_crown is not None:
        recipe["child_crown"] = int(child_crown)
    rec = ProofRecorder(recipe=recipe)

    def out(
        status: str,
        *,
        exact: bool = False,
        lower_bound: float | None = None,
        x: FloatArray | None = None,
    ) -> CaseOutcome:
        stats["time"] = time.perf_counter() - t0
        proof = rec.tree() if status in ("verified", "split") else None
        return _outcome(ctx, status, exact, lower_bound, x, stats, proof)

    dense, acts = network.affine_and_activations()
    if not all(isinstance(a, ReLU) for a in acts):
        return out("unknown")
    deadline = ctx.deadline

    # the largest cost per node of a round of node bounds so far (a round is one bound-engine
    # call, not interruptible; per node, since rounds grow to 2 * batch_nodes children and a
    # larger round costs less per node): the search splits fewer nodes, or stops, when the
    # next round would end after the deadline
    cost = [0.0]

    def expired(nodes: int = 1) -> bool:
        return deadline is not None and time.perf_counter() + nodes * cost[0] >= deadline

    def split_room() -> int:
        """How many nodes the next round may split (two children each) within the budget."""
        cap = max(int(cfg.batch_nodes), 1)
        if deadline is None or cost[0] <= 0.0:
            return cap
        return max(min(cap, int((deadline - time.perf_counter()) / (2.0 * cost[0]))), 1)

    # optimised slopes only for nodes whose plain bound lies within twice the largest gain
    # they have shown so far (the root always gets them): far below, they cannot close a node
    window = [np.inf]

    def evaluate_groups(groups: list[tuple[list[_Node], int]]) -> list[bool]:
        s0 = time.perf_counter()
        oks, gain = _evaluate_groups(
            bd, groups, alpha, window[0], beta_lr, child_crown, int(cfg.fsb_candidates)
        )
        if gain > 0.0:
            window[0] = 2.0 * gain if not np.isfinite(window[0]) else max(window[0], 2.0 * gain)
        n_nodes = max(sum(len(g) for g, _ in groups), 1)
        cost[0] = max(cost[0], (time.perf_counter() - s0) / n_nodes)
        return oks

    def evaluate(node: _Node, start: int) -> bool:
        if cfg.batched:
            return evaluate_groups([([node], start)])[0]
        s0 = time.perf_counter()
        ok = _evaluate(bd, node, start)
        cost[0] = max(cost[0], time.perf_counter() - s0)
        return ok

    def violated(x: FloatArray) -> bool:
        return bool(case.violation(network.forward(x.reshape(1, -1)))[0] <= 0.0)

    # root attack (the pipeline has usually attacked already: keep it short)
    att = pgd_attack(
        network, case, steps=30, restarts=8, rng=ctx.rng, x_init=ctx.best_x, deadline=deadline
    )
    if att.violation <= 0.0:
        return out("falsified", x=att.x)

    bd = _Bounder(network, case)
    H = bd.n_hidden
    R = bd.A.shape[0]
    if H == 0:
        res = bd.engine.bound(bd.lo2, bd.hi2, bd.A, bd.rhs)
        r = int(np.argmax(res.lower[0]))
        if res.lower[0, r] > CLOSE_TOL:
            rec.close(rec.root(), CLOSED_BY_BOUND)
            return out("verified", exact=True, lower_bound=float(res.lower[0, r]))
        x0 = np.where(res.coef[0, r] > 0.0, bd.lo, bd.hi)
        return out("falsified", x=x0) if violated(x0) else out("unknown")

    # root: every layer computed by the engine (no prior; the given phases, if any)
    phases0 = [np.zeros(d.n_out, dtype=np.int8) for d in dense[:-1]]
    if root_phases is not None:
        flat = np.asarray(root_phases, dtype=np.int8).reshape(-1)
        if flat.size != sum(p.size for p in phases0) or np.any(np.abs(flat) > 1):
            return out("unknown")
        phases0 = [
            flat[int(bd.offsets[k]) : int(bd.offsets[k]) + p.size].copy()
            for k, p in enumerate(phases0)
        ]
    root = _Node(
        phases=phases0,
        lower=[np.full(d.n_out, -np.inf) for d in dense[:-1]],
        upper=[np.full(d.n_out, np.inf) for d in dense[:-1]],
        depth=0,
        id=rec.root(),
    )
    if root_bounds is not None:
        rl = np.asarray(root_bounds[0], dtype=np.float64).reshape(-1)
        ru = np.asarray(root_bounds[1], dtype=np.float64).reshape(-1)
        if rl.size != int(bd.offsets[-1]) or ru.size != int(bd.offsets[-1]):
            return out("unknown")
        for k in range(len(root.lower)):
            a, z = int(bd.offsets[k]), int(bd.offsets[k + 1])
            root.lower[k], root.upper[k] = rl[a:z].copy(), ru[a:z].copy()
    if expired():
        return out("timeout")
    root_iters = int(cfg.root_alpha_iters) if cfg.batched else 0
    if root_iters > 0 and root_phases is None and not split_root:
        # alpha-CROWN on every hidden layer once, at the root: the search's nodes inherit
        # the bounds (children intersect their parent's) and the checker re-derives them
        # at most a share of the budget: a refinement that cannot finish in it (wide
        # convolutional layers) is dropped and the search starts from plain CROWN bounds
        s0 = time.perf_counter()
        until = None if deadline is None else s0 + ROOT_REFINE_SHARE * (deadline - s0)
        refined = bd.engine.refine_intermediate(
            bd.lo2,
            bd.hi2,
            root_iters,
            stop=None if until is None else lambda: time.perf_counter() >= until,
        )
        if refined is not None:
            rec.recipe["root_alpha_iters"] = root_iters
            for k, (l, u) in enumerate(refined.pre):
                root.lower[k], root.upper[k] = l[0].copy(), u[0].copy()
    start0 = int(root_start) if root_bounds is not None else -1
    if not -1 <= start0 < H:
        return out("unknown")
    if not evaluate(root, start0):  # an empty box (crossing root bounds): unknown, not a proof
        return out("unknown")
    stats["nodes"] = 1
    tol_lp = float(ctx.options.milp_tolerance)
    closed_min = np.inf  # smallest bound among closed leaves
    counter = itertools.count()
    heap: list[tuple[float, int, _Node]] = [(root.bound, next(counter), root)]
    unsettled = False
    while heap:
        if split_at > 0 and frontier_out is not None and len(heap) >= split_at:
            # enough open nodes for the worker processes: hand them over (see
            # relu_bab_case_parallel); the tree so far has them as open leaves
            for _, _, nd in sorted(heap, key=lambda h: (h[0], h[1])):
                if nd.prior is None:  # pragma: no cover - every open node but the root has one
                    return out("unknown")
                frontier_out.append(
                    Piece(nd.id, np.concatenate(nd.phases), nd.prior, nd.start, nd.bound)
                )
            stats["closed_min"] = float(closed_min)
            return out("split", exact=True, lower_bound=float(min(closed_min, heap[0][0])))
        if expired(2 if cfg.batched else 1):  # one split: two children
            lb = min(closed_min, heap[0][0])
            return out("timeout", exact=True, lower_bound=float(lb))
        _, _, node = heapq.heappop(heap)
        forced = split_root and node.depth == 0 and node.split is not None
        if node.bound > CLOSE_TOL and not forced:
            closed_min = min(closed_min, node.bound)
            rec.close(
                node.id, CLOSED_BY_BOUND, _beta_params(node, R) if beta_lr is not None else None
            )
            continue
        if node.corner is not None and violated(node.corner):
            return out("falsified", x=node.corner)
        if node.split is None:  # linear on the domain: settle by one LP
            stats["lp_leaves"] += 1
            rem = None if deadline is None else deadline - time.perf_counter()
            val, x, mult = _leaf_lp(bd, node, rem)
            if val is None:  # robustly empty: closed only if the multipliers show it
                if mult is not None and _lp_leaf_bound(bd, node, mult) > 0.0:
                    rec.close(node.id, CLOSED_BY_LP, mult)
                    continue
                unsettled = True
                closed_min = min(closed_min, node.bound)
                continue
            if val > tol_lp and mult is not None:
                checked = _lp_leaf_bound(bd, node, mult)
                if checked > 0.0:  # what a checker re-derives from the multipliers
                    closed_min = min(closed_min, checked)
                    rec.close(node.id, CLOSED_BY_LP, mult)
                    continue
            if x is not None and violated(x):
                return out("falsified", x=x)
            unsettled = True  # LP failure or optimum within tolerance: cannot decide
            closed_min = min(closed_min, node.bound)
            continue
        k, i = node.split
        stats["splits"] += 1
        ids = rec.split(node.id, PHASE_SPLIT, int(bd.offsets[k]) + i)  # (active, inactive)
        if cfg.batched:
            # this node and up to batch_nodes - 1 more open ones (the lowest bounds; they were
            # pushed open, so none closes by its bound) are split together; a node to settle
            # by an LP stops the gathering and goes back to the heap
            todo = [(node, k, i, ids)]
            room = split_room()
            while heap and len(todo) < room:
                nxt = heap[0][2]
                if nxt.split is None:
                    break
                heapq.heappop(heap)
                if nxt.corner is not None and violated(nxt.corner):
                    return out("falsified", x=nxt.corner)
                kk, ii = nxt.split
                stats["splits"] += 1
                todo.append((nxt, kk, ii, rec.split(nxt.id, PHASE_SPLIT, int(bd.offsets[kk]) + ii)))
            # all children in one round (its cost is what expired() reserves)
            if expired(2 * len(todo)):
                lb = min([closed_min] + [t[0].bound for t in todo] + [h[0] for h in heap[:1]])
                return out("timeout", exact=True, lower_bound=float(lb))
            by_layer: dict[int, list[_Node]] = {}
            for parent, kk, ii, cids in todo:
                for phase, cid in zip((1, -1), cids):
                    child = _Node(
                        phases=[p if j != kk else p.copy() for j, p in enumerate(parent.phases)],
                        lower=list(parent.lower),
                        upper=list(parent.upper),
                        depth=parent.depth + 1,
                        id=cid,
                        beta=parent.beta,
                        beta0=parent.beta,
                        start=kk,
                        prior=(
                            (np.concatenate(parent.lower), np.concatenate(parent.upper))
                            if split_at > 0
                            else None
                        ),
                    )
                    child.phases[kk][ii] = phase
                    by_layer.setdefault(kk, []).append(child)
                stats["nodes"] += 2
                stats["max_depth"] = max(int(stats["max_depth"]), parent.depth + 1)
            groups = [(kids, kk) for kk, kids in sorted(by_layer.items())]
            born = [c for kids, _ in groups for c in kids]
            fresh: list[_Node] = []  # the children left open
            for child, ok in zip(born, evaluate_groups(groups)):
                if not ok:
                    rec.close(child.id, CLOSED_BY_EMPTY)
                elif child.bound > CLOSE_TOL:
                    closed_min = min(closed_min, child.bound)
                    rec.close(
                        child.id,
                        CLOSED_BY_BOUND,
                        _beta_params(child, R) if beta_lr is not None else None,
                    )
                else:
                    heapq.heappush(heap, (child.bound, next(counter), child))
                    fresh.append(child)
            # their corners in one forward pass (instead of one each when popped)
            xs = [c.corner for c in fresh if c.corner is not None]
            if xs:
                viol = case.violation(network.forward(np.stack(xs)))
                hit = np.flatnonzero(viol <= 0.0)
                if hit.size:
                    return out("falsified", x=xs[int(hit[0])])
                for c in fresh:
                    c.corner = None
            continue
        for phase, cid in zip((1, -1), ids):
            if expired():  # the node's other child (or both) stays open
                lb = min([closed_min, node.bound] + [h[0] for h in heap[:1]])
                return out("timeout", exact=True, lower_bound=float(lb))
            child = _Node(
                phases=[p if j != k else p.copy() for j, p in enumerate(node.phases)],
                lower=list(node.lower),
                upper=list(node.upper),
                depth=node.depth + 1,
                id=cid,
            )
            child.phases[k][i] = phase
            stats["nodes"] += 1
            stats["max_depth"] = max(int(stats["max_depth"]), child.depth)
            if not evaluate(child, k):
                rec.close(cid, CLOSED_BY_EMPTY)
                continue  # empty domain
            if child.bound > CLOSE_TOL:
                closed_min = min(closed_min, child.bound)
                rec.close(cid, CLOSED_BY_BOUND)
                continue
            heapq.heappush(heap, (child.bound, next(counter), child))
    if unsettled:
        return out("unknown", exact=True, lower_bound=float(min(closed_min, 0.0)))
    lb = float(closed_min) if np.isfinite(closed_min) else CLOSE_TOL
    return out("verified", exact=True, lower_bound=lb)


#: open nodes per worker process that :func:`relu_bab_case_parallel` prepares before it hands
#: them over (more pieces balance the workers better; each piece costs a search start-up).
#: mnist-net_256x4 prop_0 eps 0.05 case 2, 2 workers (one thread: 48.6 s, 14,853 nodes): 8 per
#: job 30.6 s, 16 per job 26.4 s (1.84x), 32 per job 29.3 s
PIECES_PER_JOB = 16


def _piece_task(
    network: Network,
    case: UnsafeCase,
    options: VerifyOptions,
    wall_deadline: float | None,
    seed: tuple[int, ...],
    case_index: int,
    piece: Piece,
    settings: ReluBabSettings,
) -> CaseOutcome:
    """One piece's search in a worker process: the subdomain where its phases hold, started
    from its parent's bounds and bounded as a child of its split (as the checker's walk)."""
    ctx = CaseContext.in_worker(options, wall_deadline, list(seed), case_index)
    return relu_bab_case(
        network,
        case,
        ctx,
        root_phases=piece.phases,
        split_root=True,
        root_bounds=piece.prior,
        root_start=piece.start,
        settings=settings,
    )


def relu_bab_case_parallel(
    network: Network,
    case: UnsafeCase,
    ctx: CaseContext,
    *,
    jobs: int,
    settings: ReluBabSettings | None = None,
    pieces: int | None = None,
) -> CaseOutcome:
    """:func:`relu_bab_case` on ``jobs`` worker processes (one case on several cores).

    The search runs here until ``pieces`` nodes are open (default ``PIECES_PER_JOB * jobs``);
    their subdomains, which with the closed leaves cover the case's domain, are then searched
    in worker processes, lowest bound first (each as :func:`relu_bab_case` with the piece's
    phases, its parent's bounds and its split layer: the search bounds its root exactly as
    the checker's walk bounds that node). The case is verified when every piece is; the proof
    is the first search's tree with each piece's tree grafted at its node, which
    :func:`~nncert.certificates.proofcheck.check_tree` re-derives like any other. A
    counterexample in a piece is checked by a float64 forward pass and ends the run; a piece
    that times out (or stays unknown) ends it with that status. Fork-based: on a platform
    without ``fork``, or with ``jobs < 2``, the plain search runs.
    """
    cfg = DEFAULT_SETTINGS if settings is None else settings
    if jobs < 2 or not cfg.batched or "fork" not in multiprocessing.get_all_start_methods():
        return relu_bab_case(network, case, ctx, settings=cfg)
    n_pieces = max(int(pieces) if pieces is not None else PIECES_PER_JOB * jobs, 2)
    frontier: list[Piece] = []
    t0 = time.perf_counter()
    first = relu_bab_case(
        network, case, ctx, settings=cfg, split_at=n_pieces, frontier_out=frontier
    )
    if first.status != "split":
        return first
    assert first.proof is not None
    rec = ProofRecorder(recipe=dict(first.proof.recipe))
    rec.graft(rec.root(), first.proof)  # node ids are kept: the pieces are its open leaves
    stats: dict[str, Any] = {
        k: first.stats.get(k, 0) for k in ("nodes", "max_depth", "splits", "lp_leaves")
    }
    stats["pieces"] = len(frontier)
    closed = [float(first.stats.get("closed_min", np.inf))]

    def finish(status: str, lb: float | None = None, x: FloatArray | None = None) -> CaseOutcome:
        stats["time"] = time.perf_counter() - t0
        proof = rec.tree() if status == "verified" else None
        exact = status in ("verified", "timeout", "unknown") and lb is not None
        return _outcome(ctx, status, exact, lb, x, stats, proof)

    rem0 = ctx.remaining()
    wall_deadline = None if rem0 is None else time.time() + rem0
    seed = int(getattr(ctx.options, "seed", 0))
    pool = ProcessPoolExecutor(
        max_workers=int(jobs),
        mp_context=multiprocessing.get_context("fork"),
        initializer=pool_worker_init,
    )
    worst: tuple[str, float] | None = None  # a piece left open: its status and bound
    try:
        running: dict[Future[CaseOutcome], Piece] = {
            pool.submit(
                _piece_task,
                network,
                case,
                ctx.options,
                wall_deadline,
                (seed, ctx.case_index, k),
                ctx.case_index,
                pc,
                cfg,
            ): pc
            for k, pc in enumerate(frontier)
        }
        while running:
            rem = ctx.remaining()
            done, _ = wait(
                list(running),
                timeout=None if rem is None else rem + _PARALLEL_GRACE,
                return_when=FIRST_COMPLETED,
            )
            if not done:  # the workers did not answer by the deadline
                worst = ("timeout", min(pc.bound for pc in running.values()))
                break
            for fut in done:
                pc = running.pop(fut)
                try:
                    got = fut.result()
                except Exception:  # a worker that died: the piece stays open
                    got = CaseOutcome("unknown")
                for key in ("nodes", "splits", "lp_leaves"):
                    stats[key] += int(got.stats.get(key, 0))
                stats["max_depth"] = max(
                    int(stats["max_depth"]), int(got.stats.get("max_depth", 0))
                )
                if got.status == "falsified" and got.x is not None:
                    x = np.asarray(got.x, dtype=np.float64)
                    if bool(case.violation(network.forward(x.reshape(1, -1)))[0] <= 0.0):
                        return finish("falsified", x=x)
                if got.status == "verified" and got.exact and got.proof is not None:
                    rec.graft(pc.id, got.proof)
                    closed.append(float(got.lower_bound if got.lower_bound is not None else 0.0))
                    continue
                lb = got.lower_bound if got.exact and got.lower_bound is not None else pc.bound
                status = "timeout" if got.status == "timeout" else "unknown"
                # the pieces not taken yet keep their bounds from the first search
                pending = min([p.bound for p in running.values()] + [np.inf])
                worst = (status, float(min(lb, pending)))
                running.clear()
                break
    finally:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
    if worst is not None:
        return finish(worst[0], float(min(min(closed), worst[1])))
    lb = float(min(closed))
    return finish("verified", lb if np.isfinite(lb) else CLOSE_TOL)


#: seconds past the deadline that relu_bab_case_parallel waits for its workers' answers
_PARALLEL_GRACE = 0.25


__all__ = [
    "CLOSE_TOL",
    "DEFAULT_SETTINGS",
    "LEGACY",
    "Piece",
    "ReluBabSettings",
    "relu_bab_case",
    "relu_bab_case_parallel",
]
