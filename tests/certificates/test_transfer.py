"""Certificate transfer (T1/T2/T3): soundness by dense sampling, Δ = 0, fallbacks."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import numpy as np
import pytest
from cert_helpers import (
    golden_network,
    golden_pruned,
    magnitude_prune,
    masked,
    random_network,
    robust_prop,
    sample_violations,
    two_row_property,
    verified_cert,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from nncert.certificates import (
    CounterexampleEvidence,
    TransferError,
    TransferEvidence,
    check,
    transfer,
)
from nncert.verify.network import Dense, Network
from nncert.verify.result import Verdict


def _assert_sound(res, target: Network, prop, rng) -> None:  # type: ignore[no-untyped-def]
    if res.verdict is Verdict.VERIFIED:
        mins = sample_violations(target, prop, rng, 3000)
        assert min(mins) > 0.0, "transferred VERIFIED but sampling found a violation"
        assert res.certificate.network.fingerprint == target.fingerprint()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    keep=st.floats(0.5, 1.0),
    eps=st.sampled_from([0.01, 0.03, 0.1]),
    rows=st.sampled_from([1, 2]),
)
def test_transfer_to_masked_networks_is_sound(
    seed: int, keep: float, eps: float, rows: int
) -> None:
    rng = np.random.default_rng(seed)
    source = random_network(rng, [4, 10, 10, 3])
    masks = [(rng.random(d.weight.shape) < keep).astype(float) for d in source.dense_layers]
    target = masked(source, masks)
    x0 = rng.uniform(-1, 1, 4)
    prop = robust_prop(source, x0, eps) if rows == 1 else two_row_property(source, x0, eps)
    cert = verified_cert(source, prop, "crown")
    if cert.verdict is Verdict.UNKNOWN:
        return
    res = transfer(cert, source, target, verify_fallback=False)
    _assert_sound(res, target, prop, rng)
    if res.transferred:
        assert res.verdict is cert.verdict
        rep = check(res.certificate, target, source=source, source_certificate=cert)
        assert rep.ok, rep.reasons
    else:
        assert res.verdict is Verdict.UNKNOWN


@pytest.mark.parametrize("method", ["best", "interval", "crown"])
def test_light_pruning_transfers(method: str) -> None:
    source, target = golden_network(), golden_pruned()
    prop = robust_prop(source, [0.3, 0.6], 0.02)
    cert = verified_cert(source, prop, "crown")
    res = transfer(cert, source, target, method=method, verify_fallback=False)
    assert res.transferred and res.verdict is Verdict.VERIFIED, res.reason
    ev = res.certificate.evidence
    assert isinstance(ev, TransferEvidence) and ev.delta_method == method
    assert ev.theorem == "T2"  # original => pruned
    assert res.delta is not None and len(res.delta) == len(prop.cases)
    assert check(res.certificate, target, source=source).ok
    _assert_sound(res, target, prop, np.random.default_rng(0))
    # T1 direction: a certificate of the pruned network transfers back to the original
    cert_p = verified_cert(target, prop, "crown")
    back = transfer(cert_p, target, source, method=method, verify_fallback=False)
    if back.transferred:
        assert back.certificate.evidence.theorem == "T1"  # type: ignore[union-attr]


def test_zero_delta_transfer_reproduces_the_original() -> None:
    rng = np.random.default_rng(11)
    source = random_network(rng, [4, 8, 8, 3])
    prop = robust_prop(source, rng.uniform(-1, 1, 4), 0.01)
    cert = verified_cert(source, prop, "crown")
    assert cert.verdict is Verdict.VERIFIED
    copy = source.replace_layers(list(source.layers))
    res = transfer(cert, source, copy, method="interval", verify_fallback=False)
    assert res.transferred and res.verdict is cert.verdict
    ev = res.certificate.evidence
    assert isinstance(ev, TransferEvidence)
    assert ev.case_lower == cert.evidence.case_lower  # type: ignore[union-attr]
    assert all(d == 0.0 for row in ev.delta_lower for d in row)
    assert res.certificate.property == cert.property
    best = transfer(cert, source, copy, verify_fallback=False)
    np.testing.assert_allclose(
        best.certificate.case_lower_bounds(), cert.case_lower_bounds(), atol=1e-12
    )


def test_falsified_transfers_only_after_replay() -> None:
    source = golden_network()
    prop = robust_prop(source, [0.3, 0.6], 1.5)
    cert = verified_cert(source, prop, "crown")
    assert cert.verdict is Verdict.FALSIFIED
    # T3 on an identical copy: replayed, transferred
    copy = source.replace_layers(list(source.layers))
    res = transfer(cert, source, copy, verify_fallback=False)
    assert res.transferred and res.verdict is Verdict.FALSIFIED
    assert isinstance(res.certificate.evidence, CounterexampleEvidence)
    assert check(res.certificate, copy).ok
    # a target on which the witness is not a counterexample: never transferred
    d1, act, d2 = source.layers
    bias = np.array(d2.bias)  # type: ignore[union-attr]
    label = prop.label
    assert label is not None
    bias[label] += 100.0  # the label now always wins
    robust = source.replace_layers([d1, act, Dense(d2.weight, bias)])  # type: ignore[union-attr]
    res2 = transfer(cert, source, robust, verify_fallback=False)
    assert not res2.transferred and res2.verdict is Verdict.UNKNOWN
    res3 = transfer(cert, source, robust, options={"method": "crown"})
    assert not res3.transferred and res3.fallback_result is not None
    assert res3.verdict is Verdict.VERIFIED
    assert check(res3.certificate, robust).ok


def test_failed_transfer_falls_back_to_verification() -> None:
    rng = np.random.default_rng(2)
    source = random_network(rng, [4, 10, 10, 3])
    prop = robust_prop(source, rng.uniform(-1, 1, 4), 0.02)
    cert = verified_cert(source, prop, "crown")
    assert cert.verdict is Verdict.VERIFIED
    target = magnitude_prune(source, 0.6)  # this draw: margin + Δ < 0 for case 1
    res = transfer(cert, source, target, verify_fallback=False)
    assert not res.transferred and res.verdict is Verdict.UNKNOWN
    assert "case 1" in res.reason
    assert res.certificate.evidence.kind == "none"
    assert check(res.certificate, target).ok
    fb = transfer(cert, source, target, options={"method": "crown"}, time_limit=20)
    assert not fb.transferred and fb.fallback_result is not None
    assert check(fb.certificate, target).ok
    _assert_sound(fb, target, prop, rng)


def test_rejected_or_foreign_source_certificates_raise() -> None:
    source, target = golden_network(), golden_pruned()
    prop = robust_prop(source, [0.3, 0.6], 0.02)
    cert = verified_cert(source, prop, "crown")
    with pytest.raises(TransferError, match="fingerprint"):
        transfer(cert, target, source)
    ev = cert.evidence
    bad = replace(cert, evidence=replace(ev, case_lower=tuple(v + 5 for v in ev.case_lower)))  # type: ignore[type-var]
    with pytest.raises(TransferError, match="rejected"):
        transfer(bad, source, target)


def test_tampered_transfer_certificates_are_rejected() -> None:
    source, target = golden_network(), golden_pruned()
    prop = robust_prop(source, [0.3, 0.6], 0.02)
    cert = verified_cert(source, prop, "crown")
    res = transfer(cert, source, target, verify_fallback=False)
    tc = res.certificate
    ev = tc.evidence
    assert isinstance(ev, TransferEvidence)
    assert check(tc, target, source=source, source_certificate=cert).ok
    # without the source network the Δ cannot be recomputed
    assert not check(tc, target).ok
    # inflated target margin
    bad1 = replace(tc, evidence=replace(ev, case_lower=tuple(v + 1 for v in ev.case_lower)))
    assert not check(bad1, target, source=source).ok
    # inflated Δ (claims the pruned network is better than it is)
    bad2 = replace(
        tc, evidence=replace(ev, delta_lower=tuple(tuple(d + 1 for d in r) for r in ev.delta_lower))
    )
    assert not check(bad2, target, source=source).ok
    # inflated source margin: caught when the source certificate is supplied
    bad3 = replace(
        tc,
        evidence=replace(
            ev,
            source_case_lower=tuple(v + 1 for v in ev.source_case_lower),  # type: ignore[operator]
            source_row_lower=None,
        ),
    )
    assert not check(bad3, target, source=source, source_certificate=cert).ok
    # wrong source network
    other = random_network(np.random.default_rng(0), [2, 4, 3])
    assert not check(tc, target, source=other).ok
    # verdict edit
    assert not check(replace(tc, verdict=Verdict.FALSIFIED), target, source=source).ok


@pytest.mark.skipif(
    importlib.util.find_spec("nncert.verify.examples") is None, reason="no bundled examples"
)
def test_bundled_examples_transfer_soundly() -> None:  # pragma: no cover - optional
    from nncert.verify.examples import list_examples, load_example

    try:
        names = list_examples()
    except FileNotFoundError as err:
        pytest.skip(f"bundled examples not built: {err}")
    rng = np.random.default_rng(0)
    transferred = 0
    for name in names[:3]:
        net, props = load_example(name)
        target = magnitude_prune(net, 0.2)
        for prop in props[:2]:
            cert = verified_cert(net, prop, "crown")
            if cert.verdict is not Verdict.VERIFIED:
                continue
            res = transfer(cert, net, target, verify_fallback=False)
            _assert_sound(res, target, prop, rng)
            transferred += int(res.transferred)
