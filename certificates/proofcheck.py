r"""Re-deriving a proof tree: the small trusted base of the certificate checker.

:func:`check_tree` decides whether a :class:`~nncert.verify.proof.ProofTree` proves that an
unsafe case is unreachable on a network, trusting nothing the search computed:

1. **Structure** (:meth:`ProofTree.problems`): one root, every split with exactly one child per
   side, every leaf closed; split indices within the network's input and hidden sizes.
2. **Coverage**: each child's region is rebuilt from its parent and the split record (input
   split at ``s``: ``hi_d <- min(hi_d, s)`` and ``lo_d <- max(lo_d, s)``; phase split on ``z_j``:
   ``z_j >= 0`` and ``z_j <= 0``; bound split on ``z_j`` at ``s``: ``z_j >= s`` and ``z_j <= s``,
   any activation), starting from the case's own input box (read from the property, never from
   the tree), so the leaves cover the box by construction.
3. **Leaves**: each leaf's bound is recomputed by the one bound engine
   (:class:`~nncert.verify.bounds.BoundEngine`, every rounding error accounted for), top-down:
   a node's hidden-layer bounds are intersected with its parent's and clipped by its phase
   and bound constraints, as in the search (with the recipe's ``child_crown = c``, a node made
   by a phase or bound split on layer ``k`` keeps its parent's bounds up to layer ``k`` and
   recomputes layers ``k+1 .. k+c`` by CROWN, the rest by IBP; ``k`` comes from the split
   record).
   A recipe with ``"inherit": false`` bounds every leaf from its own region alone (input box
   and phase constraints, no ancestor bounds), all leaves in one batched pass after the
   regions are rebuilt (what a proof-tree replay on a slightly changed network tries first:
   for a tree whose leaves close that way it costs one bound call instead of one per level).
   A leaf closes when

   * its region is empty (an input split left ``lo_d > hi_d``, or sound bounds cross), or
   * a row of the objective ``A f(x) - b`` has a lower bound ``> 0`` (IBP, CROWN with the
     recipe's extra lower slopes), or the best convex combination of the rows does, or
   * the leaf carries multipliers (``params = [w (R), beta (H)]``): the single row
     ``w . (A f(x) - b)`` with ``w >= 0``, ``sum w <= 1`` (normalised here) and the phase
     multipliers ``beta`` (beta-CROWN: ``-beta_j s_j`` added on ``z_j`` for constrained
     neurons; negative entries and entries on unconstrained neurons are dropped) has a lower
     bound ``> 0``. Any such multipliers give a sound bound, so they need no trust.

Nothing here imports a solver or the search; the arithmetic is numpy float64 with the engine's
rounding analysis (docs/PROOFS.md section 4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from nncert.verify.bounds import (
    BoundEngine,
    Intermediate,
    IntermediateMode,
    combine_rows,
    engine_for,
)
from nncert.verify.network import FloatArray, Network
from nncert.verify.proof import (
    BOUND_SPLIT,
    CLOSED_BY_BOUND,
    CLOSED_BY_EMPTY,
    CLOSED_BY_LP,
    INPUT_SPLIT,
    LEAF,
    PHASE_SPLIT,
    ProofTree,
)
from nncert.verify.spec import UnsafeCase

#: nodes bounded per engine call
CHUNK = 512

#: the largest number of optimised-slope iterations a recipe may ask for (a forged recipe must
#: not make the checker run for ever)
MAX_ALPHA_ITERS = 200

#: the largest multiplier step a recipe may name (any step is sound; this keeps it sane)
MAX_BETA_LR = 10.0

#: the largest ``child_crown`` a recipe may name (any value is sound)
MAX_CHILD_CROWN = 1000

#: lower-slope choices a recipe may name
SLOPE_CHOICES = ("zero", "one", "parallel")


def recipe_problem(recipe: Any) -> str:
    """Why a tree's bound recipe is not acceptable (``""`` when it is)."""
    if not isinstance(recipe, dict):
        return "the recipe is not a mapping"
    alpha = recipe.get("alpha_iters", 0)
    if isinstance(alpha, bool) or not isinstance(alpha, int) or not 0 <= alpha <= MAX_ALPHA_ITERS:
        return f"alpha_iters must be an integer in [0, {MAX_ALPHA_ITERS}], got {alpha!r}"
    slopes = recipe.get("extra_slopes", ())
    if not isinstance(slopes, (list, tuple)) or len(slopes) > len(SLOPE_CHOICES):
        return "extra_slopes must be a short list"
    if any(c not in SLOPE_CHOICES for c in slopes):
        return f"extra_slopes may only name {', '.join(SLOPE_CHOICES)}"
    if recipe.get("alpha_optimizer", "sign") not in ("sign", "adam"):
        return "alpha_optimizer must be 'sign' or 'adam'"
    if not isinstance(recipe.get("combine_rows", True), bool):
        return "combine_rows must be true or false"
    if not isinstance(recipe.get("inherit", True), bool):
        return "inherit must be true or false"
    root = recipe.get("root_alpha_iters", 0)
    if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root <= MAX_ALPHA_ITERS:
        return f"root_alpha_iters must be an integer in [0, {MAX_ALPHA_ITERS}], got {root!r}"
    beta_lr = recipe.get("beta_lr")
    if beta_lr is not None and (
        isinstance(beta_lr, bool)
        or not isinstance(beta_lr, (int, float))
        or not 0.0 < float(beta_lr) <= MAX_BETA_LR
    ):
        return f"beta_lr must be a number in (0, {MAX_BETA_LR}], got {beta_lr!r}"
    child = recipe.get("child_crown")
    if child is not None and (
        isinstance(child, bool) or not isinstance(child, int) or not 0 <= child <= MAX_CHILD_CROWN
    ):
        return f"child_crown must be an integer in [0, {MAX_CHILD_CROWN}], got {child!r}"
    return ""


@dataclass(frozen=True)
class TreeCheck:
    """Outcome of :func:`check_tree`.

    Attributes:
        ok: every leaf closes and the structure is sound.
        reason: why not (empty when ``ok``).
        nodes: nodes in the tree.
        leaves: leaves in the tree.
        min_bound: the smallest closing bound over the non-empty leaves (``inf`` if none).
        time: seconds spent.
    """

    ok: bool
    reason: str
    nodes: int
    leaves: int
    min_bound: float
    time: float


@dataclass
class _Frontier:
    """Nodes of one tree level with their regions."""

    ids: NDArray[np.int64]
    lo: FloatArray
    hi: FloatArray
    pl: FloatArray
    pu: FloatArray
    phase: NDArray[np.int8]
    empty: NDArray[np.bool_]


def split_layer(
    tree: ProofTree, ids: NDArray[np.int64], offsets: NDArray[np.intp]
) -> NDArray[np.int64]:
    """Per node ``ids``, the hidden layer of the phase or bound split that made it (its
    parent's split record; ``-1`` for the root and the children of input splits). With a recipe's
    ``child_crown`` a node's bounds of layers up to it are its parent's, as the search took
    them (any value would be sound: the parent's bounds hold on the child's domain)."""
    parent = tree.parent[ids]
    made = np.full(ids.size, -1, dtype=np.int64)
    ph = np.flatnonzero(parent >= 0)
    ph = ph[np.isin(tree.split[parent[ph]], (PHASE_SPLIT, BOUND_SPLIT))]
    if ph.size:
        idx = tree.index[parent[ph]]
        made[ph] = np.searchsorted(np.asarray(offsets), idx, side="right") - 1
    return made


def _node_bounds(
    eng: BoundEngine,
    tree: ProofTree,
    part: _Frontier,
    live: NDArray[np.int64],
    mode: IntermediateMode,
    child_crown: int | None,
) -> Intermediate:
    """Hidden-layer bounds of the nodes ``part`` rows ``live``, intersected with their prior.

    Without ``child_crown`` every layer is recomputed. With it, nodes made by a phase split on
    layer ``m`` keep their prior bounds of layers ``<= m`` (their parent's, clipped by the
    split: sound on the node's domain) and recompute the layers above as the search did:
    CROWN for ``child_crown`` layers, IBP intersected with the prior above them.
    """
    lo, hi = part.lo[live], part.hi[live]
    prior = (part.pl[live], part.pu[live])
    if child_crown is None:
        return eng.intermediate(lo, hi, mode, prior=prior)
    made = split_layer(tree, part.ids[live], eng.offsets)
    return eng.intermediate_after_splits(lo, hi, prior, made, int(child_crown), mode)


def _leaf_bounds(
    eng: BoundEngine,
    case: UnsafeCase,
    tree: ProofTree,
    ids: NDArray[np.int64],
    lo: FloatArray,
    hi: FloatArray,
    inter: Intermediate,
    phase: NDArray[np.int8],
    first: list[tuple[FloatArray, FloatArray]] | None = None,
) -> FloatArray:
    """Lower bounds of ``max_r (A_r f(x) - b_r)`` over the leaves ``ids`` (one per leaf).

    The recipe's bounds are tried in order of cost (rows, their best convex combination, then
    the rows with optimised slopes, then multipliers), each only on the leaves that the cheaper
    ones left open: a leaf closes when any of them is ``> 0``, so the answer is the same as
    trying all on every leaf; only the value reported for a closed leaf is the first that
    closed it, not the largest. With ``first``, the first pass's ``(lower, coef)`` (rows'
    lower bounds ``(N, R)`` and their linear coefficients ``(N, R, n_inputs)``) is appended to
    it (what a caller splitting the leaves that stay open reads its branching rule from).
    """
    recipe = tree.recipe
    A, b = case.A, case.b
    r = A.shape[0]
    slopes = tuple(recipe.get("extra_slopes", ()))
    alpha = int(recipe.get("alpha_iters", 0))
    combine = r > 1 and bool(recipe.get("combine_rows", True))
    best = np.full(ids.size, -np.inf)
    optimizer: Literal["adam", "sign"] = (
        "adam" if recipe.get("alpha_optimizer") == "adam" else "sign"
    )
    beta_lr = recipe.get("beta_lr")
    beta = _beta_start(tree, ids, phase, r, eng) if beta_lr is not None and alpha > 0 else None
    # the search's bounds without and (when it used them) with optimised slopes; each gives
    # its own linear lower bounds, whose best convex combination may close where rows do not
    for iters in (0, alpha) if alpha > 0 else (0,):
        todo = np.flatnonzero(~(best > 0.0))
        if not todo.size:
            break
        whole = todo.size == ids.size
        t_lo, t_hi = (lo, hi) if whole else (lo[todo], hi[todo])
        with_beta = beta is not None and iters > 0
        res = eng.bound(
            t_lo,
            t_hi,
            A,
            b,
            inter=inter if whole else inter.take(todo),
            extra_slopes=slopes,
            alpha_iters=iters,
            alpha_optimizer=optimizer,
            close_above=0.0,  # (a leaf needs > 0, not the largest bound)
            beta_sign=[s_[todo] for s_ in beta[0]] if with_beta else None,  # type: ignore[index]
            beta_init=[b_[todo] for b_ in beta[1]] if with_beta else None,  # type: ignore[index]
            beta_lr=float(beta_lr) if with_beta else None,  # type: ignore[arg-type]
        )
        if first is not None and iters == 0:
            first.append((res.lower, res.coef))
        val = res.lower.max(axis=1)
        if combine:
            still = np.flatnonzero(~(val > 0.0))
            if still.size:
                comb, _, _ = combine_rows(
                    res.coef[still], res.offset[still], t_lo[still], t_hi[still]
                )
                val[still] = np.maximum(val[still], comb)
        best[todo] = np.maximum(best[todo], val)
    # leaves with multipliers: one combined row plus beta on the constrained neurons
    with_params = np.flatnonzero((tree.param_len[ids] > 0) & ~(best > 0.0))
    for j in with_params:
        p = tree.node_params(int(ids[j]))
        bound = _multiplier_bound(eng, case, p, lo[j], hi[j], inter, int(j), phase[j])
        best[j] = max(best[j], bound)
    return best


def _beta_start(
    tree: ProofTree,
    ids: NDArray[np.int64],
    phase: NDArray[np.int8],
    r: int,
    eng: BoundEngine,
) -> tuple[list[FloatArray], list[FloatArray]]:
    """The split constraints' signs and starting multipliers of the leaves ``ids``, per hidden
    layer ``(N, n_j)`` and ``(N, R, n_j)``.

    A leaf whose search optimised multipliers records where they started: ``R * k``
    parameters (rows first) on its ``k`` phase-constrained neurons (stacked order). Exactly
    the leaves with a record of that size get multipliers (others, such as the leaves of a
    tree searched without them and grafted in, keep the slopes-only optimisation they were
    closed by). The record is only a starting point: every value ``>= 0`` gives a sound bound
    (negative ones are clipped to 0 by the optimisation, non-finite ones read as 0).
    """
    n, h = ids.size, eng.n_hidden
    init = np.zeros((n, r, h))
    use = np.zeros(n, dtype=bool)
    for t in np.flatnonzero(tree.param_len[ids] > 0):
        sel = np.flatnonzero(phase[t])
        p = tree.node_params(int(ids[t]))
        if sel.size and p.size == r * sel.size:
            init[t][:, sel] = np.where(np.isfinite(p), p, 0.0).reshape(r, sel.size)
            use[t] = True
    offs = eng.offsets
    ph = np.where(use[:, None], phase, 0)
    signs = [ph[:, offs[j] : offs[j + 1]].astype(np.float64) for j in range(len(offs) - 1)]
    starts = [init[:, :, offs[j] : offs[j + 1]] for j in range(len(offs) - 1)]
    return signs, starts


def _multiplier_bound(
    eng: BoundEngine,
    case: UnsafeCase,
    p: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    inter: Intermediate,
    k: int,
    phase: NDArray[np.int8],
) -> float:
    """The beta-CROWN bound of one leaf from its (untrusted) multipliers ``p = [w, beta]``.

    ``w`` is clipped at 0 and scaled to sum at most 1; ``beta`` is clipped at 0 and kept only
    on neurons whose sign is known on the leaf: a phase constraint of the tree, or sound bounds
    of one sign (then ``s z >= 0`` holds on the whole leaf).
    """
    r = case.A.shape[0]
    h = eng.n_hidden
    if p.size != r + h:
        return -np.inf
    w = np.maximum(p[:r], 0.0)
    w = w / max(float(w.sum()), 1.0)
    sub = inter.take(np.array([k]))
    pl, pu = sub.stacked()
    sign = np.where(phase != 0, phase, np.where(pl[0] >= 0.0, 1, np.where(pu[0] <= 0.0, -1, 0)))
    beta = np.maximum(p[r:], 0.0) * sign
    return eng.multiplier_bound(lo, hi, case.A, case.b, w, beta, sub)


def check_tree(
    network: Network, case: UnsafeCase, tree: ProofTree, *, time_limit: float | None = None
) -> TreeCheck:
    """Re-derive ``tree`` as a proof that ``case`` is unreachable on ``network``.

    Args:
        network: the network (its normal form defines the hidden-neuron numbering).
        case: the unsafe case (its input box is the root region).
        tree: the proof tree.
        time_limit: seconds allowed (``None``: unlimited); running out rejects.

    Returns:
        A :class:`TreeCheck`.
    """
    from threadpoolctl import threadpool_limits

    # many mid-sized products: one BLAS thread is much faster (as in the searches)
    with threadpool_limits(limits=1, user_api="blas"):
        return _check_tree(network, case, tree, time_limit, None)


@dataclass(frozen=True)
class LeafReplay:
    """Outcome of :func:`replay_tree`: a tree's leaves re-derived on a (possibly other) network.

    Attributes:
        check: the structural outcome; ``check.ok`` is ``True`` iff every leaf closes (then
            it is exactly :func:`check_tree`'s answer). A structural rejection (malformed tree,
            bad recipe, out-of-range indices, time limit) has ``check.ok`` false and no
            failing leaves listed.
        failing: ids of the leaves that do not close on the network.
        lower: ``(len(failing), n_inputs)`` their input regions (lower corners).
        upper: ``(len(failing), n_inputs)`` upper corners.
        phased: ``(len(failing),)`` whether the leaf's region carries phase constraints (it is
            then not an input box alone).
        bounds: the recomputed bounds of the failing leaves (``-inf`` for a claimed-empty leaf
            that is not empty).
        frontier: the failing leaves as the walk met them (regions, the hidden-layer bounds
            their ancestors imposed, phases): pass it as ``start`` to re-walk only the subtrees
            grafted in their place (``None`` when no leaf fails).
        row_lower: ``(len(failing), R)`` the failing leaves' per-row lower bounds from the
            walk's first bound pass (plain CROWN with the recipe's slopes), or ``None`` when
            some failing leaf was not bounded (a claimed-empty leaf).
        row_coef: ``(len(failing), R, n_inputs)`` the linear coefficients of those rows
            (``row_lower`` minimises ``coef . x + offset`` over the leaf's box), or ``None``.
    """

    check: TreeCheck
    failing: NDArray[np.int64]
    lower: FloatArray
    upper: FloatArray
    phased: NDArray[np.bool_]
    bounds: FloatArray
    frontier: Any = None
    row_lower: FloatArray | None = None
    row_coef: FloatArray | None = None

    @property
    def structural(self) -> bool:
        """The tree was rejected for a reason other than failing leaves."""
        return not self.check.ok and self.failing.size == 0


class _Failures:
    """Leaves that do not close, collected by :func:`replay_tree`."""

    def __init__(self) -> None:
        self.ids: list[NDArray[np.int64]] = []
        self.lo: list[FloatArray] = []
        self.hi: list[FloatArray] = []
        self.phased: list[NDArray[np.bool_]] = []
        self.bounds: list[FloatArray] = []
        self.parts: list[_Frontier] = []
        #: per part, the first bound pass's rows ``(lower, coef)`` of its leaves (``None``:
        #: not bounded, e.g. a claimed-empty leaf)
        self.rows: list[tuple[FloatArray, FloatArray] | None] = []
        #: the first failing leaf's reason
        self.first = ""
        #: stop the walk once more leaves than this have failed (``None``: never)
        self.limit: int | None = None

    def add(
        self,
        part: _Frontier,
        sel: NDArray[np.int64],
        bounds: FloatArray,
        why: str,
        rows: tuple[FloatArray, FloatArray] | None = None,
    ) -> None:
        self.first = self.first or why
        self.rows.append(rows)
        self.ids.append(part.ids[sel])
        self.lo.append(part.lo[sel])
        self.hi.append(part.hi[sel])
        self.phased.append(np.any(part.phase[sel] != 0, axis=1))
        self.bounds.append(bounds)
        sub = _Frontier(
            part.ids[sel],
            part.lo[sel],
            part.hi[sel],
            part.pl[sel],
            part.pu[sel],
            part.phase[sel],
            np.zeros(sel.size, dtype=bool),
        )
        self.parts.append(sub)

    @property
    def count(self) -> int:
        return int(sum(a.size for a in self.ids))

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.count > self.limit


def replay_tree(
    network: Network,
    case: UnsafeCase,
    tree: ProofTree,
    *,
    time_limit: float | None = None,
    start: Any = None,
    max_failing: int | None = None,
) -> LeafReplay:
    """Re-derive ``tree`` on ``network`` like :func:`check_tree`, but list every leaf that
    does not close instead of stopping at the first.

    Same code path as :func:`check_tree` (top-down frontier, one bound engine); used to carry a
    proof tree to a modified network (:mod:`nncert.certificates.transfer`). When no leaf fails
    and the tree is well formed, ``result.check`` is what :func:`check_tree` returns.

    Args:
        network: the network the leaves are re-derived on.
        case: the unsafe case (its input box is the root region).
        tree: the proof tree (typically of another network with the same shape).
        time_limit: seconds allowed (``None``: unlimited).
        start: a previous replay's :attr:`LeafReplay.frontier`: walk only the subtrees below
            those nodes (the leaves that failed then, now roots of grafted subtrees), from the
            regions and ancestor bounds recorded then. The rest of the tree is not walked
            again, so ``check.ok`` then speaks for those subtrees only (their nodes meet
            exactly the bounds a walk from the root would give them).
        max_failing: stop walking as soon as more leaves than this have failed (the result
            then lists only the failures found so far; ``check.reason`` says so).

    Returns:
        A :class:`LeafReplay`.
    """
    from threadpoolctl import threadpool_limits

    failures = _Failures()
    failures.limit = max_failing
    with threadpool_limits(limits=1, user_api="blas"):
        res = _check_tree(network, case, tree, time_limit, failures, start)
    n_in = case.input_box.dim
    if not failures.count or (res.reason != failures.first and not failures.over_limit):
        return LeafReplay(
            res,
            np.zeros(0, dtype=np.int64),
            np.zeros((0, n_in)),
            np.zeros((0, n_in)),
            np.zeros(0, dtype=bool),
            np.zeros(0),
        )
    n_h = failures.parts[0].pl.shape[1]
    row_lower = row_coef = None
    if all(r is not None for r in failures.rows):
        row_lower = np.concatenate([r[0] for r in failures.rows if r is not None])
        row_coef = np.concatenate([r[1] for r in failures.rows if r is not None])
    return LeafReplay(
        res,
        np.concatenate(failures.ids).astype(np.int64),
        np.concatenate(failures.lo),
        np.concatenate(failures.hi),
        np.concatenate(failures.phased),
        np.concatenate(failures.bounds),
        _concat(failures.parts, n_in, n_h),
        row_lower,
        row_coef,
    )


def _check_tree(
    network: Network,
    case: UnsafeCase,
    tree: ProofTree,
    time_limit: float | None,
    failures: _Failures | None,
    start: _Frontier | None = None,
) -> TreeCheck:
    """:func:`check_tree` without the BLAS thread limit; with ``failures``, leaves that do not
    close are collected there and the walk goes on (the result then is not ``ok``); with
    ``start``, the walk begins at those nodes instead of the root."""
    t0 = time.perf_counter()
    n_nodes = tree.n_nodes
    leaves = int(np.count_nonzero(tree.split == LEAF))

    def fail(reason: str, mb: float = np.inf) -> TreeCheck:
        return TreeCheck(False, reason, n_nodes, leaves, mb, time.perf_counter() - t0)

    first_failure = ""

    problems = tree.problems()
    if problems:
        return fail(f"malformed proof tree: {problems[0]}")
    bad_recipe = recipe_problem(dict(tree.recipe))
    if bad_recipe:
        return fail(f"unacceptable bound recipe: {bad_recipe}")
    eng = engine_for(network)
    n_in, h = eng.n_inputs, eng.n_hidden
    splits = tree.split != LEAF
    if np.any((tree.split == INPUT_SPLIT) & (tree.index >= n_in)):
        return fail("an input split names a dimension the network does not have")
    if np.any((tree.split == PHASE_SPLIT) & (tree.index >= h)):
        return fail("a phase split names a neuron the network does not have")
    if np.any((tree.split == BOUND_SPLIT) & (tree.index >= h)):
        return fail("a bound split names a neuron the network does not have")
    if np.any(splits & (tree.split == PHASE_SPLIT)) and not _relu_like(eng):
        return fail("phase splits need ReLU-like activations")
    modes: dict[str, IntermediateMode] = {"ibp": "ibp", "forward": "forward", "crown": "crown"}
    mode = modes.get(str(tree.recipe.get("intermediate", "crown")))
    if mode is None:
        return fail("unknown intermediate mode in the recipe")
    children = tree.children()
    box = case.input_box
    level = _Frontier(
        ids=np.zeros(1, dtype=np.int64),
        lo=box.lower[None, :].copy(),
        hi=box.upper[None, :].copy(),
        pl=np.full((1, h), -np.inf),
        pu=np.full((1, h), np.inf),
        phase=np.zeros((1, h), dtype=np.int8),
        empty=np.zeros(1, dtype=bool),
    )
    if start is not None:
        if (
            start.lo.shape[1:] != (n_in,)
            or start.pl.shape[1:] != (h,)
            or np.any(start.ids < 0)
            or np.any(start.ids >= n_nodes)
        ):
            return fail("the start frontier does not fit the tree and network")
        level = start
    root_iters = int(tree.recipe.get("root_alpha_iters", 0))
    if root_iters > 0 and start is None and tree.recipe.get("inherit", True):
        # the root's hidden-layer bounds tightened by optimised slopes, as the search did
        # (the same engine call on the same box): every node below inherits them
        def out_of_time() -> bool:
            return time_limit is not None and time.perf_counter() - t0 > time_limit

        refined = eng.refine_intermediate(level.lo, level.hi, root_iters, stop=out_of_time)
        if refined is None:
            return fail("time limit reached while checking")
        level.pl[:], level.pu[:] = refined.stacked()
    if not tree.recipe.get("inherit", True):
        # every leaf is bounded from its own region alone (input box and phase constraints),
        # without its ancestors' hidden-layer bounds: the regions are rebuilt top-down (no
        # bounds needed), then all leaves are bounded in one batched pass
        level = _leaves_below(tree, children, level, n_in, h)
    # with the recipe's child_crown a node's layers up to its split are its parent's (only
    # when nodes inherit their ancestors' bounds: a leaf bounded from its own region alone
    # recomputes every layer)
    child_crown = tree.recipe.get("child_crown") if tree.recipe.get("inherit", True) else None
    min_bound = np.inf
    while level.ids.size:
        nxt: list[_Frontier] = []
        for s in range(0, level.ids.size, CHUNK):
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                return fail("time limit reached while checking", min_bound)
            part = _slice(level, slice(s, s + CHUNK))
            empty = part.empty | np.any(part.lo > part.hi, axis=1)
            live = np.flatnonzero(~empty)
            inter = None
            if live.size:
                inter = _node_bounds(eng, tree, part, live, mode, child_crown)
                empty[live] |= inter.empty
            kinds = tree.split[part.ids]
            # leaves
            for how in (CLOSED_BY_EMPTY, CLOSED_BY_BOUND, CLOSED_BY_LP):
                sel = np.flatnonzero((kinds == LEAF) & (tree.closed_by[part.ids] == how))
                if not sel.size:
                    continue
                need = sel[~empty[sel]]
                if how == CLOSED_BY_EMPTY:
                    if need.size:
                        why = f"leaf {int(part.ids[need[0]])} claims an empty region"
                        if failures is None:
                            return fail(why)
                        failures.add(part, need, np.full(need.size, -np.inf), why)
                        if failures.over_limit:
                            return fail(f"more than {failures.limit} leaves fail", min_bound)
                        first_failure = first_failure or why
                    continue
                if not need.size or inter is None:
                    continue
                pos = np.searchsorted(live, need)
                sub = inter.take(pos)
                first: list[tuple[FloatArray, FloatArray]] | None = None if failures is None else []
                best = _leaf_bounds(
                    eng,
                    case,
                    tree,
                    part.ids[need],
                    part.lo[need],
                    part.hi[need],
                    sub,
                    part.phase[need],
                    first,
                )
                bad = np.flatnonzero(~(best > 0.0))
                if bad.size:
                    k = int(bad[0])
                    why = (
                        f"leaf {int(part.ids[need[k]])} does not close: recomputed bound "
                        f"{best[k]:.6g} <= 0"
                    )
                    if failures is None:
                        return fail(why, min_bound)
                    rows = (first[0][0][bad], first[0][1][bad]) if first else None
                    failures.add(part, need[bad], best[bad], why, rows)
                    if failures.over_limit:
                        return fail(f"more than {failures.limit} leaves fail", min_bound)
                    first_failure = first_failure or why
                    best = best[best > 0.0]
                if best.size:
                    min_bound = min(min_bound, float(best.min()))
            # splits: children's regions
            sp = np.flatnonzero(kinds != LEAF)
            if not sp.size:
                continue
            pl, pu = part.pl[sp].copy(), part.pu[sp].copy()
            if inter is not None:
                stacked = inter.stacked()
                ok = ~empty[sp]
                where = np.searchsorted(live, sp[ok])
                pl[ok] = np.maximum(pl[ok], stacked[0][where])
                pu[ok] = np.minimum(pu[ok], stacked[1][where])
            nxt.append(_children(tree, children, part, sp, pl, pu, empty[sp]))
        level = _concat(nxt, n_in, h) if nxt else _empty_frontier(n_in, h)
    if first_failure:
        return fail(first_failure, min_bound)
    return TreeCheck(True, "", n_nodes, leaves, float(min_bound), time.perf_counter() - t0)


def _leaves_below(
    tree: ProofTree, children: NDArray[np.int64], level: _Frontier, n_in: int, h: int
) -> _Frontier:
    """The leaves below the nodes of ``level``, with their regions (input boxes and phase
    constraints) and no other hidden-layer bounds than ``level``'s and the phase constraints."""
    leaves: list[_Frontier] = []
    while level.ids.size:
        kinds = tree.split[level.ids]
        is_leaf = kinds == LEAF
        if np.any(is_leaf):
            leaves.append(_slice_rows(level, np.flatnonzero(is_leaf)))
        sp = np.flatnonzero(~is_leaf)
        if not sp.size:
            break
        level = _children(
            tree, children, level, sp, level.pl[sp].copy(), level.pu[sp].copy(), level.empty[sp]
        )
    return _concat(leaves, n_in, h) if leaves else _empty_frontier(n_in, h)


def _slice_rows(f: _Frontier, rows: NDArray[np.int64]) -> _Frontier:
    return _Frontier(
        f.ids[rows], f.lo[rows], f.hi[rows], f.pl[rows], f.pu[rows], f.phase[rows], f.empty[rows]
    )


def _relu_like(eng: BoundEngine) -> bool:
    """Phase splits are meaningful for activations with a kink at 0 (ReLU, LeakyReLU)."""
    return all(0.0 in rule.kinks(act) for rule, act in zip(eng.rules, eng.activations))


def _children(
    tree: ProofTree,
    children: NDArray[np.int64],
    part: _Frontier,
    sp: NDArray[np.int64],
    pl: FloatArray,
    pu: FloatArray,
    empty: NDArray[np.bool_],
) -> _Frontier:
    """The two children of each split node ``part.ids[sp]``, rebuilt from the split records."""
    ids = part.ids[sp]
    kind = tree.split[ids]
    idx = tree.index[ids]
    val = tree.value[ids]
    out_ids = children[ids].reshape(-1)  # side 0, side 1 per parent
    lo = np.repeat(part.lo[sp], 2, axis=0)
    hi = np.repeat(part.hi[sp], 2, axis=0)
    cpl = np.repeat(pl, 2, axis=0)
    cpu = np.repeat(pu, 2, axis=0)
    phase = np.repeat(part.phase[sp], 2, axis=0)
    cempty = np.repeat(empty, 2)
    rows = np.arange(ids.size)
    inp = np.flatnonzero(kind == INPUT_SPLIT)
    if inp.size:
        d = idx[inp]
        r0, r1 = 2 * rows[inp], 2 * rows[inp] + 1
        hi[r0, d] = np.minimum(hi[r0, d], val[inp])
        lo[r1, d] = np.maximum(lo[r1, d], val[inp])
    ph = np.flatnonzero(kind == PHASE_SPLIT)
    if ph.size:
        j = idx[ph]
        r0, r1 = 2 * rows[ph], 2 * rows[ph] + 1
        cpl[r0, j] = np.maximum(cpl[r0, j], 0.0)  # active: z_j >= 0
        cpu[r1, j] = np.minimum(cpu[r1, j], 0.0)  # inactive: z_j <= 0
        phase[r0, j] = 1
        phase[r1, j] = -1
    bs = np.flatnonzero(kind == BOUND_SPLIT)
    if bs.size:
        j = idx[bs]
        r0, r1 = 2 * rows[bs], 2 * rows[bs] + 1
        cpl[r0, j] = np.maximum(cpl[r0, j], val[bs])  # z_j >= s
        cpu[r1, j] = np.minimum(cpu[r1, j], val[bs])  # z_j <= s
    return _Frontier(out_ids, lo, hi, cpl, cpu, phase, cempty)


def _slice(f: _Frontier, s: slice) -> _Frontier:
    return _Frontier(f.ids[s], f.lo[s], f.hi[s], f.pl[s], f.pu[s], f.phase[s], f.empty[s])


def _concat(parts: list[_Frontier], n_in: int, h: int) -> _Frontier:
    return _Frontier(
        np.concatenate([p.ids for p in parts]),
        np.concatenate([p.lo for p in parts]),
        np.concatenate([p.hi for p in parts]),
        np.concatenate([p.pl for p in parts]),
        np.concatenate([p.pu for p in parts]),
        np.concatenate([p.phase for p in parts]),
        np.concatenate([p.empty for p in parts]),
    )


def _empty_frontier(n_in: int, h: int) -> _Frontier:
    return _Frontier(
        np.zeros(0, dtype=np.int64),
        np.zeros((0, n_in)),
        np.zeros((0, n_in)),
        np.zeros((0, h)),
        np.zeros((0, h)),
        np.zeros((0, h), dtype=np.int8),
        np.zeros(0, dtype=bool),
    )


__all__ = [
    "CHUNK",
    "MAX_ALPHA_ITERS",
    "MAX_BETA_LR",
    "MAX_CHILD_CROWN",
    "SLOPE_CHOICES",
    "LeafReplay",
    "TreeCheck",
    "check_tree",
    "recipe_problem",
    "replay_tree",
    "split_layer",
]
