"""The independent checker: honest certificates pass, tampered ones are rejected."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from cert_helpers import (
    bab_cert,
    golden_network,
    milp_cert,
    random_network,
    robust_prop,
    sample_violations,
    two_row_property,
    verified_cert,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from nncert.certificates import (
    BabEvidence,
    BoundEvidence,
    Certificate,
    CounterexampleEvidence,
    MilpEvidence,
    NetworkRef,
    certificate_from_result,
    check,
    from_json,
    to_json,
)
from nncert.certificates.check import recompute_rows
from nncert.verify.network import HardTanh, LeakyReLU, Sigmoid, Tanh
from nncert.verify.result import Counterexample, Verdict, VerificationResult

NET = golden_network()
PROP = robust_prop(NET, [0.3, 0.6], 0.02)
CROWN = verified_cert(NET, PROP, "crown")
IBP = verified_cert(NET, PROP, "ibp")
FALS = verified_cert(NET, robust_prop(NET, [0.3, 0.6], 1.5), "crown")


def test_honest_certificates_hold() -> None:
    for cert in (CROWN, IBP, FALS):
        report = check(cert, NET)
        assert report.ok, report.reasons
        assert report.attested
    assert CROWN.verdict is Verdict.VERIFIED and FALS.verdict is Verdict.FALSIFIED
    assert any("every rounding error bounded" in a for a in check(IBP, NET).attested)
    assert check(IBP, NET, outward=False).ok


def test_milp_evidence_is_solver_attested_and_proof_trees_are_independent() -> None:
    milp = check(milp_cert(NET, PROP), NET)
    assert milp.ok, milp.reasons
    bab = check(bab_cert(NET, PROP), NET)
    assert bab.ok and bab.trust == "independent", bab.reasons
    assert any("proof tree re-derived" in a for a in bab.attested)


def test_milp_solver_attestation_when_presolve_does_not_close() -> None:
    net = golden_network()
    prop = robust_prop(net, [0.3, 0.6], 0.02)
    cert = milp_cert(net, prop)
    ev = cert.evidence
    assert isinstance(ev, MilpEvidence) and ev.presolve is not None
    # drop the presolve: every case now rests on the MILP records
    cert2 = replace(cert, evidence=replace(ev, presolve=None))
    report = check(cert2, net)
    assert report.ok and any("solver-attested" in a for a in report.attested)
    assert report.trust == "solver-attested" and not report.independent
    # a non-exact solver proves nothing
    assert not check(replace(cert, evidence=replace(ev, presolve=None, exact=False)), net).ok
    # a dual bound at the tolerance proves nothing
    weak = tuple(replace(c, bound=1e-7, objective=1.0) for c in ev.cases)
    assert not check(replace(cert2, evidence=replace(ev, presolve=None, cases=weak)), net).ok
    # primal below dual is inconsistent
    bad = tuple(replace(c, objective=c.bound - 1.0) for c in ev.cases)  # type: ignore[operator]
    assert not check(replace(cert2, evidence=replace(ev, presolve=None, cases=bad)), net).ok


def test_bab_evidence_needs_proof_trees_and_never_trusts_a_claimed_margin() -> None:
    cert = bab_cert(NET, PROP)
    ev = cert.evidence
    assert isinstance(ev, BabEvidence)
    genuine = check(cert, NET)
    assert genuine.ok
    no_tree = tuple(replace(c, tree=None) for c in ev.cases)
    r = check(replace(cert, evidence=replace(ev, cases=no_tree)), NET)
    assert not r.ok and "no proof tree" in r.reasons[0]
    not_verified = tuple(replace(c, status="timeout") for c in ev.cases)
    assert not check(replace(cert, evidence=replace(ev, cases=not_verified)), NET).ok
    # an inflated margin is accepted only as what the tree re-derives (transfer uses that)
    inflated = tuple(replace(c, lower_bound=100.0) for c in ev.cases)
    r2 = check(replace(cert, evidence=replace(ev, cases=inflated)), NET)
    assert r2.ok
    for got, want in zip(r2.case_lower, genuine.case_lower):
        assert got is not None and want is not None and got <= want + 1e-12 and got < 100.0


# --------------------------------------------------------------------------------------------
# Tampering
# --------------------------------------------------------------------------------------------


def _edit_json(cert: Certificate, edit) -> Certificate:  # type: ignore[no-untyped-def]
    doc = json.loads(to_json(cert))
    edit(doc)
    return from_json(json.dumps(doc))


@pytest.mark.parametrize("cert", [CROWN, IBP], ids=["crown", "ibp"])
def test_tampered_margin_is_rejected(cert: Certificate) -> None:
    def bump(doc: dict) -> None:  # type: ignore[type-arg]
        doc["evidence"]["row_lower"][0]["data"][0] += 0.5
        doc["evidence"]["case_lower"]["data"][0] += 0.5

    report = check(_edit_json(cert, bump), NET)
    assert not report.ok
    assert "does not reach the claimed" in report.reasons[0]


def test_margin_claim_above_rows_is_rejected() -> None:
    ev = CROWN.evidence
    assert isinstance(ev, BoundEvidence)
    bad = replace(ev, case_lower=(ev.case_lower[0] + 1.0, *ev.case_lower[1:]))
    report = check(replace(CROWN, evidence=bad), NET)
    assert not report.ok and "exceeds its best row" in report.reasons[0]


def test_unproven_bound_claimed_verified_is_rejected() -> None:
    weak = robust_prop(NET, [0.3, 0.6], 0.4)
    res = VerificationResult(Verdict.VERIFIED, method="crown")
    with pytest.raises(ValueError, match="do not prove"):
        certificate_from_result(NET, weak, res)
    # hand-made: claims that reproduce but are not > 0
    from nncert.certificates.build import bound_evidence

    ev = bound_evidence(NET, weak, "crown")
    assert min(ev.case_lower) <= 0
    report = check(replace(CROWN, property=weak, evidence=ev), NET)
    assert not report.ok and "needs > 0" in report.reasons[0]


@pytest.mark.parametrize(
    ("cert", "new"),
    [(CROWN, "falsified"), (CROWN, "unknown"), (FALS, "verified"), (FALS, "unknown")],
)
def test_tampered_verdict_is_rejected(cert: Certificate, new: str) -> None:
    def edit(doc: dict) -> None:  # type: ignore[type-arg]
        doc["verdict"] = new

    report = check(_edit_json(cert, edit), NET)
    assert not report.ok and "inconsistent" in report.reasons[0]


@pytest.mark.parametrize("cert", [CROWN, FALS], ids=["verified", "falsified"])
def test_tampered_fingerprint_is_rejected(cert: Certificate) -> None:
    def edit(doc: dict) -> None:  # type: ignore[type-arg]
        fp = doc["network"]["fingerprint"]
        doc["network"]["fingerprint"] = ("0" if fp[0] != "0" else "1") + fp[1:]

    report = check(_edit_json(cert, edit), NET)
    assert not report.ok and "fingerprint" in report.reasons[0]


def test_certificate_for_another_network_is_rejected() -> None:
    other = random_network(np.random.default_rng(0), [2, 4, 3])
    assert not check(CROWN, other).ok


def test_tampered_witness_is_rejected() -> None:
    ev = FALS.evidence
    assert isinstance(ev, CounterexampleEvidence)
    case = FALS.property.cases[ev.case_index]
    # 1. moved out of the box
    outside = ev.x.copy()
    outside[0] = case.input_box.upper[0] + 1e-9
    r1 = check(replace(FALS, evidence=replace(ev, x=outside)), NET)
    assert not r1.ok and "outside" in r1.reasons[0]
    # 2. moved to the centre (a safe point: the label is the network's own prediction)
    centre = case.input_box.center
    assert case.violation(NET.forward(centre).reshape(1, -1))[0] > 0
    y = NET.forward(centre)
    v = float(case.violation(y.reshape(1, -1))[0])
    r2 = check(replace(FALS, evidence=replace(ev, x=centre, y=y, violation=v)), NET)
    assert not r2.ok and "not a counterexample" in r2.reasons[0]
    # 3. edited stored output / violation
    r3 = check(replace(FALS, evidence=replace(ev, y=ev.y + 1.0)), NET)
    assert not r3.ok and "stored output" in r3.reasons[0]
    r4 = check(replace(FALS, evidence=replace(ev, violation=ev.violation - 1.0)), NET)
    assert not r4.ok and "stored violation" in r4.reasons[0]
    # 4. wrong case index / wrong size
    r5 = check(replace(FALS, evidence=replace(ev, case_index=99)), NET)
    assert not r5.ok
    r6 = check(replace(FALS, evidence=replace(ev, x=np.zeros(5))), NET)
    assert not r6.ok


def test_tampered_witness_in_json_is_rejected() -> None:
    ev = FALS.evidence
    assert isinstance(ev, CounterexampleEvidence)
    centre = FALS.property.cases[ev.case_index].input_box.center

    def edit(doc: dict) -> None:  # type: ignore[type-arg]
        doc["evidence"]["x"]["data"] = [float(v) for v in centre]

    assert not check(_edit_json(FALS, edit), NET).ok


def test_wrong_shapes_are_rejected() -> None:
    bad_ref = replace(CROWN, network=NetworkRef(CROWN.network.fingerprint, 5, 3))
    assert not check(bad_ref, NET).ok


# --------------------------------------------------------------------------------------------
# Recomputed bounds (the engine's rigorous arithmetic)
# --------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    act=st.sampled_from([None, LeakyReLU(0.1), HardTanh(-1.0, 1.0), Sigmoid(), Tanh()]),
)
def test_recomputed_rows_are_sound_and_ordered(seed: int, act: object) -> None:
    rng = np.random.default_rng(seed)
    net = random_network(rng, [3, 5, 5, 3], act)
    prop = two_row_property(net, rng.uniform(-1, 1, 3), 0.1)
    mins = sample_violations(net, prop, rng, 500)
    for i, case in enumerate(prop.cases):
        ibp = recompute_rows(net, case, "ibp")
        crown = recompute_rows(net, case, "crown")
        assert np.all(crown >= ibp)  # CROWN is intersected with IBP
        # a row bound is below every sampled row value, hence below the sampled max-min
        assert float(np.max(crown)) <= mins[i]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), eps=st.sampled_from([1e-3, 0.05, 0.5, 3.0]))
def test_checker_accepts_honest_random_certificates(seed: int, eps: float) -> None:
    rng = np.random.default_rng(seed)
    net = random_network(rng, [3, 8, 8, 3])
    prop = robust_prop(net, rng.uniform(-1, 1, 3), eps)
    for method in ("ibp", "crown"):
        cert = verified_cert(net, prop, method)
        report = check(cert, net)
        assert report.ok, (cert.verdict, report.reasons)


def test_counterexample_certificate_from_result() -> None:
    ev = FALS.evidence
    assert isinstance(ev, CounterexampleEvidence)
    cex = Counterexample(ev.x, ev.y, ev.case_index, ev.violation)
    res = VerificationResult(Verdict.FALSIFIED, counterexample=cex, method="attack")
    cert = certificate_from_result(NET, FALS.property, res)
    assert check(cert, NET).ok
    with pytest.raises(ValueError, match="counterexample"):
        certificate_from_result(NET, FALS.property, VerificationResult(Verdict.FALSIFIED))


# --------------------------------------------------------------------------------------------
# Complete methods through the real pipeline (skipped while those modules are missing)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["milp", "bab"])
def test_complete_method_certificates_from_the_pipeline(method: str) -> None:
    pytest.importorskip("nncert.verify.bab" if method == "bab" else "nncert.solvers.highs_solver")
    from nncert.certificates import transfer
    from nncert.verify.pipeline import verify

    prop = robust_prop(NET, [0.3, 0.6], 0.3)  # CROWN alone does not close case 0
    res = verify(NET, prop, method=method, time_limit=30)
    assert res.verdict is Verdict.VERIFIED
    cert = certificate_from_result(NET, prop, res, options={"method": method})
    assert cert.evidence.kind == res.method == method
    assert from_json(to_json(cert)) == cert
    report = check(cert, NET)
    assert report.ok, report.reasons
    if method == "milp":
        assert report.trust == "solver-attested"
        assert any("solver-attested" in a for a in report.attested)
        # transfer refuses a source resting on a solver's word unless told to accept it
        with pytest.raises(ValueError, match="solver's word"):
            transfer(cert, NET, NET.replace_layers(list(NET.layers)), verify_fallback=False)
    else:
        assert report.trust == "independent"
        assert any("proof tree re-derived" in a for a in report.attested)
    # the complete method's per-case bounds feed a transfer to an identical copy
    copy = NET.replace_layers(list(NET.layers))
    tr = transfer(cert, NET, copy, method="interval", verify_fallback=False, accept_attested=True)
    assert tr.transferred and tr.verdict is Verdict.VERIFIED
    assert check(tr.certificate, copy, source=NET, source_certificate=cert).ok


def test_verified_result_without_recorded_proof_is_refused() -> None:
    prop = robust_prop(NET, [0.3, 0.6], 0.3)
    for method, stats in (("milp", {"milp": []}), ("bab", {"bab": []}), ("qbd", {})):
        res = VerificationResult(Verdict.VERIFIED, method=method, stats=stats)
        with pytest.raises(ValueError, match=r"no recorded proof|cannot build evidence"):
            certificate_from_result(NET, prop, res)


def test_unknown_result_gives_no_evidence() -> None:
    prop = robust_prop(NET, [0.3, 0.6], 0.3)
    res = VerificationResult(
        Verdict.UNKNOWN, reason="timeout", margin_lower=(-0.5, None), margin_upper=(0.1, 0.2)
    )
    cert = certificate_from_result(NET, prop, res)
    assert cert.evidence.kind == "none" and cert.evidence.reason == "timeout"  # type: ignore[union-attr]
    report = check(cert, NET)
    assert report.ok and "nothing to check" in report.attested[-1]
