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
from typing import Any

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
        stats: free-form counters (binaries, nodes, iterations, spins, ...).
        proofs: per case closed by a branch-and-bound search, its proof tree (the
            certificate builder stores them; the checker re-derives them).
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
    proofs: dict[int, ProofTree] = field(default_factory=dict)

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
    """What a plug-in complete method returns for one unsafe case.

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
        proof: for ``"verified"``, the proof tree that closes the case, when the method
            records one (:mod:`nncert.verify.proof`); an independent checker re-derives it.
    """

    status: str
    exact: bool = False
    lower_bound: float | None = None
    x: FloatArray | None = None
    solver: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    proof: ProofTree | None = None


@dataclass(frozen=True)
class CaseContext:
    """What a plug-in complete method receives besides the network and the case."""

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


#: a complete method for one unsafe case (see :class:`CaseContext`, :class:`CaseOutcome`)
CaseMethod = Callable[[Network, UnsafeCase, CaseContext], CaseOutcome]

__all__ = [
    "CaseContext",
    "CaseMethod",
    "CaseOutcome",
    "Counterexample",
    "ProgressFn",
    "StageStat",
    "Verdict",
    "VerificationResult",
]
