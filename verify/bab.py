"""Complete verification by branch and bound (BaB) over input splits.

For a case "unsafe iff some ``x`` in the box has ``A f(x) <= b``" (every row), BaB keeps a pool of
sub-boxes that together cover the case's box. Each round pops a batch of boxes, forms the candidate
halves and bounds ``g_r(x) = A_r f(x) - b_r`` on all of them at once
(:class:`~nncert.verify.bounds.BoundEngine`). A box is **closed** when some row, or the best convex
combination of the rows (conjunctions), has a sound lower bound ``> close_tol`` (default 0: the
engine's bounds account for every rounding error, so a bound ``> 0`` proves that no point of the box
satisfies every row, even on the property's boundary). Otherwise the box centre and, per row, the
vertex minimising CROWN's linear lower bound are evaluated; a point with violation ``<= 0`` that a
float64 forward pass of the original network confirms is a counterexample. Open boxes go back to the
pool (depth first, weakest last so they are popped first). Every few rounds, a short PGD attack runs
on the weakest open boxes.

Bounds: IBP, forward linear bounds and CROWN back-substitution (``intermediate="crown"``), with
every box inheriting its parent's hidden-layer bounds (valid on a sub-box; they also shrink the
set of unstable neurons CROWN has to bound) and its parent's objective bound (CROWN is not
monotone under splitting). For the objective, extra lower-slope choices and, once a case has
run ``alpha_after_s`` seconds, gradient-optimised slopes (alpha-CROWN on the last
back-substitution) tighten the bound.

Verdicts: VERIFIED when every box of every case is closed; FALSIFIED with a confirmed
:class:`~nncert.verify.result.Counterexample`; UNKNOWN with reason ``"timeout"`` when the
deadline passes, ``"budget"`` when ``max_nodes`` is exhausted, ``"inconclusive"`` when boxes
shrank below ``min_width`` without being decided.

Branching (``BabOptions.split``): ``"strong"`` (default) bounds both halves along *every*
input dimension and keeps the split with the smallest remaining gap (ties: the relatively
widest side); the halves of the chosen split are the new boxes, so nothing is bounded twice.
``"smear"`` splits the dimension maximising ``|coef_i| * width_i`` (``coef``: input slopes of
the linear lower bound of the row closest to closing the box); ``"widest"`` the dimension that
is widest relative to the case's box. Strong branching costs ``n_inputs`` times more bounds
per split but gives far smaller trees on ACAS Xu (smear ignores the relaxation slack, which
dominates there). With more than ``batch_size / 2`` inputs (the candidates of one box would
not fit one batch) ``"strong"`` splits on the smear rule.

Parallelism (``jobs > 1``): after a short serial warm-up, the open boxes are split into work
units (a case index and a list of boxes) that worker processes search for ``slice_s`` seconds
each, returning what is left; units are re-split whenever a worker is idle. Verdicts do not
depend on ``jobs``; which counterexample is returned may.

Example:
    >>> import numpy as np
    >>> from nncert.verify import Box, Dense, Network, Property, ReLU, UnsafeCase
    >>> net = Network((Dense([[1.0], [-1.0]], [0.0, 0.0]), ReLU(), Dense([[1.0, 1.0]], [0.0])),
    ...               input_shape=(1,))
    >>> prop = Property((UnsafeCase(Box([-1.0], [1.0]), [[1.0]], [-0.5]),))  # |x| <= -0.5?
    >>> bab_verify(net, prop, time_limit=10).verdict.value
    'verified'
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nncert.formulations.milp import encode_milp
from nncert.solvers.registry import get_solver
from nncert.verify.activations import rule_for
from nncert.verify.attack import falsify, pgd_boxes
from nncert.verify.bounds import (
    BoundEngine,
    IntermediateMode,
    Interval,
    LayerBounds,
    combine_rows,
    dense_interval,
)
from nncert.verify.errors import InvalidOptionsError, InvalidPropertyError
from nncert.verify.network import FloatArray, Network
from nncert.verify.processes import exit_with_parent, limit_blas
from nncert.verify.proof import CLOSED_BY_BOUND, INPUT_SPLIT, ProofRecorder, ProofTree
from nncert.verify.result import Counterexample, Verdict, VerificationResult
from nncert.verify.spec import Box, Property, UnsafeCase
from nncert.verify.witness import confirm_counterexample

BabStatus = Literal["verified", "falsified", "timeout", "budget", "inconclusive"]
SplitHeuristic = Literal["strong", "smear", "widest"]


@dataclass(frozen=True)
class BabOptions:
    """Options of :func:`bab_verify` / :func:`bab_verify_case`.

    Attributes:
        batch_size: candidate boxes bounded per round (strong branching: ``2 n_inputs`` per
            popped box, otherwise 2).
        split: branching heuristic, ``"strong"``, ``"smear"`` or ``"widest"`` (module
            docstring).
        intermediate: hidden-layer bounds: ``"forward"`` (IBP and forward linear bounds,
            fast for few inputs), ``"crown"`` (plus back-substitution for unstable neurons,
            much tighter on deep networks, about 10x slower) or ``"ibp"``. Every box also
            inherits its parent's hidden-layer bounds.
        screen: with ``"crown"``, bound every candidate box cheaply first (IBP, forward
            linear bounds and inherited bounds) and compute CROWN only for the candidates
            that stay open.
        extra_slopes: further lower-slope choices for unstable ReLUs in the objective's
            back-substitution (see :meth:`BoundEngine.bound`); cheap, and often decisive on
            the last few splits.
        alpha_iters: gradient steps optimising the objective's lower slopes per box
            (alpha-CROWN on the last back-substitution, see :meth:`BoundEngine.bound`); 0
            disables. Costs about 1.5x per box; pays on hard instances.
        alpha_after_s: switch the optimised slopes on only once a case has been searched
            this long (easy instances stay fast).
        combine_rows: for conjunctions (several rows), also close a box when the best convex
            combination of the rows' linear lower bounds is positive
            (:func:`~nncert.verify.bounds.combine_rows`).
        leaf_milp: for piecewise-linear networks, solve an exact MILP (big-M, HiGHS) on an open
            box once at most this many of its hidden neurons are unstable (0: never); its
            optimum closes the box or yields a candidate counterexample.
        milp_tolerance: a leaf MILP closes its box only when its proven dual bound exceeds
            this (absorbs the solver's feasibility tolerances amplified by big-M constants).
        seed: seed of every random choice (attacks).
        jobs: worker processes (1 = serial, in this process).
        max_nodes: stop with UNKNOWN ``"budget"`` after bounding this many boxes per case
            (``None``: no limit).
        close_tol: a box is closed when a row's lower bound exceeds this (default 0: the bounds
            are rigorous in floating point; a margin of exactly 0 never closes a box).
        min_width: boxes whose every side is at most this wide are not split further; they
            make the result ``"inconclusive"`` unless a counterexample turns up.
        attack_budget_s: seconds of falsification (sampling + PGD) before BaB in
            :func:`bab_verify`.
        attack_samples: random samples per case in that falsification stage.
        attack_every: run PGD on the weakest open boxes every this many rounds (0: never).
        diversify: every this many rounds, process the oldest boxes in the pool instead of
            the newest (0: pure depth-first). Helps to find counterexamples.
        attack_nodes: how many boxes each PGD round attacks (those whose candidate points
            came closest to violating the case).
        attack_steps: PGD steps in those rounds.
        warmup_s: with ``jobs > 1``, seconds of serial search before workers start (easy
            instances finish without paying for processes).
        slice_s: length of one work unit in a worker (and of one turn per case in serial
            round-robin over several cases).
        blas_threads: BLAS threads while searching (``None``: leave as is). One thread is
            much faster for the many mid-sized products BaB issues, and parallelism comes
            from ``jobs``.
        mp_context: multiprocessing start method for ``jobs > 1`` (``"fork"``/``"spawn"``).
    """

    batch_size: int = 256
    split: SplitHeuristic = "strong"
    intermediate: IntermediateMode = "crown"
    screen: bool = False
    combine_rows: bool = True
    extra_slopes: tuple[str, ...] = ("zero", "one")
    alpha_iters: int = 5
    alpha_after_s: float = 5.0
    leaf_milp: int = 0
    milp_tolerance: float = 1e-5
    seed: int = 0
    jobs: int = 1
    max_nodes: int | None = None
    close_tol: float = 0.0
    min_width: float = 1e-12
    attack_budget_s: float = 0.2
    attack_samples: int = 8192
    attack_every: int = 4
    diversify: int = 4
    attack_nodes: int = 8
    attack_steps: int = 20
    warmup_s: float = 1.0
    slice_s: float = 2.0
    blas_threads: int | None = 1
    mp_context: str = "fork"

    def __post_init__(self) -> None:
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise InvalidOptionsError(f"batch_size={self.batch_size!r} must be an int >= 1")
        if self.split not in ("strong", "smear", "widest"):
            raise InvalidOptionsError(f"split={self.split!r} must be 'strong', 'smear' or 'widest'")
        if self.intermediate not in ("ibp", "forward", "crown"):
            raise InvalidOptionsError(
                f"intermediate={self.intermediate!r} must be 'ibp', 'forward' or 'crown'"
            )
        if not (isinstance(self.jobs, int) and self.jobs >= 1):
            raise InvalidOptionsError(f"jobs={self.jobs!r} must be an int >= 1")
        if self.max_nodes is not None and self.max_nodes < 1:
            raise InvalidOptionsError(f"max_nodes={self.max_nodes!r} must be >= 1 or None")
        if not (self.close_tol >= 0.0 and self.min_width >= 0.0):
            raise InvalidOptionsError("close_tol and min_width must be >= 0")
        if self.slice_s <= 0.0 or self.warmup_s < 0.0 or self.attack_budget_s < 0.0:
            raise InvalidOptionsError("slice_s must be > 0, warmup_s/attack_budget_s >= 0")
        for choice in self.extra_slopes:
            if choice not in ("zero", "one", "parallel"):
                raise InvalidOptionsError(
                    f"extra_slopes: {choice!r} is not 'zero', 'one' or 'parallel'"
                )
        if self.alpha_iters < 0 or self.leaf_milp < 0:
            raise InvalidOptionsError("alpha_iters and leaf_milp must be >= 0")
        if self.mp_context not in ("fork", "spawn", "forkserver"):
            raise InvalidOptionsError(f"mp_context={self.mp_context!r} is not a start method")


@dataclass(frozen=True, eq=False)
class BabOutcome:
    """Result of branch and bound on one case.

    Attributes:
        status: ``"verified"``, ``"falsified"``, ``"timeout"``, ``"budget"`` or
            ``"inconclusive"``.
        counterexample: the confirmed witness when ``"falsified"``.
        lower_bound: when ``"verified"``, a proven lower bound on
            ``min_x max_r (A_r f(x) - b_r)`` over the case's box (the smallest closing bound).
        upper_bound: the smallest violation seen at a concrete point (``inf`` if none).
        nodes: boxes bounded.
        max_depth: deepest split level reached.
        batches: bound calls.
        time: wall-clock seconds.
        stats: further counters (closed boxes, PGD rounds, parallel units, ...).
    """

    status: BabStatus
    counterexample: Counterexample | None = None
    lower_bound: float | None = None
    upper_bound: float = np.inf
    nodes: int = 0
    max_depth: int = 0
    batches: int = 0
    time: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    proof: ProofTree | None = None

    @property
    def x(self) -> FloatArray | None:
        """The counterexample's input, or ``None``."""
        return None if self.counterexample is None else self.counterexample.x


# --------------------------------------------------------------------------------------------
# Node pool and per-case search state
# --------------------------------------------------------------------------------------------


#: pool rows: lower, upper, depth, pending split dimension, prior hidden bounds (l, u),
#: the parent's objective bound, and the proof-tree node of the box (see _TreeLog)
_Entries = tuple[
    FloatArray, FloatArray, np.ndarray, np.ndarray, FloatArray, FloatArray, FloatArray, np.ndarray
]
_N_FIELDS = 8


def _empty_entries(n: int, h: int) -> _Entries:
    return (
        np.zeros((0, n)),
        np.zeros((0, n)),
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        np.zeros((0, h)),
        np.zeros((0, h)),
        np.zeros(0),
        np.zeros(0, dtype=np.int64),
    )


class _TreeLog:
    """The proof-tree events of a search: input splits and closed leaves.

    Boxes refer to tree nodes by reference numbers. In the main process the log writes through
    to the case's :class:`~nncert.verify.proof.ProofRecorder` and references are node ids; in a
    worker it numbers new nodes ``-1, -2, ...`` and records the events, which the main process
    replays (:meth:`replay`) to mint the real ids.
    """

    def __init__(self, recorder: ProofRecorder | None) -> None:
        self.recorder = recorder
        self.events: list[tuple[Any, ...]] = []
        self._next = -1

    def split(self, refs: np.ndarray, dims: np.ndarray, mids: np.ndarray) -> np.ndarray:
        """Split the boxes ``refs`` on ``dims`` at ``mids``; ``(k, 2)`` references of the
        children (side 0: the lower half, side 1: the upper half)."""
        out = np.empty((refs.size, 2), dtype=np.int64)
        for j in range(refs.size):
            if self.recorder is not None:
                a, b = self.recorder.split(int(refs[j]), INPUT_SPLIT, int(dims[j]), float(mids[j]))
            else:
                a, b = self._next, self._next - 1
                self._next -= 2
                self.events.append(("split", int(refs[j]), int(dims[j]), float(mids[j]), a, b))
            out[j] = (a, b)
        return out

    def close(self, refs: np.ndarray) -> None:
        """The boxes ``refs`` are closed by their bounds."""
        if self.recorder is not None:
            self.recorder.close_many([int(r) for r in refs], CLOSED_BY_BOUND)
        else:
            self.events.append(("close", [int(r) for r in refs]))

    @staticmethod
    def replay(events: list[tuple[Any, ...]], recorder: ProofRecorder) -> dict[int, int]:
        """Apply a worker's events to ``recorder``; returns its reference -> node id map."""
        ids: dict[int, int] = {}

        def node(ref: int) -> int:
            return ids[ref] if ref < 0 else ref

        for ev in events:
            if ev[0] == "split":
                _, ref, dim, mid, a, b = ev
                ids[a], ids[b] = recorder.split(node(ref), INPUT_SPLIT, dim, mid)
            else:
                recorder.close_many([node(r) for r in ev[1]], CLOSED_BY_BOUND)
        return ids


def _take(entries: _Entries, idx: Any) -> _Entries:
    return tuple(a[idx] for a in entries)


class _Pool:
    """A LIFO stack of boxes stored as chunks of arrays (pop takes from the end).

    Each row is a box that is known to be open, with its depth, its pending split dimension
    (``-1``: decide by strong branching, ``-2``: not bounded yet) and sound bounds on every
    hidden pre-activation over it (inherited by its children).
    """

    def __init__(self, n: int, h: int) -> None:
        self.n = n
        self.h = h
        self.chunks: list[_Entries] = []
        self.size = 0

    def push(self, entries: _Entries) -> None:
        """Add rows."""
        if entries[0].shape[0]:
            self.chunks.append(entries)
            self.size += int(entries[0].shape[0])

    def pop(self, k: int, *, oldest: bool = False) -> _Entries:
        """Remove and return up to ``k`` rows from the end (``oldest``: from the start).

        Rows come back in stack order (bottom to top).
        """
        parts: list[_Entries] = []
        need = k
        while need > 0 and self.chunks:
            chunk = self.chunks[0] if oldest else self.chunks[-1]
            m = chunk[0].shape[0]
            if m <= need:
                parts.append(self.chunks.pop(0) if oldest else self.chunks.pop())
                need -= m
            elif oldest:
                parts.append(_take(chunk, slice(None, need)))
                self.chunks[0] = _take(chunk, slice(need, None))
                need = 0
            else:
                parts.append(_take(chunk, slice(m - need, None)))
                self.chunks[-1] = _take(chunk, slice(None, m - need))
                need = 0
        self.size -= k - need
        if not oldest:
            parts.reverse()
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return _empty_entries(self.n, self.h)
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(_N_FIELDS))  # type: ignore[return-value]

    def take_all(self) -> _Entries:
        """Remove and return every row."""
        return self.pop(self.size) if self.size else _empty_entries(self.n, self.h)


@dataclass
class _Unit:
    """A work unit: open boxes of one case (pool rows)."""

    case_index: int
    entries: _Entries

    @property
    def size(self) -> int:
        return int(self.entries[0].shape[0])

    def halves(self) -> tuple[_Unit, _Unit]:
        """Split the boxes in two interleaved halves (similar difficulty on both sides)."""
        return (
            _Unit(self.case_index, _take(self.entries, slice(0, None, 2))),
            _Unit(self.case_index, _take(self.entries, slice(1, None, 2))),
        )


@dataclass
class _Counters:
    nodes: int = 0
    batches: int = 0
    max_depth: int = 0
    closed: int = 0
    attack_rounds: int = 0
    cheap_boxes: int = 0
    milps: int = 0
    alpha_boxes: int = 0
    full_boxes: int = 0
    closed_lb: float = np.inf
    upper: float = np.inf
    unresolved: int = 0

    def merge(self, other: dict[str, Any]) -> None:
        self.nodes += int(other["nodes"])
        self.batches += int(other["batches"])
        self.max_depth = max(self.max_depth, int(other["max_depth"]))
        self.closed += int(other["closed"])
        self.cheap_boxes += int(other["cheap_boxes"])
        self.milps += int(other["milps"])
        self.alpha_boxes += int(other["alpha_boxes"])
        self.full_boxes += int(other["full_boxes"])
        self.attack_rounds += int(other["attack_rounds"])
        self.closed_lb = min(self.closed_lb, float(other["closed_lb"]))
        self.upper = min(self.upper, float(other["upper"]))
        self.unresolved += int(other["unresolved"])

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class _CaseSearch:
    """Branch and bound on the boxes of one case (runs in the main process or a worker)."""

    def __init__(
        self,
        network: Network,
        bounder: BoundEngine,
        case: UnsafeCase,
        case_index: int,
        options: BabOptions,
        rng: np.random.Generator,
        t_start: float | None = None,
        tree: _TreeLog | None = None,
    ) -> None:
        self.network = network
        self.t_start = time.perf_counter() if t_start is None else t_start
        #: where splits and closed leaves are recorded (the proof tree)
        self.tree = _TreeLog(None) if tree is None else tree
        self.bounder = bounder
        self.case = case
        self.case_index = case_index
        self.options = options
        self.rng = rng
        self.A = case.A
        self.b = case.b
        self.root_width = np.where(
            case.input_box.upper > case.input_box.lower,
            case.input_box.upper - case.input_box.lower,
            1.0,
        )
        self.counters = _Counters()
        self.counterexample: Counterexample | None = None
        self.milp_ok = network.is_piecewise_linear
        self._milp_solver: Any = None

    # -- candidates --------------------------------------------------------------------------
    def _check_points(self, pts: FloatArray) -> tuple[bool, FloatArray]:
        """Evaluate candidate points; confirm the best violating ones.

        Returns:
            ``(falsified, violation per point)``.
        """
        v = np.max(self.bounder.forward(pts) @ self.A.T - self.b, axis=1)
        self.counters.upper = min(self.counters.upper, float(np.min(v)))
        bad = np.flatnonzero(v <= 0.0)
        for i in bad[np.argsort(v[bad])][:8]:
            cex = confirm_counterexample(
                self.network, self.case, self.case_index, pts[i], onnx_replay=False
            )
            if cex is not None:
                self.counterexample = cex
                return True, v
        return False, v

    def _attack(self, lo: FloatArray, hi: FloatArray, x0: FloatArray) -> bool:
        """PGD inside the given boxes, from ``x0`` and from random points. True if falsified."""
        self.counters.attack_rounds += 1
        lo2 = np.concatenate([lo, lo])
        hi2 = np.concatenate([hi, hi])
        starts = np.concatenate([x0, self.rng.uniform(lo, hi)])
        best_x, best_v, _ = pgd_boxes(
            self.network,
            self.A,
            self.b,
            lo2,
            hi2,
            starts,
            steps=self.options.attack_steps,
            step_size=0.25,
        )
        self.counters.upper = min(self.counters.upper, float(np.min(best_v)))
        order = np.argsort(best_v)
        for i in order[:4]:
            if best_v[i] > 0.0:
                break
            cex = confirm_counterexample(
                self.network, self.case, self.case_index, best_x[i], onnx_replay=False
            )
            if cex is not None:
                self.counterexample = cex
                return True
        return False

    def _leaf_milps(self, rows: _Entries, deadline: float | None) -> tuple[str, np.ndarray]:
        """Exact MILPs on small open boxes; returns ("falsified" | "", closed mask)."""

        if self._milp_solver is None:
            self._milp_solver = get_solver("highs", threads=1)
        solver = self._milp_solver
        tol = self.options.milp_tolerance
        closed = np.zeros(rows[0].shape[0], dtype=bool)
        net = self.bounder.normal
        offs = self.bounder.offsets
        act_last = self.bounder.activations[-1] if self.bounder.activations else None
        for k in range(rows[0].shape[0]):
            if deadline is not None and time.perf_counter() >= deadline:
                break
            lo, hi, pl, pu = rows[0][k], rows[1][k], rows[4][k], rows[5][k]
            box = Box(lo, hi)
            hidden = [
                Interval(pl[offs[j] : offs[j + 1]], pu[offs[j] : offs[j + 1]])
                for j in range(len(offs) - 1)
            ]
            if act_last is None:
                ol, ou = lo, hi
            else:
                ol, ou = rule_for(act_last).interval(act_last, hidden[-1].lower, hidden[-1].upper)
            out = Interval(*dense_interval(net.dense_layers[-1], ol, ou))
            bounds = LayerBounds(net, box, (*hidden, out), method="bab")
            sub = UnsafeCase(box, self.A, self.b)
            problem = encode_milp(net, sub, bounds)
            remaining = None if deadline is None else max(0.01, deadline - time.perf_counter())
            res = solver.solve(
                problem, time_limit=remaining, objective_target=0.0, bound_target=tol
            )
            self.counters.milps += 1
            if res.bound is not None and res.bound > tol:
                closed[k] = True
                self.counters.closed += 1
                self.counters.closed_lb = min(self.counters.closed_lb, float(res.bound))
            elif res.x is not None and res.objective is not None and res.objective <= tol:
                x = problem.index.decode_input(res.x)
                cex = confirm_counterexample(
                    self.network, self.case, self.case_index, x, onnx_replay=False
                )
                if cex is not None:
                    self.counterexample = cex
                    return "falsified", closed
        return "", closed

    # -- main loop ---------------------------------------------------------------------------
    def _children(self, parents: _Entries) -> tuple[_Entries, list[tuple[str, int]]]:
        """Candidate boxes to bound for the popped rows, grouped by how they split.

        ``dim == -2``: the box itself (not bounded yet); ``dim >= 0``: its two halves along
        ``dim``; ``dim == -1`` (strong branching): both halves along every input dimension.
        Candidates inherit their parent's hidden-layer bounds as priors.

        Returns:
            The candidate rows and the groups ``(kind, number of parents)`` in order.
        """
        lo, hi, dep, dim, pl, pu, bnd, ref = parents
        n_in = lo.shape[1]
        parts: list[_Entries] = []
        groups: list[tuple[str, int]] = []
        g = np.flatnonzero(dim == -2)
        if g.size:
            parts.append(_take(parents, g))
            groups.append(("self", g.size))
        g = np.flatnonzero(dim >= 0)
        if g.size:
            rows = np.arange(g.size)
            d = dim[g]
            mid = 0.5 * (lo[g, d] + hi[g, d])
            c_lo = np.repeat(lo[g], 2, axis=0)
            c_hi = np.repeat(hi[g], 2, axis=0)
            c_hi[2 * rows, d] = mid
            c_lo[2 * rows + 1, d] = mid
            rep = np.repeat(g, 2)
            parts.append((c_lo, c_hi, dep[rep] + 1, dim[rep], pl[rep], pu[rep], bnd[rep], ref[rep]))
            groups.append(("pair", g.size))
        g = np.flatnonzero(dim == -1)
        if g.size:
            # layout: parent p, dimension d, side s -> (p * n_in + d) * 2 + s
            k = g.size
            c_lo = np.repeat(lo[g], 2 * n_in, axis=0).reshape(k, n_in, 2, n_in)
            c_hi = np.repeat(hi[g], 2 * n_in, axis=0).reshape(k, n_in, 2, n_in)
            mid = 0.5 * (lo[g] + hi[g])  # (k, n_in)
            ar = np.arange(n_in)
            c_hi[:, ar, 0, ar] = mid
            c_lo[:, ar, 1, ar] = mid
            rep = np.repeat(g, 2 * n_in)
            parts.append(
                (
                    c_lo.reshape(-1, n_in),
                    c_hi.reshape(-1, n_in),
                    dep[rep] + 1,
                    dim[rep],
                    pl[rep],
                    pu[rep],
                    bnd[rep],
                    ref[rep],
                )
            )
            groups.append(("strong", k))
        if len(parts) == 1:
            return parts[0], groups
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(_N_FIELDS)), groups  # type: ignore[return-value]

    def _select(
        self,
        groups: list[tuple[str, int]],
        best: FloatArray,
        lo: FloatArray,
        hi: FloatArray,
        dims: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the candidate boxes that become children (strong branching picks), and
        per chosen box the input dimension its parent was split on (``-1``: not a split, the
        box itself). Children come in pairs: the lower half, then the upper half.

        Strong branching scores a dimension by the remaining gap of its two halves
        (``sum min(bound - tol, 0)``, closed halves count as no gap) plus a small bonus for
        the weaker half's bound; ties go to the dimension that is widest relative to the
        case's box, and sides below 1e-4 of the box's widest relative side are never split.
        """
        n_in = lo.shape[1]
        tol = self.options.close_tol
        out: list[np.ndarray] = []
        split_dims: list[np.ndarray] = []
        base = 0
        for kind, k in groups:
            if kind == "self":
                out.append(base + np.arange(k))
                split_dims.append(np.full(k, -1, dtype=np.int64))
                base += k
            elif kind == "pair":
                out.append(base + np.arange(2 * k))
                split_dims.append(dims[base : base + 2 * k].astype(np.int64))
                base += 2 * k
            else:
                stop = base + 2 * n_in * k
                b = best[base:stop].reshape(k, n_in, 2)
                score = np.minimum(b[:, :, 0] - tol, 0.0) + np.minimum(b[:, :, 1] - tol, 0.0)
                score = score + 1e-3 * np.minimum(b[:, :, 0], b[:, :, 1])
                # parent box: side 0 keeps the parent's lower corner, side 1 its upper one
                pwidth = hi[base + 1 : stop : 2 * n_in] - lo[base : stop : 2 * n_in]
                rel = pwidth / self.root_width
                top = score.max(axis=1, keepdims=True)
                near = score >= top - 1e-9 * (1.0 + np.abs(top))
                score = np.where(near, top + rel, score)
                # never split a side that is negligible next to the box's widest one
                thin = rel <= np.maximum(1e-4 * rel.max(axis=1, keepdims=True), 1e-13)
                score = np.where(thin, -np.inf, score)
                d = np.argmax(score, axis=1)
                idx = base + (np.arange(k) * n_in + d) * 2
                out.append(np.stack([idx, idx + 1], axis=1).reshape(-1))
                split_dims.append(np.repeat(d, 2).astype(np.int64))
                base = stop
        return np.concatenate(out), np.concatenate(split_dims)

    def _bound(
        self, rows: _Entries, *, cheap: bool
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Bounds of the rows' boxes: ``(lower (N, R), coef (N, R, n_in), pre_l, pre_u)``.

        ``cheap``: no CROWN back-substitution for hidden layers (IBP, forward linear bounds
        and the inherited bounds only).
        """
        opts = self.options
        alpha = 0
        if opts.alpha_iters > 0 and time.perf_counter() - self.t_start >= opts.alpha_after_s:
            alpha = opts.alpha_iters
            self.counters.alpha_boxes += rows[0].shape[0]
        res = self.bounder.bound(
            rows[0],
            rows[1],
            self.A,
            self.b,
            intermediate=opts.intermediate,
            prior=(rows[4], rows[5]),
            crown_layers=0 if cheap else None,
            extra_slopes=opts.extra_slopes,
            alpha_iters=alpha,
        )
        if cheap:
            self.counters.cheap_boxes += rows[0].shape[0]
        else:
            self.counters.full_boxes += rows[0].shape[0]
        pl, pu = res.stacked_pre()
        lower, coef = res.lower, res.coef
        if lower.shape[1] > 1 and opts.combine_rows:
            # conjunction: append the best convex combination of the rows as a column
            val, c, _ = combine_rows(res.coef, res.offset, rows[0], rows[1])
            lower = np.concatenate([lower, val[:, None]], axis=1)
            coef = np.concatenate([coef, c[:, None, :]], axis=1)
        return lower, coef, pl, pu

    def _bound_candidates(
        self, cand: _Entries, groups: list[tuple[str, int]]
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Bound every candidate, screening with cheap bounds first when enabled.

        With screening, full bounds are computed only for candidates the cheap bounds leave
        open, and not at all for the candidates of a strong-branching parent that some
        split already closes on both sides.
        """
        opts = self.options
        if not (opts.screen and opts.intermediate == "crown"):
            return self._bound(cand, cheap=False)
        tol = opts.close_tol
        lower, coef, pl, pu = self._bound(cand, cheap=True)
        best = lower.max(axis=1)
        need = best <= tol
        n_in = cand[0].shape[1]
        base = 0
        for kind, k in groups:
            size = k * {"self": 1, "pair": 2}.get(kind, 2 * n_in)
            if kind == "strong":
                b = best[base : base + size].reshape(k, n_in, 2)
                done = (b > tol).all(axis=2).any(axis=1)
                need[base : base + size] &= ~np.repeat(done, 2 * n_in)
            base += size
        idx = np.flatnonzero(need)
        if idx.size:
            sub = _take(cand, idx)
            sub = (*sub[:4], pl[idx], pu[idx], sub[6], sub[7])  # the cheap bounds: valid priors
            f_lower, f_coef, f_pl, f_pu = self._bound(sub, cheap=False)
            lower = lower.copy()
            lower[idx] = np.maximum(lower[idx], f_lower)
            coef = coef.copy()
            coef[idx] = f_coef
            pl = pl.copy()
            pu = pu.copy()
            pl[idx] = f_pl
            pu[idx] = f_pu
        return lower, coef, pl, pu

    def run(
        self,
        pool: _Pool,
        *,
        deadline: float | None,
        stop_at: float | None,
        stop_flag: Any = None,
        node_limit: int | None = None,
    ) -> str:
        """Search until the pool is empty or a limit is hit.

        Returns:
            ``"closed"`` (pool exhausted), ``"falsified"``, ``"timeout"``, ``"budget"``,
            ``"slice"`` (``stop_at`` reached) or ``"stopped"`` (``stop_flag`` set).
        """
        opts = self.options
        c = self.counters
        n_in = self.network.n_inputs
        # strong branching bounds 2 n_in candidates per box in one call that cannot be
        # interrupted: beyond the batch size (MNIST's 784 inputs: 1568 CROWN bounds, 12 s on a
        # 256x4 network, past any deadline) the boxes are split on the smear rule instead
        strong = opts.split == "strong" and 2 * n_in <= opts.batch_size
        fan = 2 * n_in if strong else 2
        per_round = max(1, opts.batch_size // fan)
        # the slowest round so far (one batched bound call, not interruptible): no round starts
        # that would end after the deadline
        round_cost = 0.0
        while pool.size:
            now = time.perf_counter()
            if deadline is not None and now + round_cost >= deadline:
                return "timeout"
            if stop_at is not None and now >= stop_at:
                return "slice"
            if stop_flag is not None and stop_flag.is_set():
                return "stopped"
            if node_limit is not None and c.nodes >= node_limit:
                return "budget"
            # mostly depth first; every few rounds the oldest (shallowest) boxes, so a
            # counterexample elsewhere is not starved by one deep region
            oldest = opts.diversify > 0 and c.batches % opts.diversify == opts.diversify - 1
            cand, groups = self._children(pool.pop(per_round, oldest=oldest))
            lower, coef, pl, pu = self._bound_candidates(cand, groups)
            round_cost = max(round_cost, time.perf_counter() - now)
            c.nodes += cand[0].shape[0]
            c.batches += 1
            # a box's bound is never worse than its parent's (CROWN is not monotone)
            best_all = np.maximum(lower.max(axis=1), cand[6])
            sel, split_dims = self._select(groups, best_all, cand[0], cand[1], cand[3])
            refs = cand[7][sel].copy()
            first = np.flatnonzero(split_dims >= 0)[::2]  # the lower half of each split
            if first.size:
                d = split_dims[first]
                mids = cand[1][sel][first, d]  # the lower half's upper end is the split point
                kids = self.tree.split(refs[first], d, mids)
                refs[first], refs[first + 1] = kids[:, 0], kids[:, 1]
            rows: _Entries = (
                cand[0][sel],
                cand[1][sel],
                cand[2][sel],
                cand[3][sel],
                pl[sel],
                pu[sel],
                best_all[sel],
                refs,
            )
            lower, coef = lower[sel], coef[sel]
            best = best_all[sel]
            c.max_depth = max(c.max_depth, int(rows[2].max()))
            closed = best > opts.close_tol
            if closed.any():
                c.closed += int(closed.sum())
                c.closed_lb = min(c.closed_lb, float(best[closed].min()))
                self.tree.close(refs[closed])
            keep = np.flatnonzero(~closed)
            if not keep.size:
                continue
            rows = _take(rows, keep)
            lower, best, coef = lower[keep], best[keep], coef[keep]
            lo, hi = rows[0], rows[1]
            # candidate points: centres and the minimisers of each row's linear bound
            verts = np.where(coef >= 0.0, lo[:, None, :], hi[:, None, :])
            pts = np.concatenate([0.5 * (lo + hi), verts.reshape(-1, n_in)])
            found, v = self._check_points(pts)
            if found:
                return "falsified"
            if opts.attack_every and c.batches % opts.attack_every == 0:
                # PGD in the boxes whose candidate points came closest to a violation
                m = lo.shape[0]
                per_box = np.concatenate([v[:m, None], v[m:].reshape(m, -1)], axis=1)
                pick = np.argsort(per_box.min(axis=1))[: opts.attack_nodes]
                cand_pts = np.concatenate([pts[:m, None, :], verts], axis=1)
                x0 = cand_pts[pick, np.argmin(per_box[pick], axis=1)]
                if self._attack(lo[pick], hi[pick], x0):
                    return "falsified"
            width = hi - lo
            tiny = width.max(axis=1) <= opts.min_width
            if tiny.any():
                c.unresolved += int(tiny.sum())
                ok = np.flatnonzero(~tiny)
                rows = _take(rows, ok)
                lower, best, coef, width = lower[ok], best[ok], coef[ok], width[ok]
                if not ok.size:
                    continue
                lo, hi = rows[0], rows[1]
            if opts.leaf_milp and self.milp_ok:
                unstable = ((rows[4] < 0.0) & (rows[5] > 0.0)).sum(axis=1)
                small = np.flatnonzero(unstable <= opts.leaf_milp)
                if small.size:
                    status, done = self._leaf_milps(_take(rows, small), deadline)
                    if status == "falsified":
                        return "falsified"
                    if done.any():
                        ok = np.setdiff1d(np.arange(lo.shape[0]), small[done])
                        rows = _take(rows, ok)
                        lower, best, coef, width = lower[ok], best[ok], coef[ok], width[ok]
                        lo, hi = rows[0], rows[1]
                        if not ok.size:
                            continue
            n = lo.shape[0]
            if strong:
                dim = np.full(n, -1, dtype=np.int64)
            else:
                if opts.split in ("smear", "strong"):  # strong: too many inputs (above)
                    r = np.argmax(lower, axis=1)
                    score = np.abs(coef[np.arange(n), r]) * width
                    flat = score.max(axis=1) <= 0.0
                    if flat.any():
                        score[flat] = width[flat] / self.root_width
                else:
                    score = width / self.root_width
                dim = np.argmax(score, axis=1)
            # weakest boxes last, so they are popped first
            order = np.argsort(-best, kind="stable")
            pool.push(_take((lo, hi, rows[2], dim, rows[4], rows[5], best, rows[7]), order))
        return "closed"


# --------------------------------------------------------------------------------------------
# Scheduling: serial round-robin or worker processes
# --------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(
    network: Network, cases: dict[int, UnsafeCase], options: BabOptions, flag: Any
) -> None:
    """Process initializer: build the bounder once and pin BLAS to one thread."""
    import os

    exit_with_parent()  # issue 17: a worker never outlives its parent (SIGKILL, crash)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    limiter = limit_blas(1)
    limiter.__enter__()
    _WORKER.update(
        network=network,
        bounder=BoundEngine(network),
        cases=dict(cases),
        options=options,
        flag=flag,
        limiter=limiter,
    )


def _worker_task(
    unit: _Unit,
    remaining_s: float | None,
    slice_s: float,
    seed: Sequence[int],
    node_limit: int | None,
    elapsed_s: float = 0.0,
) -> tuple[str, _Unit, FloatArray | None, dict[str, Any], list[tuple[Any, ...]]]:
    """Search one unit for ``slice_s`` seconds in a worker; return status, leftovers (their
    tree references may be the worker's own, see :class:`_TreeLog`), the counterexample, the
    counters and the proof-tree events."""
    network = _WORKER["network"]
    case = _WORKER["cases"][unit.case_index]
    search = _CaseSearch(
        network,
        _WORKER["bounder"],
        case,
        unit.case_index,
        _WORKER["options"],
        np.random.default_rng(list(seed)),
        t_start=time.perf_counter() - elapsed_s,
        tree=_TreeLog(None),
    )
    now = time.perf_counter()
    deadline = None if remaining_s is None else now + remaining_s
    pool = _Pool(network.n_inputs, _WORKER["bounder"].n_hidden)
    pool.push(unit.entries)
    status = search.run(
        pool,
        deadline=deadline,
        stop_at=now + slice_s,
        stop_flag=_WORKER["flag"],
        node_limit=node_limit,
    )
    x = None if search.counterexample is None else search.counterexample.x
    left = _Unit(unit.case_index, pool.take_all())
    return status, left, x, search.counters.as_dict(), search.tree.events


@dataclass
class _Run:
    """Shared state of one :func:`_solve` call."""

    network: Network
    cases: dict[int, UnsafeCase]
    options: BabOptions
    deadline: float | None
    counters: dict[int, _Counters]
    status: dict[int, str]
    counterexample: Counterexample | None = None
    units_run: int = 0
    parallel: bool = False
    t0: float = field(default_factory=time.perf_counter)
    #: per case, the proof tree being recorded
    recorders: dict[int, ProofRecorder] = field(default_factory=dict)


def _serial_turn(
    run: _Run, bounder: BoundEngine, unit: _Unit, stop_at: float | None, seed: Sequence[int]
) -> tuple[str, _Unit]:
    """Search one unit in this process until ``stop_at``; return status and leftovers."""
    case = run.cases[unit.case_index]
    search = _CaseSearch(
        run.network,
        bounder,
        case,
        unit.case_index,
        run.options,
        np.random.default_rng(list(seed)),
        t_start=run.t0,
        tree=_TreeLog(run.recorders[unit.case_index]),
    )
    pool = _Pool(run.network.n_inputs, bounder.n_hidden)
    pool.push(unit.entries)
    status = search.run(
        pool, deadline=run.deadline, stop_at=stop_at, node_limit=_node_limit(run, unit.case_index)
    )
    run.counters[unit.case_index].merge(search.counters.as_dict())
    run.units_run += 1
    if status == "falsified":
        run.counterexample = search.counterexample
    return status, _Unit(unit.case_index, pool.take_all())


def _node_limit(run: _Run, i: int) -> int | None:
    """Boxes case ``i`` may still bound under ``max_nodes``."""
    if run.options.max_nodes is None:
        return None
    return max(0, run.options.max_nodes - run.counters[i].nodes)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.perf_counter())


def _solve(
    network: Network,
    cases: dict[int, UnsafeCase],
    *,
    deadline: float | None,
    options: BabOptions,
) -> _Run:
    """Branch and bound on several cases; stops at the first counterexample."""
    run = _Run(
        network,
        cases,
        options,
        deadline,
        counters={i: _Counters() for i in cases},
        status={i: "open" for i in cases},
        recorders={i: ProofRecorder(recipe=_recipe(options)) for i in cases},
    )
    bounder = BoundEngine(network)
    queue: deque[_Unit] = deque()
    for i, case in cases.items():
        box = case.input_box
        h = bounder.n_hidden
        root: _Entries = (
            box.lower[None, :].copy(),
            box.upper[None, :].copy(),
            np.zeros(1, dtype=np.int64),
            np.full(1, -2, dtype=np.int64),
            np.full((1, h), -np.inf),
            np.full((1, h), np.inf),
            np.full(1, -np.inf),
            np.array([run.recorders[i].root()], dtype=np.int64),
        )
        queue.append(_Unit(i, root))
    serial_slice = options.slice_s if len(cases) > 1 else None
    turn = 0
    warm_end = time.perf_counter() + options.warmup_s if options.jobs > 1 else None

    def settle(status: str, unit: _Unit) -> bool:
        """Book a unit's result; True when the whole search must stop."""
        i = unit.case_index
        if status == "falsified":
            run.status[i] = "falsified"
            return True
        if status in ("timeout", "budget"):
            run.status[i] = status
            if unit.size:
                queue.append(unit)
            return status == "timeout"
        if unit.size:
            queue.append(unit)
        return False

    # serial phase (the whole search when jobs == 1)
    while queue:
        if warm_end is not None and time.perf_counter() >= warm_end:
            break
        unit = queue.popleft()
        if run.status[unit.case_index] == "budget":
            continue
        stop_at = warm_end
        if serial_slice is not None:
            t = time.perf_counter() + serial_slice
            stop_at = t if stop_at is None else min(stop_at, t)
        status, left = _serial_turn(
            run, bounder, unit, stop_at, (options.seed, unit.case_index, turn)
        )
        turn += 1
        if settle(status, left):
            return _finish(run, queue)
    if not queue:
        return _finish(run, queue)
    # parallel phase
    run.parallel = True
    ctx = multiprocessing.get_context(options.mp_context)
    flag = ctx.Event()
    with ProcessPoolExecutor(
        max_workers=options.jobs,
        mp_context=ctx,
        initializer=_worker_init,
        initargs=(network, cases, options, flag),
    ) as pool:
        running: dict[Future[Any], _Unit] = {}
        stop = False
        while (queue or running) and not stop:
            queue = deque(u for u in queue if run.status[u.case_index] != "budget")
            idle = options.jobs - len(running)
            while idle > len(queue) and queue and max(u.size for u in queue) >= 2:
                big = max(range(len(queue)), key=lambda j: queue[j].size)
                u = queue[big]
                del queue[big]
                queue.extend(u.halves())
            while idle > 0 and queue:
                u = queue.popleft()
                fut = pool.submit(
                    _worker_task,
                    u,
                    _remaining(deadline),
                    options.slice_s,
                    (options.seed, u.case_index, turn),
                    _node_limit(run, u.case_index),
                    time.perf_counter() - run.t0,
                )
                turn += 1
                running[fut] = u
                idle -= 1
            if not running:
                break
            done, _ = wait(list(running), timeout=_remaining(deadline), return_when=FIRST_COMPLETED)
            if not done:
                run.status.update({u.case_index: "timeout" for u in running.values()})
                queue.extend(running.values())
                flag.set()
                break
            for fut in done:
                unit = running.pop(fut)
                status, left, x, counters, events = fut.result()
                left = _adopt(run, left, events)
                run.counters[unit.case_index].merge(counters)
                run.units_run += 1
                if status == "falsified" and x is not None:
                    cex = confirm_counterexample(
                        network, cases[unit.case_index], unit.case_index, x, onnx_replay=False
                    )
                    if cex is not None:
                        run.counterexample = cex
                        run.status[unit.case_index] = "falsified"
                        stop = True
                        flag.set()
                        break
                    status = "slice"  # pragma: no cover - workers confirm before returning
                if status == "stopped":
                    status = "slice"
                if settle(status, left):
                    stop = True
                    flag.set()
                    break
        if stop or running:
            flag.set()
            for fut, u in running.items():
                with contextlib.suppress(Exception):
                    status, left, _, counters, events = fut.result()
                    left = _adopt(run, left, events)
                    run.counters[u.case_index].merge(counters)
                    if left.size:
                        queue.append(left)
    return _finish(run, queue)


def _recipe(options: BabOptions) -> dict[str, Any]:
    """How the search bounded boxes, for a checker to recompute the leaves' bounds."""
    return {
        "search": "input-split",
        "intermediate": options.intermediate,
        "extra_slopes": list(options.extra_slopes),
        "combine_rows": bool(options.combine_rows),
        "alpha_iters": int(options.alpha_iters),
        "alpha_optimizer": "sign",
    }


def _adopt(run: _Run, left: _Unit, events: list[tuple[Any, ...]]) -> _Unit:
    """Replay a worker's proof-tree events and give its leftover boxes their node ids."""
    ids = _TreeLog.replay(events, run.recorders[left.case_index])
    if not left.size:
        return left
    refs = left.entries[7]
    mapped = np.array([ids[r] if r < 0 else r for r in refs.tolist()], dtype=np.int64)
    return _Unit(left.case_index, (*left.entries[:7], mapped))


def _finish(run: _Run, queue: deque[_Unit]) -> _Run:
    """Mark cases with no open boxes as verified/inconclusive."""
    open_cases = {u.case_index for u in queue if u.size}
    for i, st in run.status.items():
        if st != "open":
            continue
        if i in open_cases:
            run.status[i] = "timeout"
        elif run.counters[i].unresolved:
            run.status[i] = "inconclusive"
        else:
            run.status[i] = "verified"
    if run.counterexample is None:
        for i, st in run.status.items():
            if st == "falsified":  # pragma: no cover - defensive
                run.status[i] = "timeout"
    return run


def _outcome(run: _Run, i: int, elapsed: float) -> BabOutcome:
    c = run.counters[i]
    st = run.status[i]
    if st == "open":
        st = "timeout"
    cex = run.counterexample if st == "falsified" else None
    proof = None
    if st == "verified":
        rec = run.recorders[i]
        if not c.alpha_boxes:  # the checker need not try optimised slopes
            rec.recipe["alpha_iters"] = 0
        tree = rec.tree()
        proof = tree if not tree.problems() else None  # e.g. leaves closed by a MILP
    return BabOutcome(
        status=st,  # type: ignore[arg-type]
        counterexample=cex,
        lower_bound=float(c.closed_lb) if st == "verified" else None,
        upper_bound=float(c.upper),
        nodes=c.nodes,
        max_depth=c.max_depth,
        batches=c.batches,
        time=elapsed,
        stats={
            "closed": c.closed,
            "cheap_boxes": c.cheap_boxes,
            "milps": c.milps,
            "alpha_boxes": c.alpha_boxes,
            "full_boxes": c.full_boxes,
            "attack_rounds": c.attack_rounds,
            "unresolved": c.unresolved,
            "units": run.units_run,
            "parallel": run.parallel,
        },
        proof=proof,
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _check(network: Network, case: UnsafeCase) -> None:
    if case.input_box.dim != network.n_inputs or case.A.shape[1] != network.n_outputs:
        raise InvalidPropertyError(
            f"bab: case has {case.input_box.dim} inputs / {case.A.shape[1]} outputs, the "
            f"network {network.n_inputs} / {network.n_outputs}"
        )


def bab_verify_case(
    network: Network,
    case: UnsafeCase,
    *,
    deadline: float | None = None,
    options: BabOptions | None = None,
    case_index: int = 0,
) -> BabOutcome:
    """Decide one unsafe case by input-split branch and bound.

    Args:
        network: the network (any supported activations; complete for piecewise-linear ones).
        case: the unsafe case.
        deadline: absolute :func:`time.perf_counter` time to give up (``None``: no limit).
        options: :class:`BabOptions` (defaults if ``None``).
        case_index: index recorded in the counterexample.

    Returns:
        A :class:`BabOutcome`; ``"falsified"`` outcomes carry a counterexample confirmed by a
        float64 forward pass of ``network``.
    """
    opts = options or BabOptions()
    _check(network, case)
    t0 = time.perf_counter()
    if case.n_rows == 0:
        cex = confirm_counterexample(
            network, case, case_index, case.input_box.center, onnx_replay=False
        )
        return BabOutcome("falsified", cex, time=time.perf_counter() - t0)
    with limit_blas(opts.blas_threads):
        run = _solve(network, {case_index: case}, deadline=deadline, options=opts)
    return _outcome(run, case_index, time.perf_counter() - t0)


def bab_verify(
    network: Network,
    prop: Property,
    *,
    time_limit: float | None = None,
    options: BabOptions | None = None,
) -> VerificationResult:
    """Verify a property by falsification followed by branch and bound on every case.

    Args:
        network: the network.
        prop: the property (a disjunction of unsafe cases).
        time_limit: wall-clock budget in seconds (``None``: unlimited).
        options: :class:`BabOptions`.

    Returns:
        VERIFIED when every case is closed, FALSIFIED with a confirmed counterexample, or
        UNKNOWN (reason ``"timeout"``, ``"budget"`` or ``"inconclusive"``).
    """
    opts = options or BabOptions()
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + float(time_limit)
    prop.check_network_shape(network.n_inputs, network.n_outputs, where="bab_verify")
    for case in prop.cases:
        _check(network, case)
    with limit_blas(opts.blas_threads):
        budget = opts.attack_budget_s
        if deadline is not None:
            budget = min(budget, 0.5 * max(0.0, deadline - t0))
        cex = None
        if budget > 0:
            cex = falsify(
                network, prop, budget_s=budget, seed=opts.seed, samples=opts.attack_samples
            )
        if cex is not None:
            return VerificationResult(
                Verdict.FALSIFIED,
                reason="attack",
                counterexample=cex,
                method="bab",
                time=time.perf_counter() - t0,
                stats={"bab_nodes": 0},
            )
        cases = {i: c for i, c in enumerate(prop.cases)}
        run = _solve(network, cases, deadline=deadline, options=opts)
    elapsed = time.perf_counter() - t0
    outs = [_outcome(run, i, elapsed) for i in range(len(prop.cases))]
    stats = {
        "nodes": sum(o.nodes for o in outs),
        "max_depth": max(o.max_depth for o in outs),
        "batches": sum(o.batches for o in outs),
        "units": run.units_run,
        "parallel": run.parallel,
        "cases": [o.status for o in outs],
        "proofs": [o.proof for o in outs],
    }
    lower = tuple(o.lower_bound for o in outs)
    upper = tuple(None if not np.isfinite(o.upper_bound) else o.upper_bound for o in outs)
    if run.counterexample is not None:
        return VerificationResult(
            Verdict.FALSIFIED,
            reason="bab",
            counterexample=run.counterexample,
            margin_lower=lower,
            margin_upper=upper,
            method="bab",
            time=elapsed,
            stats=stats,
        )
    statuses = [o.status for o in outs]
    if all(s == "verified" for s in statuses):
        return VerificationResult(
            Verdict.VERIFIED,
            reason="bab",
            margin_lower=lower,
            margin_upper=upper,
            method="bab",
            time=elapsed,
            stats=stats,
        )
    reason = "timeout"
    if "timeout" not in statuses:
        reason = "budget" if "budget" in statuses else "inconclusive"
    return VerificationResult(
        Verdict.UNKNOWN,
        reason=reason,
        margin_lower=lower,
        margin_upper=upper,
        method="bab",
        time=elapsed,
        stats=stats,
    )


__all__ = ["BabOptions", "BabOutcome", "bab_verify", "bab_verify_case"]
