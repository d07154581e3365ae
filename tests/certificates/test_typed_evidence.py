"""Typed evidence (issue 12, item 4): each method's outcome carries a typed record of how a case
was closed, and the certificate builder reads those records, never the ``stats`` counters."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from nncert.certificates import BabEvidence, MilpEvidence, certificate_from_result, check
from nncert.certificates.build import bound_evidence
from nncert.certificates.proofcheck import check_tree
from nncert.verify.errors import CertificateError
from nncert.verify.network import Dense, Network, ReLU
from nncert.verify.pipeline import verify
from nncert.verify.registry import register_method, unregister_method
from nncert.verify.relu_bab import relu_bab_case
from nncert.verify.result import (
    BoundCaseEvidence,
    CaseContext,
    SearchCaseEvidence,
    SolverCaseEvidence,
    Verdict,
    VerificationResult,
)
from nncert.verify.spec import Property, UnsafeCase, robustness_property


def _net() -> Network:
    """The fixed 2-4-3 ReLU network of the certificate tests."""
    W1 = np.array([[1.0, -0.5], [0.25, 0.75], [-1.0, 0.5], [0.5, 0.5]])
    W2 = np.array([[1.0, 0.5, -0.25, 0.5], [-0.5, 1.0, 0.25, -0.5], [0.25, -0.75, 1.0, 0.0]])
    layers = (Dense(W1, [0.1, -0.2, 0.0, 0.05]), ReLU(), Dense(W2, [0.2, 0.0, -0.1]))
    return Network(layers, (2,))


def _prop(eps: float) -> Property:
    """At eps=0.3 CROWN closes case 1 but not case 0 (which holds)."""
    x0 = np.array([0.3, 0.6])
    return robustness_property(x0, eps, int(np.argmax(_net().forward(x0))), 3, domain=None)


# method -> (type of the record that closes case 0, its method, certificate evidence type)
CLOSERS = {
    "milp": (SolverCaseEvidence, "milp", MilpEvidence),
    "bab": (SearchCaseEvidence, "bab", BabEvidence),
    "relu_bab": (SearchCaseEvidence, "relu_bab", BabEvidence),
    "benders": (SolverCaseEvidence, "benders", MilpEvidence),
    "window": (SolverCaseEvidence, "window", MilpEvidence),
}


@pytest.mark.parametrize("method", list(CLOSERS))
def test_each_closed_case_carries_the_record_that_closed_it(method: str) -> None:
    net, prop = _net(), _prop(0.3)
    res = verify(net, prop, method=method, time_limit=60)
    assert res.verdict is Verdict.VERIFIED and res.method == method
    kind, by, cert_kind = CLOSERS[method]
    # CROWN (the presolve) closed case 1, the method case 0
    assert [(e.case, type(e), e.method) for e in res.evidence] == [
        (1, BoundCaseEvidence, "crown"),
        (0, kind, by),
    ]
    crown, closer = res.evidence
    assert crown.proven_lower is not None and crown.proven_lower > 0
    assert closer.proven_lower is not None and closer.proven_lower > 0
    if isinstance(closer, SolverCaseEvidence):
        assert closer.exact
    if method == "milp":
        assert isinstance(closer, SolverCaseEvidence)
        assert closer.solver == "highs" and closer.status == "optimal"
        assert closer.binaries is not None and closer.binaries > 0
        assert closer.bound is not None and closer.bound > closer.tolerance
    if isinstance(closer, SearchCaseEvidence):
        assert closer.status == "verified" and closer.nodes >= 1
    # the certificate comes from the typed records alone: the stats counters do not matter
    cert = certificate_from_result(net, prop, res)
    assert isinstance(cert.evidence, cert_kind)
    again = certificate_from_result(net, prop, dataclasses.replace(res, stats={}))
    # the creation time stamp may cross a second boundary between the two builds
    stamp = dataclasses.replace(again.provenance, created=cert.provenance.created)
    assert dataclasses.replace(again, provenance=stamp) == cert
    report = check(cert, net)
    assert report.ok
    # searches carry proof trees (independent); solvers' verdicts rest on their word unless
    # re-proved by the project's own search
    assert report.trust == ("independent" if cert_kind is BabEvidence else "solver-attested")
    reproved = certificate_from_result(net, prop, res, reprove_time=30.0)
    assert check(reproved, net).trust == "independent"


def test_open_cases_keep_their_best_partial_record() -> None:
    net, prop = _net(), _prop(0.3)
    res = verify(net, prop, method="crown", time_limit=30)
    assert res.verdict is Verdict.UNKNOWN
    assert [(e.case, type(e)) for e in res.evidence] == [
        (1, BoundCaseEvidence),
        (0, BoundCaseEvidence),
    ]
    assert res.evidence[1].proven_lower == res.margin_lower[0] < 0.0


def test_builder_maps_records_to_the_schema() -> None:
    """A hand-made MILP result: the record's status, objective, bound and gap reach the
    certificate; cases closed by bounds are covered by the recomputed presolve."""
    net, prop = _net(), _prop(0.3)
    pre = bound_evidence(net, prop, "crown")
    assert pre.case_lower[0] <= 0.0 < pre.case_lower[1]
    res = VerificationResult(
        Verdict.VERIFIED,
        method="milp",
        solver="highs",
        evidence=(
            BoundCaseEvidence(1, "crown", pre.case_lower[1]),
            SolverCaseEvidence(0, "milp", "highs", True, "optimal", 0.25, 0.125, 1e-6, 4),
        ),
    )
    cert = certificate_from_result(net, prop, res)
    ev = cert.evidence
    assert isinstance(ev, MilpEvidence) and ev.solver == "highs" and ev.exact
    (rec,) = ev.cases
    assert (rec.case_index, rec.status, rec.objective, rec.bound, rec.gap) == (
        0,
        "optimal",
        0.25,
        0.125,
        0.125,
    )
    # a record that proves nothing (bound <= tolerance) is no proof
    weak = dataclasses.replace(
        res, evidence=(SolverCaseEvidence(0, "milp", "highs", True, "optimal", 0.0, 0.0, 1e-6),)
    )
    with pytest.raises(CertificateError, match="no recorded proof"):
        certificate_from_result(net, prop, weak)


def test_plugin_records_read_as_solver_attested() -> None:
    """Any complete method's exact records become MilpEvidence labelled method/solver."""
    net, prop = _net(), _prop(0.3)
    res = VerificationResult(
        Verdict.VERIFIED,
        method="my_method",
        solver="my_solver",
        evidence=(SearchCaseEvidence(0, "my_method", "verified", 0.01, 7),),
    )
    ev = certificate_from_result(net, prop, res).evidence
    assert isinstance(ev, MilpEvidence) and ev.solver == "my_method/my_solver"
    assert [(c.case_index, c.status, c.bound) for c in ev.cases] == [(0, "optimal", 0.01)]


def test_evidence_records_normalise_their_numbers() -> None:
    rec = SolverCaseEvidence(np.int64(2), "milp", "highs", False, "time_limit", math.nan, 0.5)  # type: ignore[arg-type]
    assert rec.case == 2 and rec.objective is None and rec.bound == 0.5
    assert rec.proven_lower is None  # not exact: proves nothing
    assert SearchCaseEvidence(0, "bab", "timeout", math.nan).lower_bound is None


@pytest.mark.parametrize("method", ["bab", "relu_bab"])
def test_search_records_carry_their_proof_tree(method: str) -> None:
    """A case closed by branch and bound carries the search's proof tree in its evidence (the
    input-split search's per-case tree, the ReLU-phase search's ``CaseOutcome.proof``), and
    the independent checker accepts it for that case."""
    net, prop = _net(), _prop(0.3)
    res = verify(net, prop, method=method, time_limit=60)
    assert res.verdict is Verdict.VERIFIED
    closer = res.evidence[-1]
    assert isinstance(closer, SearchCaseEvidence) and closer.case == 0
    assert closer.proof is not None
    report = check_tree(net, prop.cases[0], closer.proof)
    assert report.ok, report.reason
    # cases closed by the CROWN presolve carry no tree
    assert isinstance(res.evidence[0], BoundCaseEvidence)


def _relu_bab_without_evidence(network: Network, case: UnsafeCase, ctx: CaseContext) -> Any:
    """ReLU-phase branch and bound, its outcome stripped of typed evidence (keeps the tree)."""
    return dataclasses.replace(relu_bab_case(network, case, ctx), evidence=None)


def _relu_bab_without_tree_in_evidence(network: Network, case: UnsafeCase, ctx: CaseContext) -> Any:
    """ReLU-phase branch and bound whose evidence record lacks the tree ``proof`` holds."""
    out = relu_bab_case(network, case, ctx)
    assert isinstance(out.evidence, SearchCaseEvidence)
    return dataclasses.replace(out, evidence=dataclasses.replace(out.evidence, proof=None))


@pytest.mark.parametrize("fn", [_relu_bab_without_evidence, _relu_bab_without_tree_in_evidence])
def test_an_outcome_proof_tree_reaches_the_evidence(fn: Any) -> None:
    """A method's ``CaseOutcome.proof`` becomes the case's :class:`SearchCaseEvidence` proof,
    whether the method gave no evidence or evidence without the tree."""
    name = f"test_tree_{fn.__name__.strip('_')}"
    register_method(name, fn, presolve=())
    try:
        net, prop = _net(), _prop(0.3)
        res = verify(net, prop, method=name, presolve=False, time_limit=60)
    finally:
        unregister_method(name)
    assert res.verdict is Verdict.VERIFIED
    by_case = {e.case: e for e in res.evidence}
    assert set(by_case) == {0, 1}
    for i, rec in by_case.items():
        assert isinstance(rec, SearchCaseEvidence) and rec.method == name
        assert rec.proof is not None and rec.nodes >= 1
        assert check_tree(net, prop.cases[i], rec.proof).ok
