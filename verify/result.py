"""Verdicts and verification results.

Semantics (DESIGN.md section 4):

* ``VERIFIED`` needs sound evidence: a bound whose lower margin is > 0 for every unsafe case,
  or an *exact* solver's proof (optimal value > 0 / infeasibility).
* ``FALSIFIED`` needs a counterexample that lies in the input box and violates the property
  under a plain float64 forward pass (and onnxruntime for ONNX models).
* ``UNKNOWN`` otherwise, with a ``reason`` (``"timeout"``, ``"budget"``, ``"inconclusive"``,
  ``"unconfirmed_counterexample"``, ...). Unknown is a result, never an exception.

VNN-COMP mapping: VERIFIED -> ``unsat``, FALSIFIED -> ``sat``, UNKNOWN -> ``unknown`` or
``timeout`` (reason ``"timeout"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeAlias

import numpy as np

from nncert.verify.network import FloatArray, Network
from nncert.verify.options import VerifyOptions
from nncert.verify.proof import ProofTree
from nncert.verify.spec import UnsafeCase


class Verdict(Enum):
    """Outcome of a verification query (orthogonal to *how* it was reached)."""

    VERIFIED = "verified"
    FALSIFIED = "falsified"
    UNKNOWN = "unknown"


@dataclass(frozen=True, eq=False)
class Counterexample:
    """A confirmed witness: ``x`` lies in ``input_box`` of case ``case_index`` and ``f(x)``
    satisfies that case's unsafe constraints.

    Attributes:
        x: flattened input, shape ``(n_inputs,)``.
        y: float64 forward-pass output, shape ``(n_outputs,)``.
        case_index: which unsafe case it violates.
        violation: ``max_r (A_r y - b_r)`` (``<= 0``).
        onnx_checked: whether onnxruntime replay confirmed it too.
    """

    x: FloatArray
    y: FloatArray
    case_index: int
    violation: float
    onnx_checked: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (flattened lists)."""
        return {
            "input": [float(v) for v in np.asarray(self.x).reshape(-1)],
            "output": [float(v) for v in np.asarray(self.y).reshape(-1)],
            "case": int(self.case_index),
            "violation": float(self.violation),
            "onnx_checked": bool(self.onnx_checked),
        }


@dataclass(frozen=True)
class StageStat:
    """Statistics of one pipeline stage."""

    name: str
    time: float
    outcome: str
    info: dict[str, Any] = field(default_factory=dict)


def _opt_float(v: Any) -> float | None:
    """``float(v)``, or ``None`` for ``None`` and NaN."""
    if v is None:
        return None
    f = float(v)
    return None if f != f else f


@dataclass(frozen=True)
class BoundCaseEvidence:
    r"""A case closed (or bounded) by sound bounds over its input box.

    ``lower_bound`` is :math:`\max_r \ell_{i,r}` with
    :math:`\ell_{i,r} \le \min_{x \in X_i} (A_{i,r} f(x) - b_{i,r})` from ``method``;
    the case is closed when it is ``> 0``.

    Attributes:
        case: the case index in the property.
        method: the bound method (``"ibp"``, ``"crown"``).
        lower_bound: the case's lower bound.
    """

    case: int
    method: str
    lower_bound: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "case", int(self.case))
        object.__setattr__(self, "lower_bound", float(self.lower_bound))

    @property
    def proven_lower(self) -> float | None:
        """The sound lower bound of :math:`m_i^*` this record proves."""
        return self.lower_bound


@dataclass(frozen=True)
class SolverCaseEvidence:
    r"""A case solved as an optimisation problem (the MILP, Benders, Model 2, windows, ...).

    The solver minimises :math:`\max_r (A_{i,r} f(x) - b_{i,r})` over the case's box (or a
    sound relaxation of it); when ``exact``, ``bound`` is a proven lower bound of
    :math:`m_i^*` and the case is closed when ``bound > tolerance``.

    Attributes:
        case: the case index in the property.
        method: the registered method that ran (``"milp"``, ``"benders"``, ...).
        solver: the solver name (``"highs"``, ``"exact-qubo"``...; ``""`` if none).
        exact: whether ``bound`` and a ``"verified"``/``"optimal"`` status are proofs.
        status: the solver status (``"optimal"``, ``"time_limit"``...) or the method's
            outcome status (``"verified"``, ``"unknown"``, ...).
        objective: best primal value found (``None``: none).
        bound: proven dual bound (``None``: none).
        tolerance: a bound must exceed this to count as a proof.
        binaries: binary variables of the formulation (``None``: not reported).
    """

    case: int
    method: str
    solver: str
    exact: bool
    status: str
    objective: float | None = None
    bound: float | None = None
    tolerance: float = 0.0
    binaries: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "case", int(self.case))
        object.__setattr__(self, "objective", _opt_float(self.objective))
        object.__setattr__(self, "bound", _opt_float(self.bound))
        object.__setattr__(self, "tolerance", float(self.tolerance))
        if self.binaries is not None:
            object.__setattr__(self, "binaries", int(self.binaries))

    @property
    def proven_lower(self) -> float | None:
        """The sound lower bound of :math:`m_i^*` this record proves (``None``: none)."""
        return self.bound if self.exact else None


@dataclass(frozen=True)
class SearchCaseEvidence:
    r"""A case decided by branch and bound (input splits or ReLU phases).

    ``lower_bound`` is the smallest sound bound over the open leaves (every leaf closed by a
    bound ``> 0`` when ``status == "verified"``).

    Attributes:
        case: the case index in the property.
        method: the registered method that ran (``"bab"``, ``"relu_bab"``).
        status: ``"verified"``, ``"falsified"``, ``"timeout"``, ``"unknown"``.
        lower_bound: a proven lower bound of :math:`m_i^*` (``None``: none).
        nodes: nodes explored for this case (a run over several cases counts its nodes once,
            on the first case's record).
        proof: for ``"verified"``, the search's proof tree of this case when it recorded one
            (:mod:`nncert.verify.proof`; every leaf closed by a re-derivable bound), else
            ``None``.
    """

    case: int
    method: str
    status: str
    lower_bound: float | None = None
    nodes: int = 0
    proof: ProofTree | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "case", int(self.case))
        object.__setattr__(self, "lower_bound", _opt_float(self.lower_bound))
        object.__setattr__(self, "nodes", int(self.nodes))

    @property
    def proven_lower(self) -> float | None:
        """The sound lower bound of :math:`m_i^*` this record proves (``None``: none)."""
        return self.lower_bound


#: how one case was closed (or how far an open case was bounded)
CaseEvidence: TypeAlias = BoundCaseEvidence | SolverCaseEvidence | SearchCaseEvidence


@dataclass(frozen=True)
class VerificationResult:
    """What :func:`nncert.verify.verify` returns.

    Attributes:
        verdict: the verdict.
        reason: why (for UNKNOWN: ``"timeout"``, ``"inconclusive"``, ...; for VERIFIED:
            the deciding method; for FALSIFIED: where the witness came from).
        counterexample: the confirmed witness when FALSIFIED.
        margin_lower: per unsafe case, a proven lower bound on
            ``min_x max_r (A_r f(x) - b_r)`` (``> 0`` proves the case infeasible);
            ``None`` entries where nothing was proven.
        margin_upper: per case, the best (smallest) value found at a concrete point.
        method: the method that decided (``"crown"``, ``"milp"``, ``"bab"``, ``"attack"``...).
        solver: the solver name used by the deciding stage (``""`` if none).
        time: wall-clock seconds of the whole call.
        stages: per-stage statistics in the order run.
        stats: free-form counters for ``--json`` (binaries, nodes, iterations, spins, ...).
        evidence: how the cases were decided: for every closed case the record that closed
            it (in the order the cases closed), then for every open case the records of the
            methods that bounded it without closing it (in the order they ran). The
            certificate builder reads this, never ``stats``.
    """

    verdict: Verdict
    reason: str = ""
    counterexample: Counterexample | None = None
    margin_lower: tuple[float | None, ...] = ()
    margin_upper: tuple[float | None, ...] = ()
    method: str = ""
    solver: str = ""
    time: float = 0.0
    stages: tuple[StageStat, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)
    evidence: tuple[CaseEvidence, ...] = ()

    @property
    def vnncomp_result(self) -> str:
        """The VNN-COMP result word: ``unsat``, ``sat``, ``timeout`` or ``unknown``."""
        if self.verdict is Verdict.VERIFIED:
            return "unsat"
        if self.verdict is Verdict.FALSIFIED:
            return "sat"
        return "timeout" if self.reason == "timeout" else "unknown"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no NaN/inf: non-finite numbers become ``None``)."""

        def num(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else float(v)

        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "time": round(float(self.time), 6),
            "method": self.method,
            "solver": self.solver,
            "counterexample": None
            if self.counterexample is None
            else self.counterexample.to_dict(),
            "margin_lower": [num(v) for v in self.margin_lower],
            "margin_upper": [num(v) for v in self.margin_upper],
            "stats": _jsonable(self.stats) | {"stages": [_jsonable(vars(s)) for s in self.stages]},
        }


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats to JSON-safe values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, Enum):
        return obj.value
    return obj


ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class CaseOutcome:
    """What a method returns for one unsafe case (``None`` instead leaves the case open).

    Attributes:
        status: ``"verified"`` (the case is infeasible), ``"falsified"`` (``x`` is a candidate
            witness; the pipeline replays it before believing it), ``"unknown"`` or
            ``"timeout"``.
        exact: whether a ``"verified"`` status rests on sound evidence (a bound > 0 or an
            exact solver's proof). The pipeline closes a case only when this is true, so a
            heuristic (annealing) method can never verify.
        lower_bound: a sound lower bound of ``min_x max_r (A_r f(x) - b_r)`` if known.
        x: candidate witness (flattened input) for ``"falsified"``.
        solver: solver name(s) used, for reports.
        stats: counters for ``--json`` (``spins``, ``iterations``, ``master_solver``, ...).
        evidence: how the case was decided (``None``: the pipeline records a
            :class:`SolverCaseEvidence` from ``status``, ``exact``, ``lower_bound`` and
            ``solver``, or a :class:`SearchCaseEvidence` carrying ``proof`` when there is
            one; its ``case`` and ``method`` are always set by the pipeline).
        proof: for ``"verified"``, the proof tree that closes the case, when the method
            records one (:mod:`nncert.verify.proof`); an independent checker re-derives it.
            The pipeline carries it into the case's :class:`SearchCaseEvidence`.
    """

    status: str
    exact: bool = False
    lower_bound: float | None = None
    x: FloatArray | None = None
    solver: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    evidence: CaseEvidence | None = None
    proof: ProofTree | None = None

    @classmethod
    def of_search(
        cls,
        method: str,
        case_index: int,
        status: str,
        exact: bool,
        lower_bound: float | None,
        x: FloatArray | None,
        stats: dict[str, Any],
        proof: ProofTree | None,
    ) -> CaseOutcome:
        """A branch-and-bound search's outcome with its :class:`SearchCaseEvidence` (the
        proof tree for ``"verified"``; a proven lower bound only when ``exact``;
        ``stats["nodes"]`` the nodes explored)."""
        return cls(
            status=status,
            exact=exact,
            lower_bound=lower_bound,
            x=x,
            solver=method,
            stats=dict(stats),
            evidence=SearchCaseEvidence(
                case_index,
                method,
                status,
                lower_bound if exact else None,
                int(stats["nodes"]),
                proof,
            ),
            proof=proof,
        )


@dataclass(frozen=True)
class CaseContext:
    """What a method receives besides the network and the case.

    Attributes:
        options: the options of the ``verify`` call.
        deadline: ``time.perf_counter()`` value at which the budget ends (``None``: none).
        rng: the run's random generator (seeded by ``options.seed``).
        progress: the progress callback, if any.
        case_index: the case's index in the property.
        best_x: the input with the smallest violation found so far for this case, if any.
    """

    options: VerifyOptions
    deadline: float | None
    rng: np.random.Generator
    progress: ProgressFn | None
    case_index: int
    best_x: FloatArray | None

    def remaining(self) -> float | None:
        """Seconds left before the deadline (``None``: unlimited)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.perf_counter())

    @classmethod
    def in_worker(
        cls,
        options: VerifyOptions,
        wall_deadline: float | None,
        seed: Any,
        case_index: int,
        best_x: FloatArray | None = None,
    ) -> CaseContext:
        """The context of a case run in a worker process: ``wall_deadline`` is the run's
        deadline on the wall clock (:func:`time.time`, comparable across processes, so a task
        that waited in a pool's queue still ends with the run); ``seed`` seeds the worker's
        own random stream; no progress callback."""
        return cls(
            options=options,
            deadline=(
                None
                if wall_deadline is None
                else time.perf_counter() + (wall_deadline - time.time())
            ),
            rng=np.random.default_rng(seed),
            progress=None,
            case_index=case_index,
            best_x=best_x,
        )


#: a method for one unsafe case (see :class:`CaseContext`, :class:`CaseOutcome`; ``None``
#: leaves the case open); register one with :func:`nncert.verify.register_method`
CaseMethod = Callable[[Network, UnsafeCase, CaseContext], "CaseOutcome | None"]

__all__ = [
    "BoundCaseEvidence",
    "CaseContext",
    "CaseEvidence",
    "CaseMethod",
    "CaseOutcome",
    "Counterexample",
    "ProgressFn",
    "SearchCaseEvidence",
    "SolverCaseEvidence",
    "StageStat",
    "Verdict",
    "VerificationResult",
]
