r"""Independent certificate checker with a small trusted base.

:func:`check` re-derives what it can from the network alone and states plainly what it takes on
trust:

* **Fingerprint**: ``cert.network.fingerprint`` must equal :meth:`Network.fingerprint` of the
  network given, and the property must fit its input/output sizes.
* **Counterexamples**: ``x`` must lie in the case's box *exactly*, and a float64 forward pass
  must give :math:`\max_r (A_r f(x) - b_r) \le 0`; the stored ``y`` and violation must match the
  replay (and onnxruntime agrees when the network came from an ONNX file).
* **Bound evidence**: every claimed row bound :math:`\ell_{i,r}` is recomputed with the same
  method (IBP or CROWN); the recomputed bound must reach the claim (up to ``1e-9`` relative) and
  every case of a VERIFIED certificate needs :math:`\max_r \ell_{i,r} > 0`. The bounds are
  recomputed by the bound engine (:mod:`nncert.verify.bounds`), which bounds every rounding
  error of its float64 arithmetic (dot-product error bounds, lines that hold in real
  arithmetic, ``np.nextafter`` on the results): a recomputed bound > 0 holds for the exact
  network, so a margin of exactly 0 is never accepted.
* **Branch-and-bound evidence**: every case not closed by the re-propagated pre-solve bounds
  needs a proof tree, re-derived by :func:`~nncert.certificates.proofcheck.check_tree` (the
  leaves cover the case's box, phase splits are exhaustive, every leaf's bound is recomputed
  by the bound engine, LP leaves from their dual multipliers). A case without a tree is
  rejected.
* **MILP evidence** (and the complete plug-in methods recorded as such): a case with a proof
  tree (the MILP's verdict re-proved by the project's own search) is re-derived as above; a
  case without one passes structural checks only (exact solver, dual bound above the
  tolerance, primal ≥ dual) and rests on the solver's word: the report's ``trust`` is then
  ``"solver-attested"``.
* **Transfer evidence**: needs the ``source`` network. :math:`\Delta` is recomputed with the
  recorded method; with the recomputed :math:`\Delta_{i,r}` the target bound
  :math:`\max(m_i + \min_r \Delta_{i,r}, \max_r(\ell_{i,r} + \Delta_{i,r}))` must be ``> 0``
  and reach the claim. With ``source_certificate`` the source margins are re-checked as well
  (recursively, and the report inherits the source's trust); otherwise they are taken from the
  embedded summary, which makes the report ``"solver-attested"``.

The report's ``trust`` is ``"independent"`` when everything was re-derived and
``"solver-attested"`` when some piece rests on a solver's (or an unchecked source's) word.
With ``expected_property``, the certificate must be about exactly that property.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from nncert.certificates.diff_bounds import DIFF_METHODS, case_difference_bounds
from nncert.certificates.model import (
    BOUND_METHODS,
    BabCase,
    BabEvidence,
    BoundEvidence,
    Certificate,
    CounterexampleEvidence,
    MilpCase,
    MilpEvidence,
    NoEvidence,
    TransferEvidence,
    property_fingerprint,
)
from nncert.certificates.proofcheck import check_tree
from nncert.verify.bounds import spec_bounds
from nncert.verify.errors import NncertError
from nncert.verify.lowering import carry_inputs, normalize_input_rows
from nncert.verify.network import (
    FloatArray,
    Network,
)
from nncert.verify.result import Verdict
from nncert.verify.spec import MixedProperty, Property, UnsafeCase
from nncert.verify.witness import is_onnx_source, onnxruntime_forward

#: trust levels of an accepted certificate
INDEPENDENT = "independent"
SOLVER_ATTESTED = "solver-attested"

#: Relative tolerance for "recomputed bound reaches the claim" comparisons.
REPRODUCE_RTOL = 1e-9

_U = 2.0**-53


@dataclass(frozen=True)
class CheckReport:
    """Outcome of :func:`check`.

    Attributes:
        ok: the certificate holds for the given network (every claim re-validated or
            explicitly attested).
        reasons: why it was rejected (empty when ``ok``).
        attested: what was established and how (``"case 0: crown bound 0.31 re-propagated"``,
            ``"case 2: solver-attested (highs, exact)"``...).
        unchecked: the items among ``attested`` that rest on a solver's (or an unchecked
            source certificate's) word rather than on re-derivation.
        case_lower: per case, the lower bound of :math:`m_i^*` the check established (the
            re-derived value, never a larger claim; ``None``: none). Transfer uses these.
        row_lower: per case, re-derived row lower bounds (``None``: none).
    """

    ok: bool
    reasons: list[str] = field(default_factory=list)
    attested: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    case_lower: tuple[float | None, ...] = ()
    row_lower: tuple[tuple[float, ...] | None, ...] = ()

    @property
    def trust(self) -> str:
        """``"independent"``, ``"solver-attested"``, or ``""`` when rejected."""
        if not self.ok:
            return ""
        return SOLVER_ATTESTED if self.unchecked else INDEPENDENT

    @property
    def independent(self) -> bool:
        """Accepted, and every piece re-derived without trusting a solver."""
        return self.trust == INDEPENDENT

    def summary(self) -> str:
        """One line: ``holds (...)`` or ``rejected: <first reason>``."""
        if self.ok:
            return f"holds, {self.trust} ({len(self.attested)} item(s) established)"
        return f"rejected: {self.reasons[0] if self.reasons else 'unknown reason'}"


# --------------------------------------------------------------------------------------------
# Bound re-derivation
# --------------------------------------------------------------------------------------------


def recompute_rows(
    network: Network, case: UnsafeCase, method: str, *, outward: bool = True
) -> FloatArray:
    r"""Lower bounds of :math:`\min_{x \in X} g_r(x)` per row, recomputed with ``method``.

    The bound engine (:mod:`nncert.verify.bounds`) accounts for every rounding error, so the
    recomputed bounds hold for the exact real-arithmetic network. ``outward`` is accepted for
    compatibility; there is no other arithmetic.
    """

    lo, _ = spec_bounds(network, case.input_box, case.A, -case.b, method=method)
    return np.asarray(lo, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------------


class _Lows:
    """The per-case (and per-row) lower bounds a check establishes."""

    def __init__(self, n: int) -> None:
        self.case: list[float | None] = [None] * n
        self.rows: list[tuple[float, ...] | None] = [None] * n

    def note(self, i: int, value: float, rows: tuple[float, ...] | None = None) -> None:
        prev = self.case[i]
        self.case[i] = value if prev is None else max(prev, value)
        if rows is not None:
            self.rows[i] = rows


def _tol(v: float) -> float:
    return REPRODUCE_RTOL * (1.0 + abs(v)) if np.isfinite(v) else 0.0


def _check_bound(
    ev: BoundEvidence,
    network: Network,
    prop: Property,
    *,
    outward: bool,
    need_positive: bool,
    reasons: list[str],
    attested: list[str],
    label: str = "bound",
    lows: _Lows | None = None,
) -> list[bool]:
    """Re-derive bound evidence; returns per case whether it is proven (> 0)."""
    n = len(prop.cases)
    closed = [False] * n
    if ev.method not in BOUND_METHODS:
        reasons.append(f"{label}: unknown bound method {ev.method!r}")
        return closed
    if len(ev.case_lower) != n or len(ev.row_lower) != n:
        reasons.append(
            f"{label}: evidence has {len(ev.case_lower)} case bound(s) / {len(ev.row_lower)} "
            f"row list(s), the property has {n} case(s)"
        )
        return closed
    for i, case in enumerate(prop.cases):
        claimed_rows = np.asarray(ev.row_lower[i], dtype=np.float64)
        if claimed_rows.shape != (case.n_rows,):
            reasons.append(
                f"{label}: case {i}: {claimed_rows.size} row bound(s) for {case.n_rows} row(s)"
            )
            continue
        claimed = ev.case_lower[i]
        if case.n_rows and claimed > float(np.max(claimed_rows)) + _tol(claimed):
            reasons.append(
                f"{label}: case {i}: claimed case bound {claimed:.6g} exceeds its best row "
                f"bound {float(np.max(claimed_rows)):.6g}"
            )
            continue
        rows = recompute_rows(network, case, ev.method, outward=outward)
        bad = [
            r
            for r in range(case.n_rows)
            if rows[r] < claimed_rows[r] - _tol(float(claimed_rows[r]))
        ]
        if bad:
            r = bad[0]
            reasons.append(
                f"{label}: case {i} row {r}: recomputed {ev.method} bound {rows[r]:.6g} "
                f"does not reach the claimed {claimed_rows[r]:.6g}"
            )
            continue
        best = float(np.max(rows)) if case.n_rows else -np.inf
        if lows is not None:
            lows.note(
                i, min(best, claimed), tuple(float(v) for v in np.minimum(rows, claimed_rows))
            )
        if best > 0.0 and claimed > 0.0:
            closed[i] = True
            attested.append(
                f"case {i}: {ev.method} bound {best:.6g} > 0 re-propagated (every rounding "
                "error bounded)"
            )
        elif need_positive:
            reasons.append(
                f"{label}: case {i}: bound {min(best, claimed):.6g} does not prove the case "
                "(needs > 0)"
            )
    return closed


def _check_counterexample(
    cert: Certificate,
    ev: CounterexampleEvidence,
    network: Network,
    *,
    onnx_replay: bool,
    reasons: list[str],
    attested: list[str],
) -> None:
    prop = cert.property
    i = ev.case_index
    if not 0 <= i < len(prop.cases):
        reasons.append(f"counterexample: case_index {i} out of range [0, {len(prop.cases)})")
        return
    case = prop.cases[i]
    if ev.x.shape != (network.n_inputs,):
        reasons.append(
            f"counterexample: x has {ev.x.size} values, the network has {network.n_inputs} inputs"
        )
        return
    if not np.all(np.isfinite(ev.x)) or not case.input_box.contains(ev.x):
        k = int(np.argmax((ev.x < case.input_box.lower) | (ev.x > case.input_box.upper)))
        reasons.append(
            f"counterexample: x lies outside case {i}'s input box (dimension {k}: "
            f"{ev.x[k]!r} not in [{case.input_box.lower[k]!r}, {case.input_box.upper[k]!r}])"
        )
        return
    y = network.forward(ev.x)
    viol = float(case.violation(y.reshape(1, -1))[0])
    if not viol <= 0.0:
        reasons.append(
            f"counterexample: forward pass gives violation {viol:.6g} > 0 for case {i} "
            "(not a counterexample)"
        )
        return
    if ev.y.shape != y.shape or not np.allclose(ev.y, y, rtol=1e-9, atol=1e-9):
        reasons.append("counterexample: stored output y does not match the forward pass")
        return
    if abs(ev.violation - viol) > 1e-9 * (1.0 + abs(viol)):
        reasons.append(
            f"counterexample: stored violation {ev.violation:.6g} != replayed {viol:.6g}"
        )
        return
    attested.append(f"case {i}: counterexample replayed in float64 (violation {viol:.6g} <= 0)")
    src = network.source
    if onnx_replay and src is not None and is_onnx_source(src):
        y_ort = onnxruntime_forward(src, ev.x.reshape(1, -1))[0]
        v_ort = float(case.violation(np.asarray(y_ort).reshape(1, -1))[0])
        if not v_ort <= 0.0:
            reasons.append(f"counterexample: onnxruntime replay gives violation {v_ort:.6g} > 0")
            return
        attested.append(f"case {i}: counterexample replayed in onnxruntime ({v_ort:.6g})")


def _presolve_closed(
    presolve: BoundEvidence | None,
    network: Network,
    prop: Property,
    outward: bool,
    reasons: list[str],
    attested: list[str],
    lows: _Lows | None = None,
) -> list[bool]:
    """Which cases the recorded pre-solve bounds close (re-propagated, not trusted)."""
    if presolve is None:
        return [False] * len(prop.cases)
    return _check_bound(
        presolve,
        network,
        prop,
        outward=outward,
        need_positive=False,
        reasons=reasons,
        attested=attested,
        label="presolve",
        lows=lows,
    )


def _check_case_tree(
    label: str,
    rec: BabCase | MilpCase,
    network: Network,
    prop: Property,
    deadline: float | None,
    reasons: list[str],
    attested: list[str],
    lows: _Lows,
) -> bool:
    """Re-derive the proof tree of one case record; ``False`` (with a reason) if it fails."""
    i = rec.case_index
    assert rec.tree is not None
    left = None if deadline is None else max(deadline - time.perf_counter(), 0.0)
    res = check_tree(network, prop.cases[i], rec.tree, time_limit=left)
    if not res.ok:
        reasons.append(f"{label}: case {i}: proof tree rejected: {res.reason}")
        return False
    attested.append(
        f"case {i}: proof tree re-derived ({res.nodes} nodes, {res.leaves} leaves, "
        f"smallest leaf bound {res.min_bound:.6g})"
    )
    # the case's margin is what the tree re-derives (never a larger claim of the record)
    claim = getattr(rec, "lower_bound", None)
    if claim is None:
        claim = getattr(rec, "bound", None)
    value = res.min_bound
    if claim is not None and float(claim) > 0.0:
        value = min(float(claim), value)
    lows.note(i, value)
    return True


def _check_milp(
    ev: MilpEvidence,
    network: Network,
    prop: Property,
    *,
    outward: bool,
    deadline: float | None,
    reasons: list[str],
    attested: list[str],
    unchecked: list[str],
    lows: _Lows,
) -> None:
    n = len(prop.cases)
    tol = ev.tolerance
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0.0):
        # a dual bound proves the case only when it is > 0; a negative tolerance would let a
        # bound <= 0 (a falsifiable case) through
        reasons.append(f"milp: tolerance {tol!r} must be a finite number >= 0")
        return
    closed = _presolve_closed(ev.presolve, network, prop, outward, reasons, attested, lows)
    for rec in ev.cases:
        i = rec.case_index
        if not 0 <= i < n:
            reasons.append(f"milp: case_index {i} out of range [0, {n})")
            return
        if closed[i]:
            continue
        if rec.tree is not None:
            if not _check_case_tree("milp", rec, network, prop, deadline, reasons, attested, lows):
                return
            closed[i] = True
            continue
        if not ev.exact:
            reasons.append(f"milp: case {i}: solver {ev.solver!r} is not exact; it proves nothing")
            return
        if rec.status == "infeasible":
            # a Model-1 MILP over a non-empty box is always feasible: "infeasible" can only be
            # a numerical fault, never a proof (the pipeline treats it the same way)
            reasons.append(f"milp: case {i}: an 'infeasible' MILP status is not a proof")
            return
        if rec.bound is None or not (rec.bound > ev.tolerance and rec.bound > 0.0):
            reasons.append(
                f"milp: case {i}: dual bound {rec.bound!r} does not exceed the tolerance "
                f"{ev.tolerance:g}"
            )
            return
        if rec.objective is not None and rec.objective < rec.bound - _tol(rec.bound):
            reasons.append(
                f"milp: case {i}: primal objective {rec.objective:.6g} below the dual bound "
                f"{rec.bound:.6g} (inconsistent)"
            )
            return
        closed[i] = True
        item = (
            f"case {i}: solver-attested MILP bound {rec.bound:.6g} > {ev.tolerance:g} "
            f"({ev.solver}, exact, status {rec.status})"
        )
        attested.append(item)
        unchecked.append(item)
        lows.note(i, rec.bound)
    open_cases = [i for i in range(n) if not closed[i]]
    if open_cases:
        reasons.append(f"milp: case(s) {open_cases} are not closed by the evidence")


def _check_bab(
    ev: BabEvidence,
    network: Network,
    prop: Property,
    *,
    outward: bool,
    deadline: float | None,
    reasons: list[str],
    attested: list[str],
    lows: _Lows,
) -> None:
    n = len(prop.cases)
    closed = _presolve_closed(ev.presolve, network, prop, outward, reasons, attested, lows)
    for rec in ev.cases:
        i = rec.case_index
        if not 0 <= i < n:
            reasons.append(f"bab: case_index {i} out of range [0, {n})")
            return
        if closed[i]:
            continue
        if rec.status != "verified":
            reasons.append(f"bab: case {i}: status {rec.status!r} does not prove the case")
            return
        if rec.tree is None:
            reasons.append(f"bab: case {i}: no proof tree (nothing to re-derive)")
            return
        if not _check_case_tree("bab", rec, network, prop, deadline, reasons, attested, lows):
            return
        closed[i] = True
    open_cases = [i for i in range(n) if not closed[i]]
    if open_cases:
        reasons.append(f"bab: case(s) {open_cases} are not closed by the evidence")


def transferred_case_bound(
    source_case: float | None,
    source_rows: tuple[float, ...] | None,
    delta_rows: tuple[float, ...] | FloatArray,
) -> float:
    r"""Target case bound :math:`\max(m + \min_r \Delta_r,\; \max_r(\ell_r + \Delta_r))`.

    Soundness: with :math:`g^t_r = g^s_r + (A_r(f_t - f_s))` and
    :math:`A_r(f_t - f_s) \ge \Delta_r`, :math:`\max_r g^t_r \ge \max_r g^s_r + \min_r \Delta_r
    \ge m + \min_r \Delta_r`, and :math:`\max_r g^t_r \ge g^t_{r'} \ge \ell_{r'} + \Delta_{r'}`
    for every :math:`r'`. Missing pieces contribute :math:`-\infty`.
    """
    d = np.asarray(delta_rows, dtype=np.float64)
    best = -np.inf
    if source_case is not None and d.size:
        best = max(best, float(source_case) + float(np.min(d)))
    if source_rows is not None and len(source_rows) == d.size and d.size:
        best = max(best, float(np.max(np.asarray(source_rows) + d)))
    return best


def _check_transfer(
    cert: Certificate,
    ev: TransferEvidence,
    network: Network,
    *,
    source: Network | None,
    source_certificate: Certificate | None,
    outward: bool,
    deadline: float | None,
    reasons: list[str],
    attested: list[str],
    unchecked: list[str],
    lows: _Lows,
) -> None:

    prop = cert.property
    n = len(prop.cases)
    if ev.source_verdict is not Verdict.VERIFIED:
        reasons.append(f"transfer: source verdict is {ev.source_verdict.value}, not verified")
        return
    if (
        len(ev.case_lower) != n
        or len(ev.delta_lower) != n
        or len(ev.source_case_lower) != n
        or (ev.source_row_lower is not None and len(ev.source_row_lower) != n)
    ):
        reasons.append(f"transfer: evidence lengths do not match the property's {n} case(s)")
        return
    if source is None:
        reasons.append(
            "transfer: the source network is needed to recompute Δ (pass source=, or "
            "`nncert check --source`)"
        )
        return
    if source.fingerprint() != ev.source_fingerprint:
        reasons.append("transfer: the given source network's fingerprint does not match")
        return
    src_case: list[float | None] = list(ev.source_case_lower)
    src_rows = ev.source_row_lower
    if source_certificate is not None:
        left = None if deadline is None else max(deadline - time.perf_counter(), 0.0)
        sub = check(source_certificate, source, outward=outward, time_limit=left)
        if not sub.ok:
            reasons.append(f"transfer: source certificate rejected: {sub.reasons[0]}")
            return
        unchecked.extend(f"source: {u}" for u in sub.unchecked)
        if source_certificate.property != prop:
            reasons.append("transfer: source certificate is about a different property")
            return
        if source_certificate.verdict is not Verdict.VERIFIED:
            reasons.append("transfer: source certificate is not VERIFIED")
            return
        # what the check re-derived, never the source certificate's own claims
        real = sub.case_lower
        real_rows = sub.row_lower
        for i in range(n):
            c = src_case[i]
            r = real[i]
            if c is not None and (r is None or r < c - _tol(c)):
                reasons.append(
                    f"transfer: case {i}: source margin {c:.6g} is not backed by the source "
                    f"certificate ({real[i]!r})"
                )
                return
            if src_rows is not None:
                rrow = real_rows[i] if i < len(real_rows) else None
                if rrow is None or any(rr < cr - _tol(cr) for rr, cr in zip(rrow, src_rows[i])):
                    reasons.append(
                        f"transfer: case {i}: source row bounds not backed by the source "
                        "certificate"
                    )
                    return
        attested.append("transfer: source certificate re-checked against the source network")
    else:
        item = (
            "transfer: source margins taken from the embedded summary (source certificate "
            "not supplied)"
        )
        attested.append(item)
        unchecked.append(item)
    method = ev.delta_method if ev.delta_method in DIFF_METHODS else "best"
    for i, case in enumerate(prop.cases):
        if len(ev.delta_lower[i]) != case.n_rows:
            reasons.append(f"transfer: case {i}: Δ has {len(ev.delta_lower[i])} row(s)")
            return
    try:
        # once per distinct input box (the rows of the cases sharing it stacked)
        recomputed = case_difference_bounds(network, source, prop.cases, method=method)
    except NncertError as err:
        reasons.append(f"transfer: cannot recompute Δ ({err})")
        return
    for i in range(len(prop.cases)):
        dl = recomputed[i][0]
        claimed = np.asarray(ev.delta_lower[i])
        if np.any(dl < claimed - REPRODUCE_RTOL * (1.0 + np.abs(claimed))):
            r = int(np.argmax(dl < claimed - REPRODUCE_RTOL * (1.0 + np.abs(claimed))))
            reasons.append(
                f"transfer: case {i} row {r}: recomputed Δ lower bound {dl[r]:.6g} does not "
                f"reach the claimed {claimed[r]:.6g}"
            )
            return
        rows_i = None if src_rows is None else src_rows[i]
        value = transferred_case_bound(src_case[i], rows_i, dl)
        if not value > 0.0:
            reasons.append(
                f"transfer: case {i}: source margin plus recomputed Δ is {value:.6g} (needs > 0)"
            )
            return
        if ev.case_lower[i] > value + _tol(value):
            reasons.append(
                f"transfer: case {i}: claimed bound {ev.case_lower[i]:.6g} exceeds source "
                f"margin + Δ = {value:.6g}"
            )
            return
        attested.append(
            f"case {i}: transferred ({ev.theorem}) bound {value:.6g} > 0 with Δ recomputed "
            f"({method})"
        )
        lows.note(i, min(value, ev.case_lower[i]))


def _label_mismatch(prop: Property) -> str | None:
    """Why a property's ``label`` disagrees with its cases (``None`` when it agrees or there
    is none). A labelled property is a robustness property: every case is one row
    ``y_label - y_j <= 0`` (``+1`` at the label, ``-1`` at one other output, ``b = 0``), so a
    label edited apart from the constraints (or constraints apart from the label) is caught
    here; the free-text name is not part of the proof and is not checked."""
    label = prop.label
    if label is None:
        return None
    for i, case in enumerate(prop.cases):
        a = np.asarray(case.A)
        ok = (
            a.shape[0] == 1
            and 0 <= label < a.shape[1]
            and a[0, label] == 1.0
            and np.count_nonzero(a[0] == -1.0) == 1
            and np.count_nonzero(a[0]) == 2
            and bool(np.all(np.asarray(case.b) == 0.0))
        )
        if not ok:
            return (
                f"case {i}: its output constraint is not the robustness constraint of the "
                f"property's label {label} (y_{label} - y_j <= 0)"
            )
    return None


_EXPECTED_VERDICT: dict[type, Verdict] = {
    BoundEvidence: Verdict.VERIFIED,
    MilpEvidence: Verdict.VERIFIED,
    BabEvidence: Verdict.VERIFIED,
    TransferEvidence: Verdict.VERIFIED,
    CounterexampleEvidence: Verdict.FALSIFIED,
    NoEvidence: Verdict.UNKNOWN,
}


def _carried_network(cert: Certificate, network: Network) -> Network | None:
    """The network ``[f(x); x]`` (:func:`~nncert.verify.lowering.carry_inputs` over the
    hull of the certificate's boxes) when the certificate's property has one column per
    output and input of ``network``, else ``None``."""
    prop = cert.property
    if prop.n_inputs != network.n_inputs or prop.n_outputs != (
        network.n_outputs + network.n_inputs
    ):
        return None
    try:
        return carry_inputs(network, prop.input_hull())
    except NncertError:
        return None


def check(
    cert: Certificate,
    network: Network,
    *,
    outward: bool = True,
    source: Network | None = None,
    source_certificate: Certificate | None = None,
    onnx_replay: bool = True,
    expected_property: Property | MixedProperty | None = None,
    time_limit: float | None = None,
) -> CheckReport:
    """Independently re-validate ``cert`` against ``network`` (see the module docstring).

    Args:
        cert: the certificate.
        network: the network it claims to be about.
        outward: recompute IBP evidence in outward-rounded arithmetic.
        source: for transfer evidence, the source network (needed to recompute Δ).
        source_certificate: for transfer evidence, the source certificate (re-checked too).
        onnx_replay: replay counterexamples in onnxruntime for ONNX-loaded networks.
        expected_property: when given, the certificate must be about exactly this property
            (same cases, boxes, ``A`` and ``b``; a
            :class:`~nncert.verify.spec.MixedProperty` is compared as its rows on
            ``[f(x); x]``).
        time_limit: seconds allowed for re-deriving proof trees (``None``: unlimited);
            running out rejects.

    Returns:
        A :class:`CheckReport`; never raises for a wrong certificate (only for malformed
        arguments).
    """
    reasons: list[str] = []
    attested: list[str] = []
    unchecked: list[str] = []
    deadline = None if time_limit is None else time.perf_counter() + float(time_limit)
    if not isinstance(cert, Certificate):
        return CheckReport(False, [f"not a certificate: {type(cert).__name__}"], [])
    fp = network.fingerprint()
    carried = None if cert.network.fingerprint == fp else _carried_network(cert, network)
    if carried is not None and carried.fingerprint() == cert.network.fingerprint:
        # constraints over the inputs: the certificate is about [f(x); x], rebuilt here from
        # the model and the certificate's own boxes (deterministic, exact in real arithmetic)
        network, fp = carried, carried.fingerprint()
        attested.append("network [f(x); x] rebuilt from the model (constraints over inputs)")
    if isinstance(expected_property, MixedProperty):  # as nncert verify lowers it
        simple = normalize_input_rows(expected_property)
        expected_property = simple if isinstance(simple, Property) else simple.augmented()
    if cert.network.fingerprint != fp:
        return CheckReport(
            False,
            [
                f"network fingerprint mismatch: certificate is about "
                f"{cert.network.fingerprint[:16]}..., the model is {fp[:16]}..."
            ],
            [],
        )
    attested.append(f"network fingerprint {fp[:16]}... matches")
    prop = cert.property
    if expected_property is not None:
        if property_fingerprint(expected_property) != property_fingerprint(prop):
            return CheckReport(
                False,
                [
                    "the certificate is about a different property than the one given "
                    "(its cases, boxes or output constraints differ)"
                ],
                attested,
            )
        attested.append("property matches the one given")
    if (prop.n_inputs, prop.n_outputs) != (network.n_inputs, network.n_outputs) or (
        cert.network.n_inputs,
        cert.network.n_outputs,
    ) != (network.n_inputs, network.n_outputs):
        return CheckReport(False, ["property/network sizes do not match the model"], attested)
    ev = cert.evidence
    lows = _Lows(len(prop.cases))
    expected = _EXPECTED_VERDICT.get(type(ev))
    if expected is None:
        return CheckReport(False, [f"unknown evidence type {type(ev).__name__}"], attested)
    if cert.verdict is not expected:
        return CheckReport(
            False,
            [
                f"verdict {cert.verdict.value} is inconsistent with {ev.kind} evidence "
                f"(which can only support {expected.value})"
            ],
            attested,
        )
    bad_label = _label_mismatch(prop)
    if bad_label is not None:
        return CheckReport(False, [bad_label], attested)
    if cert.verdict is Verdict.VERIFIED:
        empty = [i for i, case in enumerate(prop.cases) if case.n_rows == 0]
        if empty:
            # a case without output constraints makes every input of its box unsafe
            return CheckReport(
                False,
                [
                    f"case {empty[0]} has no output constraint: every input in its box is "
                    "unsafe, so the property cannot be verified"
                ],
                attested,
            )
    try:
        if isinstance(ev, BoundEvidence):
            _check_bound(
                ev,
                network,
                prop,
                outward=outward,
                need_positive=True,
                reasons=reasons,
                attested=attested,
                lows=lows,
            )
        elif isinstance(ev, CounterexampleEvidence):
            _check_counterexample(
                cert, ev, network, onnx_replay=onnx_replay, reasons=reasons, attested=attested
            )
        elif isinstance(ev, MilpEvidence):
            _check_milp(
                ev,
                network,
                prop,
                outward=outward,
                deadline=deadline,
                reasons=reasons,
                attested=attested,
                unchecked=unchecked,
                lows=lows,
            )
        elif isinstance(ev, BabEvidence):
            _check_bab(
                ev,
                network,
                prop,
                outward=outward,
                deadline=deadline,
                reasons=reasons,
                attested=attested,
                lows=lows,
            )
        elif isinstance(ev, TransferEvidence):
            _check_transfer(
                cert,
                ev,
                network,
                source=source,
                source_certificate=source_certificate,
                outward=outward,
                deadline=deadline,
                reasons=reasons,
                attested=attested,
                unchecked=unchecked,
                lows=lows,
            )
        else:
            attested.append(f"verdict unknown ({ev.reason or 'no reason'}): nothing to check")
    except NncertError as err:
        reasons.append(f"{ev.kind}: could not be re-checked: {str(err).splitlines()[0]}")
    ok = not reasons
    return CheckReport(
        ok,
        reasons,
        attested,
        unchecked,
        tuple(lows.case) if ok else (),
        tuple(lows.rows) if ok else (),
    )


__all__ = [
    "INDEPENDENT",
    "REPRODUCE_RTOL",
    "SOLVER_ATTESTED",
    "CheckReport",
    "check",
    "recompute_rows",
    "transferred_case_bound",
]
