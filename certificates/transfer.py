r"""Transferring certificates between a network and its compressed version (FORMULATIONS.md 11).

Let :math:`f_s` be the *source* network (with a certificate) and :math:`f_t` the *target*, and
:math:`\Delta_{i,r} \le \min_{x \in X_i} A_{i,r}(f_t(x) - f_s(x))` a sound lower bound of the
row-wise output difference (:mod:`nncert.certificates.diff_bounds`). Since
:math:`g^t_{i,r} = g^s_{i,r} + A_{i,r}(f_t - f_s)`:

**T1 / T2 (VERIFIED).** With the source's case bound :math:`m_i \le m_i^*` and row bounds
:math:`\ell_{i,r}`,

.. math::

    \tilde m_i^* \;\ge\; \max\Big(m_i + \min_r \Delta_{i,r},\;
                                   \max_r (\ell_{i,r} + \Delta_{i,r})\Big),

which for single-row (robustness) cases is :math:`\tilde m^* \ge m^* - \Delta^+` with
:math:`\Delta^+ = -\Delta`. If the right-hand side is ``> 0`` for every case, the target is
VERIFIED. The label is ``"T1"`` (pruned ⇒ original) when the source has fewer non-zero
parameters than the target, else ``"T2"`` (original ⇒ pruned); the rule is the same.

**T3 (FALSIFIED).** A counterexample is *never* transferred without replay: the source's
witness is run through the target (float64, and onnxruntime for ONNX targets); only a confirmed
witness makes the target FALSIFIED.

**Tree replay (VERIFIED).** When the rule fails and the source's evidence carries proof trees
(:class:`~nncert.certificates.model.BabEvidence` of input-split branch and bound), every tree is
walked on the target (:func:`~nncert.certificates.proofcheck.replay_tree`, the checker's own
top-down frontier): the leaves whose recomputed bound on :math:`f_t` is still ``> 0`` are
carried. Failing input boxes are split in place, all of them at once: each is halved on the
side strong branching (few leaves) or the linear bound's slopes (many) pick, and the next walk
re-derives only the halves, under the failing leaves' own and ancestors' hidden-layer bounds,
until every half closes, a box vertex or centre turns out to violate the property (a candidate,
replayed before it is believed), or the rounds cost about what a search from scratch would
(more added nodes than the source tree has leaves). The few failing leaves left then, and the
leaves of ReLU-phase trees, are searched again on the target, within ``replay_share`` of the
budget: an input box by input-split branch and bound (:func:`~nncert.verify.bab.bab_verify_case`),
a leaf of a ReLU-phase tree by ReLU-phase branch and bound started from its phases
(:func:`~nncert.verify.relu_bab.relu_bab_case` with ``root_phases``), and its subtree is grafted
in its place; later rounds walk only the grafted subtrees (from the
regions and ancestor bounds the first walk recorded), since the rest of the tree is unchanged. A
case the target's bound presolve closes needs no tree; a case without a source tree is searched
from its root. Every grafted tree is re-derived on the target before the result is VERIFIED,
and the evidence is :class:`BabEvidence`, checked independently like a direct verification's.
Because the replay re-derives everything on the target, it does not rest on the source
certificate's claims: the source is checked (once per process, by hash) only when the replay
does not settle the target and the margin rule needs its re-derived margins.

Otherwise (or when the rule fails) :func:`transfer` falls back to
:func:`nncert.verify.pipeline.verify` on the target, after a cheap PGD attack started at the
source's witness (when there is one).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncert.certificates.build import (
    REPROVE_INPUT_DIMS,
    bound_evidence,
    certificate_from_result,
    options_dict,
)
from nncert.certificates.check import CheckReport, check, transferred_case_bound
from nncert.certificates.diff_bounds import DIFF_METHODS, case_difference_bounds
from nncert.certificates.model import (
    SCHEMA_VERSION,
    BabCase,
    BabEvidence,
    Certificate,
    CounterexampleEvidence,
    NetworkRef,
    NoEvidence,
    Provenance,
    TransferEvidence,
)
from nncert.certificates.proofcheck import LeafReplay, _leaf_bounds, replay_tree, split_layer
from nncert.certificates.serialize import certificate_sha256, encode_value
from nncert.verify.attack import pgd_attack
from nncert.verify.bab import BabOptions, bab_verify_case
from nncert.verify.bounds import engine_for
from nncert.verify.errors import InvalidOptionsError, TransferError
from nncert.verify.network import Network
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import blas_threads, verify
from nncert.verify.processes import limit_blas
from nncert.verify.proof import CLOSED_BY_BOUND, INPUT_SPLIT, LEAF, OPEN, ProofRecorder, ProofTree
from nncert.verify.relu_bab import DEFAULT_SETTINGS, relu_bab_case
from nncert.verify.result import CaseContext, Verdict, VerificationResult
from nncert.verify.spec import Box, Property, UnsafeCase
from nncert.verify.witness import confirm_counterexample

#: pipeline stage (a result's ``reason``) -> words for :meth:`TransferResult.describe`
_DECIDED_BY: dict[str, str] = {"sample": "random sampling", "attack": "a PGD attack"}


@dataclass(frozen=True)
class TransferResult:
    """What :func:`transfer` returns.

    Attributes:
        verdict: the target's verdict.
        certificate: the target's certificate (transferred or from the fallback run).
        transferred: ``True`` iff the verdict came from the source certificate (T1/T2/T3)
            rather than from a fresh verification of the target.
        delta: per case and row, the lower bounds :math:`\\Delta_{i,r}` of
            :math:`A_{i,r}(f_t - f_s)` (``None`` when not computed).
        time: wall-clock seconds.
        fallback_result: the fallback :class:`VerificationResult` (``None`` if none ran).
        reason: why the transfer applied (``"T2: margin + Δ > 0 for every case"``) or why it
            did not (``"margin + Δ = -3.2 <= 0 for case 0; ..."``); how the target was then
            decided is in ``fallback_result`` (see :meth:`describe`).
        replay: what the tree replay did (``None`` when it did not run): ``leaves`` (source
            leaves replayed), ``carried`` (closed on the target as they stand), ``failing``,
            ``grafted`` (failing leaves closed by a new subtree), ``searched_cases`` (cases
            without a source tree searched from the root), ``ok``, ``time``.
        attested: ``True`` when the verdict was carried from a source certificate whose own
            verdict rests on a solver's word (``accept_attested``): the target's verdict then
            rests on it too (``nncert transfer`` exits 6, as ``nncert check`` does).
    """

    verdict: Verdict
    certificate: Certificate
    transferred: bool
    delta: tuple[tuple[float, ...], ...] | None
    time: float
    fallback_result: VerificationResult | None = None
    reason: str = ""
    replay: Mapping[str, Any] | None = None
    attested: bool = False

    def describe(self) -> str:
        """One line saying what happened, e.g. ``"verified directly on the target by crown
        (transfer did not apply: margin + Δ = -5.81 <= 0 for case 0; 2 of 2 case(s) fail)"``.

        The outcomes: transferred (``"verified by transfer (T2: ...)"``, ``"falsified by
        transfer (T3: ...)"``); decided on the target after the transfer failed
        (``"verified directly on the target by crown (transfer did not apply: ...)"``); or
        neither (``"unknown: transfer did not apply: ...; "`` followed by ``"verifying the
        target directly timed out"``, ``"verifying the target directly was inconclusive"``
        or ``"the target was not verified directly (fallback off)"``).
        """
        verdict = self.verdict.value
        if self.transferred:
            return f"{verdict} by transfer ({self.reason})"
        why = f"transfer did not apply: {self.reason}" if self.reason else "transfer did not apply"
        fb = self.fallback_result
        if fb is None:
            return f"{verdict}: {why}; the target was not verified directly (fallback off)"
        if self.verdict is Verdict.UNKNOWN:
            if fb.reason == "timeout":
                return f"{verdict}: {why}; verifying the target directly timed out"
            extra = "" if fb.reason == "inconclusive" else f" ({fb.reason})"
            return f"{verdict}: {why}; verifying the target directly was inconclusive{extra}"
        if fb.reason == "source-witness+pgd":
            return (
                f"{verdict} directly on the target by a PGD attack started at the source's "
                f"counterexample ({why})"
            )
        if fb.reason == "tree-replay-witness":
            return (
                f"{verdict} on the target at a point the tree replay met in a failing leaf, "
                f"replayed on the target ({why})"
            )
        how = _DECIDED_BY.get(fb.reason, fb.reason)
        return f"{verdict} directly on the target by {how} ({why})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``±inf`` as ``{"inf": ±1}``)."""

        return {
            "verdict": self.verdict.value,
            "transferred": self.transferred,
            "reason": self.reason,
            "summary": self.describe(),
            "delta": None if self.delta is None else encode_value(self.delta),
            "time": round(float(self.time), 6),
            "fallback": None if self.fallback_result is None else self.fallback_result.to_dict(),
            "replay": None if self.replay is None else dict(self.replay),
        }


#: source certificates already checked in this process: (certificate sha256, network
#: fingerprint) -> the accepting report (least recently used dropped first)
_CHECKED: OrderedDict[tuple[str, str], CheckReport] = OrderedDict()
_CHECKED_MAX = 64


def _source_report(cert: Certificate, source: Network, fingerprint: str) -> CheckReport:
    """:func:`check` of the source certificate, once per process for a given certificate and
    network (only accepting reports are kept; a cached report must not be mutated)."""
    key = (certificate_sha256(cert), fingerprint)
    hit = _CHECKED.get(key)
    if hit is not None:
        _CHECKED.move_to_end(key)
        return hit
    report = check(cert, source)
    if report.ok:
        _CHECKED[key] = report
        while len(_CHECKED) > _CHECKED_MAX:
            _CHECKED.popitem(last=False)
    return report


def clear_check_cache() -> None:
    """Forget the source certificates checked so far (tests, long-running services)."""
    _CHECKED.clear()


@dataclass
class _Replay:
    """Outcome of :func:`_replay_trees`."""

    evidence: BabEvidence | None
    reason: str
    stats: dict[str, Any]
    hint: np.ndarray | None = None
    hint_case: int = 0


def _opened(tree: ProofTree, leaves: np.ndarray) -> ProofTree:
    """``tree`` with the given leaves re-opened (their closing record and parameters gone)."""
    closed = np.array(tree.closed_by)
    plen = np.array(tree.param_len)
    closed[leaves] = OPEN
    plen[leaves] = 0
    arrays = {a: getattr(tree, a) for a in ProofTree.ARRAYS}
    arrays.update(closed_by=closed, param_len=plen)
    return ProofTree(recipe=tree.recipe, **arrays)


def _split_dims(
    target: Network, case: UnsafeCase, tree: ProofTree, rep: LeafReplay, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """For every failing leaf of ``rep`` (input boxes), the input dimension to halve it on,
    and maybe a counterexample candidate.

    Each leaf's linear bound is the one the replay's walk has just computed
    (:attr:`LeafReplay.row_coef`), or is recomputed as the checker's walk bounds it when the
    walk did not record one (the tree's recipe, its own bounds intersected with its
    ancestors'). With at most :data:`STRONG_SPLIT_LEAVES` failing leaves
    on at most :data:`STRONG_SPLIT_MAX_INPUTS` inputs, the halvings of the
    :data:`STRONG_SPLIT_CANDIDATES` sides with the largest smear (below) are bounded the same
    way and the one whose weaker half is best wins (strong branching, as the input-split search
    does); otherwise the side with the largest ``|slope| * width`` in the linear bound of the
    leaf's best row (smear). Ties go to the side widest relative to ``scale``. The box
    vertices minimising each row's linear bound are run through ``target``: the first that
    violates ``case`` is returned (the caller replays it before believing it).
    """
    f = rep.frontier
    k, n_in = rep.lower.shape
    rel = (rep.upper - rep.lower) / np.where(scale > 0.0, scale, 1.0)
    thin = rel <= np.maximum(1e-4 * rel.max(axis=1, keepdims=True), 1e-13)
    if f is None:  # pragma: no cover - a failing leaf always has its frontier
        return np.argmax(rel, axis=1).astype(np.int64), None
    eng = engine_for(target)
    mode = str(tree.recipe.get("intermediate", "crown"))
    mode = mode if mode in ("ibp", "forward", "crown") else "crown"
    strong = k <= STRONG_SPLIT_LEAVES and n_in <= STRONG_SPLIT_MAX_INPUTS
    inter = None
    if rep.row_lower is not None and rep.row_coef is not None:
        # the rows the replay's walk has just bounded these leaves with
        lower, coef = rep.row_lower, rep.row_coef
    else:
        inter = eng.intermediate(f.lo, f.hi, mode, prior=(f.pl, f.pu))  # type: ignore[arg-type]
        res = eng.bound(f.lo, f.hi, case.A, case.b, inter=inter)
        lower, coef = res.lower, res.coef
    corners = np.where(coef >= 0.0, f.lo[:, None, :], f.hi[:, None, :]).reshape(-1, n_in)
    bad = np.flatnonzero(case.violation(target.forward(corners)) <= 0.0)
    x = corners[bad[0]] if bad.size else None
    row = np.argmax(lower, axis=1)
    smear = np.abs(coef[np.arange(k), row]) * (f.hi - f.lo)
    if not strong:
        score = smear
    else:
        if inter is None:
            inter = eng.intermediate(f.lo, f.hi, mode, prior=(f.pl, f.pu))  # type: ignore[arg-type]
        pl, pu = inter.stacked()
        pl, pu = np.maximum(pl, f.pl), np.minimum(pu, f.pu)
        ranked = np.where(thin, -np.inf, smear)
        top_sides = np.argsort(-ranked, axis=1, kind="stable")[:, :STRONG_SPLIT_CANDIDATES]
        want = np.zeros((k, n_in), dtype=bool)
        want[np.arange(k)[:, None], top_sides] = True
        want &= ~thin
        # candidates: leaf j, dimension d, side s -> (j * n_in + d) * 2 + s
        q_lo = np.repeat(f.lo, 2 * n_in, axis=0).reshape(k, n_in, 2, n_in)
        q_hi = np.repeat(f.hi, 2 * n_in, axis=0).reshape(k, n_in, 2, n_in)
        mid = 0.5 * (f.lo + f.hi)
        ar = np.arange(n_in)
        q_hi[:, ar, 0, ar] = mid
        q_lo[:, ar, 1, ar] = mid
        c_lo, c_hi = q_lo.reshape(-1, n_in), q_hi.reshape(-1, n_in)
        c_pl, c_pu = np.repeat(pl, 2 * n_in, axis=0), np.repeat(pu, 2 * n_in, axis=0)
        ids = np.repeat(f.ids, 2 * n_in)
        best = np.full(ids.size, np.inf)
        asked = np.flatnonzero(np.repeat(want.reshape(-1), 2))
        c_inter = eng.intermediate(
            c_lo[asked],
            c_hi[asked],
            mode,  # type: ignore[arg-type]
            prior=(c_pl[asked], c_pu[asked]),
        )
        nonempty = np.flatnonzero(~c_inter.empty)
        live = asked[nonempty]
        if live.size:
            best[live] = _leaf_bounds(
                eng,
                case,
                _opened(tree, rep.failing),
                ids[live],
                c_lo[live],
                c_hi[live],
                c_inter.take(nonempty),
                np.repeat(f.phase, 2 * n_in, axis=0)[live],
            )
        halves = best.reshape(k, n_in, 2)
        score = np.where(want, np.minimum(halves[:, :, 0], halves[:, :, 1]), -np.inf)
    top = score.max(axis=1, keepdims=True)
    near = score >= top - 1e-9 * (1.0 + np.abs(top))
    score = np.where(near, top + rel, score)
    return np.argmax(np.where(thin, -np.inf, score), axis=1).astype(np.int64), x


def _split_leaves(tree: ProofTree, rep: LeafReplay, dims: np.ndarray) -> ProofTree:
    """``tree`` with every failing leaf of ``rep`` (input boxes) split once at the middle of
    its side ``dims[j]``, both halves claimed closed by bound, which the next walk re-derives
    under the leaf's ancestors' hidden-layer bounds. Appends ``2 * len(rep.failing)`` nodes;
    every other node keeps its id (so ``rep.frontier`` still names the split leaves)."""
    leaves = rep.failing
    k = leaves.size
    rows = np.arange(k)
    mids = 0.5 * (rep.lower[rows, dims] + rep.upper[rows, dims])
    split = np.concatenate([tree.split, np.full(2 * k, LEAF, dtype=np.int8)])
    index = np.concatenate([tree.index, np.full(2 * k, -1, dtype=np.int64)])
    value = np.concatenate([tree.value, np.zeros(2 * k)])
    closed = np.concatenate([tree.closed_by, np.full(2 * k, CLOSED_BY_BOUND, dtype=np.int8)])
    plen = np.concatenate([tree.param_len, np.zeros(2 * k, dtype=np.int64)])
    pstart = np.concatenate([tree.param_start, np.full(2 * k, tree.params.size, dtype=np.int64)])
    split[leaves] = INPUT_SPLIT
    index[leaves] = dims
    value[leaves] = mids
    closed[leaves] = OPEN
    plen[leaves] = 0
    return ProofTree(
        parent=np.concatenate([tree.parent, np.repeat(leaves, 2)]),
        side=np.concatenate([tree.side, np.tile(np.array([0, 1], dtype=np.int8), k)]),
        split=split,
        index=index,
        value=value,
        closed_by=closed,
        param_start=pstart,
        param_len=plen,
        params=tree.params,
        recipe=tree.recipe,
    )


def _center_witness(target: Network, case: UnsafeCase, rep: LeafReplay) -> np.ndarray | None:
    """A failing leaf's centre where ``target`` violates ``case`` (a candidate the caller
    replays before believing it), or ``None``."""
    x = 0.5 * (rep.lower + rep.upper)
    bad = np.flatnonzero(case.violation(target.forward(x)) <= 0.0)
    return x[bad[0]] if bad.size else None


def _search_options(recipe: Mapping[str, Any]) -> BabOptions:
    """Branch-and-bound options that bound boxes as ``recipe`` says (so a grafted subtree's
    leaves close under the tree's recipe)."""
    inter = recipe.get("intermediate", "crown")
    return BabOptions(
        intermediate=inter if inter in ("ibp", "forward", "crown") else "crown",
        extra_slopes=tuple(recipe.get("extra_slopes", ("zero", "one"))),
        combine_rows=bool(recipe.get("combine_rows", True)),
        attack_budget_s=0.0,
    )


def _root_tree(recipe: Mapping[str, Any]) -> ProofTree:
    """A tree of one leaf (the root), to be searched on the target."""
    rec = ProofRecorder(recipe=recipe)
    rec.close(rec.root(), CLOSED_BY_BOUND)
    return rec.tree()


#: the recipe of a tree searched from scratch (the input-split search's defaults)
_DEFAULT_RECIPE: dict[str, Any] = {
    "search": "input-split",
    "intermediate": "crown",
    "extra_slopes": ["zero", "one"],
    "combine_rows": True,
    "alpha_iters": 0,
    "alpha_optimizer": "sign",
}


#: rounds of re-searching failing leaves (a grafted subtree's leaves are re-derived under the
#: hidden-layer bounds the tree's ancestors impose, which may differ from the fresh search's)
MAX_GRAFT_ROUNDS = 8

#: whether a replayed input-split tree bounds its leaves under their ancestors' hidden-layer
#: bounds (the search's way) or from their own boxes alone (one batched pass)
REPLAY_INHERIT = False

#: with a fallback to direct verification, the tree replay gets at most this many times the
#: source certificate's recorded verification time (:attr:`Provenance.time`), and at least
#: ``REPLAY_MIN_SECONDS`` (MNIST-FC 256x4 prop_2, int8: a replay with one failing leaf and its
#: fallback took 33 s where the source had been verified in 2.6 s and the target directly in
#: 7.8 s)
REPLAY_SOURCE_TIME_FACTOR = 1.0
REPLAY_MIN_SECONDS = 0.5

#: a short attack starts from the centres of this many of the worst failing leaves
LEAF_ATTACK_STARTS = 32

#: failing leaves are split by strong branching when there are at most this many of them on
#: boxes with at most ``STRONG_SPLIT_MAX_INPUTS`` inputs (each costs ``2 *
#: STRONG_SPLIT_CANDIDATES`` bounds), otherwise on the side with the largest slope times width.
#: Off by default: on nine ACAS Xu transfers (pruned 5/10 %, int8) the slope rule bounded
#: 36k boxes in all where strong branching of up to 128 leaves bounded 66k (its better splits
#: save fewer boxes than its candidates cost); it lost one carry (1_1/prop_4 int8) of nine.
STRONG_SPLIT_LEAVES = 0
STRONG_SPLIT_MAX_INPUTS = 16
#: strong branching bounds the halvings of only this many sides per leaf, those with the
#: largest ``|slope| * width`` (fewer boxes than all sides on each of those nine transfers)
STRONG_SPLIT_CANDIDATES = 2

#: rounds of splitting the failing input-box leaves in place (one level per round) ...
MAX_SPLIT_ROUNDS = 24
#: ... while the nodes they add stay below ``SPLIT_NODES_PER_LEAF`` times the source tree's leaf
#: count (or ``MIN_SPLIT_NODES``): a target that needs more is verified directly (a search from
#: scratch, with strong branching at every node, costs about as much)
MIN_SPLIT_NODES = 64
SPLIT_NODES_PER_LEAF = 3

#: when more than this share of a tree's leaves fail on the target, re-deriving them costs
#: more than verifying the target directly, so the replay gives up (the first walk stops there).
#: With failing boxes split in place (one batched walk per round) rather than searched one by
#: one, on ACAS Xu prop_2 (5 instances, pruned 5/10 %, int8, 30 s, `benchmarks/transfer_replay.py`)
#: 0.5 with up to 3 split nodes per source leaf carries 14 of 14 directly proved targets
#: (ratio 0.35 against direct verification; 0.3 with 1 node per leaf: 13 of 14, 0.51; per-leaf
#: searches and 0.1: 8 of 13, 1.28). A falsifiable target with a fifth of its leaves failing
#: (3_3 int8) then takes 8 s where direct verification takes 2 s.
MAX_FAILING_SHARE = 0.5

#: ... but up to this many failing leaves are always searched (small trees: cheap)
MIN_FAILING_SEARCHED = 16

#: a case without a source tree on more than ``REPROVE_INPUT_DIMS`` inputs is searched from its
#: root by input splits for at most this share of the replay's remaining time ...
ROOT_SEARCH_SHARE = 0.1
#: ... and at most this many seconds
ROOT_SEARCH_CAP = 2.0
#: ... and a case without a source tree whose sibling cases were proved by ReLU-phase trees gets
#: this share of the replay's remaining budget for a ReLU-phase search
RELU_ROOT_SEARCH_SHARE = 0.5


def _halved(lo: np.ndarray, hi: np.ndarray, recipe: Mapping[str, Any]) -> ProofTree:
    """One input split of the box ``[lo, hi]`` at the middle of its widest side, both halves
    claimed closed by bound (the replay re-derives them)."""
    d = int(np.argmax(hi - lo))
    rec = ProofRecorder(recipe=recipe)
    a, b = rec.split(rec.root(), INPUT_SPLIT, d, 0.5 * (float(lo[d]) + float(hi[d])))
    rec.close_many([a, b], CLOSED_BY_BOUND)
    return rec.tree()


def _graft_searches(
    target: Network,
    case: UnsafeCase,
    i: int,
    tree: ProofTree,
    rep: LeafReplay,
    deadline: float | None,
) -> ProofTree | _Replay:
    """``tree`` with every failing leaf of ``rep`` replaced by the proof tree of a search of the
    leaf's region on ``target``: input-split branch and bound of the leaf's box, or, for a leaf
    carrying ReLU phases (a phase-split tree), ReLU-phase branch and bound of the subdomain
    where those phases hold; a :class:`_Replay` (reason, maybe a witness) when a search does
    not prove its leaf."""
    opts = _search_options(tree.recipe)
    rec = ProofRecorder(recipe=tree.recipe)
    rec.graft(rec.root(), _opened(tree, rep.failing))  # node ids are kept
    alpha = int(tree.recipe.get("alpha_iters", 0))
    child_crown = tree.recipe.get("child_crown") if tree.recipe.get("inherit", True) else None
    phases = rep.frontier.phase if rep.frontier is not None else None
    # the layer of the split that made each failing leaf (what the checker's walk reads off
    # the tree for it)
    start_layer = split_layer(tree, rep.failing, engine_for(target).offsets).tolist()
    for j, (node, lo, hi) in enumerate(zip(rep.failing.tolist(), rep.lower, rep.upper)):
        sub = UnsafeCase(Box(lo, hi), case.A, case.b)
        phased = bool(rep.phased[j])
        if phased:
            if phases is None:  # pragma: no cover - a failing leaf always has its frontier
                return _Replay(None, f"case {i}: a phase-split leaf without its phases", {})
            ctx = CaseContext(VerifyOptions(), deadline, np.random.default_rng(0), None, i, None)
            # the search starts from the hidden-layer bounds the leaf's ancestors impose (the
            # next round's walk re-derives the grafted subtree from the same bounds, in the
            # same way: the tree's child_crown, the leaf bounded as a child of its split)
            assert rep.frontier is not None
            found = relu_bab_case(
                target,
                sub,
                ctx,
                root_phases=phases[j],
                split_root=True,
                root_bounds=(rep.frontier.pl[j], rep.frontier.pu[j]),
                root_start=start_layer[j] if child_crown is not None else -1,
                settings=dataclasses.replace(DEFAULT_SETTINGS, child_crown=child_crown),
            )
            status, x, proof_or_none = found.status, found.x, found.proof
        else:
            out = bab_verify_case(target, sub, deadline=deadline, options=opts, case_index=i)
            status, proof_or_none = out.status, out.proof
            x = None if out.x is None else np.asarray(out.x)
        if status == "falsified" and x is not None:
            why = f"case {i}: a counterexample lies in a failing leaf"
            return _Replay(None, why, {}, hint=np.asarray(x), hint_case=i)
        if status != "verified" or proof_or_none is None:
            return _Replay(None, f"case {i}: a failing leaf was not closed ({status})", {})
        proof = proof_or_none
        if proof.n_nodes == 1 and not phased:
            # (a phase-split leaf the search settles at once, by an LP with new multipliers,
            # is grafted as it is: the next round re-derives that record)
            # the fresh search closed the box at once, yet the tree's walk (whose ancestors'
            # hidden-layer bounds it inherits) did not: split it, the next round replays halves
            proof = _halved(lo, hi, tree.recipe)
        rec.graft(int(node), proof)
        alpha = max(alpha, int(proof.recipe.get("alpha_iters", 0)))
        if "beta_lr" in proof.recipe and "beta_lr" not in rec.recipe:
            # the grafted leaves record where their multipliers started (the tree's own
            # leaves carry no such record and keep the slopes-only steps they closed by)
            rec.recipe["beta_lr"] = proof.recipe["beta_lr"]
    rec.recipe["alpha_iters"] = alpha
    return rec.tree()


def _replay_trees(
    ev: BabEvidence, prop: Property, target: Network, deadline: float | None
) -> _Replay:
    r"""Carry ``ev``'s proof trees to ``target`` (see the module docstring, tree replay).

    Returns evidence only when every case is closed on the target: by the target's bound
    presolve, or by a tree that :func:`check_tree` re-derived on the target.
    """
    t0 = time.perf_counter()
    stats: dict[str, Any] = {
        "leaves": 0,
        "carried": 0,
        "failing": 0,
        "grafted": 0,
        "searched_cases": 0,
        "ok": False,
    }

    def left() -> float | None:
        return None if deadline is None else max(deadline - time.perf_counter(), 0.0)

    def done(reason: str, evidence: BabEvidence | None = None, **kw: Any) -> _Replay:
        stats["ok"] = evidence is not None
        stats["time"] = round(time.perf_counter() - t0, 6)
        return _Replay(evidence, reason, stats, **kw)

    presolve = bound_evidence(target, prop, "crown")
    trees = {r.case_index: r.tree for r in ev.cases if r.tree is not None}
    records: list[BabCase] = []
    if not any(i in trees for i in range(len(prop.cases)) if not presolve.case_lower[i] > 0.0):
        # nothing of the source's proof is needed: the target is for direct verification
        return done("")
    for i, case in enumerate(prop.cases):
        if presolve.case_lower[i] > 0.0:
            continue
        tree = trees.get(i)
        search_deadline = deadline
        if tree is not None and tree.recipe.get("search", "input-split") == "input-split":
            # bound each leaf from its own box: one batched pass instead of one bound call per
            # level; the few more leaves that fail are split in place
            tree = dataclasses.replace(
                tree, recipe={**dict(tree.recipe), "inherit": REPLAY_INHERIT}
            )
        if (
            tree is None
            and case.input_box.dim > REPROVE_INPUT_DIMS
            and any(t.recipe.get("search") == "relu-split" for t in trees.values())
        ):
            # the source proved its other cases by ReLU-phase trees: search this one the same
            # way on the target (half of what is left; its tree is then walked as any other)
            stats["searched_cases"] += 1
            now = time.perf_counter()
            rest = None if deadline is None else max(deadline - now, 0.0)
            ctx = CaseContext(
                VerifyOptions(),
                now + (ROOT_SEARCH_CAP if rest is None else RELU_ROOT_SEARCH_SHARE * rest),
                np.random.default_rng(0),
                None,
                i,
                None,
            )
            found = relu_bab_case(target, case, ctx)
            if found.status == "falsified" and found.x is not None:
                why = f"case {i}: a counterexample lies in the case"
                return done(why, hint=np.asarray(found.x), hint_case=i)
            if found.status != "verified" or found.proof is None:
                return done(f"case {i}: no source tree and the search did not close it")
            tree = found.proof
        if tree is None:
            tree = _root_tree(_DEFAULT_RECIPE)
            stats["searched_cases"] += 1
            if case.input_box.dim > REPROVE_INPUT_DIMS:
                # an input-split search from the root of a high-dimensional box either closes
                # in a few splits (the target's bound presolve nearly did) or runs out of time
                # (MNIST: the whole replay budget, before the target was verified directly
                # anyway): it gets a short slice
                now = time.perf_counter()
                rest = None if deadline is None else max(deadline - now, 0.0)
                short = ROOT_SEARCH_SHARE * rest if rest is not None else ROOT_SEARCH_CAP
                search_deadline = now + min(short, ROOT_SEARCH_CAP)
        closed = False
        start = None
        min_bound = np.inf
        split_rounds = 0
        split_nodes = 0
        split_cap = max(
            SPLIT_NODES_PER_LEAF * int(np.count_nonzero(tree.split == LEAF)), MIN_SPLIT_NODES
        )
        rnd = -1
        while True:
            rnd += 1
            # the replay is check_tree's own walk: when no leaf fails it is the check. After
            # the first round only the subtrees grafted in place of the failing leaves are
            # walked (from the regions and ancestor bounds recorded then): the rest of the tree
            # is unchanged and closed, so walking it again would only repeat the first round.
            # the first walk stops once too many leaves fail for re-searching them to pay
            limit = None
            if rnd == 0:
                n_leaves = int(np.count_nonzero(tree.split == LEAF))
                limit = int(max(MAX_FAILING_SHARE * n_leaves, MIN_FAILING_SEARCHED))
            rep = replay_tree(target, case, tree, time_limit=left(), start=start, max_failing=limit)
            min_bound = min(min_bound, rep.check.min_bound)
            if rnd == 0 and i in trees:
                stats["leaves"] += rep.check.leaves
                stats["carried"] += rep.check.leaves - rep.failing.size
                stats["failing"] += rep.failing.size
            if rep.check.ok:
                records.append(BabCase(i, "verified", min_bound, tree.n_nodes, tree))
                closed = True
                break
            if rep.structural:
                return done(f"case {i}: the proof tree does not replay: {rep.check.reason}")
            if rnd - split_rounds >= MAX_GRAFT_ROUNDS:
                break
            if rnd == 0 and limit is not None and rep.failing.size > limit:
                return done(
                    f"case {i}: more than {limit} of {rep.check.leaves} leaves fail (more than "
                    f"{MAX_FAILING_SHARE:.0%}: verifying directly is cheaper)"
                )
            search = tree.recipe.get("search", "input-split")
            if search not in ("input-split", "relu-split") or (
                np.any(rep.phased) and search != "relu-split"
            ):
                return done(f"case {i}: {rep.failing.size} leaf/leaves of a {search} tree fail")
            if rnd == 0 and i in trees:
                stats["grafted"] += rep.failing.size
            if (
                search == "input-split"
                and i in trees
                and not np.any(rep.phased)
                and split_rounds < MAX_SPLIT_ROUNDS
                and split_nodes + 2 * rep.failing.size <= split_cap
            ):
                # input boxes: split every failing leaf once and walk the halves under the
                # leaves' ancestors' bounds (one batched walk per round, the checker's own),
                # which is much cheaper than one fresh search per leaf without those bounds
                scale = case.input_box.upper - case.input_box.lower
                dims, x = _split_dims(target, case, tree, rep, scale)
                if x is None:
                    x = _center_witness(target, case, rep)
                if x is None and split_rounds == 0:
                    # the failing leaves are where a counterexample of a falsifiable target
                    # would be: a short attack started at the worst of them (a few ms) saves
                    # splitting them until the replay's budget ends
                    worst = np.argsort(rep.bounds)[:LEAF_ATTACK_STARTS]
                    att = pgd_attack(
                        target,
                        case,
                        steps=30,
                        restarts=max(worst.size, 8),
                        rng=np.random.default_rng(0),
                        x_init=0.5 * (rep.lower[worst] + rep.upper[worst]),
                        deadline=deadline,
                    )
                    x = att.x if att.violation <= 0.0 else None
                if x is not None:
                    why = f"case {i}: a counterexample lies in a failing leaf"
                    return done(why, hint=x, hint_case=i)
                tree = _split_leaves(tree, rep, dims)
                split_rounds += 1
                split_nodes += 2 * rep.failing.size
                stats["split_nodes"] = stats.get("split_nodes", 0) + 2 * rep.failing.size
                start = rep.frontier
                continue
            if split_rounds and rep.failing.size > MIN_FAILING_SEARCHED:
                return done(
                    f"case {i}: {rep.failing.size} leaves still fail after {split_rounds} "
                    "rounds of splits (verifying directly is cheaper)"
                )
            grafted = _graft_searches(target, case, i, tree, rep, search_deadline)
            if isinstance(grafted, _Replay):
                return done(grafted.reason, hint=grafted.hint, hint_case=grafted.hint_case)
            tree = grafted
            start = rep.frontier
        if not closed:
            return done(
                f"case {i}: leaves still fail after {split_rounds} rounds of splits and "
                f"{rnd - split_rounds} rounds of search"
            )
    evidence = BabEvidence(
        method=ev.method,
        nodes=sum(r.nodes for r in records),
        cases=tuple(records),
        presolve=presolve,
    )
    return done(
        f"tree replay: {stats['carried']} of {stats['leaves']} source leaves carried, "
        f"{stats['grafted']} re-searched and grafted",
        evidence,
    )


def _joined(first: str, then: str) -> str:
    return f"{first}; {then}" if first else then


def _nonzeros(net: Network) -> int:
    return int(sum(d.nnz for d in net.dense_layers))


def _theorem(source: Network, target: Network) -> str:
    return "T1" if _nonzeros(source) < _nonzeros(target) else "T2"


def _margin_delta_bounds(
    report: CheckReport, delta: tuple[tuple[float, ...], ...]
) -> tuple[tuple[float | None, ...], tuple[tuple[float, ...], ...] | None, list[float]]:
    """The margin + Δ rule per case, from the margins the checker re-derived (never the
    certificate's own claims): ``(source case margins, source row margins or None, target
    case bounds)`` (:func:`~nncert.certificates.check.transferred_case_bound`)."""
    src_case = report.case_lower
    src_rows = (
        None
        if any(r is None for r in report.row_lower)
        else tuple(r for r in report.row_lower if r is not None)
    )
    values = [
        transferred_case_bound(
            src_case[i] if i < len(src_case) else None,
            None if src_rows is None else src_rows[i],
            d,
        )
        for i, d in enumerate(delta)
    ]
    return tuple(src_case), src_rows, values


def _case_deltas(
    source: Network, target: Network, prop: Property, method: str
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    per_case = case_difference_bounds(target, source, prop.cases, method=method)
    lows = tuple(tuple(float(v) for v in lo) for lo, _ in per_case)
    ups = tuple(tuple(float(v) for v in up) for _, up in per_case)
    return lows, ups


def _certificate(
    target: Network,
    prop: Property,
    verdict: Verdict,
    evidence: Any,
    *,
    method: str,
    options: dict[str, Any],
    elapsed: float,
) -> Certificate:
    prov = Provenance.current(method=method, options=options, time=elapsed)
    return Certificate(
        SCHEMA_VERSION, NetworkRef.from_network(target), prop, verdict, evidence, prov
    )


def transfer(
    cert: Certificate,
    source: Network,
    target: Network,
    *,
    method: str = "best",
    verify_fallback: bool = True,
    time_limit: float | None = None,
    options: Any = None,
    accept_attested: bool = False,
    replay: bool = True,
    replay_share: float = 0.5,
) -> TransferResult:
    """Transfer ``cert`` (about ``source``) to ``target`` (see the module docstring).

    Args:
        cert: a certificate about ``source``; it is re-checked with
            :func:`~nncert.certificates.check` before use.
        source: the network the certificate is about.
        target: the network to certify (same inputs/outputs).
        method: how Δ is computed: ``"best"`` (default), ``"interval"`` or ``"crown"``.
        verify_fallback: when the transfer fails, verify ``target`` directly.
        time_limit: seconds for the fallback verification (overrides ``options``).
        options: :class:`~nncert.verify.options.VerifyOptions` (or a mapping) for the fallback.
        accept_attested: accept a source certificate whose verdict rests on a solver's word
            (by default only independently re-derived certificates are carried).
        replay: when the Δ rule fails, carry the source's proof trees (tree replay).
        replay_share: share of ``time_limit`` the tree replay may use (the fallback gets the
            rest).

    Returns:
        A :class:`TransferResult`. ``transferred`` is ``True`` only when the verdict came from
        the source certificate.

    Raises:
        TransferError: ``cert`` is not about ``source``, is rejected by the checker, or is
            solver-attested and ``accept_attested`` is false.
        InvalidPropertyError: the property does not fit ``target``.
        InvalidOptionsError: unknown ``method`` or options.
    """
    # small networks: one BLAS thread throughout, as verify() does (waking idle BLAS threads
    # costs more than the products on a loaded machine)
    with limit_blas(blas_threads(target)):
        return _transfer(
            cert,
            source,
            target,
            method=method,
            verify_fallback=verify_fallback,
            time_limit=time_limit,
            options=options,
            accept_attested=accept_attested,
            replay=replay,
            replay_share=replay_share,
        )


def _transfer(
    cert: Certificate,
    source: Network,
    target: Network,
    *,
    method: str,
    verify_fallback: bool,
    time_limit: float | None,
    options: Any,
    accept_attested: bool,
    replay: bool,
    replay_share: float,
) -> TransferResult:
    """:func:`transfer` under its BLAS thread cap."""
    t0 = time.perf_counter()
    if method not in DIFF_METHODS:
        raise InvalidOptionsError(f"method={method!r} must be one of {', '.join(DIFF_METHODS)}")
    if not 0.0 < replay_share <= 1.0:
        raise InvalidOptionsError(f"replay_share={replay_share!r} must be in (0, 1]")
    if cert.network.fingerprint != source.fingerprint():
        raise TransferError(
            "transfer: the certificate is not about the given source network (fingerprint mismatch)"
        )
    prop = cert.property
    prop.check_network_shape(target.n_inputs, target.n_outputs, where="transfer target")
    fingerprint = source.fingerprint()

    def source_report() -> CheckReport:
        report = _source_report(cert, source, fingerprint)
        if not report.ok:
            raise TransferError(f"transfer: source certificate rejected: {report.reasons[0]}")
        if not report.independent and not accept_attested:
            raise TransferError(
                "transfer: the source certificate's verdict rests on a solver's word "
                f"({report.unchecked[0]}); re-create it with a checkable proof, or accept it "
                "with --accept-attested"
            )
        return report

    # A replayed proof tree is re-derived leaf by leaf on the target (the checker's own walk),
    # so a target proof from it rests on nothing the source certificate claims: the source is
    # checked only when the replay does not settle the target (the rules below use its
    # re-derived margins). Every other route checks it first.
    replay_first = (
        replay and cert.verdict is Verdict.VERIFIED and isinstance(cert.evidence, BabEvidence)
    )
    report = None if replay_first else source_report()
    base_opts: dict[str, Any] = {"delta_method": method, "source": fingerprint}
    delta: tuple[tuple[float, ...], ...] | None = None
    hint: np.ndarray | None = None
    hint_case = 0
    reason = ""
    replayed: _Replay | None = None

    if cert.verdict is Verdict.VERIFIED:
        # a search's certificate: carry its proof trees first (the Δ rule needs the whole
        # box's margin to exceed the output change, which a tree's smallest leaf rarely does)
        if replay and isinstance(cert.evidence, BabEvidence):
            deadline = None
            if time_limit is not None:
                deadline = t0 + replay_share * float(time_limit)
            source_time = float(cert.provenance.time)
            if verify_fallback and source_time > 0.0:
                # a replay (with its grafted searches) slower than the source's own
                # verification is slower than verifying the target directly: it gets at most
                # that long before the fallback does (informative provenance, used for time
                # only; a forged time costs time, never soundness)
                cap = t0 + max(REPLAY_MIN_SECONDS, REPLAY_SOURCE_TIME_FACTOR * source_time)
                deadline = cap if deadline is None else min(deadline, cap)
            replayed = _replay_trees(cert.evidence, prop, target, deadline)
            if replayed.evidence is not None:
                elapsed = time.perf_counter() - t0
                out = _certificate(
                    target,
                    prop,
                    Verdict.VERIFIED,
                    replayed.evidence,
                    method="transfer-replay",
                    options={**base_opts, "source_certificate": certificate_sha256(cert)},
                    elapsed=elapsed,
                )
                return TransferResult(
                    Verdict.VERIFIED,
                    out,
                    True,
                    delta,
                    elapsed,
                    None,
                    replayed.reason,
                    replayed.stats,
                )
            if replayed.reason:
                reason = f"tree replay: {replayed.reason}"
            if replayed.hint is not None:
                hint, hint_case = replayed.hint, replayed.hint_case
                found = _replayed_witness(prop, target, hint, hint_case, options, t0, reason)
                if found is not None:
                    # a confirmed counterexample: no margin rule can verify the target
                    return dataclasses.replace(found, replay=replayed.stats)
        # leaves of the source's tree fail on the target even after splitting: the margin +
        # Δ rule would add the whole box's Δ (wider than any leaf's) to the source's smallest
        # leaf margin, which practically never closes what the leaf-wise replay could not
        # (no ACAS Xu transfer did); the target is verified directly at once, without paying
        # for the source check and Δ first (a heuristic on time: soundness is unaffected)
        hopeless = (
            replayed is not None
            and replayed.evidence is None
            and int(replayed.stats.get("failing", 0)) > 0
        )
        if hopeless:
            reason = _joined(reason, "margin + Δ not tried: leaves of the source's tree fail")
        else:
            if report is None:
                report = source_report()
            try:
                delta, delta_up = _case_deltas(source, target, prop, method)
            except TransferError as err:
                reason = _joined(reason, f"difference bounds unavailable: {err}")
            if delta is not None:
                src_case, src_rows, values = _margin_delta_bounds(report, delta)
                failing = [i for i, v in enumerate(values) if not v > 0.0]
                if not failing:
                    ev = TransferEvidence(
                        source_fingerprint=cert.network.fingerprint,
                        source_verdict=cert.verdict,
                        source_kind=cert.evidence.kind,
                        source_case_lower=tuple(src_case),
                        source_row_lower=src_rows,
                        delta_lower=delta,
                        delta_upper=delta_up,
                        delta_method=method,
                        theorem=_theorem(source, target),
                        case_lower=tuple(values),
                        source_certificate_sha256=certificate_sha256(cert),
                    )
                    elapsed = time.perf_counter() - t0
                    out = _certificate(
                        target,
                        prop,
                        Verdict.VERIFIED,
                        ev,
                        method="transfer",
                        options=base_opts,
                        elapsed=elapsed,
                    )
                    attested = report is not None and not report.independent
                    return TransferResult(
                        Verdict.VERIFIED,
                        out,
                        True,
                        delta,
                        elapsed,
                        None,
                        f"{ev.theorem}: margin + Δ > 0 for every case"
                        + (" (the source's verdict is solver-attested)" if attested else ""),
                        attested=attested,
                    )
                i = failing[0]
                reason = _joined(
                    reason,
                    f"margin + Δ = {values[i]:.6g} <= 0 for case {i}; "
                    f"{len(failing)} of {len(prop.cases)} case(s) fail",
                )
    elif cert.verdict is Verdict.FALSIFIED:
        ev_c = cert.evidence
        if not isinstance(ev_c, CounterexampleEvidence):  # pragma: no cover - check() ensures it
            raise TransferError("transfer: FALSIFIED certificate without a counterexample")
        hint, hint_case = ev_c.x, ev_c.case_index
        vopts = options_dict(options)
        cex = confirm_counterexample(
            target,
            prop.cases[hint_case],
            hint_case,
            ev_c.x,
            onnx_replay=bool(vopts.get("onnx_replay", True)),
        )
        if cex is not None:
            evidence = CounterexampleEvidence(
                cex.x, cex.y, cex.case_index, cex.violation, cex.onnx_checked
            )
            elapsed = time.perf_counter() - t0
            out = _certificate(
                target,
                prop,
                Verdict.FALSIFIED,
                evidence,
                method="transfer-T3",
                options=base_opts,
                elapsed=elapsed,
            )
            return TransferResult(
                Verdict.FALSIFIED,
                out,
                True,
                None,
                elapsed,
                None,
                "T3: the source counterexample violates the property on the target too",
            )
        reason = "the source counterexample does not violate the property on the target"
    else:
        reason = "the source certificate is UNKNOWN"

    if not verify_fallback:
        elapsed = time.perf_counter() - t0
        lows: tuple[float | None, ...] = ()
        if delta is not None and report is not None:
            vals = _margin_delta_bounds(report, delta)[2]
            lows = tuple(v if math.isfinite(v) else None for v in vals)
        out = _certificate(
            target,
            prop,
            Verdict.UNKNOWN,
            NoEvidence(reason="transfer_failed", case_lower=lows),
            method="transfer",
            options=base_opts,
            elapsed=elapsed,
        )
        return TransferResult(
            Verdict.UNKNOWN,
            out,
            False,
            delta,
            elapsed,
            None,
            reason,
            None if replayed is None else replayed.stats,
        )
    res = _fallback(
        prop, target, delta, hint, hint_case, reason, t0, time_limit=time_limit, options=options
    )
    if replayed is not None:
        res = dataclasses.replace(res, replay=replayed.stats)
    return res


def _replayed_witness(
    prop: Property,
    target: Network,
    x: np.ndarray,
    case_index: int,
    options: Any,
    t0: float,
    reason: str,
) -> TransferResult | None:
    """FALSIFIED when the candidate ``x`` a tree replay met in a failing leaf is confirmed on
    ``target`` (float64 replay, and onnxruntime when the options ask for it), else ``None``."""
    onnx_replay = bool(options_dict(options).get("onnx_replay", True))
    cex = confirm_counterexample(
        target, prop.cases[case_index], case_index, x, onnx_replay=onnx_replay
    )
    if cex is None:
        return None
    elapsed = time.perf_counter() - t0
    result = VerificationResult(
        Verdict.FALSIFIED,
        reason="tree-replay-witness",
        counterexample=cex,
        method="transfer",
        time=elapsed,
    )
    out = certificate_from_result(target, prop, result, options={"method": "transfer"})
    return TransferResult(Verdict.FALSIFIED, out, False, None, elapsed, result, reason)


def _fallback(
    prop: Property,
    target: Network,
    delta: tuple[tuple[float, ...], ...] | None,
    hint: np.ndarray | None,
    hint_case: int,
    reason: str,
    t0: float,
    *,
    time_limit: float | None,
    options: Any,
) -> TransferResult:
    """Verify ``target`` directly, first attacking from the source's witness (if any)."""

    if options is None:
        vopts = VerifyOptions()
    elif isinstance(options, VerifyOptions):
        vopts = options
    elif isinstance(options, Mapping):
        vopts = VerifyOptions.from_mapping(options)
    else:
        raise InvalidOptionsError(f"options={options!r} must be VerifyOptions or a mapping")
    if time_limit is not None:
        remaining = max(1e-3, float(time_limit) - (time.perf_counter() - t0))
        vopts = dataclasses.replace(vopts, time_limit=remaining)
    if hint is not None and vopts.attack:
        case = prop.cases[hint_case]
        res = pgd_attack(
            target,
            case,
            steps=30,
            restarts=4,
            rng=np.random.default_rng(vopts.seed),
            x_init=hint,
        )
        x = np.asarray(getattr(res, "x", None) if not isinstance(res, tuple) else res[0])
        cex = confirm_counterexample(target, case, hint_case, x, onnx_replay=vopts.onnx_replay)
        if cex is not None:
            elapsed = time.perf_counter() - t0
            result = VerificationResult(
                Verdict.FALSIFIED,
                reason="source-witness+pgd",
                counterexample=cex,
                method="attack",
                time=elapsed,
            )
            out = certificate_from_result(target, prop, result, options=vopts)
            return TransferResult(Verdict.FALSIFIED, out, False, delta, elapsed, result, reason)
    result = verify(target, prop, vopts)
    out = certificate_from_result(target, prop, result, options=vopts)
    elapsed = time.perf_counter() - t0
    return TransferResult(result.verdict, out, False, delta, elapsed, result, reason)


__all__ = ["TransferResult", "clear_check_cache", "transfer"]
