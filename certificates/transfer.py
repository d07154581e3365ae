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

Otherwise (or when the rule fails) :func:`transfer` falls back to
:func:`nncert.verify.pipeline.verify` on the target, after a cheap PGD attack started at the
source's witness (when there is one).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nncert.certificates.build import certificate_from_result, options_dict
from nncert.certificates.check import check, transferred_case_bound
from nncert.certificates.diff_bounds import DIFF_METHODS, difference_bounds
from nncert.certificates.model import (
    SCHEMA_VERSION,
    Certificate,
    CounterexampleEvidence,
    NetworkRef,
    NoEvidence,
    Provenance,
    TransferEvidence,
)
from nncert.certificates.serialize import certificate_sha256, encode_value
from nncert.verify.attack import pgd_attack
from nncert.verify.errors import InvalidOptionsError, TransferError
from nncert.verify.network import Network
from nncert.verify.options import VerifyOptions
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict, VerificationResult
from nncert.verify.spec import Property
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
    """

    verdict: Verdict
    certificate: Certificate
    transferred: bool
    delta: tuple[tuple[float, ...], ...] | None
    time: float
    fallback_result: VerificationResult | None = None
    reason: str = ""

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
        }


def _nonzeros(net: Network) -> int:
    return int(sum(np.count_nonzero(d.weight) for d in net.dense_layers))


def _theorem(source: Network, target: Network) -> str:
    return "T1" if _nonzeros(source) < _nonzeros(target) else "T2"


def _case_deltas(
    source: Network, target: Network, prop: Property, method: str
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    lows: list[tuple[float, ...]] = []
    ups: list[tuple[float, ...]] = []
    for case in prop.cases:
        if case.n_rows == 0:
            lows.append(())
            ups.append(())
            continue
        d = difference_bounds(target, source, case.input_box, case.A, method=method)
        lows.append(tuple(float(v) for v in np.asarray(d.spec_lower)))
        ups.append(tuple(float(v) for v in np.asarray(d.spec_upper)))
    return tuple(lows), tuple(ups)


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

    Returns:
        A :class:`TransferResult`. ``transferred`` is ``True`` only when the verdict came from
        the source certificate.

    Raises:
        TransferError: ``cert`` is not about ``source``, is rejected by the checker, or is
            solver-attested and ``accept_attested`` is false.
        InvalidPropertyError: the property does not fit ``target``.
        InvalidOptionsError: unknown ``method`` or options.
    """
    t0 = time.perf_counter()
    if method not in DIFF_METHODS:
        raise InvalidOptionsError(f"method={method!r} must be one of {', '.join(DIFF_METHODS)}")
    if cert.network.fingerprint != source.fingerprint():
        raise TransferError(
            "transfer: the certificate is not about the given source network (fingerprint mismatch)"
        )
    prop = cert.property
    prop.check_network_shape(target.n_inputs, target.n_outputs, where="transfer target")
    report = check(cert, source)
    if not report.ok:
        raise TransferError(f"transfer: source certificate rejected: {report.reasons[0]}")
    if not report.independent and not accept_attested:
        raise TransferError(
            "transfer: the source certificate's verdict rests on a solver's word "
            f"({report.unchecked[0]}); re-create it with a checkable proof, or accept it "
            "with --accept-attested"
        )
    base_opts: dict[str, Any] = {"delta_method": method, "source": source.fingerprint()}
    delta: tuple[tuple[float, ...], ...] | None = None
    hint: np.ndarray | None = None
    hint_case = 0
    reason = ""

    if cert.verdict is Verdict.VERIFIED:
        try:
            delta, delta_up = _case_deltas(source, target, prop, method)
        except TransferError as err:
            reason = f"difference bounds unavailable: {err}"
        else:
            # the margins the checker re-derived (never the certificate's own claims)
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
                    delta[i],
                )
                for i in range(len(prop.cases))
            ]
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
                return TransferResult(
                    Verdict.VERIFIED,
                    out,
                    True,
                    delta,
                    elapsed,
                    None,
                    f"{ev.theorem}: margin + Δ > 0 for every case",
                )
            i = failing[0]
            reason = (
                f"margin + Δ = {values[i]:.6g} <= 0 for case {i}; "
                f"{len(failing)} of {len(prop.cases)} case(s) fail"
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
        if delta is not None:
            # the margins the checker re-derived (never the certificate's own claims)
            src_case = report.case_lower
            src_rows = (
                None
                if any(r is None for r in report.row_lower)
                else tuple(r for r in report.row_lower if r is not None)
            )
            vals = [
                transferred_case_bound(
                    src_case[i] if i < len(src_case) else None,
                    None if src_rows is None else src_rows[i],
                    delta[i],
                )
                for i in range(len(prop.cases))
            ]
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
        return TransferResult(Verdict.UNKNOWN, out, False, delta, elapsed, None, reason)
    return _fallback(
        prop, target, delta, hint, hint_case, reason, t0, time_limit=time_limit, options=options
    )


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


__all__ = ["TransferResult", "transfer"]
