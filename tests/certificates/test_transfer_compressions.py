"""Transfer to real compressions of bundled networks is sound (issue acceptance, fast subset).

For three bundled networks (ReLU, hardtanh, sigmoid) and three compressions (30 % magnitude
pruning, int4 weights, low rank at 99 % energy):

* every property VERIFIED by transfer is confirmed on the target by direct verification
  (``verify(target, prop, method="auto", time_limit=20)`` is VERIFIED, or, if UNKNOWN, dense
  sampling finds no violation) and is never FALSIFIED there;
* a FALSIFIED source certificate transfers exactly when its witness, replayed independently
  through the target, violates the property, and a transferred witness is real on the target.

The full table over every bundled network, ACAS Xu and more compressions is produced by
``benchmarks/run_transfer.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest

from nncert.certificates import (
    BabEvidence,
    Certificate,
    CounterexampleEvidence,
    NoEvidence,
    TransferEvidence,
    certificate_from_result,
    check,
    transfer,
)
from nncert.compression import low_rank, magnitude_prune, quantize_weights
from nncert.verify.network import Dense, Network
from nncert.verify.pipeline import verify
from nncert.verify.result import Verdict
from nncert.verify.spec import Property

NETWORKS = ("iris_relu", "moons_hardtanh", "iris_sigmoid")

COMPRESSIONS: dict[str, Callable[[Network], Network]] = {
    "prune30": lambda net: magnitude_prune(net, 0.3)[0],
    "int4": lambda net: quantize_weights(net, bits=4)[0],
    "lowrank": lambda net: low_rank(net, energy=0.99)[0],
}

PAIRS = [(n, c) for n in NETWORKS for c in COMPRESSIONS]


@functools.cache
def _source(name: str) -> tuple[Network, tuple[Property, ...], tuple[Certificate, ...]]:
    """The bundled network, its properties and one certificate per property (cached)."""
    from nncert.verify.examples import load_example

    try:
        net, props = load_example(name)
    except FileNotFoundError as err:  # pragma: no cover - examples not built
        pytest.skip(f"bundled examples not built: {err}")
    certs = tuple(
        certificate_from_result(net, p, verify(net, p, method="auto", time_limit=20)) for p in props
    )
    return net, tuple(props), certs


@functools.cache
def _target(name: str, compression: str) -> Network:
    return COMPRESSIONS[compression](_source(name)[0])


def _sampled_min_violation(net: Network, prop: Property, n: int = 20000, seed: int = 0) -> float:
    """The smallest case violation over dense uniform samples (and the box corners/centre)."""
    rng = np.random.default_rng(seed)
    best = np.inf
    for case in prop.cases:
        box = case.input_box
        xs = np.vstack([box.sample(n, rng), box.lower, box.upper, (box.lower + box.upper) / 2])
        best = min(best, float(np.min(case.violation(net.forward(xs)))))
    return best


def _witness_violation(net: Network, cert: Certificate) -> float:
    """Independent replay of a FALSIFIED certificate's witness on ``net``."""
    ev = cert.evidence
    assert isinstance(ev, CounterexampleEvidence)
    case = cert.property.cases[ev.case_index]
    x = np.clip(np.asarray(ev.x, dtype=np.float64), case.input_box.lower, case.input_box.upper)
    return float(case.violation(net.forward(x).reshape(1, -1))[0])


@pytest.mark.parametrize(("name", "compression"), PAIRS)
def test_transferred_verified_is_confirmed_on_the_target(name: str, compression: str) -> None:
    net, props, certs = _source(name)
    target = _target(name, compression)
    assert target.fingerprint() != net.fingerprint()
    n_verified = n_transferred = 0
    for prop, cert in zip(props, certs):
        if cert.verdict is not Verdict.VERIFIED:
            continue
        n_verified += 1
        res = transfer(cert, net, target, verify_fallback=False)
        if not res.transferred:
            if res.verdict is Verdict.FALSIFIED:
                # a point the tree replay met in a failing leaf, replayed on the target
                assert "counterexample lies in a failing leaf" in res.reason
                assert _witness_violation(target, res.certificate) <= 0.0
                assert check(res.certificate, target).ok
                continue
            assert res.verdict is Verdict.UNKNOWN, res.reason
            assert res.fallback_result is None
            continue
        assert res.verdict is Verdict.VERIFIED, res.reason
        n_transferred += 1
        # the Δ rule (transfer evidence) or the source's proof trees replayed on the target
        assert isinstance(res.certificate.evidence, (TransferEvidence, BabEvidence))
        assert res.certificate.network.fingerprint == target.fingerprint()
        rep = check(res.certificate, target, source=net, source_certificate=cert)
        assert rep.ok, rep.reasons
        if isinstance(res.certificate.evidence, BabEvidence):
            assert res.replay is not None and rep.trust == "independent"
        direct = verify(target, prop, method="auto", time_limit=20)
        assert direct.verdict is not Verdict.FALSIFIED, (
            f"UNSOUND transfer on {name}/{compression}/{prop.name}: "
            f"direct verification found {direct.counterexample}"
        )
        if direct.verdict is Verdict.UNKNOWN:
            assert _sampled_min_violation(target, prop) > 0.0, prop.name
    assert n_verified > 0
    # the compressions are mild enough that transfer is exercised on every pair
    assert n_transferred > 0, f"{name}/{compression}: nothing transferred"


@pytest.mark.parametrize(("name", "compression"), PAIRS)
def test_falsified_transfers_only_after_replay(name: str, compression: str) -> None:
    net, props, certs = _source(name)
    target = _target(name, compression)
    falsified = [(p, c) for p, c in zip(props, certs) if c.verdict is Verdict.FALSIFIED]
    assert falsified, f"{name}: no falsified source property"
    for prop, cert in falsified:
        real = _witness_violation(target, cert) <= 0.0
        res = transfer(cert, net, target, verify_fallback=False)
        assert res.transferred is real, (prop.name, res.reason)
        if not real:
            assert res.verdict is Verdict.UNKNOWN
            assert isinstance(res.certificate.evidence, NoEvidence)
            continue
        assert res.verdict is Verdict.FALSIFIED and res.reason.startswith("T3")
        ev = res.certificate.evidence
        assert isinstance(ev, CounterexampleEvidence)
        case = prop.cases[ev.case_index]
        x = np.asarray(ev.x)
        assert case.input_box.contains(x)
        y = target.forward(x)
        assert float(case.violation(y.reshape(1, -1))[0]) <= 0.0
        np.testing.assert_allclose(ev.y, y, rtol=0, atol=1e-12)
        assert check(res.certificate, target).ok
        direct = verify(target, prop, method="auto", time_limit=20)
        assert direct.verdict is not Verdict.VERIFIED, prop.name


@pytest.mark.parametrize("name", NETWORKS)
def test_witness_that_fails_on_the_target_is_not_transferred(name: str) -> None:
    """A compressed target on which the label always wins: every witness fails the replay."""
    net, props, certs = _source(name)
    target = _target(name, "int4")
    *hidden, last = target.layers
    assert isinstance(last, Dense)
    for prop, cert in zip(props, certs):
        if cert.verdict is not Verdict.FALSIFIED:
            continue
        assert prop.label is not None
        bias = np.array(last.bias)
        bias[prop.label] += 1e3
        robust = target.replace_layers([*hidden, Dense(last.weight, bias)])
        assert _witness_violation(robust, cert) > 0.0
        res = transfer(cert, net, robust, verify_fallback=False)
        assert not res.transferred and res.verdict is Verdict.UNKNOWN
        assert "does not violate" in res.reason
        back = transfer(cert, net, robust, time_limit=20)
        assert not back.transferred and back.verdict is not Verdict.FALSIFIED
        break
    else:  # pragma: no cover - every bundled network has a falsified property
        pytest.fail(f"{name}: no falsified source property")
