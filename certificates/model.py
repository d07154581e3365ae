"""The certificate data model: frozen dataclasses, no I/O.

A :class:`Certificate` ties a verdict about one :class:`~nncert.verify.spec.Property` on one
network (identified by :meth:`Network.fingerprint`) to the *evidence* that supports it, plus the
provenance of the run that produced it. Semantics (DESIGN.md section 4):

* ``VERIFIED`` needs sound evidence: :class:`BoundEvidence` whose per-case lower bounds are all
  ``> 0``; or an *exact* solver's proof (:class:`MilpEvidence`, :class:`BabEvidence`); or a
  :class:`TransferEvidence` whose source certificate and difference bounds are both sound.
* ``FALSIFIED`` needs a :class:`CounterexampleEvidence` that passed a float64 forward pass.
* ``UNKNOWN`` carries :class:`NoEvidence` (with whatever partial bounds were found).

Notation (see :mod:`nncert.verify.spec`): case ``i`` of a property is violated at ``x`` iff
``max_r g_{i,r}(x) <= 0`` with ``g_{i,r}(x) = A_{i,r} f(x) - b_{i,r}``. Every "case lower
bound" below is a proven lower bound of

.. math::  m_i^* = \\min_{x \\in X_i} \\max_r g_{i,r}(x),

and a "row lower bound" is a proven lower bound of :math:`\\min_{x \\in X_i} g_{i,r}(x)`.
Since :math:`\\max_r g_r \\ge g_{r'}` for every :math:`r'`, the maximum of the row lower bounds
is a case lower bound.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

import numpy as np

from nncert.verify.network import FloatArray, Network
from nncert.verify.proof import ProofTree
from nncert.verify.result import Verdict
from nncert.verify.spec import Property

#: Current schema version ``(major, minor)``; readers accept any ``minor`` of their ``major``.
SCHEMA_VERSION: tuple[int, int] = (2, 0)

#: Methods whose per-case claims the checker re-derives by re-propagating bounds.
BOUND_METHODS: tuple[str, ...] = ("ibp", "crown", "alpha-crown")

#: Arithmetic modes a bound can be computed in.
ARITHMETICS: tuple[str, ...] = ("float64-nearest", "float64-outward")

#: Transfer theorems of FORMULATIONS.md section 11.2.
THEOREMS: tuple[str, ...] = ("T1", "T2", "T3")


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _opt_floats(values: Any) -> tuple[float | None, ...]:
    return tuple(None if v is None else float(v) for v in values)


def _rows(values: Any) -> tuple[tuple[float, ...], ...]:
    return tuple(_floats(r) for r in values)


# --------------------------------------------------------------------------------------------
# Identity of networks and properties
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkRef:
    """Which network a certificate is about.

    Attributes:
        fingerprint: :meth:`Network.fingerprint` (SHA-256 hex of the parsed weights).
        n_inputs: flattened input length.
        n_outputs: output length.
        name: optional label (not checked).
    """

    fingerprint: str
    n_inputs: int
    n_outputs: int
    name: str = ""

    @classmethod
    def from_network(cls, network: Network) -> NetworkRef:
        """The reference of ``network``."""
        return cls(network.fingerprint(), network.n_inputs, network.n_outputs, network.name)


def property_fingerprint(prop: Property) -> str:
    """SHA-256 (hex) of the canonical bytes of a property's cases.

    Hashes, per case, the shapes and the little-endian float64 bytes of the input box bounds,
    ``A`` and ``b`` (and the ``label``); the name is not part of the fingerprint.

    Examples:
        >>> from nncert.verify.spec import robustness_property
        >>> p = robustness_property([0.5, 0.5], 0.1, 0, 3)
        >>> q = robustness_property([0.5, 0.5], 0.1, 0, 3)
        >>> property_fingerprint(p) == property_fingerprint(q)
        True
    """
    h = hashlib.sha256()
    header = {
        "format": "nncert-property-v1",
        "label": prop.label,
        "cases": [[c.input_box.dim, *c.A.shape] for c in prop.cases],
    }
    h.update(json.dumps(header, sort_keys=True).encode())
    for case in prop.cases:
        for arr in (case.input_box.lower, case.input_box.upper, case.A, case.b):
            h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundEvidence:
    """Sound bounds (IBP or CROWN) over each case's input box.

    Attributes:
        method: ``"ibp"``, ``"crown"`` or ``"alpha-crown"``.
        case_lower: per case, :math:`\\max_r \\ell_{i,r}`, a lower bound of :math:`m_i^*`
            (all ``> 0`` when the evidence proves VERIFIED).
        row_lower: per case and row, :math:`\\ell_{i,r} \\le \\min_{x \\in X_i} g_{i,r}(x)`.
        arithmetic: ``"float64-nearest"`` or ``"float64-outward"``.
    """

    kind: ClassVar[str] = "bound"

    method: str
    case_lower: tuple[float, ...]
    row_lower: tuple[tuple[float, ...], ...]
    arithmetic: str = "float64-nearest"

    def __post_init__(self) -> None:
        object.__setattr__(self, "case_lower", _floats(self.case_lower))
        object.__setattr__(self, "row_lower", _rows(self.row_lower))

    def case_lower_bounds(self) -> tuple[float | None, ...]:
        """Per-case lower bounds of :math:`m_i^*`."""
        return tuple(self.case_lower)

    def row_lower_bounds(self) -> tuple[tuple[float, ...], ...] | None:
        """Per-case, per-row lower bounds of :math:`\\min_x g_{i,r}(x)`."""
        return self.row_lower


@dataclass(frozen=True)
class MilpCase:
    """An exact MILP solve of one case: minimise :math:`\\max_r g_{i,r}(x)` over :math:`X_i`.

    Attributes:
        case_index: the case.
        status: the solver status (``"optimal"``, ``"infeasible"``, ``"time_limit"``, ...).
        objective: best primal value found (``None``: none).
        bound: proven dual bound (``None``: none; ``+inf`` when infeasible).
        gap: ``objective - bound`` when both are finite, else ``None``.
        tree: a proof tree re-deriving the verdict without the solver (the project's own
            search re-proved the case); ``None``: the case rests on the solver's word.
    """

    case_index: int
    status: str
    objective: float | None
    bound: float | None
    gap: float | None = None
    tree: ProofTree | None = None


@dataclass(frozen=True)
class MilpEvidence:
    """Proof by an exact MILP solver (possibly after bounds closed some cases first).

    A case ``i`` is closed when the presolve bound proves it (``presolve.case_lower[i] > 0``) or
    a MILP record for it has ``bound > tolerance`` (or status ``"infeasible"``) and the solver
    is exact. The checker cannot re-derive a MILP proof, so it reports it "solver-attested".

    Attributes:
        solver: solver name (``"highs"``...).
        exact: whether the solver is exact (a heuristic one can never prove VERIFIED).
        cases: per-case MILP records (only for cases the MILP ran on).
        tolerance: a dual bound must exceed this to count as a proof.
        presolve: bounds for every case computed before the MILP (``None`` if none).
    """

    kind: ClassVar[str] = "milp"

    solver: str
    exact: bool
    cases: tuple[MilpCase, ...]
    tolerance: float = 1e-6
    presolve: BoundEvidence | None = None

    def case_lower_bounds(self) -> tuple[float | None, ...]:
        """Per-case lower bounds of :math:`m_i^*` (MILP bounds merged with the presolve)."""
        n = max(
            len(self.presolve.case_lower) if self.presolve else 0,
            1 + max((c.case_index for c in self.cases), default=-1),
        )
        out: list[float | None] = [None] * n
        if self.presolve is not None:
            out[: len(self.presolve.case_lower)] = list(self.presolve.case_lower)
        if self.exact:
            for rec in self.cases:
                val = np.inf if rec.status == "infeasible" else rec.bound
                if val is not None:
                    prev = out[rec.case_index]
                    out[rec.case_index] = val if prev is None else max(prev, val)
        return tuple(out)

    def row_lower_bounds(self) -> tuple[tuple[float, ...], ...] | None:
        """Row bounds of the presolve (``None`` without presolve)."""
        return None if self.presolve is None else self.presolve.row_lower


@dataclass(frozen=True)
class BabCase:
    """Branch and bound on one case.

    Attributes:
        case_index: the case.
        status: ``"verified"``, ``"falsified"``, ``"timeout"``, ...
        lower_bound: proven lower bound of :math:`m_i^*` (``None``: none).
        nodes: nodes explored.
        tree: the proof tree of a ``"verified"`` case (splits and what closes each leaf);
            the checker re-derives it and needs it to accept the case.
    """

    case_index: int
    status: str
    lower_bound: float | None
    nodes: int = 0
    tree: ProofTree | None = None


@dataclass(frozen=True)
class BabEvidence:
    """Proof by branch and bound (input splits or ReLU phase splits), one proof tree per case.

    Attributes:
        method: the bounding/branching scheme: ``"input-split+crown"``, ``"relu-split"`` or
            ``"activation-split"`` (bound splits of any hidden neuron).
        nodes: total nodes explored.
        cases: per-case records (only for cases branch and bound ran on).
        presolve: bounds for every case computed before branch and bound (``None`` if none).
    """

    kind: ClassVar[str] = "bab"

    method: str
    nodes: int
    cases: tuple[BabCase, ...]
    presolve: BoundEvidence | None = None

    def case_lower_bounds(self) -> tuple[float | None, ...]:
        """Per-case lower bounds of :math:`m_i^*`."""
        n = max(
            len(self.presolve.case_lower) if self.presolve else 0,
            1 + max((c.case_index for c in self.cases), default=-1),
        )
        out: list[float | None] = [None] * n
        if self.presolve is not None:
            out[: len(self.presolve.case_lower)] = list(self.presolve.case_lower)
        for rec in self.cases:
            if rec.lower_bound is not None and rec.status == "verified":
                prev = out[rec.case_index]
                lb = float(rec.lower_bound)
                out[rec.case_index] = lb if prev is None else max(prev, lb)
        return tuple(out)

    def row_lower_bounds(self) -> tuple[tuple[float, ...], ...] | None:
        """Row bounds of the presolve (``None`` without presolve)."""
        return None if self.presolve is None else self.presolve.row_lower


@dataclass(frozen=True, eq=False)
class CounterexampleEvidence:
    """A witness: ``x`` lies in case ``case_index``'s box and ``max_r (A_r y - b_r) <= 0``.

    Attributes:
        x: flattened input, shape ``(n_inputs,)``.
        y: float64 forward-pass output, shape ``(n_outputs,)``.
        case_index: the violated case.
        violation: :math:`\\max_r (A_r y - b_r) \\le 0`.
        onnx_checked: whether onnxruntime replay confirmed it too.
    """

    kind: ClassVar[str] = "counterexample"

    x: FloatArray
    y: FloatArray
    case_index: int
    violation: float
    onnx_checked: bool = False

    def __post_init__(self) -> None:
        for name in ("x", "y"):
            arr = np.array(getattr(self, name), dtype=np.float64).reshape(-1)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "case_index", int(self.case_index))
        object.__setattr__(self, "violation", float(self.violation))

    def case_lower_bounds(self) -> tuple[float | None, ...]:
        """A counterexample proves no lower bound."""
        return ()

    def row_lower_bounds(self) -> tuple[tuple[float, ...], ...] | None:
        """A counterexample proves no row bound."""
        return None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CounterexampleEvidence)
            and np.array_equal(self.x, other.x)
            and np.array_equal(self.y, other.y)
            and self.case_index == other.case_index
            and self.violation == other.violation
            and self.onnx_checked == other.onnx_checked
        )

    def __hash__(self) -> int:
        return hash((self.x.tobytes(), self.case_index))


@dataclass(frozen=True)
class TransferEvidence:
    """A verdict transferred from a source network's certificate (FORMULATIONS.md section 11).

    With :math:`\\Delta_{i,r} \\le \\min_{x \\in X_i} A_{i,r} (f_t(x) - f_s(x))` (a lower bound
    of the row-wise output difference of target minus source), the target's case bound is

    .. math::

        \\tilde m_i^* \\ge \\max\\Big(m_i + \\min_r \\Delta_{i,r},\\;
                                   \\max_r (\\ell_{i,r} + \\Delta_{i,r})\\Big)

    where :math:`m_i` is the source's case lower bound and :math:`\\ell_{i,r}` its row lower
    bounds (when stored). The first term uses
    :math:`\\max_r (a_r + d_r) \\ge \\max_r a_r + \\min_r d_r`; for one row it is the classic
    :math:`\\tilde m^* \\ge m^* - \\Delta^+` of theorems T1/T2.

    Attributes:
        source_fingerprint: fingerprint of the source network.
        source_verdict: the source certificate's verdict.
        source_kind: evidence kind of the source certificate (``"bound"``, ``"milp"``...).
        source_case_lower: per case, the source's :math:`m_i` (``None``: not proven).
        source_row_lower: per case and row, the source's :math:`\\ell_{i,r}` (``None``: absent).
        delta_lower: per case and row, :math:`\\Delta_{i,r}`.
        delta_upper: per case and row, upper bounds of :math:`A_{i,r}(f_t - f_s)`.
        delta_method: how Δ was computed (``"interval"``, ``"crown"``, ``"best"``).
        theorem: ``"T1"`` (pruned ⇒ original), ``"T2"`` (original ⇒ pruned) or ``"T3"``.
        case_lower: per case, the resulting target lower bound :math:`\\tilde m_i`.
        source_certificate_sha256: SHA-256 of the source certificate's JSON (``""``: unknown).
    """

    kind: ClassVar[str] = "transfer"

    source_fingerprint: str
    source_verdict: Verdict
    source_kind: str
    source_case_lower: tuple[float | None, ...]
    source_row_lower: tuple[tuple[float, ...], ...] | None
    delta_lower: tuple[tuple[float, ...], ...]
    delta_upper: tuple[tuple[float, ...], ...]
    delta_method: str
    theorem: str
    case_lower: tuple[float, ...]
    source_certificate_sha256: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_case_lower", _opt_floats(self.source_case_lower))
        if self.source_row_lower is not None:
            object.__setattr__(self, "source_row_lower", _rows(self.source_row_lower))
        object.__setattr__(self, "delta_lower", _rows(self.delta_lower))
        object.__setattr__(self, "delta_upper", _rows(self.delta_upper))
        object.__setattr__(self, "case_lower", _floats(self.case_lower))

    def case_lower_bounds(self) -> tuple[float | None, ...]:
        """Per-case target lower bounds :math:`\\tilde m_i`."""
        return tuple(self.case_lower)

    def row_lower_bounds(self) -> tuple[tuple[float, ...], ...] | None:
        """Per-row target lower bounds :math:`\\ell_{i,r} + \\Delta_{i,r}` (when stored)."""
        if self.source_row_lower is None:
            return None
        return tuple(
            tuple(l + d for l, d in zip(ls, ds))
            for ls, ds in zip(self.source_row_lower, self.delta_lower)
        )


@dataclass(frozen=True)
class NoEvidence:
    """An UNKNOWN verdict: nothing was proven for every case.

    Attributes:
        reason: why (``"timeout"``, ``"inconclusive"``, ``"transfer_failed"``...).
        case_lower: partial per-case lower bounds (``None``: none).
        case_upper: per case, the smallest violation seen at a concrete point (``None``: none).
    """

    kind: ClassVar[str] = "none"

    reason: str = ""
    case_lower: tuple[float | None, ...] = ()
    case_upper: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "case_lower", _opt_floats(self.case_lower))
        object.__setattr__(self, "case_upper", _opt_floats(self.case_upper))

    def case_lower_bounds(self) -> tuple[float | None, ...]:
        """The partial lower bounds (they do not prove the property)."""
        return tuple(self.case_lower)

    def row_lower_bounds(self) -> tuple[tuple[float, ...], ...] | None:
        """None."""
        return None


Evidence: TypeAlias = (
    BoundEvidence
    | MilpEvidence
    | BabEvidence
    | CounterexampleEvidence
    | TransferEvidence
    | NoEvidence
)

#: evidence kind -> class
EVIDENCE_TYPES: dict[str, type] = {
    cls.kind: cls
    for cls in (
        BoundEvidence,
        MilpEvidence,
        BabEvidence,
        CounterexampleEvidence,
        TransferEvidence,
        NoEvidence,
    )
}


# --------------------------------------------------------------------------------------------
# Provenance and the certificate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    """How a certificate was produced (informative; never trusted by the checker).

    Attributes:
        tool_version: nncert version.
        python: Python version.
        numpy: numpy version.
        solvers: solver name -> version, for the solvers used.
        method: the deciding method (``"crown"``, ``"milp"``, ``"transfer"``...).
        options: the options used (JSON-safe values).
        seed: random seed (``None`` if none).
        time: wall-clock seconds of the run.
        created: UTC ISO-8601 timestamp.
    """

    tool_version: str
    python: str
    numpy: str
    solvers: dict[str, str] = field(default_factory=dict)
    method: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    time: float = 0.0
    created: str = ""

    @classmethod
    def current(
        cls,
        *,
        method: str = "",
        options: dict[str, Any] | None = None,
        seed: int | None = None,
        time: float = 0.0,
        solvers: dict[str, str] | None = None,
    ) -> Provenance:
        """Provenance of the running interpreter, stamped now."""
        import datetime
        import platform

        try:
            from importlib.metadata import version

            tool = version("nncert")
        except Exception:  # pragma: no cover - not installed
            tool = "unknown"
        created = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return cls(
            tool_version=tool,
            python=platform.python_version(),
            numpy=np.__version__,
            solvers=dict(solvers or {}),
            method=method,
            options=dict(options or {}),
            seed=seed,
            time=float(time),
            created=created,
        )


@dataclass(frozen=True)
class Certificate:
    """A verdict about one property on one network, with its evidence.

    Attributes:
        schema_version: ``(major, minor)`` of the serialization schema.
        network: the network the verdict is about.
        property: the property (unsafe cases).
        verdict: VERIFIED, FALSIFIED or UNKNOWN.
        evidence: what supports the verdict (checked by :func:`nncert.certificates.check`).
        provenance: how it was produced.
    """

    schema_version: tuple[int, int]
    network: NetworkRef
    property: Property
    verdict: Verdict
    evidence: Evidence
    provenance: Provenance

    def __post_init__(self) -> None:
        major, minor = self.schema_version
        object.__setattr__(self, "schema_version", (int(major), int(minor)))

    @builtins.property
    def property_fingerprint(self) -> str:
        """:func:`property_fingerprint` of :attr:`property`."""
        return property_fingerprint(self.property)

    def case_lower_bounds(self) -> tuple[float | None, ...]:
        """Per-case lower bounds of :math:`m_i^*` claimed by the evidence."""
        return self.evidence.case_lower_bounds()


__all__ = [
    "ARITHMETICS",
    "BOUND_METHODS",
    "EVIDENCE_TYPES",
    "SCHEMA_VERSION",
    "THEOREMS",
    "BabCase",
    "BabEvidence",
    "BoundEvidence",
    "Certificate",
    "CounterexampleEvidence",
    "Evidence",
    "MilpCase",
    "MilpEvidence",
    "NetworkRef",
    "NoEvidence",
    "Provenance",
    "TransferEvidence",
    "Verdict",
    "property_fingerprint",
]
