r"""Branch and bound over hidden-neuron bounds, for networks with general activations.

ReLU-phase search (:mod:`nncert.verify.relu_bab`) splits a neuron at its kink, after which its
relaxation is exact. For sigmoid, tanh and other smooth activations no split makes a
relaxation exact, but every split makes it tighter: this search (the idea of GenBaB in
alpha-beta-CROWN) splits the pre-activation ``z_j`` of a hidden neuron at a point ``s``, into
``z_j >= s`` and ``z_j <= s``, and bounds each half with relaxations built on the smaller
interval. The same neuron may be split again further down the tree.

Subdomains
    A subdomain is the case's input box ``X`` with bounds ``[l_j, u_j]`` on some hidden
    pre-activations. The two children of a split cover their parent (every ``x`` has
    ``z_j(x) >= s`` or ``z_j(x) <= s``), so the leaves cover ``X``.

Bounds (soundness argument)
    A node's hidden-layer bounds are computed by the bound engine
    (:class:`~nncert.verify.bounds.BoundEngine`: IBP and CROWN back-substitution, every rounding
    error accounted for) with its prior bounds intersected in, layer by layer: the parent's
    bounds (valid on the parent's domain, a superset) clipped by the split. A node made by a
    split on hidden layer ``k`` keeps its prior bounds of the layers ``<= k`` and recomputes
    the layers above by CROWN (the proof recipe's ``child_crown``). Every relaxation is built on
    bounds that hold on the node's domain, so the final bound of row ``r`` is a sound lower
    bound of ``min_{x in D} A_r f(x) - b_r``; a node closes when the largest row bound, or the
    best convex combination of the rows, is ``> 0`` (a margin of exactly 0 never closes), or
    when its bounds cross (its domain is empty). This is exactly how the proof checker
    (:func:`~nncert.certificates.proofcheck.check_tree`) re-derives a leaf of the recorded tree
    (split kind :data:`~nncert.verify.proof.BOUND_SPLIT`).

Branching (a heuristic: the tree records the splits, the checker never re-derives the choice)
    Each open node scores its neurons by ``|mu_j| * gap_j``: ``mu_j`` the coefficient its plain
    back-substitution meets on the post-activation ``a_j`` (for the row with the best bound),
    ``gap_j`` the distance between the neuron's upper and lower relaxation lines at the middle
    of ``[l_j, u_j]``. The best :attr:`ActBabSettings.candidates` are each tried (filtered smart
    branching): both halves get the neuron's relaxation rebuilt on their interval, the other
    relaxations kept, and one back-substitution estimates their bound; the candidate whose
    worse half bounds highest is split. The split point is the kink inside ``(l, u)`` closest
    to its middle for piecewise-linear activations, else ``0`` when ``l < 0 < u`` (the
    inflection point of sigmoid and tanh), else the middle.

    A node with no neuron left to split (every relaxation exact, as in a ReLU network whose
    neurons are all stable on the node, or every interval too narrow) is split on an input
    dimension instead, at its middle (the largest ``|coef_d| (hi_d - lo_d)`` of the node's
    linear bound): what closes such a node is the input region, which the final linear bound
    otherwise ranges over as a whole box. With few inputs this keeps the search complete.

Search
    Best first on the bound (a child's priority is the larger of its own bound and its
    parent's, both sound on its domain), :attr:`ActBabSettings.batch_nodes` nodes split per
    round and all their children bounded in one engine call per split layer. A round's
    measured cost is reserved before the next one starts, so the search ends by the deadline.
    At every node the input-box corner that minimises the linear bound of its best row is run
    through the network; ``violation <= 0`` returns ``"falsified"`` (the pipeline replays the
    witness before believing it).
"""

from __future__ import annotations

import bisect
import heapq
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nncert.verify.bounds import (
    BoundEngine,
    Intermediate,
    combine_rows,
    engine_for,
)
from nncert.verify.network import FloatArray, Network
from nncert.verify.proof import (
    BOUND_SPLIT,
    CLOSED_BY_BOUND,
    CLOSED_BY_EMPTY,
    INPUT_SPLIT,
    LEAF,
    ProofRecorder,
)
from nncert.verify.result import CaseContext, CaseOutcome
from nncert.verify.spec import UnsafeCase

#: the method's name in the registry, its evidence and its proofs' recipes
METHOD = "act_bab"

#: the recipe's name of the branching scheme
SEARCH = "activation-split"

#: a node closes when its sound lower bound exceeds this (rounding is accounted for by the
#: engine: a margin of exactly 0 never closes)
CLOSE_TOL = 0.0

#: open nodes keep two bounds per hidden neuron; the search stops ("unknown") rather than hold
#: more than this many bytes of them
MAX_OPEN_BYTES = 1 << 30

#: the branching estimate handles at most this many hidden-neuron entries (variants x hidden
#: neurons) at once
ESTIMATE_CHUNK_ENTRIES = 1 << 18

#: seconds between progress lines
PROGRESS_SECONDS = 5.0

#: ``give_up`` waits at least this long before judging the search's progress
MIN_PROBE_SECONDS = 2.0

#: ... and at most this long (its window for the rate, too)
MAX_PROBE_SECONDS = 10.0


@dataclass(frozen=True)
class ActBabSettings:
    """How :func:`act_bab_case` searches.

    Attributes:
        batch_nodes: nodes split per round (their children are bounded together).
        candidates: neurons tried per node by the branching estimate (1: the best score).
        min_width: neurons whose interval is narrower than this (relative to ``1 + |l| +
            |u|``) are not split.
        child_crown: a child made by a split on hidden layer ``k`` recomputes by CROWN the
            layers ``k+1 .. k+child_crown`` and the rest by IBP, intersected with its
            parent's bounds (``None``: CROWN for every layer above ``k``).
        give_up: hand the case back (``"unknown"``, ``stats["gave_up"]``) once the search
            has run for ``probe`` of its budget (at least :data:`MIN_PROBE_SECONDS`, at most
            :data:`MAX_PROBE_SECONDS`) and its
            lowest bound, rising at the rate of the last ``probe`` seconds, would still be at
            or below 0 when the budget ends (a branch and bound bound rises ever more
            slowly, so this is optimistic): another method gets the time. ``None``: only
            under ``method="auto"``, which runs Model 2 next.
        probe: the share of the budget after which ``give_up`` may act, and the window its
            rate is measured over.
    """

    batch_nodes: int = 16
    candidates: int = 64
    min_width: float = 1e-6
    child_crown: int | None = None
    give_up: bool | None = None
    probe: float = 0.15


#: the settings :func:`act_bab_case` uses unless told otherwise
DEFAULT_SETTINGS = ActBabSettings()


@dataclass
class _Evaluated:
    """What :meth:`_Search.evaluate` found for a batch of nodes: which closed (by a bound, or
    empty), their bounds, hidden-layer bounds, the split each open node chose (kind, index,
    point) and a witness if some node's corner violates."""

    closed_bound: NDArray[np.bool_]
    empty: NDArray[np.bool_]
    bound: FloatArray
    lower: FloatArray
    upper: FloatArray
    kind: NDArray[np.int64]
    index: NDArray[np.int64]
    point: FloatArray
    witness: FloatArray | None


class _Search:
    """The bound engine for one case, with the branching rule."""

    def __init__(self, network: Network, case: UnsafeCase, settings: ActBabSettings) -> None:
        self.network = network
        self.case = case
        self.eng: BoundEngine = engine_for(network)
        self.cfg = settings
        self.offsets = np.asarray(self.eng.offsets)
        self.H = int(self.eng.n_hidden)
        self.L = len(self.offsets) - 1  # hidden layers
        cc = settings.child_crown
        self.child_crown = max(self.L, 1) if cc is None else max(int(cc), 0)
        self.layer_of = np.searchsorted(self.offsets, np.arange(self.H), side="right") - 1
        self.kinks = [
            tuple(float(k) for k in rule.kinks(act)) if rule.piecewise_linear else ()
            for rule, act in zip(self.eng.rules, self.eng.activations)
        ]

    # -- bounds, as the checker re-derives them ----------------------------------------------
    def leaf_bound(
        self, lo: FloatArray, hi: FloatArray, inter: Intermediate
    ) -> tuple[FloatArray, Any]:
        """The checker's leaf bound (rows, then their best convex combination), and the
        engine's result (for witnesses and branching)."""
        A, b = self.case.A, self.case.b
        res = self.eng.bound(lo, hi, A, b, inter=inter, close_above=0.0)
        val = res.lower.max(axis=1)
        if A.shape[0] > 1:
            still = np.flatnonzero(~(val > CLOSE_TOL))
            if still.size:
                comb, _, _ = combine_rows(res.coef[still], res.offset[still], lo[still], hi[still])
                val[still] = np.maximum(val[still], comb)
        return val, res

    # -- branching --------------------------------------------------------------------------
    def split_point(self, layer: NDArray[np.int64], l: FloatArray, u: FloatArray) -> FloatArray:
        """Where to split neurons on hidden layers ``layer`` with bounds ``[l, u]``."""
        mid = 0.5 * (l + u)
        s = np.where((l < 0.0) & (u > 0.0), 0.0, mid)
        for k in np.unique(layer):
            kinks = self.kinks[int(k)]
            if not kinks:
                continue
            sel = np.flatnonzero(layer == k)
            best = s[sel].copy()
            dist = np.full(sel.size, np.inf)
            for q in kinks:
                inside = (l[sel] < q) & (q < u[sel]) & (np.abs(q - mid[sel]) < dist)
                best = np.where(inside, q, best)
                dist = np.where(inside, np.abs(q - mid[sel]), dist)
            s[sel] = best
        return s

    def scores(
        self, lo: FloatArray, hi: FloatArray, inter: Intermediate, rows: NDArray[np.intp]
    ) -> FloatArray:
        """``(N, H)`` branching scores ``|mu_j| gap_j`` (``-inf``: not splittable)."""
        n = rows.size
        xmag = np.maximum(np.abs(lo), np.abs(hi))
        lam, const, err = self.eng.spec_start(self.case.A, self.case.b, inter, xmag)
        _, _, lams = self.eng.backsub(lam, const, err, self.L - 1, inter, xmag, keep=True)
        out = []
        ar = np.arange(n)
        for j in range(self.L):
            lj = np.asarray(lams[j])
            mu = lj[ar, rows] if lj.ndim == 3 else lj[rows]
            l, u = inter.pre[j]
            sl, bl, su, bu = (np.asarray(a) for a in inter.rel[j])
            with np.errstate(invalid="ignore", over="ignore"):
                mid = 0.5 * (l + u)
                gap = (su - sl) * mid + (bu - bl)
                wide = (u - l) > self.cfg.min_width * (1.0 + np.abs(l) + np.abs(u))
                sc = np.abs(mu) * np.maximum(gap, 0.0)
            ok = wide & np.isfinite(sc) & np.isfinite(l) & np.isfinite(u) & (sc > 0.0)
            out.append(np.where(ok, sc, -np.inf))
        return np.concatenate(out, axis=1) if out else np.zeros((n, 0))

    def choose(
        self, lo: FloatArray, hi: FloatArray, inter: Intermediate, scores: FloatArray
    ) -> tuple[NDArray[np.int64], FloatArray]:
        """Per node the neuron to split (``-1``: none splittable) and where."""
        n = scores.shape[0]
        if self.H == 0:
            return np.full(n, -1, dtype=np.int64), np.zeros(n)
        k = max(1, min(int(self.cfg.candidates), self.H))
        cand = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        valid = np.take_along_axis(scores, cand, axis=1) > -np.inf
        pl, pu = inter.stacked()
        node = np.repeat(np.arange(n), k)
        flat = cand.reshape(-1)
        l, u = pl[node, flat], pu[node, flat]
        layer = self.layer_of[flat]
        pts = self.split_point(layer, l, u)
        if k == 1:
            best = np.zeros(n, dtype=np.int64)
        else:
            est = self._estimate(lo, hi, inter, node, flat, layer, l, u, pts, valid.reshape(-1))
            worst = np.where(valid, np.minimum(est[0], est[1]).reshape(n, k), -np.inf)
            best = np.argmax(worst, axis=1)
        pick = np.arange(n) * k + best
        neuron = np.where(valid[np.arange(n), best], flat[pick], -1)
        return neuron.astype(np.int64), pts[pick]

    def _estimate(
        self,
        lo: FloatArray,
        hi: FloatArray,
        inter: Intermediate,
        node: NDArray[np.intp],
        flat: NDArray[np.int64],
        layer: NDArray[np.int64],
        l: FloatArray,
        u: FloatArray,
        pts: FloatArray,
        valid: NDArray[np.bool_],
    ) -> tuple[FloatArray, FloatArray]:
        """Estimated bounds of both halves of each candidate split: the node's relaxations
        with the split neuron's rebuilt on the half's interval, other bounds kept (a ranking
        only: no bound, proof or verdict depends on it)."""
        out = [np.full(node.size, -np.inf), np.full(node.size, -np.inf)]
        valid_ids = np.flatnonzero(valid)
        # variants copy their node's hidden-layer arrays: in chunks, so memory stays bounded
        step = max(1, ESTIMATE_CHUNK_ENTRIES // max(self.H, 1))
        for a in range(0, valid_ids.size, step):
            v = valid_ids[a : a + step]
            base = inter.take(node[v])
            for side in (0, 1):
                nl = np.maximum(l[v], pts[v]) if side == 0 else l[v]
                nu = u[v] if side == 0 else np.minimum(u[v], pts[v])
                rel = list(base.rel)
                for k in np.unique(layer[v]):
                    k = int(k)
                    sel = np.flatnonzero(layer[v] == k)
                    i = flat[v][sel] - int(self.offsets[k])
                    new = self.eng.rules[k].relax(self.eng.activations[k], nl[sel], nu[sel])
                    fields = [np.array(f, copy=True) for f in rel[k]]
                    for f, val in zip(fields, new):
                        f[sel, i] = val
                    rel[k] = type(rel[k])(*fields)
                sub = Intermediate(
                    base.pre, tuple(rel), base.empty, base.amag, base.cmag, base.gmag, base.emag
                )
                with np.errstate(all="ignore"):
                    res = self.eng.bound(
                        lo[node[v]], hi[node[v]], self.case.A, self.case.b, inter=sub
                    )
                out[side][v] = np.nan_to_num(res.lower.max(axis=1), nan=-np.inf)
        return out[0], out[1]

    @staticmethod
    def input_split(
        lo: FloatArray, hi: FloatArray, coef: FloatArray
    ) -> tuple[NDArray[np.int64], FloatArray]:
        """Per node the input dimension to halve (``-1``: none wider than 0): the largest
        ``|coef_d| (hi_d - lo_d)``, the widest dimension on ties."""
        width = hi - lo
        score = np.abs(coef) * width + 1e-9 * width
        d = np.argmax(np.where(width > 0.0, score, -np.inf), axis=1)
        ar = np.arange(lo.shape[0])
        ok = width[ar, d] > 0.0
        return np.where(ok, d, -1).astype(np.int64), 0.5 * (lo[ar, d] + hi[ar, d])

    # -- one batch of nodes -----------------------------------------------------------------
    def evaluate(
        self,
        lo: FloatArray,
        hi: FloatArray,
        prior_l: FloatArray,
        prior_u: FloatArray,
        made: NDArray[np.int64],
    ) -> _Evaluated:
        # the checker's node bounds (layers up to the split layer from the prior)
        inter = self.eng.intermediate_after_splits(
            lo, hi, (prior_l, prior_u), made, self.child_crown
        )
        empty = np.asarray(inter.empty, dtype=bool).copy() | np.any(lo > hi, axis=1)
        val, res = self.leaf_bound(lo, hi, inter)
        val = np.where(empty, np.inf, val)
        closed = ~empty & (val > CLOSE_TOL)
        n = made.size
        pl, pu = inter.stacked()
        kind = np.full(n, LEAF, dtype=np.int64)
        index = np.full(n, -1, dtype=np.int64)
        point = np.zeros(n)
        witness = None
        live = np.flatnonzero(~empty & ~closed)
        if live.size:
            rows = np.argmax(res.lower[live], axis=1)
            coef = res.coef[live, rows]
            corners = np.where(coef > 0.0, lo[live], hi[live])
            viol = self.case.violation(self.network.forward(corners))
            hit = np.flatnonzero(viol <= 0.0)
            if hit.size:
                witness = corners[int(hit[0])]
            sub = inter.take(live)
            sc = self.scores(lo[live], hi[live], sub, rows)
            neuron, pts = self.choose(lo[live], hi[live], sub, sc)
            dims, mids = self.input_split(lo[live], hi[live], coef)
            on_neuron = neuron >= 0
            kind[live] = np.where(on_neuron, BOUND_SPLIT, np.where(dims >= 0, INPUT_SPLIT, LEAF))
            index[live] = np.where(on_neuron, neuron, dims)
            point[live] = np.where(on_neuron, pts, mids)
        return _Evaluated(closed, empty, val, pl, pu, kind, index, point, witness)


def _hopeless(seen: list[tuple[float, float]], since: float, deadline: float) -> bool:
    """Whether the lowest bound, rising from ``since`` on at the rate it rose over the last
    ``now - since`` seconds (``seen``: ``(time, bound)`` readings, the last one now), stays
    at or below 0 until ``deadline``."""
    now, low = seen[-1]
    then, before = seen[bisect.bisect_left(seen, (since, -np.inf))]
    if now <= then:
        return False
    rate = (low - before) / (now - then)
    return low + rate * (deadline - now) <= 0.0


def act_bab_case(
    network: Network,
    case: UnsafeCase,
    ctx: CaseContext,
    *,
    settings: ActBabSettings | None = None,
) -> CaseOutcome:
    """Branch and bound over hidden-neuron bounds for one unsafe case (any activations).

    Returns ``"verified"`` (``exact=True``, with the proof tree) only when every leaf is closed
    by a sound bound above :data:`CLOSE_TOL` or an empty domain; ``"falsified"`` with a
    candidate ``x`` whose real violation is ``<= 0``; ``"timeout"`` when ``ctx.deadline``
    passes (``lower_bound``: the smallest bound of the open nodes, sound for the case);
    ``"unknown"`` when an open node can be split neither on a neuron nor on an input (a
    degenerate box) or the open nodes outgrow :data:`MAX_OPEN_BYTES`.
    """
    t0 = time.perf_counter()
    cfg = DEFAULT_SETTINGS if settings is None else settings
    stats: dict[str, Any] = {"nodes": 0, "splits": 0, "max_open": 0}
    search = _Search(network, case, cfg)
    rec = ProofRecorder(
        recipe={"intermediate": "crown", "search": SEARCH, "child_crown": search.child_crown}
    )
    deadline = ctx.deadline

    def out(status: str, lower: float | None = None, x: FloatArray | None = None) -> CaseOutcome:
        stats["time"] = time.perf_counter() - t0
        proof = rec.tree() if status == "verified" else None
        exact = status == "verified"
        return CaseOutcome.of_search(METHOD, ctx.case_index, status, exact, lower, x, stats, proof)

    if deadline is not None and t0 >= deadline:
        return out("timeout")

    H = search.H
    box_lo, box_hi = case.input_box.lower[None, :], case.input_box.upper[None, :]
    root = rec.root()
    ev = search.evaluate(
        box_lo, box_hi, np.full((1, H), -np.inf), np.full((1, H), np.inf), np.array([-1])
    )
    stats["nodes"] = 1
    stats["root_bound"] = float(ev.bound[0])
    if ev.empty[0]:
        rec.close(root, CLOSED_BY_EMPTY)
        return out("verified")
    if ev.closed_bound[0]:
        rec.close(root, CLOSED_BY_BOUND)
        return out("verified", float(ev.bound[0]))
    if ev.witness is not None:
        return out("falsified", x=ev.witness)

    # open nodes: a heap on the bound; each node's arrays (input box, hidden-layer bounds on
    # its domain, its chosen split) by proof id
    heap: list[tuple[float, int]] = []
    pool: dict[int, tuple[FloatArray, FloatArray, FloatArray, FloatArray, int, int, float]] = {}
    closed_min = np.inf
    stuck = np.inf  # the smallest bound of a node that cannot be split (inf: none)

    def settle(
        ids: NDArray[np.int64], lo: FloatArray, hi: FloatArray, ev: _Evaluated, prio: FloatArray
    ) -> None:
        nonlocal closed_min, stuck
        for c in np.flatnonzero(ev.empty):
            rec.close(int(ids[c]), CLOSED_BY_EMPTY)
        for c in np.flatnonzero(ev.closed_bound):
            rec.close(int(ids[c]), CLOSED_BY_BOUND)
            closed_min = min(closed_min, float(ev.bound[c]))
        for c in np.flatnonzero(~ev.empty & ~ev.closed_bound):
            b = max(float(ev.bound[c]), float(prio[c]))
            if ev.kind[c] == LEAF:
                stuck = min(stuck, b)
                continue
            pool[int(ids[c])] = (
                lo[c],
                hi[c],
                ev.lower[c],
                ev.upper[c],
                int(ev.kind[c]),
                int(ev.index[c]),
                float(ev.point[c]),
            )
            heapq.heappush(heap, (b, int(ids[c])))

    settle(np.array([root]), box_lo, box_hi, ev, np.array([-np.inf]))
    # largest measured seconds per child bounded (a child recomputes at most what the root
    # did: the root's time is the first estimate, so the first round fits the budget too)
    per_child = time.perf_counter() - t0
    status = "unknown"
    said = time.perf_counter()
    give_up = ctx.options.method == "auto" if cfg.give_up is None else bool(cfg.give_up)
    budget = None if deadline is None else deadline - t0
    probe = (
        None
        if budget is None
        else min(max(MIN_PROBE_SECONDS, cfg.probe * budget), MAX_PROBE_SECONDS)
    )
    seen: list[tuple[float, float]] = [(t0, float(ev.bound[0]))]  # (time, lowest bound)
    while heap and stuck == np.inf:
        if give_up and deadline is not None and probe is not None:
            now = time.perf_counter()
            low = heap[0][0]
            seen.append((now, low))
            if now - t0 >= probe and _hopeless(seen, now - probe, deadline):
                stats["gave_up"] = True
                break
        room = cfg.batch_nodes
        if deadline is not None:
            left = deadline - time.perf_counter()
            room = int(left / (2.0 * per_child)) if per_child > 0.0 else cfg.batch_nodes
            if left <= 0.0 or room < 1:
                status = "timeout"
                break
        if 16 * (H + case.input_box.dim) * len(heap) > MAX_OPEN_BYTES:
            stats["memory_stop"] = True
            break
        take: list[tuple[float, int]] = []
        while heap and len(take) < min(cfg.batch_nodes, room):
            take.append(heapq.heappop(heap))
        n = len(take)
        parents = [pool.pop(i) for _, i in take]
        pid = np.array([i for _, i in take], dtype=np.int64)
        prio = np.repeat(np.array([b for b, _ in take]), 2)
        kind = np.array([p[4] for p in parents], dtype=np.int64)
        j = np.array([p[5] for p in parents], dtype=np.int64)
        s = np.array([p[6] for p in parents])
        kids = np.empty((n, 2), dtype=np.int64)
        for r in range(n):
            kids[r] = rec.split(int(pid[r]), int(kind[r]), int(j[r]), float(s[r]))
        stats["splits"] += n
        lo = np.repeat(np.stack([p[0] for p in parents]), 2, axis=0)
        hi = np.repeat(np.stack([p[1] for p in parents]), 2, axis=0)
        pl = np.repeat(np.stack([p[2] for p in parents]), 2, axis=0)
        pu = np.repeat(np.stack([p[3] for p in parents]), 2, axis=0)
        r0, r1 = 2 * np.arange(n), 2 * np.arange(n) + 1
        made = np.full(2 * n, -1, dtype=np.int64)
        hid = np.flatnonzero(kind == BOUND_SPLIT)
        if hid.size:  # side 0: z_j >= s, side 1: z_j <= s (the checker's clipping)
            jj = j[hid]
            pl[r0[hid], jj] = np.maximum(pl[r0[hid], jj], s[hid])
            pu[r1[hid], jj] = np.minimum(pu[r1[hid], jj], s[hid])
            made[r0[hid]] = made[r1[hid]] = search.layer_of[jj]
        inp = np.flatnonzero(kind == INPUT_SPLIT)
        if inp.size:  # side 0: x_d <= s, side 1: x_d >= s
            dd = j[inp]
            hi[r0[inp], dd] = np.minimum(hi[r0[inp], dd], s[inp])
            lo[r1[inp], dd] = np.maximum(lo[r1[inp], dd], s[inp])
            stats["input_splits"] = int(stats.get("input_splits", 0)) + int(inp.size)
        t_round = time.perf_counter()
        ev = search.evaluate(lo, hi, pl, pu, made)
        per_child = max(per_child, (time.perf_counter() - t_round) / (2 * n))
        stats["nodes"] += 2 * n
        if ev.witness is not None:
            return out("falsified", x=ev.witness)
        settle(kids.reshape(-1), lo, hi, ev, prio)
        stats["max_open"] = max(int(stats["max_open"]), len(heap))
        if ctx.progress is not None and time.perf_counter() - said > PROGRESS_SECONDS:
            said = time.perf_counter()
            low = heap[0][0] if heap else closed_min
            ctx.progress(f"{METHOD}: {stats['nodes']} nodes, {len(heap)} open, bound {low:.4g}")
    stats["open"] = len(heap)
    if not heap and stuck == np.inf and status != "timeout":
        return out("verified", float(closed_min) if np.isfinite(closed_min) else None)
    lower = min([b for b, _ in heap] + [stuck])
    return out(status, float(lower) if np.isfinite(lower) else None)


__all__ = [
    "DEFAULT_SETTINGS",
    "MAX_OPEN_BYTES",
    "METHOD",
    "SEARCH",
    "ActBabSettings",
    "act_bab_case",
]
